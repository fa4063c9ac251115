//! Nanocorp-style network events: `event_id` (16 hex digits, deterministic:
//! a hash of the flow id, type, time and slice / transaction), `event_type`,
//! `seen_at` (epoch milliseconds), `source_ip`/`source_mac`/`source_port`,
//! `dest_ip`/`dest_mac`/`dest_port`, `proto_path` (`/Ethernet/Vlan/Ipv4/Tcp/Http/`),
//! `network_protocol` (the top protocol, lower case), then one object named
//! after the type.

use dissect::app::Direction;
use dissect::event::{AppEnvelope, FlowRecord};

use super::common::{event_id, has_ports, hex16, hex16_str, transport_name};
use super::EncodeOptions;
use crate::json::{JsonWriter, StrBuilder};

#[allow(clippy::too_many_arguments)]
fn head(
    w: &mut JsonWriter<'_>,
    id: u64,
    kind: &str,
    ts_ns: u64,
    src: (&std::net::IpAddr, u16, &Option<[u8; 6]>),
    dst: (&std::net::IpAddr, u16, &Option<[u8; 6]>),
    proto: u8,
    vlans: &[u16],
    app: Option<&str>,
) {
    w.str("event_id", hex16_str(&hex16(id)));
    w.str("event_type", kind);
    w.u64("seen_at", ts_ns / 1_000_000);
    w.ip("source_ip", src.0);
    if let Some(m) = src.2 {
        w.mac("source_mac", m);
    }
    if has_ports(proto) {
        w.u64("source_port", u64::from(src.1));
    }
    w.ip("dest_ip", dst.0);
    if let Some(m) = dst.2 {
        w.mac("dest_mac", m);
    }
    if has_ports(proto) {
        w.u64("dest_port", u64::from(dst.1));
    }
    w.str_with("proto_path", |s| proto_path(s, src.0, proto, vlans, app));
    match app.or_else(|| transport_name(proto)) {
        Some(p) => w.str("network_protocol", p),
        None => w.u64("network_protocol", u64::from(proto)),
    }
}

/// `/Ethernet/Vlan/Ipv4/Tcp/Http/`
fn proto_path(
    s: &mut StrBuilder<'_>,
    ip: &std::net::IpAddr,
    proto: u8,
    vlans: &[u16],
    app: Option<&str>,
) {
    s.text("/Ethernet/");
    for _ in vlans {
        s.text("Vlan/");
    }
    s.text(if ip.is_ipv4() { "Ipv4/" } else { "Ipv6/" });
    match proto {
        6 => s.text("Tcp/"),
        17 => s.text("Udp/"),
        1 => s.text("Icmp/"),
        58 => s.text("Icmpv6/"),
        132 => s.text("Sctp/"),
        47 => s.text("Gre/"),
        50 => s.text("Esp/"),
        _ => s.text("Ip").u64(u64::from(proto)).text("/"),
    };
    if let Some(a) = app {
        let mut chars = a.chars();
        if let Some(first) = chars.next() {
            let mut tmp = [0u8; 4];
            s.text(first.to_ascii_uppercase().encode_utf8(&mut tmp));
            s.text(chars.as_str()).text("/");
        }
    }
}

pub fn encode_flow(rec: &FlowRecord, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    head(
        &mut w,
        event_id(rec.flow_id, "flow", rec.end_ns, u64::from(rec.slice)),
        "flow",
        rec.end_ns,
        (&rec.src_ip, rec.src_port, &rec.src_mac),
        (&rec.dst_ip, rec.dst_port, &rec.dst_mac),
        rec.proto,
        rec.vlans,
        rec.app_proto,
    );
    w.u64("flow_id", rec.flow_id);
    w.str("community_id", rec.community_id);
    let mut f = w.begin_object("flow");
    f.u64("start_at", rec.start_ns / 1_000_000);
    f.u64("end_at", rec.end_ns / 1_000_000);
    f.u64("packets_sent", rec.orig.packets);
    f.u64("bytes_sent", rec.orig.bytes);
    f.u64("packets_received", rec.resp.packets);
    f.u64("bytes_received", rec.resp.bytes);
    f.str("reason", rec.end_reason.as_str());
    crate::json::flow_observations(&mut f, rec);
    if rec.proto == 6 {
        f.str("tcp_state", rec.conn_state);
        f.str("tcp_history", rec.history);
    }
    f.end_object();
    w.finish_line();
}

pub fn encode_app(opts: &EncodeOptions, env: &AppEnvelope<'_>, buf: &mut Vec<u8>) {
    let kind = super::app_type(env).as_str();
    let writers = env.event.writers();
    let n = writers.nanocorp_id();
    let mut w = JsonWriter::object(buf);
    head(
        &mut w,
        event_id(env.flow_id, kind, env.ts_ns, n),
        kind,
        env.ts_ns,
        (&env.src_ip, env.src_port, &env.src_mac),
        (&env.dst_ip, env.dst_port, &env.dst_mac),
        env.proto,
        env.vlans,
        Some(kind),
    );
    w.u64("flow_id", env.flow_id);
    w.str("community_id", env.community_id);
    w.str(
        "direction",
        match env.direction {
            Direction::ToServer => "outbound",
            Direction::ToClient => "inbound",
        },
    );
    writers.nanocorp(&mut w, &opts.write_options());
    w.finish_line();
}

pub fn encode_stats(ev: &crate::event::StatsEvent, buf: &mut Vec<u8>) {
    let ts_ns = ev.ts_ns;
    let mut stats = Vec::with_capacity(4096);
    super::common::stats_object(&mut stats, &ev.members, true);
    let mut w = JsonWriter::object(buf);
    w.str(
        "event_id",
        hex16_str(&hex16(event_id(0, "stats", ts_ns, 0))),
    );
    w.str("event_type", "stats");
    w.u64("seen_at", ts_ns / 1_000_000);
    w.raw("stats", &stats);
    w.finish_line();
}

/// A finished pcap export file: `event_id`, `event_type`, `seen_at`, then `pcap`.
pub fn encode_pcap(ev: &crate::event::PcapEvent<'_>, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    let n = ev.path.bytes().fold(0u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    w.str(
        "event_id",
        hex16_str(&hex16(event_id(
            ev.flow_id.unwrap_or(0),
            "pcap",
            ev.ts_ns,
            n,
        ))),
    );
    w.str("event_type", "pcap");
    w.u64("seen_at", ev.ts_ns / 1_000_000);
    let mut o = w.begin_object("pcap");
    super::common::pcap_members(&mut o, ev, |w, k, t| w.u64(k, t / 1_000_000));
    o.end_object();
    w.finish_line();
}
