//! Schemas end to end: `flowtap` replays corpus captures into several sinks
//! at once (native, eve, ecs, gelf, nanocorp, nutanix), and each file is
//! checked: EVE against Suricata 8.0.6's own eve.json keys on the same
//! capture, ECS against the ECS 8.11 field list, the others against the
//! native records field for field.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Suricata keys flowtap does not produce (engine internals, or data we do
/// not track): `path` prefix match on the flattened key.
const SURICATA_ONLY: &[&str] = &[
    "pcap_cnt",
    "pkt_src",
    "flow.exception_policy",
    "flow.tx_cnt",
    "flow.bypass",
    "flow.bypassed",
    "flow.emergency",
    "flow.wrong_thread",
    "flow.action",
    "tcp.ts_max_regions",
    "tcp.tc_max_regions",
    "tcp.ts_gap",
    "tcp.tc_gap",
    "icmp_code",
    "response_icmp_type",
    "response_icmp_code",
    "parent_id",
    "metadata",
    "spi",
    "tunnel.depth",
    "tunnel.pcap_cnt",
    "tunnel.pkt_src",
    // protocols flowtap does not parse yet (mysql, pgsql, ssh, smtp, ftp, ...)
    "app_proto",
    "app_proto_tc",
    // flow state of sessions Suricata tracks differently (midstream, async)
    "tcp.state",
    // Suricata logs `vlan` only when it keys flows by VLAN; so do we
    "vlan",
    // DNS v3 details we do not decode
    "dns.additionals",
    "dns.grouped",
    "dns.tx_id",
    "dns.answers.opt",
    "dns.queries.rrname_truncated",
    "dns.answers.rdata_truncated",
    "dns.authorities.soa",
    "dns.authorities.rdata",
    "tx_id",
    // TLS fields not in our handshake record
    "tls.ja3.string",
    "tls.ja3s.string",
    "tls.session_resumed",
    "tls.from_proto",
    "tls.chain",
    "tls.certificate",
    "http.http_response_body",
    "http.request_headers",
    "http.response_headers",
    "http.http_request_body",
    "http.content_range",
    "http.xff",
];

fn flowtap() -> &'static str {
    env!("CARGO_BIN_EXE_flowtap")
}

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: bad JSON {l}: {e}", p.display()))
        })
        .collect()
}

/// (key path -> JSON type name) of a document; arrays of objects descend.
fn shape(prefix: &str, v: &Value, out: &mut BTreeMap<String, &'static str>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                shape(&p, v, out);
            }
        }
        Value::Array(a) if a.iter().any(Value::is_object) => {
            for e in a {
                shape(prefix, e, out);
            }
        }
        other => {
            let t = match other {
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                Value::Array(_) => "array",
                _ => "null",
            };
            out.insert(prefix.to_string(), t);
        }
    }
}

fn suricata_only(path: &str) -> bool {
    SURICATA_ONLY
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}.")))
}

struct Outputs {
    native: Vec<Value>,
    eve: Vec<Value>,
    ecs: Vec<Value>,
    gelf: Vec<Value>,
    nanocorp: Vec<Value>,
    nutanix: Vec<String>,
}

fn run_all_schemas(cap: &Path, dir: &Path) -> Outputs {
    let f = |n: &str| dir.join(n);
    let st = Command::new(flowtap())
        .args(["run", "--no-progress", "-q", "--workers", "1", "--pcap"])
        .arg(cap)
        .arg("-o")
        .arg(f("native.json"))
        .arg("-o")
        .arg(format!("{}?schema=eve", f("eve.json").display()))
        .arg("-o")
        .arg(format!("file://{}?schema=ecs", f("ecs.json").display()))
        .arg("-o")
        .arg(format!("{}?schema=gelf", f("gelf.json").display()))
        .arg("-o")
        .arg(format!("{}?schema=nanocorp", f("nanocorp.json").display()))
        .arg("-o")
        .arg(format!("{}?schema=nutanix", f("nutanix.log").display()))
        .status()
        .expect("run flowtap");
    assert!(
        st.code().is_some_and(|c| c == 0 || c == 2),
        "{}: {st}",
        cap.display()
    );
    Outputs {
        native: lines(&f("native.json")),
        eve: lines(&f("eve.json")),
        ecs: lines(&f("ecs.json")),
        gelf: lines(&f("gelf.json")),
        nanocorp: lines(&f("nanocorp.json")),
        nutanix: std::fs::read_to_string(f("nutanix.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect(),
    }
}

/// Captures that have a Suricata reference.
fn captures() -> Vec<(PathBuf, PathBuf)> {
    let corpus = common::corpus();
    let reference = common::reference();
    let mut out = Vec::new();
    for topic in std::fs::read_dir(&reference)
        .expect("reference dir")
        .flatten()
    {
        for e in std::fs::read_dir(topic.path()).expect("topic").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(cap) = name.strip_suffix(".eve.json") else {
                continue;
            };
            let pcap = corpus.join(topic.file_name()).join(cap);
            if pcap.exists() {
                out.push((pcap, e.path()));
            }
        }
    }
    out.sort();
    out
}

/// Flow identity (plus the DNS id: several transactions share a flow).
fn key(v: &Value) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}",
        v["community_id"].as_str().unwrap_or(""),
        v["src_ip"],
        v["src_port"],
        v["dest_ip"],
        v["dest_port"],
        v["dns"]["id"]
    )
}

#[test]
fn every_schema_on_every_reference_capture() {
    let caps = captures();
    assert!(caps.len() > 40, "{} captures", caps.len());
    let base = common::tmp_dir("schemas");
    let mut matched: BTreeMap<&str, usize> = BTreeMap::new();
    let mut missing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut wrong_type: BTreeSet<String> = BTreeSet::new();
    let mut ecs_bad: BTreeSet<String> = BTreeSet::new();
    for (i, (pcap, eve_ref)) in caps.iter().enumerate() {
        let dir = base.join(i.to_string());
        std::fs::create_dir_all(&dir).expect("dir");
        let o = run_all_schemas(pcap, &dir);
        let name = pcap
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();

        // Every schema carries every event (nutanix: flows only).
        let flows = o
            .native
            .iter()
            .filter(|e| e["event_type"] == "flow")
            .count();
        let n = o.native.len();
        assert_eq!(o.eve.len(), n, "{name}: eve");
        assert_eq!(o.ecs.len(), n, "{name}: ecs");
        assert_eq!(o.gelf.len(), n, "{name}: gelf");
        assert_eq!(o.nanocorp.len(), n, "{name}: nanocorp");
        assert_eq!(o.nutanix.len(), flows, "{name}: nutanix");

        // Field for field against native, in the same order.
        let mut nut = o.nutanix.iter();
        for (k, nat) in o.native.iter().enumerate() {
            let t = nat["event_type"].as_str().unwrap_or("");
            assert_eq!(o.eve[k]["event_type"], t, "{name}");
            assert_eq!(o.gelf[k]["_event_type"], t, "{name}");
            assert_eq!(o.nanocorp[k]["event_type"], t, "{name}");
            if t == "stats" {
                continue;
            }
            let ecs = &o.ecs[k];
            assert_eq!(ecs["source"]["ip"], nat["src_ip"], "{name}");
            assert_eq!(ecs["destination"]["ip"], nat["dest_ip"], "{name}");
            assert_eq!(
                ecs["network"]["community_id"], nat["community_id"],
                "{name}"
            );
            assert_eq!(ecs["flowtap"]["flow_id"], nat["flow_id"], "{name}");
            assert_eq!(o.eve[k]["flow_id"], nat["flow_id"], "{name}");
            assert_eq!(o.eve[k]["src_ip"], nat["src_ip"], "{name}");
            assert_eq!(o.gelf[k]["_src_ip"], nat["src_ip"], "{name}");
            assert_eq!(o.gelf[k]["_flow_id"], nat["flow_id"].to_string(), "{name}");
            assert_eq!(o.nanocorp[k]["source_ip"], nat["src_ip"], "{name}");
            assert_eq!(o.nanocorp[k]["dest_ip"], nat["dest_ip"], "{name}");
            if t == "flow" {
                let f = &nat["flow"];
                assert_eq!(
                    o.eve[k]["flow"]["bytes_toserver"], f["bytes_toserver"],
                    "{name}"
                );
                assert_eq!(
                    o.eve[k]["flow"]["pkts_toclient"], f["pkts_toclient"],
                    "{name}"
                );
                assert_eq!(ecs["source"]["bytes"], f["bytes_toserver"], "{name}");
                assert_eq!(ecs["destination"]["packets"], f["pkts_toclient"], "{name}");
                assert_eq!(o.gelf[k]["_bytes_toclient"], f["bytes_toclient"], "{name}");
                assert_eq!(
                    o.nanocorp[k]["flow"]["bytes_sent"], f["bytes_toserver"],
                    "{name}"
                );
                let line = nut.next().expect("a nutanix line per flow");
                let want = format!(
                    "ORIG: PKTS={} BYTES={} REPLY: PKTS={} BYTES={} ACTION=MONITOR",
                    f["pkts_toserver"],
                    f["bytes_toserver"],
                    f["pkts_toclient"],
                    f["bytes_toclient"]
                );
                assert!(line.ends_with(&want), "{name}: {line} vs {want}");
                assert!(
                    line.contains(&format!(" SRC={} ", nat["src_ip"].as_str().unwrap_or(""))),
                    "{line}"
                );
            }
        }

        // ECS: only ECS 8.11 fields, of the right type.
        for e in &o.ecs {
            for p in output::schema::ecs_check::ecs_problems(e) {
                ecs_bad.insert(p);
            }
        }

        // EVE: the keys Suricata writes for the same flow / transaction.
        let reference: Vec<Value> = lines(eve_ref);
        for t in ["flow", "http", "dns", "tls"] {
            // Several of ours can share a key: the same 5-tuple in two
            // tunnels (the key has no tunnel), or a flow picked up without
            // its handshake that flowtap oriented by the server port while
            // Suricata kept the first packet's sender.
            let mut ours: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
            for e in o.eve.iter().filter(|e| e["event_type"] == t) {
                ours.entry(key(e)).or_default().push(e);
            }
            for r in reference.iter().filter(|e| e["event_type"] == t) {
                // The DNS parser gives up on the answers of this malformed
                // capture that Suricata still prints (a parser matter).
                if t == "dns"
                    && (r["dns"]["type"] != "response" || name == "ndpi-malformed_dns.pcap")
                {
                    continue;
                }
                // Suricata writes a response from the server's side.
                let swapped = format!(
                    "{}|{}|{}|{}|{}|{}",
                    r["community_id"].as_str().unwrap_or(""),
                    r["dest_ip"],
                    r["dest_port"],
                    r["src_ip"],
                    r["src_port"],
                    r["dns"]["id"]
                );
                let Some(candidates) = ours.get(&key(r)).or_else(|| ours.get(&swapped)) else {
                    continue;
                };
                *matched.entry(t).or_default() += 1;
                let mut want = BTreeMap::new();
                shape("", r, &mut want);
                // The candidate that has most of Suricata's keys.
                let have = candidates
                    .iter()
                    .map(|mine| {
                        let mut have = BTreeMap::new();
                        shape("", mine, &mut have);
                        have
                    })
                    .min_by_key(|have| want.keys().filter(|k| !have.contains_key(*k)).count())
                    .unwrap_or_default();
                for (k, ty) in &want {
                    if suricata_only(k) {
                        continue;
                    }
                    match have.get(k) {
                        None => {
                            missing.entry(k.clone()).or_default().insert(name.clone());
                        }
                        Some(h) if h != ty => {
                            wrong_type.insert(format!("{k}: suricata {ty}, ours {h} ({name})"));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    assert!(ecs_bad.is_empty(), "ECS problems: {ecs_bad:#?}");
    assert!(
        wrong_type.is_empty(),
        "EVE type mismatches: {wrong_type:#?}"
    );
    assert!(
        missing.is_empty(),
        "EVE keys Suricata writes and we do not: {missing:#?}"
    );
    for (t, min) in [("flow", 300), ("http", 80), ("dns", 20), ("tls", 15)] {
        assert!(matched.get(t).copied().unwrap_or(0) >= min, "{matched:?}");
    }
    eprintln!("eve events compared with Suricata's: {matched:?}");
    let _ = std::fs::remove_dir_all(&base);
}
