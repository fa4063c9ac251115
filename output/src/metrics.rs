//! Counters as Prometheus metrics and as the `stats` event, from one listing.
//!
//! Whoever owns counters lists them once, through a [`Listing`]: each
//! [`Figure`] carries both its place in the `stats` event (the current JSON
//! object and a key) and its metric (name, type, help, labels). Two listings
//! read it: [`StatsBuilder`] builds the `stats` event, [`Exposition`] the
//! Prometheus text format (version 0.0.4). So the event and `/metrics` can
//! never disagree on a figure, and adding a counter adds it to both.
//!
//! [`MetricsServer`] serves an exposition over HTTP (`GET /metrics`) from a
//! thread of its own; the engine hands it a closure that renders a fresh
//! snapshot on every scrape.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::event::{StatValue, StatsEvent};
use crate::outputs::SinkSnapshot;
use crate::pcap::PcapSummary;

/// Prometheus metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarts at 0 with the process).
    Counter,
    /// Goes up and down (a level: queue depth, active flows).
    Gauge,
    /// Observations in fixed buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One number, both as a `stats` event member and as a metric sample.
#[derive(Clone, Copy, Debug)]
pub struct Figure<'a> {
    /// Key in the `stats` event object now open.
    pub key: &'a str,
    /// Full metric name (`flowtap_..._total` for counters).
    pub metric: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// Labels that tell this sample from the others of its metric
    /// (`reason`, `type`, ...); the listing adds scope labels (`worker`).
    pub labels: &'a [(&'static str, &'a str)],
    pub value: u64,
}

/// Something that reads a listing of counters. JSON-only members (derived
/// totals, texts, flags) go to the event and not to the metrics; `info`
/// goes to the metrics only.
pub trait Listing {
    /// Opens a nested object of the `stats` event.
    fn open(&mut self, key: &str);
    /// Closes the object opened last.
    fn close(&mut self);
    fn figure(&mut self, f: &Figure<'_>);
    /// A number only the event carries (a sum of figures, a count of things).
    fn number(&mut self, _key: &str, _value: u64) {}
    fn text(&mut self, _key: &str, _value: &str) {}
    fn flag(&mut self, _key: &str, _value: bool) {}
    /// An `_info` gauge (value 1) whose labels carry texts.
    fn info(
        &mut self,
        _metric: &'static str,
        _help: &'static str,
        _labels: &[(&'static str, &str)],
    ) {
    }
    /// Declares a metric that may have no sample now (labels seen only
    /// when something happened), so it is always listed.
    fn declare(&mut self, _metric: &'static str, _kind: Kind, _help: &'static str) {}
}

/// Lists one figure (the shorthand every subsystem's listing uses).
pub fn fig(
    v: &mut dyn Listing,
    key: &str,
    metric: &'static str,
    kind: Kind,
    help: &'static str,
    labels: &[(&'static str, &str)],
    value: u64,
) {
    v.figure(&Figure {
        key,
        metric,
        kind,
        help,
        labels,
        value,
    });
}

/// Builds a [`StatsEvent`] from a listing: what the `stats` event carries,
/// typed, for every schema to write its own way.
pub struct StatsBuilder {
    /// The object being filled at each depth (the root first), with the
    /// key it goes under in its parent.
    stack: Vec<(String, Vec<(String, StatValue)>)>,
}

impl StatsBuilder {
    pub fn new() -> StatsBuilder {
        StatsBuilder {
            stack: vec![(String::new(), Vec::new())],
        }
    }

    fn push(&mut self, key: &str, v: StatValue) {
        if let Some((_, members)) = self.stack.last_mut() {
            members.push((key.to_string(), v));
        }
    }

    /// The event at `ts_ns` (objects left open are closed).
    pub fn finish(mut self, ts_ns: u64) -> StatsEvent {
        while self.stack.len() > 1 {
            self.close();
        }
        StatsEvent {
            ts_ns,
            members: self.stack.pop().map(|(_, m)| m).unwrap_or_default(),
        }
    }
}

impl Default for StatsBuilder {
    fn default() -> Self {
        StatsBuilder::new()
    }
}

impl Listing for StatsBuilder {
    fn open(&mut self, key: &str) {
        self.stack.push((key.to_string(), Vec::new()));
    }

    fn close(&mut self) {
        if self.stack.len() > 1 {
            if let Some((key, members)) = self.stack.pop() {
                self.push(&key, StatValue::Object(members));
            }
        }
    }

    fn figure(&mut self, f: &Figure<'_>) {
        self.number(f.key, f.value);
    }

    fn number(&mut self, key: &str, value: u64) {
        self.push(key, StatValue::Number(value));
    }

    fn text(&mut self, key: &str, value: &str) {
        self.push(key, StatValue::Text(value.to_string()));
    }

    fn flag(&mut self, key: &str, value: bool) {
        self.push(key, StatValue::Flag(value));
    }
}

struct Family {
    kind: Kind,
    help: &'static str,
    /// Rendered sample lines (`name{labels} value\n`).
    samples: String,
}

/// Collects a listing (possibly several, each with its scope labels) into
/// the Prometheus text exposition format: samples grouped per metric, in
/// the order metrics were first listed.
#[derive(Default)]
pub struct Exposition {
    order: Vec<&'static str>,
    families: HashMap<&'static str, Family>,
    /// Labels added to every sample listed now (e.g. `worker="0"`).
    scope: Vec<(&'static str, String)>,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Labels every sample listed from now on carries first.
    pub fn set_scope(&mut self, labels: &[(&'static str, &str)]) {
        self.scope = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
    }

    fn family(&mut self, metric: &'static str, kind: Kind, help: &'static str) -> &mut Family {
        if !self.families.contains_key(metric) {
            self.order.push(metric);
        }
        self.families.entry(metric).or_insert_with(|| Family {
            kind,
            help,
            samples: String::new(),
        })
    }

    fn sample(
        &mut self,
        metric: &'static str,
        kind: Kind,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: u64,
    ) {
        let scope = std::mem::take(&mut self.scope);
        let fam = self.family(metric, kind, help);
        write_sample(&mut fam.samples, metric, "", &scope, labels, None, value);
        self.scope = scope;
    }

    /// Lists these metrics even if no sample follows (a dashboard's query
    /// then finds the metric before the first event).
    pub fn declare_all(&mut self, families: &[(&'static str, Kind, &'static str)]) {
        for &(metric, kind, help) in families {
            self.family(metric, kind, help);
        }
    }

    /// One histogram sample set: a cumulative `_bucket` line per bound of
    /// [`LATENCY_BUCKETS_NS`] (in seconds) and `+Inf`, `_sum` (seconds) and `_count`.
    pub fn histogram(
        &mut self,
        metric: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        h: &Histogram,
    ) {
        let scope = std::mem::take(&mut self.scope);
        let fam = self.family(metric, Kind::Histogram, help);
        let s = &mut fam.samples;
        let mut cumulative = 0u64;
        for (i, n) in h.buckets.iter().enumerate() {
            cumulative += n;
            let le = LATENCY_BUCKET_LABELS.get(i).copied().unwrap_or("+Inf");
            write_sample(s, metric, "_bucket", &scope, labels, Some(le), cumulative);
        }
        write_labels_prefix(s, metric, "_sum", &scope, labels, None);
        let _ = writeln!(s, " {}", h.sum_ns as f64 / 1e9);
        write_sample(s, metric, "_count", &scope, labels, None, h.count);
        self.scope = scope;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 << 10);
        for name in &self.order {
            let Some(f) = self.families.get(name) else {
                continue;
            };
            let _ = writeln!(out, "# HELP {name} {}", escape_help(f.help));
            let _ = writeln!(out, "# TYPE {name} {}", f.kind.as_str());
            out.push_str(&f.samples);
        }
        out
    }
}

impl Listing for Exposition {
    fn open(&mut self, _key: &str) {}

    fn close(&mut self) {}

    fn figure(&mut self, f: &Figure<'_>) {
        self.sample(f.metric, f.kind, f.help, f.labels, f.value);
    }

    fn info(&mut self, metric: &'static str, help: &'static str, labels: &[(&'static str, &str)]) {
        self.sample(metric, Kind::Gauge, help, labels, 1);
    }

    fn declare(&mut self, metric: &'static str, kind: Kind, help: &'static str) {
        self.family(metric, kind, help);
    }
}

fn write_labels_prefix(
    s: &mut String,
    metric: &str,
    suffix: &str,
    scope: &[(&'static str, String)],
    labels: &[(&'static str, &str)],
    le: Option<&str>,
) {
    s.push_str(metric);
    s.push_str(suffix);
    let mut all = scope
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(labels.iter().copied())
        .chain(le.map(|le| ("le", le)))
        .peekable();
    if all.peek().is_some() {
        s.push('{');
        for (i, (k, v)) in all.enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(k);
            s.push_str("=\"");
            escape_label_value(s, v);
            s.push('"');
        }
        s.push('}');
    }
}

fn write_sample(
    s: &mut String,
    metric: &str,
    suffix: &str,
    scope: &[(&'static str, String)],
    labels: &[(&'static str, &str)],
    le: Option<&str>,
    value: u64,
) {
    write_labels_prefix(s, metric, suffix, scope, labels, le);
    let _ = writeln!(s, " {value}");
}

/// Upper bounds of the latency histograms' buckets, in nanoseconds: 100 µs
/// to 10 s in 1-2.5-5 steps (a LAN answer to a slow WAN query), then `+Inf`.
pub const LATENCY_BUCKETS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// [`LATENCY_BUCKETS_NS`] as Prometheus `le` labels (seconds).
const LATENCY_BUCKET_LABELS: [&str; 16] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10",
];

/// A latency histogram with the fixed [`LATENCY_BUCKETS_NS`] (the last
/// bucket is `+Inf`). Not cumulative: the exposition sums the buckets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    pub buckets: [u64; LATENCY_BUCKETS_NS.len() + 1],
    pub sum_ns: u64,
    pub count: u64,
}

impl Histogram {
    pub fn observe_ns(&mut self, ns: u64) {
        self.observe_n(ns, 1);
    }

    /// `n` observations of `ns` each.
    pub fn observe_n(&mut self, ns: u64, n: u64) {
        let i = LATENCY_BUCKETS_NS.partition_point(|&b| b < ns);
        if let Some(b) = self.buckets.get_mut(i) {
            *b += n;
        }
        self.sum_ns = self.sum_ns.saturating_add(ns.saturating_mul(n));
        self.count += n;
    }

    /// `count` observations summing to `sum_ns` whose values are unknown
    /// (a flow's totals): placed in the bucket of their mean, sum exact.
    pub fn observe_spread(&mut self, sum_ns: u64, count: u64) {
        if count == 0 {
            return;
        }
        let i = LATENCY_BUCKETS_NS.partition_point(|&b| b < sum_ns / count);
        if let Some(b) = self.buckets.get_mut(i) {
            *b += count;
        }
        self.sum_ns = self.sum_ns.saturating_add(sum_ns);
        self.count += count;
    }

    pub fn add(&mut self, o: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
        self.sum_ns = self.sum_ns.saturating_add(o.sum_ns);
        self.count += o.count;
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP texts escape `\` and newlines.
fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Lists the PCAP export writer's counters (the `export.writer` section of
/// the `stats` event).
pub fn list_pcap_writer(w: &PcapSummary, v: &mut dyn Listing) {
    use Kind::Counter;
    let figures: [(&str, &'static str, &'static str, u64); 9] = [
        (
            "files_opened",
            "flowtap_pcap_files_opened_total",
            "PCAP files the export writer opened.",
            w.files_opened,
        ),
        (
            "files_written",
            "flowtap_pcap_files_written_total",
            "PCAP files finished and renamed into place.",
            w.files_written,
        ),
        (
            "packets_written",
            "flowtap_pcap_packets_written_total",
            "Frames in finished PCAP files.",
            w.packets_written,
        ),
        (
            "bytes_written",
            "flowtap_pcap_bytes_written_total",
            "Bytes written to PCAP files.",
            w.bytes_written,
        ),
        (
            "queue_drops",
            "flowtap_pcap_queue_drops_total",
            "Frames dropped because the export writer's queue was full.",
            w.queue_drops,
        ),
        (
            "io_errors",
            "flowtap_pcap_io_errors_total",
            "Write errors (disk full, permission): each abandons one file.",
            w.io_errors,
        ),
        (
            "packets_failed",
            "flowtap_pcap_packets_failed_total",
            "Frames lost to write errors.",
            w.packets_failed,
        ),
        (
            "files_removed_by_retention",
            "flowtap_pcap_files_removed_total",
            "Finished PCAP files removed by retention (oldest first).",
            w.files_removed_by_retention,
        ),
        (
            "bytes_removed",
            "flowtap_pcap_bytes_removed_total",
            "Bytes of PCAP files removed by retention.",
            w.bytes_removed,
        ),
    ];
    for (key, metric, help, value) in figures {
        v.figure(&Figure {
            key,
            metric,
            kind: Counter,
            help,
            labels: &[],
            value,
        });
    }
}

/// Lists every sink's counters (`sinks.<name>.*` in the event, `sink`
/// label in the metrics).
pub fn list_sinks(sinks: &[SinkSnapshot], v: &mut dyn Listing) {
    v.open("sinks");
    for s in sinks {
        let name = s.name.as_str();
        let sink = [("sink", name)];
        v.open(name);
        v.text("kind", s.kind);
        v.text("schema", s.schema);
        v.info(
            "flowtap_sink_info",
            "A configured sink: its kind and schema.",
            &[("sink", name), ("kind", s.kind), ("schema", s.schema)],
        );
        let mut fig = |key, metric, kind, help, labels: &[(&'static str, &str)], value| {
            v.figure(&Figure {
                key,
                metric,
                kind,
                help,
                labels,
                value,
            })
        };
        use Kind::{Counter, Gauge};
        fig(
            "queue_batches",
            "flowtap_sink_queue_batches",
            Gauge,
            "Batches waiting in the sink's queue.",
            &sink,
            s.queue_batches,
        );
        fig(
            "queue_capacity",
            "flowtap_sink_queue_capacity_batches",
            Gauge,
            "Batches the sink's queue holds at most.",
            &sink,
            s.queue_capacity,
        );
        fig(
            "events_queued",
            "flowtap_sink_events_queued_total",
            Counter,
            "Events handed to the sink's queue.",
            &sink,
            s.events_queued,
        );
        fig(
            "events_sent",
            "flowtap_sink_events_sent_total",
            Counter,
            "Events the sink delivered.",
            &sink,
            s.events_sent,
        );
        fig(
            "bytes_sent",
            "flowtap_sink_sent_bytes_total",
            Counter,
            "Bytes the sink delivered.",
            &sink,
            s.bytes_sent,
        );
        fig(
            "batches_sent",
            "flowtap_sink_batches_sent_total",
            Counter,
            "Batches the sink delivered.",
            &sink,
            s.batches_sent,
        );
        fig(
            "events_failed",
            "flowtap_sink_events_failed_total",
            Counter,
            "Events the sink could not deliver.",
            &sink,
            s.events_failed,
        );
        fig(
            "events_dropped",
            "flowtap_sink_events_dropped_total",
            Counter,
            "Events dropped before delivery, by reason (queue_full, spool_full).",
            &[("sink", name), ("reason", "queue_full")],
            s.events_dropped,
        );
        fig(
            "events_dropped_spool_full",
            "flowtap_sink_events_dropped_total",
            Counter,
            "",
            &[("sink", name), ("reason", "spool_full")],
            s.events_dropped_spool_full,
        );
        fig(
            "events_spooled",
            "flowtap_sink_events_spooled_total",
            Counter,
            "Events written to the sink's disk spool.",
            &sink,
            s.events_spooled,
        );
        fig(
            "events_unspooled",
            "flowtap_sink_events_unspooled_total",
            Counter,
            "Events replayed from the sink's disk spool.",
            &sink,
            s.events_unspooled,
        );
        fig(
            "spool_bytes",
            "flowtap_sink_spool_bytes",
            Gauge,
            "Bytes in the sink's disk spool now.",
            &sink,
            s.spool_bytes,
        );
        fig(
            "spool_events",
            "flowtap_sink_spool_events",
            Gauge,
            "Events in the sink's disk spool now.",
            &sink,
            s.spool_events,
        );
        fig(
            "reconnects",
            "flowtap_sink_reconnects_total",
            Counter,
            "Times the sink reconnected.",
            &sink,
            s.reconnects,
        );
        fig(
            "connect_failures",
            "flowtap_sink_connect_failures_total",
            Counter,
            "Failed connection attempts of the sink.",
            &sink,
            s.connect_failures,
        );
        fig(
            "up",
            "flowtap_sink_up",
            Gauge,
            "1 while the sink is connected (files and stdout: open).",
            &sink,
            u64::from(s.up),
        );
        v.close();
    }
    v.close();
}

/// Errors starting the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot serve metrics on {addr}: the address is in use (another flowtap or exporter?); choose another port")]
    InUse { addr: SocketAddr },
    #[error("cannot serve metrics on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the metrics thread")]
    Spawn(#[source] io::Error),
}

/// Renders the exposition on each scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A Prometheus endpoint: `GET /metrics` (and `/`) on one address, served
/// by one thread. Stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// How long a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest request head read.
const MAX_REQUEST: usize = 8 << 10;
/// Idle sleep between accept polls (bounds how long a stop takes).
const ACCEPT_POLL: Duration = Duration::from_millis(50);

impl MetricsServer {
    /// Binds `addr` (an error if taken) and serves `render()` on each scrape.
    pub fn start(addr: SocketAddr, render: Render) -> Result<MetricsServer, MetricsError> {
        let listener = TcpListener::bind(addr).map_err(|source| {
            if source.kind() == io::ErrorKind::AddrInUse {
                MetricsError::InUse { addr }
            } else {
                MetricsError::Bind { addr, source }
            }
        })?;
        let bound = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        // Non-blocking accept so that a stop does not wait for a scrape.
        listener
            .set_nonblocking(true)
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("flowtap-metrics".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            // A broken scrape is the scraper's problem.
                            let _ = serve_one(conn, &render);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(ACCEPT_POLL)
                        }
                        Err(_) => std::thread::sleep(ACCEPT_POLL),
                    }
                }
            })
            .map_err(MetricsError::Spawn)?;
        Ok(MetricsServer {
            addr: bound,
            stop,
            handle: Some(handle),
        })
    }

    /// The address bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Answers one HTTP/1.x request and closes the connection.
fn serve_one(mut conn: TcpStream, render: &Render) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    conn.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
        if head.len() > MAX_REQUEST {
            return respond(&mut conn, "431 Request Header Fields Too Large", "", "");
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or(&[]);
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
    let path = target.split(|&b| b == b'?').next().unwrap_or(&[]);
    match (method, path) {
        (b"GET" | b"HEAD", b"/metrics" | b"/") => {
            let body = render();
            let body = if method == b"HEAD" { "" } else { body.as_str() };
            respond(
                &mut conn,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                body,
            )
        }
        (b"GET" | b"HEAD", _) => respond(
            &mut conn,
            "404 Not Found",
            "text/plain",
            "flowtap serves /metrics\n",
        ),
        _ => respond(&mut conn, "405 Method Not Allowed", "text/plain", ""),
    }
}

fn respond(conn: &mut TcpStream, status: &str, ctype: &str, body: &str) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !ctype.is_empty() {
        out.push_str("Content-Type: ");
        out.push_str(ctype);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    conn.write_all(out.as_bytes())?;
    conn.flush()
}

/// `9464` -> `127.0.0.1:9464`; `ADDR:PORT` as is.
pub fn metrics_addr(s: &str) -> Option<std::net::SocketAddr> {
    if let Ok(p) = s.parse::<u16>() {
        return Some(([127, 0, 0, 1], p).into());
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &mut dyn Listing, received: u64, errors: &[(&str, u64)]) {
        v.figure(&Figure {
            key: "workers",
            metric: "flowtap_workers",
            kind: Kind::Gauge,
            help: "Workers.",
            labels: &[],
            value: 2,
        });
        v.open("packets");
        v.figure(&Figure {
            key: "received",
            metric: "flowtap_packets_received_total",
            kind: Kind::Counter,
            help: "Packets a worker received.",
            labels: &[],
            value: received,
        });
        v.flag("accounted", true);
        v.close();
        v.open("decode_errors");
        v.declare(
            "flowtap_decode_errors_total",
            Kind::Counter,
            "Decode errors.",
        );
        for (why, n) in errors {
            v.figure(&Figure {
                key: why,
                metric: "flowtap_decode_errors_total",
                kind: Kind::Counter,
                help: "Decode errors.",
                labels: &[("layer", "ipv4"), ("reason", why)],
                value: *n,
            });
        }
        v.close();
    }

    #[test]
    fn exposition_groups_samples_per_metric_with_scope_labels() {
        let mut e = Exposition::new();
        e.set_scope(&[("worker", "0")]);
        list(&mut e, 10, &[("truncated", 1)]);
        e.set_scope(&[("worker", "1")]);
        list(&mut e, 5, &[("bad \"quote\"\\", 3)]);
        e.set_scope(&[]);
        list_sinks(
            &[SinkSnapshot {
                name: "file".into(),
                kind: "file",
                schema: "native",
                events_sent: 7,
                up: true,
                ..SinkSnapshot::default()
            }],
            &mut e,
        );
        let text = e.render();
        let expect_head = "# HELP flowtap_workers Workers.\n\
# TYPE flowtap_workers gauge\n\
flowtap_workers{worker=\"0\"} 2\n\
flowtap_workers{worker=\"1\"} 2\n\
# HELP flowtap_packets_received_total Packets a worker received.\n\
# TYPE flowtap_packets_received_total counter\n\
flowtap_packets_received_total{worker=\"0\"} 10\n\
flowtap_packets_received_total{worker=\"1\"} 5\n\
# HELP flowtap_decode_errors_total Decode errors.\n\
# TYPE flowtap_decode_errors_total counter\n\
flowtap_decode_errors_total{worker=\"0\",layer=\"ipv4\",reason=\"truncated\"} 1\n\
flowtap_decode_errors_total{worker=\"1\",layer=\"ipv4\",reason=\"bad \\\"quote\\\"\\\\\"} 3\n";
        assert!(text.starts_with(expect_head), "{text}");
        assert!(text.contains(
            "# TYPE flowtap_sink_info gauge\nflowtap_sink_info{sink=\"file\",kind=\"file\",schema=\"native\"} 1\n"
        ));
        assert!(text.contains("flowtap_sink_events_sent_total{sink=\"file\"} 7\n"));
        assert!(text.contains(
            "flowtap_sink_events_dropped_total{sink=\"file\",reason=\"queue_full\"} 0\n\
flowtap_sink_events_dropped_total{sink=\"file\",reason=\"spool_full\"} 0\n"
        ));
        assert!(text.contains("flowtap_sink_up{sink=\"file\"} 1\n"));
        // Every family has exactly one HELP and one TYPE line.
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(types, helps);
        let mut names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a metric listed twice: {text}");
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let mut h = Histogram::default();
        h.observe_ns(50_000); // 50 µs: first bucket
        h.observe_ns(100_000); // on a bound: that bucket (le is inclusive)
        h.observe_ns(3_000_000); // 3 ms: le 0.005
        h.observe_ns(60_000_000_000); // 60 s: +Inf only
        h.observe_spread(10_000_000, 4); // four of 2.5 ms: le 0.0025
        let mut e = Exposition::new();
        e.set_scope(&[("worker", "0")]);
        e.histogram("x_seconds", "help", &[("server", "a")], &h);
        let text = e.render();
        for line in [
            "# TYPE x_seconds histogram",
            "x_seconds_bucket{worker=\"0\",server=\"a\",le=\"0.0001\"} 2",
            "x_seconds_bucket{worker=\"0\",server=\"a\",le=\"0.00025\"} 2",
            "x_seconds_bucket{worker=\"0\",server=\"a\",le=\"0.0025\"} 6",
            "x_seconds_bucket{worker=\"0\",server=\"a\",le=\"0.005\"} 7",
            "x_seconds_bucket{worker=\"0\",server=\"a\",le=\"10\"} 7",
            "x_seconds_bucket{worker=\"0\",server=\"a\",le=\"+Inf\"} 8",
            "x_seconds_sum{worker=\"0\",server=\"a\"} 60.01315",
            "x_seconds_count{worker=\"0\",server=\"a\"} 8",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn declared_metric_without_samples_is_still_listed() {
        let mut e = Exposition::new();
        list(&mut e, 1, &[]);
        let text = e.render();
        assert!(text.contains("# TYPE flowtap_decode_errors_total counter\n"));
        assert!(!text.contains("flowtap_decode_errors_total{"));
    }

    #[test]
    fn the_stats_event_carries_the_same_figures_nested() {
        let mut j = StatsBuilder::new();
        {
            list(&mut j, 10, &[("truncated", 1)]);
            list_sinks(
                &[SinkSnapshot {
                    name: "a \"b\"".into(),
                    kind: "file",
                    schema: "eve",
                    events_sent: 7,
                    ..SinkSnapshot::default()
                }],
                &mut j,
            );
        }
        let ev = j.finish(0);
        let mut buf = Vec::new();
        crate::schema::encode_stats(
            crate::Schema::Native,
            &crate::EncodeOptions::default(),
            &ev,
            &mut buf,
        );
        let line: serde_json::Value = serde_json::from_slice(&buf).expect("valid JSON");
        let v = &line["stats"];
        assert_eq!(v["workers"], 2);
        assert_eq!(v["packets"]["received"], 10);
        assert_eq!(v["packets"]["accounted"], true);
        assert_eq!(v["decode_errors"]["truncated"], 1);
        let s = &v["sinks"]["a \"b\""];
        assert_eq!(s["events_sent"], 7);
        assert_eq!(s["schema"], "eve");
        assert_eq!(s["events_dropped_spool_full"], 0);
        assert_eq!(s["up"], 0);
    }

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.write_all(request.as_bytes()).expect("send");
        let mut out = String::new();
        c.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn server_answers_scrapes_and_refuses_a_taken_port() {
        let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let n2 = Arc::clone(&n);
        let render: Render = Arc::new(move || {
            let v = n2.fetch_add(1, Ordering::Relaxed);
            format!("# HELP x X.\n# TYPE x counter\nx {v}\n")
        });
        let server =
            MetricsServer::start(([127, 0, 0, 1], 0).into(), Arc::clone(&render)).expect("start");
        let addr = server.local_addr();
        let r = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
        assert!(
            r.ends_with("\r\n\r\n# HELP x X.\n# TYPE x counter\nx 0\n"),
            "{r}"
        );
        let r = get(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert!(r.ends_with("x 1\n"), "a fresh rendering per scrape: {r}");
        let r = get(addr, "GET /nope HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
        let r = get(addr, "POST /metrics HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");

        let e = MetricsServer::start(addr, render)
            .err()
            .expect("port taken");
        assert!(matches!(e, MetricsError::InUse { .. }), "{e}");
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
        drop(server);
        assert!(TcpStream::connect(addr).is_err(), "stopped on drop");
    }
}
