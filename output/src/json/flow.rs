//! `flow` records in native flowtap JSON.

use dissect::event::{DirectionStats, FlowRecord, TcpKpis};

use super::JsonWriter;

/// IANA protocol names for the protocols a flow record names, as Suricata
/// spells them; others are written as their number.
fn proto_name(proto: u8) -> Option<&'static str> {
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

/// Appends one flow record as a JSON line.
pub fn encode_flow(rec: &FlowRecord, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    w.timestamp("timestamp", rec.end_ns);
    w.str("event_type", "flow");
    w.u64("flow_id", rec.flow_id);
    w.str("community_id", rec.community_id);
    w.ip("src_ip", &rec.src_ip);
    w.u64("src_port", u64::from(rec.src_port));
    w.ip("dest_ip", &rec.dst_ip);
    w.u64("dest_port", u64::from(rec.dst_port));
    match proto_name(rec.proto) {
        Some(name) => w.str("proto", name),
        None => w.u64("proto", u64::from(rec.proto)),
    }
    w.u64("ip_proto", u64::from(rec.proto));
    if let Some(mac) = &rec.src_mac {
        w.mac("src_mac", mac);
    }
    if let Some(mac) = &rec.dst_mac {
        w.mac("dest_mac", mac);
    }
    if !rec.vlans.is_empty() {
        w.u64_array("vlan", rec.vlans.iter().map(|&v| u64::from(v)));
    }
    if let Some(t) = &rec.tunnel {
        let mut o = w.begin_object("tunnel");
        o.str("type", t.kind);
        o.ip("src_ip", &t.outer_src);
        o.ip("dest_ip", &t.outer_dst);
        if let Some(id) = t.id {
            o.u64("id", u64::from(id));
        }
        o.end_object();
    }
    if let Some(app) = rec.app_proto {
        w.str("app_proto", app);
    }
    let mut f = w.begin_object("flow");
    f.timestamp("start", rec.start_ns);
    f.timestamp("end", rec.end_ns);
    f.u64(
        "duration_us",
        rec.end_ns.saturating_sub(rec.start_ns) / 1_000,
    );
    direction(&mut f, "pkts_toserver", "bytes_toserver", &rec.orig);
    direction(&mut f, "pkts_toclient", "bytes_toclient", &rec.resp);
    f.str("reason", rec.end_reason.as_str());
    flow_observations(&mut f, rec);
    f.u64("slice", u64::from(rec.slice));
    f.end_object();
    if rec.proto == 6 {
        let mut t = w.begin_object("tcp");
        t.str("tcp_flags_ts", hex_byte(rec.orig.tcp_flags).as_str());
        t.str("tcp_flags_tc", hex_byte(rec.resp.tcp_flags).as_str());
        t.str("state", rec.conn_state);
        t.str("history", rec.history);
        if let Some(k) = &rec.tcp {
            kpis(&mut t, k);
        }
        t.end_object();
    }
    w.finish_line();
}

/// Passive TCP KPIs inside the `tcp` object.
fn kpis(t: &mut JsonWriter<'_>, k: &TcpKpis) {
    for (name, d) in [("toserver", &k.orig), ("toclient", &k.resp)] {
        let mut o = t.begin_object(name);
        o.u64("syn", u64::from(d.syn));
        o.u64("syn_ack", u64::from(d.syn_ack));
        o.u64("fin", u64::from(d.fin));
        o.u64("rst", u64::from(d.rst));
        o.u64("retransmitted", u64::from(d.retransmitted));
        o.u64("out_of_order", u64::from(d.out_of_order));
        o.u64("zero_window", u64::from(d.zero_window));
        o.u64("tiny", u64::from(d.tiny));
        o.u64("missed_bytes", d.missed_bytes);
        o.end_object();
    }
    if let Some(v) = k.server_delay_us {
        t.u64("server_delay_us", v);
    }
    if let Some(v) = k.client_delay_us {
        t.u64("client_delay_us", v);
    }
    if let (Some(s), Some(c)) = (k.server_delay_us, k.client_delay_us) {
        t.u64("handshake_rtt_us", s + c);
    }
    if k.app_response_count > 0 {
        t.u64("app_response_count", u64::from(k.app_response_count));
        t.u64(
            "app_response_avg_us",
            k.app_response_sum_us / u64::from(k.app_response_count),
        );
        t.u64("app_response_max_us", k.app_response_max_us);
    }
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

fn direction(w: &mut JsonWriter<'_>, pkts: &str, bytes: &str, d: &DirectionStats) {
    w.u64(pkts, d.packets);
    w.u64(bytes, d.bytes);
}

struct Hex2([u8; 2]);

impl Hex2 {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("00")
    }
}

fn hex_byte(b: u8) -> Hex2 {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    Hex2([HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use dissect::event::{EndReason, TunnelInfo};

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
