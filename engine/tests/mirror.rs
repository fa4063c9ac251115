//! Mirror-port realities on real captures: what a SPAN/TAP does to the
//! packet stream, made on purpose, and flowtap giving the same flows and
//! events as on the clean capture, with counters that say what it fixed.

mod common;
#[path = "common/pcap.rs"]
mod pcap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{corpus, run_flowtap, strip_times, tmp_dir, RunOutput};
use pcap::Pcap;
use serde_json::Value;

/// TCP captures with an application protocol in each direction (HTTP, DNS
/// over TCP, TLS, PostgreSQL, MySQL, Redis) and one inside VXLAN.
const TCP_CAPTURES: &[&str] = &[
    "http/sv-http-all-headers--input.pcap",
    "http/sv-http-multiple100--input.pcap",
    "http/sv-http-post-file--input.pcap",
    "dns/sv-dns.dns-tcp-multirequest-buffer--dns-tcp-multirequest-buffer.pcap",
    "dns/sv-dns.dns-tcp-www-google-com--dns.pcap",
    "tunnels/sv-vxlan-decoder-03--vxlan.pcap",
    "vlan/ndpi-ja3_lots_of_cipher_suites.pcap",
    "tls/ndpi-443-curl.pcap",
    "postgresql/sv-pgsql.pgsql-simple-query-rollback--input.pcap",
    "mysql/zeek-mysql__caching_sha2_password.pcap",
    "redis/ndpi-resp.pcap",
];

/// How far one direction is delayed: past the round trip of these captures
/// (so acknowledgements overtake the bytes they acknowledge), well within
/// the default reorder window (10 ms).
const DELAY_NS: u64 = 3_000_000;

/// Flow records and application events, order- and time-free, counted.
fn records(r: &RunOutput, what: &str) -> BTreeMap<String, usize> {
    assert!(r.status.success(), "{what}: {}", r.stderr);
    let mut m = BTreeMap::new();
    for e in r.events.iter().filter(|e| e["event_type"] != "stats") {
        let mut e = e.clone();
        // The Zeek-style `history` letters record the arrival order.
        strip_times(&mut e, &["history"]);
        *m.entry(e.to_string()).or_insert(0) += 1;
    }
    m
}

fn diff(got: &BTreeMap<String, usize>, want: &BTreeMap<String, usize>) -> String {
    let mut msg = String::new();
    for (k, n) in got {
        if want.get(k) != Some(n) {
            msg.push_str(&format!("  only altered ({n}x): {k}\n"));
        }
    }
    for (k, n) in want {
        if got.get(k) != Some(n) {
            msg.push_str(&format!("  only original ({n}x): {k}\n"));
        }
    }
    msg
}

fn stream_stat(r: &RunOutput, key: &str) -> u64 {
    r.stats()["stats"]["stream"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("stats.stream.{key}: {}", r.stats()))
}

fn config(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("config");
    p
}

/// Each capture with its clients' (then its servers') segments delayed by
/// 3 ms: acknowledgements arrive before the bytes they acknowledge, and
/// responses before the end of their requests. The flows and events equal
/// the clean capture's; `reorder_filled` counts the holes that were waited
/// for and filled, and no more expired (became gaps) than on the clean
/// capture (where a keep-alive probe's acknowledgement is one). With the window off (the behaviour
/// before it existed) the same captures lose events and report missed bytes:
/// the alteration is one the test can see.
#[test]
fn cross_direction_reordering_gives_the_clean_capture_events() {
    let dir = tmp_dir("mirror-reorder");
    let no_window = config(&dir, "no-window.toml", "[stream]\nreorder_window_us = 0\n");
    let no_window = no_window.to_str().expect("path");
    let (mut filled, mut moved_total, mut differs_without) = (0, 0, 0);
    let mut failures = String::new();
    for rel in TCP_CAPTURES {
        let original = corpus().join(rel);
        let clean = run_flowtap(&original, 1, &[]);
        let want = records(&clean, rel);
        for client in [true, false] {
            let side = if client { "client" } else { "server" };
            let mut p = Pcap::read(&original);
            let moved = p.delay_tcp_side(client, DELAY_NS);
            moved_total += moved;
            let altered = dir.join(format!(
                "{}-{side}-delayed.pcap",
                rel.replace('/', "_").trim_end_matches(".pcap")
            ));
            p.write(&altered);
            let run = run_flowtap(&altered, 1, &[]);
            let got = records(&run, rel);
            if got != want {
                failures.push_str(&format!(
                    "{rel}, {side} side delayed {DELAY_NS} ns ({moved} frames moved):\n{}",
                    diff(&got, &want)
                ));
            }
            filled += stream_stat(&run, "reorder_filled");
            for key in ["reorder_expired", "gaps", "missed_bytes"] {
                assert_eq!(
                    stream_stat(&run, key),
                    stream_stat(&clean, key),
                    "{rel} ({side} delayed): stream.{key} as on the clean capture"
                );
            }
            let without = run_flowtap(&altered, 1, &["--config", no_window]);
            if records(&without, rel) != want {
                differs_without += 1;
            }
        }
    }
    eprintln!(
        "{moved_total} frames moved, {filled} holes waited for and filled, \
         {differs_without} altered captures differ without the window"
    );
    assert!(failures.is_empty(), "{failures}");
    assert!(
        moved_total > 100,
        "the alteration reorders frames ({moved_total})"
    );
    assert!(filled >= 10, "holes waited for and filled: {filled}");
    assert!(
        differs_without >= 4,
        "without the window, reordering changes the output ({differs_without} of {} altered captures)",
        2 * TCP_CAPTURES.len()
    );
}

/// Captures whose servers listen on their protocol's port (so a connection
/// picked up without its handshake is oriented by it), with responses that
/// stand alone.
const ONE_SIDED_CAPTURES: &[&str] = &[
    "http/sv-http-all-headers--input.pcap",
    "dns/sv-dns.dns-tcp-multirequest-buffer--dns-tcp-multirequest-buffer.pcap",
    "dns/sv-dns.dns-tcp-www-google-com--dns.pcap",
    "tls/ndpi-443-curl.pcap",
    "vlan/ndpi-ja3_lots_of_cipher_suites.pcap",
];

/// What one side of each protocol says on its own, as (event type, fields).
fn side_fields(client: bool) -> [(&'static str, &'static [&'static str]); 3] {
    if client {
        [
            ("http", &["method", "uri", "hostname", "user_agent"]),
            ("dns", &["id", "queries"]),
            ("tls", &["sni", "ja3_hash", "ja4"]),
        ]
    } else {
        [
            (
                "http",
                &[
                    "status",
                    "reason",
                    "content_type",
                    "response_content_length",
                ],
            ),
            ("dns", &["id", "rcode", "answers", "authorities"]),
            (
                "tls",
                &["version", "ja3s_hash", "server_alpn", "certificates"],
            ),
        ]
    }
}

/// The app events of `r`, each cut down to what one side says (events
/// that carry none of it are left out), counted.
fn side_events(r: &RunOutput, client: bool) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (t, fields) in side_fields(client) {
        for e in r.of_type(t) {
            let o = &e[t];
            let cut: serde_json::Map<String, Value> = fields
                .iter()
                .filter(|f| **f != "id" && o.get(**f).is_some())
                .map(|f| (f.to_string(), o[*f].clone()))
                .collect();
            if cut.is_empty() {
                continue;
            }
            let mut cut = Value::Object(cut);
            if fields.contains(&"id") {
                cut["id"] = o["id"].clone();
            }
            let key = format!(
                "{t} {}:{}>{}:{} {cut}",
                e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"]
            );
            *m.entry(key).or_insert(0) += 1;
        }
    }
    m
}

/// One direction of every connection dropped, with and without the
/// handshake (a mirror that sees one direction, or that starts midway):
/// each TCP flow keeps its client → server orientation (from the SYN-ACK,
/// or else from the server's port), is marked `one_sided` with the side
/// seen, and is counted in `flows.one_sided_tcp_*`; and what that side says
/// is still parsed: responses (HTTP status, DNS answers, TLS server hello
/// and certificates) from the server's side alone, requests (HTTP method
/// and URI, DNS queries, TLS SNI and JA3/JA4) from the client's.
#[test]
fn one_sided_flows_are_marked_and_their_side_still_parsed() {
    let dir = tmp_dir("mirror-one-sided");
    let mut checked = (0, 0);
    for rel in ONE_SIDED_CAPTURES {
        let original = corpus().join(rel);
        let clean = run_flowtap(&original, 1, &[]);
        assert!(clean.status.success(), "{rel}: {}", clean.stderr);
        let clean_tcp: Vec<&Value> = clean
            .of_type("flow")
            .into_iter()
            .filter(|f| f["proto"] == "TCP")
            .collect();
        assert!(!clean_tcp.is_empty(), "{rel}: TCP flows");
        for client in [true, false] {
            let seen = if client { "toserver" } else { "toclient" };
            for handshake in [true, false] {
                let what = format!(
                    "{rel}, {} side only{}",
                    if client { "client" } else { "server" },
                    if handshake { "" } else { ", no handshake" }
                );
                let mut p = Pcap::read(&original);
                let dropped = p.keep_tcp_side(client, handshake);
                assert!(dropped > 0, "{what}: frames dropped");
                let altered = dir.join(format!(
                    "{}-{seen}-{handshake}.pcap",
                    rel.replace('/', "_").trim_end_matches(".pcap")
                ));
                p.write(&altered);
                let run = run_flowtap(&altered, 1, &[]);
                assert!(run.status.success(), "{what}: {}", run.stderr);
                for f in &clean_tcp {
                    let same = run.of_type("flow").into_iter().find(|g| {
                        ["src_ip", "src_port", "dest_ip", "dest_port"]
                            .iter()
                            .all(|k| g[*k] == f[*k])
                    });
                    let g = same.unwrap_or_else(|| {
                        panic!("{what}: no flow oriented as {f} (client to server)")
                    });
                    assert_eq!(g["flow"]["one_sided"], true, "{what}: {g}");
                    assert_eq!(g["flow"]["seen"], seen, "{what}: {g}");
                }
                let counted = run.stats()["stats"]["flows"][format!("one_sided_tcp_{seen}")]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{what}: stats.flows.one_sided_tcp_{seen}"));
                assert_eq!(
                    counted,
                    clean_tcp.len() as u64,
                    "{what}: one-sided TCP flows counted"
                );
                let want = side_events(&clean, client);
                let got = side_events(&run, client);
                assert!(
                    !want.is_empty(),
                    "{what}: the clean capture has {seen} app data"
                );
                let lost: Vec<&String> = want
                    .iter()
                    .filter(|(k, n)| got.get(*k).copied().unwrap_or(0) < **n)
                    .map(|(k, _)| k)
                    .collect();
                assert!(
                    lost.is_empty(),
                    "{what}: not parsed from one side: {lost:#?}\ngot: {got:#?}"
                );
                if client {
                    checked.0 += want.len();
                } else {
                    checked.1 += want.len();
                }
            }
        }
    }
    eprintln!(
        "{} request and {} response descriptions parsed from one side",
        checked.0, checked.1
    );
}
