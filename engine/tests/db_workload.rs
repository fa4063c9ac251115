//! The generated database workload (`benches/scripts/gen_db_pcap.py`, the
//! one the database benchmark replays): every transaction its clients ran
//! is reported exactly once, with the errors it provoked, on two workers.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use common::*;

#[test]
fn every_generated_database_transaction_is_reported_once() {
    let dir = tmp_dir("db-workload");
    let pcap = dir.join("db.pcap");
    let summary = dir.join("db.json");
    let gen =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/scripts/gen_db_pcap.py");
    let ok = Command::new("python3")
        .arg(&gen)
        .arg("-o")
        .arg(&pcap)
        .args(["-n", "5000", "--seed", "7", "--summary"])
        .arg(&summary)
        .output()
        .expect("python3");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary"))
        .expect("summary JSON");
    let out = Command::new(env!("CARGO_BIN_EXE_flowtap"))
        .args(["run", "-q", "--workers", "2", "--pcap"])
        .arg(&pcap)
        .args(["-o", "-"])
        .output()
        .expect("flowtap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut count: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut stats = Value::Null;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let e: Value = serde_json::from_str(line).expect("JSON line");
        let t = e["event_type"].as_str().unwrap_or("").to_string();
        if t == "stats" {
            stats = e["stats"].clone();
        }
        if !matches!(t.as_str(), "pgsql" | "mysql" | "redis") {
            continue;
        }
        let x = &e[&t];
        assert_ne!(x["unanswered"], true, "{line}");
        *count.entry(t.clone()).or_default() += 1;
        let code = match t.as_str() {
            "pgsql" => x["error"]["code"].as_str().map(str::to_string),
            "mysql" => x["error"]["code"].as_u64().map(|c| c.to_string()),
            _ => x["error"]
                .as_str()
                .map(|m| m.split(' ').next().unwrap_or("").to_string()),
        };
        if let Some(code) = code {
            *errors.entry(t.clone()).or_default() += 1;
            *codes.entry(format!("{t} {code}")).or_default() += 1;
        }
    }
    for proto in ["pgsql", "mysql", "redis"] {
        assert_eq!(
            count.get(proto).copied().unwrap_or(0),
            want[proto].as_u64().unwrap(),
            "{proto} transactions"
        );
        assert_eq!(
            errors.get(proto).copied().unwrap_or(0),
            want[format!("{proto}_errors")].as_u64().unwrap(),
            "{proto} errors"
        );
    }
    // Each error is the one the generator provoked.
    assert_eq!(codes.len(), 3, "{codes:?}");
    for code in ["pgsql 42P01", "mysql 1146", "redis WRONGTYPE"] {
        assert!(codes.contains_key(code), "{code} missing: {codes:?}");
    }
    let app = &stats["app"];
    for k in [
        "malformed",
        "gaps",
        "resyncs",
        "orphan_responses",
        "unanswered",
    ] {
        assert_eq!(app[k], 0, "app.{k}: {app}");
    }
    assert_eq!(
        stats["flows"]["records"], want["sessions"],
        "one flow per session"
    );
}
