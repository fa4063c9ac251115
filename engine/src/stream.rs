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
    /// Whether the app layer runs at all.
    pub app_enabled: bool,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_ooo_per_flow: 256 << 10,
            max_pending_per_flow: 256 << 10,
            max_detect_bytes: 4096,
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

/// What the stream layer needs from the worker while handling a packet.
pub struct StreamCtx<'a> {
    pub limits: &'a StreamLimits,
    pub app_cfg: &'a AppConfig,
    pub budget: &'a mut Budget,
    pub counters: &'a mut StreamCounters,
    /// Events produced by the parser, wrapped and emitted by the caller.
    pub events: &'a mut Vec<AppEvent>,
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
        self.events.push(ev);
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

/// A segment held until the hole before it fills.
struct Held {
    seq: u32,
    data: Vec<u8>,
}

#[derive(Default)]
struct Stream {
    started: bool,
    next_seq: u32,
    held: Vec<Held>,
    held_bytes: usize,
    kpi: TcpDirectionKpis,
    /// Time of the last payload segment.
    last_data_ns: u64,
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
    /// Direction of the last payload seen, for application response time.
    last_data_dir: Option<Direction>,
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
            last_data_dir: None,
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

        // The peer acknowledged bytes of the other direction that we never
        // saw: the mirror lost them. Deliver what is held and report the gap.
        if flags & ACK != 0 && flags & RST == 0 {
            let other = dir.reverse();
            let o = &self.streams[idx(other)];
            if o.started && seq_lt(o.next_seq, ack) {
                let to = match o.held.first() {
                    Some(h) if seq_lt(h.seq, ack) => h.seq,
                    _ => ack,
                };
                self.gap(other, to, ts_ns, cx);
            }
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
        if payload.is_empty() {
            if flags & FIN != 0 && seq == s.next_seq {
                // FIN takes one sequence number.
                s.next_seq = seq.wrapping_add(1);
            }
            return;
        }
        self.data_timing(dir, ts_ns);
        let s = &mut self.streams[i];
        let end = seq.wrapping_add(payload.len() as u32);
        if seq_le(end, s.next_seq) {
            s.kpi.retransmitted += 1;
            return;
        }
        let mut data = payload;
        if seq_lt(seq, s.next_seq) {
            // Partly old: the first bytes seen win.
            s.kpi.retransmitted += 1;
            let skip = s.next_seq.wrapping_sub(seq) as usize;
            data = data.get(skip..).unwrap_or(&[]);
            seq = s.next_seq;
        }
        if seq == s.next_seq {
            s.next_seq = end;
            self.deliver(dir, data, ts_ns, cx);
            self.drain_held(dir, ts_ns, cx);
            let s = &mut self.streams[i];
            if flags & FIN != 0 && s.next_seq == end {
                s.next_seq = end.wrapping_add(1);
            }
            return;
        }
        // Ahead of a hole.
        s.kpi.out_of_order += 1;
        if !self.wants_bytes() {
            // Nothing will read these bytes: track the sequence space only.
            let s = &mut self.streams[i];
            s.next_seq = end;
            return;
        }
        let s = &mut self.streams[i];
        if s.held_bytes + data.len() > cx.limits.max_ooo_per_flow {
            cx.counters.ooo_flow_cap_hit += 1;
            // Give up on the hole: skip to the first held byte (or this one).
            let to = s
                .held
                .first()
                .map_or(seq, |h| if seq_lt(seq, h.seq) { seq } else { h.seq });
            self.gap(dir, to, ts_ns, cx);
            // Retry this segment now that the stream moved on.
            let s = &mut self.streams[i];
            if seq == s.next_seq {
                s.next_seq = end;
                self.deliver(dir, data, ts_ns, cx);
                self.drain_held(dir, ts_ns, cx);
                return;
            }
        }
        let s = &mut self.streams[i];
        if !cx.budget.take(data.len()) {
            cx.counters.worker_cap_hit += 1;
            let to = seq;
            self.gap(dir, to, ts_ns, cx);
            let s = &mut self.streams[i];
            s.next_seq = end;
            self.deliver(dir, data, ts_ns, cx);
            self.drain_held(dir, ts_ns, cx);
            return;
        }
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
                data: data.to_vec(),
            },
        );
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

    /// Application response time: the first server payload after client payload.
    fn data_timing(&mut self, dir: Direction, ts_ns: u64) {
        if dir == Direction::ToClient && self.last_data_dir == Some(Direction::ToServer) {
            let req_end = self.streams[0].last_data_ns;
            let us = ts_ns.saturating_sub(req_end) / 1_000;
            self.art_count += 1;
            self.art_sum_us += us;
            self.art_max_us = self.art_max_us.max(us);
        }
        self.last_data_dir = Some(dir);
        self.streams[idx(dir)].last_data_ns = ts_ns;
    }

    /// Delivers held segments that became contiguous.
    fn drain_held(&mut self, dir: Direction, ts_ns: u64, cx: &mut StreamCtx<'_>) {
        let i = idx(dir);
        loop {
            let s = &mut self.streams[i];
            let Some(first) = s.held.first() else {
                return;
            };
            if seq_lt(s.next_seq, first.seq) {
                return;
            }
            let h = s.held.remove(0);
            s.held_bytes -= h.data.len();
            cx.budget.give(h.data.len());
            let end = h.seq.wrapping_add(h.data.len() as u32);
            if seq_le(end, s.next_seq) {
                continue; // entirely delivered already
            }
            let skip = s.next_seq.wrapping_sub(h.seq) as usize;
            s.next_seq = end;
            let data = h.data.get(skip..).unwrap_or(&[]);
            self.deliver(dir, data, ts_ns, cx);
        }
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
            App::Parsing(p) => self.driver.gap(p.as_mut(), dir, missed, cx),
            // Detection cannot continue on a broken stream (giving up drops
            // what was held).
            App::Detecting => self.give_up_detection(cx),
            // Nothing is buffered without a parser or detection.
            App::None => {}
        }
        self.drain_held(dir, ts_ns, cx);
    }

    /// In-order bytes of `dir`.
    fn deliver(&mut self, dir: Direction, data: &[u8], ts_ns: u64, cx: &mut StreamCtx<'_>) {
        if data.is_empty() {
            return;
        }
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
