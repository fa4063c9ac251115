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
//! owns from every chunk.
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
//! Chunk buffers are reused once every worker has run them: memory stays at
//! a few chunks per worker.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capture::file::{Chunk, ChunkPacket, PcapChunks};
use dissect::packet::Decoded;

use super::{reader_gone, Progress, Span, BATCH_PACKETS};
use crate::shard::Owners;
use crate::stats::WorkerStats;
use crate::worker::Worker;

/// Bytes of the file each worker reads and parses at a time: large enough
/// that a chunk's fixed costs vanish, small enough to stay in the cache
/// while its packets are sorted (2 MiB measured best on W1-1M against 1 and
/// 4 MiB).
pub const READ_CHUNK: usize = 2 << 20;

/// Chunks a worker parses ahead of the one it runs.
const PARSE_AHEAD: usize = 2;

/// Packets ahead of the one run whose headers are prefetched.
const PREFETCH_AHEAD: usize = 4;

/// A parsed chunk with its packets sorted by owner.
struct Sorted {
    chunk: Chunk,
    /// Per worker: its packets.
    owned: Vec<Vec<ChunkPacket>>,
    /// Per packet of the chunk: the newest time of the file up to it (from
    /// the start of the chunk).
    newest: Vec<u64>,
    oldest_ns: u64,
}

impl Sorted {
    fn new(workers: usize) -> Sorted {
        Sorted {
            chunk: Chunk::new(),
            owned: (0..workers).map(|_| Vec::new()).collect(),
            newest: Vec::new(),
            oldest_ns: u64::MAX,
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
    }
}

/// What the workers of one replay share.
pub(super) struct Shared<'a> {
    chunks: &'a PcapChunks,
    owners: Owners,
    /// Chunk `i`, once parsed (taken back for reuse once all ran it).
    slots: Vec<Mutex<Option<Arc<Sorted>>>>,
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
            slots: (0..chunks.count()).map(|_| Mutex::new(None)).collect(),
            unclaimed: AtomicUsize::new(0),
            done: (0..owners.workers()).map(|_| AtomicUsize::new(0)).collect(),
            abort: AtomicBool::new(false),
        }
    }

    /// Chunk `index` once parsed, checked to start where the chunk before
    /// ended (`expect`; `None` for the first) and parsed again from there
    /// if not. `None` if the replay was aborted.
    fn checked(&self, index: usize, expect: Option<u64>) -> Option<Arc<Sorted>> {
        let slot = self.slots.get(index)?;
        let mut idle = 0u32;
        loop {
            {
                let mut s = slot.lock().ok()?;
                if let Some(sorted) = s.as_ref() {
                    if expect.is_none_or(|e| sorted.chunk.start() == Some(e)) {
                        return Some(Arc::clone(sorted));
                    }
                    // The guess was wrong: the first worker here parses it
                    // again (under the lock: the others wait for it).
                    let mut fresh = Sorted::new(self.done.len());
                    fresh.fill(self.chunks, &self.owners, index, expect);
                    let fresh = Arc::new(fresh);
                    *s = Some(Arc::clone(&fresh));
                    return Some(fresh);
                }
            }
            if self.abort.load(Ordering::Acquire) {
                return None;
            }
            // The chunk's parser is busy running packets: spin briefly,
            // then let the core go.
            idle += 1;
            if idle < 64 {
                std::hint::spin_loop();
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(20));
            }
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

    /// A chunk this worker parsed earlier (`mine`, oldest first) that every
    /// worker has run, for reuse.
    fn reusable(&self, mine: &mut VecDeque<usize>) -> Option<Sorted> {
        let oldest = *mine.front()?;
        let all_ran = self.done.iter().all(|d| d.load(Ordering::Acquire) > oldest);
        if !all_ran {
            return None;
        }
        mine.pop_front();
        let taken = self.slots.get(oldest)?.lock().ok()?.take()?;
        Arc::try_unwrap(taken).ok()
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
        let workers = self.done.len();
        let mut mine = VecDeque::new();
        let mut expect = None;
        let mut packets = 0u64;
        let (mut first_ns, mut last_ns) = (u64::MAX, 0u64);
        let mut file_error = None;
        let mut completed = true;
        for index in 0..count {
            while let Some(claimed) = self.claim(index + PARSE_AHEAD) {
                let mut sorted = self
                    .reusable(&mut mine)
                    .unwrap_or_else(|| Sorted::new(workers));
                sorted.fill(self.chunks, &self.owners, claimed, None);
                if let Some(slot) = self.slots.get(claimed) {
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(Arc::new(sorted));
                    }
                }
                mine.push_back(claimed);
            }
            let Some(sorted) = self.checked(index, expect) else {
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
            if let Some(slot) = self.done.get(me) {
                slot.store(index + 1, Ordering::Release);
            }
            if let Some(e) = chunk.error() {
                file_error = Some(e.duplicate());
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
    for (k, at) in own.iter().enumerate() {
        // The headers of a packet a few ahead: they are in memory, not in
        // this core's caches (read long ago, or by another worker).
        if let Some(ahead) = own.get(k + PREFETCH_AHEAD) {
            sorted.chunk.prefetch(ahead);
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
