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
        DnsRdata::Txt(t) => v["rdata"] = json!(t.concat()),
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
        DnsRdata::Other { .. } => {}
    }
    v
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
        let ans: Vec<serde_json::Value> = e.answers.iter().map(suricata_record).collect();
        let empty = vec![];
        assert_eq!(
            &ans,
            d["answers"].as_array().unwrap_or(&empty),
            "{rel} answers id {id}"
        );
        let auth: Vec<serde_json::Value> = e.authorities.iter().map(suricata_record).collect();
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
