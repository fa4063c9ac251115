//! AMQP 0-9-1 (RabbitMQ) over TCP.
//!
//! * `wire`: the protocol header, frames, method arguments, content
//!   headers, field tables.
//! * `state`: synchronous methods awaiting their `-ok`, content of
//!   publish/deliver/get-ok/return, heartbeats, gaps.
//! * `event`: [`AmqpEvent`], one per method exchange or asynchronous method.
//!
//! The password of connection.start-ok is never kept (only the PLAIN or
//! AMQPLAIN user); message bodies are counted, never kept.

pub mod event;
mod schema;
mod state;
pub mod wire;

pub use event::AmqpEvent;

use super::registry::{ExportField, FieldValue, MatchKind, Outcome, Protocol, Transaction};
use super::{
    AppEvent, AppParser, AppProto, AppStats, Ctx, Direction, ParseStatus, Probe, Transport,
};

/// AMQP parser limits.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpConfig {
    /// Synchronous methods awaiting their answer, and contents under way,
    /// per flow; on overflow the oldest is emitted unanswered (counted).
    pub max_pending: usize,
    /// Method and content-header frames are read up to this length (body
    /// frames are never buffered).
    pub max_frame_bytes: usize,
    /// A frame announcing more than this is not AMQP (framing lost).
    pub max_frame_size: u32,
    /// Names (exchange, queue, routing key, consumer tag), texts and
    /// server properties are cut at this length.
    pub max_name_bytes: usize,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            max_pending: 64,
            max_frame_bytes: 65536,
            // Brokers negotiate frame_max (RabbitMQ: 128 KiB by default);
            // 16 MiB leaves room and still tells garbage lengths apart.
            max_frame_size: 16 << 20,
            max_name_bytes: 256,
        }
    }
}

/// Content probe: the client's protocol header (`AMQP` 0 0 9 1, or the
/// 0-9 / 0-8 forms), or, for a flow picked up mid-way, a whole frame in
/// either direction: known type, 0xCE at its end, and for a method frame a
/// method of AMQP 0-9-1.
pub fn probe_tcp(_dir: Direction, data: &[u8]) -> Probe {
    if data.first() == Some(&b'A') {
        let n = data.len().min(4);
        if data.get(..n) != wire::PROTOCOL_HEADER.get(..n) {
            return Probe::No;
        }
        return if data.len() < 8 {
            Probe::NeedMore
        } else {
            Probe::Yes
        };
    }
    let Some((t, _channel, size)) = wire::frame_head(data) else {
        return if data.first().is_some_and(|&t| wire::known_frame_type(t)) || data.is_empty() {
            Probe::NeedMore
        } else {
            Probe::No
        };
    };
    if !matches!(t, wire::FRAME_METHOD | wire::FRAME_HEADER) || !(4..=1 << 20).contains(&size) {
        return Probe::No;
    }
    let end = wire::FRAME_HEAD + size as usize;
    match data.get(end) {
        // The engine tries at most 2 KiB.
        None if end < 2048 => return Probe::NeedMore,
        None => {}
        Some(&wire::FRAME_END) => {}
        Some(_) => return Probe::No,
    }
    let class = crate::app::util::be16(data, 7).unwrap_or(0);
    let method = crate::app::util::be16(data, 9).unwrap_or(0);
    let known = if t == wire::FRAME_METHOD {
        wire::method_name(class, method).is_some()
    } else {
        class == 60
    };
    if known && data.get(end).is_some() {
        Probe::Yes
    } else {
        Probe::No
    }
}

/// AMQP parser of one flow.
pub struct AmqpParser {
    st: state::AmqpState,
}

impl AmqpParser {
    pub fn new(cfg: AmqpConfig) -> AmqpParser {
        AmqpParser {
            st: state::AmqpState::new(cfg),
        }
    }
}

impl AppParser for AmqpParser {
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
        self.st.peek(&mut |ev| f(crate::app::Peek::Amqp(ev)));
    }

    fn stats(&self) -> AppStats {
        self.st.stats
    }

    fn proto(&self) -> AppProto {
        AppProto::Amqp
    }
}

/// AMQP 0-9-1 in the registry.
pub struct AmqpProtocol;

impl Protocol for AmqpProtocol {
    const NAME: &'static str = "amqp";
    type Event = AmqpEvent;
    type Config = AmqpConfig;
    const CONFIG_TOML: &'static str = r#"[app.amqp]
# Synchronous methods awaiting their answer, and contents under way, per flow.
max_pending = 64
# Method and content-header frames are read up to this length (message
# bodies are never buffered). At most 196608.
max_frame_bytes = 65536
# A frame announcing more than this is not AMQP (framing lost).
max_frame_size = 16777216
# Names (exchange, queue, routing key, consumer tag) and texts are cut here.
max_name_bytes = 256
"#;
    const TCP_PORTS: &'static [u16] = &[5672];

    fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
        probe_tcp(dir, data)
    }

    fn new_parser(_transport: Transport, cfg: &AmqpConfig) -> Box<dyn AppParser> {
        Box::new(AmqpParser::new(cfg.clone()))
    }

    fn validate(cfg: &AmqpConfig) -> Result<(), String> {
        if cfg.max_pending == 0 {
            return Err("max_pending: must be at least 1".into());
        }
        // The engine buffers at most 256 KiB per flow direction.
        if !(1024..=196_608).contains(&cfg.max_frame_bytes) {
            return Err("max_frame_bytes: must be between 1024 and 196608".into());
        }
        if cfg.max_frame_size < 4096 {
            return Err("max_frame_size: must be at least 4096".into());
        }
        if cfg.max_name_bytes == 0 || cfg.max_name_bytes > 65536 {
            return Err("max_name_bytes: must be between 1 and 65536".into());
        }
        Ok(())
    }

    fn example_event() -> AmqpEvent {
        schema::example()
    }

    fn is_error(ev: &AmqpEvent) -> bool {
        ev.reply_code.is_some_and(|c| c >= 300)
    }

    fn transaction(ev: &AmqpEvent) -> Transaction<'_> {
        let error = Self::is_error(ev);
        Transaction {
            operation: ev.method.or(ev.response).unwrap_or("none"),
            outcome: Outcome::of(!ev.unanswered, error),
            error_code: ev
                .reply_code
                .filter(|_| error)
                .map(|c| FieldValue::Num(u32::from(c))),
            latency_ns: ev.latency_ns,
        }
    }

    fn event_start_ns(ev: &AmqpEvent) -> Option<u64> {
        ev.request_ts_ns.or(ev.response_ts_ns)
    }

    fn tx_id(ev: &AmqpEvent) -> Option<u64> {
        Some(ev.tx_id)
    }

    const EXPORT_FIELDS: &'static [ExportField] = &[
        ExportField {
            name: "method",
            kind: MatchKind::Word,
            early: true,
            doc: "method (basic.publish, queue.declare)",
        },
        ExportField {
            name: "exchange",
            kind: MatchKind::Name,
            early: true,
            doc: "exchange of a publish, deliver, declare or bind (wildcards)",
        },
        ExportField {
            name: "routing_key",
            kind: MatchKind::Name,
            early: true,
            doc: "routing key (wildcards)",
        },
        ExportField {
            name: "queue",
            kind: MatchKind::Name,
            early: true,
            doc: "queue of a declare, bind, consume or get (wildcards)",
        },
        ExportField {
            name: "reply_code",
            kind: MatchKind::Number(999),
            early: false,
            doc: "reply code of a close or return (404, 320-599)",
        },
    ];

    fn export_values(ev: &AmqpEvent, field: usize, f: &mut dyn FnMut(FieldValue<'_>)) {
        let v = match field {
            0 => ev.method,
            1 => ev.exchange.as_deref(),
            2 => ev.routing_key.as_deref(),
            3 => ev.queue.as_deref(),
            4 => {
                if let Some(c) = ev.reply_code {
                    f(FieldValue::Num(u32::from(c)));
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
