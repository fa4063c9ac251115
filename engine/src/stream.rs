//! TCP stream reassembly, passive TCP KPIs and the application-layer session
//! of one flow.
//!
//! Reassembly policy: per direction the stream knows the next expected
//! sequence number. A segment at it is delivered at once (from the packet's
//! own bytes: no copy unless the parser keeps some of it). A segment ahead of
//! it is held (copied, within a per-flow and a per-worker cap) until the hole
//! fills. Bytes already delivered are never delivered again: on overlap the
//! first bytes seen win (what Suricata's "bsd"-like default and Zeek do for
//! the usual cases), and the segment counts as a retransmission. A hole that
//! the other side has acknowledged, a hold list past its cap, and holes left
//! at flow end are gaps: the parser is told (`on_gap`) and the bytes count as
//! missed. Flows already running when capture started are picked up at the
//! first segment seen.

use dissect::app::driver::{AppDriver, DriverHost, Hit};
use dissect::app::{
    detect_tcp, detect_udp, new_parser, AppConfig, AppEvent, AppParser, AppProto, AppStats, Ctx,
    Detect, Direction, Transport,
};
use dissect::event::{TcpDirectionKpis, TcpKpis};
use output::metrics::Listing;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Limits of reassembly and detection, from the config.
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    /// Out-of-order bytes held per flow and direction.
    pub max_ooo_per_flow: usize,
    /// Unconsumed bytes kept for a parser per flow and direction.
    pub max_pending_per_flow: usize,
    /// Bytes of one direction examined before giving up on detection.
    pub max_detect_bytes: usize,
    /// How long (capture time) bytes the peer acknowledged but the mirror
    /// has not delivered yet are waited for before they count as a gap; 0
    /// declares the gap at once.
    pub reorder_window_ns: u64,
    /// Whether the app layer runs at all.
    pub app_enabled: bool,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_ooo_per_flow: 256 << 10,
            max_pending_per_flow: 256 << 10,
            max_detect_bytes: 4096,
            reorder_window_ns: 10_000_000,
            app_enabled: true,
        }
    }
}

/// Per-worker counters of the stream layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Bytes delivered in order to a parser or detector.
    pub delivered_bytes: u64,
    /// Gaps reported, and their bytes.
    pub gaps: u64,
    pub missed_bytes: u64,
    /// Times a per-flow out-of-order cap forced a gap.
    pub ooo_flow_cap_hit: u64,
    /// Times the per-worker buffer cap refused to hold bytes.
    pub worker_cap_hit: u64,
    /// Times a parser needed more than the per-flow pending cap.
    pub pending_cap_hit: u64,
    /// Holes the peer acknowledged before the mirror delivered their bytes
    /// (cross-direction reordering): waited for, then filled within the
    /// reorder window / not filled (they became gaps).
    pub reorder_filled: u64,
    pub reorder_expired: u64,
    /// Parser errors (that direction is no longer parsed).
    pub parse_errors: u64,
    /// Flows whose protocol was detected / not recognised.
    pub detected: u64,
    pub undetected: u64,
}

/// Bytes of buffers held across all flows of a worker, against its cap.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub used: usize,
    pub max: usize,
}

impl Budget {
    fn take(&mut self, n: usize) -> bool {
        if self.used + n > self.max {
            return false;
        }
        self.used += n;
        true
    }

    fn give(&mut self, n: usize) {
        self.used = self.used.saturating_sub(n);
    }
}

/// An application event and the direction of the bytes that completed it
/// (not necessarily the packet's being handled: held bytes of the other
/// direction go on when a hole fills).
pub struct Emitted {
    pub dir: Direction,
    pub event: AppEvent,
}

/// What the stream layer needs from the worker while handling a packet.
pub struct StreamCtx<'a> {
    pub limits: &'a StreamLimits,
    pub app_cfg: &'a AppConfig,
    pub budget: &'a mut Budget,
    pub counters: &'a mut StreamCounters,
    /// Events produced by the parser, wrapped and emitted by the caller.
    pub events: &'a mut Vec<Emitted>,
    /// Direction of the bytes being handed to the parser (the packet's, at
    /// first).
    pub dir: Direction,
}

/// The parser driver borrows the worker's budget, caps and counters.
impl DriverHost for StreamCtx<'_> {
    fn max_pending(&self) -> usize {
        self.limits.max_pending_per_flow
    }

    fn take(&mut self, n: usize) -> bool {
        self.budget.take(n)
    }

    fn give(&mut self, n: usize) {
        self.budget.give(n)
    }

    fn emit(&mut self, ev: AppEvent) {
        self.events.push(Emitted {
            dir: self.dir,
            event: ev,
        });
    }

    fn hit(&mut self, what: Hit) {
        match what {
            Hit::PendingCap => self.counters.pending_cap_hit += 1,
            Hit::Budget => self.counters.worker_cap_hit += 1,
            Hit::ParseError => self.counters.parse_errors += 1,
        }
    }
}

fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

fn seq_le(a: u32, b: u32) -> bool {
    a == b || seq_lt(a, b)
}

/// Bytes of a direction that the peer acknowledged before the mirror
/// delivered them: a mirror sends the two directions through different paths,
/// so this is usually reordering, not loss. Waited for until the reorder
/// window has passed.
#[derive(Clone, Copy)]
struct AckedHole {
    /// Highest acknowledgement seen for the hole.
    ack: u32,
    /// Capture time of the first acknowledgement.
    since_ns: u64,
}

/// A segment held until the hole before it fills.
struct Held {
    seq: u32,
    /// The segment's acknowledgement (for the response time).
    ack: Option<u32>,
    /// Capture time of a segment that arrived in order and waited only for
    /// the other direction: its bytes are timed by it. (Bytes that filled a
    /// hole are timed by the packet that filled it, as Suricata does.)
    waited_ts_ns: Option<u64>,
    data: Vec<u8>,
}

#[derive(Default)]
struct Stream {
    started: bool,
    next_seq: u32,
    held: Vec<Held>,
    held_bytes: usize,
    /// Acknowledged by the peer, not seen yet. While it is waited for, the
    /// other direction's bytes are held too, so a parser (and the response
    /// time) still sees the request before its response.
    acked_hole: Option<AckedHole>,
    /// Lowest acknowledgement of this direction seen before it started.
    first_ack: Option<u32>,
    /// Sequence number of the FIN, once seen: it takes one sequence number
    /// when the stream reaches it (also when it arrived ahead of held bytes).
    fin_at: Option<u32>,
    kpi: TcpDirectionKpis,
    /// Time of the last payload segment.
    last_data_ns: u64,
}

impl Stream {
    /// Whether bytes before `ack` were not delivered yet (before the stream
    /// started: whether `ack` is past where its first acknowledgement put
    /// its start).
    fn behind(&self, ack: u32) -> bool {
        if self.started {
            seq_lt(self.next_seq, ack)
        } else {
            self.first_ack.is_some_and(|f| seq_lt(f, ack))
        }
    }

    /// End of the bytes seen without a hole: delivered, then held (segments
    /// waiting for the other direction).
    fn contiguous_end(&self) -> u32 {
        let mut end = self.next_seq;
        for h in &self.held {
            if seq_lt(end, h.seq) {
                break;
            }
            let e = h.seq.wrapping_add(h.data.len() as u32);
            if seq_lt(end, e) {
                end = e;
            }
        }
        end
    }

    /// Waits for the bytes up to `ack`, acknowledged at `ts_ns`.
    fn wait_for(&mut self, ack: u32, ts_ns: u64) {
        match &mut self.acked_hole {
            Some(h) => {
                if seq_lt(h.ack, ack) {
                    h.ack = ack;
                }
            }
            None => {
                self.acked_hole = Some(AckedHole {
                    ack,
                    since_ns: ts_ns,
                })
            }
        }
    }
}

/// The application layer of a flow.
enum App {
    /// Still looking at the first bytes.
    Detecting,
    Parsing(Box<dyn AppParser>),
    /// Not a protocol we parse, or the app layer is off.
    None,
}

/// Everything a TCP or UDP flow keeps beyond its counters.
pub struct Session {
    app: App,
    proto: Option<AppProto>,
    streams: [Stream; 2],
    /// Feeds the parser: bytes it has not consumed yet (before detection:
    /// the first bytes, for the probes), per direction.
    driver: AppDriver,
    syn_ns: Option<u64>,
    syn_ack_ns: Option<u64>,
    server_delay_us: Option<u64>,
    client_delay_us: Option<u64>,
    /// Client bytes were delivered and no server bytes acknowledged them
    /// yet (application response time).
    awaiting_response: bool,
    /// Sequence number after the client's last delivered byte.
    request_end: u32,
    art_count: u32,
    art_sum_us: u64,
    art_max_us: u64,
    app_stats: AppStats,
    /// (client, server) ports: hints for protocol detection.
    ports: (u16, u16),
}

fn idx(d: Direction) -> usize {
    d.index()
}

impl Session {
    /// `ports` = (client port, server port).
    pub fn new(limits: &StreamLimits, ports: (u16, u16)) -> Session {
        Session {
            app: if limits.app_enabled {
                App::Detecting
            } else {
                App::None
            },
            proto: None,
            streams: [Stream::default(), Stream::default()],
            driver: AppDriver::new(),
            syn_ns: None,
            syn_ack_ns: None,
            server_delay_us: None,
            client_delay_us: None,
            awaiting_response: false,
            request_end: 0,
            art_count: 0,
            art_sum_us: 0,
            art_max_us: 0,
            app_stats: AppStats::default(),
            ports,
        }
    }

    pub fn app_proto(&self) -> Option<AppProto> {
        self.proto
    }

    pub fn app_stats(&self) -> AppStats {
        self.app_stats
    }

    /// What the parser knows of transactions not emitted yet (see
    /// [`dissect::app::AppParser::peek`]).
    pub fn peek_app(&self, f: &mut dyn FnMut(dissect::app::Peek<'_>)) {
        if let App::Parsing(p) = &self.app {
            p.peek(f);
        }
    }

    /// No protocol was detected and none will be (detection gave up, or
    /// the app layer is off).
    pub fn app_settled(&self) -> bool {
        self.proto.is_none() && matches!(self.app, App::None)
    }

    pub fn kpis(&self) -> TcpKpis {
        TcpKpis {
            orig: self.streams[0].kpi,
            resp: self.streams[1].kpi,
            server_delay_us: self.server_delay_us,
            client_delay_us: self.client_delay_us,
            app_response_count: self.art_count,
            app_response_sum_us: self.art_sum_us,
            app_response_max_us: self.art_max_us,
        }
    }

    /// One TCP segment from `dir` (ToServer = from the originator).
    #[allow(clippy::too_many_arguments)]
    pub fn on_tcp(
        &mut self,
        dir: Direction,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        payload: &[u8],
        ts_ns: u64,
        cx: &mut StreamCtx<'_>,
    ) {
        let i = idx(dir);
        {
            let k = &mut self.streams[i].kpi;
            if flags & SYN != 0 {
                if flags & ACK != 0 {
                    k.syn_ack += 1;
                } else {
                    k.syn += 1;
                }
            }
            if flags & FIN != 0 {
                k.fin += 1;
            }
            if flags & RST != 0 {
                k.rst += 1;
            }
            if window == 0 && flags & (RST | SYN) == 0 {
                k.zero_window += 1;
            }
            if (1..=8).contains(&payload.len()) {
                k.tiny += 1;
            }
        }
        self.handshake_timing(dir, flags, ts_ns);

        self.expire_acked_holes(ts_ns, cx);
        // The peer acknowledged bytes of the other direction that we never
        // saw: reordered by the mirror (wait for them) or lost by it (a gap,
        // once the reorder window has passed).
        if flags & ACK != 0 && flags & RST == 0 {
            self.on_ack(dir.reverse(), ack, ts_ns, cx);
        }

        let s = &mut self.streams[i];
        let mut seq = seq;
        if flags & SYN != 0 {
            s.started = true;
            seq = seq.wrapping_add(1);
            s.next_seq = seq;
        } else if !s.started {
            // Picked up mid-stream.
            s.started = true;
            s.next_seq = seq;
        }
        if flags & FIN != 0 {
            s.fin_at = Some(seq.wrapping_add(payload.len() as u32));
        }
        if payload.is_empty() {
            if flags & FIN != 0 && seq == s.next_seq {
                // FIN takes one sequence number.
                s.next_seq = seq.wrapping_add(1);
                self.pump(ts_ns, cx);
            }
            return;
        }
        let ack = (flags & ACK != 0).then_some(ack);
        self.on_data(dir, seq, ack, payload, ts_ns, cx);
    }

    /// The payload of one segment of `dir` starting at `seq`.
    fn on_data(
        &mut self,
        dir: Direction,
        seq: u32,
        ack: Option<u32>,
        payload: &[u8],
        ts_ns: u64,
        cx: &mut StreamCtx<'_>,
    ) {
        let i = idx(dir);
        let s = &mut self.streams[i];
        let end = seq.wrapping_add(payload.len() as u32);
        let all_held =
            || !s.held.is_empty() && seq_le(s.next_seq, seq) && seq_le(end, s.contiguous_end());
        if seq_le(end, s.next_seq) || all_held() {
            s.kpi.retransmitted += 1;
            return;
        }
        if s.acked_hole.is_some() && seq_lt(s.contiguous_end(), seq) {
            // This direction moved past bytes its peer acknowledged: a mirror
            // keeps one direction's order, so they were lost, not reordered.
            self.lost_acked_hole(dir, seq, ts_ns, cx);
        }
        let s = &mut self.streams[i];
        let mut seq = seq;
        let mut data = payload;
        if seq_lt(seq, s.next_seq) {
            // Partly old: the first bytes seen win.
            s.kpi.retransmitted += 1;
            let skip = s.next_seq.wrapping_sub(seq) as usize;
            data = data.get(skip..).unwrap_or(&[]);
            seq = s.next_seq;
        }
        let blocked = self.waits(dir, ack);
        let s = &mut self.streams[i];
        if seq == s.next_seq && !blocked {
            s.next_seq = end;
            self.deliver(dir, data, ack, ts_ns, cx);
            self.pump(ts_ns, cx);
            return;
        }
        let in_order = seq == s.contiguous_end();
        if !in_order {
            // Ahead of a hole.
            s.kpi.out_of_order += 1;
            if !self.wants_bytes() {
                // Nothing will read these bytes: track the sequence space
                // only.
                let s = &mut self.streams[i];
                if seq_lt(s.next_seq, end) {
                    s.next_seq = end;
                }
                return;
            }
        }
        let s = &mut self.streams[i];
        let over_cap = s.held_bytes + data.len() > cx.limits.max_ooo_per_flow;
        if over_cap {
            cx.counters.ooo_flow_cap_hit += 1;
        }
        let no_budget = !over_cap && !cx.budget.take(data.len());
        if no_budget {
            cx.counters.worker_cap_hit += 1;
        }
        if blocked && (over_cap || no_budget) {
            // No room to keep waiting for the other direction: its hole is a
            // gap now, which unblocks this one; go on as if it never waited.
            self.resolve_acked_hole(dir.reverse(), ts_ns, cx);
            return self.on_data(dir, seq, ack, data, ts_ns, cx);
        }
        if over_cap {
            // Give up on the hole: skip to the first held byte (or this one).
            let s = &self.streams[i];
            let to = s
                .held
                .first()
                .map_or(seq, |h| if seq_lt(seq, h.seq) { seq } else { h.seq });
            self.gap(dir, to, ts_ns, cx);
            // Retry this segment now that the stream moved on.
            let s = &mut self.streams[i];
            if seq == s.next_seq {
                s.next_seq = end;
                self.deliver(dir, data, ack, ts_ns, cx);
                self.pump(ts_ns, cx);
                return;
            }
            if !cx.budget.take(data.len()) {
                cx.counters.worker_cap_hit += 1;
                return self.skip_to(dir, seq, ack, data, ts_ns, cx);
            }
        } else if no_budget {
            return self.skip_to(dir, seq, ack, data, ts_ns, cx);
        }
        let s = &mut self.streams[i];
        let pos = s
            .held
            .iter()
            .position(|h| seq_lt(seq, h.seq))
            .unwrap_or(s.held.len());
        s.held_bytes += data.len();
        s.held.insert(
            pos,
            Held {
                seq,
                ack,
                waited_ts_ns: in_order.then_some(ts_ns),
                data: data.to_vec(),
            },
        );
    }

    /// No buffer for a segment ahead of a hole: the hole is a gap and the
    /// segment is delivered at once.
    fn skip_to(
        &mut self,
        dir: Direction,
        seq: u32,
        ack: Option<u32>,
        data: &[u8],
        ts_ns: u64,
        cx: &mut StreamCtx<'_>,
    ) {
        self.gap(dir, seq, ts_ns, cx);
        self.streams[idx(dir)].next_seq = seq.wrapping_add(data.len() as u32);
        self.deliver(dir, data, ack, ts_ns, cx);
        self.pump(ts_ns, cx);
    }

    /// An acknowledgement for `dir` (sent by its peer) up to `ack`.
    fn on_ack(&mut self, dir: Direction, ack: u32, ts_ns: u64, cx: &mut StreamCtx<'_>) {
        let s = &mut self.streams[idx(dir)];
        if !s.started {
            // Nothing of `dir` seen yet (its SYN-ACK or first segment is late):
            // the first acknowledgement says where its bytes start, a higher
            // one that bytes were sent (a server-first protocol's greeting).
            match s.first_ack {
                None => s.first_ack = Some(ack),
                Some(first) if seq_lt(first, ack) && cx.limits.reorder_window_ns > 0 => {
                    s.wait_for(ack, ts_ns)
                }
                Some(_) => {}
            }
            return;
        }
        if !seq_lt(s.next_seq, ack) {
            return;
        }
        // Bytes held from the acknowledged range were seen: the hole ends at
        // the first of them.
        let to = match s.held.first() {
            Some(h) if seq_lt(h.seq, ack) => h.seq,
            _ => ack,
        };
        if !seq_lt(s.next_seq, to) {
            return;
        }
        if cx.limits.reorder_window_ns == 0 {
            self.gap(dir, to, ts_ns, cx);
            return;
        }
        s.wait_for(ack, ts_ns);
    }

    /// Whether a segment of `dir` acknowledging `ack` waits for the other
    /// direction: it acknowledges bytes of it that are waited for. A segment
    /// goes to the parser only after the bytes its sender had received, so a
    /// parser (and the response time) sees a request before its response
    /// whatever order the mirror delivered them in.
    fn waits(&self, dir: Direction, ack: Option<u32>) -> bool {
        let o = &self.streams[idx(dir.reverse())];
        o.acked_hole.is_some() && ack.is_some_and(|a| o.behind(a))
    }

    /// Acknowledged holes whose reorder window has passed become gaps.
    fn expire_acked_holes(&mut self, ts_ns: u64, cx: &mut StreamCtx<'_>) {
        if self.streams[0].acked_hole.is_none() && self.streams[1].acked_hole.is_none() {
            return;
        }
        for d in [Direction::ToServer, Direction::ToClient] {
            if let Some(h) = self.streams[idx(d)].acked_hole {
                if ts_ns.saturating_sub(h.since_ns) > cx.limits.reorder_window_ns {
                    self.resolve_acked_hole(d, ts_ns, cx);
                }
            }
        }
    }

    /// A segment of `dir` arrived at `seq`, past its acknowledged hole: the
    /// hole (up to `seq` at most) is a gap now.
    fn lost_acked_hole(&mut self, dir: Direction, seq: u32, ts_ns: u64, cx: &mut StreamCtx<'_>) {
        let i = idx(dir);
        if self.streams[i].acked_hole.take().is_none() {
            return;
        }
        cx.counters.reorder_expired += 1;
        let s = &self.streams[i];
        let to = match s.held.first() {
            Some(h) if seq_lt(h.seq, seq) => h.seq,
            _ => seq,
        };
        self.gap(dir, to, ts_ns, cx);
        self.pump(ts_ns, cx);
    }

    /// Stops waiting for the acknowledged hole of `dir`: what is still
    /// missing is a gap, and the other direction's held bytes go on.
    fn resolve_acked_hole(&mut self, dir: Direction, ts_ns: u64, cx: &mut StreamCtx<'_>) {
        let i = idx(dir);
        let Some(h) = self.streams[i].acked_hole.take() else {
            return;
        };
        let mut expired = !self.streams[i].started;
        while self.streams[i].started {
            let s = &self.streams[i];
            let to = match s.held.first() {
                Some(first) if seq_lt(first.seq, h.ack) => first.seq,
                _ => h.ack,
            };
            if !seq_lt(s.next_seq, to) {
                break;
            }
            self.gap(dir, to, ts_ns, cx);
            expired = true;
        }
        if expired {
            cx.counters.reorder_expired += 1;
        } else {
            cx.counters.reorder_filled += 1;
        }
        self.pump(ts_ns, cx);
    }

    /// One UDP datagram from `dir`.
    pub fn on_udp(
        &mut self,
        dir: Direction,
        src_port: u16,
        dst_port: u16,
        payload: &[u8],
        ts_ns: u64,
        cx: &mut StreamCtx<'_>,
    ) {
        if let App::Detecting = self.app {
            match detect_udp(src_port, dst_port, payload) {
                Some(p) => {
                    self.proto = Some(p);
                    self.app = App::Parsing(new_parser(p, Transport::Udp, cx.app_cfg));
                    cx.counters.detected += 1;
                }
                None => {
                    self.app = App::None;
                    cx.counters.undetected += 1;
                }
            }
        }
        if let App::Parsing(parser) = &mut self.app {
            self.driver
                .datagram(parser.as_mut(), dir, payload, &Ctx::new(ts_ns), cx);
            cx.counters.delivered_bytes += payload.len() as u64;
        }
    }

    fn wants_bytes(&self) -> bool {
        match &self.app {
            App::Detecting => true,
            App::Parsing(p) => !p.is_done(),
            App::None => false,
        }
    }

    fn handshake_timing(&mut self, dir: Direction, flags: u8, ts_ns: u64) {
        let syn = flags & SYN != 0;
        let ackf = flags & ACK != 0;
        match (dir, syn, ackf) {
            (Direction::ToServer, true, false) => {
                self.syn_ns.get_or_insert(ts_ns);
            }
            (Direction::ToClient, true, true) => {
                if let Some(s) = self.syn_ns {
                    if self.syn_ack_ns.is_none() {
                        self.server_delay_us = Some(ts_ns.saturating_sub(s) / 1_000);
                    }
                }
                self.syn_ack_ns.get_or_insert(ts_ns);
            }
            (Direction::ToServer, false, true) => {
                if let (Some(sa), None) = (self.syn_ack_ns, self.client_delay_us) {
                    self.client_delay_us = Some(ts_ns.saturating_sub(sa) / 1_000);
                }
            }
            _ => {}
        }
    }

    /// Application response time: from the end of the client's bytes to
    /// the first server bytes that acknowledge all of them (so a server that
    /// talks before it has the whole request, as SSH's banners do, is not
    /// timed, and the count does not depend on how the mirror interleaved
    /// the two directions).
    fn data_timing(&mut self, dir: Direction, ack: Option<u32>, ts_ns: u64) {
        if dir == Direction::ToServer {
            self.awaiting_response = true;
            self.request_end = self.streams[0].next_seq;
        } else if self.awaiting_response && ack.is_none_or(|a| seq_le(self.request_end, a)) {
            self.awaiting_response = false;
            let req_end = self.streams[0].last_data_ns;
            let us = ts_ns.saturating_sub(req_end) / 1_000;
            self.art_count += 1;
            self.art_sum_us += us;
            self.art_max_us = self.art_max_us.max(us);
        }
        self.streams[idx(dir)].last_data_ns = ts_ns;
    }

    /// Delivers what became deliverable in either direction (held segments
    /// that became contiguous and no longer wait for the other direction)
    /// until nothing moves.
    fn pump(&mut self, ts_ns: u64, cx: &mut StreamCtx<'_>) {
        let [a, b] = &mut self.streams;
        if a.held.is_empty()
            && b.held.is_empty()
            && a.acked_hole.is_none()
            && b.acked_hole.is_none()
        {
            // Nothing held, nothing waited for (almost every segment).
            for s in [a, b] {
                if s.fin_at == Some(s.next_seq) {
                    s.next_seq = s.next_seq.wrapping_add(1);
                }
            }
            return;
        }
        while self.drain(Direction::ToServer, ts_ns, cx)
            | self.drain(Direction::ToClient, ts_ns, cx)
        {}
    }

    /// Delivers the deliverable held segments of `dir`; whether it moved.
    fn drain(&mut self, dir: Direction, ts_ns: u64, cx: &mut StreamCtx<'_>) -> bool {
        let i = idx(dir);
        let mut moved = false;
        loop {
            let s = &self.streams[i];
            let Some(first) = s.held.first() else {
                break;
            };
            if seq_lt(s.next_seq, first.seq) || self.waits(dir, first.ack) {
                break;
            }
            let s = &mut self.streams[i];
            let h = s.held.remove(0);
            s.held_bytes -= h.data.len();
            cx.budget.give(h.data.len());
            moved = true;
            let end = h.seq.wrapping_add(h.data.len() as u32);
            if seq_le(end, s.next_seq) {
                continue; // entirely delivered already
            }
            let skip = s.next_seq.wrapping_sub(h.seq) as usize;
            s.next_seq = end;
            let data = h.data.get(skip..).unwrap_or(&[]);
            self.deliver(dir, data, h.ack, h.waited_ts_ns.unwrap_or(ts_ns), cx);
        }
        let s = &mut self.streams[i];
        if s.fin_at == Some(s.next_seq) {
            s.next_seq = s.next_seq.wrapping_add(1);
            moved = true;
        }
        // An acknowledged hole this direction filled is no longer waited for.
        if let Some(h) = s.acked_hole {
            if seq_le(h.ack, s.next_seq) {
                s.acked_hole = None;
                cx.counters.reorder_filled += 1;
                moved = true;
            }
        }
        moved
    }

    /// Skips the stream of `dir` forward to `to`, telling the parser.
    fn gap(&mut self, dir: Direction, to: u32, ts_ns: u64, cx: &mut StreamCtx<'_>) {
        let i = idx(dir);
        let s = &mut self.streams[i];
        if !seq_lt(s.next_seq, to) {
            return;
        }
        let missed = u64::from(to.wrapping_sub(s.next_seq));
        s.next_seq = to;
        s.kpi.missed_bytes += missed;
        cx.counters.gaps += 1;
        cx.counters.missed_bytes += missed;
        match &mut self.app {
            App::Parsing(p) => {
                // What the parser emits on the gap belongs to this direction.
                cx.dir = dir;
                self.driver.gap(p.as_mut(), dir, missed, cx)
            }
            // Detection cannot continue on a broken stream (giving up drops
            // what was held).
            App::Detecting => self.give_up_detection(cx),
            // Nothing is buffered without a parser or detection.
            App::None => {}
        }
        self.pump(ts_ns, cx);
    }

    /// In-order bytes of `dir`.
    fn deliver(
        &mut self,
        dir: Direction,
        data: &[u8],
        ack: Option<u32>,
        ts_ns: u64,
        cx: &mut StreamCtx<'_>,
    ) {
        if data.is_empty() {
            return;
        }
        // Timed in stream order, not arrival order: a mirror may deliver a
        // response before its request.
        self.data_timing(dir, ack, ts_ns);
        cx.dir = dir;
        cx.counters.delivered_bytes += data.len() as u64;
        if let App::Detecting = self.app {
            self.detect(dir, data, cx);
        }
        if let App::Parsing(parser) = &mut self.app {
            self.driver
                .feed(parser.as_mut(), dir, data, &Ctx::new(ts_ns), cx);
        }
    }

    fn detect(&mut self, dir: Direction, data: &[u8], cx: &mut StreamCtx<'_>) {
        // The first bytes of each direction: what is buffered so far plus this.
        let held = self.driver.buffered(dir);
        let verdict = {
            let (client, server) = self.ports;
            if held.is_empty() {
                detect_tcp(client, server, dir, data)
            } else {
                let mut v = Vec::with_capacity(held.len() + data.len());
                v.extend_from_slice(held);
                v.extend_from_slice(data);
                detect_tcp(client, server, dir, &v)
            }
        };
        match verdict {
            Detect::Proto(p) => {
                self.proto = Some(p);
                let mut parser = new_parser(p, Transport::Tcp, cx.app_cfg);
                cx.counters.detected += 1;
                // Bytes held back during detection go first (client side
                // first), timestamped 0 as they always were: their packets'
                // times are not kept.
                self.driver.start(parser.as_mut(), &Ctx::default(), cx);
                self.app = App::Parsing(parser);
            }
            Detect::NeedMore => {
                if self.driver.buffered(dir).len() + data.len() > cx.limits.max_detect_bytes
                    || !self.driver.hold(dir, data, cx)
                {
                    self.give_up_detection(cx);
                }
            }
            Detect::Unknown => self.give_up_detection(cx),
        }
    }

    fn give_up_detection(&mut self, cx: &mut StreamCtx<'_>) {
        self.app = App::None;
        cx.counters.undetected += 1;
        self.driver.release(cx);
    }

    /// Flow end: holes left are gaps; the parser emits what it still holds.
    pub fn finish(&mut self, ts_ns: u64, cx: &mut StreamCtx<'_>) {
        for d in [Direction::ToServer, Direction::ToClient] {
            self.resolve_acked_hole(d, ts_ns, cx);
        }
        for d in [Direction::ToServer, Direction::ToClient] {
            while let Some(to) = self.streams[idx(d)].held.first().map(|h| h.seq) {
                let before = self.streams[idx(d)].held.len();
                self.gap(d, to, ts_ns, cx);
                if self.streams[idx(d)].held.len() == before {
                    // Nothing moved (the held segment starts behind next_seq): drop it.
                    let s = &mut self.streams[idx(d)];
                    let h = s.held.remove(0);
                    s.held_bytes -= h.data.len();
                    cx.budget.give(h.data.len());
                }
            }
        }
        if let App::Parsing(parser) = &mut self.app {
            // What a parser still holds at flow end is written as it always
            // was, whatever direction was delivered last.
            cx.dir = Direction::ToServer;
            self.driver.finish(parser.as_mut(), &Ctx::new(ts_ns), cx);
            self.app_stats.add(&parser.stats());
        } else {
            self.driver.release(cx);
        }
        self.app = App::None;
    }
}

impl StreamCounters {
    /// Lists these counters (the `stream` section of the `stats` event and
    /// their metrics).
    pub fn list(&self, v: &mut dyn Listing) {
        use output::metrics::{fig, Kind::Counter};
        let t = self;
        fig(
            v,
            "delivered_bytes",
            "flowtap_stream_delivered_bytes_total",
            Counter,
            "TCP payload bytes reassembly delivered in order to the parsers.",
            &[],
            t.delivered_bytes,
        );
        fig(
            v,
            "gaps",
            "flowtap_stream_gaps_total",
            Counter,
            "Holes in TCP streams reported to the parsers.",
            &[],
            t.gaps,
        );
        fig(
            v,
            "missed_bytes",
            "flowtap_stream_missed_bytes_total",
            Counter,
            "TCP payload bytes never seen (in the holes).",
            &[],
            t.missed_bytes,
        );
        const REORDER: &str = "Holes the peer acknowledged before the mirror delivered their bytes (cross-direction reordering), by outcome: filled (the bytes came within stream.reorder_window_us) or expired (they became a gap).";
        for (key, outcome, value) in [
            ("reorder_filled", "filled", t.reorder_filled),
            ("reorder_expired", "expired", t.reorder_expired),
        ] {
            fig(
                v,
                key,
                "flowtap_stream_acked_unseen_total",
                Counter,
                REORDER,
                &[("outcome", outcome)],
                value,
            );
        }
        const LIMIT: &str = "Times a reassembly limit was hit, by limit: ooo_flow (out-of-order bytes of a flow), worker (bytes of all flows of a worker), pending (segments waiting).";
        for (key, limit, value) in [
            ("ooo_flow_cap_hit", "ooo_flow", t.ooo_flow_cap_hit),
            ("worker_cap_hit", "worker", t.worker_cap_hit),
            ("pending_cap_hit", "pending", t.pending_cap_hit),
        ] {
            fig(
                v,
                key,
                "flowtap_stream_limit_hits_total",
                Counter,
                LIMIT,
                &[("limit", limit)],
                value,
            );
        }
    }
}
