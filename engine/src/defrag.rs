//! IPv4 and IPv6 fragment reassembly for one worker.
//!
//! Overlap policy: the first bytes received for an offset win (what BSD and
//! Suricata's "bsd" policy do for the common cases); a later fragment only
//! fills holes, and the datagram is counted as overlapping. Memory is
//! bounded by bytes held and datagrams pending; past either limit a new
//! fragment is dropped and counted. A datagram waits at most `timeout_ns`.

use output::metrics::Listing;
use std::net::IpAddr;

use hashbrown::HashMap;

/// Largest datagram IPv4 or IPv6 (without jumbograms) can carry.
const MAX_DATAGRAM: usize = 65_535;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
    /// Innermost VLAN, so identical ids on different segments stay apart.
    pub vlan: u16,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefragCounters {
    /// Fragments handed to the reassembler.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Fragments that became part of a completed datagram.
    pub fragments_reassembled: u64,
    /// Datagrams given up after the timeout, and their fragments.
    pub timed_out: u64,
    pub fragments_timed_out: u64,
    /// Fragments refused because a memory limit was reached.
    pub dropped_at_cap: u64,
    /// Fragments refused as invalid (beyond 64 KiB, zero length, after the end).
    pub invalid: u64,
    /// Datagrams in which fragments overlapped.
    pub overlapping: u64,
    /// Datagrams still pending when capture ended, and their fragments.
    pub pending_at_end: u64,
    pub fragments_pending_at_end: u64,
}

/// A completed datagram: its IP payload and the frames that carried it.
pub struct Reassembled {
    pub payload: Vec<u8>,
    pub frames: u64,
    pub bytes: u64,
}

struct Datagram {
    first_ns: u64,
    data: Vec<u8>,
    /// Covered byte ranges, sorted and merged.
    covered: Vec<(u32, u32)>,
    /// Length of the payload, known once the last fragment arrived.
    total: Option<u32>,
    frames: u64,
    bytes: u64,
    overlap: bool,
}

pub enum Insert {
    /// Held until the rest arrives.
    Held,
    /// The datagram is complete.
    Complete(Reassembled),
    /// Refused (counted).
    Dropped,
}

pub struct Defrag {
    pending: HashMap<FragKey, Datagram>,
    bytes_held: usize,
    max_bytes: usize,
    max_datagrams: usize,
    timeout_ns: u64,
    counters: DefragCounters,
    /// Buffers of finished datagrams, reused.
    spare: Vec<Vec<u8>>,
}

impl Defrag {
    pub fn new(max_bytes: usize, max_datagrams: usize, timeout_ns: u64) -> Defrag {
        Defrag {
            pending: HashMap::with_capacity(max_datagrams.min(1024)),
            bytes_held: 0,
            max_bytes,
            max_datagrams,
            timeout_ns,
            counters: DefragCounters::default(),
            spare: Vec::new(),
        }
    }

    pub fn counters(&self) -> DefragCounters {
        self.counters
    }

    /// Gives back a payload buffer once the caller is done with it.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < 64 {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Adds one fragment: `offset` in bytes, `more` = more fragments follow,
    /// `data` = this fragment's part of the IP payload.
    pub fn insert(
        &mut self,
        key: FragKey,
        offset: u32,
        more: bool,
        data: &[u8],
        ts_ns: u64,
        frame_bytes: u64,
    ) -> Insert {
        self.counters.fragments += 1;
        let start = offset as usize;
        let end = start + data.len();
        if end > MAX_DATAGRAM || (data.is_empty() && more) {
            self.counters.invalid += 1;
            return Insert::Dropped;
        }
        if !self.pending.contains_key(&key) {
            if self.pending.len() >= self.max_datagrams
                || self.bytes_held + data.len() > self.max_bytes
            {
                self.counters.dropped_at_cap += 1;
                return Insert::Dropped;
            }
            let data_buf = self.spare.pop().unwrap_or_default();
            self.pending.insert(
                key,
                Datagram {
                    first_ns: ts_ns,
                    data: data_buf,
                    covered: Vec::new(),
                    total: None,
                    frames: 0,
                    bytes: 0,
                    overlap: false,
                },
            );
        }
        let Some(dg) = self.pending.get_mut(&key) else {
            return Insert::Dropped;
        };
        if let Some(total) = dg.total {
            if end > total as usize || (!more && end != total as usize) {
                self.counters.invalid += 1;
                return Insert::Dropped;
            }
        }
        let grow = end.saturating_sub(dg.data.len());
        if self.bytes_held + grow > self.max_bytes {
            self.counters.dropped_at_cap += 1;
            return Insert::Dropped;
        }
        if !more {
            dg.total = Some(end as u32);
        }
        if dg.data.len() < end {
            dg.data.resize(end, 0);
            self.bytes_held += grow;
        }
        // Copy only into holes: the first bytes for an offset win.
        let mut pos = start as u32;
        let end32 = end as u32;
        let mut i = 0;
        let mut new_ranges = 0;
        while pos < end32 {
            // Next covered range at or after pos.
            while i < dg.covered.len() && dg.covered[i].1 <= pos {
                i += 1;
            }
            let hole_end = match dg.covered.get(i) {
                Some(&(s, _)) if s <= pos => {
                    // Inside a covered range: skip it.
                    dg.overlap = true;
                    pos = dg.covered[i].1.min(end32);
                    continue;
                }
                Some(&(s, _)) => s.min(end32),
                None => end32,
            };
            let (a, b) = (pos as usize, hole_end as usize);
            if let (Some(dst), Some(src)) = (dg.data.get_mut(a..b), data.get(a - start..b - start))
            {
                dst.copy_from_slice(src);
            }
            dg.covered.insert(i, (pos, hole_end));
            new_ranges += 1;
            i += 1;
            pos = hole_end;
        }
        if new_ranges > 0 {
            merge_ranges(&mut dg.covered);
        }
        dg.frames += 1;
        dg.bytes += frame_bytes;
        let complete =
            matches!(dg.total, Some(t) if dg.covered.len() == 1 && dg.covered[0] == (0, t));
        if !complete {
            return Insert::Held;
        }
        let Some(mut dg) = self.pending.remove(&key) else {
            return Insert::Held;
        };
        self.bytes_held = self.bytes_held.saturating_sub(dg.data.len());
        self.counters.reassembled += 1;
        self.counters.fragments_reassembled += dg.frames;
        if dg.overlap {
            self.counters.overlapping += 1;
        }
        if let Some(t) = dg.total {
            dg.data.truncate(t as usize);
        }
        Insert::Complete(Reassembled {
            payload: dg.data,
            frames: dg.frames,
            bytes: dg.bytes,
        })
    }

    /// Drops datagrams that waited longer than the timeout.
    pub fn expire(&mut self, now_ns: u64) {
        if self.pending.is_empty() {
            return;
        }
        let timeout = self.timeout_ns;
        let mut freed = 0usize;
        let mut n = 0u64;
        let mut frames = 0u64;
        let spare = &mut self.spare;
        self.pending.retain(|_, dg| {
            if now_ns.saturating_sub(dg.first_ns) <= timeout {
                return true;
            }
            freed += dg.data.len();
            n += 1;
            frames += dg.frames;
            if spare.len() < 64 {
                let mut b = std::mem::take(&mut dg.data);
                b.clear();
                spare.push(b);
            }
            false
        });
        self.bytes_held = self.bytes_held.saturating_sub(freed);
        self.counters.timed_out += n;
        self.counters.fragments_timed_out += frames;
    }

    /// Capture ended: count what is still waiting.
    pub fn finish(&mut self) {
        for (_, dg) in self.pending.drain() {
            self.counters.pending_at_end += 1;
            self.counters.fragments_pending_at_end += dg.frames;
        }
        self.bytes_held = 0;
    }
}

fn merge_ranges(r: &mut Vec<(u32, u32)>) {
    r.sort_unstable();
    let mut out = 0;
    for i in 1..r.len() {
        if r[i].0 <= r[out].1 {
            r[out].1 = r[out].1.max(r[i].1);
        } else {
            out += 1;
            r[out] = r[i];
        }
    }
    r.truncate(out + 1);
}

impl DefragCounters {
    /// Lists these counters (the `defrag` section of the `stats` event and
    /// their metrics).
    pub fn list(&self, v: &mut dyn Listing) {
        use output::metrics::{
            fig,
            Kind::{Counter, Gauge},
        };
        let d = self;
        for (key, metric, help, value) in [
            (
                "fragments",
                "flowtap_defrag_fragments_total",
                "IP fragments handed to the reassembler.",
                d.fragments,
            ),
            (
                "reassembled",
                "flowtap_defrag_datagrams_reassembled_total",
                "IP datagrams completed from fragments.",
                d.reassembled,
            ),
            (
                "fragments_reassembled",
                "flowtap_defrag_fragments_reassembled_total",
                "Fragments that became part of a completed datagram.",
                d.fragments_reassembled,
            ),
            (
                "timed_out",
                "flowtap_defrag_datagrams_timed_out_total",
                "Datagrams given up after the defrag timeout.",
                d.timed_out,
            ),
            (
                "fragments_timed_out",
                "flowtap_defrag_fragments_timed_out_total",
                "Fragments of datagrams given up after the timeout.",
                d.fragments_timed_out,
            ),
        ] {
            fig(v, key, metric, Counter, help, &[], value);
        }
        const REFUSED: &str =
            "Fragments refused, by reason: cap (memory limit reached), invalid (beyond 64 KiB, empty, after the end).";
        fig(
            v,
            "dropped_at_cap",
            "flowtap_defrag_fragments_refused_total",
            Counter,
            REFUSED,
            &[("reason", "cap")],
            d.dropped_at_cap,
        );
        fig(
            v,
            "invalid",
            "flowtap_defrag_fragments_refused_total",
            Counter,
            REFUSED,
            &[("reason", "invalid")],
            d.invalid,
        );
        fig(
            v,
            "overlapping",
            "flowtap_defrag_datagrams_overlapping_total",
            Counter,
            "Datagrams in which fragments overlapped.",
            &[],
            d.overlapping,
        );
        fig(
            v,
            "pending_at_end",
            "flowtap_defrag_datagrams_pending_at_end",
            Gauge,
            "Datagrams still incomplete when the capture ended (0 while it runs).",
            &[],
            d.pending_at_end,
        );
        fig(
            v,
            "fragments_pending_at_end",
            "flowtap_defrag_fragments_pending_at_end",
            Gauge,
            "Fragments of the datagrams still incomplete when the capture ended.",
            &[],
            d.fragments_pending_at_end,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: "10.0.0.1".parse().expect("ip"),
            dst: "10.0.0.2".parse().expect("ip"),
            id,
            proto: 17,
            vlan: 0,
        }
    }

    fn complete(r: Insert) -> Reassembled {
        match r {
            Insert::Complete(r) => r,
            _ => panic!("not complete"),
        }
    }

    #[test]
    fn reassembles_out_of_order() {
        let mut d = Defrag::new(1 << 20, 16, 30_000_000_000);
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        assert!(matches!(
            d.insert(key(1), 2400, false, &payload[2400..], 1, 700),
            Insert::Held
        ));
        assert!(matches!(
            d.insert(key(1), 0, true, &payload[..1200], 2, 1300),
            Insert::Held
        ));
        let r = complete(d.insert(key(1), 1200, true, &payload[1200..2400], 3, 1300));
        assert_eq!(r.payload, payload);
        assert_eq!(r.frames, 3);
        assert_eq!(r.bytes, 3300);
        assert_eq!(d.counters().reassembled, 1);
        assert_eq!(d.counters().overlapping, 0);
    }

    #[test]
    fn first_data_wins_on_overlap() {
        let mut d = Defrag::new(1 << 20, 16, 30_000_000_000);
        d.insert(key(2), 0, true, &[1; 16], 1, 50);
        let r = complete(d.insert(key(2), 8, false, &[2; 16], 2, 50));
        assert_eq!(&r.payload[..16], &[1; 16]);
        assert_eq!(&r.payload[16..], &[2; 8]);
        assert_eq!(d.counters().overlapping, 1);
    }

    #[test]
    fn caps_and_timeouts_are_counted() {
        let mut d = Defrag::new(100, 1, 10);
        assert!(matches!(
            d.insert(key(3), 0, true, &[0; 64], 0, 100),
            Insert::Held
        ));
        // second datagram: over the datagram cap
        assert!(matches!(
            d.insert(key(4), 0, true, &[0; 8], 0, 100),
            Insert::Dropped
        ));
        // same datagram, over the byte cap
        assert!(matches!(
            d.insert(key(3), 64, true, &[0; 64], 0, 100),
            Insert::Dropped
        ));
        assert_eq!(d.counters().dropped_at_cap, 2);
        d.expire(100);
        assert_eq!(d.counters().timed_out, 1);
        assert_eq!(d.counters().fragments_timed_out, 1);
        assert!(matches!(
            d.insert(key(4), 0, true, &[0; 8], 200, 100),
            Insert::Held
        ));
        d.finish();
        assert_eq!(d.counters().pending_at_end, 1);
    }

    #[test]
    fn rejects_datagrams_over_64k() {
        let mut d = Defrag::new(1 << 20, 16, 10);
        assert!(matches!(
            d.insert(key(5), 65_000, true, &[0; 1000], 0, 1),
            Insert::Dropped
        ));
        assert_eq!(d.counters().invalid, 1);
    }
}
