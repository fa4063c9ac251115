//! MySQL parser tests: packets built by hand (login, queries, result sets,
//! prepared statements, errors, TLS, gaps, limits), and the corpus
//! compared with Zeek's `mysql.log` and tshark's MySQL dissector.

use super::event::{MysqlCommand, MysqlEvent};
use super::wire::build::{command, eof, err, greeting, ok, packet, response, result_set};
use super::wire::{
    CLIENT_COMPRESS, CLIENT_CONNECT_WITH_DB, CLIENT_DEPRECATE_EOF, CLIENT_PLUGIN_AUTH,
    CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION, CLIENT_SSL, COM_CHANGE_USER, COM_FIELD_LIST,
    COM_INIT_DB, COM_QUERY, COM_QUIT, COM_STMT_CLOSE, COM_STMT_EXECUTE, COM_STMT_FETCH,
    COM_STMT_PREPARE,
};
use super::{probe_tcp, MysqlConfig, MysqlParser};
use crate::app::testutil::{corpus, replay_tcp_detect, tshark, Driver, FlowOut};
use crate::app::{detect_tcp, AppEvent, AppProto, Detect, Direction, Probe};

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

/// What a MySQL 8 client and server agree on (protocol 41, secure
/// connection, plugin auth, connect with db, deprecate EOF off).
const CAPS: u32 =
    CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_WITH_DB;

fn driver(cfg: MysqlConfig) -> Driver {
    Driver::new(Box::new(MysqlParser::new(cfg)))
}

fn my(events: &[AppEvent]) -> Vec<&MysqlEvent> {
    events
        .iter()
        .map(|e| match e {
            AppEvent::Mysql(p) => &**p,
            other => panic!("not mysql: {other:?}"),
        })
        .collect()
}

fn login(d: &mut Driver, caps: u32) {
    d.feed(
        S,
        &greeting("8.0.32", 17, caps | CLIENT_SSL, "caching_sha2_password"),
        1_000,
    );
    d.feed(
        C,
        &response(
            caps,
            "alice",
            b"0123456789abcdefghij",
            Some("shop"),
            "caching_sha2_password",
        ),
        2_000,
    );
    // caching_sha2_password: fast authentication succeeded, then OK.
    d.feed(S, &[packet(2, &[1, 3]), ok(3, 0, 0, 2, 0)].concat(), 3_000);
}

#[test]
fn login_and_query_with_result_set() {
    let mut d = driver(MysqlConfig::default());
    login(&mut d, CAPS);
    d.feed(
        C,
        &command(COM_QUERY, b"select id, name from items"),
        10_000,
    );
    d.feed(
        S,
        &result_set(&["id", "name"], &[&["1", "apple"], &["2", "pear"]], 2),
        15_000,
    );
    let ev = my(&d.events);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    let l = ev[0];
    assert_eq!(l.command, MysqlCommand::Login);
    assert_eq!(l.command.as_str(), "login");
    assert_eq!(l.server_version.as_deref(), Some("8.0.32"));
    assert_eq!(l.connection_id, Some(17));
    assert_eq!(l.auth_plugin.as_deref(), Some("caching_sha2_password"));
    assert_eq!(
        l.client_auth_plugin.as_deref(),
        Some("caching_sha2_password")
    );
    assert_eq!(l.fast_auth, Some(true));
    assert_eq!(
        l.server_capabilities.map(|c| c & CLIENT_SSL),
        Some(CLIENT_SSL)
    );
    assert_eq!(l.client_capabilities, Some(CAPS));
    assert_eq!(l.user.as_deref(), Some("alice"));
    assert_eq!(l.schema.as_deref(), Some("shop"));
    assert_eq!(l.latency_ns, Some(1_000));
    assert_eq!(l.status(), "ok");
    let q = ev[1];
    assert_eq!(q.command.as_str(), "query");
    assert_eq!(q.statement.as_deref(), Some("select id, name from items"));
    assert_eq!(q.user.as_deref(), Some("alice"), "session on every event");
    assert_eq!(q.columns, Some(2));
    assert_eq!(q.rows, 2);
    assert_eq!(q.result_sets, 1);
    // Two row packets: 4-byte head + (1+1) + (1+5), and (1+1) + (1+4).
    assert_eq!(q.result_bytes, 12 + 11);
    assert_eq!(q.latency_ns, Some(5_000));
    assert_eq!(q.status(), "ok");
    assert_eq!(q.request_bytes, 4 + 1 + 26);
    assert_eq!(d.parser.stats().events, 2);
}

#[test]
fn secrets_are_never_kept() {
    let mut d = driver(MysqlConfig::default());
    login(&mut d, CAPS);
    d.flush(20_000);
    let text = format!("{:?}", d.events);
    assert!(!text.contains("0123456789abcdefghij"), "{text}");
    let bytes: Vec<u8> = b"0123456789abcdefghij".to_vec();
    assert!(!format!("{:?}", d.events).contains(&format!("{bytes:?}")));
}

#[test]
fn ok_err_and_init_db() {
    let mut d = driver(MysqlConfig::default());
    login(&mut d, CAPS);
    d.feed(
        C,
        &command(COM_QUERY, b"insert into t values (null, 'x')"),
        10,
    );
    let mut okp = vec![0, 1, 42, 2, 0, 1, 0];
    okp.extend_from_slice(b"Records: 1");
    d.feed(S, &packet(1, &okp), 11);
    d.feed(C, &command(COM_QUERY, b"select * from nope"), 12);
    d.feed(
        S,
        &err(1, 1146, "42S02", "Table 'shop.nope' doesn't exist"),
        13,
    );
    d.feed(C, &command(COM_INIT_DB, b"other"), 14);
    d.feed(S, &ok(1, 0, 0, 2, 0), 15);
    d.feed(C, &command(COM_INIT_DB, b"missing"), 16);
    d.feed(S, &err(1, 1049, "42000", "Unknown database 'missing'"), 17);
    d.feed(C, &command(COM_PING, b""), 18);
    d.feed(S, &ok(1, 0, 0, 2, 0), 19);
    d.feed(C, &command(COM_QUIT, b""), 20);
    let ev = my(&d.events);
    assert_eq!(ev.len(), 7, "{ev:#?}");
    let ins = ev[1];
    assert_eq!(ins.affected_rows, Some(1));
    assert_eq!(ins.last_insert_id, Some(42));
    assert_eq!(ins.warnings, Some(1));
    assert_eq!(ins.info.as_deref(), Some("Records: 1"));
    assert_eq!(ins.success(), Some(true));
    let e = ev[2];
    assert_eq!(e.status(), "error");
    let err = e.error.as_ref().expect("error");
    assert_eq!(err.code, 1146);
    assert_eq!(err.sql_state.as_deref(), Some("42S02"));
    assert_eq!(err.message, "Table 'shop.nope' doesn't exist");
    assert_eq!(ev[3].command.as_str(), "init_db");
    assert_eq!(ev[3].statement.as_deref(), Some("other"));
    assert_eq!(ev[3].schema.as_deref(), Some("shop"), "before the change");
    assert_eq!(ev[4].schema.as_deref(), Some("other"), "after the OK");
    assert_eq!(ev[5].command.as_str(), "ping");
    assert_eq!(
        ev[5].schema.as_deref(),
        Some("other"),
        "a failed init_db changes nothing"
    );
    assert_eq!(ev[6].command.as_str(), "quit");
    assert_eq!(ev[6].status(), "none");
    assert_eq!(ev[6].success(), None);
}

const COM_PING: u8 = 0x0e;

#[test]
fn prepared_statement_text_per_execution() {
    let mut d = driver(MysqlConfig::default());
    login(&mut d, CAPS);
    d.feed(
        C,
        &command(COM_STMT_PREPARE, b"select name from items where id = ?"),
        10,
    );
    // OK: id 7, 1 column, 1 parameter; a parameter definition and EOF, a
    // column definition and EOF.
    let mut pok = vec![0];
    pok.extend_from_slice(&7u32.to_le_bytes());
    pok.extend_from_slice(&1u16.to_le_bytes());
    pok.extend_from_slice(&1u16.to_le_bytes());
    pok.extend_from_slice(&[0, 0, 0]);
    let defs = [
        packet(1, &pok),
        packet(2, b"\x03def\x00\x00\x00\x01?\x00\x0c\x3f\x00\x00\x00\x00\x00\x08\x80\x00\x00\x00\x00"),
        eof(3, 2),
        packet(4, b"\x03def\x02db\x01t\x01t\x04name\x04name\x0c\x21\x00\x00\x00\x00\xfd\x00\x00\x00\x00\x00"),
        eof(5, 2),
    ]
    .concat();
    d.feed(S, &defs, 11);
    for (i, ts) in [(1u32, 20u64), (2, 30)] {
        let mut ex = 7u32.to_le_bytes().to_vec();
        ex.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 3, 0]);
        ex.extend_from_slice(&i.to_le_bytes());
        d.feed(C, &command(COM_STMT_EXECUTE, &ex), ts);
        // Binary result: column count, definition, EOF, one row, EOF.
        let res = [
            packet(1, &[1]),
            packet(2, b"\x03def\x02db\x01t\x01t\x04name\x04name\x0c\x21\x00\x00\x00\x00\xfd\x00\x00\x00\x00\x00"),
            eof(3, 2),
            packet(4, b"\x00\x00\x05apple"),
            eof(5, 2),
        ]
        .concat();
        d.feed(S, &res, ts + 1);
    }
    d.feed(C, &command(COM_STMT_CLOSE, &7u32.to_le_bytes()), 40);
    d.feed(C, &command(COM_STMT_EXECUTE, &7u32.to_le_bytes()), 50);
    d.feed(
        S,
        &err(1, 1243, "HY000", "Unknown prepared statement handler"),
        51,
    );
    let ev = my(&d.events);
    assert_eq!(ev.len(), 6, "{ev:#?}");
    let p = ev[1];
    assert_eq!(p.command.as_str(), "stmt_prepare");
    assert_eq!(p.statement_id, Some(7));
    assert_eq!((p.columns, p.params), (Some(1), Some(1)));
    assert_eq!(p.status(), "ok");
    for e in &ev[2..4] {
        assert_eq!(e.command.as_str(), "stmt_execute");
        assert_eq!(
            e.statement.as_deref(),
            Some("select name from items where id = ?")
        );
        assert_eq!(e.statement_id, Some(7));
        assert_eq!((e.columns, e.rows), (Some(1), 1));
        assert_eq!(e.status(), "ok");
    }
    assert_eq!(ev[4].command.as_str(), "stmt_close");
    assert_eq!(
        ev[4].statement.as_deref(),
        Some("select name from items where id = ?")
    );
    let gone = ev[5];
    assert_eq!(gone.statement, None, "closed: its text is forgotten");
    assert_eq!(gone.error.as_ref().map(|e| e.code), Some(1243));
}

#[test]
fn deprecate_eof_and_multiple_result_sets() {
    let caps = CAPS | CLIENT_DEPRECATE_EOF;
    let mut d = driver(MysqlConfig::default());
    login(&mut d, caps);
    d.feed(C, &command(COM_QUERY, b"call two()"), 10);
    let def = b"\x03def\x00\x00\x00\x01a\x01a\x0c\x21\x00\x00\x00\x00\xfd\x00\x00\x00\x00\x00";
    // Rows end with an OK whose header is 0xfe; MORE_RESULTS_EXISTS (8)
    // on the first; the last answer is a plain OK.
    let term = |seq: u8, status: u16| {
        let mut p = vec![0xfe, 0, 0];
        p.extend_from_slice(&status.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        packet(seq, &p)
    };
    let res = [
        packet(1, &[1]),
        packet(2, def),
        packet(3, b"\x01x"),
        packet(4, b"\x01y"),
        term(5, 0x0a),
        packet(6, &[1]),
        packet(7, def),
        term(8, 0x0a),
        ok(9, 0, 0, 2, 0),
    ]
    .concat();
    // Split anywhere: a row head in one segment, its byte in the next.
    for (k, chunk) in res.chunks(5).enumerate() {
        d.feed(S, chunk, 11 + k as u64);
    }
    let ev = my(&d.events);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    let q = ev[1];
    assert_eq!(q.result_sets, 2);
    assert_eq!(q.rows, 2);
    assert_eq!(q.columns, Some(1));
    assert_eq!(q.affected_rows, Some(0));
    assert_eq!(q.status(), "ok");
}

#[test]
fn ssl_request_stops_and_marks_tls() {
    let mut d = driver(MysqlConfig::default());
    d.feed(
        S,
        &greeting("5.7.44", 3, CAPS | CLIENT_SSL, "mysql_native_password"),
        1,
    );
    let mut ssl = (CAPS | CLIENT_SSL).to_le_bytes().to_vec();
    ssl.extend_from_slice(&[0, 0, 0, 1, 0x21]);
    ssl.extend_from_slice(&[0; 23]);
    d.feed(C, &packet(1, &ssl), 2);
    // The TLS ClientHello: not parsed.
    d.feed(C, &[0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0], 3);
    d.flush(4);
    let ev = my(&d.events);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert!(ev[0].tls);
    assert_eq!(ev[0].server_version.as_deref(), Some("5.7.44"));
    assert_eq!(ev[0].status(), "none");
    assert!(d.parser.is_done());
    assert_eq!(d.parser.stats().malformed, 0);
}

#[test]
fn auth_switch_and_failed_login() {
    let mut d = driver(MysqlConfig::default());
    d.feed(
        S,
        &greeting("10.11.6-MariaDB", 5, CAPS, "mysql_native_password"),
        1,
    );
    let caps = CAPS & !CLIENT_CONNECT_WITH_DB;
    d.feed(
        C,
        &response(
            caps,
            "bob",
            b"scramble-of-20-bytes",
            None,
            "caching_sha2_password",
        ),
        2,
    );
    let mut sw = vec![0xfe];
    sw.extend_from_slice(b"mysql_native_password\0abcdefghijklmnopqrst\0");
    d.feed(S, &packet(2, &sw), 3);
    d.feed(C, &packet(3, b"another-20-byte-hash"), 4);
    d.feed(
        S,
        &err(
            4,
            1045,
            "28000",
            "Access denied for user 'bob'@'localhost' (using password: YES)",
        ),
        5,
    );
    let ev = my(&d.events);
    assert_eq!(ev.len(), 1);
    let l = ev[0];
    assert_eq!(
        l.auth_switch_plugin.as_deref(),
        Some("mysql_native_password")
    );
    assert_eq!(l.error.as_ref().map(|e| e.code), Some(1045));
    assert_eq!(l.success(), Some(false));
    assert_eq!(l.user.as_deref(), Some("bob"));
    assert_eq!(l.schema, None);
    assert!(!format!("{l:?}").contains("another-20-byte-hash"));
}

#[test]
fn gap_flushes_and_resyncs() {
    let mut d = driver(MysqlConfig::default());
    login(&mut d, CAPS);
    d.feed(C, &command(COM_QUERY, b"select 1"), 10);
    d.feed(S, &packet(1, &[1]), 11);
    d.gap(Direction::ToClient, 500);
    // The tail of the lost answer, mid-packet: dropped.
    d.feed(S, b"\x05garbage-not-a-head", 12);
    d.feed(C, &command(COM_QUERY, b"select 2"), 13);
    d.feed(S, &ok(1, 3, 0, 2, 0), 14);
    let ev = my(&d.events);
    assert_eq!(ev.len(), 3, "{ev:#?}");
    assert!(ev[1].unanswered && ev[1].gap);
    assert_eq!(ev[1].statement.as_deref(), Some("select 1"));
    assert_eq!(ev[2].statement.as_deref(), Some("select 2"));
    assert_eq!(ev[2].affected_rows, Some(3));
    let st = d.parser.stats();
    assert_eq!((st.gaps, st.resyncs), (1, 1));
}

#[test]
fn limits_are_counted() {
    let cfg = MysqlConfig {
        max_pending: 2,
        max_statement_bytes: 8,
        max_message_bytes: 1024,
        max_prepared: 1,
        max_field_bytes: 4,
        normalize_statements: false,
    };
    let mut d = driver(cfg);
    login(&mut d, CAPS);
    d.feed(C, &command(COM_QUERY, b"select 'a long statement'"), 10);
    d.feed(C, &command(COM_QUERY, b"q2"), 11);
    d.feed(C, &command(COM_QUERY, b"q3"), 12);
    // A 3000-byte row inside a result set is skipped, not buffered.
    let ev = my(&d.events);
    assert_eq!(ev.len(), 2, "the oldest went out unanswered");
    assert!(ev[1].unanswered && ev[1].truncated);
    assert_eq!(ev[1].statement.as_deref(), Some("select '"));
    assert_eq!(ev[0].user.as_deref(), Some("alic"));
    let st = d.parser.stats();
    assert_eq!(st.pending_overflow, 1);
    assert!(st.truncated >= 1);
    // A long error message is cut, not kept whole.
    d.feed(
        S,
        &err(1, 1064, "42000", "You have an error in your SQL syntax"),
        13,
    );
    let ev = my(&d.events);
    assert_eq!(
        ev[2].error.as_ref().map(|e| e.message.as_str()),
        Some("You ")
    );
}

#[test]
fn big_rows_are_never_buffered() {
    let mut d = driver(MysqlConfig {
        max_message_bytes: 1024,
        ..MysqlConfig::default()
    });
    login(&mut d, CAPS);
    d.feed(C, &command(COM_QUERY, b"select blob from b"), 10);
    let mut row = vec![0xfc, 0xb8, 0x0b];
    row.extend(std::iter::repeat_n(b'z', 3000));
    let res = [
        packet(1, &[1]),
        packet(
            2,
            b"\x03def\x00\x00\x00\x01b\x01b\x0c\x21\x00\x00\x00\x00\xfc\x00\x00\x00\x00\x00",
        ),
        eof(3, 2),
        packet(4, &row),
        eof(5, 2),
    ]
    .concat();
    // Fed in 100-byte segments: the parser never asks for the whole row.
    for c in res.chunks(100) {
        d.feed(S, c, 11);
        assert!(d.parser.stats().malformed == 0);
    }
    assert_eq!(d.errors, 0);
    let ev = my(&d.events);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1].rows, 1);
    assert_eq!(ev[1].result_bytes, 4 + 3003);
}

#[test]
fn probe_finds_greetings_only() {
    let g = greeting("8.0.32", 1, CAPS, "caching_sha2_password");
    assert_eq!(probe_tcp(S, &g), Probe::Yes);
    assert_eq!(probe_tcp(C, &g), Probe::No, "the client never speaks first");
    assert_eq!(probe_tcp(S, &g[..10]), Probe::NeedMore);
    assert_eq!(probe_tcp(S, b"220 mail.example.com ESMTP\r\n"), Probe::No);
    assert_eq!(probe_tcp(S, b"SSH-2.0-OpenSSH_9.6\r\n"), Probe::No);
    assert_eq!(probe_tcp(S, b"HTTP/1.1 200 OK\r\n\r\n"), Probe::No);
    assert_eq!(probe_tcp(S, b"+OK POP3 ready\r\n"), Probe::No);
    // A greeting-sized packet that is not one: wrong protocol byte, bad version.
    let mut bad = g.clone();
    bad[4] = 9;
    assert_eq!(probe_tcp(S, &bad), Probe::No);
    let mut bad = g.clone();
    bad[5] = b'x';
    assert_eq!(probe_tcp(S, &bad), Probe::No);
    // Detection by content on any port.
    assert_eq!(
        detect_tcp(40000, 13306, S, &g),
        Detect::Proto(AppProto::Mysql)
    );
    assert_eq!(
        detect_tcp(40000, 3306, C, b"GET / HTTP/1.1\r\n\r\n"),
        Detect::Proto(AppProto::Http)
    );
}

#[test]
fn arbitrary_input_never_panics() {
    // Every prefix/split of a real exchange and some noise: no panic, the
    // parser keeps going.
    let mut all = Vec::new();
    all.extend(greeting("8.0.32", 1, CAPS, "caching_sha2_password"));
    all.extend(response(CAPS, "u", b"x", Some("d"), "p"));
    all.extend(ok(2, 0, 0, 2, 0));
    all.extend(command(COM_QUERY, b"select 1"));
    all.extend(result_set(&["1"], &[&["1"]], 2));
    for cut in 0..all.len() {
        let mut d = driver(MysqlConfig::default());
        d.feed(S, &all[..cut], 1);
        d.feed(C, &all[cut..], 2);
        d.gap(C, 3);
        d.feed(C, &all[..cut / 2], 3);
        d.flush(4);
    }
    let mut x: u32 = 12345;
    for _ in 0..200 {
        let mut d = driver(MysqlConfig::default());
        let mut buf = Vec::new();
        for _ in 0..64 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            buf.push((x >> 16) as u8 & 0x1f);
        }
        d.feed(S, &buf, 1);
        d.feed(C, &buf, 2);
        d.flush(3);
    }
}

// ---------------------------------------------------------------------------
// The corpus, against Zeek's mysql.log and tshark's MySQL dissector.
//
// Deliberate differences, with reasons:
// * Zeek `rows`: Zeek 6+ reports 0 for every result set of these captures
//   (its row counting does not follow CLIENT_DEPRECATE_EOF nor, for old
//   servers, the second EOF), and for a login its OK's affected rows. We
//   count the rows of result sets (`rows`, checked against tshark's packet
//   numbers below) and keep an OK's `affected_rows` apart: Zeek's `rows` is
//   compared with `affected_rows` where the answer was an OK and no result
//   set, and not for logins (our login event does not log the OK's
//   affected rows, which is always 0 there).
// * Zeek logs a login without `response` when it succeeds; so do we (no
//   `error`). For a failed login Zeek's `response` is the ERR message: ours
//   is `error.message`.
// * tshark has no transaction: we rebuild one per client command (its
//   server lines up to the next command). tshark counts no rows: a result
//   set's rows are its packets less the column count, the definitions and
//   the EOF/OK packets (0xfe).
// * An SSL request: tshark shows a login request without user; ours is a
//   `login` event with `tls` and no user, and nothing after it.

/// Zeek's mysql.log rows: (client port, cmd, arg, success, rows, response).
fn zeek_log(rel: &str) -> Vec<(u16, String, String, String, String, String)> {
    let dir = crate::app::testutil::shared_dir().join("corpus/mysql");
    let stem = rel
        .rsplit('/')
        .next()
        .unwrap_or(rel)
        .trim_end_matches(".pcap");
    let entry = std::fs::read_dir(&dir)
        .expect("corpus/mysql")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with(&format!("{stem}.expected")) && n.ends_with("mysql.log")
        })
        .unwrap_or_else(|| panic!("no Zeek mysql.log for {rel}"));
    let text = std::fs::read_to_string(entry).expect("mysql.log");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 11, "{l}");
            (
                f[3].parse().expect("orig_p"),
                f[6].to_string(),
                f[7].to_string(),
                f[8].to_string(),
                f[9].to_string(),
                f[10].to_string(),
            )
        })
        .collect()
}

fn mysql_events(f: &FlowOut) -> Vec<&MysqlEvent> {
    f.events
        .iter()
        .filter_map(|e| match e {
            AppEvent::Mysql(m) => Some(&**m),
            _ => None,
        })
        .collect()
}

fn flows(rel: &str) -> Vec<FlowOut> {
    let flows = replay_tcp_detect(&corpus(rel));
    for f in &flows {
        assert_eq!(f.errors, 0, "{rel}: parse errors on {}", f.client_port);
    }
    flows
}

/// Every Zeek mysql.log line has its event, in order, per connection, and
/// we have no event Zeek lacks.
#[test]
fn corpus_matches_zeek_mysql_log() {
    let mut total = 0;
    for rel in [
        "mysql/zeek-mysql__caching_sha2_password.pcap",
        "mysql/zeek-mysql__selects_with_new_proto.pcap",
    ] {
        let zeek = zeek_log(rel);
        let flows = flows(rel);
        let mut ports: Vec<u16> = zeek.iter().map(|z| z.0).collect();
        ports.dedup();
        for port in ports {
            let want: Vec<_> = zeek.iter().filter(|z| z.0 == port).collect();
            let flow = flows
                .iter()
                .find(|f| f.client_port == port)
                .unwrap_or_else(|| panic!("{rel}: no flow {port}"));
            assert!(
                flow.events.iter().all(|e| e.proto() == AppProto::Mysql),
                "{rel} {port}: detected as MySQL"
            );
            let ours = mysql_events(flow);
            assert_eq!(ours.len(), want.len(), "{rel} {port}: {ours:#?}");
            for (z, e) in want.iter().zip(&ours) {
                let (_, cmd, arg, success, rows, response) = z;
                assert_eq!(e.command.as_str(), cmd, "{rel} {port}");
                let our_arg = match e.command {
                    MysqlCommand::Login => e.user.clone().unwrap_or_default(),
                    _ => e.statement.clone().unwrap_or_default(),
                };
                let zeek_arg = if arg == "(empty)" { "" } else { arg.as_str() };
                assert_eq!(our_arg, zeek_arg, "{rel} {port} {cmd}");
                let our_success = match e.success() {
                    Some(true) => "T",
                    Some(false) => "F",
                    None => "-",
                };
                assert_eq!(our_success, success, "{rel} {port} {cmd} {arg}: {e:#?}");
                let our_response = e.error.as_ref().map_or("-", |x| x.message.as_str());
                assert_eq!(our_response, response, "{rel} {port} {cmd}");
                if e.result_sets == 0 && e.command != MysqlCommand::Login {
                    if let Some(a) = e.affected_rows {
                        assert_eq!(a.to_string(), *rows, "{rel} {port} {cmd} {arg}");
                    }
                }
                total += 1;
            }
        }
    }
    eprintln!("zeek mysql.log: {total} lines matched");
    assert_eq!(total, 19);
}

/// One transaction as tshark shows it.
#[derive(Debug, Default)]
struct TsharkTx {
    command: Option<u8>,
    query: Option<String>,
    table: Option<String>,
    schema: Option<String>,
    user: Option<String>,
    client_auth_plugin: Option<String>,
    client_caps: Option<u32>,
    version: Option<String>,
    thread_id: Option<u32>,
    auth_plugin: Option<String>,
    packets: u64,
    fields: Option<u64>,
    eofs: u64,
    codes: Vec<String>,
    affected_rows: Vec<u64>,
    error_code: Option<u16>,
}

/// tshark's MySQL lines, rebuilt into transactions per client port.
fn tshark_txs(rel: &str) -> Vec<(u16, TsharkTx)> {
    let path = corpus(rel);
    let out = tshark(&[
        "-r",
        path.to_str().expect("path"),
        "-Y",
        "mysql",
        "-T",
        "fields",
        "-E",
        "aggregator=|",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.dstport",
        "-e",
        "mysql.packet_number",
        "-e",
        "mysql.command",
        "-e",
        "mysql.query",
        "-e",
        "mysql.response_code",
        "-e",
        "mysql.error_code",
        "-e",
        "mysql.num_fields",
        "-e",
        "mysql.affected_rows",
        "-e",
        "mysql.version",
        "-e",
        "mysql.thread_id",
        "-e",
        "mysql.auth_plugin",
        "-e",
        "mysql.user",
        "-e",
        "mysql.schema",
        "-e",
        "mysql.client_auth_plugin",
        "-e",
        "mysql.caps.client",
        "-e",
        "mysql.extcaps.client",
        "-e",
        "mysql.table_name",
    ]);
    let mut txs: Vec<(u16, TsharkTx)> = Vec::new();
    let opt = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(f.len() >= 18, "{line}");
        let (sport, dport): (u16, u16) = (f[0].parse().expect("port"), f[1].parse().expect("port"));
        let from_client = dport == 3306;
        let client = if from_client { sport } else { dport };
        let greeting = !f[9].is_empty();
        // A command has sequence number 0: tshark also reads auth data of
        // the login (sequence 3, 5, ...) as commands.
        let command = f[3].parse::<u8>().ok().filter(|_| f[2] == "0");
        if greeting || (from_client && command.is_some()) {
            txs.push((client, TsharkTx::default()));
        }
        let Some((_, tx)) = txs.iter_mut().rev().find(|(c, _)| *c == client) else {
            continue;
        };
        if from_client {
            if let Some(c) = command {
                tx.command = Some(c);
                tx.query = opt(f[4]);
                tx.table = opt(f[17]);
                tx.schema = opt(f[13]).or(tx.schema.take());
            } else if tx.version.is_some() && tx.client_caps.is_none() {
                tx.user = opt(f[12]);
                tx.schema = opt(f[13]);
                tx.client_auth_plugin = opt(f[14]);
                let low = u32::from_str_radix(f[15].trim_start_matches("0x"), 16).ok();
                let high = u32::from_str_radix(f[16].trim_start_matches("0x"), 16).unwrap_or(0);
                tx.client_caps = low.map(|l| l | high << 16);
            }
            continue;
        }
        if greeting {
            tx.version = opt(f[9]);
            tx.thread_id = f[10].parse().ok();
            tx.auth_plugin = opt(f[11]);
            continue;
        }
        tx.packets += f[2].split('|').filter(|s| !s.is_empty()).count() as u64;
        for code in f[5].split('|').filter(|s| !s.is_empty()) {
            if code == "0xfe" {
                tx.eofs += 1;
            }
            tx.codes.push(code.to_string());
        }
        if let Ok(n) = f[7].parse::<u64>() {
            tx.fields = Some(n);
        }
        tx.affected_rows
            .extend(f[8].split('|').filter_map(|s| s.parse::<u64>().ok()));
        if let Ok(c) = f[6].parse() {
            tx.error_code.get_or_insert(c);
        }
    }
    txs
}

/// Every transaction tshark shows has its event with the same fields, in
/// order, on every MySQL capture of the corpus (detected by content).
#[test]
fn corpus_matches_tshark_field_by_field() {
    let mut matched = 0;
    let mut fields = 0;
    for rel in [
        "mysql/zeek-mysql__caching_sha2_password.pcap",
        "mysql/zeek-mysql__selects_with_new_proto.pcap",
        "mysql/ndpi-mysql.pcapng",
        "mysql/sv-community-id-sameip--input.pcap",
    ] {
        let txs = tshark_txs(rel);
        let flows = flows(rel);
        let mut ports: Vec<u16> = txs.iter().map(|t| t.0).collect();
        ports.sort_unstable();
        ports.dedup();
        for port in ports {
            let want: Vec<&TsharkTx> = txs.iter().filter(|t| t.0 == port).map(|t| &t.1).collect();
            let flow = flows
                .iter()
                .find(|f| f.client_port == port)
                .unwrap_or_else(|| panic!("{rel}: no flow {port}"));
            let ours = mysql_events(flow);
            assert_eq!(ours.len(), want.len(), "{rel} {port}: {ours:#?}\n{want:#?}");
            for (t, e) in want.iter().zip(&ours) {
                let ctx = format!("{rel} {port} {t:?}\n{e:#?}");
                let mut eq = |a: bool, what: &str| {
                    assert!(a, "{what}: {ctx}");
                    fields += 1;
                };
                match t.command {
                    None => {
                        eq(e.command == MysqlCommand::Login, "login");
                        eq(e.server_version == t.version, "version");
                        eq(e.connection_id == t.thread_id, "thread id");
                        eq(e.auth_plugin == t.auth_plugin, "auth plugin");
                        eq(e.client_capabilities == t.client_caps, "client caps");
                        let ssl =
                            t.client_caps.is_some_and(|c| c & CLIENT_SSL != 0) && t.user.is_none();
                        eq(e.tls == ssl, "ssl switch");
                        eq(e.user == t.user, "user");
                        eq(e.schema == t.schema, "schema");
                        eq(
                            e.client_auth_plugin == t.client_auth_plugin,
                            "client plugin",
                        );
                    }
                    Some(c) => {
                        eq(e.command == MysqlCommand::Command(c), "command");
                        let arg = t.query.clone().or(t.table.clone()).or(match c {
                            COM_INIT_DB => t.schema.clone(),
                            _ => None,
                        });
                        eq(e.statement == arg, "statement");
                        if let Some(n) = t.fields {
                            eq(e.columns == Some(n), "num fields");
                            // Rows: the packets less the column count, the
                            // definitions and the EOF/OK ones.
                            let rows = t.packets - 1 - n - t.eofs;
                            eq(e.rows == rows, "rows");
                        }
                        if t.codes.first().map(String::as_str) == Some("0x00") {
                            eq(
                                e.affected_rows == t.affected_rows.first().copied(),
                                "affected",
                            );
                        }
                    }
                }
                eq(
                    e.error.as_ref().map(|x| x.code) == t.error_code,
                    "error code",
                );
                matched += 1;
            }
        }
    }
    eprintln!("tshark: {matched} transactions, {fields} fields matched");
    // Every transaction tshark shows in the four captures (41), none skipped.
    assert_eq!(matched, 41);
}

#[test]
fn cursor_fetch_field_list_local_infile_change_user() {
    let mut d = driver(MysqlConfig::default());
    login(&mut d, CAPS);
    let def = b"\x03def\x00\x00\x00\x01a\x01a\x0c\x21\x00\x00\x00\x00\xfd\x00\x00\x00\x00\x00";
    // Prepare id 1, no parameters, one column.
    let mut pok = vec![0];
    pok.extend_from_slice(&1u32.to_le_bytes());
    pok.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0]);
    d.feed(C, &command(COM_STMT_PREPARE, b"select a from t"), 1);
    d.feed(S, &[packet(1, &pok), packet(2, def), eof(3, 2)].concat(), 2);
    // Execute with a cursor: definitions and an EOF saying CURSOR_EXISTS (0x40).
    let mut ex = 1u32.to_le_bytes().to_vec();
    ex.extend_from_slice(&[1, 1, 0, 0, 0]);
    d.feed(C, &command(COM_STMT_EXECUTE, &ex), 3);
    d.feed(
        S,
        &[packet(1, &[1]), packet(2, def), eof(3, 0x42)].concat(),
        4,
    );
    // Fetch: two rows and the EOF.
    let mut fetch = 1u32.to_le_bytes().to_vec();
    fetch.extend_from_slice(&2u32.to_le_bytes());
    d.feed(C, &command(COM_STMT_FETCH, &fetch), 5);
    d.feed(
        S,
        &[
            packet(1, b"\x00\x00\x01x"),
            packet(2, b"\x00\x00\x01y"),
            eof(3, 0x82),
        ]
        .concat(),
        6,
    );
    // Field list: two definitions, EOF.
    d.feed(C, &command(COM_FIELD_LIST, b"t\0"), 7);
    d.feed(S, &[packet(1, def), packet(2, def), eof(3, 2)].concat(), 8);
    // LOAD DATA LOCAL: the server asks for the file, the client sends it
    // and an empty packet, the server says OK.
    d.feed(
        C,
        &command(COM_QUERY, b"load data local infile 'f.csv' into table t"),
        9,
    );
    let mut req = vec![0xfb];
    req.extend_from_slice(b"f.csv");
    d.feed(S, &packet(1, &req), 10);
    d.feed(C, &[packet(2, b"1\n2\n"), packet(3, b"")].concat(), 11);
    d.feed(S, &ok(4, 2, 0, 2, 0), 12);
    // Change user: an auth switch, the client's answer, OK.
    d.feed(
        C,
        &command(COM_CHANGE_USER, b"carol\0\x14aaaaaaaaaaaaaaaaaaaa"),
        13,
    );
    d.feed(
        S,
        &packet(1, b"\xfemysql_native_password\0abcdefghijklmnopqrst\0"),
        14,
    );
    d.feed(C, &packet(2, b"bbbbbbbbbbbbbbbbbbbb"), 15);
    d.feed(S, &ok(3, 0, 0, 2, 0), 16);
    d.feed(C, &command(COM_PING, b""), 17);
    d.feed(S, &ok(1, 0, 0, 2, 0), 18);
    let ev = my(&d.events);
    let names: Vec<&str> = ev.iter().map(|e| e.command.as_str()).collect();
    assert_eq!(
        names,
        [
            "login",
            "stmt_prepare",
            "stmt_execute",
            "stmt_fetch",
            "field_list",
            "query",
            "change_user",
            "ping"
        ],
        "{ev:#?}"
    );
    assert_eq!(
        (ev[2].columns, ev[2].rows, ev[2].status()),
        (Some(1), 0, "ok")
    );
    assert_eq!(ev[3].statement.as_deref(), Some("select a from t"));
    assert_eq!((ev[3].rows, ev[3].status()), (2, "ok"));
    assert_eq!(
        (ev[4].statement.as_deref(), ev[4].columns),
        (Some("t"), Some(2))
    );
    assert_eq!(ev[5].local_infile.as_deref(), Some("f.csv"));
    assert_eq!(ev[5].affected_rows, Some(2));
    assert_eq!(ev[5].request_bytes, 4 + 1 + 43 + 8 + 4);
    assert_eq!(
        ev[6].auth_switch_plugin.as_deref(),
        Some("mysql_native_password")
    );
    assert_eq!(ev[6].user.as_deref(), Some("carol"));
    assert_eq!(
        ev[7].user.as_deref(),
        Some("carol"),
        "the session's user changed"
    );
    assert!(ev.iter().all(|e| !e.unanswered));
}

#[test]
fn compressed_protocol_stops_after_login() {
    let mut d = driver(MysqlConfig::default());
    login(&mut d, CAPS | CLIENT_COMPRESS);
    // A compressed packet: not readable as a command.
    d.feed(C, &[0x0d, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3, b's', b'e'], 10);
    d.flush(11);
    let ev = my(&d.events);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert!(ev[0].compressed);
    assert!(d.parser.is_done());
}

#[test]
fn a_command_ends_a_login_whose_answer_was_not_seen() {
    let mut d = driver(MysqlConfig::default());
    d.feed(S, &greeting("8.0.32", 1, CAPS, "caching_sha2_password"), 1);
    d.feed(C, &response(CAPS, "u", b"x", Some("d"), "p"), 2);
    // The OK is lost (not even a gap reported: a capture that missed it).
    d.feed(C, &command(COM_QUERY, b"select 1"), 3);
    d.feed(S, &ok(1, 0, 0, 2, 0), 4);
    let ev = my(&d.events);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    assert!(ev[0].unanswered && ev[0].command == MysqlCommand::Login);
    assert_eq!(ev[1].statement.as_deref(), Some("select 1"));
    assert_eq!(ev[1].status(), "ok");
}

/// Found by the fuzzer: the affected rows of a multi-statement answer are
/// summed, and the wire allows any u64 (it overflowed).
#[test]
fn affected_rows_of_several_oks_saturate() {
    let mut d = driver(MysqlConfig::default());
    login(&mut d, CAPS);
    d.feed(
        C,
        &command(COM_QUERY, b"update a set x=1; update b set y=2"),
        10,
    );
    // OK: affected rows u64::MAX (0xfe + 8 bytes), insert id 0,
    // status SERVER_MORE_RESULTS_EXISTS, no warnings; then a last OK.
    let mut first = vec![0, 0xfe];
    first.extend_from_slice(&u64::MAX.to_le_bytes());
    first.extend_from_slice(&[0, 0x0a, 0, 0, 0]);
    d.feed(S, &packet(1, &first), 11);
    d.feed(S, &packet(2, &[0, 5, 0, 2, 0, 0, 0]), 12);
    let ev = my(&d.events);
    let q = ev
        .iter()
        .find(|e| e.command.as_str() == "query")
        .expect("query");
    assert_eq!(q.affected_rows, Some(u64::MAX));
    assert_eq!(q.success(), Some(true));
}
