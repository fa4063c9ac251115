//! AMQP 0-9-1 state: framing per direction (the protocol header, then
//! frames), synchronous methods awaiting their `-ok` (per channel, from the
//! other side), content (header and body frames) of publish/deliver/
//! get-ok/return, heartbeats, resync after a gap.
//!
//! Body frames are never buffered: their payload is counted and skipped.
//! Method and header frames longer than `max_frame_bytes` are read up to it
//! and the rest skipped (marked truncated).

use super::event::AmqpEvent;
use super::wire::{self, Args};
use super::AmqpConfig;
use crate::app::util::bounded_string;
use crate::app::{AppEvent, AppStats, Ctx, Direction, ParseStatus};

/// A synchronous method awaiting its answer.
struct Pending {
    ev: AmqpEvent,
    /// Direction index of the requester.
    dir: usize,
    class: u16,
    answer: u16,
}

/// A method whose content is still arriving.
struct Content {
    ev: AmqpEvent,
    dir: usize,
    channel: u16,
    /// Body bytes still to come (None: the header has not come).
    left: Option<u64>,
    /// The content belongs to an answer (basic.get-ok): bytes count as response.
    response: bool,
}

pub(crate) struct AmqpState {
    cfg: AmqpConfig,
    pending: Vec<Pending>,
    content: Vec<Content>,
    next_tx: u64,
    /// The client's protocol header, until connection.start takes it.
    protocol: Option<String>,
    /// Per direction: bytes of the current frame still to skip, and the
    /// content they belong to (channel) when they are body bytes.
    skip: [u64; 2],
    skip_body: [Option<u16>; 2],
    resync: [bool; 2],
    gap_flush: bool,
    heartbeats: u64,
    pub(crate) stats: AppStats,
}

fn text(b: &[u8], max: usize, cut: &mut bool) -> String {
    *cut |= b.len() > max;
    bounded_string(b, max)
}

impl AmqpState {
    pub(crate) fn new(mut cfg: AmqpConfig) -> AmqpState {
        cfg.max_pending = cfg.max_pending.max(1);
        cfg.max_frame_bytes = cfg.max_frame_bytes.max(64);
        AmqpState {
            cfg,
            pending: Vec::new(),
            content: Vec::new(),
            next_tx: 0,
            protocol: None,
            skip: [0, 0],
            skip_body: [None, None],
            resync: [false, false],
            gap_flush: false,
            heartbeats: 0,
            stats: AppStats::default(),
        }
    }

    pub(crate) fn peek(&self, f: &mut dyn FnMut(&AmqpEvent)) {
        for p in &self.pending {
            f(&p.ev);
        }
        for c in &self.content {
            f(&c.ev);
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
            self.flush_all(true, emit);
        }
        let i = dir.index();
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or(&[]);
            if rest.is_empty() {
                return ParseStatus::Consumed(pos);
            }
            if self.skip[i] > 0 {
                let n = self.skip[i].min(rest.len() as u64);
                self.skip[i] -= n;
                pos += n as usize;
                if let Some(ch) = self.skip_body[i] {
                    // The frame-end octet is not body.
                    let body = if self.skip[i] == 0 { n - 1 } else { n };
                    self.body(i, ch, body, ctx, emit);
                    if self.skip[i] == 0 {
                        self.skip_body[i] = None;
                    }
                }
                continue;
            }
            if self.resync[i] {
                let found =
                    (0..rest.len()).find(|&k| self.plausible(rest.get(k..).unwrap_or(&[]), k == 0));
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
            if rest.first() == Some(&b'A') {
                // The protocol header (client first; a server that wants
                // another version answers with its own, then closes).
                if rest.len() < 8 {
                    if wire::PROTOCOL_HEADER.starts_with(rest) {
                        return ParseStatus::Incomplete {
                            consumed: pos,
                            needed: 8,
                        };
                    }
                } else if rest.starts_with(wire::PROTOCOL_HEADER) {
                    let v = &rest[4..8];
                    if i == 0 {
                        self.protocol = Some(if v[0] == 0 {
                            format!("{}-{}-{}", v[1], v[2], v[3])
                        } else {
                            format!("{}-{}", v[2], v[3])
                        });
                    }
                    pos += 8;
                    continue;
                }
            }
            let Some((t, channel, size)) = wire::frame_head(rest) else {
                return ParseStatus::Incomplete {
                    consumed: pos,
                    needed: wire::FRAME_HEAD,
                };
            };
            if !wire::known_frame_type(t) || size > self.cfg.max_frame_size {
                self.lost_framing(i);
                pos += 1;
                continue;
            }
            let total = wire::FRAME_HEAD + size as usize + 1;
            if t == wire::FRAME_BODY {
                // Counted as it comes, never buffered.
                pos += wire::FRAME_HEAD;
                self.skip[i] = u64::from(size) + 1;
                self.skip_body[i] = Some(channel);
                self.stats_bytes(i, channel, wire::FRAME_HEAD as u64 + 1);
                continue;
            }
            let want = total.min(wire::FRAME_HEAD + self.cfg.max_frame_bytes);
            if rest.len() < want {
                return ParseStatus::Incomplete {
                    consumed: pos,
                    needed: want,
                };
            }
            let cut = want < total;
            if !cut && rest.get(total - 1) != Some(&wire::FRAME_END) {
                self.lost_framing(i);
                pos += 1;
                continue;
            }
            let payload = rest
                .get(wire::FRAME_HEAD..want.min(total - 1))
                .unwrap_or(&[]);
            match t {
                wire::FRAME_HEARTBEAT => self.heartbeats += 1,
                wire::FRAME_METHOD => {
                    self.method(i, channel, payload, total as u64, cut, ctx, emit)
                }
                _ => self.header(i, channel, payload, total as u64, ctx, emit),
            }
            pos += want;
            self.skip[i] = (total - want) as u64;
        }
    }

    /// Could a frame start at `b`? With the whole frame there its end octet
    /// must be 0xCE; at a segment's start a plausible head is enough.
    fn plausible(&self, b: &[u8], segment_start: bool) -> bool {
        let Some((t, _, size)) = wire::frame_head(b) else {
            return false;
        };
        if !wire::known_frame_type(t) || size > self.cfg.max_frame_size {
            return false;
        }
        match b.get(wire::FRAME_HEAD + size as usize) {
            Some(&end) => end == wire::FRAME_END,
            None => segment_start,
        }
    }

    fn lost_framing(&mut self, i: usize) {
        self.stats.malformed += 1;
        self.resync[i] = true;
        self.skip_body[i] = None;
        self.gap_flush = !self.pending.is_empty() || !self.content.is_empty();
    }

    pub(crate) fn on_gap(&mut self, dir: Direction, _len: u64) {
        self.stats.gaps += 1;
        let i = dir.index();
        self.skip[i] = 0;
        self.skip_body[i] = None;
        self.resync[i] = true;
        self.gap_flush = !self.pending.is_empty() || !self.content.is_empty();
    }

    pub(crate) fn flush(&mut self, _ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        self.flush_all(false, emit);
    }

    fn flush_all(&mut self, gap: bool, emit: &mut dyn FnMut(AppEvent)) {
        for p in std::mem::take(&mut self.pending) {
            self.emit_unanswered(p.ev, gap, emit);
        }
        for c in std::mem::take(&mut self.content) {
            self.emit_unanswered(c.ev, gap, emit);
        }
    }

    fn emit(&mut self, mut ev: AmqpEvent, emit: &mut dyn FnMut(AppEvent)) {
        ev.heartbeats = std::mem::take(&mut self.heartbeats);
        self.stats.events += 1;
        if ev.truncated {
            self.stats.truncated += 1;
        }
        emit(AppEvent::Amqp(Box::new(ev)));
    }

    fn emit_unanswered(&mut self, mut ev: AmqpEvent, gap: bool, emit: &mut dyn FnMut(AppEvent)) {
        ev.unanswered = true;
        ev.gap |= gap;
        self.stats.unanswered += 1;
        self.emit(ev, emit);
    }

    fn stats_bytes(&mut self, i: usize, channel: u16, n: u64) {
        if let Some(c) = self
            .content
            .iter_mut()
            .find(|c| c.dir == i && c.channel == channel)
        {
            if c.response {
                c.ev.response_bytes += n;
            } else {
                c.ev.request_bytes += n;
            }
        }
    }

    fn body(&mut self, i: usize, channel: u16, n: u64, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let Some(k) = self
            .content
            .iter()
            .position(|c| c.dir == i && c.channel == channel)
        else {
            return;
        };
        let c = &mut self.content[k];
        c.ev.body_bytes += n;
        if c.response {
            c.ev.response_bytes += n;
        } else {
            c.ev.request_bytes += n;
        }
        if let Some(left) = &mut c.left {
            *left = left.saturating_sub(n);
            if *left == 0 && self.skip[i] == 0 {
                let c = self.content.remove(k);
                self.finish_content(c, ctx, emit);
            }
        }
    }

    fn finish_content(&mut self, c: Content, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let mut ev = c.ev;
        if c.response {
            ev.response_ts_ns = Some(ctx.ts_ns);
            ev.latency_ns = ev.request_ts_ns.map(|r| ctx.ts_ns.saturating_sub(r));
        }
        self.emit(ev, emit);
    }

    fn header(
        &mut self,
        i: usize,
        channel: u16,
        payload: &[u8],
        bytes: u64,
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        let Some(k) = self
            .content
            .iter()
            .position(|c| c.dir == i && c.channel == channel && c.left.is_none())
        else {
            // Content of a method not seen (the flow was picked up mid-way).
            return;
        };
        let max = self.cfg.max_name_bytes;
        let c = &mut self.content[k];
        if c.response {
            c.ev.response_bytes += bytes;
        } else {
            c.ev.request_bytes += bytes;
        }
        match wire::content_header(payload) {
            Some(h) => {
                c.ev.body_size = Some(h.body_size);
                let mut cut = false;
                c.ev.content_type = h.content_type.map(|t| text(&t, max, &mut cut));
                c.ev.truncated |= cut;
                c.ev.delivery_mode = h.delivery_mode;
                c.left = Some(h.body_size);
                if h.body_size == 0 {
                    let c = self.content.remove(k);
                    self.finish_content(c, ctx, emit);
                }
            }
            None => {
                self.stats.malformed += 1;
                let c = self.content.remove(k);
                self.finish_content(c, ctx, emit);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn method(
        &mut self,
        i: usize,
        channel: u16,
        payload: &[u8],
        bytes: u64,
        cut: bool,
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        let mut a = Args::new(payload);
        let (Some(class), Some(method)) = (a.u16(), a.u16()) else {
            self.stats.malformed += 1;
            return;
        };
        let Some(name) = wire::method_name(class, method) else {
            self.stats.malformed += 1;
            return;
        };
        let from_server = i == 1;
        // An answer to a pending synchronous method of the other side?
        let answer = self.pending.iter().position(|p| {
            p.ev.channel == channel
                && p.dir != i
                && p.class == class
                && (p.answer == method || (class == 60 && p.answer == 71 && method == 72))
        });
        if let Some(k) = answer {
            let p = self.pending.remove(k);
            let mut ev = p.ev;
            ev.response = Some(name);
            ev.response_bytes += bytes;
            ev.truncated |= cut;
            self.args(&mut ev, class, method, &mut a);
            if wire::has_content(class, method) {
                self.await_content(ev, i, channel, true, emit);
                return;
            }
            ev.response_ts_ns = Some(ctx.ts_ns);
            ev.latency_ns = ev.request_ts_ns.map(|r| ctx.ts_ns.saturating_sub(r));
            self.emit(ev, emit);
            return;
        }
        self.next_tx += 1;
        let mut ev = AmqpEvent {
            tx_id: self.next_tx,
            channel,
            from_server,
            request_ts_ns: Some(ctx.ts_ns),
            request_bytes: bytes,
            truncated: cut,
            ..AmqpEvent::default()
        };
        let request = wire::response_of(class, method);
        let is_answer = request.is_none()
            && method % 10 != 0
            && !wire::has_content(class, method)
            && !matches!((class, method), (60, 80 | 90 | 100 | 120) | (10, 60 | 61));
        if is_answer {
            // An -ok whose request was not seen.
            self.stats.orphan_responses += 1;
            ev.response = Some(name);
            ev.request_ts_ns = None;
            ev.request_bytes = 0;
            ev.response_bytes = bytes;
            ev.response_ts_ns = Some(ctx.ts_ns);
        } else {
            ev.method = Some(name);
        }
        if class == 10 && method == 10 {
            ev.protocol = self.protocol.take();
        }
        self.args(&mut ev, class, method, &mut a);
        if matches!((class, method), (10, 50) | (20, 40)) {
            // A close answers what the other side was waiting for on the
            // channel (on every channel, for the connection): the failed
            // method gets the close's code and text.
            let whole = class == 10;
            let mut k = 0;
            while k < self.pending.len() {
                let p = &self.pending[k];
                if p.dir != i && (whole || p.ev.channel == channel) {
                    let mut failed = self.pending.remove(k).ev;
                    failed.response = Some(name);
                    failed.reply_code = ev.reply_code;
                    failed.reply_text.clone_from(&ev.reply_text);
                    failed.response_ts_ns = Some(ctx.ts_ns);
                    failed.latency_ns = failed.request_ts_ns.map(|r| ctx.ts_ns.saturating_sub(r));
                    self.emit(failed, emit);
                } else {
                    k += 1;
                }
            }
        }
        if let Some(answer) = request {
            if self.pending.len() >= self.cfg.max_pending {
                self.stats.pending_overflow += 1;
                let old = self.pending.remove(0);
                self.emit_unanswered(old.ev, false, emit);
            }
            self.pending.push(Pending {
                ev,
                dir: i,
                class,
                answer,
            });
        } else if wire::has_content(class, method) {
            self.await_content(ev, i, channel, false, emit);
        } else {
            self.emit(ev, emit);
        }
    }

    fn await_content(
        &mut self,
        ev: AmqpEvent,
        i: usize,
        channel: u16,
        response: bool,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        // A channel has one content at a time per direction: an older one
        // that never completed is over.
        if let Some(k) = self
            .content
            .iter()
            .position(|c| c.dir == i && c.channel == channel)
        {
            let old = self.content.remove(k);
            self.emit_unanswered(old.ev, false, emit);
        }
        if self.content.len() >= self.cfg.max_pending {
            self.stats.pending_overflow += 1;
            let old = self.content.remove(0);
            self.emit_unanswered(old.ev, false, emit);
        }
        self.content.push(Content {
            ev,
            dir: i,
            channel,
            left: None,
            response,
        });
    }

    /// The arguments an event keeps, by method.
    fn args(&self, ev: &mut AmqpEvent, class: u16, method: u16, a: &mut Args<'_>) {
        let max = self.cfg.max_name_bytes;
        let mut cut = false;
        let s = |b: Option<&[u8]>, cut: &mut bool| b.map(|b| text(b, max, cut));
        match (class, method) {
            (10, 10) => {
                let _ = (a.u8(), a.u8());
                if let Some(t) = a.table() {
                    wire::table_strings(t, &["product", "version", "platform"], &mut |k, v| {
                        let v = Some(text(v, max, &mut cut));
                        match k {
                            "product" => ev.server_product = v,
                            "version" => ev.server_version = v,
                            _ => ev.server_platform = v,
                        }
                    });
                }
            }
            (10, 11) => {
                let _ = a.table();
                ev.mechanism = s(a.shortstr(), &mut cut);
                // The response holds the password: only the user is read.
                if let Some(resp) = a.longstr() {
                    match ev.mechanism.as_deref() {
                        Some("PLAIN") => {
                            // authzid NUL authcid NUL password
                            let mut parts = resp.split(|&c| c == 0);
                            let _authz = parts.next();
                            ev.user = parts.next().map(|u| text(u, max, &mut cut));
                        }
                        Some("AMQPLAIN") => {
                            // The table itself, without its length.
                            let mut t = (resp.len() as u32).to_be_bytes().to_vec();
                            t.extend_from_slice(resp);
                            if let Some(inner) = Args::new(&t).table() {
                                wire::table_strings(inner, &["LOGIN"], &mut |_, v| {
                                    ev.user = Some(text(v, max, &mut cut));
                                });
                            }
                        }
                        _ => {}
                    }
                }
            }
            (10, 30) | (10, 31) => {
                ev.channel_max = a.u16();
                ev.frame_max = a.u32();
                ev.heartbeat = a.u16();
            }
            (10, 40) => ev.vhost = s(a.shortstr(), &mut cut),
            (10, 50) | (20, 40) | (60, 50) => {
                ev.reply_code = a.u16();
                ev.reply_text = s(a.shortstr(), &mut cut);
                if class == 60 {
                    ev.exchange = s(a.shortstr(), &mut cut);
                    ev.routing_key = s(a.shortstr(), &mut cut);
                } else if let (Some(c), Some(m)) = (a.u16(), a.u16()) {
                    ev.failed_method = wire::method_name(c, m);
                }
            }
            (40, 10) => {
                let _ = a.u16();
                ev.exchange = s(a.shortstr(), &mut cut);
                ev.exchange_type = s(a.shortstr(), &mut cut);
            }
            (40, 20) => {
                let _ = a.u16();
                ev.exchange = s(a.shortstr(), &mut cut);
            }
            (40, 30) | (40, 40) => {
                // destination, source, routing key: the source is the
                // exchange messages come from.
                let _ = a.u16();
                let _destination = a.shortstr();
                ev.exchange = s(a.shortstr(), &mut cut);
                ev.routing_key = s(a.shortstr(), &mut cut);
            }
            (50, 10) | (50, 30) | (50, 40) => {
                let _ = a.u16();
                ev.queue = s(a.shortstr(), &mut cut);
            }
            (50, 11) => {
                ev.queue = s(a.shortstr(), &mut cut);
                ev.message_count = a.u32();
                ev.consumer_count = a.u32();
            }
            (50, 31) | (50, 41) => ev.message_count = a.u32(),
            (50, 20) | (50, 50) => {
                let _ = a.u16();
                ev.queue = s(a.shortstr(), &mut cut);
                ev.exchange = s(a.shortstr(), &mut cut);
                ev.routing_key = s(a.shortstr(), &mut cut);
            }
            (60, 10) => {
                let _ = a.u32();
                ev.prefetch_count = a.u16();
            }
            (60, 20) => {
                let _ = a.u16();
                ev.queue = s(a.shortstr(), &mut cut);
                ev.consumer_tag = s(a.shortstr(), &mut cut);
            }
            (60, 21) | (60, 30) | (60, 31) => {
                let tag = s(a.shortstr(), &mut cut);
                if tag.as_deref().is_some_and(|t| !t.is_empty()) {
                    ev.consumer_tag = tag;
                }
            }
            (60, 40) => {
                let _ = a.u16();
                ev.exchange = s(a.shortstr(), &mut cut);
                ev.routing_key = s(a.shortstr(), &mut cut);
            }
            (60, 60) => {
                ev.consumer_tag = s(a.shortstr(), &mut cut);
                ev.delivery_tag = a.u64();
                ev.redelivered = a.bit().unwrap_or(false);
                ev.exchange = s(a.shortstr(), &mut cut);
                ev.routing_key = s(a.shortstr(), &mut cut);
            }
            (60, 70) => {
                let _ = a.u16();
                ev.queue = s(a.shortstr(), &mut cut);
            }
            (60, 71) => {
                ev.delivery_tag = a.u64();
                ev.redelivered = a.bit().unwrap_or(false);
                ev.exchange = s(a.shortstr(), &mut cut);
                ev.routing_key = s(a.shortstr(), &mut cut);
                ev.message_count = a.u32();
            }
            (60, 80) => {
                ev.delivery_tag = a.u64();
                ev.multiple = a.bit().unwrap_or(false);
            }
            (60, 90) => {
                ev.delivery_tag = a.u64();
                ev.requeue = a.bit().unwrap_or(false);
            }
            (60, 120) => {
                ev.delivery_tag = a.u64();
                ev.multiple = a.bit().unwrap_or(false);
                ev.requeue = a.bit().unwrap_or(false);
            }
            _ => {}
        }
        ev.truncated |= cut;
    }
}
