//! The Prometheus endpoint end to end: the real `flowtap` binary captures
//! live (AF_PACKET, two workers) in a throw-away network namespace while
//! `flowtap gen` replays corpus captures into it; Debian's `prometheus`
//! scrapes `--metrics` every second inside the same namespace, and what its
//! HTTP API (`/api/v1/query`) answers must equal what was sent and
//! flowtap's own `stats` events (the last periodic one and the final one).
//! The endpoint's text passes `promtool check metrics`, and every metric
//! the Grafana dashboard (`deploy/grafana/flowtap.json`) uses is exposed.
//!
//! Needs root for the namespaces (CI runs as root); without root the live
//! test fails under CI and elsewhere prints a loud SKIPPED banner
//! (`common/root.rs`). `prometheus` and
//! `promtool` come from `scripts/setup.sh`.

mod common;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::netpair::*;
use common::prometheus::*;
use common::*;

const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");

/// Captures with HTTP, DNS (over TCP), VXLAN and TLS that are known to
/// replay live exactly (see `live.rs`).
const CAPTURES: &[&str] = &[
    "http/sv-http-all-headers--input.pcap",
    "dns/sv-dns.dns-tcp-multirequest-buffer--dns-tcp-multirequest-buffer.pcap",
    "tunnels/sv-vxlan-decoder-03--vxlan.pcap",
    "vlan/ndpi-ja3_lots_of_cipher_suites.pcap",
];

const METRICS_PORT: u16 = 9464;

fn dashboard_metrics() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/flowtap.json");
    let text = std::fs::read_to_string(&path).expect("deploy/grafana/flowtap.json");
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    let mut exprs = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    if k == "expr" || k == "query" {
                        if let Some(s) = v.as_str() {
                            out.push(s.to_string());
                        }
                    }
                    walk(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dash, &mut exprs);
    assert!(exprs.len() >= 10, "the dashboard has its panels: {exprs:?}");
    let mut names = Vec::new();
    for e in &exprs {
        let b = e.as_bytes();
        let mut i = 0;
        while let Some(p) = e[i..].find("flowtap_") {
            let start = i + p;
            let mut end = start;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                end += 1;
            }
            names.push(e[start..end].to_string());
            i = end;
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Checks an exposition with promtool and that it declares every metric
/// the dashboard uses.
fn check_exposition(text: &str) {
    promtool_check(text);
    for name in dashboard_metrics() {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "the dashboard uses {name}, which flowtap does not expose"
        );
    }
}

/// A bad or taken address is refused at start, naming the setting, before
/// any output is written.
#[test]
fn a_taken_or_bad_metrics_address_is_a_clear_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let dir = tmp_dir("metrics");
    let out = dir.join("taken.json");
    let capture = corpus().join(CAPTURES[0]);
    for (arg, expect) in [
        (addr.as_str(), "the address is in use"),
        ("nope", "is not ADDR:PORT or PORT"),
    ] {
        let o = Command::new(FLOWTAP)
            .args(["run", "--no-progress", "--metrics", arg, "--pcap"])
            .arg(&capture)
            .arg("--output")
            .arg(&out)
            .output()
            .expect("run flowtap");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("output.metrics_listen"), "{err}");
        assert!(err.contains(expect), "{expect:?} in {err}");
        assert!(!out.exists(), "nothing written before the refusal");
    }
}

/// Runs `f` on a thread inside network namespace `ns`.
fn stats_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with('}'))
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
        .filter(|e| e["event_type"] == "stats")
        .collect()
}

#[test]
fn prometheus_scrapes_what_flowtap_counts() {
    require_root!("network namespaces");
    require("prometheus");
    let dir = tmp_dir("metrics").join("scrape");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let net = Net::new("m");
    let cfg = dir.join("flowtap.toml");
    // Short timeouts: every flow ends (and is counted) while the capture runs.
    std::fs::write(
        &cfg,
        "[output]\nstats_interval = 1\n[flow.timeouts]\ntcp_syn = 1\ntcp_established = 1\n\
         tcp_closed = 1\nudp = 1\nother = 1\n",
    )
    .expect("config");
    let output = dir.join("events.json");
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns", "exec", &net.ns_b, FLOWTAP, "run", "--iface", &net.b,
    ])
    .args(["--capture", "afpacket", "--workers", "2", "--metrics"])
    .arg(format!("127.0.0.1:{METRICS_PORT}"))
    .arg("--config")
    .arg(&cfg)
    .arg("--output")
    .arg(&output);
    let mut flowtap = Proc::spawn(cmd);
    let t0 = Instant::now();
    while !flowtap.stderr().contains("flowtap: capturing on") {
        assert!(
            t0.elapsed() < Duration::from_secs(30)
                && flowtap.child.try_wait().ok().flatten().is_none(),
            "flowtap not capturing: {}",
            flowtap.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let prom = Prometheus::start(&net.ns_b, &dir, METRICS_PORT);

    let mut sent = 0;
    for rel in CAPTURES {
        sent += net.gen(&corpus().join(rel));
    }

    // Wait until Prometheus has scraped the settled counters: every frame
    // received, every flow ended and written.
    let t0 = Instant::now();
    loop {
        let received = prom.value("sum(flowtap_packets_received_total)");
        let active = prom.value("sum(flowtap_flows_active)");
        let created = prom.value("sum(flowtap_flows_created_total)");
        let records = prom.value("sum(flowtap_events_total{type=\"flow\"})");
        if received == Some(sent) && active == Some(0) && created.is_some() && created == records {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "Prometheus never saw settled counters: received {received:?} of {sent}, active {active:?}, created {created:?}, records {records:?}; flowtap: {}",
            flowtap.stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // One more periodic stats event and one more scrape of the same figures.
    std::thread::sleep(Duration::from_millis(2200));

    let q = |expr: &str| {
        prom.value(expr)
            .unwrap_or_else(|| panic!("no value for {expr}"))
    };
    assert_eq!(q("up{job=\"flowtap\"}"), 1);
    assert_eq!(
        q("count(flowtap_packets_received_total)"),
        2,
        "one series per worker"
    );
    let scraped = [
        ("packets.received", q("sum(flowtap_packets_received_total)")),
        ("packets.bytes", q("sum(flowtap_received_bytes_total)")),
        (
            "packets.flow",
            q("sum(flowtap_packet_fates_total{fate=\"flow\"})"),
        ),
        ("flows.created", q("sum(flowtap_flows_created_total)")),
        (
            "flows.expired",
            q("sum(flowtap_flows_ended_total{reason=\"timeout\"})"),
        ),
        ("events.flow", q("sum(flowtap_events_total{type=\"flow\"})")),
        ("events.http", q("sum(flowtap_events_total{type=\"http\"})")),
        ("events.dns", q("sum(flowtap_events_total{type=\"dns\"})")),
        ("events.tls", q("sum(flowtap_events_total{type=\"tls\"})")),
        (
            "stream.delivered_bytes",
            q("sum(flowtap_stream_delivered_bytes_total)"),
        ),
        ("app.detected", q("sum(flowtap_app_flows_detected_total)")),
        (
            "capture.received",
            q("flowtap_capture_packets_received_total"),
        ),
        (
            "capture.dropped.total",
            q("sum(flowtap_capture_packets_dropped_total)"),
        ),
        (
            "capture.output_events_dropped",
            q("flowtap_output_events_dropped_total"),
        ),
    ];
    eprintln!("scraped by Prometheus: {scraped:?}");
    let sink_sent = q("flowtap_sink_events_sent_total{sink=\"file\"}");
    assert_eq!(q("sum(flowtap_sink_events_dropped_total)"), 0);
    assert_eq!(
        q("flowtap_sink_info{sink=\"file\",kind=\"file\",schema=\"native\"}"),
        1
    );

    // The endpoint's own text: valid, and everything the dashboard needs.
    let (status, text) =
        http_get(&net.ns_b, METRICS_PORT, "/metrics").expect("flowtap's endpoint answers");
    assert!(status.contains(" 200"), "{status}");
    check_exposition(&text);

    let periodic = stats_events(&output)
        .last()
        .cloned()
        .expect("periodic stats events");

    sh(&["kill", "-INT", &flowtap.child.id().to_string()]);
    let t0 = Instant::now();
    let code = loop {
        if let Some(st) = flowtap.child.try_wait().expect("wait") {
            break st.code();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "flowtap did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(code, Some(0), "{}", flowtap.stderr());
    let events = stats_events(&output);
    let last = events.last().expect("final stats event");

    let at = |v: &Value, path: &str| -> u64 {
        let mut j = v;
        for k in path.split('.') {
            j = &j[k];
        }
        j.as_u64().unwrap_or_else(|| panic!("{path} in {v}"))
    };
    assert_eq!(at(&last["stats"], "packets.received"), sent, "{last}");
    assert_eq!(at(&last["stats"], "flows.ended_at_shutdown"), 0, "{last}");
    assert!(at(&last["stats"], "events.http") > 0, "{last}");
    assert!(at(&last["stats"], "events.dns") > 0, "{last}");
    assert!(at(&last["stats"], "events.tls") > 0, "{last}");
    for (path, value) in scraped {
        assert_eq!(
            at(&last["stats"], path),
            value,
            "final stats {path}: {last}"
        );
        assert_eq!(
            at(&periodic["stats"], path),
            value,
            "periodic stats {path}: {periodic}"
        );
    }
    // Stats events are themselves sent between the scrape and the event.
    let p = at(&periodic["stats"], "sinks.file.events_sent");
    assert!(
        p.abs_diff(sink_sent) <= 3,
        "sink events_sent {p} in the event vs {sink_sent} scraped"
    );
    let events_total = ["flow", "http", "dns", "tls"]
        .iter()
        .map(|t| at(&last["stats"], &format!("events.{t}")))
        .sum::<u64>();
    assert!(
        sink_sent >= events_total,
        "the file sink sent every event ({sink_sent} >= {events_total})"
    );
    drop(prom);
}
