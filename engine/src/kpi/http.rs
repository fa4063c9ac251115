//! HTTP: requests by host, method and status class (RED), latency and body
//! bytes per host (the Host header, else the server's address).

use dissect::app::http::{method_label, HttpEvent};
use dissect::event::AppEnvelope;
use output::metrics::{fig, Exposition, Histogram, Kind};

use super::{each_value, ip_text, list_label, AppMetricsSection, Counts, Merge, TopN};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct HttpHost {
    /// By method and status class.
    requests: Counts<(&'static str, &'static str)>,
    latency: Histogram,
    request_body_bytes: u64,
    response_body_bytes: u64,
}

impl Merge for HttpHost {
    fn merge(&mut self, o: &Self) {
        self.requests.merge(&o.requests);
        self.latency.add(&o.latency);
        self.request_body_bytes += o.request_body_bytes;
        self.response_body_bytes += o.response_body_bytes;
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct HttpMetrics {
    hosts: TopN<String, HttpHost>,
}

/// "2xx" for 200..=299; "none" without a response.
fn status_class(status: Option<u16>) -> &'static str {
    match status.map(|s| s / 100) {
        None => "none",
        Some(1) => "1xx",
        Some(2) => "2xx",
        Some(3) => "3xx",
        Some(4) => "4xx",
        Some(5) => "5xx",
        Some(_) => "other",
    }
}

impl HttpMetrics {
    pub(super) fn new(cfg: &AppMetricsSection) -> HttpMetrics {
        HttpMetrics {
            hosts: TopN::new(cfg.http_hosts),
        }
    }

    pub(super) fn observe(&mut self, env: &AppEnvelope<'_>, ev: &HttpEvent, scratch: &mut String) {
        let host = match ev.host.as_deref() {
            Some(h) => h,
            None => ip_text(scratch, env.dst_ip),
        };
        let h = self.hosts.entry(host);
        let method = ev.method.as_deref().map_or("none", method_label);
        h.requests.add((method, status_class(ev.status)), 1);
        if let Some(ns) = ev.latency_ns {
            h.latency.observe_ns(ns);
        }
        h.request_body_bytes += ev.request_body_len;
        h.response_body_bytes += ev.response_body_len;
    }

    pub(super) fn rebalance(&mut self) {
        self.hosts.rebalance();
    }

    pub(super) fn list(&self, e: &mut Exposition) {
        e.declare_all(&[
            ("flowtap_http_requests_total", Kind::Counter, REQUESTS),
            ("flowtap_http_latency_seconds", Kind::Histogram, LATENCY),
            (
                "flowtap_http_request_body_bytes_total",
                Kind::Counter,
                REQUEST_BODY,
            ),
            (
                "flowtap_http_response_body_bytes_total",
                Kind::Counter,
                RESPONSE_BODY,
            ),
        ]);
        for (host, h) in each_value(&self.hosts, |h| h.clone()) {
            if h.requests.0.is_empty() {
                continue;
            }
            let host = host.as_str();
            for ((method, class), n) in h.requests.iter() {
                let l = [("host", host), ("method", method), ("status_class", class)];
                fig(
                    e,
                    "",
                    "flowtap_http_requests_total",
                    Kind::Counter,
                    REQUESTS,
                    &l,
                    n,
                );
            }
            let l = [("host", host)];
            e.histogram("flowtap_http_latency_seconds", LATENCY, &l, &h.latency);
            fig(
                e,
                "",
                "flowtap_http_request_body_bytes_total",
                Kind::Counter,
                REQUEST_BODY,
                &l,
                h.request_body_bytes,
            );
            fig(
                e,
                "",
                "flowtap_http_response_body_bytes_total",
                Kind::Counter,
                RESPONSE_BODY,
                &l,
                h.response_body_bytes,
            );
        }
        list_label(e, "http_host", &self.hosts);
    }
}

const REQUESTS: &str = "HTTP transactions by host, method (\"OTHER\": not a standard method) and status class (\"none\": no response).";
const LATENCY: &str = "HTTP request fully seen to the final status line, by host.";
const REQUEST_BODY: &str = "HTTP request body bytes (after de-chunking), by host.";
const RESPONSE_BODY: &str = "HTTP response body bytes (after de-chunking), by host.";
