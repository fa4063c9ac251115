//! Two network namespaces joined by a veth pair: `flowtap gen` sends from
//! one side, a capture listens on the other.

use std::path::Path;
use std::process::Command;

const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");

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
    /// letter, and the process id).
    pub fn new(tag: &str) -> Net {
        let id = std::process::id() % 100_000;
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

    /// `flowtap gen` in `ns_a` into `a`; returns the frames sent.
    pub fn gen(&self, capture: &Path) -> u64 {
        let o = Command::new("ip")
            .args([
                "netns", "exec", &self.ns_a, FLOWTAP, "gen", "--iface", &self.a,
            ])
            .arg("--pcap")
            .arg(capture)
            .args(["--pps", "20000"])
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
