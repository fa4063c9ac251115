//! Reload without restart (SIGHUP, `flowtap ctl reload`).
//!
//! A live capture keeps running through a reload: the workers never stop
//! polling, the flow tables and reassembly stay as they are, and only what
//! the new configuration changes is swapped:
//!
//! - outputs: unchanged sinks keep running (queue, connection, open file);
//!   added or changed ones start (appending to an existing file), removed
//!   ones end after delivering what they were given
//!   ([`output::writer::LineWriter::reconfigure`]); event types and sampling
//!   come with the new set;
//! - export rules: when `[export]` changed, a new export writer starts with
//!   the new rules; the files open under the old rules are finished (each
//!   with its `pcap` event) and every running flow is judged by the new
//!   rules at its next packet. When `[export]` is unchanged the open files
//!   are not touched;
//! - the capture pre-filter (`[capture.filter]`): the XDP program's maps are
//!   updated in place, no detach;
//! - the application metrics' label limits (`[app_metrics]`): each worker
//!   restarts its application metrics with the new section (a counter
//!   reset for Prometheus);
//! - anything else (workers, flow table, decode, capture source, the
//!   metrics address, ...) needs a restart: the reload applies the rest and
//!   says which settings wait for one.
//!
//! Every part that can fail is prepared before anything changes: a bad new
//! configuration (unreadable, invalid, a sink that cannot be opened, an
//! export directory missing) is refused with the error and the old one
//! keeps running.
//!
//! [`LiveHub`] is what the workers see: a generation number they check a
//! few times a second (one atomic load) and the current sender and export
//! run. [`Reloader`] owns the line writer and does the reload.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use capture::afxdp::PreFilter;
use output::writer::{BatchSender, LineWriter, SinkChanges, WriterError};

use crate::config::{Config, ConfigError};
use crate::export::{ExportRun, ExportStartError};
use crate::kpi::AppMetricsSection;
use crate::stats::Monitor;
use crate::worker::Worker;

/// How long a reload waits for every worker to take the new outputs.
const WORKERS_TAKE_OVER: Duration = Duration::from_secs(5);
/// How long a reload waits for the capture loop to update the pre-filter.
const FILTER_UPDATE: Duration = Duration::from_secs(5);

/// What the workers share with a reload.
#[derive(Clone, Default)]
struct Parts {
    sender: Option<BatchSender>,
    export: Option<Arc<ExportRun>>,
    /// Bumped when `export` changes (a worker then swaps its flow export).
    export_gen: u64,
    /// `[app_metrics]` as the workers count them (None: off).
    app_metrics: Option<Arc<AppMetricsSection>>,
    /// Bumped when `app_metrics` changes.
    metrics_gen: u64,
}

/// A pre-filter update waiting for the capture loop, and where its result goes.
type FilterRequest = (PreFilter, mpsc::Sender<Result<(), String>>);

/// The live parts a reload swaps, as the workers and the capture loop see them.
pub struct LiveHub {
    generation: AtomicU64,
    parts: Mutex<Parts>,
    /// The generation each pipeline worker runs with.
    acks: Mutex<Vec<Arc<AtomicU64>>>,
    filter: Mutex<Option<FilterRequest>>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveHub(generation {})", self.generation())
    }
}

/// A worker's view of the hub: what it runs with now.
#[derive(Debug)]
pub struct WorkerView {
    hub: Arc<LiveHub>,
    ack: Arc<AtomicU64>,
    generation: u64,
    export_gen: u64,
    metrics_gen: u64,
    index: u16,
}

impl WorkerView {
    /// Called a few times a second by a pipeline worker: when a reload
    /// published new parts, the worker takes them (new output handle; a new
    /// flow export if the export changed) and says so.
    #[inline]
    pub fn refresh(&mut self, w: &mut Worker) {
        let g = self.hub.generation.load(Ordering::Acquire);
        if g == self.generation {
            return;
        }
        let parts = self.hub.parts();
        w.replace_sender(parts.sender.clone());
        if parts.export_gen != self.export_gen {
            w.replace_export(
                parts.export.as_ref().map(|e| (e.rules(), e.handle())),
                self.index,
            );
            self.export_gen = parts.export_gen;
        }
        if parts.metrics_gen != self.metrics_gen {
            w.replace_app_metrics(parts.app_metrics.as_deref());
            self.metrics_gen = parts.metrics_gen;
        }
        self.generation = g;
        self.ack.store(g, Ordering::Release);
    }
}

impl LiveHub {
    /// The hub of a run that starts with `sender` and `export`.
    pub fn new(sender: Option<BatchSender>, export: Option<ExportRun>) -> Arc<LiveHub> {
        Arc::new(LiveHub {
            generation: AtomicU64::new(0),
            parts: Mutex::new(Parts {
                sender,
                export: export.map(Arc::new),
                export_gen: 0,
                app_metrics: None,
                metrics_gen: 0,
            }),
            acks: Mutex::new(Vec::new()),
            filter: Mutex::new(None),
        })
    }

    fn parts(&self) -> Parts {
        self.parts.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The sender of the current outputs.
    pub fn sender(&self) -> Option<BatchSender> {
        self.parts().sender
    }

    /// The current export run.
    pub fn export(&self) -> Option<Arc<ExportRun>> {
        self.parts().export
    }

    /// The view of pipeline worker number `index`, which starts with the
    /// current parts (take them with [`LiveHub::export`] and
    /// [`LiveHub::sender`] before spawning the workers).
    pub fn worker_view(self: &Arc<Self>, index: u16) -> WorkerView {
        let generation = self.generation();
        let ack = Arc::new(AtomicU64::new(generation));
        if let Ok(mut a) = self.acks.lock() {
            a.push(Arc::clone(&ack));
        }
        WorkerView {
            hub: Arc::clone(self),
            ack,
            generation,
            export_gen: self.parts.lock().map(|p| p.export_gen).unwrap_or(0),
            metrics_gen: self.parts.lock().map(|p| p.metrics_gen).unwrap_or(0),
            index,
        }
    }

    /// Publishes new parts; returns what they replaced. `export` and
    /// `app_metrics`: Some when they changed.
    fn publish(
        &self,
        sender: Option<BatchSender>,
        export: Option<Option<ExportRun>>,
        app_metrics: Option<Option<AppMetricsSection>>,
    ) -> Parts {
        let mut p = match self.parts.lock() {
            Ok(p) => p,
            Err(e) => e.into_inner(),
        };
        let old = p.clone();
        p.sender = sender;
        if let Some(e) = export {
            p.export = e.map(Arc::new);
            p.export_gen += 1;
        }
        if let Some(m) = app_metrics {
            p.app_metrics = m.map(Arc::new);
            p.metrics_gen += 1;
        }
        drop(p);
        self.generation.fetch_add(1, Ordering::AcqRel);
        old
    }

    /// Waits (at most `limit`) until every worker runs with generation `g`.
    fn wait_workers(&self, g: u64, limit: Duration) -> bool {
        let t0 = Instant::now();
        loop {
            let done = self
                .acks
                .lock()
                .map_or(true, |a| a.iter().all(|x| x.load(Ordering::Acquire) >= g));
            if done {
                return true;
            }
            if t0.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Asks the capture loop to put `filter` in the XDP program and waits
    /// (at most `limit`) for the result.
    pub fn request_filter(&self, filter: PreFilter, limit: Duration) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        if let Ok(mut g) = self.filter.lock() {
            *g = Some((filter, tx));
        }
        rx.recv_timeout(limit).unwrap_or_else(|_| {
            Err("the capture loop did not update the pre-filter in time".into())
        })
    }

    /// The capture loop's side of [`LiveHub::request_filter`].
    pub fn take_filter_request(&self) -> Option<FilterRequest> {
        self.filter.lock().ok().and_then(|mut g| g.take())
    }

    /// At the end of the run (every worker gone): the export run, to finish.
    pub fn take_export(&self) -> Option<ExportRun> {
        let e = self.parts.lock().ok().and_then(|mut p| p.export.take())?;
        Arc::try_unwrap(e).ok()
    }

    /// At the end of the run: drops the current sender (so the writer can end).
    pub fn release_sender(&self) {
        if let Ok(mut p) = self.parts.lock() {
            p.sender = None;
        }
    }
}

/// Why a reload was refused. The old configuration keeps running.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("output: {0}")]
    Outputs(#[source] WriterError),
    #[error("export: {0}")]
    Export(#[from] ExportStartError),
    #[error("capture.filter: {0}")]
    Filter(String),
    #[error("no configuration file to reload: the run was started without --config")]
    NoConfigFile,
    #[error("a reload is already running")]
    Busy,
    #[error("the capture is ending")]
    Ending,
}

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// The reload number (1 for the first).
    pub generation: u64,
    pub sinks: SinkChanges,
    /// `[export]` changed: a new export writer runs the new rules.
    pub export_changed: bool,
    /// `[capture.filter]` changed: the XDP program's maps were updated.
    pub filter_changed: bool,
    /// `[app_metrics]` changed: the workers count with the new limits
    /// (the application metrics start again from zero).
    pub app_metrics_changed: bool,
    /// Settings that changed in the file but need a restart (not applied).
    pub needs_restart: Vec<String>,
    /// Every worker took the new outputs before the reply.
    pub workers_took_over: bool,
}

impl ReloadReport {
    /// One line for the log.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "reload {}: sinks kept {:?}, started {:?}, retired {:?}; export {}; pre-filter {}",
            self.generation,
            self.sinks.kept,
            self.sinks.started,
            self.sinks.retired,
            if self.export_changed {
                "rules replaced"
            } else {
                "unchanged"
            },
            if self.filter_changed {
                "updated"
            } else {
                "unchanged"
            },
        );
        if self.app_metrics_changed {
            s.push_str("; app metrics restarted with the new limits");
        }
        if !self.needs_restart.is_empty() {
            s.push_str(&format!(
                "; not applied, need a restart: {}",
                self.needs_restart.join(", ")
            ));
        }
        if !self.workers_took_over {
            s.push_str("; some worker did not confirm the new outputs in time");
        }
        s
    }
}

/// The reloadable state of a live run; one reload at a time.
pub struct Reloader {
    path: Option<PathBuf>,
    /// The sinks were given on the command line (`--output`): a reload keeps them.
    cli_sinks: bool,
    hub: Arc<LiveHub>,
    monitor: Option<Arc<Monitor>>,
    inner: Mutex<Inner>,
}

struct Inner {
    writer: Option<LineWriter>,
    /// The configuration as read from the file last applied.
    file: Config,
    /// What runs: the file's reloadable parts, the start's others.
    running: Config,
    reloads: u64,
    /// Export runs a reload replaced, finishing their files.
    retired_exports: Vec<JoinHandle<Result<output::pcap::PcapSummary, output::pcap::PcapError>>>,
}

/// Top-level settings a reload cannot change, with their config names.
fn restart_only(a: &Config, b: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut diff = |name: &str, same: bool| {
        if !same {
            out.push(name.to_string());
        }
    };
    diff("workers", a.workers == b.workers);
    diff("memory_budget", a.memory_budget == b.memory_budget);
    diff("pin_workers", a.pin_workers == b.pin_workers);
    diff("decode", a.decode == b.decode);
    diff("flow", a.flow == b.flow);
    diff("defrag", a.defrag == b.defrag);
    diff("dedup", a.dedup == b.dedup);
    diff("stream", a.stream == b.stream);
    diff("app", a.app == b.app);
    let (mut ca, mut cb) = (a.capture.clone(), b.capture.clone());
    ca.filter = Default::default();
    cb.filter = Default::default();
    diff("capture (other than capture.filter)", ca == cb);
    diff(
        "output.metrics_listen",
        a.output.metrics_listen == b.output.metrics_listen,
    );
    diff(
        "output.stats_interval",
        a.output.stats_interval == b.output.stats_interval,
    );
    diff("control", a.control == b.control);
    out
}

/// The pre-filter `[capture.filter]` asks for.
pub fn pre_filter(cfg: &Config) -> Result<PreFilter, ConfigError> {
    let f = &cfg.capture.filter;
    Ok(PreFilter {
        drop_vlans: f.drop_vlans.clone(),
        drop_cidrs: f.cidrs()?,
        drop_ports: f.drop_ports.clone(),
        drop_protocols: f.drop_protocols.clone(),
        drop_unbound: false,
    })
}

impl Reloader {
    /// `file`: the configuration as read from `path` (before command-line
    /// overrides); `running`: what the run started with; `writer`: its
    /// outputs, whose sender (and export run) `hub` holds.
    pub fn new(
        path: Option<PathBuf>,
        cli_sinks: bool,
        file: Config,
        running: Config,
        writer: LineWriter,
        hub: Arc<LiveHub>,
        monitor: Option<Arc<Monitor>>,
    ) -> Reloader {
        Reloader {
            path,
            cli_sinks,
            hub,
            monitor,
            inner: Mutex::new(Inner {
                writer: Some(writer),
                file,
                running,
                reloads: 0,
                retired_exports: Vec::new(),
            }),
        }
    }

    pub fn hub(&self) -> &Arc<LiveHub> {
        &self.hub
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Reloads the configuration file. Refused (nothing changes) when
    /// another reload runs or the new configuration is bad.
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let mut inner = match self.inner.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::WouldBlock) => return Err(ReloadError::Busy),
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        };
        let path = self.path.as_ref().ok_or(ReloadError::NoConfigFile)?;
        let file = Config::load(path)?;
        let needs_restart = restart_only(&inner.file, &file);
        // What runs next: the reloadable parts of the file.
        let mut next = inner.running.clone();
        let keep_sinks = next.output.sinks.clone();
        let keep_path = next.output.path.clone();
        let (metrics_listen, stats_interval) = (
            next.output.metrics_listen.clone(),
            next.output.stats_interval,
        );
        next.output = file.output.clone();
        next.output.metrics_listen = metrics_listen;
        next.output.stats_interval = stats_interval;
        if self.cli_sinks {
            next.output.sinks = keep_sinks;
            next.output.path = keep_path;
        }
        next.export = file.export.clone();
        next.capture.filter = file.capture.filter.clone();
        next.app_metrics = file.app_metrics.clone();
        next.validate()?;

        // Everything that can fail, before anything changes.
        let specs = next.output.sink_specs(&[])?;
        let volume = next.output.volume()?;
        let opts = next.output.encode_options();
        let export_changed = next.export != inner.running.export;
        let new_export = if export_changed {
            ExportRun::check(&next.export, false)?;
            Some(ExportRun::start(&next.export, self.hub.sender(), false)?)
        } else {
            None
        };
        let filter_changed = next.capture.filter != inner.running.capture.filter;
        let app_metrics_changed = next.app_metrics != inner.running.app_metrics;
        // Application metrics have a reader only when /metrics is served.
        let app_metrics = app_metrics_changed
            .then(|| (!next.output.metrics_listen.is_empty()).then(|| next.app_metrics.clone()));
        let old_filter = pre_filter(&inner.running)?;
        if filter_changed {
            let f = pre_filter(&next)?;
            self.hub
                .request_filter(f, FILTER_UPDATE)
                .map_err(ReloadError::Filter)?;
        }
        let writer = inner.writer.as_mut().ok_or(ReloadError::Ending)?;
        let (sender, sinks) = match writer.reconfigure(specs, opts, volume) {
            Ok(r) => r,
            Err(e) => {
                if filter_changed {
                    let _ = self.hub.request_filter(old_filter, FILTER_UPDATE);
                }
                if let Some(Some(run)) = new_export {
                    let _ = run.finish();
                }
                return Err(ReloadError::Outputs(e));
            }
        };
        let old = self
            .hub
            .publish(Some(sender.clone()), new_export, app_metrics);
        let g = self.hub.generation();
        let workers_took_over = self.hub.wait_workers(g, WORKERS_TAKE_OVER);
        // The export writer (kept, or started above with the old sinks'
        // sender) sends its `pcap` events to the new sinks from now on.
        if let Some(run) = self.hub.export() {
            run.set_events(Some(sender.clone()));
            if let Some(m) = &self.monitor {
                m.watch_pcap(run.counters());
            }
        }
        if let Some(m) = &self.monitor {
            m.watch_sinks(sender.probe());
        }
        if export_changed {
            if let Some(run) = old.export {
                // Every worker dropped its handle on it (or will when it
                // ends): finish its files in the background.
                inner.retired_exports.push(std::thread::spawn(move || {
                    let run = wait_unique(run);
                    run.finish()
                }));
            }
        }
        drop(old.sender);
        inner.reloads += 1;
        inner.file = file;
        inner.running = next;
        Ok(ReloadReport {
            generation: inner.reloads,
            sinks,
            export_changed,
            filter_changed,
            app_metrics_changed,
            needs_restart,
            workers_took_over,
        })
    }

    /// At the end of the run: the line writer to join, after the export
    /// runs a reload replaced are finished (their errors, if any).
    pub fn finish(&self) -> (Option<LineWriter>, Vec<String>) {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(e) => e.into_inner(),
        };
        let mut errors = Vec::new();
        for h in inner.retired_exports.drain(..) {
            match h.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => errors.push(format!("{e:#}")),
                Err(_) => errors.push("an export writer replaced by a reload panicked".into()),
            }
        }
        (inner.writer.take(), errors)
    }

    /// The configuration running now.
    pub fn running(&self) -> Config {
        match self.inner.lock() {
            Ok(g) => g.running.clone(),
            Err(e) => e.into_inner().running.clone(),
        }
    }

    /// Reloads done so far.
    pub fn reloads(&self) -> u64 {
        self.inner.lock().map(|g| g.reloads).unwrap_or(0)
    }
}

/// Waits until `run` is no longer shared (the workers took their handles
/// and let go of the Arc right away, so this is short).
fn wait_unique(mut run: Arc<ExportRun>) -> ExportRun {
    loop {
        match Arc::try_unwrap(run) {
            Ok(r) => return r,
            Err(back) => {
                run = back;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
