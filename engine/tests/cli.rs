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

/// The flow lines of a run (the `stats` line has run times in it).
fn flow_lines(stdout_or_file: &str) -> Vec<String> {
    stdout_or_file
        .lines()
        .filter(|l| l.contains("\"event_type\":\"flow\""))
        .map(String::from)
        .collect()
}

/// gzip- and zstd-compressed captures, and `--pcap -` (standard input,
/// compressed or not), give the flows of the plain file.
#[test]
fn compressed_captures_and_stdin_read_as_the_plain_file() {
    let cap = corpus().join("mixed/ndpi-1kxun.pcap");
    let c = cap.to_str().expect("path");
    let (code, plain, err) = flowtap(&["run", "--pcap", c, "--workers", "1", "-o", "-"]);
    assert_eq!(code, 0, "{err}");
    let want = flow_lines(&plain);
    assert!(want.len() > 100);
    let dir = tmp_dir("cli-compressed");
    for (tool, ext) in [("gzip", "gz"), ("zstd", "zst")] {
        let packed = dir.join(format!("c.pcap.{ext}"));
        let o = Command::new(tool).arg("-c").arg(&cap).output().expect(tool);
        assert!(o.status.success());
        std::fs::write(&packed, &o.stdout).expect("write");
        let p = packed.to_str().expect("path");
        let (code, out, err) = flowtap(&["run", "--pcap", p, "--workers", "1", "-o", "-"]);
        assert_eq!(code, 0, "{tool}: {err}");
        assert!(flow_lines(&out) == want, "{tool}: different flows");
        // The same through standard input; with two workers a reader thread
        // hands them their packets (a stream is read only once).
        for input in [packed.as_path(), cap.as_path()] {
            for workers in ["1", "2"] {
                let o = Command::new(env!("CARGO_BIN_EXE_flowtap"))
                    .args(["run", "--pcap", "-", "--workers", workers, "-o", "-"])
                    .stdin(std::fs::File::open(input).expect("open"))
                    .output()
                    .expect("run");
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(o.status.success(), "stdin {}: {err}", input.display());
                let mut got = flow_lines(&String::from_utf8_lossy(&o.stdout));
                if workers == "2" {
                    got.sort();
                    let mut want = want.clone();
                    want.sort();
                    assert!(got == want, "stdin {}, two workers", input.display());
                } else {
                    assert!(got == want, "stdin {}: different flows", input.display());
                }
            }
        }
    }
    // A compression flowtap does not read is named.
    let x = dir.join("c.pcap.bz2");
    std::fs::write(&x, b"BZh91AY&SY\x00\x00").expect("write");
    let (code, _, err) = flowtap(&["run", "--pcap", x.to_str().expect("path")]);
    assert_eq!(code, 1);
    assert!(err.contains("bzip2-compressed"), "{err}");
}

/// A pcap whose link type the decoder does not read: one warning line
/// naming its number, every packet counted as undecodable, status 0.
#[test]
fn an_unsupported_link_type_is_named_once_with_its_number() {
    let src = corpus().join("http/sv-http-all-headers--input.pcap");
    let mut bytes = std::fs::read(&src).expect("read");
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    bytes[20..24].copy_from_slice(&147u32.to_le_bytes());
    let dir = tmp_dir("cli-link");
    let cap = dir.join("user0.pcap");
    std::fs::write(&cap, &bytes).expect("write");
    let run = run_flowtap(&cap, 1, &[]);
    assert!(run.status.success(), "{}", run.stderr);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("link type 147 is not supported"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    let p = &run.stats()["stats"]["packets"];
    assert!(p["received"].as_u64().unwrap_or(0) > 0);
    assert_eq!(p["received"], p["undecodable"], "{p}");
}

/// A pcap whose header snaplen is smaller than its records: read on as
/// tshark reads (every record, whole), and the longer records counted.
#[test]
fn records_longer_than_the_snaplen_are_read_as_tshark_reads_them() {
    let src = corpus().join("http/sv-http-all-headers--input.pcap");
    let mut bytes = std::fs::read(&src).expect("read");
    bytes[16..20].copy_from_slice(&64u32.to_le_bytes());
    // Records longer than 64 bytes, from the record headers.
    let mut longer = 0;
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4")) as usize;
        longer += usize::from(caplen > 64);
        at += 16 + caplen;
    }
    assert!(longer > 0);
    let dir = tmp_dir("cli-snaplen");
    let cap = dir.join("snap64.pcap");
    std::fs::write(&cap, &bytes).expect("write");
    let o = Command::new("tshark")
        .arg("-r")
        .arg(&cap)
        .output()
        .expect("tshark");
    let tshark_packets = String::from_utf8_lossy(&o.stdout).lines().count() as u64;
    let run = run_flowtap(&cap, 1, &[]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(
        run.stats()["stats"]["packets"]["received"].as_u64(),
        Some(tshark_packets)
    );
    assert!(
        run.stderr.contains(&format!(
            "{longer} record(s) longer than the capture's snaplen were read whole"
        )),
        "{}",
        run.stderr
    );
    // And the flows are those of the original file.
    let orig = run_flowtap(&src, 1, &[]);
    assert_eq!(run.of_type("flow"), orig.of_type("flow"));
}

/// The final `stats` event's sink counters are read once the sinks dealt
/// with every event before it: sent = queued = the lines before it.
#[test]
fn final_stats_count_every_event_before_them_as_sent() {
    let cap = corpus().join("mixed/ndpi-1kxun.pcap");
    for workers in [1, 2] {
        let run = run_flowtap(&cap, workers, &[]);
        assert!(run.status.success(), "{}", run.stderr);
        let before = run.events.len() as u64 - 1;
        let file = &run.stats()["stats"]["sinks"]["file"];
        assert_eq!(file["events_queued"].as_u64(), Some(before), "{file}");
        assert_eq!(file["events_sent"].as_u64(), Some(before), "{file}");
        assert_eq!(file["queue_batches"].as_u64(), Some(0), "{file}");
    }
}

/// A named pipe as `--pcap` (read front to back, never seeked), plain or
/// compressed, gives the flows of the file.
#[test]
fn a_fifo_capture_reads_as_the_file() {
    let cap = corpus().join("mixed/ndpi-1kxun.pcap");
    let (code, plain, err) = flowtap(&[
        "run",
        "--pcap",
        cap.to_str().expect("path"),
        "--workers",
        "1",
        "-o",
        "-",
    ]);
    assert_eq!(code, 0, "{err}");
    let want = flow_lines(&plain);
    let dir = tmp_dir("cli-fifo");
    let gz = Command::new("gzip")
        .arg("-c")
        .arg(&cap)
        .output()
        .expect("gzip")
        .stdout;
    for (name, bytes) in [("plain", std::fs::read(&cap).expect("read")), ("gz", gz)] {
        let fifo = dir.join(format!("{name}.fifo"));
        let _ = std::fs::remove_file(&fifo);
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success());
        let f = fifo.clone();
        let feeder = std::thread::spawn(move || {
            use std::io::Write as _;
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .open(&f)
                .expect("open fifo");
            w.write_all(&bytes).expect("feed");
        });
        let (code, out, err) = flowtap(&[
            "run",
            "--pcap",
            fifo.to_str().expect("path"),
            "--workers",
            "1",
            "-o",
            "-",
        ]);
        feeder.join().expect("feeder");
        assert_eq!(code, 0, "{name}: {err}");
        assert!(flow_lines(&out) == want, "{name}: different flows");
    }
}
