//! Mirror-port realities on real captures: what a SPAN/TAP does to the
//! packet stream, made on purpose, and flowtap giving the same flows and
//! events as on the clean capture, with counters that say what it fixed.

mod common;
#[path = "common/pcap.rs"]
mod pcap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{corpus, run_flowtap, tmp_dir, RunOutput};
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

/// Removes what depends on when packets arrived (times, durations, delays,
/// the flow id derived from the start time) and on the order the two
/// directions were seen in (the Zeek-style `history` letters).
fn strip_order(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.retain(|k, _| {
                !(k == "timestamp"
                    || k == "flow_id"
                    || k == "start"
                    || k == "end"
                    || k == "history"
                    || k.ends_with("_us"))
            });
            o.values_mut().for_each(strip_order);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_order),
        _ => {}
    }
}

/// Flow records and application events, order- and time-free, counted.
fn records(r: &RunOutput, what: &str) -> BTreeMap<String, usize> {
    assert!(r.status.success(), "{what}: {}", r.stderr);
    let mut m = BTreeMap::new();
    for e in r.events.iter().filter(|e| e["event_type"] != "stats") {
        let mut e = e.clone();
        strip_order(&mut e);
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
