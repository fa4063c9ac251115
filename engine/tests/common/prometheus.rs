//! A real Prometheus (Debian's `prometheus`) for the metrics tests, run
//! inside a test's network namespace, and the helpers to talk to it.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Prometheus' own web port inside the namespace.
pub const PROMETHEUS_PORT: u16 = 9090;

pub fn require(binary: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(binary))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| panic!("`{binary}` is not installed: run scripts/setup.sh"))
}

pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        let file = File::open(format!("/var/run/netns/{ns}")).expect("open netns");
        // SAFETY: a valid namespace fd; setns affects only this thread.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {ns}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

/// GET `path` on 127.0.0.1:`port` inside `ns`: (status line, body).
pub fn http_get(ns: &str, port: u16, path: &str) -> Option<(String, String)> {
    let path = path.to_string();
    in_ns(ns, move || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            c,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut raw = String::new();
        c.read_to_string(&mut raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        Some((head.lines().next()?.to_string(), body.to_string()))
    })
}

/// Percent-encodes a PromQL expression for a query string.
pub fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A process killed (and waited for) on drop.
pub struct Proc {
    pub child: Child,
    stderr: super::StderrLog,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = super::StderrLog::collect(&mut child);
        Proc { child, stderr }
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Prometheus {
    ns: String,
    _proc: Proc,
}

impl Prometheus {
    /// Prometheus in namespace `ns`, scraping 127.0.0.1:`target` every second.
    pub fn start(ns: &str, dir: &Path, target: u16) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: flowtap\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n\
                 \x20   static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(require("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"));
        let proc = Proc::spawn(cmd);
        let p = Prometheus {
            ns: ns.to_string(),
            _proc: proc,
        };
        let t0 = Instant::now();
        loop {
            if let Some((status, _)) = http_get(&p.ns, PROMETHEUS_PORT, "/-/ready") {
                if status.contains(" 200") {
                    break;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "prometheus not ready after 30 s: {}",
                p._proc.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// An instant query: every series' labels and value.
    pub fn query(&self, q: &str) -> Vec<(Value, f64)> {
        let (status, body) = http_get(
            &self.ns,
            PROMETHEUS_PORT,
            &format!("/api/v1/query?query={}", encode(q)),
        )
        .unwrap_or_else(|| panic!("prometheus answers {q}"));
        assert!(status.contains(" 200"), "{q}: {status} {body}");
        let v: Value = serde_json::from_str(&body).expect("API answer is JSON");
        assert_eq!(v["status"], "success", "{q}: {body}");
        v["data"]["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|s| {
                        let value = s["value"][1]
                            .as_str()
                            .and_then(|x| x.parse::<f64>().ok())
                            .unwrap_or(f64::NAN);
                        (s["metric"].clone(), value)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An instant query whose answer is one sample (or none): its value.
    pub fn value(&self, q: &str) -> Option<u64> {
        let (status, body) = http_get(
            &self.ns,
            PROMETHEUS_PORT,
            &format!("/api/v1/query?query={}", encode(q)),
        )?;
        assert!(status.contains(" 200"), "{q}: {status} {body}");
        let v: Value = serde_json::from_str(&body).expect("API answer is JSON");
        assert_eq!(v["status"], "success", "{q}: {body}");
        let result = v["data"]["result"].as_array()?;
        assert!(result.len() <= 1, "{q}: one series expected: {body}");
        let s = result.first()?["value"][1].as_str()?;
        s.parse::<f64>().ok().map(|f| f as u64)
    }
}

/// `promtool check metrics` accepts `text` (an exposition).
pub fn promtool_check(text: &str) {
    let mut child = Command::new(require("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    // promtool lints names and help too; only errors fail the check.
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
