//! Helpers the `pcap_*` tests share: temp dirs, a writer with a native
//! event sink, reading files back with pcap-parser, and tshark/capinfos.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use output::pcap::{
    ExportAction, ExportConfig, ExportRuleOutput, PcapCompression, PcapFormat, PcapWriter,
};
use output::writer::{Destination, LineWriter, WhenFull};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapNGReader};

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "flowtap-pcap-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn rule(name: &str, dir: &Path, action: ExportAction) -> ExportRuleOutput {
    ExportRuleOutput {
        name: name.into(),
        dir: dir.to_path_buf(),
        action,
        format: PcapFormat::Pcapng,
        snaplen: 0,
        compression: PcapCompression::None,
        retain_files: None,
        retain_bytes: None,
        perms: output::perms::FilePerms::default(),
    }
}

pub fn per_flow() -> ExportAction {
    ExportAction::PerFlow {
        max_packets: None,
        max_bytes: None,
    }
}

/// A writer whose `pcap` events go to `<events dir>/events.json` (native).
pub struct Harness {
    pub writer: PcapWriter,
    lines: LineWriter,
    events_path: PathBuf,
}

impl Harness {
    /// Lossless (`block_when_full`), as offline replay runs it.
    pub fn start(rules: Vec<ExportRuleOutput>, events_dir: &Path) -> Harness {
        Harness::start_with(rules, events_dir, 64, true)
    }

    /// Drop-and-count at a full queue, as live capture runs it.
    pub fn start_with_queue(
        rules: Vec<ExportRuleOutput>,
        events_dir: &Path,
        queue_chunks: usize,
    ) -> Harness {
        Harness::start_with(rules, events_dir, queue_chunks, false)
    }

    /// `block`: [`ExportConfig::block_when_full`] (lossless).
    pub fn start_with(
        rules: Vec<ExportRuleOutput>,
        events_dir: &Path,
        queue_chunks: usize,
        block: bool,
    ) -> Harness {
        let events_path = events_dir.join("events.json");
        let (lines, sender) =
            LineWriter::spawn(&Destination::File(events_path.clone()), 64, WhenFull::Block)
                .expect("event sink");
        let writer = PcapWriter::start(
            ExportConfig {
                rules,
                queue_chunks,
                block_when_full: block,
            },
            Some(sender.worker()),
        )
        .expect("start");
        Harness {
            writer,
            lines,
            events_path,
        }
    }

    /// Joins everything (every handle must be gone); returns the counters
    /// and the `pcap` events.
    pub fn finish(self) -> (output::pcap::PcapSummary, Vec<serde_json::Value>) {
        let summary = self.writer.join().expect("join");
        self.lines.join().expect("sink join");
        let text = std::fs::read_to_string(&self.events_path).unwrap_or_default();
        let events = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("event json"))
            .collect();
        (summary, events)
    }
}

/// One frame as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub ts_ns: u64,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// What a pcapng file holds.
#[derive(Debug, Default)]
pub struct NgFile {
    pub comments: Vec<String>,
    pub linktype: u16,
    pub snaplen: u32,
    pub tsresol: u8,
    pub frames: Vec<Frame>,
}

fn opt_str(o: &pcap_parser::pcapng::PcapNGOption<'_>) -> String {
    String::from_utf8_lossy(&o.value()[..usize::from(o.len)]).into_owned()
}

/// Reads a whole pcapng file; panics on anything malformed or trailing.
pub fn read_pcapng(bytes: &[u8]) -> NgFile {
    let mut out = NgFile::default();
    let mut r = PcapNGReader::new(1 << 20, bytes).expect("pcapng reader");
    let mut stalls = 0;
    loop {
        match r.next() {
            Ok((n, PcapBlockOwned::NG(b))) => {
                stalls = 0;
                match b {
                    Block::SectionHeader(s) => {
                        for o in &s.options {
                            if o.code.0 == 1 {
                                out.comments.push(opt_str(o));
                            }
                        }
                    }
                    Block::InterfaceDescription(i) => {
                        out.linktype = i.linktype.0 as u16;
                        out.snaplen = i.snaplen;
                        out.tsresol = i.if_tsresol;
                    }
                    Block::EnhancedPacket(e) => out.frames.push(Frame {
                        ts_ns: (u64::from(e.ts_high) << 32) | u64::from(e.ts_low),
                        orig_len: e.origlen,
                        data: e.packet_data().to_vec(),
                    }),
                    other => panic!("unexpected block {other:?}"),
                }
                r.consume(n);
            }
            Ok(_) => panic!("not pcapng"),
            Err(pcap_parser::PcapError::Eof) => break,
            Err(pcap_parser::PcapError::Incomplete(_)) => {
                stalls += 1;
                assert!(stalls < 3, "truncated pcapng");
                r.refill().expect("refill");
            }
            Err(e) => panic!("pcapng parse error {e:?}"),
        }
    }
    out
}

/// Reads a whole classic pcap file: (linktype, snaplen, frames).
pub fn read_pcap(bytes: &[u8]) -> (u32, u32, Vec<Frame>) {
    let mut r = LegacyPcapReader::new(1 << 20, bytes).expect("pcap reader");
    let (mut lt, mut snap, mut frames) = (0, 0, Vec::new());
    let mut stalls = 0;
    loop {
        match r.next() {
            Ok((n, PcapBlockOwned::LegacyHeader(h))) => {
                assert_eq!(h.magic_number, 0xA1B2_3C4D, "nanosecond magic");
                lt = h.network.0 as u32;
                snap = h.snaplen;
                r.consume(n);
            }
            Ok((n, PcapBlockOwned::Legacy(p))) => {
                stalls = 0;
                frames.push(Frame {
                    ts_ns: u64::from(p.ts_sec) * 1_000_000_000 + u64::from(p.ts_usec),
                    orig_len: p.origlen,
                    data: p.data.to_vec(),
                });
                r.consume(n);
            }
            Ok(_) => panic!("not pcap"),
            Err(pcap_parser::PcapError::Eof) => break,
            Err(pcap_parser::PcapError::Incomplete(_)) => {
                stalls += 1;
                assert!(stalls < 3, "truncated pcap");
                r.refill().expect("refill");
            }
            Err(e) => panic!("pcap parse error {e:?}"),
        }
    }
    (lt, snap, frames)
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    // Every drain of a gzip file is one member: read them all.
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

/// Runs a tool, failing with a pointer to scripts/setup.sh when it is missing.
pub fn run(tool: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} ({e}); install it with scripts/setup.sh"));
    // tshark warns about running as root; that is not an error.
    let err: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("This could be dangerous"))
        .map(|l| format!("{l}\n"))
        .collect();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        err,
    )
}

/// Finished files in `dir` (not the hidden temporary ones), sorted.
pub fn finished_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && n != "events.json")
        })
        .collect();
    v.sort();
    v
}

/// A deterministic frame: `len` bytes derived from `seed`.
pub fn frame(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
