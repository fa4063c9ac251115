//! flowtap as a systemd `Type=notify` service, spoken to as systemd does:
//! the test binds the notification socket (`NOTIFY_SOCKET`, a Unix datagram
//! socket) and sets `WATCHDOG_USEC`, starts a live capture (AF_PACKET on
//! a namespace's loopback), and reads what flowtap sends: READY=1 with a
//! STATUS once it captures, WATCHDOG=1 at half the watchdog interval,
//! RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a SIGHUP reload,
//! STOPPING=1 on SIGTERM.
//!
//! Needs root for the namespace (CI runs as root).

mod common;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::netpair::LoopbackNs;
use common::*;

const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");

/// The messages received within `secs` until one contains `want`.
fn wait_for(sock: &UnixDatagram, want: &str, secs: u64, seen: &mut Vec<String>) -> String {
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = Duration::from_secs(secs).saturating_sub(t0.elapsed());
        assert!(!left.is_zero(), "no {want:?} within {secs} s; got {seen:?}");
        sock.set_read_timeout(Some(left)).expect("timeout");
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push(msg.clone());
            if msg.lines().any(|l| l == want) {
                return msg;
            }
        }
    }
}

#[test]
fn systemd_hears_ready_watchdog_reloading_and_stopping() {
    require_root!("a network namespace");
    let dir = tmp_dir("notify");
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).expect("bind the notification socket");
    let ns = LoopbackNs::new("n");
    let cfg = dir.join("flowtap.toml");
    std::fs::write(&cfg, "[output]\nstats_interval = 0\n").expect("config");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0, FLOWTAP, "run", "--iface", "lo"])
        .args(["--capture", "afpacket", "--workers", "1", "-o", "/dev/null"])
        .arg("--config")
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flowtap");
    let log = StderrLog::collect(&mut child);
    let mut seen = Vec::new();
    let ready = wait_for(&sock, "READY=1", 30, &mut seen);
    assert!(
        ready.contains("STATUS=capturing on lo with afpacket"),
        "{ready:?}\n{}",
        log.text()
    );
    // Pings at half of 400 ms: several within a second and a half.
    let t0 = Instant::now();
    let mut pings = 0;
    while t0.elapsed() < Duration::from_millis(1500) {
        wait_for(&sock, "WATCHDOG=1", 2, &mut seen);
        pings += 1;
    }
    assert!((4..=12).contains(&pings), "{pings} watchdog pings in 1.5 s");
    // flowtap is the child of `ip netns exec` (which execs it: same pid).
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill")
        .success());
    let reloading = wait_for(&sock, "RELOADING=1", 10, &mut seen);
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
    let after = wait_for(&sock, "READY=1", 10, &mut seen);
    assert!(
        after.contains("STATUS=capturing; configuration reloaded"),
        "{after:?}"
    );
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    wait_for(&sock, "STOPPING=1", 10, &mut seen);
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}\n{}", log.text());
}
