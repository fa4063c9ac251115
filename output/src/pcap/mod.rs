//! PCAP export (issue #6): per-flow and shared capture files written by a
//! thread of their own.
//!
//! Workers get a [`PcapHandle`] each; it copies frames into reused chunk
//! buffers and hands full chunks to the writer thread through a bounded
//! queue. A full queue drops the chunk's packets (counted, per file) and never
//! blocks capture. The contract with the engine is `PCAP-API.md`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::writer::BatchSender;

/// The file format of a rule's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcapFormat {
    Pcapng,
    Pcap,
}

/// Compression of finished files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcapCompression {
    None,
    Gzip,
}

/// What a rule does with the packets it selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportAction {
    /// One file per flow, finished when the flow ends (or the per-flow limit is hit).
    PerFlow {
        max_packets: Option<u64>,
        max_bytes: Option<u64>,
    },
    /// One shared file per rule, rotated by size and age (a ring).
    Shared {
        rotate_bytes: u64,
        rotate_secs: Option<u64>,
    },
}

/// One rule's output side; index in [`ExportConfig::rules`] = rule id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRuleOutput {
    /// `[A-Za-z0-9_-]+`, used in file names.
    pub name: String,
    pub dir: PathBuf,
    pub action: ExportAction,
    pub format: PcapFormat,
    /// Bytes kept of each frame; 0 = whole frame.
    pub snaplen: u32,
    pub compression: PcapCompression,
    /// Retention per rule (dir + name): finished files kept, oldest removed first.
    pub retain_files: Option<usize>,
    /// Retention per rule: bytes on disk kept, oldest finished file removed first.
    pub retain_bytes: Option<u64>,
}

/// Everything the writer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportConfig {
    pub rules: Vec<ExportRuleOutput>,
    /// Bound of the queue between the handles and the writer thread, in chunks.
    pub queue_chunks: usize,
}

/// Errors starting or finishing the writer.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("export rule `{rule}`: directory {dir} is not usable")]
    Dir {
        rule: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("export rule `{rule}`: {what}")]
    Rule { rule: String, what: String },
    #[error("pcap writer: cannot start its thread")]
    Spawn(#[source] std::io::Error),
    #[error("pcap writer: its thread panicked")]
    Panicked,
    #[error("pcap writer: not built yet")]
    NotBuilt,
}

/// Counters of the writer, shared by the handles and the writer thread.
#[derive(Debug, Default)]
pub struct PcapCounters {
    pub files_opened: AtomicU64,
    pub files_written: AtomicU64,
    pub packets_written: AtomicU64,
    /// Bytes written to disk (after compression), headers included.
    pub bytes_written: AtomicU64,
    /// Packets dropped because the queue to the writer thread was full.
    pub queue_drops: AtomicU64,
    pub io_errors: AtomicU64,
    pub files_removed_by_retention: AtomicU64,
    pub bytes_removed: AtomicU64,
}

/// The counters at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PcapSummary {
    pub files_opened: u64,
    pub files_written: u64,
    pub packets_written: u64,
    pub bytes_written: u64,
    pub queue_drops: u64,
    pub io_errors: u64,
    pub files_removed_by_retention: u64,
    pub bytes_removed: u64,
}

impl PcapCounters {
    pub fn snapshot(&self) -> PcapSummary {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PcapSummary {
            files_opened: l(&self.files_opened),
            files_written: l(&self.files_written),
            packets_written: l(&self.packets_written),
            bytes_written: l(&self.bytes_written),
            queue_drops: l(&self.queue_drops),
            io_errors: l(&self.io_errors),
            files_removed_by_retention: l(&self.files_removed_by_retention),
            bytes_removed: l(&self.bytes_removed),
        }
    }
}

/// Which flow a per-flow file belongs to; fixed when the file opens.
#[derive(Clone, Copy, Debug)]
pub struct FlowLabel<'a> {
    pub flow_id: u64,
    pub community_id: &'a str,
    pub first_ts_ns: u64,
    /// The capture's DLT (pcap LINKTYPE_*).
    pub linktype: u32,
    pub worker: u16,
    /// What matched, e.g. `http.host=example.com`.
    pub reason: &'a str,
}

/// A per-flow file, as the handle that opened it names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId(u64);

/// The running writer thread.
pub struct PcapWriter {
    counters: Arc<PcapCounters>,
}

impl PcapWriter {
    /// Starts the writer thread. Checks each dir exists and is writable.
    /// `events` receives one `pcap` event per finished file.
    pub fn start(cfg: ExportConfig, events: Option<BatchSender>) -> Result<PcapWriter, PcapError> {
        let _ = (cfg, events);
        Err(PcapError::NotBuilt)
    }

    /// A handle for one worker; Send, not shared.
    pub fn handle(&self) -> PcapHandle {
        PcapHandle {
            next: 0,
            counters: Arc::clone(&self.counters),
        }
    }

    pub fn counters(&self) -> Arc<PcapCounters> {
        Arc::clone(&self.counters)
    }

    /// Waits for the writer thread (after every handle is dropped): open
    /// files are finished, the counters returned.
    pub fn join(self) -> Result<PcapSummary, PcapError> {
        Ok(self.counters.snapshot())
    }
}

/// A worker's handle on the writer. Cheap; never blocks (except on drop,
/// which hands its last chunk over, waiting for room).
pub struct PcapHandle {
    next: u64,
    counters: Arc<PcapCounters>,
}

impl PcapHandle {
    /// Starts a per-flow file for `rule`. Never blocks.
    pub fn open(&mut self, rule: usize, flow: &FlowLabel<'_>) -> FileId {
        let _ = (rule, flow);
        self.next += 1;
        FileId(self.next)
    }

    /// Appends one frame to a per-flow file. `orig_len` is the wire length,
    /// `data` the captured bytes.
    pub fn packet(&mut self, file: FileId, ts_ns: u64, orig_len: u32, data: &[u8]) {
        let _ = (file, ts_ns, orig_len, data);
    }

    /// The flow ended (or its limit hit): finish, rename atomically, emit the event.
    pub fn close(&mut self, file: FileId) {
        let _ = file;
    }

    /// A frame for a Shared-action rule.
    pub fn shared_packet(
        &mut self,
        rule: usize,
        linktype: u32,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
    ) {
        let _ = (rule, linktype, ts_ns, orig_len, data);
    }

    /// Hands buffered chunks to the writer thread.
    pub fn flush(&mut self) {
        let _ = &self.counters;
    }
}
