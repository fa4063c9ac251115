//! The writer thread: applies the handles' chunks to files, rotates shared
//! files, enforces retention, renames finished files into place and emits
//! their `pcap` events.
//!
//! Files are written as `<dir>/.<final name>.<id>.tmp` and renamed to
//! `<dir>/<UTC time>_<rule>_<suffix>.<ext>` when finished, so a reader never
//! sees a partial file under a final name. `<suffix>` (the community id made
//! file-safe, or the shared file's sequence number) holds no `_`, which is
//! how a rule's files are told apart from those of a rule whose name starts
//! with the same prefix.
//!
//! Retention (per rule): `retain_files` bounds the rule's finished files,
//! `retain_bytes` the bytes the rule has on disk (finished files plus the
//! files being written). Room is made before bytes are written, by removing
//! the oldest finished file first, so the directory stays within the limits
//! while files are written. Finished files of the same rule already in the
//! directory at start (an earlier run) count and are removed first (oldest
//! modification time first); leftover temporary files of the rule (a run that
//! died) are removed at start. If files still being written alone exceed
//! `retain_bytes`, the file that crossed the limit is finished at once.
//!
//! Memory: an open file holds only its not-yet-written blocks (up to
//! [`FLUSH_AT`], starting at 4 KiB) and a sha256 state; gzip files are
//! written as one gzip member per 32 KiB drain with one shared compressor,
//! so open gzip files carry no compressor state. At most [`MAX_OPEN_FDS`]
//! descriptors are open; other files reopen to append.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::{Digest, Sha256};

use super::chunk::{Chunk, Op};
use super::format;
use super::{ExportAction, ExportRuleOutput, PcapCompression, PcapCounters, PcapEvent, PcapFormat};
use crate::WorkerOutput;

/// Encoded bytes a file keeps in memory before they go to disk.
const FLUSH_AT: usize = 32 * 1024;
/// Files with an open descriptor at once (the others reopen to append).
const MAX_OPEN_FDS: usize = 256;
/// How often idle work runs (age rotation, event flush).
const TICK: Duration = Duration::from_millis(200);
/// After an I/O error on a shared file, how long its packets are dropped
/// before a new file is tried.
const SHARED_RETRY: Duration = Duration::from_secs(1);

/// The key of a rule's current shared file in error reports.
const SHARED_KEY: u64 = u64::MAX;

/// Initial size of a file's buffer (it grows to about [`FLUSH_AT`] for
/// busy files only, so thousands of quiet open flows stay cheap).
const INITIAL_BUF: usize = 4096;

/// Compresses `input` as one complete gzip member into `out` (cleared).
/// Each drain of a gzip file is one member, so files need no compressor
/// state while open (one shared compressor instead of ~250 KiB per open
/// file); concatenated members are one valid gzip stream (RFC 1952 2.2),
/// read whole by gzip, zcat and Wireshark.
fn gzip_member(deflate: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    // ID1 ID2, CM deflate, no flags, no mtime, XFL 4 (fastest), OS unknown
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255]);
    deflate.reset();
    out.reserve(input.len() + input.len() / 64 + 64);
    loop {
        let done = deflate.total_in() as usize;
        let status = deflate
            .compress_vec(&input[done..], out, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        if status == Status::StreamEnd {
            break;
        }
        out.reserve(out.capacity().max(1024));
    }
    let mut crc = Crc::new();
    crc.update(input);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(input.len() as u32).to_le_bytes());
    Ok(())
}

/// The flow a per-flow file belongs to.
struct FlowMeta {
    flow_id: u64,
    community_id: String,
    reason: String,
    worker: u16,
}

struct OutFile {
    rule: usize,
    key: u64,
    /// The final file name (no directory).
    name: String,
    tmp: PathBuf,
    fd: Option<File>,
    created: bool,
    /// Encoded blocks not yet on disk (uncompressed).
    pending: Vec<u8>,
    gzip: bool,
    sha: Sha256,
    /// Bytes written to disk so far.
    disk_bytes: u64,
    packets: u64,
    captured_bytes: u64,
    dropped: u64,
    first_ts: Option<u64>,
    last_ts: u64,
    /// The flow's first packet (per-flow) or the first frame (shared).
    opened_ts: u64,
    linktype: u32,
    flow: Option<FlowMeta>,
    opened_at: Instant,
    /// Finished early: a per-flow limit or the retention limit was hit.
    truncated: bool,
    /// Retention could not make room: finish at the next packet.
    over_limit: bool,
}

struct RuleRt {
    cfg: ExportRuleOutput,
    shared: Option<OutFile>,
    shared_seq: u64,
    shared_retry_at: Option<Instant>,
    /// Drops counted while no shared file was open; go to the next one.
    shared_dropped: u64,
    /// Finished files, oldest first, with their sizes.
    finished: VecDeque<(PathBuf, u64)>,
    /// Finished plus in-progress bytes on disk.
    disk_bytes: u64,
}

pub(crate) struct Writer {
    rules: Vec<RuleRt>,
    files: HashMap<u64, OutFile>,
    /// Per-flow files abandoned after an I/O error, until their close: their
    /// later frames count as failed.
    abandoned: HashSet<u64>,
    counters: Arc<PcapCounters>,
    events: Option<WorkerOutput>,
    /// Compressed output of one drain (gzip rules).
    zbuf: Vec<u8>,
    deflate: Compress,
    open_fds: usize,
    /// (rule, error kind) already reported on stderr.
    reported: Vec<(usize, io::ErrorKind)>,
    next_key: u64,
}

/// `20260102T030405.123456Z`: UTC, microseconds, no `:` or `_`.
pub(crate) fn file_time(ts_ns: u64) -> String {
    let secs = ts_ns / 1_000_000_000;
    let micros = (ts_ns % 1_000_000_000) / 1_000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    // civil from days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{micros:06}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// The community id as a file-name part: `1:ab+c/d=` → `1-ab-c.d`.
pub(crate) fn file_safe_community_id(cid: &str, flow_id: u64) -> String {
    let s: String = cid
        .chars()
        .filter_map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '.' => Some(c),
            ':' | '+' => Some('-'),
            '/' => Some('.'),
            _ => None,
        })
        .collect();
    if s.is_empty() {
        format!("flow{flow_id}")
    } else {
        s
    }
}

fn extension(cfg: &ExportRuleOutput) -> &'static str {
    match (cfg.format, cfg.compression) {
        (PcapFormat::Pcapng, PcapCompression::None) => "pcapng",
        (PcapFormat::Pcapng, PcapCompression::Gzip) => "pcapng.gz",
        (PcapFormat::Pcap, PcapCompression::None) => "pcap",
        (PcapFormat::Pcap, PcapCompression::Gzip) => "pcap.gz",
    }
}

/// The extensions this writer gives its files.
const EXTENSIONS: [&str; 4] = ["pcapng.gz", "pcapng", "pcap.gz", "pcap"];

/// `name` without and with its known extension (`.pcapng.gz`, …).
fn split_extension(name: &str) -> Option<(&str, &str)> {
    EXTENSIONS.iter().find_map(|e| {
        let stem = name.strip_suffix(e)?.strip_suffix('.')?;
        Some((stem, &name[stem.len()..]))
    })
}

/// Whether `name` is a finished file of `rule`: `<time>_<rule>_<suffix>.<ext>`
/// with no `_` in the suffix.
pub(crate) fn is_rule_file(name: &str, rule: &str) -> bool {
    let Some((time, rest)) = name.split_once('_') else {
        return false;
    };
    let time_ok = time.len() >= 16
        && time.ends_with('Z')
        && time.as_bytes()[8] == b'T'
        && time
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'T' | b'.' | b'Z'));
    let Some(rest) = rest.strip_prefix(rule).and_then(|r| r.strip_prefix('_')) else {
        return false;
    };
    let Some((stem, _)) = split_extension(rest) else {
        return false;
    };
    time_ok && !stem.is_empty() && !stem.contains('_')
}

/// Whether `name` is a temporary file this writer made for `rule`.
fn is_rule_tmp(name: &str, rule: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    // `.<final name>.<id>.tmp`
    match inner.rsplit_once('.') {
        Some((final_name, id)) => {
            id.bytes().all(|b| b.is_ascii_hexdigit()) && is_rule_file(final_name, rule)
        }
        None => false,
    }
}

/// Makes sure `dir` is a writable directory: creates and removes a probe file.
pub(crate) fn check_dir(dir: &Path) -> io::Result<()> {
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    let probe = dir.join(format!(".flowtap-probe-{}", std::process::id()));
    File::create(&probe)?.write_all(b"probe")?;
    fs::remove_file(&probe)
}

/// The rule's finished files already in its directory (oldest first), after
/// removing its leftover temporary files.
fn scan_existing(cfg: &ExportRuleOutput) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(&cfg.dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_rule_tmp(name, &cfg.name) {
            let _ = fs::remove_file(entry.path());
            continue;
        }
        if !is_rule_file(name, &cfg.name) {
            continue;
        }
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        found.push((mtime, name.to_string(), entry.path(), meta.len()));
    }
    found.sort();
    Ok(found.into_iter().map(|(_, _, p, n)| (p, n)).collect())
}

fn version_line() -> String {
    format!("flowtap {}", env!("CARGO_PKG_VERSION"))
}

impl Writer {
    pub(crate) fn new(
        rules: Vec<ExportRuleOutput>,
        counters: Arc<PcapCounters>,
        events: Option<WorkerOutput>,
    ) -> io::Result<Writer> {
        let mut rts = Vec::with_capacity(rules.len());
        for cfg in rules {
            let existing = scan_existing(&cfg)?;
            let disk_bytes = existing.iter().map(|(_, n)| n).sum();
            rts.push(RuleRt {
                cfg,
                shared: None,
                shared_seq: 0,
                shared_retry_at: None,
                shared_dropped: 0,
                finished: existing.into(),
                disk_bytes,
            });
        }
        let mut w = Writer {
            rules: rts,
            files: HashMap::new(),
            abandoned: HashSet::new(),
            counters,
            events,
            zbuf: Vec::new(),
            deflate: Compress::new(Compression::fast(), false),
            open_fds: 0,
            reported: Vec::new(),
            next_key: 0,
        };
        for r in 0..w.rules.len() {
            w.enforce_retention(r, 0, 0);
        }
        Ok(w)
    }

    /// Runs until every handle is gone, then finishes the open files.
    /// `control` requests (a reload, `flowtap ctl flush-export`) are served
    /// between chunks, within a tick.
    pub(crate) fn run(
        mut self,
        rx: Receiver<Chunk>,
        pool: Sender<Chunk>,
        control: Receiver<super::Control>,
    ) {
        let mut last_tick = Instant::now();
        loop {
            match rx.recv_timeout(TICK) {
                Ok(mut chunk) => {
                    self.apply(&chunk);
                    chunk.clear();
                    let _ = pool.try_send(chunk);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(c) = control.try_recv() {
                self.control(c);
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.tick();
            }
        }
        let keys: Vec<u64> = self.files.keys().copied().collect();
        for k in keys {
            if let Some(f) = self.files.remove(&k) {
                self.finish(f);
            }
        }
        for r in 0..self.rules.len() {
            if let Some(f) = self.rules[r].shared.take() {
                self.finish(f);
            }
        }
        if let Some(ev) = &mut self.events {
            ev.flush(true);
        }
    }

    fn control(&mut self, c: super::Control) {
        match c {
            super::Control::Events(ev) => {
                if let Some(old) = &mut self.events {
                    old.flush(true);
                }
                self.events = ev.map(|b| *b);
            }
            super::Control::Flush(reply) => {
                let r = self.flush_now();
                let _ = reply.send(r);
            }
        }
    }

    /// `flowtap ctl flush-export`: every shared file is finished now (it
    /// appears under its final name, with its `pcap` event; the next packet
    /// starts a new one) and what each per-flow file buffers is written to
    /// its temporary file (a per-flow file is finished when its flow ends).
    fn flush_now(&mut self) -> super::FlushReport {
        let mut r = super::FlushReport::default();
        for i in 0..self.rules.len() {
            if let Some(f) = self.rules[i].shared.take() {
                self.finish(f);
                r.shared_files_finished += 1;
            }
        }
        let keys: Vec<u64> = self.files.keys().copied().collect();
        for k in keys {
            let Some(mut f) = self.files.remove(&k) else {
                continue;
            };
            let synced = self.drain(&mut f).and_then(|()| match &f.fd {
                Some(fd) => fd.sync_data(),
                None => Ok(()),
            });
            match synced {
                Ok(()) => {
                    r.flow_files_flushed += 1;
                    self.files.insert(k, f);
                }
                Err(e) => {
                    self.abandon(f, &e);
                    self.abandoned.insert(k);
                }
            }
        }
        if let Some(ev) = &mut self.events {
            ev.flush(true);
        }
        r
    }

    fn tick(&mut self) {
        for r in 0..self.rules.len() {
            let ExportAction::Shared {
                rotate_secs: Some(secs),
                ..
            } = self.rules[r].cfg.action
            else {
                continue;
            };
            let old = self.rules[r]
                .shared
                .as_ref()
                .is_some_and(|f| f.opened_at.elapsed() >= Duration::from_secs(secs));
            if old {
                if let Some(f) = self.rules[r].shared.take() {
                    self.finish(f);
                }
            }
        }
        if let Some(ev) = &mut self.events {
            ev.flush(false);
        }
    }

    pub(crate) fn apply(&mut self, chunk: &Chunk) {
        for op in &chunk.ops {
            match *op {
                Op::Open {
                    file,
                    rule,
                    linktype,
                    worker,
                    flow_id,
                    first_ts_ns,
                    community_id,
                    reason,
                } => {
                    let cid = String::from_utf8_lossy(chunk.get(community_id)).into_owned();
                    let reason = String::from_utf8_lossy(chunk.get(reason)).into_owned();
                    let Some(rt) = self.rules.get(rule as usize) else {
                        continue;
                    };
                    let name = format!(
                        "{}_{}_{}.{}",
                        file_time(first_ts_ns),
                        rt.cfg.name,
                        file_safe_community_id(&cid, flow_id),
                        extension(&rt.cfg)
                    );
                    let meta = FlowMeta {
                        flow_id,
                        community_id: cid,
                        reason,
                        worker,
                    };
                    let f =
                        self.new_file(rule as usize, file, name, linktype, first_ts_ns, Some(meta));
                    self.abandoned.remove(&file);
                    if let Some(old) = self.files.insert(file, f) {
                        // An id reused without a close: finish the old file.
                        self.finish(old);
                    }
                }
                Op::Packet {
                    file,
                    ts_ns,
                    orig_len,
                    data,
                } => self.flow_packet(file, ts_ns, orig_len, chunk.get(data)),
                Op::Close { file } => {
                    if let Some(f) = self.files.remove(&file) {
                        self.finish(f);
                    }
                    self.abandoned.remove(&file);
                }
                Op::Shared {
                    rule,
                    linktype,
                    ts_ns,
                    orig_len,
                    data,
                } => self.shared_packet(rule as usize, linktype, ts_ns, orig_len, chunk.get(data)),
                Op::Dropped { file, packets } => {
                    if let Some(f) = self.files.get_mut(&file) {
                        f.dropped += packets;
                    }
                }
                Op::SharedDropped { rule, packets } => {
                    if let Some(rt) = self.rules.get_mut(rule as usize) {
                        match &mut rt.shared {
                            Some(f) => f.dropped += packets,
                            None => rt.shared_dropped += packets,
                        }
                    }
                }
            }
        }
    }

    fn new_file(
        &mut self,
        rule: usize,
        key: u64,
        name: String,
        linktype: u32,
        opened_ts: u64,
        flow: Option<FlowMeta>,
    ) -> OutFile {
        let cfg = &self.rules[rule].cfg;
        self.next_key += 1;
        let tmp = cfg.dir.join(format!(".{name}.{:x}.tmp", self.next_key));
        let mut pending = Vec::with_capacity(INITIAL_BUF);
        match cfg.format {
            PcapFormat::Pcapng => {
                let comment = match &flow {
                    Some(m) => format!(
                        "{}\nrule: {}\nreason: {}\nflow_id: {}\ncommunity_id: {}",
                        version_line(),
                        cfg.name,
                        m.reason,
                        m.flow_id,
                        m.community_id
                    ),
                    None => format!("{}\nrule: {}\nshared file", version_line(), cfg.name),
                };
                format::pcapng_shb(&mut pending, &comment, &version_line());
                format::pcapng_idb(&mut pending, linktype, cfg.snaplen);
            }
            PcapFormat::Pcap => {
                format::pcap_header(&mut pending, linktype, cfg.snaplen);
            }
        }
        self.counters.files_opened.fetch_add(1, Ordering::Relaxed);
        OutFile {
            rule,
            key,
            name,
            tmp,
            fd: None,
            created: false,
            pending,
            gzip: cfg.compression == PcapCompression::Gzip,
            sha: Sha256::new(),
            disk_bytes: 0,
            packets: 0,
            captured_bytes: 0,
            dropped: 0,
            first_ts: None,
            last_ts: 0,
            opened_ts,
            linktype,
            flow,
            opened_at: Instant::now(),
            truncated: false,
            over_limit: false,
        }
    }

    /// Encodes one frame into `f` (no I/O).
    fn encode(&mut self, f: &mut OutFile, ts_ns: u64, orig_len: u32, data: &[u8]) {
        let format = self.rules[f.rule].cfg.format;
        match format {
            PcapFormat::Pcapng => format::pcapng_epb(&mut f.pending, ts_ns, orig_len, data),
            PcapFormat::Pcap => format::pcap_record(&mut f.pending, ts_ns, orig_len, data),
        }
        f.packets += 1;
        f.captured_bytes += data.len() as u64;
        f.first_ts.get_or_insert(ts_ns);
        f.last_ts = ts_ns;
    }

    fn flow_packet(&mut self, key: u64, ts_ns: u64, orig_len: u32, data: &[u8]) {
        let Some(mut f) = self.files.remove(&key) else {
            if self.abandoned.contains(&key) {
                self.counters.packets_failed.fetch_add(1, Ordering::Relaxed);
            }
            return; // finished early by a limit: the rest is not wanted
        };
        let (max_packets, max_bytes) = match self.rules[f.rule].cfg.action {
            ExportAction::PerFlow {
                max_packets,
                max_bytes,
            } => (max_packets, max_bytes),
            ExportAction::Shared { .. } => (None, None),
        };
        let full = f.over_limit
            || max_packets.is_some_and(|m| f.packets >= m)
            || max_bytes.is_some_and(|m| f.packets > 0 && f.captured_bytes + data.len() as u64 > m);
        if full {
            f.truncated = true;
            self.finish(f);
            return;
        }
        self.encode(&mut f, ts_ns, orig_len, data);
        if f.pending.len() >= FLUSH_AT {
            if let Err(e) = self.drain(&mut f) {
                self.abandon(f, &e);
                self.abandoned.insert(key);
                return;
            }
        }
        let done = max_packets.is_some_and(|m| f.packets >= m)
            || max_bytes.is_some_and(|m| f.captured_bytes >= m);
        if done {
            f.truncated = true;
            self.finish(f);
        } else {
            self.files.insert(key, f);
        }
    }

    fn shared_packet(
        &mut self,
        rule: usize,
        linktype: u32,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
    ) {
        let Some(rt) = self.rules.get_mut(rule) else {
            return;
        };
        let ExportAction::Shared {
            rotate_bytes,
            rotate_secs,
        } = rt.cfg.action
        else {
            return;
        };
        if let Some(t) = rt.shared_retry_at {
            if Instant::now() < t {
                self.counters.packets_failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            rt.shared_retry_at = None;
        }
        let block = match rt.cfg.format {
            PcapFormat::Pcapng => format::pcapng_epb_len(data.len()),
            PcapFormat::Pcap => 16 + data.len(),
        } as u64;
        let rotate = rt.shared.as_ref().is_some_and(|f| {
            f.over_limit
                || f.linktype != linktype
                || (f.packets > 0 && f.disk_bytes + f.pending.len() as u64 + block > rotate_bytes)
                || rotate_secs.is_some_and(|s| {
                    f.first_ts
                        .is_some_and(|t0| ts_ns.saturating_sub(t0) >= s * 1_000_000_000)
                })
        });
        if rotate {
            if let Some(f) = rt.shared.take() {
                self.finish(f);
            }
        }
        let rt = &mut self.rules[rule];
        let mut f = match rt.shared.take() {
            Some(f) => f,
            None => {
                rt.shared_seq += 1;
                let name = format!(
                    "{}_{}_{:06}.{}",
                    file_time(ts_ns),
                    rt.cfg.name,
                    rt.shared_seq,
                    extension(&rt.cfg)
                );
                let dropped = std::mem::take(&mut rt.shared_dropped);
                let mut f = self.new_file(rule, SHARED_KEY, name, linktype, ts_ns, None);
                f.dropped = dropped;
                f
            }
        };
        self.encode(&mut f, ts_ns, orig_len, data);
        if f.pending.len() >= FLUSH_AT {
            if let Err(e) = self.drain(&mut f) {
                self.abandon(f, &e);
                self.rules[rule].shared_retry_at = Some(Instant::now() + SHARED_RETRY);
                return;
            }
        }
        self.rules[rule].shared = Some(f);
    }

    /// Removes the rule's oldest finished files until `extra_files` more
    /// finished files and `extra_bytes` more bytes fit. Returns whether they do.
    fn enforce_retention(&mut self, rule: usize, extra_files: usize, extra_bytes: u64) -> bool {
        let rt = &mut self.rules[rule];
        let mut fits = true;
        if let Some(max) = rt.cfg.retain_files {
            while rt.finished.len() + extra_files > max {
                if !remove_oldest(rt, &self.counters) {
                    break;
                }
            }
        }
        if let Some(max) = rt.cfg.retain_bytes {
            while rt.disk_bytes + extra_bytes > max {
                if !remove_oldest(rt, &self.counters) {
                    fits = false;
                    break;
                }
            }
        }
        fits
    }

    /// Writes `f`'s pending bytes (compressed for gzip rules) to its
    /// temporary file, making room first.
    fn drain(&mut self, f: &mut OutFile) -> io::Result<()> {
        if f.pending.is_empty() {
            return Ok(());
        }
        if f.gzip {
            gzip_member(&mut self.deflate, &f.pending, &mut self.zbuf)?;
        }
        let n = if f.gzip {
            self.zbuf.len()
        } else {
            f.pending.len()
        } as u64;
        if !self.enforce_retention(f.rule, 0, n) {
            f.over_limit = true;
        }
        if f.fd.is_none() {
            if self.open_fds >= MAX_OPEN_FDS {
                self.evict_fd();
            }
            let fd = if f.created {
                OpenOptions::new().append(true).open(&f.tmp)?
            } else {
                let fd = self.rules[f.rule]
                    .cfg
                    .perms
                    .create_new(OpenOptions::new().write(true), &f.tmp)?;
                f.created = true;
                fd
            };
            f.fd = Some(fd);
            self.open_fds += 1;
        }
        let out: &[u8] = if f.gzip { &self.zbuf } else { &f.pending };
        if let Some(fd) = &mut f.fd {
            fd.write_all(out)?;
        }
        f.sha.update(out);
        f.pending.clear();
        f.disk_bytes += n;
        self.rules[f.rule].disk_bytes += n;
        self.counters.bytes_written.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Closes the descriptor of some other per-flow file to stay under
    /// [`MAX_OPEN_FDS`] (it reopens to append when it has more to write).
    fn evict_fd(&mut self) {
        if let Some(f) = self.files.values_mut().find(|f| f.fd.is_some()) {
            f.fd = None;
            self.open_fds -= 1;
        }
    }

    fn close_fd(&mut self, f: &mut OutFile) {
        if f.fd.take().is_some() {
            self.open_fds -= 1;
        }
    }

    /// Finishes `f`: writes the rest, renames it into place, applies
    /// retention and emits its `pcap` event.
    fn finish(&mut self, mut f: OutFile) {
        if let Err(e) = self.drain(&mut f) {
            self.abandon(f, &e);
            return;
        }
        self.close_fd(&mut f);
        // Room for one more finished file before it appears.
        self.enforce_retention(f.rule, 1, 0);
        let dir = self.rules[f.rule].cfg.dir.clone();
        let path = unique_path(&dir, &f.name);
        if let Err(e) = fs::rename(&f.tmp, &path) {
            self.abandon(f, &e);
            return;
        }
        let rt = &mut self.rules[f.rule];
        rt.finished.push_back((path.clone(), f.disk_bytes));
        self.counters.files_written.fetch_add(1, Ordering::Relaxed);
        self.counters
            .packets_written
            .fetch_add(f.packets, Ordering::Relaxed);
        // A file that alone crossed `retain_bytes` may remove itself here.
        self.enforce_retention(f.rule, 0, 0);
        self.emit(&f, &path);
    }

    fn emit(&mut self, f: &OutFile, path: &Path) {
        let Some(ev) = &mut self.events else {
            return;
        };
        let cfg = &self.rules[f.rule].cfg;
        let sha = hex(&f.sha.clone().finalize());
        let path = path.to_string_lossy();
        let e = PcapEvent {
            ts_ns: if f.packets > 0 {
                f.last_ts
            } else {
                f.opened_ts
            },
            path: &path,
            rule: &cfg.name,
            flow_id: f.flow.as_ref().map(|m| m.flow_id),
            community_id: f.flow.as_ref().map(|m| m.community_id.as_str()),
            reason: f.flow.as_ref().map(|m| m.reason.as_str()),
            worker: f.flow.as_ref().map(|m| m.worker),
            format: match cfg.format {
                PcapFormat::Pcapng => "pcapng",
                PcapFormat::Pcap => "pcap",
            },
            compression: match cfg.compression {
                PcapCompression::None => None,
                PcapCompression::Gzip => Some("gzip"),
            },
            packets: f.packets,
            captured_bytes: f.captured_bytes,
            file_bytes: f.disk_bytes,
            dropped_packets: f.dropped,
            sha256: &sha,
            first_ts_ns: f.first_ts,
            last_ts_ns: f.first_ts.map(|_| f.last_ts),
            truncated: f.truncated,
        };
        ev.push_pcap(&e);
    }

    /// Gives `f` up after an I/O error: counts it, removes the temporary
    /// file, reports the first error of each kind per rule on stderr.
    fn abandon(&mut self, mut f: OutFile, e: &io::Error) {
        self.close_fd(&mut f);
        if f.created {
            let _ = fs::remove_file(&f.tmp);
        }
        let rt = &mut self.rules[f.rule];
        rt.disk_bytes = rt.disk_bytes.saturating_sub(f.disk_bytes);
        self.counters.io_errors.fetch_add(1, Ordering::Relaxed);
        self.counters
            .packets_failed
            .fetch_add(f.packets, Ordering::Relaxed);
        let kind = e.kind();
        if !self.reported.contains(&(f.rule, kind)) {
            self.reported.push((f.rule, kind));
            eprintln!(
                "flowtap: pcap export rule `{}`: writing {} failed: {e}; file abandoned \
                 (further errors of this kind are only counted)",
                rt.cfg.name,
                f.tmp.display()
            );
        }
        if f.key == SHARED_KEY {
            rt.shared_retry_at = Some(Instant::now() + SHARED_RETRY);
        }
    }
}

/// Removes the rule's oldest finished file; false when there is none.
fn remove_oldest(rt: &mut RuleRt, counters: &PcapCounters) -> bool {
    let Some((path, size)) = rt.finished.pop_front() else {
        return false;
    };
    match fs::remove_file(&path) {
        Ok(()) => {
            counters
                .files_removed_by_retention
                .fetch_add(1, Ordering::Relaxed);
            counters.bytes_removed.fetch_add(size, Ordering::Relaxed);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) => {
            counters.io_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    rt.disk_bytes = rt.disk_bytes.saturating_sub(size);
    true
}

/// `dir/name`, or `dir/<stem>-2.<ext>` … when that exists already.
fn unique_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if fs::symlink_metadata(&first).is_err() {
        return first;
    }
    let (stem, ext) = split_extension(name).unwrap_or((name, ""));
    (2..)
        .map(|i| dir.join(format!("{stem}-{i}{ext}")))
        .find(|p| fs::symlink_metadata(p).is_err())
        .unwrap_or(first)
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_times_are_utc() {
        assert_eq!(file_time(0), "19700101T000000.000000Z");
        assert_eq!(
            file_time(1_405_687_770_592_064_123),
            "20140718T124930.592064Z"
        );
        assert_eq!(
            file_time(1_709_210_096_000_001_000),
            "20240229T123456.000001Z"
        );
    }

    #[test]
    fn community_ids_become_file_safe() {
        assert_eq!(
            file_safe_community_id("1:LQU9qZlK+B5F3KDmev6m5PMibrg=", 1),
            "1-LQU9qZlK-B5F3KDmev6m5PMibrg"
        );
        assert_eq!(file_safe_community_id("1:a/b", 1), "1-a.b");
        assert_eq!(file_safe_community_id("", 42), "flow42");
    }

    #[test]
    fn rule_files_are_told_apart() {
        let t = "20140718T124930.592064Z";
        assert!(is_rule_file(&format!("{t}_web_1-abc.pcapng"), "web"));
        assert!(is_rule_file(&format!("{t}_web_000012.pcap.gz"), "web"));
        assert!(is_rule_file(&format!("{t}_web_1-a.b-2.pcapng"), "web"));
        // rule `web_x` is not `web`, nor the other way round
        assert!(!is_rule_file(&format!("{t}_web_x_1-abc.pcapng"), "web"));
        assert!(!is_rule_file(&format!("{t}_web_1-abc.pcapng"), "web_x"));
        assert!(is_rule_file(&format!("{t}_web_x_1-abc.pcapng"), "web_x"));
        assert!(!is_rule_file(&format!("{t}_web_1-abc.txt"), "web"));
        assert!(!is_rule_file("notes_web_1.pcapng", "web"));
        assert!(is_rule_tmp(&format!(".{t}_web_1-abc.pcapng.1f.tmp"), "web"));
        assert!(!is_rule_tmp(
            &format!(".{t}_web_x_1-abc.pcapng.1f.tmp"),
            "web"
        ));
    }

    #[test]
    fn unique_paths_do_not_clobber() {
        let dir = std::env::temp_dir().join(format!("flowtap-pcap-uniq-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        let name = "20140718T124930.592064Z_web_1-a.b.pcapng";
        assert_eq!(unique_path(&dir, name), dir.join(name));
        fs::write(dir.join(name), b"x").expect("write");
        assert_eq!(
            unique_path(&dir, name),
            dir.join("20140718T124930.592064Z_web_1-a.b-2.pcapng")
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
