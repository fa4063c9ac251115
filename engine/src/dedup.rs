//! Duplicate frames from overlapping mirror sessions (a SPAN of ingress on
//! one port and egress on another, or two TAPs on one path) are seen twice,
//! microseconds apart. They would double the flow's packets and bytes and
//! look like retransmissions to reassembly, so each worker recognises them
//! before the flow table, as dedup appliances do: a hash of the innermost IP
//! packet with the fields a hop changes left out (TTL / hop limit, the IPv4
//! header checksum) and without any L2 or tunnel header, remembered for a
//! short window in a fixed table (no allocation per packet, bounded memory).
//!
//! The key covers the IP header, the L4 header and the first bytes after
//! it (the L4 checksum stands for the rest), so it costs the same for a
//! large packet as for a small one.
//!
//! A true retransmission carries the same bytes but comes an RTT or more
//! later and (IPv4) with another IP id, so it is outside the window or
//! hashes differently. The table is direct-mapped: a frame evicts what was
//! in its slot, which can only miss a duplicate, never invent one (the key
//! is 64 bits).

use dissect::packet::Decoded;
use output::metrics::{fig, Kind::Counter, Listing};
use serde::Deserialize;

/// `[dedup]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DedupSection {
    /// `off`, `count` (duplicates counted, still processed) or `drop`
    /// (counted and dropped before the flow table).
    pub mode: String,
    /// Two copies of one frame at most this far apart (capture time) are
    /// duplicates.
    pub window_us: u64,
    /// Frames remembered per worker (rounded up to a power of two; 16 bytes each).
    pub slots: usize,
}

impl Default for DedupSection {
    fn default() -> Self {
        DedupSection {
            mode: "off".into(),
            window_us: 1_000,
            slots: 1 << 16,
        }
    }
}

/// What the worker does with a duplicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DedupMode {
    Count,
    Drop,
}

impl DedupSection {
    /// The mode, or None when off; the error names the key.
    pub fn mode(&self) -> Result<Option<DedupMode>, String> {
        match self.mode.as_str() {
            "off" => Ok(None),
            "count" => Ok(Some(DedupMode::Count)),
            "drop" => Ok(Some(DedupMode::Drop)),
            o => Err(format!("dedup.mode: `{o}`: use off, count or drop")),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.mode()?;
        if self.slots == 0 || self.slots > 1 << 26 {
            return Err("dedup.slots: between 1 and 67108864".into());
        }
        if self.window_us == 0 {
            return Err("dedup.window_us: must be at least 1".into());
        }
        Ok(())
    }
}

/// Counters of one worker's duplicate detection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DedupCounters {
    /// IP packets looked at.
    pub checked: u64,
    /// Of which copies of a frame seen within the window.
    pub duplicates: u64,
    /// Of which dropped (mode `drop`).
    pub dropped: u64,
}

impl DedupCounters {
    pub fn add(&mut self, o: &DedupCounters) {
        self.checked += o.checked;
        self.duplicates += o.duplicates;
        self.dropped += o.dropped;
    }

    /// Lists these counters (the `dedup` section of the `stats` event and
    /// their metrics).
    pub fn list(&self, v: &mut dyn Listing) {
        fig(
            v,
            "checked",
            "flowtap_dedup_checked_total",
            Counter,
            "IP packets the duplicate detection looked at.",
            &[],
            self.checked,
        );
        fig(
            v,
            "duplicates",
            "flowtap_dedup_duplicates_total",
            Counter,
            "Copies of a frame seen within the dedup window (overlapping mirror sessions).",
            &[],
            self.duplicates,
        );
        fig(
            v,
            "dropped",
            "flowtap_dedup_dropped_total",
            Counter,
            "Duplicates dropped before the flow table (dedup.mode = drop).",
            &[],
            self.dropped,
        );
    }
}

/// One worker's duplicate detector.
pub struct Dedup {
    mode: DedupMode,
    window_ns: u64,
    /// (key, capture time) of the last frame that hashed to each slot;
    /// key 0 = empty.
    slots: Vec<(u64, u64)>,
    mask: usize,
    pub counters: DedupCounters,
}

impl Dedup {
    pub fn new(mode: DedupMode, sec: &DedupSection) -> Dedup {
        let n = sec.slots.max(1).next_power_of_two();
        Dedup {
            mode,
            window_ns: sec.window_us.saturating_mul(1_000),
            slots: vec![(0, 0); n],
            mask: n - 1,
            counters: DedupCounters::default(),
        }
    }

    /// Whether the packet should be dropped: it is a copy of a frame seen
    /// less than the window ago and the mode is `drop`. `frame` is the
    /// captured frame `d` was decoded from.
    #[inline]
    pub fn is_dropped(&mut self, frame: &[u8], d: &Decoded<'_>, ts_ns: u64) -> bool {
        let Some(key) = packet_key(frame, d) else {
            return false;
        };
        self.counters.checked += 1;
        let slot = &mut self.slots[(key as usize) & self.mask];
        let dup = slot.0 == key && ts_ns.saturating_sub(slot.1) <= self.window_ns;
        if !dup {
            *slot = (key, ts_ns);
            return false;
        }
        self.counters.duplicates += 1;
        if self.mode == DedupMode::Drop {
            self.counters.dropped += 1;
            return true;
        }
        false
    }
}

/// Bytes after the IP header that go into a packet's key.
const KEY_PAYLOAD_BYTES: usize = 64;

/// The innermost IP packet's identity: its header with TTL / hop limit and
/// the IPv4 checksum left out, then everything after it. None when the
/// header is not within the frame.
fn packet_key(frame: &[u8], d: &Decoded<'_>) -> Option<u64> {
    let ip = d.ip.as_ref()?;
    // Where the IP payload starts in the frame (a slice of it, unless the
    // packet came out of defragmentation, which happens after this).
    let start = (d.ip_payload.as_ptr() as usize).checked_sub(frame.as_ptr() as usize)?;
    let hdr_len = usize::from(ip.header_len);
    let header = frame.get(start.checked_sub(hdr_len)?..start)?;
    let mut h = Hasher::new(d.ip_payload.len() as u64);
    if ip.version == 4 && header.len() >= 20 {
        // 0..8: version, length, id, flags/offset; 8: TTL; 9: protocol;
        // 10..12: checksum (changes with the TTL); 12..: addresses, options
        h.bytes(&header[..8]);
        h.bytes(&header[9..10]);
        h.bytes(&header[12..]);
    } else if header.len() >= 8 {
        // 7: hop limit
        h.bytes(&header[..7]);
        h.bytes(&header[8..]);
    } else {
        return None;
    }
    // The L4 header and the start of the data: the L4 checksum (TCP, UDP,
    // SCTP, ICMP) covers the rest, so two packets alike this far are the
    // same packet; hashing all of it would cost more than the rest of the
    // worker's work on a large packet.
    h.bytes(
        d.ip_payload
            .get(..KEY_PAYLOAD_BYTES)
            .unwrap_or(d.ip_payload),
    );
    Some(h.finish().max(1))
}

/// A fast, non-cryptographic hash, eight bytes at a time.
struct Hasher(u64);

impl Hasher {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    fn new(seed: u64) -> Hasher {
        Hasher(seed ^ Self::K)
    }

    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(Self::K);
    }

    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        let mut words = b.chunks_exact(8);
        for w in &mut words {
            let mut x = [0u8; 8];
            x.copy_from_slice(w);
            self.word(u64::from_le_bytes(x));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut x = [0u8; 8];
            x[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(x) ^ (rest.len() as u64) << 59);
        }
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}
