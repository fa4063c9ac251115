//! The syslog sinks against a real rsyslogd: RFC 5424 over UDP, over TCP
//! with octet counting, and over TLS (gtls). The real `flowtap` binary
//! replays corpus captures with HTTP, DNS and TLS events to the collector and,
//! in the same run, to a file in the same schema; every message rsyslog
//! parsed must carry flowtap's header fields and exactly the file's line.

mod collectors;

use std::path::{Path, PathBuf};
use std::time::Duration;

use collectors::*;
use serde_json::Value;

const HOST: &str = "probe-7";

/// One syslog sink of a run and where its messages and its file twin land.
struct Leg {
    name: String,
    schema: &'static str,
    udp: bool,
    port: u16,
    /// What rsyslog wrote (one JSON object per message).
    collected: PathBuf,
    /// The file sink of the same schema, one per flowtap run.
    files: Vec<PathBuf>,
}

impl Leg {
    fn new(dir: &Path, schema: &'static str, udp: bool) -> Leg {
        let proto = if udp { "udp" } else { "tcp" };
        let name = format!("syslog-{proto}-{schema}");
        Leg {
            collected: dir.join(format!("{name}.collected.json")),
            name,
            schema,
            udp,
            port: free_port(udp),
            files: Vec::new(),
        }
    }

    fn input(&self, extra: &str) -> String {
        if self.udp {
            format!(
                "input(type=\"imudp\" address=\"127.0.0.1\" port=\"{}\" ruleset=\"{}\" rcvbufSize=\"16m\")\n",
                self.port, self.name
            )
        } else {
            format!(
                "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{}\" ruleset=\"{}\" {extra})\n",
                self.port, self.name
            )
        }
    }

    fn url(&self, query: &str) -> String {
        let scheme = if self.udp { "syslog+udp" } else { "syslog+tcp" };
        format!(
            "{scheme}://127.0.0.1:{}?schema={}&name={}{query}",
            self.port, self.schema, self.name
        )
    }

    /// The file lines of every run, in order.
    fn file_lines(&self) -> Vec<String> {
        self.files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Checks the RFC 5424 header of every collected message and returns the
/// MSG parts.
fn messages(leg: &Leg, collected: &[Value], pids: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(collected.len());
    for (i, c) in collected.iter().enumerate() {
        let what = format!("{} message {i}: {c}", leg.name);
        assert_eq!(c["pri"], "134", "{what}: PRI local0.info");
        assert_eq!(c["protocol_version"], "1", "{what}");
        assert_eq!(c["hostname"], HOST, "{what}");
        assert_eq!(c["app_name"], "flowtap", "{what}");
        assert_eq!(c["structured_data"], "-", "{what}");
        let procid = c["procid"].as_str().unwrap_or_default();
        assert!(
            pids.iter().any(|p| p == procid),
            "{what}: PROCID {procid} is no flowtap run's pid {pids:?}"
        );
        let msgid = c["msgid"].as_str().unwrap_or_default();
        let msg = c["msg"].as_str().unwrap_or_default().to_string();
        if leg.schema == "nutanix" {
            assert_eq!(msgid, "flow", "{what}");
        } else {
            let v: Value = serde_json::from_str(&msg)
                .unwrap_or_else(|e| panic!("{what}: MSG is not JSON ({e})"));
            let (kind, ts) = match leg.schema {
                "ecs" => (
                    v["event"]["dataset"]
                        .as_str()
                        .and_then(|d| d.strip_prefix("flowtap."))
                        .map(String::from),
                    v["@timestamp"].as_str().map(String::from),
                ),
                "native" => (
                    v["event_type"].as_str().map(String::from),
                    v["timestamp"].as_str().map(String::from),
                ),
                _ => (v["event_type"].as_str().map(String::from), None),
            };
            if let Some(kind) = kind {
                assert_eq!(msgid, kind, "{what}: MSGID is the event type");
            }
            if let Some(ts) = ts {
                assert_eq!(
                    c["timestamp"].as_str(),
                    Some(ts.as_str()),
                    "{what}: TIMESTAMP is the event's"
                );
            }
        }
        out.push(msg);
    }
    out
}

#[test]
fn syslog_udp_and_tcp_carry_every_event_of_every_schema() {
    let dir = temp_dir("syslog");
    let mut legs: Vec<Leg> = ["native", "ecs", "eve", "nanocorp", "nutanix"]
        .into_iter()
        .map(|s| Leg::new(&dir, s, false))
        .collect();
    legs.push(Leg::new(&dir, "native", true));
    legs.push(Leg::new(&dir, "ecs", true));
    let mut conf = rsyslog_preamble(&dir);
    conf.push_str("module(load=\"imudp\")\nmodule(load=\"imtcp\")\n");
    for l in &legs {
        conf.push_str(&syslog_ruleset(&l.name, &l.collected));
        conf.push_str(&l.input(""));
    }
    let listen: Vec<(u16, bool)> = legs.iter().map(|l| (l.port, l.udp)).collect();
    let mut rs = Rsyslog::start(&dir, &conf, &listen);
    let cfg = config_with_host(&dir, HOST);

    let mut pids = Vec::new();
    for (n, capture) in CAPTURES.iter().enumerate() {
        let mut args = vec![
            "--pcap".to_string(),
            corpus(capture).display().to_string(),
            "--workers".into(),
            "1".into(),
            "--config".into(),
            cfg.display().to_string(),
        ];
        for l in &mut legs {
            let f = dir.join(format!("{}.{n}.file.json", l.name));
            args.push("--output".into());
            args.push(l.url(""));
            args.push("--output".into());
            args.push(format!("{}?schema={}", f.display(), l.schema));
            l.files.push(f);
        }
        let child = Flowtap::start(&args);
        pids.push(child.pid().to_string());
        let run = child.wait(Duration::from_secs(60));
        assert!(run.ok, "flowtap failed:\n{}", run.stderr);
        for l in &legs {
            let c = run.sink(&l.name);
            assert_eq!(c["dropped"], 0, "{}: {}", l.name, run.stderr);
        }
    }
    for l in &legs {
        let want = l.file_lines().len();
        wait_lines(&l.collected, want, Duration::from_secs(20));
    }
    rs.stop();
    for l in &legs {
        let want = l.file_lines();
        // nutanix has flow records only
        let least = if l.schema == "nutanix" { 200 } else { 400 };
        assert!(want.len() > least, "{}: only {} events", l.name, want.len());
        let got = messages(l, &read_json_lines(&l.collected), &pids);
        if l.udp {
            // Datagrams on loopback: all arrive, in any order.
            let mut g = got.clone();
            let mut w = want.clone();
            g.sort();
            w.sort();
            assert_eq!(g.len(), w.len(), "{}: events arrived vs written", l.name);
            for (a, b) in g.iter().zip(&w) {
                assert_eq!(a, b, "{}", l.name);
            }
        } else {
            // One stream, one worker: the file's order exactly.
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_eq!(a, b, "{} event {i}", l.name);
            }
            assert_eq!(
                got.len(),
                want.len(),
                "{}: events arrived vs written",
                l.name
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn syslog_over_tls_with_and_without_a_client_certificate() {
    let dir = temp_dir("syslog-tls");
    let pki = Pki::make(&dir);
    let anon = Leg::new(&dir, "native", false);
    let mut mutual = Leg::new(&dir, "ecs", false);
    mutual.name = "syslog-tls-client-cert".into();
    mutual.collected = dir.join("mutual.collected.json");
    let mut conf = rsyslog_preamble(&dir);
    conf.push_str("module(load=\"imtcp\")\n");
    conf.push_str(&syslog_ruleset(&anon.name, &anon.collected));
    conf.push_str(&anon.input(&pki.rsyslog_tls("anon")));
    conf.push_str(&syslog_ruleset(&mutual.name, &mutual.collected));
    conf.push_str(&mutual.input(&pki.rsyslog_tls("x509/certvalid")));
    let mut rs = Rsyslog::start(&dir, &conf, &[(anon.port, false), (mutual.port, false)]);
    let cfg = dir.join("flowtap.toml");
    // The mutual-TLS sink comes from the config file's [[output.sinks]].
    std::fs::write(
        &cfg,
        format!(
            "[output]\nhost = \"{HOST}\"\n[[output.sinks]]\nurl = \"{}\"\ntls = true\ntls_ca = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\ntls_server_name = \"collector.test\"\n[[output.sinks]]\nurl = \"{}\"\n[[output.sinks]]\nurl = \"{}?schema=ecs\"\n[[output.sinks]]\nurl = \"{}?schema=native\"\n",
            mutual.url(""),
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display(),
            anon.url(&format!("&tls=true&ca={}", pki.ca.display())),
            dir.join("mutual.file.json").display(),
            dir.join("anon.file.json").display(),
        ),
    )
    .expect("config");
    mutual.files.push(dir.join("mutual.file.json"));
    let mut anon = anon;
    anon.files.push(dir.join("anon.file.json"));
    let child = Flowtap::start(&[
        "--pcap".into(),
        corpus(CAPTURES[0]).display().to_string(),
        "--workers".into(),
        "1".into(),
        "--config".into(),
        cfg.display().to_string(),
    ]);
    let pid = child.pid().to_string();
    let run = child.wait(Duration::from_secs(60));
    assert!(run.ok, "flowtap failed:\n{}", run.stderr);
    for l in [&anon, &mutual] {
        let want = l.file_lines();
        wait_lines(&l.collected, want.len(), Duration::from_secs(20));
    }
    rs.stop();
    for l in [&anon, &mutual] {
        let want = l.file_lines();
        let got = messages(
            l,
            &read_json_lines(&l.collected),
            std::slice::from_ref(&pid),
        );
        assert!(want.len() > 300, "{}: {} events", l.name, want.len());
        assert_eq!(
            got, want,
            "{}: the TLS stream carries the file's lines",
            l.name
        );
        assert_eq!(run.sink(&l.name)["connect failures"], 0, "{}", run.stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_ca_is_a_named_error_counted_as_connect_failures() {
    let dir = temp_dir("syslog-badca");
    let pki = Pki::make(&dir);
    let leg = Leg::new(&dir, "native", false);
    let mut conf = rsyslog_preamble(&dir);
    conf.push_str("module(load=\"imtcp\")\n");
    conf.push_str(&syslog_ruleset(&leg.name, &leg.collected));
    conf.push_str(&leg.input(&pki.rsyslog_tls("anon")));
    let mut rs = Rsyslog::start(&dir, &conf, &[(leg.port, false)]);
    let file = dir.join("file.json");
    // A short replay (paced, so that the sink retries a few times) with a
    // CA that did not sign the collector's certificate: every event of the
    // sink is lost, so the status is 3.
    let run = run_flowtap_status(
        &[
            "--pcap".into(),
            corpus(CAPTURES[1]).display().to_string(),
            "--workers".into(),
            "1".into(),
            "--pps".into(),
            "100".into(),
            "--output".into(),
            leg.url(&format!(
                "&tls=true&ca={}&when_full=drop",
                pki.other_ca.display()
            )),
            "--output".into(),
            file.display().to_string(),
        ],
        3,
    );
    let c = run.sink(&leg.name);
    assert!(
        run.stderr.contains(&format!(
            "sink {}: TLS with 127.0.0.1:{} failed: invalid peer certificate: UnknownIssuer",
            leg.name, leg.port
        )),
        "the error names the sink, the collector and the reason:\n{}",
        run.stderr
    );
    assert!(c["connect failures"] >= 2, "retried with backoff: {c:?}");
    assert_eq!(c["sent"], 0, "{c:?}");
    let written = read_json_lines(&file).len() as u64;
    assert!(written > 20);
    assert_eq!(
        c["dropped"], written,
        "every event the file got is counted lost for the TLS sink: {c:?}"
    );
    rs.stop();
    assert_eq!(count_lines(&leg.collected), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
