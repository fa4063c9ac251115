//! Suricata eve.json layout, so that existing EVE consumers (Suricata
//! dashboards, Filebeat's suricata module, Arkime's eve import) read flowtap.
//!
//! Mapping notes: `flow.reason` is Suricata's (`timeout` for fin, rst, idle
//! and active timeouts, `forced` for eviction, `shutdown`); `flow.state` is
//! `new` / `established` / `closed`; a DNS transaction is one `dns` event
//! (v3) of `type` `response` when an answer was seen, else `request`.

use dissect::event::{AppEnvelope, EndReason, FlowRecord};

use super::common::{has_ports, hex2, hex2_str, ip_version, proto_member};
use super::EncodeOptions;
use crate::json::JsonWriter;

fn reason(r: EndReason) -> &'static str {
    match r {
        EndReason::Fin | EndReason::Rst | EndReason::IdleTimeout | EndReason::ActiveTimeout => {
            "timeout"
        }
        EndReason::Evicted => "forced",
        EndReason::Shutdown => "shutdown",
    }
}

fn flow_state(rec: &FlowRecord) -> &'static str {
    if rec.proto == 6 {
        match rec.conn_state {
            "S0" | "OTH" | "" => "new",
            "S1" | "S2" | "S3" => "established",
            _ => "closed",
        }
    } else if rec.orig.packets > 0 && rec.resp.packets > 0 {
        "established"
    } else {
        "new"
    }
}

fn tcp_state(conn_state: &str) -> &'static str {
    match conn_state {
        "S0" => "syn_sent",
        "S1" => "established",
        "S2" | "S3" => "fin_wait1",
        "OTH" | "" => "none",
        _ => "closed",
    }
}

pub fn encode_flow(rec: &FlowRecord, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    w.timestamp_eve("timestamp", rec.end_ns);
    w.u64("flow_id", rec.flow_id);
    w.str("event_type", "flow");
    w.ip("src_ip", &rec.src_ip);
    if has_ports(rec.proto) {
        w.u64("src_port", u64::from(rec.src_port));
    }
    w.ip("dest_ip", &rec.dst_ip);
    if has_ports(rec.proto) {
        w.u64("dest_port", u64::from(rec.dst_port));
    }
    w.u64("ip_v", ip_version(&rec.src_ip));
    proto_member(&mut w, "proto", rec.proto);
    if matches!(rec.proto, 1 | 58) {
        w.u64("icmp_type", u64::from(rec.src_port));
    }
    if !rec.vlans.is_empty() {
        w.u64_array("vlan", rec.vlans.iter().map(|&v| u64::from(v)));
    }
    if let Some(app) = rec.app_proto {
        w.str("app_proto", app);
    }
    if let (Some(s), Some(d)) = (&rec.src_mac, &rec.dst_mac) {
        let mut e = w.begin_object("ether");
        e.mac("src_mac", s);
        e.mac("dest_mac", d);
        e.end_object();
    }
    let mut f = w.begin_object("flow");
    f.u64("pkts_toserver", rec.orig.packets);
    f.u64("pkts_toclient", rec.resp.packets);
    f.u64("bytes_toserver", rec.orig.bytes);
    f.u64("bytes_toclient", rec.resp.bytes);
    f.timestamp_eve("start", rec.start_ns);
    f.timestamp_eve("end", rec.end_ns);
    f.u64(
        "age",
        (rec.end_ns / 1_000_000_000).saturating_sub(rec.start_ns / 1_000_000_000),
    );
    f.str("state", flow_state(rec));
    f.str("reason", reason(rec.end_reason));
    if let Some(side) = rec.one_sided {
        f.bool("one_sided", true);
        f.str("seen", side.as_str());
    }
    f.bool("alerted", false);
    if rec.app_transactions > 0 {
        f.u64("tx_cnt", u64::from(rec.app_transactions));
        f.u64("app_errors", u64::from(rec.app_errors));
    }
    f.end_object();
    w.str("community_id", rec.community_id);
    if let Some(t) = &rec.tunnel {
        let mut o = w.begin_object("tunnel");
        o.ip("src_ip", &t.outer_src);
        o.ip("dest_ip", &t.outer_dst);
        o.str("proto", t.kind);
        if let Some(id) = t.id {
            o.u64("id", u64::from(id));
        }
        o.end_object();
    }
    if rec.proto == 6 {
        let all = rec.orig.tcp_flags | rec.resp.tcp_flags;
        let mut t = w.begin_object("tcp");
        t.str("tcp_flags", hex2_str(&hex2(all)));
        t.str("tcp_flags_ts", hex2_str(&hex2(rec.orig.tcp_flags)));
        t.str("tcp_flags_tc", hex2_str(&hex2(rec.resp.tcp_flags)));
        for (bit, name) in [
            (0x02, "syn"),
            (0x01, "fin"),
            (0x04, "rst"),
            (0x08, "psh"),
            (0x10, "ack"),
            (0x20, "urg"),
            (0x40, "ecn"),
            (0x80, "cwr"),
        ] {
            if all & bit != 0 {
                t.bool(name, true);
            }
        }
        t.str("state", tcp_state(rec.conn_state));
        t.end_object();
    }
    w.finish_line();
}

pub fn encode_app(opts: &EncodeOptions, env: &AppEnvelope<'_>, buf: &mut Vec<u8>) {
    let kind = super::app_type(env).as_str();
    let mut w = super::native::app_head(buf, env, kind, false).into_object();
    w.u64("ip_v", ip_version(&env.src_ip));
    if !env.vlans.is_empty() {
        w.u64_array("vlan", env.vlans.iter().map(|&v| u64::from(v)));
    }
    w.str("community_id", env.community_id);
    env.event.writers().eve(&mut w, &opts.write_options());
    w.finish_line();
}

pub fn encode_stats(ev: &crate::event::StatsEvent, buf: &mut Vec<u8>) {
    let mut stats = Vec::with_capacity(4096);
    super::common::stats_object(&mut stats, &ev.members, true);
    let mut w = JsonWriter::object(buf);
    w.timestamp_eve("timestamp", ev.ts_ns);
    w.str("event_type", "stats");
    w.raw("stats", &stats);
    w.finish_line();
}

/// A finished pcap export file (Suricata has no such event; the layout
/// follows its other events: envelope, then an object named after the type).
pub fn encode_pcap(ev: &crate::event::PcapEvent<'_>, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    w.timestamp_eve("timestamp", ev.ts_ns);
    if let Some(id) = ev.flow_id {
        w.u64("flow_id", id);
    }
    w.str("event_type", "pcap");
    if let Some(c) = ev.community_id {
        w.str("community_id", c);
    }
    let mut o = w.begin_object("pcap");
    super::common::pcap_members(&mut o, ev, |w, k, t| w.timestamp_eve(k, t));
    o.end_object();
    w.finish_line();
}
