//! Pieces several schemas share.

use std::net::IpAddr;

use dissect::app::Direction;

use crate::event::proto_name;
use crate::event::StatValue;
use crate::json::JsonWriter;

/// Lower-case transport name (ECS `network.transport`).
pub fn transport_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        58 => "ipv6-icmp",
        132 => "sctp",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        _ => return None,
    })
}

/// Writes `proto` as its name, or as its number when it has none.
#[inline(always)]
pub fn proto_member(w: &mut JsonWriter<'_>, key: &str, proto: u8) {
    match proto_name(proto) {
        Some(n) => w.str(key, n),
        None => w.u64(key, u64::from(proto)),
    }
}

/// Whether this protocol has ports (ICMP "ports" are type/code stand-ins).
pub fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132)
}

pub fn ip_version(ip: &IpAddr) -> u64 {
    if ip.is_ipv4() {
        4
    } else {
        6
    }
}

/// Two lower-case hex digits.
pub fn hex2(b: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]
}

pub fn hex2_str(b: &[u8; 2]) -> &str {
    std::str::from_utf8(b).unwrap_or("00")
}

pub fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::ToServer => "to_server",
        Direction::ToClient => "to_client",
    }
}

/// A deterministic 64-bit event id (FNV-1a over the flow id, type and times).
pub fn event_id(flow_id: u64, kind: &str, ts_ns: u64, n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&flow_id.to_le_bytes());
    eat(kind.as_bytes());
    eat(&ts_ns.to_le_bytes());
    eat(&n.to_le_bytes());
    h
}

/// 16 lower-case hex digits.
pub fn hex16(v: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, b) in v.to_be_bytes().iter().enumerate() {
        let h = hex2(*b);
        out[2 * i] = h[0];
        out[2 * i + 1] = h[1];
    }
    out
}

pub fn hex16_str(b: &[u8; 16]) -> &str {
    std::str::from_utf8(b).unwrap_or("0000000000000000")
}

/// The `pcap` object's members (native, eve and nanocorp share them);
/// `ts` writes a timestamp in the schema's own format.
pub fn pcap_members(
    o: &mut JsonWriter<'_>,
    ev: &crate::event::PcapEvent<'_>,
    ts: impl Fn(&mut JsonWriter<'_>, &str, u64),
) {
    o.str("path", ev.path);
    o.str("rule", ev.rule);
    if let Some(id) = ev.flow_id {
        o.u64("flow_id", id);
    }
    if let Some(c) = ev.community_id {
        o.str("community_id", c);
    }
    if let Some(r) = ev.reason {
        o.str("reason", r);
    }
    if let Some(w) = ev.worker {
        o.u64("worker", u64::from(w));
    }
    o.str("format", ev.format);
    if let Some(c) = ev.compression {
        o.str("compression", c);
    }
    o.u64("packets", ev.packets);
    o.u64("bytes", ev.file_bytes);
    o.u64("captured_bytes", ev.captured_bytes);
    o.u64("dropped_packets", ev.dropped_packets);
    o.str("sha256", ev.sha256);
    if let Some(t) = ev.first_ts_ns {
        ts(o, "first_ts", t);
    }
    if let Some(t) = ev.last_ts_ns {
        ts(o, "last_ts", t);
    }
    o.bool("truncated", ev.truncated);
}

/// Writes a stats object (`{...}`) into `buf`: members in listing order, or
/// sorted by key at every level (`sorted`: the layout ECS, EVE and
/// nanocorp have always had).
pub fn stats_object(buf: &mut Vec<u8>, members: &[(String, StatValue)], sorted: bool) {
    let mut order: Vec<&(String, StatValue)> = members.iter().collect();
    if sorted {
        order.sort_by(|a, b| a.0.cmp(&b.0));
    }
    buf.push(b'{');
    for (i, (k, v)) in order.into_iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        crate::json::write_escaped(buf, k.as_bytes());
        buf.push(b':');
        match v {
            StatValue::Number(n) => crate::json::push_u64(buf, *n),
            StatValue::Flag(f) => buf.extend_from_slice(if *f { b"true" } else { b"false" }),
            StatValue::Text(t) => crate::json::write_escaped(buf, t.as_bytes()),
            StatValue::Object(m) => stats_object(buf, m, sorted),
        }
    }
    buf.push(b'}');
}
