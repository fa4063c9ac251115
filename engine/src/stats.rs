//! Packet accounting. Every packet a worker receives ends in exactly one
//! fate, so `received == sum of fates` holds at any batch boundary:
//!
//! - `flow`: accounted to a flow directly;
//! - `fragment`: handed to defrag (whose own counters say how each ended);
//! - `not_ip`: no IP layer (ARP, LLDP, STP, ...);
//! - `undecodable`: the frame broke before an IP header could be read
//!   (`decode_errors` says at which layer and why);
//! - `uninspected`: counted but not decoded (`flowtap run --capture-only`).
//!
//! A live capture adds [`CaptureStats`]: what the kernel and the rings did
//! with frames before any worker saw them.

use std::collections::BTreeMap;

use crate::defrag::DefragCounters;
use crate::export::ExportCounters;
use crate::flow::TableCounters;
use crate::stream::StreamCounters;
use dissect::app::AppStats;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub received: u64,
    pub bytes: u64,
    pub flow: u64,
    pub fragment: u64,
    pub not_ip: u64,
    pub undecodable: u64,
    /// Frames that were cut short (snaplen) but still gave a flow what parsed.
    pub truncated: u64,
    /// Counted, not decoded (live `--capture-only` mode).
    pub uninspected: u64,
    /// (layer, reason) -> count, for frames that stopped early or were malformed.
    pub decode_errors: BTreeMap<(&'static str, &'static str), u64>,
    pub flows: TableCounters,
    pub defrag: DefragCounters,
    /// Flow records emitted.
    pub records: u64,
    /// TCP reassembly and protocol detection.
    pub stream: StreamCounters,
    /// Counters of the app-layer parsers of ended flows.
    pub app: AppStats,
    /// Application-layer events emitted.
    pub app_events: u64,
    /// Bytes held by reassembly and parsers at the last update.
    pub stream_bytes_held: u64,
    /// PCAP export (None: no export rule).
    pub export: Option<ExportCounters>,
    /// The PCAP writer thread's counters (set by the run, not by workers).
    pub pcap_writer: Option<output::pcap::PcapSummary>,
}

impl WorkerStats {
    pub fn merge(&mut self, o: &WorkerStats) {
        let (a, b) = (&mut self.stream, &o.stream);
        a.delivered_bytes += b.delivered_bytes;
        a.gaps += b.gaps;
        a.missed_bytes += b.missed_bytes;
        a.ooo_flow_cap_hit += b.ooo_flow_cap_hit;
        a.worker_cap_hit += b.worker_cap_hit;
        a.pending_cap_hit += b.pending_cap_hit;
        a.parse_errors += b.parse_errors;
        a.detected += b.detected;
        a.undetected += b.undetected;
        self.app.add(&o.app);
        self.app_events += o.app_events;
        self.stream_bytes_held += o.stream_bytes_held;
        self.received += o.received;
        self.bytes += o.bytes;
        self.flow += o.flow;
        self.fragment += o.fragment;
        self.not_ip += o.not_ip;
        self.undecodable += o.undecodable;
        self.truncated += o.truncated;
        self.uninspected += o.uninspected;
        for (k, v) in &o.decode_errors {
            *self.decode_errors.entry(*k).or_default() += v;
        }
        let (a, b) = (&mut self.flows, &o.flows);
        a.created += b.created;
        a.expired += b.expired;
        a.evicted += b.evicted;
        a.ended_at_shutdown += b.ended_at_shutdown;
        a.interim_records += b.interim_records;
        a.active += b.active;
        a.tcp_reuse += b.tcp_reuse;
        let (a, b) = (&mut self.defrag, &o.defrag);
        a.fragments += b.fragments;
        a.reassembled += b.reassembled;
        a.fragments_reassembled += b.fragments_reassembled;
        a.timed_out += b.timed_out;
        a.fragments_timed_out += b.fragments_timed_out;
        a.dropped_at_cap += b.dropped_at_cap;
        a.invalid += b.invalid;
        a.overlapping += b.overlapping;
        a.pending_at_end += b.pending_at_end;
        a.fragments_pending_at_end += b.fragments_pending_at_end;
        self.records += o.records;
        if let Some(b) = &o.export {
            self.export.get_or_insert_with(Default::default).merge(b);
        }
    }

    /// Sum of the fates; equals `received` when every packet is accounted.
    pub fn fates(&self) -> u64 {
        self.flow + self.fragment + self.not_ip + self.undecodable + self.uninspected
    }
}

/// Appends a `stats` event line with every counter.
pub fn encode_stats(s: &WorkerStats, ts_ns: u64, workers: usize, buf: &mut Vec<u8>) {
    encode_stats_with(s, None, ts_ns, workers, buf);
}

/// Appends a `stats` event line of a live capture: every counter plus the
/// `capture` section.
pub fn encode_live_stats(
    s: &WorkerStats,
    c: &CaptureStats,
    ts_ns: u64,
    workers: usize,
    buf: &mut Vec<u8>,
) {
    encode_stats_with(s, Some(c), ts_ns, workers, buf);
}

fn encode_stats_with(
    s: &WorkerStats,
    capture: Option<&CaptureStats>,
    ts_ns: u64,
    workers: usize,
    buf: &mut Vec<u8>,
) {
    use output::json::JsonWriter;
    let mut w = JsonWriter::object(buf);
    w.timestamp("timestamp", ts_ns);
    w.str("event_type", "stats");
    let mut st = w.begin_object("stats");
    st.u64("workers", workers as u64);
    {
        let mut p = st.begin_object("packets");
        p.u64("received", s.received);
        p.u64("bytes", s.bytes);
        p.u64("flow", s.flow);
        p.u64("fragment", s.fragment);
        p.u64("not_ip", s.not_ip);
        p.u64("undecodable", s.undecodable);
        p.u64("truncated", s.truncated);
        p.u64("uninspected", s.uninspected);
        p.bool("accounted", s.fates() == s.received);
        p.end_object();
    }
    {
        let mut e = st.begin_object("decode_errors");
        for ((layer, why), n) in &s.decode_errors {
            let mut key = String::with_capacity(layer.len() + why.len() + 1);
            key.push_str(layer);
            key.push('.');
            key.push_str(why);
            e.u64(&key, *n);
        }
        e.end_object();
    }
    {
        let f = &s.flows;
        let mut o = st.begin_object("flows");
        o.u64("created", f.created);
        o.u64("expired", f.expired);
        o.u64("evicted", f.evicted);
        o.u64("ended_at_shutdown", f.ended_at_shutdown);
        o.u64("interim_records", f.interim_records);
        o.u64("active", f.active);
        o.u64("tcp_port_reuse", f.tcp_reuse);
        o.u64("records", s.records);
        o.end_object();
    }
    {
        let d = &s.defrag;
        let mut o = st.begin_object("defrag");
        o.u64("fragments", d.fragments);
        o.u64("reassembled", d.reassembled);
        o.u64("fragments_reassembled", d.fragments_reassembled);
        o.u64("timed_out", d.timed_out);
        o.u64("fragments_timed_out", d.fragments_timed_out);
        o.u64("dropped_at_cap", d.dropped_at_cap);
        o.u64("invalid", d.invalid);
        o.u64("overlapping", d.overlapping);
        o.u64("pending_at_end", d.pending_at_end);
        o.u64("fragments_pending_at_end", d.fragments_pending_at_end);
        o.end_object();
    }
    {
        let t = &s.stream;
        let mut o = st.begin_object("stream");
        o.u64("delivered_bytes", t.delivered_bytes);
        o.u64("gaps", t.gaps);
        o.u64("missed_bytes", t.missed_bytes);
        o.u64("ooo_flow_cap_hit", t.ooo_flow_cap_hit);
        o.u64("worker_cap_hit", t.worker_cap_hit);
        o.u64("pending_cap_hit", t.pending_cap_hit);
        o.u64("bytes_held", s.stream_bytes_held);
        o.end_object();
        let a = &s.app;
        let mut o = st.begin_object("app");
        o.u64("events", s.app_events);
        o.u64("detected", t.detected);
        o.u64("undetected", t.undetected);
        o.u64("parse_errors", t.parse_errors);
        o.u64("malformed", a.malformed);
        o.u64("pending_overflow", a.pending_overflow);
        o.u64("truncated", a.truncated);
        o.u64("gaps", a.gaps);
        o.u64("resyncs", a.resyncs);
        o.u64("orphan_responses", a.orphan_responses);
        o.u64("unanswered", a.unanswered);
        o.end_object();
    }
    if let Some(e) = &s.export {
        let mut o = st.begin_object("export");
        o.u64("candidates", e.candidates);
        o.u64("matches", e.matches);
        o.u64("files_opened", e.files_opened);
        o.u64("matches_without_packets", e.matches_without_packets);
        o.u64("files_limited", e.files_limited);
        o.u64("packets_buffered", e.packets_buffered);
        o.u64("buffers_full", e.buffers_full);
        o.u64("buffers_dropped_on_miss", e.buffers_dropped_on_miss);
        o.u64("pool_evictions", e.pool_evictions);
        o.u64("pool_evicted_packets", e.pool_evicted_packets);
        o.u64("pool_bytes_held", e.pool_bytes_held);
        o.u64("released_early", e.released_early);
        o.u64("packets_exported", e.packets_exported);
        o.u64("bytes_exported", e.bytes_exported);
        o.u64("packets_missed", e.packets_missed);
        o.u64("other_link", e.other_link);
        o.u64("fragments_dropped", e.fragments_dropped);
        if let Some(p) = &s.pcap_writer {
            let mut w = o.begin_object("writer");
            w.u64("files_opened", p.files_opened);
            w.u64("files_written", p.files_written);
            w.u64("packets_written", p.packets_written);
            w.u64("bytes_written", p.bytes_written);
            w.u64("queue_drops", p.queue_drops);
            w.u64("io_errors", p.io_errors);
            w.u64("files_removed_by_retention", p.files_removed_by_retention);
            w.u64("bytes_removed", p.bytes_removed);
            w.end_object();
        }
        o.end_object();
    }
    if let Some(c) = capture {
        let mut o = st.begin_object("capture");
        o.str("source", c.source);
        o.str("iface", &c.iface);
        o.str("mode", &c.mode);
        o.u64("queues", c.queues);
        o.bool("capture_only", c.capture_only);
        o.u64("received", c.received);
        {
            let mut d = o.begin_object("dropped");
            d.u64("total", c.dropped());
            d.u64("socket", c.socket_dropped);
            d.u64("rx_ring_full", c.rx_ring_full);
            d.u64("shard_ring_full", c.shard_ring_full);
            d.u64("invalid", c.invalid);
            d.u64("unbound_queue", c.unbound);
            d.end_object();
        }
        o.u64("fill_ring_empty", c.fill_ring_empty);
        {
            let mut f = o.begin_object("filtered");
            f.u64("vlan", c.filtered_vlan);
            f.u64("cidr", c.filtered_cidr);
            f.u64("protocol", c.filtered_protocol);
            f.u64("port", c.filtered_port);
            f.end_object();
        }
        o.u64("output_events_dropped", c.output_events_dropped);
        o.end_object();
    }
    st.end_object();
    w.finish_line();
}

/// What a live capture's sources did with frames before a worker saw them,
/// summed over queues / sockets. Frames the workers received are accounted
/// in [`WorkerStats`]; these are the ones they never got (and why).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// `afxdp` or `afpacket`.
    pub source: &'static str,
    pub iface: String,
    /// How the source runs, e.g. `native copy`, `generic copy`, `tpacket_v3 fanout`.
    pub mode: String,
    /// Queues (AF_XDP) or sockets (AF_PACKET), one per worker.
    pub queues: u64,
    pub capture_only: bool,
    /// Frames the sources handed to the workers.
    pub received: u64,
    /// Dropped by the kernel socket (XDP_STATISTICS rx_dropped, or
    /// PACKET_STATISTICS tp_drops): no free frame or ring slot.
    pub socket_dropped: u64,
    /// AF_XDP: the RX ring was full (the worker fell behind).
    pub rx_ring_full: u64,
    /// AF_XDP software shard: the ring to the owner worker was full.
    pub shard_ring_full: u64,
    /// Bad descriptors / records the source discarded.
    pub invalid: u64,
    /// AF_XDP: frames that arrived on an RX queue without a socket.
    pub unbound: u64,
    /// AF_XDP: times the kernel found the fill ring empty (informational:
    /// the frames it could not place are in `socket_dropped`).
    pub fill_ring_empty: u64,
    /// Dropped on purpose by the in-kernel pre-filter (`[capture.filter]`).
    pub filtered_vlan: u64,
    pub filtered_cidr: u64,
    pub filtered_protocol: u64,
    pub filtered_port: u64,
    /// Events (flow records) the output queue could not take.
    pub output_events_dropped: u64,
}

impl CaptureStats {
    /// Frames lost before a worker saw them (the pre-filter's are not losses).
    pub fn dropped(&self) -> u64 {
        self.socket_dropped + self.rx_ring_full + self.shard_ring_full + self.invalid + self.unbound
    }

    /// Frames the pre-filter dropped on purpose.
    pub fn filtered(&self) -> u64 {
        self.filtered_vlan + self.filtered_cidr + self.filtered_protocol + self.filtered_port
    }
}
