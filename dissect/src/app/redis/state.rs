//! Redis transaction state: a RESP reader per direction, the queue of
//! commands awaiting their reply (the server answers in order, so
//! pipelined commands are matched by position), pub/sub (subscribe
//! confirmations are the replies of their command, one per channel;
//! messages are pushes, never matched with a command), `CLIENT REPLY`,
//! MULTI, and resync after a gap.

use super::event::{RedisEvent, RedisKind};
use super::wire::{self, kind, Limits, Message, Read, Reader};
use super::RedisConfig;
use crate::app::util::bounded_string_flag;
use crate::app::{AppEvent, AppStats, Ctx, Direction, ParseStatus};
use std::collections::VecDeque;

/// A command awaiting its reply.
struct Pending {
    ev: RedisEvent,
    /// Subscribe confirmations still expected (0: one ordinary reply).
    confirms: u32,
}

/// `CLIENT REPLY` mode.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReplyMode {
    On,
    Off,
    /// The next command gets no reply.
    Skip,
}

pub(crate) struct RedisState {
    cfg: RedisConfig,
    lim: Limits,
    readers: [Reader; 2],
    pending: VecDeque<Pending>,
    next_tx: u64,
    /// Framing lost in this direction: look for a message start.
    resync: [bool; 2],
    /// A gap happened: pending commands are emitted on the next call.
    gap_flush: bool,
    /// Client bytes were lost: replies may belong to lost commands until
    /// every command seen since is answered.
    client_gap: bool,
    reply_mode: ReplyMode,
    multi: bool,
    /// Subscriptions the server last reported (RESP2: while non-zero, the
    /// connection is in subscribed mode and `message` arrays are pushes).
    subscriptions: u64,
    /// Our own count of channels, patterns and shard channels, from the
    /// confirmations: how many an UNSUBSCRIBE without arguments drops
    /// (the server's count is their sum).
    subs: [u64; 3],
    pub(crate) stats: AppStats,
}

/// Index in `subs` of a confirmation kind, and whether it adds.
fn sub_slot(kind: &str) -> Option<(usize, bool)> {
    Some(match kind {
        "subscribe" => (0, true),
        "unsubscribe" => (0, false),
        "psubscribe" => (1, true),
        "punsubscribe" => (1, false),
        "ssubscribe" => (2, true),
        "sunsubscribe" => (2, false),
        _ => return None,
    })
}

/// Commands whose arguments may carry a secret: none is logged.
fn secret_args(cmd: &str) -> bool {
    matches!(cmd, "AUTH" | "HELLO" | "MIGRATE" | "ACL" | "CONFIG")
}

/// The pub/sub kind a subscribe-family command is confirmed with.
fn confirm_kind(cmd: &str) -> Option<&'static str> {
    Some(match cmd {
        "SUBSCRIBE" => "subscribe",
        "PSUBSCRIBE" => "psubscribe",
        "SSUBSCRIBE" => "ssubscribe",
        "UNSUBSCRIBE" => "unsubscribe",
        "PUNSUBSCRIBE" => "punsubscribe",
        "SUNSUBSCRIBE" => "sunsubscribe",
        _ => return None,
    })
}

fn eq_ignore_case(e: Option<&wire::Elem>, s: &str) -> bool {
    e.is_some_and(|e| e.data.eq_ignore_ascii_case(s.as_bytes()))
}

/// A push's kind (first element), lower case.
fn push_kind(msg: &Message) -> Option<String> {
    let e = msg.elems.first()?;
    if !matches!(e.kind, kind::BULK | kind::SIMPLE | kind::VERBATIM) {
        return None;
    }
    Some(String::from_utf8_lossy(&e.data).to_ascii_lowercase())
}

impl RedisState {
    pub(crate) fn new(mut cfg: RedisConfig) -> RedisState {
        cfg.max_pending = cfg.max_pending.max(1);
        let lim = Limits {
            // Name, key and the arguments that may be logged; a push's kind,
            // pattern, channel and payload.
            max_elems: cfg.max_arguments.saturating_add(2).max(4),
            max_elem_bytes: cfg.max_argument_bytes.max(cfg.max_error_bytes).max(32),
            max_line: cfg.max_line_bytes.max(64),
            max_depth: cfg.max_depth.max(1),
        };
        RedisState {
            cfg,
            lim,
            readers: [Reader::default(), Reader::default()],
            pending: VecDeque::new(),
            next_tx: 0,
            resync: [false, false],
            gap_flush: false,
            client_gap: false,
            reply_mode: ReplyMode::On,
            multi: false,
            subscriptions: 0,
            subs: [0; 3],
            stats: AppStats::default(),
        }
    }

    /// Commands awaiting their reply.
    pub(crate) fn peek(&self, f: &mut dyn FnMut(&RedisEvent)) {
        for p in &self.pending {
            f(&p.ev);
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
            let rest = data.get(pos..).unwrap_or(&[]);
            if rest.is_empty() {
                return ParseStatus::Consumed(pos);
            }
            if self.resync[i] {
                // A message starts at the segment's start or after a CRLF.
                let found = (0..rest.len()).find(|&k| {
                    (k == 0 || (k >= 2 && rest.get(k - 2..k) == Some(b"\r\n")))
                        && wire::plausible_at(rest.get(k..).unwrap_or(&[]), from_client)
                });
                match found {
                    Some(k) => {
                        self.resync[i] = false;
                        self.stats.resyncs += 1;
                        pos += k;
                        continue;
                    }
                    None => return ParseStatus::Consumed(data.len()),
                }
            }
            match self.readers[i].read(rest, &self.lim, from_client) {
                Read::Msg { used, msg } => {
                    pos += used;
                    if from_client {
                        self.command(msg, ctx, emit);
                    } else {
                        self.reply(msg, ctx, emit);
                    }
                }
                Read::Partial { used, needed } => {
                    pos += used;
                    return if needed == 0 {
                        ParseStatus::Consumed(pos)
                    } else {
                        ParseStatus::Incomplete {
                            consumed: pos,
                            needed,
                        }
                    };
                }
                Read::Bad { used } => {
                    // Skip the byte that broke framing; resync looks on from there.
                    pos = (pos + used + 1).min(data.len());
                    self.stats.malformed += 1;
                    self.resync[i] = true;
                    self.gap_flush = !self.pending.is_empty();
                    if from_client {
                        self.client_gap = true;
                    }
                }
            }
        }
    }

    pub(crate) fn on_gap(&mut self, dir: Direction, _len: u64) {
        self.stats.gaps += 1;
        let i = dir.index();
        self.readers[i].reset();
        self.resync[i] = true;
        self.gap_flush = !self.pending.is_empty();
        if dir == Direction::ToServer {
            self.client_gap = true;
            // Whatever was lost may have changed these.
            self.multi = false;
            self.reply_mode = ReplyMode::On;
        }
    }

    pub(crate) fn flush(&mut self, _ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        self.flush_pending(false, emit);
    }

    fn flush_pending(&mut self, gap: bool, emit: &mut dyn FnMut(AppEvent)) {
        while let Some(p) = self.pending.pop_front() {
            self.emit_unanswered(p.ev, gap, emit);
        }
    }

    fn emit(&mut self, ev: RedisEvent, emit: &mut dyn FnMut(AppEvent)) {
        self.stats.events += 1;
        if ev.truncated {
            self.stats.truncated += 1;
        }
        emit(AppEvent::Redis(Box::new(ev)));
    }

    fn emit_unanswered(&mut self, mut ev: RedisEvent, gap: bool, emit: &mut dyn FnMut(AppEvent)) {
        ev.unanswered = true;
        ev.gap |= gap;
        self.stats.unanswered += 1;
        self.emit(ev, emit);
    }

    fn new_event(&mut self, kind: RedisKind) -> RedisEvent {
        self.next_tx += 1;
        RedisEvent {
            tx_id: self.next_tx,
            kind,
            ..RedisEvent::default()
        }
    }

    fn text(&self, e: &wire::Elem, max: usize) -> (String, bool) {
        let (s, cut) = bounded_string_flag(&e.data, max);
        (s, cut || e.cut)
    }

    /// A message from the client: a command.
    fn command(&mut self, msg: Message, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let Some(name) = msg.elems.first() else {
            // An empty inline line (the server ignores it) or an empty array.
            return;
        };
        if !matches!(name.kind, kind::BULK | kind::SIMPLE) {
            self.stats.malformed += 1;
            return;
        }
        let max = self.cfg.max_argument_bytes;
        let (cmd, cut) = self.text(name, 64);
        let cmd = cmd.to_ascii_uppercase();
        let mut ev = self.new_event(RedisKind::Command);
        ev.truncated = cut;
        ev.arg_count = (msg.head.len.max(1) as u64).saturating_sub(1);
        ev.request_ts_ns = Some(ctx.ts_ns);
        ev.request_bytes = msg.bytes;
        ev.in_transaction = self.multi;
        match cmd.as_str() {
            "AUTH" if ev.arg_count == 2 => {
                if let Some(u) = msg.elems.get(1) {
                    let (s, c) = self.text(u, max);
                    ev.user = Some(s);
                    ev.truncated |= c;
                }
            }
            "AUTH" => {}
            "HELLO" => {
                // HELLO [protover [AUTH username password] [SETNAME name]]
                let at = msg
                    .elems
                    .iter()
                    .position(|e| eq_ignore_case(Some(e), "AUTH"));
                if let Some(u) = at.and_then(|k| msg.elems.get(k + 1)) {
                    let (s, c) = self.text(u, max);
                    ev.user = Some(s);
                    ev.truncated |= c;
                }
            }
            _ => {
                if let Some(k) = msg.elems.get(1) {
                    let (s, c) = self.text(k, max);
                    ev.key = Some(s);
                    ev.truncated |= c;
                }
                if self.cfg.log_values && !secret_args(&cmd) {
                    for a in msg.elems.iter().skip(2).take(self.cfg.max_arguments) {
                        let (s, c) = self.text(a, max);
                        ev.args.push(s);
                        ev.truncated |= c;
                    }
                    ev.truncated |= ev.arg_count > 1 + self.cfg.max_arguments as u64;
                }
            }
        }
        let client_reply = if cmd == "CLIENT" && eq_ignore_case(msg.elems.get(1), "REPLY") {
            msg.elems.get(2).map(|m| m.data.to_ascii_uppercase())
        } else {
            None
        };
        match cmd.as_str() {
            "MULTI" => self.multi = true,
            "EXEC" | "DISCARD" | "RESET" => self.multi = false,
            _ => {}
        }
        let confirms = match confirm_kind(&cmd) {
            Some(_) if ev.arg_count > 0 => ev.arg_count.min(u64::from(u32::MAX)) as u32,
            // Without arguments: one confirmation per subscription dropped,
            // one when there was none.
            Some(k) => match sub_slot(k) {
                Some((slot, false)) => self.subs[slot].clamp(1, 1 << 16) as u32,
                _ => 0,
            },
            _ => 0,
        };
        ev.command = Some(cmd);
        // CLIENT REPLY OFF/SKIP are not answered themselves; ON is.
        let silent = match (client_reply.as_deref(), self.reply_mode) {
            (Some(b"OFF"), _) => {
                self.reply_mode = ReplyMode::Off;
                true
            }
            (Some(b"SKIP"), ReplyMode::On) => {
                self.reply_mode = ReplyMode::Skip;
                true
            }
            (Some(b"ON"), _) => {
                self.reply_mode = ReplyMode::On;
                false
            }
            (_, ReplyMode::Skip) => {
                self.reply_mode = ReplyMode::On;
                true
            }
            (_, ReplyMode::Off) => true,
            (_, ReplyMode::On) => false,
        };
        if silent {
            ev.no_reply = true;
            self.emit(ev, emit);
            return;
        }
        if self.pending.len() >= self.cfg.max_pending {
            self.stats.pending_overflow += 1;
            if let Some(old) = self.pending.pop_front() {
                self.emit_unanswered(old.ev, false, emit);
            }
        }
        self.pending.push_back(Pending { ev, confirms });
    }

    /// A message from the server: a reply, a subscribe confirmation or a push.
    fn reply(&mut self, msg: Message, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let t = msg.head.kind;
        if matches!(t, kind::PUSH | kind::ARRAY) && msg.elems.len() >= 2 {
            if let Some(pk) = push_kind(&msg) {
                if let Some(front) = self.pending.front_mut() {
                    let cmd = front.ev.command.as_deref().unwrap_or("");
                    if front.confirms > 0 && confirm_kind(cmd) == Some(pk.as_str()) {
                        self.confirmation(&msg, ctx, emit);
                        return;
                    }
                }
                let pubsub = matches!(pk.as_str(), "message" | "pmessage" | "smessage");
                let confirm_like = confirm_kind(&pk.to_ascii_uppercase()).is_some();
                // RESP2 has no push type: an array is a message only in
                // subscribed mode (an LRANGE reply may start with "message").
                if t == kind::PUSH
                    || (self.subscriptions > 0 && (pubsub || confirm_like) && msg.elems.len() >= 3)
                {
                    self.push(pk, msg, ctx, emit);
                    return;
                }
            } else if t == kind::PUSH {
                self.push(String::new(), msg, ctx, emit);
                return;
            }
        }
        let Some(p) = self.pending.pop_front() else {
            self.stats.orphan_responses += 1;
            let mut ev = self.new_event(RedisKind::Orphan);
            self.fill_reply(&mut ev, &msg, ctx);
            ev.gap |= self.client_gap;
            self.emit(ev, emit);
            return;
        };
        let mut ev = p.ev;
        self.fill_reply(&mut ev, &msg, ctx);
        if ev.command.as_deref() == Some("RESET") {
            self.subscriptions = 0;
            self.subs = [0; 3];
        }
        self.finish(ev, emit);
    }

    fn finish(&mut self, mut ev: RedisEvent, emit: &mut dyn FnMut(AppEvent)) {
        ev.gap |= self.client_gap;
        if self.pending.is_empty() {
            self.client_gap = false;
        }
        self.emit(ev, emit);
    }

    /// One confirmation of the front (un)subscribe command.
    fn confirmation(&mut self, msg: &Message, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        self.count_sub(msg);
        let count = msg
            .elems
            .get(2)
            .filter(|e| e.kind == kind::INTEGER)
            .and_then(|e| wire::parse_int(&e.data))
            .map(|n| n.max(0) as u64);
        if let Some(n) = count {
            self.subscriptions = n;
        }
        let Some(front) = self.pending.front_mut() else {
            return;
        };
        front.confirms -= 1;
        let ev = &mut front.ev;
        ev.confirmations += 1;
        ev.subscriptions = count.or(ev.subscriptions);
        ev.response_bytes += msg.bytes;
        ev.reply_kind = Some(msg.head.kind);
        ev.reply_len = msg.head.len;
        ev.response_ts_ns = Some(ctx.ts_ns);
        ev.latency_ns = ev.request_ts_ns.map(|r| ctx.ts_ns.saturating_sub(r));
        // An UNSUBSCRIBE without arguments ends when nothing is left.
        let done = front.confirms == 0 || (front.ev.arg_count == 0 && count == Some(0));
        if done {
            if let Some(p) = self.pending.pop_front() {
                self.finish(p.ev, emit);
            }
        }
    }

    /// Our per-kind subscription count, from a confirmation.
    fn count_sub(&mut self, msg: &Message) {
        let kind = push_kind(msg).unwrap_or_default();
        if let Some((slot, add)) = sub_slot(&kind) {
            let n = &mut self.subs[slot];
            *n = if add {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            };
        }
    }

    fn push(&mut self, pk: String, msg: Message, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        self.count_sub(&msg);
        let max = self.cfg.max_argument_bytes;
        let mut ev = self.new_event(RedisKind::Push);
        let (chan, pat) = match pk.as_str() {
            "pmessage" => (msg.elems.get(2), msg.elems.get(1)),
            _ => (msg.elems.get(1), None),
        };
        if let Some(c) = chan.filter(|e| e.len >= 0) {
            let (s, cut) = self.text(c, max);
            ev.channel = Some(s);
            ev.truncated |= cut;
        }
        if let Some(p) = pat {
            let (s, cut) = self.text(p, max);
            ev.pattern = Some(s);
            ev.truncated |= cut;
        }
        if matches!(pk.as_str(), "message" | "pmessage" | "smessage") {
            // The payload's size; its content is a value (never logged
            // unless asked for).
            if let Some(last) = msg.elems.last() {
                ev.reply_len = last.len;
                ev.reply_kind = Some(last.kind);
                if self.cfg.log_values && last.kind == kind::BULK && last.len >= 0 {
                    let (s, cut) = self.text(last, max);
                    ev.reply = Some(s);
                    ev.truncated |= cut;
                }
            }
        } else {
            ev.reply_kind = Some(msg.head.kind);
            ev.reply_len = msg.head.len;
            if let Some(n) = msg
                .elems
                .get(2)
                .filter(|e| e.kind == kind::INTEGER)
                .and_then(|e| wire::parse_int(&e.data))
            {
                self.subscriptions = n.max(0) as u64;
                ev.subscriptions = Some(self.subscriptions);
            }
        }
        if !pk.is_empty() {
            ev.push_kind = Some(pk);
        }
        ev.attributes = msg.attributes;
        ev.response_ts_ns = Some(ctx.ts_ns);
        ev.response_bytes = msg.bytes;
        self.emit(ev, emit);
    }

    fn fill_reply(&self, ev: &mut RedisEvent, msg: &Message, ctx: &Ctx) {
        let h = &msg.head;
        ev.reply_kind = Some(h.kind);
        ev.reply_len = h.len;
        ev.attributes += msg.attributes;
        ev.response_bytes += msg.bytes;
        ev.response_ts_ns = Some(ctx.ts_ns);
        ev.latency_ns = ev.request_ts_ns.map(|r| ctx.ts_ns.saturating_sub(r));
        match h.kind {
            kind::ERROR | kind::BLOB_ERROR => {
                let (s, cut) = self.text(h, self.cfg.max_error_bytes);
                ev.error = Some(s);
                ev.truncated |= cut;
            }
            kind::SIMPLE | kind::INTEGER | kind::DOUBLE | kind::BOOLEAN | kind::BIG_NUMBER => {
                let (s, cut) = self.text(h, self.cfg.max_argument_bytes);
                ev.reply = Some(s);
                ev.truncated |= cut;
            }
            kind::BULK | kind::VERBATIM if self.cfg.log_values && h.len >= 0 => {
                let (s, cut) = self.text(h, self.cfg.max_argument_bytes);
                ev.reply = Some(s);
                ev.truncated |= cut;
            }
            _ => {}
        }
    }
}
