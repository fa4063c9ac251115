//! The loop on each sink's thread: take batches from the queue, send them,
//! reconnect with backoff when the collector is gone, and meanwhile either
//! spool to disk (when configured) or hold the batch, which lets the queue
//! fill so that the workers' when-full policy decides (drop and count, or
//! wait). A sink that is down never blocks another sink's thread.
//!
//! An outage is reported once, with the OS reason, when it starts, and once
//! when it ends (with the number of failed attempts); retries double from
//! 0.1 s to 5 s. When the workers wait for this sink (`when_full = block`,
//! replay) and it stays down for [`GIVE_UP_AFTER`], it gives up: its events
//! are counted as failed until it is back, so a replay never waits forever.
//! A reader that closed standard output ends the sink for good: what is
//! left is counted as failed and the run is told to stop
//! ([`SinkCounters::reader_gone`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::batch::Batch;
use super::spool::Spool;
use super::SinkCounters;
use super::{error_chain, SinkError, Transport};

const TICK: Duration = Duration::from_millis(50);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long the workers may wait for a sink that is down (when_full =
/// block) before it gives up on its events; also the time a sink gets at
/// the end of a run to deliver what is left.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

pub(crate) struct Runner {
    pub name: String,
    pub transport: Box<dyn Transport>,
    pub rx: Receiver<Batch>,
    pub pool: Sender<Batch>,
    pub counters: Arc<SinkCounters>,
    pub spool: Option<Spool>,
    /// How long to keep trying to deliver after the queue closed.
    pub grace: Duration,
    /// The workers wait when the queue is full (when_full = block): give
    /// up after this long down instead of holding them forever.
    pub give_up: Option<Duration>,
    /// Set once the run handed over its first batch (to any sink).
    pub begun: Arc<AtomicBool>,
    /// Whether [`Transport::start`] ran (before the first send, or at the
    /// end of a run that began).
    pub started: bool,
    /// Spool writes failed in a row (said once).
    pub spool_failing: u64,
    /// Set when the run ends (the queue is closed or about to be).
    pub closing: Arc<AtomicBool>,
}

struct Link {
    up: bool,
    next_try: Instant,
    backoff: Duration,
    reported_down: bool,
    /// When the current outage started.
    down_since: Option<Instant>,
    /// Failed attempts to get back, this outage.
    failures: u64,
    /// Down past the give-up time: events are counted failed until back.
    gave_up: bool,
    /// The reader closed the pipe: nothing more can be delivered.
    gone: bool,
}

impl Link {
    fn new() -> Link {
        Link {
            up: false,
            next_try: Instant::now(),
            backoff: BACKOFF_MIN,
            reported_down: false,
            down_since: None,
            failures: 0,
            gave_up: false,
            gone: false,
        }
    }
}

impl Runner {
    fn recycle(&self, mut b: Batch) {
        b.clear();
        let _ = self.pool.try_send(b);
    }

    /// Counts events the transport found lost (committed to a connection
    /// that died before taking them whole).
    fn count_lost(&mut self) {
        let lost = self.transport.take_lost();
        if lost > 0 {
            self.counters
                .events_failed
                .fetch_add(lost, Ordering::Relaxed);
            eprintln!(
                "flowtap: sink {}: {lost} event(s) lost with a stalled connection that broke",
                self.name
            );
        }
    }

    /// Connects if down and the backoff allows; returns whether up.
    fn ensure_up(&mut self, link: &mut Link) -> bool {
        if link.gone {
            return false;
        }
        if link.up {
            if !self.transport.peer_closed() {
                return true;
            }
            self.count_lost();
            self.went_down(link, None);
        }
        let now = Instant::now();
        if now < link.next_try {
            return false;
        }
        let connected = self.transport.connect();
        self.count_lost();
        match connected {
            Ok(()) => {
                if link.reported_down {
                    let secs = link.down_since.map_or(0.0, |t| t.elapsed().as_secs_f64());
                    eprintln!(
                        "flowtap: sink {}: back after {secs:.1} s down ({} failed attempt(s))",
                        self.name, link.failures
                    );
                    self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                link.up = true;
                link.reported_down = false;
                link.down_since = None;
                link.failures = 0;
                link.gave_up = false;
                link.backoff = BACKOFF_MIN;
                self.counters.up.store(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.counters
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                link.failures += 1;
                link.down_since.get_or_insert(now);
                if matches!(e, SinkError::ReaderGone(_)) {
                    self.reader_gone(link, &e);
                    return false;
                }
                if !link.reported_down {
                    eprintln!(
                        "flowtap: sink {}: {}; retrying (every 0.1 s doubling to 5 s)",
                        self.name,
                        error_chain(&e)
                    );
                    link.reported_down = true;
                }
                link.next_try = now + link.backoff;
                link.backoff = (link.backoff * 2).min(BACKOFF_MAX);
                false
            }
        }
    }

    /// The reader closed the pipe: said once, and the run is told to stop.
    fn reader_gone(&mut self, link: &mut Link, e: &SinkError) {
        link.up = false;
        self.counters.up.store(0, Ordering::Relaxed);
        if !link.gone {
            link.gone = true;
            self.counters.reader_gone.store(true, Ordering::Relaxed);
            eprintln!(
                "flowtap: sink {}: {e}; stopping the run (what is still queued for it is counted as failed)",
                self.name
            );
        }
    }

    fn went_down(&mut self, link: &mut Link, e: Option<&SinkError>) {
        if let Some(e @ SinkError::ReaderGone(_)) = e {
            self.reader_gone(link, e);
            return;
        }
        link.up = false;
        link.next_try = Instant::now();
        link.down_since.get_or_insert_with(Instant::now);
        self.counters.up.store(0, Ordering::Relaxed);
        if !link.reported_down {
            match e {
                Some(e) => eprintln!(
                    "flowtap: sink {}: {}; retrying (every 0.1 s doubling to 5 s)",
                    self.name,
                    error_chain(e)
                ),
                None => eprintln!(
                    "flowtap: sink {}: collector closed the connection; reconnecting",
                    self.name
                ),
            }
            link.reported_down = true;
        }
    }

    /// Sends `b` from `from`; returns the index reached (== len when done).
    fn try_send(&mut self, link: &mut Link, b: &Batch, mut from: usize) -> usize {
        self.start(link);
        while from < b.len() {
            if !self.ensure_up(link) {
                return from;
            }
            match self.transport.send(b, from) {
                Ok(()) => {
                    let n = (b.len() - from) as u64;
                    self.counters.events_sent.fetch_add(n, Ordering::Relaxed);
                    self.counters
                        .bytes_sent
                        .fetch_add(b.bytes_from(from).len() as u64, Ordering::Relaxed);
                    self.counters.batches_sent.fetch_add(1, Ordering::Relaxed);
                    return b.len();
                }
                Err(p) => {
                    let before = b.bytes_from(from).len();
                    from += p.sent;
                    let after = b.bytes_from(from).len();
                    self.counters
                        .events_sent
                        .fetch_add(p.sent as u64, Ordering::Relaxed);
                    self.counters
                        .bytes_sent
                        .fetch_add((before - after) as u64, Ordering::Relaxed);
                    if self.transport.lossy()
                        || matches!(p.error, SinkError::TooLarge(_) | SinkError::Rejected(_))
                    {
                        // A datagram that failed, or an event the collector
                        // can never take, is gone; count it, go on.
                        self.counters.events_failed.fetch_add(1, Ordering::Relaxed);
                        from += 1;
                    } else {
                        self.went_down(link, Some(&p.error));
                    }
                }
            }
        }
        from
    }

    fn spool_batch(&mut self, b: &Batch, from: usize) {
        let n = b.len().saturating_sub(from) as u64;
        if n == 0 {
            return;
        }
        let Some(sp) = &mut self.spool else {
            return;
        };
        match sp.push(b, from) {
            Ok(true) => {
                self.spool_failing = 0;
                self.counters.events_spooled.fetch_add(n, Ordering::Relaxed);
            }
            Ok(false) => {
                self.counters
                    .events_dropped_spool_full
                    .fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                // Said once while the spool keeps failing (e.g. its disk
                // is full), with the OS reason; every event counted.
                if self.spool_failing == 0 {
                    eprintln!(
                        "flowtap: sink {}: {}; events that cannot be spooled are counted as failed",
                        self.name,
                        error_chain(&e)
                    );
                }
                self.spool_failing += 1;
                self.counters.events_failed.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.update_spool_gauges();
    }

    fn update_spool_gauges(&self) {
        if let Some(sp) = &self.spool {
            self.counters
                .spool_bytes
                .store(sp.bytes(), Ordering::Relaxed);
            self.counters
                .spool_events
                .store(sp.events(), Ordering::Relaxed);
        }
    }

    /// A batch left the queue (its depth is queued minus taken).
    fn took_batch(&self) {
        self.counters
            .batches_dequeued
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Replays the spool while the collector is up; returns true when empty.
    fn drain_spool(&mut self, link: &mut Link, scratch: &mut Batch, skip: &mut usize) -> bool {
        loop {
            // Keep order: whatever is queued goes behind the spool.
            while let Ok(b) = self.rx.try_recv() {
                self.took_batch();
                self.spool_batch(&b, 0);
                self.recycle(b);
            }
            let Some(sp) = &mut self.spool else {
                return true;
            };
            if sp.is_empty() {
                return true;
            }
            match sp.peek(scratch) {
                Ok(true) => {}
                Ok(false) => return true,
                Err(e) => {
                    eprintln!("flowtap: sink {}: {e}", self.name);
                    return true;
                }
            }
            let b = std::mem::take(scratch);
            let reached = self.try_send(link, &b, *skip);
            if reached < b.len() {
                *skip = reached;
                *scratch = b;
                return false;
            }
            *skip = 0;
            if let Some(sp) = &mut self.spool {
                if let Err(e) = sp.pop(b.len(), b.bytes.len()) {
                    eprintln!("flowtap: sink {}: {e}", self.name);
                }
            }
            self.counters
                .events_unspooled
                .fetch_add(b.len() as u64, Ordering::Relaxed);
            self.update_spool_gauges();
            *scratch = b;
        }
    }

    /// The run began: the transport starts (a plain output file is
    /// emptied now, so a run that fails to start leaves it as it was).
    fn start(&mut self, link: &mut Link) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        if let Err(e) = self.transport.start() {
            self.went_down(link, Some(&e));
        }
    }

    /// Counts the events `from..` of `b` as failed (given up on).
    fn fail_rest(&self, b: &Batch, from: usize) {
        let n = b.len().saturating_sub(from) as u64;
        self.counters.events_failed.fetch_add(n, Ordering::Relaxed);
    }

    /// Whether a batch that cannot be delivered now is given up on at once
    /// (the reader is gone, or the sink gave up), rather than held.
    fn discarding(&mut self, link: &mut Link) -> bool {
        if link.gone || link.gave_up {
            return true;
        }
        let Some(after) = self.give_up else {
            return false;
        };
        if link.up || link.down_since.is_none_or(|t| t.elapsed() < after) {
            return false;
        }
        link.gave_up = true;
        eprintln!(
            "flowtap: sink {}: down for {} s while the workers wait for it; giving up on its events until it is back (counted as failed)",
            self.name,
            after.as_secs()
        );
        true
    }

    pub(crate) fn run(mut self) -> Result<(), SinkError> {
        let mut link = Link::new();
        self.ensure_up(&mut link);
        self.update_spool_gauges();
        let mut scratch = Batch::default();
        let mut skip = 0usize;
        let mut pending: Option<(Batch, usize)> = None;
        loop {
            if self.spool.as_ref().is_some_and(|s| !s.is_empty()) {
                if let Some((b, from)) = pending.take() {
                    self.spool_batch(&b, from);
                    self.recycle(b);
                }
                if self.drain_spool(&mut link, &mut scratch, &mut skip) {
                    continue;
                }
                // Down: keep spooling what arrives.
                match self.rx.recv_timeout(TICK) {
                    Ok(b) => {
                        self.took_batch();
                        self.spool_batch(&b, 0);
                        self.recycle(b);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                continue;
            }
            let (b, from) = match pending.take() {
                Some(p) => p,
                None => match self.rx.recv_timeout(TICK) {
                    Ok(b) => {
                        self.took_batch();
                        (b, 0)
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        if link.up {
                            if let Err(e) = self.transport.idle() {
                                self.went_down(&mut link, Some(&e));
                            }
                        } else if !link.gone {
                            // Retry (per the backoff) even with nothing new.
                            self.ensure_up(&mut link);
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            let reached = self.try_send(&mut link, &b, from);
            if reached >= b.len() {
                self.recycle(b);
                continue;
            }
            if self.spool.is_some() && !link.gone {
                self.spool_batch(&b, reached);
                self.recycle(b);
            } else if self.discarding(&mut link) {
                self.fail_rest(&b, reached);
                self.recycle(b);
            } else {
                // Hold it; the queue fills behind it.
                pending = Some((b, reached));
                std::thread::sleep(
                    TICK.min(link.next_try.saturating_duration_since(Instant::now())),
                );
                if self.closing.load(Ordering::Relaxed) {
                    // The run ended while the collector is down: what is
                    // still queued is handled within the grace time below.
                    break;
                }
            }
        }
        // The queue is closed: deliver what is left (the held batch, then
        // whatever is still queued) within the grace time; a sink that gave
        // up already gets one more try, one whose reader is gone none.
        let grace = if link.gave_up || link.gone {
            Duration::ZERO
        } else {
            self.grace
        };
        let deadline = Instant::now() + grace;
        if self.begun.load(Ordering::Relaxed) || !self.rx.is_empty() {
            self.start(&mut link);
        }
        loop {
            let spool_empty = self.spool.as_ref().is_none_or(Spool::is_empty);
            if pending.is_none() && spool_empty {
                match self.rx.try_recv() {
                    Ok(b) => pending = Some((b, 0)),
                    Err(_) => break,
                }
            }
            if self.spool.as_ref().is_some_and(|s| !s.is_empty()) {
                if let Some((b, from)) = pending.take() {
                    self.spool_batch(&b, from);
                    self.recycle(b);
                }
                if !self.drain_spool(&mut link, &mut scratch, &mut skip) {
                    if Instant::now() >= deadline {
                        // Stays on disk for the next run.
                        break;
                    }
                    std::thread::sleep(TICK);
                }
                continue;
            }
            let Some((b, from)) = pending.take() else {
                break;
            };
            let reached = self.try_send(&mut link, &b, from);
            if reached >= b.len() {
                self.recycle(b);
                continue;
            }
            if self.spool.is_some() && !link.gone {
                self.spool_batch(&b, reached);
                continue;
            }
            if link.gone || Instant::now() >= deadline {
                let mut lost = (b.len() - reached) as u64;
                while let Ok(q) = self.rx.try_recv() {
                    lost += q.len() as u64;
                }
                self.counters
                    .events_failed
                    .fetch_add(lost, Ordering::Relaxed);
                if !link.gone {
                    eprintln!(
                        "flowtap: sink {}: gave up on {lost} event(s) at shutdown",
                        self.name
                    );
                }
                break;
            }
            pending = Some((b, reached));
            std::thread::sleep(TICK);
        }
        let closed = self.transport.close();
        self.count_lost();
        let unwritten = self.transport.take_unwritten();
        if unwritten > 0 {
            // Counted as sent when the transport took them; they never
            // reached their destination.
            let c = &self.counters;
            let _ = c
                .events_sent
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(unwritten))
                });
            c.events_failed.fetch_add(unwritten, Ordering::Relaxed);
            let why = closed
                .as_ref()
                .err()
                .map(|e| error_chain(e))
                .unwrap_or_default();
            if !link.gone {
                eprintln!(
                    "flowtap: sink {}: {unwritten} event(s) could not be written at the end: {why}",
                    self.name
                );
            }
            return Ok(());
        }
        closed
    }
}
