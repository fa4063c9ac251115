//! The GELF sinks against independent decoders: GELF TCP (NUL-delimited,
//! plain and TLS) into rsyslogd's imtcp with mmjsonparse, and GELF UDP
//! (plain, zlib and gzip, chunked) into the graygelf npm package. The real
//! `flowtap` binary replays corpus captures with HTTP, DNS and TLS events to
//! the collectors and, in the same run, to a file in the GELF schema; every
//! message the collector decoded must equal the file's event field for field.

mod collectors;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use collectors::*;
use serde_json::Value;

fn base_args(capture: &str, cfg: &std::path::Path) -> Vec<String> {
    vec![
        "--pcap".into(),
        corpus(capture).display().to_string(),
        "--workers".into(),
        "1".into(),
        "--config".into(),
        cfg.display().to_string(),
    ]
}

#[test]
fn gelf_tcp_plain_and_tls_into_rsyslog_mmjsonparse() {
    let dir = temp_dir("gelf-tcp");
    let pki = Pki::make(&dir);
    let (plain_port, tls_port) = (free_port(false), free_port(false));
    let (plain_out, tls_out) = (
        dir.join("plain.collected.json"),
        dir.join("tls.collected.json"),
    );
    let mut conf = rsyslog_preamble(&dir);
    conf.push_str("module(load=\"imtcp\")\n");
    conf.push_str(&gelf_ruleset("gelf_plain", &plain_out));
    conf.push_str(&gelf_ruleset("gelf_tls", &tls_out));
    // GELF TCP: each message ends with NUL; no octet counting.
    let framing = "AddtlFrameDelimiter=\"0\" SupportOctetCountedFraming=\"off\"";
    conf.push_str(&format!(
        "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{plain_port}\" ruleset=\"gelf_plain\" {framing})\n"
    ));
    conf.push_str(&format!(
        "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tls_port}\" ruleset=\"gelf_tls\" {framing} {})\n",
        pki.rsyslog_tls("anon")
    ));
    let mut rs = Rsyslog::start(&dir, &conf, &[(plain_port, false), (tls_port, false)]);
    let cfg = config_with_host(&dir, "probe-gelf");
    let mut files: Vec<PathBuf> = Vec::new();
    for (n, capture) in CAPTURES.iter().enumerate() {
        let file = dir.join(format!("file.{n}.json"));
        let mut args = base_args(capture, &cfg);
        args.extend([
            "--output".into(),
            format!("gelf+tcp://127.0.0.1:{plain_port}?name=gelf-tcp"),
            "--output".into(),
            format!(
                "gelf+tcp://localhost:{tls_port}?name=gelf-tls&tls=true&ca={}&server_name=collector.test",
                pki.ca.display()
            ),
            "--output".into(),
            format!("{}?schema=gelf", file.display()),
        ]);
        let run = run_flowtap(&args);
        for name in ["gelf-tcp", "gelf-tls"] {
            let c = run.sink(name);
            assert_eq!(c["dropped"], 0, "{name}: {}", run.stderr);
            assert_eq!(c["connect failures"], 0, "{name}: {}", run.stderr);
        }
        files.push(file);
    }
    let want: Vec<Value> = files.iter().flat_map(|f| read_json_lines(f)).collect();
    assert!(want.len() > 400, "{} events", want.len());
    for out in [&plain_out, &tls_out] {
        wait_lines(out, want.len(), Duration::from_secs(20));
    }
    rs.stop();
    for (out, what) in [(&plain_out, "gelf+tcp"), (&tls_out, "gelf+tcp with TLS")] {
        let bad = out.with_extension("json.bad");
        assert!(
            !bad.exists(),
            "{what}: rsyslog could not parse some messages:\n{}",
            std::fs::read_to_string(&bad).unwrap_or_default()
        );
        let got = read_json_lines(out);
        assert_same_sequence(&got, &want, what);
    }
    assert!(
        want.iter()
            .all(|e| e["host"] == "probe-gelf" && e["version"] == "1.1"),
        "GELF host and version"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bytes of `line` once gzip-compressed the way the sink does it.
fn gzip_len(line: &[u8]) -> usize {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(line).expect("gzip");
    e.finish().expect("gzip").len()
}

#[test]
fn gelf_udp_plain_zlib_and_gzip_chunked_into_graygelf() {
    let dir = temp_dir("gelf-udp");
    let cfg = config_with_host(&dir, "probe-udp");
    // One graygelf server per sink; a chunk size of 512 bytes makes every
    // event over 500 bytes (plain) or whose compressed form is (gzip, zlib)
    // travel in several datagrams.
    let cases = [("plain", "none"), ("zlib", "zlib"), ("gzip", "gzip")];
    let servers: Vec<GelfUdpServer> = cases
        .iter()
        .map(|(name, _)| {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).expect("dir");
            GelfUdpServer::start(&d)
        })
        .collect();
    let mut files = Vec::new();
    for (n, capture) in CAPTURES.iter().enumerate() {
        let file = dir.join(format!("file.{n}.json"));
        let mut args = base_args(capture, &cfg);
        // Paced and in small batches: UDP has no flow control, and a burst
        // larger than the collector's socket buffer would be dropped by the
        // kernel (that is UDP, not what this test is about).
        args.extend(["--pps".into(), "4000".into()]);
        for ((name, compress), srv) in cases.iter().zip(&servers) {
            args.push("--output".into());
            args.push(format!(
                "gelf+udp://127.0.0.1:{}?name=gelf-udp-{name}&compress={compress}&chunk_size=512&batch_events=4",
                srv.port
            ));
        }
        args.push("--output".into());
        args.push(format!("{}?schema=gelf", file.display()));
        let run = run_flowtap(&args);
        for (name, _) in &cases {
            let c = run.sink(&format!("gelf-udp-{name}"));
            assert_eq!(c["dropped"], 0, "{name}: {}", run.stderr);
        }
        files.push(file);
    }
    let want: Vec<Value> = files.iter().flat_map(|f| read_json_lines(f)).collect();
    let lines: Vec<String> = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(want.len() > 400, "{} events", want.len());
    let chunked_plain = lines.iter().filter(|l| l.len() > 500).count();
    let chunked_gzip = lines
        .iter()
        .filter(|l| gzip_len(l.as_bytes()) > 500)
        .count();
    let largest = lines.iter().map(String::len).max().unwrap_or(0);
    assert!(
        chunked_plain > 100,
        "{chunked_plain} plain events need chunks"
    );
    assert!(chunked_gzip >= 1, "{chunked_gzip} gzip events need chunks");
    assert!(largest > 3000, "largest event {largest} bytes: 7+ chunks");
    for ((name, _), srv) in cases.iter().zip(&servers) {
        wait_lines(&srv.out, want.len(), Duration::from_secs(20));
        let got = read_json_lines(&srv.out);
        let errors: Vec<&Value> = got
            .iter()
            .filter(|v| v.get("decode_error").is_some())
            .collect();
        assert!(errors.is_empty(), "{name}: graygelf errors {errors:?}");
        assert_same_events(&got, &want, &format!("gelf+udp {name}"));
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}
