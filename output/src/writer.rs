//! The writer front end the engine has always used: [`LineWriter`] owns the
//! running sinks ([`Outputs`]) and [`BatchSender`] is a clonable handle from
//! which each worker gets its [`WorkerOutput`] (`BatchSender::worker`).
//! `submit` hands over a ready `stats` line (native JSON), which every sink
//! that takes stats gets in its own schema.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::outputs::{Factory, OutputError, Outputs, OutputsProbe, SinkSnapshot};
use crate::schema::EncodeOptions;
use crate::sink::{FileSpec, SinkKind, SinkSpec};
use crate::{Volume, WorkerOutput};

/// Where JSON lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

impl Destination {
    /// `-` means stdout; anything else is a file path.
    pub fn parse(s: &str) -> Destination {
        if s == "-" {
            Destination::Stdout
        } else {
            Destination::File(PathBuf::from(s))
        }
    }
}

/// What a worker does when a sink's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room (offline replay: lossless).
    Block,
    /// Drop the batch and count its events (live capture: never stall RX).
    DropNewest,
}

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("cannot create output file {path}")]
    Create { path: PathBuf, source: io::Error },
    #[error("writing output failed")]
    Write(#[from] io::Error),
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Counters summed over every sink.
#[derive(Debug, Default)]
pub struct WriterCounters {
    pub batches_written: AtomicU64,
    pub events_written: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Events dropped at a full queue or spool, live.
    pub events_dropped: AtomicU64,
    pub batches_dropped: AtomicU64,
    /// Events a sink could not deliver (set at the end).
    pub events_failed: AtomicU64,
}

/// A handle the workers and the stats thread share. Cheap to clone.
#[derive(Clone)]
pub struct BatchSender {
    factory: Arc<Factory>,
    counters: Arc<WriterCounters>,
}

impl BatchSender {
    /// A worker's own output handle.
    pub fn worker(&self) -> WorkerOutput {
        self.factory.handle()
    }

    /// Hands over `buf` (one native `stats` line, or several lines) to every
    /// sink that takes stats, and clears it.
    pub fn submit(&self, buf: &mut Vec<u8>, _events: u64) {
        self.factory.begin();
        if buf.is_empty() {
            return;
        }
        let mut w = self.factory.handle();
        for line in buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            w.push_stats(line_ts(line), line);
        }
        w.flush(true);
        buf.clear();
    }

    pub fn counters(&self) -> &Arc<WriterCounters> {
        &self.counters
    }

    /// Whether a sink's reader closed its pipe (`flowtap ... -o - | head`):
    /// the run should stop reading input, as any Unix tool does.
    pub fn reader_gone(&self) -> bool {
        self.factory.reader_gone().is_some()
    }

    /// Waits (at most `limit`) until every sink dealt with every event
    /// handed over so far (see [`Factory::settle`]), e.g. before the final
    /// `stats` event reads their counters.
    pub fn settle(&self, limit: std::time::Duration) -> bool {
        self.factory.settle(limit)
    }

    /// A reader of every sink's counters (queue depth, sent, dropped, ...).
    pub fn probe(&self) -> OutputsProbe {
        self.factory.probe()
    }
}

/// The `timestamp` of a native line, in ns (0 when absent).
fn line_ts(line: &[u8]) -> u64 {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
        return 0;
    };
    v.get("timestamp")
        .and_then(|t| t.as_str())
        .and_then(parse_rfc3339_ns)
        .unwrap_or(0)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` / `+0000`.
pub fn parse_rfc3339_ns(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 19 {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut frac_ns = 0u64;
    if b.get(19) == Some(&b'.') {
        let digits: String = s[20..].chars().take_while(|c| c.is_ascii_digit()).collect();
        let mut v: u64 = digits.parse().ok()?;
        for _ in digits.len()..9 {
            v *= 10;
        }
        frac_ns = v;
    }
    // days from civil (Howard Hinnant)
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs)
        .ok()
        .map(|s| s * 1_000_000_000 + frac_ns)
}

/// Owns the sink threads; join it after every sender and worker handle is gone.
pub struct LineWriter {
    outputs: Outputs,
    counters: Arc<WriterCounters>,
}

impl LineWriter {
    /// One native JSON-lines sink to `dest` (the classic single output).
    pub fn spawn(
        dest: &Destination,
        queue_batches: usize,
        policy: WhenFull,
    ) -> Result<(LineWriter, BatchSender), WriterError> {
        let kind = match dest {
            Destination::Stdout => SinkKind::Stdout,
            Destination::File(p) => SinkKind::File(FileSpec::plain(p.clone())),
        };
        let mut spec = SinkSpec::new(kind);
        spec.queue_batches = queue_batches.max(1);
        LineWriter::start(
            vec![spec],
            EncodeOptions::default(),
            Volume::default(),
            policy,
        )
    }

    /// Starts the given sinks; `policy` applies to those that set none.
    pub fn start(
        specs: Vec<SinkSpec>,
        opts: EncodeOptions,
        volume: Volume,
        policy: WhenFull,
    ) -> Result<(LineWriter, BatchSender), WriterError> {
        let counters = Arc::new(WriterCounters::default());
        let outputs =
            Outputs::start_with(specs, opts, volume, policy, Some(Arc::clone(&counters)))?;
        let sender = BatchSender {
            factory: Arc::new(outputs.factory()),
            counters: Arc::clone(&counters),
        };
        Ok((LineWriter { outputs, counters }, sender))
    }

    pub fn counters(&self) -> &Arc<WriterCounters> {
        &self.counters
    }

    pub fn outputs(&self) -> &Outputs {
        &self.outputs
    }

    /// Waits until every sender is gone and every sink delivered its events;
    /// returns each sink's final counters.
    pub fn join(self) -> Result<Vec<SinkSnapshot>, WriterError> {
        let snaps = self.outputs.finish()?;
        let c = &self.counters;
        for s in &snaps {
            c.batches_written
                .fetch_add(s.batches_sent, Ordering::Relaxed);
            c.events_written.fetch_add(s.events_sent, Ordering::Relaxed);
            c.bytes_written.fetch_add(s.bytes_sent, Ordering::Relaxed);
            c.events_failed
                .fetch_add(s.events_failed, Ordering::Relaxed);
        }
        Ok(snaps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_line_in_order() {
        let dir = std::env::temp_dir().join(format!("flowtap-writer-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("out.json");
        let (writer, sender) =
            LineWriter::spawn(&Destination::File(path.clone()), 2, WhenFull::Block).expect("spawn");
        let mut buf = Vec::with_capacity(64);
        for i in 0..100u64 {
            buf.extend_from_slice(format!("{{\"n\":{i}}}\n").as_bytes());
            sender.submit(&mut buf, 1);
            assert!(buf.is_empty());
        }
        drop(sender);
        let counters = Arc::clone(writer.counters());
        writer.join().expect("join");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 100);
        assert_eq!(lines[99], "{\"n\":99}");
        assert_eq!(counters.events_written.load(Ordering::Relaxed), 100);
        assert_eq!(counters.events_dropped.load(Ordering::Relaxed), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rfc3339_parses_back() {
        let ns = 1_405_687_770_592_064_000;
        let s = crate::json::format_rfc3339_micros(ns);
        assert_eq!(parse_rfc3339_ns(&s), Some(ns));
        assert_eq!(
            parse_rfc3339_ns("2014-07-18T12:49:30.592064+0000"),
            Some(ns)
        );
    }
}
