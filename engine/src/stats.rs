//! Packet accounting. Every packet a worker receives ends in exactly one
//! fate, so `received == sum of fates` holds at any batch boundary:
//!
//! - `flow`: accounted to a flow directly;
//! - `fragment`: handed to defrag (whose own counters say how each ended);
//! - `not_ip`: no IP layer (ARP, LLDP, STP, ...);
//! - `undecodable`: the frame broke before an IP header could be read
//!   (`decode_errors` says at which layer and why);
//! - `uninspected`: counted but not decoded (`flowtap run --capture-only`);
//! - `duplicate`: a copy of a frame seen within the dedup window, dropped
//!   (`dedup.mode = "drop"`).
//!
//! A live capture adds [`CaptureStats`]: what the kernel and the rings did
//! with frames before any worker saw them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::dedup::DedupCounters;
use crate::defrag::DefragCounters;
use crate::export::ExportCounters;
use crate::flow::TableCounters;
use crate::stream::StreamCounters;
use dissect::app::{AppProto, AppStats};
use output::event::StatsEvent;
use output::metrics::StatsBuilder;
use output::metrics::{
    fig, list_pcap_writer, list_sinks, Exposition, Figure, Kind, Listing, MetricsError,
    MetricsServer,
};
use output::pcap::{PcapCounters, PcapSummary};
use output::{OutputsProbe, SinkSnapshot};

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
    /// Copies of a frame seen within the dedup window, dropped (`dedup.mode = "drop"`).
    pub duplicate: u64,
    /// Duplicate detection (None: off).
    pub dedup: Option<DedupCounters>,
    /// (layer, reason) -> count, for frames that stopped early or were malformed.
    pub decode_errors: BTreeMap<(&'static str, &'static str), u64>,
    pub flows: TableCounters,
    pub defrag: DefragCounters,
    /// Flow records emitted.
    pub records: u64,
    /// TCP reassembly and protocol detection.
    pub stream: StreamCounters,
    /// Counters of the app-layer parsers of ended flows (all protocols).
    pub app: AppStats,
    /// The same, per protocol (indexed by [`AppProto::index`]).
    pub app_by_proto: [AppStats; AppProto::COUNT],
    /// Application-layer events emitted.
    pub app_events: u64,
    /// Of which, by type.
    pub app_by_type: AppEventCounts,
    /// Bytes held by reassembly and parsers at the last update.
    pub stream_bytes_held: u64,
    /// PCAP export (None: no export rule).
    pub export: Option<ExportCounters>,
    /// Application metrics (None: off); listed per worker on `/metrics`
    /// only, not summed into the `stats` event.
    pub app_metrics: Option<Box<crate::kpi::AppMetrics>>,
}

impl WorkerStats {
    pub fn merge(&mut self, o: &WorkerStats) {
        let (a, b) = (&mut self.stream, &o.stream);
        a.delivered_bytes += b.delivered_bytes;
        a.gaps += b.gaps;
        a.missed_bytes += b.missed_bytes;
        a.ooo_flow_cap_hit += b.ooo_flow_cap_hit;
        a.reorder_filled += b.reorder_filled;
        a.reorder_expired += b.reorder_expired;
        a.worker_cap_hit += b.worker_cap_hit;
        a.pending_cap_hit += b.pending_cap_hit;
        a.parse_errors += b.parse_errors;
        a.detected += b.detected;
        a.undetected += b.undetected;
        self.app.add(&o.app);
        for (a, b) in self.app_by_proto.iter_mut().zip(&o.app_by_proto) {
            a.add(b);
        }
        self.app_events += o.app_events;
        self.app_by_type.add(&o.app_by_type);
        self.stream_bytes_held += o.stream_bytes_held;
        self.received += o.received;
        self.bytes += o.bytes;
        self.flow += o.flow;
        self.fragment += o.fragment;
        self.not_ip += o.not_ip;
        self.undecodable += o.undecodable;
        self.truncated += o.truncated;
        self.uninspected += o.uninspected;
        self.duplicate += o.duplicate;
        if let Some(b) = &o.dedup {
            self.dedup.get_or_insert_with(Default::default).add(b);
        }
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
        a.one_sided_tcp_toserver += b.one_sided_tcp_toserver;
        a.one_sided_tcp_toclient += b.one_sided_tcp_toclient;
        a.one_sided_other += b.one_sided_other;
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
        self.flow
            + self.fragment
            + self.not_ip
            + self.undecodable
            + self.uninspected
            + self.duplicate
    }
}

/// Application-layer events emitted, by protocol (indexed by [`AppProto::index`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppEventCounts(pub [u64; AppProto::COUNT]);

impl AppEventCounts {
    pub fn count(&mut self, p: AppProto) {
        self.0[p.index()] += 1;
    }

    pub fn get(&self, p: AppProto) -> u64 {
        self.0[p.index()]
    }

    pub fn add(&mut self, o: &AppEventCounts) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
}

/// Every counter at one moment: per worker, of the capture sources (live)
/// and of the sinks. The `stats` event and the Prometheus exposition are
/// both written from it through the same listing ([`list_worker`],
/// [`list_capture`], [`output::metrics::list_sinks`]); the event carries
/// the sum over workers of what the metrics carry per `worker`.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub per_worker: Vec<WorkerStats>,
    pub capture: Option<CaptureStats>,
    pub sinks: Vec<SinkSnapshot>,
    /// The PCAP export writer thread (None: no export rule).
    pub pcap_writer: Option<PcapSummary>,
}

impl Snapshot {
    /// The sum over workers.
    pub fn total(&self) -> WorkerStats {
        let mut sum = WorkerStats::default();
        for w in &self.per_worker {
            sum.merge(w);
        }
        sum
    }

    /// The `stats` event at `ts_ns`: the sum over workers, then the
    /// capture, export and sinks, listed as `/metrics` lists them.
    pub fn stats_event(&self, ts_ns: u64) -> StatsEvent {
        let total = self.total();
        let mut b = StatsBuilder::new();
        self.list_into(&total, &mut b);
        b.finish(ts_ns)
    }

    /// Appends the `stats` event as a native JSON line.
    pub fn encode_stats(&self, ts_ns: u64, buf: &mut Vec<u8>) {
        output::schema::encode_stats(
            output::Schema::Native,
            &output::EncodeOptions::default(),
            &self.stats_event(ts_ns),
            buf,
        );
    }

    fn list_into(&self, total: &WorkerStats, v: &mut dyn Listing) {
        v.figure(&Figure {
            key: "workers",
            metric: "flowtap_workers",
            kind: Kind::Gauge,
            help: "Worker threads (each owns the flows its shard hash gives it).",
            labels: &[],
            value: self.per_worker.len() as u64,
        });
        list_worker(total, v);
        if let Some(e) = &total.export {
            v.open("export");
            e.list(v);
            if let Some(w) = &self.pcap_writer {
                v.open("writer");
                list_pcap_writer(w, v);
                v.close();
            }
            v.close();
        }
        if let Some(c) = &self.capture {
            list_capture(c, v);
        }
        list_sinks(&self.sinks, v);
    }

    /// The Prometheus text exposition: worker counters per `worker`.
    pub fn exposition(&self) -> String {
        let mut e = Exposition::new();
        e.figure(&Figure {
            key: "workers",
            metric: "flowtap_workers",
            kind: Kind::Gauge,
            help: "Worker threads (each owns the flows its shard hash gives it).",
            labels: &[],
            value: self.per_worker.len() as u64,
        });
        for (i, w) in self.per_worker.iter().enumerate() {
            let i = i.to_string();
            e.set_scope(&[("worker", &i)]);
            list_worker(w, &mut e);
            if let Some(x) = &w.export {
                x.list(&mut e);
            }
            if let Some(m) = &w.app_metrics {
                m.list(&mut e);
            }
        }
        e.set_scope(&[]);
        if let Some(w) = &self.pcap_writer {
            list_pcap_writer(w, &mut e);
        }
        if let Some(c) = &self.capture {
            list_capture(c, &mut e);
        }
        list_sinks(&self.sinks, &mut e);
        e.render()
    }
}

/// Lists one worker's counters (or their sum): the `packets`,
/// `decode_errors`, `flows`, `events`, `defrag`, `stream` and `app`
/// sections of the `stats` event.
pub fn list_worker(s: &WorkerStats, v: &mut dyn Listing) {
    use Kind::{Counter, Gauge};
    v.open("packets");
    fig(
        v,
        "received",
        "flowtap_packets_received_total",
        Counter,
        "Packets a worker received.",
        &[],
        s.received,
    );
    fig(
        v,
        "bytes",
        "flowtap_received_bytes_total",
        Counter,
        "Bytes of the packets a worker received (whole frames as on the wire).",
        &[],
        s.bytes,
    );
    const FATE: &str = "Packets by fate: flow (to a flow), fragment (to defrag), not_ip, undecodable, uninspected (capture only), duplicate (dedup on); they sum to the packets received.";
    for (key, value) in [
        ("flow", s.flow),
        ("fragment", s.fragment),
        ("not_ip", s.not_ip),
        ("undecodable", s.undecodable),
    ] {
        fig(
            v,
            key,
            "flowtap_packet_fates_total",
            Counter,
            FATE,
            &[("fate", key)],
            value,
        );
    }
    fig(
        v,
        "truncated",
        "flowtap_packets_truncated_total",
        Counter,
        "Packets cut short (snaplen) that still gave a flow what parsed.",
        &[],
        s.truncated,
    );
    fig(
        v,
        "uninspected",
        "flowtap_packet_fates_total",
        Counter,
        FATE,
        &[("fate", "uninspected")],
        s.uninspected,
    );
    if s.dedup.is_some() {
        fig(
            v,
            "duplicate",
            "flowtap_packet_fates_total",
            Counter,
            FATE,
            &[("fate", "duplicate")],
            s.duplicate,
        );
    }
    v.flag("accounted", s.fates() == s.received);
    v.close();

    if let Some(d) = &s.dedup {
        v.open("dedup");
        d.list(v);
        v.close();
    }

    v.open("decode_errors");
    const DECODE: &str = "Frames that stopped early or were malformed, by layer and reason.";
    v.declare("flowtap_decode_errors_total", Counter, DECODE);
    let mut key = String::new();
    for ((layer, why), n) in &s.decode_errors {
        key.clear();
        key.push_str(layer);
        key.push('.');
        key.push_str(why);
        fig(
            v,
            &key,
            "flowtap_decode_errors_total",
            Counter,
            DECODE,
            &[("layer", layer), ("reason", why)],
            *n,
        );
    }
    v.close();

    v.open("flows");
    s.flows.list(v);
    v.number("records", s.records);
    v.close();

    v.open("events");
    const EVENTS: &str = "Events emitted by the workers, by type (before the sinks' type filters).";
    let by_proto = AppProto::ALL
        .iter()
        .map(|&p| (p.as_str(), s.app_by_type.get(p)));
    for (t, n) in std::iter::once(("flow", s.records)).chain(by_proto) {
        fig(
            v,
            t,
            "flowtap_events_total",
            Counter,
            EVENTS,
            &[("type", t)],
            n,
        );
    }
    v.close();

    v.open("defrag");
    s.defrag.list(v);
    v.close();

    let t = &s.stream;
    v.open("stream");
    t.list(v);
    fig(
        v,
        "bytes_held",
        "flowtap_stream_held_bytes",
        Gauge,
        "Bytes held by reassembly and the app-layer parsers.",
        &[],
        s.stream_bytes_held,
    );
    v.close();

    let a = &s.app;
    v.open("app");
    v.number("events", s.app_events);
    for (key, metric, help, value) in [
        (
            "detected",
            "flowtap_app_flows_detected_total",
            "Flows whose application protocol was detected.",
            t.detected,
        ),
        (
            "undetected",
            "flowtap_app_flows_undetected_total",
            "Flows with payload whose application protocol was not detected.",
            t.undetected,
        ),
        (
            "parse_errors",
            "flowtap_app_parse_errors_total",
            "App-layer parse errors.",
            t.parse_errors,
        ),
        (
            "malformed",
            "flowtap_app_malformed_total",
            "Malformed app-layer messages.",
            a.malformed,
        ),
        (
            "pending_overflow",
            "flowtap_app_pending_overflow_total",
            "Transactions dropped because too many were pending.",
            a.pending_overflow,
        ),
        (
            "truncated",
            "flowtap_app_truncated_total",
            "App-layer fields cut at their limit.",
            a.truncated,
        ),
        (
            "gaps",
            "flowtap_app_gaps_total",
            "Stream gaps the parsers had to skip.",
            a.gaps,
        ),
        (
            "resyncs",
            "flowtap_app_resyncs_total",
            "Times a parser found its place again after a gap or an error.",
            a.resyncs,
        ),
        (
            "orphan_responses",
            "flowtap_app_orphan_responses_total",
            "Responses without a request.",
            a.orphan_responses,
        ),
        (
            "unanswered",
            "flowtap_app_unanswered_total",
            "Requests emitted without a response.",
            a.unanswered,
        ),
    ] {
        fig(v, key, metric, Counter, help, &[], value);
    }
    // The parsers' counters per registered protocol.
    const PARSER: &str = "App-layer parser counters by protocol (malformed, truncated, gaps, resyncs, orphan_responses, unanswered, pending_overflow).";
    v.open("by_protocol");
    for &p in AppProto::ALL {
        let a = &s.app_by_proto[p.index()];
        v.open(p.as_str());
        for (key, value) in [
            ("malformed", a.malformed),
            ("truncated", a.truncated),
            ("gaps", a.gaps),
            ("resyncs", a.resyncs),
            ("orphan_responses", a.orphan_responses),
            ("unanswered", a.unanswered),
            ("pending_overflow", a.pending_overflow),
        ] {
            fig(
                v,
                key,
                "flowtap_app_parser_total",
                Counter,
                PARSER,
                &[("proto", p.as_str()), ("counter", key)],
                value,
            );
        }
        v.close();
    }
    v.close();
    v.close();
}

/// Lists a live capture's source counters: the `capture` section.
pub fn list_capture(c: &CaptureStats, v: &mut dyn Listing) {
    use Kind::Counter;
    v.open("capture");
    v.text("source", c.source);
    v.text("iface", &c.iface);
    v.text("mode", &c.mode);
    v.info(
        "flowtap_capture_info",
        "The live capture: source, interface and mode.",
        &[("source", c.source), ("iface", &c.iface), ("mode", &c.mode)],
    );
    v.number("queues", c.queues);
    v.flag("capture_only", c.capture_only);
    v.figure(&Figure {
        key: "received",
        metric: "flowtap_capture_packets_received_total",
        kind: Counter,
        help: "Frames the capture sources handed to the workers.",
        labels: &[],
        value: c.received,
    });
    v.open("dropped");
    v.number("total", c.dropped());
    const DROPPED: &str = "Frames lost before a worker saw them, by reason: socket (kernel: no free frame or slot), rx_ring_full, shard_ring_full (software shard), invalid, unbound_queue (RX queue without a socket); DPDK: nic_missed (no free RX descriptor), nic_errors, nic_no_mbuf (mbuf pool empty).";
    for (key, value) in [
        ("socket", c.socket_dropped),
        ("rx_ring_full", c.rx_ring_full),
        ("shard_ring_full", c.shard_ring_full),
        ("invalid", c.invalid),
        ("unbound_queue", c.unbound),
    ]
    .into_iter()
    .chain(c.nic.iter().flat_map(|n| {
        [
            ("nic_missed", n.imissed),
            ("nic_errors", n.ierrors),
            ("nic_no_mbuf", n.rx_nombuf),
        ]
    })) {
        v.figure(&Figure {
            key,
            metric: "flowtap_capture_packets_dropped_total",
            kind: Counter,
            help: DROPPED,
            labels: &[("reason", key)],
            value,
        });
    }
    v.close();
    v.figure(&Figure {
        key: "fill_ring_empty",
        metric: "flowtap_capture_fill_ring_empty_total",
        kind: Counter,
        help: "Times the kernel found the AF_XDP fill ring empty.",
        labels: &[],
        value: c.fill_ring_empty,
    });
    v.open("filtered");
    const FILTERED: &str =
        "Frames the in-kernel pre-filter dropped on purpose, by rule: vlan, cidr, protocol, port.";
    for (key, value) in [
        ("vlan", c.filtered_vlan),
        ("cidr", c.filtered_cidr),
        ("protocol", c.filtered_protocol),
        ("port", c.filtered_port),
    ] {
        v.figure(&Figure {
            key,
            metric: "flowtap_capture_packets_filtered_total",
            kind: Counter,
            help: FILTERED,
            labels: &[("rule", key)],
            value,
        });
    }
    v.close();
    if let Some(n) = &c.nic {
        list_nic(n, v);
    }
    v.figure(&Figure {
        key: "output_events_dropped",
        metric: "flowtap_output_events_dropped_total",
        kind: Counter,
        help: "Events the sinks' queues could not take (summed over sinks).",
        labels: &[],
        value: c.output_events_dropped,
    });
    v.close();
}

/// A DPDK port's counters: the `capture.nic` section.
fn list_nic(n: &NicCounters, v: &mut dyn Listing) {
    use Kind::Counter;
    v.open("nic");
    fig(
        v,
        "rx_packets",
        "flowtap_capture_nic_rx_packets_total",
        Counter,
        "DPDK: frames the port received (its driver's count).",
        &[],
        n.rx_packets,
    );
    fig(
        v,
        "rx_bytes",
        "flowtap_capture_nic_rx_bytes_total",
        Counter,
        "DPDK: bytes the port received (its driver's count).",
        &[],
        n.rx_bytes,
    );
    v.number("imissed", n.imissed);
    v.number("ierrors", n.ierrors);
    v.number("rx_nombuf", n.rx_nombuf);
    v.open("queues");
    for (q, (packets, bytes, errors)) in n.queues.iter().enumerate() {
        let q = q.to_string();
        v.open(&q);
        for (key, metric, help, value) in [
            (
                "packets",
                "flowtap_capture_nic_queue_packets_total",
                "DPDK: frames received per RX queue (where the driver keeps them).",
                *packets,
            ),
            (
                "bytes",
                "flowtap_capture_nic_queue_bytes_total",
                "DPDK: bytes received per RX queue (where the driver keeps them).",
                *bytes,
            ),
            (
                "errors",
                "flowtap_capture_nic_queue_errors_total",
                "DPDK: frames dropped per RX queue (where the driver keeps them).",
                *errors,
            ),
        ] {
            fig(
                v,
                key,
                metric,
                Counter,
                help,
                &[("queue", q.as_str())],
                value,
            );
        }
        v.close();
    }
    v.close();
    v.close();
}

/// What a live capture's sources did with frames before a worker saw them,
/// summed over queues / sockets. Frames the workers received are accounted
/// in [`WorkerStats`]; these are the ones they never got (and why).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// `afxdp`, `afpacket` or `dpdk`.
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
    /// DPDK: the port's own counters (`rte_eth_stats`); None for the
    /// kernel sources.
    pub nic: Option<NicCounters>,
}

/// A DPDK port's counters, as its poll-mode driver keeps them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NicCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Dropped by the NIC: no free RX descriptor (a worker fell behind).
    pub imissed: u64,
    /// Erroneous frames the NIC discarded.
    pub ierrors: u64,
    /// mbuf allocation failures (the pool ran dry).
    pub rx_nombuf: u64,
    /// Per RX queue (packets, bytes, errors), where the driver keeps them.
    pub queues: Vec<(u64, u64, u64)>,
}

impl CaptureStats {
    /// Frames lost before a worker saw them (the pre-filter's are not losses).
    pub fn dropped(&self) -> u64 {
        let nic = self
            .nic
            .as_ref()
            .map_or(0, |n| n.imissed + n.ierrors + n.rx_nombuf);
        self.socket_dropped
            + self.rx_ring_full
            + self.shard_ring_full
            + self.invalid
            + self.unbound
            + nic
    }

    /// Frames the pre-filter dropped on purpose.
    pub fn filtered(&self) -> u64 {
        self.filtered_vlan + self.filtered_cidr + self.filtered_protocol + self.filtered_port
    }
}

/// Where a run's counters are read from, by the periodic `stats` event and
/// by the metrics endpoint (so both show one snapshot's figures). Workers
/// publish into their slots; a live capture's main loop sets the capture
/// counters; the sinks' counters are read through a probe.
pub struct Monitor {
    workers: Mutex<Vec<Arc<Mutex<WorkerStats>>>>,
    capture: Mutex<Option<CaptureStats>>,
    sinks: Mutex<Option<OutputsProbe>>,
    pcap: Mutex<Option<Arc<PcapCounters>>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Monitor")
    }
}

impl Monitor {
    /// A monitor with nothing to watch yet (the metrics endpoint can start
    /// before the outputs and workers it will report on).
    pub fn new() -> Arc<Monitor> {
        Arc::new(Monitor {
            workers: Mutex::new(Vec::new()),
            capture: Mutex::new(None),
            sinks: Mutex::new(None),
            pcap: Mutex::new(None),
        })
    }

    pub fn watch_sinks(&self, probe: OutputsProbe) {
        if let Ok(mut g) = self.sinks.lock() {
            *g = Some(probe);
        }
    }

    /// The PCAP export writer's counters.
    pub fn watch_pcap(&self, counters: Arc<PcapCounters>) {
        if let Ok(mut g) = self.pcap.lock() {
            *g = Some(counters);
        }
    }

    /// The PCAP export writer's counters now (None without export).
    pub fn pcap_writer(&self) -> Option<PcapSummary> {
        self.pcap
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|c| c.snapshot()))
    }

    /// The slots the workers publish into (one per worker, in order).
    pub fn watch_workers(&self, slots: Vec<Arc<Mutex<WorkerStats>>>) {
        if let Ok(mut g) = self.workers.lock() {
            *g = slots;
        }
    }

    pub fn set_capture(&self, c: CaptureStats) {
        if let Ok(mut g) = self.capture.lock() {
            *g = Some(c);
        }
    }

    /// The sinks' counters now (none without a probe).
    pub fn sinks(&self) -> Vec<SinkSnapshot> {
        self.sinks
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|p| p.snapshot()))
            .unwrap_or_default()
    }

    /// Every counter now.
    pub fn snapshot(&self) -> Snapshot {
        let per_worker = self
            .workers
            .lock()
            .map(|slots| {
                slots
                    .iter()
                    .map(|s| s.lock().map(|g| g.clone()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        Snapshot {
            per_worker,
            capture: self.capture.lock().ok().and_then(|g| g.clone()),
            sinks: self.sinks(),
            pcap_writer: self.pcap_writer(),
        }
    }
}

/// Starts the Prometheus endpoint on `listen` (`output.metrics_listen` /
/// `--metrics`; "" = none), serving `monitor`'s snapshot on every scrape.
pub fn serve_metrics(
    listen: &str,
    monitor: &Arc<Monitor>,
) -> Result<Option<MetricsServer>, MetricsStartError> {
    if listen.is_empty() {
        return Ok(None);
    }
    let addr = output::metrics::metrics_addr(listen).ok_or_else(|| MetricsStartError::Address {
        listen: listen.to_string(),
    })?;
    let m = Arc::clone(monitor);
    MetricsServer::start(addr, Arc::new(move || m.snapshot().exposition()))
        .map(Some)
        .map_err(MetricsStartError::Start)
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsStartError {
    #[error("output.metrics_listen (--metrics): `{listen}` is not ADDR:PORT or PORT")]
    Address { listen: String },
    #[error("output.metrics_listen (--metrics)")]
    Start(#[source] MetricsError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    type Labels = Vec<(String, String)>;

    /// Records every figure (path in the event, metric, labels, value).
    #[derive(Default)]
    struct Recorder {
        path: Vec<String>,
        figures: Vec<(Vec<String>, &'static str, Labels, u64)>,
    }

    impl Listing for Recorder {
        fn open(&mut self, key: &str) {
            self.path.push(key.to_string());
        }
        fn close(&mut self) {
            self.path.pop();
        }
        fn figure(&mut self, f: &Figure<'_>) {
            let mut p = self.path.clone();
            p.push(f.key.to_string());
            let labels = f
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            self.figures.push((p, f.metric, labels, f.value));
        }
    }

    fn worker(seed: u64) -> WorkerStats {
        let mut w = WorkerStats {
            received: 100 * seed,
            bytes: 6400 * seed,
            flow: 90 * seed,
            fragment: 4 * seed,
            not_ip: 3 * seed,
            undecodable: 3 * seed,
            records: 7 * seed,
            app_events: 6 * seed,
            app_by_type: AppEventCounts(std::array::from_fn(|i| (i as u64 + 1) * seed)),
            ..WorkerStats::default()
        };
        w.decode_errors.insert(("ipv4", "truncated"), seed);
        w.flows.created = 9 * seed;
        w.flows.active = 2 * seed;
        w.defrag.invalid = seed;
        w.stream.worker_cap_hit = seed + 1;
        w.export = Some(ExportCounters {
            matches: seed,
            packets_exported: 3 * seed,
            pool_bytes_held: 100 * seed,
            ..ExportCounters::default()
        });
        w
    }

    /// The event carries, at each figure's place, the sum over workers of
    /// that figure's metric samples; capture and sink figures are equal.
    #[test]
    fn stats_event_and_exposition_carry_the_same_figures() {
        let snap = Snapshot {
            per_worker: vec![worker(1), worker(2), worker(5)],
            capture: Some(CaptureStats {
                source: "afpacket",
                iface: "eth\"1".into(),
                mode: "tpacket_v3".into(),
                received: 800,
                socket_dropped: 3,
                filtered_port: 4,
                ..CaptureStats::default()
            }),
            sinks: vec![SinkSnapshot {
                name: "file".into(),
                kind: "file",
                schema: "native",
                events_sent: 11,
                events_dropped: 2,
                queue_batches: 1,
                ..SinkSnapshot::default()
            }],
            pcap_writer: Some(PcapSummary {
                files_written: 4,
                queue_drops: 1,
                ..PcapSummary::default()
            }),
        };
        let mut buf = Vec::new();
        snap.encode_stats(1_000_000_000, &mut buf);
        let event: serde_json::Value = serde_json::from_slice(&buf).expect("JSON");
        assert!(buf.ends_with(b"}\n"));
        let stats = &event["stats"];
        assert_eq!(stats["workers"], 3);
        assert_eq!(stats["packets"]["received"], 800);
        assert_eq!(stats["packets"]["accounted"], true);
        assert_eq!(stats["flows"]["records"], 56);
        assert_eq!(stats["app"]["events"], 48);
        assert_eq!(stats["capture"]["iface"], "eth\"1");
        assert_eq!(stats["capture"]["dropped"]["total"], 3);
        assert_eq!(stats["export"]["matches"], 8);
        assert_eq!(stats["export"]["writer"]["files_written"], 4);

        let text = snap.exposition();
        let mut sums: HashMap<(String, Vec<(String, String)>), u64> = HashMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("sample");
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            // (no label value of this snapshot holds a comma)
            let labels: Vec<(String, String)> = labels
                .split(',')
                .filter(|kv| !kv.is_empty())
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| *k != "worker")
                .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                .collect();
            *sums.entry((name.to_string(), labels)).or_default() +=
                value.parse::<u64>().expect("integer");
        }
        let mut rec = Recorder::default();
        snap.list_into(&snap.total(), &mut rec);
        assert!(rec.figures.len() > 60, "{}", rec.figures.len());
        for (path, metric, labels, value) in &rec.figures {
            let mut j = stats;
            for k in path {
                j = &j[k];
            }
            assert_eq!(j.as_u64(), Some(*value), "{path:?} in {stats}");
            if metric.starts_with("flowtap_capture_info")
                || labels.iter().any(|(_, v)| v.contains('"'))
            {
                continue;
            }
            assert_eq!(
                sums.get(&(metric.to_string(), labels.clone())),
                Some(value),
                "{metric}{labels:?} summed over workers, at {path:?}\n{text}"
            );
        }
        assert!(text.contains("flowtap_packets_received_total{worker=\"2\"} 500\n"));
        assert!(text.contains(
            "flowtap_capture_info{source=\"afpacket\",iface=\"eth\\\"1\",mode=\"tpacket_v3\"} 1\n"
        ));
        assert!(text.contains("flowtap_sink_queue_batches{sink=\"file\"} 1\n"));
        assert!(text.contains("flowtap_export_matches_total{worker=\"2\"} 5\n"));
        assert!(text.contains("flowtap_pcap_files_written_total 4\n"));
    }

    /// Every `flowtap_*` name in the Grafana dashboard is a metric flowtap
    /// declares (the live metrics test checks the real endpoint too).
    #[test]
    fn dashboards_use_only_exposed_metrics() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana");
        let mut w = worker(1);
        w.app_metrics = Some(Box::new(crate::kpi::AppMetrics::new(
            &crate::kpi::AppMetricsSection::default(),
        )));
        let snap = Snapshot {
            per_worker: vec![w],
            capture: Some(CaptureStats::default()),
            sinks: vec![SinkSnapshot::default()],
            pcap_writer: Some(PcapSummary::default()),
        };
        let exposed = snap.exposition();
        let mut dashboards = 0;
        for entry in std::fs::read_dir(dir).expect("deploy/grafana") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            dashboards += 1;
            let text = std::fs::read_to_string(&path).expect("dashboard");
            let _: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            let mut used = 0;
            for (i, _) in text.match_indices("flowtap_") {
                let name: String = text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                used += 1;
                // A histogram's series are its name plus _bucket, _sum or _count.
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        name.strip_suffix(s)
                            .filter(|f| exposed.contains(&format!("# TYPE {f} histogram")))
                    })
                    .unwrap_or(&name);
                assert!(
                    exposed.contains(&format!("# TYPE {family} ")),
                    "{}: uses {name}, which flowtap does not expose",
                    path.display()
                );
            }
            assert!(used >= 8, "{}: {used} metric references", path.display());
        }
        assert_eq!(
            dashboards, 6,
            "flowtap.json and the five application dashboards"
        );
    }
}
