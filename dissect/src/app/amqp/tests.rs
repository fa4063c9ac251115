//! AMQP parser tests: a whole session built by hand (connection, channel,
//! declare, publish, consume, deliver, ack, a channel error, heartbeats),
//! limits and gaps, and the corpus compared with tshark's AMQP dissector.

use super::event::AmqpEvent;
use super::wire::build::*;
use super::wire::{FRAME_BODY, FRAME_HEARTBEAT};
use super::{probe_tcp, AmqpConfig, AmqpParser, AmqpProtocol};
use crate::app::registry::Protocol;
use crate::app::testutil::{corpus, replay_tcp_detect, tshark, Driver};
use crate::app::{detect_tcp, AppEvent, AppProto, Detect, Direction, Probe};

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

fn driver(cfg: AmqpConfig) -> Driver {
    Driver::new(Box::new(AmqpParser::new(cfg)))
}

fn am(events: &[AppEvent]) -> Vec<&AmqpEvent> {
    events
        .iter()
        .map(|e| match e {
            AppEvent::Amqp(p) => &**p,
            other => panic!("not amqp: {other:?}"),
        })
        .collect()
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

const HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";

/// Connection start to open-ok, PLAIN login with a password.
fn connect(d: &mut Driver) {
    d.feed(C, HEADER, 1_000);
    let mut start = vec![0, 9];
    start.extend_from_slice(&table(&[
        ("product", "RabbitMQ"),
        ("version", "3.12.1"),
        ("platform", "Erlang/OTP 25.3"),
    ]));
    start.extend_from_slice(&lstr(b"AMQPLAIN PLAIN"));
    start.extend_from_slice(&lstr(b"en_US"));
    d.feed(S, &method(0, 10, 10, &start), 2_000);
    let mut ok = table(&[("product", "pika")]);
    ok.extend_from_slice(&sstr("PLAIN"));
    ok.extend_from_slice(&lstr(b"\0guest\0secret-pw"));
    ok.extend_from_slice(&sstr("en_US"));
    d.feed(C, &method(0, 10, 11, &ok), 3_000);
    let tune = [0x07, 0xff, 0, 2, 0, 0, 0, 60];
    d.feed(S, &method(0, 10, 30, &tune), 4_000);
    d.feed(C, &method(0, 10, 31, &tune), 5_000);
    let mut open = sstr("/prod");
    open.extend_from_slice(&[0, 0]);
    d.feed(C, &method(0, 10, 40, &open), 6_000);
    d.feed(S, &method(0, 10, 41, &[0]), 7_000);
}

#[test]
fn a_whole_session() {
    let mut d = driver(AmqpConfig::default());
    connect(&mut d);
    d.feed(C, &method(1, 20, 10, &[0]), 10_000);
    d.feed(S, &method(1, 20, 11, &lstr(b"")), 11_000);
    let mut qd = vec![0, 0];
    qd.extend_from_slice(&sstr("jobs"));
    qd.push(0b0010);
    qd.extend_from_slice(&lstr(b""));
    d.feed(C, &method(1, 50, 10, &qd), 12_000);
    let mut qok = sstr("jobs");
    qok.extend_from_slice(&5u32.to_be_bytes());
    qok.extend_from_slice(&1u32.to_be_bytes());
    d.feed(S, &method(1, 50, 11, &qok), 12_500);
    // A heartbeat from each side: counted, not emitted.
    d.feed(C, &frame(FRAME_HEARTBEAT, 0, &[]), 13_000);
    d.feed(S, &frame(FRAME_HEARTBEAT, 0, &[]), 13_000);
    // Publish: method, header, body in two frames (one split mid-frame).
    let mut publ = vec![0, 0];
    publ.extend_from_slice(&sstr("orders"));
    publ.extend_from_slice(&sstr("order.created"));
    publ.push(0);
    let body = cat(&[
        method(1, 60, 40, &publ),
        header(1, 10, Some("application/json"), Some(2)),
        frame(FRAME_BODY, 1, b"{\"id\":"),
        frame(FRAME_BODY, 1, b"42}\n"),
    ]);
    d.feed(C, &body[..body.len() - 5], 14_000);
    assert_eq!(
        am(&d.events).len(),
        5,
        "publish waits for its body: {:#?}",
        am(&d.events)
    );
    d.feed(C, &body[body.len() - 5..], 14_100);
    // Deliver to a consumer, and its ack.
    let mut del = sstr("amq.ctag-1");
    del.extend_from_slice(&7u64.to_be_bytes());
    del.push(1);
    del.extend_from_slice(&sstr("orders"));
    del.extend_from_slice(&sstr("order.created"));
    d.feed(
        S,
        &cat(&[method(1, 60, 60, &del), header(1, 0, None, None)]),
        15_000,
    );
    let mut ack = 7u64.to_be_bytes().to_vec();
    ack.push(1);
    d.feed(C, &method(1, 60, 80, &ack), 16_000);
    // A passive declare of a missing queue: the server closes the channel.
    let mut miss = vec![0, 0];
    miss.extend_from_slice(&sstr("missing"));
    miss.push(0b0001);
    miss.extend_from_slice(&lstr(b""));
    d.feed(C, &method(1, 50, 10, &miss), 17_000);
    let mut close = 404u16.to_be_bytes().to_vec();
    close.extend_from_slice(&sstr("NOT_FOUND - no queue 'missing' in vhost '/prod'"));
    close.extend_from_slice(&[0, 50, 0, 10]);
    d.feed(S, &method(1, 20, 40, &close), 17_500);
    d.feed(C, &method(1, 20, 41, &[]), 17_600);
    let mut cclose = 200u16.to_be_bytes().to_vec();
    cclose.extend_from_slice(&sstr("Normal shutdown"));
    cclose.extend_from_slice(&[0, 0, 0, 0]);
    d.feed(C, &method(0, 10, 50, &cclose), 18_000);
    d.feed(S, &method(0, 10, 51, &[]), 18_200);
    d.flush(20_000);

    let ev = am(&d.events);
    let names: Vec<(Option<&str>, Option<&str>)> =
        ev.iter().map(|e| (e.method, e.response)).collect();
    assert_eq!(
        names,
        [
            (Some("connection.start"), Some("connection.start-ok")),
            (Some("connection.tune"), Some("connection.tune-ok")),
            (Some("connection.open"), Some("connection.open-ok")),
            (Some("channel.open"), Some("channel.open-ok")),
            (Some("queue.declare"), Some("queue.declare-ok")),
            (Some("basic.publish"), None),
            (Some("basic.deliver"), None),
            (Some("basic.ack"), None),
            // The channel.close answers the failed declare.
            (Some("queue.declare"), Some("channel.close")),
            (Some("channel.close"), Some("channel.close-ok")),
            (Some("connection.close"), Some("connection.close-ok")),
        ],
        "{ev:#?}"
    );
    let st = ev[0];
    assert!(st.from_server);
    assert_eq!(st.protocol.as_deref(), Some("0-9-1"));
    assert_eq!(st.server_product.as_deref(), Some("RabbitMQ"));
    assert_eq!(st.server_version.as_deref(), Some("3.12.1"));
    assert_eq!(st.mechanism.as_deref(), Some("PLAIN"));
    assert_eq!(st.user.as_deref(), Some("guest"));
    assert_eq!(st.latency_ns, Some(1_000));
    assert_eq!(ev[1].heartbeat, Some(60));
    assert_eq!(ev[1].channel_max, Some(2047));
    assert_eq!(ev[1].frame_max, Some(131_072));
    assert_eq!(ev[2].vhost.as_deref(), Some("/prod"));
    assert_eq!(ev[4].queue.as_deref(), Some("jobs"));
    assert_eq!(ev[4].message_count, Some(5));
    assert_eq!(ev[4].consumer_count, Some(1));
    let p = ev[5];
    assert_eq!(p.channel, 1);
    assert_eq!(p.exchange.as_deref(), Some("orders"));
    assert_eq!(p.routing_key.as_deref(), Some("order.created"));
    assert_eq!(p.body_size, Some(10));
    assert_eq!(p.body_bytes, 10);
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    assert_eq!(p.delivery_mode, Some(2));
    assert_eq!(p.request_bytes, body.len() as u64);
    assert_eq!(p.heartbeats, 2, "heartbeats since the previous event");
    let dl = ev[6];
    assert!(dl.from_server && dl.redelivered);
    assert_eq!(dl.consumer_tag.as_deref(), Some("amq.ctag-1"));
    assert_eq!(dl.delivery_tag, Some(7));
    assert_eq!(dl.body_size, Some(0));
    assert_eq!(ev[7].delivery_tag, Some(7));
    assert!(ev[7].multiple);
    assert_eq!(ev[8].status(), "error");
    assert_eq!(ev[8].reply_code, Some(404));
    assert_eq!(ev[8].queue.as_deref(), Some("missing"));
    let cl = ev[9];
    assert!(cl.from_server);
    assert_eq!(cl.status(), "error");
    assert_eq!(cl.reply_code, Some(404));
    assert_eq!(cl.failed_method, Some("queue.declare"));
    assert!(cl.reply_text.as_deref().unwrap().starts_with("NOT_FOUND"));
    assert_eq!(ev[10].status(), "ok", "200 is a normal close");
    for e in &d.events {
        let mut buf = Vec::new();
        let mut j = crate::app::encode::JsonWriter::object(&mut buf);
        e.writers().native(
            &mut j,
            &crate::app::encode::WriteOptions { max_body_bytes: 0 },
        );
        j.finish_line();
        assert!(!String::from_utf8_lossy(&buf).contains("secret-pw"));
    }
}

#[test]
fn amqplain_user_and_basic_get() {
    let mut d = driver(AmqpConfig::default());
    d.feed(C, HEADER, 1);
    let mut ok = table(&[]);
    ok.extend_from_slice(&sstr("AMQPLAIN"));
    let inner = table(&[("LOGIN", "bob"), ("PASSWORD", "pw-of-bob")]);
    ok.extend_from_slice(&lstr(&inner[4..]));
    ok.extend_from_slice(&sstr("en_US"));
    d.feed(C, &method(0, 10, 11, &ok), 2);
    let mut get = vec![0, 0];
    get.extend_from_slice(&sstr("jobs"));
    get.push(1);
    d.feed(C, &method(1, 60, 70, &get), 3);
    let mut gok = 1u64.to_be_bytes().to_vec();
    gok.push(0);
    gok.extend_from_slice(&sstr(""));
    gok.extend_from_slice(&sstr("jobs"));
    gok.extend_from_slice(&3u32.to_be_bytes());
    d.feed(
        S,
        &cat(&[
            method(1, 60, 71, &gok),
            header(1, 3, None, None),
            frame(FRAME_BODY, 1, b"abc"),
        ]),
        9,
    );
    d.feed(C, &method(1, 60, 70, &get), 10);
    d.feed(S, &method(1, 60, 72, &sstr("")), 12);
    let ev = am(&d.events);
    assert_eq!(ev.len(), 3, "{ev:#?}");
    assert_eq!(ev[0].response, Some("connection.start-ok"));
    assert_eq!(ev[0].method, None, "connection.start not seen");
    assert_eq!(ev[0].user.as_deref(), Some("bob"));
    assert_eq!(ev[1].response, Some("basic.get-ok"));
    assert_eq!(ev[1].queue.as_deref(), Some("jobs"));
    assert_eq!(ev[1].message_count, Some(3));
    assert_eq!(ev[1].body_size, Some(3));
    assert_eq!(ev[1].latency_ns, Some(6));
    assert_eq!(ev[2].response, Some("basic.get-empty"));
    assert_eq!(d.parser.stats().orphan_responses, 1);
}

#[test]
fn gap_in_a_body_resyncs_on_the_next_frame() {
    let mut d = driver(AmqpConfig::default());
    let mut publ = vec![0, 0];
    publ.extend_from_slice(&sstr("x"));
    publ.extend_from_slice(&sstr("k"));
    publ.push(0);
    d.feed(
        C,
        &cat(&[method(1, 60, 40, &publ), header(1, 10_000, None, None)]),
        1,
    );
    d.feed(C, &frame(FRAME_BODY, 1, &[7u8; 1000])[..500], 2);
    d.gap(C, 9_000);
    d.feed(C, &method(1, 60, 40, &publ), 3);
    d.feed(C, &header(1, 0, None, None), 3);
    let ev = am(&d.events);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    assert!(ev[0].unanswered && ev[0].gap);
    assert_eq!(ev[0].body_size, Some(10_000));
    assert_eq!(ev[1].body_size, Some(0));
    assert!(!ev[1].gap);
    let st = d.parser.stats();
    assert_eq!((st.gaps, st.resyncs), (1, 1));
}

#[test]
fn garbage_never_panics_and_is_counted() {
    let mut d = driver(AmqpConfig::default());
    d.feed(C, &[0x41; 40], 1);
    d.feed(C, &[1, 0, 1, 0, 0, 0, 4, 0, 99, 0, 1, 0xCE], 2);
    d.feed(S, &[1, 0, 1, 0, 0, 0, 4, 0, 60, 0, 40, 0x00], 3);
    d.feed(S, &[9, 9, 9, 9, 9, 9, 9, 9, 9], 4);
    let st = d.parser.stats();
    assert!(st.malformed >= 3, "{st:?}");
    assert!(d.events.is_empty());
}

#[test]
fn probe_and_detection() {
    assert_eq!(probe_tcp(C, HEADER), Probe::Yes);
    assert_eq!(probe_tcp(C, b"AMQ"), Probe::NeedMore);
    assert_eq!(probe_tcp(C, b"AMQX\0\0\x09\x01"), Probe::No);
    let m = method(1, 60, 80, &[0, 0, 0, 0, 0, 0, 0, 1, 0]);
    assert_eq!(probe_tcp(S, &m), Probe::Yes);
    assert_eq!(probe_tcp(C, &m[..9]), Probe::NeedMore);
    let mut bad = m.clone();
    *bad.last_mut().unwrap() = 0;
    assert_eq!(probe_tcp(C, &bad), Probe::No);
    for other in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"*1\r\n$4\r\nPING\r\n",
        &[0x16, 3, 1, 0, 0x40, 1, 0, 0, 0x3c, 3, 3],
        &[0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f],
    ] {
        assert_eq!(probe_tcp(C, other), Probe::No, "{other:?}");
    }
    assert_eq!(
        detect_tcp(40000, 5673, C, HEADER),
        Detect::Proto(AppProto::Amqp)
    );
}

#[test]
fn config_checks() {
    assert!(AmqpProtocol::validate(&AmqpConfig::default()).is_ok());
    let bad = AmqpConfig {
        max_frame_bytes: 10,
        ..AmqpConfig::default()
    };
    assert!(AmqpProtocol::validate(&bad)
        .unwrap_err()
        .starts_with("max_frame_bytes"));
}

/// tshark's AMQP dissector on nDPI's capture (celery: publishes of events
/// and tasks, deliveries to a consumer, acks; picked up mid-way, so no
/// connection start): every method tshark decodes is an event of ours
/// on the same connection and side, in the same order, with the same
/// exchange, routing key, body size (from the content header) and delivery
/// tag.
///
/// Deliberate difference: the content header and body frames are part of
/// their method's event (tshark lists them as frames of their own); an
/// ack of ours has no exchange (tshark has none either).
#[test]
fn corpus_matches_tshark_amqp() {
    let rel = "amqp/ndpi-amqp.pcap";
    let path = corpus(rel);
    let out = tshark(&[
        "-r",
        path.to_str().unwrap(),
        "-Y",
        "amqp",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.dstport",
        "-e",
        "amqp.type",
        "-e",
        "amqp.method.class",
        "-e",
        "amqp.method.method",
        "-e",
        "amqp.method.arguments.exchange",
        "-e",
        "amqp.method.arguments.routing_key",
        "-e",
        "amqp.header.body-size",
        "-e",
        "amqp.method.arguments.delivery_tag",
    ]);
    // Per (client port, from server): tshark's methods in order.
    type Row = (
        String,
        Option<String>,
        Option<String>,
        Option<u64>,
        Option<u64>,
    );
    let mut theirs: std::collections::BTreeMap<(u16, bool), Vec<Row>> = Default::default();
    // A content header completes the last method of its side.
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let list = |i: usize| -> Vec<&str> {
            f.get(i)
                .filter(|s| !s.is_empty())
                .map(|s| s.split('|').collect())
                .unwrap_or_default()
        };
        let (sp, dp): (u16, u16) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let from_server = sp == 5672;
        let client = if from_server { dp } else { sp };
        let rows = theirs.entry((client, from_server)).or_default();
        let (classes, methods) = (list(3), list(4));
        let (mut xs, mut ks, mut sizes, mut tags) = (
            list(5).into_iter(),
            list(6).into_iter(),
            list(7).into_iter(),
            list(8).into_iter(),
        );
        let mut m = 0;
        for t in list(2) {
            match t {
                "1" => {
                    let (c, me): (u16, u16) =
                        (classes[m].parse().unwrap(), methods[m].parse().unwrap());
                    m += 1;
                    let name = super::wire::method_name(c, me).unwrap().to_string();
                    let routed = matches!((c, me), (60, 40 | 60));
                    let tagged = matches!((c, me), (60, 60 | 80 | 90 | 120));
                    rows.push((
                        name,
                        xs.next().filter(|_| routed).map(str::to_string),
                        ks.next().filter(|_| routed).map(str::to_string),
                        None,
                        tags.next().filter(|_| tagged).and_then(|t| t.parse().ok()),
                    ));
                }
                "2" => {
                    if let Some(last) = rows.last_mut() {
                        last.3 = sizes.next().and_then(|s| s.parse().ok());
                    }
                }
                _ => {}
            }
        }
    }
    let flows = replay_tcp_detect(&path);
    let mut matched = 0;
    for f in &flows {
        // A flow picked up mid-way is oriented by its first packet: when
        // that came from the broker, the flow's "client" is the broker and
        // our `from_server` is the other way round (as the flow record's
        // direction is).
        let reversed = f.client_port == 5672;
        let client = if reversed {
            f.server_port
        } else {
            f.client_port
        };
        for from_server in [false, true] {
            let ours: Vec<Row> = f
                .events
                .iter()
                .filter_map(|e| match e {
                    AppEvent::Amqp(a) if (a.from_server != reversed) == from_server => Some(a),
                    AppEvent::Amqp(_) => None,
                    other => panic!("not amqp: {other:?}"),
                })
                .map(|a| {
                    (
                        a.method.unwrap().to_string(),
                        a.exchange.clone(),
                        a.routing_key.clone(),
                        a.body_size,
                        a.delivery_tag,
                    )
                })
                .collect();
            let want = theirs
                .get(&(client, from_server))
                .cloned()
                .unwrap_or_default();
            assert_eq!(ours, want, "{client} from_server={from_server}");
            matched += want.len();
        }
        assert_eq!(f.gaps, 0);
    }
    assert!(matched >= 30, "{matched}");
    assert_eq!(
        theirs.values().map(Vec::len).sum::<usize>(),
        matched,
        "every connection of tshark's is one of ours"
    );
}

/// A small deterministic stand-in for the fuzz target, run with every
/// test: a valid session with bytes flipped, cut at random places, with
/// gaps, through the driver that checks the parse contract; nothing may
/// panic and no event may claim more bytes than were fed.
#[test]
fn mutated_sessions_never_panic() {
    let mut publ = vec![0, 0];
    publ.extend_from_slice(&sstr("x"));
    publ.extend_from_slice(&sstr("k"));
    publ.push(0);
    let mut start = vec![0, 9];
    start.extend_from_slice(&table(&[("product", "RabbitMQ")]));
    start.extend_from_slice(&lstr(b"PLAIN"));
    start.extend_from_slice(&lstr(b"en_US"));
    let client = cat(&[
        HEADER.to_vec(),
        method(1, 20, 10, &[0]),
        method(1, 60, 40, &publ),
        header(1, 300, Some("text/plain"), Some(1)),
        frame(FRAME_BODY, 1, &[b'a'; 300]),
        frame(FRAME_HEARTBEAT, 0, &[]),
        method(1, 60, 80, &[0, 0, 0, 0, 0, 0, 0, 1, 1]),
    ]);
    let server = cat(&[
        method(0, 10, 10, &start),
        method(1, 20, 11, &lstr(b"")),
        method(1, 20, 40, &[1, 148, 1, b'x', 0, 50, 0, 10]),
    ]);
    let mut next = crate::app::testutil::xorshift(0x2545_f491_4f6c_dd1du64);
    let mut rnd = move |n: usize| (next() % n.max(1) as u64) as usize;
    let (mut events, mut malformed) = (0, 0);
    for _ in 0..400 {
        let cfg = AmqpConfig {
            max_pending: 1 + rnd(3),
            max_frame_bytes: 1024,
            max_frame_size: 4096,
            max_name_bytes: 1 + rnd(8),
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
            let n = 1 + rnd(60);
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
        for e in am(&d.events) {
            assert!(e.request_bytes + e.response_bytes <= fed, "{e:?}");
        }
    }
    // The sessions did parse (unmutated rounds), and mutations were seen.
    assert!(events > 400 && malformed > 0, "{events} {malformed}");
}
