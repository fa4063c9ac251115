//! Application metrics end to end: the real `flowtap` binary replays a
//! capture (W1 paced, corpus captures with DNS and SQL errors) with
//! `--metrics`, Debian's `prometheus` scrapes it every second inside a
//! throw-away network namespace, and what Prometheus' HTTP API answers
//! must equal what the same run's events add up to: DNS responses per
//! server and rcode, queries per server and type, latency histogram counts
//! and sums, HTTP requests per host, method and status class, body bytes,
//! TLS handshakes per version and SNI, TCP connections, attempts and
//! refusals per server, bytes per application protocol, every protocol's
//! transactions per outcome and its error codes. On W1 a DNS name limit far
//! below the number of names proves the label stays bounded and that
//! nothing is lost to the bound (`other` carries the rest).
//!
//! Needs root for the namespace (CI runs as root); without root the test
//! fails under CI and elsewhere prints a loud SKIPPED banner.

mod common;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::netpair::LoopbackNs;
use common::prometheus::*;
use common::*;

const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");
const METRICS_PORT: u16 = 9464;

/// Counts keyed by label values.
type Tally = BTreeMap<Vec<String>, f64>;

/// `sum by (labels) (expr)` as Prometheus answers it.
fn tally(prom: &Prometheus, expr: &str, labels: &[&str]) -> Tally {
    let q = format!("sum by ({}) ({expr})", labels.join(", "));
    prom.query(&q)
        .into_iter()
        .map(|(m, v)| {
            let key = labels
                .iter()
                .map(|l| m[*l].as_str().unwrap_or("").to_string())
                .collect();
            (key, v)
        })
        .collect()
}

fn add(t: &mut Tally, key: &[&str], n: f64) {
    *t.entry(key.iter().map(|s| s.to_string()).collect())
        .or_default() += n;
}

/// Equal tallies, leaving out zero entries (a series at 0 and no series
/// say the same).
fn assert_tally(what: &str, got: &Tally, want: &Tally) {
    let nz = |t: &Tally| -> Tally {
        t.iter()
            .filter(|(_, v)| **v != 0.0)
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    let (got, want) = (nz(got), nz(want));
    assert!(
        !want.is_empty(),
        "{what}: the events have nothing to compare"
    );
    for (k, w) in &want {
        let g = got.get(k).copied().unwrap_or(0.0);
        assert!(
            (g - w).abs() <= 1e-6 * w.abs().max(1.0),
            "{what} {k:?}: prometheus {g}, events {w}\nprometheus: {got:?}"
        );
    }
    for k in got.keys() {
        assert!(
            want.contains_key(k),
            "{what} {k:?}: in prometheus, not in the events"
        );
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn n(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Replays `pcap` with `config` (plus the metrics endpoint) in a namespace
/// while Prometheus scrapes it, waits until Prometheus holds the final
/// figures, and hands both (and the run's events) to `check`.
fn scraped_run(
    tag: &str,
    pcap: &Path,
    config: &str,
    pps: Option<u64>,
    check: impl FnOnce(&LoopbackNs, &Prometheus, &[Value]),
) {
    require("prometheus");
    let ns = LoopbackNs::new(&format!("m{tag}"));
    let dir = tmp_dir("app-metrics").join(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("flowtap.toml");
    std::fs::write(&cfg, config).expect("config");
    let events_path = dir.join("events.json");
    let prom = Prometheus::start(&ns.0, &dir, METRICS_PORT);
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &ns.0,
        FLOWTAP,
        "run",
        "-q",
        "--no-progress",
        "--workers",
        "2",
    ])
    .arg("--pcap")
    .arg(pcap)
    .arg("--config")
    .arg(&cfg)
    .arg("-o")
    .arg(&events_path)
    .args(["--metrics", &format!("127.0.0.1:{METRICS_PORT}")])
    .args(["--metrics-linger", "60"]);
    if let Some(pps) = pps {
        cmd.args(["--pps", &pps.to_string()]);
    }
    let flowtap = Proc::spawn(cmd);
    // The replay is over when its final stats event is written (the
    // endpoint then lingers).
    let t0 = Instant::now();
    let events: Vec<Value> = loop {
        let text = std::fs::read_to_string(&events_path).unwrap_or_default();
        if text.contains("\"event_type\":\"stats\"") && text.ends_with('\n') {
            break text
                .lines()
                .map(|l| serde_json::from_str(l).expect("JSON line"))
                .collect();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "replay did not finish: {}",
            flowtap.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let stats = events
        .iter()
        .find(|e| e["event_type"] == "stats")
        .expect("stats event");
    let received = n(&stats["stats"]["packets"]["received"]);
    let records = n(&stats["stats"]["flows"]["records"]);
    // Prometheus holds the final figures once it scraped after the end.
    let t0 = Instant::now();
    loop {
        let got = prom
            .value("sum(flowtap_packets_received_total)")
            .unwrap_or(0) as f64;
        let flows = prom
            .value("sum(flowtap_app_proto_flows_total)")
            .unwrap_or(0) as f64;
        if got == received && flows == records {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "prometheus has {got} of {received} packets, {flows} of {records} flows: {}",
            flowtap.stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The endpoint's text passes promtool (histograms included).
    let (status, text) = http_get(&ns.0, METRICS_PORT, "/metrics").expect("/metrics answers");
    assert!(status.contains(" 200"), "{status}");
    promtool_check(&text);
    check(&ns, &prom, &events);
    drop(flowtap);
}

/// What every run must show, whatever the capture: each metric equals the
/// sum of the events it counts.
fn check_against_events(prom: &Prometheus, events: &[Value], dns_names_bounded: bool) {
    // Transactions per protocol and outcome; error codes.
    let mut want = Tally::new();
    let mut codes = Tally::new();
    for e in events {
        let t = s(e, "event_type");
        if t == "flow" || t == "stats" {
            continue;
        }
        let ev = &e[t];
        let outcome = match t {
            "http" => {
                if n(&ev["status"]) >= 500.0 {
                    add(&mut codes, &[t, &ev["status"].to_string()], 1.0);
                    "error"
                } else if ev.get("status").is_some() {
                    "ok"
                } else {
                    "unanswered"
                }
            }
            "dns" => {
                if ev["has_response"] == true {
                    "ok"
                } else {
                    "unanswered"
                }
            }
            "tls" => {
                if ev.get("version").is_some() {
                    "ok"
                } else {
                    "unanswered"
                }
            }
            "pgsql" => {
                if let Some(c) = ev["error"]["code"].as_str() {
                    add(&mut codes, &[t, c], 1.0);
                    "error"
                } else if ev["unanswered"] == true {
                    "unanswered"
                } else {
                    "ok"
                }
            }
            "mysql" => {
                if let Some(c) = ev["error"]["code"].as_u64() {
                    add(&mut codes, &[t, &c.to_string()], 1.0);
                    "error"
                } else if ev["unanswered"] == true {
                    "unanswered"
                } else {
                    "ok"
                }
            }
            _ => continue,
        };
        add(&mut want, &[t, outcome], 1.0);
    }
    let got = tally(
        prom,
        "flowtap_app_transactions_total",
        &["proto", "outcome"],
    );
    assert_tally("transactions by protocol and outcome", &got, &want);
    if !codes.is_empty() {
        let got = tally(
            prom,
            "flowtap_app_transaction_errors_total",
            &["proto", "code"],
        );
        assert_tally("error codes", &got, &codes);
    }

    // Bytes, packets and flows per application protocol.
    let (mut bytes, mut flows, mut talkers) = (Tally::new(), Tally::new(), Tally::new());
    for e in events.iter().filter(|e| e["event_type"] == "flow") {
        let proto = e["app_proto"].as_str().unwrap_or("unknown");
        let f = &e["flow"];
        let (up, down) = (n(&f["bytes_toserver"]), n(&f["bytes_toclient"]));
        add(&mut bytes, &[proto, "toserver"], up);
        add(&mut bytes, &[proto, "toclient"], down);
        add(&mut flows, &[proto], 1.0);
        add(&mut talkers, &[s(e, "src_ip"), "sent"], up);
        add(&mut talkers, &[s(e, "src_ip"), "received"], down);
        add(&mut talkers, &[s(e, "dest_ip"), "sent"], down);
        add(&mut talkers, &[s(e, "dest_ip"), "received"], up);
    }
    let got = tally(prom, "flowtap_host_bytes_total", &["host", "direction"]);
    assert_tally("bytes per address (top talkers)", &got, &talkers);
    let got = tally(
        prom,
        "flowtap_app_proto_bytes_total",
        &["proto", "direction"],
    );
    assert_tally("bytes per application protocol", &got, &bytes);
    let got = tally(prom, "flowtap_app_proto_flows_total", &["proto"]);
    assert_tally("flows per application protocol", &got, &flows);

    // TCP per server endpoint.
    let (mut conns, mut attempts, mut refused, mut delays, mut art) = Default::default();
    for e in events
        .iter()
        .filter(|e| e["event_type"] == "flow" && e["proto"] == "TCP")
    {
        let (server, port) = (s(e, "dest_ip"), e["dest_port"].to_string());
        let key = [server, port.as_str()];
        let t = &e["tcp"];
        add(&mut conns, &key, 1.0);
        if n(&t["toserver"]["syn"]) > 0.0 {
            add(&mut attempts, &key, 1.0);
            if n(&t["toclient"]["syn_ack"]) == 0.0 && n(&t["toclient"]["rst"]) > 0.0 {
                add(&mut refused, &key, 1.0);
            }
        }
        if t.get("server_delay_us").is_some() {
            add(&mut delays, &key, 1.0);
        }
        add(&mut art, &key, n(&t["app_response_count"]));
    }
    let by = ["server", "port"];
    let conns: Tally = conns;
    if !conns.is_empty() {
        assert_tally(
            "TCP connections",
            &tally(prom, "flowtap_tcp_connections_total", &by),
            &conns,
        );
        assert_tally(
            "TCP attempts",
            &tally(prom, "flowtap_tcp_connection_attempts_total", &by),
            &attempts,
        );
        let got = tally(prom, "flowtap_tcp_connections_refused_total", &by);
        if refused.is_empty() {
            assert!(got.values().all(|v| *v == 0.0), "refused: {got:?}");
        } else {
            assert_tally("TCP refused", &got, &refused);
        }
        assert_tally(
            "TCP server delay observations",
            &tally(
                prom,
                "flowtap_tcp_server_handshake_delay_seconds_count",
                &by,
            ),
            &delays,
        );
        let art: Tally = art;
        if art.values().any(|v| *v > 0.0) {
            assert_tally(
                "TCP application response observations",
                &tally(prom, "flowtap_tcp_app_response_seconds_count", &by),
                &art,
            );
        }
    }

    // DNS per server.
    let (mut responses, mut queries, mut latency_n, mut latency_s, mut names) = Default::default();
    let mut unanswered = 0.0;
    for e in events.iter().filter(|e| e["event_type"] == "dns") {
        let d = &e["dns"];
        let server = s(e, "dest_ip");
        let qtype = d["queries"][0]["rrtype"].as_str().unwrap_or("none");
        if d["has_query"] == true {
            add(&mut queries, &[server, qtype], 1.0);
            if let Some(name) = d["queries"][0]["rrname"].as_str() {
                add(&mut names, &[name], 1.0);
            }
        }
        if d["has_response"] == true {
            let rcode = d["rcode"].as_str().unwrap_or("none");
            add(&mut responses, &[server, rcode], 1.0);
        } else if d["has_query"] == true {
            unanswered += 1.0;
        }
        if let Some(us) = d["latency_us"].as_f64() {
            add(&mut latency_n, &[server], 1.0);
            add(&mut latency_s, &[server], us / 1e6);
        }
    }
    let responses: Tally = responses;
    if !responses.is_empty() {
        assert_tally(
            "DNS responses by server and rcode",
            &tally(prom, "flowtap_dns_responses_total", &["server", "rcode"]),
            &responses,
        );
        assert_tally(
            "DNS queries by server and type",
            &tally(prom, "flowtap_dns_queries_total", &["server", "qtype"]),
            &queries,
        );
        assert_tally(
            "DNS latency observations",
            &tally(prom, "flowtap_dns_latency_seconds_count", &["server"]),
            &latency_n,
        );
        // Events carry whole microseconds; the histogram sums nanoseconds.
        let got = tally(prom, "flowtap_dns_latency_seconds_sum", &["server"]);
        let latency_s: Tally = latency_s;
        for (k, w) in &latency_s {
            let g = got.get(k).copied().unwrap_or(0.0);
            let per = latency_n.get(k).copied().unwrap_or(1.0);
            assert!(
                (g - w).abs() <= 1e-6 * per + 1e-9,
                "DNS latency sum {k:?}: {g} vs {w}"
            );
        }
        let got = prom.value("sum(flowtap_dns_unanswered_total)").unwrap_or(0) as f64;
        assert_eq!(got, unanswered, "unanswered DNS queries");
        let names: Tally = names;
        let got = tally(prom, "flowtap_dns_query_names_total", &["name"]);
        let total: f64 = names.values().sum();
        assert_eq!(
            got.values().sum::<f64>(),
            total,
            "every DNS query is counted once, named or under other"
        );
        if dns_names_bounded {
            // Kept names never count more than their events; the rest is in other.
            for (k, g) in got.iter().filter(|(k, _)| k[0] != "other") {
                let w = names.get(k).copied().unwrap_or(0.0);
                assert!(*g <= w, "name {k:?}: {g} > {w} events");
            }
            assert!(
                got.contains_key(&vec!["other".to_string()]),
                "no other bucket: {got:?}"
            );
        } else {
            assert_tally("DNS names", &got, &names);
        }
    }

    // HTTP per host.
    let (mut requests, mut req_body, mut resp_body, mut http_latency) = Default::default();
    for e in events.iter().filter(|e| e["event_type"] == "http") {
        let h = &e["http"];
        let host = h["host"].as_str().unwrap_or(s(e, "dest_ip"));
        let method = h["method"].as_str().unwrap_or("none");
        let class = match h["status"].as_u64() {
            None => "none".to_string(),
            Some(st) => format!("{}xx", st / 100),
        };
        add(&mut requests, &[host, method, &class], 1.0);
        add(&mut req_body, &[host], n(&h["request_body_len"]));
        add(&mut resp_body, &[host], n(&h["response_body_len"]));
        if h.get("latency_us").is_some() {
            add(&mut http_latency, &[host], 1.0);
        }
    }
    let requests: Tally = requests;
    if !requests.is_empty() {
        assert_tally(
            "HTTP requests by host, method and status class",
            &tally(
                prom,
                "flowtap_http_requests_total",
                &["host", "method", "status_class"],
            ),
            &requests,
        );
        assert_tally(
            "HTTP response body bytes",
            &tally(prom, "flowtap_http_response_body_bytes_total", &["host"]),
            &resp_body,
        );
        let req_body: Tally = req_body;
        if req_body.values().any(|v| *v > 0.0) {
            assert_tally(
                "HTTP request body bytes",
                &tally(prom, "flowtap_http_request_body_bytes_total", &["host"]),
                &req_body,
            );
        }
        assert_tally(
            "HTTP latency observations",
            &tally(prom, "flowtap_http_latency_seconds_count", &["host"]),
            &http_latency,
        );
    }

    // TLS by version and SNI.
    let (mut versions, mut sni) = Default::default();
    for e in events.iter().filter(|e| e["event_type"] == "tls") {
        let t = &e["tls"];
        add(
            &mut versions,
            &[t["version"].as_str().unwrap_or("none")],
            1.0,
        );
        if let Some(name) = t["sni"].as_str() {
            add(&mut sni, &[name], 1.0);
        }
    }
    let versions: Tally = versions;
    if !versions.is_empty() {
        assert_tally(
            "TLS handshakes by version",
            &tally(prom, "flowtap_tls_handshakes_total", &["version"]),
            &versions,
        );
        let sni: Tally = sni;
        let got: Tally = tally(prom, "flowtap_tls_sni_total", &["sni"])
            .into_iter()
            .filter(|(k, _)| k[0] != "none")
            .collect();
        assert_tally("TLS SNI", &got, &sni);
    }
}

/// Per worker, no bounded label has more series than its limit plus `other`.
fn assert_bounded(prom: &Prometheus, metric: &str, label: &str, limit: usize) {
    let per_worker = prom.query(&format!(
        "count by (worker) (count by (worker, {label}) ({metric}))"
    ));
    assert!(!per_worker.is_empty(), "{metric}: no series");
    for (m, v) in per_worker {
        assert!(
            v as usize <= limit + 1,
            "{metric} worker {}: {v} values of {label}, limit {limit} + other",
            m["worker"]
        );
    }
}

/// Every query of the application dashboards (deploy/grafana/flowtap-*.json)
/// is accepted by Prometheus, with Grafana's variables filled in, and most
/// of them find series in W1.
fn dashboard_queries_run(prom: &Prometheus) {
    // rate() needs two samples of a series: series that first appeared in
    // the final scrape (flows counted at their end) need one more.
    let t0 = Instant::now();
    for metric in [
        "flowtap_app_proto_flows_total",
        "flowtap_tcp_connections_total",
        "flowtap_host_bytes_total",
        "flowtap_app_transactions_total",
        "flowtap_dns_query_names_total",
        "flowtap_http_requests_total",
        "flowtap_tls_sni_total",
    ] {
        let q = format!("min(count_over_time({metric}[1m]))");
        while prom.value(&q).unwrap_or(0) < 2 {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{metric}: fewer than two samples per series after 20 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana");
    let (mut queries, mut answered) = (0, 0);
    for entry in std::fs::read_dir(&dir).expect("deploy/grafana") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with("flowtap-") || !name.ends_with(".json") {
            continue;
        }
        let dash: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
            .expect("dashboard JSON");
        for panel in dash["panels"].as_array().expect("panels") {
            for t in panel["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"]
                    .as_str()
                    .expect("expr")
                    .replace("$__rate_interval", "1m")
                    .replace("$__range", "5m")
                    .replace("$instance", ".*")
                    .replace("$server", ".*")
                    .replace("$host", ".*")
                    .replace("$proto", ".*");
                // `query` asserts that Prometheus accepted the expression.
                queries += 1;
                if !prom.query(&expr).is_empty() {
                    answered += 1;
                }
            }
        }
    }
    eprintln!("{answered} of {queries} dashboard queries found series in W1");
    assert!(queries >= 40, "{queries} dashboard queries");
    assert!(
        answered * 3 >= queries * 2,
        "only {answered} of {queries} dashboard queries found series in W1"
    );
}

fn corpus_capture(rel: &str) -> PathBuf {
    let p = corpus().join(rel);
    assert!(p.exists(), "{} missing", p.display());
    p
}

/// W1, paced, two workers: every figure equals the events' sums; the DNS
/// name label is held to 20 values per worker while W1 queries hundreds.
#[test]
fn prometheus_scrapes_application_metrics_equal_to_the_events_of_w1() {
    require_root!("network namespaces");
    let w1 = bench_pcap(30_000);
    let config = "[app_metrics]\ndns_names = 20\nhttp_hosts = 100000\ntls_sni = 100000\ntcp_servers = 100000\nhosts = 100000\n";
    scraped_run("w1", &w1, config, Some(10_000), |_, prom, events| {
        check_against_events(prom, events, true);
        assert_bounded(prom, "flowtap_dns_query_names_total", "name", 20);
        let folded = prom
            .value("sum(flowtap_app_metric_label_folded_total{label=\"dns_name\"})")
            .unwrap_or(0);
        assert!(folded > 0, "W1 has more names than 20: some must fold");
        let distinct: std::collections::BTreeSet<&str> = events
            .iter()
            .filter_map(|e| e["dns"]["queries"][0]["rrname"].as_str())
            .collect();
        assert!(distinct.len() > 100, "W1 queries {} names", distinct.len());
        dashboard_queries_run(prom);
    });
}

/// NXDOMAIN answers (a corpus capture) show up per server and rcode.
#[test]
fn prometheus_scrapes_dns_error_codes() {
    require_root!("network namespaces");
    let pcap = corpus_capture("dns/sv-dns-eve-v2-udp-nxdomain-soa--dns-udp-nxdomain-soa.pcap");
    scraped_run("dns", &pcap, "", None, |_, prom, events| {
        check_against_events(prom, events, false);
        let nx = prom
            .value("sum(flowtap_dns_responses_total{rcode=\"NXDOMAIN\",server=\"8.8.4.4\"})")
            .unwrap_or(0);
        assert_eq!(nx, 1, "the capture's one NXDOMAIN answer from 8.8.4.4");
    });
}

/// SQL errors (a corpus capture: divisions by zero, then statements in
/// the aborted transaction) show up with their SQLSTATE codes.
#[test]
fn prometheus_scrapes_sql_error_codes() {
    require_root!("network namespaces");
    let pcap = corpus_capture("postgresql/sv-pgsql.pgsql-simple-query-rollback--input.pcap");
    scraped_run("pgsql", &pcap, "", None, |_, prom, events| {
        check_against_events(prom, events, false);
        let div0 = prom
            .value("sum(flowtap_app_transaction_errors_total{proto=\"pgsql\",code=\"22012\"})")
            .unwrap_or(0);
        let want = events
            .iter()
            .filter(|e| e["pgsql"]["error"]["code"] == "22012")
            .count() as u64;
        assert!(want > 0, "the capture divides by zero");
        assert_eq!(div0, want, "divisions by zero");
        let selects = prom
            .value("sum(flowtap_app_transactions_total{proto=\"pgsql\",operation=\"SELECT\"})")
            .unwrap_or(0);
        let want = events
            .iter()
            .filter(|e| {
                e["pgsql"]["statement"]
                    .as_str()
                    .is_some_and(|s| s.trim_start().to_ascii_uppercase().starts_with("SELECT"))
            })
            .count() as u64;
        assert!(want > 0);
        assert_eq!(selects, want, "SELECT statements");
    });
}
