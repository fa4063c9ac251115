//! Redis against a real server: Debian's `redis-server` (no persistence,
//! a password) runs inside a network namespace on its loopback, on a port
//! that is not 6379 (so the protocol is found by content); the real
//! `flowtap` binary captures that loopback live (AF_PACKET) while
//! `redis-cli` sends a pipeline (`--pipe`: every command written before any
//! reply is read) with commands that succeed, one that hits a list with a
//! string command (WRONGTYPE), an unknown command, a MULTI/EXEC block and a
//! missing key; then a pub/sub exchange: a RESP2 and a RESP3 subscriber,
//! and a publisher. Every command of the pipeline must appear exactly once
//! as a `redis` event with its reply; each subscriber's SUBSCRIBE is one
//! event with its confirmation and the published message is a push on
//! each (never matched with a command); the password appears nowhere.
//!
//! Needs root (namespaces); without root it prints a loud SKIPPED banner,
//! like `live.rs`. The packages come from `scripts/setup.sh`.

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;
use live::{run, Flowtap, Netns};

const PORT: u16 = 6391;
const PASSWORD: &str = "s3cret-redis-pw";

/// `redis-cli` against the test server, authenticated.
fn cli(ns: &Netns) -> Command {
    let mut c = ns.cmd("redis-cli");
    c.args(["-h", "127.0.0.1", "-p", &PORT.to_string()]).args([
        "--user",
        "default",
        "--pass",
        PASSWORD,
        "--no-auth-warning",
    ]);
    c
}

/// A child process killed (by its own id) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(ns: &Netns, dir: &Path) -> Proc {
    let child = ns
        .cmd("redis-server")
        .args(["--port", &PORT.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--requirepass", PASSWORD])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (run scripts/setup.sh: redis-server)");
    let server = Proc(child);
    let t0 = Instant::now();
    loop {
        let out = cli(ns).arg("PING").output().expect("redis-cli");
        if String::from_utf8_lossy(&out.stdout).contains("PONG") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "redis-server not up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// What a pipelined command must get back.
enum Want {
    /// A simple string or integer reply with this text.
    Reply(&'static str),
    /// A reply of this type (`bulk_string` of this length, `array` of this
    /// many elements, `null`).
    Bulk(u64),
    Array(u64),
    Null,
    /// An error reply with this code.
    Error(&'static str),
}

const PIPELINE: &[(&[&str], Want)] = &[
    (&["SET", "user:1", "alice"], Want::Reply("OK")),
    (&["GET", "user:1"], Want::Bulk(5)),
    (&["INCR", "visits"], Want::Reply("1")),
    (&["INCR", "visits"], Want::Reply("2")),
    (&["RPUSH", "queue", "a", "b", "c"], Want::Reply("3")),
    (&["LRANGE", "queue", "0", "-1"], Want::Array(3)),
    (&["GET", "queue"], Want::Error("WRONGTYPE")),
    (&["HSET", "h", "f1", "v1", "f2", "v2"], Want::Reply("2")),
    (&["HGETALL", "h"], Want::Array(4)),
    (&["NOSUCHCOMMAND", "x"], Want::Error("ERR")),
    (&["MULTI"], Want::Reply("OK")),
    (&["INCR", "visits"], Want::Reply("QUEUED")),
    (&["SET", "user:2", "bob"], Want::Reply("QUEUED")),
    (&["EXEC"], Want::Array(2)),
    (&["DEL", "user:1"], Want::Reply("1")),
    (&["GET", "user:1"], Want::Null),
];

fn resp(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    v
}

/// Waits until `n` clients are subscribed to `channel`.
fn wait_subscribed(ns: &Netns, channel: &str, n: usize) {
    let t0 = Instant::now();
    loop {
        let out = run(cli(ns).args(["PUBSUB", "NUMSUB", channel]));
        if out.lines().nth(1).map(str::trim) == Some(&n.to_string()) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "subscribers not there: {out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn redis_cli_against_a_real_server_every_command_once() {
    require_root!("network namespaces and a real server");
    let dir = tmp_dir("redis-live");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let ns = Netns::new("ftrd");
    let server = start_server(&ns, &dir);

    let cfg = dir.join("flowtap.toml");
    std::fs::write(&cfg, "[output]\ntypes = [\"flow\", \"redis\"]\n").expect("config");
    let output = dir.join("events.json");
    let mut flowtap = Flowtap::start(&ns, &output, &cfg);

    // The pipeline: redis-cli --pipe writes everything, then an ECHO of
    // its own to know when the last reply came.
    let mut input = Vec::new();
    for (args, _) in PIPELINE {
        input.extend_from_slice(&resp(args));
    }
    let mut pipe = cli(&ns)
        .arg("--pipe")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli --pipe");
    pipe.stdin.take().unwrap().write_all(&input).expect("pipe");
    let out = pipe.wait_with_output().expect("redis-cli --pipe");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("replies: {}", PIPELINE.len())),
        "redis-cli --pipe: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Pub/sub: a RESP2 and a RESP3 subscriber, then a publisher.
    let sub2 = Proc(
        cli(&ns)
            .args(["SUBSCRIBE", "news"])
            .stdout(Stdio::null())
            .spawn()
            .expect("subscriber"),
    );
    let sub3 = Proc(
        cli(&ns)
            .args(["-3", "SUBSCRIBE", "news"])
            .stdout(Stdio::null())
            .spawn()
            .expect("subscriber"),
    );
    wait_subscribed(&ns, "news", 2);
    let published = run(cli(&ns).args(["PUBLISH", "news", "hello subscribers"]));
    assert_eq!(published.trim(), "2", "both subscribers got it");
    // Let the pushes reach the subscribers and the capture.
    std::thread::sleep(Duration::from_millis(300));
    drop(sub2);
    drop(sub3);

    std::thread::sleep(Duration::from_millis(500));
    flowtap.stop();
    drop(server);

    let text = std::fs::read_to_string(&output).expect("events");
    assert!(
        !text.contains(PASSWORD),
        "the password must never be written"
    );
    let events: Vec<Value> = text
        .lines()
        .filter(|l| l.ends_with('}'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect();
    assert!(
        events.iter().any(|e| e["event_type"] == "flow"
            && e["app_proto"] == "redis"
            && e["dest_port"] == PORT),
        "the flow on port {PORT} is redis (found by content): {}",
        flowtap.stderr()
    );
    let redis: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "redis")
        .collect();
    // The events of the connection that sent `first` (a command and key).
    let of_client = |cmd: &str, key: &str| -> Vec<&Value> {
        let port = redis
            .iter()
            .find(|e| e["redis"]["command"] == cmd && e["redis"]["key"] == key)
            .map(|e| e["src_port"].clone())
            .unwrap_or_else(|| panic!("no {cmd} {key}: {text}"));
        redis
            .iter()
            .filter(|e| e["src_port"] == port)
            .map(|e| &e["redis"])
            .collect()
    };

    // The pipeline: AUTH, every command once in order with its reply, the ECHO.
    let conn = of_client("SET", "user:1");
    let dump = || {
        conn.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(conn.len(), PIPELINE.len() + 2, "{}", dump());
    assert_eq!(conn[0]["command"], "AUTH");
    assert_eq!(conn[0]["user"], "default");
    assert_eq!(conn[0]["reply"], "OK");
    assert_eq!(conn.last().unwrap()["command"], "ECHO");
    for (k, (args, want)) in PIPELINE.iter().enumerate() {
        let e = conn[k + 1];
        let ctx = format!("{args:?}: {e}");
        assert_eq!(e["command"], args[0], "{ctx}");
        match args.get(1) {
            Some(key) => assert_eq!(e["key"], *key, "{ctx}"),
            None => assert!(e.get("key").is_none(), "{ctx}"),
        }
        assert_eq!(e["arg_count"], args.len() as u64 - 1, "{ctx}");
        assert!(e.get("args").is_none(), "values are not logged: {ctx}");
        assert_eq!(e["unanswered"], false, "{ctx}");
        assert!(e["latency_us"].is_u64(), "{ctx}");
        assert!(e["request_bytes"] == resp(args).len() as u64, "{ctx}");
        match want {
            Want::Reply(r) => {
                assert_eq!(e["status"], "ok", "{ctx}");
                assert_eq!(e["reply"], *r, "{ctx}");
            }
            Want::Bulk(n) => {
                assert_eq!(e["reply_type"], "bulk_string", "{ctx}");
                assert_eq!(e["reply_length"], *n, "{ctx}");
                assert!(e.get("reply").is_none(), "bulk values redacted: {ctx}");
            }
            Want::Array(n) => {
                assert_eq!(e["reply_type"], "array", "{ctx}");
                assert_eq!(e["reply_elements"], *n, "{ctx}");
            }
            Want::Null => assert_eq!(e["reply_type"], "null", "{ctx}"),
            Want::Error(code) => {
                assert_eq!(e["status"], "error", "{ctx}");
                assert_eq!(e["error_code"], *code, "{ctx}");
                assert!(e["error"].as_str().unwrap().starts_with(code), "{ctx}");
            }
        }
    }
    // MULTI's block.
    assert_eq!(conn[12]["in_transaction"], true);
    assert_eq!(conn[14]["in_transaction"], true, "EXEC ends the block");
    assert!(conn[15].get("in_transaction").is_none());

    // The publisher: its PUBLISH reached both subscribers.
    let publisher = of_client("PUBLISH", "news");
    let p: Vec<&&Value> = publisher
        .iter()
        .filter(|e| e["command"] == "PUBLISH")
        .collect();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["reply"], "2");

    // Each subscriber: SUBSCRIBE once, confirmed, then the message as a
    // push on channel `news`; the RESP3 one said HELLO 3 and got a `>` push.
    let subscribers: Vec<Value> = {
        let mut ports: Vec<Value> = redis
            .iter()
            .filter(|e| e["redis"]["command"] == "SUBSCRIBE")
            .map(|e| e["src_port"].clone())
            .collect();
        ports.dedup();
        ports
    };
    assert_eq!(subscribers.len(), 2, "{text}");
    let mut resp3 = 0;
    for port in &subscribers {
        let evs: Vec<&Value> = redis
            .iter()
            .filter(|e| &e["src_port"] == port)
            .map(|e| &e["redis"])
            .collect();
        let subs: Vec<&&Value> = evs.iter().filter(|e| e["command"] == "SUBSCRIBE").collect();
        assert_eq!(subs.len(), 1, "{evs:?}");
        assert_eq!(subs[0]["key"], "news");
        assert_eq!(subs[0]["status"], "ok");
        assert_eq!(subs[0]["confirmations"], 1);
        assert_eq!(subs[0]["subscriptions"], 1);
        let pushes: Vec<&&Value> = evs.iter().filter(|e| e["kind"] == "push").collect();
        assert_eq!(pushes.len(), 1, "{evs:?}");
        assert_eq!(pushes[0]["push_kind"], "message");
        assert_eq!(pushes[0]["channel"], "news");
        assert_eq!(pushes[0]["reply_length"], "hello subscribers".len() as u64);
        if !evs.iter().any(|e| e["command"] == "HELLO") {
            assert_eq!(subs[0]["reply_type"], "array", "RESP2: {evs:?}");
        }
        assert!(
            evs.iter().all(|e| e["kind"] != "none"),
            "no reply without its command: {evs:?}"
        );
        if evs.iter().any(|e| e["command"] == "HELLO") {
            resp3 += 1;
            // The confirmation came as a RESP3 push, matched with its command.
            assert_eq!(subs[0]["reply_type"], "push", "{evs:?}");
            let hello = evs.iter().find(|e| e["command"] == "HELLO").unwrap();
            assert_eq!(hello["reply_type"], "map", "{hello}");
        }
    }
    assert_eq!(resp3, 1, "one subscriber spoke RESP3");
}
