//! Helpers shared by the engine's integration tests: run the real `flowtap`
//! binary on corpus captures and read back what it wrote.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub mod netpair;
pub mod prometheus;

pub fn corpus() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = here.join("../../shared/corpus");
    assert!(
        c.join("MANIFEST.tsv").exists(),
        "the corpus must be at {} (../shared beside the repo)",
        c.display()
    );
    c
}

/// W1 (`gen_bench_pcap.py -n 200000 --seed 1`), generated once per target dir.
pub fn w1() -> PathBuf {
    bench_pcap(200_000)
}

/// The benchmark generator's capture of `sessions` sessions (seed 1: W1's
/// first ones), generated once per target dir.
pub fn bench_pcap(sessions: u32) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("w1-{sessions}.pcap"));
    if !path.exists() {
        let script = corpus().join("../bench/gen_bench_pcap.py");
        // Test binaries and their threads may race to make it: each writes
        // its own file, and the rename is atomic.
        let tmp = path.with_extension(format!(
            "tmp.{}.{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let st = Command::new("python3")
            .arg(&script)
            .arg("-o")
            .arg(&tmp)
            .args(["-n", &sessions.to_string(), "--seed", "1"])
            .status()
            .expect("python3 runs the W1 generator");
        assert!(st.success(), "W1 generator failed");
        std::fs::rename(&tmp, &path).expect("rename W1");
    }
    path
}

pub fn reference() -> PathBuf {
    corpus().join("../reference/suricata-8.0.6/corpus")
}

pub fn tmp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flowtap-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

pub struct RunOutput {
    pub events: Vec<Value>,
    pub stderr: String,
    pub status: std::process::ExitStatus,
}

impl RunOutput {
    /// Every event but the final `stats`, as text, sorted: the same events
    /// whatever order the workers and housekeeping emitted them in.
    pub fn sorted_events(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .events
            .iter()
            .filter(|e| e["event_type"] != "stats")
            .map(Value::to_string)
            .collect();
        v.sort();
        v
    }

    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["event_type"] == t)
            .collect()
    }

    pub fn stats(&self) -> &Value {
        self.events
            .iter()
            .rev()
            .find(|e| e["event_type"] == "stats")
            .expect("a final stats event")
    }
}

/// Runs `flowtap run --pcap CAPTURE --workers N` plus `extra` arguments.
pub fn run_flowtap(capture: &Path, workers: usize, extra: &[&str]) -> RunOutput {
    let dir = tmp_dir("run");
    let out = dir.join(format!(
        "{}-{workers}-{}.json",
        capture.file_name().and_then(|s| s.to_str()).unwrap_or("x"),
        rand_suffix()
    ));
    let o = Command::new(env!("CARGO_BIN_EXE_flowtap"))
        .args(["run", "--no-progress", "--pcap"])
        .arg(capture)
        .args(["--workers", &workers.to_string(), "--output"])
        .arg(&out)
        .args(extra)
        .output()
        .expect("run flowtap");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    let events = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    RunOutput {
        events,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        status: o.status,
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Per-direction counters of one conversation, keyed by its endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conv {
    /// Frames and bytes from the first endpoint (in key order) to the second.
    pub a_to_b: (u64, u64),
    pub b_to_a: (u64, u64),
}

/// (proto, lower endpoint, higher endpoint) with endpoints as "ip:port".
pub type ConvKey = (String, String, String);

fn split_endpoint(s: &str) -> (String, u16) {
    let (ip, port) = s.rsplit_once(':').expect("ip:port");
    (ip.to_string(), port.parse().expect("port"))
}

fn conv_key(proto: &str, a: &str, b: &str) -> (ConvKey, bool) {
    if a <= b {
        ((proto.into(), a.into(), b.into()), true)
    } else {
        ((proto.into(), b.into(), a.into()), false)
    }
}

/// A byte count as tshark prints it: exact below 10 kB ("1351 bytes"),
/// rounded above ("19 kB", "2 MB"), so `Bytes::matches` allows the rounding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bytes {
    pub value: u64,
    /// The unit tshark printed: 1, 1000 or 1000000.
    pub unit: u64,
}

impl Bytes {
    pub fn matches(&self, exact: u64) -> bool {
        if self.unit == 1 {
            self.value == exact
        } else {
            (exact as f64 / self.unit as f64 - self.value as f64).abs() <= 1.0
        }
    }
}

/// One direction of a tshark conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TsharkDir {
    pub frames: u64,
    pub bytes: Bytes,
}

/// tshark's TCP and UDP conversation tables (`-z conv,tcp -z conv,udp`),
/// keyed like [`flowtap_conversations`]: (A to B, B to A).
pub fn tshark_conversations(capture: &Path) -> BTreeMap<ConvKey, (TsharkDir, TsharkDir)> {
    let o = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args(["-q", "-z", "conv,tcp", "-z", "conv,udp"])
        .output()
        .expect("tshark must be installed (the README's test command installs it)");
    let text = String::from_utf8_lossy(&o.stdout);
    let mut proto = "";
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("TCP Conversations") {
            proto = "TCP";
        } else if line.starts_with("UDP Conversations") {
            proto = "UDP";
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 12 || f[1] != "<->" {
            continue;
        }
        let num = |s: &str| {
            s.parse::<u64>()
                .unwrap_or_else(|_| panic!("number in {line}"))
        };
        let bytes = |v: &str, unit: &str| Bytes {
            value: num(v),
            unit: match unit {
                "bytes" => 1,
                "kB" => 1000,
                "MB" => 1_000_000,
                other => panic!("unit {other} in {line}"),
            },
        };
        // Columns: A <-> B | frames bytes (B to A) | frames bytes (A to B) | total ...
        let b_to_a = TsharkDir {
            frames: num(f[3]),
            bytes: bytes(f[4], f[5]),
        };
        let a_to_b = TsharkDir {
            frames: num(f[6]),
            bytes: bytes(f[7], f[8]),
        };
        let (key, a_first) = conv_key(proto, f[0], f[2]);
        let v = if a_first {
            (a_to_b, b_to_a)
        } else {
            (b_to_a, a_to_b)
        };
        assert!(
            out.insert(key, v).is_none(),
            "tshark listed a conversation twice: {line}"
        );
    }
    out
}

fn endpoint(ip: &Value, port: &Value) -> String {
    let ip = ip.as_str().expect("ip string");
    format!("{ip}:{}", port.as_u64().expect("port"))
}

/// flowtap's TCP/UDP flow records summed per conversation (several records
/// for one 5-tuple: port reuse, VLANs, interim slices).
pub fn flowtap_conversations(flows: &[&Value]) -> BTreeMap<ConvKey, Conv> {
    let mut out = BTreeMap::new();
    for f in flows {
        let proto = f["proto"].as_str().unwrap_or("");
        if proto != "TCP" && proto != "UDP" {
            continue;
        }
        let src = endpoint(&f["src_ip"], &f["src_port"]);
        let dst = endpoint(&f["dest_ip"], &f["dest_port"]);
        let (key, src_first) = conv_key(proto, &src, &dst);
        let ts = (
            f["flow"]["pkts_toserver"].as_u64().expect("pkts"),
            f["flow"]["bytes_toserver"].as_u64().expect("bytes"),
        );
        let tc = (
            f["flow"]["pkts_toclient"].as_u64().expect("pkts"),
            f["flow"]["bytes_toclient"].as_u64().expect("bytes"),
        );
        let (ab, ba) = if src_first { (ts, tc) } else { (tc, ts) };
        let e: &mut Conv = out.entry(key).or_default();
        e.a_to_b.0 += ab.0;
        e.a_to_b.1 += ab.1;
        e.b_to_a.0 += ba.0;
        e.b_to_a.1 += ba.1;
    }
    out
}

pub fn port_of(endpoint: &str) -> u16 {
    split_endpoint(endpoint).1
}

/// Suricata's flow events for a corpus capture (reference output).
pub fn suricata_events(rel: &str) -> Vec<Value> {
    let p = reference().join(format!("{rel}.eve.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("eve json"))
        .collect()
}

/// A small tmpfs mounted for one test and unmounted however it ends.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("mount point");
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount");
        assert!(
            o.status.success(),
            "mounting a tmpfs needs root (the tests run as root, see scripts/test.sh): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

/// Removes, at any depth, what depends on when packets arrived: times,
/// durations and delays (every `*_us` key: flow duration, TCP handshake and
/// application response delays, HTTP latency, ...), the flow id (derived
/// from the start time), and the keys in `also`.
pub fn strip_times(v: &mut Value, also: &[&str]) {
    match v {
        Value::Object(o) => {
            o.retain(|k, _| {
                !(k == "timestamp"
                    || k == "flow_id"
                    || k == "start"
                    || k == "end"
                    || k.ends_with("_us")
                    || also.contains(&k.as_str()))
            });
            o.values_mut().for_each(|v| strip_times(v, also));
        }
        Value::Array(a) => a.iter_mut().for_each(|v| strip_times(v, also)),
        _ => {}
    }
}

/// The standard error of a running child, collected line by line on a
/// thread (so a test can wait for a line, and print it all on failure).
#[derive(Clone)]
pub struct StderrLog(std::sync::Arc<(std::sync::Mutex<String>, std::sync::atomic::AtomicBool)>);

impl StderrLog {
    /// Takes `child`'s piped stderr (spawn it with `Stdio::piped()`).
    pub fn collect(child: &mut std::process::Child) -> StderrLog {
        use std::io::{BufRead, BufReader};
        let log = StderrLog(Default::default());
        let pipe = child.stderr.take().expect("stderr piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.0 .0.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
            sink.0 .1.store(true, std::sync::atomic::Ordering::Release);
        });
        log
    }

    /// Everything the child wrote, once its stderr closed (call it after
    /// the child ended: the reader thread may still be behind); what there
    /// is after 10 s otherwise.
    pub fn all(&self) -> String {
        let t0 = std::time::Instant::now();
        while !self.0 .1.load(std::sync::atomic::Ordering::Acquire)
            && t0.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.text()
    }

    /// What the child wrote so far.
    pub fn text(&self) -> String {
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
