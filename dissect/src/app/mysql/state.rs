//! MySQL transaction state: packet framing per direction (16 MiB packets
//! continued in the next one), the connection phase (greeting, handshake
//! response, authentication exchange), commands awaiting their answer (the
//! server answers in order), the answer's shape (OK, ERR, a result set's
//! column definitions, rows and terminator, a prepare's definitions),
//! prepared statements by id, and resync after a gap.
//!
//! Rows are never buffered: a row packet's head and first byte are read
//! (to tell it from the EOF/OK/ERR that ends the set) and the rest skipped.
//! Other packets longer than `max_message_bytes` are read up to that
//! length and the rest skipped (their text is marked truncated).

use super::event::{no_answer, MysqlCommand, MysqlError, MysqlEvent};
use super::wire::{self, *};
use super::MysqlConfig;
use crate::app::{AppEvent, AppStats, Ctx, Direction, ParseStatus};
use std::collections::VecDeque;

/// MySQL 8's query attributes: COM_QUERY carries a parameter count first.
const CLIENT_QUERY_ATTRIBUTES: u32 = 0x0800_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server greeting.
    Greeting,
    /// Greeting seen; waiting for the client's handshake response.
    Response,
    /// Authentication exchange until OK or ERR.
    Auth,
    Command,
}

/// Where the answer to a pending command is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resp {
    /// Waiting for its first packet.
    First,
    /// Column definitions still to come.
    Columns(u64),
    /// Definitions done: an EOF (before `CLIENT_DEPRECATE_EOF`), rows or
    /// the terminator come next.
    ColumnsEnd,
    /// Rows, until EOF/OK (or ERR).
    Rows,
    /// A prepare's OK came: parameter and column definitions (and their
    /// EOFs) still to come.
    PrepareDefs(u32),
    /// COM_FIELD_LIST: definitions until EOF.
    FieldList,
    /// LOCAL INFILE: the client sends the file, then the server answers.
    Infile,
    /// COM_CHANGE_USER: an authentication exchange until OK or ERR.
    ChangeUser,
}

struct Pending {
    ev: MysqlEvent,
    cmd: u8,
    resp: Resp,
}

pub(crate) struct MysqlState {
    cfg: MysqlConfig,
    phase: Phase,
    /// The login under way (greeting to OK/ERR).
    login: Option<MysqlEvent>,
    pending: VecDeque<Pending>,
    next_tx: u64,
    /// Client and server capabilities (all set until known).
    client_caps: u32,
    server_caps: u32,
    /// Prepared statements (id, text, cut), oldest first, bounded by `max_prepared`.
    prepared: VecDeque<(u32, String, bool)>,
    /// Per direction: payload bytes still to skip; the next packet continues
    /// a 16 MiB one; framing lost after a gap.
    skip: [u64; 2],
    cont: [bool; 2],
    resync: [bool; 2],
    /// A gap happened: pending commands are emitted on the next call.
    gap_flush: bool,
    /// TLS (or a binlog stream) follows: nothing more to parse.
    done: bool,
    user: Option<String>,
    schema: Option<String>,
    pub(crate) stats: AppStats,
}

impl MysqlState {
    pub(crate) fn new(mut cfg: MysqlConfig) -> MysqlState {
        cfg.max_pending = cfg.max_pending.max(1);
        cfg.max_message_bytes = cfg.max_message_bytes.max(64);
        MysqlState {
            cfg,
            phase: Phase::Greeting,
            login: None,
            pending: VecDeque::new(),
            next_tx: 0,
            client_caps: u32::MAX,
            server_caps: u32::MAX,
            prepared: VecDeque::new(),
            skip: [0, 0],
            cont: [false, false],
            resync: [false, false],
            gap_flush: false,
            done: false,
            user: None,
            schema: None,
            stats: AppStats::default(),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// The login under way and the commands awaiting their answer.
    pub(crate) fn peek(&self, f: &mut dyn FnMut(&MysqlEvent)) {
        if let Some(ev) = &self.login {
            f(ev);
        }
        for p in &self.pending {
            f(&p.ev);
        }
    }

    fn caps(&self) -> u32 {
        self.client_caps & self.server_caps
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
                // Encrypted (or a binlog stream) from here on.
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
                // Only a segment that starts on a packet can be trusted.
                if pos == 0 && self.plausible_start(rest, from_client) {
                    self.resync[i] = false;
                    self.stats.resyncs += 1;
                } else {
                    return ParseStatus::Consumed(data.len());
                }
            }
            let Some((len, seq)) = wire::head(rest) else {
                return ParseStatus::Incomplete {
                    consumed: pos,
                    needed: 4,
                };
            };
            let total = 4 + len;
            let continued = self.cont[i];
            self.cont[i] = len == MAX_PAYLOAD;
            if continued {
                // The tail of a 16 MiB payload: counted, never read.
                self.count_bytes(from_client, total);
                pos += 4;
                self.skip[i] = len as u64;
                continue;
            }
            if !from_client && len > 0 && self.streaming_rows() {
                let Some(&first) = rest.get(4) else {
                    return ParseStatus::Incomplete {
                        consumed: pos,
                        needed: 5,
                    };
                };
                if !(first == 0xfe && len < MAX_PAYLOAD) && first != 0xff {
                    self.row(total);
                    pos += 4;
                    self.skip[i] = len as u64;
                    continue;
                }
            }
            let want = total.min(4 + self.cfg.max_message_bytes);
            if rest.len() < want {
                return ParseStatus::Incomplete {
                    consumed: pos,
                    needed: want,
                };
            }
            let payload = rest.get(4..want).unwrap_or(&[]);
            let cut = total > want;
            if from_client {
                self.client(seq, payload, total, cut, ctx, emit);
            } else {
                self.server(payload, len, total, cut, ctx, emit);
            }
            pos += want;
            self.skip[i] = (total - want) as u64;
        }
    }

    /// After a gap: does this segment start with a packet? A command
    /// (sequence 0, a known command byte) from the client; the first
    /// packet of an answer (sequence 1) from the server, once a command
    /// waits for it.
    fn plausible_start(&self, rest: &[u8], from_client: bool) -> bool {
        let Some((len, seq)) = wire::head(rest) else {
            return false;
        };
        if len == 0 || len >= MAX_PAYLOAD {
            return false;
        }
        if from_client {
            seq == 0 && rest.get(4).and_then(|&c| command_name(c)).is_some()
        } else {
            seq == 1 && !self.pending.is_empty()
        }
    }

    /// The front command's answer is in its rows.
    fn streaming_rows(&self) -> bool {
        self.phase == Phase::Command
            && matches!(
                self.pending.front(),
                Some(Pending {
                    resp: Resp::Rows | Resp::ColumnsEnd,
                    ..
                })
            )
    }

    fn row(&mut self, total: usize) {
        if let Some(p) = self.pending.front_mut() {
            p.resp = Resp::Rows;
            p.ev.rows += 1;
            p.ev.result_bytes += total as u64;
            p.ev.response_bytes += total as u64;
        }
    }

    fn count_bytes(&mut self, from_client: bool, total: usize) {
        let ev = match (&mut self.login, self.phase) {
            (Some(ev), Phase::Response | Phase::Auth) => Some(ev),
            _ if from_client => self.pending.back_mut().map(|p| &mut p.ev),
            _ => self.pending.front_mut().map(|p| &mut p.ev),
        };
        if let Some(ev) = ev {
            if from_client {
                ev.request_bytes += total as u64;
            } else {
                ev.response_bytes += total as u64;
            }
        }
    }

    fn new_event(&mut self, command: MysqlCommand, ctx: &Ctx) -> MysqlEvent {
        self.next_tx += 1;
        MysqlEvent {
            tx_id: self.next_tx,
            command,
            user: self.user.clone(),
            schema: self.schema.clone(),
            request_ts_ns: Some(ctx.ts_ns),
            ..MysqlEvent::default()
        }
    }

    fn emit(&mut self, ev: MysqlEvent, emit: &mut dyn FnMut(AppEvent)) {
        self.stats.events += 1;
        if ev.truncated {
            self.stats.truncated += 1;
        }
        emit(AppEvent::Mysql(Box::new(ev)));
    }

    fn emit_unanswered(&mut self, mut ev: MysqlEvent, gap: bool, emit: &mut dyn FnMut(AppEvent)) {
        ev.unanswered = true;
        ev.gap |= gap;
        self.stats.unanswered += 1;
        self.emit(ev, emit);
    }

    fn finish(&mut self, mut ev: MysqlEvent, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        ev.response_ts_ns = Some(ctx.ts_ns);
        ev.latency_ns = ev.request_ts_ns.map(|r| ctx.ts_ns.saturating_sub(r));
        self.emit(ev, emit);
    }

    fn text(&self, b: &[u8], max: usize) -> (String, bool) {
        wire::text(b, max)
    }

    fn client(
        &mut self,
        seq: u8,
        p: &[u8],
        total: usize,
        cut: bool,
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        match self.phase {
            Phase::Greeting | Phase::Response if seq != 0 => {
                self.handshake_response(p, total, ctx, emit)
            }
            Phase::Auth if seq == 0 && p.first().and_then(|&c| command_name(c)).is_some() => {
                // A command: the login ended without an OK/ERR we saw.
                if let Some(ev) = self.login.take() {
                    self.emit_unanswered(ev, false, emit);
                }
                self.phase = Phase::Command;
                self.command(p, total, cut, ctx, emit);
            }
            Phase::Auth => {
                // Scrambles, public-key requests, encrypted passwords:
                // only their size is kept.
                if let Some(ev) = &mut self.login {
                    ev.request_bytes += total as u64;
                }
            }
            _ => {
                // A command: the flow was picked up after its login.
                self.phase = Phase::Command;
                if seq == 0 {
                    self.command(p, total, cut, ctx, emit);
                } else if let Some(front) = self.pending.front_mut() {
                    // LOCAL INFILE data, or COM_CHANGE_USER's auth data.
                    front.ev.request_bytes += total as u64;
                    if front.resp == Resp::Infile && p.is_empty() {
                        // The empty packet ends the file; the server answers.
                        front.resp = Resp::First;
                    }
                }
            }
        }
    }

    fn handshake_response(
        &mut self,
        p: &[u8],
        total: usize,
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        let Some(r) = wire::handshake_response(p) else {
            self.stats.malformed += 1;
            return;
        };
        let max = self.cfg.max_field_bytes;
        let mut ev = match self.login.take() {
            Some(ev) => ev,
            None => {
                let mut ev = self.new_event(MysqlCommand::Login, ctx);
                ev.request_ts_ns = None;
                ev
            }
        };
        ev.request_ts_ns = Some(ctx.ts_ns);
        ev.request_bytes += total as u64;
        ev.client_capabilities = Some(r.capabilities);
        self.client_caps = r.capabilities;
        if r.ssl_request {
            // The TLS handshake starts with the client's next byte.
            ev.tls = true;
            self.done = true;
            self.emit(ev, emit);
            self.flush_pending(false, emit);
            return;
        }
        let mut truncated = false;
        if let Some(u) = r.user {
            let (u, c) = self.text(u, max);
            truncated |= c;
            self.user = Some(u);
        }
        if let Some(s) = r.schema.filter(|s| !s.is_empty()) {
            let (s, c) = self.text(s, max);
            truncated |= c;
            self.schema = Some(s);
        }
        if let Some(a) = r.auth_plugin {
            ev.client_auth_plugin = Some(self.text(a, max).0);
        }
        ev.user = self.user.clone();
        ev.schema = self.schema.clone();
        ev.truncated |= truncated;
        self.login = Some(ev);
        self.phase = Phase::Auth;
    }

    fn command(
        &mut self,
        p: &[u8],
        total: usize,
        cut: bool,
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        let Some((&cmd, arg)) = p.split_first() else {
            self.stats.malformed += 1;
            return;
        };
        if command_name(cmd).is_none() {
            self.stats.malformed += 1;
            return;
        }
        let max_stmt = self.cfg.max_statement_bytes;
        let mut ev = self.new_event(MysqlCommand::Command(cmd), ctx);
        ev.request_bytes = total as u64;
        let mut resp = Resp::First;
        match cmd {
            COM_QUERY | COM_STMT_PREPARE => {
                let mut q = arg;
                if cmd == COM_QUERY && self.caps() & CLIENT_QUERY_ATTRIBUTES != 0 {
                    // Parameter count and parameter set count (always 1):
                    // the text follows when there are no attributes.
                    if let Some((0, o)) = wire::lenenc(arg, 0) {
                        if let Some((_, o)) = wire::lenenc(arg, o) {
                            q = arg.get(o..).unwrap_or(&[]);
                        }
                    }
                }
                let (t, c) = self.text(q, max_stmt);
                ev.statement = Some(if self.cfg.normalize_statements {
                    crate::app::sql::normalize(&t)
                } else {
                    t
                });
                ev.truncated = c || cut;
            }
            COM_INIT_DB | COM_FIELD_LIST => {
                let name = wire::cstr(arg, 0).map(|(n, _)| n).unwrap_or(&[]);
                let (t, c) = self.text(name, self.cfg.max_field_bytes);
                ev.statement = Some(t);
                ev.truncated = c;
            }
            COM_CHANGE_USER => {
                if let Some((u, _)) = wire::cstr(arg, 0) {
                    ev.user = Some(self.text(u, self.cfg.max_field_bytes).0);
                }
                resp = Resp::ChangeUser;
            }
            COM_STMT_EXECUTE
            | COM_STMT_CLOSE
            | COM_STMT_SEND_LONG_DATA
            | COM_STMT_RESET
            | COM_STMT_FETCH => {
                let id = wire::le32(arg, 0);
                ev.statement_id = id;
                if let Some((_, text, c)) = self.prepared.iter().find(|(i, _, _)| Some(*i) == id) {
                    ev.statement = Some(text.clone());
                    ev.truncated = *c;
                }
                if cmd == COM_STMT_CLOSE {
                    self.prepared.retain(|(i, _, _)| Some(*i) != id);
                }
                if cmd == COM_STMT_FETCH {
                    resp = Resp::Rows;
                }
            }
            _ => {}
        }
        if no_answer(cmd) || cmd == COM_BINLOG_DUMP || cmd == COM_BINLOG_DUMP_GTID {
            if cmd != COM_QUIT && cmd != COM_STMT_CLOSE && cmd != COM_STMT_SEND_LONG_DATA {
                // A binlog dump: the server streams replication events from
                // here on, which are not commands and answers.
                self.done = true;
            }
            self.emit(ev, emit);
            return;
        }
        if self.pending.len() >= self.cfg.max_pending {
            self.stats.pending_overflow += 1;
            if let Some(old) = self.pending.pop_front() {
                self.emit_unanswered(old.ev, false, emit);
            }
        }
        self.pending.push_back(Pending { ev, cmd, resp });
    }

    fn server(
        &mut self,
        p: &[u8],
        len: usize,
        total: usize,
        cut: bool,
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        match self.phase {
            Phase::Greeting => {
                self.phase = Phase::Command;
                match p.first() {
                    Some(10) => self.greeting(p, total, ctx),
                    Some(0xff) => {
                        // Refused before the handshake (host blocked, too
                        // many connections): a login that failed.
                        let mut ev = self.new_event(MysqlCommand::Login, ctx);
                        ev.request_ts_ns = None;
                        ev.response_bytes = total as u64;
                        ev.error = self.err(p, &mut ev.truncated);
                        self.finish(ev, ctx, emit);
                    }
                    // Picked up mid-flow: an answer.
                    _ => self.answer(p, len, total, cut, ctx, emit),
                }
            }
            Phase::Response | Phase::Auth => {
                let Some(mut ev) = self.login.take() else {
                    self.phase = Phase::Command;
                    return self.answer(p, len, total, cut, ctx, emit);
                };
                ev.response_bytes += total as u64;
                let first = p.first().copied();
                match first {
                    Some(0x00) | Some(0xff) if self.phase == Phase::Auth => {
                        if first == Some(0xff) {
                            ev.error = self.err(p, &mut ev.truncated);
                        } else if self.caps() & CLIENT_COMPRESS != 0 {
                            // Packets are compressed from the next one on:
                            // not parsed (said in the login event).
                            ev.compressed = true;
                            self.done = true;
                        }
                        self.phase = Phase::Command;
                        return self.finish(ev, ctx, emit);
                    }
                    Some(0xff) => {
                        // An error before the client answered.
                        ev.error = self.err(p, &mut ev.truncated);
                        self.phase = Phase::Command;
                        return self.finish(ev, ctx, emit);
                    }
                    Some(0xfe) => {
                        let name = wire::cstr(p, 1).map(|(n, _)| n).unwrap_or(&[]);
                        ev.auth_switch_plugin = Some(if name.is_empty() {
                            // The pre-4.1 switch: to the old password hash.
                            "mysql_old_password".to_string()
                        } else {
                            self.text(name, self.cfg.max_field_bytes).0
                        });
                    }
                    Some(0x01) => match p.get(1) {
                        // caching_sha2_password's verdict on the scramble.
                        Some(3) if len == 2 => ev.fast_auth = Some(true),
                        Some(4) if len == 2 => ev.fast_auth = Some(false),
                        // The server's RSA public key (not a secret) or more data.
                        _ => {}
                    },
                    _ => {}
                }
                self.login = Some(ev);
            }
            Phase::Command => self.answer(p, len, total, cut, ctx, emit),
        }
    }

    fn greeting(&mut self, p: &[u8], total: usize, ctx: &Ctx) {
        let Some(g) = wire::greeting(p) else {
            self.stats.malformed += 1;
            return;
        };
        let max = self.cfg.max_field_bytes;
        let mut ev = self.new_event(MysqlCommand::Login, ctx);
        // The request is the client's handshake response.
        ev.request_ts_ns = None;
        ev.response_bytes = total as u64;
        ev.server_version = Some(self.text(g.version, max).0);
        ev.connection_id = Some(g.connection_id);
        ev.server_capabilities = Some(g.capabilities);
        ev.auth_plugin = g.auth_plugin.map(|a| self.text(a, max).0);
        self.server_caps = g.capabilities;
        self.login = Some(ev);
        self.phase = Phase::Response;
    }

    fn err(&mut self, p: &[u8], truncated: &mut bool) -> Option<MysqlError> {
        let Some(e) = wire::err_packet(p) else {
            self.stats.malformed += 1;
            return None;
        };
        let (message, c) = self.text(e.message, self.cfg.max_field_bytes);
        *truncated |= c;
        Some(MysqlError {
            code: e.code,
            sql_state: e.sql_state.map(|s| String::from_utf8_lossy(s).into_owned()),
            message,
        })
    }

    /// An OK's fields into `ev`; its status flags.
    fn ok(&mut self, p: &[u8], ev_i: usize) -> u16 {
        let max = self.cfg.max_field_bytes;
        let Some((ok, info)) = wire::ok_packet(p, self.caps() & CLIENT_SESSION_TRACK != 0) else {
            self.stats.malformed += 1;
            return 0;
        };
        let info = self.text(info, max);
        let Some(pe) = self.pending.get_mut(ev_i) else {
            return ok.status;
        };
        let ev = &mut pe.ev;
        // Several OKs (multi-statement): summed; the wire value is any u64.
        ev.affected_rows = Some(
            ev.affected_rows
                .unwrap_or(0)
                .saturating_add(ok.affected_rows),
        );
        ev.last_insert_id = Some(ok.last_insert_id)
            .filter(|&i| i != 0)
            .or(ev.last_insert_id);
        ev.warnings = Some(ok.warnings);
        let text = info.0.trim_matches(char::from(0));
        if !text.is_empty() && text.is_ascii() && !text.starts_with(|c: char| c.is_ascii_control())
        {
            ev.info = Some(text.to_string());
            ev.truncated |= info.1;
        }
        ok.status
    }

    /// A server packet in the command phase.
    fn answer(
        &mut self,
        p: &[u8],
        len: usize,
        total: usize,
        cut: bool,
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        let first = p.first().copied();
        let Some(front) = self.pending.front_mut() else {
            // An answer without its command: only an ERR says something.
            if first == Some(0xff) {
                self.stats.orphan_responses += 1;
                let mut ev = self.new_event(MysqlCommand::None, ctx);
                ev.request_ts_ns = None;
                ev.response_bytes = total as u64;
                ev.error = self.err(p, &mut ev.truncated);
                self.finish(ev, ctx, emit);
            }
            return;
        };
        front.ev.response_bytes += total as u64;
        front.ev.truncated |= cut && first == Some(0xff);
        let cmd = front.cmd;
        let resp = front.resp;
        let deprecate_eof = self.caps() & CLIENT_DEPRECATE_EOF != 0;
        let done = match (resp, first) {
            (_, Some(0xff)) => {
                let mut t = false;
                let e = self.err(p, &mut t);
                if let Some(front) = self.pending.front_mut() {
                    front.ev.truncated |= t;
                    if front.ev.error.is_none() {
                        front.ev.error = e;
                    }
                }
                true
            }
            (Resp::First, Some(0x00)) if cmd == COM_STMT_PREPARE && len >= 12 => {
                let (id, cols, params, warnings) = wire::prepare_ok(p).unwrap_or_default();
                let eofs = u32::from(!deprecate_eof);
                let defs = u32::from(params)
                    + u32::from(cols)
                    + if params > 0 { eofs } else { 0 }
                    + if cols > 0 { eofs } else { 0 };
                if let Some(front) = self.pending.front_mut() {
                    let ev = &mut front.ev;
                    ev.statement_id = Some(id);
                    ev.columns = Some(u64::from(cols));
                    ev.params = Some(params);
                    ev.warnings = Some(warnings);
                    if defs > 0 {
                        front.resp = Resp::PrepareDefs(defs);
                    }
                    let text = ev.statement.clone().unwrap_or_default();
                    let c = ev.truncated;
                    self.remember(id, text, c);
                }
                defs == 0
            }
            (Resp::First | Resp::Infile | Resp::ChangeUser, Some(0x00)) => {
                let status = self.ok(p, 0);
                // Several statements in one COM_QUERY: more answers follow.
                status & SERVER_MORE_RESULTS_EXISTS == 0
            }
            (Resp::ChangeUser, Some(0xfe)) => {
                let name = wire::cstr(p, 1).map(|(n, _)| n).unwrap_or(&[]);
                let name = self.text(name, self.cfg.max_field_bytes).0;
                if let Some(front) = self.pending.front_mut() {
                    front.ev.auth_switch_plugin = Some(name);
                }
                false
            }
            (Resp::ChangeUser, _) => false,
            (Resp::First, Some(0xfb)) if cmd == COM_QUERY => {
                let name = self.text(p.get(1..).unwrap_or(&[]), self.cfg.max_field_bytes);
                if let Some(front) = self.pending.front_mut() {
                    front.ev.local_infile = Some(name.0);
                    front.resp = Resp::Infile;
                }
                false
            }
            (Resp::First, Some(0xfe)) if cmd == COM_FIELD_LIST => true,
            (Resp::First, Some(_)) if cmd == COM_QUERY || cmd == COM_STMT_EXECUTE => {
                match wire::lenenc(p, 0) {
                    Some((n, _)) if n > 0 => {
                        if let Some(front) = self.pending.front_mut() {
                            front.ev.columns.get_or_insert(n);
                            front.ev.result_sets = front.ev.result_sets.saturating_add(1);
                            front.resp = Resp::Columns(n);
                        }
                        false
                    }
                    _ => {
                        self.stats.malformed += 1;
                        true
                    }
                }
            }
            (Resp::First, Some(_)) if cmd == COM_FIELD_LIST => {
                if let Some(front) = self.pending.front_mut() {
                    front.ev.columns = Some(1);
                    front.resp = Resp::FieldList;
                }
                false
            }
            // COM_STATISTICS's text, COM_DEBUG's EOF, COM_SET_OPTION's
            // EOF: one packet answers.
            (Resp::First, _) => true,
            (Resp::Columns(n), _) => {
                if let Some(front) = self.pending.front_mut() {
                    front.resp = if n > 1 {
                        Resp::Columns(n - 1)
                    } else {
                        Resp::ColumnsEnd
                    };
                }
                false
            }
            // The EOF after the definitions (a terminator OK is longer).
            (Resp::ColumnsEnd, Some(0xfe)) if len == 5 => {
                let (_, status) = wire::eof_packet(p);
                // An execute that opened a cursor ends here: its rows come
                // with COM_STMT_FETCH.
                let cursor = cmd == COM_STMT_EXECUTE && status & SERVER_STATUS_CURSOR_EXISTS != 0;
                if let Some(front) = self.pending.front_mut() {
                    front.resp = Resp::Rows;
                }
                cursor
            }
            (Resp::ColumnsEnd | Resp::Rows, Some(0xfe)) => {
                let status = if len == 5 {
                    let (warnings, status) = wire::eof_packet(p);
                    if let Some(front) = self.pending.front_mut() {
                        front.ev.warnings = Some(warnings);
                    }
                    status
                } else {
                    let (ok, _) = wire::ok_packet(p, self.caps() & CLIENT_SESSION_TRACK != 0)
                        .unwrap_or_default();
                    if let Some(front) = self.pending.front_mut() {
                        front.ev.warnings = Some(ok.warnings);
                    }
                    ok.status
                };
                if status & SERVER_MORE_RESULTS_EXISTS != 0 {
                    if let Some(front) = self.pending.front_mut() {
                        front.resp = Resp::First;
                    }
                    false
                } else {
                    true
                }
            }
            // A row read whole (it came with the definitions' packets).
            (Resp::ColumnsEnd | Resp::Rows, _) => {
                // The bytes were counted above; count the row.
                if let Some(front) = self.pending.front_mut() {
                    front.resp = Resp::Rows;
                    front.ev.rows += 1;
                    front.ev.result_bytes += total as u64;
                }
                false
            }
            (Resp::PrepareDefs(n), _) => {
                if let Some(front) = self.pending.front_mut() {
                    front.resp = Resp::PrepareDefs(n.saturating_sub(1));
                }
                n <= 1
            }
            (Resp::FieldList, Some(0xfe)) => true,
            (Resp::FieldList, _) => {
                if let Some(front) = self.pending.front_mut() {
                    front.ev.columns = Some(front.ev.columns.unwrap_or(0) + 1);
                }
                false
            }
            (Resp::Infile, _) => false,
        };
        if done {
            self.complete_front(ctx, emit);
        }
    }

    fn remember(&mut self, id: u32, text: String, cut: bool) {
        self.prepared.retain(|(i, _, _)| *i != id);
        if self.prepared.len() >= self.cfg.max_prepared.max(1) {
            // The oldest is forgotten: its later executions show no text.
            self.prepared.pop_front();
            self.stats.truncated += 1;
        }
        self.prepared.push_back((id, text, cut));
    }

    fn complete_front(&mut self, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let Some(p) = self.pending.pop_front() else {
            return;
        };
        if p.ev.error.is_none() {
            match p.cmd {
                // The session's schema and user change only when the server agrees.
                COM_INIT_DB => self.schema = p.ev.statement.clone(),
                COM_CHANGE_USER => self.user = p.ev.user.clone(),
                _ => {}
            }
        }
        self.finish(p.ev, ctx, emit);
    }

    fn flush_pending(&mut self, gap: bool, emit: &mut dyn FnMut(AppEvent)) {
        if let Some(ev) = self.login.take() {
            self.emit_unanswered(ev, gap, emit);
        }
        while let Some(p) = self.pending.pop_front() {
            self.emit_unanswered(p.ev, gap, emit);
        }
    }

    pub(crate) fn on_gap(&mut self, dir: Direction, _len: u64) {
        self.stats.gaps += 1;
        let i = dir.index();
        self.skip[i] = 0;
        self.cont[i] = false;
        self.resync[i] = true;
        if self.phase != Phase::Command {
            // The rest of the login cannot be followed.
            self.phase = Phase::Command;
        }
        // Answers can no longer be matched to commands: the waiting ones go
        // out (marked) on the next call, which can emit. The other
        // direction's framing is unaffected, but its answers belong to
        // commands flushed here: the server restarts at the next answer.
        self.gap_flush = !self.pending.is_empty() || self.login.is_some();
        if dir == Direction::ToServer {
            self.resync[Direction::ToClient.index()] = true;
            self.skip[Direction::ToClient.index()] = 0;
            self.cont[Direction::ToClient.index()] = false;
        }
    }

    pub(crate) fn flush(&mut self, _ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let gap = self.gap_flush;
        self.gap_flush = false;
        self.flush_pending(gap, emit);
    }
}
