//! Pieces several schemas share.

use std::net::IpAddr;

use dissect::app::dns::{rrtype_name, DnsRdata, DnsRecord};
use dissect::app::Direction;

use crate::json::{JsonWriter, StrBuilder};

/// IANA protocol names as Suricata spells them.
pub fn proto_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        1 => "ICMP",
        6 => "TCP",
        17 => "UDP",
        58 => "IPv6-ICMP",
        132 => "SCTP",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        _ => return None,
    })
}

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

/// "1.1" from "HTTP/1.1".
pub fn http_version_number(v: &str) -> &str {
    v.strip_prefix("HTTP/").unwrap_or(v)
}

/// Cuts `b` to at most `max` bytes.
pub fn cut(b: &[u8], max: usize) -> &[u8] {
    b.get(..max.min(b.len())).unwrap_or(b)
}

/// DNS opcode names (ECS `dns.op_code`).
pub fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        0 => "QUERY",
        1 => "IQUERY",
        2 => "STATUS",
        4 => "NOTIFY",
        5 => "UPDATE",
        6 => "DSO",
        _ => return None,
    })
}

/// Class names (ECS `dns.question.class`).
pub fn class_name(c: u16) -> Option<&'static str> {
    Some(match c {
        1 => "IN",
        3 => "CH",
        4 => "HS",
        254 => "NONE",
        255 => "ANY",
        _ => return None,
    })
}

/// Writes `key` as the record type's name, or its number.
#[inline(always)]
pub fn rrtype_member(w: &mut JsonWriter<'_>, key: &str, t: u16) {
    match rrtype_name(t) {
        Some(n) => w.str(key, n),
        None => w.u64(key, u64::from(t)),
    }
}

/// Whether record data has a text form (A, AAAA, names, MX, TXT, SRV, SOA).
pub fn has_rdata_text(d: &DnsRdata) -> bool {
    !matches!(d, DnsRdata::Other { .. })
}

/// Writes the text form of record data (escaped) into a JSON string being
/// built; nothing for data without one.
pub fn rdata_text(s: &mut StrBuilder<'_>, d: &DnsRdata) {
    match d {
        DnsRdata::A(a) => {
            s.ip(&IpAddr::V4(*a));
        }
        DnsRdata::Aaaa(a) => {
            s.ip(&IpAddr::V6(*a));
        }
        DnsRdata::Name(n) => {
            s.text(n);
        }
        DnsRdata::Mx { exchange, .. } => {
            s.text(exchange);
        }
        DnsRdata::Txt(parts) => {
            for p in parts {
                s.text(p);
            }
        }
        DnsRdata::Srv { target, .. } => {
            s.text(target);
        }
        DnsRdata::Soa { mname, .. } => {
            s.text(mname);
        }
        DnsRdata::Other { .. } => {}
    }
}

/// TLS version names without allocating for the known ones.
#[inline(always)]
pub fn tls_version_member(w: &mut JsonWriter<'_>, key: &str, v: u16) {
    match known_tls_version(v) {
        Some(n) => w.str(key, n),
        None => w.str(key, &dissect::app::tls::version_name(v)),
    }
}

/// The names `dissect::app::tls::version_name` gives the common versions.
pub fn known_tls_version(v: u16) -> Option<&'static str> {
    Some(match v {
        0x0200 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv1",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        _ => return None,
    })
}

/// Writes one answer/authority record the way Suricata's eve v3 does:
/// `rrname`, `rrtype`, `ttl`, then `rdata` or a typed object (`srv`, `soa`, `mx`).
pub fn dns_record_members(w: &mut JsonWriter<'_>, r: &DnsRecord) {
    w.str("rrname", &r.name);
    rrtype_member(w, "rrtype", r.rtype);
    w.u64("ttl", u64::from(r.ttl));
    match &r.data {
        DnsRdata::Srv {
            priority,
            weight,
            port,
            target,
        } => {
            let mut o = w.begin_object("srv");
            o.u64("priority", u64::from(*priority));
            o.u64("weight", u64::from(*weight));
            o.u64("port", u64::from(*port));
            o.str("name", target);
            o.end_object();
        }
        DnsRdata::Soa {
            mname,
            rname,
            serial,
            refresh,
            retry,
            expire,
            minimum,
        } => {
            let mut o = w.begin_object("soa");
            o.str("mname", mname);
            o.str("rname", rname);
            o.u64("serial", u64::from(*serial));
            o.u64("refresh", u64::from(*refresh));
            o.u64("retry", u64::from(*retry));
            o.u64("expire", u64::from(*expire));
            o.u64("minimum", u64::from(*minimum));
            o.end_object();
        }
        DnsRdata::Mx {
            preference,
            exchange,
        } => {
            w.str("rdata", exchange);
            w.u64("preference", u64::from(*preference));
        }
        DnsRdata::Other { len } => w.u64("rdata_len", u64::from(*len)),
        other => w.str_with("rdata", |s| rdata_text(s, other)),
    }
}

/// Header flag names set in a DNS event (ECS `dns.header_flags`).
pub fn dns_flag_names(e: &dissect::app::DnsEvent) -> impl Iterator<Item = &'static str> {
    [
        (e.aa, "AA"),
        (e.tc, "TC"),
        (e.rd, "RD"),
        (e.ra, "RA"),
        (e.ad, "AD"),
        (e.cd, "CD"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
}

/// Lower-case hex of a u16 without leading zeros (Suricata's dns `flags`).
pub fn push_hex_u16(buf: &mut Vec<u8>, v: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = [
        HEX[usize::from(v >> 12)],
        HEX[usize::from((v >> 8) & 0xf)],
        HEX[usize::from((v >> 4) & 0xf)],
        HEX[usize::from(v & 0xf)],
    ];
    // at least one digit
    let skip = (v.leading_zeros() / 4).min(3) as usize;
    buf.extend_from_slice(&digits[skip..]);
}

/// The `pcap` object's members (native, eve and nanocorp share them);
/// `ts` writes a timestamp in the schema's own format.
pub fn pcap_members(
    o: &mut JsonWriter<'_>,
    ev: &crate::pcap::PcapEvent<'_>,
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

#[cfg(test)]
mod tests {
    #[test]
    fn hex_u16_has_no_leading_zeros() {
        for v in [0u16, 1, 0xf, 0x10, 0x100, 0x120, 0x8180, 0xffff, 0x0abc] {
            let mut b = Vec::new();
            super::push_hex_u16(&mut b, v);
            assert_eq!(String::from_utf8_lossy(&b), format!("{v:x}"));
        }
    }
}
