//! A classic pcap file cut into fixed-size chunks that several threads
//! parse at once (offline replay with several workers: reading and finding
//! record boundaries is memory-bound, and one thread doing it for all of
//! them is what kept two workers from going twice as fast as one).
//!
//! Chunk `i` holds the records that *start* in
//! `[24 + i * size, 24 + (i + 1) * size)`. Where its first record starts is
//! certain only once chunk `i - 1` is parsed (its last record may run into
//! chunk `i`), so a chunk is parsed ahead from a guess: the first offset
//! from which a chain of plausible record headers follows. The caller
//! checks each guess in chunk order against the true end of the chunk
//! before ([`Chunk::start`] against [`Chunk::end`]) and parses the chunk
//! again from that end when they differ: bytes inside a packet can look
//! like records (a pcap carried in a payload), and this check is what makes
//! the result exact. From a given start, parsing is the sequential
//! reader's: the same packets, and the same error at the same offset.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::input::u32_in;
use super::pcap::{caplen_too_large, ts_ns, FILE_HEADER_LEN, RECORD_HEADER_LEN};
use super::{over_snaplen, FileError, MAX_CAPLEN};
use crate::source::{LinkType, Packet};

/// Bytes read past a chunk's end in the first read, for the record that
/// crosses it: a full-size Ethernet frame with its tunnel headers and
/// record header. A longer record extends the read (one more `pread` for
/// that chunk). The bytes past the end are read again by the next chunk:
/// 64 KiB made a two-worker replay copy 25% more of the file from the page
/// cache than one worker, the copy being a third of a replay's time.
const READ_PAST_END: u64 = 4 << 10;
/// Headers a guessed start must chain through.
const RESYNC_CHAIN: usize = 4;
/// How far (seconds) a plausible record's time may lie from the first
/// record's: a year.
const RESYNC_SPAN_SECS: u32 = 366 * 86_400;

type LinkCallback = Box<dyn FnMut(LinkType) + Send>;

/// A classic pcap file (either byte order, micro- or nanoseconds) whose
/// chunks can be parsed by several threads at once.
pub struct PcapChunks {
    file: File,
    path: PathBuf,
    /// File length when opened: bytes appended later are not read.
    len: u64,
    size: u64,
    /// Bytes read past what a record needs (the chunk size, at most
    /// [`READ_PAST_END`]).
    read_past: u64,
    big: bool,
    frac_to_ns: u32,
    link: LinkType,
    snaplen: u32,
    /// Seconds of the first record, for the plausibility of a guess.
    first_sec: Option<u32>,
    over_snaplen: Arc<AtomicU64>,
    on_new_link: Mutex<Option<LinkCallback>>,
    announced: AtomicBool,
}

/// One chunk's bytes and what parsing found in it. Reused from chunk to
/// chunk (its buffer keeps its size).
pub struct Chunk {
    /// `bytes[..held]` hold the file's bytes from `base`; the rest is
    /// room kept from earlier chunks (not zeroed again for every chunk:
    /// that cost as much as the read).
    bytes: Vec<u8>,
    held: usize,
    /// File offset of `bytes[0]`.
    base: u64,
    start: Option<u64>,
    end: u64,
    packets: u64,
    over_snaplen: u64,
    error: Option<FileError>,
    link: LinkType,
}

/// Where a packet lies in its [`Chunk`]. 24 bytes, no padding: lists of
/// them are copied per packet (a padded tuple with the index beside it
/// cost a store-forwarding stall on every push).
#[derive(Clone, Copy, Debug)]
pub struct ChunkPacket {
    pub ts_ns: u64,
    pub orig_len: u32,
    /// The packet's place in the chunk (0 for its first packet).
    pub index: u32,
    at: u32,
    caplen: u32,
}

impl Default for Chunk {
    fn default() -> Chunk {
        Chunk::new()
    }
}

impl Chunk {
    pub fn new() -> Chunk {
        Chunk {
            bytes: Vec::new(),
            held: 0,
            base: 0,
            start: None,
            end: 0,
            packets: 0,
            over_snaplen: 0,
            error: None,
            link: LinkType::ETHERNET,
        }
    }

    /// The packet `p` of this chunk (empty if `p` is from another chunk
    /// and out of range).
    #[inline(always)]
    pub fn packet(&self, p: &ChunkPacket) -> Packet<'_> {
        let at = p.at as usize;
        Packet {
            ts_ns: p.ts_ns,
            data: self.held().get(at..at + p.caplen as usize).unwrap_or(&[]),
            orig_len: p.orig_len,
            link: self.link,
        }
    }

    /// Asks the CPU to bring packet `p`'s first `upto` bytes into its
    /// caches: a worker runs its packets long after they were read, or
    /// from a chunk another worker read.
    #[inline(always)]
    pub fn prefetch(&self, p: &ChunkPacket, upto: usize) {
        let at = p.at as usize;
        let bytes = self
            .held()
            .get(at..at + (p.caplen as usize).min(upto))
            .unwrap_or_default();
        crate::sys::prefetch_range(bytes);
    }

    /// File offset of the first record parsed; `None` if no plausible
    /// record start was found (the chunk must be parsed again from the
    /// previous chunk's end).
    pub fn start(&self) -> Option<u64> {
        self.start
    }

    /// File offset just past the last record parsed: where the next
    /// chunk's first record starts, or of the bad record if parsing failed.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Packets parsed.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// The bad record that ended parsing (its packets before it were
    /// handed out). With a true start, it is the sequential reader's error.
    pub fn error(&self) -> Option<&FileError> {
        self.error.as_ref()
    }

    /// Empties the chunk to hold the bytes from file offset `base`.
    fn reset(&mut self, base: u64, link: LinkType) {
        self.held = 0;
        self.base = base;
        self.start = None;
        self.end = base;
        self.packets = 0;
        self.over_snaplen = 0;
        self.error = None;
        self.link = link;
    }

    /// The file's bytes from `base`.
    fn held(&self) -> &[u8] {
        self.bytes.get(..self.held).unwrap_or_default()
    }

    /// File offset just past the bytes held.
    fn held_to(&self) -> u64 {
        self.base + self.held as u64
    }
}

impl PcapChunks {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        path: &Path,
        size: usize,
        big: bool,
        frac_to_ns: u32,
        link: LinkType,
        snaplen: u32,
        over_snaplen: Arc<AtomicU64>,
        on_new_link: Option<LinkCallback>,
    ) -> Result<PcapChunks, FileError> {
        let io_err = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let mut first = [0u8; RECORD_HEADER_LEN];
        let first_sec = file
            .read_exact_at(&mut first, FILE_HEADER_LEN as u64)
            .ok()
            .and_then(|()| {
                if big {
                    u32_in::<true>(&first, 0)
                } else {
                    u32_in::<false>(&first, 0)
                }
            });
        // Offsets within a chunk fit a u32.
        let size = (size as u64).clamp(1, 1 << 30);
        Ok(PcapChunks {
            file,
            path: path.to_path_buf(),
            len,
            size,
            read_past: size.clamp(RECORD_HEADER_LEN as u64, READ_PAST_END),
            big,
            frac_to_ns,
            link,
            snaplen,
            first_sec,
            over_snaplen,
            on_new_link: Mutex::new(on_new_link),
            announced: AtomicBool::new(false),
        })
    }

    /// How many chunks the file has (at least one).
    pub fn count(&self) -> usize {
        let body = self.len.saturating_sub(FILE_HEADER_LEN as u64);
        usize::try_from(body.div_ceil(self.size).max(1)).unwrap_or(usize::MAX)
    }

    /// The file offsets records of chunk `index` start in.
    fn bounds(&self, index: usize) -> (u64, u64) {
        let lo = (FILE_HEADER_LEN as u64).saturating_add((index as u64).saturating_mul(self.size));
        let hi = lo.saturating_add(self.size).min(self.len);
        (lo, hi.max(lo))
    }

    /// Parses chunk `index` into `chunk` (reusing its buffer), calling
    /// `each` for every packet in file order. `from`: where its first record
    /// starts, when known (the end of the chunk before); `None` guesses it.
    /// Errors (a bad record, a failed read) end up in [`Chunk::error`].
    pub fn parse(
        &self,
        index: usize,
        from: Option<u64>,
        chunk: &mut Chunk,
        each: impl FnMut(ChunkPacket, &Packet<'_>),
    ) {
        let (lo, hi) = self.bounds(index);
        let from = from.or((index == 0).then_some(lo));
        chunk.reset(from.map_or(lo, |f| f.min(lo)), self.link);
        if let Err(e) = self.read_to(chunk, hi.saturating_add(self.read_past)) {
            chunk.error = Some(e);
            return;
        }
        let start = match from {
            Some(f) => f,
            None => match self.resync(chunk, lo, hi) {
                Some(s) => s,
                None => {
                    chunk.end = hi;
                    return;
                }
            },
        };
        chunk.start = Some(start);
        let walked = if self.big {
            self.walk::<true>(chunk, start, hi, each)
        } else {
            self.walk::<false>(chunk, start, hi, each)
        };
        match walked {
            Ok(end) => chunk.end = end,
            Err((at, e)) => {
                chunk.end = at;
                chunk.error = Some(e);
            }
        }
    }

    /// Counts a chunk that is part of the file's true parse (called once
    /// per chunk, in order): its over-snaplen records, and the link type
    /// announced with the first packet.
    pub fn commit(&self, chunk: &Chunk) {
        self.over_snaplen
            .fetch_add(chunk.over_snaplen, Ordering::Relaxed);
        if chunk.packets > 0 && !self.announced.swap(true, Ordering::Relaxed) {
            if let Ok(mut f) = self.on_new_link.lock() {
                if let Some(f) = f.as_mut() {
                    f(self.link);
                }
            }
        }
    }

    /// Makes `chunk` hold the file's bytes up to offset `to` (or its end).
    fn read_to(&self, chunk: &mut Chunk, to: u64) -> Result<(), FileError> {
        let to = to.min(self.len);
        let held = chunk.held_to();
        if to <= held {
            return Ok(());
        }
        let from = chunk.held;
        let upto = from + usize::try_from(to - held).unwrap_or(usize::MAX);
        if chunk.bytes.is_empty() {
            // A fresh zeroed allocation comes from pages the kernel has
            // just zeroed: no second zeroing pass over the buffer, as
            // `resize` would make.
            chunk.bytes = vec![0; upto];
        } else if chunk.bytes.len() < upto {
            chunk.bytes.resize(upto, 0);
        }
        let into = chunk.bytes.get_mut(from..upto).unwrap_or_default();
        self.file
            .read_exact_at(into, held)
            .map_err(|source| FileError::Io {
                path: self.path.clone(),
                source,
            })?;
        chunk.held = upto;
        Ok(())
    }

    /// The first offset in `[lo, hi)` from which [`RESYNC_CHAIN`] plausible
    /// record headers follow one another (or reach the end of the file).
    fn resync(&self, chunk: &mut Chunk, lo: u64, hi: u64) -> Option<u64> {
        if self.big {
            self.resync_in::<true>(chunk, lo, hi)
        } else {
            self.resync_in::<false>(chunk, lo, hi)
        }
    }

    fn resync_in<const BIG: bool>(&self, chunk: &mut Chunk, lo: u64, hi: u64) -> Option<u64> {
        let mut at = lo;
        while at < hi {
            at = self.near_first::<BIG>(chunk, at, hi);
            if at < hi && self.plausible::<BIG>(chunk, at) {
                return Some(at);
            }
            at += 1;
        }
        None
    }

    /// The first offset from `at` (before `hi`) whose four bytes, read as a
    /// record's seconds, lie within [`RESYNC_SPAN_SECS`] of the first
    /// record's: a scan of a few instructions a byte that spares
    /// [`PcapChunks::plausible`] nearly every offset (it took 5% of a
    /// two-worker replay run byte by byte). Past the bytes held (the end of
    /// the file) every offset is a candidate.
    fn near_first<const BIG: bool>(&self, chunk: &Chunk, at: u64, hi: u64) -> u64 {
        let Some(first) = self.first_sec else {
            return at;
        };
        let held = chunk.held();
        let from = (at - chunk.base) as usize;
        let to = usize::try_from(hi - chunk.base)
            .unwrap_or(usize::MAX)
            .min(held.len().saturating_sub(3));
        let Some(window) = held.get(from..to.saturating_add(3)) else {
            return at;
        };
        let near = window.windows(4).position(|w| {
            let Some(&w) = w.first_chunk::<4>() else {
                return false;
            };
            let sec = if BIG {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            };
            sec.abs_diff(first) <= RESYNC_SPAN_SECS
        });
        match near {
            Some(i) => at + i as u64,
            None => (chunk.base + to as u64).max(at),
        }
    }

    fn plausible<const BIG: bool>(&self, chunk: &mut Chunk, from: u64) -> bool {
        let frac_limit = if self.frac_to_ns == 1 {
            1_000_000_000
        } else {
            1_000_000
        };
        let mut at = from;
        for _ in 0..RESYNC_CHAIN {
            if at == self.len {
                return true;
            }
            if at + RECORD_HEADER_LEN as u64 > chunk.held_to()
                && self.read_to(chunk, at + self.read_past).is_err()
            {
                return false;
            }
            let Some(h) = chunk
                .held()
                .get((at - chunk.base) as usize..)
                .and_then(|b| b.first_chunk::<RECORD_HEADER_LEN>())
            else {
                return false;
            };
            let word = |i: usize| u32_in::<BIG>(h, i).unwrap_or_default();
            let (sec, frac, caplen, orig_len) = (word(0), word(4), word(8), word(12));
            let near_first = self
                .first_sec
                .is_none_or(|s| s.abs_diff(sec) <= RESYNC_SPAN_SECS);
            if frac >= frac_limit || caplen > MAX_CAPLEN || orig_len < caplen || !near_first {
                return false;
            }
            at += (RECORD_HEADER_LEN as u64) + u64::from(caplen);
        }
        true
    }

    /// Parses the records starting in `[start, hi)`; returns where the next
    /// one starts, or the offset and error of the bad one.
    fn walk<const BIG: bool>(
        &self,
        chunk: &mut Chunk,
        start: u64,
        hi: u64,
        mut each: impl FnMut(ChunkPacket, &Packet<'_>),
    ) -> Result<u64, (u64, FileError)> {
        const HEADER: u64 = RECORD_HEADER_LEN as u64;
        let mut at = start;
        while at < hi {
            let left = self.len - at;
            let truncated = |needed| FileError::Truncated {
                offset: at,
                needed,
                available: left,
            };
            if left < HEADER {
                return Err((at, truncated(HEADER)));
            }
            if at + HEADER > chunk.held_to() {
                self.read_to(chunk, at + HEADER + self.read_past)
                    .map_err(|e| (at, e))?;
            }
            let rel = (at - chunk.base) as usize;
            // One bounds check for the header, then fixed-offset words.
            let header = chunk
                .held()
                .get(rel..)
                .and_then(|b| b.first_chunk::<RECORD_HEADER_LEN>())
                .copied()
                .unwrap_or_default();
            let word = |i: usize| u32_in::<BIG>(&header, i).unwrap_or_default();
            let (sec, frac, caplen, orig_len) = (word(0), word(4), word(8), word(12));
            if caplen > MAX_CAPLEN {
                return Err((at, caplen_too_large(at, caplen)));
            }
            let total = HEADER + u64::from(caplen);
            if left < total {
                return Err((at, truncated(total)));
            }
            if at + total > chunk.held_to() {
                self.read_to(chunk, at + total + self.read_past)
                    .map_err(|e| (at, e))?;
            }
            let p = ChunkPacket {
                ts_ns: ts_ns(sec, frac, self.frac_to_ns),
                orig_len,
                // At most one packet per 16 bytes of a chunk: fits.
                index: chunk.packets as u32,
                // Within a chunk of at most 1 GiB plus a record: fits.
                at: (rel + RECORD_HEADER_LEN) as u32,
                caplen,
            };
            chunk.packets += 1;
            chunk.over_snaplen += u64::from(over_snaplen(caplen, self.snaplen));
            each(p, &chunk.packet(&p));
            at += total;
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{xorshift, PcapBuilder, TempFile};
    use super::super::CaptureFile;
    use super::*;

    type Pkt = (u64, Vec<u8>, u32);

    /// Every packet of `path` read sequentially, and the error that ended it.
    fn sequential(path: &Path) -> (Vec<Pkt>, Option<String>) {
        let mut f = CaptureFile::open(path).unwrap();
        let mut out = Vec::new();
        loop {
            match f.next_packet() {
                Ok(Some(p)) => out.push((p.ts_ns, p.data.to_vec(), p.orig_len)),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    /// Every chunk parsed from a guess, then checked in order and parsed
    /// again from the true start where the guess was wrong, as a replay
    /// does; also returns how many chunks needed the second parse.
    fn chunked(path: &Path, size: usize) -> (Vec<Pkt>, Option<String>, usize, u64) {
        let f = CaptureFile::open(path).unwrap();
        let over = f.over_snaplen();
        let chunks = f.into_chunks(size).unwrap();
        let mut out = Vec::new();
        let mut expect = FILE_HEADER_LEN as u64;
        let mut reparsed = 0;
        for i in 0..chunks.count() {
            let mut c = Chunk::new();
            let mut got = Vec::new();
            chunks.parse(i, None, &mut c, |_, p| {
                got.push((p.ts_ns, p.data.to_vec(), p.orig_len))
            });
            if c.start() != Some(expect) {
                reparsed += 1;
                got.clear();
                chunks.parse(i, Some(expect), &mut c, |_, p| {
                    got.push((p.ts_ns, p.data.to_vec(), p.orig_len))
                });
            }
            assert_eq!(c.start(), Some(expect));
            chunks.commit(&c);
            out.extend(got);
            expect = c.end();
            if let Some(e) = c.error() {
                return (
                    out,
                    Some(e.to_string()),
                    reparsed,
                    over.load(Ordering::Relaxed),
                );
            }
        }
        (out, None, reparsed, over.load(Ordering::Relaxed))
    }

    fn capture(big: bool, nanos: bool, n: usize) -> Vec<u8> {
        let mut b = PcapBuilder::new(big, nanos, 1000, 1);
        for i in 0..n {
            let len = 40 + (i * 37) % 1400;
            let data: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            b.packet(
                1_700_000_000 + i as u32,
                (i as u32 * 7919) % 1_000_000,
                &data,
                len as u32 + 4,
            );
        }
        b.finish()
    }

    #[test]
    fn chunks_give_the_sequential_packets_for_every_size() {
        for (big, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
            let tmp = TempFile::new("chunks.pcap", &capture(big, nanos, 500));
            let want = sequential(tmp.path());
            assert_eq!(want.0.len(), 500);
            for size in [1000, 4096, 65536, 8 << 20] {
                let (got, err, reparsed, over) = chunked(tmp.path(), size);
                assert_eq!(got, want.0, "size {size} big {big} nanos {nanos}");
                assert_eq!(err, want.1);
                // Records of up to 1444 bytes against snaplen 1000.
                let over_want = want.0.iter().filter(|p| p.1.len() > 1000).count() as u64;
                assert_eq!(over, over_want);
                if size >= 4096 {
                    assert_eq!(reparsed, 0, "size {size}: a guess was wrong");
                }
            }
        }
    }

    /// Records longer than what a chunk's first read takes past its end
    /// (jumbo frames, 64 KiB offloaded segments): the record crossing a
    /// chunk's end extends the read.
    #[test]
    fn records_longer_than_the_read_past_the_end_extend_it() {
        let mut b = PcapBuilder::new(false, false, 262_144, 1);
        for i in 0..400u32 {
            let len = [60, 1514, 9018, 65_535, 3000, READ_PAST_END as usize + 1][i as usize % 6];
            let data: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
            b.packet(1_700_000_000 + i, i * 1000, &data, len as u32);
        }
        let tmp = TempFile::new("long-records.pcap", &b.finish());
        let want = sequential(tmp.path());
        assert_eq!(want.0.len(), 400);
        for size in [8192, 65_536, 256 << 10] {
            let (got, err, reparsed, _) = chunked(tmp.path(), size);
            assert_eq!(got, want.0, "size {size}");
            assert_eq!(err, want.1, "size {size}");
            // (A smaller chunk may hold no record start, which no guess
            // can find.)
            if size > 65_535 + RECORD_HEADER_LEN {
                assert_eq!(reparsed, 0, "size {size}: a guess was wrong");
            }
        }
    }

    #[test]
    fn chunks_smaller_than_a_record_are_empty_or_hold_one() {
        let tmp = TempFile::new("tiny-chunks.pcap", &capture(true, false, 30));
        let want = sequential(tmp.path());
        for size in [1, 16, 100] {
            let (got, err, _, _) = chunked(tmp.path(), size);
            assert_eq!(got, want.0, "size {size}");
            assert_eq!(err, want.1);
        }
    }

    #[test]
    fn a_pcap_inside_a_payload_fools_the_guess_and_is_caught() {
        // Packet 2 carries a whole pcap capture (records and all) in its
        // payload: a guess starting in it chains through its records.
        let inner = capture(false, false, 40);
        let mut b = PcapBuilder::new(false, false, 0, 1);
        b.packet(1_700_000_000, 0, &[1; 100], 100);
        b.packet(1_700_000_001, 0, &inner, inner.len() as u32);
        for i in 0..50 {
            b.packet(1_700_000_002 + i, 0, &[i as u8; 300], 300);
        }
        let tmp = TempFile::new("nested.pcap", &b.finish());
        let want = sequential(tmp.path());
        assert_eq!(want.0.len(), 52);
        let (got, err, reparsed, _) = chunked(tmp.path(), 4096);
        assert_eq!(got, want.0);
        assert_eq!(err, None);
        assert!(reparsed > 0, "no guess landed in the nested capture");
    }

    #[test]
    fn errors_match_the_sequential_reader() {
        let full = capture(false, false, 300);
        // Cut mid-record, mid-header, and an absurd caplen mid-file.
        let mut corrupt = full.clone();
        let mut at = FILE_HEADER_LEN;
        for _ in 0..150 {
            let caplen = u32::from_le_bytes(full[at + 8..at + 12].try_into().unwrap());
            at += RECORD_HEADER_LEN + caplen as usize;
        }
        corrupt[at + 8..at + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        for (name, bytes) in [
            ("cut-record.pcap", full[..full.len() - 100].to_vec()),
            ("cut-header.pcap", {
                let mut b = full.clone();
                b.extend_from_slice(&[0; 7]);
                b
            }),
            ("corrupt.pcap", corrupt),
        ] {
            let tmp = TempFile::new(name, &bytes);
            let want = sequential(tmp.path());
            assert!(want.1.is_some(), "{name}: no error");
            for size in [64, 4096, 1 << 20] {
                let (got, err, _, _) = chunked(tmp.path(), size);
                assert_eq!(got.len(), want.0.len(), "{name} size {size}");
                assert_eq!(got, want.0, "{name} size {size}");
                assert_eq!(err, want.1, "{name} size {size}");
            }
        }
    }

    /// Damaged captures (random bytes overwritten, random cuts): chunked
    /// reading gives the sequential reader's packets and error, whatever
    /// the damage does to the guesses.
    #[test]
    fn damaged_captures_read_the_same_chunked() {
        let clean = capture(false, false, 120);
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let (mut reparsed, mut errors) = (0, 0);
        for round in 0..150 {
            let mut bytes = clean.clone();
            for _ in 0..1 + next() % 4 {
                let at = FILE_HEADER_LEN + (next() as usize) % (bytes.len() - FILE_HEADER_LEN);
                bytes[at] = next() as u8;
            }
            if round % 3 == 0 {
                let cut = FILE_HEADER_LEN + (next() as usize) % (bytes.len() - FILE_HEADER_LEN);
                bytes.truncate(cut);
            }
            let tmp = TempFile::new(&format!("damaged-{round}.pcap"), &bytes);
            let want = sequential(tmp.path());
            for size in [64, 1000, 4096] {
                let (got, err, again, _) = chunked(tmp.path(), size);
                assert_eq!(got, want.0, "round {round} size {size}");
                assert_eq!(err, want.1, "round {round} size {size}");
                reparsed += again;
            }
            errors += usize::from(want.1.is_some());
        }
        // The damage did break files and fool guesses.
        assert!(errors > 30, "{errors} damaged files had errors");
        assert!(reparsed > 20, "{reparsed} chunks were parsed again");
    }

    #[test]
    fn header_only_capture_has_one_empty_chunk() {
        let tmp = TempFile::new("empty.pcap", &capture(false, false, 0));
        let (got, err, _, _) = chunked(tmp.path(), 4096);
        assert!(got.is_empty());
        assert_eq!(err, None);
    }

    #[test]
    fn only_plain_classic_pcap_files_are_chunked() {
        let mut ng = super::super::testutil::NgBuilder::new(false);
        ng.idb(1, 0, &[]);
        let tmp = TempFile::new("x.pcapng", &ng.finish());
        assert!(!CaptureFile::open(tmp.path()).unwrap().chunkable());
        let mem = CaptureFile::from_bytes(capture(false, false, 3)).unwrap();
        assert!(!mem.chunkable());
        let tmp = TempFile::new("y.pcap", &capture(false, false, 3));
        assert!(CaptureFile::open(tmp.path()).unwrap().chunkable());
    }
}
