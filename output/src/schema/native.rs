//! Native flowtap JSON (schema version [`super::NATIVE_SCHEMA_VERSION`],
//! documented in `docs/schema-native.md`).

use dissect::event::{AppEnvelope, FlowRecord};

use super::common::direction_name;
use super::EncodeOptions;
use crate::json::{endpoint_members, JsonCursor, JsonWriter};

pub fn encode_flow(rec: &FlowRecord, buf: &mut Vec<u8>) {
    crate::json::encode_flow(rec, buf);
}

/// Opens an app event's object with the members every one starts with
/// (`timestamp` … `proto`), written at a cursor: one literal for the keys
/// between two values. Z: the timestamp in the native spelling (`…Z`),
/// else in Suricata's (`…+0000`).
pub(crate) fn app_head<'b>(
    buf: &'b mut Vec<u8>,
    env: &AppEnvelope<'_>,
    kind: &str,
    z: bool,
) -> JsonCursor<'b> {
    // Room for the native envelope (about 290 bytes with IPv4 addresses
    // and a 30-byte Community ID) and the widest piece's scratch bytes;
    // the body written after it grows the buffer as it needs.
    let mut c = JsonCursor::new(buf, 384);
    if z {
        c.member_timestamp(b"{\"timestamp\":\"", env.ts_ns);
    } else {
        c.member_timestamp_eve(b"{\"timestamp\":\"", env.ts_ns);
    }
    c.member_u64(b",\"flow_id\":", env.flow_id);
    c.member_str(b",\"event_type\":\"", kind);
    endpoint_members(
        &mut c,
        (&env.src_ip, env.src_port),
        (&env.dst_ip, env.dst_port),
        env.proto,
    );
    c
}

pub fn encode_app(opts: &EncodeOptions, env: &AppEnvelope<'_>, buf: &mut Vec<u8>) {
    let kind = super::app_type(env).as_str();
    let mut c = app_head(buf, env, kind, true);
    c.member_str(b",\"community_id\":\"", env.community_id);
    c.member_str(b",\"direction\":\"", direction_name(env.direction));
    if let Some((first, rest)) = env.vlans.split_first() {
        c.member_u64(b",\"vlan\":[", u64::from(*first));
        for &v in rest {
            c.member_u64(b",", u64::from(v));
        }
        c.lit(b"]");
    }
    c.member_str(b",\"app_proto\":\"", kind);
    let mut w = c.into_object();
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
