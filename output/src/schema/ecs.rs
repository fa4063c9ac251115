//! Elastic Common Schema 8.11. Every field outside `flowtap.*` is an ECS
//! field of the right type (a test checks them against ECS's field list).

use dissect::app::{AppEvent, DnsEvent, HttpEvent, TlsEvent};
use dissect::event::{AppEnvelope, EndReason, FlowRecord};

use super::common::{
    class_name, cut, dns_flag_names, has_rdata_text, http_version_number, opcode_name, rdata_text,
    transport_name,
};
use super::EncodeOptions;
use crate::json::{JsonWriter, StrBuilder};

#[inline(always)]
fn mac(w: &mut JsonWriter<'_>, key: &str, m: &[u8; 6]) {
    w.mac_upper_dashed(key, m);
}

/// `src` without its `:` separators (hex fingerprints and serials, as ECS
/// writes them), upper-cased when asked; no allocation.
pub(crate) fn without_colons(s: &mut StrBuilder<'_>, src: &str, upper: bool) {
    let b = src.as_bytes();
    if !b.is_ascii() {
        // Not a fingerprint: keep characters whole.
        let t = src.replace(':', "");
        s.text(&if upper { t.to_ascii_uppercase() } else { t });
        return;
    }
    // Hex with colons between pairs (`f2:3f:…`, SHA-1, serials) or plain
    // (SHA-256): pairs copied, then upper-cased eight bytes at a time.
    let mut out = [0u8; 128];
    let n;
    if b.len() <= out.len() && !b.contains(&b':') {
        out[..b.len()].copy_from_slice(b);
        n = b.len();
    } else if b.len() <= 3 * out.len() / 2
        && b.len() % 3 == 2
        && b.iter().skip(2).step_by(3).all(|&c| c == b':')
    {
        for (i, pair) in b.chunks(3).enumerate() {
            out[2 * i..2 * i + 2].copy_from_slice(&pair[..2]);
        }
        n = b.len() / 3 * 2 + 2;
    } else {
        let mut chunk = [0u8; 64];
        let mut n = 0;
        for &c in b.iter().filter(|&&c| c != b':') {
            chunk[n] = if upper { c.to_ascii_uppercase() } else { c };
            n += 1;
            if n == chunk.len() {
                s.bytes(&chunk);
                n = 0;
            }
        }
        s.bytes(&chunk[..n]);
        return;
    }
    if upper {
        for w in out[..n.div_ceil(8) * 8].chunks_exact_mut(8) {
            let mut x = [0u8; 8];
            x.copy_from_slice(w);
            w.copy_from_slice(&ascii_upper(u64::from_le_bytes(x)).to_le_bytes());
        }
    }
    s.bytes(&out[..n]);
}

/// ASCII bytes (all below 0x80) with `a`-`z` upper-cased, eight at a time:
/// the high bit of `x + (0x80 - 'a')` says `>= 'a'`, that of
/// `x + (0x80 - 'z' - 1)` says `> 'z'` (no carry crosses a byte below 0x80).
fn ascii_upper(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let ge_a = x + ONES * u64::from(0x80 - b'a');
    let gt_z = x + ONES * u64::from(0x80 - b'z' - 1);
    x - (((ge_a ^ gt_z) & (ONES * 0x80)) >> 2)
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
        &rec.community_id,
        rec.app_proto,
        &rec.vlans,
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
        if rec.proto == 6 {
            o.str("state", rec.conn_state);
            o.str("history", &rec.history);
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
    let ports = super::common::has_ports(env.proto);
    let mut w = JsonWriter::object(buf);
    head(&mut w, opts, env.ts_ns);
    {
        let mut e = w.begin_object("event");
        e.raw_members(match env.event {
            AppEvent::Http(_) => br#""kind":"event","category":["network","web"],"type":["protocol","access"],"action":"http","dataset":"flowtap.http","module":"flowtap""#,
            AppEvent::Dns(_) => br#""kind":"event","category":["network"],"type":["protocol"],"action":"dns","dataset":"flowtap.dns","module":"flowtap""#,
            AppEvent::Tls(_) => br#""kind":"event","category":["network"],"type":["protocol"],"action":"tls","dataset":"flowtap.tls","module":"flowtap""#,
        });
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
    match env.event {
        AppEvent::Http(h) => http(&mut w, opts, h),
        AppEvent::Dns(d) => dns(&mut w, d),
        AppEvent::Tls(t) => tls(&mut w, t),
    }
    let mut f = w.begin_object("flowtap");
    f.u64("flow_id", env.flow_id);
    f.str("direction", super::common::direction_name(env.direction));
    match env.event {
        AppEvent::Http(h) => {
            let mut o = f.begin_object("http");
            o.u64("tx_id", h.tx_id);
            o.bool("gap", h.gap);
            o.bool("truncated", h.truncated);
            o.bool("incomplete", h.incomplete);
            if let Some(l) = h.latency_ns {
                o.u64("latency_us", l / 1_000);
            }
            o.end_object();
        }
        AppEvent::Dns(d) => {
            let mut o = f.begin_object("dns");
            if let Some(l) = d.latency_ns {
                o.u64("latency_us", l / 1_000);
            }
            o.bool("truncated", d.truncated);
            o.bool("malformed", d.malformed);
            o.bool("timed_out", d.timed_out);
            o.end_object();
        }
        AppEvent::Tls(t) => {
            let mut o = f.begin_object("tls");
            if let Some(c) = t.cipher {
                o.u64("cipher_suite", u64::from(c));
            }
            if let Some(j) = &t.ja4 {
                o.str("ja4", j);
            }
            o.bool("incomplete", t.incomplete);
            o.end_object();
        }
    }
    f.end_object();
    w.finish_line();
}

fn http(w: &mut JsonWriter<'_>, opts: &EncodeOptions, h: &HttpEvent) {
    {
        let mut o = w.begin_object("http");
        if let Some(v) = &h.version {
            o.str("version", http_version_number(v));
        }
        let mut rq = o.begin_object("request");
        if let Some(m) = &h.method {
            rq.str("method", m);
        }
        if let Some(r) = &h.referer {
            rq.str("referrer", r);
        }
        if let Some(t) = &h.request_content_type {
            rq.str("mime_type", t);
        }
        let mut b = rq.begin_object("body");
        b.u64("bytes", h.request_body_len);
        if opts.max_body_bytes() > 0 && !h.request_body.is_empty() {
            b.bytes_as_str("content", cut(&h.request_body, opts.max_body_bytes()));
        }
        b.end_object();
        rq.end_object();
        if h.has_response {
            let mut rs = o.begin_object("response");
            if let Some(s) = h.status {
                rs.u64("status_code", u64::from(s));
            }
            if let Some(t) = &h.content_type {
                rs.str("mime_type", t);
            }
            let mut b = rs.begin_object("body");
            b.u64("bytes", h.response_body_len);
            if opts.max_body_bytes() > 0 && !h.response_body.is_empty() {
                b.bytes_as_str("content", cut(&h.response_body, opts.max_body_bytes()));
            }
            b.end_object();
            rs.end_object();
        }
        o.end_object();
    }
    if h.uri.is_some() || h.host.is_some() {
        let mut u = w.begin_object("url");
        if let Some(uri) = &h.uri {
            u.str("original", uri);
            let (path, query) = match uri.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (uri.as_str(), None),
            };
            if path.starts_with('/') {
                u.str("path", path);
            }
            if let Some(q) = query {
                u.str("query", q);
            }
        }
        if let Some(host) = &h.host {
            u.str("domain", host);
        }
        if let Some(p) = h.host_port {
            u.u64("port", u64::from(p));
        }
        u.end_object();
    }
    if let Some(ua) = &h.user_agent {
        let mut o = w.begin_object("user_agent");
        o.str("original", ua);
        o.end_object();
    }
}

fn dns(w: &mut JsonWriter<'_>, d: &DnsEvent) {
    let mut o = w.begin_object("dns");
    num_str(&mut o, "id", u64::from(d.id));
    o.str("type", if d.has_response { "answer" } else { "query" });
    match opcode_name(d.opcode) {
        Some(n) => o.str("op_code", n),
        None => num_str(&mut o, "op_code", u64::from(d.opcode)),
    }
    o.str_array("header_flags", dns_flag_names(d));
    if let Some(rc) = d.rcode {
        match dissect::app::dns::rcode_name(rc) {
            Some(n) => o.str("response_code", n),
            None => num_str(&mut o, "response_code", u64::from(rc)),
        }
    }
    if let Some(q) = d.queries.first() {
        let mut qo = o.begin_object("question");
        qo.str("name", &q.name);
        type_member(&mut qo, "type", q.rtype);
        class_member(&mut qo, "class", q.rclass);
        qo.end_object();
    }
    if !d.answers.is_empty() {
        let mut a = o.begin_array("answers");
        for r in &d.answers {
            let mut e = a.object();
            e.str("name", &r.name);
            type_member(&mut e, "type", r.rtype);
            class_member(&mut e, "class", r.rclass);
            e.u64("ttl", u64::from(r.ttl));
            if has_rdata_text(&r.data) {
                e.str_with("data", |s| rdata_text(s, &r.data));
            }
            e.end_object();
        }
        a.end();
        let mut ips = d
            .answers
            .iter()
            .filter_map(|r| match r.data {
                dissect::app::dns::DnsRdata::A(a) => Some(std::net::IpAddr::V4(a)),
                dissect::app::dns::DnsRdata::Aaaa(a) => Some(std::net::IpAddr::V6(a)),
                _ => None,
            })
            .peekable();
        if ips.peek().is_some() {
            let mut r = o.begin_array("resolved_ip");
            for ip in ips {
                r.ip(&ip);
            }
            r.end();
        }
    }
    o.end_object();
}

#[inline(always)]
fn type_member(w: &mut JsonWriter<'_>, key: &str, t: u16) {
    match dissect::app::dns::rrtype_name(t) {
        Some(n) => w.str(key, n),
        None => num_str(w, key, u64::from(t)),
    }
}

#[inline(always)]
fn class_member(w: &mut JsonWriter<'_>, key: &str, c: u16) {
    match class_name(c) {
        Some(n) => w.str(key, n),
        None => num_str(w, key, u64::from(c)),
    }
}

fn tls(w: &mut JsonWriter<'_>, t: &TlsEvent) {
    let mut o = w.begin_object("tls");
    if let Some(v) = t.version {
        let (proto, num) = match v {
            0x0300 => ("ssl", "3.0"),
            0x0200 => ("ssl", "2.0"),
            0x0301 => ("tls", "1.0"),
            0x0302 => ("tls", "1.1"),
            0x0303 => ("tls", "1.2"),
            0x0304 => ("tls", "1.3"),
            _ => ("tls", ""),
        };
        o.str("version_protocol", proto);
        if !num.is_empty() {
            o.str("version", num);
        }
    }
    o.bool("established", t.has_server_hello && !t.incomplete);
    o.bool("resumed", t.resumed);
    if let Some(a) = &t.server_alpn {
        o.str("next_protocol", a);
    }
    {
        let mut c = o.begin_object("client");
        if let Some(s) = &t.sni {
            c.str("server_name", s);
        }
        if let Some(h) = &t.ja3_hash {
            c.str("ja3", h);
        }
        c.end_object();
    }
    {
        let mut s = o.begin_object("server");
        if let Some(h) = &t.ja3s_hash {
            s.str("ja3s", h);
        }
        if let Some(c) = t.certificates.first() {
            s.str("subject", &c.subject);
            s.str("issuer", &c.issuer);
            s.utc_secs("not_before", c.not_before);
            s.utc_secs("not_after", c.not_after);
            let mut h = s.begin_object("hash");
            h.str_with("sha1", |s| without_colons(s, &c.sha1, true));
            h.str_with("sha256", |s| without_colons(s, &c.sha256, true));
            h.end_object();
            let mut x = s.begin_object("x509");
            x.str_with("serial_number", |s| without_colons(s, &c.serial, false));
            if !c.san_dns.is_empty() {
                x.str_array("alternative_names", c.san_dns.iter().map(String::as_str));
            }
            let mut sub = x.begin_object("subject");
            sub.str("distinguished_name", &c.subject);
            sub.end_object();
            let mut iss = x.begin_object("issuer");
            iss.str("distinguished_name", &c.issuer);
            iss.end_object();
            x.end_object();
        }
        s.end_object();
    }
    o.end_object();
}

pub fn encode_stats(
    opts: &EncodeOptions,
    ts_ns: u64,
    stats: &serde_json::Value,
    buf: &mut Vec<u8>,
) {
    let mut w = JsonWriter::object(buf);
    head(&mut w, opts, ts_ns);
    let mut e = w.begin_object("event");
    e.str("kind", "metric");
    e.str("dataset", "flowtap.stats");
    e.str("module", "flowtap");
    e.end_object();
    let mut f = w.begin_object("flowtap");
    f.raw("stats", stats.to_string().as_bytes());
    f.end_object();
    w.finish_line();
}

/// A finished pcap export file: ECS `file.*` (path, name, directory,
/// extension, size, hash.sha256), `rule.name`, `event.*` (a file creation),
/// `network.community_id`; the rest under `flowtap.pcap`.
pub fn encode_pcap(opts: &EncodeOptions, ev: &crate::pcap::PcapEvent<'_>, buf: &mut Vec<u8>) {
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
