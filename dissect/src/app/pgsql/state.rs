//! PostgreSQL transaction state: message framing per direction (the
//! untyped startup packets, the one-byte SSL/GSS answer, typed messages),
//! the queue of requests awaiting their answer (the server answers in
//! order), the extended protocol's prepared statements and portals, and
//! resync after a gap.
//!
//! DataRow and CopyData bodies are never buffered: their head is read and
//! the body skipped, so a 3 MB result set costs no memory. Other messages
//! longer than `max_message_bytes` are read up to that length and the rest
//! skipped (their text is marked truncated).

use super::event::{AuthMethod, PgsqlError, PgsqlEvent, PgsqlRequest};
use super::wire::{self, Untyped};
use super::PgsqlConfig;
use crate::app::{AppEvent, AppStats, Ctx, Direction, ParseStatus};
use std::collections::VecDeque;

/// Error/notice fields kept per message.
const MAX_ERROR_FIELDS: usize = 18;

/// An entry of the queue of requests awaiting their answer.
enum Pending {
    Tx(PgsqlEvent),
    /// Sync of the extended protocol: consumed by its ReadyForQuery. Holds
    /// a `Prepare` event when the batch had a Parse but no Execute (it is
    /// emitted only if the server reports an error for it).
    Sync(Option<PgsqlEvent>),
}

pub(crate) struct PgsqlState {
    cfg: PgsqlConfig,
    pending: VecDeque<Pending>,
    next_tx: u64,
    /// The client has not sent its StartupMessage yet: its packets are untyped.
    startup: bool,
    /// Last authentication challenge: tells what a `p` message carries.
    auth: Option<AuthMethod>,
    /// Prepared statements (name, text, cut) and portals (name, statement),
    /// oldest first, bounded by `max_prepared`.
    prepared: VecDeque<(String, String, bool)>,
    portals: VecDeque<(String, String)>,
    /// Extended protocol batch under way: client bytes not yet counted
    /// towards an Execute, its last Parse, whether it had an Execute.
    batch_bytes: u64,
    batch_parse: Option<(String, String, bool)>,
    batch_execute: bool,
    /// Per direction: body bytes still to skip; framing lost after a gap.
    skip: [u64; 2],
    resync: [bool; 2],
    /// A gap happened: pending requests are emitted on the next call.
    gap_flush: bool,
    /// SSL/GSS encryption accepted: the rest of the flow is encrypted.
    done: bool,
    user: Option<String>,
    database: Option<String>,
    application_name: Option<String>,
    pub(crate) stats: AppStats,
}

impl PgsqlState {
    pub(crate) fn new(mut cfg: PgsqlConfig) -> PgsqlState {
        cfg.max_pending = cfg.max_pending.max(1);
        cfg.max_message_bytes = cfg.max_message_bytes.max(64);
        PgsqlState {
            cfg,
            pending: VecDeque::new(),
            next_tx: 0,
            startup: true,
            auth: None,
            prepared: VecDeque::new(),
            portals: VecDeque::new(),
            batch_bytes: 0,
            batch_parse: None,
            batch_execute: false,
            skip: [0, 0],
            resync: [false, false],
            gap_flush: false,
            done: false,
            user: None,
            database: None,
            application_name: None,
            stats: AppStats::default(),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Requests awaiting their answer.
    pub(crate) fn peek(&self, f: &mut dyn FnMut(&PgsqlEvent)) {
        for p in &self.pending {
            if let Pending::Tx(ev) = p {
                f(ev);
            }
        }
    }

    pub(crate) fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) -> ParseStatus {
        if self.gap_flush {
            self.gap_flush = false;
            self.flush_pending(true, emit);
        }
        let i = dir.index();
        let from_client = dir == Direction::ToServer;
        let mut pos = 0usize;
        loop {
            if self.done {
                // Encrypted from here on: nothing to read.
                return ParseStatus::Consumed(data.len());
            }
            let rest = data.get(pos..).unwrap_or(&[]);
            if rest.is_empty() {
                return ParseStatus::Consumed(pos);
            }
            if self.skip[i] > 0 {
                let n = (self.skip[i].min(rest.len() as u64)) as usize;
                self.skip[i] -= n as u64;
                pos += n;
                continue;
            }
            if self.resync[i] {
                let found = (0..rest.len()).find(|&k| {
                    wire::plausible_at(rest.get(k..).unwrap_or(&[]), from_client, k == 0)
                });
                match found {
                    Some(k) => {
                        self.resync[i] = false;
                        self.stats.resyncs += 1;
                        pos += k;
                        continue;
                    }
                    // Wait for a segment that starts on a message.
                    None => return ParseStatus::Consumed(data.len()),
                }
            }
            if from_client && self.startup {
                match wire::untyped_head(rest) {
                    None => {
                        return ParseStatus::Incomplete {
                            consumed: pos,
                            needed: 8,
                        }
                    }
                    // Not a startup packet: the flow was picked up after it.
                    Some(Err(())) => self.startup = false,
                    Some(Ok((len, kind))) => {
                        if rest.len() < len {
                            return ParseStatus::Incomplete {
                                consumed: pos,
                                needed: len,
                            };
                        }
                        let body = rest.get(8..len).unwrap_or(&[]);
                        self.untyped(kind, body, len, ctx, emit);
                        pos += len;
                    }
                }
                continue;
            }
            if !from_client && self.awaiting_crypt_answer() {
                if let Some(&b) = rest.first() {
                    if matches!(b, b'S' | b'N' | b'G') {
                        self.crypt_answer(b, ctx, emit);
                        pos += 1;
                        continue;
                    }
                    // Anything else is a typed message (an old server's ErrorResponse).
                }
            }
            let (t, total) = match wire::typed_head(rest) {
                None => {
                    return ParseStatus::Incomplete {
                        consumed: pos,
                        needed: 5,
                    }
                }
                Some(Ok(h)) => h,
                Some(Err(())) => {
                    self.lost_framing(i);
                    pos += 1;
                    continue;
                }
            };
            let known = if from_client {
                wire::is_frontend_type(t)
            } else {
                wire::is_backend_type(t)
            };
            if !known {
                self.lost_framing(i);
                pos += 1;
                continue;
            }
            // Row data and COPY data are counted, never buffered.
            let streamed = matches!((from_client, t), (true, b'd') | (false, b'D' | b'd'));
            if streamed {
                // A DataRow's column count tells its value bytes apart from
                // the per-column lengths.
                let head = if t == b'D' && !from_client {
                    total.min(7)
                } else {
                    5
                };
                if rest.len() < head {
                    return ParseStatus::Incomplete {
                        consumed: pos,
                        needed: head,
                    };
                }
                let columns = crate::app::util::be16(rest, 5).filter(|_| head == 7);
                self.streamed(from_client, t, total, columns);
                pos += head;
                self.skip[i] = (total - head) as u64;
                continue;
            }
            let want = total.min(5 + self.cfg.max_message_bytes);
            if rest.len() < want {
                return ParseStatus::Incomplete {
                    consumed: pos,
                    needed: want,
                };
            }
            let body = rest.get(5..want).unwrap_or(&[]);
            let cut = total > want;
            if from_client {
                self.client(t, body, total, cut, ctx, emit);
            } else {
                self.server(t, body, total, cut, ctx, emit);
            }
            pos += want;
            self.skip[i] = (total - want) as u64;
        }
    }

    /// A message head that cannot be: count it and look for the next one.
    fn lost_framing(&mut self, i: usize) {
        self.stats.malformed += 1;
        self.resync[i] = true;
        self.gap_flush = !self.pending.is_empty();
    }

    fn new_event(&mut self, request: PgsqlRequest, ctx: &Ctx) -> PgsqlEvent {
        self.next_tx += 1;
        PgsqlEvent {
            tx_id: self.next_tx,
            request,
            user: self.user.clone(),
            database: self.database.clone(),
            application_name: self.application_name.clone(),
            request_ts_ns: Some(ctx.ts_ns),
            ..PgsqlEvent::default()
        }
    }

    fn push(&mut self, p: Pending, emit: &mut dyn FnMut(AppEvent)) {
        if self.pending.len() >= self.cfg.max_pending {
            self.stats.pending_overflow += 1;
            if let Some(Pending::Tx(old)) = self.pending.pop_front() {
                self.emit_unanswered(old, false, emit);
            }
        }
        self.pending.push_back(p);
    }

    fn emit(&mut self, mut ev: PgsqlEvent, emit: &mut dyn FnMut(AppEvent)) {
        if ev.tx_id == 0 {
            // A prepare batch, numbered when it turns out to be an event.
            self.next_tx += 1;
            ev.tx_id = self.next_tx;
        }
        self.stats.events += 1;
        if ev.truncated {
            self.stats.truncated += 1;
        }
        emit(AppEvent::Pgsql(Box::new(ev)));
    }

    fn emit_unanswered(&mut self, mut ev: PgsqlEvent, gap: bool, emit: &mut dyn FnMut(AppEvent)) {
        ev.unanswered = true;
        ev.gap |= gap;
        self.stats.unanswered += 1;
        self.emit(ev, emit);
    }

    /// The front entry's event, when it has one.
    fn front(&mut self) -> Option<&mut PgsqlEvent> {
        match self.pending.front_mut()? {
            Pending::Tx(ev) | Pending::Sync(Some(ev)) => Some(ev),
            Pending::Sync(None) => None,
        }
    }

    /// The front transaction is answered: emit it.
    fn complete_front(&mut self, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        if let Some(Pending::Tx(ev) | Pending::Sync(Some(ev))) = self.pending.pop_front() {
            self.finish(ev, ctx, emit);
        }
    }

    fn finish(&mut self, mut ev: PgsqlEvent, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        ev.response_ts_ns = Some(ctx.ts_ns);
        ev.latency_ns = ev.request_ts_ns.map(|r| ctx.ts_ns.saturating_sub(r));
        self.emit(ev, emit);
    }

    fn awaiting_crypt_answer(&self) -> bool {
        matches!(self.pending.front(), Some(Pending::Tx(ev))
            if matches!(ev.request, PgsqlRequest::SslRequest | PgsqlRequest::GssEncRequest)
                && ev.encryption_accepted.is_none())
    }

    fn crypt_answer(&mut self, b: u8, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let accepted = b != b'N';
        if let Some(ev) = self.front() {
            ev.encryption_accepted = Some(accepted);
            ev.response_bytes += 1;
        }
        self.complete_front(ctx, emit);
        if accepted {
            // The TLS (or GSSAPI) session starts with the next byte.
            self.done = true;
            self.flush_pending(false, emit);
        }
    }

    fn untyped(
        &mut self,
        kind: Untyped,
        body: &[u8],
        len: usize,
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        let request = match kind {
            Untyped::Ssl => PgsqlRequest::SslRequest,
            Untyped::GssEnc => PgsqlRequest::GssEncRequest,
            Untyped::Cancel => PgsqlRequest::Cancel,
            Untyped::Startup(..) => PgsqlRequest::Startup,
        };
        let mut ev = self.new_event(request, ctx);
        ev.request_bytes = len as u64;
        match kind {
            Untyped::Ssl | Untyped::GssEnc => self.push(Pending::Tx(ev), emit),
            Untyped::Cancel => {
                // Sent on a connection of its own; the server answers nothing.
                ev.process_id = wire::key_data(body).map(|(pid, _key)| pid);
                self.startup = false;
                self.emit(ev, emit);
            }
            Untyped::Startup(major, minor) => {
                self.startup = false;
                let (params, cut) =
                    wire::startup_params(body, self.cfg.max_parameters, self.cfg.max_field_bytes);
                ev.truncated = cut;
                ev.protocol_version = Some((major, minor));
                for (k, v) in params {
                    match k.as_str() {
                        "user" => {
                            ev.user = Some(v);
                            continue;
                        }
                        "database" => ev.database = Some(v.clone()),
                        "application_name" => ev.application_name = Some(v.clone()),
                        _ => {}
                    }
                    ev.startup_parameters.push((k, v));
                }
                // The database defaults to the user name.
                if ev.database.is_none() {
                    ev.database = ev.user.clone();
                }
                self.user = ev.user.clone();
                self.database = ev.database.clone();
                self.application_name = ev.application_name.clone();
                self.push(Pending::Tx(ev), emit);
            }
        }
    }

    fn streamed(&mut self, from_client: bool, t: u8, total: usize, columns: Option<u16>) {
        let payload = (total - 5) as u64;
        let Some(ev) = (if from_client {
            // CopyData follows the query that started the COPY: the newest request.
            match self.pending.back_mut() {
                Some(Pending::Tx(ev)) => Some(ev),
                _ => None,
            }
        } else {
            self.front()
        }) else {
            return;
        };
        if from_client {
            ev.request_bytes += total as u64;
            *ev.copy_in_bytes.get_or_insert(0) += payload;
        } else {
            ev.response_bytes += total as u64;
            if t == b'D' {
                ev.data_rows += 1;
                // Value bytes: the body less its column count and the
                // 4-byte length of every column (a NULL has only that).
                let lengths = 4 * u64::from(columns.unwrap_or(0));
                ev.data_size += (total.saturating_sub(7) as u64).saturating_sub(lengths);
            } else {
                *ev.copy_out_bytes.get_or_insert(0) += payload;
            }
        }
    }

    fn statement_text(&self, b: &[u8], cut: bool) -> (String, bool) {
        let (s, c) = wire::text(b, self.cfg.max_statement_bytes);
        let s = if self.cfg.normalize_statements {
            crate::app::sql::normalize(&s)
        } else {
            s
        };
        (s, c || cut)
    }

    fn client(
        &mut self,
        t: u8,
        body: &[u8],
        total: usize,
        cut: bool,
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        let total64 = total as u64;
        match t {
            b'Q' => {
                let (q, _, term) = wire::cstr(body, 0).unwrap_or((&[], 0, false));
                let (text, c) = self.statement_text(q, cut || !term);
                let mut ev = self.new_event(PgsqlRequest::Query, ctx);
                ev.statement = Some(text);
                ev.truncated = c;
                ev.request_bytes = total64;
                self.push(Pending::Tx(ev), emit);
            }
            b'P' => {
                self.batch_bytes += total64;
                if let Some((name, query, term)) = wire::parse_msg(body) {
                    let (text, c) = self.statement_text(query, cut || !term);
                    let name = wire::text(name, self.cfg.max_field_bytes).0;
                    self.remember_statement(&name, &text, c);
                    self.batch_parse = Some((name, text, c));
                }
            }
            b'B' => {
                self.batch_bytes += total64;
                if let Some((portal, stmt)) = wire::bind_msg(body) {
                    let portal = wire::text(portal, self.cfg.max_field_bytes).0;
                    let stmt = wire::text(stmt, self.cfg.max_field_bytes).0;
                    self.portals.retain(|(p, _)| *p != portal);
                    if self.portals.len() >= self.cfg.max_prepared.max(1) {
                        self.portals.pop_front();
                    }
                    self.portals.push_back((portal, stmt));
                }
            }
            b'E' => {
                let portal = wire::cstr(body, 0)
                    .map(|(p, _, _)| wire::text(p, self.cfg.max_field_bytes).0)
                    .unwrap_or_default();
                let stmt = self
                    .portals
                    .iter()
                    .find(|(p, _)| *p == portal)
                    .map(|(_, s)| s.clone());
                let found = stmt.as_ref().and_then(|s| {
                    self.prepared
                        .iter()
                        .find(|(n, _, _)| n == s)
                        .map(|(_, text, c)| (text.clone(), *c))
                });
                let mut ev = self.new_event(PgsqlRequest::Execute, ctx);
                if let Some((text, c)) = found {
                    ev.statement = Some(text);
                    ev.truncated = c;
                }
                ev.statement_name = stmt.filter(|s| !s.is_empty());
                ev.portal = Some(portal).filter(|p| !p.is_empty());
                ev.request_bytes = self.batch_bytes + total64;
                self.batch_bytes = 0;
                self.batch_execute = true;
                self.push(Pending::Tx(ev), emit);
            }
            b'S' => {
                let prep = match (self.batch_execute, self.batch_parse.take()) {
                    (false, Some((name, text, c))) => {
                        // Numbered only if it is emitted (on an error): most
                        // prepare batches succeed and are not events.
                        let mut ev = self.new_event(PgsqlRequest::Prepare, ctx);
                        self.next_tx -= 1;
                        ev.tx_id = 0;
                        ev.statement = Some(text);
                        ev.statement_name = Some(name).filter(|n| !n.is_empty());
                        ev.truncated = c;
                        ev.request_bytes = self.batch_bytes + total64;
                        Some(ev)
                    }
                    _ => None,
                };
                self.batch_bytes = 0;
                self.batch_parse = None;
                self.batch_execute = false;
                self.push(Pending::Sync(prep), emit);
            }
            b'C' => {
                self.batch_bytes += total64;
                if let Some((what, name)) = wire::close_msg(body) {
                    let name = String::from_utf8_lossy(name);
                    if what == b'S' {
                        self.prepared.retain(|(n, _, _)| *n != name);
                    } else {
                        self.portals.retain(|(p, _)| *p != name);
                    }
                }
            }
            b'D' | b'H' => self.batch_bytes += total64,
            b'p' => {
                let request = match self.auth {
                    Some(AuthMethod::Sasl) => PgsqlRequest::SaslInitial,
                    Some(AuthMethod::SaslContinue) => PgsqlRequest::SaslResponse,
                    Some(AuthMethod::Gss | AuthMethod::GssContinue | AuthMethod::Sspi) => {
                        PgsqlRequest::GssResponse
                    }
                    _ => PgsqlRequest::Password,
                };
                let mut ev = self.new_event(request, ctx);
                ev.request_bytes = total64;
                if request == PgsqlRequest::SaslInitial {
                    // The mechanism only: the SASL data is a credential exchange.
                    if let Some((m, _, _)) = wire::cstr(body, 0) {
                        ev.sasl_mechanism = Some(wire::text(m, self.cfg.max_field_bytes).0);
                    }
                }
                self.push(Pending::Tx(ev), emit);
            }
            b'X' => {
                let mut ev = self.new_event(PgsqlRequest::Terminate, ctx);
                ev.request_bytes = total64;
                self.emit(ev, emit);
            }
            b'F' => {
                let mut ev = self.new_event(PgsqlRequest::FunctionCall, ctx);
                ev.request_bytes = total64;
                self.push(Pending::Tx(ev), emit);
            }
            // CopyDone, CopyFail: part of the COPY of the newest request.
            _ => {
                if let Some(Pending::Tx(ev)) = self.pending.back_mut() {
                    ev.request_bytes += total64;
                }
            }
        }
    }

    fn remember_statement(&mut self, name: &str, text: &str, cut: bool) {
        self.prepared.retain(|(n, _, _)| n != name);
        if self.prepared.len() >= self.cfg.max_prepared.max(1) {
            // The oldest is forgotten: its later executions show no text.
            self.prepared.pop_front();
            self.stats.truncated += 1;
        }
        self.prepared
            .push_back((name.to_string(), text.to_string(), cut));
    }

    fn server(
        &mut self,
        t: u8,
        body: &[u8],
        total: usize,
        cut: bool,
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        let max_field = self.cfg.max_field_bytes;
        let max_params = self.cfg.max_parameters;
        if let Some(ev) = self.front() {
            ev.response_bytes += total as u64;
        }
        match t {
            b'R' => {
                let Some(code) = wire::auth_code(body) else {
                    self.stats.malformed += 1;
                    return;
                };
                let m = AuthMethod::from_code(code);
                if m.is_challenge() {
                    self.auth = Some(m);
                }
                let Some(ev) = self.front().filter(|e| in_auth_phase(e.request)) else {
                    return;
                };
                if m == AuthMethod::Ok {
                    ev.auth_ok = true;
                } else if ev.auth_method.is_none() || m.is_challenge() {
                    ev.auth_method = Some(m);
                }
                if m.is_challenge() {
                    self.complete_front(ctx, emit);
                }
            }
            b'S' => {
                let Some(ev) = self.front().filter(|e| in_auth_phase(e.request)) else {
                    return;
                };
                if let Some((k, v)) = wire::parameter_status(body) {
                    if ev.parameter_status.len() < max_params {
                        let (k, c1) = wire::text(k, max_field);
                        let (v, c2) = wire::text(v, max_field);
                        ev.truncated |= c1 | c2;
                        ev.parameter_status.push((k, v));
                    } else {
                        ev.truncated = true;
                    }
                }
            }
            b'K' => {
                if let (Some(ev), Some((pid, _key))) = (self.front(), wire::key_data(body)) {
                    ev.process_id = Some(pid);
                }
            }
            b'T' => {
                if let (Some(ev), Some(n)) = (self.front(), wire::field_count(body)) {
                    ev.field_count = Some(n);
                }
            }
            b'C' => {
                let tag = wire::cstr(body, 0)
                    .map(|(b, _, _)| wire::text(b, max_field))
                    .unwrap_or_default();
                let Some(ev) = self.front() else {
                    let mut ev = self.orphan(ctx);
                    ev.rows = wire::tag_rows(&tag.0);
                    ev.command_tag = Some(tag.0);
                    ev.commands = 1;
                    ev.response_bytes = total as u64;
                    return self.finish(ev, ctx, emit);
                };
                ev.rows = wire::tag_rows(&tag.0);
                ev.command_tag = Some(tag.0);
                ev.truncated |= tag.1;
                ev.commands = ev.commands.saturating_add(1);
                if ev.request == PgsqlRequest::Execute {
                    self.complete_front(ctx, emit);
                }
            }
            b'E' => {
                let (fields, c) = wire::error_fields(body, MAX_ERROR_FIELDS, max_field);
                let err = PgsqlError { fields };
                let Some(ev) = self.front() else {
                    let mut ev = self.orphan(ctx);
                    ev.error = Some(err);
                    ev.truncated = c || cut;
                    ev.response_bytes = total as u64;
                    return self.finish(ev, ctx, emit);
                };
                if ev.error.is_none() {
                    ev.error = Some(err);
                    ev.truncated |= c || cut;
                }
                let req = ev.request;
                // An Execute ends with its error; a failed startup or
                // authentication ends the connection. A simple query waits
                // for its ReadyForQuery.
                if req == PgsqlRequest::Execute || in_auth_phase(req) || is_crypt(req) {
                    self.complete_front(ctx, emit);
                }
            }
            b'N' => {
                if let Some(ev) = self.front() {
                    ev.notices = ev.notices.saturating_add(1);
                }
            }
            b'I' => {
                if let Some(ev) = self.front() {
                    ev.empty_query = true;
                    if ev.request == PgsqlRequest::Execute {
                        self.complete_front(ctx, emit);
                    }
                }
            }
            b's' => {
                if let Some(ev) = self.front() {
                    ev.suspended = true;
                    if ev.request == PgsqlRequest::Execute {
                        self.complete_front(ctx, emit);
                    }
                }
            }
            b'G' | b'W' => {
                if let Some(ev) = self.front() {
                    ev.copy_in_bytes.get_or_insert(0);
                }
            }
            b'H' => {
                if let Some(ev) = self.front() {
                    ev.copy_out_bytes.get_or_insert(0);
                }
            }
            b'Z' => self.ready_for_query(body.first().copied(), ctx, emit),
            // ParseComplete, BindComplete, CloseComplete, NoData,
            // ParameterDescription, CopyDone, NotificationResponse,
            // FunctionCallResponse, NegotiateProtocolVersion: counted in bytes only.
            _ => {}
        }
    }

    /// A server message that ends an exchange arrived with no request
    /// waiting (picked up mid-flow, or after a gap).
    fn orphan(&mut self, ctx: &Ctx) -> PgsqlEvent {
        self.stats.orphan_responses += 1;
        let mut ev = self.new_event(PgsqlRequest::None, ctx);
        ev.request_ts_ns = None;
        ev
    }

    fn ready_for_query(&mut self, status: Option<u8>, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        loop {
            match self.pending.pop_front() {
                // Executes the server skipped after an error earlier in their batch.
                Some(Pending::Tx(ev)) if ev.request == PgsqlRequest::Execute => {
                    self.emit_unanswered(ev, false, emit);
                }
                Some(Pending::Tx(mut ev)) => {
                    ev.transaction_status = status;
                    return self.finish(ev, ctx, emit);
                }
                Some(Pending::Sync(Some(mut ev))) => {
                    if ev.error.is_some() {
                        ev.transaction_status = status;
                        self.finish(ev, ctx, emit);
                    }
                    return;
                }
                Some(Pending::Sync(None)) | None => return,
            }
        }
    }

    fn flush_pending(&mut self, gap: bool, emit: &mut dyn FnMut(AppEvent)) {
        while let Some(p) = self.pending.pop_front() {
            match p {
                Pending::Tx(ev) => self.emit_unanswered(ev, gap, emit),
                Pending::Sync(Some(ev)) if ev.error.is_some() => {
                    self.emit_unanswered(ev, gap, emit)
                }
                Pending::Sync(_) => {}
            }
        }
    }

    pub(crate) fn on_gap(&mut self, dir: Direction, _len: u64) {
        self.stats.gaps += 1;
        let i = dir.index();
        self.skip[i] = 0;
        self.resync[i] = true;
        if dir == Direction::ToServer {
            // A startup packet after a gap cannot be told from noise.
            self.startup = false;
            self.batch_bytes = 0;
            self.batch_parse = None;
            self.batch_execute = false;
        }
        // Answers can no longer be matched to requests: the waiting ones go
        // out (marked) on the next call, which can emit.
        self.gap_flush = !self.pending.is_empty();
    }

    pub(crate) fn flush(&mut self, _ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let gap = self.gap_flush;
        self.gap_flush = false;
        self.flush_pending(gap, emit);
    }
}

/// Requests answered by authentication messages.
fn in_auth_phase(r: PgsqlRequest) -> bool {
    matches!(
        r,
        PgsqlRequest::Startup
            | PgsqlRequest::Password
            | PgsqlRequest::SaslInitial
            | PgsqlRequest::SaslResponse
            | PgsqlRequest::GssResponse
    )
}

fn is_crypt(r: PgsqlRequest) -> bool {
    matches!(r, PgsqlRequest::SslRequest | PgsqlRequest::GssEncRequest)
}
