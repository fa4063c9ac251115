//! Live capture end to end: the real `flowtap` binary captures on one end of
//! a veth pair while `flowtap gen` replays corpus captures into the other,
//! and the flow records must equal those of `flowtap run --pcap` on the same
//! captures (all but the times, which are arrival times live).
//!
//! Needs root (CI runs as root). Without root each test fails under CI
//! (`CI=true`) and elsewhere prints a loud SKIPPED banner (`common/root.rs`). Every test builds two throw-away network namespaces
//! with unique names joined by a veth pair, and removes them in a Drop guard
//! (also on panic); traffic never leaves them. IPv6 is disabled in both
//! namespaces before the veth exists, so the kernel sends nothing of its own
//! (no ND/MLD/router solicitations): every frame on the link is one we sent.

mod common;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

/// Live tests share two cores and the veth driver: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());
static SEQ: AtomicU32 = AtomicU32::new(0);

const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");

/// Corpus captures replayed live: Ethernet only, every frame fits the MTU
/// (1600 here), no snaplen cuts, no gap longer than a timeout. TCP with a
/// full handshake (HTTP), DNS over TCP, VXLAN, VLAN + TLS.
const CAPTURES: &[&str] = &[
    "http/sv-http-all-headers--input.pcap",
    "dns/sv-dns.dns-tcp-multirequest-buffer--dns-tcp-multirequest-buffer.pcap",
    "tunnels/sv-vxlan-decoder-03--vxlan.pcap",
    "vlan/ndpi-ja3_lots_of_cipher_suites.pcap",
];

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh_out(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair: `a` (sender) in `ns_a`, `b`
/// (capture) in `ns_b`. Removed on drop, which also takes anything attached
/// to the veth with it.
struct Net {
    ns_a: String,
    ns_b: String,
    a: String,
    b: String,
}

impl Net {
    fn new() -> Net {
        Net::with_queues(1)
    }

    /// A veth pair with `queues` RX/TX queues on each end.
    fn with_queues(queues: u32) -> Net {
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let net = Net {
            ns_a: format!("ftlA{id}"),
            ns_b: format!("ftlB{id}"),
            a: format!("ftla{id}"),
            b: format!("ftlb{id}"),
        };
        for ns in [&net.ns_a, &net.ns_b] {
            sh(&["ip", "netns", "add", ns]);
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
        }
        let q = queues.to_string();
        sh(&[
            "ip",
            "link",
            "add",
            &net.a,
            "netns",
            &net.ns_a,
            "mtu",
            "1600",
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            &net.b,
            "netns",
            &net.ns_b,
            "mtu",
            "1600",
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
        ]);
        sh(&["ip", "-n", &net.ns_a, "link", "set", &net.a, "up"]);
        sh(&["ip", "-n", &net.ns_b, "link", "set", &net.b, "up"]);
        net
    }

    fn xdp_on(&self, ns: &str, iface: &str) -> bool {
        sh_out(&["ip", "-n", ns, "link", "show", iface]).contains("xdp")
    }

    fn xdp_on_b(&self) -> bool {
        self.xdp_on(&self.ns_b, &self.b)
    }

    /// `flowtap gen` in `ns_a` into `a`; returns the frames sent.
    ///
    /// Pinned to CPU 0: a packet socket's frame leaves on TX queue
    /// `sending CPU % queues` (the kernel's `packet_pick_tx_queue`), which on
    /// a veth is the peer's RX queue, so an unpinned generator that migrates
    /// between CPUs splits even one direction of a flow over two queues, and
    /// the capture's order then depends on the scheduler. Pinned, every
    /// frame arrives on queue 0 in capture order; with two queues in
    /// software shard mode, the frames of flows the other worker owns cross
    /// over through the shard ring. (Cross-direction reordering is tested
    /// deterministically offline, in `tests/mirror.rs`.)
    fn gen(&self, capture: &Path, pps: u64) -> u64 {
        let o = Command::new("ip")
            .args([
                "netns", "exec", &self.ns_a, "taskset", "-c", "0", FLOWTAP, "gen", "--iface",
                &self.a,
            ])
            .arg("--pcap")
            .arg(capture)
            .args(["--pps", &pps.to_string()])
            .output()
            .expect("run flowtap gen");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "flowtap gen failed: {err}");
        let sent = err
            .split_whitespace()
            .skip_while(|w| *w != "sent")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `sent N` in {err}"));
        assert!(err.contains("skipped 0"), "frames skipped: {err}");
        sent
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A running `flowtap run --iface` in `ns_b`; killed on drop if still running.
struct Live {
    child: Child,
    stderr: StderrLog,
    output: PathBuf,
}

impl Live {
    fn start(net: &Net, args: &[&str]) -> Live {
        Live::start_on(&net.ns_b, &net.b, args)
    }

    fn start_on(ns: &str, iface: &str, args: &[&str]) -> Live {
        let output = tmp_dir("live").join(format!(
            "{iface}-{}.json",
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, FLOWTAP, "run", "--iface", iface])
            .arg("--output")
            .arg(&output)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flowtap run");
        let stderr = StderrLog::collect(&mut child);
        Live {
            child,
            stderr,
            output,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Waits for the "capturing on" line (every worker running).
    fn wait_ready(&mut self) {
        let t0 = Instant::now();
        while !self.stderr().contains("flowtap: capturing on") {
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!("flowtap exited ({st}) before capturing: {}", self.stderr());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "flowtap not ready after 30 s: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        sh(&["kill", &format!("-{sig}"), &self.child.id().to_string()]);
    }

    /// Waits (bounded) for the process to end; returns its exit code.
    fn wait_exit(&mut self, limit: Duration) -> i32 {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                // The reader thread may still be taking the last lines.
                self.stderr.all();
                return st.code().unwrap_or(-1);
            }
            assert!(
                t0.elapsed() < limit,
                "flowtap still running after {limit:?}: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        text.lines()
            .filter(|l| l.ends_with('}'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
            .collect()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.output);
    }
}

/// An event without what differs between a live run and a replay: times
/// (arrival vs capture time; see `common::strip_times`), and whether a flow that
/// never closed ended by idle timeout or at shutdown (replay time spans the
/// capture, live time only the replay).
fn comparable(event: &Value) -> String {
    let mut e = event.clone();
    strip_times(&mut e, &[]);
    if let Some(r) = e.get_mut("flow").and_then(|f| f.get_mut("reason")) {
        if r == "idle_timeout" || r == "shutdown" {
            *r = Value::from("not_closed");
        }
    }
    e.to_string()
}

fn multiset<'a>(flows: impl IntoIterator<Item = &'a Value>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in flows {
        *m.entry(comparable(f)).or_insert(0) += 1;
    }
    m
}

fn flows_of(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .collect()
}

fn last_stats(events: &[Value]) -> &Value {
    events
        .iter()
        .rev()
        .find(|e| e["event_type"] == "stats")
        .expect("a final stats event")
}

/// Flow records and application events (everything but `stats`).
fn records_of(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event_type"] != "stats")
        .collect()
}

fn assert_same_records(live: &[&Value], offline: &[&Value], what: &str) {
    let (l, o) = (
        multiset(live.iter().copied()),
        multiset(offline.iter().copied()),
    );
    if l != o {
        let mut msg = format!(
            "{what}: live records differ from the replay's ({} live, {} replay)\n",
            live.len(),
            offline.len()
        );
        for (k, n) in &l {
            if o.get(k) != Some(n) {
                msg.push_str(&format!("  only live ({n}x): {k}\n"));
            }
        }
        for (k, n) in &o {
            if l.get(k) != Some(n) {
                msg.push_str(&format!("  only replay ({n}x): {k}\n"));
            }
        }
        panic!("{msg}");
    }
}

/// Replays `captures` into `b` through a live `flowtap run` with `args`,
/// stops it with `sig`, and compares with the replay of the same captures.
fn live_equals_offline(captures: &[&str], args: &[&str], sig: &str, expect_mode: &str) {
    live_equals_offline_on(1, captures, args, sig, expect_mode, 20_000);
}

fn live_equals_offline_on(
    queues: u32,
    captures: &[&str],
    args: &[&str],
    sig: &str,
    expect_mode: &str,
    pps: u64,
) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::with_queues(queues);
    let mut offline = Vec::new();
    let mut frames = 0u64;
    for rel in captures {
        let run = run_flowtap(&corpus().join(rel), 1, &[]);
        assert!(run.status.success(), "replay of {rel}: {}", run.stderr);
        frames += run.stats()["stats"]["packets"]["received"]
            .as_u64()
            .expect("received");
        offline.extend(
            run.events
                .into_iter()
                .filter(|e| e["event_type"] != "stats"),
        );
    }
    let mut live = Live::start(&net, args);
    live.wait_ready();
    assert!(
        live.stderr().contains(expect_mode),
        "expected {expect_mode:?}: {}",
        live.stderr()
    );
    let mut sent = 0;
    for rel in captures {
        sent += net.gen(&corpus().join(rel), pps);
    }
    assert_eq!(
        sent, frames,
        "the generator sent every frame of the captures"
    );
    // Let the last frames through the ring before stopping.
    std::thread::sleep(Duration::from_millis(500));
    live.signal(sig);
    let code = live.wait_exit(Duration::from_secs(20));
    let err = live.stderr();
    assert_eq!(code, 0, "clean exit on SIG{sig}: {err}");
    let events = live.events();
    let stats = &last_stats(&events)["stats"];
    eprintln!("{args:?}: {}", stats["capture"]);
    assert_eq!(
        stats["packets"]["received"].as_u64(),
        Some(frames),
        "{stats}"
    );
    assert_eq!(stats["packets"]["accounted"], true, "{stats}");
    assert_eq!(
        stats["capture"]["received"].as_u64(),
        Some(frames),
        "{stats}"
    );
    assert_eq!(stats["capture"]["dropped"]["total"], 0, "{stats}");
    assert_eq!(stats["capture"]["output_events_dropped"], 0, "{stats}");
    let offline: Vec<&Value> = offline.iter().collect();
    assert!(
        offline.iter().filter(|e| e["event_type"] == "flow").count() >= captures.len(),
        "every capture gives flows to compare"
    );
    assert_same_records(&records_of(&events), &offline, &format!("{args:?}"));
    assert!(!net.xdp_on_b(), "an XDP program is left on the veth");
}

#[test]
fn afxdp_native_live_flows_equal_the_replay() {
    require_root!("live capture in network namespaces");
    live_equals_offline(
        CAPTURES,
        &["--capture", "afxdp", "--xdp-mode", "native"],
        "INT",
        "afxdp native",
    );
}

#[test]
fn afxdp_generic_live_flows_equal_the_replay() {
    require_root!("live capture in network namespaces");
    live_equals_offline(
        CAPTURES,
        &["--capture", "afxdp", "--xdp-mode", "generic"],
        "INT",
        "afxdp generic",
    );
}

/// AF_PACKET, stopped with SIGTERM (the systemd way): one socket with every
/// capture, then two fanout sockets, where the kernel's symmetric flow hash
/// keeps each flow on one worker. That hash reads the outer headers only: a
/// VXLAN mirror whose outer UDP source port differs per direction (as in the
/// VXLAN capture) has its two directions land on different workers, so the
/// two-socket run leaves that capture out (a known limit of the kernel's
/// fanout hashing, shared by NIC RSS; AF_XDP's software shard mode
/// decapsulates instead: see the README).
#[test]
fn afpacket_live_flows_equal_the_replay_and_sigterm_flushes_them() {
    require_root!("live capture in network namespaces");
    live_equals_offline(
        CAPTURES,
        &["--capture", "afpacket", "--workers", "1"],
        "TERM",
        "afpacket tpacket_v3",
    );
    let plain: Vec<&str> = CAPTURES
        .iter()
        .copied()
        .filter(|c| !c.contains("vxlan"))
        .collect();
    live_equals_offline(
        &plain,
        &["--capture", "afpacket", "--workers", "2"],
        "TERM",
        "afpacket tpacket_v3",
    );
}

/// Software shard mode on a veth with two RX queues: two workers, and the
/// frames a queue receives for flows the other worker owns cross over
/// through the shard rings. The shard hash decapsulates tunnels (the same
/// inner-IP-pair hash as offline replay), so the VXLAN capture, whose outer
/// source port differs per direction, is included: both directions of each
/// inner flow must meet on one worker.
#[test]
fn afxdp_software_shard_live_flows_equal_the_replay() {
    require_root!("live capture in network namespaces");
    let cfg = tmp_dir("live").join("software-shard.toml");
    // The lender of a frame can be descheduled for tens of milliseconds on
    // a loaded 2-core CI machine: wait that long for what it lends.
    std::fs::write(
        &cfg,
        "[capture]\nshard = \"software\"\nshard_ring = 256\n[stream]\nreorder_window_us = 500000\n",
    )
    .expect("write config");
    live_equals_offline_on(
        2,
        CAPTURES,
        &[
            "--xdp-mode",
            "native",
            "--config",
            cfg.to_str().expect("path"),
        ],
        "INT",
        "afxdp native copy software-shard (2 worker(s)",
        // Slower than the other live tests: the two directions of a flow
        // arrive on different queues, and a frame one worker lends to its
        // owner can be overtaken by the other direction's next frame arriving
        // on the owner's own queue when the lender is descheduled (and the
        // sender's CPU, through XPS, picks the queue, so even one direction
        // can be split). Reassembly waits for such frames
        // (`stream.reorder_window_us`, raised to 500 ms above), so the
        // records still equal the replay's.
        2_000,
    );
}

/// Idle workers feed the wall clock to their flow table: on a quiet link a
/// flow past its timeout is written while the capture still runs.
#[test]
fn idle_flows_expire_on_a_quiet_link() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new();
    let cfg = tmp_dir("live").join("short-timeouts.toml");
    std::fs::write(
        &cfg,
        "[flow.timeouts]\ntcp_syn = 1\ntcp_established = 1\ntcp_closed = 1\nudp = 1\nother = 1\n",
    )
    .expect("write config");
    let cap =
        corpus().join("dns/sv-dns.dns-udp-eve-log-answer-only--dns-udp-google.com-a-aaaa-mx.pcap");
    let mut live = Live::start(&net, &["--config", cfg.to_str().expect("path")]);
    live.wait_ready();
    net.gen(&cap, 20_000);
    let t0 = Instant::now();
    let mut flows = Vec::new();
    while flows.is_empty() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
        flows = live
            .events()
            .into_iter()
            .filter(|e| e["event_type"] == "flow")
            .collect();
    }
    assert!(
        !flows.is_empty(),
        "no flow record written on a quiet link within 10 s: {}",
        live.stderr()
    );
    assert!(
        flows.iter().all(|f| f["flow"]["reason"] == "idle_timeout"),
        "{flows:?}"
    );
    live.signal("INT");
    assert_eq!(
        live.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        live.stderr()
    );
    assert!(!net.xdp_on_b());
}

/// `--duration` ends the capture by itself; periodic stats events carry the
/// capture section.
#[test]
fn duration_stops_the_capture_and_stats_are_periodic() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new();
    let cfg = tmp_dir("live").join("stats-every-second.toml");
    std::fs::write(&cfg, "[output]\nstats_interval = 1\n").expect("write config");
    let t0 = Instant::now();
    let mut live = Live::start(
        &net,
        &["--duration", "2.5", "--config", cfg.to_str().expect("path")],
    );
    live.wait_ready();
    assert_eq!(
        live.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        live.stderr()
    );
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert!(
        live.stderr().contains("duration reached"),
        "{}",
        live.stderr()
    );
    let events = live.events();
    let stats: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "stats")
        .collect();
    assert!(stats.len() >= 3, "2 periodic + 1 final: {stats:?}");
    for s in &stats {
        assert_eq!(s["stats"]["capture"]["iface"], net.b.as_str(), "{s}");
    }
    assert!(!net.xdp_on_b());
}

/// `--capture-only` counts frames without decoding them.
#[test]
fn capture_only_counts_every_frame() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new();
    let mut live = Live::start(&net, &["--capture-only"]);
    live.wait_ready();
    let sent = net.gen(&corpus().join(CAPTURES[0]), 20_000);
    std::thread::sleep(Duration::from_millis(300));
    live.signal("INT");
    assert_eq!(
        live.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        live.stderr()
    );
    let events = live.events();
    assert!(flows_of(&events).is_empty());
    let p = &last_stats(&events)["stats"]["packets"];
    assert_eq!(p["received"].as_u64(), Some(sent), "{p}");
    assert_eq!(p["uninspected"].as_u64(), Some(sent), "{p}");
    assert_eq!(p["accounted"], true, "{p}");
}

fn one_line_error(live: &mut Live, must_contain: &str) {
    let code = live.wait_exit(Duration::from_secs(20));
    let err = live.stderr();
    assert_eq!(code, 1, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one clear line: {err}");
    assert!(lines[0].starts_with("flowtap: error: "), "{err}");
    assert!(err.contains(must_contain), "{must_contain:?} in {err}");
}

#[test]
fn missing_interface_is_one_clear_line() {
    // No namespace needed: the interface is looked up before anything else.
    for source in ["afxdp", "afpacket"] {
        let o = Command::new(FLOWTAP)
            .args(["run", "--iface", "ft-nope0", "--capture", source])
            .output()
            .expect("run flowtap");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "one clear line: {err}");
        assert!(
            err.contains("ft-nope0") && err.contains("does not exist") && err.contains("ip link"),
            "{err}"
        );
    }
    let o = Command::new(FLOWTAP)
        .args(["gen", "--iface", "ft-nope0", "--pcap", "/dev/null"])
        .output()
        .expect("run flowtap gen");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("does not exist"), "{err}");
}

/// Native XDP on an interface whose driver has none (the namespace's
/// loopback), a second capture on a busy interface, and no privileges: each
/// is one line saying what to do, and nothing is left attached.
#[test]
fn no_native_xdp_busy_interface_and_no_privileges_are_clear_errors() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new();

    // no native XDP in the driver
    sh(&["ip", "-n", &net.ns_b, "link", "set", "lo", "up"]);
    let mut l = Live::start_on(&net.ns_b, "lo", &["--xdp-mode", "native"]);
    one_line_error(&mut l, "generic");
    assert!(!net.xdp_on(&net.ns_b, "lo"), "program left on lo");

    // busy: a capture is running on the interface
    let mut first = Live::start(&net, &[]);
    first.wait_ready();
    let mut second = Live::start(&net, &[]);
    one_line_error(&mut second, "already attached");
    assert!(net.xdp_on_b(), "the first capture's program must stay");
    // ... and the first capture still works
    let sent = net.gen(&corpus().join(CAPTURES[0]), 20_000);
    std::thread::sleep(Duration::from_millis(300));
    first.signal("INT");
    assert_eq!(
        first.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        first.stderr()
    );
    let events = first.events();
    assert_eq!(
        last_stats(&events)["stats"]["packets"]["received"].as_u64(),
        Some(sent)
    );
    assert!(!net.xdp_on_b());

    // no privileges (a copy of the binary any user may run)
    let bin = tmp_dir("live-nobody").join("flowtap");
    std::fs::copy(FLOWTAP, &bin).expect("copy binary");
    sh(&[
        "chmod",
        "0755",
        bin.parent().and_then(Path::to_str).expect("dir"),
    ]);
    for source in ["afxdp", "afpacket"] {
        let o = Command::new("ip")
            .args(["netns", "exec", &net.ns_b])
            .args([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ])
            .arg(&bin)
            .args([
                "run",
                "--iface",
                &net.b,
                "--capture",
                source,
                "--output",
                "/dev/null",
            ])
            .output()
            .expect("run flowtap as nobody");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{source}: {err}");
        assert_eq!(err.lines().count(), 1, "{source}: one clear line: {err}");
        assert!(err.contains("run as root"), "{source}: {err}");
        assert!(!net.xdp_on_b());
    }
}

/// Frame bytes (hex) of every frame tshark reads from `path` (passing `filter`).
fn frame_bytes(path: &Path, filter: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "-r".to_string(),
        path.display().to_string(),
        "--enable-protocol".into(),
        "communityid".into(),
        "-T".into(),
        "json".into(),
        "-x".into(),
        "-j".into(),
        "frame".into(),
    ];
    if let Some(f) = filter {
        args.push("-Y".into());
        args.push(f.into());
    }
    let o = Command::new("tshark")
        .args(&args)
        .output()
        .expect("tshark (scripts/setup.sh installs it)");
    assert!(o.status.success(), "tshark {args:?}: {o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Array(Vec::new()));
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    p["_source"]["layers"]["frame_raw"][0]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `flowtap run --iface` honours `[[export.rules]]`: a rule on the HTTP
/// host selects the HTTP flow among the replayed captures; its file holds
/// every frame of that flow (from the SYN, buffered before the match), byte
/// for byte, and the `pcap` event says so.
#[test]
fn live_capture_exports_the_matching_flow() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new();
    let dir = tmp_dir("live-export").join(format!("{}", SEQ.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("export.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[export.rules]]\nname = \"web\"\ndir = \"{}\"\nmatch.http.host = \"*.ethereal.com\"\n",
            dir.display()
        ),
    )
    .expect("write");
    let http = corpus().join("http/sv-http-all-headers--input.pcap");
    let dns = corpus().join(CAPTURES[1]);
    let mut live = Live::start(
        &net,
        &[
            "--capture",
            "afpacket",
            "--workers",
            "1",
            "--config",
            cfg.to_str().expect("path"),
        ],
    );
    live.wait_ready();
    net.gen(&dns, 20_000);
    net.gen(&http, 20_000);
    std::thread::sleep(Duration::from_millis(500));
    live.signal("TERM");
    assert_eq!(
        live.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        live.stderr()
    );
    let events = live.events();
    let pcaps: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "pcap")
        .collect();
    assert_eq!(pcaps.len(), 1, "one matching flow: {pcaps:?}");
    let p = &pcaps[0]["pcap"];
    assert_eq!(p["community_id"], "1:D0Hb5PnRilB52ktTszXCb9PSY8M=");
    assert_eq!(p["reason"], "http.host=www.ethereal.com");
    let path = PathBuf::from(p["path"].as_str().expect("path"));
    let got = frame_bytes(&path, None);
    let want = frame_bytes(
        &http,
        Some("communityid == \"1:D0Hb5PnRilB52ktTszXCb9PSY8M=\""),
    );
    assert!(want.len() > 10);
    assert_eq!(
        got, want,
        "the live file holds the flow's frames, SYN first"
    );
    assert_eq!(p["packets"].as_u64(), Some(want.len() as u64));
    let ex = &last_stats(&events)["stats"]["export"];
    assert_eq!(ex["matches"], 1, "{ex}");
    assert_eq!(ex["packets_missed"], 0, "{ex}");
}

/// `capture.drop_user`: once the AF_XDP capture runs, flowtap becomes
/// `nobody` in every thread with no capability left, and still captures
/// every frame, writes its records and detaches its XDP program at the end
/// (the program hangs on a BPF link, which closing needs no privilege for).
#[test]
fn drop_user_captures_without_privileges() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new();
    let cfg = tmp_dir("live").join("drop-user.toml");
    std::fs::write(&cfg, "[capture]\ndrop_user = \"nobody\"\n").expect("write config");
    let capture = corpus().join(CAPTURES[0]);
    let replay = run_flowtap(&capture, 1, &[]);
    assert!(replay.status.success(), "{}", replay.stderr);
    let mut live = Live::start(
        &net,
        &[
            "--capture",
            "afxdp",
            "--xdp-mode",
            "native",
            "--config",
            cfg.to_str().expect("path"),
        ],
    );
    live.wait_ready();
    let t0 = Instant::now();
    while !live.stderr().contains("now running as uid") && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        live.stderr().contains("now running as uid 65534"),
        "{}",
        live.stderr()
    );
    // Every thread of the process: uids and capabilities.
    let tasks = format!("/proc/{}/task", live.child.id());
    let mut threads = 0;
    for t in std::fs::read_dir(&tasks).expect("tasks") {
        let status =
            std::fs::read_to_string(t.expect("task").path().join("status")).expect("status");
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| panic!("{k} in {status}"))
        };
        assert_eq!(field("Uid:"), "65534 65534 65534 65534", "{status}");
        for cap in ["CapEff:", "CapPrm:", "CapAmb:"] {
            assert_eq!(field(cap), "0000000000000000", "{cap} {status}");
        }
        threads += 1;
    }
    assert!(
        threads >= 2,
        "the worker thread was checked too ({threads})"
    );
    let sent = net.gen(&capture, 20_000);
    std::thread::sleep(Duration::from_millis(500));
    live.signal("INT");
    let code = live.wait_exit(Duration::from_secs(20));
    assert_eq!(code, 0, "clean exit: {}", live.stderr());
    let events = live.events();
    let stats = &last_stats(&events)["stats"];
    assert_eq!(stats["capture"]["received"].as_u64(), Some(sent), "{stats}");
    assert_eq!(
        flows_of(&events).len(),
        replay.of_type("flow").len(),
        "the flows of the capture"
    );
    assert!(!net.xdp_on_b(), "the XDP program is detached");
}
