//! Elastic Common Schema 8.11. Every field outside `flowtap.*` is an ECS
//! field of the right type (a test checks them against ECS's field list).

use dissect::event::{AppEnvelope, EndReason, FlowRecord};

use super::common::transport_name;
use super::EncodeOptions;
use crate::json::JsonWriter;

#[inline(always)]
fn mac(w: &mut JsonWriter<'_>, key: &str, m: &[u8; 6]) {
    w.mac_upper_dashed(key, m);
}

/// A number written as a string (ECS keyword fields holding numbers).
#[inline(always)]
fn num_str(w: &mut JsonWriter<'_>, key: &str, v: u64) {
    w.u64_str(key, v);
}

fn head(w: &mut JsonWriter<'_>, opts: &EncodeOptions, ts_ns: u64) {
    w.timestamp("@timestamp", ts_ns);
    // Constant members in few pieces (they are a good part of an event).
    w.raw_members(opts.ecs_constant());
}

struct Side<'a> {
    ip: &'a std::net::IpAddr,
    port: u16,
    mac: &'a Option<[u8; 6]>,
    counts: Option<(u64, u64)>,
}

#[inline(always)]
fn side(w: &mut JsonWriter<'_>, key: &str, s: &Side<'_>, ports: bool) {
    let mut o = w.begin_object(key);
    o.ip_twice("ip", "address", s.ip);
    if ports {
        o.u64("port", u64::from(s.port));
    }
    if let Some(m) = s.mac {
        mac(&mut o, "mac", m);
    }
    if let Some((p, b)) = s.counts {
        o.u64("packets", p);
        o.u64("bytes", b);
    }
    o.end_object();
}

#[inline(always)]
fn network(
    w: &mut JsonWriter<'_>,
    proto: u8,
    ip: &std::net::IpAddr,
    community_id: &str,
    app: Option<&str>,
    vlans: &[u16],
    totals: Option<(u64, u64)>,
) {
    let mut n = w.begin_object("network");
    match transport_name(proto) {
        Some(t) => n.str("transport", t),
        None => num_str(&mut n, "transport", u64::from(proto)),
    }
    num_str(&mut n, "iana_number", u64::from(proto));
    n.str("type", if ip.is_ipv4() { "ipv4" } else { "ipv6" });
    n.str("community_id", community_id);
    if let Some(a) = app {
        n.str("protocol", a);
    }
    if let Some((p, b)) = totals {
        n.u64("packets", p);
        n.u64("bytes", b);
    }
    if let Some(v) = vlans.first() {
        let mut o = n.begin_object("vlan");
        num_str(&mut o, "id", u64::from(*v));
        o.end_object();
    }
    if let Some(v) = vlans.get(1) {
        let mut i = n.begin_object("inner");
        let mut o = i.begin_object("vlan");
        num_str(&mut o, "id", u64::from(*v));
        o.end_object();
        i.end_object();
    }
    n.end_object();
}

pub fn encode_flow(opts: &EncodeOptions, rec: &FlowRecord, buf: &mut Vec<u8>) {
    let ports = super::common::has_ports(rec.proto);
    let mut w = JsonWriter::object(buf);
    head(&mut w, opts, rec.end_ns);
    {
        let mut e = w.begin_object("event");
        if rec.end_reason == EndReason::ActiveTimeout {
            e.raw_members(br#""kind":"event","category":["network"],"type":["connection","info"],"action":"network_flow","dataset":"flowtap.flow","module":"flowtap""#);
        } else {
            e.raw_members(br#""kind":"event","category":["network"],"type":["connection","end"],"action":"network_flow","dataset":"flowtap.flow","module":"flowtap""#);
        }
        e.timestamp("start", rec.start_ns);
        e.timestamp("end", rec.end_ns);
        e.u64("duration", rec.end_ns.saturating_sub(rec.start_ns));
        e.str("reason", rec.end_reason.as_str());
        e.end_object();
    }
    side(
        &mut w,
        "source",
        &Side {
            ip: &rec.src_ip,
            port: rec.src_port,
            mac: &rec.src_mac,
            counts: Some((rec.orig.packets, rec.orig.bytes)),
        },
        ports,
    );
    side(
        &mut w,
        "destination",
        &Side {
            ip: &rec.dst_ip,
            port: rec.dst_port,
            mac: &rec.dst_mac,
            counts: Some((rec.resp.packets, rec.resp.bytes)),
        },
        ports,
    );
    network(
        &mut w,
        rec.proto,
        &rec.src_ip,
        rec.community_id,
        rec.app_proto,
        rec.vlans,
        Some((
            rec.orig.packets + rec.resp.packets,
            rec.orig.bytes + rec.resp.bytes,
        )),
    );
    {
        let mut f = w.begin_object("flowtap");
        f.u64("flow_id", rec.flow_id);
        let mut o = f.begin_object("flow");
        o.u64("slice", u64::from(rec.slice));
        crate::json::flow_observations(&mut o, rec);
        if rec.proto == 6 {
            o.str("state", rec.conn_state);
            o.str("history", rec.history);
            o.str(
                "tcp_flags_ts",
                super::common::hex2_str(&super::common::hex2(rec.orig.tcp_flags)),
            );
            o.str(
                "tcp_flags_tc",
                super::common::hex2_str(&super::common::hex2(rec.resp.tcp_flags)),
            );
        }
        o.end_object();
        if let Some(t) = &rec.tunnel {
            let mut o = f.begin_object("tunnel");
            o.str("type", t.kind);
            o.ip("src_ip", &t.outer_src);
            o.ip("dest_ip", &t.outer_dst);
            if let Some(id) = t.id {
                o.u64("id", u64::from(id));
            }
            o.end_object();
        }
        f.end_object();
    }
    w.finish_line();
}

pub fn encode_app(opts: &EncodeOptions, env: &AppEnvelope<'_>, buf: &mut Vec<u8>) {
    let kind = super::app_type(env).as_str();
    let writers = env.event.writers();
    let ports = super::common::has_ports(env.proto);
    let mut w = JsonWriter::object(buf);
    head(&mut w, opts, env.ts_ns);
    {
        let mut e = w.begin_object("event");
        e.raw_members(writers.ecs_event());
        e.end_object();
    }
    side(
        &mut w,
        "source",
        &Side {
            ip: &env.src_ip,
            port: env.src_port,
            mac: &env.src_mac,
            counts: None,
        },
        ports,
    );
    side(
        &mut w,
        "destination",
        &Side {
            ip: &env.dst_ip,
            port: env.dst_port,
            mac: &env.dst_mac,
            counts: None,
        },
        ports,
    );
    network(
        &mut w,
        env.proto,
        &env.src_ip,
        env.community_id,
        Some(kind),
        env.vlans,
        None,
    );
    writers.ecs(&mut w, &opts.write_options());
    let mut f = w.begin_object("flowtap");
    f.u64("flow_id", env.flow_id);
    f.str("direction", super::common::direction_name(env.direction));
    writers.ecs_flowtap(&mut f);
    f.end_object();
    w.finish_line();
}

pub fn encode_stats(opts: &EncodeOptions, ev: &crate::event::StatsEvent, buf: &mut Vec<u8>) {
    let mut stats = Vec::with_capacity(4096);
    super::common::stats_object(&mut stats, &ev.members, true);
    let mut w = JsonWriter::object(buf);
    head(&mut w, opts, ev.ts_ns);
    let mut e = w.begin_object("event");
    e.str("kind", "metric");
    e.str("dataset", "flowtap.stats");
    e.str("module", "flowtap");
    e.end_object();
    let mut f = w.begin_object("flowtap");
    f.raw("stats", &stats);
    f.end_object();
    w.finish_line();
}

/// A finished pcap export file: ECS `file.*` (path, name, directory,
/// extension, size, hash.sha256), `rule.name`, `event.*` (a file creation),
/// `network.community_id`; the rest under `flowtap.pcap`.
pub fn encode_pcap(opts: &EncodeOptions, ev: &crate::event::PcapEvent<'_>, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    head(&mut w, opts, ev.ts_ns);
    {
        let mut e = w.begin_object("event");
        e.str("kind", "event");
        e.str_array("category", ["file"]);
        e.str_array("type", ["creation"]);
        e.str("dataset", "flowtap.pcap");
        e.str("module", "flowtap");
        if let Some(t) = ev.first_ts_ns {
            e.timestamp("start", t);
        }
        if let Some(t) = ev.last_ts_ns {
            e.timestamp("end", t);
        }
        e.end_object();
    }
    {
        let path = std::path::Path::new(ev.path);
        let mut f = w.begin_object("file");
        f.str("path", ev.path);
        if let Some(n) = path.file_name().and_then(|n| n.to_str()) {
            f.str("name", n);
        }
        if let Some(d) = path.parent().and_then(|d| d.to_str()) {
            f.str("directory", d);
        }
        f.str(
            "extension",
            if ev.compression.is_some() {
                "gz"
            } else {
                ev.format
            },
        );
        f.u64("size", ev.file_bytes);
        let mut h = f.begin_object("hash");
        h.str("sha256", ev.sha256);
        h.end_object();
        f.end_object();
    }
    {
        let mut r = w.begin_object("rule");
        r.str("name", ev.rule);
        r.end_object();
    }
    if let Some(c) = ev.community_id {
        let mut n = w.begin_object("network");
        n.str("community_id", c);
        n.end_object();
    }
    {
        let mut f = w.begin_object("flowtap");
        if let Some(id) = ev.flow_id {
            f.u64("flow_id", id);
        }
        let mut o = f.begin_object("pcap");
        if let Some(r) = ev.reason {
            o.str("reason", r);
        }
        if let Some(wk) = ev.worker {
            o.u64("worker", u64::from(wk));
        }
        o.str("format", ev.format);
        if let Some(c) = ev.compression {
            o.str("compression", c);
        }
        o.u64("packets", ev.packets);
        o.u64("captured_bytes", ev.captured_bytes);
        o.u64("dropped_packets", ev.dropped_packets);
        o.bool("truncated", ev.truncated);
        o.end_object();
        f.end_object();
    }
    w.finish_line();
}
