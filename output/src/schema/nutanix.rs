//! Nutanix-style flow lines, one per flow record:
//!
//! `2014-07-18T12:49:30.592064Z SRC=192.168.1.103 DST=195.154.172.150 PROTO=TCP SPORT=52869 DPORT=80 ORIG: PKTS=6 BYTES=531 REPLY: PKTS=5 BYTES=1480`
//!
//! The leading timestamp is the record's end time. `PROTO` is the IANA name
//! (or the number); protocols without ports write `SPORT=0 DPORT=0`.
//!
//! Each line ends as a monitor-mode policy hit log does: `ACTION=MONITOR`
//! (flowtap watches a mirror, it allows or drops nothing), then, when a
//! scope is configured (`[discover] scope`), `DIRECTION=` the flow's
//! direction relative to it: `inbound` (only DST in the scope), `outbound`
//! (only SRC), `internal` (both) or `external` (neither). Parsers that read
//! `KEY=VALUE` pairs keep working; the fields come last.

use std::net::IpAddr;

use dissect::event::FlowRecord;

use super::common::has_ports;
use crate::event::proto_name;
use crate::json::{push_ip, push_rfc3339_micros, push_u64};

/// An address block of the monitor scope (host bits cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopeBlock {
    addr: IpAddr,
    len: u8,
}

impl ScopeBlock {
    /// `addr/len`; `None` when `len` is longer than the address.
    pub fn new(addr: IpAddr, len: u8) -> Option<ScopeBlock> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (len <= max).then(|| ScopeBlock {
            addr: mask(addr, len),
            len,
        })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(*ip, self.len) == self.addr
    }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// A flow's direction relative to `scope` (`None`: no scope configured).
pub fn direction(scope: &[ScopeBlock], src: &IpAddr, dst: &IpAddr) -> Option<&'static str> {
    if scope.is_empty() {
        return None;
    }
    let s = scope.iter().any(|b| b.contains(src));
    let d = scope.iter().any(|b| b.contains(dst));
    Some(match (s, d) {
        (true, true) => "internal",
        (false, true) => "inbound",
        (true, false) => "outbound",
        (false, false) => "external",
    })
}

pub fn encode_flow(scope: &[ScopeBlock], rec: &FlowRecord, buf: &mut Vec<u8>) {
    push_rfc3339_micros(buf, rec.end_ns);
    buf.extend_from_slice(b" SRC=");
    push_ip(buf, &rec.src_ip);
    buf.extend_from_slice(b" DST=");
    push_ip(buf, &rec.dst_ip);
    buf.extend_from_slice(b" PROTO=");
    match proto_name(rec.proto) {
        Some(n) => buf.extend_from_slice(n.as_bytes()),
        None => push_u64(buf, u64::from(rec.proto)),
    }
    let ports = has_ports(rec.proto);
    buf.extend_from_slice(b" SPORT=");
    push_u64(buf, if ports { u64::from(rec.src_port) } else { 0 });
    buf.extend_from_slice(b" DPORT=");
    push_u64(buf, if ports { u64::from(rec.dst_port) } else { 0 });
    buf.extend_from_slice(b" ORIG: PKTS=");
    push_u64(buf, rec.orig.packets);
    buf.extend_from_slice(b" BYTES=");
    push_u64(buf, rec.orig.bytes);
    buf.extend_from_slice(b" REPLY: PKTS=");
    push_u64(buf, rec.resp.packets);
    buf.extend_from_slice(b" BYTES=");
    push_u64(buf, rec.resp.bytes);
    buf.extend_from_slice(b" ACTION=MONITOR");
    if let Some(d) = direction(scope, &rec.src_ip, &rec.dst_ip) {
        buf.extend_from_slice(b" DIRECTION=");
        buf.extend_from_slice(d.as_bytes());
    }
    buf.push(b'\n');
}

/// Parses a line back into its fields (tests and consumers).
pub fn parse_line(line: &str) -> Option<NutanixLine> {
    let mut it = line.split_whitespace();
    let ts = it.next()?.to_string();
    let mut out = NutanixLine {
        ts,
        ..NutanixLine::default()
    };
    let mut side = 0;
    for tok in it {
        match tok {
            "ORIG:" => side = 1,
            "REPLY:" => side = 2,
            _ => {
                let (k, v) = tok.split_once('=')?;
                match (side, k) {
                    (0, "SRC") => out.src = v.to_string(),
                    (0, "DST") => out.dst = v.to_string(),
                    (0, "PROTO") => out.proto = v.to_string(),
                    (0, "SPORT") => out.sport = v.parse().ok()?,
                    (0, "DPORT") => out.dport = v.parse().ok()?,
                    (1, "PKTS") => out.orig_pkts = v.parse().ok()?,
                    (1, "BYTES") => out.orig_bytes = v.parse().ok()?,
                    (2, "PKTS") => out.reply_pkts = v.parse().ok()?,
                    (2, "BYTES") => out.reply_bytes = v.parse().ok()?,
                    (_, "ACTION") => out.action = v.to_string(),
                    (_, "DIRECTION") => out.direction = Some(v.to_string()),
                    _ => return None,
                }
            }
        }
    }
    Some(out)
}

/// One parsed nutanix flow line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NutanixLine {
    pub ts: String,
    pub src: String,
    pub dst: String,
    pub proto: String,
    pub sport: u16,
    pub dport: u16,
    pub orig_pkts: u64,
    pub orig_bytes: u64,
    pub reply_pkts: u64,
    pub reply_bytes: u64,
    /// `MONITOR` (empty on lines written before the field existed).
    pub action: String,
    /// Relative to the configured scope, when one was.
    pub direction: Option<String>,
}
