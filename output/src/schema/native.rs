//! Native flowtap JSON (schema version [`super::NATIVE_SCHEMA_VERSION`],
//! documented in `docs/schema-native.md`).

use dissect::event::{AppEnvelope, FlowRecord};

use super::common::{direction_name, proto_member};
use super::EncodeOptions;
use crate::json::JsonWriter;

pub fn encode_flow(rec: &FlowRecord, buf: &mut Vec<u8>) {
    crate::json::encode_flow(rec, buf);
}

/// The members every app event starts with (`timestamp` … `vlan`).
pub(crate) fn app_head(w: &mut JsonWriter<'_>, env: &AppEnvelope<'_>, kind: &str, z: bool) {
    if z {
        w.timestamp("timestamp", env.ts_ns);
    } else {
        w.timestamp_eve("timestamp", env.ts_ns);
    }
    w.u64("flow_id", env.flow_id);
    w.str("event_type", kind);
    w.ip("src_ip", &env.src_ip);
    w.u64("src_port", u64::from(env.src_port));
    w.ip("dest_ip", &env.dst_ip);
    w.u64("dest_port", u64::from(env.dst_port));
    proto_member(w, "proto", env.proto);
}

pub fn encode_app(opts: &EncodeOptions, env: &AppEnvelope<'_>, buf: &mut Vec<u8>) {
    let kind = super::app_type(env).as_str();
    let mut w = JsonWriter::object(buf);
    app_head(&mut w, env, kind, true);
    w.str("community_id", env.community_id);
    w.str("direction", direction_name(env.direction));
    if !env.vlans.is_empty() {
        w.u64_array("vlan", env.vlans.iter().map(|&v| u64::from(v)));
    }
    w.str("app_proto", kind);
    env.event.writers().native(&mut w, &opts.write_options());
    w.finish_line();
}

/// A `stats` event: the counters in listing order.
pub fn encode_stats(ev: &crate::event::StatsEvent, buf: &mut Vec<u8>) {
    let mut stats = Vec::with_capacity(4096);
    super::common::stats_object(&mut stats, &ev.members, false);
    let mut w = JsonWriter::object(buf);
    w.timestamp("timestamp", ev.ts_ns);
    w.str("event_type", "stats");
    w.raw("stats", &stats);
    w.finish_line();
}

/// A finished pcap export file.
pub fn encode_pcap(ev: &crate::event::PcapEvent<'_>, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    w.timestamp("timestamp", ev.ts_ns);
    if let Some(id) = ev.flow_id {
        w.u64("flow_id", id);
    }
    w.str("event_type", "pcap");
    if let Some(c) = ev.community_id {
        w.str("community_id", c);
    }
    let mut o = w.begin_object("pcap");
    super::common::pcap_members(&mut o, ev, |w, k, t| w.timestamp(k, t));
    o.end_object();
    w.finish_line();
}
