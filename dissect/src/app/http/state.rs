//! HTTP/1.x transaction state machine: one [`Side`] per direction, a bounded
//! queue of transactions matched in order (pipelining), body framing
//! (Content-Length, chunked, until-close), interim responses, tunnels and
//! post-gap resynchronisation.

use super::event::{HttpEvent, HttpHeader, Token};
use super::wire;
use super::HttpConfig;
use crate::app::util::{bounded_string, bounded_string_flag, push_bounded};
use crate::app::{AppEvent, AppStats, Ctx, Direction, ParseStatus, Probe};
use std::borrow::Cow;
use std::collections::VecDeque;

/// Where a direction is in its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Expecting a start line (empty lines before it are skipped).
    Start,
    /// Header lines until the empty line.
    Headers,
    /// Body with a known number of bytes left.
    Body { remaining: u64 },
    /// Chunk-size line.
    ChunkSize,
    /// Chunk data with bytes left.
    ChunkData { remaining: u64 },
    /// CR LF after chunk data.
    ChunkDataEnd,
    /// Trailer lines after the last chunk, until the empty line.
    Trailers,
    /// Response body delimited by the end of the connection.
    UntilClose,
    /// Request side: a CONNECT or Upgrade request waits for its response
    /// before anything after it is parsed.
    WaitResponse,
    /// Tunnelled bytes (after CONNECT 2xx or 101): not parsed.
    Tunnel,
    /// After a gap: looking for the next start line.
    Resync,
}

/// Protocol versions nearly every message has.
const VERSIONS: &[&str] = &["HTTP/1.1", "HTTP/1.0"];

/// Methods most requests use.
const COMMON_METHODS: &[&str] = &["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"];

/// Reason phrases of the commonest status codes.
const COMMON_REASONS: &[&str] = &[
    "OK",
    "Not Modified",
    "Found",
    "Moved Permanently",
    "Not Found",
    "No Content",
    "Partial Content",
];

/// Media types of most bodies (Content-Type without parameters).
const COMMON_MEDIA_TYPES: &[&str] = &[
    "text/html",
    "text/plain",
    "text/css",
    "text/javascript",
    "text/xml",
    "application/javascript",
    "application/x-javascript",
    "application/json",
    "application/xml",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "application/ocsp-request",
    "application/ocsp-response",
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/x-icon",
    "image/svg+xml",
];

/// `b` as a [`Token`]: one of `common` (same bytes) borrows it, without a
/// copy or a UTF-8 check; anything else is copied as `bounded_string` does.
fn token(b: &[u8], max: usize, common: &[&'static str]) -> Token {
    if b.len() <= max {
        if let Some(c) = common.iter().find(|c| c.as_bytes() == b) {
            return Cow::Borrowed(c);
        }
    }
    Cow::Owned(bounded_string(b, max))
}

/// Junk bytes tolerated between messages before the side gives up.
const MAX_JUNK: usize = 64 * 1024;

/// Media type of a Content-Type value (parameters dropped), as Suricata and
/// ECS `mime_type` report it.
fn media_type(v: &[u8]) -> &[u8] {
    let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
    wire::trim_value(v.get(..end).unwrap_or(v))
}

/// Which transaction a side is filling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cur {
    None,
    /// A queued transaction, by tx_id.
    Tx(u64),
    /// A transaction parsed but not kept (queue overflow, skipped response).
    Scratch,
}

/// Known headers whose values land in event fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Host,
    UserAgent,
    Referer,
    ContentLength,
    TransferEncoding,
    ContentType,
    XForwardedFor,
    Upgrade,
    Location,
    Other,
}

/// Which known header `name` is (any case). The length and the first
/// letter pick the one candidate to compare: every header line asks, and
/// most are none of these.
fn known(name: &[u8]) -> Known {
    let first = name.first().map_or(0, u8::to_ascii_lowercase);
    let (want, k): (&[u8], Known) = match (name.len(), first) {
        (4, b'h') => (b"host", Known::Host),
        (10, b'u') => (b"user-agent", Known::UserAgent),
        (7, b'r') => (b"referer", Known::Referer),
        (14, b'c') => (b"content-length", Known::ContentLength),
        (17, b't') => (b"transfer-encoding", Known::TransferEncoding),
        (12, b'c') => (b"content-type", Known::ContentType),
        (15, b'x') => (b"x-forwarded-for", Known::XForwardedFor),
        (7, b'u') => (b"upgrade", Known::Upgrade),
        (8, b'l') => (b"location", Known::Location),
        _ => return Known::Other,
    };
    // `name` is a token (checked by `parse_header`) and `want` lower-case
    // letters and '-': for those, setting bit 0x20 is ASCII lower-casing.
    let same = name.len() == want.len() && name.iter().zip(want).all(|(&a, &b)| a | 0x20 == b);
    if same {
        k
    } else {
        Known::Other
    }
}

/// `bounded_string` in ASCII lower case (host names), one allocation.
fn bounded_lowercase(b: &[u8], max: usize) -> String {
    let mut s = bounded_string(b, max);
    s.make_ascii_lowercase();
    s
}

/// Per-direction parse state.
#[derive(Debug)]
struct Side {
    phase: Phase,
    cur: Cur,
    /// Skipping the rest of an overlong header/trailer line.
    skip_line: bool,
    /// Facts of the message being parsed.
    content_length: Option<u64>,
    chunked: bool,
    /// Current response is a 1xx interim one (its headers are not kept).
    interim: bool,
    /// Last header was stored in the header list (for continuation lines).
    last_stored: bool,
    last_known: Known,
    header_count: usize,
    header_bytes: usize,
    /// A valid start line was seen on this side.
    seen_valid: bool,
    /// Bytes of junk lines skipped since the last valid start line.
    junk: usize,
}

impl Side {
    fn new() -> Side {
        Side {
            phase: Phase::Start,
            cur: Cur::None,
            skip_line: false,
            content_length: None,
            chunked: false,
            interim: false,
            last_stored: false,
            last_known: Known::Other,
            header_count: 0,
            header_bytes: 0,
            seen_valid: false,
            junk: 0,
        }
    }

    fn reset_message(&mut self) {
        self.skip_line = false;
        self.content_length = None;
        self.chunked = false;
        self.interim = false;
        self.last_stored = false;
        self.last_known = Known::Other;
        self.header_count = 0;
        self.header_bytes = 0;
    }
}

/// A queued transaction.
#[derive(Debug, Default)]
struct Tx {
    /// Boxed from the start: the box is what is emitted, and the queue
    /// holds (and grows by) small entries instead of whole events.
    ev: Box<HttpEvent>,
    /// The request line and headers are parsed (host, URI, method known).
    req_head_done: bool,
    req_done: bool,
    resp_done: bool,
    head: bool,
    connect: bool,
    /// Requests dropped after this one because the queue was full; their
    /// responses are parsed and discarded after this one's.
    dropped_after: u64,
}

/// What one step of the loop did.
enum Step {
    /// Advance by this many bytes and go on.
    Advance(usize),
    /// Need this many bytes from the current position.
    Need(usize),
    /// Keep the rest for later (waiting on the other direction).
    Hold,
    /// Stream unparseable.
    Fail,
}

pub(crate) struct HttpState {
    cfg: HttpConfig,
    txs: VecDeque<Tx>,
    /// Made on first use: most flows never need it.
    scratch: Option<Tx>,
    next_tx_id: u64,
    req: Side,
    resp: Side,
    /// Responses to parse and drop (their requests were dropped).
    resp_skip: u64,
    skipping_resp: bool,
    tunnel: bool,
    /// The response side stopped (Error).
    resp_dead: bool,
    /// A message ended or the response side stopped since the last
    /// `try_emit`: the front transaction may be ready. Saves looking at the
    /// queue after every step (most steps end nothing).
    maybe_ready: bool,
    pub(crate) stats: AppStats,
}

impl HttpState {
    /// Queued transactions whose request head is parsed.
    pub(crate) fn peek(&self, f: &mut dyn FnMut(&HttpEvent)) {
        for tx in self.txs.iter().filter(|t| t.req_head_done) {
            f(&tx.ev);
        }
    }

    pub(crate) fn new(mut cfg: HttpConfig) -> HttpState {
        cfg.max_pending = cfg.max_pending.max(1);
        cfg.max_line_len = cfg.max_line_len.max(64);
        HttpState {
            cfg,
            txs: VecDeque::new(),
            scratch: None,
            next_tx_id: 0,
            req: Side::new(),
            resp: Side::new(),
            resp_skip: 0,
            skipping_resp: false,
            tunnel: false,
            resp_dead: false,
            maybe_ready: false,
            stats: AppStats::default(),
        }
    }

    pub(crate) fn is_tunnel(&self) -> bool {
        self.tunnel
    }

    fn side(&mut self, is_req: bool) -> &mut Side {
        if is_req {
            &mut self.req
        } else {
            &mut self.resp
        }
    }

    fn tx_mut(&mut self, cur: Cur) -> Option<&mut Tx> {
        match cur {
            Cur::None => None,
            Cur::Scratch => self.scratch.as_mut(),
            Cur::Tx(id) => {
                // Ids in the queue increase from the front, nearly always
                // by one: try the slot the id would have, then search.
                let front = self.txs.front().map_or(0, |t| t.ev.tx_id);
                let at = usize::try_from(id.wrapping_sub(front)).unwrap_or(usize::MAX);
                if self.txs.get(at).is_some_and(|t| t.ev.tx_id == id) {
                    self.txs.get_mut(at)
                } else {
                    self.txs.iter_mut().find(|t| t.ev.tx_id == id)
                }
            }
        }
    }

    fn cur_tx(&mut self, is_req: bool) -> Option<&mut Tx> {
        let cur = self.side(is_req).cur;
        self.tx_mut(cur)
    }

    pub(crate) fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) -> ParseStatus {
        let is_req = dir == Direction::ToServer;
        // Most segments are the middle of a body with a known length: they
        // end nothing, so count them without going through the step loop.
        if let Phase::Body { remaining } = self.side(is_req).phase {
            let n = data.len() as u64;
            if n > 0 && n < remaining {
                self.body_bytes(is_req, data);
                self.side(is_req).phase = Phase::Body {
                    remaining: remaining - n,
                };
                self.try_emit(emit);
                return ParseStatus::Consumed(data.len());
            }
        }
        let was_tunnel = self.tunnel;
        let mut pos = 0usize;
        let status = loop {
            let rest = data.get(pos..).unwrap_or(&[]);
            if rest.is_empty() {
                break ParseStatus::Consumed(pos);
            }
            let step = self.step(is_req, rest, ctx);
            self.try_emit(emit);
            match step {
                Step::Advance(n) => {
                    // Every step makes progress or returns; guard anyway.
                    if n == 0 {
                        break ParseStatus::Consumed(pos);
                    }
                    pos = pos.saturating_add(n).min(data.len());
                    if self.tunnel && !was_tunnel {
                        // The bytes after the 2xx/101 belong to the tunnel:
                        // leave them unconsumed for the engine to re-detect.
                        break ParseStatus::Consumed(pos);
                    }
                }
                Step::Need(n) => {
                    break ParseStatus::Incomplete {
                        consumed: pos,
                        needed: n,
                    }
                }
                Step::Hold => break ParseStatus::Consumed(pos),
                Step::Fail => {
                    self.stats.malformed += 1;
                    self.fail_side(is_req, ctx);
                    self.try_emit(emit);
                    break ParseStatus::Error { consumed: pos };
                }
            }
        };
        self.try_emit(emit);
        status
    }

    /// One step on `rest` (non-empty).
    fn step(&mut self, is_req: bool, rest: &[u8], ctx: &Ctx) -> Step {
        let max_line = self.cfg.max_line_len;
        let phase = self.side(is_req).phase;
        match phase {
            Phase::Tunnel => Step::Advance(rest.len()),
            Phase::WaitResponse => Step::Hold,
            Phase::Start => {
                // Skip blank line ends between messages.
                let blanks = rest
                    .iter()
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
                if blanks > 0 {
                    return Step::Advance(blanks);
                }
                match wire::next_line(rest) {
                    None if rest.len() > max_line => Step::Fail,
                    None => Step::Need(rest.len() + 1),
                    Some((line, n)) => {
                        let ok = if is_req {
                            self.start_request(line, ctx)
                        } else {
                            self.start_response(line, ctx)
                        };
                        let side = self.side(is_req);
                        if ok {
                            side.seen_valid = true;
                            side.junk = 0;
                            Step::Advance(n)
                        } else if side.seen_valid && side.junk + n <= MAX_JUNK {
                            // Junk between messages (e.g. more body than
                            // Content-Length said): skip the line, counted.
                            side.junk += n;
                            self.stats.malformed += 1;
                            Step::Advance(n)
                        } else {
                            Step::Fail
                        }
                    }
                }
            }
            Phase::Headers | Phase::Trailers => self.head_lines(is_req, phase, rest, ctx),
            Phase::Body { remaining } => {
                let n = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                self.body_bytes(is_req, rest.get(..n).unwrap_or(&[]));
                let left = remaining - n as u64;
                if left == 0 {
                    self.message_done(is_req, ctx, false);
                } else {
                    self.side(is_req).phase = Phase::Body { remaining: left };
                }
                Step::Advance(n)
            }
            Phase::UntilClose => {
                self.body_bytes(is_req, rest);
                Step::Advance(rest.len())
            }
            Phase::ChunkSize => match wire::next_line(rest) {
                None if rest.len() > max_line => {
                    self.broken_message(is_req, ctx);
                    Step::Advance(rest.len())
                }
                None => Step::Need(rest.len() + 1),
                Some((line, n)) => {
                    if line.is_empty() {
                        // Tolerate a stray empty line before a chunk size.
                        return Step::Advance(n);
                    }
                    match wire::parse_chunk_size(line) {
                        Some(0) => self.side(is_req).phase = Phase::Trailers,
                        Some(sz) => self.side(is_req).phase = Phase::ChunkData { remaining: sz },
                        None => {
                            self.stats.malformed += 1;
                            self.broken_message(is_req, ctx);
                        }
                    }
                    Step::Advance(n)
                }
            },
            Phase::ChunkData { remaining } => {
                let n = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                self.body_bytes(is_req, rest.get(..n).unwrap_or(&[]));
                let left = remaining - n as u64;
                self.side(is_req).phase = if left == 0 {
                    Phase::ChunkDataEnd
                } else {
                    Phase::ChunkData { remaining: left }
                };
                Step::Advance(n)
            }
            Phase::ChunkDataEnd => {
                self.side(is_req).phase = Phase::ChunkSize;
                match rest {
                    [b'\r', b'\n', ..] => Step::Advance(2),
                    [b'\n', ..] => Step::Advance(1),
                    [b'\r'] => {
                        // Wait for the LF; undo the phase change.
                        self.side(is_req).phase = Phase::ChunkDataEnd;
                        Step::Need(2)
                    }
                    // Missing CRLF: be lenient and read a chunk size here.
                    _ => self.step(is_req, rest, ctx),
                }
            }
            Phase::Resync => self.resync(is_req, rest, ctx),
        }
    }

    /// Header or trailer lines: all the complete ones in `rest` in one step
    /// (a head is a handful of lines, usually in one segment), up to and
    /// including the empty line that ends them.
    fn head_lines(&mut self, is_req: bool, phase: Phase, rest: &[u8], ctx: &Ctx) -> Step {
        let max_line = self.cfg.max_line_len;
        let mut off = 0usize;
        loop {
            let at = rest.get(off..).unwrap_or(&[]);
            if at.is_empty() {
                return Step::Advance(off);
            }
            if self.side(is_req).skip_line {
                match memchr::memchr(b'\n', at) {
                    Some(lf) => {
                        self.side(is_req).skip_line = false;
                        off += lf + 1;
                        continue;
                    }
                    None => return Step::Advance(rest.len()),
                }
            }
            match wire::next_line(at) {
                None if at.len() > max_line => {
                    self.side(is_req).skip_line = true;
                    self.mark_truncated(is_req);
                    return Step::Advance(rest.len());
                }
                // The partial line is asked for from its own start.
                None if off > 0 => return Step::Advance(off),
                None => return Step::Need(at.len() + 1),
                Some((line, n)) => {
                    off += n;
                    if line.is_empty() {
                        if phase == Phase::Headers {
                            self.headers_done(is_req, ctx);
                        } else {
                            self.message_done(is_req, ctx, false);
                        }
                        return Step::Advance(off);
                    }
                    if phase == Phase::Headers {
                        self.header_line(is_req, line);
                    }
                }
            }
        }
    }

    /// After a gap: find the next start line at offset 0 or after an LF.
    fn resync(&mut self, is_req: bool, rest: &[u8], ctx: &Ctx) -> Step {
        let probe = |b: &[u8]| {
            if is_req {
                wire::probe_request_start(b)
            } else {
                wire::probe_response_start(b)
            }
        };
        let mut cand = 0usize;
        loop {
            let at = rest.get(cand..).unwrap_or(&[]);
            match probe(at) {
                Probe::Yes => {
                    let side = self.side(is_req);
                    side.phase = Phase::Start;
                    side.reset_message();
                    self.stats.resyncs += 1;
                    // At offset 0 nothing is skipped: parse the start line now
                    // (phase is Start, so this does not come back here).
                    return if cand == 0 {
                        self.step(is_req, rest, ctx)
                    } else {
                        Step::Advance(cand)
                    };
                }
                Probe::NeedMore if !at.is_empty() => {
                    // A possible start at the end of the data: keep it.
                    return if cand == 0 {
                        Step::Need(at.len() + 1)
                    } else {
                        Step::Advance(cand)
                    };
                }
                _ => {}
            }
            match at.iter().position(|&b| b == b'\n') {
                Some(lf) => cand = cand + lf + 1,
                None => return Step::Advance(rest.len()),
            }
            if cand >= rest.len() {
                return Step::Advance(rest.len());
            }
        }
    }

    fn start_request(&mut self, line: &[u8], ctx: &Ctx) -> bool {
        let Some(rl) = wire::parse_request_line(line) else {
            return false;
        };
        let max = self.cfg.max_field_len;
        let id = self.next_tx_id;
        self.next_tx_id += 1;
        let mut tx = Tx::default();
        tx.ev.tx_id = id;
        tx.ev.has_request = true;
        let method = token(rl.method, max, COMMON_METHODS);
        let t1 = rl.method.len() > max;
        let (uri, t2) = bounded_string_flag(rl.uri, self.cfg.max_line_len);
        tx.head = rl.method.eq_ignore_ascii_case(b"HEAD");
        tx.connect = rl.method.eq_ignore_ascii_case(b"CONNECT");
        tx.ev.method = Some(method);
        tx.ev.version = rl.version.map(|v| token(v, 16, VERSIONS));
        tx.ev.request_ts_ns = Some(ctx.ts_ns);
        if let Some(auth) = wire::uri_authority(rl.uri, tx.connect) {
            let (h, p) = wire::split_host_port(auth);
            tx.ev.host = Some(bounded_lowercase(h, max));
            tx.ev.host_port = p;
        }
        tx.ev.uri = Some(uri);
        tx.ev.truncated = t1 || t2;
        if t1 || t2 {
            self.stats.truncated += 1;
        }
        let http09 = rl.version.is_none();
        let cur = if self.txs.len() >= self.cfg.max_pending {
            self.stats.pending_overflow += 1;
            if let Some(last) = self.txs.back_mut() {
                last.dropped_after += 1;
            }
            self.scratch = Some(tx);
            Cur::Scratch
        } else {
            self.txs.push_back(tx);
            Cur::Tx(id)
        };
        self.req.reset_message();
        self.req.cur = cur;
        if http09 {
            if let Some(tx) = self.cur_tx(true) {
                tx.req_head_done = true;
            }
            // HTTP/0.9: no headers, no body.
            self.message_done(true, ctx, false);
        } else {
            self.req.phase = Phase::Headers;
        }
        true
    }

    fn start_response(&mut self, line: &[u8], ctx: &Ctx) -> bool {
        let Some(sl) = wire::parse_status_line(line) else {
            return false;
        };
        let max = self.cfg.max_field_len;
        let interim = (100..200).contains(&sl.status) && sl.status != 101;
        if self.resp.cur == Cur::None {
            self.resp.cur = self.pick_response_target();
        }
        self.resp.reset_message();
        self.resp.interim = interim;
        let cur = self.resp.cur;
        if let Some(tx) = self.tx_mut(cur) {
            if interim {
                if tx.ev.interim_statuses.len() < 8 {
                    tx.ev.interim_statuses.push(sl.status);
                }
            } else {
                tx.ev.has_response = true;
                tx.ev.status = Some(sl.status);
                tx.ev.response_version = Some(token(sl.version, 16, VERSIONS));
                tx.ev.reason = Some(token(sl.reason, max, COMMON_REASONS));
                tx.ev.response_ts_ns = Some(ctx.ts_ns);
            }
        }
        self.resp.phase = Phase::Headers;
        true
    }

    /// The transaction a new response belongs to.
    fn pick_response_target(&mut self) -> Cur {
        if self.resp_skip > 0 {
            self.skipping_resp = true;
            self.scratch = Some(Tx::default());
            return Cur::Scratch;
        }
        if let Some(t) = self.txs.iter().find(|t| !t.resp_done && t.ev.has_request) {
            return Cur::Tx(t.ev.tx_id);
        }
        // Response without request.
        self.stats.orphan_responses += 1;
        let id = self.next_tx_id;
        self.next_tx_id += 1;
        let mut tx = Tx {
            req_done: true,
            ..Tx::default()
        };
        tx.ev.tx_id = id;
        if self.txs.len() >= self.cfg.max_pending {
            self.stats.pending_overflow += 1;
            self.skipping_resp = true;
            self.scratch = Some(tx);
            return Cur::Scratch;
        }
        self.txs.push_back(tx);
        Cur::Tx(id)
    }

    fn mark_truncated(&mut self, is_req: bool) {
        self.stats.truncated += 1;
        if let Some(tx) = self.cur_tx(is_req) {
            tx.ev.truncated = true;
        }
    }

    fn header_line(&mut self, is_req: bool, line: &[u8]) {
        let cfg_log = if is_req {
            self.cfg.log_request_headers
        } else {
            self.cfg.log_response_headers
        };
        let max = self.cfg.max_field_len;
        let max_headers = self.cfg.max_headers;
        let max_header_bytes = self.cfg.max_header_bytes;
        if wire::is_continuation(line) {
            let extra = wire::trim_value(line);
            let (last_stored, last_known) = {
                let s = self.side(is_req);
                (s.last_stored, s.last_known)
            };
            let interim = self.side(is_req).interim;
            let mut cut = false;
            if let Some(tx) = self.cur_tx(is_req) {
                let extra = String::from_utf8_lossy(extra);
                if last_stored && !interim {
                    let list = if is_req {
                        &mut tx.ev.request_headers
                    } else {
                        &mut tx.ev.response_headers
                    };
                    if let Some(h) = list.last_mut() {
                        if h.value != "[redacted]" {
                            cut |= push_bounded(&mut h.value, " ", max);
                            cut |= push_bounded(&mut h.value, &extra, max);
                        }
                    }
                }
                let field = match (is_req, last_known) {
                    (true, Known::UserAgent) => tx.ev.user_agent.as_mut(),
                    (true, Known::Referer) => tx.ev.referer.as_mut(),
                    (true, Known::XForwardedFor) => tx.ev.x_forwarded_for.as_mut(),
                    (false, Known::Location) => tx.ev.location.as_mut(),
                    _ => None,
                };
                if let Some(f) = field {
                    cut |= push_bounded(f, " ", max);
                    cut |= push_bounded(f, &extra, max);
                }
            }
            if cut {
                self.mark_truncated(is_req);
            }
            return;
        }
        let Some((name, raw_value)) = wire::parse_header_untrimmed(line) else {
            // Not a header; ignore the line (libhtp flags it too).
            self.stats.malformed += 1;
            let s = self.side(is_req);
            s.last_stored = false;
            s.last_known = Known::Other;
            return;
        };
        let k = known(name);
        if k == Known::Other && !cfg_log {
            // Most lines: no event field, no header list, no framing fact.
            let s = self.side(is_req);
            s.last_stored = false;
            s.last_known = Known::Other;
            return;
        }
        // Trimmed only here: the lines skipped above do not need it.
        let value = wire::trim_value(raw_value);
        // Message framing facts, for real and interim messages alike.
        {
            let s = self.side(is_req);
            match k {
                Known::ContentLength if s.content_length.is_none() => {
                    s.content_length = wire::parse_content_length(value);
                }
                Known::TransferEncoding if wire::is_chunked(value) => s.chunked = true,
                _ => {}
            }
        }
        let interim = self.side(is_req).interim;
        if interim {
            let s = self.side(is_req);
            s.last_stored = false;
            s.last_known = Known::Other;
            return;
        }
        // Header list, bounded by count and bytes.
        let mut stored = false;
        let mut cut = false;
        if cfg_log {
            let (count, bytes) = {
                let s = self.side(is_req);
                (s.header_count, s.header_bytes)
            };
            let cost = name.len().min(max) + value.len().min(max);
            if count < max_headers && bytes.saturating_add(cost) <= max_header_bytes {
                let redacted = self
                    .cfg
                    .redact
                    .iter()
                    .any(|r| name.eq_ignore_ascii_case(r.as_bytes()));
                let (n, c1) = bounded_string_flag(name, max);
                let (v, c2) = if redacted {
                    ("[redacted]".to_string(), false)
                } else {
                    bounded_string_flag(value, max)
                };
                cut = c1 || c2;
                if let Some(tx) = self.cur_tx(is_req) {
                    let list = if is_req {
                        &mut tx.ev.request_headers
                    } else {
                        &mut tx.ev.response_headers
                    };
                    list.push(HttpHeader { name: n, value: v });
                    stored = true;
                }
                let s = self.side(is_req);
                s.header_count += 1;
                s.header_bytes = s.header_bytes.saturating_add(cost);
            } else {
                cut = true;
            }
        }
        {
            let s = self.side(is_req);
            s.last_stored = stored;
            s.last_known = k;
        }
        let value = if k == Known::ContentType {
            media_type(value)
        } else {
            value
        };
        // Only the fields an event keeps are copied (most header lines are
        // none of them: a copy per line was a good part of HTTP's cost).
        let c = k != Known::Other && value.len() > max;
        if let Some(tx) = self.cur_tx(is_req) {
            let ev = &mut tx.ev;
            let v = || bounded_string(value, max);
            let first = |f: &mut Option<String>, v: &dyn Fn() -> String| {
                if f.is_none() {
                    *f = Some(v());
                }
            };
            let media = |f: &mut Option<Token>| {
                if f.is_none() {
                    *f = Some(token(value, max, COMMON_MEDIA_TYPES));
                }
            };
            match (is_req, k) {
                (true, Known::Host) if ev.host.is_none() => {
                    let (h, p) = wire::split_host_port(value);
                    ev.host = Some(bounded_lowercase(h, max));
                    ev.host_port = p;
                }
                (true, Known::UserAgent) => first(&mut ev.user_agent, &v),
                (true, Known::Referer) => first(&mut ev.referer, &v),
                (true, Known::XForwardedFor) => first(&mut ev.x_forwarded_for, &v),
                (true, Known::ContentType) => media(&mut ev.request_content_type),
                (true, Known::Upgrade) => first(&mut ev.upgrade, &v),
                (true, Known::ContentLength) if ev.request_content_length.is_none() => {
                    ev.request_content_length = wire::parse_content_length(value);
                }
                (false, Known::ContentType) => media(&mut ev.content_type),
                (false, Known::Location) => first(&mut ev.location, &v),
                (false, Known::ContentLength) if ev.response_content_length.is_none() => {
                    ev.response_content_length = wire::parse_content_length(value);
                }
                _ => {}
            }
            if cut || (c && k != Known::Other) {
                ev.truncated = true;
            }
        }
        if cut || (c && k != Known::Other) {
            self.stats.truncated += 1;
        }
    }

    fn headers_done(&mut self, is_req: bool, ctx: &Ctx) {
        let (cl, chunked) = {
            let s = self.side(is_req);
            (s.content_length, s.chunked)
        };
        if is_req {
            if let Some(tx) = self.cur_tx(true) {
                tx.ev.request_chunked = chunked;
                tx.req_head_done = true;
            }
            if chunked {
                self.req.phase = Phase::ChunkSize;
            } else {
                match cl {
                    Some(n) if n > 0 => self.req.phase = Phase::Body { remaining: n },
                    _ => self.message_done(true, ctx, false),
                }
            }
            return;
        }
        // Response.
        if self.resp.interim {
            // 1xx (not 101): the final response follows for the same request.
            self.resp.reset_message();
            self.resp.phase = Phase::Start;
            return;
        }
        let cur = self.resp.cur;
        let (status, head, connect) = match self.tx_mut(cur) {
            Some(tx) => (tx.ev.status.unwrap_or(0), tx.head, tx.connect),
            None => (0, false, false),
        };
        let tunnel = status == 101 || (connect && (200..300).contains(&status));
        if tunnel {
            if let Some(tx) = self.tx_mut(cur) {
                tx.ev.tunnel = true;
            }
            self.message_done(false, ctx, false);
            self.tunnel = true;
            self.req.phase = Phase::Tunnel;
            self.resp.phase = Phase::Tunnel;
            return;
        }
        if let Some(tx) = self.tx_mut(cur) {
            tx.ev.response_chunked = chunked && !(head || status == 204 || status == 304);
        }
        if head || status == 204 || status == 304 {
            self.message_done(false, ctx, false);
        } else if chunked {
            self.resp.phase = Phase::ChunkSize;
        } else {
            match cl {
                Some(0) => self.message_done(false, ctx, false),
                Some(n) => self.resp.phase = Phase::Body { remaining: n },
                None => self.resp.phase = Phase::UntilClose,
            }
        }
    }

    fn body_bytes(&mut self, is_req: bool, bytes: &[u8]) {
        let cap = self.cfg.body_capture_bytes;
        if let Some(tx) = self.cur_tx(is_req) {
            let (len, body) = if is_req {
                (&mut tx.ev.request_body_len, &mut tx.ev.request_body)
            } else {
                (&mut tx.ev.response_body_len, &mut tx.ev.response_body)
            };
            *len = len.saturating_add(bytes.len() as u64);
            if cap > body.len() {
                let take = (cap - body.len()).min(bytes.len());
                body.extend_from_slice(bytes.get(..take).unwrap_or(&[]));
            }
        }
    }

    /// A message ended (complete, or cut short when `incomplete`).
    fn message_done(&mut self, is_req: bool, ctx: &Ctx, incomplete: bool) {
        self.maybe_ready = true;
        let cur = self.side(is_req).cur;
        let mut wait = false;
        let mut dropped = 0u64;
        if let Some(tx) = self.tx_mut(cur) {
            if incomplete {
                tx.ev.incomplete = true;
            }
            if is_req {
                tx.req_done = true;
                tx.ev.request_end_ts_ns = Some(ctx.ts_ns);
                wait = tx.connect || tx.ev.upgrade.is_some();
            } else {
                tx.resp_done = true;
                tx.ev.response_end_ts_ns = Some(ctx.ts_ns);
                dropped = std::mem::take(&mut tx.dropped_after);
            }
        }
        if !is_req {
            if self.skipping_resp {
                self.skipping_resp = false;
                self.resp_skip = self.resp_skip.saturating_sub(1);
            }
            self.resp_skip = self.resp_skip.saturating_add(dropped);
            // A CONNECT/Upgrade request waiting on this response goes on.
            if self.req.phase == Phase::WaitResponse && !self.tunnel {
                self.req.phase = Phase::Start;
            }
        }
        let side = self.side(is_req);
        side.cur = Cur::None;
        side.reset_message();
        if side.phase != Phase::Tunnel {
            side.phase = if is_req && wait {
                Phase::WaitResponse
            } else {
                Phase::Start
            };
        }
        if is_req && wait {
            // The response may already be complete (it came first).
            let answered = match cur {
                Cur::Tx(id) => self.txs.iter().any(|t| t.ev.tx_id == id && t.resp_done),
                _ => true,
            };
            if answered && !self.tunnel {
                self.req.phase = Phase::Start;
            }
        }
    }

    /// The message in progress cannot be framed any more: end it as
    /// incomplete and look for the next start line.
    fn broken_message(&mut self, is_req: bool, ctx: &Ctx) {
        self.message_done(is_req, ctx, true);
        let side = self.side(is_req);
        if side.phase != Phase::Tunnel {
            side.phase = Phase::Resync;
        }
    }

    /// The direction stops (Error): end its message.
    fn fail_side(&mut self, is_req: bool, ctx: &Ctx) {
        if self.side(is_req).cur != Cur::None {
            self.message_done(is_req, ctx, true);
        }
        self.side(is_req).phase = Phase::Tunnel;
        if !is_req {
            // No response will be parsed any more: requests go out unanswered
            // as soon as they are complete instead of filling the queue.
            self.resp_dead = true;
            self.maybe_ready = true;
        }
    }

    pub(crate) fn on_gap(&mut self, dir: Direction, len: u64) {
        let is_req = dir == Direction::ToServer;
        self.stats.gaps += 1;
        let cur = self.side(is_req).cur;
        if let Some(tx) = self.tx_mut(cur) {
            tx.ev.gap = true;
        }
        let phase = self.side(is_req).phase;
        let ctx = self.last_ts_ctx(is_req);
        match phase {
            Phase::Tunnel => {}
            Phase::Body { remaining } if len <= remaining => {
                self.add_gap_len(is_req, len);
                let left = remaining - len;
                if left == 0 {
                    self.message_done(is_req, &ctx, false);
                } else {
                    self.side(is_req).phase = Phase::Body { remaining: left };
                }
            }
            Phase::ChunkData { remaining } if len <= remaining => {
                self.add_gap_len(is_req, len);
                let left = remaining - len;
                self.side(is_req).phase = if left == 0 {
                    Phase::ChunkDataEnd
                } else {
                    Phase::ChunkData { remaining: left }
                };
            }
            Phase::UntilClose => self.add_gap_len(is_req, len),
            Phase::Start | Phase::Resync | Phase::WaitResponse => {
                self.side(is_req).phase = Phase::Resync;
            }
            _ => {
                if let Some(tx) = self.tx_mut(cur) {
                    tx.ev.incomplete = true;
                }
                self.broken_message(is_req, &ctx);
            }
        }
    }

    /// Timestamp for messages ended by a gap: the latest one we know of.
    fn last_ts_ctx(&mut self, is_req: bool) -> Ctx {
        let ts = self
            .cur_tx(is_req)
            .and_then(|t| {
                if is_req {
                    t.ev.request_ts_ns
                } else {
                    t.ev.response_ts_ns
                }
            })
            .unwrap_or(0);
        Ctx::new(ts)
    }

    fn add_gap_len(&mut self, is_req: bool, len: u64) {
        if let Some(tx) = self.cur_tx(is_req) {
            let l = if is_req {
                &mut tx.ev.request_body_len
            } else {
                &mut tx.ev.response_body_len
            };
            *l = l.saturating_add(len);
        }
    }

    /// Emit finished transactions from the front of the queue, in order.
    #[inline]
    fn try_emit(&mut self, emit: &mut dyn FnMut(AppEvent)) {
        if self.maybe_ready {
            self.maybe_ready = false;
            self.emit_ready(emit);
        }
    }

    fn emit_ready(&mut self, emit: &mut dyn FnMut(AppEvent)) {
        let resp_dead = self.resp_dead;
        while self
            .txs
            .front()
            .is_some_and(|t| t.req_done && (t.resp_done || resp_dead))
        {
            if let Some(mut tx) = self.txs.pop_front() {
                if !tx.resp_done {
                    tx.ev.incomplete = true;
                }
                self.emit_tx(tx, emit);
            }
        }
    }

    fn emit_tx(&mut self, tx: Tx, emit: &mut dyn FnMut(AppEvent)) {
        let mut ev = tx.ev;
        if let (Some(resp), Some(req_end)) = (ev.response_ts_ns, ev.request_end_ts_ns) {
            ev.latency_ns = Some(resp.saturating_sub(req_end));
        }
        if ev.has_request && !ev.has_response {
            self.stats.unanswered += 1;
        }
        self.stats.events += 1;
        emit(AppEvent::Http(ev));
    }

    /// Flow end: complete until-close bodies, emit everything pending.
    pub(crate) fn flush(&mut self, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        for is_req in [true, false] {
            let phase = self.side(is_req).phase;
            if self.side(is_req).cur != Cur::None {
                // An until-close body ends normally at close; anything else is cut.
                let incomplete = phase != Phase::UntilClose;
                self.message_done(is_req, ctx, incomplete);
            }
        }
        while let Some(mut tx) = self.txs.pop_front() {
            if !(tx.req_done && tx.resp_done) {
                tx.ev.incomplete = true;
            }
            self.emit_tx(tx, emit);
        }
        self.req = Side::new();
        self.resp = Side::new();
        if self.tunnel {
            self.req.phase = Phase::Tunnel;
            self.resp.phase = Phase::Tunnel;
        }
        self.resp_skip = 0;
        self.skipping_resp = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let common = &["POST", "GET"];
        assert!(matches!(token(b"GET", 8, common), Cow::Borrowed("GET")));
        // Not a common value: a bounded, lossy copy.
        assert!(matches!(token(b"get", 8, common), Cow::Owned(s) if s == "get"));
        assert_eq!(token(b"GET", 2, &["GET"]), "GE");
        assert_eq!(token(b"G\xffT", 8, &["GET"]), "G\u{fffd}T");
    }
}
