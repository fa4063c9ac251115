//! Several workers replaying a classic pcap file that share the reading.
//!
//! Reading a capture is memory-bound (the record headers lie a packet
//! apart, too sparse for the hardware prefetcher) and the copy from the
//! page cache costs as much again; one thread doing it for all workers, or
//! every worker doing it for the whole file, kept two workers at 1.2x one.
//! Here the file is cut into chunks ([`PcapChunks`]). Before running a
//! chunk, a worker claims the next chunks nobody has parsed yet, up to a few
//! ahead of it, and parses them, sorting each chunk's packets by owner. A
//! worker that owns fewer packets (or shares its core less) reaches that
//! point sooner and so parses more of the file: the split of the reading
//! follows the load. Every worker then runs, in chunk order, the packets it
//! owns from every chunk. A worker whose next chunk is still being parsed
//! parses chunks further ahead meanwhile, and after a short spin parses
//! the awaited chunk itself (the first parse to finish is kept): a parser
//! held up by a page fault or by the sink thread taking its core then holds
//! nobody else up.
//!
//! The result is the sequential replay's, exactly:
//! - a chunk parsed from a guessed start is checked, in chunk order, against
//!   the true end of the chunk before, and parsed again from it if wrong;
//! - before each packet a worker's clock is moved to the newest time read
//!   so far (the packets of other workers included), and a worker ends a
//!   batch (timeouts, output flushing) after every [`BATCH_PACKETS`] packets
//!   of the file, as the sequential replay does;
//! - a bad record ends the replay after every packet before it, with the
//!   sequential reader's error.
//!
//! The last worker to run a chunk puts its buffers in a shared spare list for
//! the next parse: memory stays at a few chunks per worker.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use capture::file::{Chunk, ChunkPacket, FileError, PcapChunks};
use dissect::packet::Decoded;

use super::{reader_gone, Progress, Span, BATCH_PACKETS};
use crate::shard::Owners;
use crate::stats::WorkerStats;
use crate::worker::Worker;

/// Bytes of the file each worker reads and parses at a time: large enough
/// that a chunk's fixed costs vanish, small enough that the few chunks in
/// flight stay in the caches between the read and the run (on W1-1M with
/// two workers 256 KiB ran 4% faster than 2 MiB, 128 KiB 5% slower).
pub const READ_CHUNK: usize = 256 << 10;

/// Chunks a worker parses ahead of the one it runs.
const PARSE_AHEAD: usize = 2;

/// Spins with nothing to do before a worker parses the chunk it waits for
/// itself.
const STEAL_AFTER: u32 = 32;

/// Packets ahead of the one run that are prefetched.
const PREFETCH_AHEAD: usize = 4;
/// Bytes prefetched of a packet in a chunk another worker parsed: its
/// headers and the payload a parser reads sit in the other core's cache
/// (the first line alone left the payload's misses: up to 1 KiB made two
/// workers 2-5% faster on W1-1M).
const REMOTE_PREFETCH_BYTES: usize = 1024;
/// Bytes prefetched of a packet in a chunk this worker parsed: in this
/// core's cache but for the headers of older chunks.
const LOCAL_PREFETCH_BYTES: usize = 64;

/// A parsed chunk with its packets sorted by owner.
struct Sorted {
    chunk: Chunk,
    /// Per worker: its packets.
    owned: Vec<Vec<ChunkPacket>>,
    /// Per packet of the chunk: the newest time of the file up to it (from
    /// the start of the chunk).
    newest: Vec<u64>,
    oldest_ns: u64,
    /// The thread that parsed it (whose caches hold it).
    parser: Option<ThreadId>,
}

impl Sorted {
    fn new(workers: usize) -> Sorted {
        Sorted {
            chunk: Chunk::new(),
            owned: (0..workers).map(|_| Vec::new()).collect(),
            newest: Vec::new(),
            oldest_ns: u64::MAX,
            parser: None,
        }
    }

    /// Parses chunk `index` (from `from`, when known) and sorts its packets.
    fn fill(&mut self, chunks: &PcapChunks, owners: &Owners, index: usize, from: Option<u64>) {
        self.owned.iter_mut().for_each(Vec::clear);
        self.newest.clear();
        let (owned, newest) = (&mut self.owned, &mut self.newest);
        let (mut latest, mut oldest) = (0u64, u64::MAX);
        chunks.parse(index, from, &mut self.chunk, |at, p| {
            latest = latest.max(p.ts_ns);
            oldest = oldest.min(p.ts_ns);
            newest.push(latest);
            // Most packets' owner is found without decoding them.
            let owner = owners
                .quick(p)
                .unwrap_or_else(|| owners.decode_owner(p, &mut Decoded::default()));
            if let Some(list) = owned.get_mut(owner) {
                list.push(at);
            }
        });
        self.oldest_ns = oldest;
        self.parser = Some(std::thread::current().id());
    }
}

/// One chunk of the file as the workers share it.
struct Slot {
    /// The chunk once parsed.
    sorted: Mutex<Option<Arc<Sorted>>>,
    /// Workers that have not run it yet: the last one recycles its buffers.
    left: AtomicUsize,
}

/// What the workers of one replay share.
pub(super) struct Shared<'a> {
    chunks: &'a PcapChunks,
    owners: Owners,
    slots: Vec<Slot>,
    /// Parsed chunks every worker has run, and parses that lost a race,
    /// for reuse (their buffers keep their size).
    spare: Mutex<Vec<Sorted>>,
    /// The next chunk nobody has claimed to parse.
    unclaimed: AtomicUsize,
    /// Per worker: how many chunks it has run.
    done: Vec<AtomicUsize>,
    /// A worker stopped early (the output's reader went away, a panic):
    /// the others stop rather than wait for chunks it would have parsed.
    abort: AtomicBool,
}

/// Sets the abort flag unless disarmed (a worker that panics or stops early).
struct AbortOnDrop<'a> {
    flag: &'a AtomicBool,
    armed: bool,
}

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::Release);
        }
    }
}

impl<'a> Shared<'a> {
    pub(super) fn new(chunks: &'a PcapChunks, owners: Owners) -> Shared<'a> {
        Shared {
            chunks,
            owners,
            slots: (0..chunks.count())
                .map(|_| Slot {
                    sorted: Mutex::new(None),
                    left: AtomicUsize::new(owners.workers()),
                })
                .collect(),
            spare: Mutex::new(Vec::new()),
            unclaimed: AtomicUsize::new(0),
            done: (0..owners.workers()).map(|_| AtomicUsize::new(0)).collect(),
            abort: AtomicBool::new(false),
        }
    }

    /// Chunk `index` if parsed, checked to start where the chunk before
    /// ended (`expect`; `None` for the first) and parsed again from there
    /// if not; `None` while its parser is still at work (or the slot's
    /// lock is poisoned: the abort flag then follows).
    fn ready(&self, index: usize, expect: Option<u64>) -> Option<Arc<Sorted>> {
        let mut s = self.slots.get(index)?.sorted.lock().ok()?;
        let sorted = s.as_ref()?;
        if expect.is_none_or(|e| sorted.chunk.start() == Some(e)) {
            return Some(Arc::clone(sorted));
        }
        // The guess was wrong: the first worker here parses it again
        // (under the lock: the others wait for it).
        let mut fresh = Sorted::new(self.done.len());
        fresh.fill(self.chunks, &self.owners, index, expect);
        let fresh = Arc::new(fresh);
        *s = Some(Arc::clone(&fresh));
        Some(fresh)
    }

    /// Chunk `index` (see [`Shared::ready`]) once parsed; `None` if the
    /// replay was aborted. While another worker parses it, this one parses
    /// chunks further ahead (within the window) rather than idle; if there
    /// are none and the chunk is still not there after a short spin, it
    /// parses the chunk itself (a 256 KiB chunk takes tens of
    /// microseconds): a parser held up by a page-fault storm or the sink
    /// thread taking its core then holds nobody up.
    fn wait_for(&self, index: usize, expect: Option<u64>) -> Option<Arc<Sorted>> {
        let mut idle = 0u32;
        loop {
            if let Some(sorted) = self.ready(index, expect) {
                return Some(sorted);
            }
            if self.abort.load(Ordering::Acquire) {
                return None;
            }
            if let Some(claimed) = self.claim(usize::MAX) {
                self.parse(claimed, None);
                continue;
            }
            idle += 1;
            if idle == STEAL_AFTER && index < self.unclaimed.load(Ordering::Acquire) {
                self.parse(index, expect);
                continue;
            }
            if idle < 64 {
                std::hint::spin_loop();
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }

    /// Parses chunk `index` (from `from`, when known) into its slot, unless
    /// another worker's parse got there first.
    fn parse(&self, index: usize, from: Option<u64>) {
        let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
        let mut sorted = spare.unwrap_or_else(|| Sorted::new(self.done.len()));
        sorted.fill(self.chunks, &self.owners, index, from);
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        if let Ok(mut s) = slot.sorted.lock() {
            if s.is_none() {
                *s = Some(Arc::new(sorted));
                return;
            }
        }
        self.recycle(sorted);
    }

    fn recycle(&self, sorted: Sorted) {
        if let Ok(mut s) = self.spare.lock() {
            s.push(sorted);
        }
    }

    /// Worker done with chunk `index` (its handle dropped): the last one
    /// to run it recycles it.
    fn ran(&self, index: usize) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        if slot.left.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let taken = slot.sorted.lock().ok().and_then(|mut s| s.take());
        if let Some(sorted) = taken.and_then(|a| Arc::try_unwrap(a).ok()) {
            self.recycle(sorted);
        }
    }

    /// Claims the next unparsed chunk if it is at most `upto` and fewer
    /// than [`PARSE_AHEAD`]` + 1` chunks per worker lie parsed and not yet
    /// run by the slowest worker (memory stays bounded however uneven the
    /// load). A claimed chunk is parsed at once; the slowest worker can
    /// always claim the chunk it needs next, so nobody waits forever.
    fn claim(&self, upto: usize) -> Option<usize> {
        let slowest = self
            .done
            .iter()
            .map(|d| d.load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        let window = self.done.len() * (PARSE_AHEAD + 1);
        let limit = upto.min(slowest + window - 1);
        self.unclaimed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.slots.len() && n <= limit).then_some(n + 1)
            })
            .ok()
    }

    /// Worker `me`'s share of the replay: parses its chunks and runs its
    /// packets of every chunk; finishes `worker` at the file's last packet
    /// time. Reports progress if given (one worker does).
    pub(super) fn run(
        &self,
        me: usize,
        worker: &mut Worker,
        sender: &Option<output::writer::BatchSender>,
        progress: Option<&dyn Progress>,
    ) -> (Span, WorkerStats) {
        let mut abort = AbortOnDrop {
            flag: &self.abort,
            armed: true,
        };
        let count = self.slots.len();
        let mut expect = None;
        let mut packets = 0u64;
        let (mut first_ns, mut last_ns) = (u64::MAX, 0u64);
        let mut file_error = None;
        let mut completed = true;
        for index in 0..count {
            while let Some(claimed) = self.claim(index + PARSE_AHEAD) {
                self.parse(claimed, None);
            }
            let Some(sorted) = self.wait_for(index, expect) else {
                completed = false;
                break;
            };
            let chunk = &sorted.chunk;
            expect = Some(chunk.end());
            run_chunk(worker, &sorted, me, packets);
            packets += chunk.packets();
            first_ns = first_ns.min(sorted.oldest_ns);
            last_ns = last_ns.max(sorted.newest.last().copied().unwrap_or(0));
            if me == 0 {
                self.chunks.commit(chunk);
                if let Some(pr) = progress {
                    pr.update(chunk.end(), packets);
                }
            }
            let error = chunk.error().map(FileError::duplicate);
            drop(sorted);
            self.ran(index);
            if let Some(slot) = self.done.get(me) {
                slot.store(index + 1, Ordering::Release);
            }
            if error.is_some() {
                file_error = error;
                break;
            }
            if reader_gone(sender) {
                completed = false;
                break;
            }
        }
        abort.armed = !completed;
        // The last batch of the file, as the sequential replay ends it.
        worker.observe_time(last_ns);
        worker.end_batch();
        let stats = worker.finish(last_ns);
        (Span::new(packets, first_ns, last_ns, file_error), stats)
    }
}

/// Runs worker `me`'s packets of a chunk that starts after `before`
/// packets of the file, ending a batch wherever the sequential replay does.
fn run_chunk(worker: &mut Worker, sorted: &Sorted, me: usize, before: u64) {
    let newest = &sorted.newest;
    let batch = BATCH_PACKETS as u64;
    // Index in this chunk of the first packet of the file's next batch.
    let mut boundary = (batch - before % batch) as usize;
    let own = sorted.owned.get(me).map_or(&[][..], Vec::as_slice);
    let reach = if sorted.parser == Some(std::thread::current().id()) {
        LOCAL_PREFETCH_BYTES
    } else {
        REMOTE_PREFETCH_BYTES
    };
    for (k, at) in own.iter().enumerate() {
        // A packet a few ahead: its bytes are in memory or another core's
        // cache, not this core's (read long ago, or by another worker).
        if let Some(ahead) = own.get(k + PREFETCH_AHEAD) {
            sorted.chunk.prefetch(ahead, reach);
        }
        let i = at.index as usize;
        end_batches(worker, newest, i, &mut boundary);
        if let Some(&t) = newest.get(i) {
            worker.observe_time(t);
        }
        worker.process(&sorted.chunk.packet(at));
    }
    end_batches(worker, newest, newest.len(), &mut boundary);
}

/// Ends each batch of the file that ends before packet `upto` of the chunk.
fn end_batches(worker: &mut Worker, newest: &[u64], upto: usize, boundary: &mut usize) {
    while *boundary <= upto {
        if let Some(&t) = newest.get(*boundary - 1) {
            worker.observe_time(t);
        }
        worker.end_batch();
        *boundary += BATCH_PACKETS;
    }
}
