//! Application-layer events (HTTP, DNS, TLS) on W1 and on the corpus,
//! compared with Suricata 8.0.6's reference output field by field.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::*;
use serde_json::Value;

fn suricata_w1() -> Vec<Value> {
    let gz = corpus().join("../reference/suricata-8.0.6/w1.eve.json.gz");
    let o = Command::new("zcat").arg(&gz).output().expect("zcat");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("eve json"))
        .collect()
}

fn s(v: &Value) -> String {
    match v {
        // Suricata writes IPv6 rdata uncompressed; compare addresses, not spellings.
        Value::String(s) if s.contains(':') && s.parse::<std::net::Ipv6Addr>().is_ok() => s
            .parse::<std::net::Ipv6Addr>()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The sorted keys of the events that pass `keep`.
fn keys(
    events: &[&Value],
    keep: impl Fn(&Value) -> bool,
    key: impl Fn(&Value) -> String,
) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .copied()
        .filter(|e| keep(e))
        .map(key)
        .collect();
    v.sort();
    v
}

fn all(_: &Value) -> bool {
    true
}

/// (community id, method, host, uri, status) of an HTTP event; flowtap and
/// Suricata name the first three fields differently.
fn http_key(e: &Value, [method, host, uri]: [&str; 3]) -> String {
    let h = &e["http"];
    format!(
        "{} {} {} {} {}",
        s(&e["community_id"]),
        s(&h[method]),
        s(&h[host]),
        s(&h[uri]),
        s(&h["status"])
    )
}

fn http_keys_ours(events: &[&Value]) -> Vec<String> {
    keys(events, all, |e| http_key(e, ["method", "host", "uri"]))
}

fn http_keys_suricata(events: &[&Value]) -> Vec<String> {
    keys(events, all, |e| {
        http_key(e, ["http_method", "hostname", "url"])
    })
}

/// (community id, id, first query name, type) of a DNS query.
fn dns_query_key(e: &Value) -> String {
    let d = &e["dns"];
    let q = &d["queries"][0];
    format!(
        "{} {} {} {}",
        s(&e["community_id"]),
        s(&d["id"]),
        s(&q["rrname"]),
        s(&q["rrtype"])
    )
}

/// (community id, id, rcode, sorted answer rdata) of a DNS response. A
/// TXT/SPF record is one entry per character-string: flowtap writes the
/// strings as the record's `txt` array, Suricata 8 as one answer per string
/// (so multi-string TXT records agree string for string).
fn dns_answer_key(e: &Value) -> String {
    let d = &e["dns"];
    let mut rdata: Vec<String> = d["answers"]
        .as_array()
        .map(|a| {
            a.iter()
                .flat_map(|r| match r["txt"].as_array() {
                    Some(txt) if !txt.is_empty() => txt
                        .iter()
                        .map(|t| format!("{}={}", s(&r["rrtype"]), s(t)))
                        .collect::<Vec<_>>(),
                    _ => vec![format!("{}={}", s(&r["rrtype"]), s(&r["rdata"]))],
                })
                .collect()
        })
        .unwrap_or_default();
    rdata.sort();
    format!(
        "{} {} {} {}",
        s(&e["community_id"]),
        s(&d["id"]),
        s(&d["rcode"]),
        rdata.join(",")
    )
}

/// flowtap's one event per transaction says what it holds; Suricata logs a
/// request and a response event per transaction.
fn dns_queries_ours(events: &[&Value]) -> Vec<String> {
    keys(events, |e| e["dns"]["has_query"] == true, dns_query_key)
}

fn dns_queries_suricata(events: &[&Value]) -> Vec<String> {
    let request = |e: &Value| matches!(e["dns"]["type"].as_str(), Some("request" | "query"));
    keys(events, request, dns_query_key)
}

fn dns_answers_ours(events: &[&Value]) -> Vec<String> {
    keys(events, |e| e["dns"]["has_response"] == true, dns_answer_key)
}

fn dns_answers_suricata(events: &[&Value]) -> Vec<String> {
    let response = |e: &Value| matches!(e["dns"]["type"].as_str(), Some("response" | "answer"));
    keys(events, response, dns_answer_key)
}

/// (community id, sni, version, ja4, leaf subject, issuer, serial, sha1
/// fingerprint) of a TLS event, given where the leaf certificate's fields are.
fn tls_key(e: &Value, cert: &Value, [subject, issuer, fingerprint]: [&str; 3]) -> String {
    let t = &e["tls"];
    format!(
        "{} sni={} {} ja4={} subject={} issuer={} serial={} fp={}",
        s(&e["community_id"]),
        s(&t["sni"]),
        s(&t["version"]),
        s(&t["ja4"]),
        s(&cert[subject]),
        s(&cert[issuer]),
        s(&cert["serial"]),
        s(&cert[fingerprint])
    )
}

fn tls_keys_ours(events: &[&Value]) -> Vec<String> {
    keys(events, all, |e| {
        tls_key(
            e,
            &e["tls"]["certificates"][0],
            ["subject", "issuer", "sha1"],
        )
    })
}

fn tls_keys_suricata(events: &[&Value]) -> Vec<String> {
    keys(events, all, |e| {
        tls_key(e, &e["tls"], ["subject", "issuerdn", "fingerprint"])
    })
}

fn of<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

fn diff(a: &[String], b: &[String]) -> String {
    let sa: BTreeSet<_> = a.iter().collect();
    let sb: BTreeSet<_> = b.iter().collect();
    let only_a: Vec<_> = sa.difference(&sb).take(5).collect();
    let only_b: Vec<_> = sb.difference(&sa).take(5).collect();
    format!(
        "{} vs {}; flowtap only: {only_a:?}; suricata only: {only_b:?}",
        a.len(),
        b.len()
    )
}

#[test]
fn w1_every_transaction_exactly_once_and_as_suricata_sees_it() {
    let run = run_flowtap(&w1(), 2, &[]);
    assert!(run.status.success(), "{}", run.stderr);
    let flows = run.of_type("flow");
    let http = run.of_type("http");
    let dns = run.of_type("dns");
    let tls = run.of_type("tls");
    assert_eq!(flows.len(), 11_402);
    assert_eq!(http.len(), 5_751);
    assert_eq!(dns.len(), 5_671);
    assert_eq!(tls.len(), 2_301);
    // Exactly once: no two events of one transaction.
    let http_tx: BTreeSet<String> = http
        .iter()
        .map(|e| format!("{} {}", e["flow_id"], e["http"]["tx_id"]))
        .collect();
    assert_eq!(http_tx.len(), http.len());
    let tls_flows: BTreeSet<String> = tls.iter().map(|e| e["flow_id"].to_string()).collect();
    assert_eq!(tls_flows.len(), tls.len());
    let mut apps: BTreeMap<String, usize> = BTreeMap::new();
    for f in &flows {
        *apps.entry(s(&f["app_proto"])).or_default() += 1;
    }
    assert_eq!(apps.get("dns"), Some(&5_671), "{apps:?}");
    assert_eq!(apps.get("http"), Some(&2_887), "{apps:?}");
    assert_eq!(apps.get("tls"), Some(&2_301), "{apps:?}");

    let eve = suricata_w1();
    assert_eq!(http_keys_ours(&http), http_keys_suricata(&of(&eve, "http")));
    assert_eq!(
        dns_queries_ours(&dns),
        dns_queries_suricata(&of(&eve, "dns"))
    );
    assert_eq!(
        dns_answers_ours(&dns),
        dns_answers_suricata(&of(&eve, "dns"))
    );
    // TXT: every character-string Suricata logs (one answer each) is one
    // string of a `txt` array here, in the same order.
    let answers = |evs: &[&Value], resp: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        evs.iter()
            .filter(|e| resp(e))
            .flat_map(|e| e["dns"]["answers"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let ours = answers(&dns, &|e| e["dns"]["has_response"] == true);
    let theirs = answers(&of(&eve, "dns"), &|e| e["dns"]["type"] == "response");
    let txt_ours: Vec<String> = ours
        .iter()
        .filter(|a| a["rrtype"] == "TXT")
        .flat_map(|a| a["txt"].as_array().cloned().unwrap_or_default())
        .map(|t| s(&t))
        .collect();
    let mut txt_theirs: Vec<String> = theirs
        .iter()
        .filter(|a| a["rrtype"] == "TXT")
        .map(|a| s(&a["rdata"]))
        .collect();
    let mut txt_sorted = txt_ours.clone();
    txt_sorted.sort();
    txt_theirs.sort();
    assert_eq!(txt_sorted.len(), 205);
    assert_eq!(txt_sorted, txt_theirs);
    // HTTPS: Suricata logs these records without data; flowtap decodes them
    // (W1's are all `1 . alpn=h2,h3`).
    let https: Vec<&Value> = ours.iter().filter(|a| a["rrtype"] == "HTTPS").collect();
    let https_theirs = theirs.iter().filter(|a| a["rrtype"] == "HTTPS").count();
    assert_eq!(https.len(), https_theirs);
    assert!(https.len() > 100, "{}", https.len());
    for h in &https {
        assert_eq!(h["https"]["priority"], 1, "{h}");
        assert_eq!(h["https"]["target"], "", "{h}");
        assert_eq!(h["https"]["alpn"], serde_json::json!(["h2", "h3"]), "{h}");
    }
    assert_eq!(tls_keys_ours(&tls), tls_keys_suricata(&of(&eve, "tls")));
}

/// How a capture's events may differ from Suricata's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// flowtap logs everything Suricata logs, and more.
    Superset,
    /// flowtap logs a subset of what Suricata logs.
    Subset,
    /// Same key sets, but Suricata logs some of them twice.
    SameSet,
}

/// Captures where flowtap and Suricata differ on purpose, and why.
const KNOWN_DIFFERENCES: &[(&str, &str, Expect, &str)] = &[
    (
        "mixed/ndpi-1kxun.pcap",
        "http",
        Expect::Superset,
        "most flows in this capture started before it: Suricata (midstream off by default) skips them, flowtap picks them up",
    ),
    (
        "mixed/ndpi-1kxun.pcap",
        "dns-query",
        Expect::Superset,
        "LLMNR (5355) and DNS on flows Suricata did not pick up: flowtap parses both",
    ),
    (
        "mixed/ndpi-1kxun.pcap",
        "dns-answer",
        Expect::Superset,
        "as for the queries",
    ),
    (
        "http/sv-http-connect.http-connect-simple--input.pcap",
        "http",
        Expect::Subset,
        "flowtap logs the CONNECT and marks the flow as a tunnel; Suricata also parses the HTTP inside the tunnel",
    ),
    (
        "malformed/sv-output-eve-anomaly-02--input.pcap",
        "http",
        Expect::Subset,
        "Suricata logs libhtp's placeholder transaction '/libhtp::request_uri_not_seen' for a response without request",
    ),
    (
        "malformed/ndpi-malformed_dns.pcap",
        "dns-query",
        Expect::SameSet,
        "the same query twice: Suricata logs each message, flowtap the transaction",
    ),
    (
        "malformed/ndpi-malformed_dns.pcap",
        "dns-answer",
        Expect::Subset,
        "the responses' names run past 255 bytes through compression pointers: flowtap counts them malformed, Suricata logs the garbage",
    ),
    (
        "tunnels/sv-bug-5633-gre-02--gre-sample.pcap",
        "dns-query",
        Expect::SameSet,
        "one query retransmitted with the same id: one transaction in flowtap, two requests in Suricata",
    ),
    (
        "ip-fragments/ndpi-dns_fragmented.pcap",
        "dns-query",
        Expect::SameSet,
        "a query retransmitted with the same id: one transaction in flowtap",
    ),
    (
        "http/ndpi-quickplay.pcap",
        "http",
        Expect::Superset,
        "the capture starts inside its connections (no handshakes): Suricata, midstream off, logs no HTTP",
    ),
    (
        "tcp/sv-bug-4376--syn_retransmit_with_ts.pcap",
        "http",
        Expect::Superset,
        "Suricata's stream engine refuses this session (SYN retransmitted with other TCP timestamps) and logs no HTTP",
    ),
    (
        "tls/ndpi-tls_2_reasms.pcapng",
        "tls",
        Expect::Superset,
        "a draft TLS 1.3 (0xfb1a, Facebook's fizz) handshake split over records: Suricata logs no TLS event for it",
    ),
    (
        "tunnels/zeek-mpls-in-vlan.pcap",
        "http",
        Expect::Superset,
        "requests on flows without a handshake in the capture: Suricata (midstream off) skips them",
    ),
    (
        "vlan/ndpi-http_origin_different_than_host.pcap",
        "http",
        Expect::Superset,
        "HTTP inside GTP-U: flowtap decapsulates GTP-U, Suricata's default config does not",
    ),
    (
        "vlan/ndpi-dns.pcap",
        "dns-answer",
        Expect::Superset,
        "the capture starts with a response whose query is not in it: flowtap logs it as an orphan response, Suricata drops it",
    ),
];

/// mDNS (5353) is its own event type in Suricata 8 (`mdns`); flowtap logs it as `dns`.
fn not_mdns(e: &&Value) -> bool {
    e["src_port"] != 5353 && e["dest_port"] != 5353
}

#[test]
fn corpus_app_events_match_suricata() {
    let text = std::fs::read_to_string(corpus().join("MANIFEST.tsv")).expect("manifest");
    let mut compared = BTreeMap::<&str, usize>::new();
    let mut failures = Vec::new();
    for rel in text.lines().skip(1).filter_map(|l| l.split('\t').next()) {
        let eve = suricata_events(rel);
        let (sh, sd, st) = (of(&eve, "http"), of(&eve, "dns"), of(&eve, "tls"));
        let run = run_flowtap(&corpus().join(rel), 1, &[]);
        let (oh, ot) = (run.of_type("http"), run.of_type("tls"));
        let od: Vec<&Value> = run.of_type("dns").into_iter().filter(not_mdns).collect();
        let checks: [(&str, Vec<String>, Vec<String>); 4] = [
            ("http", http_keys_ours(&oh), http_keys_suricata(&sh)),
            (
                "dns-query",
                dns_queries_ours(&od),
                dns_queries_suricata(&sd),
            ),
            (
                "dns-answer",
                dns_answers_ours(&od),
                dns_answers_suricata(&sd),
            ),
            ("tls", tls_keys_ours(&ot), tls_keys_suricata(&st)),
        ];
        for (what, ours, theirs) in checks {
            if theirs.is_empty() && ours.is_empty() {
                continue;
            }
            *compared.entry(what).or_default() += theirs.len();
            let a: BTreeSet<&String> = ours.iter().collect();
            let b: BTreeSet<&String> = theirs.iter().collect();
            let ok = match KNOWN_DIFFERENCES
                .iter()
                .find(|(r, w, _, _)| *r == rel && *w == what)
            {
                None => ours == theirs,
                Some((_, _, Expect::Superset, _)) => a.is_superset(&b),
                Some((_, _, Expect::Subset, _)) => a.is_subset(&b),
                Some((_, _, Expect::SameSet, _)) => a == b,
            };
            if !ok {
                failures.push(format!("{rel} {what}: {}", diff(&ours, &theirs)));
            }
        }
    }
    for (what, min) in [
        ("http", 100),
        ("dns-query", 90),
        ("dns-answer", 90),
        ("tls", 20),
    ] {
        assert!(
            compared.get(what).copied().unwrap_or(0) >= min,
            "too few compared: {compared:?}"
        );
    }
    assert!(
        failures.is_empty(),
        "compared {compared:?}\n{}",
        failures.join("\n")
    );
}
