//! The DPDK source (`--capture dpdk`, built with `--features dpdk`) end to
//! end, on virtual devices (no NIC needed):
//!
//! - `net_pcap` replaying a capture file gives exactly the events of the
//!   offline replay of the same file, times included (the PMD stamps each
//!   mbuf with the file's time), for W1 and corpus captures;
//! - `net_af_packet` on a veth inside network namespaces captures what
//!   `flowtap gen` sends from the other end: every frame counted by the
//!   port, received by the worker, and the records equal the replay's;
//! - EAL and port errors are one clear line.
//!
//! EAL is process-global and initialises once per process: every run is a
//! `flowtap` subprocess. Needs root (CI runs as root); EAL runs with
//! `--no-huge --no-shconf` (no hugepages, no shared runtime files).

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;
use live::{sh, FLOWTAP};

/// DPDK runs share two cores (and a veth): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Ethernet corpus captures with no snap-length cut (the pcap PMD hands
/// the captured bytes as the packet): HTTP, DNS over TCP, VXLAN, VLAN + TLS.
const CORPUS: &[&str] = &[
    "http/sv-http-all-headers--input.pcap",
    "dns/sv-dns.dns-tcp-multirequest-buffer--dns-tcp-multirequest-buffer.pcap",
    "tunnels/sv-vxlan-decoder-03--vxlan.pcap",
    "vlan/ndpi-ja3_lots_of_cipher_suites.pcap",
];

/// A config for the DPDK source with these EAL arguments after the test
/// ones (no hugepages, no runtime files, no PCI scan).
fn config(dir: &Path, tag: &str, eal: &[String]) -> PathBuf {
    config_with(dir, tag, eal, "")
}

/// [`config`] with `head` (TOML before `[capture]`) in front.
fn config_with(dir: &Path, tag: &str, eal: &[String], head: &str) -> PathBuf {
    let mut args = vec![
        "--no-huge".to_string(),
        "--no-shconf".into(),
        "--no-pci".into(),
        "-m".into(),
        "256".into(),
        "--log-level=lib.eal:error".into(),
    ];
    args.extend(eal.iter().cloned());
    let list: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    let p = dir.join(format!("{tag}.toml"));
    std::fs::write(
        &p,
        format!(
            "{head}[capture]\nsource = \"dpdk\"\n[capture.dpdk]\neal_args = [{}]\n",
            list.join(", ")
        ),
    )
    .expect("write config");
    p
}

/// A running `flowtap run --capture dpdk` (in `ns` if given).
struct Run {
    child: Child,
    stderr: StderrLog,
    output: PathBuf,
}

impl Run {
    fn start(ns: Option<&str>, port: &str, cfg: &Path, extra: &[&str]) -> Run {
        let output = cfg.with_extension("json");
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, FLOWTAP]);
                c
            }
            None => Command::new(FLOWTAP),
        };
        let mut child = cmd
            .args(["run", "--capture", "dpdk", "--iface", port, "--config"])
            .arg(cfg)
            .arg("--output")
            .arg(&output)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flowtap");
        let stderr = StderrLog::collect(&mut child);
        Run {
            child,
            stderr,
            output,
        }
    }

    fn wait_ready(&mut self) {
        let t0 = Instant::now();
        while !self.stderr.text().contains("flowtap: capturing on") {
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "flowtap exited ({st}) before capturing: {}",
                    self.stderr.text()
                );
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "flowtap not ready: {}",
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig`, waits for the exit; the exit code.
    fn stop(&mut self, sig: &str) -> i32 {
        sh(&["kill", &format!("-{sig}"), &self.child.id().to_string()]);
        self.wait_exit()
    }

    fn wait_exit(&mut self) -> i32 {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                // The reader thread may still be taking the last lines.
                self.stderr.all();
                return st.code().unwrap_or(-1);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "flowtap still running: {}",
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
            .collect()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.output);
    }
}

/// An event as a comparable string. `strict`: everything but whether a flow
/// open at the end ended by idle timeout or at shutdown (the live worker's
/// idle clock is the wall clock, far past a file's times); else also
/// without times (a live capture's are arrival times).
fn comparable(event: &Value, strict: bool) -> String {
    let mut e = event.clone();
    if !strict {
        strip_times(&mut e, &[]);
    }
    if let Some(r) = e.get_mut("flow").and_then(|f| f.get_mut("reason")) {
        if r == "idle_timeout" || r == "shutdown" {
            *r = Value::from("not_closed");
        }
    }
    e.to_string()
}

fn records(events: &[Value], strict: bool) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in events.iter().filter(|e| e["event_type"] != "stats") {
        *m.entry(comparable(e, strict)).or_insert(0) += 1;
    }
    m
}

fn assert_same(live: &[Value], offline: &[Value], strict: bool, what: &str) {
    let (l, o) = (records(live, strict), records(offline, strict));
    if l == o {
        return;
    }
    let mut msg = format!("{what}: DPDK records differ from the replay's\n");
    for (k, n) in &l {
        if o.get(k) != Some(n) {
            msg.push_str(&format!("  only DPDK ({n}x): {k}\n"));
        }
    }
    for (k, n) in &o {
        if l.get(k) != Some(n) {
            msg.push_str(&format!("  only replay ({n}x): {k}\n"));
        }
    }
    panic!("{msg}");
}

fn last_stats(events: &[Value]) -> &Value {
    &events
        .iter()
        .rev()
        .find(|e| e["event_type"] == "stats")
        .expect("a final stats event")["stats"]
}

/// The capture section's counters must account for `frames` exactly: the
/// port counted them, one queue received them, nothing dropped.
fn assert_accounted(stats: &Value, frames: u64, what: &str) {
    let cap = &stats["capture"];
    assert_eq!(cap["source"], "dpdk", "{what}: {cap}");
    assert_eq!(
        stats["packets"]["received"].as_u64(),
        Some(frames),
        "{what}: {stats}"
    );
    assert_eq!(stats["packets"]["accounted"], true, "{what}: {stats}");
    assert_eq!(cap["received"].as_u64(), Some(frames), "{what}: {cap}");
    assert_eq!(
        cap["nic"]["rx_packets"].as_u64(),
        Some(frames),
        "{what}: {cap}"
    );
    assert_eq!(
        cap["nic"]["queues"]["0"]["packets"].as_u64(),
        Some(frames),
        "{what}: {cap}"
    );
    for k in ["imissed", "ierrors", "rx_nombuf"] {
        assert_eq!(cap["nic"][k], 0, "{what}: {k}: {cap}");
    }
    assert_eq!(cap["dropped"]["total"], 0, "{what}: {cap}");
}

/// A free local TCP port (for the metrics endpoint).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// GET /metrics from `port`: the body.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to /metrics");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("send request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read /metrics");
    body
}

/// The value of the sample `name` (with its labels) in a metrics page.
fn sample(page: &str, name: &str) -> Option<u64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Replays `file` through the net_pcap PMD and compares with the offline
/// replay, times included; the port's counters must be on /metrics.
fn pcap_vdev_equals_replay(file: &Path, tag: &str) {
    let offline = run_flowtap(file, 1, &[]);
    assert!(
        offline.status.success(),
        "replay of {tag}: {}",
        offline.stderr
    );
    let frames = offline.stats()["stats"]["packets"]["received"]
        .as_u64()
        .expect("received");
    assert!(frames > 0, "{tag}: an empty capture compares nothing");
    let dir = tmp_dir("dpdk");
    let vdev = format!("--vdev=net_pcap0,rx_pcap={}", file.display());
    let metrics = free_port();
    let head = format!("[output]\nmetrics_listen = \"127.0.0.1:{metrics}\"\n");
    let cfg = config_with(&dir, tag, &[vdev], &head);
    let mut run = Run::start(None, "net_pcap0", &cfg, &["--workers", "1"]);
    run.wait_ready();
    assert!(
        run.stderr.text().contains("with dpdk net_pcap port 0"),
        "{}",
        run.stderr.text()
    );
    // The PMD reads the file at once; the counters are refreshed every
    // second: stop when /metrics shows the port had it all.
    std::thread::sleep(Duration::from_secs(3));
    let page = scrape(metrics);
    for name in [
        "flowtap_capture_nic_rx_packets_total",
        "flowtap_capture_nic_queue_packets_total{queue=\"0\"}",
        "flowtap_capture_packets_received_total",
    ] {
        assert_eq!(sample(&page, name), Some(frames), "{tag}: {name}: {page}");
    }
    assert_eq!(
        sample(
            &page,
            "flowtap_capture_packets_dropped_total{reason=\"nic_missed\"}"
        ),
        Some(0),
        "{tag}: {page}"
    );
    let code = run.stop("INT");
    assert_eq!(
        code,
        0,
        "{tag}: clean exit on SIGINT: {}",
        run.stderr.text()
    );
    let events = run.events();
    assert_accounted(last_stats(&events), frames, tag);
    let flows = events.iter().filter(|e| e["event_type"] == "flow").count();
    assert!(flows > 0, "{tag}: no flow records");
    assert_same(&events, &offline.events, true, tag);
}

#[test]
fn net_pcap_replay_of_w1_equals_the_offline_replay() {
    require_root!("DPDK EAL");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    pcap_vdev_equals_replay(&bench_pcap(20_000), "w1");
}

#[test]
fn net_pcap_replay_of_corpus_captures_equals_the_offline_replay() {
    require_root!("DPDK EAL");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (i, rel) in CORPUS.iter().enumerate() {
        pcap_vdev_equals_replay(&corpus().join(rel), &format!("corpus{i}"));
    }
}

/// W1 from `flowtap gen` into a veth, captured in the other namespace by
/// the net_af_packet PMD with `queues` queue pairs (sockets in one fanout
/// group, whose symmetric hash keeps both directions of a flow on one
/// queue) and as many workers; stopped with SIGTERM.
fn af_packet_vdev_on_a_veth(queues: usize) {
    let file = bench_pcap(20_000);
    let offline = run_flowtap(&file, 1, &[]);
    assert!(offline.status.success(), "{}", offline.stderr);
    let net = common::netpair::Net::new("d");
    let dir = tmp_dir("dpdk");
    let vdev = format!(
        "--vdev=net_af_packet0,iface={},qpairs={queues},framecnt=4096",
        net.b
    );
    let cfg = config(&dir, &format!("afpacket{queues}"), &[vdev]);
    let workers = queues.to_string();
    let mut run = Run::start(
        Some(&net.ns_b),
        "net_af_packet0",
        &cfg,
        &["--workers", &workers],
    );
    run.wait_ready();
    assert!(
        run.stderr.text().contains(&format!(
            "with dpdk net_af_packet port 0 ({queues} worker(s)"
        )),
        "{}",
        run.stderr.text()
    );
    let sent = net.gen_at(&file, 20_000);
    assert_eq!(
        offline.stats()["stats"]["packets"]["received"].as_u64(),
        Some(sent),
        "the generator sent every frame of W1"
    );
    std::thread::sleep(Duration::from_millis(500));
    let code = run.stop("TERM");
    assert_eq!(code, 0, "clean exit on SIGTERM: {}", run.stderr.text());
    let events = run.events();
    let stats = last_stats(&events);
    let what = format!("af_packet x{queues}");
    let cap = &stats["capture"];
    assert_eq!(cap["queues"].as_u64(), Some(queues as u64), "{cap}");
    assert_eq!(
        stats["packets"]["received"].as_u64(),
        Some(sent),
        "{what}: {stats}"
    );
    assert_eq!(stats["packets"]["accounted"], true, "{what}: {stats}");
    assert_eq!(cap["received"].as_u64(), Some(sent), "{what}: {cap}");
    assert_eq!(
        cap["nic"]["rx_packets"].as_u64(),
        Some(sent),
        "{what}: {cap}"
    );
    assert_eq!(cap["dropped"]["total"], 0, "{what}: {cap}");
    // per queue: the PMD's counts add up, and with two queues both got flows
    let per_queue: Vec<u64> = (0..queues)
        .map(|q| {
            cap["nic"]["queues"][q.to_string()]["packets"]
                .as_u64()
                .expect("queue count")
        })
        .collect();
    assert_eq!(per_queue.iter().sum::<u64>(), sent, "{what}: {cap}");
    assert!(per_queue.iter().all(|&n| n > 0), "{what}: {cap}");
    assert_same(&events, &offline.events, false, &what);
    let err = run.stderr.text();
    assert!(err.contains("capture drops: 0"), "{err}");
    assert!(
        err.contains(&format!("DPDK port: received {sent} packets")),
        "{err}"
    );
}

#[test]
fn af_packet_vdev_on_a_veth_accounts_for_every_frame_and_sigterm_flushes() {
    require_root!("DPDK EAL and network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    af_packet_vdev_on_a_veth(1);
}

#[test]
fn two_af_packet_queues_two_workers_keep_flows_whole() {
    require_root!("DPDK EAL and network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    af_packet_vdev_on_a_veth(2);
}

/// Runs flowtap with a DPDK config that cannot work; its stderr.
fn failing(port: &str, eal: &[String]) -> String {
    let dir = tmp_dir("dpdk");
    let cfg = config(&dir, &format!("bad-{port}"), eal);
    let mut run = Run::start(None, port, &cfg, &["--workers", "1"]);
    let code = run.wait_exit();
    assert_ne!(code, 0, "must fail: {}", run.stderr.text());
    run.stderr.text()
}

fn error_line(stderr: &str) -> &str {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Error") || l.starts_with("flowtap: error"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0]
}

#[test]
fn eal_and_port_errors_are_one_clear_line() {
    require_root!("DPDK EAL");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let err = failing("net_pcap0", &["--no-such-eal-option".into()]);
    let line = error_line(&err);
    assert!(
        line.contains("DPDK cannot initialise") && line.contains("capture.dpdk.eal_args"),
        "{err}"
    );
    let file = corpus().join(CORPUS[0]);
    let err = failing(
        "net_nope0",
        &[format!("--vdev=net_pcap0,rx_pcap={}", file.display())],
    );
    let line = error_line(&err);
    assert!(
        line.contains("DPDK port \"net_nope0\" not found") && line.contains("ports: net_pcap0"),
        "{err}"
    );
}
