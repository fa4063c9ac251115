//! Offline replay of a capture file across N workers.
//!
//! A plain classic pcap file (the usual case) is read in chunks that the
//! workers share ([`chunked`]): each reads and parses every N-th chunk and
//! sorts its packets by owner ([`Owners`]); each runs, in file order, the
//! packets it owns from every chunk, its flow clock moved by all of them, so
//! flows time out at the same capture time as with one worker.
//!
//! Any other regular file (pcapng) and a paced replay (`--pps`) are read by
//! every worker itself: each reads and decodes every packet, keeps the ones
//! it owns and lets the others move only its flow clock. Nothing is copied
//! or handed between threads, but each worker pays for reading all of it.
//!
//! What can be read only once (standard input, a pipe, a compressed file)
//! goes through one reader thread: it decodes each packet to find its
//! owner and appends the packet and that decode (detached from the
//! reader's buffer) to its owner's batch; the worker attaches the decode
//! to its copy of the bytes instead of decoding again. Full batches travel
//! through bounded channels; empty ones come back for reuse. Offline
//! replay is lossless: a full channel makes the reader wait.
//!
//! One worker reads the file on the calling thread, in order.

mod chunked;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capture::file::{CaptureFile, FileError};
use capture::{LinkType, Packet, PacketSource, Poll};
use crossbeam_channel::{bounded, Receiver, Sender};
use dissect::packet::{Decoded, Detached};
use output::writer::{BatchSender, WhenFull};

use crate::config::Config;
use crate::export::ExportRun;
use crate::flow::RecordSink;
use crate::shard::Owners;
use crate::stats::WorkerStats;
use crate::worker::{EventBatch, Worker};

pub use chunked::READ_CHUNK;

/// Packets per batch read (and handed from the reader to a worker).
const BATCH_PACKETS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("worker thread {0} failed")]
    Worker(usize),
    #[error("cannot start thread: {0}")]
    Spawn(std::io::Error),
}

/// How a replay ended.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    pub stats: WorkerStats,
    pub per_worker: Vec<WorkerStats>,
    pub elapsed: Duration,
    pub first_ns: u64,
    pub last_ns: u64,
    /// The capture file broke at some point: everything before it was processed.
    pub file_error: Option<FileError>,
}

/// Paces a replay to a packet rate (`flowtap run --pcap F --pps N`), for
/// tests and demos that need a replay to last: sleeps after each batch until
/// the wall clock catches up with `packets / pps`.
struct Pacer {
    pps: u64,
    started: Instant,
}

impl Pacer {
    fn new(pps: Option<u64>) -> Option<Pacer> {
        pps.filter(|&p| p > 0).map(|pps| Pacer {
            pps,
            started: Instant::now(),
        })
    }

    fn wait(&self, packets: u64) {
        let due = Duration::from_secs_f64(packets as f64 / self.pps as f64);
        if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

/// Reports progress while a replay runs (the CLI draws a bar from it).
pub trait Progress: Send {
    fn update(&self, bytes_read: u64, packets: u64);
}

struct PacketBatch {
    data: Vec<u8>,
    pkts: Vec<BatchPacket>,
}

#[derive(Clone, Copy)]
struct BatchPacket {
    ts_ns: u64,
    offset: u32,
    len: u32,
    orig_len: u32,
    link: u32,
    /// The reader's decode of the packet.
    decoded: Detached,
}

impl PacketBatch {
    fn new() -> PacketBatch {
        PacketBatch {
            data: Vec::with_capacity(BATCH_PACKETS * 1600),
            pkts: Vec::with_capacity(BATCH_PACKETS),
        }
    }

    fn push(&mut self, p: &Packet<'_>, decoded: Detached) {
        let offset = self.data.len() as u32;
        self.data.extend_from_slice(p.data);
        self.pkts.push(BatchPacket {
            ts_ns: p.ts_ns,
            offset,
            len: p.data.len() as u32,
            orig_len: p.orig_len,
            link: p.link.0,
            decoded,
        });
    }

    fn clear(&mut self) {
        self.data.clear();
        self.pkts.clear();
    }
}

/// The worker side of the reader's channel.
struct ChannelSource {
    rx: Receiver<PacketBatch>,
    recycle: Sender<PacketBatch>,
}

impl ChannelSource {
    /// Runs every packet the reader sends to completion on `worker`, with
    /// the reader's decode, until the reader hangs up.
    fn run(&mut self, worker: &mut Worker) {
        while let Ok(mut batch) = self.rx.recv() {
            for bp in &batch.pkts {
                let start = bp.offset as usize;
                let data = batch
                    .data
                    .get(start..start + bp.len as usize)
                    .unwrap_or(&[]);
                let pkt = Packet {
                    ts_ns: bp.ts_ns,
                    data,
                    orig_len: bp.orig_len,
                    link: LinkType(bp.link),
                };
                worker.process_decoded(&pkt, &bp.decoded.attach(data));
            }
            worker.end_batch();
            batch.clear();
            let _ = self.recycle.try_send(batch);
        }
    }
}

/// What a replay takes besides the capture, the config and the worker count.
#[derive(Default)]
pub struct ReplayOptions<'a> {
    /// Where the workers' events go (`None`: encoded nowhere).
    pub sender: Option<BatchSender>,
    /// Slots the workers publish their counters to (stats, metrics).
    pub published: &'a [Arc<Mutex<WorkerStats>>],
    pub progress: Option<&'a dyn Progress>,
    /// Paces the reading to this many packets per second (`None`: as fast as
    /// the workers go).
    pub pps: Option<u64>,
    /// PCAP export: each worker gets its handle; they are all dropped when
    /// the replay returns.
    pub export: Option<&'a ExportRun>,
    /// Each worker also hands its records and app events to the sink this
    /// makes for it (the discovery sink).
    pub tap: Option<Tap<'a>>,
    /// Several workers on a classic pcap file: bytes of it each parses at a
    /// time (`None`: [`READ_CHUNK`]).
    pub read_chunk: Option<usize>,
}

/// Gives worker `i` a sink that receives its records and app events,
/// unencoded, beside the output (`flowtap discover`).
pub type Tap<'a> = &'a (dyn Fn(usize) -> Box<dyn RecordSink + Send> + Sync);

/// Replays `path` through `workers` workers.
pub fn replay_file(
    path: &Path,
    cfg: &Config,
    workers: usize,
    opts: ReplayOptions<'_>,
) -> Result<ReplaySummary, ReplayError> {
    let file = CaptureFile::open(path)?;
    replay(file, cfg, workers, opts)
}

/// Replays `path` through `workers` workers, each also handing its records
/// and app events to its [`Tap`].
pub fn replay_file_tapped(
    path: &Path,
    cfg: &Config,
    workers: usize,
    opts: ReplayOptions<'_>,
    tap: Tap<'_>,
) -> Result<ReplaySummary, ReplayError> {
    let file = CaptureFile::open(path)?;
    replay_inner(file, cfg, workers, opts, Some(tap))
}

/// Replays an opened capture (from a file or from memory).
pub fn replay(
    file: CaptureFile,
    cfg: &Config,
    workers: usize,
    opts: ReplayOptions<'_>,
) -> Result<ReplaySummary, ReplayError> {
    replay_inner(file, cfg, workers, opts, None)
}

fn replay_inner(
    file: CaptureFile,
    cfg: &Config,
    workers: usize,
    opts: ReplayOptions<'_>,
    tap: Option<Tap<'_>>,
) -> Result<ReplaySummary, ReplayError> {
    let ReplayOptions {
        sender,
        published,
        progress,
        pps,
        export,
        tap: opts_tap,
        read_chunk,
    } = opts;
    let tap = tap.or(opts_tap);
    let workers = workers.max(1);
    let started = Instant::now();
    let new_worker = |i: usize| {
        let mut out = EventBatch::new(sender.clone(), cfg.output.batch_bytes);
        if let Some(t) = tap {
            out = out.with_tap(t(i));
        }
        let mut w = Worker::new(cfg, out);
        if let Some(slot) = published.get(i) {
            w.publish_to(Arc::clone(slot));
        }
        if let Some(ex) = export {
            w.attach_export(ex, i);
        }
        w
    };
    let owners = Owners::new(cfg, workers);
    let core_ids = if cfg.pin_workers && workers > 1 {
        core_affinity::get_core_ids().unwrap_or_default()
    } else {
        Vec::new()
    };
    let core_of = |i: usize| core_ids.get(i % core_ids.len().max(1)).copied();
    let reading = Reading {
        owners,
        pps,
        sender: &sender,
    };

    if workers == 1 {
        let mut file = file;
        let mut worker = new_worker(0);
        let (span, stats) = reading.run_share(&mut file, &mut worker, 0, progress);
        drop(worker);
        return Ok(ReplaySummary {
            stats: stats.clone(),
            per_worker: vec![stats],
            elapsed: started.elapsed(),
            first_ns: span.first_ns,
            last_ns: span.last_ns,
            file_error: span.file_error,
        });
    }
    // A plain classic pcap file: the workers share the reading, chunk by
    // chunk. A paced replay reads in order.
    if pps.is_none() && file.chunkable() {
        let chunks = file.into_chunks(read_chunk.unwrap_or(READ_CHUNK))?;
        let shared = chunked::Shared::new(&chunks, owners);
        let run = |i, (), worker: &mut Worker, report: Option<&dyn Progress>| {
            shared.run(i, worker, &sender, report)
        };
        let sources = (0..workers).map(|_| ()).collect();
        return run_workers(sources, new_worker, core_of, progress, started, run);
    }
    // Any other regular file is read by every worker itself; what can be
    // read only once goes through the reader thread.
    let others = (1..workers).map(|_| file.reopen());
    let Some(others) = others.collect::<Option<Vec<_>>>() else {
        return channel_replay(
            file, workers, reading, progress, new_worker, core_of, started,
        );
    };
    let others = others.into_iter().collect::<Result<Vec<_>, _>>()?;
    let files = std::iter::once(file).chain(others).collect();
    let run = |i, mut file: CaptureFile, worker: &mut Worker, report: Option<&dyn Progress>| {
        reading.run_share(&mut file, worker, i, report)
    };
    run_workers(files, new_worker, core_of, progress, started, run)
}

/// Runs worker `i` on its own (pinned) thread with `sources[i]`; this
/// thread only draws the progress the first worker reports, and stays
/// unpinned. Every worker reads the same file: the span and error are the
/// first worker's.
fn run_workers<S: Send>(
    sources: Vec<S>,
    new_worker: impl Fn(usize) -> Worker + Sync,
    core_of: impl Fn(usize) -> Option<core_affinity::CoreId>,
    progress: Option<&dyn Progress>,
    started: Instant,
    run: impl Fn(usize, S, &mut Worker, Option<&dyn Progress>) -> (Span, WorkerStats) + Sync,
) -> Result<ReplaySummary, ReplayError> {
    let shared = SharedProgress::default();
    let run = &run;
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(sources.len());
        let new_worker = &new_worker;
        for (i, source) in sources.into_iter().enumerate() {
            let core = core_of(i);
            let report = (i == 0).then_some(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("flowtap-w{i}"))
                .spawn_scoped(s, move || {
                    if let Some(c) = core {
                        core_affinity::set_for_current(c);
                    }
                    // Made on its own thread: the workers' tables are
                    // set up in parallel, in memory from the worker's own
                    // allocator heap, first touched by its own core.
                    let mut worker = new_worker(i);
                    let report = report.map(|r| r as &dyn Progress);
                    run(i, source, &mut worker, report)
                })
                .map_err(ReplayError::Spawn)?;
            handles.push(handle);
        }
        if let Some(pr) = progress {
            while !handles.iter().all(|h| h.is_finished()) {
                shared.show(pr);
                std::thread::sleep(Duration::from_millis(100));
            }
            shared.show(pr);
        }
        let mut summary = ReplaySummary::default();
        for (i, h) in handles.into_iter().enumerate() {
            let (span, stats) = h.join().map_err(|_| ReplayError::Worker(i))?;
            if i == 0 {
                summary.first_ns = span.first_ns;
                summary.last_ns = span.last_ns;
                summary.file_error = span.file_error;
            }
            summary.stats.merge(&stats);
            summary.per_worker.push(stats);
        }
        summary.elapsed = started.elapsed();
        Ok(summary)
    })
}

/// The first worker's progress, for the calling thread to show.
#[derive(Default)]
struct SharedProgress {
    bytes: AtomicU64,
    packets: AtomicU64,
}

impl Progress for SharedProgress {
    fn update(&self, bytes_read: u64, packets: u64) {
        self.bytes.store(bytes_read, Ordering::Relaxed);
        self.packets.store(packets, Ordering::Relaxed);
    }
}

impl SharedProgress {
    fn show(&self, to: &dyn Progress) {
        to.update(
            self.bytes.load(Ordering::Relaxed),
            self.packets.load(Ordering::Relaxed),
        );
    }
}

/// What every reading of the file shares.
#[derive(Clone, Copy)]
struct Reading<'a> {
    owners: Owners,
    pps: Option<u64>,
    sender: &'a Option<BatchSender>,
}

/// The packets a reading saw.
struct Span {
    first_ns: u64,
    last_ns: u64,
    file_error: Option<FileError>,
}

impl Span {
    /// `first_ns` is the oldest time of `packets` packets (0 if none).
    fn new(packets: u64, first_ns: u64, last_ns: u64, file_error: Option<FileError>) -> Span {
        Span {
            first_ns: if packets == 0 { 0 } else { first_ns },
            last_ns,
            file_error,
        }
    }
}

/// What a reader does after each batch: paces the replay, reports
/// progress at `(offset, packets read)`, and says whether to read on
/// (not at the end, after an error, kept in `file_error`, or when the
/// output's reader went away).
fn read_on(
    pacer: &Option<Pacer>,
    progress: Option<&dyn Progress>,
    (offset, read): (u64, u64),
    sender: &Option<BatchSender>,
    polled: Result<Poll, FileError>,
    file_error: &mut Option<FileError>,
) -> bool {
    if let Some(p) = pacer {
        p.wait(read);
    }
    if let Some(pr) = progress {
        pr.update(offset, read);
    }
    if reader_gone(sender) {
        return false;
    }
    match polled {
        Ok(Poll::End) => false,
        Ok(_) => true,
        Err(e) => {
            *file_error = Some(e);
            false
        }
    }
}

impl Reading<'_> {
    /// Reads all of `file`, runs the packets worker `me` owns on `worker`,
    /// and finishes it at the file's last packet time.
    fn run_share(
        &self,
        file: &mut CaptureFile,
        worker: &mut Worker,
        me: usize,
        progress: Option<&dyn Progress>,
    ) -> (Span, WorkerStats) {
        let pacer = Pacer::new(self.pps);
        let mut first_ns = u64::MAX;
        let mut last_ns = 0u64;
        let mut read = 0u64;
        let mut file_error = None;
        let several = self.owners.workers() > 1;
        loop {
            let mut n = 0;
            let polled = file.poll_batch(BATCH_PACKETS, |p| {
                n += 1;
                first_ns = first_ns.min(p.ts_ns);
                last_ns = last_ns.max(p.ts_ns);
                // Most packets another worker owns are found so without
                // decoding them.
                if !several {
                    worker.process(p);
                    return;
                }
                if self.owners.quick(p).is_some_and(|o| o != me) {
                    worker.observe_time(p.ts_ns);
                    return;
                }
                let mut d = Decoded::default();
                if self.owners.decode_owner(p, &mut d) == me {
                    worker.process_decoded(p, &d);
                } else {
                    worker.observe_time(p.ts_ns);
                }
            });
            read += n;
            worker.end_batch();
            let at = (file.offset(), read);
            if !read_on(&pacer, progress, at, self.sender, polled, &mut file_error) {
                break;
            }
        }
        let stats = worker.finish(last_ns);
        (Span::new(read, first_ns, last_ns, file_error), stats)
    }
}

/// Standard input, a pipe or a compressed file: one reader thread reads
/// it, decodes each packet to find its owner and sends it, with that
/// decode, to the owner in batches.
fn channel_replay(
    mut file: CaptureFile,
    workers: usize,
    reading: Reading<'_>,
    progress: Option<&dyn Progress>,
    new_worker: impl Fn(usize) -> Worker,
    core_of: impl Fn(usize) -> Option<core_affinity::CoreId>,
    started: Instant,
) -> Result<ReplaySummary, ReplayError> {
    let Reading {
        owners,
        pps,
        sender,
    } = reading;
    let pacer = Pacer::new(pps);
    let mut first_ns = u64::MAX;
    let mut last_ns = 0u64;
    let mut read = 0u64;
    let final_ns = Arc::new(AtomicU64::new(0));
    let mut txs = Vec::with_capacity(workers);
    let mut spare_rxs = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers {
        let (tx, rx) = bounded::<PacketBatch>(8);
        let (recycle_tx, recycle_rx) = bounded::<PacketBatch>(16);
        txs.push(tx);
        spare_rxs.push(recycle_rx);
        let mut worker = new_worker(i);
        let final_ns = Arc::clone(&final_ns);
        let core = core_of(i);
        let handle = std::thread::Builder::new()
            .name(format!("flowtap-w{i}"))
            .spawn(move || {
                if let Some(c) = core {
                    core_affinity::set_for_current(c);
                }
                let mut source = ChannelSource {
                    rx,
                    recycle: recycle_tx,
                };
                source.run(&mut worker);
                worker.finish(final_ns.load(Ordering::Acquire))
            })
            .map_err(ReplayError::Spawn)?;
        handles.push(handle);
    }
    let mut pending: Vec<PacketBatch> = (0..workers).map(|_| PacketBatch::new()).collect();
    let mut file_error = None;
    let mut send_failed = false;
    loop {
        let mut n = 0;
        let polled = file.poll_batch(BATCH_PACKETS, |p| {
            n += 1;
            first_ns = first_ns.min(p.ts_ns);
            last_ns = last_ns.max(p.ts_ns);
            let mut d = Decoded::default();
            let owner = owners.decode_owner(p, &mut d);
            if let Some(b) = pending.get_mut(owner) {
                b.push(p, d.detach(p.data));
            }
        });
        read += n;
        for (i, b) in pending.iter_mut().enumerate() {
            if b.pkts.len() >= BATCH_PACKETS || (!b.pkts.is_empty() && polled.is_err()) {
                let fresh = spare_rxs[i]
                    .try_recv()
                    .unwrap_or_else(|_| PacketBatch::new());
                let full = std::mem::replace(b, fresh);
                send_failed |= txs[i].send(full).is_err();
            }
        }
        let at = (file.offset(), read);
        if !read_on(&pacer, progress, at, sender, polled, &mut file_error) {
            break;
        }
        if send_failed {
            break;
        }
    }
    for (i, b) in pending.into_iter().enumerate() {
        if !b.pkts.is_empty() {
            send_failed |= txs[i].send(b).is_err();
        }
    }
    final_ns.store(last_ns, Ordering::Release);
    drop(txs);
    let span = Span::new(read, first_ns, last_ns, file_error);
    let mut summary = ReplaySummary {
        first_ns: span.first_ns,
        last_ns: span.last_ns,
        file_error: span.file_error,
        ..ReplaySummary::default()
    };
    for (i, h) in handles.into_iter().enumerate() {
        let s = h.join().map_err(|_| ReplayError::Worker(i))?;
        summary.stats.merge(&s);
        summary.per_worker.push(s);
    }
    if send_failed {
        return Err(ReplayError::Worker(usize::MAX));
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Whether the reader of a sink's pipe went away (`-o - | head`): the
/// replay stops reading, as any Unix tool does.
fn reader_gone(sender: &Option<BatchSender>) -> bool {
    sender.as_ref().is_some_and(BatchSender::reader_gone)
}

/// The when-full policy offline replay uses: it must be lossless.
pub const OFFLINE_POLICY: WhenFull = WhenFull::Block;
