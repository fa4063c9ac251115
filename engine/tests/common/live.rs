//! Shared by the live real-server tests (pgsql, mysql, redis, amqp): a
//! throw-away network namespace and `flowtap run` capturing its loopback
//! with AF_PACKET. Included with `#[path]` by the tests that use it.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");

/// Runs `cmd`, which must succeed; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sh(&["ip", "link"])`: runs the program with its arguments, which must succeed.
pub fn sh(args: &[&str]) -> String {
    run(Command::new(args[0]).args(&args[1..]))
}

/// A network namespace with its loopback up; on drop, what still runs in it
/// is killed and the namespace deleted.
pub struct Netns(pub String);

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = format!("{prefix}{}", std::process::id());
        // A namespace left by a killed run of this test.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns(name);
        sh(&[
            "ip", "netns", "exec", &ns.0, "ip", "link", "set", "lo", "up",
        ]);
        ns
    }

    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }

    /// The processes running in the namespace.
    pub fn pids(&self) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.0])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.split_whitespace().map(str::to_string).collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = Command::new("kill").arg(&pid).status();
        }
        let t0 = Instant::now();
        while !self.pids().is_empty() && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `flowtap run` inside the namespace; killed on drop if still running.
pub struct Flowtap {
    child: Child,
    stderr: crate::common::StderrLog,
}

impl Flowtap {
    pub fn start(ns: &Netns, output: &Path, cfg: &Path) -> Flowtap {
        let mut child = ns
            .cmd(FLOWTAP)
            .args([
                "run",
                "--iface",
                "lo",
                "--capture",
                "afpacket",
                "--workers",
                "1",
            ])
            .arg("--config")
            .arg(cfg)
            .arg("--output")
            .arg(output)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn flowtap");
        let stderr = crate::common::StderrLog::collect(&mut child);
        let mut f = Flowtap { child, stderr };
        let t0 = Instant::now();
        while !f.stderr().contains("flowtap: capturing on") {
            if let Ok(Some(st)) = f.child.try_wait() {
                panic!("flowtap exited ({st}) before capturing: {}", f.stderr());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "flowtap not ready: {}",
                f.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        f
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// SIGTERM, then wait (bounded) for the final lines to be written.
    pub fn stop(&mut self) {
        sh(&["kill", "-TERM", &self.child.id().to_string()]);
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
    }
}

impl Drop for Flowtap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
