//! How a `dns` event is written in each output schema.

use std::net::IpAddr;

use super::event::{rcode_name, rrtype_name, DnsEvent, DnsQuestion, DnsRdata, DnsRecord};
use crate::app::encode::{
    opt_u64, push_hex_u16, EventWriters, JsonWriter, StrBuilder, WriteOptions,
};

/// DNS opcode names (ECS `dns.op_code`).
fn opcode_name(op: u8) -> Option<&'static str> {
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
fn class_name(c: u16) -> Option<&'static str> {
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
fn rrtype_member(w: &mut JsonWriter<'_>, key: &str, t: u16) {
    match rrtype_name(t) {
        Some(n) => w.str(key, n),
        None => w.u64(key, u64::from(t)),
    }
}

/// Whether record data has a text form (A, AAAA, names, MX, TXT, SRV, SOA).
fn has_rdata_text(d: &DnsRdata) -> bool {
    !matches!(d, DnsRdata::Other { .. })
}

/// Writes the text form of record data (escaped) into a JSON string being
/// built; nothing for data without one.
fn rdata_text(s: &mut StrBuilder<'_>, d: &DnsRdata) {
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

/// Writes one answer/authority record the way Suricata's eve v3 does:
/// `rrname`, `rrtype`, `ttl`, then `rdata` or a typed object (`srv`, `soa`, `mx`).
fn record_members(w: &mut JsonWriter<'_>, r: &DnsRecord) {
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
fn flag_names(e: &DnsEvent) -> impl Iterator<Item = &'static str> {
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

/// ECS keyword fields holding numbers are strings.
#[inline(always)]
fn ecs_type_member(w: &mut JsonWriter<'_>, key: &str, t: u16) {
    match rrtype_name(t) {
        Some(n) => w.str(key, n),
        None => w.u64_str(key, u64::from(t)),
    }
}

#[inline(always)]
fn ecs_class_member(w: &mut JsonWriter<'_>, key: &str, c: u16) {
    match class_name(c) {
        Some(n) => w.str(key, n),
        None => w.u64_str(key, u64::from(c)),
    }
}

/// The answer and authority arrays (native and eve alike).
fn record_lists(o: &mut JsonWriter<'_>, d: &DnsEvent) {
    for (key, list) in [("answers", &d.answers), ("authorities", &d.authorities)] {
        if list.is_empty() {
            continue;
        }
        let mut a = o.begin_array(key);
        for r in list {
            let mut e = a.object();
            record_members(&mut e, r);
            e.end_object();
        }
        a.end();
    }
}

/// A representative event with most fields set: the registry's compliance
/// test writes it in every schema; encoder tests and benches use it.
pub(super) fn example() -> DnsEvent {
    DnsEvent {
        id: 60246,
        opcode: 0,
        has_query: true,
        has_response: true,
        queries: vec![DnsQuestion {
            name: "www.example.com".into(),
            rtype: 1,
            rclass: 1,
        }],
        query_flags: Some(0x0120),
        response_flags: Some(0x8180),
        rd: true,
        ra: true,
        rcode: Some(0),
        answers: vec![
            DnsRecord {
                name: "www.example.com".into(),
                rtype: 5,
                rclass: 1,
                ttl: 300,
                data: DnsRdata::Name("example.com".into()),
            },
            DnsRecord {
                name: "example.com".into(),
                rtype: 1,
                rclass: 1,
                ttl: 300,
                data: DnsRdata::A([93, 184, 216, 34].into()),
            },
            DnsRecord {
                name: "_sip._udp.example.com".into(),
                rtype: 33,
                rclass: 1,
                ttl: 275,
                data: DnsRdata::Srv {
                    priority: 10,
                    weight: 1,
                    port: 5060,
                    target: "sip.example.com".into(),
                },
            },
        ],
        latency_ns: Some(15_030_000),
        query_ts_ns: Some(1_405_687_770_577_034_000),
        response_ts_ns: Some(1_405_687_770_592_064_000),
        ..DnsEvent::default()
    }
}

impl EventWriters for DnsEvent {
    fn native(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
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
            match rcode_name(rc) {
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
        record_lists(&mut o, d);
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        if d.retransmits > 0 {
            o.u64("retransmits", u64::from(d.retransmits));
        }
        o.bool("truncated", d.truncated);
        o.bool("malformed", d.malformed);
        o.bool("timed_out", d.timed_out);
        o.end_object();
    }

    fn ecs_event(&self) -> &'static [u8] {
        br#""kind":"event","category":["network"],"type":["protocol"],"action":"dns","dataset":"flowtap.dns","module":"flowtap""#
    }

    fn ecs(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("dns");
        o.u64_str("id", u64::from(d.id));
        o.str("type", if d.has_response { "answer" } else { "query" });
        match opcode_name(d.opcode) {
            Some(n) => o.str("op_code", n),
            None => o.u64_str("op_code", u64::from(d.opcode)),
        }
        o.str_array("header_flags", flag_names(d));
        if let Some(rc) = d.rcode {
            match rcode_name(rc) {
                Some(n) => o.str("response_code", n),
                None => o.u64_str("response_code", u64::from(rc)),
            }
        }
        if let Some(q) = d.queries.first() {
            let mut qo = o.begin_object("question");
            qo.str("name", &q.name);
            ecs_type_member(&mut qo, "type", q.rtype);
            ecs_class_member(&mut qo, "class", q.rclass);
            qo.end_object();
        }
        if !d.answers.is_empty() {
            let mut a = o.begin_array("answers");
            for r in &d.answers {
                let mut e = a.object();
                e.str("name", &r.name);
                ecs_type_member(&mut e, "type", r.rtype);
                ecs_class_member(&mut e, "class", r.rclass);
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
                    DnsRdata::A(a) => Some(IpAddr::V4(a)),
                    DnsRdata::Aaaa(a) => Some(IpAddr::V6(a)),
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

    fn ecs_flowtap(&self, f: &mut JsonWriter<'_>) {
        let d = self;
        let mut o = f.begin_object("dns");
        if let Some(l) = d.latency_ns {
            o.u64("latency_us", l / 1_000);
        }
        o.bool("truncated", d.truncated);
        o.bool("malformed", d.malformed);
        o.bool("timed_out", d.timed_out);
        o.end_object();
    }

    fn eve(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
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
        match d.rcode.map(|r| (r, rcode_name(r))) {
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
        record_lists(&mut o, d);
        o.end_object();
    }

    /// ` A example.com NOERROR`
    fn gelf_short(&self, s: &mut StrBuilder<'_>) {
        if let Some(q) = self.queries.first() {
            s.text(" ");
            match rrtype_name(q.rtype) {
                Some(n) => s.text(n),
                None => s.u64(u64::from(q.rtype)),
            };
            s.text(" ").text(&q.name);
        }
        if let Some(n) = self.rcode.and_then(rcode_name) {
            s.text(" ").text(n);
        }
    }

    fn gelf(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        w.u64("_dns_id", u64::from(d.id));
        if let Some(q) = d.queries.first() {
            w.str("_dns_rrname", &q.name);
            rrtype_member(w, "_dns_rrtype", q.rtype);
        }
        if let Some(rc) = d.rcode {
            match rcode_name(rc) {
                Some(n) => w.str("_dns_rcode", n),
                None => w.u64("_dns_rcode", u64::from(rc)),
            }
        }
        if !d.answers.is_empty() {
            w.str_with("_dns_answers", |s| {
                for (i, r) in d.answers.iter().enumerate() {
                    if i > 0 {
                        s.text(",");
                    }
                    rdata_text(s, &r.data);
                }
            });
            w.u64("_dns_answer_count", d.answers.len() as u64);
        }
        if let Some(l) = d.latency_ns {
            w.u64("_dns_latency_us", l / 1_000);
        }
    }

    fn nanocorp_id(&self) -> u64 {
        u64::from(self.id)
    }

    fn nanocorp(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("dns");
        if let Some(q) = d.queries.first() {
            o.str("query", &q.name);
            rrtype_member(&mut o, "query_type", q.rtype);
        }
        if let Some(rc) = d.rcode.and_then(rcode_name) {
            o.str("rcode", rc);
        }
        let mut a = o.begin_array("answers");
        for r in d.answers.iter().filter(|r| has_rdata_text(&r.data)) {
            a.str_with(|s| rdata_text(s, &r.data));
        }
        a.end();
        o.end_object();
    }
}
