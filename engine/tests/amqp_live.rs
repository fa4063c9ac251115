//! AMQP 0-9-1 against a real broker: Debian's `rabbitmq-server` (a
//! throw-away node: its own Mnesia and log directories, no plugins) runs
//! inside a network namespace on its loopback, on a port that is not 5672
//! (so the protocol is found by content: the client's protocol header);
//! the real `flowtap` binary captures that loopback live (AF_PACKET) while
//! a python3-pika script declares an exchange and a queue, binds them,
//! publishes a message and gets it back (ack), gets from the empty queue,
//! publishes again and consumes (nack), cancels, then declares a missing
//! queue passively (the broker closes the channel: 404) and closes the
//! connection. Every method exchange must appear exactly once, in order,
//! with its names, sizes and codes.
//!
//! Needs root (namespaces); without root it prints a loud SKIPPED banner,
//! like `live.rs`. The packages come from `scripts/setup.sh`.

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/root.rs"]
#[macro_use]
mod root;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;
use live::{run, Flowtap, Netns};

const PORT: u16 = 5699;

/// A RabbitMQ node with everything under `dir`, run as root (the Debian
/// wrapper would switch to the `rabbitmq` user and its directories).
/// The broker's process, killed (by its id) and reaped on drop; what it
/// started (epmd) goes with the namespace.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_broker(ns: &Netns, dir: &Path) -> Broker {
    let log = std::fs::File::create(dir.join("broker.log")).expect("log");
    let broker = Broker(
        ns.cmd("env")
            .arg(format!("HOME={}", dir.display()))
            .args([
                "RABBITMQ_NODENAME=flowtap@localhost",
                "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
            ])
            .arg(format!("RABBITMQ_NODE_PORT={PORT}"))
            .arg("RABBITMQ_DIST_PORT=25699")
            .arg(format!(
                "RABBITMQ_MNESIA_BASE={}",
                dir.join("mnesia").display()
            ))
            .arg(format!("RABBITMQ_LOG_BASE={}", dir.join("log").display()))
            .arg(format!(
                "RABBITMQ_ENABLED_PLUGINS_FILE={}",
                dir.join("plugins").display()
            ))
            .arg(format!(
                "RABBITMQ_CONFIG_FILE={}",
                dir.join("none").display()
            ))
            .arg("/usr/lib/rabbitmq/bin/rabbitmq-server")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("rabbitmq-server (run scripts/setup.sh: rabbitmq-server)"),
    );
    let t0 = Instant::now();
    loop {
        let up = ns
            .cmd("/usr/bin/python3")
            .args([
                "-c",
                &format!("import socket; socket.create_connection(('127.0.0.1', {PORT}), 1)"),
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if up {
            return broker;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "rabbitmq-server not up: {}",
            std::fs::read_to_string(dir.join("broker.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The client: Debian's python3-pika against the broker.
const CLIENT: &str = r#"
import pika, sys
port = int(sys.argv[1])
params = pika.ConnectionParameters(host='127.0.0.1', port=port,
    credentials=pika.PlainCredentials('guest', 'guest'), heartbeat=0)
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.exchange_declare(exchange='orders', exchange_type='topic')
ch.queue_declare(queue='jobs')
ch.queue_bind(queue='jobs', exchange='orders', routing_key='order.*')
ch.basic_publish(exchange='orders', routing_key='order.created', body=b'{"id":42}',
    properties=pika.BasicProperties(content_type='application/json', delivery_mode=2))
m, p, b = ch.basic_get(queue='jobs')
assert b == b'{"id":42}', b
ch.basic_ack(m.delivery_tag)
m, p, b = ch.basic_get(queue='jobs')
assert m is None
ch.basic_publish(exchange='orders', routing_key='order.paid', body=b'paid')
for m, p, b in ch.consume('jobs', inactivity_timeout=5):
    assert b == b'paid', b
    ch.basic_nack(m.delivery_tag, requeue=False)
    break
ch.cancel()
try:
    ch.queue_declare(queue='missing', passive=True)
    sys.exit('declare of a missing queue succeeded')
except pika.exceptions.ChannelClosedByBroker as e:
    print('closed', e.reply_code)
conn.close()
print('done')
"#;

#[test]
fn pika_against_a_real_broker_every_method_once() {
    require_root!("network namespaces and a real server");
    let dir = tmp_dir("amqp-live");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let ns = Netns::new("ftmq");
    let broker = start_broker(&ns, &dir);

    let cfg = dir.join("flowtap.toml");
    std::fs::write(&cfg, "[output]\ntypes = [\"flow\", \"amqp\"]\n").expect("config");
    let output = dir.join("events.json");
    let mut flowtap = Flowtap::start(&ns, &output, &cfg);

    let script = dir.join("client.py");
    std::fs::write(&script, CLIENT).expect("script");
    let said = run(ns
        .cmd("/usr/bin/python3")
        .arg(&script)
        .arg(PORT.to_string()));
    assert!(
        said.contains("closed 404") && said.contains("done"),
        "{said}"
    );

    std::thread::sleep(Duration::from_millis(500));
    flowtap.stop();
    drop(broker);
    drop(ns);

    let text = std::fs::read_to_string(&output).expect("events");
    let events: Vec<Value> = text
        .lines()
        .filter(|l| l.ends_with('}'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect();
    assert!(
        events.iter().any(|e| e["event_type"] == "flow"
            && e["app_proto"] == "amqp"
            && e["dest_port"] == PORT),
        "the flow on port {PORT} is amqp (found by content): {}",
        flowtap.stderr()
    );
    let ev: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "amqp" && e["dest_port"] == PORT)
        .map(|e| &e["amqp"])
        .collect();
    let dump = || {
        ev.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let pairs: Vec<(String, String)> = ev
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap_or("-").to_string(),
                e["response"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let want = [
        ("connection.start", "connection.start-ok"),
        ("connection.tune", "connection.tune-ok"),
        ("connection.open", "connection.open-ok"),
        ("channel.open", "channel.open-ok"),
        ("exchange.declare", "exchange.declare-ok"),
        ("queue.declare", "queue.declare-ok"),
        ("queue.bind", "queue.bind-ok"),
        ("basic.publish", "-"),
        ("basic.get", "basic.get-ok"),
        ("basic.ack", "-"),
        ("basic.get", "basic.get-empty"),
        ("basic.publish", "-"),
        ("basic.consume", "basic.consume-ok"),
        ("basic.deliver", "-"),
        ("basic.nack", "-"),
        ("basic.cancel", "basic.cancel-ok"),
        ("queue.declare", "channel.close"),
        ("channel.close", "channel.close-ok"),
        ("connection.close", "connection.close-ok"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(pairs, want, "{}", dump());
    let start = ev[0];
    assert_eq!(start["sender"], "server");
    assert_eq!(start["protocol"], "0-9-1");
    assert_eq!(start["server_product"], "RabbitMQ");
    assert!(start["server_version"].is_string(), "{start}");
    assert_eq!(start["mechanism"], "PLAIN");
    assert_eq!(start["user"], "guest");
    assert_eq!(ev[1]["heartbeat"], 0, "pika asked for no heartbeats");
    assert_eq!(ev[2]["vhost"], "/");
    assert_eq!(ev[4]["exchange"], "orders");
    assert_eq!(ev[4]["exchange_type"], "topic");
    assert_eq!(ev[5]["queue"], "jobs");
    assert_eq!(ev[6]["routing_key"], "order.*");
    let p = ev[7];
    assert_eq!(p["sender"], "client");
    assert_eq!(p["exchange"], "orders");
    assert_eq!(p["routing_key"], "order.created");
    assert_eq!(p["body_size"], 9);
    assert_eq!(p["body_bytes"], 9);
    assert_eq!(p["content_type"], "application/json");
    assert_eq!(p["delivery_mode"], 2);
    assert_eq!(ev[8]["body_size"], 9);
    assert_eq!(ev[8]["message_count"], 0);
    assert!(ev[8]["latency_us"].is_u64());
    assert_eq!(ev[9]["delivery_tag"], ev[8]["delivery_tag"]);
    let d = ev[13];
    assert_eq!(d["sender"], "server");
    assert_eq!(d["routing_key"], "order.paid");
    assert_eq!(d["body_size"], 4);
    assert_eq!(d["consumer_tag"], ev[12]["consumer_tag"]);
    assert_eq!(ev[14]["delivery_tag"], d["delivery_tag"]);
    let failed = ev[16];
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["queue"], "missing");
    assert_eq!(failed["reply_code"], 404);
    let close = ev[17];
    assert_eq!(close["sender"], "server");
    assert_eq!(close["reply_code"], 404);
    assert_eq!(close["failed_method"], "queue.declare");
    assert!(close["reply_text"].as_str().unwrap().contains("NOT_FOUND"));
    assert_eq!(ev[18]["status"], "ok");
    assert_eq!(ev[18]["reply_code"], 200);
    assert!(
        ev.iter()
            .all(|e| e["unanswered"] == false && e["gap"] == false),
        "{}",
        dump()
    );
}
