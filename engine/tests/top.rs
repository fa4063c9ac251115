//! `flowtap top` in a real terminal: tmux runs it against a live capture
//! (AF_PACKET, two workers) in a throw-away network namespace while
//! `flowtap gen` sends W1 into the capture from the other namespace; the
//! test reads the pane (`tmux capture-pane`) and drives the keys
//! (`tmux send-keys`): the per-worker packet rates follow the sending rate,
//! and the DNS names, HTTP hosts, TLS server names and talkers listed are
//! those of the capture sent (checked against an offline replay of it).
//!
//! Needs root for the namespaces (CI runs as root) and tmux (scripts/setup.sh).

mod common;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::netpair::*;
use common::prometheus::{require, Proc};
use common::*;

const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");
const METRICS_PORT: u16 = 9464;

struct Tmux(String);

impl Tmux {
    fn start(name: &str, width: u16, height: u16, command: &str) -> Tmux {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", name])
            .status();
        sh(&[
            "tmux",
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        Tmux(name.to_string())
    }

    fn pane(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        sh(&["tmux", "send-keys", "-t", &self.0, keys]);
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.0])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The pane once a redraw has finished: two captures 100 ms apart that
    /// agree (top redraws once a second; a capture taken while a redraw is
    /// being written can show a row half old, half new, e.g. a name made
    /// of the start of one and the end of another).
    fn settled_pane(&self) -> String {
        let mut p = self.pane();
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(100));
            let q = self.pane();
            if q == p {
                break;
            }
            p = q;
        }
        p
    }

    /// Waits until the pane satisfies `ok` (panics with the pane after `secs`).
    fn wait_for(&self, what: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        loop {
            let p = self.settled_pane();
            if ok(&p) {
                return p;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "{what}: not shown after {secs} s:\n{p}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

/// The names in the rows of a ranked tab (`#  name  rate`), `other` aside.
fn listed(pane: &str) -> Vec<String> {
    pane.lines()
        .filter(|l| l.starts_with('│'))
        .filter_map(|l| {
            let l = l.trim_matches(|c| c == '│' || c == ' ');
            let mut w = l.split_whitespace();
            let rank = w.next()?;
            rank.parse::<u32>().ok()?;
            let name = w.next()?.to_string();
            (name != "other").then_some(name)
        })
        .collect()
}

/// The number after "· " and before " pkt/s" in the header line.
fn header_pps(pane: &str) -> Option<f64> {
    let head = pane.lines().next()?;
    let before = head.split(" pkt/s").next()?;
    let n = before.rsplit("· ").next()?.trim();
    let (num, mult) = match n.strip_suffix('k') {
        Some(k) => (k, 1e3),
        None => match n.strip_suffix('M') {
            Some(m) => (m, 1e6),
            None => (n, 1.0),
        },
    };
    num.parse::<f64>().ok().map(|v| v * mult)
}

/// Names of the capture, from an offline replay's events.
fn names_in(pcap: &Path) -> [BTreeSet<String>; 4] {
    let out = Command::new(FLOWTAP)
        .args(["run", "-q", "--pcap"])
        .arg(pcap)
        .args(["-o", "-"])
        .output()
        .expect("replay");
    assert!(out.status.success());
    let mut sets: [BTreeSet<String>; 4] = Default::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let e: serde_json::Value = serde_json::from_str(line).expect("JSON");
        if let Some(n) = e["dns"]["queries"][0]["rrname"].as_str() {
            sets[0].insert(n.to_string());
        }
        if let Some(h) = e["http"]["host"].as_str() {
            sets[1].insert(h.to_string());
        }
        if let Some(s) = e["tls"]["sni"].as_str() {
            sets[2].insert(s.to_string());
        }
        for k in ["src_ip", "dest_ip"] {
            if let Some(ip) = e[k].as_str() {
                sets[3].insert(ip.to_string());
            }
        }
    }
    sets
}

#[test]
fn flowtap_top_shows_a_live_capture_in_tmux() {
    require_root!("network namespaces");
    require("tmux");
    let dir = tmp_dir("top");
    let w1 = dir.join("w1-20k.pcap");
    if !w1.exists() {
        let ok = Command::new("python3")
            .arg(corpus().join("../bench/gen_bench_pcap.py"))
            .arg("-o")
            .arg(&w1)
            .args(["-n", "20000", "--seed", "1"])
            .status()
            .expect("python3");
        assert!(ok.success(), "gen_bench_pcap.py");
    }
    let [dns, http, sni, addrs] = names_in(&w1);
    assert!(!dns.is_empty() && !http.is_empty() && !sni.is_empty());

    let net = Net::new("t");
    let cfg = dir.join("flowtap.toml");
    // Short timeouts: flows end (and feed the talkers) while the test runs.
    std::fs::write(
        &cfg,
        "[flow.timeouts]\ntcp_syn = 1\ntcp_established = 1\ntcp_closed = 1\nudp = 1\nother = 1\n",
    )
    .expect("config");
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns", "exec", &net.ns_b, FLOWTAP, "run", "--iface", &net.b,
    ])
    .args(["--capture", "afpacket", "--workers", "2", "--metrics"])
    .arg(format!("127.0.0.1:{METRICS_PORT}"))
    .arg("--config")
    .arg(&cfg)
    .args(["--output", "/dev/null"]);
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
    let tmux = Tmux::start(
        &format!("ftop{}", std::process::id()),
        120,
        40,
        &format!(
            "ip netns exec {} {FLOWTAP} top --metrics 127.0.0.1:{METRICS_PORT} --interval 1",
            net.ns_b
        ),
    );
    // W1 at 4,000 frames/s, three times over (15 s of traffic).
    let sender = {
        let (ns, iface, pcap) = (net.ns_a.clone(), net.a.clone(), w1.clone());
        std::thread::spawn(move || {
            Command::new("ip")
                .args(["netns", "exec", &ns, FLOWTAP, "gen", "--iface", &iface])
                .arg("--pcap")
                .arg(&pcap)
                .args(["--pps", "4000", "--loop", "3"])
                .output()
                .expect("flowtap gen")
        })
    };

    let pane = tmux.wait_for("packets/s of the live capture", 20, |p| {
        header_pps(p).is_some_and(|v| v > 1000.0)
    });
    let pps = header_pps(&pane).expect("rate");
    assert!(
        (1000.0..12_000.0).contains(&pps),
        "top shows {pps} pkt/s while 4,000 frames/s are sent:\n{pane}"
    );
    assert!(pane.contains("2 workers"), "{pane}");
    assert!(
        pane.lines().any(|l| l.contains("│0 ")) && pane.lines().any(|l| l.contains("│1 ")),
        "a row per worker:\n{pane}"
    );
    assert!(pane.contains("Capture drops"), "{pane}");

    for (key, title, names) in [
        ("3", "DNS names queried", &dns),
        ("4", "HTTP hosts", &http),
        ("5", "TLS server names", &sni),
        ("2", "Top talkers", &addrs),
    ] {
        tmux.keys(key);
        // The block's own title (the tab bar always names every tab).
        let block = format!("┌{title}");
        let pane = tmux.wait_for(title, 20, |p| p.contains(&block) && !listed(p).is_empty());
        let shown = listed(&pane);
        for n in &shown {
            assert!(
                names.contains(n),
                "{title}: {n} is not in the capture sent:\n{pane}"
            );
        }
    }
    // Arrow keys move between tabs too, `p` pauses, `q` quits.
    tmux.keys("Left");
    tmux.wait_for("the overview again", 5, |p| p.contains("┌Workers"));
    tmux.keys("p");
    tmux.wait_for("pause", 5, |p| {
        p.lines().next().is_some_and(|h| h.contains("PAUSED"))
    });
    tmux.keys("q");
    let t0 = Instant::now();
    while tmux.alive() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "q did not quit:\n{}",
            tmux.pane()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = sender.join().expect("sender");
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let _ = flowtap.child.kill();
}

/// Nothing listening: a clear one-line error before the terminal is taken.
#[test]
fn top_without_an_instance_says_so() {
    let out = Command::new(FLOWTAP)
        .args(["top", "--metrics", "127.0.0.1:1"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach 127.0.0.1:1") && err.contains("flowtap run --metrics"),
        "{err}"
    );
}
