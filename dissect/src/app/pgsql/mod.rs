//! PostgreSQL (frontend/backend protocol 3.0) over TCP.
//!
//! * `wire`: startup packets, typed messages, the bodies read.
//! * `state`: framing per direction, requests awaiting their answer (the
//!   server answers in order), prepared statements and portals, gaps.
//! * `event`: [`PgsqlEvent`], one per request/response exchange.
//!
//! Passwords and SASL/GSS data are never kept; only that they were sent.
//! After an accepted SSLRequest the flow is TLS: the event says so and the
//! parser stops.

pub mod event;
mod schema;
mod state;
pub mod wire;

pub use event::{AuthMethod, PgsqlError, PgsqlEvent, PgsqlRequest};

use super::registry::{ExportField, FieldValue, MatchKind, Outcome, Protocol, Transaction};
use super::{
    AppEvent, AppParser, AppProto, AppStats, Ctx, Direction, ParseStatus, Probe, Transport,
};

/// PostgreSQL parser limits.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PgsqlConfig {
    /// Requests waiting for their answer; on overflow the oldest is emitted
    /// as unanswered (counted).
    pub max_pending: usize,
    /// Statement text kept per event (simple query, Parse); longer text is
    /// cut and the event marked truncated.
    pub max_statement_bytes: usize,
    /// Replace the literals of statements (strings, numbers) by `?`
    /// ([`crate::app::sql::normalize`]): no customer data or passwords in
    /// events, and one text per query shape.
    pub normalize_statements: bool,
    /// Messages longer than this are read up to it and the rest skipped
    /// (DataRow and CopyData are never buffered, whatever their size).
    pub max_message_bytes: usize,
    /// Prepared statements and portals remembered per flow (extended protocol).
    pub max_prepared: usize,
    /// Parameter names/values, error fields and command tags are cut here.
    pub max_field_bytes: usize,
    /// Startup and ParameterStatus parameters kept per event.
    pub max_parameters: usize,
}

impl Default for PgsqlConfig {
    fn default() -> Self {
        PgsqlConfig {
            max_pending: 64,
            max_statement_bytes: 4096,
            normalize_statements: false,
            max_message_bytes: 65536,
            max_prepared: 64,
            max_field_bytes: 1024,
            max_parameters: 32,
        }
    }
}

/// Content probe: the client's first packet is an SSLRequest, a
/// GSSENCRequest, a CancelRequest or a protocol 3 StartupMessage whose
/// parameters parse and name a `user`. Strong enough to find a server on
/// any port.
pub fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
    if dir != Direction::ToServer {
        return Probe::No;
    }
    match wire::untyped_head(data) {
        None => {
            // Every startup packet starts with a 4-byte length under 10000.
            match crate::app::util::be32(data, 0) {
                Some(len) if !(8..=wire::MAX_STARTUP_LEN as u32).contains(&len) => Probe::No,
                _ if data.first().is_some_and(|&b| b != 0) => Probe::No,
                _ => Probe::NeedMore,
            }
        }
        Some(Err(())) => Probe::No,
        Some(Ok((_, wire::Untyped::Ssl | wire::Untyped::GssEnc | wire::Untyped::Cancel))) => {
            Probe::Yes
        }
        Some(Ok((len, wire::Untyped::Startup(..)))) => {
            let complete = data.len() >= len;
            let body = data.get(8..len.min(data.len())).unwrap_or(&[]);
            if !wire::plausible_startup(body, complete) {
                Probe::No
            } else if complete || data.len() >= 2048 {
                // The engine tries at most 2 KiB: a long packet that still
                // looks right there is taken.
                Probe::Yes
            } else {
                Probe::NeedMore
            }
        }
    }
}

/// PostgreSQL parser of one flow.
pub struct PgsqlParser {
    st: state::PgsqlState,
}

impl PgsqlParser {
    pub fn new(cfg: PgsqlConfig) -> PgsqlParser {
        PgsqlParser {
            st: state::PgsqlState::new(cfg),
        }
    }
}

impl AppParser for PgsqlParser {
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

    fn peek(&self, f: &mut dyn FnMut(crate::app::Peek<'_>)) {
        self.st.peek(&mut |ev| f(crate::app::Peek::Pgsql(ev)));
    }

    fn is_done(&self) -> bool {
        self.st.is_done()
    }

    fn stats(&self) -> AppStats {
        self.st.stats
    }

    fn proto(&self) -> AppProto {
        AppProto::Pgsql
    }
}

/// PostgreSQL in the registry.
pub struct PgsqlProtocol;

impl Protocol for PgsqlProtocol {
    const NAME: &'static str = "pgsql";
    type Event = PgsqlEvent;
    type Config = PgsqlConfig;
    const CONFIG_TOML: &'static str = r#"[app.pgsql]
# Requests waiting for their answer, per flow.
max_pending = 64
# Statement text kept per event; longer text is cut (marked truncated).
max_statement_bytes = 4096
# Replace literals (strings, numbers) in statements by ? (privacy, aggregation).
normalize_statements = false
# Longer messages are read up to this and the rest skipped (result rows and
# COPY data are never buffered). At most 196608.
max_message_bytes = 65536
# Prepared statements and portals remembered per flow (extended protocol).
max_prepared = 64
# Parameters, error fields and command tags are cut at this length.
max_field_bytes = 1024
# Startup and ParameterStatus parameters kept per event.
max_parameters = 32
"#;
    const TCP_PORTS: &'static [u16] = &[5432];

    fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
        probe_tcp(dir, data)
    }

    fn new_parser(_transport: Transport, cfg: &PgsqlConfig) -> Box<dyn AppParser> {
        Box::new(PgsqlParser::new(cfg.clone()))
    }

    fn validate(cfg: &PgsqlConfig) -> Result<(), String> {
        if cfg.max_pending == 0 {
            return Err("max_pending: must be at least 1".into());
        }
        // The engine buffers at most 256 KiB per flow direction.
        if !(1024..=196_608).contains(&cfg.max_message_bytes) {
            return Err("max_message_bytes: must be between 1024 and 196608".into());
        }
        if cfg.max_statement_bytes == 0 || cfg.max_statement_bytes > cfg.max_message_bytes {
            return Err("max_statement_bytes: must be between 1 and max_message_bytes".into());
        }
        if cfg.max_prepared == 0 {
            return Err("max_prepared: must be at least 1".into());
        }
        if cfg.max_field_bytes == 0 {
            return Err("max_field_bytes: must be at least 1".into());
        }
        Ok(())
    }

    fn example_event() -> PgsqlEvent {
        schema::example()
    }

    fn is_error(ev: &PgsqlEvent) -> bool {
        ev.error.is_some()
    }

    fn transaction(ev: &PgsqlEvent) -> Transaction<'_> {
        let operation = match (ev.request, ev.statement.as_deref()) {
            (
                PgsqlRequest::Query | PgsqlRequest::Execute | PgsqlRequest::Prepare,
                Some(statement),
            ) => super::sql::verb(statement),
            (request, _) => request.as_str(),
        };
        Transaction {
            operation,
            outcome: Outcome::of(!ev.unanswered, ev.error.is_some()),
            error_code: ev
                .error
                .as_ref()
                .and_then(|e| e.code())
                .map(FieldValue::Str),
            latency_ns: ev.latency_ns,
        }
    }

    fn event_start_ns(ev: &PgsqlEvent) -> Option<u64> {
        ev.request_ts_ns.or(ev.response_ts_ns)
    }

    fn tx_id(ev: &PgsqlEvent) -> Option<u64> {
        Some(ev.tx_id)
    }

    const EXPORT_FIELDS: &'static [ExportField] = &[
        ExportField {
            name: "statement",
            kind: MatchKind::Name,
            early: true,
            doc: "statement text of a simple query or an Execute (wildcards)",
        },
        ExportField {
            name: "user",
            kind: MatchKind::Name,
            early: true,
            doc: "user of the session (from the startup packet)",
        },
        ExportField {
            name: "database",
            kind: MatchKind::Name,
            early: true,
            doc: "database of the session",
        },
        ExportField {
            name: "error",
            kind: MatchKind::Word,
            early: false,
            doc: "SQLSTATE code of an ErrorResponse (42P01)",
        },
    ];

    fn export_values(ev: &PgsqlEvent, field: usize, f: &mut dyn FnMut(FieldValue<'_>)) {
        let v = match field {
            0 => ev.statement.as_deref(),
            1 => ev.user.as_deref(),
            2 => ev.database.as_deref(),
            3 => ev.error.as_ref().and_then(|e| e.code()),
            _ => None,
        };
        if let Some(s) = v {
            f(FieldValue::Str(s));
        }
    }
}

#[cfg(test)]
mod tests;
