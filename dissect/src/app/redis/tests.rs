//! Redis parser tests: messages built by hand (pipelining, errors,
//! pub/sub in RESP2 and RESP3, attributes, secrets, caps, gaps), and the
//! corpus compared with Zeek's redis.log and with tshark's RESP dissector.

use super::event::{RedisEvent, RedisKind};
use super::wire::build::*;
use super::wire::{self, Limits, Read, Reader};
use super::{probe_tcp, RedisConfig, RedisParser, RedisProtocol};
use crate::app::registry::Protocol;
use crate::app::testutil::{corpus, replay_tcp_detect, tcp_segments, tshark, unhex, Driver};
use crate::app::{detect_tcp, AppEvent, AppProto, Detect, Direction, Probe};

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

fn driver(cfg: RedisConfig) -> Driver {
    Driver::new(Box::new(RedisParser::new(cfg)))
}

fn rd(events: &[AppEvent]) -> Vec<&RedisEvent> {
    events
        .iter()
        .map(|e| match e {
            AppEvent::Redis(p) => &**p,
            other => panic!("not redis: {other:?}"),
        })
        .collect()
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn s(x: &str) -> Vec<u8> {
    x.as_bytes().to_vec()
}

#[test]
fn pipelined_commands_are_matched_in_order() {
    let mut d = driver(RedisConfig::default());
    let req = cat(&[
        cmd(&["SET", "k1", "v1"]),
        cmd(&["GET", "k1"]),
        cmd(&["INCR", "n"]),
        cmd(&["GET", "missing"]),
        cmd(&["LRANGE", "l", "0", "-1"]),
    ]);
    // The pipeline arrives split at an awkward place.
    d.feed(C, &req[..7], 1_000);
    d.feed(C, &req[7..], 1_500);
    let rep = cat(&[
        s("+OK\r\n"),
        bulk("v1"),
        s(":7\r\n"),
        s("$-1\r\n"),
        array(&[bulk("a"), bulk("b"), bulk("c")]),
    ]);
    d.feed(S, &rep[..9], 4_000);
    d.feed(S, &rep[9..], 5_000);
    let ev = rd(&d.events);
    assert_eq!(ev.len(), 5, "{ev:#?}");
    let names: Vec<_> = ev.iter().map(|e| e.command.as_deref().unwrap()).collect();
    assert_eq!(names, ["SET", "GET", "INCR", "GET", "LRANGE"]);
    assert_eq!(ev[0].key.as_deref(), Some("k1"));
    assert_eq!(ev[0].reply.as_deref(), Some("OK"));
    assert_eq!(ev[0].reply_type(), Some("simple_string"));
    // From the packet that completed the command to the one that completed its reply.
    assert_eq!(ev[0].latency_ns, Some(2_500));
    assert_eq!(ev[0].request_bytes, cmd(&["SET", "k1", "v1"]).len() as u64);
    assert_eq!(ev[0].response_bytes, 5);
    assert!(ev[0].args.is_empty(), "values are not logged by default");
    assert_eq!(ev[0].arg_count, 2);
    assert_eq!(ev[1].reply_type(), Some("bulk_string"));
    assert_eq!(ev[1].reply_length(), Some(2));
    assert_eq!(ev[1].reply, None, "bulk values are redacted by default");
    assert_eq!(ev[2].reply.as_deref(), Some("7"));
    assert_eq!(ev[3].reply_type(), Some("null"));
    assert_eq!(ev[4].reply_elements(), Some(3));
    assert_eq!(ev[4].latency_ns, Some(3_500));
    assert!(ev.iter().all(|e| e.status() == "ok"));
    let tx: Vec<u64> = ev.iter().map(|e| e.tx_id).collect();
    assert_eq!(tx, [1, 2, 3, 4, 5]);
    assert_eq!(d.parser.stats().events, 5);
}

#[test]
fn error_replies_and_multi_exec() {
    let mut d = driver(RedisConfig::default());
    d.feed(
        C,
        &cat(&[
            cmd(&["LPUSH", "s", "x"]),
            cmd(&["MULTI"]),
            cmd(&["INCR", "c"]),
            cmd(&["NOSUCH"]),
            cmd(&["EXEC"]),
        ]),
        10,
    );
    d.feed(
        S,
        &cat(&[
            s("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            s("+OK\r\n"),
            s("+QUEUED\r\n"),
            s("-ERR unknown command 'NOSUCH'\r\n"),
            s("-EXECABORT Transaction discarded because of previous errors.\r\n"),
        ]),
        20,
    );
    let ev = rd(&d.events);
    assert_eq!(ev.len(), 5);
    assert_eq!(ev[0].status(), "error");
    assert_eq!(ev[0].error_code(), Some("WRONGTYPE"));
    assert_eq!(
        ev[0].error.as_deref(),
        Some("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(ev[0].reply_type(), Some("error"));
    assert!(!ev[1].in_transaction, "MULTI itself opens the block");
    assert!(ev[2].in_transaction && ev[3].in_transaction && ev[4].in_transaction);
    assert_eq!(ev[2].reply.as_deref(), Some("QUEUED"));
    assert_eq!(ev[3].error_code(), Some("ERR"));
    assert_eq!(ev[4].error_code(), Some("EXECABORT"));
    // After EXEC the block is over.
    d.feed(C, &cmd(&["PING"]), 30);
    d.feed(S, b"+PONG\r\n", 31);
    assert!(!rd(&d.events)[5].in_transaction);
}

#[test]
fn resp2_pubsub_confirmations_and_messages() {
    let mut d = driver(RedisConfig::default());
    d.feed(C, &cmd(&["SUBSCRIBE", "news", "sport"]), 100);
    d.feed(
        S,
        &cat(&[
            array(&[bulk("subscribe"), bulk("news"), s(":1\r\n")]),
            array(&[bulk("subscribe"), bulk("sport"), s(":2\r\n")]),
        ]),
        110,
    );
    d.feed(
        S,
        &array(&[bulk("message"), bulk("news"), bulk("hello world")]),
        120,
    );
    d.feed(C, &cmd(&["PSUBSCRIBE", "n*"]), 130);
    // A message may come before the confirmation of a later command: it is
    // a push, not the PSUBSCRIBE's reply.
    d.feed(
        S,
        &cat(&[
            array(&[bulk("message"), bulk("sport"), bulk("goal")]),
            array(&[bulk("psubscribe"), bulk("n*"), s(":3\r\n")]),
            array(&[bulk("pmessage"), bulk("n*"), bulk("news"), bulk("x")]),
        ]),
        140,
    );
    d.feed(C, &cmd(&["UNSUBSCRIBE"]), 150);
    d.feed(
        S,
        &cat(&[
            array(&[bulk("unsubscribe"), bulk("news"), s(":2\r\n")]),
            array(&[bulk("unsubscribe"), bulk("sport"), s(":1\r\n")]),
        ]),
        160,
    );
    d.feed(C, &cmd(&["PING"]), 170);
    d.feed(S, &array(&[bulk("pong"), bulk("")]), 180);
    let ev = rd(&d.events);
    let shape: Vec<(RedisKind, Option<&str>, Option<&str>)> = ev
        .iter()
        .map(|e| (e.kind, e.command.as_deref(), e.channel.as_deref()))
        .collect();
    assert_eq!(
        shape,
        [
            (RedisKind::Command, Some("SUBSCRIBE"), None),
            (RedisKind::Push, None, Some("news")),
            (RedisKind::Push, None, Some("sport")),
            (RedisKind::Command, Some("PSUBSCRIBE"), None),
            (RedisKind::Push, None, Some("news")),
            (RedisKind::Command, Some("UNSUBSCRIBE"), None),
            (RedisKind::Command, Some("PING"), None),
        ],
        "{ev:#?}"
    );
    assert_eq!(ev[0].confirmations, 2);
    assert_eq!(ev[0].subscriptions, Some(2));
    assert_eq!(ev[0].latency_ns, Some(10));
    assert_eq!(ev[1].push_kind.as_deref(), Some("message"));
    assert_eq!(ev[1].reply_length(), Some(11), "payload size");
    assert_eq!(ev[1].reply, None, "payload redacted");
    assert_eq!(ev[4].pattern.as_deref(), Some("n*"));
    assert_eq!(ev[4].push_kind.as_deref(), Some("pmessage"));
    // UNSUBSCRIBE without arguments: one confirmation per channel left
    // (two channels; the pattern stays).
    assert_eq!(ev[5].confirmations, 2);
    assert_eq!(ev[5].subscriptions, Some(1));
    assert_eq!(ev[6].reply_elements(), Some(2));
    assert!(ev.iter().all(|e| !e.unanswered));
}

#[test]
fn a_reply_that_looks_like_a_message_is_a_reply_outside_subscribed_mode() {
    let mut d = driver(RedisConfig::default());
    d.feed(C, &cmd(&["LRANGE", "l", "0", "-1"]), 1);
    d.feed(S, &array(&[bulk("message"), bulk("news"), bulk("x")]), 2);
    let ev = rd(&d.events);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].command.as_deref(), Some("LRANGE"));
    assert_eq!(ev[0].reply_elements(), Some(3));
}

#[test]
fn resp3_hello_push_and_attributes_and_no_secrets() {
    let mut d = driver(RedisConfig {
        log_values: true,
        ..RedisConfig::default()
    });
    d.feed(
        C,
        &cat(&[
            cmd(&["HELLO", "3", "AUTH", "alice", "s3cret-pw", "SETNAME", "app"]),
            cmd(&["AUTH", "bob", "hunter2"]),
            cmd(&["AUTH", "onlypass"]),
        ]),
        1,
    );
    d.feed(
        S,
        &cat(&[
            s("%2\r\n"),
            bulk("server"),
            bulk("redis"),
            bulk("proto"),
            s(":3\r\n"),
            s("+OK\r\n"),
            s("-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
        ]),
        2,
    );
    d.feed(C, &cmd(&["SUBSCRIBE", "ch"]), 3);
    d.feed(
        S,
        &cat(&[
            push(&[bulk("subscribe"), bulk("ch"), s(":1\r\n")]),
            push(&[bulk("message"), bulk("ch"), bulk("payload")]),
        ]),
        4,
    );
    d.feed(C, &cmd(&["GET", "k"]), 5);
    // An attribute (RESP3) before the reply, and a reply interleaved with
    // an invalidation push.
    d.feed(
        S,
        &cat(&[
            push(&[bulk("invalidate"), array(&[bulk("k")])]),
            s("|1\r\n+key-popularity\r\n%1\r\n$1\r\nk\r\n,0.19\r\n"),
            bulk("v"),
        ]),
        6,
    );
    d.feed(C, &cmd(&["EXISTS", "k"]), 7);
    d.feed(S, b"#t\r\n", 8);
    let ev = rd(&d.events);
    assert_eq!(ev.len(), 8, "{ev:#?}");
    assert_eq!(ev[0].command.as_deref(), Some("HELLO"));
    assert_eq!(ev[0].user.as_deref(), Some("alice"));
    assert_eq!(ev[0].key, None);
    assert!(ev[0].args.is_empty());
    assert_eq!(ev[0].reply_type(), Some("map"));
    assert_eq!(ev[0].reply_elements(), Some(2));
    assert_eq!(ev[1].user.as_deref(), Some("bob"));
    assert_eq!(ev[2].user, None, "one-argument AUTH has only a password");
    assert_eq!(ev[2].error_code(), Some("WRONGPASS"));
    assert_eq!(ev[3].confirmations, 1);
    assert_eq!(ev[4].kind, RedisKind::Push);
    assert_eq!(ev[4].reply.as_deref(), Some("payload"), "log_values");
    assert_eq!(ev[5].push_kind.as_deref(), Some("invalidate"));
    assert_eq!(ev[6].command.as_deref(), Some("GET"));
    assert_eq!(ev[6].attributes, 1);
    assert_eq!(ev[6].reply.as_deref(), Some("v"));
    assert_eq!(ev[7].reply_type(), Some("boolean"));
    assert_eq!(ev[7].reply.as_deref(), Some("t"));
    // No password reaches any schema.
    for e in &d.events {
        for schema in all_encodings(e) {
            assert!(
                !schema.contains("s3cret-pw")
                    && !schema.contains("hunter2")
                    && !schema.contains("onlypass"),
                "{schema}"
            );
        }
    }
}

/// The event written by every writer (as JSON-ish text, for substring checks).
fn all_encodings(e: &AppEvent) -> Vec<String> {
    use crate::app::encode::{JsonWriter, StrBuilder, WriteOptions};
    let o = WriteOptions { max_body_bytes: 0 };
    let w = e.writers();
    let mut out = Vec::new();
    type F = fn(&dyn crate::app::encode::EventWriters, &mut JsonWriter<'_>, &WriteOptions);
    let fs: [F; 4] = [
        |w, j, o| w.native(j, o),
        |w, j, o| w.ecs(j, o),
        |w, j, o| w.eve(j, o),
        |w, j, o| w.gelf(j, o),
    ];
    for f in fs {
        let mut buf = Vec::new();
        let mut j = JsonWriter::object(&mut buf);
        f(w, &mut j, &o);
        j.finish_line();
        out.push(String::from_utf8_lossy(&buf).into_owned());
    }
    let mut buf = Vec::new();
    {
        let mut j = JsonWriter::object(&mut buf);
        w.ecs_flowtap(&mut j);
        j.finish_line();
    }
    out.push(String::from_utf8_lossy(&buf).into_owned());
    let mut sb = Vec::new();
    {
        let mut j = JsonWriter::object(&mut sb);
        j.str_with("short", |s: &mut StrBuilder<'_>| w.gelf_short(s));
        j.finish_line();
    }
    out.push(String::from_utf8_lossy(&sb).into_owned());
    out
}

#[test]
fn log_values_writes_capped_arguments() {
    let cfg = RedisConfig {
        log_values: true,
        max_arguments: 2,
        max_argument_bytes: 4,
        ..RedisConfig::default()
    };
    let mut d = driver(cfg);
    d.feed(C, &cmd(&["RPUSH", "listkey", "a", "bbbbbb", "c"]), 1);
    d.feed(C, &cmd(&["CONFIG", "SET", "requirepass", "pw"]), 1);
    d.feed(S, b":3\r\n+OK\r\n", 2);
    let ev = rd(&d.events);
    assert_eq!(ev[0].key.as_deref(), Some("list"));
    assert_eq!(ev[0].args, ["a", "bbbb"]);
    assert_eq!(ev[0].arg_count, 4);
    assert!(ev[0].truncated);
    assert_eq!(ev[1].key.as_deref(), Some("SET"));
    assert!(ev[1].args.is_empty(), "CONFIG arguments may be passwords");
    assert_eq!(d.parser.stats().truncated, 1);
}

#[test]
fn large_bulk_values_are_streamed_not_buffered() {
    let mut d = driver(RedisConfig::default());
    let value = "x".repeat(1_000_000);
    d.feed(C, &cmd(&["SET", "big", &value]), 1);
    d.feed(C, &cmd(&["GET", "big"]), 2);
    let rep = cat(&[s("+OK\r\n"), bulk(&value)]);
    for (k, chunk) in rep.chunks(1460).enumerate() {
        d.feed(S, chunk, 10 + k as u64);
        assert!(d.buffered(S).len() < 64, "nothing held of the value");
    }
    let ev = rd(&d.events);
    assert_eq!(ev.len(), 2);
    assert_eq!(
        ev[0].request_bytes,
        cmd(&["SET", "big", &value]).len() as u64
    );
    assert_eq!(ev[1].reply_length(), Some(1_000_000));
    assert_eq!(ev[1].response_bytes, bulk(&value).len() as u64);
}

#[test]
fn inline_commands_are_parsed() {
    let mut d = driver(RedisConfig::default());
    d.feed(C, b"PING\r\nPING\r\nset  a 1\r\n\r\n", 1);
    d.feed(S, b"+PONG\r\n+PONG\r\n+OK\r\n", 2);
    let ev = rd(&d.events);
    let names: Vec<_> = ev.iter().map(|e| e.command.as_deref().unwrap()).collect();
    assert_eq!(names, ["PING", "PING", "SET"]);
    assert_eq!(ev[2].key.as_deref(), Some("a"));
    assert_eq!(ev[2].arg_count, 2);
}

#[test]
fn client_reply_off_and_skip_are_not_waited_for() {
    let mut d = driver(RedisConfig::default());
    d.feed(
        C,
        &cat(&[
            cmd(&["CLIENT", "REPLY", "SKIP"]),
            cmd(&["SET", "a", "1"]),
            cmd(&["GET", "a"]),
        ]),
        1,
    );
    d.feed(S, &bulk("1"), 2);
    let ev = rd(&d.events);
    assert_eq!(ev.len(), 3);
    assert!(ev[0].no_reply && ev[1].no_reply && !ev[2].no_reply);
    assert_eq!(ev[2].command.as_deref(), Some("GET"));
    assert_eq!(ev[2].reply_length(), Some(1));
    assert_eq!(d.parser.stats().orphan_responses, 0);
}

#[test]
fn pending_cap_emits_the_oldest_unanswered() {
    let mut d = driver(RedisConfig {
        max_pending: 2,
        ..RedisConfig::default()
    });
    d.feed(
        C,
        &cat(&[cmd(&["GET", "a"]), cmd(&["GET", "b"]), cmd(&["GET", "c"])]),
        1,
    );
    let ev = rd(&d.events);
    assert_eq!(ev.len(), 1);
    assert!(ev[0].unanswered);
    assert_eq!(ev[0].key.as_deref(), Some("a"));
    assert_eq!(d.parser.stats().pending_overflow, 1);
    d.flush(5);
    assert_eq!(rd(&d.events).len(), 3);
    assert_eq!(d.parser.stats().unanswered, 3);
}

#[test]
fn gap_flushes_pending_and_resyncs() {
    let mut d = driver(RedisConfig::default());
    d.feed(C, &cmd(&["GET", "a"]), 1);
    let second = cmd(&["SET", "b", "vvvvvvvv"]);
    d.feed(C, &second[..9], 2);
    d.gap(C, 20);
    // The tail of a lost command, then whole commands.
    d.feed(
        C,
        &cat(&[s("vvv\r\n"), cmd(&["GET", "c"]), cmd(&["DEL", "d"])]),
        3,
    );
    d.feed(S, b"$1\r\nc\r\n:1\r\n", 4);
    let ev = rd(&d.events);
    assert_eq!(ev.len(), 3, "{ev:#?}");
    assert!(ev[0].unanswered && ev[0].gap, "GET a lost its reply");
    assert_eq!(ev[1].command.as_deref(), Some("GET"));
    assert_eq!(ev[1].key.as_deref(), Some("c"));
    assert!(ev[1].gap, "its reply may belong to a lost command");
    assert_eq!(ev[2].command.as_deref(), Some("DEL"));
    let st = d.parser.stats();
    assert_eq!(st.gaps, 1);
    assert_eq!(st.resyncs, 1);
}

#[test]
fn garbage_is_counted_and_never_panics() {
    let mut d = driver(RedisConfig {
        max_line_bytes: 64,
        max_depth: 2,
        ..RedisConfig::default()
    });
    d.feed(S, &[b'x'; 200], 1);
    d.feed(S, b"*1\r\n*1\r\n*1\r\n:1\r\n", 2);
    d.feed(S, b"$abc\r\n", 3);
    d.feed(S, b"$3\r\nabcXY", 4);
    assert!(d.parser.stats().malformed >= 3, "{:?}", d.parser.stats());
    // The client side still works.
    d.feed(C, &cmd(&["PING"]), 5);
    d.feed(S, b"\r\n+PONG\r\n", 6);
    let ev = rd(&d.events);
    assert!(ev.iter().any(|e| e.command.as_deref() == Some("PING")));
}

#[test]
fn reader_handles_every_split_point() {
    let msg = cat(&[
        s("|1\r\n+a\r\n:1\r\n"),
        s("*3\r\n$3\r\nSET\r\n%1\r\n+k\r\n*0\r\n_\r\n"),
    ]);
    let lim = Limits {
        max_elems: 8,
        max_elem_bytes: 16,
        max_line: 64,
        max_depth: 8,
    };
    for cut in 0..=msg.len() {
        let mut r = Reader::default();
        let mut buf: Vec<u8> = msg[..cut].to_vec();
        let mut got = None;
        let mut fed_rest = false;
        for _ in 0..8 {
            match r.read(&buf, &lim, false) {
                Read::Msg { used, msg } => {
                    assert_eq!(used, buf.len());
                    got = Some(msg);
                    break;
                }
                Read::Partial { used, .. } => {
                    buf.drain(..used);
                    if fed_rest {
                        break;
                    }
                    buf.extend_from_slice(&msg[cut..]);
                    fed_rest = true;
                }
                Read::Bad { used } => panic!("bad at {used} (cut {cut})"),
            }
        }
        let m = got.unwrap_or_else(|| panic!("no message (cut {cut})"));
        assert_eq!(m.attributes, 1);
        assert_eq!(m.head.kind, b'*');
        assert_eq!(m.elems.len(), 3);
        assert_eq!(m.elems[0].data, b"SET");
        assert_eq!(m.elems[1].kind, b'%');
        assert_eq!(m.elems[2].kind, b'_');
        assert_eq!(m.bytes, msg.len() as u64);
    }
}

#[test]
fn probe_finds_redis_and_nothing_else() {
    assert_eq!(probe_tcp(C, &cmd(&["PING"])), Probe::Yes);
    assert_eq!(probe_tcp(C, &cmd(&["SET", "k", "v"])), Probe::Yes);
    assert_eq!(probe_tcp(C, &cmd(&["FT.SEARCH", "idx", "q"])), Probe::Yes);
    assert_eq!(probe_tcp(C, b"*3\r\n$3\r\nSE"), Probe::NeedMore);
    assert_eq!(probe_tcp(C, b"*"), Probe::NeedMore);
    assert_eq!(probe_tcp(C, b"PING\r\n"), Probe::Yes);
    assert_eq!(probe_tcp(C, b"publish news hi\r\n"), Probe::Yes);
    assert_eq!(probe_tcp(C, b"PIN"), Probe::NeedMore);
    assert_eq!(probe_tcp(S, &cmd(&["PING"])), Probe::No);
    for other in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0, 0, 0x3c, 0x03, 0x03],
        &[0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f],
        b"USER anonymous\r\n",
        b"GET /index.html HTTP/1.0\r\n",
        b"*3\r\n$3\r\n123\r\n",
        b"*0\r\n",
        b"** hello **\r\n",
        b"*3\r\n:1\r\n",
    ] {
        assert_eq!(probe_tcp(C, other), Probe::No, "{other:?}");
    }
    // A server on another port is found by content.
    assert_eq!(
        detect_tcp(40000, 7000, C, &cmd(&["GET", "k"])),
        Detect::Proto(AppProto::Redis)
    );
    assert_eq!(
        detect_tcp(40000, 6379, C, &cmd(&["GET", "k"])),
        Detect::Proto(AppProto::Redis)
    );
}

#[test]
fn config_checks() {
    assert!(RedisProtocol::validate(&RedisConfig::default()).is_ok());
    let bad = RedisConfig {
        max_pending: 0,
        ..RedisConfig::default()
    };
    assert!(RedisProtocol::validate(&bad)
        .unwrap_err()
        .starts_with("max_pending"));
    let bad = RedisConfig {
        max_line_bytes: 1 << 20,
        ..RedisConfig::default()
    };
    assert!(RedisProtocol::validate(&bad)
        .unwrap_err()
        .starts_with("max_line_bytes"));
}

/// The Redis events of every flow of a capture (detected by content), with
/// the flow's client port.
fn corpus_events(rel: &str) -> Vec<(u16, RedisEvent)> {
    replay_tcp_detect(&corpus(rel))
        .into_iter()
        .flat_map(|f| {
            let port = f.client_port;
            f.events.into_iter().map(move |e| match e {
                AppEvent::Redis(r) => (port, *r),
                other => panic!("{rel}: not redis: {other:?}"),
            })
        })
        .collect()
}

/// Zeek's redis.log rows: (orig port, cmd.name, cmd.key, success, reply).
fn zeek_log(rel: &str) -> Vec<(u16, String, String, String, String)> {
    let p = corpus(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[3].parse().unwrap(),
                f[6].to_string(),
                f[7].to_string(),
                f[9].to_string(),
                f[10].to_string(),
            )
        })
        .collect()
}

/// Every row of Zeek's redis.log has its event (same connection, in
/// order), field by field: `cmd.name` = `command`, `cmd.key` = `key`,
/// `success` T = status ok, `reply.value` = `reply` (with `log_values`,
/// as Zeek logs bulk values).
///
/// Deliberate differences (asserted, so a change shows):
/// * Zeek's `cmd.key` is only set for commands it knows take a key (GET,
///   SET); ours is the first argument of every command: `PUBLISH`'s and
///   `SUBSCRIBE`'s channel. Zeek's `-` there must be our channel.
/// * Zeek leaves SUBSCRIBE/PSUBSCRIBE unmatched (`success` and `reply`
///   `-`): their confirmations are arrays like pushes. We match each
///   confirmation with its command (status ok, `confirmations`,
///   `subscriptions`) and log the messages as pushes, which Zeek drops.
/// * Bulk replies (`you_are_sane`) are values: written only with
///   `log_values` (Zeek always writes them).
#[test]
fn corpus_matches_zeek_redis_log() {
    let caps = [
        (
            "redis/zeek-redis__pipelining-example.pcap",
            "redis/zeek-redis__pipelining-example.expected.zeek-scripts.base.protocols.redis.pipelined.redis.log",
            3,
        ),
        (
            "redis/zeek-redis__pubsub.pcap",
            "redis/zeek-redis__pubsub.expected.zeek-scripts.base.protocols.redis.pubsub.redis.log",
            7,
        ),
    ];
    let mut matched = 0;
    for (pcap, log, rows) in caps {
        let zeek = zeek_log(log);
        assert_eq!(zeek.len(), rows, "{log}");
        let ours = corpus_events(pcap);
        let valued = with_values(pcap, ours.len());
        let mut next_per_port = std::collections::HashMap::<u16, usize>::new();
        for (port, name, key, success, reply) in &zeek {
            let cmds: Vec<&RedisEvent> = ours
                .iter()
                .filter(|(p, e)| p == port && e.kind == RedisKind::Command)
                .map(|(_, e)| e)
                .collect();
            let k = next_per_port.entry(*port).or_default();
            let pos = cmds[*k..]
                .iter()
                .position(|e| e.command.as_deref() == Some(name.as_str()))
                .unwrap_or_else(|| panic!("{pcap}: {port} {name} missing: {cmds:#?}"))
                + *k;
            *k = pos + 1;
            let e = cmds[pos];
            match (key.as_str(), name.as_str()) {
                ("-", "PUBLISH" | "SUBSCRIBE" | "PSUBSCRIBE") => {
                    assert!(e.key.is_some(), "our key is the channel: {e:?}")
                }
                ("-", _) => assert_eq!(e.key, None, "{e:?}"),
                (k, _) => assert_eq!(e.key.as_deref(), Some(k)),
            }
            match success.as_str() {
                "T" => assert_eq!(e.status(), "ok", "{e:?}"),
                "F" => assert_eq!(e.status(), "error", "{e:?}"),
                _ => {
                    assert!(matches!(name.as_str(), "SUBSCRIBE" | "PSUBSCRIBE"));
                    assert!(e.confirmations >= 1 && e.subscriptions.is_some(), "{e:?}");
                }
            }
            if reply != "-" {
                if e.reply_type() == Some("bulk_string") {
                    assert_eq!(e.reply, None, "bulk values redacted by default");
                    let v = valued
                        .iter()
                        .find(|(p, v)| p == port && v.tx_id == e.tx_id)
                        .map(|(_, v)| v)
                        .unwrap();
                    assert_eq!(v.reply.as_deref(), Some(reply.as_str()));
                } else {
                    assert_eq!(e.reply.as_deref(), Some(reply.as_str()), "{e:?}");
                }
            }
            matched += 1;
        }
        // Every command we saw is one Zeek logged, except for the
        // connection's pushes.
        let our_cmds = ours
            .iter()
            .filter(|(_, e)| e.kind == RedisKind::Command)
            .count();
        assert_eq!(our_cmds, rows, "{pcap}: {ours:#?}");
        assert!(ours.iter().all(|(_, e)| e.kind != RedisKind::Orphan));
    }
    assert_eq!(matched, 10);
    // The pubsub capture's pushes: the subscriber got both published
    // messages (channels from the PUBLISH commands of other connections).
    let ours = corpus_events("redis/zeek-redis__pubsub.pcap");
    let pushes: Vec<&RedisEvent> = ours
        .iter()
        .filter(|(_, e)| e.kind == RedisKind::Push)
        .map(|(_, e)| e)
        .collect();
    let published: Vec<&str> = ours
        .iter()
        .filter(|(_, e)| e.command.as_deref() == Some("PUBLISH"))
        .filter_map(|(_, e)| e.key.as_deref())
        .collect();
    // Each PUBLISH's reply is the number of subscriptions it reached.
    let reached: u64 = ours
        .iter()
        .filter(|(_, e)| e.command.as_deref() == Some("PUBLISH"))
        .map(|(_, e)| e.reply.as_deref().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(pushes.len() as u64, reached, "{pushes:#?}");
    for p in &pushes {
        assert!(published.contains(&p.channel.as_deref().unwrap()), "{p:?}");
    }
}

/// Replays `pcap` again with `log_values`: the same flows and tx ids.
fn with_values(pcap: &str, expected: usize) -> Vec<(u16, RedisEvent)> {
    let flows = crate::app::testutil::replay_tcp(&corpus(pcap), &|_, _| {
        Box::new(RedisParser::new(RedisConfig {
            log_values: true,
            ..RedisConfig::default()
        }))
    });
    let out: Vec<(u16, RedisEvent)> = flows
        .into_iter()
        .flat_map(|f| {
            let port = f.client_port;
            f.events.into_iter().map(move |e| match e {
                AppEvent::Redis(r) => (port, *r),
                other => panic!("not redis: {other:?}"),
            })
        })
        .collect();
    assert_eq!(out.len(), expected);
    out
}

/// A tshark bytes field (hex) as text.
fn text(hex: &str) -> String {
    String::from_utf8_lossy(&unhex(&hex.replace(':', ""))).into_owned()
}

/// tshark's RESP dissector on every Redis capture: the commands it
/// decodes (arrays of bulk strings from the client: name and key) are
/// ours in the same order; the simple strings and errors of the server
/// are our `reply`/`error` values in order; its integers are our integer
/// replies and subscription counts; a top-level bulk string's length is
/// our `reply_length`.
///
/// Deliberate difference: tshark does not decode inline commands
/// (`PING\r\n`, `PUBLISH ch msg\r\n` as typed into telnet) and we do, as
/// the server does: every extra command of ours must be a line of a
/// client segment tshark left undecoded.
#[test]
fn corpus_matches_tshark_resp() {
    let caps = [
        "redis/ndpi-resp.pcap",
        "redis/zeek-redis__pipelining-example.pcap",
        "redis/zeek-redis__pubsub.pcap",
    ];
    let mut compared = 0;
    for rel in caps {
        let path = corpus(rel);
        let out = tshark(&[
            "-r",
            path.to_str().unwrap(),
            "-Y",
            "tcp.len > 0",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=|",
            "-e",
            "tcp.stream",
            "-e",
            "tcp.dstport",
            "-e",
            "resp.array.length",
            "-e",
            "resp.bulk_string.value",
            "-e",
            "resp.string",
            "-e",
            "resp.error",
            "-e",
            "resp.integer",
            "-e",
            "tcp.payload",
            "-e",
            "resp.bulk_string.length",
        ]);
        let segs = tcp_segments(&path);
        let ours = corpus_events(rel);
        // Per client port: tshark's commands, replies, integers, inline lines.
        let mut t_cmds: Vec<(u16, String, Option<String>)> = Vec::new();
        let mut t_text: Vec<(u16, String)> = Vec::new();
        let mut t_ints: Vec<(u16, String)> = Vec::new();
        let mut t_bulk_len: Vec<(u16, u64)> = Vec::new();
        let mut inline_lines = 0;
        let mut last_line = String::new();
        for line in out.lines() {
            if line == last_line {
                // tshark repeats a reassembled reply on each of its segments.
                continue;
            }
            last_line = line.to_string();
            let f: Vec<&str> = line.split('\t').collect();
            let list = |i: usize| -> Vec<&str> {
                f.get(i)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.split('|').collect())
                    .unwrap_or_default()
            };
            let dport: u16 = f[1].parse().unwrap();
            let to_server = dport == 6379;
            let stream: u32 = f[0].parse().unwrap();
            let client_port = segs
                .iter()
                .find(|s| s.stream == stream && (s.dport == 6379))
                .map(|s| s.sport)
                .unwrap();
            let arrays = list(2);
            let values = list(3);
            if to_server {
                if arrays.is_empty() {
                    // Undecoded: inline commands.
                    let payload = unhex(f[7]);
                    inline_lines += payload
                        .split(|&c| c == b'\n')
                        .filter(|l| !l.is_empty() && l != b"\r")
                        .count();
                    continue;
                }
                let mut at = 0;
                for n in arrays {
                    let n: usize = n.parse().unwrap();
                    t_cmds.push((
                        client_port,
                        text(values[at]).to_ascii_uppercase(),
                        values.get(at + 1).filter(|_| n > 1).map(|s| text(s)),
                    ));
                    at += n;
                }
            } else if arrays.is_empty() {
                // Top-level scalars only: tshark also lists what is nested
                // (the strings of a COMMAND reply), which we do not keep.
                for s in list(4).into_iter().chain(list(5)) {
                    t_text.push((client_port, s.to_string()));
                }
                for i in list(6) {
                    t_ints.push((client_port, i.to_string()));
                }
                for l in list(8) {
                    t_bulk_len.push((client_port, l.parse().unwrap()));
                }
            } else if values
                .first()
                .is_some_and(|v| text(v).ends_with("subscribe"))
            {
                // Subscribe confirmations: their count is our `subscriptions`.
                for i in list(6) {
                    t_ints.push((client_port, i.to_string()));
                }
            }
        }
        let our_cmds: Vec<(u16, String, Option<String>)> = ours
            .iter()
            .filter(|(_, e)| e.kind == RedisKind::Command)
            .map(|(p, e)| (*p, e.command.clone().unwrap(), e.key.clone()))
            .collect();
        // tshark's commands are ours, in order; the rest are inline.
        let mut k = 0;
        for c in &our_cmds {
            if t_cmds.get(k) == Some(c) {
                k += 1;
            }
        }
        assert_eq!(k, t_cmds.len(), "{rel}: {t_cmds:?} vs {our_cmds:?}");
        assert_eq!(our_cmds.len() - k, inline_lines, "{rel}: inline commands");
        compared += t_cmds.len();
        let mut our_text = Vec::new();
        let mut our_ints = Vec::new();
        let mut our_bulk_len = Vec::new();
        for (p, e) in &ours {
            match e.reply_type() {
                Some("simple_string") => our_text.push((*p, e.reply.clone().unwrap())),
                Some("error") => our_text.push((*p, e.error.clone().unwrap())),
                Some("integer") => our_ints.push((*p, e.reply.clone().unwrap())),
                Some("bulk_string") if e.kind == RedisKind::Command => {
                    our_bulk_len.push((*p, e.reply_length().unwrap()))
                }
                _ => {}
            }
            if let Some(n) = e.subscriptions {
                our_ints.push((*p, n.to_string()));
            }
        }
        let sorted = |mut v: Vec<(u16, String)>| {
            v.sort_by_key(|x| x.0);
            v
        };
        assert_eq!(sorted(our_text.clone()), sorted(t_text.clone()), "{rel}");
        assert_eq!(sorted(our_ints.clone()), sorted(t_ints.clone()), "{rel}");
        assert_eq!(our_bulk_len, t_bulk_len, "{rel}");
        compared += t_text.len() + t_ints.len() + t_bulk_len.len();
    }
    assert!(compared >= 20, "{compared}");
}

#[test]
fn corpus_large_reply_is_one_event() {
    // ndpi's capture: a COMMAND reply of ~200 KB in large segments, then
    // PING, SET and GET.
    let ours = corpus_events("redis/ndpi-resp.pcap");
    let cmds: Vec<&str> = ours
        .iter()
        .map(|(_, e)| e.command.as_deref().unwrap_or("-"))
        .collect();
    assert_eq!(cmds, ["COMMAND", "PING", "SET", "GET"], "{ours:#?}");
    assert_eq!(ours[0].1.reply_elements(), Some(240));
    assert!(ours[0].1.response_bytes > 50_000);
    assert!(ours.iter().all(|(_, e)| !e.unanswered && !e.gap));
}

#[test]
fn plausible_starts() {
    assert!(wire::plausible_at(&cmd(&["GET", "a"]), true));
    assert!(!wire::plausible_at(b"vvv\r\n", true));
    assert!(wire::plausible_at(b"+OK\r\n", false));
    assert!(wire::plausible_at(b"$-1\r\n", false));
    assert!(!wire::plausible_at(b"$x\r\n", false));
}

/// A small deterministic stand-in for the fuzz target, run with every
/// test: a valid session (both RESP versions, pub/sub, a large bulk) with
/// bytes flipped, cut at random places, with gaps, through the driver that
/// checks the parse contract; nothing may panic and no event may claim more
/// bytes than were fed.
#[test]
fn mutated_sessions_never_panic() {
    let client = cat(&[
        cmd(&["HELLO", "3", "AUTH", "u", "p"]),
        cmd(&["SET", "k", "v"]),
        cmd(&["SUBSCRIBE", "a", "b"]),
        s("PING\r\n"),
        cmd(&["GET", "k"]),
    ]);
    let server = cat(&[
        s("%1\r\n+proto\r\n:3\r\n+OK\r\n"),
        push(&[bulk("subscribe"), bulk("a"), s(":1\r\n")]),
        array(&[bulk("subscribe"), bulk("b"), s(":2\r\n")]),
        push(&[bulk("message"), bulk("a"), bulk(&"x".repeat(300))]),
        s("|1\r\n+t\r\n#t\r\n+PONG\r\n"),
        bulk("v"),
    ]);
    let mut next = crate::app::testutil::xorshift(0x9e37_79b9_7f4a_7c15u64);
    let mut rnd = move |n: usize| (next() % n.max(1) as u64) as usize;
    let (mut events, mut malformed) = (0, 0);
    for round in 0..400 {
        let cfg = RedisConfig {
            max_pending: 1 + rnd(4),
            log_values: round % 2 == 0,
            max_arguments: rnd(3),
            max_argument_bytes: 1 + rnd(8),
            max_error_bytes: 1 + rnd(8),
            max_line_bytes: 64 + rnd(64),
            max_depth: 1 + rnd(3),
        };
        let mut d = driver(cfg);
        let (mut c, mut sv) = (client.clone(), server.clone());
        for _ in 0..rnd(6) {
            let k = rnd(c.len());
            c[k] = rnd(256) as u8;
            let k = rnd(sv.len());
            sv[k] = rnd(256) as u8;
        }
        let (mut ci, mut si) = (0, 0);
        let mut fed = 0u64;
        while ci < c.len() || si < sv.len() {
            let to_server = si >= sv.len() || (ci < c.len() && rnd(2) == 0);
            let (buf, at, dir) = if to_server {
                (&c, &mut ci, C)
            } else {
                (&sv, &mut si, S)
            };
            let n = 1 + rnd(40);
            let end = (*at + n).min(buf.len());
            if rnd(30) == 0 {
                d.gap(dir, (end - *at) as u64);
            } else {
                d.feed(dir, &buf[*at..end], fed);
            }
            fed += (end - *at) as u64;
            *at = end;
        }
        d.flush(fed);
        events += d.events.len();
        malformed += d.parser.stats().malformed;
        for e in rd(&d.events) {
            assert!(e.request_bytes + e.response_bytes <= fed, "{e:?}");
        }
    }
    // The sessions did parse (unmutated rounds), and mutations were seen.
    assert!(events > 400 && malformed > 0, "{events} {malformed}");
}
