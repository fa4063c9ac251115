//! Application metrics: DNS, HTTP, TLS, TCP and per-protocol transaction
//! KPIs, counted on the worker from the typed events and flow records it
//! emits (no JSON in between) and rendered as Prometheus metrics at scrape
//! time.
//!
//! Every label whose values come from the traffic (servers, names, hosts,
//! operations, error codes) is a [`TopN`]: at most `[app_metrics]`'s limit
//! of values per worker keep their own series, the rest are summed under
//! `other`, and the folding is counted. Labels from a fixed vocabulary
//! (DNS query types and rcodes, HTTP methods and status classes, SQL verbs,
//! outcomes) need no limit. Series carry the `worker` label, as every
//! worker figure does: sum them for the total.

mod dns;
mod http;
mod talkers;
mod tcp;
mod tls;
pub mod topn;
mod txn;

use std::fmt::Write as _;
use std::net::IpAddr;

use dissect::app::{AppEvent, AppProto};
use dissect::event::{AppEnvelope, EndReason, FlowRecord};
use output::metrics::{fig, Exposition, Kind};
use serde::Deserialize;

pub use topn::{Merge, TopN};

/// `[app_metrics]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AppMetricsSection {
    /// Count application KPIs for `/metrics` (only when `output.metrics_listen` is set).
    pub enabled: bool,
    /// Label values kept per label and worker; the rest go to `other`.
    pub dns_servers: usize,
    pub dns_names: usize,
    pub http_hosts: usize,
    pub tls_sni: usize,
    pub tls_alpn: usize,
    pub tls_ciphers: usize,
    pub tls_certificates: usize,
    pub tcp_servers: usize,
    /// Addresses ranked by bytes (top talkers).
    pub hosts: usize,
    pub operations: usize,
    pub error_codes: usize,
    /// Certificates that expire within this many days of when they were
    /// seen (or expired already) get an expiry gauge.
    pub certificate_expiry_days: u32,
}

impl Default for AppMetricsSection {
    fn default() -> Self {
        AppMetricsSection {
            enabled: true,
            dns_servers: 50,
            dns_names: 100,
            http_hosts: 100,
            tls_sni: 100,
            tls_alpn: 20,
            tls_ciphers: 50,
            tls_certificates: 50,
            tcp_servers: 100,
            hosts: 100,
            operations: 50,
            error_codes: 50,
            certificate_expiry_days: 30,
        }
    }
}

impl AppMetricsSection {
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("dns_servers", self.dns_servers),
            ("dns_names", self.dns_names),
            ("http_hosts", self.http_hosts),
            ("tls_sni", self.tls_sni),
            ("tls_alpn", self.tls_alpn),
            ("tls_ciphers", self.tls_ciphers),
            ("tls_certificates", self.tls_certificates),
            ("tcp_servers", self.tcp_servers),
            ("hosts", self.hosts),
            ("operations", self.operations),
            ("error_codes", self.error_codes),
        ] {
            if v == 0 {
                return Err(format!("app_metrics.{key}: must be at least 1"));
            }
            if v > 100_000 {
                return Err(format!(
                    "app_metrics.{key}: at most 100000 (each value is a series per worker)"
                ));
            }
        }
        Ok(())
    }
}

/// Counts of a label from a fixed vocabulary (a handful of values), in
/// first-seen order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts<L>(Vec<(L, u64)>);

impl<L> Default for Counts<L> {
    fn default() -> Self {
        Counts(Vec::new())
    }
}

impl<L: Copy + Eq> Counts<L> {
    pub fn add(&mut self, label: L, n: u64) {
        match self.0.iter_mut().find(|(l, _)| *l == label) {
            Some((_, c)) => *c += n,
            None => self.0.push((label, n)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (L, u64)> + '_ {
        self.0.iter().copied()
    }
}

impl<L: Copy + Eq> Merge for Counts<L> {
    fn merge(&mut self, other: &Self) {
        for (l, n) in other.iter() {
            self.add(l, n);
        }
    }
}

impl Merge for output::metrics::Histogram {
    fn merge(&mut self, other: &Self) {
        self.add(other);
    }
}

/// One worker's application metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppMetrics {
    dns: dns::DnsMetrics,
    http: http::HttpMetrics,
    tls: tls::TlsMetrics,
    tcp: tcp::TcpMetrics,
    talkers: talkers::Talkers,
    txns: Vec<txn::ProtoTransactions>,
    traffic: ProtoTraffic,
    /// Reused to format a label value that is not a string in the event.
    scratch: String,
}

impl AppMetrics {
    pub fn new(cfg: &AppMetricsSection) -> AppMetrics {
        AppMetrics {
            dns: dns::DnsMetrics::new(cfg),
            http: http::HttpMetrics::new(cfg),
            tls: tls::TlsMetrics::new(cfg),
            tcp: tcp::TcpMetrics::new(cfg),
            talkers: talkers::Talkers::new(cfg),
            txns: AppProto::ALL
                .iter()
                .map(|_| txn::ProtoTransactions::new(cfg))
                .collect(),
            traffic: ProtoTraffic::default(),
            scratch: String::new(),
        }
    }

    /// An application event, as the worker emits it.
    pub fn app(&mut self, env: &AppEnvelope<'_>) {
        let proto = env.event.proto();
        if let Some(t) = self.txns.get_mut(proto.index()) {
            t.observe(&env.event.transaction(), &mut self.scratch);
        }
        match env.event {
            AppEvent::Dns(e) => self.dns.observe(env, e),
            AppEvent::Http(e) => self.http.observe(env, e, &mut self.scratch),
            AppEvent::Tls(e) => self.tls.observe(env, e),
            _ => {}
        }
    }

    /// A flow record (whole flow, first or later slice), as the worker emits it.
    pub fn flow(&mut self, rec: &FlowRecord) {
        self.traffic.observe(rec);
        self.tcp.observe(rec);
        self.talkers.observe(rec);
    }

    /// Starts a new volume window for every bounded label (once per second
    /// of traffic): see [`TopN::rebalance`].
    pub fn rebalance(&mut self) {
        self.dns.rebalance();
        self.http.rebalance();
        self.tls.rebalance();
        self.tcp.rebalance();
        self.talkers.rebalance();
        for t in &mut self.txns {
            t.rebalance();
        }
    }

    /// Lists every series (the exposition's scope carries the worker).
    pub fn list(&self, e: &mut Exposition) {
        self.traffic.list(e);
        for (proto, t) in AppProto::ALL.iter().zip(&self.txns) {
            t.list(proto.as_str(), e);
        }
        self.dns.list(e);
        self.http.list(e);
        self.tls.list(e);
        self.tcp.list(e);
        self.talkers.list(e);
    }
}

/// Flows, packets and bytes per detected application protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ProtoTraffic {
    /// Indexed by [`AppProto::index`]; the last is "unknown" (not detected).
    by_proto: [TrafficCounts; AppProto::COUNT + 1],
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TrafficCounts {
    flows: u64,
    /// To the server, to the client.
    packets: [u64; 2],
    bytes: [u64; 2],
}

impl ProtoTraffic {
    fn observe(&mut self, rec: &FlowRecord) {
        let i = rec
            .app_proto
            .and_then(AppProto::parse)
            .map_or(AppProto::COUNT, AppProto::index);
        let Some(c) = self.by_proto.get_mut(i) else {
            return;
        };
        // Packets and bytes are the slice's; a flow counts at its last record.
        c.packets[0] += rec.orig.packets;
        c.packets[1] += rec.resp.packets;
        c.bytes[0] += rec.orig.bytes;
        c.bytes[1] += rec.resp.bytes;
        if rec.end_reason != EndReason::ActiveTimeout {
            c.flows += 1;
        }
    }

    fn list(&self, e: &mut Exposition) {
        let names = AppProto::ALL
            .iter()
            .map(|p| p.as_str())
            .chain(std::iter::once("unknown"));
        for (name, c) in names.zip(&self.by_proto) {
            fig(
                e,
                "",
                "flowtap_app_proto_flows_total",
                Kind::Counter,
                "Flows ended, by detected application protocol (\"unknown\": none detected).",
                &[("proto", name)],
                c.flows,
            );
            for (d, dir) in ["toserver", "toclient"].iter().enumerate() {
                fig(
                    e,
                    "",
                    "flowtap_app_proto_packets_total",
                    Kind::Counter,
                    "Packets of flow records (counted when a record is emitted), by application protocol and direction.",
                    &[("proto", name), ("direction", dir)],
                    c.packets[d],
                );
                fig(
                    e,
                    "",
                    "flowtap_app_proto_bytes_total",
                    Kind::Counter,
                    "Bytes of flow records (counted when a record is emitted), by application protocol and direction.",
                    &[("proto", name), ("direction", dir)],
                    c.bytes[d],
                );
            }
        }
    }
}

/// Lists a bounded label's own figures: values kept, observations folded
/// into `other`, keys demoted.
fn list_label<K: std::hash::Hash + Eq, V: Default + Merge>(
    e: &mut Exposition,
    label: &str,
    t: &TopN<K, V>,
) {
    let labels = [("label", label)];
    fig(
        e,
        "",
        "flowtap_app_metric_label_values",
        Kind::Gauge,
        "Values of a bounded application-metric label that have their own series now.",
        &labels,
        t.len() as u64,
    );
    fig(
        e,
        "",
        "flowtap_app_metric_label_limit",
        Kind::Gauge,
        "The most values a bounded label keeps per worker ([app_metrics]).",
        &labels,
        t.limit() as u64,
    );
    fig(
        e,
        "",
        "flowtap_app_metric_label_folded_total",
        Kind::Counter,
        "Observations counted under `other` because the label was at its limit.",
        &labels,
        t.folded,
    );
    fig(
        e,
        "",
        "flowtap_app_metric_label_demoted_total",
        Kind::Counter,
        "Label values whose series went to `other` when heavier values took their place.",
        &labels,
        t.demoted,
    );
}

/// Every kept value of `t` with its label text, then `other`.
fn each_value<'a, K: std::hash::Hash + Eq, V: Default + Merge>(
    t: &'a TopN<K, V>,
    text: impl Fn(&K) -> String + 'a,
) -> impl Iterator<Item = (String, &'a V)> + 'a {
    t.iter()
        .map(move |(k, v)| (text(k), v))
        .chain(std::iter::once(("other".to_string(), t.other())))
}

/// `ip` as label text into `buf`.
fn ip_text(buf: &mut String, ip: IpAddr) -> &str {
    buf.clear();
    let _ = write!(buf, "{ip}");
    buf.as_str()
}

fn nanos(us: u64) -> u64 {
    us.saturating_mul(1_000)
}
