//! The contract every packet source implements.

/// Link-layer type of a packet, as the numeric LINKTYPE_* value used by
/// pcap/pcapng (<https://www.tcpdump.org/linktypes.html>). Kept numeric so
/// `capture` does not need to know every link type `dissect` can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101);
    pub const C_HDLC: LinkType = LinkType(104);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured packet, borrowed from the source for the duration of a
/// `poll_batch` callback.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Captured bytes (may be shorter than `orig_len` when a snap length cut it).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// Link-layer type of `data`.
    pub link: LinkType,
}

/// What one `poll_batch` call produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// This many packets were handed to the callback.
    Packets(usize),
    /// Nothing available right now (live sources); poll again.
    Idle,
    /// The source is exhausted (end of file, or the source was stopped).
    End,
}

/// Counters a source keeps about packets it could not deliver (kernel ring
/// drops, file bytes skipped, ...). Merged into the engine's stage accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Packets handed to the callback.
    pub received: u64,
    /// Packets the kernel or NIC dropped before we could read them.
    pub kernel_dropped: u64,
    /// Packets dropped because a ring between stages was full.
    pub ring_full: u64,
    /// Frames the source had to discard as invalid (bad descriptor, bad record).
    pub invalid: u64,
}

/// A source of packets, polled by exactly one worker thread.
///
/// `poll_batch` hands up to `max` packets to `f`, one call per packet, and
/// returns what it did. Bytes are only borrowed for the call: a live source
/// recycles the frame as soon as `f` returns (run to completion).
pub trait PacketSource {
    type Error: std::error::Error + Send + Sync + 'static;

    fn poll_batch<F>(&mut self, max: usize, f: F) -> Result<Poll, Self::Error>
    where
        F: FnMut(&Packet<'_>);

    /// Counters kept by the source itself.
    fn stats(&self) -> SourceStats {
        SourceStats::default()
    }
}
