//! DNS: queries, responses by rcode, unanswered queries and latency per
//! server (the flow's responder), and the most queried names.

use std::net::IpAddr;

use dissect::app::dns::{rcode_name, rrtype_name, DnsEvent};
use dissect::event::AppEnvelope;
use output::metrics::{fig, Exposition, Histogram, Kind};

use super::{each_value, list_label, AppMetricsSection, Counts, Merge, TopN};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct DnsServer {
    /// By query type.
    queries: Counts<&'static str>,
    /// By query type and rcode.
    responses: Counts<(&'static str, &'static str)>,
    /// Queries whose answer never came, by query type.
    unanswered: Counts<&'static str>,
    latency: Histogram,
}

impl Merge for DnsServer {
    fn merge(&mut self, o: &Self) {
        self.queries.merge(&o.queries);
        self.responses.merge(&o.responses);
        self.unanswered.merge(&o.unanswered);
        self.latency.add(&o.latency);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct DnsMetrics {
    servers: TopN<IpAddr, DnsServer>,
    names: TopN<String, u64>,
}

impl DnsMetrics {
    pub(super) fn new(cfg: &AppMetricsSection) -> DnsMetrics {
        DnsMetrics {
            servers: TopN::new(cfg.dns_servers),
            names: TopN::new(cfg.dns_names),
        }
    }

    pub(super) fn observe(&mut self, env: &AppEnvelope<'_>, ev: &DnsEvent) {
        let question = ev.queries.first();
        let qtype = question.map_or("none", |q| rrtype_name(q.rtype).unwrap_or("OTHER"));
        let s = self.servers.entry(&env.dst_ip);
        if ev.has_query {
            s.queries.add(qtype, 1);
        }
        if ev.has_response {
            let rcode = ev
                .rcode
                .map_or("none", |r| rcode_name(r).unwrap_or("OTHER"));
            s.responses.add((qtype, rcode), 1);
        } else if ev.has_query {
            s.unanswered.add(qtype, 1);
        }
        if let Some(ns) = ev.latency_ns {
            s.latency.observe_ns(ns);
        }
        if ev.has_query {
            if let Some(q) = question {
                *self.names.entry(q.name.as_str()) += 1;
            }
        }
    }

    pub(super) fn rebalance(&mut self) {
        self.servers.rebalance();
        self.names.rebalance();
    }

    pub(super) fn list(&self, e: &mut Exposition) {
        e.declare_all(&[
            ("flowtap_dns_queries_total", Kind::Counter, QUERIES),
            ("flowtap_dns_responses_total", Kind::Counter, RESPONSES),
            ("flowtap_dns_unanswered_total", Kind::Counter, UNANSWERED),
            ("flowtap_dns_latency_seconds", Kind::Histogram, LATENCY),
            ("flowtap_dns_query_names_total", Kind::Counter, NAMES),
        ]);
        for (server, s) in each_value(&self.servers, |ip| ip.to_string()) {
            if s.latency.count == 0 && s.queries.0.is_empty() && s.responses.0.is_empty() {
                continue;
            }
            let server = server.as_str();
            for (qtype, n) in s.queries.iter() {
                let l = [("server", server), ("qtype", qtype)];
                fig(
                    e,
                    "",
                    "flowtap_dns_queries_total",
                    Kind::Counter,
                    QUERIES,
                    &l,
                    n,
                );
            }
            for ((qtype, rcode), n) in s.responses.iter() {
                let l = [("server", server), ("qtype", qtype), ("rcode", rcode)];
                fig(
                    e,
                    "",
                    "flowtap_dns_responses_total",
                    Kind::Counter,
                    RESPONSES,
                    &l,
                    n,
                );
            }
            for (qtype, n) in s.unanswered.iter() {
                let l = [("server", server), ("qtype", qtype)];
                fig(
                    e,
                    "",
                    "flowtap_dns_unanswered_total",
                    Kind::Counter,
                    UNANSWERED,
                    &l,
                    n,
                );
            }
            e.histogram(
                "flowtap_dns_latency_seconds",
                LATENCY,
                &[("server", server)],
                &s.latency,
            );
        }
        for (name, n) in each_value(&self.names, |n| n.clone()) {
            if *n > 0 {
                let l = [("name", name.as_str())];
                fig(
                    e,
                    "",
                    "flowtap_dns_query_names_total",
                    Kind::Counter,
                    NAMES,
                    &l,
                    *n,
                );
            }
        }
        list_label(e, "dns_server", &self.servers);
        list_label(e, "dns_name", &self.names);
    }
}

const QUERIES: &str = "DNS queries seen, by server and query type (the first question's).";
const RESPONSES: &str = "DNS responses seen, by server, query type and rcode.";
const UNANSWERED: &str =
    "DNS queries whose response never came (timed out or the flow ended), by server and query type.";
const LATENCY: &str = "DNS query to response, by server.";
const NAMES: &str = "DNS queries by queried name (the first question's), the most queried names.";
