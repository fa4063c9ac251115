//! Duplicate frames from overlapping mirror sessions: W1 with every frame
//! seen twice, 10 µs apart (as two SPAN sessions on one path deliver it),
//! gives with `dedup.mode = "drop"` exactly the flows and events of W1, and
//! the duplicate counter equals W1's packet count; `count` counts the same
//! and changes nothing else; without dedup the flows are doubled.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run_flowtap, tmp_dir, RunOutput};

const PACKETS: u64 = 20_000;

fn tool(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (tshark tools and python3 are installed by scripts/setup.sh)")
    });
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// (W1 of PACKETS packets, the same with every frame duplicated 10 µs later)
fn captures(dir: &Path) -> (PathBuf, PathBuf) {
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/gen_bench_pcap.py");
    let w1 = dir.join("w1.pcap");
    tool(Command::new("python3").arg(&gen).arg("-o").arg(&w1).args([
        "-n",
        &PACKETS.to_string(),
        "--seed",
        "1",
    ]));
    let shifted = dir.join("w1-shifted.pcap");
    tool(
        Command::new("editcap")
            .args(["-t", "0.00001"])
            .arg(&w1)
            .arg(&shifted),
    );
    let dup = dir.join("w1-dup.pcap");
    tool(
        Command::new("mergecap")
            .arg("-w")
            .arg(&dup)
            .arg(&w1)
            .arg(&shifted),
    );
    (w1, dup)
}

fn config(dir: &Path, mode: &str) -> PathBuf {
    let p = dir.join(format!("dedup-{mode}.toml"));
    std::fs::write(&p, format!("[dedup]\nmode = \"{mode}\"\n")).expect("config");
    p
}

/// Every event but the final `stats`, as text, sorted: the same events,
/// whatever order housekeeping (which runs every so many packets) emitted
/// them in.
fn events(r: &RunOutput) -> Vec<String> {
    assert!(r.status.success(), "{}", r.stderr);
    r.sorted_events()
}

/// Equal event lists, or the first difference (not two whole runs).
fn same(got: &[String], want: &[String], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: event count");
    if let Some((g, w)) = got.iter().zip(want).find(|(g, w)| g != w) {
        panic!("{what}: first difference\n got: {g}\nwant: {w}");
    }
}

fn packets_in_flows(r: &RunOutput) -> u64 {
    r.of_type("flow")
        .iter()
        .map(|f| {
            f["flow"]["pkts_toserver"].as_u64().unwrap_or(0)
                + f["flow"]["pkts_toclient"].as_u64().unwrap_or(0)
        })
        .sum()
}

#[test]
fn duplicated_frames_are_dropped_counted_and_change_nothing_else() {
    let dir = tmp_dir("dedup");
    let (w1, dup) = captures(&dir);
    let drop = config(&dir, "drop");
    let count = config(&dir, "count");

    let plain = run_flowtap(&w1, 1, &[]);
    let want = events(&plain);
    assert!(want.len() > 1000, "W1 gave {} events", want.len());
    // The generator's packet count (it may add a closing packet or so).
    let n = plain.stats()["stats"]["packets"]["received"]
        .as_u64()
        .expect("received");
    assert!(n >= PACKETS, "{n}");
    let in_flows = packets_in_flows(&plain);

    // drop: the same flows and events, byte for byte; every copy counted.
    let d = run_flowtap(&dup, 1, &["--config", drop.to_str().expect("path")]);
    same(&events(&d), &want, "dedup drop");
    let s = &d.stats()["stats"];
    assert_eq!(s["packets"]["received"], 2 * n);
    assert_eq!(s["packets"]["duplicate"], n);
    assert_eq!(s["packets"]["accounted"], true);
    assert_eq!(s["dedup"]["duplicates"], n);
    assert_eq!(s["dedup"]["dropped"], n);
    assert_eq!(s["dedup"]["checked"], 2 * n);

    // Two workers: the copies meet on the owner of their flow.
    let d2 = run_flowtap(&dup, 2, &["--config", drop.to_str().expect("path")]);
    same(&events(&d2), &want, "dedup drop, two workers");
    assert_eq!(d2.stats()["stats"]["dedup"]["dropped"], n);

    // count: counted, still processed (flows see every copy).
    let c = run_flowtap(&dup, 1, &["--config", count.to_str().expect("path")]);
    let s = &c.stats()["stats"];
    assert_eq!(s["dedup"]["duplicates"], n);
    assert_eq!(s["dedup"]["dropped"], 0);
    assert_eq!(s["packets"]["duplicate"], 0);
    assert_eq!(packets_in_flows(&c), 2 * in_flows);

    // Without dedup the duplicates double every flow's packets.
    let off = run_flowtap(&dup, 1, &[]);
    assert_eq!(packets_in_flows(&off), 2 * in_flows);
    assert!(off.stats()["stats"].get("dedup").is_none());

    // A copy later than the window is not a duplicate (a retransmission
    // an RTT later stays a retransmission).
    let late = dir.join("w1-late.pcap");
    let shifted = dir.join("w1-shifted-late.pcap");
    tool(
        Command::new("editcap")
            .args(["-t", "0.5"])
            .arg(&w1)
            .arg(&shifted),
    );
    tool(
        Command::new("mergecap")
            .arg("-w")
            .arg(&late)
            .arg(&w1)
            .arg(&shifted),
    );
    let l = run_flowtap(&late, 1, &["--config", drop.to_str().expect("path")]);
    assert_eq!(l.stats()["stats"]["dedup"]["duplicates"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_dedup_mode_is_named() {
    let dir = tmp_dir("dedup-bad");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "[dedup]\nmode = \"sometimes\"\n").expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_flowtap"))
        .args(["run", "--no-progress", "--pcap"])
        .arg(common::corpus().join("mixed/ndpi-1kxun.pcap"))
        .arg("--config")
        .arg(&cfg)
        .args(["-o", "/dev/null"])
        .output()
        .expect("run");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("dedup.mode"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
