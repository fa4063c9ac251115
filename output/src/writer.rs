//! The writer front end the engine has always used: [`LineWriter`] owns the
//! running sinks ([`Outputs`]) and [`BatchSender`] is a clonable handle from
//! which each worker gets its [`WorkerOutput`] (`BatchSender::worker`).
//! `submit_stats` hands over a `stats` event, which every sink
//! that takes stats gets in its own schema.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::outputs::{Factory, OutputError, Outputs, OutputsProbe, SinkSnapshot};
pub use crate::outputs::{SinkChanges, WriterCounters};
use crate::schema::EncodeOptions;
pub use crate::sink::WhenFull;
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

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("cannot create output file {path}")]
    Create { path: PathBuf, source: io::Error },
    #[error("writing output failed")]
    Write(#[from] io::Error),
    #[error(transparent)]
    Output(#[from] OutputError),
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

    /// Hands a `stats` event to every sink that takes stats (each writes it
    /// in its own schema).
    pub fn submit_stats(&self, ev: &crate::event::StatsEvent) {
        self.factory.begin();
        let mut w = self.factory.handle();
        w.push_stats(ev);
        w.flush(true);
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

    /// Changes the sinks, encoder options and volume controls of a running
    /// writer (see [`Outputs::reconfigure`]): unchanged sinks keep running,
    /// new ones start, removed ones end once the senders made before are
    /// all dropped. Returns the sender for the new set; on error nothing
    /// changed and the old senders go on as they were.
    pub fn reconfigure(
        &mut self,
        specs: Vec<SinkSpec>,
        opts: EncodeOptions,
        volume: Volume,
    ) -> Result<(BatchSender, SinkChanges), WriterError> {
        let changes = self.outputs.reconfigure(specs, opts, volume)?;
        let sender = BatchSender {
            factory: Arc::new(self.outputs.factory()),
            counters: Arc::clone(&self.counters),
        };
        Ok((sender, changes))
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
        for i in 0..100u64 {
            sender.submit_stats(&crate::event::StatsEvent {
                ts_ns: 1_000_000_000 * i,
                members: vec![("n".into(), crate::event::StatValue::Number(i))],
            });
        }
        drop(sender);
        let counters = Arc::clone(writer.counters());
        writer.join().expect("join");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 100);
        assert_eq!(
            lines[99],
            "{\"timestamp\":\"1970-01-01T00:01:39.000000Z\",\"event_type\":\"stats\",\"stats\":{\"n\":99}}"
        );
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
