//! DNS over UDP (one message per datagram) and TCP (2-byte length framing).
//!
//! * `wire`: header, names with compression, questions, records.
//! * `state`: pending queries, matching, framing, expiry.
//! * `event`: [`DnsEvent`], one per query/response pair.
//!
//! Matching uses the message's QR bit, not the direction, so a flow first seen
//! from its response side still pairs correctly.

pub mod event;
mod schema;
mod state;
pub mod wire;

pub use event::{
    rcode_name, rrtype_name, ClientSubnet, DnsEvent, DnsQuestion, DnsRdata, DnsRecord, Edns,
    SvcParam,
};

use super::registry::{ExportField, FieldValue, MatchKind, Outcome, Protocol, Transaction};
use super::{
    AppEvent, AppParser, AppProto, AppStats, Ctx, Direction, ParseStatus, Probe, Transport,
};

/// DNS parser limits.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Queries waiting for a response; on overflow the oldest is emitted as
    /// unanswered (counted).
    pub max_pending: usize,
    /// Queries older than this (by packet time) are emitted as unanswered on
    /// the next `parse`/`expire` call. 0 = only at flow end. Written in
    /// seconds in the config (`query_timeout`).
    #[serde(
        rename = "query_timeout",
        deserialize_with = "crate::app::util::secs_as_ns"
    )]
    pub query_timeout_ns: u64,
    /// Records kept per section (answers, authorities); the rest are counted.
    pub max_records: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            max_pending: 64,
            query_timeout_ns: 10_000_000_000,
            max_records: 64,
        }
    }
}

/// Content sanity for a UDP datagram: a plausible header and, when there is
/// a question, a question that parses.
pub fn probe_udp(data: &[u8]) -> bool {
    let Ok(h) = wire::parse_header(data) else {
        return false;
    };
    if !wire::plausible_header(&h, data.len()) {
        return false;
    }
    if h.qdcount == 0 {
        return h.has_content();
    }
    wire::check_question(data, wire::HEADER_LEN).is_ok()
}

/// Content probe for DNS over TCP: length prefix, plausible header, a query
/// towards the server, and a first question that parses.
pub fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
    let Some(len) = crate::app::util::be16(data, 0).map(usize::from) else {
        return Probe::NeedMore;
    };
    if len < wire::HEADER_LEN {
        return Probe::No;
    }
    let msg = data.get(2..(2 + len).min(data.len())).unwrap_or(&[]);
    let Ok(h) = wire::parse_header(msg) else {
        return Probe::NeedMore;
    };
    if !wire::plausible_header(&h, len) || (dir == Direction::ToServer && h.qr()) {
        return Probe::No;
    }
    if h.qdcount == 0 {
        return Probe::Yes;
    }
    match wire::check_question(msg, wire::HEADER_LEN) {
        Ok(_) => Probe::Yes,
        Err(wire::DnsError::Short) if msg.len() < len => Probe::NeedMore,
        Err(_) => Probe::No,
    }
}

/// DNS parser of one flow.
pub struct DnsParser {
    st: state::DnsState,
}

impl DnsParser {
    pub fn new(transport: Transport, cfg: DnsConfig) -> DnsParser {
        DnsParser {
            st: state::DnsState::new(cfg, transport == Transport::Tcp),
        }
    }

    /// Emit queries seen before `cutoff_ns` as unanswered (timed out).
    pub fn expire_older_than(&mut self, cutoff_ns: u64, emit: &mut dyn FnMut(AppEvent)) {
        self.st.expire_older_than(cutoff_ns, emit)
    }
}

impl AppParser for DnsParser {
    fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) -> ParseStatus {
        self.st.parse(dir, data, ctx, emit)
    }

    fn on_gap(&mut self, dir: Direction, len: u64) {
        self.st.on_gap(dir, len)
    }

    fn flush(&mut self, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        self.st.flush(ctx, emit)
    }

    fn expire(&mut self, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        self.st.expire(ctx, emit)
    }

    fn peek(&self, f: &mut dyn FnMut(crate::app::Peek<'_>)) {
        self.st.peek(&mut |ev| f(crate::app::Peek::Dns(ev)));
    }

    fn stats(&self) -> AppStats {
        self.st.stats
    }

    fn proto(&self) -> AppProto {
        AppProto::Dns
    }
}

/// DNS (over UDP and TCP) in the registry.
pub struct DnsProtocol;

impl Protocol for DnsProtocol {
    const NAME: &'static str = "dns";
    type Event = DnsEvent;
    type Config = DnsConfig;
    const CONFIG_TOML: &'static str = r#"[app.dns]
# Queries waiting for their response, per flow.
max_pending = 64
# Seconds after which a query without response is emitted as unanswered.
query_timeout = 10
# Records kept per section (answers, authorities) of a message.
max_records = 64
"#;
    const TCP_PORTS: &'static [u16] = &[53, 5353, 5355];
    const UDP_PORTS: &'static [u16] = &[53, 5353, 5355];
    const TCP_PROBE_NEEDS_PORT: bool = true;

    fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
        probe_tcp(dir, data)
    }

    fn probe_udp(data: &[u8]) -> bool {
        probe_udp(data)
    }

    fn new_parser(transport: Transport, cfg: &DnsConfig) -> Box<dyn AppParser> {
        Box::new(DnsParser::new(transport, cfg.clone()))
    }

    fn validate(cfg: &DnsConfig) -> Result<(), String> {
        if cfg.max_pending == 0 {
            return Err("max_pending: must be at least 1".into());
        }
        if cfg.query_timeout_ns < 1_000_000_000 {
            return Err("query_timeout: must be at least 1 second".into());
        }
        Ok(())
    }

    fn example_event() -> DnsEvent {
        schema::example()
    }

    fn transaction(ev: &DnsEvent) -> Transaction<'_> {
        Transaction {
            operation: ev
                .queries
                .first()
                .map_or("none", |q| rrtype_name(q.rtype).unwrap_or("OTHER")),
            outcome: Outcome::of(ev.has_response, false),
            error_code: None,
            latency_ns: ev.latency_ns,
        }
    }

    fn event_start_ns(ev: &DnsEvent) -> Option<u64> {
        ev.query_ts_ns.or(ev.response_ts_ns)
    }

    const EXPORT_FIELDS: &'static [ExportField] = &[ExportField {
        name: "query",
        kind: MatchKind::Name,
        early: true,
        doc: "any question name of a query",
    }];

    fn export_values(ev: &DnsEvent, field: usize, f: &mut dyn FnMut(FieldValue<'_>)) {
        if field == 0 {
            for q in &ev.queries {
                f(FieldValue::Str(&q.name));
            }
        }
    }
}

#[cfg(test)]
mod tests;
