//! Suricata eve.json layout, so that existing EVE consumers (Suricata
//! dashboards, Filebeat's suricata module, Arkime's eve import) read flowtap.
//!
//! Mapping notes: `flow.reason` is Suricata's (`timeout` for fin, rst, idle
//! and active timeouts, `forced` for eviction, `shutdown`); `flow.state` is
//! `new` / `established` / `closed`; a DNS transaction is one `dns` event
//! (v3) of `type` `response` when an answer was seen, else `request`.

use dissect::app::{AppEvent, DnsEvent, HttpEvent, TlsEvent};
use dissect::event::{AppEnvelope, EndReason, FlowRecord};

use super::common::{
    dns_record_members, has_ports, hex2, hex2_str, ip_version, proto_member, push_hex_u16,
    rrtype_member,
};
use super::EncodeOptions;
use crate::json::JsonWriter;

fn reason(r: EndReason) -> &'static str {
    match r {
        EndReason::Fin | EndReason::Rst | EndReason::IdleTimeout | EndReason::ActiveTimeout => {
            "timeout"
        }
        EndReason::Evicted => "forced",
        EndReason::Shutdown => "shutdown",
    }
}

fn flow_state(rec: &FlowRecord) -> &'static str {
    if rec.proto == 6 {
        match rec.conn_state {
            "S0" | "OTH" | "" => "new",
            "S1" | "S2" | "S3" => "established",
            _ => "closed",
        }
    } else if rec.orig.packets > 0 && rec.resp.packets > 0 {
        "established"
    } else {
        "new"
    }
}

fn tcp_state(conn_state: &str) -> &'static str {
    match conn_state {
        "S0" => "syn_sent",
        "S1" => "established",
        "S2" | "S3" => "fin_wait1",
        "OTH" | "" => "none",
        _ => "closed",
    }
}

pub fn encode_flow(rec: &FlowRecord, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    w.timestamp_eve("timestamp", rec.end_ns);
    w.u64("flow_id", rec.flow_id);
    w.str("event_type", "flow");
    w.ip("src_ip", &rec.src_ip);
    if has_ports(rec.proto) {
        w.u64("src_port", u64::from(rec.src_port));
    }
    w.ip("dest_ip", &rec.dst_ip);
    if has_ports(rec.proto) {
        w.u64("dest_port", u64::from(rec.dst_port));
    }
    w.u64("ip_v", ip_version(&rec.src_ip));
    proto_member(&mut w, "proto", rec.proto);
    if matches!(rec.proto, 1 | 58) {
        w.u64("icmp_type", u64::from(rec.src_port));
    }
    if !rec.vlans.is_empty() {
        w.u64_array("vlan", rec.vlans.iter().map(|&v| u64::from(v)));
    }
    if let Some(app) = rec.app_proto {
        w.str("app_proto", app);
    }
    if let (Some(s), Some(d)) = (&rec.src_mac, &rec.dst_mac) {
        let mut e = w.begin_object("ether");
        e.mac("src_mac", s);
        e.mac("dest_mac", d);
        e.end_object();
    }
    let mut f = w.begin_object("flow");
    f.u64("pkts_toserver", rec.orig.packets);
    f.u64("pkts_toclient", rec.resp.packets);
    f.u64("bytes_toserver", rec.orig.bytes);
    f.u64("bytes_toclient", rec.resp.bytes);
    f.timestamp_eve("start", rec.start_ns);
    f.timestamp_eve("end", rec.end_ns);
    f.u64(
        "age",
        (rec.end_ns / 1_000_000_000).saturating_sub(rec.start_ns / 1_000_000_000),
    );
    f.str("state", flow_state(rec));
    f.str("reason", reason(rec.end_reason));
    f.bool("alerted", false);
    f.end_object();
    w.str("community_id", &rec.community_id);
    if let Some(t) = &rec.tunnel {
        let mut o = w.begin_object("tunnel");
        o.ip("src_ip", &t.outer_src);
        o.ip("dest_ip", &t.outer_dst);
        o.str("proto", t.kind);
        if let Some(id) = t.id {
            o.u64("id", u64::from(id));
        }
        o.end_object();
    }
    if rec.proto == 6 {
        let all = rec.orig.tcp_flags | rec.resp.tcp_flags;
        let mut t = w.begin_object("tcp");
        t.str("tcp_flags", hex2_str(&hex2(all)));
        t.str("tcp_flags_ts", hex2_str(&hex2(rec.orig.tcp_flags)));
        t.str("tcp_flags_tc", hex2_str(&hex2(rec.resp.tcp_flags)));
        for (bit, name) in [
            (0x02, "syn"),
            (0x01, "fin"),
            (0x04, "rst"),
            (0x08, "psh"),
            (0x10, "ack"),
            (0x20, "urg"),
            (0x40, "ecn"),
            (0x80, "cwr"),
        ] {
            if all & bit != 0 {
                t.bool(name, true);
            }
        }
        t.str("state", tcp_state(rec.conn_state));
        t.end_object();
    }
    w.finish_line();
}

pub fn encode_app(_opts: &EncodeOptions, env: &AppEnvelope<'_>, buf: &mut Vec<u8>) {
    let kind = super::app_type(env).as_str();
    let mut w = JsonWriter::object(buf);
    super::native::app_head(&mut w, env, kind, false);
    w.u64("ip_v", ip_version(&env.src_ip));
    if !env.vlans.is_empty() {
        w.u64_array("vlan", env.vlans.iter().map(|&v| u64::from(v)));
    }
    w.str("community_id", env.community_id);
    match env.event {
        AppEvent::Http(h) => {
            w.u64("tx_id", h.tx_id);
            http(&mut w, h);
        }
        AppEvent::Dns(d) => dns(&mut w, d),
        AppEvent::Tls(t) => tls(&mut w, t),
    }
    w.finish_line();
}

fn http(w: &mut JsonWriter<'_>, h: &HttpEvent) {
    let mut o = w.begin_object("http");
    if let Some(v) = &h.host {
        o.str("hostname", v);
    }
    if let Some(p) = h.host_port {
        o.u64("http_port", u64::from(p));
    }
    if let Some(v) = &h.uri {
        o.str("url", v);
    }
    if let Some(v) = &h.user_agent {
        o.str("http_user_agent", v);
    }
    if let Some(v) = &h.x_forwarded_for {
        o.str("xff", v);
    }
    if let Some(v) = &h.content_type {
        o.str("http_content_type", v);
    }
    if let Some(v) = &h.referer {
        o.str("http_refer", v);
    }
    if let Some(v) = &h.method {
        o.str("http_method", v);
    }
    if let Some(v) = &h.version {
        o.str("protocol", v);
    }
    if let Some(s) = h.status {
        o.u64("status", u64::from(s));
    }
    if let Some(v) = &h.location {
        o.str("redirect", v);
    }
    o.u64("length", h.response_body_len);
    o.end_object();
}

fn dns(w: &mut JsonWriter<'_>, d: &DnsEvent) {
    let mut o = w.begin_object("dns");
    o.u64("version", 3);
    o.str(
        "type",
        if d.has_response {
            "response"
        } else {
            "request"
        },
    );
    o.u64("id", u64::from(d.id));
    let flags = if d.has_response {
        d.response_flags
    } else {
        d.query_flags
    };
    if let Some(f) = flags {
        let mut s = Vec::with_capacity(4);
        push_hex_u16(&mut s, f);
        o.bytes_as_str("flags", &s);
    }
    if d.has_response {
        o.bool("qr", true);
    }
    for (on, name) in [
        (d.aa, "aa"),
        (d.tc, "tc"),
        (d.rd, "rd"),
        (d.ra, "ra"),
        (d.ad, "z"),
        (d.cd, "cd"),
    ] {
        if on {
            o.bool(name, true);
        }
    }
    o.u64("opcode", u64::from(d.opcode));
    match d.rcode.map(|r| (r, dissect::app::dns::rcode_name(r))) {
        Some((_, Some(n))) => o.str("rcode", n),
        Some((r, None)) => o.u64("rcode", u64::from(r)),
        None => o.str("rcode", "NOERROR"),
    }
    if !d.queries.is_empty() {
        let mut q = o.begin_array("queries");
        for x in &d.queries {
            let mut e = q.object();
            e.str("rrname", &x.name);
            rrtype_member(&mut e, "rrtype", x.rtype);
            e.end_object();
        }
        q.end();
    }
    for (key, list) in [("answers", &d.answers), ("authorities", &d.authorities)] {
        if list.is_empty() {
            continue;
        }
        let mut a = o.begin_array(key);
        for r in list {
            let mut e = a.object();
            dns_record_members(&mut e, r);
            e.end_object();
        }
        a.end();
    }
    o.end_object();
}

fn tls(w: &mut JsonWriter<'_>, t: &TlsEvent) {
    let mut o = w.begin_object("tls");
    if let Some(c) = t.certificates.first() {
        o.str("subject", &c.subject);
        o.str("issuerdn", &c.issuer);
        if !c.san_dns.is_empty() {
            o.str_array("subjectaltname", c.san_dns.iter().map(String::as_str));
        }
        o.str("serial", &c.serial);
        o.str("fingerprint", &c.sha1);
    }
    if let Some(v) = &t.sni {
        o.str("sni", v);
    }
    if let Some(v) = t.version {
        super::common::tls_version_member(&mut o, "version", v);
    }
    if let Some(c) = t.certificates.first() {
        o.utc_secs("notbefore", c.not_before);
        o.utc_secs("notafter", c.not_after);
    }
    if let (Some(s), Some(h)) = (&t.ja3, &t.ja3_hash) {
        let mut j = o.begin_object("ja3");
        j.str("hash", h);
        j.str("string", s);
        j.end_object();
    }
    if let (Some(s), Some(h)) = (&t.ja3s, &t.ja3s_hash) {
        let mut j = o.begin_object("ja3s");
        j.str("hash", h);
        j.str("string", s);
        j.end_object();
    }
    if let Some(v) = &t.ja4 {
        o.str("ja4", v);
    }
    if !t.client_alpns.is_empty() {
        o.str_array("client_alpns", t.client_alpns.iter().map(String::as_str));
    }
    if let Some(a) = &t.server_alpn {
        o.str_array("server_alpns", [a.as_str()]);
    }
    o.end_object();
}

pub fn encode_stats(ts_ns: u64, stats: &serde_json::Value, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    w.timestamp_eve("timestamp", ts_ns);
    w.str("event_type", "stats");
    w.raw("stats", stats.to_string().as_bytes());
    w.finish_line();
}
