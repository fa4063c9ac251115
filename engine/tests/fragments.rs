//! IP fragment reassembly on real captures.
//!
//! flowtap accounts every fragment frame to the flow of its datagram (frames
//! and wire bytes as captured). tshark's conversation table and Suricata
//! count a reassembled datagram as one packet instead, so the reference here
//! is built per frame from tshark's own reassembly: each fragment belongs to
//! the conversation of the frame it is reassembled in (`ip.reassembled_in`,
//! `ipv6.reassembled.in`, two-pass `-2`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;

/// (frames, bytes) per (proto, lower endpoint, higher endpoint), both directions summed.
fn tshark_frames_per_conversation(cap: &Path) -> BTreeMap<ConvKey, (u64, u64)> {
    let o = Command::new("tshark")
        .args(["-2", "-r"])
        .arg(cap)
        .args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=l"])
        .args(["-e", "frame.number", "-e", "frame.len"])
        .args(["-e", "ip.reassembled_in", "-e", "ipv6.reassembled.in"])
        .args([
            "-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst",
        ])
        .args([
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
        ])
        .output()
        .expect("tshark must be installed");
    let text = String::from_utf8_lossy(&o.stdout);
    let mut key_of_frame: BTreeMap<u64, ConvKey> = BTreeMap::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 12, "tshark row: {line}");
        let num: u64 = f[0].parse().expect("frame number");
        let len: u64 = f[1].parse().expect("frame len");
        let reassembled_in: Option<u64> = f[2].parse().ok().or_else(|| f[3].parse().ok());
        let (src, dst) = if !f[6].is_empty() {
            (f[6], f[7])
        } else {
            (f[4], f[5])
        };
        let ports = if !f[8].is_empty() {
            Some(("TCP", f[8], f[9]))
        } else if !f[10].is_empty() {
            Some(("UDP", f[10], f[11]))
        } else {
            None
        };
        if let Some((proto, sp, dp)) = ports {
            let a = format!("{src}:{sp}");
            let b = format!("{dst}:{dp}");
            let key = if a <= b {
                (proto.into(), a, b)
            } else {
                (proto.into(), b, a)
            };
            key_of_frame.insert(num, key);
        }
        rows.push((num, len, reassembled_in));
    }
    let mut out: BTreeMap<ConvKey, (u64, u64)> = BTreeMap::new();
    for (num, len, reassembled_in) in rows {
        // A fragment reassembled in a later frame belongs to that frame's conversation.
        let owner = match reassembled_in {
            Some(r) if r != num => r,
            _ => num,
        };
        if let Some(key) = key_of_frame.get(&owner) {
            let e = out.entry(key.clone()).or_default();
            e.0 += 1;
            e.1 += len;
        }
    }
    out
}

#[test]
fn fragments_are_accounted_to_their_datagrams_flow() {
    for rel in [
        "ip-fragments/ndpi-dns_fragmented.pcap",
        "ip-fragments/sv-defrag.bug-6887-defrag-eth-vlan-ipv4-tcp-syn--frag-eth-vlan-ip-tcp-syn.pcap",
    ] {
        let cap = corpus().join(rel);
        let run = run_flowtap(&cap, 1, &[]);
        assert!(run.status.success(), "{rel}: {}", run.stderr);
        let ours: BTreeMap<ConvKey, (u64, u64)> = flowtap_conversations(&run.of_type("flow"))
            .into_iter()
            .map(|(k, c)| (k, (c.a_to_b.0 + c.b_to_a.0, c.a_to_b.1 + c.b_to_a.1)))
            .collect();
        let theirs = tshark_frames_per_conversation(&cap);
        assert_eq!(ours, theirs, "{rel}");
        let d = &run.stats()["stats"]["defrag"];
        assert!(d["reassembled"].as_u64().unwrap_or(0) > 0, "{rel}: {d}");
        assert_eq!(d["fragments"], d["fragments_reassembled"], "{rel}: {d}");
    }
}

#[test]
fn defrag_counts_match_tshark_on_dns_fragments() {
    let cap = corpus().join("ip-fragments/ndpi-dns_fragmented.pcap");
    let run = run_flowtap(&cap, 2, &[]);
    let o = Command::new("tshark")
        .args(["-2", "-r"])
        .arg(&cap)
        .args([
            "-T",
            "fields",
            "-e",
            "ip.reassembled_in",
            "-e",
            "ipv6.reassembled.in",
        ])
        .output()
        .expect("tshark");
    let text = String::from_utf8_lossy(&o.stdout);
    let mut datagrams = std::collections::BTreeSet::new();
    let mut fragment_frames = 0u64;
    for l in text.lines() {
        if let Some(n) = l.split('\t').find(|s| !s.is_empty()) {
            datagrams.insert(n.to_string());
            fragment_frames += 1;
        }
    }
    let d = &run.stats()["stats"]["defrag"];
    assert_eq!(
        d["reassembled"].as_u64(),
        Some(datagrams.len() as u64),
        "{d}"
    );
    // tshark marks the non-final fragments; the final one is the frame the datagram is reassembled in.
    assert_eq!(
        d["fragments"].as_u64(),
        Some(fragment_frames + datagrams.len() as u64),
        "{d}"
    );
    assert_eq!(d["timed_out"], 0);
    assert_eq!(d["overlapping"], 0);
}

/// 1252 garbage fragments: reassembly stays bounded and every fragment is accounted.
#[test]
fn garbage_fragments_are_bounded_and_accounted() {
    let cap = corpus().join("ip-fragments/ndpi-ip_fragmented_garbage.pcap");
    let dir = tmp_dir("garbage");
    let cfg = dir.join("small.toml");
    std::fs::write(
        &cfg,
        "[defrag]\nmax_bytes_per_worker = 4096\nmax_datagrams_per_worker = 2\n",
    )
    .expect("write config");
    let run = run_flowtap(&cap, 1, &["--config", cfg.to_str().expect("utf8 path")]);
    assert!(run.status.success(), "{}", run.stderr);
    let s = &run.stats()["stats"];
    let d = &s["defrag"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    assert_eq!(n(&s["packets"]["fragment"]), 1252);
    assert!(n(&d["dropped_at_cap"]) > 0, "the caps must bite: {d}");
    // Every fragment ends in exactly one fate.
    assert_eq!(
        n(&d["fragments"]),
        n(&d["fragments_reassembled"])
            + n(&d["fragments_timed_out"])
            + n(&d["dropped_at_cap"])
            + n(&d["invalid"])
            + n(&d["fragments_pending_at_end"]),
        "{d}"
    );
}
