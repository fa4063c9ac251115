//! How a `dns` event is written in each output schema.

use std::net::IpAddr;

use super::event::{
    rcode_name, rrtype_name, DnsEvent, DnsQuestion, DnsRdata, DnsRecord, Edns, SvcParam,
};
use crate::app::encode::{
    hex_u16_member, opt_u64, EventWriters, JsonWriter, StrBuilder, WriteOptions,
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

/// Whether record data has a text form (all decoded types).
fn has_rdata_text(d: &DnsRdata) -> bool {
    !matches!(d, DnsRdata::Other { .. } | DnsRdata::Malformed { .. })
}

/// Standard base64 with padding (DNSKEY keys, ECH configs).
pub(super) fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(c.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(c.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// A zone-file character-string: quoted, `"` and `\\` escaped.
fn quoted(s: &mut StrBuilder<'_>, t: &str) {
    let mut q = String::with_capacity(t.len() + 2);
    q.push('"');
    for c in t.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    s.text(&q);
}

fn type_text(s: &mut StrBuilder<'_>, t: u16) {
    match rrtype_name(t) {
        Some(n) => s.text(n),
        None => s.text("TYPE").u64(u64::from(t)),
    };
}

/// SvcParam key name (RFC 9460 section 14.3.2).
fn svc_key_name(k: u16) -> Option<&'static str> {
    Some(match k {
        0 => "mandatory",
        1 => "alpn",
        2 => "no-default-alpn",
        3 => "port",
        4 => "ipv4hint",
        5 => "ech",
        6 => "ipv6hint",
        _ => return None,
    })
}

fn svc_key_text(s: &mut StrBuilder<'_>, k: u16) {
    match svc_key_name(k) {
        Some(n) => s.text(n),
        None => s.text("key").u64(u64::from(k)),
    };
}

/// Writes the text form of record data (escaped) into a JSON string being
/// built; nothing for data without one. A, AAAA, names, MX, SRV and SOA are
/// written as before (address, target, exchange, mname); TXT/SPF and the
/// newer types in zone-file presentation form (`"a" "b"`, `0 issue "ca"`,
/// `1 . alpn=h2,h3 port=443`), RRSIG without its signature and with its
/// times as seconds since the epoch.
fn rdata_text(s: &mut StrBuilder<'_>, d: &DnsRdata) {
    let hex = crate::app::util::hex;
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
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    s.text(" ");
                }
                quoted(s, p);
            }
        }
        DnsRdata::Srv { target, .. } => {
            s.text(target);
        }
        DnsRdata::Soa { mname, .. } => {
            s.text(mname);
        }
        DnsRdata::Caa { flags, tag, value } => {
            s.u64(u64::from(*flags)).text(" ").text(tag).text(" ");
            quoted(s, value);
        }
        DnsRdata::Naptr {
            order,
            preference,
            flags,
            services,
            regexp,
            replacement,
        } => {
            s.u64(u64::from(*order)).text(" ");
            s.u64(u64::from(*preference)).text(" ");
            for t in [flags, services, regexp] {
                quoted(s, t);
                s.text(" ");
            }
            s.text(if replacement.is_empty() {
                "."
            } else {
                replacement
            });
        }
        DnsRdata::Sshfp {
            algorithm,
            fp_type,
            fingerprint,
        } => {
            s.u64(u64::from(*algorithm)).text(" ");
            s.u64(u64::from(*fp_type)).text(" ").text(&hex(fingerprint));
        }
        DnsRdata::Tlsa {
            usage,
            selector,
            matching_type,
            data,
        } => {
            for n in [usage, selector, matching_type] {
                s.u64(u64::from(*n)).text(" ");
            }
            s.text(&hex(data));
        }
        DnsRdata::Svcb {
            priority,
            target,
            params,
        } => {
            s.u64(u64::from(*priority)).text(" ");
            s.text(if target.is_empty() { "." } else { target });
            for p in params {
                s.text(" ");
                match p {
                    SvcParam::Mandatory(keys) => {
                        s.text("mandatory=");
                        for (i, k) in keys.iter().enumerate() {
                            if i > 0 {
                                s.text(",");
                            }
                            svc_key_text(s, *k);
                        }
                    }
                    SvcParam::Alpn(ids) => {
                        s.text("alpn=").text(&ids.join(","));
                    }
                    SvcParam::NoDefaultAlpn => {
                        s.text("no-default-alpn");
                    }
                    SvcParam::Port(p) => {
                        s.text("port=").u64(u64::from(*p));
                    }
                    SvcParam::Ipv4Hint(a) => {
                        s.text("ipv4hint=");
                        for (i, ip) in a.iter().enumerate() {
                            if i > 0 {
                                s.text(",");
                            }
                            s.ip(&IpAddr::V4(*ip));
                        }
                    }
                    SvcParam::Ipv6Hint(a) => {
                        s.text("ipv6hint=");
                        for (i, ip) in a.iter().enumerate() {
                            if i > 0 {
                                s.text(",");
                            }
                            s.ip(&IpAddr::V6(*ip));
                        }
                    }
                    SvcParam::Ech(b) => {
                        s.text("ech=").text(&base64(b));
                    }
                    SvcParam::Other { key, value } => {
                        svc_key_text(s, *key);
                        s.text("=").text(&hex(value));
                    }
                }
            }
        }
        DnsRdata::Ds {
            key_tag,
            algorithm,
            digest_type,
            digest,
        } => {
            s.u64(u64::from(*key_tag)).text(" ");
            s.u64(u64::from(*algorithm)).text(" ");
            s.u64(u64::from(*digest_type)).text(" ").text(&hex(digest));
        }
        DnsRdata::Dnskey {
            flags,
            protocol,
            algorithm,
            key,
            ..
        } => {
            s.u64(u64::from(*flags)).text(" ");
            s.u64(u64::from(*protocol)).text(" ");
            s.u64(u64::from(*algorithm)).text(" ").text(&base64(key));
        }
        DnsRdata::Rrsig {
            type_covered,
            algorithm,
            labels,
            original_ttl,
            expiration,
            inception,
            key_tag,
            signer,
            ..
        } => {
            type_text(s, *type_covered);
            for n in [
                u64::from(*algorithm),
                u64::from(*labels),
                u64::from(*original_ttl),
                u64::from(*expiration),
                u64::from(*inception),
                u64::from(*key_tag),
            ] {
                s.text(" ").u64(n);
            }
            s.text(" ")
                .text(if signer.is_empty() { "." } else { signer });
        }
        DnsRdata::Nsec { next, types } => {
            s.text(if next.is_empty() { "." } else { next });
            for t in types {
                s.text(" ");
                type_text(s, *t);
            }
        }
        DnsRdata::Malformed { .. } | DnsRdata::Other { .. } => {}
    }
}

/// Writes `key` as the type's name or its number (arrays).
fn type_item(a: &mut jsonline::JsonArray<'_>, t: u16) {
    match rrtype_name(t) {
        Some(n) => a.str(n),
        None => a.u64(u64::from(t)),
    }
}

/// The typed object of the newer record types (native and eve alike):
/// `caa`, `naptr`, `sshfp`, `tlsa`, `svcb`/`https`, `ds`, `dnskey`, `rrsig`,
/// `nsec`. Returns false for other data.
fn typed_rdata(w: &mut JsonWriter<'_>, rtype: u16, d: &DnsRdata) -> bool {
    let hex = crate::app::util::hex;
    match d {
        DnsRdata::Caa { flags, tag, value } => {
            let mut o = w.begin_object("caa");
            o.u64("flags", u64::from(*flags));
            o.str("tag", tag);
            o.str("value", value);
            o.end_object();
        }
        DnsRdata::Naptr {
            order,
            preference,
            flags,
            services,
            regexp,
            replacement,
        } => {
            let mut o = w.begin_object("naptr");
            o.u64("order", u64::from(*order));
            o.u64("preference", u64::from(*preference));
            o.str("flags", flags);
            o.str("services", services);
            o.str("regexp", regexp);
            o.str("replacement", replacement);
            o.end_object();
        }
        DnsRdata::Sshfp {
            algorithm,
            fp_type,
            fingerprint,
        } => {
            // Suricata's names and its colon-separated hex.
            let mut o = w.begin_object("sshfp");
            o.str(
                "fingerprint",
                &crate::app::util::hex_colon(fingerprint, false),
            );
            o.u64("algo", u64::from(*algorithm));
            o.u64("type", u64::from(*fp_type));
            o.end_object();
        }
        DnsRdata::Tlsa {
            usage,
            selector,
            matching_type,
            data,
        } => {
            let mut o = w.begin_object("tlsa");
            o.u64("usage", u64::from(*usage));
            o.u64("selector", u64::from(*selector));
            o.u64("matching_type", u64::from(*matching_type));
            o.str("data", &hex(data));
            o.end_object();
        }
        DnsRdata::Svcb {
            priority,
            target,
            params,
        } => {
            let mut o = w.begin_object(if rtype == 65 { "https" } else { "svcb" });
            o.u64("priority", u64::from(*priority));
            o.str("target", target);
            let mut others = Vec::new();
            for p in params {
                match p {
                    SvcParam::Mandatory(keys) => {
                        let mut a = o.begin_array("mandatory");
                        for k in keys {
                            match svc_key_name(*k) {
                                Some(n) => a.str(n),
                                None => a.u64(u64::from(*k)),
                            }
                        }
                        a.end();
                    }
                    SvcParam::Alpn(ids) => o.str_array("alpn", ids.iter().map(String::as_str)),
                    SvcParam::NoDefaultAlpn => o.bool("no_default_alpn", true),
                    SvcParam::Port(n) => o.u64("port", u64::from(*n)),
                    SvcParam::Ipv4Hint(a) => {
                        let mut arr = o.begin_array("ipv4hint");
                        for ip in a {
                            arr.ip(&IpAddr::V4(*ip));
                        }
                        arr.end();
                    }
                    SvcParam::Ipv6Hint(a) => {
                        let mut arr = o.begin_array("ipv6hint");
                        for ip in a {
                            arr.ip(&IpAddr::V6(*ip));
                        }
                        arr.end();
                    }
                    SvcParam::Ech(b) => o.str("ech", &base64(b)),
                    SvcParam::Other { key, value } => others.push((*key, value)),
                }
            }
            if !others.is_empty() {
                let mut a = o.begin_array("params");
                for (key, value) in others {
                    let mut e = a.object();
                    e.u64("key", u64::from(key));
                    e.str("value", &hex(value));
                    e.end_object();
                }
                a.end();
            }
            o.end_object();
        }
        DnsRdata::Ds {
            key_tag,
            algorithm,
            digest_type,
            digest,
        } => {
            let mut o = w.begin_object("ds");
            o.u64("key_tag", u64::from(*key_tag));
            o.u64("algorithm", u64::from(*algorithm));
            o.u64("digest_type", u64::from(*digest_type));
            o.str("digest", &hex(digest));
            o.end_object();
        }
        DnsRdata::Dnskey {
            flags,
            protocol,
            algorithm,
            key,
            key_len,
        } => {
            let mut o = w.begin_object("dnskey");
            o.u64("flags", u64::from(*flags));
            o.u64("protocol", u64::from(*protocol));
            o.u64("algorithm", u64::from(*algorithm));
            o.str("key", &base64(key));
            o.u64("key_len", u64::from(*key_len));
            o.end_object();
        }
        DnsRdata::Rrsig {
            type_covered,
            algorithm,
            labels,
            original_ttl,
            expiration,
            inception,
            key_tag,
            signer,
            signature_len,
        } => {
            let mut o = w.begin_object("rrsig");
            rrtype_member(&mut o, "type_covered", *type_covered);
            o.u64("algorithm", u64::from(*algorithm));
            o.u64("labels", u64::from(*labels));
            o.u64("original_ttl", u64::from(*original_ttl));
            o.u64("expiration", u64::from(*expiration));
            o.u64("inception", u64::from(*inception));
            o.u64("key_tag", u64::from(*key_tag));
            o.str("signer", signer);
            o.u64("signature_len", u64::from(*signature_len));
            o.end_object();
        }
        DnsRdata::Nsec { next, types } => {
            let mut o = w.begin_object("nsec");
            o.str("next", next);
            let mut a = o.begin_array("types");
            for t in types {
                type_item(&mut a, *t);
            }
            a.end();
            o.end_object();
        }
        _ => return false,
    }
    true
}

/// Writes one answer/authority record the way Suricata's eve v3 does:
/// `rrname`, `rrtype`, `ttl`, then `rdata` or a typed object (`srv`, `soa`,
/// `sshfp`, and flowtap's `caa`, `naptr`, `tlsa`, `svcb`/`https`, `ds`,
/// `dnskey`, `rrsig`, `nsec`). TXT/SPF: `txt` (the array of character-strings;
/// eve writes one record per string instead, see [`record_lists`]).
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
        DnsRdata::Txt(parts) => w.str_array("txt", parts.iter().map(String::as_str)),
        // The commonest data written directly: the same bytes `rdata_text`
        // gives them.
        DnsRdata::A(a) => w.ip("rdata", &IpAddr::V4(*a)),
        DnsRdata::Aaaa(a) => w.ip("rdata", &IpAddr::V6(*a)),
        DnsRdata::Name(n) => w.str("rdata", n),
        DnsRdata::Other { len } => w.u64("rdata_len", u64::from(*len)),
        DnsRdata::Malformed { len } => {
            w.u64("rdata_len", u64::from(*len));
            w.bool("rdata_malformed", true);
        }
        other => {
            if !typed_rdata(w, r.rtype, other) {
                w.str_with("rdata", |s| rdata_text(s, other));
            }
        }
    }
    if r.rdata_truncated {
        w.bool("rdata_truncated", true);
    }
}

/// One EDNS object (native, eve, ECS under `flowtap.dns`). Always inlined:
/// its callers pass literal keys.
#[inline(always)]
fn edns_member(w: &mut JsonWriter<'_>, key: &str, e: &Edns) {
    let hex = crate::app::util::hex;
    let mut o = w.begin_object(key);
    o.u64("udp_size", u64::from(e.udp_size));
    o.u64("ext_rcode", u64::from(e.ext_rcode));
    o.u64("version", u64::from(e.version));
    o.bool("do", e.do_bit);
    if let Some(cs) = &e.client_subnet {
        let mut c = o.begin_object("client_subnet");
        c.u64("family", u64::from(cs.family));
        c.u64("source_prefix", u64::from(cs.source_prefix));
        c.u64("scope_prefix", u64::from(cs.scope_prefix));
        if let Some(a) = &cs.address {
            c.ip("address", a);
        }
        c.end_object();
    }
    if let Some((client, server)) = &e.cookie {
        let mut c = o.begin_object("cookie");
        c.str("client", &hex(client));
        if !server.is_empty() {
            c.str("server", &hex(server));
        }
        c.end_object();
    }
    if !e.other_options.is_empty() {
        let mut a = o.begin_array("options");
        for c in &e.other_options {
            a.u64(u64::from(*c));
        }
        a.end();
    }
    if e.malformed {
        o.bool("malformed", true);
    }
    o.end_object();
}

fn edns_members(w: &mut JsonWriter<'_>, d: &DnsEvent) {
    if let Some(e) = &d.query_edns {
        edns_member(w, "query_edns", e);
    }
    if let Some(e) = &d.response_edns {
        edns_member(w, "response_edns", e);
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

/// The answer and authority arrays. `eve`: a TXT/SPF record is written
/// the way Suricata 8 does, one object per character-string with the
/// string as `rdata` (boundaries kept, grouping by record not); native
/// writes one object per record with `txt` [strings].
fn record_lists(o: &mut JsonWriter<'_>, d: &DnsEvent, eve: bool) {
    // One call per literal key: a key from a loop over both lists reached
    // the writer as a runtime value (a memset and two memcpy calls).
    record_list(o, "answers", &d.answers, eve);
    record_list(o, "authorities", &d.authorities, eve);
}

/// One of them under `key`; nothing when the list is empty.
#[inline(always)]
fn record_list(o: &mut JsonWriter<'_>, key: &str, list: &[DnsRecord], eve: bool) {
    if list.is_empty() {
        return;
    }
    let mut a = o.begin_array(key);
    for r in list {
        match &r.data {
            DnsRdata::Txt(parts) if eve && !parts.is_empty() => {
                for p in parts {
                    let mut e = a.object();
                    e.str("rrname", &r.name);
                    rrtype_member(&mut e, "rrtype", r.rtype);
                    e.u64("ttl", u64::from(r.ttl));
                    e.str("rdata", p);
                    if r.rdata_truncated {
                        e.bool("rdata_truncated", true);
                    }
                    e.end_object();
                }
            }
            _ => {
                let mut e = a.object();
                record_members(&mut e, r);
                e.end_object();
            }
        }
    }
    a.end();
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
                rdata_truncated: false,
            },
            DnsRecord {
                name: "example.com".into(),
                rtype: 1,
                rclass: 1,
                ttl: 300,
                data: DnsRdata::A([93, 184, 216, 34].into()),
                rdata_truncated: false,
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
                rdata_truncated: false,
            },
            DnsRecord {
                name: "example.com".into(),
                rtype: 16,
                rclass: 1,
                ttl: 300,
                data: DnsRdata::Txt(vec!["v=spf1 -all".into(), "k=\"v\"".into()]),
                rdata_truncated: false,
            },
            DnsRecord {
                name: "example.com".into(),
                rtype: 65,
                rclass: 1,
                ttl: 300,
                data: DnsRdata::Svcb {
                    priority: 1,
                    target: "".into(),
                    params: vec![
                        SvcParam::Alpn(vec!["h2".into(), "h3".into()]),
                        SvcParam::Ipv4Hint(vec![[93, 184, 216, 34].into()]),
                    ],
                },
                rdata_truncated: false,
            },
        ],
        query_edns: Some(Edns {
            udp_size: 1232,
            do_bit: true,
            client_subnet: Some(super::event::ClientSubnet {
                family: 1,
                source_prefix: 24,
                scope_prefix: 0,
                address: Some([198, 51, 100, 0].into()),
            }),
            cookie: Some((vec![1, 2, 3, 4, 5, 6, 7, 8], vec![])),
            ..Edns::default()
        }),
        response_edns: Some(Edns {
            udp_size: 1232,
            ..Edns::default()
        }),
        latency_ns: Some(15_030_000),
        query_ts_ns: Some(1_405_687_770_577_034_000),
        response_ts_ns: Some(1_405_687_770_592_064_000),
        ..DnsEvent::default()
    }
}

/// The native object's last three members (`truncated`, `malformed`,
/// `timed_out`) as one literal: the same bytes as three `bool` members.
fn end_flags(d: &DnsEvent) -> &'static [u8] {
    match (d.truncated, d.malformed, d.timed_out) {
        (false, false, false) => br#""truncated":false,"malformed":false,"timed_out":false"#,
        (false, false, true) => br#""truncated":false,"malformed":false,"timed_out":true"#,
        (false, true, false) => br#""truncated":false,"malformed":true,"timed_out":false"#,
        (false, true, true) => br#""truncated":false,"malformed":true,"timed_out":true"#,
        (true, false, false) => br#""truncated":true,"malformed":false,"timed_out":false"#,
        (true, false, true) => br#""truncated":true,"malformed":false,"timed_out":true"#,
        (true, true, false) => br#""truncated":true,"malformed":true,"timed_out":false"#,
        (true, true, true) => br#""truncated":true,"malformed":true,"timed_out":true"#,
    }
}

impl EventWriters for DnsEvent {
    fn native(&self, w: &mut JsonWriter<'_>, _opts: &WriteOptions) {
        let d = self;
        let mut o = w.begin_object("dns");
        o.u64("id", u64::from(d.id));
        o.u64("opcode", u64::from(d.opcode));
        o.raw_members(match (d.has_query, d.has_response) {
            (true, true) => br#""has_query":true,"has_response":true"#,
            (true, false) => br#""has_query":true,"has_response":false"#,
            (false, true) => br#""has_query":false,"has_response":true"#,
            (false, false) => br#""has_query":false,"has_response":false"#,
        });
        if let Some(f) = d.query_flags {
            hex_u16_member(&mut o, "query_flags", f);
        }
        if let Some(f) = d.response_flags {
            hex_u16_member(&mut o, "response_flags", f);
        }
        // Each set bit as its own member, written out: literal keys fold
        // into the member's bytes.
        if d.aa {
            o.bool("aa", true);
        }
        if d.tc {
            o.bool("tc", true);
        }
        if d.rd {
            o.bool("rd", true);
        }
        if d.ra {
            o.bool("ra", true);
        }
        if d.ad {
            o.bool("ad", true);
        }
        if d.cd {
            o.bool("cd", true);
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
        record_lists(&mut o, d, false);
        edns_members(&mut o, d);
        opt_u64(&mut o, "latency_us", d.latency_ns.map(|n| n / 1_000));
        if d.retransmits > 0 {
            o.u64("retransmits", u64::from(d.retransmits));
        }
        o.raw_members(end_flags(d));
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
                // ECS `data` is one keyword: TXT/SPF in presentation
                // form, each character-string quoted (`"a" "b"`).
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
        edns_members(&mut o, d);
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
            hex_u16_member(&mut o, "flags", f);
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
        record_lists(&mut o, d, true);
        edns_members(&mut o, d);
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
        // EDNS of the query (of the response when there was no query's).
        if let Some(e) = d.query_edns.as_ref().or(d.response_edns.as_ref()) {
            w.u64("_dns_edns_udp_size", u64::from(e.udp_size));
            w.u64("_dns_edns_do", u64::from(e.do_bit)); // GELF: no booleans
            if let Some(a) = e
                .client_subnet
                .as_ref()
                .and_then(|c| c.address.map(|a| (a, c)))
            {
                w.str_with("_dns_client_subnet", |s| {
                    s.ip(&a.0).text("/").u64(u64::from(a.1.source_prefix));
                });
            }
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
