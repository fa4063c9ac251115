//! Packet accounting. Every packet a worker receives ends in exactly one
//! fate, so `received == sum of fates` holds at any batch boundary:
//!
//! - `flow`: accounted to a flow directly;
//! - `fragment`: handed to defrag (whose own counters say how each ended);
//! - `not_ip`: no IP layer (ARP, LLDP, STP, ...);
//! - `undecodable`: the frame broke before an IP header could be read
//!   (`decode_errors` says at which layer and why).

use std::collections::BTreeMap;

use crate::defrag::DefragCounters;
use crate::flow::TableCounters;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub received: u64,
    pub bytes: u64,
    pub flow: u64,
    pub fragment: u64,
    pub not_ip: u64,
    pub undecodable: u64,
    /// Frames that were cut short (snaplen) but still gave a flow what parsed.
    pub truncated: u64,
    /// (layer, reason) -> count, for frames that stopped early or were malformed.
    pub decode_errors: BTreeMap<(&'static str, &'static str), u64>,
    pub flows: TableCounters,
    pub defrag: DefragCounters,
    /// Flow records emitted.
    pub records: u64,
}

impl WorkerStats {
    pub fn merge(&mut self, o: &WorkerStats) {
        self.received += o.received;
        self.bytes += o.bytes;
        self.flow += o.flow;
        self.fragment += o.fragment;
        self.not_ip += o.not_ip;
        self.undecodable += o.undecodable;
        self.truncated += o.truncated;
        for (k, v) in &o.decode_errors {
            *self.decode_errors.entry(*k).or_default() += v;
        }
        let (a, b) = (&mut self.flows, &o.flows);
        a.created += b.created;
        a.expired += b.expired;
        a.evicted += b.evicted;
        a.ended_at_shutdown += b.ended_at_shutdown;
        a.interim_records += b.interim_records;
        a.active += b.active;
        a.tcp_reuse += b.tcp_reuse;
        let (a, b) = (&mut self.defrag, &o.defrag);
        a.fragments += b.fragments;
        a.reassembled += b.reassembled;
        a.fragments_reassembled += b.fragments_reassembled;
        a.timed_out += b.timed_out;
        a.fragments_timed_out += b.fragments_timed_out;
        a.dropped_at_cap += b.dropped_at_cap;
        a.invalid += b.invalid;
        a.overlapping += b.overlapping;
        a.pending_at_end += b.pending_at_end;
        a.fragments_pending_at_end += b.fragments_pending_at_end;
        self.records += o.records;
    }

    /// Sum of the fates; equals `received` when every packet is accounted.
    pub fn fates(&self) -> u64 {
        self.flow + self.fragment + self.not_ip + self.undecodable
    }
}

/// Appends a `stats` event line with every counter.
pub fn encode_stats(s: &WorkerStats, ts_ns: u64, workers: usize, buf: &mut Vec<u8>) {
    use output::json::JsonWriter;
    let mut w = JsonWriter::object(buf);
    w.timestamp("timestamp", ts_ns);
    w.str("event_type", "stats");
    let mut st = w.begin_object("stats");
    st.u64("workers", workers as u64);
    {
        let mut p = st.begin_object("packets");
        p.u64("received", s.received);
        p.u64("bytes", s.bytes);
        p.u64("flow", s.flow);
        p.u64("fragment", s.fragment);
        p.u64("not_ip", s.not_ip);
        p.u64("undecodable", s.undecodable);
        p.u64("truncated", s.truncated);
        p.bool("accounted", s.fates() == s.received);
        p.end_object();
    }
    {
        let mut e = st.begin_object("decode_errors");
        for ((layer, why), n) in &s.decode_errors {
            let mut key = String::with_capacity(layer.len() + why.len() + 1);
            key.push_str(layer);
            key.push('.');
            key.push_str(why);
            e.u64(&key, *n);
        }
        e.end_object();
    }
    {
        let f = &s.flows;
        let mut o = st.begin_object("flows");
        o.u64("created", f.created);
        o.u64("expired", f.expired);
        o.u64("evicted", f.evicted);
        o.u64("ended_at_shutdown", f.ended_at_shutdown);
        o.u64("interim_records", f.interim_records);
        o.u64("active", f.active);
        o.u64("tcp_port_reuse", f.tcp_reuse);
        o.u64("records", s.records);
        o.end_object();
    }
    {
        let d = &s.defrag;
        let mut o = st.begin_object("defrag");
        o.u64("fragments", d.fragments);
        o.u64("reassembled", d.reassembled);
        o.u64("fragments_reassembled", d.fragments_reassembled);
        o.u64("timed_out", d.timed_out);
        o.u64("fragments_timed_out", d.fragments_timed_out);
        o.u64("dropped_at_cap", d.dropped_at_cap);
        o.u64("invalid", d.invalid);
        o.u64("overlapping", d.overlapping);
        o.u64("pending_at_end", d.pending_at_end);
        o.u64("fragments_pending_at_end", d.fragments_pending_at_end);
        o.end_object();
    }
    st.end_object();
    w.finish_line();
}
