//! PCAP export (issue #6): per-flow and shared capture files written by a
//! thread of their own.
//!
//! Workers get a [`PcapHandle`] each; it copies frames into reused chunk
//! buffers and hands full chunks to the writer thread through a bounded
//! queue. A full queue drops the chunk's packets (counted, per file) and never
//! blocks capture. The contract with the engine is `PCAP-API.md`; file
//! naming, rotation and retention are described in [`files`].

mod chunk;
pub mod files;
pub mod format;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use crate::outputs::WorkerOutput;
use chunk::{Chunk, Op};

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
    /// Mode and group of the files written (default 0640; the directory
    /// must exist and is not changed).
    pub perms: crate::perms::FilePerms,
}

/// Everything the writer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportConfig {
    pub rules: Vec<ExportRuleOutput>,
    /// Bound of the queue between the handles and the writer thread, in chunks.
    pub queue_chunks: usize,
    /// When the queue is full, `flush` waits for room (offline replay:
    /// lossless) instead of dropping and counting the frames (live capture).
    pub block_when_full: bool,
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
}

/// Counters of the writer, shared by the handles and the writer thread.
#[derive(Debug, Default)]
pub struct PcapCounters {
    pub files_opened: AtomicU64,
    pub files_written: AtomicU64,
    /// Frames in finished files (counted when the file is finished).
    pub packets_written: AtomicU64,
    /// Bytes written to disk (after compression), headers included.
    pub bytes_written: AtomicU64,
    /// Packets dropped because the queue to the writer thread was full.
    pub queue_drops: AtomicU64,
    /// Files given up after an I/O error (ENOSPC, EACCES, …), plus failed
    /// removals by retention.
    pub io_errors: AtomicU64,
    /// Frames lost to I/O errors: those of abandoned files (written before
    /// the error or sent after it) and those of a shared rule while it
    /// waits to retry.
    pub packets_failed: AtomicU64,
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
    pub packets_failed: u64,
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
            packets_failed: l(&self.packets_failed),
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

/// A per-flow file, as the handle that opened it names it: the handle's
/// number (12 bits), the rule (12 bits) and a sequence number (40 bits,
/// wrapping; ids need only be unique among the files open at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId(u64);

impl FileId {
    fn new(handle: u64, rule: usize, seq: u64) -> FileId {
        FileId(((handle & 0xfff) << 52) | ((rule as u64 & 0xfff) << 40) | (seq & ((1 << 40) - 1)))
    }

    fn rule(self) -> usize {
        ((self.0 >> 40) & 0xfff) as usize
    }
}

/// Rules beyond this many are refused (the rule is part of a [`FileId`]).
pub const MAX_RULES: usize = 4096;

pub use crate::event::PcapEvent;

/// Requests to the writer thread besides the packets.
pub(crate) enum Control {
    /// Send the `pcap` events here from now on (a reload changed the sinks).
    Events(Option<Box<WorkerOutput>>),
    /// Finish the shared files and flush the per-flow ones now.
    Flush(Sender<FlushReport>),
}

/// What [`PcapWriter::flush_now`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Shared (rotating) files finished: renamed into place, `pcap` event sent.
    pub shared_files_finished: u64,
    /// Per-flow files whose buffered packets were written to disk (they
    /// stay open until their flow ends).
    pub flow_files_flushed: u64,
}

/// The running writer thread.
pub struct PcapWriter {
    control: Sender<Control>,
    tx: Sender<Chunk>,
    pool_tx: Sender<Chunk>,
    pool_rx: Receiver<Chunk>,
    snaplens: Arc<[u32]>,
    counters: Arc<PcapCounters>,
    next_handle: AtomicU64,
    block_when_full: bool,
    thread: JoinHandle<()>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl PcapWriter {
    /// Starts the writer thread. Checks each rule (name, dir exists and is
    /// writable; a clear [`PcapError`] names the rule and dir), removes the
    /// rule's leftover temporary files and applies its retention to the
    /// files already there. `events` receives one `pcap` event per finished
    /// file.
    pub fn start(cfg: ExportConfig, events: Option<WorkerOutput>) -> Result<PcapWriter, PcapError> {
        PcapWriter::check(&cfg)?;
        let snaplens: Arc<[u32]> = cfg.rules.iter().map(|r| r.snaplen).collect();
        let counters = Arc::new(PcapCounters::default());
        let rules = cfg.rules.clone();
        let writer =
            files::Writer::new(rules, Arc::clone(&counters), events).map_err(|source| {
                // Only reading a rule's directory can fail here.
                let (rule, dir) = cfg
                    .rules
                    .iter()
                    .find(|r| std::fs::read_dir(&r.dir).is_err())
                    .map(|r| (r.name.clone(), r.dir.clone()))
                    .unwrap_or_default();
                PcapError::Dir { rule, dir, source }
            })?;
        let queue = cfg.queue_chunks.max(1);
        let (tx, rx) = bounded::<Chunk>(queue);
        let (pool_tx, pool_rx) = bounded::<Chunk>(queue + 16);
        let back = pool_tx.clone();
        let (control, control_rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("pcap-writer".into())
            .spawn(move || writer.run(rx, back, control_rx))
            .map_err(PcapError::Spawn)?;
        Ok(PcapWriter {
            control,
            tx,
            pool_tx,
            pool_rx,
            snaplens,
            counters,
            next_handle: AtomicU64::new(0),
            block_when_full: cfg.block_when_full,
            thread,
        })
    }

    /// What [`PcapWriter::start`] checks before it starts anything: the
    /// rules' names and settings, and that each directory exists and is
    /// writable. Run it before opening the outputs.
    pub fn check(cfg: &ExportConfig) -> Result<(), PcapError> {
        if cfg.rules.len() > MAX_RULES {
            return Err(PcapError::Rule {
                rule: format!("#{MAX_RULES}"),
                what: format!("at most {MAX_RULES} export rules"),
            });
        }
        for r in &cfg.rules {
            let bad = |what: &str| PcapError::Rule {
                rule: r.name.clone(),
                what: what.to_string(),
            };
            if !valid_name(&r.name) {
                return Err(bad("name must be non-empty [A-Za-z0-9_-]"));
            }
            if let ExportAction::Shared { rotate_bytes, .. } = r.action {
                if rotate_bytes == 0 {
                    return Err(bad("rotate_bytes must be above 0"));
                }
            }
            files::check_dir(&r.dir).map_err(|source| PcapError::Dir {
                rule: r.name.clone(),
                dir: r.dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// A handle for one worker; Send, not shared.
    pub fn handle(&self) -> PcapHandle {
        PcapHandle {
            id: self.next_handle.fetch_add(1, Ordering::Relaxed),
            seq: 0,
            chunk: Chunk::new(),
            tx: self.tx.clone(),
            pool_rx: self.pool_rx.clone(),
            pool_tx: self.pool_tx.clone(),
            snaplens: Arc::clone(&self.snaplens),
            counters: Arc::clone(&self.counters),
            block: self.block_when_full,
        }
    }

    pub fn counters(&self) -> Arc<PcapCounters> {
        Arc::clone(&self.counters)
    }

    /// Sends the `pcap` events to `events` from now on (the old handle hands
    /// over what it holds first): after a reload changed the sinks.
    pub fn set_events(&self, events: Option<WorkerOutput>) {
        let _ = self.control.send(Control::Events(events.map(Box::new)));
    }

    /// Finishes every shared file and writes out what the per-flow files
    /// buffer, now (see [`FlushReport`]); waits at most `limit` for the
    /// writer thread (None when it did not answer in time).
    pub fn flush_now(&self, limit: std::time::Duration) -> Option<FlushReport> {
        let (tx, rx) = bounded(1);
        self.control.send(Control::Flush(tx)).ok()?;
        rx.recv_timeout(limit).ok()
    }

    /// Waits for the writer thread (after every handle is dropped): open
    /// files are finished and renamed, the counters returned.
    pub fn join(self) -> Result<PcapSummary, PcapError> {
        drop(self.tx);
        self.thread.join().map_err(|_| PcapError::Panicked)?;
        Ok(self.counters.snapshot())
    }
}

/// A worker's handle on the writer. Cheap; never blocks, except when
/// dropped: it then hands its last chunk over, waiting for room, so that
/// every open and close reaches the writer.
pub struct PcapHandle {
    id: u64,
    seq: u64,
    chunk: Chunk,
    tx: Sender<Chunk>,
    pool_rx: Receiver<Chunk>,
    pool_tx: Sender<Chunk>,
    snaplens: Arc<[u32]>,
    counters: Arc<PcapCounters>,
    /// [`ExportConfig::block_when_full`].
    block: bool,
}

impl PcapHandle {
    /// Starts a per-flow file for `rule`. Never blocks.
    pub fn open(&mut self, rule: usize, flow: &FlowLabel<'_>) -> FileId {
        self.seq += 1;
        let id = FileId::new(self.id, rule, self.seq);
        if rule >= self.snaplens.len() {
            return id; // unknown rule: its frames are ignored by the writer
        }
        if self
            .chunk
            .would_overflow(flow.community_id.len() + flow.reason.len())
        {
            self.flush();
        }
        let community_id = self.chunk.put(flow.community_id.as_bytes());
        let reason = self.chunk.put(flow.reason.as_bytes());
        self.chunk.ops.push(Op::Open {
            file: id.0,
            rule: rule as u32,
            linktype: flow.linktype,
            worker: flow.worker,
            flow_id: flow.flow_id,
            first_ts_ns: flow.first_ts_ns,
            community_id,
            reason,
        });
        id
    }

    /// The bytes of `data` a rule keeps.
    fn snap<'d>(&self, rule: usize, data: &'d [u8]) -> Option<&'d [u8]> {
        let snaplen = *self.snaplens.get(rule)? as usize;
        Some(if snaplen == 0 || data.len() <= snaplen {
            data
        } else {
            &data[..snaplen]
        })
    }

    /// Appends one frame to a per-flow file (copied into the chunk; no
    /// allocation in steady state). `orig_len` is the wire length, `data`
    /// the captured bytes; the rule's snap length applies.
    pub fn packet(&mut self, file: FileId, ts_ns: u64, orig_len: u32, data: &[u8]) {
        let Some(data) = self.snap(file.rule(), data) else {
            return;
        };
        if self.chunk.would_overflow(data.len()) {
            self.flush();
        }
        let data = self.chunk.put(data);
        self.chunk.ops.push(Op::Packet {
            file: file.0,
            ts_ns,
            orig_len,
            data,
        });
    }

    /// The flow ended (or its limit hit): finish, rename atomically, emit the event.
    pub fn close(&mut self, file: FileId) {
        if self.chunk.would_overflow(0) {
            self.flush();
        }
        self.chunk.ops.push(Op::Close { file: file.0 });
    }

    /// A frame for a Shared-action rule (the "everything" ring or a shared file).
    pub fn shared_packet(
        &mut self,
        rule: usize,
        linktype: u32,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
    ) {
        let Some(data) = self.snap(rule, data) else {
            return;
        };
        if self.chunk.would_overflow(data.len()) {
            self.flush();
        }
        let data = self.chunk.put(data);
        self.chunk.ops.push(Op::Shared {
            rule: rule as u32,
            linktype,
            ts_ns,
            orig_len,
            data,
        });
    }

    /// Hands the buffered chunk to the writer thread (call at the end of
    /// each worker batch; it also happens by itself when a chunk fills). A
    /// full queue drops the chunk's frames, counted per file, and keeps its
    /// opens and closes for the next try; it never blocks (unless
    /// [`ExportConfig::block_when_full`]: then it waits for room).
    pub fn flush(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        let fresh = self.pool_rx.try_recv().unwrap_or_else(|_| Chunk::new());
        let full = std::mem::replace(&mut self.chunk, fresh);
        let sent = if self.block {
            self.tx
                .send(full)
                .map_err(|e| TrySendError::Disconnected(e.into_inner()))
        } else {
            self.tx.try_send(full)
        };
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(mut back)) => {
                let n = back.strip_packets();
                self.counters.queue_drops.fetch_add(n, Ordering::Relaxed);
                let fresh = std::mem::replace(&mut self.chunk, back);
                let _ = self.pool_tx.try_send(fresh);
            }
            Err(TrySendError::Disconnected(mut back)) => {
                let n = back.strip_packets();
                self.counters.queue_drops.fetch_add(n, Ordering::Relaxed);
                back.clear();
                let _ = self.pool_tx.try_send(back);
            }
        }
    }
}

impl Drop for PcapHandle {
    fn drop(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        let last = std::mem::replace(
            &mut self.chunk,
            Chunk {
                ops: Vec::new(),
                bytes: Vec::new(),
            },
        );
        if let Err(e) = self.tx.send(last) {
            let mut back = e.into_inner();
            let n = back.strip_packets();
            self.counters.queue_drops.fetch_add(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle_on(tx: Sender<Chunk>, snaplens: &[u32]) -> PcapHandle {
        let (pool_tx, pool_rx) = bounded(4);
        PcapHandle {
            id: 1,
            seq: 0,
            chunk: Chunk::new(),
            tx,
            pool_rx,
            pool_tx,
            snaplens: snaplens.into(),
            counters: Arc::new(PcapCounters::default()),
            block: false,
        }
    }

    fn label() -> FlowLabel<'static> {
        FlowLabel {
            flow_id: 7,
            community_id: "1:abc",
            first_ts_ns: 1,
            linktype: 1,
            worker: 0,
            reason: "r",
        }
    }

    #[test]
    fn a_full_queue_drops_frames_counted_per_file_and_keeps_open_and_close() {
        let (tx, rx) = bounded(1);
        let mut h = handle_on(tx, &[0]);
        let id = h.open(0, &label());
        h.packet(id, 10, 60, &[1; 60]);
        h.flush(); // queued: the queue is now full
        for i in 0..3 {
            h.packet(id, 11 + i, 60, &[2; 60]);
        }
        h.flush(); // nowhere to go: frames dropped, never blocks
        assert_eq!(h.counters.queue_drops.load(Ordering::Relaxed), 3);
        h.close(id);
        let first = rx.try_recv().expect("first chunk");
        assert!(matches!(first.ops[0], Op::Open { flow_id: 7, .. }));
        assert!(matches!(first.ops[1], Op::Packet { ts_ns: 10, .. }));
        h.flush();
        let second = rx.try_recv().expect("second chunk");
        assert_eq!(
            second.ops,
            vec![
                Op::Dropped {
                    file: id.0,
                    packets: 3
                },
                Op::Close { file: id.0 }
            ]
        );
        assert!(second.bytes.is_empty());
    }

    #[test]
    fn snaplen_applies_in_the_handle_and_ids_carry_the_rule() {
        let (tx, rx) = bounded(4);
        let mut h = handle_on(tx, &[0, 16]);
        let id = h.open(1, &label());
        assert_eq!(id.rule(), 1);
        h.packet(id, 1, 100, &[9; 100]);
        h.shared_packet(1, 1, 2, 100, &[8; 100]);
        h.shared_packet(0, 1, 3, 100, &[7; 100]);
        h.shared_packet(5, 1, 4, 100, &[6; 100]); // no such rule: ignored
        h.flush();
        let c = rx.try_recv().expect("chunk");
        let lens: Vec<usize> = c
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Packet { data, .. } | Op::Shared { data, .. } => Some(data.len as usize),
                _ => None,
            })
            .collect();
        assert_eq!(lens, vec![16, 16, 100]);
    }

    #[test]
    fn bad_rules_are_refused_naming_the_rule() {
        let mut r = ExportRuleOutput {
            name: "we b".into(),
            dir: std::env::temp_dir(),
            action: ExportAction::PerFlow {
                max_packets: None,
                max_bytes: None,
            },
            format: PcapFormat::Pcapng,
            snaplen: 0,
            compression: PcapCompression::None,
            retain_files: None,
            retain_bytes: None,
            perms: crate::perms::FilePerms::default(),
        };
        let cfg = |r: &ExportRuleOutput| ExportConfig {
            rules: vec![r.clone()],
            queue_chunks: 4,
            block_when_full: false,
        };
        let e = PcapWriter::start(cfg(&r), None).err().expect("refused");
        assert!(e.to_string().contains("`we b`"), "{e}");
        r.name = "ring".into();
        r.action = ExportAction::Shared {
            rotate_bytes: 0,
            rotate_secs: None,
        };
        let e = PcapWriter::start(cfg(&r), None).err().expect("refused");
        assert!(e.to_string().contains("rotate_bytes"), "{e}");
    }
}
