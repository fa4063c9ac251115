//! Collector outages during a replay, against a real rsyslogd: what the TCP
//! sinks guarantee (see output/src/sink/net.rs), checked event by event
//! against the file output of the same run.
//!
//! - Paused collector (SIGSTOP, then SIGCONT): the kernel buffers fill, the
//!   sink's write times out and it marks the collector stalled. With a spool
//!   every event arrives exactly once and in order; without one, the events
//!   that are missing are exactly those the drop counter counts.
//! - Stopped and restarted collector (SIGTERM, start again): plain TCP has
//!   no application ack, so bytes the kernel accepted before the collector
//!   went away may be lost without flowtap knowing. What arrives is in
//!   order and never duplicated; the missing events (if any) are one run at
//!   the moment of the stop, no more than the socket buffers hold; with a
//!   spool everything after it arrives; without one the drop counter counts
//!   every event that was refused, and the rest of the gap is the in-flight
//!   loss.
//!
//! The replay is paced (`--pps`) over a generated capture
//! (../shared/bench/gen_bench_pcap.py, 100k packets, ~12k events) so that it
//! lasts about 6 s, and the tests wait for flowtap to report the stall rather
//! than guess how long the kernel buffers take to fill.

mod collectors;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use collectors::*;
use serde_json::Value;

/// The generated capture, made once per checkout (cached in the target dir).
fn capture() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("outage-gen-100k-seed3.pcap");
        if p.exists() {
            return p;
        }
        let gen =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/gen_bench_pcap.py");
        assert!(
            gen.exists(),
            "{} missing (../shared beside the repo)",
            gen.display()
        );
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        let out = Command::new(need("python3"))
            .arg(&gen)
            .args(["-o"])
            .arg(&tmp)
            .args(["-n", "100000", "--seed", "3", "--duration", "10"])
            .output()
            .expect("run gen_bench_pcap.py (python3: scripts/setup.sh)");
        assert!(
            out.status.success(),
            "gen_bench_pcap.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &p).expect("rename capture");
        p
    })
    .clone()
}

/// 100k packets at this rate: a replay of about 6 s.
const PPS: u64 = 16_000;
const PACKETS: u64 = 100_025;
const STALLED: &str = "(collector stalled)";
const PAUSE_AT_MS: u64 = 500;
/// flowtap's socket send buffer in these tests (the kernel doubles it): a
/// pause shows within a second or two, and it bounds the in-flight loss.
const SEND_BUFFER: u64 = 64 << 10;

/// What a stopped collector can take with it: flowtap's send buffer and
/// the collector's receive buffer (at most net.ipv4.tcp_rmem's max).
fn in_flight_bound() -> u64 {
    2 * SEND_BUFFER + sysctl_max("tcp_rmem")
}

fn sysctl_max(name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
        .unwrap_or(64 << 20)
}

/// Where each event that arrived sits in the file's sequence. Panics on an
/// event the file does not have, a duplicate, or one out of order; returns
/// the indices (in `want`) of the events that did not arrive.
fn missing_in_order(got: &[String], want: &[String], what: &str) -> Vec<usize> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(want.len());
    for (i, w) in want.iter().enumerate() {
        assert!(
            index.insert(w.as_str(), i).is_none(),
            "{what}: the file has event {i} twice (the check needs unique events): {w}"
        );
    }
    let mut next = 0usize;
    let mut missing = Vec::new();
    for (n, g) in got.iter().enumerate() {
        let Some(&i) = index.get(g.as_str()) else {
            panic!("{what}: arrived event {n} is not in the file: {g}");
        };
        assert!(
            i >= next,
            "{what}: arrived event {n} is file event {i}, but file event {} came before it (duplicate or out of order)",
            next.saturating_sub(1)
        );
        missing.extend(next..i);
        next = i + 1;
    }
    missing.extend(next..want.len());
    missing
}

enum Outage {
    /// SIGSTOP until flowtap reports the stall, a little longer, SIGCONT.
    Pause,
    /// SIGTERM, down for a while, start again.
    Restart,
    /// SIGKILL, down for a while, start again.
    Kill,
}

enum Proto {
    Syslog,
    /// Syslog over TLS (rsyslog gtls).
    SyslogTls,
    Gelf,
}

struct Result {
    /// The file's events and what the collector got, canonical text.
    want: Vec<String>,
    got: Vec<String>,
    run: Run,
    name: String,
}

/// One outage test at a time: each paces a replay and times an outage.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn outage_run(proto: Proto, outage: Outage, spool: bool, tag: &str) -> Result {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let capture = capture();
    let dir = temp_dir(tag);
    let port = free_port(false);
    let collected = dir.join("collected.json");
    let mut conf = rsyslog_preamble(&dir);
    conf.push_str("module(load=\"imtcp\")\n");
    let pki = matches!(proto, Proto::SyslogTls).then(|| Pki::make(&dir));
    let tls_input = pki
        .as_ref()
        .map(|p| p.rsyslog_tls("anon"))
        .unwrap_or_default();
    let (scheme, schema, framing) = match proto {
        Proto::Syslog | Proto::SyslogTls => {
            conf.push_str(&syslog_ruleset("r", &collected));
            ("syslog+tcp", "ecs", tls_input.as_str())
        }
        Proto::Gelf => {
            conf.push_str(&gelf_ruleset("r", &collected));
            (
                "gelf+tcp",
                "gelf",
                "AddtlFrameDelimiter=\"0\" SupportOctetCountedFraming=\"off\"",
            )
        }
    };
    conf.push_str(&format!(
        "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"r\" {framing})\n"
    ));
    let mut rs = Rsyslog::start(&dir, &conf, &[(port, false)]);
    let name = format!("{tag}-sink");
    let file = dir.join("file.json");
    let mut url =
        format!("{scheme}://127.0.0.1:{port}?name={name}&schema={schema}&write_timeout_ms=300&send_buffer={SEND_BUFFER}");
    if let Some(p) = &pki {
        url.push_str(&format!("&tls=true&ca={}", p.ca.display()));
    }
    if spool {
        url.push_str(&format!("&spool={}", dir.join("spool").display()));
    } else {
        // Live-capture behaviour: a full queue drops and counts; a short
        // queue makes it fill within the outage.
        url.push_str("&when_full=drop&queue_batches=2");
    }
    let mut ft = Flowtap::start(&[
        "--pcap".into(),
        capture.display().to_string(),
        "--workers".into(),
        "1".into(),
        "--pps".into(),
        PPS.to_string(),
        "--output".into(),
        url,
        "--output".into(),
        format!("{}?schema={schema}", file.display()),
    ]);
    match outage {
        Outage::Pause => {
            // Early, before the collector's receive buffer has grown (the
            // kernel autotunes it as the collector reads, up to
            // net.ipv4.tcp_rmem's max): the stall then shows within a second
            // or two rather than after many megabytes.
            ft.sleep(Duration::from_millis(PAUSE_AT_MS));
            rs.pause();
            let stalled = ft.wait_stderr(STALLED, Duration::from_secs(20));
            eprintln!(
                "{tag}: paused at {PAUSE_AT_MS} ms, flowtap reported the stall at {:?}",
                ft.elapsed()
            );
            // Keep it paused a little longer: events spool / queue / drop.
            ft.sleep(Duration::from_millis(700));
            rs.resume();
            assert!(stalled, "flowtap never saw the stall:\n{}", ft.stderr());
        }
        Outage::Restart | Outage::Kill => {
            ft.sleep(Duration::from_millis(800));
            if matches!(outage, Outage::Kill) {
                rs.kill();
            } else {
                rs.stop();
            }
            ft.sleep(Duration::from_millis(1500));
            rs.restart();
        }
    }
    let elapsed_before_end = ft.elapsed();
    let run = ft.wait(Duration::from_secs(90));
    // It must not crash; a sink that lost events makes the status 3.
    let lost = run.sink(&name)["dropped"];
    assert_eq!(
        run.code,
        Some(if lost > 0 { 3 } else { 0 }),
        "flowtap failed:\n{}",
        run.stderr
    );
    let replay_secs = PACKETS as f64 / PPS as f64;
    assert!(
        elapsed_before_end.as_secs_f64() < replay_secs - 0.2,
        "the outage must fall within the replay (it ended at {elapsed_before_end:?})"
    );
    let want_vals = read_json_lines(&file);
    // Everything flowtap counted as sent should arrive (but for what a stop
    // took in flight, which the tests bound).
    let sent = run.sink(&name)["sent"] as usize;
    wait_lines(&collected, sent, Duration::from_secs(20));
    rs.stop();
    let (want, got): (Vec<String>, Vec<String>) = match proto {
        Proto::Syslog | Proto::SyslogTls => (
            std::fs::read_to_string(&file)
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect(),
            read_json_lines(&collected)
                .iter()
                .map(|c| c["msg"].as_str().unwrap_or_default().to_string())
                .collect(),
        ),
        // rsyslog re-serialises what it parsed: compare canonical JSON.
        Proto::Gelf => (
            want_vals.iter().map(Value::to_string).collect(),
            read_json_lines(&collected)
                .iter()
                .map(Value::to_string)
                .collect(),
        ),
    };
    assert!(want.len() > 10_000, "{} events", want.len());
    // Bounded memory: the queue is bounded and the spool is on disk.
    assert!(
        run.max_rss_kib < 256 << 10,
        "flowtap peaked at {} MiB",
        run.max_rss_kib >> 10
    );
    eprintln!(
        "{tag}: {} events written, {} arrived, peak RSS {} MiB; {}",
        want.len(),
        got.len(),
        run.max_rss_kib >> 10,
        run.stderr
            .lines()
            .find(|l| l.contains(&format!("sink {name} (")))
            .unwrap_or("")
    );
    let _ = std::fs::remove_dir_all(&dir);
    Result {
        want,
        got,
        run,
        name,
    }
}

#[test]
fn syslog_tcp_paused_collector_with_spool_every_event_once_in_order() {
    let r = outage_run(Proto::Syslog, Outage::Pause, true, "syslog-pause-spool");
    let c = r.run.sink(&r.name);
    assert!(c["spooled"] > 0, "the stall spooled events: {c:?}");
    assert_eq!(c["replayed"], c["spooled"], "{c:?}");
    assert_eq!(c["left in spool"], 0, "{c:?}");
    assert_eq!(c["dropped"], 0, "{c:?}");
    assert_eq!(c["sent"], r.want.len() as u64, "{c:?}");
    let missing = missing_in_order(&r.got, &r.want, "syslog+tcp paused, spool");
    assert!(missing.is_empty(), "{} events missing", missing.len());
    assert_eq!(r.got.len(), r.want.len());
}

#[test]
fn syslog_tls_paused_collector_with_spool_every_event_once_in_order() {
    let r = outage_run(
        Proto::SyslogTls,
        Outage::Pause,
        true,
        "syslog-tls-pause-spool",
    );
    let c = r.run.sink(&r.name);
    assert!(c["spooled"] > 0, "the stall spooled events: {c:?}");
    assert_eq!(c["replayed"], c["spooled"], "{c:?}");
    assert_eq!(c["dropped"], 0, "{c:?}");
    let missing = missing_in_order(&r.got, &r.want, "syslog+tcp with TLS paused, spool");
    assert!(missing.is_empty(), "{} events missing", missing.len());
    assert_eq!(r.got.len(), r.want.len());
}

#[test]
fn syslog_tcp_paused_collector_without_spool_drops_are_counted_exactly() {
    let r = outage_run(Proto::Syslog, Outage::Pause, false, "syslog-pause-drop");
    let c = r.run.sink(&r.name);
    let missing = missing_in_order(&r.got, &r.want, "syslog+tcp paused, no spool");
    assert!(
        c["queue full"] > 0,
        "the queue filled during the pause: {c:?}"
    );
    assert_eq!(
        missing.len() as u64,
        c["dropped"],
        "every missing event is counted, and only those: {c:?}"
    );
    assert_eq!(c["sent"] + c["dropped"], r.want.len() as u64, "{c:?}");
}

#[test]
fn gelf_tcp_restarted_collector_with_spool_loses_at_most_what_was_in_flight() {
    let r = outage_run(Proto::Gelf, Outage::Restart, true, "gelf-restart-spool");
    let c = r.run.sink(&r.name);
    assert!(c["connect failures"] > 0, "the collector was down: {c:?}");
    assert!(c["reconnects"] >= 1, "{c:?}");
    assert!(c["spooled"] > 0, "events spooled while it was down: {c:?}");
    assert_eq!(c["replayed"], c["spooled"], "{c:?}");
    assert_eq!(c["left in spool"], 0, "{c:?}");
    assert_eq!(c["dropped"], 0, "{c:?}");
    let missing = missing_in_order(&r.got, &r.want, "gelf+tcp restarted, spool");
    check_in_flight_gap(&missing, &r.want, 0);
}

#[test]
fn gelf_tcp_restarted_collector_without_spool_counts_what_it_refused() {
    let r = outage_run(Proto::Gelf, Outage::Restart, false, "gelf-restart-drop");
    let c = r.run.sink(&r.name);
    assert!(c["connect failures"] > 0, "the collector was down: {c:?}");
    assert!(
        c["queue full"] > 0,
        "the queue filled while it was down: {c:?}"
    );
    let missing = missing_in_order(&r.got, &r.want, "gelf+tcp restarted, no spool");
    assert!(
        missing.len() as u64 >= c["dropped"],
        "{} missing < {} counted",
        missing.len(),
        c["dropped"]
    );
    assert_eq!(c["sent"] + c["dropped"], r.want.len() as u64, "{c:?}");
    // What was sent but is missing is the in-flight loss at the stop.
    let sent_missing = missing.len() as u64 - c["dropped"];
    let bytes_bound = in_flight_bound();
    let smallest = r.want.iter().map(String::len).min().unwrap_or(1) as u64;
    assert!(
        sent_missing * smallest <= bytes_bound,
        "{sent_missing} sent events lost: more than the socket buffers hold"
    );
    eprintln!("gelf-restart-drop: {sent_missing} sent events lost in flight at the stop");
}

#[test]
fn syslog_tcp_killed_collector_with_spool_one_gap_in_order_no_duplicates() {
    let r = outage_run(Proto::Syslog, Outage::Kill, true, "syslog-kill-spool");
    let c = r.run.sink(&r.name);
    assert!(c["connect failures"] > 0, "the collector was down: {c:?}");
    assert!(c["spooled"] > 0, "events spooled while it was down: {c:?}");
    assert_eq!(c["replayed"], c["spooled"], "{c:?}");
    assert_eq!(c["dropped"], 0, "{c:?}");
    // SIGKILL also loses what rsyslog had read but not yet written out (its
    // in-memory queue), so only the shape of the loss is checked: one run
    // of events at the kill, everything after it arrived, in order, once.
    let missing = missing_in_order(&r.got, &r.want, "syslog+tcp killed, spool");
    if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
        assert_eq!(
            last - first + 1,
            missing.len(),
            "one run at the kill: {first}..={last}"
        );
    }
    eprintln!(
        "syslog-kill-spool: {} events lost at the kill",
        missing.len()
    );
}

/// The events missing after a restart with a spool: one run (the moment of
/// the stop), no more bytes than both socket buffers can hold.
fn check_in_flight_gap(missing: &[usize], want: &[String], _dropped: u64) {
    if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
        assert_eq!(
            last - first + 1,
            missing.len(),
            "the missing events are one run at the stop: {first}..={last}, {} of them",
            missing.len()
        );
    }
    let bytes: u64 = missing.iter().map(|&i| want[i].len() as u64).sum();
    let bound = in_flight_bound();
    assert!(
        bytes <= bound,
        "{} events ({bytes} bytes) lost: more than the socket buffers ({bound}) hold",
        missing.len()
    );
    eprintln!(
        "restart with spool: {} events ({bytes} bytes) lost in flight at the stop",
        missing.len()
    );
}
