//! Redis (RESP2 and RESP3) over TCP.
//!
//! * `wire`: the RESP reader (incremental; values are never buffered).
//! * `state`: commands awaiting their reply (answered in order, so
//!   pipelining is matched by position), pub/sub confirmations and pushes,
//!   `CLIENT REPLY`, MULTI, gaps.
//! * `event`: [`RedisEvent`], one per command and reply, or per push.
//!
//! Values are not logged by default: a command's name, its key (first
//! argument) and argument count are; further arguments and bulk replies
//! only with `log_values`. AUTH/HELLO passwords never (nor any argument of
//! AUTH, HELLO, MIGRATE, ACL, CONFIG).

pub mod event;
mod schema;
mod state;
pub mod wire;

pub use event::{RedisEvent, RedisKind};

use super::registry::{ExportField, FieldValue, MatchKind, Outcome, Protocol, Transaction};
use super::{
    AppEvent, AppParser, AppProto, AppStats, Ctx, Direction, ParseStatus, Probe, Transport,
};

/// Redis parser limits.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Commands waiting for their reply; on overflow the oldest is emitted
    /// as unanswered (counted). Pipelines are often deep.
    pub max_pending: usize,
    /// Write the arguments after the key and bulk reply values (not by
    /// default: they are the data). Never for AUTH, HELLO, MIGRATE, ACL,
    /// CONFIG.
    pub log_values: bool,
    /// Arguments after the key written per command (with `log_values`).
    pub max_arguments: usize,
    /// Key, arguments, channel and reply text are cut at this length.
    pub max_argument_bytes: usize,
    /// Error replies are cut at this length.
    pub max_error_bytes: usize,
    /// Longest line (simple string, error, header, inline command); a
    /// longer one is not RESP (framing lost, counted).
    pub max_line_bytes: usize,
    /// Deepest nesting of arrays/maps read.
    pub max_depth: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            max_pending: 256,
            log_values: false,
            max_arguments: 8,
            max_argument_bytes: 128,
            max_error_bytes: 512,
            max_line_bytes: 65536,
            max_depth: 32,
        }
    }
}

/// Content probe: the client's first message is an array of bulk strings
/// whose first is a command name (`*3\r\n$3\r\nSET\r\n`): strong enough
/// to find a server on any port. Or an inline command (`PING\r\n`, as
/// typed into telnet), only for the commands in [`INLINE_COMMANDS`].
pub fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
    if dir != Direction::ToServer {
        return Probe::No;
    }
    let Some((&first, rest)) = data.split_first() else {
        return Probe::NeedMore;
    };
    if first != wire::kind::ARRAY {
        return probe_inline(data);
    }
    let Some(eol) = rest.iter().position(|&c| c == b'\r') else {
        return if rest.len() < 8 && rest.iter().all(u8::is_ascii_digit) {
            Probe::NeedMore
        } else {
            Probe::No
        };
    };
    match rest.get(..eol).and_then(wire::parse_int) {
        Some(n) if (1..=1 << 20).contains(&n) => {}
        _ => return Probe::No,
    }
    match rest.get(eol + 1) {
        None => return Probe::NeedMore,
        Some(b'\n') => {}
        Some(_) => return Probe::No,
    }
    match wire::command_at(rest.get(eol + 2..).unwrap_or(&[])) {
        Some(true) => Probe::Yes,
        Some(false) => Probe::No,
        None => Probe::NeedMore,
    }
}

/// Commands taken as Redis when sent inline as a client's first line:
/// ones no other text protocol's client opens with (not `USER`, `QUIT`,
/// `TYPE`, `HELP`, `NOOP`...). `GET` only without an HTTP version.
pub const INLINE_COMMANDS: &[&str] = &[
    "PING",
    "AUTH",
    "HELLO",
    "SELECT",
    "SET",
    "GET",
    "SETEX",
    "MGET",
    "MSET",
    "DEL",
    "EXISTS",
    "INCR",
    "DECR",
    "INCRBY",
    "EXPIRE",
    "TTL",
    "KEYS",
    "SCAN",
    "HGET",
    "HSET",
    "HGETALL",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "LRANGE",
    "SADD",
    "SMEMBERS",
    "ZADD",
    "ZRANGE",
    "PUBLISH",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "MULTI",
    "DBSIZE",
    "FLUSHDB",
    "FLUSHALL",
    "MONITOR",
    "INFO",
];

fn probe_inline(data: &[u8]) -> Probe {
    let window = data.get(..512).unwrap_or(data);
    let printable = |b: &[u8]| b.iter().all(|&c| c == b' ' || c.is_ascii_graphic());
    let Some(eol) = window.windows(2).position(|w| w == b"\r\n") else {
        let head = window.strip_suffix(b"\r").unwrap_or(window);
        return if window.len() < 64 && printable(head) {
            Probe::NeedMore
        } else {
            Probe::No
        };
    };
    let line = window.get(..eol).unwrap_or(&[]);
    if !printable(line) {
        return Probe::No;
    }
    let word = line.split(|&c| c == b' ').next().unwrap_or(&[]);
    let known = INLINE_COMMANDS
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(word));
    let http = line.windows(6).any(|w| w == b" HTTP/");
    if known && !http {
        Probe::Yes
    } else {
        Probe::No
    }
}

/// Redis parser of one flow.
pub struct RedisParser {
    st: state::RedisState,
}

impl RedisParser {
    pub fn new(cfg: RedisConfig) -> RedisParser {
        RedisParser {
            st: state::RedisState::new(cfg),
        }
    }
}

impl AppParser for RedisParser {
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
        self.st.peek(&mut |ev| f(crate::app::Peek::Redis(ev)));
    }

    fn stats(&self) -> AppStats {
        self.st.stats
    }

    fn proto(&self) -> AppProto {
        AppProto::Redis
    }
}

/// Redis in the registry.
pub struct RedisProtocol;

impl Protocol for RedisProtocol {
    const NAME: &'static str = "redis";
    type Event = RedisEvent;
    type Config = RedisConfig;
    const CONFIG_TOML: &'static str = r#"[app.redis]
# Commands waiting for their reply, per flow (pipelines can be deep).
max_pending = 256
# Write the arguments after the key and bulk reply values. Never for AUTH,
# HELLO, MIGRATE, ACL or CONFIG (passwords).
log_values = false
# Arguments after the key written per command (with log_values).
max_arguments = 8
# Key, arguments, channel and reply text are cut at this length.
max_argument_bytes = 128
# Error replies are cut at this length.
max_error_bytes = 512
# Longest RESP line (simple string, error, inline command); longer is not
# Redis. At most 196608.
max_line_bytes = 65536
# Deepest nesting of arrays and maps read.
max_depth = 32
"#;
    const TCP_PORTS: &'static [u16] = &[6379];

    fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
        probe_tcp(dir, data)
    }

    fn new_parser(_transport: Transport, cfg: &RedisConfig) -> Box<dyn AppParser> {
        Box::new(RedisParser::new(cfg.clone()))
    }

    fn validate(cfg: &RedisConfig) -> Result<(), String> {
        if cfg.max_pending == 0 {
            return Err("max_pending: must be at least 1".into());
        }
        if cfg.max_argument_bytes == 0 || cfg.max_argument_bytes > 65536 {
            return Err("max_argument_bytes: must be between 1 and 65536".into());
        }
        if cfg.max_error_bytes == 0 || cfg.max_error_bytes > 65536 {
            return Err("max_error_bytes: must be between 1 and 65536".into());
        }
        if cfg.max_arguments > 1024 {
            return Err("max_arguments: must be at most 1024".into());
        }
        // The engine buffers at most 256 KiB per flow direction.
        if !(64..=196_608).contains(&cfg.max_line_bytes) {
            return Err("max_line_bytes: must be between 64 and 196608".into());
        }
        if !(1..=1024).contains(&cfg.max_depth) {
            return Err("max_depth: must be between 1 and 1024".into());
        }
        Ok(())
    }

    fn example_event() -> RedisEvent {
        schema::example()
    }

    fn is_error(ev: &RedisEvent) -> bool {
        ev.error.is_some()
    }

    fn transaction(ev: &RedisEvent) -> Transaction<'_> {
        let operation = match (&ev.command, &ev.push_kind) {
            (Some(c), _) => c.as_str(),
            (None, Some(p)) => p.as_str(),
            (None, None) => ev.kind.as_str(),
        };
        Transaction {
            operation,
            outcome: Outcome::of(!ev.unanswered, ev.error.is_some()),
            // The error's first word is its code by convention (ERR, WRONGTYPE, NOAUTH).
            error_code: ev
                .error
                .as_deref()
                .map(|e| FieldValue::Str(e.split(' ').next().unwrap_or(e))),
            latency_ns: ev.latency_ns,
        }
    }

    fn event_start_ns(ev: &RedisEvent) -> Option<u64> {
        ev.request_ts_ns.or(ev.response_ts_ns)
    }

    fn tx_id(ev: &RedisEvent) -> Option<u64> {
        Some(ev.tx_id)
    }

    const EXPORT_FIELDS: &'static [ExportField] = &[
        ExportField {
            name: "command",
            kind: MatchKind::Word,
            early: true,
            doc: "command name (SET, GET, PUBLISH)",
        },
        ExportField {
            name: "key",
            kind: MatchKind::Name,
            early: true,
            doc: "first argument of the command: its key (wildcards)",
        },
        ExportField {
            name: "error",
            kind: MatchKind::Word,
            early: false,
            doc: "code of an error reply: its first word (ERR, WRONGTYPE, NOAUTH)",
        },
        ExportField {
            name: "channel",
            kind: MatchKind::Name,
            early: false,
            doc: "pub/sub channel of a pushed message (wildcards)",
        },
    ];

    fn export_values(ev: &RedisEvent, field: usize, f: &mut dyn FnMut(FieldValue<'_>)) {
        let v = match field {
            0 => ev.command.as_deref(),
            1 => ev.key.as_deref(),
            2 => ev.error_code(),
            3 => ev.channel.as_deref(),
            _ => None,
        };
        if let Some(s) = v {
            f(FieldValue::Str(s));
        }
    }
}

#[cfg(test)]
mod tests;
