//! PCAP export, engine side (issue #6): which flows' packets go to capture
//! files, and when.
//!
//! Each worker owns a [`FlowExport`]: the compiled rules (shared), its
//! handle on the writer thread (`output::pcap`), its pre-trigger [`Pool`]
//! and one small state per candidate flow. The flow table calls it at three
//! points: when a flow starts (flow conditions decide which rules are still
//! possible; a flow no rule can select costs nothing more), for every packet
//! of a candidate (buffer it, or write it when the flow already matched;
//! then check application events and KPIs), and when the flow ends (close
//! its files, release its buffer).
//!
//! On a match the rule's file is opened, the buffered packets written (so
//! the file starts with the handshake), then every later packet of the flow
//! goes straight through until the flow ends or the rule's per-flow limit
//! is hit. Packets of a matching flow that arrived after its buffer filled
//! (`buffer_packets` / `buffer_bytes`) but before the match are missing from
//! the file and counted (`packets_missed`).
//!
//! IP fragments: a reassembled datagram is accounted to its flow when its
//! last fragment arrives; every fragment frame of it (held per worker until
//! then, see [`FragStash`]) is exported, in arrival order, at that moment.
//! Fragments of datagrams that never complete are not exported.
//!
//! Shared rules without any condition (`everything`) receive every frame
//! the worker sees, before decoding, non-IP and undecodable ones included.

pub mod config;
pub mod pool;
pub mod rules;

use std::collections::VecDeque;
use std::sync::Arc;

use dissect::app::{AppProto, Peek};
use dissect::flow::CommunityId;
use output::metrics::{Figure, Kind, Listing};
use output::pcap::{FileId, FlowLabel, PcapHandle};

use crate::defrag::FragKey;
use crate::stream::{Emitted, Session};
use config::ExportSection;
use pool::{Chain, Frame, Pool, Victim};
pub use rules::{ExportRules, FlowFacts, Rule, RuleError};

/// One captured frame as the worker received it.
#[derive(Clone, Copy, Debug)]
pub struct RawFrame<'a> {
    pub ts_ns: u64,
    pub orig_len: u32,
    pub link: u32,
    pub data: &'a [u8],
}

/// The flow has no export state.
pub const NO_EXPORT: u32 = u32::MAX;

/// Per-worker export counters (in the `stats` event under `export`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportCounters {
    /// Flows that some rule could still select when they started.
    pub candidates: u64,
    /// (flow, rule) matches.
    pub matches: u64,
    /// Per-flow files opened.
    pub files_opened: u64,
    /// Flows that matched only as they ended, with nothing buffered any
    /// more (pool eviction, buffer limit): no file.
    pub matches_without_packets: u64,
    /// Per-flow files finished because the rule's limit was hit.
    pub files_limited: u64,
    /// Frames copied into the pre-trigger pool.
    pub packets_buffered: u64,
    /// Flows whose buffer reached `buffer_packets` / `buffer_bytes` undecided.
    pub buffers_full: u64,
    /// Flows whose buffer was dropped because their first transaction (HTTP
    /// request head, ClientHello, DNS query) did not match: a later one
    /// still may, its file then starts at that match.
    pub buffers_dropped_on_miss: u64,
    /// Flows whose buffer was dropped to make room in the pool (oldest first).
    pub pool_evictions: u64,
    pub pool_evicted_packets: u64,
    /// Flows released before they ended because no rule could select them any more.
    pub released_early: u64,
    /// Frames handed to the writer (per-flow and shared files).
    pub packets_exported: u64,
    pub bytes_exported: u64,
    /// Frames of matched flows that came before the match and were not in
    /// the buffer (so are missing from the file).
    pub packets_missed: u64,
    /// Frames of a flow on another link type than its first (not exported).
    pub other_link: u64,
    /// Fragment frames dropped from the fragment stash (full) before their
    /// datagram completed.
    pub fragments_dropped: u64,
    /// Bytes held in the pool at the last update.
    pub pool_bytes_held: u64,
}

impl ExportCounters {
    pub fn merge(&mut self, o: &ExportCounters) {
        self.candidates += o.candidates;
        self.matches += o.matches;
        self.files_opened += o.files_opened;
        self.matches_without_packets += o.matches_without_packets;
        self.files_limited += o.files_limited;
        self.packets_buffered += o.packets_buffered;
        self.buffers_full += o.buffers_full;
        self.buffers_dropped_on_miss += o.buffers_dropped_on_miss;
        self.pool_evictions += o.pool_evictions;
        self.pool_evicted_packets += o.pool_evicted_packets;
        self.released_early += o.released_early;
        self.packets_exported += o.packets_exported;
        self.bytes_exported += o.bytes_exported;
        self.packets_missed += o.packets_missed;
        self.other_link += o.other_link;
        self.fragments_dropped += o.fragments_dropped;
        self.pool_bytes_held += o.pool_bytes_held;
    }
}

/// Where a matched rule sends the flow's packets.
struct Out {
    rule: u8,
    /// None: a shared file.
    file: Option<FileId>,
    packets: u64,
    bytes: u64,
    /// Finished (per-flow limit hit).
    done: bool,
}

struct Slot {
    live: bool,
    /// Records of the pool tagged with another generation are dead.
    buf_gen: u32,
    buffering: bool,
    chain: Chain,
    /// Rules that may still select the flow.
    pending: u64,
    /// Rules whose application conditions an event satisfied.
    app_ok: u64,
    /// Early-decidable rules whose first transaction did not match.
    early_missed: u64,
    /// HTTP transactions below this id were judged already.
    peeked_tx: u64,
    /// Reason of the application match, per rule in `app_ok` (rarely more than one).
    app_reasons: Vec<(u8, String)>,
    packets: u64,
    bytes: u64,
    /// Frames seen while undecided that the buffer did not take.
    unbuffered: u64,
    linktype: u32,
    first_ns: u64,
    flow_id: u64,
    community_id: CommunityId,
    outs: Vec<Out>,
}

impl Slot {
    fn vacant() -> Slot {
        Slot {
            live: false,
            buf_gen: 0,
            buffering: false,
            chain: Chain::EMPTY,
            pending: 0,
            app_ok: 0,
            early_missed: 0,
            peeked_tx: 0,
            app_reasons: Vec::new(),
            packets: 0,
            bytes: 0,
            unbuffered: 0,
            linktype: 0,
            first_ns: 0,
            flow_id: 0,
            community_id: CommunityId::default(),
            outs: Vec::new(),
        }
    }
}

/// What the flow's application layer says so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKnown {
    /// Still detecting.
    Detecting,
    /// This protocol (events may come).
    Proto(AppProto),
    /// None we parse (or no session, or the app layer is off).
    Nothing,
}

/// A new flow, as the table sees it.
pub struct FlowStart<'a> {
    pub facts: FlowFacts<'a>,
    /// The flow's Community ID (computed once, by the flow table).
    pub community_id: CommunityId,
    pub flow_id: u64,
    pub first_ns: u64,
    pub linktype: u32,
}

/// The export side of one worker.
pub struct FlowExport {
    rules: Arc<ExportRules>,
    handle: PcapHandle,
    worker: u16,
    pool: Pool,
    slots: Vec<Slot>,
    free: Vec<u32>,
    counters: ExportCounters,
    /// Rules with KPI conditions (checked on every packet of a candidate).
    kpi_rules: u64,
    /// Rules that need an application event.
    app_rules: u64,
    /// Rules whose application conditions can be judged before the event.
    early_rules: u64,
}

impl FlowExport {
    pub fn new(rules: Arc<ExportRules>, handle: PcapHandle, worker: u16) -> FlowExport {
        let mut kpi_rules = 0;
        let mut app_rules = 0;
        let mut early_rules = 0;
        for (i, r) in rules.rules.iter().enumerate() {
            if r.has_kpis() {
                kpi_rules |= 1u64 << i;
            }
            if r.needs_app {
                app_rules |= 1u64 << i;
            }
            if r.early {
                early_rules |= 1u64 << i;
            }
        }
        let pool_bytes = if rules.flow_rules == 0 {
            0
        } else {
            rules.pool_bytes
        };
        FlowExport {
            pool: Pool::new(pool_bytes),
            rules,
            handle,
            worker,
            slots: Vec::new(),
            free: Vec::new(),
            counters: ExportCounters::default(),
            kpi_rules,
            app_rules,
            early_rules,
        }
    }

    pub fn counters(&self) -> ExportCounters {
        let mut c = self.counters;
        c.pool_bytes_held = self.pool.used() as u64;
        c
    }

    /// Takes over the counters of the export this one replaces (a reload),
    /// so that the worker's totals carry on.
    pub fn carry_counters(&mut self, from: &FlowExport) {
        let held = self.counters.pool_bytes_held;
        self.counters.merge(&from.counters);
        self.counters.pool_bytes_held = held;
    }

    /// Rules that take every frame (a full-capture ring).
    pub fn captures_all(&self) -> bool {
        !self.rules.capture_all.is_empty()
    }

    /// Hands a frame to every capture-all rule.
    pub fn capture_all(&mut self, f: &RawFrame<'_>) {
        for &r in &self.rules.capture_all {
            self.handle
                .shared_packet(r, f.link, f.ts_ns, f.orig_len, f.data);
            self.counters.packets_exported += 1;
            self.counters.bytes_exported += f.data.len() as u64;
        }
    }

    /// Hands what is buffered to the writer thread (end of a batch).
    pub fn flush(&mut self) {
        self.handle.flush();
    }

    /// A flow started: the slot of its state, or [`NO_EXPORT`] when no rule can select it.
    pub fn on_flow_start(&mut self, s: &FlowStart<'_>) -> u32 {
        let mut pending = 0u64;
        let mut mask = self.rules.flow_rules;
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let r = &self.rules.rules[i];
            if r.flow.matches(&s.facts) && (!r.needs_app || matches!(s.facts.proto, 6 | 17)) {
                pending |= 1 << i;
            }
        }
        if pending == 0 {
            return NO_EXPORT;
        }
        self.counters.candidates += 1;
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::vacant());
                (self.slots.len() - 1) as u32
            }
        };
        let st = &mut self.slots[slot as usize];
        let buf_gen = st.buf_gen.wrapping_add(1);
        let mut outs = std::mem::take(&mut st.outs);
        outs.clear();
        let mut reasons = std::mem::take(&mut st.app_reasons);
        reasons.clear();
        *st = Slot {
            live: true,
            buf_gen,
            buffering: self.rules.buffer_packets > 0 && self.rules.buffer_bytes > 0,
            chain: Chain::EMPTY,
            pending,
            app_ok: 0,
            early_missed: 0,
            peeked_tx: 0,
            app_reasons: reasons,
            packets: 0,
            bytes: 0,
            unbuffered: 0,
            linktype: s.linktype,
            first_ns: s.first_ns,
            flow_id: s.flow_id,
            community_id: s.community_id,
            outs,
        };
        slot
    }

    /// One packet (or reassembled datagram: several `frames`) of a candidate
    /// flow, after the table accounted it; `events` are the application
    /// events it produced, `session` the flow's app layer, `payload` whether
    /// the packet carried any. Returns false when the flow needs nothing
    /// more from export (the table then forgets the slot).
    pub fn on_packet(
        &mut self,
        slot: u32,
        frames: &[RawFrame<'_>],
        wire_bytes: u64,
        session: Option<&Session>,
        payload: bool,
        events: &[Emitted],
    ) -> bool {
        let Some(st) = self.slots.get_mut(slot as usize) else {
            return false;
        };
        if !st.live {
            return false;
        }
        st.packets += frames.len().max(1) as u64;
        st.bytes += wire_bytes;
        // Matched rules take the packet straight away.
        if !st.outs.is_empty() {
            for f in frames {
                self.write_to_outs(slot, f);
            }
        }
        let st = &self.slots[slot as usize];
        if st.pending == 0 {
            return self.keep_or_release(slot);
        }
        // Decide first: a flow that this very packet decides (its protocol,
        // its first request) costs no copy into the pool.
        // A packet without payload or events tells rules that wait on the
        // application layer nothing new (most ACKs).
        let waiting_on_app = st.pending & (self.kpi_rules | !self.app_rules) == 0;
        if payload || !events.is_empty() || !waiting_on_app {
            let peek = if payload { session } else { None };
            self.decide(slot, app_known(session), peek, events, frames, false);
        }
        if self.slots[slot as usize].pending != 0 {
            for f in frames {
                self.buffer(slot, f);
            }
        }
        self.keep_or_release(slot)
    }

    /// The flow ended (its last events, from the parsers' finish, in
    /// `events`): a last chance to match, then its files are finished.
    pub fn on_flow_end(&mut self, slot: u32, app: AppKnown, events: &[Emitted]) {
        let Some(st) = self.slots.get(slot as usize) else {
            return;
        };
        if !st.live {
            return;
        }
        if st.pending != 0 && (!events.is_empty() || app != AppKnown::Detecting) {
            self.decide(slot, app, None, events, &[], true);
        }
        self.release(slot);
    }

    fn keep_or_release(&mut self, slot: u32) -> bool {
        let st = &self.slots[slot as usize];
        if st.pending != 0 || st.outs.iter().any(|o| !o.done) {
            return true;
        }
        if st.outs.is_empty() {
            self.counters.released_early += 1;
        }
        self.release(slot);
        false
    }

    /// Finishes the flow's files and frees its state.
    fn release(&mut self, slot: u32) {
        let st = &mut self.slots[slot as usize];
        for o in &mut st.outs {
            if let (Some(file), false) = (o.file, o.done) {
                self.handle.close(file);
            }
            o.done = true;
        }
        st.outs.clear();
        st.live = false;
        st.pending = 0;
        st.buf_gen = st.buf_gen.wrapping_add(1);
        st.chain = Chain::EMPTY;
        self.free.push(slot);
    }

    /// Stops buffering for the flow (its records in the pool become dead).
    fn drop_buffer(&mut self, slot: u32) {
        let st = &mut self.slots[slot as usize];
        st.buf_gen = st.buf_gen.wrapping_add(1);
        st.chain = Chain::EMPTY;
        st.buffering = false;
    }

    /// Copies a frame into the flow's buffer; false when it was not kept.
    fn buffer(&mut self, slot: u32, f: &RawFrame<'_>) -> bool {
        let (buffer_packets, buffer_bytes, snap) = (
            self.rules.buffer_packets,
            self.rules.buffer_bytes,
            self.rules.buffer_snaplen,
        );
        let st = &mut self.slots[slot as usize];
        if !st.buffering {
            st.unbuffered += 1;
            return false;
        }
        let keep = if snap == 0 {
            f.data.len()
        } else {
            f.data.len().min(snap as usize)
        };
        if st.chain.packets >= buffer_packets
            || u64::from(st.chain.bytes) + keep as u64 > u64::from(buffer_bytes)
        {
            st.buffering = false;
            st.unbuffered += 1;
            self.counters.buffers_full += 1;
            return false;
        }
        let mut chain = st.chain;
        let gen = st.buf_gen;
        let frame = Frame {
            ts_ns: f.ts_ns,
            orig_len: f.orig_len,
            link: f.link,
            data: &f.data[..keep],
        };
        let slots = &mut self.slots;
        let counters = &mut self.counters;
        let mut evicted_self = false;
        let ok = self
            .pool
            .push(&mut chain, slot, gen, &frame, &mut |v: Victim, evict| {
                let Some(s) = slots.get_mut(v.owner as usize) else {
                    return false;
                };
                if !(s.live && s.buf_gen == v.gen) {
                    return false;
                }
                if !evict {
                    return true;
                }
                // The oldest candidate loses its buffer (it may still match:
                // its file then starts at the match).
                // (`chain` is only changed once room is found, so a flow's
                // stored chain is its buffer here, this flow's too.)
                evicted_self |= v.owner == slot;
                counters.pool_evicted_packets += u64::from(s.chain.packets);
                s.unbuffered += u64::from(s.chain.packets);
                counters.pool_evictions += 1;
                s.buf_gen = s.buf_gen.wrapping_add(1);
                s.chain = Chain::EMPTY;
                s.buffering = false;
                true
            });
        let st = &mut self.slots[slot as usize];
        if evicted_self {
            // Its own records made room for nothing: stop buffering it.
            st.unbuffered += 1;
            return false;
        }
        if !ok {
            st.buffering = false;
            st.unbuffered += 1;
            return false;
        }
        st.chain = chain;
        self.counters.packets_buffered += 1;
        true
    }

    /// Checks the pending rules against what is known now.
    fn decide(
        &mut self,
        slot: u32,
        app: AppKnown,
        peek: Option<&Session>,
        events: &[Emitted],
        current: &[RawFrame<'_>],
        ending: bool,
    ) {
        // Disjoint borrows of the rules and the slot (no Arc traffic per packet).
        let rules = &*self.rules;
        let st = &mut self.slots[slot as usize];
        // Rules whose application conditions can no longer hold.
        let app_pending = st.pending & self.app_rules & !st.app_ok;
        if app_pending != 0 {
            let proto = match app {
                AppKnown::Detecting => None,
                AppKnown::Proto(p) => Some(Some(p)),
                AppKnown::Nothing => Some(None),
            };
            let mut m = app_pending;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                let r = &rules.rules[i];
                if let Some(p) = proto {
                    if !r.app_possible(p) {
                        st.pending &= !(1 << i);
                        continue;
                    }
                }
                if let Some(reason) = events
                    .iter()
                    .find_map(|e| r.app_matches(Peek::of(&e.event)))
                {
                    st.app_ok |= 1 << i;
                    st.app_reasons.push((i as u8, reason));
                } else if let (true, Some(s)) = (self.early_rules & (1 << i) != 0, peek) {
                    // Judge the transactions under way (request head,
                    // ClientHello, query) rather than wait for their events.
                    let mut seen = false;
                    let mut hit = None;
                    let mut next_tx = st.peeked_tx;
                    s.peek_app(&mut |p| {
                        if let Some(tx) = p.tx_id() {
                            if tx < st.peeked_tx {
                                return;
                            }
                            next_tx = next_tx.max(tx + 1);
                        }
                        seen = true;
                        if hit.is_none() {
                            hit = r.app_matches(p);
                        }
                    });
                    st.peeked_tx = next_tx;
                    if let Some(reason) = hit {
                        st.app_ok |= 1 << i;
                        st.app_reasons.push((i as u8, reason));
                    } else if seen {
                        if r.app
                            .proto()
                            .is_some_and(|p| p.info().one_transaction_per_flow)
                        {
                            // One transaction per flow (a TLS handshake): decided.
                            st.pending &= !(1 << i);
                        } else {
                            st.early_missed |= 1 << i;
                        }
                    }
                } else if r.app.proto().is_none() && !r.app_proto.is_empty() {
                    // `app_proto` alone: the detected protocol is enough.
                    if let AppKnown::Proto(p) = app {
                        if r.app_proto.contains(&p) {
                            st.app_ok |= 1 << i;
                            st.app_reasons
                                .push((i as u8, format!("app_proto={}", p.as_str())));
                        }
                    }
                }
            }
        }
        let mut m = st.pending;
        let mut matched = 0u64;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let bit = 1u64 << i;
            let r = &rules.rules[i];
            if (self.app_rules & bit != 0) && st.app_ok & bit == 0 {
                continue;
            }
            if (self.kpi_rules & bit != 0) && !r.kpis_met(st.packets, st.bytes) {
                continue;
            }
            matched |= bit;
        }
        if matched == 0 {
            if st.pending == 0 {
                self.drop_buffer(slot);
            } else if st.buffering && st.pending & !st.early_missed == 0 {
                // Every rule still pending missed its first chance: keep
                // watching, but stop paying for a buffer.
                self.counters.buffers_dropped_on_miss += 1;
                self.drop_buffer(slot);
            }
            return;
        }
        let mut m = matched;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            self.start_output(slot, i, current, ending);
        }
        let st = &mut self.slots[slot as usize];
        st.pending &= !matched;
        if st.pending == 0 {
            self.drop_buffer(slot);
        }
    }

    /// Rule `rule` selected the flow: open its file, write the buffer, then
    /// `current` (the packet being handled, not buffered). A flow that
    /// matches as it ends with nothing left to write gets no (empty) file.
    fn start_output(&mut self, slot: u32, rule: usize, current: &[RawFrame<'_>], ending: bool) {
        let r = &self.rules.rules[rule];
        let st = &self.slots[slot as usize];
        let reason = st
            .app_reasons
            .iter()
            .find(|(i, _)| *i as usize == rule)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| kpi_or_flow_reason(r, st.packets, st.bytes));
        self.counters.matches += 1;
        self.counters.packets_missed += st.unbuffered;
        if ending && st.chain.is_empty() && current.is_empty() {
            self.counters.matches_without_packets += 1;
            return;
        }
        let file = if r.is_shared() {
            None
        } else {
            let label = FlowLabel {
                flow_id: st.flow_id,
                community_id: st.community_id.as_str(),
                first_ts_ns: st.first_ns,
                linktype: st.linktype,
                worker: self.worker,
                reason: &reason,
            };
            self.counters.files_opened += 1;
            Some(self.handle.open(rule, &label))
        };
        let st = &mut self.slots[slot as usize];
        st.outs.push(Out {
            rule: rule as u8,
            file,
            packets: 0,
            bytes: 0,
            done: false,
        });
        let out_idx = st.outs.len() - 1;
        let chain = st.chain;
        // Walk the pool's chain, handing each frame to the writer.
        let pool = &self.pool;
        let handle = &mut self.handle;
        let counters = &mut self.counters;
        let limits = r.per_flow_limits();
        let linktype = st.linktype;
        let out = &mut st.outs[out_idx];
        pool.for_each(&chain, |f| {
            write_one(handle, counters, rule, linktype, limits, out, f);
        });
        for f in current {
            let fr = Frame {
                ts_ns: f.ts_ns,
                orig_len: f.orig_len,
                link: f.link,
                data: f.data,
            };
            write_one(handle, counters, rule, linktype, limits, out, &fr);
        }
    }

    /// A frame for every output of the flow that is still open.
    fn write_to_outs(&mut self, slot: u32, f: &RawFrame<'_>) {
        let st = &mut self.slots[slot as usize];
        let fr = Frame {
            ts_ns: f.ts_ns,
            orig_len: f.orig_len,
            link: f.link,
            data: f.data,
        };
        for out in &mut st.outs {
            if out.done {
                continue;
            }
            let rule = out.rule as usize;
            let limits = self.rules.rules[rule].per_flow_limits();
            write_one(
                &mut self.handle,
                &mut self.counters,
                rule,
                st.linktype,
                limits,
                out,
                &fr,
            );
        }
    }
}

fn app_known(s: Option<&Session>) -> AppKnown {
    match s {
        None => AppKnown::Nothing,
        Some(s) => match s.app_proto() {
            Some(p) => AppKnown::Proto(p),
            None if s.app_settled() => AppKnown::Nothing,
            None => AppKnown::Detecting,
        },
    }
}

/// Hands one frame to an output, finishing a per-flow file at its limit.
fn write_one(
    handle: &mut PcapHandle,
    counters: &mut ExportCounters,
    rule: usize,
    linktype: u32,
    (max_packets, max_bytes): (Option<u64>, Option<u64>),
    out: &mut Out,
    f: &Frame<'_>,
) {
    if out.done {
        return;
    }
    if f.link != linktype {
        counters.other_link += 1;
        return;
    }
    match out.file {
        Some(file) => handle.packet(file, f.ts_ns, f.orig_len, f.data),
        None => handle.shared_packet(rule, linktype, f.ts_ns, f.orig_len, f.data),
    }
    out.packets += 1;
    out.bytes += f.data.len() as u64;
    counters.packets_exported += 1;
    counters.bytes_exported += f.data.len() as u64;
    if let Some(file) = out.file {
        if max_packets.is_some_and(|n| out.packets >= n)
            || max_bytes.is_some_and(|n| out.bytes >= n)
        {
            handle.close(file);
            out.done = true;
            counters.files_limited += 1;
        }
    }
}

fn kpi_or_flow_reason(r: &Rule, packets: u64, bytes: u64) -> String {
    let mut parts = Vec::new();
    if let Some(n) = r.min_bytes {
        parts.push(format!("flow_bytes={bytes}>={n}"));
    }
    if let Some(n) = r.min_packets {
        parts.push(format!("flow_packets={packets}>={n}"));
    }
    if parts.is_empty() && !r.flow_reason.is_empty() {
        parts.push(r.flow_reason.clone());
    }
    if parts.is_empty() {
        "all".into()
    } else {
        parts.join(" ")
    }
}

/// Fragment frames held until their datagram is reassembled, so that a
/// flow's file gets every frame of it. Bounded in bytes; the oldest go first.
pub struct FragStash {
    held: VecDeque<Stashed>,
    spare: Vec<Vec<u8>>,
    bytes: usize,
    cap: usize,
    pub dropped: u64,
}

struct Stashed {
    key: FragKey,
    ts_ns: u64,
    orig_len: u32,
    link: u32,
    data: Vec<u8>,
}

impl FragStash {
    pub fn new(cap: usize) -> FragStash {
        FragStash {
            held: VecDeque::new(),
            spare: Vec::new(),
            bytes: 0,
            cap,
            dropped: 0,
        }
    }

    pub fn hold(&mut self, key: FragKey, f: &RawFrame<'_>) {
        if f.data.len() > self.cap {
            self.dropped += 1;
            return;
        }
        while self.bytes + f.data.len() > self.cap {
            let Some(old) = self.held.pop_front() else {
                break;
            };
            self.bytes -= old.data.len();
            self.dropped += 1;
            self.spare.push(old.data);
        }
        let mut data = self.spare.pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(f.data);
        self.bytes += data.len();
        self.held.push_back(Stashed {
            key,
            ts_ns: f.ts_ns,
            orig_len: f.orig_len,
            link: f.link,
            data,
        });
    }

    /// Takes the frames of a completed datagram out (arrival order) into
    /// `into`; give the buffers back with [`FragStash::recycle`].
    pub fn take(&mut self, key: &FragKey, into: &mut Vec<(u64, u32, u32, Vec<u8>)>) {
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].key == *key {
                if let Some(s) = self.held.remove(i) {
                    self.bytes -= s.data.len();
                    into.push((s.ts_ns, s.orig_len, s.link, s.data));
                }
            } else {
                i += 1;
            }
        }
    }

    pub fn recycle(&mut self, from: &mut Vec<(u64, u32, u32, Vec<u8>)>) {
        for (_, _, _, d) in from.drain(..) {
            self.spare.push(d);
        }
    }
}

/// Why export could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExportStartError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Writer(#[from] output::pcap::PcapError),
}

/// PCAP export for one run: the compiled rules and the writer thread.
pub struct ExportRun {
    pub rules: Arc<ExportRules>,
    writer: output::pcap::PcapWriter,
}

impl ExportRun {
    /// Starts the writer when the config has export rules (None otherwise).
    /// A rule's directory that is missing or not writable is an error here,
    /// before any packet is read. `events` receives the `pcap` events.
    /// `offline`: the workers wait for the writer when its queue is full
    /// (replay is lossless); live, frames are dropped and counted instead.
    pub fn start(
        cfg: &ExportSection,
        events: Option<output::writer::BatchSender>,
        offline: bool,
    ) -> Result<Option<ExportRun>, ExportStartError> {
        let rules = rules::compile(cfg)?;
        if rules.is_empty() {
            return Ok(None);
        }
        let writer = output::pcap::PcapWriter::start(
            rules.writer_config(offline),
            events.map(|s| s.worker()),
        )?;
        Ok(Some(ExportRun {
            rules: Arc::new(rules),
            writer,
        }))
    }

    /// Checks the rules and their directories without starting anything
    /// (so a bad rule stops a run before its outputs are opened).
    pub fn check(cfg: &ExportSection, offline: bool) -> Result<(), ExportStartError> {
        let rules = rules::compile(cfg)?;
        if !rules.is_empty() {
            output::pcap::PcapWriter::check(&rules.writer_config(offline))?;
        }
        Ok(())
    }

    /// The compiled rules every worker shares.
    pub fn rules(&self) -> Arc<ExportRules> {
        Arc::clone(&self.rules)
    }

    pub fn handle(&self) -> PcapHandle {
        self.writer.handle()
    }

    pub fn counters(&self) -> Arc<output::pcap::PcapCounters> {
        self.writer.counters()
    }

    /// The `pcap` events go to `events`' sinks from now on (a reload).
    pub fn set_events(&self, events: Option<output::writer::BatchSender>) {
        self.writer.set_events(events.map(|s| s.worker()));
    }

    /// `flowtap ctl flush-export`: see [`output::pcap::PcapWriter::flush_now`].
    pub fn flush_now(&self, limit: std::time::Duration) -> Option<output::pcap::FlushReport> {
        self.writer.flush_now(limit)
    }

    /// Waits for the writer (every worker, so every handle, must be gone):
    /// open files are finished, their `pcap` events sent.
    pub fn finish(self) -> Result<output::pcap::PcapSummary, output::pcap::PcapError> {
        self.writer.join()
    }
}

impl ExportCounters {
    /// Lists the PCAP export counters of a worker (or their sum): the `export`
    /// section of the `stats` event.
    pub fn list(&self, v: &mut dyn Listing) {
        let e = self;
        use Kind::{Counter, Gauge};
        let figures: [(&str, &'static str, Kind, &'static str, u64); 17] = [
            (
                "candidates",
                "flowtap_export_candidates_total",
                Counter,
                "Flows that some export rule could still select when they started.",
                e.candidates,
            ),
            (
                "matches",
                "flowtap_export_matches_total",
                Counter,
                "(flow, rule) export matches.",
                e.matches,
            ),
            (
                "files_opened",
                "flowtap_export_flow_files_opened_total",
                Counter,
                "Per-flow export files opened.",
                e.files_opened,
            ),
            (
                "matches_without_packets",
                "flowtap_export_matches_without_packets_total",
                Counter,
                "Flows that matched only as they ended, with nothing buffered any more (no file).",
                e.matches_without_packets,
            ),
            (
                "files_limited",
                "flowtap_export_flow_files_limited_total",
                Counter,
                "Per-flow files finished because the rule's packet or byte limit was hit.",
                e.files_limited,
            ),
            (
                "packets_buffered",
                "flowtap_export_packets_buffered_total",
                Counter,
                "Frames copied into the pre-trigger pool.",
                e.packets_buffered,
            ),
            (
                "buffers_full",
                "flowtap_export_buffers_full_total",
                Counter,
                "Flows whose pre-trigger buffer filled before a rule decided.",
                e.buffers_full,
            ),
            (
                "buffers_dropped_on_miss",
                "flowtap_export_buffers_dropped_on_miss_total",
                Counter,
                "Flows whose buffer was dropped because their first transaction did not match.",
                e.buffers_dropped_on_miss,
            ),
            (
                "pool_evictions",
                "flowtap_export_pool_evictions_total",
                Counter,
                "Flows whose buffer was released to make room in the pool (oldest first).",
                e.pool_evictions,
            ),
            (
                "pool_evicted_packets",
                "flowtap_export_pool_evicted_packets_total",
                Counter,
                "Frames released from the pool to make room.",
                e.pool_evicted_packets,
            ),
            (
                "pool_bytes_held",
                "flowtap_export_pool_bytes",
                Gauge,
                "Bytes held in the pre-trigger pool.",
                e.pool_bytes_held,
            ),
            (
                "released_early",
                "flowtap_export_released_early_total",
                Counter,
                "Flows released before they ended because no rule could select them any more.",
                e.released_early,
            ),
            (
                "packets_exported",
                "flowtap_export_packets_total",
                Counter,
                "Frames handed to the PCAP writer.",
                e.packets_exported,
            ),
            (
                "bytes_exported",
                "flowtap_export_bytes_total",
                Counter,
                "Bytes of the frames handed to the PCAP writer.",
                e.bytes_exported,
            ),
            (
                "packets_missed",
                "flowtap_export_packets_missed_total",
                Counter,
                "Frames of matched flows from before the match that were no longer buffered.",
                e.packets_missed,
            ),
            (
                "other_link",
                "flowtap_export_other_link_total",
                Counter,
                "Frames of a flow on another link type than its first (not exported).",
                e.other_link,
            ),
            (
                "fragments_dropped",
                "flowtap_export_fragments_dropped_total",
                Counter,
                "Fragment frames dropped from the export stash before their datagram completed.",
                e.fragments_dropped,
            ),
        ];
        for (key, metric, kind, help, value) in figures {
            v.figure(&Figure {
                key,
                metric,
                kind,
                help,
                labels: &[],
                value,
            });
        }
    }
}
