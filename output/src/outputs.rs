//! The seam between the workers and the sinks.
//!
//! [`Outputs::start`] spawns one thread per sink; [`Outputs::handle`] gives
//! each worker a [`WorkerOutput`], which encodes every event once per schema
//! among the sinks that want its type, straight into reused buffers, and
//! hands batches (bounded by events, bytes and age) to each sink's bounded
//! queue under that sink's when-full policy.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use dissect::event::{AppEnvelope, FlowRecord};

use crate::event::{EventType, TypeSet};
use crate::schema::{self, EncodeOptions, Schema};
use crate::sink::file::{FileSink, StdoutSink};
use crate::sink::gelf::{GelfTcp, GelfUdp};
#[cfg(feature = "kafka")]
use crate::sink::kafka::KafkaSink;
use crate::sink::runner::{Runner, GIVE_UP_AFTER};
use crate::sink::spool::Spool;
use crate::sink::syslog::{SyslogTcp, SyslogUdp};
use crate::sink::WhenFull;
use crate::sink::{Batch, SinkError, SinkKind, SinkSpec, Transport};

/// Errors starting or stopping the outputs.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("sink {name}")]
    Sink {
        name: String,
        #[source]
        source: SinkError,
    },
    #[error("sink {name}: invalid")]
    Spec {
        name: String,
        #[source]
        source: crate::sink::SpecError,
    },
    #[error("sink {0}: cannot start its thread")]
    Spawn(String),
    #[error("sink {0}: its thread panicked")]
    Panicked(String),
}

/// Per-type on/off and sampling of app-layer events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Volume {
    /// Types emitted at all.
    pub enabled: TypeSet,
    /// Keep 1 in N flows' events of each type (by flow id, so a sampled
    /// flow keeps all its events); 0 and 1 keep all. Indexed by [`EventType::index`].
    pub sample: [u32; EventType::COUNT],
}

impl Default for Volume {
    fn default() -> Self {
        Volume {
            enabled: TypeSet::ALL,
            sample: [1; EventType::COUNT],
        }
    }
}

impl Volume {
    fn keep(&self, t: EventType, flow_id: u64) -> bool {
        if !self.enabled.contains(t) {
            return false;
        }
        let n = self.sample.get(t.index()).copied().unwrap_or(1);
        n <= 1 || mix(flow_id).is_multiple_of(u64::from(n))
    }
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

pub use crate::sink::SinkCounters;

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

/// A sink's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkSnapshot {
    pub name: String,
    pub kind: &'static str,
    pub schema: &'static str,
    /// Batches waiting in the queue.
    pub queue_batches: u64,
    pub queue_capacity: u64,
    pub events_queued: u64,
    pub events_sent: u64,
    pub bytes_sent: u64,
    pub batches_sent: u64,
    pub events_failed: u64,
    pub events_dropped: u64,
    pub events_dropped_spool_full: u64,
    pub events_spooled: u64,
    pub events_unspooled: u64,
    pub spool_bytes: u64,
    pub spool_events: u64,
    pub reconnects: u64,
    pub connect_failures: u64,
    pub up: bool,
    /// The reader closed this sink's pipe (see [`SinkCounters::reader_gone`]).
    pub reader_gone: bool,
}

impl SinkSnapshot {
    /// Events of this sink that are lost for good: dropped at a full queue
    /// or a full spool, or failed (datagram errors, shutdown give-up).
    /// Events still in the spool are not lost (the next run replays them).
    pub fn events_lost(&self) -> u64 {
        self.events_dropped + self.events_dropped_spool_full + self.events_failed
    }

    /// The one-line summary printed at the end of a run.
    pub fn summary_line(&self) -> String {
        format!(
            "sink {} ({}, {}): sent {} · dropped {} (queue full {} · spool full {} · failed {}) · spooled {} · replayed {} · left in spool {} · reconnects {} · connect failures {}",
            self.name,
            self.kind,
            self.schema,
            self.events_sent,
            self.events_lost(),
            self.events_dropped,
            self.events_dropped_spool_full,
            self.events_failed,
            self.events_spooled,
            self.events_unspooled,
            self.spool_events,
            self.reconnects,
            self.connect_failures
        )
    }
}

struct SinkRuntime {
    spec: SinkSpec,
    /// Set when the run ends, so that a sink holding a batch for a
    /// collector that is down stops waiting for more and starts its grace.
    closing: Arc<AtomicBool>,
    tx: Sender<Batch>,
    pool: Receiver<Batch>,
    counters: Arc<SinkCounters>,
    handle: JoinHandle<Result<(), SinkError>>,
}

/// A sink whose queue was closed (at the end, or retired by a reload).
struct Ended {
    spec: SinkSpec,
    counters: Arc<SinkCounters>,
    handle: Option<JoinHandle<Result<(), SinkError>>>,
}

/// What [`Outputs::reconfigure`] did, by sink name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkChanges {
    /// Unchanged and still running.
    pub kept: Vec<String>,
    /// New or changed: started now.
    pub started: Vec<String>,
    /// No longer configured (or changed): ending once the old handles go.
    pub retired: Vec<String>,
}

/// A sink opened but not started yet.
struct Opened {
    spec: SinkSpec,
    counters: Arc<SinkCounters>,
    transport: Box<dyn Transport>,
    spool: Option<Spool>,
}

/// `base`, or `base-2`, `base-3`, ... : the first not in `names`.
fn unique_name(names: &[String], base: &str) -> String {
    if !names.iter().any(|n| n == base) {
        return base.to_string();
    }
    let mut i = 2;
    while names.contains(&format!("{base}-{i}")) {
        i += 1;
    }
    format!("{base}-{i}")
}

/// Makes sink names unique (`file`, `file-2`, ...) and gives each the
/// default when-full policy if it sets none.
fn unique_names(specs: Vec<SinkSpec>, default_when_full: WhenFull) -> Vec<SinkSpec> {
    let mut names: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(specs.len());
    for mut spec in specs {
        spec.name = unique_name(&names, &spec.name);
        names.push(spec.name.clone());
        spec.when_full.get_or_insert(default_when_full);
        out.push(spec);
    }
    out
}

/// Whether a running sink (`running`, named when it started) is what
/// `wanted` asks for: the same spec, under the name asked for or the one
/// made unique from it (`file-2` for `file`).
fn same_sink(running: &SinkSpec, wanted: &SinkSpec) -> bool {
    let named = running.name == wanted.name
        || running
            .name
            .strip_prefix(wanted.name.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| n.parse::<u32>().is_ok());
    named
        && SinkSpec {
            name: wanted.name.clone(),
            ..running.clone()
        } == *wanted
}

/// Validates a spec and opens its transport and spool.
fn open_sink(spec: SinkSpec, opts: &EncodeOptions, append: bool) -> Result<Opened, OutputError> {
    spec.validate().map_err(|source| OutputError::Spec {
        name: spec.name.clone(),
        source,
    })?;
    let counters = Arc::new(SinkCounters::default());
    let transport = transport(&spec, opts, &counters, append)?;
    let spool = match &spec.spool {
        Some(s) => Some(
            Spool::open(&s.dir, &spec.name, s.max_bytes, s.perms).map_err(|source| {
                OutputError::Sink {
                    name: spec.name.clone(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    Ok(Opened {
        spec,
        counters,
        transport,
        spool,
    })
}

/// Starts an opened sink's thread.
fn spawn_sink(o: Opened, begun: &Arc<AtomicBool>) -> Result<SinkRuntime, OutputError> {
    let Opened {
        spec,
        counters,
        transport,
        spool,
    } = o;
    let (tx, rx) = bounded::<Batch>(spec.queue_batches);
    let (pool_tx, pool_rx) = bounded::<Batch>(spec.queue_batches + 8);
    let closing = Arc::new(AtomicBool::new(false));
    let runner = Runner {
        closing: Arc::clone(&closing),
        name: spec.name.clone(),
        transport,
        rx,
        pool: pool_tx,
        counters: Arc::clone(&counters),
        spool,
        grace: GIVE_UP_AFTER,
        give_up: (spec.when_full == Some(WhenFull::Block)).then_some(GIVE_UP_AFTER),
        begun: Arc::clone(begun),
        started: false,
        spool_failing: 0,
    };
    let handle = std::thread::Builder::new()
        .name(format!("sink-{}", spec.name))
        .spawn(move || runner.run())
        .map_err(|_| OutputError::Spawn(spec.name.clone()))?;
    Ok(SinkRuntime {
        spec,
        closing,
        tx,
        pool: pool_rx,
        counters,
        handle,
    })
}

/// The running sinks.
pub struct Outputs {
    sinks: Vec<SinkRuntime>,
    opts: Arc<EncodeOptions>,
    volume: Volume,
    agg: Option<Arc<WriterCounters>>,
    /// Set once the run hands over its first batch (see [`Factory::begin`]).
    begun: Arc<AtomicBool>,
    default_when_full: WhenFull,
    /// Sinks a reload removed: joined by [`Outputs::finish`].
    retired: Vec<Ended>,
}

/// A sink as a [`Factory`] holds it.
type SinkEnds = (SinkSpec, Sender<Batch>, Receiver<Batch>, Arc<SinkCounters>);

/// What a [`WorkerOutput`] is made from; holds the sinks' queue senders,
/// so drop every factory before [`Outputs::finish`].
pub struct Factory {
    sinks: Vec<SinkEnds>,
    opts: Arc<EncodeOptions>,
    volume: Volume,
    agg: Option<Arc<WriterCounters>>,
    begun: Arc<AtomicBool>,
}

impl Factory {
    /// Marks the run as begun: a sink that has not started yet (a plain
    /// output file is emptied when it starts) starts at the end even if it
    /// got no event. Until then a run that fails to start leaves every
    /// output as it was.
    pub fn begin(&self) {
        if !self.begun.load(Ordering::Relaxed) {
            self.begun.store(true, Ordering::Relaxed);
        }
    }

    /// A reader of the sinks' counters (for the stats and metrics).
    pub fn probe(&self) -> OutputsProbe {
        OutputsProbe {
            sinks: self
                .sinks
                .iter()
                .map(|(spec, _, _, counters)| (spec.clone(), Arc::clone(counters)))
                .collect(),
        }
    }

    /// The name of a sink whose reader closed its pipe, if any: the run
    /// should stop reading input.
    pub fn reader_gone(&self) -> Option<&str> {
        self.sinks
            .iter()
            .find(|(_, _, _, c)| c.reader_gone.load(Ordering::Relaxed))
            .map(|(spec, _, _, _)| spec.name.as_str())
    }

    /// Waits (at most `limit`) until every sink has dealt with every event
    /// queued to it so far: sent, spooled, or counted as failed or dropped;
    /// a sink that is down is not waited for (its counters say where its
    /// events are). Returns whether they all had. Counters read afterwards
    /// include them.
    pub fn settle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
            let done = self.sinks.iter().all(|(_, _, _, c)| {
                let queued = l(&c.events_queued);
                let handled = l(&c.events_sent).saturating_sub(l(&c.events_unspooled))
                    + l(&c.events_spooled)
                    + l(&c.events_dropped_spool_full)
                    + l(&c.events_failed);
                // Down = tried and failed. A sink that has not tried yet
                // (it connects when its first batch arrives) is waited for.
                let down = l(&c.up) == 0
                    && (l(&c.connect_failures) > 0 || c.reader_gone.load(Ordering::Relaxed));
                down || (handled >= queued && l(&c.batches_dequeued) >= l(&c.batches_enqueued))
            });
            if done {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A handle for one worker (or the stats thread).
    pub fn handle(&self) -> WorkerOutput {
        let ports: Vec<Port> = self
            .sinks
            .iter()
            .map(|(spec, tx, pool, counters)| Port {
                types: spec.types.intersect(supported(spec.schema)),
                schema: spec.schema,
                tx: tx.clone(),
                pool: pool.clone(),
                policy: spec.when_full.unwrap_or(WhenFull::DropNewest),
                max_events: spec.batch_events,
                max_bytes: spec.batch_bytes,
                max_age: spec.batch_age,
                batch: Batch::default(),
                first_at: None,
                counters: Arc::clone(counters),
                agg: self.agg.clone(),
                begun: Arc::clone(&self.begun),
            })
            .collect();
        WorkerOutput::new(ports, Arc::clone(&self.opts), self.volume)
    }
}

fn transport(
    spec: &SinkSpec,
    opts: &EncodeOptions,
    counters: &Arc<SinkCounters>,
    append: bool,
) -> Result<Box<dyn Transport>, OutputError> {
    let sink_err = |source| OutputError::Sink {
        name: spec.name.clone(),
        source,
    };
    Ok(match &spec.kind {
        SinkKind::Stdout => Box::new(StdoutSink::new()),
        SinkKind::File(f) if append => {
            Box::new(FileSink::open_appending(f.clone()).map_err(sink_err)?)
        }
        SinkKind::File(f) => Box::new(FileSink::open(f.clone()).map_err(sink_err)?),
        SinkKind::GelfUdp {
            addr,
            compress,
            chunk_size,
        } => Box::new(GelfUdp::new(addr, *compress, *chunk_size)),
        SinkKind::GelfTcp { addr, tcp } => Box::new(GelfTcp::new(addr, tcp).map_err(sink_err)?),
        SinkKind::SyslogUdp { addr } => Box::new(SyslogUdp::new(addr, opts.host())),
        SinkKind::SyslogTcp { addr, tcp } => {
            Box::new(SyslogTcp::new(addr, tcp, opts.host()).map_err(sink_err)?)
        }
        #[cfg(feature = "kafka")]
        SinkKind::Kafka {
            brokers,
            topic,
            properties,
        } => Box::new(
            KafkaSink::new(brokers, topic, properties, Arc::clone(counters)).map_err(sink_err)?,
        ),
        #[cfg(not(feature = "kafka"))]
        SinkKind::Kafka { .. } => {
            let _ = counters;
            return Err(sink_err(SinkError::Kafka(
                "this flowtap was built without the kafka feature".into(),
            )));
        }
    })
}

impl Outputs {
    /// Validates the specs, opens files, and starts one thread per sink.
    /// Sink names are made unique (`file`, `file-2`, ...).
    pub fn start(
        specs: Vec<SinkSpec>,
        opts: EncodeOptions,
        volume: Volume,
    ) -> Result<Outputs, OutputError> {
        Outputs::start_with(specs, opts, volume, WhenFull::DropNewest, None)
    }

    /// Like [`Outputs::start`]; drops are also added to `agg`.
    pub fn start_with(
        specs: Vec<SinkSpec>,
        opts: EncodeOptions,
        volume: Volume,
        default_when_full: WhenFull,
        agg: Option<Arc<WriterCounters>>,
    ) -> Result<Outputs, OutputError> {
        // Every sink is opened (files, spools, TLS files, Kafka settings)
        // before any starts: a sink that cannot be opened stops the start
        // with nothing written anywhere (a plain output file is emptied
        // only when its sink starts).
        let specs = unique_names(specs, default_when_full);
        let mut opened = Vec::with_capacity(specs.len());
        for spec in specs {
            opened.push(open_sink(spec, &opts, false)?);
        }
        let begun = Arc::new(AtomicBool::new(false));
        let mut sinks = Vec::with_capacity(opened.len());
        for o in opened {
            sinks.push(spawn_sink(o, &begun)?);
        }
        Ok(Outputs {
            sinks,
            opts: Arc::new(opts),
            volume,
            agg,
            begun,
            default_when_full,
            retired: Vec::new(),
        })
    }

    /// Changes the running sinks to `specs` (a configuration reload): a
    /// sink whose spec is unchanged keeps running untouched (its queue, its
    /// connection, its open file); a new or changed one is started; one no
    /// longer listed is retired: it ends once every handle made before is
    /// dropped, after delivering what it was given. Every new sink is opened
    /// before anything changes, so an error leaves the outputs as they were.
    /// A file sink started here appends to an existing file, never empties it.
    /// Returns what changed; take new handles with [`Outputs::factory`].
    pub fn reconfigure(
        &mut self,
        specs: Vec<SinkSpec>,
        opts: EncodeOptions,
        volume: Volume,
    ) -> Result<SinkChanges, OutputError> {
        let opts_changed = *self.opts != opts;
        // Each new spec: a running sink kept as it is, or one to start.
        enum Planned<T> {
            Keep(usize),
            Start(Box<T>),
        }
        let mut plan: Vec<Planned<SinkSpec>> = Vec::with_capacity(specs.len());
        let mut taken = vec![false; self.sinks.len()];
        for mut spec in specs {
            spec.when_full.get_or_insert(self.default_when_full);
            // Sinks encode with the shared options: when they change, every
            // sink is restarted so that none writes with the old ones. A
            // kept sink keeps the name it was given (`file-2`, say).
            let keep = (!opts_changed)
                .then(|| {
                    self.sinks
                        .iter()
                        .enumerate()
                        .position(|(i, s)| !taken[i] && same_sink(&s.spec, &spec))
                })
                .flatten();
            match keep {
                Some(i) => {
                    taken[i] = true;
                    plan.push(Planned::Keep(i));
                }
                None => plan.push(Planned::Start(Box::new(spec))),
            }
        }
        // New sinks' names must not clash with the kept ones'; every new
        // sink is opened before anything changes.
        let mut names: Vec<String> = plan
            .iter()
            .filter_map(|p| match p {
                Planned::Keep(i) => Some(self.sinks[*i].spec.name.clone()),
                Planned::Start(_) => None,
            })
            .collect();
        let mut opened: Vec<Planned<Opened>> = Vec::with_capacity(plan.len());
        for p in plan {
            opened.push(match p {
                Planned::Keep(i) => Planned::Keep(i),
                Planned::Start(mut spec) => {
                    spec.name = unique_name(&names, &spec.name);
                    names.push(spec.name.clone());
                    Planned::Start(Box::new(open_sink(*spec, &opts, true)?))
                }
            });
        }
        let mut changes = SinkChanges::default();
        let mut old: Vec<Option<SinkRuntime>> = self.sinks.drain(..).map(Some).collect();
        let mut sinks = Vec::with_capacity(opened.len());
        let mut spawn_error = None;
        for p in opened {
            match p {
                Planned::Keep(i) => {
                    if let Some(rt) = old[i].take() {
                        changes.kept.push(rt.spec.name.clone());
                        sinks.push(rt);
                    }
                }
                Planned::Start(o) => {
                    let name = o.spec.name.clone();
                    match spawn_sink(*o, &self.begun) {
                        Ok(rt) => {
                            changes.started.push(name);
                            sinks.push(rt);
                        }
                        Err(e) => {
                            spawn_error.get_or_insert(e);
                        }
                    }
                }
            }
        }
        for rt in old.into_iter().flatten() {
            changes.retired.push(rt.spec.name.clone());
            rt.closing.store(true, Ordering::Relaxed);
            self.retired.push(Ended {
                spec: rt.spec,
                counters: rt.counters,
                handle: Some(rt.handle),
            });
        }
        self.sinks = sinks;
        self.opts = Arc::new(opts);
        self.volume = volume;
        match spawn_error {
            Some(e) => Err(e),
            None => Ok(changes),
        }
    }

    /// A handle for one worker (or the stats thread).
    pub fn handle(&self) -> WorkerOutput {
        self.factory().handle()
    }

    /// A detached maker of handles (see [`Factory`]).
    pub fn factory(&self) -> Factory {
        Factory {
            sinks: self
                .sinks
                .iter()
                .map(|s| {
                    (
                        s.spec.clone(),
                        s.tx.clone(),
                        s.pool.clone(),
                        Arc::clone(&s.counters),
                    )
                })
                .collect(),
            opts: Arc::clone(&self.opts),
            volume: self.volume,
            agg: self.agg.clone(),
            begun: Arc::clone(&self.begun),
        }
    }

    pub fn sink_names(&self) -> Vec<String> {
        self.sinks.iter().map(|s| s.spec.name.clone()).collect()
    }

    /// Every sink's counters now.
    pub fn snapshot(&self) -> Vec<SinkSnapshot> {
        self.sinks
            .iter()
            .map(|s| snapshot(&s.spec, &s.counters, s.tx.len()))
            .collect()
    }

    /// A cheap, clonable reader of the counters (for a metrics thread).
    pub fn probe(&self) -> OutputsProbe {
        OutputsProbe {
            sinks: self
                .sinks
                .iter()
                .map(|s| (s.spec.clone(), Arc::clone(&s.counters)))
                .collect(),
        }
    }

    /// Waits for every sink to deliver what it was given (every
    /// [`WorkerOutput`] must be dropped first) and returns the final counters.
    pub fn finish(self) -> Result<Vec<SinkSnapshot>, OutputError> {
        let mut out = Vec::with_capacity(self.sinks.len() + self.retired.len());
        let mut first_err = None;
        // Every sink starts its grace at once, then each is waited for.
        let mut ending = self.retired;
        for s in self.sinks {
            s.closing.store(true, Ordering::Relaxed);
            drop(s.tx);
            ending.push(Ended {
                spec: s.spec,
                counters: s.counters,
                handle: Some(s.handle),
            });
        }
        for mut s in ending {
            let r = s.handle.take().map(|h| h.join());
            out.push(snapshot(&s.spec, &s.counters, 0));
            let e = match r {
                None | Some(Ok(Ok(()))) => None,
                Some(Ok(Err(source))) => Some(OutputError::Sink {
                    name: s.spec.name.clone(),
                    source,
                }),
                Some(Err(_)) => Some(OutputError::Panicked(s.spec.name.clone())),
            };
            if first_err.is_none() {
                first_err = e;
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// Reads sink counters from any thread. Holds no end of the sinks' queues,
/// so a probe never keeps a sink running.
#[derive(Clone)]
pub struct OutputsProbe {
    sinks: Vec<(SinkSpec, Arc<SinkCounters>)>,
}

impl OutputsProbe {
    pub fn snapshot(&self) -> Vec<SinkSnapshot> {
        self.sinks
            .iter()
            .map(|(spec, c)| {
                let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
                let depth = l(&c.batches_enqueued).saturating_sub(l(&c.batches_dequeued));
                snapshot(spec, c, depth as usize)
            })
            .collect()
    }
}

fn snapshot(spec: &SinkSpec, c: &SinkCounters, depth: usize) -> SinkSnapshot {
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    SinkSnapshot {
        name: spec.name.clone(),
        kind: spec.kind.label(),
        schema: spec.schema.as_str(),
        queue_batches: depth as u64,
        queue_capacity: spec.queue_batches as u64,
        events_queued: l(&c.events_queued),
        events_sent: l(&c.events_sent),
        bytes_sent: l(&c.bytes_sent),
        batches_sent: l(&c.batches_sent),
        events_failed: l(&c.events_failed),
        events_dropped: l(&c.events_dropped),
        events_dropped_spool_full: l(&c.events_dropped_spool_full),
        events_spooled: l(&c.events_spooled),
        events_unspooled: l(&c.events_unspooled),
        spool_bytes: l(&c.spool_bytes),
        spool_events: l(&c.spool_events),
        reconnects: l(&c.reconnects),
        connect_failures: l(&c.connect_failures),
        up: l(&c.up) == 1,
        reader_gone: c.reader_gone.load(Ordering::Relaxed),
    }
}

fn supported(schema: Schema) -> TypeSet {
    let mut s = TypeSet::EMPTY;
    for t in EventType::all() {
        if schema.supports(t) {
            s.insert(t);
        }
    }
    s
}

/// One sink as a worker sees it.
struct Port {
    types: TypeSet,
    schema: Schema,
    tx: Sender<Batch>,
    pool: Receiver<Batch>,
    policy: WhenFull,
    max_events: usize,
    max_bytes: usize,
    max_age: Duration,
    batch: Batch,
    first_at: Option<Instant>,
    counters: Arc<SinkCounters>,
    agg: Option<Arc<WriterCounters>>,
    begun: Arc<AtomicBool>,
}

impl Port {
    fn submit(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let fresh = self.pool.try_recv().unwrap_or_else(|_| {
            Batch::with_capacity(
                self.max_bytes + (self.max_bytes >> 2),
                self.max_events.min(1 << 16),
            )
        });
        let full = std::mem::replace(&mut self.batch, fresh);
        let n = full.len() as u64;
        self.first_at = None;
        let rejected = match self.policy {
            WhenFull::Block => self.tx.send(full).err().map(|e| e.0),
            WhenFull::DropNewest => match self.tx.try_send(full) {
                Ok(()) => None,
                Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => Some(b),
            },
        };
        match rejected {
            None => {
                if !self.begun.load(Ordering::Relaxed) {
                    self.begun.store(true, Ordering::Relaxed);
                }
                self.counters
                    .batches_enqueued
                    .fetch_add(1, Ordering::Relaxed);
                self.counters.events_queued.fetch_add(n, Ordering::Relaxed);
            }
            Some(mut b) => {
                self.counters.events_dropped.fetch_add(n, Ordering::Relaxed);
                if let Some(a) = &self.agg {
                    a.events_dropped.fetch_add(n, Ordering::Relaxed);
                    a.batches_dropped.fetch_add(1, Ordering::Relaxed);
                }
                // Keep the grown buffers.
                b.clear();
                self.batch = b;
            }
        }
    }

    fn full(&self) -> bool {
        self.batch.len() >= self.max_events || self.batch.bytes.len() >= self.max_bytes
    }
}

/// Routing of one event type: per schema in use, the sinks that take it.
#[derive(Clone, Debug, Default)]
struct Route {
    groups: Vec<(Schema, Vec<usize>)>,
}

/// A worker's handle on the outputs. Not shared; one per worker.
pub struct WorkerOutput {
    ports: Vec<Port>,
    routes: [Route; EventType::COUNT],
    opts: Arc<EncodeOptions>,
    volume: Volume,
    scratch: Vec<u8>,
    /// Events encoded (once per event, whatever the number of schemas).
    pub encoded: u64,
    /// Events left out by the volume controls (type off or not sampled).
    pub filtered: u64,
    /// Events per type that went to at least one sink.
    pub by_type: [u64; EventType::COUNT],
}

impl WorkerOutput {
    fn new(ports: Vec<Port>, opts: Arc<EncodeOptions>, volume: Volume) -> WorkerOutput {
        let mut routes: [Route; EventType::COUNT] = std::array::from_fn(|_| Route::default());
        for t in EventType::all() {
            let r = &mut routes[t.index()];
            for (i, p) in ports.iter().enumerate() {
                if !p.types.contains(t) {
                    continue;
                }
                match r.groups.iter_mut().find(|(s, _)| *s == p.schema) {
                    Some((_, v)) => v.push(i),
                    None => r.groups.push((p.schema, vec![i])),
                }
            }
        }
        WorkerOutput {
            ports,
            routes,
            opts,
            volume,
            scratch: Vec::with_capacity(8192),
            encoded: 0,
            filtered: 0,
            by_type: [0; EventType::COUNT],
        }
    }

    /// A handle with no sinks: encodes nothing, counts events (benchmarks).
    pub fn discard() -> WorkerOutput {
        WorkerOutput::new(
            Vec::new(),
            Arc::new(EncodeOptions::default()),
            Volume::default(),
        )
    }

    /// Whether any sink takes events of this type.
    pub fn wants(&self, t: EventType) -> bool {
        !self.routes[t.index()].groups.is_empty() && self.volume.enabled.contains(t)
    }

    fn route(
        &mut self,
        t: EventType,
        ts_ns: u64,
        key: &[u8],
        mut encode: impl FnMut(Schema, &EncodeOptions, &mut Vec<u8>) -> bool,
    ) {
        let route = &self.routes[t.index()];
        if route.groups.is_empty() {
            return;
        }
        let mut any = false;
        for (schema, sinks) in &route.groups {
            // One sink with this schema (the usual case): encode straight
            // into its batch, no copy.
            if let [i] = sinks.as_slice() {
                let Some(p) = self.ports.get_mut(*i) else {
                    continue;
                };
                if p.batch.is_empty() {
                    p.first_at = None;
                }
                let start = p.batch.bytes.len();
                if !encode(*schema, &self.opts, &mut p.batch.bytes) {
                    p.batch.bytes.truncate(start);
                    continue;
                }
                any = true;
                p.batch.commit(t, ts_ns, key);
                if p.full() {
                    p.submit();
                }
                continue;
            }
            self.scratch.clear();
            if !encode(*schema, &self.opts, &mut self.scratch) {
                continue;
            }
            any = true;
            for &i in sinks {
                if let Some(p) = self.ports.get_mut(i) {
                    if p.batch.is_empty() {
                        p.first_at = None;
                    }
                    p.batch.bytes.extend_from_slice(&self.scratch);
                    p.batch.commit(t, ts_ns, key);
                    if p.full() {
                        p.submit();
                    }
                }
            }
        }
        if any {
            self.encoded += 1;
            self.by_type[t.index()] += 1;
        }
    }

    /// Queues a flow record for every sink that takes flows.
    pub fn push_flow(&mut self, rec: &FlowRecord) {
        if !self.volume.keep(EventType::Flow, rec.flow_id) {
            self.filtered += 1;
            return;
        }
        self.route(
            EventType::Flow,
            rec.end_ns,
            rec.community_id.as_bytes(),
            |s, o, buf| {
                schema::encode_flow(s, o, rec, buf);
                true
            },
        );
    }

    /// Queues an application-layer event. Never inlined: one call per event
    /// costs nothing, and the benchmark's "encode app events" stage is
    /// this function's inclusive cost (inlined, it has none to measure).
    #[inline(never)]
    pub fn push_app(&mut self, env: &AppEnvelope<'_>) {
        let t = schema::app_type(env);
        if !self.volume.keep(t, env.flow_id) {
            self.filtered += 1;
            return;
        }
        self.route(t, env.ts_ns, env.community_id.as_bytes(), |s, o, buf| {
            schema::encode_app(s, o, env, buf)
        });
    }

    /// Queues a `stats` event.
    pub fn push_stats(&mut self, ev: &crate::event::StatsEvent) {
        if !self.volume.enabled.contains(EventType::Stats) {
            return;
        }
        self.route(EventType::Stats, ev.ts_ns, b"", |s, o, buf| {
            schema::encode_stats(s, o, ev, buf)
        });
    }

    /// Queues a `pcap` event (a finished export file).
    pub fn push_pcap(&mut self, ev: &crate::event::PcapEvent<'_>) {
        if !self.volume.enabled.contains(EventType::Pcap) {
            self.filtered += 1;
            return;
        }
        let key = ev.community_id.unwrap_or(ev.path);
        self.route(EventType::Pcap, ev.ts_ns, key.as_bytes(), |s, o, buf| {
            schema::encode_pcap(s, o, ev, buf)
        });
    }

    /// Hands batches over: all non-empty ones when `force`, else those
    /// past their age limit. Call once per packet batch.
    pub fn flush(&mut self, force: bool) {
        let mut now = None;
        for p in &mut self.ports {
            if p.batch.is_empty() {
                continue;
            }
            if force {
                p.submit();
                continue;
            }
            let now = *now.get_or_insert_with(Instant::now);
            match p.first_at {
                None => p.first_at = Some(now),
                Some(t) if now.duration_since(t) >= p.max_age => p.submit(),
                Some(_) => {}
            }
        }
    }
}

impl Drop for WorkerOutput {
    fn drop(&mut self) {
        self.flush(true);
    }
}
