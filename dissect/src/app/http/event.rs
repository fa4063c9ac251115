//! The HTTP transaction record the parser emits: one per request/response pair.
//!
//! Field names follow Suricata's eve `http` object where one exists (noted in
//! the docs as `eve:`), ECS otherwise (`ecs:`). Strings are copies cut at
//! `HttpConfig::max_field_len` bytes; header lists at `max_headers` entries
//! and `max_header_bytes` bytes.
//!
//! Fields that nearly always hold one of a few values (method, protocol,
//! reason phrase, media type) are [`Token`]s: a common value borrows a
//! static string instead of allocating a copy per transaction.

use std::borrow::Cow;

/// A field value that is usually one of a known set of strings.
pub type Token = Cow<'static, str>;

/// One HTTP header as seen on the wire (name case kept). Values of redacted
/// headers are `"[redacted]"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// One request/response pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpEvent {
    /// Position of this transaction in its flow, from 0 (eve: `tx_id`).
    pub tx_id: u64,
    /// A request line was seen (false: response without request).
    pub has_request: bool,
    /// A response status line was seen (false: request without response).
    pub has_response: bool,

    // ---- request ----
    /// eve: `http_method`; ecs: `http.request.method`.
    pub method: Option<Token>,
    /// Request target as sent (eve: `url`; ecs: `url.original`).
    pub uri: Option<String>,
    /// Host header without the port (eve: `hostname`; ecs: `url.domain`).
    pub host: Option<String>,
    /// Port from the Host header, when present (eve: `http_port`).
    pub host_port: Option<u16>,
    /// Request protocol, e.g. "HTTP/1.1" (eve: `protocol`); `None` for HTTP/0.9.
    pub version: Option<Token>,
    /// eve: `http_user_agent`; ecs: `user_agent.original`.
    pub user_agent: Option<String>,
    /// eve: `http_refer`; ecs: `http.request.referrer`.
    pub referer: Option<String>,
    /// X-Forwarded-For as sent (eve: `xff` when enabled).
    pub x_forwarded_for: Option<String>,
    /// Request media type, parameters dropped (ecs: `http.request.mime_type`).
    pub request_content_type: Option<Token>,
    /// Request Content-Length header (ecs: `http.request.body.bytes` is `request_body_len`).
    pub request_content_length: Option<u64>,
    /// Request used chunked transfer encoding.
    pub request_chunked: bool,
    /// Value of the `Upgrade` request header (e.g. "websocket", "h2c").
    pub upgrade: Option<String>,
    /// Request headers in order (only when `log_request_headers`).
    pub request_headers: Vec<HttpHeader>,
    /// Body bytes seen (after de-chunking), gaps included in the count.
    pub request_body_len: u64,
    /// First `body_capture_bytes` of the (de-chunked) body; empty when off.
    pub request_body: Vec<u8>,

    // ---- response ----
    /// Response protocol, e.g. "HTTP/1.1".
    pub response_version: Option<Token>,
    /// Final status code (eve: `status`; ecs: `http.response.status_code`).
    pub status: Option<u16>,
    /// Reason phrase of the final status line.
    pub reason: Option<Token>,
    /// 1xx interim responses seen before the final one (e.g. 100 Continue).
    pub interim_statuses: Vec<u16>,
    /// Response media type, parameters dropped ("text/html" for
    /// "text/html; charset=utf-8"; eve: `http_content_type`; ecs: `http.response.mime_type`).
    pub content_type: Option<Token>,
    /// Response Content-Length header.
    pub response_content_length: Option<u64>,
    /// Location header (eve: `redirect`).
    pub location: Option<String>,
    /// Response used chunked transfer encoding.
    pub response_chunked: bool,
    /// Response headers in order (only when `log_response_headers`).
    pub response_headers: Vec<HttpHeader>,
    /// Response body bytes seen, de-chunked (eve: `length`; ecs: `http.response.body.bytes`).
    pub response_body_len: u64,
    /// First `body_capture_bytes` of the (de-chunked) response body.
    pub response_body: Vec<u8>,

    // ---- tunnel ----
    /// The request was CONNECT and the response 2xx, or the response was 101:
    /// the bytes after it were not parsed.
    pub tunnel: bool,

    // ---- timing (ns since the epoch, from the packet that delivered the bytes) ----
    /// Request line seen.
    pub request_ts_ns: Option<u64>,
    /// Request fully seen (headers and body).
    pub request_end_ts_ns: Option<u64>,
    /// Final status line seen.
    pub response_ts_ns: Option<u64>,
    /// Response fully seen.
    pub response_end_ts_ns: Option<u64>,
    /// Server latency: final status line seen minus request fully seen
    /// (saturating at 0 when the server answered before the request ended).
    pub latency_ns: Option<u64>,

    // ---- quality ----
    /// Bytes of this transaction were lost (gap) on either side.
    pub gap: bool,
    /// A field, header list or body capture was cut at a limit, or a header
    /// line was too long and skipped.
    pub truncated: bool,
    /// The transaction was cut short: flow ended, or it was force-ended by a
    /// gap before its request or response was complete.
    pub incomplete: bool,
}
