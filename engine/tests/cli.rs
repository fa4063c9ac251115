//! The command line on bad input: clear errors, nothing lost that could be kept.

mod common;

use std::process::Command;

use common::*;

fn flowtap(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_flowtap"))
        .args(args)
        .output()
        .expect("run");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn truncated_capture_keeps_everything_before_the_cut_and_names_the_offset() {
    let src = corpus().join("http/sv-http-all-headers--input.pcap");
    let bytes = std::fs::read(&src).expect("read");
    let dir = tmp_dir("cli");
    let cut = dir.join("cut.pcap");
    // Cut inside a record well after the start.
    let at = bytes.len() * 2 / 3;
    std::fs::write(&cut, &bytes[..at]).expect("write");
    let run = run_flowtap(&cut, 2, &[]);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("truncated at byte"), "{}", run.stderr);
    // tshark reads the same complete packets before the cut.
    let o = Command::new("tshark")
        .arg("-r")
        .arg(&cut)
        .output()
        .expect("tshark");
    let tshark_packets = String::from_utf8_lossy(&o.stdout).lines().count() as u64;
    let stats = &run.stats()["stats"]["packets"];
    assert_eq!(stats["received"].as_u64(), Some(tshark_packets), "{stats}");
    assert_eq!(stats["accounted"], true);
    assert!(
        !run.of_type("flow").is_empty(),
        "flows before the cut are written"
    );
}

#[test]
fn not_a_capture_is_a_clear_error() {
    let dir = tmp_dir("cli");
    let bad = dir.join("bad.pcap");
    std::fs::write(&bad, b"this is not a capture file at all").expect("write");
    let (code, _, err) = flowtap(&["run", "--pcap", bad.to_str().expect("path"), "-o", "-"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a pcap or pcapng file"), "{err}");
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
}

#[test]
fn unknown_config_key_is_named() {
    let dir = tmp_dir("cli");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "[flow.timeouts]\nudp_idle = 3\n").expect("write");
    let cap = corpus().join("dns/sv-cond-log-dns-dig--input.pcap");
    let (code, _, err) = flowtap(&[
        "run",
        "--pcap",
        cap.to_str().expect("path"),
        "--config",
        cfg.to_str().expect("path"),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("udp_idle") && err.contains("bad.toml"),
        "{err}"
    );
}

#[test]
fn invalid_config_value_is_named() {
    let dir = tmp_dir("cli");
    let cfg = dir.join("zero.toml");
    std::fs::write(&cfg, "[flow]\nmax_flows_per_worker = 0\n").expect("write");
    let cap = corpus().join("dns/sv-cond-log-dns-dig--input.pcap");
    let (code, _, err) = flowtap(&[
        "run",
        "--pcap",
        cap.to_str().expect("path"),
        "-c",
        cfg.to_str().expect("path"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("flow.max_flows_per_worker"), "{err}");
}

#[test]
fn missing_file_and_unwritable_output_are_clear_errors() {
    let (code, _, err) = flowtap(&["run", "--pcap", "/nonexistent/x.pcap"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/x.pcap"), "{err}");
    let cap = corpus().join("dns/sv-cond-log-dns-dig--input.pcap");
    let (code, _, err) = flowtap(&[
        "run",
        "--pcap",
        cap.to_str().expect("path"),
        "--output",
        "/nonexistent/dir/out.json",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/dir/out.json"), "{err}");
}

#[test]
fn help_explains_the_tool_and_default_config_parses() {
    let (code, out, _) = flowtap(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("flow records") && out.contains("run"), "{out}");
    let (code, out, _) = flowtap(&["run", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--pcap") && out.contains("--workers") && out.contains("--output"));
    let (code, out, _) = flowtap(&["default-config"]);
    assert_eq!(code, 0);
    let cfg = engine::config::Config::from_toml(&out, "default").expect("parses");
    assert_eq!(cfg, engine::config::Config::default());
}

#[test]
fn periodic_stats_events_are_written() {
    let dir = tmp_dir("cli");
    let cfg = dir.join("stats.toml");
    std::fs::write(&cfg, "[output]\nstats_interval = 1\n").expect("write");
    let cap = corpus().join("mixed/ndpi-1kxun.pcap");
    let run = run_flowtap(&cap, 1, &["--config", cfg.to_str().expect("path")]);
    assert!(run.status.success());
    // At least the final one; periodic ones only when the run lasts > 1 s.
    assert!(!run.of_type("stats").is_empty());
    assert_eq!(run.stats()["stats"]["packets"]["accounted"], true);
}

#[test]
fn a_plain_output_file_is_replaced_not_appended() {
    let dir = tmp_dir("cli");
    let out = dir.join("twice.json");
    let cap = corpus().join("dns/sv-cond-log-dns-dig--input.pcap");
    let mut counts = Vec::new();
    for _ in 0..2 {
        let (code, _, err) = flowtap(&[
            "run",
            "--pcap",
            cap.to_str().expect("path"),
            "-o",
            out.to_str().expect("path"),
        ]);
        assert_eq!(code, 0, "{err}");
        counts.push(std::fs::read_to_string(&out).expect("read").lines().count());
    }
    assert_eq!(counts[0], counts[1]);
    assert!(counts[0] >= 2, "a flow and a stats line at least");
}

/// A run that fails to start (missing input, bad export rule, a sink that
/// cannot be opened, an interface that does not exist) leaves an existing
/// output file as it was; a run that starts replaces it.
#[test]
fn a_run_that_fails_to_start_never_truncates_an_existing_output() {
    let dir = tmp_dir("cli-keep");
    let out = dir.join("results.json");
    let o = out.to_str().expect("path");
    let cap = corpus().join("http/sv-http-all-headers--input.pcap");
    let c = cap.to_str().expect("path");
    let missing = dir.join("typo.pcap");
    let m = missing.to_str().expect("path");
    let no_dir = dir.join("no-such-dir");
    let rule = format!("name=x,dir={},port=80", no_dir.display());
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", "--pcap", m, "-o", o],
        vec![
            "run",
            "--pcap",
            c,
            "-o",
            o,
            "-o",
            "syslog+tcp://127.0.0.1:9?tls=true&ca=/nonexistent/ca.pem",
        ],
        vec!["export", "--pcap", c, "--rule", &rule, "-o", o],
        vec!["run", "--iface", "flowtapnope0", "-o", o],
    ];
    for args in cases {
        std::fs::write(&out, "precious\n").expect("write");
        let (code, _, err) = flowtap(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert_eq!(
            std::fs::read_to_string(&out).expect("read"),
            "precious\n",
            "{args:?} truncated the output: {err}"
        );
    }
    let (code, _, err) = flowtap(&["run", "--pcap", c, "-o", o]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).expect("read");
    assert!(!text.contains("precious") && text.contains("\"event_type\":\"stats\""));
}

/// `--workers` beyond the usable cores is capped, with a warning naming
/// both numbers (`--workers 1000` used to start 1000 threads and GBs).
#[test]
fn workers_beyond_the_cores_are_capped_with_a_warning() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cap = corpus().join("http/sv-http-all-headers--input.pcap");
    let t = std::time::Instant::now();
    let run = run_flowtap(&cap, 1000, &[]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "warning: 1000 workers asked for but {cores} core(s) are usable: running {cores}"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("with {cores} worker(s)")),
        "{}",
        run.stderr
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    // The same flows as one worker's.
    let one = run_flowtap(&cap, 1, &[]);
    assert_eq!(run.of_type("flow").len(), one.of_type("flow").len());
}
