//! Flow records on real captures, checked against tshark's conversation
//! statistics and Suricata's reference output.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

/// Ports whose UDP conversations carry tunnels: tshark lists the outer
/// conversation, flowtap follows the inner flow instead.
const TUNNEL_PORTS: &[u16] = &[4789, 6081, 3544, 2152];

/// Captures compared conversation by conversation with tshark, covering plain
/// TCP/UDP, VLAN, QinQ, MPLS, GRE, ERSPAN, VXLAN, IPv6 and several link types.
const TSHARK_CASES: &[&str] = &[
    "http/sv-http-all-headers--input.pcap",
    "http/sv-decode-sll2-02--input.pcap",
    "http/ndpi-quickplay.pcap",
    "dns/sv-dns.dns-tcp-multirequest-buffer--dns-tcp-multirequest-buffer.pcap",
    "dns/sv-dns.dns-udp-eve-log-srv--input.pcap",
    "tcp/sv-bug-4376--syn_retransmit_with_ts.pcap",
    "tcp/sv-tcp-rst-unacked-stream-10--TLPW1-tcp-174.56.47.59-10.3.11.101-tcp-80-49309.pcap",
    "vlan/ndpi-ja3_lots_of_cipher_suites.pcap",
    "vlan/ndpi-dns.pcap",
    "tunnels/zeek-mpls-in-vlan.pcap",
    "tunnels/sv-bug-5633-gre-02--gre-sample.pcap",
    "tunnels/sv-bug-5437-02--input.pcap",
    "tunnels/sv-vxlan-decoder-03--vxlan.pcap",
    "tunnels/ndpi-vxlan.pcap",
    "tunnels/sv-bug-4571-04--ipv6_over_ipv4.pcap",
    "ipv6/sv-community-id-ipv6--input.pcap",
    "mixed/sv-ethernet-eve--test.pcap",
    "mixed/ndpi-1kxun.pcap",
    "redis/zeek-redis__pipelining-example.pcap",
    "tls/ndpi-tls_2_reasms.pcapng",
];

fn is_tunnel_carrier(key: &ConvKey) -> bool {
    key.0 == "UDP"
        && (TUNNEL_PORTS.contains(&port_of(&key.1)) || TUNNEL_PORTS.contains(&port_of(&key.2)))
}

#[test]
fn conversations_match_tshark() {
    let mut failures = Vec::new();
    for rel in TSHARK_CASES {
        let cap = corpus().join(rel);
        let run = run_flowtap(&cap, 1, &[]);
        assert!(run.status.success(), "{rel}: {}", run.stderr);
        let ours = flowtap_conversations(&run.of_type("flow"));
        let mut theirs = tshark_conversations(&cap);
        theirs.retain(|k, _| !is_tunnel_carrier(k));
        assert!(
            !theirs.is_empty(),
            "{rel}: tshark found no TCP/UDP conversation"
        );
        for (key, (ab, ba)) in &theirs {
            match ours.get(key) {
                None => failures.push(format!("{rel}: flowtap has no flow for {key:?}")),
                Some(c) => {
                    let same = c.a_to_b.0 == ab.frames
                        && c.b_to_a.0 == ba.frames
                        && ab.bytes.matches(c.a_to_b.1)
                        && ba.bytes.matches(c.b_to_a.1);
                    if !same {
                        failures.push(format!(
                            "{rel}: {key:?}: flowtap {c:?}, tshark {ab:?} / {ba:?}"
                        ));
                    }
                }
            }
        }
        for key in ours.keys().filter(|k| !theirs.contains_key(*k)) {
            failures.push(format!(
                "{rel}: tshark has no conversation for flowtap's {key:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn flow_fingerprint(f: &Value) -> String {
    format!(
        "{} {} {}:{}>{}:{} {} {}/{} {}/{} {}",
        f["flow_id"],
        f["community_id"],
        f["src_ip"],
        f["src_port"],
        f["dest_ip"],
        f["dest_port"],
        f["proto"],
        f["flow"]["pkts_toserver"],
        f["flow"]["bytes_toserver"],
        f["flow"]["pkts_toclient"],
        f["flow"]["bytes_toclient"],
        f["flow"]["reason"],
    )
}

fn manifest() -> Vec<String> {
    let text = std::fs::read_to_string(corpus().join("MANIFEST.tsv")).expect("manifest");
    text.lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(str::to_string)
        .collect()
}

/// Every capture: no crash, every packet accounted, and the same flows
/// whether one or two workers share the work.
#[test]
fn every_capture_same_flows_for_one_and_two_workers() {
    let mut failures = Vec::new();
    for rel in manifest() {
        let cap = corpus().join(&rel);
        let one = run_flowtap(&cap, 1, &[]);
        let two = run_flowtap(&cap, 2, &[]);
        for (n, run) in [(1, &one), (2, &two)] {
            // 2 = the file itself broke (truncated capture): reported, not fatal.
            match run.status.code() {
                Some(0) => {}
                Some(2) if run.stderr.contains("byte") => {}
                other => {
                    failures.push(format!("{rel} workers={n}: exit {other:?}: {}", run.stderr))
                }
            }
            let p = &run.stats()["stats"]["packets"];
            if p["accounted"] != true {
                failures.push(format!("{rel} workers={n}: packets not accounted: {p}"));
            }
        }
        let a: BTreeSet<String> = one
            .of_type("flow")
            .into_iter()
            .map(flow_fingerprint)
            .collect();
        let b: BTreeSet<String> = two
            .of_type("flow")
            .into_iter()
            .map(flow_fingerprint)
            .collect();
        if a != b {
            failures.push(format!(
                "{rel}: flows differ between 1 and 2 workers:\n  only 1: {:?}\n  only 2: {:?}",
                a.difference(&b).collect::<Vec<_>>(),
                b.difference(&a).collect::<Vec<_>>()
            ));
        }
        let received = one.stats()["stats"]["packets"]["received"]
            .as_u64()
            .unwrap_or(0);
        let manifest_packets = packets_in_manifest(&rel);
        if one.status.success() && received != manifest_packets {
            failures.push(format!(
                "{rel}: received {received}, capinfos says {manifest_packets}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn packets_in_manifest(rel: &str) -> u64 {
    let text = std::fs::read_to_string(corpus().join("MANIFEST.tsv")).expect("manifest");
    text.lines()
        .find(|l| l.split('\t').next() == Some(rel))
        .and_then(|l| l.split('\t').nth(6))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Where flowtap follows the Community ID spec and Suricata does not.
/// ndpi-malformed_icmp.pcap holds one ICMP message of type 165, which has no
/// request/response counterpart: the spec (and its reference implementation,
/// and Zeek) hashes such messages one-way, in packet order:
/// 218.152.179.213:165 -> 218.152.179.54:0 gives 1:rtRCutrlDsLAUYom8GroVg/mNWs=
/// (checked by hand with the spec's algorithm). Suricata orders the endpoints
/// as for a two-way flow and gets 1:kc6HLuJ+8CNIrEMqq4yS7Y/tW6M=.
const KNOWN_COMMUNITY_ID_DIFFERENCES: &[(&str, &str)] = &[(
    "malformed/ndpi-malformed_icmp.pcap",
    "1:kc6HLuJ+8CNIrEMqq4yS7Y/tW6M=",
)];

/// Community IDs agree with Suricata's on every capture where Suricata logged flows.
#[test]
fn community_ids_match_suricata() {
    let mut checked_captures = 0;
    let mut checked_flows = 0;
    let mut failures = Vec::new();
    for rel in manifest() {
        let eve = suricata_events(&rel);
        let theirs: BTreeSet<String> = eve
            .iter()
            .filter(|e| e["event_type"] == "flow")
            .filter(|e| {
                matches!(
                    e["proto"].as_str(),
                    Some("TCP" | "UDP" | "ICMP" | "IPv6-ICMP")
                )
            })
            // Suricata also logs the outer UDP flow that carries a tunnel
            // (VXLAN, GTP-U); flowtap follows the inner flow only.
            .filter(|e| {
                !e["dest_port"]
                    .as_u64()
                    .is_some_and(|p| TUNNEL_PORTS.contains(&(p as u16)))
            })
            .filter_map(|e| e["community_id"].as_str().map(str::to_string))
            .collect();
        if theirs.is_empty() {
            continue;
        }
        let run = run_flowtap(&corpus().join(&rel), 1, &[]);
        let ours: BTreeSet<String> = run
            .of_type("flow")
            .into_iter()
            .filter_map(|e| e["community_id"].as_str().map(str::to_string))
            .collect();
        let missing: Vec<_> = theirs
            .difference(&ours)
            .filter(|id| !KNOWN_COMMUNITY_ID_DIFFERENCES.contains(&(rel.as_str(), id.as_str())))
            .collect();
        if !missing.is_empty() {
            failures.push(format!(
                "{rel}: Suricata community ids not found: {missing:?}"
            ));
        }
        checked_captures += 1;
        checked_flows += theirs.len();
    }
    assert!(
        checked_captures >= 40,
        "only {checked_captures} captures had Suricata flows"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked_captures} captures ({checked_flows} flows) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every capture, read by one worker and by three: the same events, field
/// for field (every worker's flow clock follows all packets read, so flows
/// end at the same capture times whatever owns them); only their order and
/// the `stats` line differ. The three workers share the reading of a pcap
/// file in chunks: 4 KiB ones for the corpus, so that every capture goes
/// through many (records crossing chunks, guessed starts checked), and the
/// default size for W1; a capture that breaks ends with the same error.
#[test]
fn every_capture_same_events_for_one_and_three_workers() {
    let mut compared = 0;
    let mut failures = Vec::new();
    let captures = manifest()
        .into_iter()
        .map(|rel| (rel.clone(), corpus().join(rel)));
    for (rel, cap) in captures.chain([("W1".to_string(), w1())]) {
        let one = run_flowtap(&cap, 1, &[]);
        let chunk: &[&str] = if rel == "W1" {
            &[]
        } else {
            &["--read-chunk", "4096"]
        };
        let three = run_flowtap(&cap, 3, chunk);
        let file_error = |r: &RunOutput| {
            r.stderr
                .lines()
                .filter(|l| l.contains("capture file"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        if file_error(&one) != file_error(&three) {
            failures.push(format!(
                "{rel}: one worker says {:?}, three say {:?}",
                file_error(&one),
                file_error(&three)
            ));
        }
        if one.status.code() != three.status.code() {
            failures.push(format!(
                "{rel}: exit {:?} with one worker, {:?} with three",
                one.status.code(),
                three.status.code()
            ));
            continue;
        }
        let (a, b) = (one.sorted_events(), three.sorted_events());
        compared += a.len();
        if a != b {
            let only_one: Vec<_> = a.iter().filter(|e| !b.contains(e)).take(2).collect();
            let only_three: Vec<_> = b.iter().filter(|e| !a.contains(e)).take(2).collect();
            failures.push(format!(
                "{rel}: {} events with one worker, {} with three\n  only one: {only_one:?}\n  only three: {only_three:?}",
                a.len(),
                b.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // W1 alone has about 25,000.
    assert!(compared > 25_000, "only {compared} events compared");
}

/// The owner a replay worker finds without decoding a packet it skips is
/// the owner the full decode gives, on every packet of every capture and
/// of W1, for two to four workers; and all of W1's packets take that
/// shortcut. Also: the decoder's own shortcut (untagged Ethernet, IPv4
/// without options, TCP) gives what its general path gives, everywhere.
#[test]
fn quick_owner_agrees_with_the_decode() {
    use capture::file::CaptureFile;
    use dissect::flow::{owner, quick_owner};
    use dissect::packet::{decode, decode_general, DecodeConfig, Decoded};

    let cfg = DecodeConfig::default();
    let (mut packets, mut quick, mut w1_quick, mut w1_packets) = (0u64, 0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    let captures = manifest()
        .into_iter()
        .map(|rel| (rel.clone(), corpus().join(rel)));
    for (rel, cap) in captures.chain([("W1".to_string(), w1())]) {
        let Ok(mut file) = CaptureFile::open(&cap) else {
            failures.push(format!("{rel}: cannot open"));
            continue;
        };
        let mut index = 0u64;
        while let Ok(Some(p)) = file.next_packet() {
            index += 1;
            packets += 1;
            if rel == "W1" {
                w1_packets += 1;
            }
            let mut d = Decoded::default();
            decode(p.link.0, p.data, &cfg, &mut d);
            // The decoder's Ethernet/IPv4/TCP shortcut decodes as its
            // general path does.
            let mut general = Decoded::default();
            decode_general(p.link.0, p.data, &cfg, &mut general);
            if d != general {
                failures.push(format!(
                    "{rel} packet {index}: shortcut {d:?} != {general:?}"
                ));
            }
            for workers in 2..=4 {
                let Some(q) = quick_owner(p.link.0, p.data, &cfg, workers) else {
                    continue;
                };
                if workers == 2 {
                    quick += 1;
                    if rel == "W1" {
                        w1_quick += 1;
                    }
                }
                if q != owner(&d, workers) {
                    failures.push(format!("{rel} packet {index}, {workers} workers"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(packets > 200_000 && quick > 100_000, "{quick} of {packets}");
    // W1 is untagged TCP and DNS over UDP: every packet takes it.
    assert_eq!(w1_quick, w1_packets, "W1's packets that took the shortcut");
}
