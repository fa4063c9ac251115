//! Nutanix-style flow lines, one per flow record:
//!
//! `2014-07-18T12:49:30.592064Z SRC=192.168.1.103 DST=195.154.172.150 PROTO=TCP SPORT=52869 DPORT=80 ORIG: PKTS=6 BYTES=531 REPLY: PKTS=5 BYTES=1480`
//!
//! The leading timestamp is the record's end time. `PROTO` is the IANA name
//! (or the number); protocols without ports write `SPORT=0 DPORT=0`.

use dissect::event::FlowRecord;

use super::common::{has_ports, proto_name};
use crate::json::{push_ip, push_rfc3339_micros, push_u64};

pub fn encode_flow(rec: &FlowRecord, buf: &mut Vec<u8>) {
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
}
