//! TCP per server endpoint (responder address and port): connection
//! attempts, refused and unanswered SYNs, handshake delays on each side of
//! the mirror, retransmissions and zero windows per direction, application
//! response time. Counted once per connection, from its last flow record
//! (a long flow's interim records carry the KPIs so far).

use std::net::IpAddr;

use dissect::event::{EndReason, FlowRecord};
use output::metrics::{fig, Exposition, Histogram, Kind};

use super::{list_label, nanos, AppMetricsSection, Merge, TopN};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct TcpServer {
    connections: u64,
    attempts: u64,
    refused: u64,
    unanswered: u64,
    /// To the server, to the client.
    retransmitted: [u64; 2],
    zero_window: [u64; 2],
    server_delay: Histogram,
    client_delay: Histogram,
    app_response: Histogram,
}

impl Merge for TcpServer {
    fn merge(&mut self, o: &Self) {
        self.connections += o.connections;
        self.attempts += o.attempts;
        self.refused += o.refused;
        self.unanswered += o.unanswered;
        for d in 0..2 {
            self.retransmitted[d] += o.retransmitted[d];
            self.zero_window[d] += o.zero_window[d];
        }
        self.server_delay.add(&o.server_delay);
        self.client_delay.add(&o.client_delay);
        self.app_response.add(&o.app_response);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TcpMetrics {
    servers: TopN<(IpAddr, u16), TcpServer>,
}

impl TcpMetrics {
    pub(super) fn new(cfg: &AppMetricsSection) -> TcpMetrics {
        TcpMetrics {
            servers: TopN::new(cfg.tcp_servers),
        }
    }

    pub(super) fn observe(&mut self, rec: &FlowRecord) {
        let Some(k) = &rec.tcp else {
            return;
        };
        if rec.end_reason == EndReason::ActiveTimeout {
            return;
        }
        let s = self.servers.entry(&(rec.dst_ip, rec.dst_port));
        s.connections += 1;
        if k.orig.syn > 0 {
            s.attempts += 1;
            if k.resp.syn_ack == 0 {
                if k.resp.rst > 0 {
                    s.refused += 1;
                } else {
                    s.unanswered += 1;
                }
            }
        }
        s.retransmitted[0] += u64::from(k.orig.retransmitted);
        s.retransmitted[1] += u64::from(k.resp.retransmitted);
        s.zero_window[0] += u64::from(k.orig.zero_window);
        s.zero_window[1] += u64::from(k.resp.zero_window);
        if let Some(us) = k.server_delay_us {
            s.server_delay.observe_ns(nanos(us));
        }
        if let Some(us) = k.client_delay_us {
            s.client_delay.observe_ns(nanos(us));
        }
        if k.app_response_count > 0 {
            s.app_response.observe_spread(
                nanos(k.app_response_sum_us),
                u64::from(k.app_response_count),
            );
        }
    }

    pub(super) fn rebalance(&mut self) {
        self.servers.rebalance();
    }

    pub(super) fn list(&self, e: &mut Exposition) {
        e.declare_all(&[
            ("flowtap_tcp_connections_total", Kind::Counter, CONNECTIONS),
            (
                "flowtap_tcp_connection_attempts_total",
                Kind::Counter,
                ATTEMPTS,
            ),
            (
                "flowtap_tcp_connections_refused_total",
                Kind::Counter,
                REFUSED,
            ),
            (
                "flowtap_tcp_connections_unanswered_total",
                Kind::Counter,
                UNANSWERED,
            ),
            (
                "flowtap_tcp_retransmitted_segments_total",
                Kind::Counter,
                RETRANSMITTED,
            ),
            (
                "flowtap_tcp_zero_window_segments_total",
                Kind::Counter,
                ZERO_WINDOW,
            ),
            (
                "flowtap_tcp_server_handshake_delay_seconds",
                Kind::Histogram,
                SERVER_DELAY,
            ),
            (
                "flowtap_tcp_client_handshake_delay_seconds",
                Kind::Histogram,
                CLIENT_DELAY,
            ),
            ("flowtap_tcp_app_response_seconds", Kind::Histogram, ART),
        ]);
        let kept = self
            .servers
            .iter()
            .map(|((ip, port), s)| (ip.to_string(), port.to_string(), s));
        let other = std::iter::once((
            "other".to_string(),
            "other".to_string(),
            self.servers.other(),
        ));
        for (server, port, s) in kept.chain(other) {
            if s.connections == 0 {
                continue;
            }
            let l = [("server", server.as_str()), ("port", port.as_str())];
            for (metric, help, v) in [
                ("flowtap_tcp_connections_total", CONNECTIONS, s.connections),
                (
                    "flowtap_tcp_connection_attempts_total",
                    ATTEMPTS,
                    s.attempts,
                ),
                ("flowtap_tcp_connections_refused_total", REFUSED, s.refused),
                (
                    "flowtap_tcp_connections_unanswered_total",
                    UNANSWERED,
                    s.unanswered,
                ),
            ] {
                fig(e, "", metric, Kind::Counter, help, &l, v);
            }
            for (d, dir) in ["toserver", "toclient"].into_iter().enumerate() {
                let l = [
                    ("server", server.as_str()),
                    ("port", port.as_str()),
                    ("direction", dir),
                ];
                fig(
                    e,
                    "",
                    "flowtap_tcp_retransmitted_segments_total",
                    Kind::Counter,
                    RETRANSMITTED,
                    &l,
                    s.retransmitted[d],
                );
                fig(
                    e,
                    "",
                    "flowtap_tcp_zero_window_segments_total",
                    Kind::Counter,
                    ZERO_WINDOW,
                    &l,
                    s.zero_window[d],
                );
            }
            e.histogram(
                "flowtap_tcp_server_handshake_delay_seconds",
                SERVER_DELAY,
                &l,
                &s.server_delay,
            );
            e.histogram(
                "flowtap_tcp_client_handshake_delay_seconds",
                CLIENT_DELAY,
                &l,
                &s.client_delay,
            );
            e.histogram("flowtap_tcp_app_response_seconds", ART, &l, &s.app_response);
        }
        list_label(e, "tcp_server", &self.servers);
    }
}

const CONNECTIONS: &str = "TCP connections ended, by server address and port.";
const ATTEMPTS: &str = "TCP connections that began with the client's SYN, by server.";
const REFUSED: &str = "TCP connection attempts the server refused (RST, no SYN-ACK), by server.";
const UNANSWERED: &str = "TCP connection attempts that saw neither SYN-ACK nor RST, by server.";
const RETRANSMITTED: &str = "TCP segments retransmitted, by server and direction.";
const ZERO_WINDOW: &str = "TCP segments advertising a zero window, by server and direction.";
const SERVER_DELAY: &str =
    "SYN to SYN-ACK as seen from the mirror (network and server beyond it), by server.";
const CLIENT_DELAY: &str =
    "SYN-ACK to the client's ACK as seen from the mirror (network on the client side), by server.";
const ART: &str = "Application response time (end of request to start of response), by server; each connection's turns are placed in the bucket of its mean (sum and count are exact).";
