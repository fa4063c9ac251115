//! One worker: decode, defragment, track flows, encode records. Run to
//! completion on the core that owns the flows; no locks, no allocation per
//! packet, the clock is the packets' own time, read once per batch.

use std::sync::{Arc, Mutex};

use capture::{Packet, PacketSource, Poll};
use dissect::app::AppStats;
use dissect::event::{AppEnvelope, FlowRecord};
use dissect::flow::{FlowKey, KeyConfig};
use dissect::packet::{decode_fresh, decode_ip_payload, DecodeConfig, DecodeStatus, Decoded};
use output::writer::BatchSender;
use output::WorkerOutput;

use crate::config::Config;
use crate::dedup::Dedup;
use crate::defrag::{Defrag, FragKey, Insert};
use crate::export::{ExportRules, ExportRun, FlowExport, FragStash, RawFrame};
use crate::flow::{FlowTable, PacketInfo, RecordSink};
use crate::kpi::AppMetrics;
use crate::stats::{AppEventCounts, WorkerStats};

const NS: u64 = 1_000_000_000;

/// A worker's events on their way to the sinks: each record is encoded once
/// per schema the sinks use and batched per sink (see `output::outputs`).
pub struct EventBatch {
    out: Option<WorkerOutput>,
    /// Records emitted (whether or not a sink took them).
    pub encoded: u64,
    /// Of which application-layer events.
    pub app_encoded: u64,
    /// Application-layer events by type.
    pub app_by_type: AppEventCounts,
    /// Also hands every record and app event, unencoded, to this sink
    /// (`flowtap discover` aggregates them in process).
    tap: Option<Box<dyn RecordSink + Send>>,
    /// Application metrics counted from the records and events (None: off).
    kpi: Option<Box<AppMetrics>>,
}

impl RecordSink for EventBatch {
    fn flow(&mut self, rec: &FlowRecord) {
        self.push_flow(rec);
    }

    fn app(&mut self, env: &AppEnvelope<'_>) {
        self.push_app(env);
    }
}

impl EventBatch {
    /// `None`: no sink (benchmarks); the sinks' own limits size the batches.
    pub fn new(sender: Option<BatchSender>, _batch_bytes: usize) -> EventBatch {
        EventBatch::with_output(sender.map(|s| s.worker()))
    }

    pub fn with_output(out: Option<WorkerOutput>) -> EventBatch {
        EventBatch {
            out,
            encoded: 0,
            app_encoded: 0,
            app_by_type: AppEventCounts::default(),
            tap: None,
            kpi: None,
        }
    }

    /// Every record and app event also goes, as is, to `tap`.
    pub fn with_tap(mut self, tap: Box<dyn RecordSink + Send>) -> EventBatch {
        self.tap = Some(tap);
        self
    }

    fn push_flow(&mut self, rec: &FlowRecord) {
        if let Some(o) = &mut self.out {
            o.push_flow(rec);
        }
        if let Some(t) = &mut self.tap {
            t.flow(rec);
        }
        if let Some(k) = &mut self.kpi {
            k.flow(rec);
        }
        self.encoded += 1;
    }

    fn push_app(&mut self, env: &AppEnvelope<'_>) {
        if let Some(o) = &mut self.out {
            o.push_app(env);
        }
        if let Some(t) = &mut self.tap {
            t.app(env);
        }
        if let Some(k) = &mut self.kpi {
            k.app(env);
        }
        self.encoded += 1;
        self.app_encoded += 1;
        self.app_by_type.count(env.event.proto());
    }

    /// Hands batches over: all when `force`, else those past their age limit.
    fn flush(&mut self, force: bool) {
        if let Some(o) = &mut self.out {
            o.flush(force);
        }
    }
}

pub struct Worker {
    decode_cfg: DecodeConfig,
    key_cfg: KeyConfig,
    table: FlowTable,
    defrag: Defrag,
    stats: WorkerStats,
    out: EventBatch,
    now_ns: u64,
    next_housekeeping_ns: u64,
    /// Where the stats thread reads this worker's counters.
    published: Option<Arc<Mutex<WorkerStats>>>,
    /// PCAP export is on (its state lives in the flow table).
    exporting: bool,
    /// Some rule takes every frame.
    capture_all: bool,
    /// Fragment frames waiting for their datagram (export only).
    frag_stash: Option<FragStash>,
    /// Duplicate detection (None: `dedup.mode = "off"`).
    dedup: Option<Dedup>,
    /// Reused: the frames of the datagram just reassembled.
    frag_frames: Vec<(u64, u32, u32, Vec<u8>)>,
}

impl Worker {
    pub fn new(cfg: &Config, mut out: EventBatch) -> Worker {
        // Application metrics only have a reader when /metrics is served.
        if cfg.app_metrics.enabled && !cfg.output.metrics_listen.is_empty() {
            out.kpi = Some(Box::new(AppMetrics::new(&cfg.app_metrics)));
        }
        Worker {
            decode_cfg: cfg.decode.decode_config(),
            key_cfg: KeyConfig {
                vlan: cfg.flow.vlan_in_key,
                tunnel_id: cfg.flow.tunnel_id_in_key,
            },
            table: FlowTable::new(
                cfg.flow.max_flows_per_worker,
                cfg.flow.timeouts.flow_timeouts(),
                cfg.stream.limits(cfg.app.enabled),
                cfg.app.clone(),
                cfg.stream.max_bytes_per_worker,
            ),
            defrag: Defrag::new(
                cfg.defrag.max_bytes_per_worker,
                cfg.defrag.max_datagrams_per_worker,
                cfg.defrag.timeout.saturating_mul(NS),
            ),
            stats: WorkerStats::default(),
            out,
            now_ns: 0,
            next_housekeeping_ns: 0,
            published: None,
            exporting: false,
            capture_all: false,
            frag_stash: None,
            frag_frames: Vec::new(),
            dedup: cfg
                .dedup
                .mode()
                .ok()
                .flatten()
                .map(|m| Dedup::new(m, &cfg.dedup)),
        }
    }

    /// Turns PCAP export on for worker number `index`: the run's rules and
    /// this worker's handle on the writer thread.
    pub fn attach_export(&mut self, run: &ExportRun, index: usize) {
        self.set_export(
            run.rules(),
            run.handle(),
            u16::try_from(index).unwrap_or(u16::MAX),
        );
    }

    /// Turns PCAP export on: `handle` is this worker's (number `index`)
    /// handle on the writer thread.
    pub fn set_export(
        &mut self,
        rules: Arc<ExportRules>,
        handle: output::pcap::PcapHandle,
        index: u16,
    ) {
        if rules.is_empty() {
            return;
        }
        self.capture_all = !rules.capture_all.is_empty();
        if rules.flow_rules != 0 {
            self.frag_stash = Some(FragStash::new(rules.fragment_bytes));
        }
        self.table.set_export(FlowExport::new(rules, handle, index));
        self.exporting = true;
    }

    /// A configuration reload: events go to `sender`'s sinks from now on
    /// (the old handle hands over what it holds as it is dropped). Flows,
    /// reassembly and counters carry on. See `crate::reload`.
    pub fn replace_sender(&mut self, sender: Option<BatchSender>) {
        self.out.flush(true);
        self.out.out = sender.map(|s| s.worker());
    }

    /// A configuration reload changed `[app_metrics]` (its label limits):
    /// the application metrics start again with the new section (None:
    /// off). Their counters restart from zero, as after a restart, which
    /// Prometheus' `rate()` takes as a counter reset.
    pub fn replace_app_metrics(&mut self, section: Option<&crate::kpi::AppMetricsSection>) {
        self.out.kpi = section
            .filter(|s| s.enabled)
            .map(|s| Box::new(AppMetrics::new(s)));
        // /metrics shows the restart at once, not at the next housekeeping.
        self.publish();
    }

    /// A configuration reload: PCAP export by `rules` through `handle` from
    /// now on, or none (see [`FlowTable::replace_export`]). The old handle
    /// is dropped here, after its last chunk (the closes) is handed over.
    pub fn replace_export(
        &mut self,
        export: Option<(Arc<ExportRules>, output::pcap::PcapHandle)>,
        index: u16,
    ) {
        let new = export
            .filter(|(rules, _)| !rules.is_empty())
            .map(|(rules, handle)| {
                self.capture_all = !rules.capture_all.is_empty();
                if rules.flow_rules != 0 && self.frag_stash.is_none() {
                    self.frag_stash = Some(FragStash::new(rules.fragment_bytes));
                }
                FlowExport::new(rules, handle, index)
            });
        self.exporting = new.is_some();
        if !self.exporting {
            self.capture_all = false;
        }
        if let Some(mut old) = self.table.replace_export(new) {
            old.flush();
        }
    }

    /// Lets a stats thread read this worker's counters (updated once per batch).
    pub fn publish_to(&mut self, slot: Arc<Mutex<WorkerStats>>) {
        self.published = Some(slot);
    }

    /// Runs one packet to completion.
    #[inline]
    pub fn process(&mut self, pkt: &Packet<'_>) {
        let mut d = Decoded::default();
        decode_fresh(pkt.link.0, pkt.data, &self.decode_cfg, &mut d);
        self.process_decoded(pkt, &d);
    }

    /// Runs one packet to completion that its source already decoded (with
    /// the run's decode settings, to find its owner: see [`crate::shard`]).
    // Always inlined into `process`: a call per packet with this many
    // registers to save showed in the profile (~15 instructions a packet).
    #[inline(always)]
    pub fn process_decoded(&mut self, pkt: &Packet<'_>, d: &Decoded<'_>) {
        self.stats.received += 1;
        self.stats.bytes += u64::from(pkt.orig_len);
        if pkt.ts_ns > self.now_ns {
            self.now_ns = pkt.ts_ns;
        }
        // The frame as export keeps it: made only where export is on.
        let raw = || RawFrame {
            ts_ns: pkt.ts_ns,
            orig_len: pkt.orig_len,
            link: pkt.link.0,
            data: pkt.data,
        };
        if self.capture_all {
            if let Some(ex) = self.table.export_mut() {
                ex.capture_all(&raw());
            }
        }
        match d.status {
            DecodeStatus::Ok => {}
            DecodeStatus::NotIp(_) => {
                self.stats.not_ip += 1;
                return;
            }
            DecodeStatus::UnsupportedLink(_) => {
                self.count_error("link", "unsupported_link_type");
                self.stats.undecodable += 1;
                return;
            }
            DecodeStatus::Truncated(layer) => {
                self.count_error(layer.as_str(), "truncated");
                if d.ip.is_some() {
                    self.stats.truncated += 1;
                }
            }
            DecodeStatus::Malformed(layer, why) => {
                self.count_error(layer.as_str(), why.as_str());
            }
        }
        let Some(ip) = &d.ip else {
            self.stats.undecodable += 1;
            return;
        };
        if let Some(dd) = self.dedup.as_mut() {
            if dd.is_dropped(pkt.data, d, pkt.ts_ns) {
                self.stats.duplicate += 1;
                return;
            }
        }
        if let Some(frag) = ip.frag {
            self.stats.fragment += 1;
            let key = FragKey {
                src: ip.src,
                dst: ip.dst,
                id: frag.id,
                proto: ip.proto,
                vlan: d.vlans.as_slice().last().copied().unwrap_or(0),
            };
            let proto = ip.proto;
            if let Some(stash) = self.frag_stash.as_mut() {
                stash.hold(key, &raw());
            }
            let inserted = self.defrag.insert(
                key,
                frag.offset,
                frag.more,
                d.ip_payload,
                pkt.ts_ns,
                u64::from(pkt.orig_len),
            );
            if let Insert::Complete(r) = inserted {
                {
                    let mut whole = Decoded::default();
                    decode_ip_payload(d, proto, &r.payload, &self.decode_cfg, &mut whole);
                    let mut held = std::mem::take(&mut self.frag_frames);
                    if let Some(stash) = self.frag_stash.as_mut() {
                        stash.take(&key, &mut held);
                    }
                    let frames: Vec<RawFrame<'_>> = held
                        .iter()
                        .map(|(ts_ns, orig_len, link, data)| RawFrame {
                            ts_ns: *ts_ns,
                            orig_len: *orig_len,
                            link: *link,
                            data,
                        })
                        .collect();
                    self.account(&whole, pkt.ts_ns, r.frames, r.bytes, &frames);
                    drop(frames);
                    if let Some(stash) = self.frag_stash.as_mut() {
                        stash.recycle(&mut held);
                    }
                    self.frag_frames = held;
                }
                self.defrag.recycle(r.payload);
            }
            return;
        }
        self.stats.flow += 1;
        let frame;
        let raw: &[RawFrame<'_>] = if self.exporting {
            frame = raw();
            std::slice::from_ref(&frame)
        } else {
            &[]
        };
        self.account(d, pkt.ts_ns, 1, u64::from(pkt.orig_len), raw);
    }

    fn count_error(&mut self, layer: &'static str, why: &'static str) {
        *self.stats.decode_errors.entry((layer, why)).or_default() += 1;
    }

    #[inline]
    fn account(
        &mut self,
        d: &Decoded<'_>,
        ts_ns: u64,
        frames: u64,
        bytes: u64,
        raw: &[RawFrame<'_>],
    ) {
        let Some((key, from_first)) = FlowKey::from_decoded(d, &self.key_cfg) else {
            return;
        };
        let info = PacketInfo {
            hash: key.hash64(),
            key,
            from_first,
            decoded: d,
            ts_ns,
            frames,
            bytes,
            raw,
        };
        self.table.on_packet(&info, &mut self.out);
    }

    /// Housekeeping after a batch: timeouts, output hand-over, published counters.
    pub fn end_batch(&mut self) {
        if self.now_ns >= self.next_housekeeping_ns {
            // Once per second of traffic time is plenty for timeouts of seconds.
            self.next_housekeeping_ns = self.now_ns.saturating_add(NS);
            self.table.advance(self.now_ns, &mut self.out);
            self.defrag.expire(self.now_ns);
            if let Some(k) = &mut self.out.kpi {
                k.rebalance();
            }
            // Export chunks go to the writer when full, and at least once a
            // second (traffic time; wall time when idle): waking the writer
            // after every batch costs more than the copying.
            if let Some(ex) = self.table.export_mut() {
                ex.flush();
            }
            self.publish();
        }
        self.out.flush(false);
    }

    /// A packet another worker owns was read at `ts_ns` (in a replay where
    /// every worker reads the whole file): the flow clock follows the
    /// capture, as it would with one worker.
    #[inline]
    pub fn observe_time(&mut self, ts_ns: u64) {
        if ts_ns > self.now_ns {
            self.now_ns = ts_ns;
        }
    }

    /// Live capture with nothing to read: moves the flow clock to `now_ns`
    /// (wall clock) and does the housekeeping, so flows time out on a quiet
    /// link. Packet times never move the clock back.
    pub fn tick(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        self.end_batch();
    }

    /// Hands the records encoded so far to the writer even if the batch is
    /// not full (live capture calls it a few times a second, so records of
    /// a quiet link do not wait for a full batch).
    pub fn flush_output(&mut self) {
        self.out.flush(true);
    }

    /// Capture ended at `final_ns` (the newest packet time of all workers):
    /// every flow is emitted, every counter settled.
    pub fn finish(&mut self, final_ns: u64) -> WorkerStats {
        let now = final_ns.max(self.now_ns);
        self.table.flush_all(now, &mut self.out);
        self.defrag.finish();
        self.out.flush(true);
        if let Some(ex) = self.table.export_mut() {
            ex.flush();
        }
        self.publish();
        self.stats()
    }

    pub fn stats(&self) -> WorkerStats {
        let mut s = self.stats.clone();
        s.flows = self.table.counters();
        s.defrag = self.defrag.counters();
        s.records = self.out.encoded - self.out.app_encoded;
        s.app_events = self.out.app_encoded;
        s.app_by_type = self.out.app_by_type;
        s.stream = self.table.stream_counters();
        s.app_by_proto = self.table.app_stats();
        s.app = AppStats::default();
        for a in &s.app_by_proto {
            s.app.add(a);
        }
        s.stream_bytes_held = self.table.stream_bytes() as u64;
        s.dedup = self.dedup.as_ref().map(|d| d.counters);
        s.app_metrics = self.out.kpi.clone();
        if let Some(mut e) = self.table.export_counters() {
            e.fragments_dropped = self.frag_stash.as_ref().map_or(0, |f| f.dropped);
            s.export = Some(e);
        }
        s
    }

    fn publish(&self) {
        if let Some(slot) = &self.published {
            if let Ok(mut g) = slot.lock() {
                *g = self.stats();
            }
        }
    }

    /// Polls `source` until it ends, running every packet to completion.
    pub fn run<S: PacketSource>(&mut self, source: &mut S, batch: usize) -> Result<(), S::Error> {
        loop {
            match source.poll_batch(batch, |p| self.process(p))? {
                Poll::Packets(_) => self.end_batch(),
                Poll::Idle => self.end_batch(),
                Poll::End => return Ok(()),
            }
        }
    }
}
