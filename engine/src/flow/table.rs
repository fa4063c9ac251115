//! Flow tracking for one worker. Nothing here is shared: the worker that
//! owns a flow is the only one that ever sees its packets.

use dissect::app::{likely_server_port, AppConfig, AppEvent, AppProto, AppStats, Direction};
use dissect::event::{AppEnvelope, DirectionStats, EndReason, FlowRecord, OneSided, TunnelInfo};
use dissect::flow::{CommunityId, FlowKey};
use dissect::packet::{Decoded, Tunnel, Vlans, L4};
use hashbrown::HashTable;
use output::metrics::Listing;

use super::tcp::{self, TcpTrack};
use super::wheel::{Entry, Wheel};
use crate::export::rules::FlowFacts;
use crate::export::{AppKnown, ExportCounters, FlowExport, FlowStart, RawFrame, NO_EXPORT};
use crate::stream::{Budget, Emitted, Session, StreamCounters, StreamCtx, StreamLimits};

const NS: u64 = 1_000_000_000;
const SEEN_ORIG: u8 = 1;
const SEEN_RESP: u8 = 2;

/// Timeouts in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct FlowTimeouts {
    pub tcp_syn: u64,
    pub tcp_established: u64,
    pub tcp_closed: u64,
    pub udp: u64,
    pub other: u64,
    /// 0 = no interim records.
    pub active: u64,
}

/// Where ended flows and application events go.
pub trait RecordSink {
    fn flow(&mut self, rec: &FlowRecord);
    fn app(&mut self, env: &AppEnvelope<'_>);
}

/// What the table needs to know of one packet (or one reassembled datagram).
pub struct PacketInfo<'d, 'a> {
    pub key: FlowKey,
    pub hash: u64,
    /// The packet travels from the key's first endpoint to its second.
    pub from_first: bool,
    pub decoded: &'d Decoded<'a>,
    pub ts_ns: u64,
    /// Frames this packet stands for (more than one for a reassembled datagram).
    pub frames: u64,
    /// Wire bytes of those frames.
    pub bytes: u64,
    /// The captured frames themselves (for PCAP export; may be empty when
    /// export is off).
    pub raw: &'d [RawFrame<'a>],
}

/// Per-worker flow counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounters {
    pub created: u64,
    pub expired: u64,
    pub evicted: u64,
    pub ended_at_shutdown: u64,
    pub interim_records: u64,
    pub active: u64,
    pub tcp_reuse: u64,
    /// Ended flows of which the mirror showed one direction only: TCP by
    /// the direction seen (a mirror problem: TCP always talks both ways),
    /// and the rest (one-way UDP is often normal).
    pub one_sided_tcp_toserver: u64,
    pub one_sided_tcp_toclient: u64,
    pub one_sided_other: u64,
}

/// Link-layer and tunnel facts of a flow, taken from its first packet.
#[derive(Clone, Debug, Default)]
pub(crate) struct FlowMeta {
    /// (originator, responder) MACs, from the originator's first packet
    /// (from the responder's until then: on a mirror with routers on both
    /// sides the two directions carry different MACs, and which direction
    /// arrives first is up to the mirror).
    macs: Option<([u8; 6], [u8; 6])>,
    macs_from_orig: bool,
    vlans: Vlans,
    tunnel: Option<Tunnel>,
}

struct Flow {
    key: FlowKey,
    /// The key's Community ID, computed once when the flow starts; its
    /// records, application events and PCAP export all use this one.
    community_id: CommunityId,
    hash: u64,
    gen: u32,
    live: bool,
    /// The originator is the key's first endpoint.
    orig_is_first: bool,
    /// Directions seen over the whole flow ([`SEEN_ORIG`] | [`SEEN_RESP`]).
    seen: u8,
    /// App events emitted, and those the server answered with an error.
    app_transactions: u32,
    app_errors: u32,
    first_ns: u64,
    last_ns: u64,
    /// The idle timeout for the flow's state now ([`Flow::idle_timeout`]),
    /// kept up to date by [`Flow::refresh_timeout`] wherever what it
    /// depends on changes, so a packet that changes nothing reads it
    /// instead of working it out again.
    timeout_ns: u64,
    /// Start of the current active-timeout slice.
    slice_start_ns: u64,
    slice: u32,
    /// The tick of the flow's one valid wheel entry.
    wheel_tick: u64,
    orig: DirectionStats,
    resp: DirectionStats,
    tcp: TcpTrack,
    meta: FlowMeta,
    /// Reassembly, KPIs and app parser (TCP and UDP flows).
    session: Option<Box<Session>>,
    /// Its PCAP export state ([`NO_EXPORT`]: none).
    export: u32,
}

impl Flow {
    fn vacant() -> Flow {
        Flow {
            key: FlowKey::default(),
            community_id: CommunityId::default(),
            hash: 0,
            gen: 0,
            live: false,
            orig_is_first: true,
            seen: 0,
            app_transactions: 0,
            app_errors: 0,
            first_ns: 0,
            last_ns: 0,
            timeout_ns: 0,
            slice_start_ns: 0,
            slice: 0,
            wheel_tick: 0,
            orig: DirectionStats::default(),
            resp: DirectionStats::default(),
            tcp: TcpTrack::default(),
            meta: FlowMeta::default(),
            session: None,
            export: NO_EXPORT,
        }
    }

    /// The idle timeout for the flow's state: its protocol, TCP state
    /// (closed, established, handshake) and whether the current slice has
    /// packets and a SYN.
    fn idle_timeout(&self, t: &FlowTimeouts) -> u64 {
        match self.key.proto() {
            6 => {
                if self.tcp.is_closed() {
                    t.tcp_closed
                } else if self.tcp.established() {
                    t.tcp_established
                } else if self.orig.packets + self.resp.packets > 0 && !self.syn_started() {
                    // Picked up mid-stream: treat as established.
                    t.tcp_established
                } else {
                    t.tcp_syn
                }
            }
            17 => t.udp,
            _ => t.other,
        }
    }

    fn syn_started(&self) -> bool {
        (self.orig.tcp_flags | self.resp.tcp_flags) & tcp::SYN != 0
    }

    /// Works out the idle timeout again: after anything it depends on
    /// changed.
    fn refresh_timeout(&mut self, t: &FlowTimeouts) {
        self.timeout_ns = self.idle_timeout(t);
    }

    fn idle_deadline(&self) -> u64 {
        self.last_ns.saturating_add(self.timeout_ns)
    }

    /// End of the current active-timeout slice, if interim records are on.
    fn slice_end(&self, t: &FlowTimeouts) -> Option<u64> {
        (t.active > 0).then(|| self.slice_start_ns.saturating_add(t.active))
    }

    fn deadline(&self, t: &FlowTimeouts) -> u64 {
        let idle = self.idle_deadline();
        match self.slice_end(t) {
            Some(s) => idle.min(s),
            None => idle,
        }
    }

    /// How a flow that stops now ended, when nothing more specific applies.
    fn close_reason(&self, otherwise: EndReason) -> EndReason {
        if self.key.proto() == 6 && self.tcp.is_closed() {
            if self.tcp.rst_seen() {
                EndReason::Rst
            } else {
                EndReason::Fin
            }
        } else {
            otherwise
        }
    }

    fn record(&self, reason: EndReason) -> FlowRecord<'_> {
        let ((a_ip, a_port), (b_ip, b_port)) = self.key.endpoints();
        let ((src_ip, src_port), (dst_ip, dst_port)) = if self.orig_is_first {
            ((a_ip, a_port), (b_ip, b_port))
        } else {
            ((b_ip, b_port), (a_ip, a_port))
        };
        let is_tcp = self.key.proto() == 6;
        FlowRecord {
            flow_id: flow_id(self.hash, self.first_ns),
            community_id: self.community_id.as_str(),
            start_ns: if self.slice == 0 {
                self.first_ns
            } else {
                self.slice_start_ns
            },
            end_ns: self.last_ns,
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            proto: self.key.proto(),
            src_mac: self.meta.macs.map(|m| m.0),
            dst_mac: self.meta.macs.map(|m| m.1),
            vlans: self.meta.vlans.as_slice(),
            tunnel: self.meta.tunnel.as_ref().map(|t| TunnelInfo {
                kind: t.kind.as_str(),
                outer_src: t.outer_src,
                outer_dst: t.outer_dst,
                id: t.id,
            }),
            orig: self.orig,
            resp: self.resp,
            conn_state: if is_tcp { self.tcp.conn_state() } else { "" },
            history: if is_tcp { self.tcp.history() } else { "" },
            end_reason: reason,
            app_transactions: self.app_transactions,
            app_errors: self.app_errors,
            one_sided: match self.seen {
                SEEN_ORIG => Some(OneSided::ToServer),
                SEEN_RESP => Some(OneSided::ToClient),
                _ => None,
            },
            slice: self.slice,
            app_proto: self
                .session
                .as_ref()
                .and_then(|s| s.app_proto())
                .map(|p| p.as_str()),
            tcp: if is_tcp {
                self.session.as_ref().map(|s| s.kpis())
            } else {
                None
            },
        }
    }
}

/// A flow id that is the same whatever worker or run saw the flow: the
/// flow's key hash mixed with its first packet time, kept below 2^53 so that
/// JSON consumers that read numbers as doubles (JavaScript, many log
/// pipelines) keep it exact, as Suricata's ids are.
fn flow_id(key_hash: u64, first_ns: u64) -> u64 {
    let mut x = key_hash ^ first_ns.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x & ((1 << 53) - 1)
}

/// Ended flows' sessions kept for reuse per worker (a session is about 600
/// bytes): enough for the flows that end within one housekeeping pass.
const SPARE_SESSIONS: usize = 4096;

pub struct FlowTable {
    /// Sessions of ended flows, reused by new ones (at most `SPARE_SESSIONS`).
    /// Boxed on purpose: a flow holds its session boxed, and the point is
    /// to hand the same allocation back.
    #[allow(clippy::vec_box)]
    spare_sessions: Vec<Box<Session>>,
    index: HashTable<u32>,
    flows: Vec<Flow>,
    free: Vec<u32>,
    wheel: Wheel,
    timeouts: FlowTimeouts,
    max_flows: usize,
    counters: TableCounters,
    /// Reused list of wheel entries found due in one `advance`.
    due: Vec<Entry>,
    limits: StreamLimits,
    app_cfg: AppConfig,
    budget: Budget,
    stream_counters: StreamCounters,
    /// Parser counters of ended flows, per protocol.
    app_stats: [AppStats; AppProto::COUNT],
    /// Events a parser produced for the packet being handled.
    events: Vec<Emitted>,
    /// PCAP export (None: no export rule, and no cost).
    export: Option<FlowExport>,
}

impl FlowTable {
    pub fn new(
        max_flows: usize,
        timeouts: FlowTimeouts,
        limits: StreamLimits,
        app_cfg: AppConfig,
        max_stream_bytes: usize,
    ) -> FlowTable {
        // Pre-size for a share of the limit; the slab grows on demand up to
        // max_flows (never past it).
        let initial = max_flows.min(1 << 16);
        FlowTable {
            spare_sessions: Vec::new(),
            index: HashTable::with_capacity(initial),
            flows: Vec::with_capacity(initial),
            free: Vec::new(),
            wheel: Wheel::new(4096, NS),
            timeouts,
            max_flows,
            counters: TableCounters::default(),
            due: Vec::new(),
            limits,
            app_cfg,
            budget: Budget {
                used: 0,
                max: max_stream_bytes,
            },
            stream_counters: StreamCounters::default(),
            app_stats: [AppStats::default(); AppProto::COUNT],
            events: Vec::new(),
            export: None,
        }
    }

    /// Turns PCAP export on for this table's flows.
    pub fn set_export(&mut self, export: FlowExport) {
        self.export = Some(export);
    }

    /// Replaces the PCAP export (a configuration reload; None turns it
    /// off). The flows the old export follows end for export now: each
    /// gets its last chance to match and its per-flow files are closed, so
    /// the old writer finishes them. The flows themselves go on: the new
    /// rules judge each live flow at its next packet (its files start
    /// there) and every new flow from its first. Returns the old export.
    pub fn replace_export(&mut self, mut export: Option<FlowExport>) -> Option<FlowExport> {
        let rejudge = if export.is_some() { REJUDGE } else { NO_EXPORT };
        for f in self.flows.iter_mut() {
            if let Some(ex) = self.export.as_mut() {
                if f.export != NO_EXPORT && f.export != REJUDGE {
                    ex.on_flow_end(f.export, app_known(f.session.as_deref()), &[]);
                }
            }
            f.export = if f.live { rejudge } else { NO_EXPORT };
        }
        if let Some(ex) = self.export.as_mut() {
            ex.flush();
            if let Some(new) = export.as_mut() {
                new.carry_counters(ex);
            }
        }
        std::mem::replace(&mut self.export, export)
    }

    pub fn export_mut(&mut self) -> Option<&mut FlowExport> {
        self.export.as_mut()
    }

    pub fn export_counters(&self) -> Option<ExportCounters> {
        self.export.as_ref().map(|e| e.counters())
    }

    pub fn counters(&self) -> TableCounters {
        self.counters
    }

    pub fn stream_counters(&self) -> StreamCounters {
        self.stream_counters
    }

    /// Counters of the parsers of flows that ended, per protocol.
    pub fn app_stats(&self) -> [AppStats; AppProto::COUNT] {
        self.app_stats
    }

    /// Bytes held by reassembly and parsers now.
    pub fn stream_bytes(&self) -> usize {
        self.budget.used
    }

    pub fn len(&self) -> usize {
        self.counters.active as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Accounts one packet to its flow, creating, splitting or evicting
    /// flows as needed; ended flows are handed to `emit`.
    #[inline]
    pub fn on_packet(&mut self, p: &PacketInfo<'_, '_>, out: &mut impl RecordSink) {
        let slot = match self.lookup(&p.key, p.hash) {
            Some(slot) => {
                let f = &self.flows[slot as usize];
                let reuse = is_bare_syn(p.decoded) && f.key.proto() == 6 && f.tcp.is_closed();
                if p.ts_ns > f.idle_deadline() || reuse {
                    // The old flow ended before this packet; this one starts a new flow.
                    let reason = f.close_reason(EndReason::IdleTimeout);
                    if reuse {
                        self.counters.tcp_reuse += 1;
                    }
                    self.end_flow(slot, reason, out);
                    self.insert(p, out)
                } else {
                    slot
                }
            }
            None => self.insert(p, out),
        };
        self.update(slot, p, out);
    }

    #[inline]
    fn lookup(&self, key: &FlowKey, hash: u64) -> Option<u32> {
        let flows = &self.flows;
        self.index
            .find(hash, |&s| {
                flows.get(s as usize).is_some_and(|f| f.key == *key)
            })
            .copied()
    }

    fn insert(&mut self, p: &PacketInfo<'_, '_>, out: &mut impl RecordSink) -> u32 {
        if self.counters.active as usize >= self.max_flows {
            self.evict_one(out);
        }
        let d = p.decoded;
        // The originator is the packet's sender, unless the first packet is a
        // SYN-ACK: then its receiver opened the connection.
        let mut from_orig_first = true;
        let mut flipped = false;
        if let L4::Tcp(t) = &d.l4 {
            let syn_ack = t.flags & (tcp::SYN | tcp::ACK) == (tcp::SYN | tcp::ACK);
            // Picked up without a handshake: a segment from a server port to
            // a client port came from the server (a mirror may deliver the
            // server's segment first, or the client's direction not at all).
            let from_server = t.flags & tcp::SYN == 0
                && likely_server_port(t.src_port)
                && !likely_server_port(t.dst_port);
            if syn_ack || from_server {
                from_orig_first = false;
                flipped = true;
            }
        }
        let orig_is_first = p.from_first == from_orig_first;
        let macs = d.macs.map(|(src, dst)| {
            if from_orig_first {
                (src, dst)
            } else {
                (dst, src)
            }
        });
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.flows.push(Flow::vacant());
                (self.flows.len() - 1) as u32
            }
        };
        let timeouts = self.timeouts;
        let f = &mut self.flows[slot as usize];
        let gen = f.gen.wrapping_add(1);
        *f = Flow {
            key: p.key,
            community_id: p.key.community_id_buf(0),
            hash: p.hash,
            gen,
            live: true,
            orig_is_first,
            seen: 0,
            app_transactions: 0,
            app_errors: 0,
            first_ns: p.ts_ns,
            last_ns: p.ts_ns,
            timeout_ns: 0,
            slice_start_ns: p.ts_ns,
            slice: 0,
            wheel_tick: 0,
            orig: DirectionStats::default(),
            resp: DirectionStats::default(),
            tcp: TcpTrack::default(),
            meta: FlowMeta {
                macs,
                macs_from_orig: from_orig_first,
                vlans: d.vlans,
                tunnel: d.tunnel,
            },
            session: session_ports(&d.l4, from_orig_first).map(|ports| {
                let session = Session::new(&self.limits, ports);
                match self.spare_sessions.pop() {
                    Some(mut spare) => {
                        *spare = session;
                        spare
                    }
                    None => Box::new(session),
                }
            }),
            export: NO_EXPORT,
        };
        if let Some(ex) = self.export.as_mut() {
            f.export = ex.on_flow_start(&flow_start(f, p));
        }
        if flipped {
            f.tcp.mark_flipped();
        }
        f.refresh_timeout(&timeouts);
        let deadline = f.deadline(&timeouts);
        f.wheel_tick = self.wheel.schedule(slot, gen, deadline);
        let flows = &self.flows;
        self.index.insert_unique(p.hash, slot, |&s| {
            flows.get(s as usize).map_or(0, |f| f.hash)
        });
        self.counters.created += 1;
        self.counters.active += 1;
        slot
    }

    #[inline]
    fn update(&mut self, slot: u32, p: &PacketInfo<'_, '_>, out: &mut impl RecordSink) {
        // Interim record when the packet falls past the current slice.
        let active = self.timeouts.active;
        if active > 0 {
            let f = &self.flows[slot as usize];
            if p.ts_ns >= f.slice_start_ns.saturating_add(active) {
                self.emit_slice(slot, p.ts_ns, out);
            }
        }
        let f = &mut self.flows[slot as usize];
        let from_orig = p.from_first == f.orig_is_first;
        if from_orig && !f.meta.macs_from_orig {
            f.meta.macs_from_orig = true;
            f.meta.macs = p.decoded.macs.or(f.meta.macs);
        }
        f.seen |= if from_orig { SEEN_ORIG } else { SEEN_RESP };
        let dir = if from_orig { &mut f.orig } else { &mut f.resp };
        dir.packets += p.frames;
        dir.bytes += p.bytes;
        // Whether what the idle timeout depends on may have changed: the
        // TCP state, the slice's first packet of a direction, a SYN. (Not
        // for other protocols: theirs depends on the protocol only.)
        let mut timeout_inputs_changed = false;
        if let L4::Tcp(th) = &p.decoded.l4 {
            timeout_inputs_changed = dir.packets == p.frames || th.flags & tcp::SYN != 0;
            dir.tcp_flags |= th.flags;
            timeout_inputs_changed |= f
                .tcp
                .on_packet(from_orig, th.flags, p.decoded.payload.len());
        }
        if let Some(session) = f.session.as_mut() {
            let app_dir = app_dir_of(from_orig);
            let mut cx = StreamCtx {
                limits: &self.limits,
                app_cfg: &self.app_cfg,
                budget: &mut self.budget,
                counters: &mut self.stream_counters,
                events: &mut self.events,
                dir: app_dir,
            };
            match &p.decoded.l4 {
                L4::Tcp(th) => session.on_tcp(
                    app_dir,
                    th.seq,
                    th.ack,
                    th.flags,
                    th.window,
                    p.decoded.payload,
                    p.ts_ns,
                    &mut cx,
                ),
                L4::Udp(u) => {
                    let (sp, dp) = if from_orig {
                        (u.src_port, u.dst_port)
                    } else {
                        (u.dst_port, u.src_port)
                    };
                    session.on_udp(app_dir, sp, dp, p.decoded.payload, p.ts_ns, &mut cx)
                }
                _ => {}
            }
        }
        if let Some(ex) = self.export.as_mut() {
            let f = &mut self.flows[slot as usize];
            if f.export == REJUDGE {
                // Export rules changed (a reload) while this flow ran: the
                // new rules judge it now, from this packet on.
                f.export = ex.on_flow_start(&flow_start(f, p));
            }
            if f.export != NO_EXPORT
                && !ex.on_packet(
                    f.export,
                    p.raw,
                    p.bytes,
                    f.session.as_deref(),
                    !p.decoded.payload.is_empty(),
                    &self.events,
                )
            {
                f.export = NO_EXPORT;
            }
        }
        if !self.events.is_empty() {
            let f = &mut self.flows[slot as usize];
            emit_events(f, &mut self.events, out);
        }
        let f = &mut self.flows[slot as usize];
        if p.ts_ns > f.last_ns {
            f.last_ns = p.ts_ns;
        }
        // Otherwise the deadline only moved later (a later last packet, a
        // later slice), which the wheel finds lazily; a shorter timeout
        // (e.g. after a FIN) may need an earlier wheel entry.
        if timeout_inputs_changed {
            let t = &self.timeouts;
            f.refresh_timeout(t);
            let deadline = f.deadline(t);
            let tick = self.wheel.tick_of(deadline);
            if tick < f.wheel_tick {
                f.wheel_tick = self.wheel.schedule(slot, f.gen, deadline);
            }
        }
    }

    /// Emits the current slice of a long flow and starts the slice `now_ns` falls in.
    fn emit_slice(&mut self, slot: u32, now_ns: u64, out: &mut impl RecordSink) {
        let active = self.timeouts.active;
        let f = &mut self.flows[slot as usize];
        if f.orig.packets + f.resp.packets > 0 {
            out.flow(&f.record(EndReason::ActiveTimeout));
            self.counters.interim_records += 1;
        }
        // Slices start at fixed offsets from the flow's first packet, so their
        // content does not depend on when the engine noticed the boundary.
        let elapsed = now_ns.saturating_sub(f.slice_start_ns);
        let skipped = elapsed / active.max(1);
        f.slice_start_ns = f
            .slice_start_ns
            .saturating_add(skipped.saturating_mul(active));
        f.slice = f
            .slice
            .saturating_add(u32::try_from(skipped).unwrap_or(u32::MAX));
        f.orig = DirectionStats::default();
        f.resp = DirectionStats::default();
        // An empty slice: the timeout may differ (see `idle_timeout`).
        f.refresh_timeout(&self.timeouts);
    }

    fn end_flow(&mut self, slot: u32, reason: EndReason, out: &mut impl RecordSink) {
        let Some(f) = self.flows.get_mut(slot as usize) else {
            return;
        };
        if !f.live {
            return;
        }
        if let Some(session) = f.session.as_mut() {
            let mut cx = StreamCtx {
                limits: &self.limits,
                app_cfg: &self.app_cfg,
                budget: &mut self.budget,
                counters: &mut self.stream_counters,
                events: &mut self.events,
                dir: Direction::ToServer,
            };
            session.finish(f.last_ns, &mut cx);
            if let Some(p) = session.app_proto() {
                self.app_stats[p.index()].add(&session.app_stats());
            }
        }
        if f.export != NO_EXPORT {
            if let Some(ex) = self.export.as_mut() {
                ex.on_flow_end(f.export, app_known(f.session.as_deref()), &self.events);
            }
            f.export = NO_EXPORT;
        }
        if !self.events.is_empty() {
            emit_events(f, &mut self.events, out);
        }
        // An interim slice with nothing in it has nothing to report.
        if f.slice == 0 || f.orig.packets + f.resp.packets > 0 {
            out.flow(&f.record(reason));
        }
        let c = &mut self.counters;
        match (f.key.proto(), f.seen) {
            (6, SEEN_ORIG) => c.one_sided_tcp_toserver += 1,
            (6, SEEN_RESP) => c.one_sided_tcp_toclient += 1,
            (_, SEEN_ORIG | SEEN_RESP) => c.one_sided_other += 1,
            _ => {}
        }
        if let Some(s) = f.session.take() {
            // Kept for the next flow: a new flow then allocates nothing.
            if self.spare_sessions.len() < SPARE_SESSIONS {
                self.spare_sessions.push(s);
            }
        }
        f.live = false;
        let hash = f.hash;
        if let Ok(entry) = self.index.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
        self.counters.active -= 1;
        match reason {
            EndReason::Evicted => self.counters.evicted += 1,
            EndReason::Shutdown => self.counters.ended_at_shutdown += 1,
            _ => self.counters.expired += 1,
        }
    }

    fn evict_one(&mut self, out: &mut impl RecordSink) {
        let flows = &self.flows;
        let victim = self.wheel.pop_nearest(|e| is_current(flows, e));
        if let Some(e) = victim {
            self.end_flow(e.slot, EndReason::Evicted, out);
        }
    }

    /// Moves time to `now_ns`: flows past their deadline end, long flows emit interim records.
    pub fn advance(&mut self, now_ns: u64, out: &mut impl RecordSink) {
        let mut due = std::mem::take(&mut self.due);
        let flows = &mut self.flows;
        let t = self.timeouts;
        self.wheel.advance(now_ns, |wheel, e| {
            let Some(f) = flows.get_mut(e.slot as usize) else {
                return;
            };
            if !(f.live && f.gen == e.gen && f.wheel_tick == e.tick) {
                return; // stale: the flow ended or has an earlier entry
            }
            let deadline = f.deadline(&t);
            if deadline <= now_ns {
                due.push(e);
            } else {
                // Not yet: the real deadline moved on since this entry was queued.
                f.wheel_tick = wheel.schedule(e.slot, e.gen, deadline);
            }
        });
        for e in due.drain(..) {
            let f = &self.flows[e.slot as usize];
            if f.idle_deadline() <= now_ns {
                let reason = f.close_reason(EndReason::IdleTimeout);
                self.end_flow(e.slot, reason, out);
            } else {
                self.emit_slice(e.slot, now_ns, out);
                let f = &mut self.flows[e.slot as usize];
                let deadline = f.deadline(&t);
                let gen = f.gen;
                f.wheel_tick = self.wheel.schedule(e.slot, gen, deadline);
            }
        }
        self.due = due;
    }

    /// Ends every flow: those past their idle timeout at `now_ns` as timed
    /// out (as the wheel would have), the rest as `Shutdown`.
    pub fn flush_all(&mut self, now_ns: u64, out: &mut impl RecordSink) {
        let t = self.timeouts;
        // Oldest first, so output order does not depend on slab layout.
        let mut live: Vec<(u64, u32)> = self
            .flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.live)
            .map(|(i, f)| (f.first_ns, i as u32))
            .collect();
        live.sort_unstable();
        for (_, slot) in live {
            let f = &self.flows[slot as usize];
            if t.active > 0 && now_ns >= f.slice_start_ns.saturating_add(t.active) {
                let last = f.last_ns;
                if last >= f.slice_start_ns.saturating_add(t.active) {
                    self.emit_slice(slot, last, out);
                }
            }
            let f = &self.flows[slot as usize];
            let reason = if f.idle_deadline() <= now_ns {
                f.close_reason(EndReason::IdleTimeout)
            } else {
                f.close_reason(EndReason::Shutdown)
            };
            self.end_flow(slot, reason, out);
        }
    }
}

/// What export needs to know of a new flow.
fn flow_start<'f>(f: &'f Flow, p: &PacketInfo<'_, '_>) -> FlowStart<'f> {
    let ((a_ip, a_port), (b_ip, b_port)) = f.key.endpoints();
    let ((src, src_port), (dst, dst_port)) = if f.orig_is_first {
        ((a_ip, a_port), (b_ip, b_port))
    } else {
        ((b_ip, b_port), (a_ip, a_port))
    };
    FlowStart {
        facts: FlowFacts {
            src,
            src_port,
            dst,
            dst_port,
            proto: f.key.proto(),
            vlans: f.meta.vlans.as_slice(),
            tunnel: f.meta.tunnel.as_ref().map(|t| t.kind),
        },
        community_id: f.community_id,
        flow_id: flow_id(f.hash, f.first_ns),
        first_ns: f.first_ns,
        linktype: p.raw.first().map_or(1, |r| r.link),
    }
}

/// A flow's export slot after a reload replaced the export rules: judged
/// by the new rules at its next packet.
const REJUDGE: u32 = NO_EXPORT - 1;

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

fn app_dir_of(from_orig: bool) -> Direction {
    if from_orig {
        Direction::ToServer
    } else {
        Direction::ToClient
    }
}

/// Wraps the parser's events with what the flow knows and hands them on.
fn emit_events(f: &mut Flow, events: &mut Vec<Emitted>, out: &mut impl RecordSink) {
    let ((a_ip, a_port), (b_ip, b_port)) = f.key.endpoints();
    let ((src_ip, src_port), (dst_ip, dst_port)) = if f.orig_is_first {
        ((a_ip, a_port), (b_ip, b_port))
    } else {
        ((b_ip, b_port), (a_ip, a_port))
    };
    let flow_id = flow_id(f.hash, f.first_ns);
    let key = f.key;
    if f.session.is_none() {
        events.clear();
        return;
    }
    let cid = f.community_id.as_str();
    for Emitted { dir, event: ev } in events.drain(..) {
        f.app_transactions = f.app_transactions.saturating_add(1);
        f.app_errors = f.app_errors.saturating_add(u32::from(ev.is_error()));
        let env = AppEnvelope {
            flow_id,
            community_id: cid,
            ts_ns: AppEvent::start_ns(&ev).unwrap_or(f.last_ns),
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            proto: key.proto(),
            src_mac: f.meta.macs.map(|m| m.0),
            dst_mac: f.meta.macs.map(|m| m.1),
            direction: dir,
            vlans: f.meta.vlans.as_slice(),
            event: &ev,
        };
        out.app(&env);
    }
}

/// A wheel entry is the one valid entry of a live flow.
fn is_current(flows: &[Flow], e: &Entry) -> bool {
    flows
        .get(e.slot as usize)
        .is_some_and(|f| f.live && f.gen == e.gen && f.wheel_tick == e.tick)
}

fn is_bare_syn(d: &Decoded<'_>) -> bool {
    matches!(&d.l4, L4::Tcp(t) if t.flags & (tcp::SYN | tcp::ACK) == tcp::SYN)
}

/// (client, server) ports of a new TCP or UDP flow, given whether its first
/// packet came from the client; None for other protocols.
fn session_ports(l4: &L4, from_client: bool) -> Option<(u16, u16)> {
    let (sp, dp) = match l4 {
        L4::Tcp(t) => (t.src_port, t.dst_port),
        L4::Udp(u) => (u.src_port, u.dst_port),
        _ => return None,
    };
    Some(if from_client { (sp, dp) } else { (dp, sp) })
}

impl TableCounters {
    /// Lists these counters (the `flows` section of the `stats` event and
    /// their metrics).
    pub fn list(&self, v: &mut dyn Listing) {
        use output::metrics::{
            fig,
            Kind::{Counter, Gauge},
        };
        let f = self;
        fig(
            v,
            "created",
            "flowtap_flows_created_total",
            Counter,
            "Flows created.",
            &[],
            f.created,
        );
        const ONE_SIDED: &str = "Flows that ended with one direction seen only, by transport and the direction seen (TCP: a mirror that misses a direction; UDP and others: often one-way by nature).";
        for (key, transport, seen, value) in [
            (
                "one_sided_tcp_toserver",
                "tcp",
                "toserver",
                f.one_sided_tcp_toserver,
            ),
            (
                "one_sided_tcp_toclient",
                "tcp",
                "toclient",
                f.one_sided_tcp_toclient,
            ),
            ("one_sided_other", "other", "any", f.one_sided_other),
        ] {
            fig(
                v,
                key,
                "flowtap_flows_one_sided_total",
                Counter,
                ONE_SIDED,
                &[("transport", transport), ("seen", seen)],
                value,
            );
        }
        const ENDED: &str = "Flows ended, by reason: timeout (idle, or closed by FIN/RST and then quiet), evicted (table full), shutdown (capture ended).";
        fig(
            v,
            "expired",
            "flowtap_flows_ended_total",
            Counter,
            ENDED,
            &[("reason", "timeout")],
            f.expired,
        );
        fig(
            v,
            "evicted",
            "flowtap_flows_ended_total",
            Counter,
            ENDED,
            &[("reason", "evicted")],
            f.evicted,
        );
        fig(
            v,
            "ended_at_shutdown",
            "flowtap_flows_ended_total",
            Counter,
            ENDED,
            &[("reason", "shutdown")],
            f.ended_at_shutdown,
        );
        fig(
            v,
            "interim_records",
            "flowtap_flow_interim_records_total",
            Counter,
            "Interim records of long flows (active timeout).",
            &[],
            f.interim_records,
        );
        fig(
            v,
            "active",
            "flowtap_flows_active",
            Gauge,
            "Flows in the flow table now.",
            &[],
            f.active,
        );
        fig(
            v,
            "tcp_port_reuse",
            "flowtap_flows_tcp_port_reuse_total",
            Counter,
            "TCP flows ended because a new SYN reused their ports.",
            &[],
            f.tcp_reuse,
        );
    }
}
