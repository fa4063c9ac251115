//! Live capture: one pinned worker thread per AF_XDP queue or AF_PACKET
//! socket, each running a [`Worker`] to completion on the frames its source
//! lends it.
//!
//! - AF_XDP: the XDP program redirects every RX queue to its socket; one
//!   worker per queue. With `shard = "hardware"` a worker owns what its queue
//!   receives (symmetric RSS); with `"software"` frames move to their owner
//!   worker through bounded rings (dropped and counted when full).
//! - AF_PACKET: one TPACKET_V3 socket per worker in one fanout group (the
//!   kernel's symmetric flow hash spreads flows over the workers).
//! - DPDK (`dpdk` feature): one RX queue of the port per worker, the NIC's
//!   RSS with the symmetric key spreading flows; the port's own counters
//!   (imissed, rx_nombuf, ierrors, per queue) go to `capture.nic`.
//!
//! The receive path never blocks: the output queue drops (and counts) when
//! full (give [`run_live`] a [`BatchSender`] made with `WhenFull::DropNewest`).
//! Idle workers feed the wall clock to their flow table so flows time out on
//! a quiet link. When `stop` is set (SIGINT/SIGTERM) or the duration is over,
//! each worker drains its ring, ends every open flow at the current time and
//! the final `stats` event (with the kernel's per-queue counters merged into
//! its `capture` section) is written.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use capture::afpacket::{AfPacketConfig, AfPacketError, AfPacketSocket};
use capture::afxdp::{
    attached_prog_id, BusyPoll, Hop, PreFilter, Route, Shard, XdpCapture, XdpConfig, XdpError,
    XdpMode, XdpQueue, ZeroCopy,
};
use capture::worker::{self as cw, WorkerError};
use capture::{Packet, PacketSource, Poll};
use dissect::packet::Decoded;
use output::writer::{BatchSender, WhenFull};

use crate::config::{
    CaptureSource, Config, ConfigError, ShardSetting, XdpModeSetting, ZeroCopySetting,
};
use crate::flow::RecordSink;
use crate::shard::Owners;
use crate::stats::{CaptureStats, Monitor, Snapshot, WorkerStats};
use crate::worker::{EventBatch, Worker};

/// The when-full policy of live capture: never stall a receive core.
pub const LIVE_POLICY: WhenFull = WhenFull::DropNewest;

/// Frames taken from a source per poll.
const BATCH_PACKETS: usize = 256;
/// Empty polls before an idle worker sleeps in poll(2).
const SPIN_POLLS: u32 = 16;
/// Longest sleep of an idle worker (bounds the reaction to a stop).
const IDLE_WAIT_MS: i32 = 10;
/// Idle sleep in software shard mode: frames lent by another worker do not
/// wake the socket.
const IDLE_WAIT_SHARD_MS: i32 = 1;
/// Polls of the drain after a stop (each up to `BATCH_PACKETS` frames).
const DRAIN_POLLS: usize = 64;

/// Live capture errors. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Xdp(#[from] XdpError),
    #[error(transparent)]
    AfPacket(#[from] AfPacketError),
    #[cfg(feature = "dpdk")]
    #[error(transparent)]
    Dpdk(#[from] capture::dpdk::DpdkError),
    #[error("this flowtap was built without DPDK: rebuild with `cargo build --release --features dpdk` (needs dpdk-dev), or use --capture afxdp / afpacket")]
    NoDpdk,
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("no interface given: use --iface IF (or set capture.iface in the config)")]
    NoInterface,
    #[error("{iface} has {have} RX queue(s) but {want} workers were asked for: AF_XDP runs one worker per queue (use --workers {have}, or 0 for all queues, or add queues with `ethtool -L {iface} combined {want}`)")]
    TooFewQueues {
        iface: String,
        have: usize,
        want: usize,
    },
    #[error("an XDP program (id {id}) is already attached to {iface}: another capture is running on it (stop it first), or remove a leftover with `ip link set dev {iface} xdp off`")]
    XdpInUse { iface: String, id: u32 },
    #[error("cannot start a worker thread: {0}")]
    Spawn(io::Error),
    #[error("worker {0} stopped: {1}")]
    WorkerFailed(usize, String),
}

/// What to capture, beyond the configuration.
#[derive(Clone, Debug, Default)]
pub struct LiveOptions {
    pub iface: String,
    /// Workers (0 = AF_XDP: every RX queue; AF_PACKET: one per core).
    pub workers: usize,
    /// Stop after this long (else only on `stop`).
    pub duration: Option<Duration>,
    /// Only count frames (returned untouched): the capture ceiling.
    pub capture_only: bool,
    /// Where the counters are published for the metrics endpoint (the
    /// capture's own periodic `stats` events read the same snapshot).
    pub monitor: Option<Arc<Monitor>>,
    /// Reload without restart: the workers take their sender and export
    /// run from the hub, and follow what a reload publishes there; the
    /// capture loop serves its pre-filter updates (see [`crate::reload`]).
    /// The `sender` given to [`run_live`] then only lends its counters.
    pub hub: Option<Arc<crate::reload::LiveHub>>,
    /// Each worker also hands its records and app events, unencoded, to
    /// the sink this makes for it (`flowtap discover --iface`, the
    /// discovery sink of `flowtap run`).
    pub tap: Option<LiveTap>,
    /// Beaten by the supervising loop while the capture runs (the systemd
    /// watchdog reads it: see [`crate::service`]).
    pub heartbeat: Option<Arc<crate::service::Heartbeat>>,
}

/// Makes worker `i`'s tap (see [`LiveOptions::tap`]).
#[derive(Clone)]
pub struct LiveTap(pub Arc<dyn Fn(usize) -> Box<dyn RecordSink + Send> + Send + Sync>);

impl std::fmt::Debug for LiveTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveTap")
    }
}

/// What was opened, reported once every worker is running.
#[derive(Clone, Debug)]
pub struct LiveInfo {
    pub source: &'static str,
    pub iface: String,
    pub mode: String,
    pub workers: usize,
    pub capture_only: bool,
    /// Who the capture now runs as, if `capture.drop_user` is set.
    pub dropped_to: Option<cw::Dropped>,
}

/// Why the capture ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    Signal,
    Duration,
    WorkerFailed,
}

/// How a live capture ended.
#[derive(Debug)]
pub struct LiveSummary {
    pub stats: WorkerStats,
    pub capture: CaptureStats,
    pub per_worker: Vec<WorkerStats>,
    pub elapsed: Duration,
    pub workers: usize,
    pub cause: StopCause,
    /// A worker that ended early, and why (its flows were still flushed).
    pub worker_error: Option<LiveError>,
}

pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Kernel and ring counters of one queue / socket.
#[derive(Clone, Copy, Debug, Default)]
struct QueueCounters {
    received: u64,
    socket_dropped: u64,
    rx_ring_full: u64,
    fill_ring_empty: u64,
    shard_ring_full: u64,
    invalid: u64,
}

impl QueueCounters {
    fn add_to(&self, c: &mut CaptureStats) {
        c.received += self.received;
        c.socket_dropped += self.socket_dropped;
        c.rx_ring_full += self.rx_ring_full;
        c.fill_ring_empty += self.fill_ring_empty;
        c.shard_ring_full += self.shard_ring_full;
        c.invalid += self.invalid;
    }
}

/// A source a live worker can poll, sleep on, and read counters of.
trait LiveSource: PacketSource + Send + 'static {
    fn sleep_until_readable(&self, timeout_ms: i32);
    fn counters(&self) -> QueueCounters;

    /// (this worker's position, number of workers) when the worker must
    /// name the owner of each frame it receives (AF_XDP software shard).
    fn shard_position(&self) -> Option<(usize, usize)> {
        None
    }

    /// Polls a batch: `f` handles each frame and, for a [`Hop::Received`]
    /// one, may send it to its owner instead. A source that does not shard
    /// in software hands every frame over as [`Hop::Owned`].
    fn poll_routed<F>(&mut self, max: usize, mut f: F) -> Result<Poll, Self::Error>
    where
        F: FnMut(&Packet<'_>, Hop) -> Route,
    {
        self.poll_batch(max, |p| {
            let _ = f(p, Hop::Owned);
        })
    }
}

impl LiveSource for XdpQueue {
    fn sleep_until_readable(&self, timeout_ms: i32) {
        let _ = self.wait(timeout_ms);
    }

    fn shard_position(&self) -> Option<(usize, usize)> {
        XdpQueue::shard_position(self)
    }

    fn poll_routed<F>(&mut self, max: usize, f: F) -> Result<Poll, Self::Error>
    where
        F: FnMut(&Packet<'_>, Hop) -> Route,
    {
        XdpQueue::poll_routed(self, max, f)
    }

    fn counters(&self) -> QueueCounters {
        let s = self.stats();
        let k = self.socket_stats().unwrap_or_default();
        QueueCounters {
            received: s.received,
            socket_dropped: k.rx_dropped,
            rx_ring_full: k.rx_ring_full,
            fill_ring_empty: k.rx_fill_ring_empty_descs,
            shard_ring_full: s.ring_full,
            invalid: s.invalid,
        }
    }
}

impl LiveSource for AfPacketSocket {
    fn sleep_until_readable(&self, timeout_ms: i32) {
        let _ = self.wait(timeout_ms);
    }

    fn counters(&self) -> QueueCounters {
        let s = self.stats();
        QueueCounters {
            received: s.received,
            socket_dropped: s.kernel_dropped,
            shard_ring_full: s.ring_full,
            invalid: s.invalid,
            ..QueueCounters::default()
        }
    }
}

#[cfg(feature = "dpdk")]
impl LiveSource for capture::dpdk::DpdkQueue {
    /// A poll-mode queue has no descriptor to sleep on: an idle worker
    /// naps briefly (a 1024-descriptor ring holds ~100 us at 10 Mpps), so
    /// an idle capture does not burn a core.
    fn sleep_until_readable(&self, _timeout_ms: i32) {
        std::thread::sleep(DPDK_IDLE_NAP);
    }

    fn counters(&self) -> QueueCounters {
        QueueCounters {
            received: self.stats().received,
            ..QueueCounters::default()
        }
    }
}

/// How long an idle DPDK worker sleeps between empty bursts.
#[cfg(feature = "dpdk")]
const DPDK_IDLE_NAP: Duration = Duration::from_micros(50);

/// The DPDK settings of `cfg.capture` for `port`, `queues` and the budget.
#[cfg(feature = "dpdk")]
pub fn dpdk_config(cfg: &Config, port: &str, queues: u16) -> capture::dpdk::DpdkConfig {
    let d = &cfg.capture.dpdk;
    let mut x = capture::dpdk::DpdkConfig::new(port);
    x.eal_args = d.eal_args.clone();
    x.queues = queues;
    x.rx_descriptors = d.rx_descriptors;
    x.burst = d.burst;
    let budget = if cfg.memory_budget.0 == 0 {
        crate::budget::default_budget()
    } else {
        cfg.memory_budget.0
    };
    x.mbufs = d
        .mbufs_for(budget, usize::from(queues))
        .saturating_mul(u32::from(queues));
    x.mbuf_cache = d.mbuf_cache;
    x.promiscuous = d.promiscuous;
    x
}

/// The AF_XDP settings of `cfg.capture` for `iface` and `queues`.
pub fn xdp_config(cfg: &Config, iface: &str, queues: Option<Vec<u32>>) -> XdpConfig {
    let c = &cfg.capture;
    let mut x = XdpConfig::new(iface);
    x.queues = queues;
    x.mode = match c.xdp_mode {
        XdpModeSetting::Auto => XdpMode::Auto,
        XdpModeSetting::Native => XdpMode::Native,
        XdpModeSetting::Generic => XdpMode::Generic,
    };
    x.zero_copy = match c.zero_copy {
        ZeroCopySetting::Auto => ZeroCopy::Auto,
        ZeroCopySetting::On => ZeroCopy::On,
        ZeroCopySetting::Off => ZeroCopy::Off,
    };
    x.frames = c.umem_frames;
    x.frame_size = c.frame_size;
    x.rx_ring = c.rx_ring;
    x.fill_ring = c.fill_ring;
    x.need_wakeup = c.need_wakeup;
    x.busy_poll = (c.busy_poll_usecs > 0).then_some(BusyPoll {
        usecs: c.busy_poll_usecs,
        budget: c.busy_poll_budget,
    });
    x.shard = match c.shard {
        ShardSetting::Hardware => Shard::Hardware,
        ShardSetting::Software => Shard::Software { ring: c.shard_ring },
    };
    x
}

/// The AF_PACKET settings of `cfg.capture` for `iface`.
pub fn afpacket_config(cfg: &Config, iface: &str) -> AfPacketConfig {
    let c = &cfg.capture;
    let mut a = AfPacketConfig::new(iface);
    a.block_size = c.afpacket_block_size;
    a.block_count = c.afpacket_block_count;
    a.block_timeout_ms = c.afpacket_block_timeout_ms;
    a
}

fn sysfs(iface: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn rx_queue_count(iface: &str) -> usize {
    std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(0)
}

/// Shared by the main thread and one worker.
struct Slot {
    stats: Arc<Mutex<WorkerStats>>,
    queue: Arc<Mutex<QueueCounters>>,
}

struct WorkerSetup {
    index: usize,
    core: Option<usize>,
    sched_fifo: u8,
    idle_wait_ms: i32,
    capture_only: bool,
    halt: Arc<AtomicBool>,
    cfg: Arc<Config>,
    sender: Option<BatchSender>,
    stats_slot: Arc<Mutex<WorkerStats>>,
    queue_slot: Arc<Mutex<QueueCounters>>,
    /// PCAP export: the rules and this worker's handle (taken by the worker).
    export: Option<(Arc<crate::export::ExportRules>, output::pcap::PcapHandle)>,
    /// What a reload publishes (pipeline workers of a run with a hub).
    view: Option<crate::reload::WorkerView>,
    /// This worker's tap (taken by the worker).
    tap: Option<Box<dyn RecordSink + Send>>,
}

struct WorkerEnd {
    stats: WorkerStats,
    queue: QueueCounters,
    error: Option<String>,
}

const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// How often the main loop refreshes the capture counters the metrics show.
const CAPTURE_EVERY: Duration = Duration::from_secs(1);
/// A busy worker reads the clock once per this many batches.
const CLOCK_EVERY_BATCHES: u32 = 64;
/// Records waiting in a worker's batch are handed over at least this often.
const OUTPUT_EVERY: Duration = Duration::from_millis(200);

fn set_up_thread(s: &WorkerSetup) -> Result<(), WorkerError> {
    if let Some(c) = s.core {
        cw::pin_to_core(c)?;
    }
    if s.sched_fifo > 0 {
        cw::set_sched_fifo(i32::from(s.sched_fifo))?;
    }
    Ok(())
}

fn publish_queue<S: LiveSource>(src: &S, slot: &Mutex<QueueCounters>) {
    let q = src.counters();
    if let Ok(mut g) = slot.lock() {
        *g = q;
    }
}

/// The owner function of a worker that must route what it receives: its own
/// position and the run's [`Owners`] (decode settings, worker count).
type Routing = Option<(usize, Owners)>;

fn routing<S: LiveSource>(src: &S, cfg: &Config) -> Routing {
    src.shard_position()
        .map(|(me, n)| (me, Owners::new(cfg, n)))
}

/// One frame on a pipeline worker: a frame it received in software shard
/// mode is decoded once with the run's settings, which finds its owner; the
/// worker keeps it (and that decode) if it is the owner, else lends it.
#[inline]
fn handle(w: &mut Worker, routing: &Routing, p: &Packet<'_>, hop: Hop) -> Route {
    match (hop, routing) {
        (Hop::Received, Some((me, owners))) => {
            let mut d = Decoded::default();
            let owner = owners.decode_owner(p, &mut d);
            if owner != *me {
                return Route::To(owner);
            }
            w.process_decoded(p, &d);
        }
        _ => w.process(p),
    }
    Route::Here
}

/// The owner of a frame received in software shard mode, for a worker that
/// only counts frames.
fn count_route(routing: &Routing, p: &Packet<'_>, hop: Hop) -> Option<Route> {
    match (hop, routing) {
        (Hop::Received, Some((me, owners))) => {
            let owner = owners.decode_owner(p, &mut Decoded::default());
            (owner != *me).then_some(Route::To(owner))
        }
        _ => None,
    }
}

/// The full pipeline on one source until `halt`.
fn run_pipeline<S: LiveSource>(src: &mut S, s: &mut WorkerSetup) -> (WorkerStats, Option<String>) {
    let routing = routing(src, &s.cfg);
    let mut out = EventBatch::new(s.sender.take(), s.cfg.output.batch_bytes);
    if let Some(t) = s.tap.take() {
        out = out.with_tap(t);
    }
    let mut w = Worker::new(&s.cfg, out);
    w.publish_to(Arc::clone(&s.stats_slot));
    if let Some((rules, handle)) = s.export.take() {
        w.set_export(rules, handle, u16::try_from(s.index).unwrap_or(u16::MAX));
    }
    let mut idle = 0u32;
    let mut until_clock = CLOCK_EVERY_BATCHES;
    let mut next_publish = Instant::now() + PUBLISH_EVERY;
    let mut next_output = Instant::now() + OUTPUT_EVERY;
    let mut error = None;
    while !s.halt.load(Ordering::Relaxed) {
        match src.poll_routed(BATCH_PACKETS, |p, hop| handle(&mut w, &routing, p, hop)) {
            Ok(Poll::Packets(_)) => {
                w.end_batch();
                idle = 0;
                // Look at the clock every CLOCK_EVERY_BATCHES batches only.
                until_clock -= 1;
                if until_clock > 0 {
                    continue;
                }
                until_clock = CLOCK_EVERY_BATCHES;
            }
            Ok(Poll::Idle) => {
                w.tick(wall_ns());
                idle += 1;
                if idle >= SPIN_POLLS {
                    src.sleep_until_readable(s.idle_wait_ms);
                }
            }
            Ok(Poll::End) => break,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        let now = Instant::now();
        if now >= next_output {
            next_output = now + OUTPUT_EVERY;
            w.flush_output();
            if let Some(v) = &mut s.view {
                v.refresh(&mut w);
            }
        }
        if now >= next_publish {
            next_publish = now + PUBLISH_EVERY;
            publish_queue(src, &s.queue_slot);
        }
    }
    // Drain what is already in the ring, then end every flow now.
    for _ in 0..DRAIN_POLLS {
        match src.poll_routed(BATCH_PACKETS, |p, hop| handle(&mut w, &routing, p, hop)) {
            Ok(Poll::Packets(_)) => w.end_batch(),
            _ => break,
        }
    }
    (w.finish(wall_ns()), error)
}

/// Capture-only: count frames and bytes, hand the frames straight back.
fn run_count_only<S: LiveSource>(src: &mut S, s: &WorkerSetup) -> (WorkerStats, Option<String>) {
    let routing = routing(src, &s.cfg);
    let (mut pkts, mut bytes) = (0u64, 0u64);
    let mut idle = 0u32;
    let mut next_publish = Instant::now() + PUBLISH_EVERY;
    let mut error = None;
    let publish = |pkts: u64, bytes: u64| {
        let st = WorkerStats {
            received: pkts,
            bytes,
            uninspected: pkts,
            ..WorkerStats::default()
        };
        if let Ok(mut g) = s.stats_slot.lock() {
            *g = st.clone();
        }
        st
    };
    let mut count = |p: &Packet<'_>, hop: Hop| {
        if let Some(lend) = count_route(&routing, p, hop) {
            return lend;
        }
        pkts += 1;
        bytes += u64::from(p.orig_len);
        Route::Here
    };
    let mut until_clock = CLOCK_EVERY_BATCHES;
    while !s.halt.load(Ordering::Relaxed) {
        match src.poll_routed(BATCH_PACKETS, &mut count) {
            Ok(Poll::Packets(_)) => {
                idle = 0;
                until_clock -= 1;
                if until_clock > 0 {
                    continue;
                }
                until_clock = CLOCK_EVERY_BATCHES;
            }
            Ok(Poll::Idle) => {
                idle += 1;
                if idle >= SPIN_POLLS {
                    src.sleep_until_readable(s.idle_wait_ms);
                }
            }
            Ok(Poll::End) => break,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        if Instant::now() >= next_publish {
            next_publish = Instant::now() + PUBLISH_EVERY;
            publish_queue(src, &s.queue_slot);
        }
    }
    for _ in 0..DRAIN_POLLS {
        match src.poll_routed(BATCH_PACKETS, &mut count) {
            Ok(Poll::Packets(_)) => {}
            _ => break,
        }
    }
    (publish(pkts, bytes), error)
}

fn spawn_worker<S: LiveSource>(
    mut src: S,
    mut setup: WorkerSetup,
    ready: mpsc::Sender<(usize, Result<(), WorkerError>)>,
) -> Result<JoinHandle<WorkerEnd>, LiveError> {
    std::thread::Builder::new()
        .name(format!("flowtap-w{}", setup.index))
        .spawn(move || {
            let up = set_up_thread(&setup);
            let failed = up.is_err();
            let _ = ready.send((setup.index, up));
            drop(ready);
            if failed {
                return WorkerEnd {
                    stats: WorkerStats::default(),
                    queue: src.counters(),
                    error: None,
                };
            }
            let (stats, error) = if setup.capture_only {
                run_count_only(&mut src, &setup)
            } else {
                run_pipeline(&mut src, &mut setup)
            };
            let queue = src.counters();
            if let Ok(mut g) = setup.queue_slot.lock() {
                *g = queue;
            }
            WorkerEnd {
                stats,
                queue,
                error,
            }
        })
        .map_err(LiveError::Spawn)
}

/// The opened capture: kept alive (program attached) until the workers end.
enum Opened {
    Xdp(XdpCapture),
    Packet,
    #[cfg(feature = "dpdk")]
    Dpdk(capture::dpdk::DpdkPort),
}

impl Opened {
    /// A reload's new pre-filter, written into the attached program's maps.
    fn set_filter(&self, f: &PreFilter) -> Result<(), String> {
        match self {
            Opened::Xdp(cap) => cap.set_filter(f).map_err(|e| e.to_string()),
            Opened::Packet => {
                Err("the pre-filter runs in the XDP program: AF_PACKET capture has none".into())
            }
            #[cfg(feature = "dpdk")]
            Opened::Dpdk(_) => {
                Err("the pre-filter runs in the XDP program: DPDK capture has none".into())
            }
        }
    }

    /// The counters the source keeps for the whole capture: the XDP
    /// program's filter drops, or the DPDK port's own counters.
    fn add_filter_drops(&self, c: &mut CaptureStats) {
        #[cfg(feature = "dpdk")]
        if let Opened::Dpdk(port) = self {
            if let Some(s) = port.stats() {
                c.nic = Some(crate::stats::NicCounters {
                    rx_packets: s.rx_packets,
                    rx_bytes: s.rx_bytes,
                    imissed: s.imissed,
                    ierrors: s.ierrors,
                    rx_nombuf: s.rx_nombuf,
                    queues: s
                        .queues
                        .iter()
                        .map(|q| (q.packets, q.bytes, q.errors))
                        .collect(),
                });
            }
        }
        if let Opened::Xdp(cap) = self {
            if let Ok(d) = cap.filter_drops() {
                c.filtered_vlan = d.vlan;
                c.filtered_cidr = d.cidr;
                c.filtered_protocol = d.protocol;
                c.filtered_port = d.port;
                c.unbound = d.unbound;
            }
        }
    }
}

/// Captures live on `opts.iface` with the source, mode and limits of
/// `cfg.capture` until `stop` is set or `opts.duration` has passed. Calls
/// `on_ready` once every worker runs. Writes flow records, periodic `stats`
/// events (every `output.stats_interval` s) and the final one through
/// `sender`, which should drop rather than block ([`LIVE_POLICY`]).
pub fn run_live(
    cfg: &Config,
    opts: &LiveOptions,
    sender: Option<BatchSender>,
    stop: &AtomicBool,
    on_ready: impl FnOnce(&LiveInfo),
) -> Result<LiveSummary, LiveError> {
    run_live_with_export(cfg, opts, sender, stop, on_ready, None)
}

/// [`run_live`] with PCAP export when `export` is given: each worker gets a
/// handle (dropped when it ends); the final `stats` event carries the
/// writer's counters as they are then.
pub fn run_live_with_export(
    cfg: &Config,
    opts: &LiveOptions,
    sender: Option<BatchSender>,
    stop: &AtomicBool,
    on_ready: impl FnOnce(&LiveInfo),
    export: Option<&crate::export::ExportRun>,
) -> Result<LiveSummary, LiveError> {
    cfg.validate()?;
    let iface = opts.iface.as_str();
    if iface.is_empty() {
        return Err(LiveError::NoInterface);
    }
    let c = &cfg.capture;
    let mut capture = CaptureStats {
        source: c.source.as_str(),
        iface: iface.to_string(),
        capture_only: opts.capture_only,
        ..CaptureStats::default()
    };
    if c.mlock {
        cw::mlock_all()?;
    }

    // Open the sources (the XDP program is attached from here on; dropping
    // `opened` and every queue detaches it, on every path out).
    #[cfg(feature = "dpdk")]
    let mut dpdk_queues = Vec::new();
    let (opened, xdp_queues, packet_socks) = match c.source {
        CaptureSource::AfXdp => {
            if let Some(ifindex) = sysfs(iface, "ifindex").and_then(|s| s.parse::<u32>().ok()) {
                let id = attached_prog_id(ifindex);
                if id != 0 {
                    return Err(LiveError::XdpInUse {
                        iface: iface.to_string(),
                        id,
                    });
                }
            }
            let have = rx_queue_count(iface);
            let queues = match opts.workers {
                0 => None,
                n if have > 0 && n > have => {
                    return Err(LiveError::TooFewQueues {
                        iface: iface.to_string(),
                        have,
                        want: n,
                    })
                }
                n => Some((0..n as u32).collect()),
            };
            let mut xc = xdp_config(cfg, iface, queues);
            xc.filter = PreFilter {
                drop_vlans: c.filter.drop_vlans.clone(),
                drop_cidrs: c.filter.cidrs()?,
                drop_ports: c.filter.drop_ports.clone(),
                drop_protocols: c.filter.drop_protocols.clone(),
                drop_unbound: false,
            };
            let mut cap = XdpCapture::open(&xc)?;
            let qs = cap.take_queues();
            let zc = !qs.is_empty() && qs.iter().all(|q| q.zero_copy());
            let sw = matches!(c.shard, ShardSetting::Software) && qs.len() > 1;
            capture.mode = format!(
                "{} {}{}",
                cap.attach_mode(),
                if zc { "zero-copy" } else { "copy" },
                if sw { " software-shard" } else { "" }
            );
            (Opened::Xdp(cap), qs, Vec::new())
        }
        CaptureSource::AfPacket => {
            let n = match opts.workers {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            };
            let ac = afpacket_config(cfg, iface);
            let group = (std::process::id() & 0xffff) as u16;
            let mut socks = Vec::with_capacity(n);
            for _ in 0..n {
                socks.push(AfPacketSocket::open(&ac, group)?);
            }
            capture.mode = "tpacket_v3 fanout-hash".into();
            (Opened::Packet, Vec::new(), socks)
        }
        #[cfg(feature = "dpdk")]
        CaptureSource::Dpdk => {
            let queues = u16::try_from(opts.workers.max(1)).unwrap_or(u16::MAX);
            let (port, qs) = capture::dpdk::open(&dpdk_config(cfg, iface, queues))?;
            let info = port.info();
            capture.iface = info.name.clone();
            capture.mode = format!(
                "{} port {}{}{}",
                info.driver,
                info.id,
                if info.rss { " rss-symmetric" } else { "" },
                if info.eal_initialised_here {
                    ""
                } else {
                    " (EAL reused)"
                }
            );
            dpdk_queues = qs;
            (Opened::Dpdk(port), Vec::new(), Vec::new())
        }
        #[cfg(not(feature = "dpdk"))]
        CaptureSource::Dpdk => return Err(LiveError::NoDpdk),
    };
    #[cfg(feature = "dpdk")]
    let workers = xdp_queues.len() + packet_socks.len() + dpdk_queues.len();
    #[cfg(not(feature = "dpdk"))]
    let workers = xdp_queues.len() + packet_socks.len();
    capture.queues = workers as u64;
    // With a hub, the sender and export run are the hub's (a reload
    // replaces them); the sender given here only lends its counters.
    let hub = opts.hub.clone();
    let out_counters = sender.as_ref().map(|s| Arc::clone(s.counters()));
    // (Dropped now, not at the end of the run: a sink a reload removes
    // ends only once every sender made before is gone.)
    let fixed_sender = match hub {
        Some(_) => {
            drop(sender);
            None
        }
        None => sender,
    };
    let current_sender = || match &hub {
        Some(h) => h.sender(),
        None => fixed_sender.clone(),
    };

    let cfg = Arc::new(cfg.clone());
    let halt = Arc::new(AtomicBool::new(false));
    let cores = if cfg.pin_workers {
        cw::allowed_cores()
    } else {
        Vec::new()
    };
    let idle_wait_ms = if capture.mode.contains("software-shard") {
        IDLE_WAIT_SHARD_MS
    } else {
        IDLE_WAIT_MS
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut slots = Vec::with_capacity(workers);
    let mut handles: Vec<JoinHandle<WorkerEnd>> = Vec::with_capacity(workers);
    let mut setup = |index: usize| {
        let slot = Slot {
            stats: Arc::new(Mutex::new(WorkerStats::default())),
            queue: Arc::new(Mutex::new(QueueCounters::default())),
        };
        // The view first: a reload between it and taking the export below
        // is then seen (and applied again) at the worker's first refresh.
        let view = hub
            .as_ref()
            .filter(|_| !opts.capture_only)
            .map(|h| h.worker_view(u16::try_from(index).unwrap_or(u16::MAX)));
        let s = WorkerSetup {
            index,
            core: (!cores.is_empty()).then(|| cores[index % cores.len()]),
            sched_fifo: cfg.capture.sched_fifo,
            idle_wait_ms,
            capture_only: opts.capture_only,
            halt: Arc::clone(&halt),
            cfg: Arc::clone(&cfg),
            sender: current_sender(),
            stats_slot: Arc::clone(&slot.stats),
            queue_slot: Arc::clone(&slot.queue),
            export: match &hub {
                Some(h) => h.export().map(|e| (e.rules(), e.handle())),
                None => export.map(|e| (Arc::clone(&e.rules), e.handle())),
            },
            view,
            tap: opts.tap.as_ref().map(|t| (t.0)(index)),
        };
        slots.push(slot);
        s
    };
    let mut spawn_error = None;
    for (i, q) in xdp_queues.into_iter().enumerate() {
        match spawn_worker(q, setup(i), ready_tx.clone()) {
            Ok(h) => handles.push(h),
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        }
    }
    if spawn_error.is_none() {
        for (i, s) in packet_socks.into_iter().enumerate() {
            match spawn_worker(s, setup(i), ready_tx.clone()) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    spawn_error = Some(e);
                    break;
                }
            }
        }
    }
    #[cfg(feature = "dpdk")]
    if spawn_error.is_none() {
        for (i, q) in dpdk_queues.into_iter().enumerate() {
            match spawn_worker(q, setup(i), ready_tx.clone()) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    spawn_error = Some(e);
                    break;
                }
            }
        }
    }
    drop(ready_tx);
    let mut setup_error = spawn_error;
    for _ in 0..handles.len() {
        match ready_rx.recv() {
            Ok((_, Ok(()))) => {}
            Ok((_, Err(e))) => {
                setup_error.get_or_insert(LiveError::Worker(e));
            }
            Err(_) => break,
        }
    }
    // Everything that needs privileges is done: the sockets and rings are
    // open, the XDP program attached through a link, the workers pinned.
    let dropped_to = if setup_error.is_none() && !cfg.capture.drop_user.is_empty() {
        let group = (!cfg.capture.drop_group.is_empty()).then_some(cfg.capture.drop_group.as_str());
        match cw::drop_privileges(&cfg.capture.drop_user, group) {
            Ok(d) => Some(d),
            Err(e) => {
                setup_error = Some(LiveError::Worker(e));
                None
            }
        }
    } else {
        None
    };
    if let Some(e) = setup_error {
        halt.store(true, Ordering::Relaxed);
        for h in handles {
            let _ = h.join();
        }
        drop(opened);
        return Err(e);
    }

    let monitor = opts.monitor.clone().unwrap_or_else(Monitor::new);
    if let Some(tx) = current_sender() {
        monitor.watch_sinks(tx.probe());
    }
    monitor.watch_workers(slots.iter().map(|s| Arc::clone(&s.stats)).collect());
    // The capture counters as the metrics and the stats events see them.
    let capture_now = |base: &CaptureStats| {
        let mut cap = base.clone();
        for s in &slots {
            if let Ok(g) = s.queue.lock() {
                g.add_to(&mut cap);
            }
        }
        opened.add_filter_drops(&mut cap);
        if let Some(c) = &out_counters {
            cap.output_events_dropped = c.events_dropped.load(Ordering::Relaxed);
        }
        cap
    };
    monitor.set_capture(capture_now(&capture));

    let started = Instant::now();
    on_ready(&LiveInfo {
        source: capture.source,
        iface: iface.to_string(),
        mode: capture.mode.clone(),
        workers,
        capture_only: opts.capture_only,
        dropped_to,
    });

    let every =
        (cfg.output.stats_interval > 0).then(|| Duration::from_secs(cfg.output.stats_interval));
    let mut next_stats = every.map(|d| started + d);
    let mut next_capture = started + CAPTURE_EVERY;
    let mut ended_early = 0;
    let cause = loop {
        if let Some(h) = &opts.heartbeat {
            h.beat();
        }
        if stop.load(Ordering::Relaxed) {
            break StopCause::Signal;
        }
        if opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break StopCause::Duration;
        }
        if let Some(i) = handles.iter().position(|h| h.is_finished()) {
            ended_early = i;
            break StopCause::WorkerFailed;
        }
        if Instant::now() >= next_capture {
            next_capture += CAPTURE_EVERY;
            monitor.set_capture(capture_now(&capture));
        }
        if let Some((filter, reply)) = hub.as_ref().and_then(|h| h.take_filter_request()) {
            let _ = reply.send(opened.set_filter(&filter));
        }
        if let (Some(at), Some(d)) = (next_stats, every) {
            if Instant::now() >= at {
                next_stats = Some(at + d);
                monitor.set_capture(capture_now(&capture));
                if let Some(tx) = current_sender() {
                    let ev = monitor.snapshot().stats_event(wall_ns());
                    tx.submit_stats(&ev);
                }
            }
        }
        let nap = match opts.duration {
            Some(d) => d
                .saturating_sub(started.elapsed())
                .min(Duration::from_millis(50)),
            None => Duration::from_millis(50),
        };
        std::thread::sleep(nap.max(Duration::from_millis(1)));
    };
    halt.store(true, Ordering::Relaxed);

    let mut summary = LiveSummary {
        stats: WorkerStats::default(),
        capture: capture.clone(),
        per_worker: Vec::with_capacity(workers),
        elapsed: started.elapsed(),
        workers,
        cause,
        worker_error: None,
    };
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(end) => {
                summary.stats.merge(&end.stats);
                end.queue.add_to(&mut summary.capture);
                summary.per_worker.push(end.stats);
                if let Some(e) = end.error {
                    summary
                        .worker_error
                        .get_or_insert(LiveError::WorkerFailed(i, e));
                }
            }
            Err(_) => {
                summary
                    .worker_error
                    .get_or_insert(LiveError::WorkerFailed(i, "the thread panicked".into()));
            }
        }
    }
    if cause == StopCause::WorkerFailed && summary.worker_error.is_none() {
        summary.worker_error = Some(LiveError::WorkerFailed(
            ended_early,
            "it ended before the capture was stopped".into(),
        ));
    }
    opened.add_filter_drops(&mut summary.capture);
    // Detach the XDP program before the last line is written.
    drop(opened);
    if let Some(c) = &out_counters {
        summary.capture.output_events_dropped = c.events_dropped.load(Ordering::Relaxed);
    }
    monitor.set_capture(summary.capture.clone());
    let export_counters = match &hub {
        Some(h) => h.export().map(|e| e.counters().snapshot()),
        None => export.map(|e| e.counters().snapshot()),
    };
    if let Some(tx) = current_sender() {
        let ev = Snapshot {
            per_worker: summary.per_worker.clone(),
            capture: Some(summary.capture.clone()),
            sinks: monitor.sinks(),
            // Files still open finish after the workers: their `pcap`
            // events come after this line.
            pcap_writer: export_counters,
        }
        .stats_event(wall_ns());
        tx.submit_stats(&ev);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_maps_to_source_settings() {
        let cfg = Config::from_toml(
            "[capture]\nxdp_mode = \"generic\"\nzero_copy = \"off\"\numem_frames = 8192\n\
             frame_size = 4096\nrx_ring = 1024\nfill_ring = 4096\nneed_wakeup = false\n\
             busy_poll_usecs = 20\nbusy_poll_budget = 16\nshard = \"software\"\nshard_ring = 512\n\
             afpacket_block_size = 65536\nafpacket_block_count = 8\nafpacket_block_timeout_ms = 5\n",
            "t",
        )
        .expect("config");
        let x = xdp_config(&cfg, "eth9", Some(vec![0, 1]));
        assert_eq!(x.iface, "eth9");
        assert_eq!(x.queues, Some(vec![0, 1]));
        assert_eq!(x.mode, XdpMode::Generic);
        assert_eq!(x.zero_copy, ZeroCopy::Off);
        assert_eq!(
            (x.frames, x.frame_size, x.rx_ring, x.fill_ring),
            (8192, 4096, 1024, 4096)
        );
        assert!(!x.need_wakeup);
        assert_eq!(
            x.busy_poll,
            Some(BusyPoll {
                usecs: 20,
                budget: 16
            })
        );
        assert_eq!(x.shard, Shard::Software { ring: 512 });
        let a = afpacket_config(&cfg, "eth9");
        assert_eq!(
            (a.block_size, a.block_count, a.block_timeout_ms),
            (65536, 8, 5)
        );
    }

    #[test]
    fn missing_interface_is_named() {
        let stop = AtomicBool::new(false);
        for source in ["afxdp", "afpacket"] {
            let cfg = Config::from_toml(&format!("[capture]\nsource = \"{source}\"\n"), "t")
                .expect("config");
            let opts = LiveOptions {
                iface: "ft-nope0".into(),
                ..LiveOptions::default()
            };
            let e = run_live(&cfg, &opts, None, &stop, |_| {}).expect_err("no such interface");
            assert!(e.to_string().contains("does not exist"), "{source}: {e}");
        }
        let e = run_live(
            &Config::default(),
            &LiveOptions::default(),
            None,
            &stop,
            |_| {},
        )
        .expect_err("no interface");
        assert!(matches!(e, LiveError::NoInterface), "{e}");
    }

    /// A build without the `dpdk` feature says how to get one.
    #[cfg(not(feature = "dpdk"))]
    #[test]
    fn dpdk_without_the_feature_says_how_to_build_it() {
        let cfg = Config::from_toml("[capture]\nsource = \"dpdk\"\n", "t").expect("config");
        let opts = LiveOptions {
            iface: "net_pcap0".into(),
            ..LiveOptions::default()
        };
        let e = run_live(&cfg, &opts, None, &AtomicBool::new(false), |_| {})
            .expect_err("no DPDK in this build");
        assert!(matches!(e, LiveError::NoDpdk), "{e}");
        assert!(e.to_string().contains("--features dpdk"), "{e}");
    }
}
