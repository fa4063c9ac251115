//! Reload without restart and the control socket, live: `flowtap run`
//! captures with AF_XDP on one end of a veth pair (its own network
//! namespaces), `flowtap gen` sends two UDP flows into the other end, and
//! the configuration file changes under the running capture:
//!
//! - SIGHUP: a second file sink is added, the export rule replaced, the
//!   XDP pre-filter given a port to drop;
//! - `flowtap ctl reload` of a broken file: refused, naming the field, and
//!   the running configuration goes on;
//! - `flowtap ctl reload` of a good one: the pre-filter changes again.
//!
//! The flows outlive every reload (one record per flow, with the packets
//! from before and after, in the old sink and in the new one, same
//! flow_id), the new sink gets events only from the reload on, the
//! capture drops nothing, and the pre-filter drops exactly the frames sent
//! while it named their port. A second test does the same after the
//! capture dropped its privileges (`capture.drop_user`).
//!
//! Needs root (CI runs as root); see `common/root.rs`.

mod common;
#[path = "common/pcap.rs"]
#[allow(dead_code)]
mod pcap;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::netpair::Net;
use common::{tmp_dir, StderrLog};
use pcap::{Frame, Pcap};

static SERIAL: Mutex<()> = Mutex::new(());
static SEQ: AtomicU32 = AtomicU32::new(0);
const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");

/// Frames per flow in one send of the test capture.
const PER_FLOW: u64 = 40;
/// The flow the pre-filter never drops, and the one it drops after the reload.
const KEPT_PORT: u16 = 6000;
const FILTERED_PORT: u16 = 7000;

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two UDP flows, 10.9.0.1:5000 -> 10.9.0.2:KEPT_PORT and
/// 10.9.0.1:5001 -> 10.9.0.2:FILTERED_PORT, PER_FLOW frames each, interleaved.
fn two_flows(path: &Path) {
    fn frame(sport: u16, dport: u16, seq: u16) -> Vec<u8> {
        let payload = [seq as u8; 32];
        let udp_len = 8 + payload.len() as u16;
        let ip_len = 20 + udp_len;
        let mut f = Vec::new();
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&ip_len.to_be_bytes());
        ip.extend_from_slice(&seq.to_be_bytes());
        ip.extend_from_slice(&[0, 0, 64, 17, 0, 0, 10, 9, 0, 1, 10, 9, 0, 2]);
        let sum: u32 = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&payload);
        f
    }
    let mut frames = Vec::new();
    for i in 0..PER_FLOW as u16 {
        for (sport, dport) in [(5000, KEPT_PORT), (5001, FILTERED_PORT)] {
            let data = frame(sport, dport, i);
            frames.push(Frame {
                ts_ns: 1_700_000_000_000_000_000 + u64::from(i) * 1_000_000,
                orig_len: data.len() as u32,
                data,
            });
        }
    }
    Pcap { link: 1, frames }.write(path);
}

/// The config file: sinks, one export rule, the pre-filter's ports, and
/// whatever `extra` adds.
fn config(
    sinks: &[&Path],
    rule: &str,
    export_dir: &Path,
    drop_ports: &[u16],
    extra: &str,
) -> String {
    let mut s = String::from("workers = 1\n[output]\nstats_interval = 1\n");
    for p in sinks {
        s.push_str(&format!("[[output.sinks]]\nurl = \"{}\"\n", p.display()));
    }
    s.push_str(&format!(
        "[[export.rules]]\nname = \"{rule}\"\ndir = \"{}\"\naction = \"shared\"\nmatch.dst_port = [{KEPT_PORT}]\n",
        export_dir.display()
    ));
    let ports: Vec<String> = drop_ports.iter().map(u16::to_string).collect();
    s.push_str(&format!(
        "[capture]\nsource = \"afxdp\"\nxdp_mode = \"native\"\n{extra}[capture.filter]\ndrop_ports = [{}]\n",
        ports.join(", ")
    ));
    s
}

struct Live {
    child: Child,
    stderr: StderrLog,
}

impl Live {
    fn start(net: &Net, cfg: &Path, socket: &Path) -> Live {
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", &net.ns_b, FLOWTAP, "run", "--iface", &net.b,
            ])
            .arg("--config")
            .arg(cfg)
            .arg("--control-socket")
            .arg(socket)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flowtap run");
        let stderr = StderrLog::collect(&mut child);
        let mut live = Live { child, stderr };
        live.wait_for("flowtap: control socket");
        live
    }

    fn stderr(&self) -> String {
        self.stderr.text()
    }

    fn wait_for(&mut self, what: &str) {
        let t0 = Instant::now();
        while !self.stderr().contains(what) {
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "flowtap exited ({st}) waiting for {what:?}: {}",
                    self.stderr()
                );
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no {what:?} after 30 s: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        sh(&["kill", &format!("-{sig}"), &self.child.id().to_string()]);
    }

    fn stop(&mut self) {
        self.signal("TERM");
        let t0 = Instant::now();
        while self.child.try_wait().expect("wait").is_none() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "flowtap did not stop: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The reader thread may still be taking the last lines.
        self.stderr.all();
        assert_eq!(
            self.child.try_wait().expect("wait").and_then(|s| s.code()),
            Some(0),
            "clean exit: {}",
            self.stderr()
        );
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ctl(socket: &Path, cmd: &str) -> Output {
    Command::new(FLOWTAP)
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .arg(cmd)
        .output()
        .expect("run flowtap ctl")
}

/// `flowtap ctl CMD`, which must succeed: its JSON reply.
fn ctl_ok(socket: &Path, cmd: &str) -> Value {
    let o = ctl(socket, cmd);
    assert!(
        o.status.success(),
        "ctl {cmd}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("ctl {cmd} reply: {e}"))
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

fn of_type<'a>(ev: &'a [Value], t: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["event_type"] == t).collect()
}

/// The flow record of the flow to `port`, which must be the only one.
fn flow_to(ev: &[Value], port: u16) -> Value {
    let f: Vec<&Value> = of_type(ev, "flow")
        .into_iter()
        .filter(|e| e["dest_port"] == port)
        .collect();
    assert_eq!(f.len(), 1, "one record for the flow to port {port}: {f:?}");
    f[0].clone()
}

/// Waits until the stats (`ctl stats`) show `n` packets received.
fn wait_received(socket: &Path, n: u64) -> Value {
    wait_stats(socket, n, 0)
}

/// Waits until the stats show `n` packets received and `filtered` frames
/// dropped by port in XDP (the capture counters are read once a second).
fn wait_stats(socket: &Path, n: u64, filtered: u64) -> Value {
    let t0 = Instant::now();
    loop {
        let s = ctl_ok(socket, "stats");
        if s["packets"]["received"].as_u64() >= Some(n)
            && s["capture"]["filtered"]["port"].as_u64() >= Some(filtered)
        {
            return s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{n} packets not received: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn reloads_logged(live: &Live) -> usize {
    live.stderr()
        .lines()
        .filter(|l| l.starts_with("flowtap: reload ") && !l.contains("refused"))
        .count()
}

#[test]
fn reload_changes_sinks_export_and_prefilter_while_flows_go_on() {
    require_root!("live AF_XDP capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new("r");
    let dir = tmp_dir("reload").join(format!("main-{}", SEQ.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    let export_dir = dir.join("pcap");
    std::fs::create_dir_all(&export_dir).expect("dirs");
    let (first, second) = (dir.join("first.json"), dir.join("second.json"));
    let (cfg, socket, traffic) = (
        dir.join("flowtap.toml"),
        dir.join("ctl.sock"),
        dir.join("two.pcap"),
    );
    two_flows(&traffic);
    std::fs::write(&cfg, config(&[&first], "before", &export_dir, &[], "")).expect("config");
    let mut live = Live::start(&net, &cfg, &socket);

    // The socket: owner only.
    let meta = std::fs::metadata(&socket).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");
    let status = ctl_ok(&socket, "status");
    assert_eq!(status["source"], "afxdp", "{status}");
    assert_eq!(status["workers"], 1, "{status}");
    assert_eq!(status["sinks_up"], 1, "{status}");
    assert_eq!(status["sinks_down"], 0, "{status}");
    assert_eq!(status["reloads"], 0, "{status}");
    assert!(status["uptime_secs"].as_f64() > Some(0.0), "{status}");

    // Before: both flows pass, the first sink only.
    assert_eq!(net.gen(&traffic), 2 * PER_FLOW);
    wait_received(&socket, 2 * PER_FLOW);

    // SIGHUP: a second sink, the export rule replaced, port 7000 dropped in XDP.
    std::fs::write(
        &cfg,
        config(
            &[&first, &second],
            "after",
            &export_dir,
            &[FILTERED_PORT],
            "",
        ),
    )
    .expect("config");
    let hup_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    live.signal("HUP");
    live.wait_for("flowtap: reload 1:");
    let err = live.stderr();
    assert!(err.contains("export rules replaced"), "{err}");
    assert!(err.contains("pre-filter updated"), "{err}");
    assert!(!err.contains("need a restart"), "{err}");
    let status = ctl_ok(&socket, "status");
    assert_eq!(status["sinks_up"], 2, "{status}");
    assert_eq!(status["reloads"], 1, "{status}");
    // The export file of the old rule was finished at the reload.
    let t0 = Instant::now();
    while !std::fs::read_dir(&export_dir)
        .expect("export dir")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("_before"))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no finished file of the old rule"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    assert_eq!(net.gen(&traffic), 2 * PER_FLOW);
    wait_received(&socket, 3 * PER_FLOW);

    // A broken file: refused with the field named; nothing changes.
    std::fs::write(
        &cfg,
        config(&[&first], "broken", &export_dir, &[], "")
            .replace("drop_ports = []", "drop_ports = []\ndrop_vlans = [5000]"),
    )
    .expect("config");
    let o = ctl(&socket, "reload");
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a bad config is refused: {msg}");
    assert!(
        msg.contains("capture.filter.drop_vlans"),
        "names the field: {msg}"
    );
    live.wait_for("reload refused, the running configuration stays");
    assert!(
        live.stderr().contains("capture.filter.drop_vlans"),
        "{}",
        live.stderr()
    );
    let status = ctl_ok(&socket, "status");
    assert_eq!(status["sinks_up"], 2, "the old config runs on: {status}");
    assert_eq!(status["reloads"], 1, "{status}");

    // ctl reload of a good file, while frames arrive (80 frames at 100/s:
    // 0.8 s, the reload in the middle): port 7000 stays dropped (one more
    // port), nothing is lost.
    std::fs::write(
        &cfg,
        config(
            &[&first, &second],
            "after",
            &export_dir,
            &[FILTERED_PORT, 9999],
            "",
        ),
    )
    .expect("config");
    let sending = std::thread::scope(|sc| {
        let sender = sc.spawn(|| net.gen_at(&traffic, 100));
        std::thread::sleep(Duration::from_millis(250));
        let r = ctl_ok(&socket, "reload");
        let running = !sender.is_finished();
        (r, running, sender.join().expect("gen"))
    });
    let (r, overlapped, sent) = sending;
    assert!(overlapped, "the reload ran while frames were being sent");
    assert_eq!(sent, 2 * PER_FLOW);
    assert_eq!(r["generation"], 2, "{r}");
    assert_eq!(r["filter_changed"], true, "{r}");
    assert_eq!(r["export_changed"], false, "{r}");
    assert_eq!(r["sinks_kept"].as_array().map(Vec::len), Some(2), "{r}");
    assert_eq!(r["workers_took_over"], true, "{r}");
    assert_eq!(reloads_logged(&live), 2, "{}", live.stderr());
    let stats = wait_stats(&socket, 4 * PER_FLOW, 2 * PER_FLOW);
    assert_eq!(
        stats["capture"]["filtered"]["port"],
        2 * PER_FLOW,
        "{stats}"
    );

    // flush-export: the shared file of the new rule is finished now.
    let f = ctl_ok(&socket, "flush-export");
    assert_eq!(f["shared_files_finished"], 1, "{f}");
    let after: Vec<String> = std::fs::read_dir(&export_dir)
        .expect("export dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("_after") && !n.ends_with(".tmp"))
        .collect();
    assert_eq!(after.len(), 1, "{after:?}");

    live.stop();
    let (a, b) = (events(&first), events(&second));
    // The kept flow: one record with every frame of the three sends, in
    // both sinks with one flow_id (the flow lived through both reloads).
    let kept_a = flow_to(&a, KEPT_PORT);
    let kept_b = flow_to(&b, KEPT_PORT);
    assert_eq!(kept_a["flow"]["pkts_toserver"], 3 * PER_FLOW, "{kept_a}");
    assert_eq!(kept_a["flow_id"], kept_b["flow_id"]);
    assert_eq!(kept_a["flow"], kept_b["flow"]);
    // The filtered flow: only the frames of the first send reached it.
    let filtered = flow_to(&a, FILTERED_PORT);
    assert_eq!(filtered["flow"]["pkts_toserver"], PER_FLOW, "{filtered}");
    assert_eq!(flow_to(&b, FILTERED_PORT)["flow_id"], filtered["flow_id"]);
    // The new sink has nothing from before the first reload: every stats
    // event in it was written after the SIGHUP (a flow record carries its
    // last packet's time instead), and the first counts the first send.
    let first_stats_b = of_type(&b, "stats")[0];
    assert!(
        first_stats_b["stats"]["packets"]["received"].as_u64() >= Some(2 * PER_FLOW),
        "{first_stats_b}"
    );
    for e in of_type(&b, "stats") {
        let ts = e["timestamp"]
            .as_str()
            .and_then(output::writer::parse_rfc3339_ns)
            .unwrap_or_else(|| panic!("timestamp of {e}"));
        assert!(
            ts >= hup_ns,
            "an event from before the reload in the new sink: {e}"
        );
    }
    // The last stats: every frame accounted, none lost by the capture.
    let last = of_type(&a, "stats").last().copied().expect("stats")["stats"].clone();
    assert_eq!(last["packets"]["received"], 4 * PER_FLOW, "{last}");
    assert_eq!(last["capture"]["dropped"]["total"], 0, "{last}");
    assert_eq!(last["capture"]["output_events_dropped"], 0, "{last}");
    assert_eq!(last["capture"]["filtered"]["port"], 2 * PER_FLOW, "{last}");
    // Export: the old rule's file holds the first send of the kept flow,
    // the new rule's files the two later ones.
    let pcaps = of_type(&a, "pcap");
    let packets_of = |rule: &str| -> u64 {
        pcaps
            .iter()
            .filter(|e| e["pcap"]["rule"] == rule)
            .map(|e| e["pcap"]["packets"].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!(packets_of("before"), PER_FLOW, "{pcaps:?}");
    assert_eq!(packets_of("after"), 2 * PER_FLOW, "{pcaps:?}");
    assert!(!socket.exists(), "the socket is removed at the end");
    let _ = std::fs::remove_dir_all(&dir);
}

/// After `capture.drop_user`: the socket belongs to that user (still mode
/// 0600), answers, and a reload still adds a sink (opened as that user)
/// and updates the XDP pre-filter through the map descriptors held.
#[test]
fn reload_works_after_the_privilege_drop() {
    require_root!("live AF_XDP capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new("r");
    let dir = tmp_dir("reload").join(format!("drop-{}", SEQ.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    let export_dir = dir.join("pcap");
    std::fs::create_dir_all(&export_dir).expect("dirs");
    // `nobody` writes here after the drop.
    for d in [&dir, &export_dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let (first, second) = (dir.join("first.json"), dir.join("second.json"));
    let (cfg, traffic) = (dir.join("flowtap.toml"), dir.join("two.pcap"));
    let socket: PathBuf = dir.join("run").join("ctl.sock");
    two_flows(&traffic);
    let drop = "drop_user = \"nobody\"\n";
    std::fs::write(&cfg, config(&[&first], "r", &export_dir, &[], drop)).expect("config");
    let mut live = Live::start(&net, &cfg, &socket);
    live.wait_for("now running as uid 65534");
    let meta = std::fs::metadata(&socket).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");
    assert_eq!(meta.uid(), 65534, "the socket is handed to drop_user");
    let status = ctl_ok(&socket, "status");
    assert_eq!(status["sinks_up"], 1, "{status}");

    assert_eq!(net.gen(&traffic), 2 * PER_FLOW);
    wait_received(&socket, 2 * PER_FLOW);
    std::fs::write(
        &cfg,
        config(&[&first, &second], "r", &export_dir, &[FILTERED_PORT], drop),
    )
    .expect("config");
    let r = ctl_ok(&socket, "reload");
    assert_eq!(r["filter_changed"], true, "{r}");
    assert_eq!(r["sinks_started"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(net.gen(&traffic), 2 * PER_FLOW);
    let stats = wait_stats(&socket, 3 * PER_FLOW, PER_FLOW);
    assert_eq!(stats["capture"]["filtered"]["port"], PER_FLOW, "{stats}");
    live.stop();
    let b = events(&second);
    assert_eq!(
        std::fs::metadata(&second).expect("second sink").uid(),
        65534,
        "the new sink's file was created by drop_user"
    );
    let kept = flow_to(&b, KEPT_PORT);
    assert_eq!(kept["flow"]["pkts_toserver"], 2 * PER_FLOW, "{kept}");
    assert_eq!(
        flow_to(&b, FILTERED_PORT)["flow"]["pkts_toserver"],
        PER_FLOW
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The names of the capture's sink threads (`sink-NAME`).
fn sink_threads(live: &Live) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", live.child.id()))
        .expect("tasks")
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .filter(|c| c.starts_with("sink-"))
        .collect();
    names.sort();
    names
}

/// `/metrics` of the capture in `ns` (python3's urllib inside the namespace).
fn scrape(ns: &str, port: u16) -> String {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c"])
        .arg(format!(
            "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).read().decode())"
        ))
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "scrape: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `host` labels of `flowtap_host_bytes_total{direction="sent"}` and
/// the sum of those series.
fn talkers(text: &str) -> (std::collections::BTreeSet<String>, u64) {
    let mut hosts = std::collections::BTreeSet::new();
    let mut sum = 0;
    for l in text
        .lines()
        .filter(|l| l.starts_with("flowtap_host_bytes_total{"))
    {
        if !l.contains("direction=\"sent\"") {
            continue;
        }
        let host = l
            .split("host=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("host label");
        hosts.insert(host.to_string());
        sum += l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .expect("value") as u64;
    }
    (hosts, sum)
}

/// `[app_metrics]` limits change on a reload: the top-talker label keeps
/// two addresses before, one (plus `other`) after, and the application
/// metrics start again from zero (a counter reset) while the capture goes on.
#[test]
fn reload_applies_new_app_metric_limits() {
    require_root!("live AF_XDP capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new("r");
    let dir = tmp_dir("reload").join(format!("metrics-{}", SEQ.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    let export_dir = dir.join("pcap");
    std::fs::create_dir_all(&export_dir).expect("dirs");
    let (events_path, cfg, socket, traffic) = (
        dir.join("events.json"),
        dir.join("flowtap.toml"),
        dir.join("ctl.sock"),
        dir.join("two.pcap"),
    );
    two_flows(&traffic);
    // Flows end 1 s after their last frame: their records feed the talkers.
    // A second sink before the reload, none after.
    let extra = dir.join("extra.json");
    let base = |hosts: u32| {
        let sinks: Vec<&Path> = if hosts == 100 {
            vec![&events_path, &extra]
        } else {
            vec![&events_path]
        };
        config(&sinks, "r", &export_dir, &[], "").replace(
            "[output]\n",
            "[output]\nmetrics_listen = \"127.0.0.1:9464\"\n",
        ) + &format!("[flow.timeouts]\nudp = 1\n[app_metrics]\nhosts = {hosts}\n")
    };
    std::fs::write(&cfg, base(100)).expect("config");
    let mut live = Live::start(&net, &cfg, &socket);
    let wait_talkers = |want_sum_at_least: u64| {
        let t0 = Instant::now();
        loop {
            let (hosts, sum) = talkers(&scrape(&net.ns_b, 9464));
            if sum >= want_sum_at_least {
                return (hosts, sum);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "no talkers summing {want_sum_at_least}: {hosts:?} {sum}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // One send: each flow's PER_FLOW frames of 74 bytes (flow records count
    // whole frames).
    let sent_bytes = 2 * PER_FLOW * 74;
    assert_eq!(net.gen(&traffic), 2 * PER_FLOW);
    let (hosts, sum) = wait_talkers(sent_bytes);
    assert_eq!(
        hosts,
        ["10.9.0.1".to_string(), "10.9.0.2".to_string()].into(),
        "both addresses under the limit of 100"
    );
    assert_eq!(sum, sent_bytes, "10.9.0.1 sent it all");

    assert!(sink_threads(&live).contains(&"sink-file-2".to_string()));
    std::fs::write(&cfg, base(1)).expect("config");
    let r = ctl_ok(&socket, "reload");
    assert_eq!(r["app_metrics_changed"], true, "{r}");
    assert_eq!(r["sinks_retired"], serde_json::json!(["file-2"]), "{r}");
    // The removed sink's thread ends (no handle of the workers or the
    // capture loop keeps it alive).
    let t0 = Instant::now();
    while sink_threads(&live).contains(&"sink-file-2".to_string()) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the retired sink still runs: {:?}",
            sink_threads(&live)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sink_threads(&live), vec!["sink-file".to_string()]);
    assert_eq!(r["needs_restart"], serde_json::json!([]), "{r}");
    assert!(live
        .stderr()
        .contains("app metrics restarted with the new limits"));
    let (_, sum) = talkers(&scrape(&net.ns_b, 9464));
    assert_eq!(sum, 0, "the application metrics started again");
    assert_eq!(net.gen(&traffic), 2 * PER_FLOW);
    let (hosts, sum) = wait_talkers(sent_bytes);
    assert_eq!(hosts.len(), 2, "one address and `other`: {hosts:?}");
    assert!(hosts.contains("other"), "{hosts:?}");
    assert_eq!(sum, sent_bytes, "only the send after the reload");
    let stats = ctl_ok(&socket, "stats");
    assert_eq!(stats["packets"]["received"], 4 * PER_FLOW, "{stats}");
    assert_eq!(stats["capture"]["dropped"]["total"], 0, "{stats}");
    live.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
