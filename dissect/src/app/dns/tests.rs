use super::wire::tests_support::{query, response};
use super::*;
use crate::app::testutil::{corpus, replay_tcp, suricata_events, udp_payloads, Driver};
use crate::app::Direction::{ToClient, ToServer};
use std::collections::HashMap;

fn dns_events(events: &[AppEvent]) -> Vec<DnsEvent> {
    events
        .iter()
        .map(|e| match e {
            AppEvent::Dns(d) => (**d).clone(),
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
}

fn udp() -> DnsParser {
    DnsParser::new(Transport::Udp, DnsConfig::default())
}

fn feed(
    p: &mut DnsParser,
    dir: Direction,
    msg: &[u8],
    ts: u64,
    out: &mut Vec<AppEvent>,
) -> ParseStatus {
    p.parse(dir, msg, &Ctx::new(ts), &mut |e| out.push(e))
}

#[test]
fn udp_query_response_pair() {
    let q = query(0x1234, "www.Example.com", 1);
    let r = response(&q, 0, &[(1, vec![192, 0, 2, 7]), (1, vec![192, 0, 2, 8])]);
    let mut p = udp();
    let mut out = Vec::new();
    assert_eq!(
        feed(&mut p, ToServer, &q, 1_000, &mut out),
        ParseStatus::Consumed(q.len())
    );
    assert!(out.is_empty());
    assert_eq!(
        feed(&mut p, ToClient, &r, 1_500, &mut out),
        ParseStatus::Consumed(r.len())
    );
    let ev = dns_events(&out);
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e.id, 0x1234);
    assert_eq!(e.queries[0].name, "www.Example.com");
    assert_eq!(e.queries[0].rtype, 1);
    assert_eq!(e.rcode, Some(0));
    assert!(e.rd && e.ra && !e.aa && !e.tc);
    assert_eq!(e.query_flags, Some(0x0100));
    assert_eq!(e.response_flags, Some(0x8180));
    assert_eq!(e.answers.len(), 2);
    assert_eq!(e.answers[1].data, DnsRdata::A("192.0.2.8".parse().unwrap()));
    assert_eq!(
        (e.query_ts_ns, e.response_ts_ns, e.latency_ns),
        (Some(1_000), Some(1_500), Some(500))
    );
    assert!(e.has_query && e.has_response);
    assert_eq!(p.stats().events, 1);
}

#[test]
fn match_by_id_and_name_out_of_order() {
    let q1 = query(1, "a.example", 1);
    let q2 = query(2, "b.example", 28);
    let q3 = query(1, "c.example", 1); // same id, other name
    let mut p = udp();
    let mut out = Vec::new();
    for q in [&q1, &q2, &q3] {
        feed(&mut p, ToServer, q, 1, &mut out);
    }
    feed(&mut p, ToClient, &response(&q3, 3, &[]), 2, &mut out);
    feed(&mut p, ToClient, &response(&q2, 0, &[]), 3, &mut out);
    feed(&mut p, ToClient, &response(&q1, 0, &[]), 4, &mut out);
    let ev = dns_events(&out);
    let names: Vec<&str> = ev.iter().map(|e| e.queries[0].name.as_str()).collect();
    assert_eq!(names, vec!["c.example", "b.example", "a.example"]);
    assert_eq!(ev[0].rcode, Some(3));
    assert!(ev.iter().all(|e| e.has_query && e.has_response));
}

#[test]
fn unanswered_orphan_retransmit_expiry_overflow() {
    let cfg = DnsConfig {
        max_pending: 2,
        query_timeout_ns: 1_000,
        max_records: 8,
    };
    let mut p = DnsParser::new(Transport::Udp, cfg);
    let mut out = Vec::new();
    let q1 = query(1, "one.example", 1);
    feed(&mut p, ToServer, &q1, 100, &mut out);
    feed(&mut p, ToServer, &q1, 150, &mut out); // retransmission
                                                // Response without query.
    feed(
        &mut p,
        ToClient,
        &response(&query(9, "nine.example", 1), 0, &[]),
        200,
        &mut out,
    );
    // Expiry on a later parse call.
    feed(
        &mut p,
        ToServer,
        &query(2, "two.example", 1),
        1_200,
        &mut out,
    );
    let ev = dns_events(&out);
    assert_eq!(ev.len(), 2);
    assert!(!ev[0].has_query && ev[0].has_response && ev[0].id == 9);
    assert!(ev[1].has_query && !ev[1].has_response && ev[1].timed_out && ev[1].id == 1);
    assert_eq!(ev[1].retransmits, 1);
    // Overflow: 2 pending max; a third pushes the oldest out.
    feed(
        &mut p,
        ToServer,
        &query(3, "three.example", 1),
        1_201,
        &mut out,
    );
    feed(
        &mut p,
        ToServer,
        &query(4, "four.example", 1),
        1_202,
        &mut out,
    );
    let ev = dns_events(&out);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[2].id, 2);
    // Flush emits the rest as unanswered.
    p.flush(&Ctx::new(1_300), &mut |e| out.push(e));
    let ev = dns_events(&out);
    assert_eq!(
        ev.iter().skip(3).map(|e| e.id).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert!(ev.iter().skip(3).all(|e| !e.timed_out));
    let st = p.stats();
    assert_eq!(
        (st.orphan_responses, st.pending_overflow, st.unanswered),
        (1, 1, 4)
    );
    // The explicit hook works too.
    let mut p = udp();
    let mut out = Vec::new();
    feed(&mut p, ToServer, &q1, 100, &mut out);
    p.expire_older_than(101, &mut |e| out.push(e));
    assert_eq!(dns_events(&out).len(), 1);
}

#[test]
fn malformed_messages_are_counted_not_fatal() {
    let mut p = udp();
    let mut out = Vec::new();
    // Compression loop in the question.
    let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(
        feed(&mut p, ToServer, &m, 1, &mut out),
        ParseStatus::Consumed(m.len())
    );
    // Short header.
    feed(&mut p, ToServer, &[1, 2, 3], 1, &mut out);
    // Answer pointing forward: the response is kept, flagged malformed.
    let q = query(5, "x.example", 1);
    feed(&mut p, ToServer, &q, 1, &mut out);
    let mut r = response(&q, 0, &[(1, vec![1, 2, 3, 4])]);
    let n = r.len();
    r.extend_from_slice(&[
        0xc0,
        (n + 2) as u8,
        0,
        1,
        0,
        1,
        0,
        0,
        0,
        1,
        0,
        4,
        1,
        2,
        3,
        4,
    ]);
    r[7] = 2;
    feed(&mut p, ToClient, &r, 2, &mut out);
    let ev = dns_events(&out);
    assert_eq!(ev.len(), 1);
    assert!(ev[0].malformed);
    assert_eq!(ev[0].answers.len(), 1);
    assert_eq!(p.stats().malformed, 3);
    // Label length > 63 is an extended label type (0x40..): rejected.
    let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64];
    m.extend_from_slice(&[b'a'; 64]);
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    feed(&mut p, ToServer, &m, 3, &mut out);
    assert_eq!(p.stats().malformed, 4);
}

fn tcp_frame(msg: &[u8]) -> Vec<u8> {
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    f
}

#[test]
fn tcp_framing_split_everywhere_and_batched() {
    let q1 = query(1, "one.example", 1);
    let q2 = query(2, "two.example", 28);
    let mut cts = tcp_frame(&q1);
    cts.extend(tcp_frame(&q2));
    let mut stc = tcp_frame(&response(&q1, 0, &[(1, vec![1, 1, 1, 1])]));
    stc.extend(tcp_frame(&response(&q2, 3, &[])));
    for i in 0..=cts.len() {
        for j in [0, stc.len() / 3, stc.len()] {
            let mut d = Driver::new(Box::new(DnsParser::new(
                Transport::Tcp,
                DnsConfig::default(),
            )));
            d.feed(ToServer, &cts[..i], 1);
            d.feed(ToServer, &cts[i..], 2);
            d.feed(ToClient, &stc[..j], 3);
            d.feed(ToClient, &stc[j..], 4);
            d.flush(5);
            let ev = dns_events(&d.events);
            assert_eq!(ev.len(), 2, "split {i}/{j}");
            assert!(ev.iter().all(|e| e.has_query && e.has_response));
            assert_eq!(ev[1].rcode, Some(3));
        }
    }
}

#[test]
fn tcp_gap_resyncs_on_next_message() {
    let q1 = query(1, "one.example", 1);
    let q2 = query(2, "two.example", 1);
    let q3 = query(3, "three.example", 1);
    let mut d = Driver::new(Box::new(DnsParser::new(
        Transport::Tcp,
        DnsConfig::default(),
    )));
    d.feed(ToServer, &tcp_frame(&q1), 1);
    let f2 = tcp_frame(&q2);
    d.feed(ToServer, &f2[..5], 2);
    d.gap(ToServer, 10);
    // The rest of message 2: not a plausible start, dropped.
    d.feed(ToServer, &f2[15..], 3);
    d.feed(ToServer, &tcp_frame(&q3), 4);
    for q in [&q1, &q2, &q3] {
        d.feed(ToClient, &tcp_frame(&response(q, 0, &[])), 5);
    }
    d.flush(6);
    let ev = dns_events(&d.events);
    let summary: Vec<(u16, bool, bool)> = ev
        .iter()
        .map(|e| (e.id, e.has_query, e.has_response))
        .collect();
    assert_eq!(
        summary,
        vec![(1, true, true), (2, false, true), (3, true, true)]
    );
    assert_eq!(d.parser.stats().resyncs, 1);
}

#[test]
fn probes() {
    let q = query(1, "example.com", 1);
    assert!(probe_udp(&q));
    assert!(!probe_udp(&q[..11]));
    assert!(!probe_udp(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"));
    let f = tcp_frame(&q);
    assert_eq!(probe_tcp(ToServer, &f), Probe::Yes);
    assert_eq!(probe_tcp(ToServer, &f[..1]), Probe::NeedMore);
    assert_eq!(probe_tcp(ToServer, &f[..10]), Probe::NeedMore);
    assert_eq!(probe_tcp(ToServer, &f[..16]), Probe::NeedMore);
    assert_eq!(probe_tcp(ToServer, b"GET / HTTP/1.1\r\n"), Probe::No);
    let r = tcp_frame(&response(&q, 0, &[]));
    assert_eq!(probe_tcp(ToServer, &r), Probe::No);
    assert_eq!(probe_tcp(ToClient, &r), Probe::Yes);
}

/// 22 zero bytes (seen on UDP 5353/5355): a header with nothing in it is
/// not DNS; it gives no `dns` event with no question, only a count.
#[test]
fn zero_bytes_are_not_a_query_without_question() {
    let zeros = [0u8; 22];
    assert!(!probe_udp(&zeros));
    let mut p = udp();
    let mut out = Vec::new();
    feed(&mut p, ToServer, &zeros, 1_000, &mut out);
    feed(&mut p, ToClient, &zeros, 2_000, &mut out);
    p.flush(&Ctx::new(3_000), &mut |e| out.push(e));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(p.stats().malformed, 2);
    // An mDNS announcement (a response with answers, no question) still is.
    let mut r = response(&query(0, "printer.local", 1), 0, &[(1, vec![192, 0, 2, 9])]);
    r[4..6].copy_from_slice(&0u16.to_be_bytes());
    let q_end = 12 + "printer.local".len() + 2 + 4;
    r.drain(12..q_end);
    assert!(probe_udp(&r));
}

// ---------------------------------------------------------------------------
// Corpus: real captures against Suricata 8.0.6's eve output.
// ---------------------------------------------------------------------------

/// Our DNS events for a capture (UDP: one parser per port pair; TCP: replay).
fn corpus_events(rel: &str, tcp: bool) -> Vec<DnsEvent> {
    let cap = corpus(rel);
    if tcp {
        let flows = replay_tcp(&cap, &|_, _| {
            Box::new(DnsParser::new(Transport::Tcp, DnsConfig::default()))
        });
        let mut out = Vec::new();
        for f in flows {
            assert_eq!(f.errors, 0);
            out.extend(dns_events(&f.events));
        }
        return out;
    }
    let mut parsers: HashMap<(u16, u16), (DnsParser, u64)> = HashMap::new();
    let mut out = Vec::new();
    for (ts, sp, dp, payload) in udp_payloads(&cap, "dns") {
        assert!(
            crate::app::detect_udp(sp, dp, &payload).is_some(),
            "{rel}: detect_udp"
        );
        let key = if sp == 53 { (dp, sp) } else { (sp, dp) };
        let dir = if sp == 53 { ToClient } else { ToServer };
        let (p, last) = parsers.entry(key).or_insert_with(|| (udp(), ts));
        *last = ts;
        p.parse(dir, &payload, &Ctx::new(ts), &mut |e| out.push(e));
    }
    for (_, (mut p, last)) in parsers {
        p.flush(&Ctx::new(last), &mut |e| out.push(e));
    }
    dns_events(&out)
}

/// Suricata's rendering of one record, for comparison.
fn suricata_record(r: &DnsRecord) -> serde_json::Value {
    use serde_json::json;
    let mut v = json!({
        "rrname": r.name,
        "rrtype": rrtype_name(r.rtype).map(str::to_string).unwrap_or_else(|| r.rtype.to_string()),
        "ttl": r.ttl,
    });
    match &r.data {
        DnsRdata::A(a) => v["rdata"] = json!(a.to_string()),
        DnsRdata::Aaaa(a) => {
            let s: Vec<String> = a.segments().iter().map(|x| format!("{x:04x}")).collect();
            v["rdata"] = json!(s.join(":"));
        }
        DnsRdata::Name(n) => v["rdata"] = json!(n),
        // Suricata 8 writes one record per character-string (see
        // `expand_txt`); here the record of one string.
        DnsRdata::Txt(t) => v["rdata"] = json!(t.concat()),
        DnsRdata::Sshfp {
            algorithm,
            fp_type,
            fingerprint,
        } => {
            v["sshfp"] = json!({"fingerprint": crate::app::util::hex_colon(fingerprint, false),
                "algo": algorithm, "type": fp_type})
        }
        DnsRdata::Srv {
            priority,
            weight,
            port,
            target,
        } => {
            v["srv"] = json!({"priority": priority, "weight": weight, "port": port, "name": target})
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
            v["soa"] = json!({"mname": mname, "rname": rname, "serial": serial, "refresh": refresh,
                "retry": retry, "expire": expire, "minimum": minimum})
        }
        DnsRdata::Mx { exchange, .. } => v["rdata"] = json!(exchange),
        // Suricata writes no data for the other types.
        _ => {}
    }
    v
}

/// A record list as Suricata 8 writes it: a TXT record of n strings is n
/// records of one string each.
fn expand_txt(list: &[DnsRecord]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for r in list {
        match &r.data {
            DnsRdata::Txt(parts) if !parts.is_empty() => {
                for p in parts {
                    let one = DnsRecord {
                        data: DnsRdata::Txt(vec![p.clone()]),
                        ..r.clone()
                    };
                    out.push(suricata_record(&one));
                }
            }
            _ => out.push(suricata_record(r)),
        }
    }
    out
}

/// Every Suricata request/response must match one of our transactions on
/// id, rrname, rrtype, rcode, answers and authorities (rrname, rrtype, ttl,
/// rdata / srv / soa), and the counts of queries and responses must agree.
fn compare_with_suricata(rel: &str, tcp: bool) -> (usize, usize) {
    let ours = corpus_events(rel, tcp);
    let theirs = suricata_events(rel, "dns");
    assert!(!theirs.is_empty());
    let (mut nq, mut nr) = (0, 0);
    for t in &theirs {
        let d = &t["dns"];
        let id = d["id"].as_u64().unwrap() as u16;
        let q = &d["queries"][0];
        let name = q["rrname"].as_str().unwrap();
        let find = |resp: bool| {
            ours.iter()
                .find(|e| {
                    e.id == id
                        && e.queries.first().is_some_and(|x| x.name == name)
                        && if resp { e.has_response } else { e.has_query }
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{rel}: no event for {} id {id} {name}: {ours:#?}",
                        d["type"]
                    )
                })
        };
        let rrtype = q["rrtype"].as_str().unwrap();
        if d["type"] == "request" {
            nq += 1;
            let e = find(false);
            assert_eq!(rrtype_name(e.queries[0].rtype), Some(rrtype));
            assert_eq!(
                e.query_flags.map(|f| format!("{f:x}")),
                d["flags"].as_str().map(String::from)
            );
            continue;
        }
        nr += 1;
        let e = find(true);
        assert_eq!(
            rrtype_name(e.queries[0].rtype),
            Some(rrtype),
            "{rel} rrtype"
        );
        assert_eq!(
            e.rcode.and_then(rcode_name),
            d["rcode"].as_str(),
            "{rel} rcode"
        );
        assert_eq!(
            e.response_flags.map(|f| format!("{f:x}")),
            d["flags"].as_str().map(String::from)
        );
        assert_eq!(e.aa, d["aa"].as_bool().unwrap_or(false));
        assert_eq!(e.ra, d["ra"].as_bool().unwrap_or(false));
        let ans = expand_txt(&e.answers);
        let empty = vec![];
        assert_eq!(
            &ans,
            d["answers"].as_array().unwrap_or(&empty),
            "{rel} answers id {id}"
        );
        let auth = expand_txt(&e.authorities);
        assert_eq!(
            &auth,
            d["authorities"].as_array().unwrap_or(&empty),
            "{rel} authorities id {id}"
        );
    }
    assert_eq!(
        ours.iter().filter(|e| e.has_query).count(),
        nq,
        "{rel}: query count"
    );
    assert_eq!(
        ours.iter().filter(|e| e.has_response).count(),
        nr,
        "{rel}: response count"
    );
    (nq, nr)
}

#[test]
fn corpus_udp_dig_cname() {
    assert_eq!(
        compare_with_suricata("dns/sv-cond-log-dns-dig--input.pcap", false),
        (1, 1)
    );
}

#[test]
fn corpus_udp_type_filtering() {
    assert_eq!(
        compare_with_suricata("dns/sv-dns-eve-type-filtering--test.pcap", false),
        (7, 7)
    );
}

#[test]
fn corpus_udp_nxdomain_soa() {
    assert_eq!(
        compare_with_suricata(
            "dns/sv-dns-eve-v2-udp-nxdomain-soa--dns-udp-nxdomain-soa.pcap",
            false
        ),
        (1, 1)
    );
}

#[test]
fn corpus_udp_a_aaaa_mx() {
    assert_eq!(
        compare_with_suricata(
            "dns/sv-dns.dns-udp-eve-log-answer-only--dns-udp-google.com-a-aaaa-mx.pcap",
            false
        ),
        (3, 3)
    );
}

#[test]
fn corpus_udp_srv() {
    assert_eq!(
        compare_with_suricata("dns/sv-dns.dns-udp-eve-log-srv--input.pcap", false),
        (1, 1)
    );
}

#[test]
fn corpus_udp_txt() {
    assert_eq!(
        compare_with_suricata("dns/sv-dns.dns-udp-eve-txt--input.pcap", false),
        (2, 2)
    );
}

#[test]
fn corpus_tcp_google() {
    assert_eq!(
        compare_with_suricata("dns/sv-dns.dns-tcp-www-google-com--dns.pcap", true),
        (1, 1)
    );
}

#[test]
fn corpus_tcp_multirequest_buffer() {
    let (q, r) = compare_with_suricata(
        "dns/sv-dns.dns-tcp-multirequest-buffer--dns-tcp-multirequest-buffer.pcap",
        true,
    );
    assert!(q >= 20 && r >= 20, "{q} {r}");
}

#[test]
fn corpus_tcp_gap() {
    // Query id 1 is lost in the gap: Suricata logs its response alone, so do we.
    assert_eq!(
        compare_with_suricata("dns/sv-dns-tcp-ts-gap--input.pcap", true),
        (2, 3)
    );
}

// ---------------------------------------------------------------------------
// Record fidelity: TXT strings apart, typed rdata, EDNS (issue #14 item 4).
// ---------------------------------------------------------------------------

use super::wire::tests_support::push_name;

fn cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

/// The OPT record of an additional section: class = UDP size, TTL =
/// ext rcode, version, DO.
fn opt_record(
    udp: u16,
    ext_rcode: u8,
    version: u8,
    do_bit: bool,
    options: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut rd = Vec::new();
    for (code, v) in options {
        rd.extend_from_slice(&code.to_be_bytes());
        rd.extend_from_slice(&(v.len() as u16).to_be_bytes());
        rd.extend_from_slice(v);
    }
    let mut r = vec![0]; // root owner
    r.extend_from_slice(&41u16.to_be_bytes());
    r.extend_from_slice(&udp.to_be_bytes());
    r.extend_from_slice(&[ext_rcode, version, if do_bit { 0x80 } else { 0 }, 0]);
    r.extend_from_slice(&(rd.len() as u16).to_be_bytes());
    r.extend_from_slice(&rd);
    r
}

/// `msg` with `records` appended to its additional section.
fn with_additional(mut msg: Vec<u8>, records: &[Vec<u8>]) -> Vec<u8> {
    let n = u16::from_be_bytes([msg[10], msg[11]]) + records.len() as u16;
    msg[10..12].copy_from_slice(&n.to_be_bytes());
    for r in records {
        msg.extend_from_slice(r);
    }
    msg
}

/// One query/response exchange through the parser.
fn exchange(q: &[u8], r: &[u8]) -> (DnsEvent, AppStats) {
    let mut p = udp();
    let mut out = Vec::new();
    feed(&mut p, ToServer, q, 1_000, &mut out);
    feed(&mut p, ToClient, r, 2_000, &mut out);
    let ev = dns_events(&out);
    assert_eq!(ev.len(), 1);
    (ev[0].clone(), p.stats())
}

/// The event in every schema: native, ecs, eve, gelf, ecs `flowtap`, nanocorp.
fn render(ev: &DnsEvent) -> [serde_json::Value; 6] {
    use crate::app::encode::{EventWriters, JsonWriter, WriteOptions};
    let o = WriteOptions { max_body_bytes: 0 };
    let one = |f: &dyn Fn(&mut JsonWriter<'_>)| {
        let mut buf = Vec::new();
        let mut j = JsonWriter::object(&mut buf);
        f(&mut j);
        j.finish_line();
        serde_json::from_slice::<serde_json::Value>(&buf)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&buf)))
    };
    [
        one(&|j| ev.native(j, &o)),
        one(&|j| ev.ecs(j, &o)),
        one(&|j| ev.eve(j, &o)),
        one(&|j| ev.gelf(j, &o)),
        one(&|j| ev.ecs_flowtap(j)),
        one(&|j| ev.nanocorp(j, &o)),
    ]
}

/// TXT records keep their character-strings apart (SPF likewise): native
/// `txt` arrays, eve one answer per string (Suricata 8), ECS/GELF/nanocorp
/// the quoted presentation form.
#[test]
fn txt_and_spf_keep_their_strings() {
    let q = query(0x7a7a, "example.com", 16);
    let mut txt = Vec::new();
    cstr(&mut txt, b"v=DKIM1; k=rsa; p=MIIB");
    cstr(&mut txt, b"IjANBgkq");
    let mut odd = Vec::new();
    cstr(&mut odd, b"say \"hi\" \\o/");
    cstr(&mut odd, b"");
    let mut spf = Vec::new();
    cstr(&mut spf, b"v=spf1 ");
    cstr(&mut spf, b"-all");
    let r = response(&q, 0, &[(16, txt), (16, odd), (99, spf), (16, vec![])]);
    let (e, st) = exchange(&q, &r);
    assert_eq!(st.malformed, 0);
    let strings = |i: usize| match &e.answers[i].data {
        DnsRdata::Txt(t) => t.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(strings(0), ["v=DKIM1; k=rsa; p=MIIB", "IjANBgkq"]);
    assert_eq!(strings(1), ["say \"hi\" \\o/", ""]);
    assert_eq!(strings(2), ["v=spf1 ", "-all"]);
    assert_eq!(e.answers[2].rtype, 99);
    assert!(strings(3).is_empty());

    let [native, ecs, eve, gelf, _, nanocorp] = render(&e);
    let na = &native["dns"]["answers"];
    assert_eq!(na.as_array().unwrap().len(), 4);
    assert_eq!(
        na[0]["txt"],
        serde_json::json!(["v=DKIM1; k=rsa; p=MIIB", "IjANBgkq"])
    );
    assert_eq!(na[0].get("rdata"), None);
    assert_eq!(na[2]["rrtype"], "SPF");
    assert_eq!(na[2]["txt"], serde_json::json!(["v=spf1 ", "-all"]));
    assert_eq!(na[3]["txt"], serde_json::json!([]));
    // eve: 2 + 2 + 2 strings, and the empty record as one answer without rdata.
    let ea = eve["dns"]["answers"].as_array().unwrap();
    let rdata: Vec<&str> = ea.iter().filter_map(|a| a["rdata"].as_str()).collect();
    assert_eq!(
        rdata,
        [
            "v=DKIM1; k=rsa; p=MIIB",
            "IjANBgkq",
            "say \"hi\" \\o/",
            "",
            "v=spf1 ",
            "-all"
        ]
    );
    assert_eq!(ea.len(), 7);
    assert_eq!(ea[6]["txt"], serde_json::json!([]));
    // Presentation form: quoted, escaped, space-separated.
    assert_eq!(
        ecs["dns"]["answers"][0]["data"],
        "\"v=DKIM1; k=rsa; p=MIIB\" \"IjANBgkq\""
    );
    assert_eq!(ecs["dns"]["answers"][1]["data"], r#""say \"hi\" \\o/" """#);
    assert_eq!(ecs["dns"]["answers"][2]["data"], "\"v=spf1 \" \"-all\"");
    assert!(gelf["_dns_answers"]
        .as_str()
        .unwrap()
        .starts_with("\"v=DKIM1; k=rsa; p=MIIB\" \"IjANBgkq\","));
    assert_eq!(nanocorp["dns"]["answers"][2], "\"v=spf1 \" \"-all\"");
}

/// Records of the newer types, built by hand from their RFCs' wire formats
/// (and checked with tshark: see the commit message).
fn typed_records() -> Vec<(u16, Vec<u8>)> {
    // CAA 0 issue "letsencrypt.org" (RFC 8659 section 4.1).
    let mut caa = vec![0];
    cstr(&mut caa, b"issue");
    caa.extend_from_slice(b"letsencrypt.org");
    // NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.example.com (RFC 3403 section 6.2).
    let mut naptr = vec![0, 100, 0, 10];
    cstr(&mut naptr, b"S");
    cstr(&mut naptr, b"SIP+D2U");
    cstr(&mut naptr, b"");
    push_name(&mut naptr, "_sip._udp.example.com");
    // SSHFP 4 2 <sha-256>.
    let mut sshfp = vec![4, 2];
    sshfp.extend((0..32u8).map(|i| i * 7));
    // TLSA 3 1 1 <sha-256>.
    let mut tlsa = vec![3, 1, 1];
    tlsa.extend((0..32u8).map(|i| 0xff - i));
    // HTTPS 1 . mandatory=port alpn=h2,h3 no-default-alpn port=8443
    //   ipv4hint=192.0.2.1,192.0.2.2 ech=AAQBAgME ipv6hint=2001:db8::1 key65000=ab
    let mut https = vec![0, 1, 0];
    let mut param = |key: u16, v: &[u8]| {
        https.extend_from_slice(&key.to_be_bytes());
        https.extend_from_slice(&(v.len() as u16).to_be_bytes());
        https.extend_from_slice(v);
    };
    param(0, &[0, 3]);
    param(1, b"\x02h2\x02h3");
    param(2, b"");
    param(3, &8443u16.to_be_bytes());
    param(4, &[192, 0, 2, 1, 192, 0, 2, 2]);
    param(5, &[0, 4, 1, 2, 3, 4]);
    param(6, &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    param(65000, &[0xab]);
    // SVCB 0 svc.example.net (alias form).
    let mut svcb = vec![0, 0];
    push_name(&mut svcb, "svc.example.net");
    // DS 20326 8 2 <digest> (the root KSK-2017's DS).
    let mut ds = vec![0x4f, 0x66, 8, 2];
    ds.extend(super::super::testutil::unhex(
        "e06d44b80b8f1d39a95c0b0d7c65d08458e880409bbc683457104237c7f8ec8d",
    ));
    // DNSKEY 257 3 13 <64-byte key>.
    let mut dnskey = vec![1, 1, 3, 13];
    dnskey.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    // RRSIG A 13 2 300 <exp> <inc> 2371 example.com. <sig>
    let mut rrsig = vec![0, 1, 13, 2, 0, 0, 1, 0x2c];
    rrsig.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    rrsig.extend_from_slice(&1_690_000_000u32.to_be_bytes());
    rrsig.extend_from_slice(&2371u16.to_be_bytes());
    push_name(&mut rrsig, "example.com");
    rrsig.extend_from_slice(&[0x5a; 64]);
    // NSEC host.example.com. A MX RRSIG NSEC TYPE1234 (RFC 4034 section 4.3).
    let mut nsec = Vec::new();
    push_name(&mut nsec, "host.example.com");
    nsec.extend_from_slice(&[0, 6, 0x40, 0x01, 0, 0, 0, 0x03]);
    nsec.extend_from_slice(&[4, 0x1b]);
    nsec.extend_from_slice(&[0; 26]);
    nsec.push(0x20);
    vec![
        (257, caa),
        (35, naptr),
        (44, sshfp),
        (52, tlsa),
        (65, https),
        (64, svcb),
        (43, ds),
        (48, dnskey),
        (46, rrsig),
        (47, nsec),
    ]
}

#[test]
fn typed_rdata_of_the_common_types() {
    let q = query(0x4242, "example.com", 255);
    let r = response(&q, 0, &typed_records());
    let (e, st) = exchange(&q, &r);
    assert_eq!((st.malformed, st.truncated), (0, 0));
    assert!(!e.malformed);
    let d: Vec<&DnsRdata> = e.answers.iter().map(|a| &a.data).collect();
    assert_eq!(d.len(), 10);
    assert_eq!(
        d[0],
        &DnsRdata::Caa {
            flags: 0,
            tag: "issue".into(),
            value: "letsencrypt.org".into()
        }
    );
    assert_eq!(
        d[1],
        &DnsRdata::Naptr {
            order: 100,
            preference: 10,
            flags: "S".into(),
            services: "SIP+D2U".into(),
            regexp: "".into(),
            replacement: "_sip._udp.example.com".into()
        }
    );
    assert!(
        matches!(d[2], DnsRdata::Sshfp { algorithm: 4, fp_type: 2, fingerprint } if fingerprint.len() == 32 && fingerprint[1] == 7)
    );
    assert!(
        matches!(d[3], DnsRdata::Tlsa { usage: 3, selector: 1, matching_type: 1, data } if data.len() == 32 && data[0] == 0xff)
    );
    assert_eq!(
        d[4],
        &DnsRdata::Svcb {
            priority: 1,
            target: "".into(),
            params: vec![
                SvcParam::Mandatory(vec![3]),
                SvcParam::Alpn(vec!["h2".into(), "h3".into()]),
                SvcParam::NoDefaultAlpn,
                SvcParam::Port(8443),
                SvcParam::Ipv4Hint(vec![
                    "192.0.2.1".parse().unwrap(),
                    "192.0.2.2".parse().unwrap()
                ]),
                SvcParam::Ech(vec![0, 4, 1, 2, 3, 4]),
                SvcParam::Ipv6Hint(vec!["2001:db8::1".parse().unwrap()]),
                SvcParam::Other {
                    key: 65000,
                    value: vec![0xab]
                },
            ]
        }
    );
    assert_eq!(
        d[5],
        &DnsRdata::Svcb {
            priority: 0,
            target: "svc.example.net".into(),
            params: vec![]
        }
    );
    assert!(
        matches!(d[6], DnsRdata::Ds { key_tag: 20326, algorithm: 8, digest_type: 2, digest } if digest.len() == 32)
    );
    assert!(
        matches!(d[7], DnsRdata::Dnskey { flags: 257, protocol: 3, algorithm: 13, key, key_len: 64 } if key.len() == 64)
    );
    assert_eq!(
        d[8],
        &DnsRdata::Rrsig {
            type_covered: 1,
            algorithm: 13,
            labels: 2,
            original_ttl: 300,
            expiration: 1_700_000_000,
            inception: 1_690_000_000,
            key_tag: 2371,
            signer: "example.com".into(),
            signature_len: 64
        }
    );
    assert_eq!(
        d[9],
        &DnsRdata::Nsec {
            next: "host.example.com".into(),
            types: vec![1, 15, 46, 47, 1234]
        }
    );

    // Native (eve alike).
    let [native, ecs, eve, gelf, _, _] = render(&e);
    let a = &native["dns"]["answers"];
    use serde_json::json;
    assert_eq!(
        a[0]["caa"],
        json!({"flags": 0, "tag": "issue", "value": "letsencrypt.org"})
    );
    assert_eq!(
        a[1]["naptr"],
        json!({"order": 100, "preference": 10, "flags": "S", "services": "SIP+D2U",
               "regexp": "", "replacement": "_sip._udp.example.com"})
    );
    assert_eq!(a[2]["sshfp"]["algo"], 4);
    assert_eq!(a[2]["sshfp"]["type"], 2);
    assert!(a[2]["sshfp"]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("00:07:0e:15:"));
    assert_eq!(a[3]["tlsa"]["usage"], 3);
    assert_eq!(a[3]["tlsa"]["matching_type"], 1);
    assert!(a[3]["tlsa"]["data"]
        .as_str()
        .unwrap()
        .starts_with("fffefdfc"));
    assert_eq!(
        a[4]["https"],
        json!({"priority": 1, "target": "", "mandatory": ["port"], "alpn": ["h2", "h3"],
               "no_default_alpn": true, "port": 8443, "ipv4hint": ["192.0.2.1", "192.0.2.2"],
               "ech": "AAQBAgME", "ipv6hint": ["2001:db8::1"],
               "params": [{"key": 65000, "value": "ab"}]})
    );
    assert_eq!(
        a[5]["svcb"],
        json!({"priority": 0, "target": "svc.example.net"})
    );
    assert_eq!(
        a[6]["ds"],
        json!({"key_tag": 20326, "algorithm": 8, "digest_type": 2,
               "digest": "e06d44b80b8f1d39a95c0b0d7c65d08458e880409bbc683457104237c7f8ec8d"})
    );
    assert_eq!(a[7]["dnskey"]["flags"], 257);
    assert_eq!(a[7]["dnskey"]["key_len"], 64);
    assert_eq!(a[7]["dnskey"]["key"].as_str().unwrap().len(), 88);
    assert_eq!(
        a[8]["rrsig"],
        json!({"type_covered": "A", "algorithm": 13, "labels": 2, "original_ttl": 300,
               "expiration": 1_700_000_000u32, "inception": 1_690_000_000u32, "key_tag": 2371,
               "signer": "example.com", "signature_len": 64})
    );
    assert_eq!(
        a[9]["nsec"],
        json!({"next": "host.example.com", "types": ["A", "MX", "RRSIG", "NSEC", 1234]})
    );
    for x in a.as_array().unwrap() {
        assert_eq!(x.get("rdata"), None, "{x}");
        assert_eq!(x.get("rdata_len"), None, "{x}");
    }
    // eve: the same objects (Suricata's `sshfp` names included).
    assert_eq!(eve["dns"]["answers"], native["dns"]["answers"]);
    // ECS / GELF: presentation form.
    let data: Vec<&str> = ecs["dns"]["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["data"].as_str().unwrap())
        .collect();
    assert_eq!(data[0], "0 issue \"letsencrypt.org\"");
    assert_eq!(
        data[1],
        "100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.example.com"
    );
    assert!(data[2].starts_with("4 2 00070e15"));
    assert!(data[3].starts_with("3 1 1 fffefdfc"));
    assert_eq!(
        data[4],
        "1 . mandatory=port alpn=h2,h3 no-default-alpn port=8443 \
         ipv4hint=192.0.2.1,192.0.2.2 ech=AAQBAgME ipv6hint=2001:db8::1 key65000=ab"
    );
    assert_eq!(data[5], "0 svc.example.net");
    assert_eq!(
        data[6],
        "20326 8 2 e06d44b80b8f1d39a95c0b0d7c65d08458e880409bbc683457104237c7f8ec8d"
    );
    assert!(data[7].starts_with("257 3 13 AC"));
    assert_eq!(data[8], "A 13 2 300 1700000000 1690000000 2371 example.com");
    assert_eq!(data[9], "host.example.com A MX RRSIG NSEC TYPE1234");
    assert!(gelf["_dns_answers"]
        .as_str()
        .unwrap()
        .contains(",0 svc.example.net,"));
}

/// Cut or inconsistent data of every new type: kept as `Malformed` with
/// its length, flagged, counted once per message; no panic. Every prefix of
/// a message holding them all parses without panicking.
#[test]
fn malformed_rdata_is_flagged_not_fatal() {
    let q = query(9, "example.com", 255);
    let recs = typed_records();
    for (t, rd) in &recs {
        // Every cut of the data that leaves a fixed field or a name short.
        let mut bad_seen = 0;
        for cut in 0..rd.len() {
            let r = response(&q, 0, &[(*t, rd[..cut].to_vec())]);
            let (e, st) = exchange(&q, &r);
            assert_eq!(e.answers.len(), 1, "type {t} cut {cut}");
            assert!(!e.malformed, "the message itself is fine");
            if let DnsRdata::Malformed { len } = e.answers[0].data {
                assert_eq!(usize::from(len), cut);
                assert_eq!(st.malformed, 1);
                let [native, ..] = render(&e);
                assert_eq!(native["dns"]["answers"][0]["rdata_malformed"], true);
                assert_eq!(native["dns"]["answers"][0]["rdata_len"], cut);
                bad_seen += 1;
            } else {
                assert_eq!(
                    st.malformed, 0,
                    "type {t} cut {cut}: {:?}",
                    e.answers[0].data
                );
            }
        }
        assert!(bad_seen >= 1, "type {t}: no cut was malformed");
    }
    // SVCB param running past the data; NSEC bitmap window of length 0;
    // TXT string past the end; CAA with an empty tag.
    let bad = [
        (65u16, vec![0, 1, 0, 0, 1, 0, 9, 2]),
        (47, vec![0, 0, 0]),
        (16, vec![5, b'a']),
        (257, vec![0, 0]),
    ];
    for (t, rd) in bad {
        let r = response(&q, 0, &[(t, rd.clone())]);
        let (e, _) = exchange(&q, &r);
        assert_eq!(
            e.answers[0].data,
            DnsRdata::Malformed {
                len: rd.len() as u16
            },
            "type {t}"
        );
    }
    // All prefixes of a full message, and 10,000 mutations of it (a few
    // bytes overwritten each), parsed and written in every schema.
    let r = response(&q, 0, &recs);
    for cut in 12..r.len() {
        let _ = wire::parse_message(&r[..cut], 64);
    }
    let mut next = crate::app::testutil::xorshift(0x9e37_79b9_7f4a_7c15u64);
    let (mut parsed, mut bad_rdata) = (0, 0);
    for _ in 0..10_000 {
        let mut m = r.clone();
        for _ in 0..1 + next() % 4 {
            let i = 12 + (next() as usize) % (m.len() - 12);
            m[i] = next() as u8;
        }
        let mut p = udp();
        let mut out = Vec::new();
        feed(&mut p, ToServer, &q, 1, &mut out);
        feed(&mut p, ToClient, &m, 2, &mut out);
        p.flush(&Ctx::new(3), &mut |e| out.push(e));
        for e in dns_events(&out) {
            if e.has_response {
                parsed += 1;
                bad_rdata += e
                    .answers
                    .iter()
                    .filter(|a| matches!(a.data, DnsRdata::Malformed { .. }))
                    .count();
            }
            let _ = render(&e);
        }
    }
    // Most mutations still parse; many hit record data.
    assert!(parsed > 5_000, "{parsed}");
    assert!(bad_rdata > 500, "{bad_rdata}");
    eprintln!("mutations: {parsed} responses, {bad_rdata} malformed records");
}

/// Large data is cut with a flag (and counted), never dropped whole.
#[test]
fn large_rdata_is_truncated_with_a_flag() {
    let q = query(10, "example.com", 16);
    // 100 strings of 100 bytes: over the byte limit after 40.
    let mut txt = Vec::new();
    for i in 0..100u8 {
        cstr(&mut txt, &[b'a' + i % 26; 100]);
    }
    let mut dnskey = vec![1, 0, 3, 8];
    dnskey.extend(std::iter::repeat_n(0x11u8, 2000));
    let r = response(&q, 0, &[(16, txt), (48, dnskey), (1, vec![192, 0, 2, 1])]);
    let (e, st) = exchange(&q, &r);
    assert_eq!(st.truncated, 1);
    assert_eq!(st.malformed, 0);
    match &e.answers[0].data {
        DnsRdata::Txt(t) => {
            assert_eq!(t.len(), wire::MAX_TXT_BYTES / 100);
            assert!(t.iter().all(|s| s.len() == 100));
            assert!(t[39].starts_with('n'));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.answers[0].rdata_truncated);
    match &e.answers[1].data {
        DnsRdata::Dnskey { key, key_len, .. } => {
            assert_eq!(key.len(), wire::MAX_BLOB);
            assert_eq!(*key_len, 2000);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.answers[1].rdata_truncated);
    assert!(!e.answers[2].rdata_truncated);
    let [native, _, eve, ..] = render(&e);
    assert_eq!(native["dns"]["answers"][0]["rdata_truncated"], true);
    assert_eq!(native["dns"]["answers"][1]["rdata_truncated"], true);
    assert_eq!(native["dns"]["answers"][1]["dnskey"]["key_len"], 2000);
    assert_eq!(native["dns"]["answers"][2].get("rdata_truncated"), None);
    // eve: every kept string is an answer, each flagged.
    let ea = eve["dns"]["answers"].as_array().unwrap();
    assert_eq!(ea.len(), wire::MAX_TXT_BYTES / 100 + 2);
    assert_eq!(ea[0]["rdata_truncated"], true);
}

/// EDNS of the query and of the response: payload size, extended rcode,
/// version, DO, client subnet, cookie; OPT is not listed as a record.
#[test]
fn edns_on_query_and_response() {
    let q = with_additional(
        query(0xed05, "www.example.com", 1),
        &[opt_record(
            1232,
            0,
            0,
            true,
            &[
                (8, &[0, 1, 24, 0, 198, 51, 100]),
                (10, &[1, 2, 3, 4, 5, 6, 7, 8]),
                (12, &[0; 4]), // padding: listed by code
            ],
        )],
    );
    let mut server_cookie = vec![1, 2, 3, 4, 5, 6, 7, 8];
    server_cookie.extend_from_slice(&[0xaa; 16]);
    let mut r = response(&q, 0, &[(1, vec![192, 0, 2, 80])]);
    // The response echoes the query's additional count: start from none.
    r[10..12].copy_from_slice(&[0, 0]);
    let qlen = q.len();
    let opt_len = opt_record(
        1232,
        0,
        0,
        true,
        &[
            (8, &[0, 1, 24, 0, 198, 51, 100]),
            (10, &[1, 2, 3, 4, 5, 6, 7, 8]),
            (12, &[0; 4]),
        ],
    )
    .len();
    // Drop the copied OPT of the query from the response body.
    r.drain(qlen - opt_len..qlen);
    let r = with_additional(
        r,
        &[opt_record(
            4096,
            1,
            0,
            false,
            &[
                (8, &[0, 2, 56, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0]),
                (10, &server_cookie),
            ],
        )],
    );
    let (e, st) = exchange(&q, &r);
    assert_eq!(st.malformed, 0);
    assert_eq!(e.answers.len(), 1);
    assert_eq!(
        e.answers[0].data,
        DnsRdata::A("192.0.2.80".parse().unwrap())
    );
    let qe = e.query_edns.as_ref().expect("query edns");
    assert_eq!(
        (qe.udp_size, qe.ext_rcode, qe.version, qe.do_bit),
        (1232, 0, 0, true)
    );
    assert_eq!(
        qe.client_subnet,
        Some(ClientSubnet {
            family: 1,
            source_prefix: 24,
            scope_prefix: 0,
            address: Some("198.51.100.0".parse().unwrap())
        })
    );
    assert_eq!(qe.cookie, Some((vec![1, 2, 3, 4, 5, 6, 7, 8], vec![])));
    assert_eq!(qe.other_options, vec![12]);
    let re = e.response_edns.as_ref().expect("response edns");
    assert_eq!(
        (re.udp_size, re.ext_rcode, re.version, re.do_bit),
        (4096, 1, 0, false)
    );
    assert_eq!(
        re.client_subnet.as_ref().and_then(|c| c.address),
        Some("2001:db8:1::".parse().unwrap())
    );
    assert_eq!(
        re.client_subnet
            .as_ref()
            .map(|c| (c.source_prefix, c.scope_prefix)),
        Some((56, 48))
    );
    assert_eq!(re.cookie.as_ref().map(|c| c.1.len()), Some(16));
    assert!(!re.malformed);

    let [native, _, eve, gelf, ecs_ft, _] = render(&e);
    use serde_json::json;
    assert_eq!(
        native["dns"]["query_edns"],
        json!({"udp_size": 1232, "ext_rcode": 0, "version": 0, "do": true,
               "client_subnet": {"family": 1, "source_prefix": 24, "scope_prefix": 0,
                                 "address": "198.51.100.0"},
               "cookie": {"client": "0102030405060708"}, "options": [12]})
    );
    assert_eq!(
        native["dns"]["response_edns"]["cookie"],
        json!({"client": "0102030405060708", "server": "aa".repeat(16)})
    );
    assert_eq!(native["dns"]["response_edns"]["ext_rcode"], 1);
    assert_eq!(eve["dns"]["query_edns"], native["dns"]["query_edns"]);
    assert_eq!(eve["dns"]["response_edns"], native["dns"]["response_edns"]);
    assert_eq!(ecs_ft["dns"]["query_edns"], native["dns"]["query_edns"]);
    assert_eq!(gelf["_dns_edns_udp_size"], 1232);
    assert_eq!(
        gelf["_dns_edns_do"], 1,
        "GELF values are strings or numbers"
    );
    assert_eq!(gelf["_dns_client_subnet"], "198.51.100.0/24");
    // No OPT among the records, in any list.
    assert!(native["dns"].get("additionals").is_none());
    assert_eq!(native["dns"]["answers"].as_array().unwrap().len(), 1);

    // A bad option length, a cut option and a second OPT mark EDNS malformed.
    for opts in [
        vec![opt_record(512, 0, 0, false, &[(10, &[1, 2, 3])])],
        vec![
            opt_record(512, 0, 0, false, &[]),
            opt_record(512, 0, 0, false, &[]),
        ],
    ] {
        let q2 = with_additional(query(1, "a.example", 1), &opts);
        let m = wire::parse_message(&q2, 8).unwrap();
        assert!(m.edns.as_ref().unwrap().malformed);
    }
    let mut cut = with_additional(
        query(2, "b.example", 1),
        &[opt_record(512, 0, 0, false, &[(8, &[0, 1, 24, 0, 1])])],
    );
    // Option length says 5, rdata length says 9: shrink the rdata length.
    let n = cut.len();
    cut[n - 11] = 0;
    cut[n - 10] = 7;
    cut.truncate(n - 2);
    let m = wire::parse_message(&cut, 8).unwrap();
    assert!(m.edns.as_ref().unwrap().malformed, "{m:?}");
}

/// DNSSEC records and EDNS of a real capture (ndpi-dns_fragmented.pcap:
/// DNSKEY/RRSIG answers in fragmented UDP, client subnet, cookies) agree
/// with tshark's dissector field by field.
#[test]
fn corpus_dnssec_and_edns_agree_with_tshark() {
    use crate::app::testutil::tshark;
    let rel = "ip-fragments/ndpi-dns_fragmented.pcap";
    let ours = corpus_events(rel, false);
    let cap = corpus(rel);
    let out = tshark(&[
        "-r",
        cap.to_str().unwrap(),
        "-Y",
        "dns.flags.response == 1 && dns.count.answers > 0",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-e",
        "dns.id",
        "-e",
        "dns.resp.type",
        "-e",
        "dns.dnskey.flags",
        "-e",
        "dns.dnskey.algorithm",
        "-e",
        "dns.rrsig.type_covered",
        "-e",
        "dns.rrsig.labels",
        "-e",
        "dns.rrsig.original_ttl",
        "-e",
        "dns.rrsig.key_tag",
        "-e",
        "dns.rrsig.signers_name",
        "-e",
        "dns.rr.udp_payload_size",
        "-e",
        "dns.resp.z.do",
        "-e",
        "dns.opt.client.netmask",
        "-e",
        "dns.opt.cookie.server",
    ]);
    let (mut dnskeys, mut rrsigs, mut subnets, mut cookies, mut n, mut skipped) =
        (0, 0, 0, 0, 0, 0);
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let id = u16::from_str_radix(f[0].trim_start_matches("0x"), 16).unwrap();
        let list = |i: usize| -> Vec<&str> {
            f.get(i)
                .map(|s| s.split(',').filter(|x| !x.is_empty()).collect())
                .unwrap_or_default()
        };
        // tshark's field output gives no UDP payload for some reassembled
        // IPv6 fragments (no `udp.payload`), so corpus_events misses them.
        let Some(e) = ours.iter().find(|e| e.id == id && e.has_response) else {
            skipped += 1;
            continue;
        };
        n += 1;
        // All records of the three sections tshark lists, minus OPT.
        let types: Vec<u16> = list(1).iter().map(|t| t.parse().unwrap()).collect();
        let mine: Vec<&DnsRecord> = e.answers.iter().chain(&e.authorities).collect();
        assert_eq!(
            mine.iter().map(|r| r.rtype).collect::<Vec<_>>(),
            types[..mine.len()].to_vec(),
            "{id:#x}"
        );
        let keys: Vec<(u16, u8)> = mine
            .iter()
            .filter_map(|r| match &r.data {
                DnsRdata::Dnskey {
                    flags, algorithm, ..
                } => Some((*flags, *algorithm)),
                _ => None,
            })
            .collect();
        let tkeys: Vec<(u16, u8)> = list(2)
            .iter()
            .zip(list(3))
            .map(|(fl, al)| {
                (
                    u16::from_str_radix(fl.trim_start_matches("0x"), 16).unwrap(),
                    al.parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(keys, tkeys, "{id:#x} dnskey");
        dnskeys += keys.len();
        // RRSIGs of answers and authorities (tshark lists the additional
        // section's after them).
        let sigs: Vec<String> = mine
            .iter()
            .filter_map(|r| match &r.data {
                DnsRdata::Rrsig {
                    type_covered,
                    labels,
                    original_ttl,
                    key_tag,
                    signer,
                    ..
                } => Some(format!(
                    "{type_covered} {labels} {original_ttl} {key_tag} {signer}"
                )),
                _ => None,
            })
            .collect();
        let tsigs: Vec<String> = (0..list(4).len())
            .map(|i| {
                format!(
                    "{} {} {} {} {}",
                    list(4)[i],
                    list(5)[i],
                    list(6)[i],
                    list(7)[i],
                    list(8)[i]
                )
            })
            .collect();
        assert_eq!(sigs, tsigs[..sigs.len()].to_vec(), "{id:#x} rrsig");
        rrsigs += sigs.len();
        let edns = e.response_edns.as_ref().expect("edns");
        assert_eq!(edns.udp_size.to_string(), f[9], "{id:#x}");
        assert_eq!(edns.do_bit, f[10] == "1" || f[10] == "True", "{id:#x}");
        if !f[11].is_empty() {
            assert_eq!(
                edns.client_subnet
                    .as_ref()
                    .unwrap()
                    .source_prefix
                    .to_string(),
                f[11]
            );
            subnets += 1;
        }
        if !f[12].is_empty() {
            let (_, server) = edns.cookie.as_ref().unwrap();
            assert_eq!(crate::app::util::hex(server), f[12], "{id:#x}");
            cookies += 1;
        }
        assert!(!edns.malformed);
    }
    // One RRSIG expiration checked by hand against tshark -V:
    // "Signature Expiration: Jun 19, 2019 10:57:21 UTC" (1560941841).
    assert!(ours.iter().any(|e| e.answers.iter().any(|r| matches!(
        &r.data,
        DnsRdata::Rrsig {
            expiration: 1_560_941_841,
            type_covered: 48,
            ..
        }
    ))));
    // The queries' client subnet: 2001:470:1f0b:1600::/56.
    assert!(ours.iter().any(|e| e.query_edns.as_ref().is_some_and(|q| q
        .client_subnet
        .as_ref()
        .is_some_and(
            |c| c.family == 2 && c.address == Some("2001:470:1f0b:1600::".parse().unwrap())
        ))));
    assert_eq!(
        (n, skipped, dnskeys, rrsigs, subnets, cookies),
        (16, 2, 8, 14, 3, 6),
        "figures: responses compared, skipped (0x80e4, 0x06da), DNSKEYs, RRSIGs, subnets, server cookies"
    );
}
