//! HTTP/1.0 and HTTP/1.1.
//!
//! * `wire`: lines, start lines, headers, chunk sizes (stateless).
//! * `state`: per-direction framing and the in-order transaction queue.
//! * `event`: [`HttpEvent`], one per request/response pair.
//!
//! Bytes held by the engine between calls are at most one line
//! (`max_line_len`): headers are consumed line by line and bodies as they come.

pub mod event;
mod schema;
mod state;
pub mod wire;

pub use event::{HttpEvent, HttpHeader};

use std::sync::Arc;

use super::registry::{ExportField, FieldValue, MatchKind, Outcome, Protocol, Transaction};
use super::{
    AppEvent, AppParser, AppProto, AppStats, Ctx, Direction, ParseStatus, Probe, Transport,
};

/// HTTP parser limits and logging options.
/// `[app.http]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Keep the request header list in the event.
    pub log_request_headers: bool,
    /// Keep the response header list in the event.
    pub log_response_headers: bool,
    /// Capture the first N body bytes per side (0 = off).
    pub body_capture_bytes: usize,
    /// Header names (any case) whose values are logged as "[redacted]".
    /// (Shared: every HTTP flow's parser takes a copy of this config.)
    pub redact: Arc<[String]>,
    /// Transactions waiting for their response; more requests are parsed but
    /// dropped (counted), and their responses skipped.
    pub max_pending: usize,
    /// Longest start/header line. A longer start line is an error; a longer
    /// header line is skipped (counted as truncation).
    pub max_line_len: usize,
    /// Headers kept per message in the header lists.
    pub max_headers: usize,
    /// Bytes of names and values kept per message in the header lists.
    pub max_header_bytes: usize,
    /// Longest value kept for one field (host, user agent, header value...).
    pub max_field_len: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            log_request_headers: false,
            log_response_headers: false,
            body_capture_bytes: 0,
            redact: [
                "authorization",
                "cookie",
                "set-cookie",
                "proxy-authorization",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            max_pending: 32,
            max_line_len: 16 * 1024,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            max_field_len: 2048,
        }
    }
}

/// Content probe: a request line (known method) to the server, a status line
/// (`HTTP/1.`) to the client. Leading line ends are skipped, as the parser does.
pub fn probe(dir: Direction, data: &[u8]) -> Probe {
    let skip = data
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if skip > 4 {
        return Probe::No;
    }
    let data = data.get(skip..).unwrap_or(&[]);
    match dir {
        Direction::ToServer => wire::probe_request_start(data),
        Direction::ToClient => wire::probe_response_start(data),
    }
}

/// HTTP/1.x parser of one flow.
pub struct HttpParser {
    st: state::HttpState,
}

impl HttpParser {
    pub fn new(cfg: HttpConfig) -> HttpParser {
        HttpParser {
            st: state::HttpState::new(cfg),
        }
    }
}

impl AppParser for HttpParser {
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

    fn is_done(&self) -> bool {
        self.st.is_tunnel()
    }

    fn peek(&self, f: &mut dyn FnMut(crate::app::Peek<'_>)) {
        self.st.peek(&mut |ev| f(crate::app::Peek::Http(ev)));
    }

    fn stats(&self) -> AppStats {
        self.st.stats
    }

    fn proto(&self) -> AppProto {
        AppProto::Http
    }
}

/// HTTP/1.x in the registry.
pub struct HttpProtocol;

/// The request method as a bounded label: the methods of RFC 9110, PATCH
/// and WebDAV's, "OTHER" for any other token (a client may send anything).
pub fn method_label(method: &str) -> &'static str {
    const METHODS: &[&str] = &[
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "DELETE",
        "CONNECT",
        "OPTIONS",
        "TRACE",
        "PATCH",
        "PROPFIND",
        "PROPPATCH",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
        "REPORT",
        "SEARCH",
    ];
    METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("OTHER")
}

impl Protocol for HttpProtocol {
    const NAME: &'static str = "http";
    type Event = HttpEvent;
    type Config = HttpConfig;
    const CONFIG_TOML: &'static str = r#"[app.http]
# Write the request / response headers (sensitive ones redacted) in events.
log_request_headers = false
log_response_headers = false
# Bytes of each body kept in the event (0 = none).
body_capture_bytes = 0
# Header names whose values are replaced by "[redacted]".
redact = ["authorization", "cookie", "set-cookie", "proxy-authorization"]
# Requests waiting for their response, per flow.
max_pending = 32
# Longest request/status line, header block and header count parsed; longer
# ones are cut (counted as truncated).
max_line_len = 16384
max_headers = 64
max_header_bytes = 16384
# Longest field value kept in an event.
max_field_len = 2048
"#;
    const TCP_PORTS: &'static [u16] = &[80, 81, 591, 3128, 8000, 8008, 8080, 8081, 8088, 8888];

    fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
        probe(dir, data)
    }

    fn new_parser(_transport: Transport, cfg: &HttpConfig) -> Box<dyn AppParser> {
        // A cheap copy: the redaction list is shared (`Arc`).
        Box::new(HttpParser::new(cfg.clone()))
    }

    fn validate(cfg: &HttpConfig) -> Result<(), String> {
        if cfg.max_pending == 0 {
            return Err("max_pending: must be at least 1".into());
        }
        Ok(())
    }

    fn example_event() -> HttpEvent {
        schema::example()
    }

    fn is_error(ev: &HttpEvent) -> bool {
        ev.status.is_some_and(|s| s >= 500)
    }

    fn transaction(ev: &HttpEvent) -> Transaction<'_> {
        let error = Self::is_error(ev);
        Transaction {
            operation: ev.method.as_deref().map_or("none", method_label),
            outcome: Outcome::of(ev.has_response, error),
            error_code: ev
                .status
                .filter(|_| error)
                .map(|s| FieldValue::Num(u32::from(s))),
            latency_ns: ev.latency_ns,
        }
    }

    fn event_start_ns(ev: &HttpEvent) -> Option<u64> {
        ev.request_ts_ns.or(ev.response_ts_ns)
    }

    fn tx_id(ev: &HttpEvent) -> Option<u64> {
        Some(ev.tx_id)
    }

    const EXPORT_FIELDS: &'static [ExportField] = &[
        ExportField {
            name: "host",
            kind: MatchKind::Name,
            early: true,
            doc: "Host header (without port)",
        },
        ExportField {
            name: "uri",
            kind: MatchKind::Name,
            early: true,
            doc: "request URI",
        },
        ExportField {
            name: "method",
            kind: MatchKind::Word,
            early: true,
            doc: "request method",
        },
        ExportField {
            name: "status",
            kind: MatchKind::Number(999),
            early: false,
            doc: "response status code or range (400-599)",
        },
        ExportField {
            name: "content_type",
            kind: MatchKind::Name,
            early: false,
            doc: "response media type, without parameters",
        },
    ];

    fn export_values(ev: &HttpEvent, field: usize, f: &mut dyn FnMut(FieldValue<'_>)) {
        let v = match field {
            0 => ev.host.as_deref(),
            1 => ev.uri.as_deref(),
            2 => ev.method.as_deref(),
            3 => {
                if let Some(s) = ev.status {
                    f(FieldValue::Num(u32::from(s)));
                }
                return;
            }
            // The media type, without parameters (`text/html; charset=utf-8`).
            4 => ev
                .content_type
                .as_deref()
                .map(|c| c.split(';').next().unwrap_or(c).trim()),
            _ => None,
        };
        if let Some(v) = v {
            f(FieldValue::Str(v));
        }
    }
}

#[cfg(test)]
mod tests;
