//! HTTP/1.0 and HTTP/1.1.
//!
//! * `wire`: lines, start lines, headers, chunk sizes (stateless).
//! * `state`: per-direction framing and the in-order transaction queue.
//! * `event`: [`HttpEvent`], one per request/response pair.
//!
//! Bytes held by the engine between calls are at most one line
//! (`max_line_len`): headers are consumed line by line and bodies as they come.

pub mod event;
mod state;
pub mod wire;

pub use event::{HttpEvent, HttpHeader};

use super::{AppEvent, AppParser, AppProto, AppStats, Ctx, Direction, ParseStatus, Probe};

/// HTTP parser limits and logging options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Keep the request header list in the event.
    pub log_request_headers: bool,
    /// Keep the response header list in the event.
    pub log_response_headers: bool,
    /// Capture the first N body bytes per side (0 = off).
    pub body_capture_bytes: usize,
    /// Header names (any case) whose values are logged as "[redacted]".
    pub redact: Vec<String>,
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

#[cfg(test)]
mod tests;
