//! `flow` records in native flowtap JSON.

use std::net::IpAddr;

use dissect::event::{FlowRecord, TcpDirectionKpis, TcpKpis};

use super::{JsonCursor, JsonWriter};
use crate::event::proto_name;

/// `src_ip`, `src_port`, `dest_ip`, `dest_port` and `proto` (its IANA
/// name where it has one, else its number): the flow record's and the
/// native and eve application events' envelope. (Always inlined: the
/// cursor stays in registers only while its address is not taken.)
#[inline(always)]
pub(crate) fn endpoint_members(
    c: &mut JsonCursor<'_>,
    (src, src_port): (&IpAddr, u16),
    (dst, dst_port): (&IpAddr, u16),
    proto: u8,
) {
    c.member_ip(b",\"src_ip\":\"", src);
    c.member_u64(b",\"src_port\":", u64::from(src_port));
    c.member_ip(b",\"dest_ip\":\"", dst);
    c.member_u64(b",\"dest_port\":", u64::from(dst_port));
    match proto_name(proto) {
        Some(name) => c.member_str(b",\"proto\":\"", name),
        None => c.member_u64(b",\"proto\":", u64::from(proto)),
    }
}

/// Appends one flow record as a JSON line. The layout is fixed, so the
/// record is written at a cursor: the keys between two values are one
/// literal each, and no member checks the buffer's capacity on its own.
pub fn encode_flow(rec: &FlowRecord, buf: &mut Vec<u8>) {
    // Room for a TCP record with its KPIs (about 1,250 bytes); longer ones
    // (VLAN lists, tunnels, long histories) grow the buffer once more.
    let mut c = JsonCursor::new(buf, if rec.proto == 6 { 1408 } else { 704 });
    c.member_timestamp(b"{\"timestamp\":\"", rec.end_ns);
    c.member_u64(b",\"event_type\":\"flow\",\"flow_id\":", rec.flow_id);
    c.member_str(b",\"community_id\":\"", rec.community_id);
    endpoint_members(
        &mut c,
        (&rec.src_ip, rec.src_port),
        (&rec.dst_ip, rec.dst_port),
        rec.proto,
    );
    c.member_u64(b",\"ip_proto\":", u64::from(rec.proto));
    if let Some(mac) = &rec.src_mac {
        c.member_mac(b",\"src_mac\":\"", mac);
    }
    if let Some(mac) = &rec.dst_mac {
        c.member_mac(b",\"dest_mac\":\"", mac);
    }
    if let Some((first, rest)) = rec.vlans.split_first() {
        c.member_u64(b",\"vlan\":[", u64::from(*first));
        for &v in rest {
            c.member_u64(b",", u64::from(v));
        }
        c.lit(b"]");
    }
    if let Some(t) = &rec.tunnel {
        c.member_str(b",\"tunnel\":{\"type\":\"", t.kind);
        c.member_ip(b",\"src_ip\":\"", &t.outer_src);
        c.member_ip(b",\"dest_ip\":\"", &t.outer_dst);
        if let Some(id) = t.id {
            c.member_u64(b",\"id\":", u64::from(id));
        }
        c.lit(b"}");
    }
    if let Some(app) = rec.app_proto {
        c.member_str(b",\"app_proto\":\"", app);
    }
    c.member_timestamp(b",\"flow\":{\"start\":\"", rec.start_ns);
    c.member_timestamp(b",\"end\":\"", rec.end_ns);
    c.member_u64(
        b",\"duration_us\":",
        rec.end_ns.saturating_sub(rec.start_ns) / 1_000,
    );
    c.member_u64(b",\"pkts_toserver\":", rec.orig.packets);
    c.member_u64(b",\"bytes_toserver\":", rec.orig.bytes);
    c.member_u64(b",\"pkts_toclient\":", rec.resp.packets);
    c.member_u64(b",\"bytes_toclient\":", rec.resp.bytes);
    c.member_str(b",\"reason\":\"", rec.end_reason.as_str());
    if let Some(side) = rec.one_sided {
        c.member_str(b",\"one_sided\":true,\"seen\":\"", side.as_str());
    }
    if rec.app_transactions > 0 {
        c.member_u64(b",\"app_transactions\":", u64::from(rec.app_transactions));
        c.member_u64(b",\"app_errors\":", u64::from(rec.app_errors));
    }
    c.member_u64(b",\"slice\":", u64::from(rec.slice));
    if rec.proto == 6 {
        // The literal's `}` closes `flow`.
        c.member_hex_byte(b"},\"tcp\":{\"tcp_flags_ts\":\"", rec.orig.tcp_flags);
        c.member_hex_byte(b",\"tcp_flags_tc\":\"", rec.resp.tcp_flags);
        c.member_str(b",\"state\":\"", rec.conn_state);
        c.member_str(b",\"history\":\"", rec.history);
        if let Some(k) = &rec.tcp {
            kpis(&mut c, k);
        }
    }
    // Closes `tcp` (or `flow` when there is none) and the record.
    c.lit(b"}}\n");
    c.finish();
}

/// Passive TCP KPIs inside the `tcp` object.
#[inline(always)]
fn kpis(c: &mut JsonCursor<'_>, k: &TcpKpis) {
    kpi_direction(c, b",\"toserver\":{\"syn\":", &k.orig);
    kpi_direction(c, b",\"toclient\":{\"syn\":", &k.resp);
    if let Some(v) = k.server_delay_us {
        c.member_u64(b",\"server_delay_us\":", v);
    }
    if let Some(v) = k.client_delay_us {
        c.member_u64(b",\"client_delay_us\":", v);
    }
    if let (Some(s), Some(c_us)) = (k.server_delay_us, k.client_delay_us) {
        c.member_u64(b",\"handshake_rtt_us\":", s + c_us);
    }
    if k.app_response_count > 0 {
        c.member_u64(b",\"app_response_count\":", u64::from(k.app_response_count));
        c.member_u64(
            b",\"app_response_avg_us\":",
            k.app_response_sum_us / u64::from(k.app_response_count),
        );
        c.member_u64(b",\"app_response_max_us\":", k.app_response_max_us);
    }
}

/// One direction's KPI counters as an object; `open` is the literal up
/// to the first counter's value.
#[inline(always)]
fn kpi_direction(c: &mut JsonCursor<'_>, open: &[u8], d: &TcpDirectionKpis) {
    c.member_u64(open, u64::from(d.syn));
    c.member_u64(b",\"syn_ack\":", u64::from(d.syn_ack));
    c.member_u64(b",\"fin\":", u64::from(d.fin));
    c.member_u64(b",\"rst\":", u64::from(d.rst));
    c.member_u64(b",\"retransmitted\":", u64::from(d.retransmitted));
    c.member_u64(b",\"out_of_order\":", u64::from(d.out_of_order));
    c.member_u64(b",\"zero_window\":", u64::from(d.zero_window));
    c.member_u64(b",\"tiny\":", u64::from(d.tiny));
    c.member_u64(b",\"missed_bytes\":", d.missed_bytes);
    c.lit(b"}");
}

#[inline(always)]
/// What the mirror and the parsers observed of a flow, in the names the
/// native, ECS (`flowtap.flow`) and nanocorp schemas share: `one_sided` and
/// `seen` when only one direction was seen, `app_transactions` and
/// `app_errors` when the flow produced application events.
pub(crate) fn flow_observations(w: &mut JsonWriter<'_>, rec: &FlowRecord) {
    if let Some(side) = rec.one_sided {
        w.bool("one_sided", true);
        w.str("seen", side.as_str());
    }
    if rec.app_transactions > 0 {
        w.u64("app_transactions", u64::from(rec.app_transactions));
        w.u64("app_errors", u64::from(rec.app_errors));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dissect::event::{DirectionStats, EndReason, TunnelInfo};

    #[test]
    fn flow_record_round_trips_through_a_json_parser() {
        let rec = FlowRecord {
            flow_id: 42,
            community_id: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            start_ns: 1_000_000_000,
            end_ns: 3_500_000_000,
            src_ip: "10.0.0.1".parse().expect("ip"),
            dst_ip: "2001:db8::1".parse().expect("ip"),
            src_port: 1234,
            dst_port: 80,
            proto: 6,
            src_mac: Some([0, 1, 2, 3, 4, 5]),
            dst_mac: None,
            vlans: &[10, 20],
            tunnel: Some(TunnelInfo {
                kind: "vxlan",
                outer_src: "192.0.2.1".parse().expect("ip"),
                outer_dst: "192.0.2.2".parse().expect("ip"),
                id: Some(5001),
            }),
            orig: DirectionStats {
                packets: 3,
                bytes: 200,
                tcp_flags: 0x1b,
            },
            resp: DirectionStats {
                packets: 2,
                bytes: 120,
                tcp_flags: 0x12,
            },
            conn_state: "SF",
            history: "ShADadFf",
            end_reason: EndReason::Fin,
            one_sided: None,
            app_transactions: 0,
            app_errors: 0,
            slice: 0,
            app_proto: Some("http"),
            tcp: None,
        };
        let mut buf = Vec::new();
        encode_flow(&rec, &mut buf);
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("json");
        assert_eq!(v["event_type"], "flow");
        assert_eq!(v["dest_ip"], "2001:db8::1");
        assert_eq!(v["proto"], "TCP");
        assert_eq!(v["vlan"], serde_json::json!([10, 20]));
        assert_eq!(v["tunnel"]["id"], 5001);
        assert_eq!(v["flow"]["pkts_toserver"], 3);
        assert_eq!(v["flow"]["bytes_toclient"], 120);
        assert_eq!(v["flow"]["duration_us"], 2_500_000);
        assert_eq!(v["flow"]["reason"], "fin");
        assert_eq!(v["tcp"]["tcp_flags_ts"], "1b");
        assert_eq!(v["tcp"]["history"], "ShADadFf");
        assert_eq!(v["src_mac"], "00:01:02:03:04:05");
        assert!(v.get("dest_mac").is_none());
        assert_eq!(buf.last(), Some(&b'\n'));
    }
}
