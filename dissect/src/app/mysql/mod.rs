//! MySQL and MariaDB (client/server protocol 10) over TCP.
//!
//! * `wire`: packet heads, the greeting, the handshake response, OK/ERR/EOF.
//! * `state`: framing per direction, the login phase, commands awaiting
//!   their answer (answered in order), result sets, prepared statements, gaps.
//! * `event`: [`MysqlEvent`], one per command and its answer (and one per login).
//!
//! Passwords, scrambles and auth data are never kept; only their size.
//! When the client asks for TLS (an SSL request in place of its handshake
//! response) the login event says so and the parser stops.

pub mod event;
mod schema;
mod state;
pub mod wire;

pub use event::{MysqlCommand, MysqlError, MysqlEvent};

use super::registry::{ExportField, FieldValue, MatchKind, Outcome, Protocol, Transaction};
use super::{
    AppEvent, AppParser, AppProto, AppStats, Ctx, Direction, ParseStatus, Probe, Transport,
};

/// MySQL parser limits.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MysqlConfig {
    /// Commands waiting for their answer; on overflow the oldest is emitted
    /// as unanswered (counted).
    pub max_pending: usize,
    /// Statement text kept per event (COM_QUERY, COM_STMT_PREPARE); longer
    /// text is cut and the event marked truncated.
    pub max_statement_bytes: usize,
    /// Replace the literals of statements (strings, numbers) by `?`
    /// ([`crate::app::sql::normalize`]): no customer data or passwords in
    /// events, and one text per query shape.
    pub normalize_statements: bool,
    /// Packets longer than this are read up to it and the rest skipped
    /// (rows are never buffered, whatever their size).
    pub max_message_bytes: usize,
    /// Prepared statements remembered per flow (their text, by id).
    pub max_prepared: usize,
    /// User, schema, server version, error messages are cut here.
    pub max_field_bytes: usize,
}

impl Default for MysqlConfig {
    fn default() -> Self {
        MysqlConfig {
            max_pending: 64,
            max_statement_bytes: 4096,
            normalize_statements: false,
            max_message_bytes: 65536,
            max_prepared: 64,
            max_field_bytes: 1024,
        }
    }
}

/// Content probe: the server speaks first, with a protocol 10 greeting
/// (sequence 0, a printable version that starts with a digit, a zero
/// filler after the first scramble part). The client never speaks first,
/// so its direction says No.
pub fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
    if dir != Direction::ToClient {
        return Probe::No;
    }
    match wire::plausible_greeting(data) {
        Some(true) => Probe::Yes,
        Some(false) => Probe::No,
        None => Probe::NeedMore,
    }
}

/// MySQL parser of one flow.
pub struct MysqlParser {
    st: state::MysqlState,
}

impl MysqlParser {
    pub fn new(cfg: MysqlConfig) -> MysqlParser {
        MysqlParser {
            st: state::MysqlState::new(cfg),
        }
    }
}

impl AppParser for MysqlParser {
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
        self.st.peek(&mut |ev| f(crate::app::Peek::Mysql(ev)));
    }

    fn is_done(&self) -> bool {
        self.st.is_done()
    }

    fn stats(&self) -> AppStats {
        self.st.stats
    }

    fn proto(&self) -> AppProto {
        AppProto::Mysql
    }
}

/// MySQL/MariaDB in the registry.
pub struct MysqlProtocol;

impl Protocol for MysqlProtocol {
    const NAME: &'static str = "mysql";
    type Event = MysqlEvent;
    type Config = MysqlConfig;
    const CONFIG_TOML: &'static str = r#"[app.mysql]
# Commands waiting for their answer, per flow.
max_pending = 64
# Statement text kept per event; longer text is cut (marked truncated).
max_statement_bytes = 4096
# Replace literals (strings, numbers) in statements by ? (privacy, aggregation).
normalize_statements = false
# Longer packets are read up to this and the rest skipped (result rows are
# never buffered). At most 196608.
max_message_bytes = 65536
# Prepared statements remembered per flow (their text, by statement id).
max_prepared = 64
# User, schema, server version and error messages are cut at this length.
max_field_bytes = 1024
"#;
    const TCP_PORTS: &'static [u16] = &[3306];

    fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
        probe_tcp(dir, data)
    }

    fn new_parser(_transport: Transport, cfg: &MysqlConfig) -> Box<dyn AppParser> {
        Box::new(MysqlParser::new(cfg.clone()))
    }

    fn validate(cfg: &MysqlConfig) -> Result<(), String> {
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

    fn example_event() -> MysqlEvent {
        schema::example()
    }

    fn is_error(ev: &MysqlEvent) -> bool {
        ev.error.is_some()
    }

    fn transaction(ev: &MysqlEvent) -> Transaction<'_> {
        let operation = match ev.statement.as_deref() {
            Some(statement) => super::sql::verb(statement),
            None => ev.command.as_str(),
        };
        Transaction {
            operation,
            outcome: Outcome::of(!ev.unanswered, ev.error.is_some()),
            error_code: ev
                .error
                .as_ref()
                .map(|e| FieldValue::Num(u32::from(e.code))),
            latency_ns: ev.latency_ns,
        }
    }

    fn event_start_ns(ev: &MysqlEvent) -> Option<u64> {
        ev.request_ts_ns.or(ev.response_ts_ns)
    }

    fn tx_id(ev: &MysqlEvent) -> Option<u64> {
        Some(ev.tx_id)
    }

    const EXPORT_FIELDS: &'static [ExportField] = &[
        ExportField {
            name: "query",
            kind: MatchKind::Name,
            early: true,
            doc: "statement text of a query, prepare or execute (wildcards)",
        },
        ExportField {
            name: "command",
            kind: MatchKind::Word,
            early: true,
            doc: "command name (query, stmt_execute, init_db, login)",
        },
        ExportField {
            name: "user",
            kind: MatchKind::Name,
            early: true,
            doc: "user of the session (from the login)",
        },
        ExportField {
            name: "schema",
            kind: MatchKind::Name,
            early: true,
            doc: "default schema of the session",
        },
        ExportField {
            name: "error",
            kind: MatchKind::Number(65535),
            early: false,
            doc: "error code of an ERR packet (1146)",
        },
    ];

    fn export_values(ev: &MysqlEvent, field: usize, f: &mut dyn FnMut(FieldValue<'_>)) {
        let v = match field {
            0 => ev.statement.as_deref(),
            1 => Some(ev.command.as_str()),
            2 => ev.user.as_deref(),
            3 => ev.schema.as_deref(),
            4 => {
                if let Some(e) = &ev.error {
                    f(FieldValue::Num(u32::from(e.code)));
                }
                None
            }
            _ => None,
        };
        if let Some(s) = v {
            f(FieldValue::Str(s));
        }
    }
}

#[cfg(test)]
mod tests;
