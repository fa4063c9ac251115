//! Two network namespaces joined by a veth pair: `flowtap gen` sends from
//! one side, a capture listens on the other.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");

fn next_seq() -> u32 {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

pub fn sh(args: &[&str]) {
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

pub struct Net {
    pub ns_a: String,
    pub ns_b: String,
    pub a: String,
    pub b: String,
}

impl Net {
    /// Two namespaces joined by a veth pair (names carry `tag`, one
    /// letter, the process id and a sequence number: tests of one binary
    /// run at once).
    pub fn new(tag: &str) -> Net {
        let id = format!("{}{}", std::process::id() % 100_000, next_seq());
        let net = Net {
            ns_a: format!("ft{tag}A{id}"),
            ns_b: format!("ft{tag}B{id}"),
            a: format!("ft{tag}a{id}"),
            b: format!("ft{tag}b{id}"),
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
        sh(&[
            "ip", "link", "add", &net.a, "netns", &net.ns_a, "mtu", "1600", "type", "veth", "peer",
            "name", &net.b, "netns", &net.ns_b, "mtu", "1600",
        ]);
        sh(&["ip", "-n", &net.ns_a, "link", "set", &net.a, "up"]);
        sh(&["ip", "-n", &net.ns_b, "link", "set", &net.b, "up"]);
        // flowtap's endpoint and Prometheus talk over ns_b's loopback.
        sh(&["ip", "-n", &net.ns_b, "link", "set", "lo", "up"]);
        net
    }

    /// `flowtap gen` in `ns_a` into `a` at 20,000 frames a second;
    /// returns the frames sent.
    pub fn gen(&self, capture: &Path) -> u64 {
        self.gen_at(capture, 20_000)
    }

    /// `flowtap gen` at `pps` frames a second; returns the frames sent.
    pub fn gen_at(&self, capture: &Path, pps: u64) -> u64 {
        let o = Command::new("ip")
            .args([
                "netns", "exec", &self.ns_a, FLOWTAP, "gen", "--iface", &self.a,
            ])
            .arg("--pcap")
            .arg(capture)
            .args(["--pps", &pps.to_string()])
            .output()
            .expect("run flowtap gen");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "flowtap gen failed: {err}");
        assert!(err.contains("skipped 0"), "frames skipped: {err}");
        err.split_whitespace()
            .skip_while(|w| *w != "sent")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `sent N` in {err}"))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A network namespace with only its loopback (up), deleted on drop: for a
/// server and its client, or a capture on `lo`.
pub struct LoopbackNs(pub String);

impl LoopbackNs {
    pub fn new(tag: &str) -> LoopbackNs {
        let name = format!("ft{tag}{}-{}", std::process::id(), next_seq());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        LoopbackNs(name)
    }
}

impl Drop for LoopbackNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
