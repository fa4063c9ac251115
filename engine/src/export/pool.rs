//! The pre-trigger pool of one worker: the first packets of every flow that
//! a rule may still select, so that a file opened on a late match (after
//! the HTTP response, the TLS handshake) starts with the flow's first
//! packets.
//!
//! One byte ring: records are appended at the head and each
//! flow's records are chained; the oldest record is at the tail. When a
//! record does not fit, the tail moves on: records of flows that no longer
//! buffer (matched, released, ended) are skipped for free, and a live one
//! takes its whole flow's buffer with it (an eviction, counted by the
//! caller). No allocation per packet, the oldest candidates go first.
//!
//! The ring starts small and doubles up to its cap only when the records
//! it holds are live (dead ones at the tail are passed first), so a worker
//! whose candidates decide quickly stays in a small, cache-warm ring and
//! never makes the kernel zero-fill the whole budget; once at its cap it
//! never allocates again.

/// Where a flow's records are: `owner` and `gen` are the caller's (a slot
/// and its buffer generation); a record whose owner moved to another
/// generation is dead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    pub first: u32,
    pub last: u32,
    pub packets: u32,
    pub bytes: u32,
}

pub const NIL: u32 = u32::MAX;

impl Chain {
    pub const EMPTY: Chain = Chain {
        first: NIL,
        last: NIL,
        packets: 0,
        bytes: 0,
    };

    pub fn is_empty(&self) -> bool {
        self.first == NIL
    }
}

/// Header of one record, before its bytes (8-byte aligned).
const HDR: usize = 32;
/// `caplen` of the marker that says "the ring wraps here".
const WRAP: u32 = u32::MAX;

/// One frame as the pool gives it back.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts_ns: u64,
    pub orig_len: u32,
    pub link: u32,
    pub data: &'a [u8],
}

/// First size of the ring.
const START_BYTES: usize = 1 << 20;

pub struct Pool {
    buf: Vec<u8>,
    /// The size the ring may grow to.
    cap: usize,
    head: usize,
    tail: usize,
    /// Bytes between tail and head, wrap waste included.
    used: usize,
}

/// A live record found at the tail when room was needed: its owner's
/// buffer must be dropped (the caller bumps the owner's generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Victim {
    pub owner: u32,
    pub gen: u32,
}

impl Pool {
    pub fn new(bytes: usize) -> Pool {
        let cap = bytes.max(HDR * 4);
        Pool {
            buf: vec![0u8; cap.min(START_BYTES)],
            cap,
            head: 0,
            tail: 0,
            used: 0,
        }
    }

    /// The size the ring may grow to.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes held (records, dead ones not yet passed by the tail, wrap waste).
    pub fn used(&self) -> usize {
        self.used
    }

    fn rd32(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.buf[at..at + 4]);
        u32::from_le_bytes(b)
    }

    fn wr32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn rd64(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[at..at + 8]);
        u64::from_le_bytes(b)
    }

    fn record_len(caplen: usize) -> usize {
        HDR + caplen.div_ceil(8) * 8
    }

    /// Appends a frame to `chain` (owned by `owner`/`gen`). When room is
    /// needed: dead records at the tail are passed, else the ring grows
    /// (up to its cap), else the tail record goes. `reclaim(victim, evict)`
    /// says whether the record's owner is still buffering; with `evict` the
    /// caller then drops that owner's whole buffer (an eviction). When the
    /// owner is `chain`'s own, `false` is returned and nothing is stored.
    pub fn push(
        &mut self,
        chain: &mut Chain,
        owner: u32,
        gen: u32,
        f: &Frame<'_>,
        reclaim: &mut dyn FnMut(Victim, bool) -> bool,
    ) -> bool {
        let need = Self::record_len(f.data.len());
        if need > self.cap / 2 {
            return false;
        }
        let at = loop {
            if let Some(at) = self.fits(need) {
                break at;
            }
            if let Some(v) = self.peek_tail() {
                if !reclaim(v, false) {
                    self.pop_tail();
                    continue;
                }
            }
            if self.grow(need) {
                continue;
            }
            let Some(v) = self.pop_tail() else {
                return false;
            };
            if reclaim(v, true) && v.owner == owner && v.gen == gen {
                return false;
            }
        };
        let b = &mut self.buf[at..at + HDR];
        b[0..4].copy_from_slice(&owner.to_le_bytes());
        b[4..8].copy_from_slice(&gen.to_le_bytes());
        b[8..12].copy_from_slice(&NIL.to_le_bytes());
        b[12..16].copy_from_slice(&f.orig_len.to_le_bytes());
        b[16..24].copy_from_slice(&f.ts_ns.to_le_bytes());
        b[24..28].copy_from_slice(&(f.data.len() as u32).to_le_bytes());
        b[28..32].copy_from_slice(&f.link.to_le_bytes());
        self.buf[at + HDR..at + HDR + f.data.len()].copy_from_slice(f.data);
        let at32 = at as u32;
        if chain.is_empty() {
            chain.first = at32;
        } else {
            let last = chain.last as usize;
            self.wr32(last + 8, at32);
        }
        chain.last = at32;
        chain.packets += 1;
        chain.bytes = chain.bytes.saturating_add(f.data.len() as u32);
        true
    }

    /// Where a record of `need` bytes can go now (moving the head over the
    /// end of the ring when it fits at the start), or None.
    fn fits(&mut self, need: usize) -> Option<usize> {
        let cap = self.buf.len();
        if self.used == 0 {
            self.head = 0;
            self.tail = 0;
        }
        if self.head >= self.tail {
            // Free: [head, cap) and [0, tail).
            if cap - self.head >= need {
                let at = self.head;
                self.head += need;
                self.used += need;
                return Some(at);
            }
            if self.tail > need {
                // Mark the wrap (or let the end be implied when no header fits).
                let waste = cap - self.head;
                if waste >= HDR {
                    let h = self.head;
                    self.wr32(h + 24, WRAP);
                }
                self.used += waste + need;
                self.head = need;
                return Some(0);
            }
            None
        } else if self.tail - self.head > need {
            let at = self.head;
            self.head += need;
            self.used += need;
            Some(at)
        } else {
            None
        }
    }

    /// Grows the ring when it is not wrapped (so every offset stays valid).
    fn grow(&mut self, need: usize) -> bool {
        let len = self.buf.len();
        if len >= self.cap || self.head < self.tail {
            return false;
        }
        let grown = (len * 2).max(self.head + need).min(self.cap);
        self.buf.resize(grown, 0);
        true
    }

    /// The owner of the oldest record (passing a wrap marker).
    fn peek_tail(&mut self) -> Option<Victim> {
        if self.used == 0 {
            return None;
        }
        let cap = self.buf.len();
        if cap - self.tail < HDR || self.rd32(self.tail + 24) == WRAP {
            self.used -= cap - self.tail;
            self.tail = 0;
            if self.used == 0 {
                self.head = 0;
                return None;
            }
        }
        Some(Victim {
            owner: self.rd32(self.tail),
            gen: self.rd32(self.tail + 4),
        })
    }

    /// Drops the oldest record; returns its owner.
    fn pop_tail(&mut self) -> Option<Victim> {
        if self.used == 0 {
            return None;
        }
        let cap = self.buf.len();
        if cap - self.tail < HDR || self.rd32(self.tail + 24) == WRAP {
            self.used -= cap - self.tail;
            self.tail = 0;
            if self.used == 0 {
                return None;
            }
        }
        let t = self.tail;
        let owner = self.rd32(t);
        let gen = self.rd32(t + 4);
        let len = Self::record_len(self.rd32(t + 24) as usize);
        self.tail += len;
        self.used -= len;
        if self.used == 0 {
            self.head = 0;
            self.tail = 0;
        } else if self.tail == cap {
            self.tail = 0;
        }
        Some(Victim { owner, gen })
    }

    /// Calls `f` with each frame of `chain`, oldest first.
    pub fn for_each(&self, chain: &Chain, mut f: impl FnMut(&Frame<'_>)) {
        let mut at = chain.first;
        let mut left = chain.packets;
        while at != NIL && left > 0 {
            let a = at as usize;
            let caplen = self.rd32(a + 24) as usize;
            let frame = Frame {
                ts_ns: self.rd64(a + 16),
                orig_len: self.rd32(a + 12),
                link: self.rd32(a + 28),
                data: &self.buf[a + HDR..a + HDR + caplen],
            };
            f(&frame);
            at = self.rd32(a + 8);
            left -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8, len: usize) -> (u64, Vec<u8>) {
        (u64::from(n), vec![n; len])
    }

    fn collect(p: &Pool, c: &Chain) -> Vec<(u64, usize, u8)> {
        let mut v = Vec::new();
        p.for_each(c, |f| v.push((f.ts_ns, f.data.len(), f.data[0])));
        v
    }

    #[test]
    fn chains_and_eviction_oldest_first() {
        let mut pool = Pool::new(1024);
        let mut chains = [Chain::EMPTY; 3];
        let gens = [0u32; 3];
        let mut evicted = Vec::new();
        // Flow 0 and 1 interleave; 3 records of 32+104 = 136 bytes each... fill up.
        for i in 0..3u8 {
            for owner in 0..2usize {
                let (ts, data) = frame(i * 2 + owner as u8 + 1, 100);
                let ok = pool.push(
                    &mut chains[owner],
                    owner as u32,
                    gens[owner],
                    &Frame {
                        ts_ns: ts,
                        orig_len: 100,
                        link: 1,
                        data: &data,
                    },
                    &mut |v, _| {
                        evicted.push(v);
                        true
                    },
                );
                assert!(ok);
            }
        }
        assert!(evicted.is_empty());
        assert_eq!(pool.used(), 6 * 136);
        assert_eq!(
            collect(&pool, &chains[1]),
            vec![(2, 100, 2), (4, 100, 4), (6, 100, 6)]
        );
        // A third flow needs room: flow 0 (the oldest record) is evicted.
        let (ts, data) = frame(9, 300);
        let ok = pool.push(
            &mut chains[2],
            2,
            0,
            &Frame {
                ts_ns: ts,
                orig_len: 300,
                link: 1,
                data: &data,
            },
            &mut |v, _| {
                evicted.push(v);
                true
            },
        );
        assert!(ok);
        assert_eq!(evicted.first(), Some(&Victim { owner: 0, gen: 0 }));
        assert_eq!(collect(&pool, &chains[2]), vec![(9, 300, 9)]);
    }

    #[test]
    fn dead_records_are_skipped_and_ring_wraps() {
        let mut pool = Pool::new(4096);
        let mut evictions = 0;
        // One flow buffers, is released (gen bumps), many times over: the
        // ring wraps, dead records are passed without eviction.
        for round in 0..200u32 {
            let gen = round;
            let mut c = Chain::EMPTY;
            for k in 0..5u8 {
                let data = vec![k; 61 + (round as usize % 7) * 10];
                let cur = gen;
                assert!(pool.push(
                    &mut c,
                    7,
                    gen,
                    &Frame {
                        ts_ns: u64::from(round) * 10 + u64::from(k),
                        orig_len: 1500,
                        link: 1,
                        data: &data,
                    },
                    &mut |v, _| {
                        let live = v.gen == cur;
                        if live {
                            evictions += 1;
                        }
                        live
                    },
                ));
            }
            let got = collect(&pool, &c);
            assert_eq!(got.len(), 5);
            assert_eq!(got[4].0, u64::from(round) * 10 + 4);
            assert!(pool.used() <= pool.capacity());
        }
        assert_eq!(evictions, 0);
    }

    #[test]
    fn grows_to_its_cap_then_wraps() {
        let mut pool = Pool::new(4 << 20);
        let mut c = Chain::EMPTY;
        let data = vec![7u8; 1000];
        for i in 0..3000u64 {
            assert!(pool.push(
                &mut c,
                1,
                0,
                &Frame {
                    ts_ns: i,
                    orig_len: 1000,
                    link: 1,
                    data: &data
                },
                &mut |_, _| true,
            ));
        }
        assert!(pool.buf.len() > START_BYTES && pool.buf.len() <= 4 << 20);
        let got = collect(&pool, &c);
        assert_eq!(got.len(), 3000);
        assert!(got.iter().enumerate().all(|(i, f)| f.0 == i as u64));
        // Past the cap the oldest (this very flow) is evicted.
        let mut evicted = 0;
        let mut d = Chain::EMPTY;
        for i in 0..5000u64 {
            pool.push(
                &mut d,
                2,
                0,
                &Frame {
                    ts_ns: i,
                    orig_len: 1000,
                    link: 1,
                    data: &data,
                },
                &mut |v, _| {
                    if v.owner == 1 {
                        evicted += 1;
                    }
                    v.owner == 1 && evicted == 1
                },
            );
        }
        assert_eq!(pool.buf.len(), 4 << 20);
        assert!(pool.used() <= pool.capacity());
    }

    #[test]
    fn oversized_frame_is_refused() {
        let mut pool = Pool::new(1024);
        let mut c = Chain::EMPTY;
        let data = vec![0u8; 600];
        assert!(!pool.push(
            &mut c,
            0,
            0,
            &Frame {
                ts_ns: 0,
                orig_len: 600,
                link: 1,
                data: &data
            },
            &mut |_, _| true,
        ));
        assert!(c.is_empty());
    }
}
