//! DNS transaction state: pending queries matched to responses by id and
//! question, TCP length framing, post-gap resync, expiry of old queries.

use super::event::DnsEvent;
use super::wire::{self, Message};
use super::DnsConfig;
use crate::app::util::be16;
use crate::app::{AppEvent, AppStats, Ctx, Direction, ParseStatus};
use std::collections::VecDeque;

/// Queries waiting for their response, oldest first. The oldest sits in a
/// slot of its own: most flows (one query, one answer) never have a second
/// one waiting, and need no queue allocated at all.
#[derive(Default)]
struct Pending {
    /// The oldest; `None` only when `rest` is empty too.
    first: Option<Box<DnsEvent>>,
    rest: VecDeque<Box<DnsEvent>>,
}

impl Pending {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn iter(&self) -> impl Iterator<Item = &Box<DnsEvent>> {
        self.first.iter().chain(self.rest.iter())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Box<DnsEvent>> {
        self.first.iter_mut().chain(self.rest.iter_mut())
    }

    fn get(&self, i: usize) -> Option<&DnsEvent> {
        match i {
            0 => self.first.as_deref(),
            _ => self.rest.get(i - 1).map(|b| &**b),
        }
    }

    fn push_back(&mut self, ev: Box<DnsEvent>) {
        if self.first.is_none() {
            self.first = Some(ev);
        } else {
            self.rest.push_back(ev);
        }
    }

    fn pop_front(&mut self) -> Option<Box<DnsEvent>> {
        let ev = self.first.take();
        self.first = self.rest.pop_front();
        ev
    }

    fn remove(&mut self, i: usize) -> Option<Box<DnsEvent>> {
        match i {
            0 => self.pop_front(),
            _ => self.rest.remove(i - 1),
        }
    }
}

pub(crate) struct DnsState {
    cfg: DnsConfig,
    tcp: bool,
    /// Queries waiting for their response, oldest first. Boxed: a flow
    /// keeps its queue's slots after the answers came (a 360-byte event
    /// inline costs every live DNS flow four of them), and the box moves
    /// into the emitted event as it is.
    pending: Pending,
    /// Per direction (TCP): framing lost after a gap.
    resync: [bool; 2],
    pub(crate) stats: AppStats,
}

impl DnsState {
    /// Queries awaiting their answer.
    pub(crate) fn peek(&self, f: &mut dyn FnMut(&DnsEvent)) {
        for ev in self.pending.iter() {
            f(ev);
        }
    }

    pub(crate) fn new(mut cfg: DnsConfig, tcp: bool) -> DnsState {
        cfg.max_pending = cfg.max_pending.max(1);
        DnsState {
            cfg,
            tcp,
            pending: Pending::default(),
            resync: [false, false],
            stats: AppStats::default(),
        }
    }

    pub(crate) fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) -> ParseStatus {
        self.expire(ctx, emit);
        if !self.tcp {
            self.message(data, ctx, emit);
            return ParseStatus::Consumed(data.len());
        }
        let i = dir.index();
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or(&[]);
            if rest.is_empty() {
                return ParseStatus::Consumed(pos);
            }
            let Some(len) = be16(rest, 0).map(usize::from) else {
                return ParseStatus::Incomplete {
                    consumed: pos,
                    needed: 2,
                };
            };
            if self.resync.get(i).copied().unwrap_or(false) {
                // After a gap: accept the data only if it starts a plausible
                // message; otherwise drop it and wait for the next segment.
                if rest.len() < 2 + wire::HEADER_LEN {
                    return ParseStatus::Incomplete {
                        consumed: pos,
                        needed: 2 + wire::HEADER_LEN,
                    };
                }
                let plausible = len >= wire::HEADER_LEN
                    && wire::parse_header(rest.get(2..).unwrap_or(&[]))
                        .map(|h| wire::plausible_header(&h, len))
                        .unwrap_or(false);
                if !plausible {
                    return ParseStatus::Consumed(data.len());
                }
                if rest.len() < 2 + len {
                    return ParseStatus::Incomplete {
                        consumed: pos,
                        needed: 2 + len,
                    };
                }
                let msg = rest.get(2..2 + len).unwrap_or(&[]);
                if wire::parse_message(msg, self.cfg.max_records).is_err() {
                    return ParseStatus::Consumed(data.len());
                }
                if let Some(r) = self.resync.get_mut(i) {
                    *r = false;
                }
                self.stats.resyncs += 1;
            }
            if rest.len() < 2 + len {
                return ParseStatus::Incomplete {
                    consumed: pos,
                    needed: 2 + len,
                };
            }
            let msg = rest.get(2..2 + len).unwrap_or(&[]);
            self.message(msg, ctx, emit);
            pos += 2 + len;
        }
    }

    fn message(&mut self, msg: &[u8], ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        // A response is matched to its pending query as soon as its first
        // question is read; when it has one, the response's own copy of the
        // questions is not kept (the event has the query's).
        let pending = &self.pending;
        let mut query_at: Option<usize> = None;
        let parsed = wire::parse_message_with(msg, self.cfg.max_records, |h, first_q| {
            if !h.qr() {
                return true;
            }
            query_at = pending.iter().position(|p| {
                p.id == h.id
                    && match (first_q, p.queries.first()) {
                        (Some((name, rtype)), Some(b)) => {
                            rtype == b.rtype && name.eq_ignore_ascii_case(&b.name)
                        }
                        _ => true,
                    }
            });
            query_at.is_none()
        });
        let m = match parsed {
            Ok(m) => m,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        // A message with a fault, or with record data that did not decode
        // (the record is kept as `Malformed`), counts once.
        if m.error.is_some() || m.bad_rdata() > 0 || m.edns.as_ref().is_some_and(|e| e.malformed) {
            self.stats.malformed += 1;
        }
        if m.truncated || m.cut_rdata() {
            self.stats.truncated += 1;
        }
        if m.header.qr() {
            self.response(m, query_at, ctx, emit);
        } else {
            self.query(m, ctx, emit);
        }
    }

    fn query(&mut self, m: Message, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let h = m.header;
        if !h.has_content() {
            // Nothing asked (e.g. zero bytes): no transaction, no event.
            self.stats.malformed += 1;
            return;
        }
        if let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.id == h.id && p.queries == m.questions)
        {
            p.retransmits = p.retransmits.saturating_add(1);
            return;
        }
        if self.pending.len() >= self.cfg.max_pending {
            self.stats.pending_overflow += 1;
            if let Some(old) = self.pending.pop_front() {
                self.emit_unanswered(old, false, emit);
            }
        }
        let ev = Box::new(DnsEvent {
            id: h.id,
            opcode: h.opcode(),
            has_query: true,
            queries: m.questions,
            query_flags: Some(h.flags),
            aa: h.aa(),
            tc: h.tc(),
            rd: h.rd(),
            ra: h.ra(),
            ad: h.ad(),
            cd: h.cd(),
            query_ts_ns: Some(ctx.ts_ns),
            query_edns: m.edns,
            ..DnsEvent::default()
        });
        self.pending.push_back(ev);
    }

    /// `query_at`: where the response's query waits in `pending`, if it does.
    fn response(
        &mut self,
        m: Message,
        query_at: Option<usize>,
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        let h = m.header;
        let mut ev = match query_at.and_then(|i| self.pending.remove(i)) {
            Some(ev) => ev,
            None => {
                self.stats.orphan_responses += 1;
                Box::new(DnsEvent {
                    id: h.id,
                    opcode: h.opcode(),
                    queries: m.questions,
                    ..DnsEvent::default()
                })
            }
        };
        ev.has_response = true;
        ev.response_flags = Some(h.flags);
        ev.aa = h.aa();
        ev.tc = h.tc();
        ev.rd = h.rd();
        ev.ra = h.ra();
        ev.ad = h.ad();
        ev.cd = h.cd();
        ev.rcode = Some(h.rcode());
        ev.answers = m.answers;
        ev.authorities = m.authorities;
        ev.response_edns = m.edns;
        ev.truncated = m.truncated;
        ev.malformed = m.error.is_some();
        ev.response_ts_ns = Some(ctx.ts_ns);
        ev.latency_ns = ev.query_ts_ns.map(|q| ctx.ts_ns.saturating_sub(q));
        self.stats.events += 1;
        emit(AppEvent::Dns(ev));
    }

    fn emit_unanswered(
        &mut self,
        mut ev: Box<DnsEvent>,
        timed_out: bool,
        emit: &mut dyn FnMut(AppEvent),
    ) {
        ev.timed_out = timed_out;
        self.stats.unanswered += 1;
        self.stats.events += 1;
        emit(AppEvent::Dns(ev));
    }

    /// Emit queries older than the configured timeout as unanswered.
    pub(crate) fn expire(&mut self, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let t = self.cfg.query_timeout_ns;
        if t > 0 {
            self.expire_older_than(ctx.ts_ns.saturating_sub(t), emit);
        }
    }

    /// Emit queries seen before `cutoff_ns` as unanswered (timed out).
    pub(crate) fn expire_older_than(&mut self, cutoff_ns: u64, emit: &mut dyn FnMut(AppEvent)) {
        let mut i = 0;
        while i < self.pending.len() {
            let old = self
                .pending
                .get(i)
                .and_then(|p| p.query_ts_ns)
                .is_some_and(|ts| ts < cutoff_ns);
            if old {
                if let Some(ev) = self.pending.remove(i) {
                    self.emit_unanswered(ev, true, emit);
                }
            } else {
                i += 1;
            }
        }
    }

    pub(crate) fn on_gap(&mut self, dir: Direction, _len: u64) {
        self.stats.gaps += 1;
        if self.tcp {
            if let Some(r) = self.resync.get_mut(dir.index()) {
                *r = true;
            }
        }
    }

    pub(crate) fn flush(&mut self, _ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        while let Some(ev) = self.pending.pop_front() {
            self.emit_unanswered(ev, false, emit);
        }
    }
}
