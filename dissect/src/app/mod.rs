//! Application-layer parsers: the probe/parse contract and the HTTP/1.x, DNS
//! and TLS parsers.
//!
//! The engine owns reassembly. It feeds each parser in-order stream bytes per
//! direction (TCP) or whole datagrams (UDP) and never hands it packets.
//!
//! # How the engine drives a parser
//!
//! * Per direction the engine keeps a buffer of bytes the parser has not
//!   consumed yet (bounded by its own cap). On new bytes it appends them and
//!   calls [`AppParser::parse`] with the whole unconsumed slice.
//! * [`ParseStatus::Consumed`]`(n)`: drop `n` bytes; keep the rest (if any)
//!   and call again when more arrive. `n` may be smaller than the slice
//!   (for example while an HTTP request waits for the answer to a `CONNECT`).
//! * [`ParseStatus::Incomplete`]`{consumed, needed}`: drop `consumed`; do not
//!   call again until at least `needed` unconsumed bytes are buffered (or a gap
//!   or flow end happens). If `needed` exceeds the engine's cap, treat it like a
//!   gap: drop the buffer and call [`AppParser::on_gap`] with its length.
//! * [`ParseStatus::Error`]`{consumed}`: count it and stop feeding this
//!   direction (the other direction goes on; `flush` is still called).
//! * Lost bytes: call [`AppParser::on_gap`] with the number of bytes missing
//!   *after* feeding everything before the hole; drop anything still buffered
//!   for that direction first (pass its length in the gap too).
//! * At flow end (or eviction) call [`AppParser::flush`]; pending transactions
//!   are emitted there.
//! * [`AppParser::is_done`] says that nothing more will be parsed (a tunnel
//!   after `CONNECT`/`101`, a TLS session after its handshake): the engine can
//!   stop buffering and feeding the flow (it must still call `flush`).
//! * [`AppParser::stats`] returns the parser's counters; add them to the
//!   per-core counters when the flow ends.
//!
//!
//! [`driver::AppDriver`] is this section in code: the engine, the unit tests
//! and the fuzz targets all feed parsers through it.
//!
//! No parser panics, loops without progress or allocates without a bound on
//! any input; every limit is in [`AppConfig`] and counted in [`AppStats`].

pub mod amqp;
pub mod dns;
pub mod driver;
pub mod encode;
pub mod http;
pub mod mysql;
pub mod pgsql;
pub mod redis;
pub mod registry;
pub mod sql;
pub mod tls;
pub(crate) mod util;

pub use dns::{DnsConfig, DnsEvent, DnsParser};
pub use http::{HttpConfig, HttpEvent, HttpParser};
pub use tls::{TlsConfig, TlsEvent, TlsParser};

// The registered protocols, in detection order: one line per protocol.
registry::app_protocols! {
    Http => http::HttpProtocol,
    Dns => dns::DnsProtocol,
    Tls => tls::TlsProtocol,
    Pgsql => pgsql::PgsqlProtocol,
    Mysql => mysql::MysqlProtocol,
    Redis => redis::RedisProtocol,
    Amqp => amqp::AmqpProtocol,
}

/// Which way bytes travel, relative to the flow's client (initiator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    ToServer,
    ToClient,
}

impl Direction {
    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    pub fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// Answer of a content probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Yes,
    No,
    NeedMore,
}

/// Result of one [`AppParser::parse`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseStatus {
    /// This many bytes were consumed; the caller drops them and calls again with the rest (if any) when more arrive.
    Consumed(usize),
    /// Nothing more can be parsed until at least `needed` bytes (counting from the start of the unconsumed data) are available; the caller keeps the unconsumed bytes (bounded by its own cap) and calls again with more.
    Incomplete { consumed: usize, needed: usize },
    /// The stream is not parseable any more in this direction; the caller stops feeding it (counted).
    Error { consumed: usize },
}

/// Per-call context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ctx {
    /// Timestamp (ns since the epoch) of the packet that delivered the newest bytes.
    pub ts_ns: u64,
}

impl Ctx {
    pub fn new(ts_ns: u64) -> Ctx {
        Ctx { ts_ns }
    }
}

/// Counters one parser keeps for its flow. All monotonic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppStats {
    /// Events emitted.
    pub events: u64,
    /// Messages (or bytes streams) that did not parse: malformed DNS messages,
    /// bad HTTP start lines, broken TLS records.
    pub malformed: u64,
    /// Transactions dropped or force-emitted because the pending queue was full.
    pub pending_overflow: u64,
    /// Fields, header lists, bodies, answer lists or handshake messages cut at a limit.
    pub truncated: u64,
    /// `on_gap` calls.
    pub gaps: u64,
    /// Times the parser found its footing again after a gap.
    pub resyncs: u64,
    /// Responses seen without a matching request/query.
    pub orphan_responses: u64,
    /// Requests/queries emitted without a response (flush or expiry).
    pub unanswered: u64,
}

impl AppStats {
    pub fn add(&mut self, o: &AppStats) {
        self.events += o.events;
        self.malformed += o.malformed;
        self.pending_overflow += o.pending_overflow;
        self.truncated += o.truncated;
        self.gaps += o.gaps;
        self.resyncs += o.resyncs;
        self.orphan_responses += o.orphan_responses;
        self.unanswered += o.unanswered;
    }
}

/// One application-layer parser instance: one per flow.
pub trait AppParser: Send {
    /// Parse in-order bytes of one direction (TCP) or one whole datagram (UDP).
    fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) -> ParseStatus;
    /// `len` bytes were lost in this direction; the parser resyncs to a known state.
    fn on_gap(&mut self, dir: Direction, len: u64);
    /// Flow end: emit pending transactions (request without response, unanswered query).
    fn flush(&mut self, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent));
    /// Timer hook: emit transactions that waited too long (DNS queries older
    /// than the configured timeout). `parse` does the same on every call.
    fn expire(&mut self, _ctx: &Ctx, _emit: &mut dyn FnMut(AppEvent)) {}
    /// What is already known of transactions whose event is not out yet:
    /// HTTP requests whose headers are complete (awaiting their response),
    /// a TLS handshake after its ClientHello, DNS queries awaiting their
    /// answer. Only the fields seen so far are set. For decisions that
    /// should not wait for the event (the engine's PCAP export rules).
    fn peek(&self, _f: &mut dyn FnMut(Peek<'_>)) {}
    /// Nothing more will be parsed on this flow (tunnel, finished handshake).
    fn is_done(&self) -> bool {
        false
    }
    /// Counters of this parser.
    fn stats(&self) -> AppStats;
    fn proto(&self) -> AppProto;
}

/// Transport a parser runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// Result of [`detect_tcp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detect {
    Proto(AppProto),
    NeedMore,
    Unknown,
}

/// Detect the protocol of a TCP stream from the first bytes of one direction.
///
/// Ports only order the probes and gate the protocols whose probe is too
/// weak to trust on any port (DNS): those are tried first when a port is
/// theirs and never otherwise; then the protocol the server port (else the
/// client port) hints at; then the rest in registry order. `Unknown` when
/// every probe said No; `NeedMore` while some probe needs more bytes. The
/// caller bounds how many bytes it tries (2 KiB is plenty for all).
/// Whether a TCP port is where servers listen: a port of a registered
/// protocol, or a system port (below 1024). Decides who the client is when
/// a connection is picked up without its handshake.
pub fn likely_server_port(port: u16) -> bool {
    port < 1024
        || AppProto::ALL
            .iter()
            .any(|p| p.info().tcp_ports.contains(&port))
}

pub fn detect_tcp(src_port: u16, dst_port: u16, dir: Direction, data: &[u8]) -> Detect {
    let on_port = |p: AppProto, port: u16| p.info().tcp_ports.contains(&port);
    let hint = AppProto::ALL
        .iter()
        .copied()
        .find(|&p| on_port(p, dst_port))
        .or_else(|| {
            AppProto::ALL
                .iter()
                .copied()
                .find(|&p| on_port(p, src_port))
        });
    let gated = |p: AppProto| p.info().tcp_probe_needs_port;
    let gated_here = |p: AppProto| gated(p) && (on_port(p, src_port) || on_port(p, dst_port));
    let first = AppProto::ALL.iter().copied().filter(|&p| gated_here(p));
    let hinted = hint.filter(|&p| !gated(p));
    let rest = AppProto::ALL
        .iter()
        .copied()
        .filter(|&p| !gated(p) && Some(p) != hinted);
    let mut need_more = false;
    for proto in first.chain(hinted).chain(rest) {
        match probe(proto, dir, data) {
            Probe::Yes => return Detect::Proto(proto),
            Probe::NeedMore => need_more = true,
            Probe::No => {}
        }
    }
    if need_more {
        Detect::NeedMore
    } else {
        Detect::Unknown
    }
}

/// Detect the protocol of a UDP flow from one datagram: the first protocol
/// with a UDP port on either side whose probe accepts the datagram (DNS on
/// 53/5353/5355 when it looks like a DNS message).
pub fn detect_udp(src_port: u16, dst_port: u16, data: &[u8]) -> Option<AppProto> {
    AppProto::ALL.iter().copied().find(|&p| {
        let ports = p.info().udp_ports;
        (ports.contains(&src_port) || ports.contains(&dst_port)) && probe_udp(p, data)
    })
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_by_content_and_port() {
        let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            detect_tcp(40000, 8080, Direction::ToServer, get),
            Detect::Proto(AppProto::Http)
        );
        assert_eq!(
            detect_tcp(40000, 443, Direction::ToServer, get),
            Detect::Proto(AppProto::Http)
        );
        assert_eq!(
            detect_tcp(40000, 80, Direction::ToServer, b"GE"),
            Detect::NeedMore
        );
        assert_eq!(
            detect_tcp(40000, 80, Direction::ToServer, b"\x00\x01garbage"),
            Detect::Unknown
        );
        let ch = [0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0, 0, 0x3c, 0x03, 0x03];
        assert_eq!(
            detect_tcp(40000, 80, Direction::ToServer, &ch),
            Detect::Proto(AppProto::Tls)
        );
        assert_eq!(
            detect_tcp(40000, 443, Direction::ToServer, &ch[..3]),
            Detect::NeedMore
        );
        assert_eq!(AppProto::Tls.as_str(), "tls");
    }

    /// Mixed captures, protocol detected from content: every Suricata http
    /// and tls event has its counterpart among ours (same flow, uri/status
    /// or sni/ja4/version/leaf subject).
    #[test]
    fn corpus_mixed_detect_and_parse() {
        use crate::app::testutil::{corpus, replay_tcp_detect, suricata_events};
        let caps = [
            ("mixed/sv-ethernet-eve--test.pcap", 1, 5),
            ("mixed/ndpi-1kxun.pcap", 24, 4),
            ("ipv6/sv-community-id-ipv6--input.pcap", 0, 2),
            ("vlan/ndpi-ja3_lots_of_cipher_suites.pcap", 0, 1),
            ("tcp/sv-tcp-rst-unacked-stream-10--TLPW1-tcp-174.56.47.59-10.3.11.101-tcp-80-49309.pcap", 1, 0),
        ];
        for (rel, n_http, n_tls) in caps {
            let flows = replay_tcp_detect(&corpus(rel));
            let ours: Vec<(u16, u16, &AppEvent)> = flows
                .iter()
                .flat_map(|f| {
                    f.events
                        .iter()
                        .map(move |e| (f.client_port, f.server_port, e))
                })
                .collect();
            let http = suricata_events(rel, "http");
            assert_eq!(http.len(), n_http, "{rel}");
            for t in &http {
                let (sp, dp) = (
                    t["src_port"].as_u64().unwrap() as u16,
                    t["dest_port"].as_u64().unwrap() as u16,
                );
                let h = &t["http"];
                let found = ours.iter().any(|(c, s, e)| {
                    *c == sp
                        && *s == dp
                        && matches!(e, AppEvent::Http(x)
                            if x.uri.as_deref() == h["url"].as_str()
                            && x.status.map(u64::from) == h["status"].as_u64()
                            && x.host.as_deref() == h["hostname"].as_str())
                });
                assert!(found, "{rel}: http {sp}->{dp} {} missing", h["url"]);
            }
            let tls = suricata_events(rel, "tls");
            assert_eq!(tls.len(), n_tls, "{rel}");
            for t in &tls {
                let (sp, dp) = (
                    t["src_port"].as_u64().unwrap() as u16,
                    t["dest_port"].as_u64().unwrap() as u16,
                );
                let x = &t["tls"];
                let found = ours.iter().any(|(c, s, e)| {
                    *c == sp
                        && *s == dp
                        && matches!(e, AppEvent::Tls(y)
                            if y.sni.as_deref() == x["sni"].as_str()
                            && y.ja4.as_deref() == x["ja4"].as_str()
                            && y.version.map(tls::version_name).as_deref() == x["version"].as_str()
                            && y.certificates.first().map(|c| c.subject.as_str()) == x["subject"].as_str())
                });
                assert!(
                    found,
                    "{rel}: tls {sp}->{dp} {} missing: {ours:#?}",
                    x["sni"]
                );
            }
        }
    }

    #[test]
    fn detect_udp_needs_port_and_content() {
        let q = crate::app::dns::wire::tests_support::query(0x1234, "example.com", 1);
        assert_eq!(detect_udp(5000, 53, &q), Some(AppProto::Dns));
        assert_eq!(detect_udp(53, 5000, &q), Some(AppProto::Dns));
        assert_eq!(detect_udp(5000, 54, &q), None);
        assert_eq!(detect_udp(5000, 53, b"hello world, not dns"), None);
    }
}
