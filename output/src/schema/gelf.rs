//! GELF 1.1: `version`, `host`, `short_message`, `timestamp` (seconds with
//! microseconds), `level` (6, informational) and flat `_`-prefixed additional
//! fields holding only strings and numbers. 64-bit ids are strings, since
//! GELF numbers are doubles.

use dissect::event::{AppEnvelope, FlowRecord};

use crate::event::StatValue;

use super::common::{has_ports, hex2, hex2_str, transport_name};
use super::EncodeOptions;
use crate::event::proto_name;
use crate::json::{JsonWriter, StrBuilder};

fn head(
    w: &mut JsonWriter<'_>,
    opts: &EncodeOptions,
    short: impl FnOnce(&mut StrBuilder<'_>),
    ts_ns: u64,
) {
    w.str("version", "1.1");
    w.str("host", opts.host());
    w.str_with("short_message", short);
    w.epoch_secs("timestamp", ts_ns);
    w.u64("level", 6);
}

#[inline(always)]
fn id_str(w: &mut JsonWriter<'_>, key: &str, v: u64) {
    w.str_with(key, |s| {
        s.u64(v);
    });
}

/// `TCP 10.0.0.1:1234 -> 10.0.0.2:80`
fn push_tuple(
    s: &mut StrBuilder<'_>,
    proto: u8,
    src: &std::net::IpAddr,
    sp: u16,
    dst: &std::net::IpAddr,
    dp: u16,
) {
    match proto_name(proto) {
        Some(n) => s.text(n),
        None => s.u64(u64::from(proto)),
    };
    s.text(" ").ip(src);
    if has_ports(proto) {
        s.text(":").u64(u64::from(sp));
    }
    s.text(" -> ").ip(dst);
    if has_ports(proto) {
        s.text(":").u64(u64::from(dp));
    }
}

fn tuple_fields(
    w: &mut JsonWriter<'_>,
    proto: u8,
    src: &std::net::IpAddr,
    sp: u16,
    dst: &std::net::IpAddr,
    dp: u16,
) {
    w.ip("_src_ip", src);
    w.ip("_dest_ip", dst);
    if has_ports(proto) {
        w.u64("_src_port", u64::from(sp));
        w.u64("_dest_port", u64::from(dp));
    }
    match transport_name(proto) {
        Some(n) => w.str("_proto", n),
        None => w.u64("_proto", u64::from(proto)),
    }
    w.u64("_ip_proto", u64::from(proto));
}

#[inline(always)]
fn mac_field(w: &mut JsonWriter<'_>, key: &str, m: &Option<[u8; 6]>) {
    if let Some(m) = m {
        w.mac(key, m);
    }
}

fn vlan_field(w: &mut JsonWriter<'_>, vlans: &[u16]) {
    if let Some(v) = vlans.first() {
        w.u64("_vlan", u64::from(*v));
    }
    if let Some(v) = vlans.get(1) {
        w.u64("_vlan_inner", u64::from(*v));
    }
}

pub fn encode_flow(opts: &EncodeOptions, rec: &FlowRecord, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    head(
        &mut w,
        opts,
        |s| {
            s.text("flow ");
            push_tuple(
                s,
                rec.proto,
                &rec.src_ip,
                rec.src_port,
                &rec.dst_ip,
                rec.dst_port,
            );
            s.text(" ").text(rec.end_reason.as_str());
        },
        rec.end_ns,
    );
    w.str("_event_type", "flow");
    id_str(&mut w, "_flow_id", rec.flow_id);
    w.str("_community_id", rec.community_id);
    tuple_fields(
        &mut w,
        rec.proto,
        &rec.src_ip,
        rec.src_port,
        &rec.dst_ip,
        rec.dst_port,
    );
    mac_field(&mut w, "_src_mac", &rec.src_mac);
    mac_field(&mut w, "_dest_mac", &rec.dst_mac);
    vlan_field(&mut w, rec.vlans);
    if let Some(a) = rec.app_proto {
        w.str("_app_proto", a);
    }
    w.timestamp("_flow_start", rec.start_ns);
    w.timestamp("_flow_end", rec.end_ns);
    w.u64(
        "_flow_duration_us",
        rec.end_ns.saturating_sub(rec.start_ns) / 1_000,
    );
    w.u64("_pkts_toserver", rec.orig.packets);
    w.u64("_bytes_toserver", rec.orig.bytes);
    w.u64("_pkts_toclient", rec.resp.packets);
    w.u64("_bytes_toclient", rec.resp.bytes);
    w.str("_flow_reason", rec.end_reason.as_str());
    w.u64("_flow_slice", u64::from(rec.slice));
    if let Some(side) = rec.one_sided {
        w.u64("_flow_one_sided", 1); // GELF values are strings or numbers
        w.str("_flow_seen", side.as_str());
    }
    if rec.app_transactions > 0 {
        w.u64("_flow_app_transactions", u64::from(rec.app_transactions));
        w.u64("_flow_app_errors", u64::from(rec.app_errors));
    }
    if rec.proto == 6 {
        w.str("_tcp_flags_ts", hex2_str(&hex2(rec.orig.tcp_flags)));
        w.str("_tcp_flags_tc", hex2_str(&hex2(rec.resp.tcp_flags)));
        w.str("_tcp_state", rec.conn_state);
        w.str("_tcp_history", rec.history);
    }
    if let Some(t) = &rec.tunnel {
        w.str("_tunnel_type", t.kind);
        w.ip("_tunnel_src_ip", &t.outer_src);
        w.ip("_tunnel_dest_ip", &t.outer_dst);
        if let Some(id) = t.id {
            w.u64("_tunnel_id", u64::from(id));
        }
    }
    w.finish_line();
}

pub fn encode_app(opts: &EncodeOptions, env: &AppEnvelope<'_>, buf: &mut Vec<u8>) {
    let kind = super::app_type(env).as_str();
    let mut w = JsonWriter::object(buf);
    head(
        &mut w,
        opts,
        |s| {
            s.text(kind);
            env.event.writers().gelf_short(s);
        },
        env.ts_ns,
    );
    w.str("_event_type", kind);
    id_str(&mut w, "_flow_id", env.flow_id);
    w.str("_community_id", env.community_id);
    tuple_fields(
        &mut w,
        env.proto,
        &env.src_ip,
        env.src_port,
        &env.dst_ip,
        env.dst_port,
    );
    mac_field(&mut w, "_src_mac", &env.src_mac);
    mac_field(&mut w, "_dest_mac", &env.dst_mac);
    vlan_field(&mut w, env.vlans);
    w.str("_direction", super::common::direction_name(env.direction));
    env.event.writers().gelf(&mut w, &opts.write_options());
    w.finish_line();
}

/// Stats as flat fields: `_stats_packets_received`, ...
pub fn encode_stats(opts: &EncodeOptions, ev: &crate::event::StatsEvent, buf: &mut Vec<u8>) {
    let ts_ns = ev.ts_ns;
    let mut w = JsonWriter::object(buf);
    head(
        &mut w,
        opts,
        |s| {
            s.text("flowtap stats");
        },
        ts_ns,
    );
    w.str("_event_type", "stats");
    let mut key = String::from("_stats");
    flatten(&mut w, &mut key, &ev.members);
    w.finish_line();
}

/// Members sorted by key at every level, as `_stats_<path>` fields.
fn flatten(w: &mut JsonWriter<'_>, key: &mut String, members: &[(String, StatValue)]) {
    let mut order: Vec<&(String, StatValue)> = members.iter().collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in order {
        let len = key.len();
        key.push('_');
        key.extend(
            k.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
        match v {
            StatValue::Object(m) => flatten(w, key, m),
            StatValue::Number(n) => w.u64(key, *n),
            StatValue::Flag(b) => w.u64(key, u64::from(*b)),
            StatValue::Text(s) => w.str(key, s),
        }
        key.truncate(len);
    }
}

/// A finished pcap export file, as flat `_pcap_*` fields.
pub fn encode_pcap(opts: &EncodeOptions, ev: &crate::event::PcapEvent<'_>, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    head(
        &mut w,
        opts,
        |s| {
            s.text("pcap ")
                .text(ev.path)
                .text(" (")
                .u64(ev.packets)
                .text(" packets)");
        },
        ev.ts_ns,
    );
    w.str("_event_type", "pcap");
    if let Some(id) = ev.flow_id {
        id_str(&mut w, "_flow_id", id);
    }
    if let Some(c) = ev.community_id {
        w.str("_community_id", c);
    }
    w.str("_pcap_path", ev.path);
    w.str("_pcap_rule", ev.rule);
    if let Some(r) = ev.reason {
        w.str("_pcap_reason", r);
    }
    w.str("_pcap_format", ev.format);
    if let Some(c) = ev.compression {
        w.str("_pcap_compression", c);
    }
    w.u64("_pcap_packets", ev.packets);
    w.u64("_pcap_bytes", ev.file_bytes);
    w.u64("_pcap_captured_bytes", ev.captured_bytes);
    w.u64("_pcap_dropped_packets", ev.dropped_packets);
    w.str("_pcap_sha256", ev.sha256);
    if let Some(t) = ev.first_ts_ns {
        w.epoch_secs("_pcap_first_ts", t);
    }
    if let Some(t) = ev.last_ts_ns {
        w.epoch_secs("_pcap_last_ts", t);
    }
    w.u64("_pcap_truncated", u64::from(ev.truncated));
    w.finish_line();
}
