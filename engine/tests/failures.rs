//! Failure behaviour of the real binary: a disk that fills, a sink that
//! stays down, a reader that quits, exit statuses. The tmpfs tests need
//! root (mount); the shared guard fails them under CI when not root.

mod common;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A W1-like capture of 20,024 packets whose 2,650 events (2.1 MB of
/// native JSON) are spread over the replay (flows end with FIN as it goes).
fn w20k() -> PathBuf {
    bench_pcap(20_000)
}

fn fresh(tag: &str) -> PathBuf {
    let d = tmp_dir("failures").join(tag);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// The event lines of a native JSON-lines file, `stats` left out.
fn event_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a whole line {l:?}: {e}"));
            v["event_type"] != "stats"
        })
        .map(String::from)
        .collect()
}

/// What one worker writes for `cap` with nothing going wrong.
fn reference(cap: &Path) -> Vec<String> {
    // One directory per call: tests run in parallel.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = fresh(&format!("reference-{n}"));
    let out = dir.join("ref.json");
    let o = Command::new(env!("CARGO_BIN_EXE_flowtap"))
        .args(["run", "--no-progress", "-q", "--workers", "1", "--pcap"])
        .arg(cap)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = event_lines(&std::fs::read_to_string(&out).expect("read"));
    let _ = std::fs::remove_file(&out);
    lines
}

fn spawn(args: &[&str], stdout: Stdio, stderr_to: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_flowtap"))
        .args(["run", "--no-progress"])
        .args(args)
        .stdout(stdout)
        .stderr(std::fs::File::create(stderr_to).expect("stderr file"))
        .spawn()
        .expect("spawn flowtap")
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return st;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("flowtap did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fills the file system of `dir` but for about `leave` bytes.
fn fill(dir: &Path, leave: u64) -> std::fs::File {
    let path = dir.join("filler");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("filler");
    let block = vec![0x55u8; 4096];
    while f.write_all(&block).is_ok() {}
    let len = f.metadata().expect("len").len();
    f.set_len(len.saturating_sub(leave)).expect("shrink filler");
    f
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// `counter N` in the sink's end-of-run line.
fn summary_counter(stderr: &str, sink: &str, counter: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("flowtap: sink {sink} (")))
        .unwrap_or_else(|| panic!("no summary for sink {sink}:\n{stderr}"));
    let at = line
        .find(&format!("{counter} "))
        .unwrap_or_else(|| panic!("no `{counter}` in {line}"));
    line[at + counter.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after `{counter}` in {line}"))
}

const ENOSPC: &str = "No space left on device";

#[test]
fn a_file_sink_on_a_full_disk_backs_off_says_why_once_and_recovers_without_loss() {
    require_root!("mounting a tmpfs");
    let cap = w20k();
    let want = reference(&cap);
    let dir = fresh("recover");
    let mnt = dir.join("mnt");
    let _fs = Tmpfs::mount(&mnt, "4m");
    let filler = fill(&mnt, 64 << 10);
    let out = mnt.join("out.json");
    let err = dir.join("stderr");
    let cap_s = cap.display().to_string();
    let out_s = out.display().to_string();
    // Paced: the replay lasts about 4 s, the disk is full for a while of it.
    let mut child = spawn(
        &[
            "--pcap",
            &cap_s,
            "--workers",
            "1",
            "--pps",
            "5000",
            "-o",
            &out_s,
        ],
        Stdio::null(),
        &err,
    );
    let t = Instant::now();
    while !std::fs::read_to_string(&err)
        .unwrap_or_default()
        .contains(ENOSPC)
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the disk never filled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Full for a second (retries back off meanwhile), then space returns.
    std::thread::sleep(Duration::from_secs(1));
    filler.set_len(0).expect("free the space");
    let st = wait(&mut child, Duration::from_secs(60));
    let stderr = std::fs::read_to_string(&err).expect("stderr");
    assert_eq!(st.code(), Some(0), "{stderr}");
    // The OS reason, once for the outage; its end, once; no spinning.
    assert_eq!(count(&stderr, ENOSPC), 1, "{stderr}");
    assert_eq!(count(&stderr, "back after"), 1, "{stderr}");
    assert!(stderr.lines().count() < 12, "{stderr}");
    let failures = summary_counter(&stderr, "file", "connect failures");
    assert!(
        (1..=12).contains(&failures),
        "about one retry per backoff step over the outage: {failures}\n{stderr}"
    );
    assert_eq!(summary_counter(&stderr, "file", "reconnects"), 1);
    // Every event exactly once, in order, no line cut or repeated.
    let got = event_lines(&std::fs::read_to_string(&out).expect("out"));
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the file differs from a run without outage");
}

#[test]
fn a_replay_to_a_sink_that_stays_down_gives_up_and_exits_3_naming_it() {
    // /dev/full: every write fails with ENOSPC, no root needed.
    let cap = w20k();
    let want = reference(&cap);
    let dir = fresh("down");
    let ok = dir.join("ok.json");
    let err = dir.join("stderr");
    let t = Instant::now();
    let mut child = spawn(
        &[
            "--pcap",
            &cap.display().to_string(),
            "--workers",
            "2",
            // A short queue: the workers wait for the sink until it gives up.
            "-o",
            "file:///dev/full?queue_batches=2",
            "-o",
            &ok.display().to_string(),
        ],
        Stdio::null(),
        &err,
    );
    let st = wait(&mut child, Duration::from_secs(60));
    let took = t.elapsed();
    let stderr = std::fs::read_to_string(&err).expect("stderr");
    assert_eq!(st.code(), Some(3), "{stderr}");
    // Bounded: the give-up time (10 s) and a little, never forever.
    assert!(took < Duration::from_secs(25), "{took:?}");
    // Said when the outage starts, and for what was still buffered at the end.
    assert!(
        (1..=2).contains(&count(&stderr, ENOSPC)),
        "the outage and the end:\n{stderr}"
    );
    assert_eq!(count(&stderr, "giving up"), 1, "{stderr}");
    assert!(
        stderr.contains("error: sink file lost ") && stderr.contains("exit status 3"),
        "names the sink and what it lost:\n{stderr}"
    );
    assert_eq!(summary_counter(&stderr, "file", "sent"), 0, "{stderr}");
    // The other sink got everything, and its final stats count the loss.
    let text = std::fs::read_to_string(&ok).expect("ok.json");
    let mut got = event_lines(&text);
    let mut want = want;
    got.sort();
    want.sort();
    assert!(got == want, "the healthy sink lost events");
    let stats: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("json");
    assert_eq!(stats["event_type"], "stats");
    // Taken once the sinks dealt with every event before it.
    let down = &stats["stats"]["sinks"]["file"];
    let healthy = &stats["stats"]["sinks"]["file-2"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    assert!(n(&down["events_failed"]) > 0, "{down}");
    // A sink that is down is not waited for: what it has not dealt with
    // yet is still in its queue.
    assert!(
        n(&down["events_sent"]) + n(&down["events_failed"]) <= n(&down["events_queued"]),
        "{down}"
    );
    assert_eq!(
        healthy["events_sent"], healthy["events_queued"],
        "{healthy}"
    );
    assert_eq!(healthy["events_queued"].as_u64(), Some(want.len() as u64));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_compression_on_a_full_disk_leaves_no_tmp_file() {
    require_root!("mounting a tmpfs");
    let cap = w20k();
    let dir = fresh("compress");
    let mnt = dir.join("mnt");
    let _fs = Tmpfs::mount(&mnt, "1m");
    // Room for the first 300 kB file but not for its compressed copy too.
    let _filler = fill(&mnt, 310 << 10);
    let err = dir.join("stderr");
    let url = format!(
        "file://{}?rotate_bytes=300k&compress=gzip",
        mnt.join("out.json").display()
    );
    let mut child = spawn(
        &[
            "--pcap",
            &cap.display().to_string(),
            "--workers",
            "1",
            "-o",
            &url,
        ],
        Stdio::null(),
        &err,
    );
    let st = wait(&mut child, Duration::from_secs(60));
    let stderr = std::fs::read_to_string(&err).expect("stderr");
    assert_eq!(st.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot compress") && stderr.contains("kept uncompressed"),
        "{stderr}"
    );
    let names: Vec<String> = std::fs::read_dir(&mnt)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "a temporary file was left: {names:?}"
    );
    // The rotated file is whole, plain, and every line in it is whole.
    let rotated: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("out.json."))
        .collect();
    assert_eq!(rotated.len(), 1, "{names:?}");
    let text = std::fs::read_to_string(mnt.join(rotated[0])).expect("rotated");
    assert!(event_lines(&text).len() > 100);
    let current = std::fs::read_to_string(mnt.join("out.json")).unwrap_or_default();
    let _ = event_lines(&current);
}

#[test]
fn stdout_closed_by_its_reader_ends_the_run_promptly_with_status_0() {
    let cap = w20k();
    let dir = fresh("epipe");
    let side = dir.join("side.json");
    let err = dir.join("stderr");
    // Paced to last 10 s: only stopping early ends it within the limit.
    let mut child = spawn(
        &[
            "--pcap",
            &cap.display().to_string(),
            "--workers",
            "1",
            "--pps",
            "2000",
            "-o",
            "-",
            "-o",
            &side.display().to_string(),
        ],
        Stdio::piped(),
        &err,
    );
    let mut head = [0u8; 100];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut head)
        .expect("100 bytes");
    // `| head -c 100`: the reader is gone once the pipe is dropped.
    let closed = Instant::now();
    let st = wait(&mut child, Duration::from_secs(30));
    let took = closed.elapsed();
    let stderr = std::fs::read_to_string(&err).expect("stderr");
    assert_eq!(st.code(), Some(0), "{stderr}");
    assert!(took < Duration::from_secs(3), "{took:?}\n{stderr}");
    assert_eq!(count(&stderr, "the reader closed stdout"), 1, "{stderr}");
    assert!(stderr.lines().count() < 12, "{stderr}");
    // The other sink got what was processed, and the final stats.
    let text = std::fs::read_to_string(&side).expect("side");
    let last: Value = serde_json::from_str(text.lines().last().expect("line")).expect("json");
    assert_eq!(last["event_type"], "stats", "{last}");
    assert!(!event_lines(&text).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A flood of one-packet flows (every packet a new flow) under a small
/// memory budget: the flow tables stop at what the budget leaves them, the
/// evictions are counted, and the peak RSS stays within the budget at one
/// and two workers.
#[test]
fn a_flood_of_new_flows_stays_within_the_memory_budget_and_counts_evictions() {
    let flows = 300_000u64;
    let cap = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flood300k.pcap");
    if !cap.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/scripts/flood_pcap.py");
        let tmp = cap.with_extension(format!("tmp{}", std::process::id()));
        let st = Command::new("python3")
            .arg(&script)
            .arg(&tmp)
            .arg(flows.to_string())
            .status()
            .expect("python3");
        assert!(st.success());
        std::fs::rename(&tmp, &cap).expect("rename");
    }
    let dir = fresh("flood");
    let budget_mib = 200u64;
    let cfg = dir.join("budget.toml");
    std::fs::write(
        &cfg,
        format!(
            "memory_budget = \"{budget_mib}M\"\n[stream]\nmax_bytes_per_worker = 16777216\n\
             [defrag]\nmax_bytes_per_worker = 4194304\n[output]\nqueue_batches = 16\n"
        ),
    )
    .expect("config");
    for workers in ["1", "2"] {
        let rss = dir.join(format!("rss-{workers}"));
        let out = dir.join(format!("out-{workers}.json"));
        let o = Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o"])
            .arg(&rss)
            .arg(env!("CARGO_BIN_EXE_flowtap"))
            .args(["run", "--no-progress", "--workers", workers, "--pcap"])
            .arg(&cap)
            .arg("--config")
            .arg(&cfg)
            .arg("-o")
            .arg(&out)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{stderr}");
        let peak_kib: u64 = std::fs::read_to_string(&rss)
            .expect("rss")
            .trim()
            .parse()
            .expect("KiB");
        assert!(
            peak_kib < budget_mib << 10,
            "{workers} worker(s): peak RSS {} MiB over the {budget_mib} MiB budget\n{stderr}",
            peak_kib >> 10
        );
        let text = std::fs::read_to_string(&out).expect("out");
        let stats: Value = serde_json::from_str(text.lines().last().expect("line")).expect("stats");
        let f = &stats["stats"]["flows"];
        assert_eq!(f["created"].as_u64(), Some(flows), "{f}");
        assert_eq!(
            f["records"].as_u64(),
            Some(flows),
            "every flow still gets its record"
        );
        let evicted = f["evicted"].as_u64().unwrap_or(0);
        assert!(evicted > flows / 2, "the tables were capped: {f}");
        assert!(
            stderr.contains(&format!("memory budget {budget_mib}.0 MiB: flow tables")),
            "{stderr}"
        );
        eprintln!(
            "{workers} worker(s): peak RSS {} MiB of {budget_mib}, {evicted} evicted",
            peak_kib >> 10
        );
        let _ = std::fs::remove_file(&out);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A spool on a disk that fills: said once with the OS reason, every
/// event that could not be spooled counted, the run ends with status 3.
#[test]
fn a_spool_on_a_full_disk_says_why_once_and_counts_what_it_lost() {
    require_root!("mounting a tmpfs");
    let cap = w20k();
    let dir = fresh("spool-full");
    let mnt = dir.join("mnt");
    let _fs = Tmpfs::mount(&mnt, "256k");
    // A collector that is never there: everything goes to the spool.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!(
        "syslog+tcp://127.0.0.1:{port}?name=down&spool={}&spool_bytes=100M",
        mnt.display()
    );
    let err = dir.join("stderr");
    let mut child = spawn(
        &[
            "--pcap",
            &cap.display().to_string(),
            "--workers",
            "1",
            "-o",
            &url,
        ],
        Stdio::null(),
        &err,
    );
    let st = wait(&mut child, Duration::from_secs(60));
    let stderr = std::fs::read_to_string(&err).expect("stderr");
    assert_eq!(st.code(), Some(3), "{stderr}");
    assert_eq!(count(&stderr, "cannot be spooled"), 1, "{stderr}");
    assert_eq!(count(&stderr, ENOSPC), 1, "{stderr}");
    assert!(summary_counter(&stderr, "down", "failed") > 0, "{stderr}");
    assert!(stderr.lines().count() < 14, "{stderr}");
}

/// A file sink that cannot write, with `when_full=drop` (the live
/// policy): the queue fills and drops are counted, nobody waits for the
/// sink, and the run ends with status 3 naming it.
#[test]
fn a_full_disk_with_when_full_drop_drops_and_counts_without_waiting() {
    let cap = w20k();
    let dir = fresh("drop");
    let err = dir.join("stderr");
    let t = Instant::now();
    let mut child = spawn(
        &[
            "--pcap",
            &cap.display().to_string(),
            "--workers",
            "1",
            "-o",
            "file:///dev/full?when_full=drop&queue_batches=2&name=full",
        ],
        Stdio::null(),
        &err,
    );
    let st = wait(&mut child, Duration::from_secs(60));
    let stderr = std::fs::read_to_string(&err).expect("stderr");
    assert_eq!(st.code(), Some(3), "{stderr}");
    assert!(
        summary_counter(&stderr, "full", "queue full") > 0,
        "{stderr}"
    );
    assert_eq!(count(&stderr, "giving up"), 0, "{stderr}");
    assert!(stderr.contains("error: sink full lost "), "{stderr}");
    // Only the end of the run waits (the shutdown grace), never the workers.
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}
