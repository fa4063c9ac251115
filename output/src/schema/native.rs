//! Native flowtap JSON (schema version [`super::NATIVE_SCHEMA_VERSION`],
//! documented in `docs/schema-native.md`).

use dissect::app::{AppEvent, DnsEvent, HttpEvent, TlsEvent};
use dissect::event::{AppEnvelope, FlowRecord};

use super::common::{
    cut, direction_name, dns_record_members, proto_member, push_hex_u16, rrtype_member,
};
use super::EncodeOptions;
use crate::json::JsonWriter;

pub fn encode_flow(rec: &FlowRecord, buf: &mut Vec<u8>) {
    crate::json::encode_flow(rec, buf);
}

/// The members every app event starts with (`timestamp` … `vlan`).
pub(crate) fn app_head(w: &mut JsonWriter<'_>, env: &AppEnvelope<'_>, kind: &str, z: bool) {
    if z {
        w.timestamp("timestamp", env.ts_ns);
    } else {
        w.timestamp_eve("timestamp", env.ts_ns);
    }
    w.u64("flow_id", env.flow_id);
    w.str("event_type", kind);
    w.ip("src_ip", &env.src_ip);
    w.u64("src_port", u64::from(env.src_port));
    w.ip("dest_ip", &env.dst_ip);
    w.u64("dest_port", u64::from(env.dst_port));
    proto_member(w, "proto", env.proto);
}

pub fn encode_app(opts: &EncodeOptions, env: &AppEnvelope<'_>, buf: &mut Vec<u8>) {
    let kind = super::app_type(env).as_str();
    let mut w = JsonWriter::object(buf);
    app_head(&mut w, env, kind, true);
    w.str("community_id", env.community_id);
    w.str("direction", direction_name(env.direction));
    if !env.vlans.is_empty() {
        w.u64_array("vlan", env.vlans.iter().map(|&v| u64::from(v)));
    }
    w.str("app_proto", kind);
    match env.event {
        AppEvent::Http(h) => http(&mut w, opts, h),
        AppEvent::Dns(d) => dns(&mut w, d),
        AppEvent::Tls(t) => tls(&mut w, t),
    }
    w.finish_line();
}

#[inline(always)]
fn opt_str(w: &mut JsonWriter<'_>, key: &str, v: &Option<String>) {
    if let Some(s) = v {
        w.str(key, s);
    }
}

#[inline(always)]
fn opt_u64(w: &mut JsonWriter<'_>, key: &str, v: Option<u64>) {
    if let Some(n) = v {
        w.u64(key, n);
    }
}

fn http(w: &mut JsonWriter<'_>, opts: &EncodeOptions, h: &HttpEvent) {
    let mut o = w.begin_object("http");
    o.u64("tx_id", h.tx_id);
    opt_str(&mut o, "method", &h.method);
    opt_str(&mut o, "uri", &h.uri);
    opt_str(&mut o, "host", &h.host);
    opt_u64(&mut o, "host_port", h.host_port.map(u64::from));
    opt_str(&mut o, "version", &h.version);
    opt_str(&mut o, "user_agent", &h.user_agent);
    opt_str(&mut o, "referer", &h.referer);
    opt_str(&mut o, "x_forwarded_for", &h.x_forwarded_for);
    opt_str(&mut o, "request_content_type", &h.request_content_type);
    opt_u64(&mut o, "request_content_length", h.request_content_length);
    opt_str(&mut o, "upgrade", &h.upgrade);
    o.u64("request_body_len", h.request_body_len);
    if opts.max_body_bytes() > 0 && !h.request_body.is_empty() {
        o.bytes_as_str("request_body", cut(&h.request_body, opts.max_body_bytes()));
    }
    headers(&mut o, "request_headers", &h.request_headers);
    opt_str(&mut o, "response_version", &h.response_version);
    opt_u64(&mut o, "status", h.status.map(u64::from));
    opt_str(&mut o, "reason", &h.reason);
    if !h.interim_statuses.is_empty() {
        o.u64_array(
            "interim_statuses",
            h.interim_statuses.iter().map(|&s| u64::from(s)),
        );
    }
    opt_str(&mut o, "content_type", &h.content_type);
    opt_u64(&mut o, "response_content_length", h.response_content_length);
    opt_str(&mut o, "location", &h.location);
    o.u64("response_body_len", h.response_body_len);
    if opts.max_body_bytes() > 0 && !h.response_body.is_empty() {
        o.bytes_as_str(
            "response_body",
            cut(&h.response_body, opts.max_body_bytes()),
        );
    }
    headers(&mut o, "response_headers", &h.response_headers);
    opt_u64(&mut o, "latency_us", h.latency_ns.map(|n| n / 1_000));
    o.bool("chunked_request", h.request_chunked);
    o.bool("chunked_response", h.response_chunked);
    o.bool("tunnel", h.tunnel);
    o.bool("gap", h.gap);
    o.bool("truncated", h.truncated);
    o.bool("incomplete", h.incomplete);
    o.end_object();
}

fn headers(w: &mut JsonWriter<'_>, key: &str, hs: &[dissect::app::http::HttpHeader]) {
    if hs.is_empty() {
        return;
    }
    let mut a = w.begin_array(key);
    for h in hs {
        let mut o = a.object();
        o.str("name", &h.name);
        o.str("value", &h.value);
        o.end_object();
    }
    a.end();
}

fn dns(w: &mut JsonWriter<'_>, d: &DnsEvent) {
    let mut o = w.begin_object("dns");
    o.u64("id", u64::from(d.id));
    o.u64("opcode", u64::from(d.opcode));
    o.bool("has_query", d.has_query);
    o.bool("has_response", d.has_response);
    if let Some(f) = d.query_flags {
        let mut s = Vec::with_capacity(4);
        push_hex_u16(&mut s, f);
        o.bytes_as_str("query_flags", &s);
    }
    if let Some(f) = d.response_flags {
        let mut s = Vec::with_capacity(4);
        push_hex_u16(&mut s, f);
        o.bytes_as_str("response_flags", &s);
    }
    for (on, name) in [
        (d.aa, "aa"),
        (d.tc, "tc"),
        (d.rd, "rd"),
        (d.ra, "ra"),
        (d.ad, "ad"),
        (d.cd, "cd"),
    ] {
        if on {
            o.bool(name, true);
        }
    }
    if let Some(rc) = d.rcode {
        match dissect::app::dns::rcode_name(rc) {
            Some(n) => o.str("rcode", n),
            None => o.u64("rcode", u64::from(rc)),
        }
    }
    let mut q = o.begin_array("queries");
    for x in &d.queries {
        let mut e = q.object();
        e.str("rrname", &x.name);
        rrtype_member(&mut e, "rrtype", x.rtype);
        e.u64("rrclass", u64::from(x.rclass));
        e.end_object();
    }
    q.end();
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
    opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
    if d.retransmits > 0 {
        o.u64("retransmits", u64::from(d.retransmits));
    }
    o.bool("truncated", d.truncated);
    o.bool("malformed", d.malformed);
    o.bool("timed_out", d.timed_out);
    o.end_object();
}

fn tls(w: &mut JsonWriter<'_>, t: &TlsEvent) {
    let mut o = w.begin_object("tls");
    opt_str(&mut o, "sni", &t.sni);
    if let Some(v) = t.version {
        super::common::tls_version_member(&mut o, "version", v);
    }
    if let Some(c) = t.cipher {
        o.u64("cipher_suite", u64::from(c));
    }
    opt_str(&mut o, "ja3", &t.ja3);
    opt_str(&mut o, "ja3_hash", &t.ja3_hash);
    opt_str(&mut o, "ja3s", &t.ja3s);
    opt_str(&mut o, "ja3s_hash", &t.ja3s_hash);
    opt_str(&mut o, "ja4", &t.ja4);
    if !t.client_alpns.is_empty() {
        o.str_array("client_alpns", t.client_alpns.iter().map(String::as_str));
    }
    opt_str(&mut o, "server_alpn", &t.server_alpn);
    o.bool("resumed", t.resumed);
    o.bool("hello_retry", t.hello_retry);
    if !t.certificates.is_empty() {
        let mut a = o.begin_array("certificates");
        for c in &t.certificates {
            let mut e = a.object();
            e.str("subject", &c.subject);
            e.str("issuer", &c.issuer);
            e.str("serial", &c.serial);
            e.utc_secs("not_before", c.not_before);
            e.utc_secs("not_after", c.not_after);
            if !c.san_dns.is_empty() {
                e.str_array("san_dns", c.san_dns.iter().map(String::as_str));
            }
            e.str("sha1", &c.sha1);
            e.str("sha256", &c.sha256);
            e.end_object();
        }
        a.end();
    }
    if let Some((level, desc)) = t.alert {
        let mut a = o.begin_object("alert");
        a.u64("level", u64::from(level));
        a.u64("description", u64::from(desc));
        a.bool("from_server", t.alert_from_server);
        a.end_object();
    }
    opt_u64(&mut o, "latency_us", t.latency_ns.map(|n| n / 1_000));
    o.bool("incomplete", t.incomplete);
    o.bool("gap", t.gap);
    o.bool("truncated", t.truncated);
    o.end_object();
}

/// A finished pcap export file.
pub fn encode_pcap(ev: &crate::pcap::PcapEvent<'_>, buf: &mut Vec<u8>) {
    let mut w = JsonWriter::object(buf);
    w.timestamp("timestamp", ev.ts_ns);
    if let Some(id) = ev.flow_id {
        w.u64("flow_id", id);
    }
    w.str("event_type", "pcap");
    if let Some(c) = ev.community_id {
        w.str("community_id", c);
    }
    let mut o = w.begin_object("pcap");
    super::common::pcap_members(&mut o, ev, |w, k, t| w.timestamp(k, t));
    o.end_object();
    w.finish_line();
}
