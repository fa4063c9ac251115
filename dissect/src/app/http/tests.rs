use super::*;
use crate::app::testutil::{corpus, replay_tcp, suricata_events, Driver};
use crate::app::Direction::{ToClient, ToServer};

fn http_events(d: &Driver) -> Vec<HttpEvent> {
    d.events
        .iter()
        .map(|e| match e {
            AppEvent::Http(h) => (**h).clone(),
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
}

fn driver(cfg: HttpConfig) -> Driver {
    Driver::new(Box::new(HttpParser::new(cfg)))
}

/// Feed chunks in order (ts = index), flush, return events.
fn run(cfg: HttpConfig, chunks: &[(Direction, &[u8])]) -> (Vec<HttpEvent>, Driver) {
    let mut d = driver(cfg);
    for (i, (dir, c)) in chunks.iter().enumerate() {
        d.feed(*dir, c, 1000 + i as u64);
    }
    d.flush(9999);
    (http_events(&d), d)
}

const REQ1: &[u8] = b"GET /index.html?x=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nUser-Agent: curl/8.0\r\nReferer: http://a/b\r\nX-Forwarded-For: 10.0.0.1\r\nAuthorization: Basic Zm9vOmJhcg==\r\nAccept: */*\r\n\r\n";
const RESP1: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\nSet-Cookie: a=b\r\n\r\nhello";

#[test]
fn simple_transaction_fields() {
    let cfg = HttpConfig {
        log_request_headers: true,
        log_response_headers: true,
        body_capture_bytes: 3,
        ..HttpConfig::default()
    };
    let (ev, d) = run(cfg, &[(ToServer, REQ1), (ToClient, RESP1)]);
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e.method.as_deref(), Some("GET"));
    assert_eq!(e.uri.as_deref(), Some("/index.html?x=1"));
    assert_eq!(e.host.as_deref(), Some("example.com"));
    assert_eq!(e.host_port, Some(8080));
    assert_eq!(e.version.as_deref(), Some("HTTP/1.1"));
    assert_eq!(e.user_agent.as_deref(), Some("curl/8.0"));
    assert_eq!(e.referer.as_deref(), Some("http://a/b"));
    assert_eq!(e.x_forwarded_for.as_deref(), Some("10.0.0.1"));
    assert_eq!(e.status, Some(200));
    assert_eq!(e.reason.as_deref(), Some("OK"));
    assert_eq!(e.content_type.as_deref(), Some("text/html"));
    assert_eq!(e.response_content_length, Some(5));
    assert_eq!(e.response_body_len, 5);
    assert_eq!(e.response_body, b"hel");
    assert_eq!(e.request_headers.len(), 6);
    let auth = e
        .request_headers
        .iter()
        .find(|h| h.name == "Authorization")
        .unwrap();
    assert_eq!(auth.value, "[redacted]");
    let sc = e
        .response_headers
        .iter()
        .find(|h| h.name == "Set-Cookie")
        .unwrap();
    assert_eq!(sc.value, "[redacted]");
    assert_eq!(e.request_ts_ns, Some(1000));
    assert_eq!(e.request_end_ts_ns, Some(1000));
    assert_eq!(e.response_ts_ns, Some(1001));
    assert_eq!(e.latency_ns, Some(1));
    assert!(e.has_request && e.has_response && !e.incomplete && !e.gap && !e.truncated);
    assert_eq!(d.parser.stats().events, 1);
    // Headers off by default.
    let (ev, _) = run(
        HttpConfig::default(),
        &[(ToServer, REQ1), (ToClient, RESP1)],
    );
    assert!(ev[0].request_headers.is_empty() && ev[0].response_body.is_empty());
}

fn pipelined() -> (Vec<u8>, Vec<u8>) {
    let req = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbodyHEAD /c HTTP/1.1\r\nHost: h\r\n\r\nPUT /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec();
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n".to_vec();
    (req, resp)
}

fn check_pipelined(ev: &[HttpEvent]) {
    let got: Vec<(String, String, u16, u64, u64)> = ev
        .iter()
        .map(|e| {
            (
                e.method.as_deref().unwrap_or_default().to_string(),
                e.uri.clone().unwrap_or_default(),
                e.status.unwrap_or(0),
                e.request_body_len,
                e.response_body_len,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("GET".into(), "/a".into(), 200, 0, 2),
            ("POST".into(), "/b".into(), 201, 4, 11),
            ("HEAD".into(), "/c".into(), 200, 0, 0),
            ("PUT".into(), "/d".into(), 304, 3, 0),
        ]
    );
    assert_eq!(ev[1].interim_statuses, vec![100]);
    assert!(ev[1].response_chunked && ev[3].request_chunked);
    assert_eq!(
        ev.iter().map(|e| e.tx_id).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert!(ev.iter().all(|e| !e.incomplete && !e.gap));
}

#[test]
fn pipelined_whole() {
    let (req, resp) = pipelined();
    let (ev, d) = run(
        HttpConfig::default(),
        &[(ToServer, &req), (ToClient, &resp)],
    );
    check_pipelined(&ev);
    assert_eq!(d.errors, 0);
}

#[test]
fn pipelined_split_at_every_byte_boundary() {
    let (req, resp) = pipelined();
    for i in 0..=req.len() {
        let (ev, _) = run(
            HttpConfig::default(),
            &[
                (ToServer, &req[..i]),
                (ToServer, &req[i..]),
                (ToClient, &resp),
            ],
        );
        check_pipelined(&ev);
    }
    for i in 0..=resp.len() {
        let (ev, _) = run(
            HttpConfig::default(),
            &[
                (ToServer, &req),
                (ToClient, &resp[..i]),
                (ToClient, &resp[i..]),
            ],
        );
        check_pipelined(&ev);
    }
    // Byte by byte, directions interleaved.
    let mut d = driver(HttpConfig::default());
    let n = req.len().max(resp.len());
    for i in 0..n {
        if let Some(b) = req.get(i) {
            d.feed(ToServer, &[*b], i as u64);
        }
        if let Some(b) = resp.get(i) {
            d.feed(ToClient, &[*b], i as u64);
        }
    }
    d.flush(0);
    check_pipelined(&http_events(&d));
}

#[test]
fn chunked_body_split_anywhere() {
    let req = b"GET / HTTP/1.1\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n3;ext\r\n123\r\n0\r\nX-T: 1\r\n\r\n";
    let cfg = HttpConfig {
        body_capture_bytes: 100,
        ..HttpConfig::default()
    };
    for i in 0..=resp.len() {
        for j in i..=resp.len() {
            let (ev, _) = run(
                cfg.clone(),
                &[
                    (ToServer, req),
                    (ToClient, &resp[..i]),
                    (ToClient, &resp[i..j]),
                    (ToClient, &resp[j..]),
                ],
            );
            assert_eq!(ev.len(), 1);
            assert_eq!(
                ev[0].response_body, b"abcdefghijklmnopqrstuvwxyz123",
                "split {i} {j}"
            );
            assert_eq!(ev[0].response_body_len, 29);
            assert!(!ev[0].incomplete);
        }
    }
}

#[test]
fn no_body_responses_and_until_close() {
    let req = b"HEAD / HTTP/1.1\r\n\r\nGET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.0\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil close";
    let (ev, _) = run(HttpConfig::default(), &[(ToServer, req), (ToClient, resp)]);
    assert_eq!(ev.len(), 4);
    assert_eq!(
        ev.iter().map(|e| e.status.unwrap()).collect::<Vec<_>>(),
        vec![200, 204, 304, 200]
    );
    assert_eq!(ev[3].response_body_len, 11);
    assert!(!ev[3].incomplete);
}

#[test]
fn expect_100_continue() {
    let (ev, _) = run(
        HttpConfig::default(),
        &[
            (
                ToServer,
                b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            ),
            (ToClient, b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"),
            (ToServer, b"abc"),
            (
                ToClient,
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            ),
        ],
    );
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].interim_statuses, vec![100, 100]);
    assert_eq!(ev[0].status, Some(200));
    assert_eq!(ev[0].request_body_len, 3);
    assert_eq!(ev[0].response_body_len, 2);
}

#[test]
fn connect_tunnel_stops_parsing() {
    let tls = [0x16u8, 3, 1, 0, 5, 1, 2, 3, 4, 5];
    let mut d = driver(HttpConfig::default());
    d.feed(
        ToServer,
        b"CONNECT abc:443 HTTP/1.1\r\nUser-Agent: V/1\r\n\r\n",
        1,
    );
    // Client sends tunnel bytes before the answer arrives: held, not parsed.
    d.feed(ToServer, &tls, 2);
    assert_eq!(d.errors, 0);
    d.feed(ToClient, b"HTTP/1.1 200 Connection established\r\n\r\n", 3);
    d.feed(ToClient, &tls, 4);
    d.feed(ToServer, &tls, 5);
    assert!(d.parser.is_done());
    d.flush(6);
    let ev = http_events(&d);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].method.as_deref(), Some("CONNECT"));
    assert_eq!(ev[0].host.as_deref(), Some("abc"));
    assert_eq!(ev[0].host_port, Some(443));
    assert!(ev[0].tunnel);
    assert_eq!(d.errors, 0);

    // Refused CONNECT: parsing goes on.
    let (ev, d) = run(
        HttpConfig::default(),
        &[
            (ToServer, b"CONNECT abc:443 HTTP/1.1\r\n\r\n"),
            (
                ToClient,
                b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 0\r\n\r\n",
            ),
            (ToServer, b"GET / HTTP/1.1\r\n\r\n"),
            (ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
    );
    assert_eq!(ev.len(), 2);
    assert!(!ev[0].tunnel && !d.parser.is_done());
    assert_eq!(ev[1].method.as_deref(), Some("GET"));
}

#[test]
fn websocket_upgrade() {
    let (ev, d) = run(
        HttpConfig::default(),
        &[
            (ToServer, b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
            (ToClient, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
            (ToServer, b"\x81\x85\x00\x00\x00\x00hello"),
        ],
    );
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].status, Some(101));
    assert_eq!(ev[0].upgrade.as_deref(), Some("websocket"));
    assert!(ev[0].tunnel && d.parser.is_done());
    assert_eq!(d.errors, 0);
}

#[test]
fn orphan_response_and_unanswered_request() {
    let (ev, d) = run(
        HttpConfig::default(),
        &[
            (ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (ToServer, b"GET /x HTTP/1.1\r\n\r\n"),
        ],
    );
    assert_eq!(ev.len(), 2);
    assert!(!ev[0].has_request && ev[0].has_response && ev[0].status == Some(200));
    assert!(ev[1].has_request && !ev[1].has_response && ev[1].incomplete);
    let st = d.parser.stats();
    assert_eq!((st.orphan_responses, st.unanswered), (1, 1));
}

#[test]
fn gap_in_body_with_length_keeps_sync() {
    let mut d = driver(HttpConfig::default());
    d.feed(
        ToServer,
        b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
        1,
    );
    d.feed(
        ToClient,
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        2,
    );
    d.gap(ToClient, 50);
    d.feed(ToClient, &[b'x'; 40], 3);
    d.feed(
        ToClient,
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        4,
    );
    d.flush(5);
    let ev = http_events(&d);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].response_body_len, 100);
    assert!(ev[0].gap && !ev[0].incomplete);
    assert_eq!(ev[1].status, Some(404));
    assert!(!ev[1].gap);
}

#[test]
fn gap_in_middle_of_body_then_resync_on_next_request() {
    let mut d = driver(HttpConfig::default());
    d.feed(
        ToServer,
        b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789",
        1,
    );
    // Gap larger than the chunk: framing is lost.
    d.gap(ToServer, 500);
    d.feed(
        ToServer,
        b"garbage tail\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: n\r\n\r\n",
        2,
    );
    d.feed(
        ToClient,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        3,
    );
    d.flush(4);
    let ev = http_events(&d);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    assert!(ev[0].gap && ev[0].incomplete);
    assert_eq!(ev[1].uri.as_deref(), Some("/next"));
    assert_eq!(ev[1].host.as_deref(), Some("n"));
    assert!(!ev[1].gap);
    let st = d.parser.stats();
    assert_eq!((st.gaps, st.resyncs), (1, 1));
    assert_eq!(d.errors, 0);

    // Gap in the response headers: resync on the next status line.
    let mut d = driver(HttpConfig::default());
    d.feed(
        ToServer,
        b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
        1,
    );
    d.feed(ToClient, b"HTTP/1.1 200 OK\r\nContent-Ty", 2);
    d.gap(ToClient, 100);
    d.feed(
        ToClient,
        b"pe: x\r\n\r\nbody\r\nHTTP/1.1 302 Found\r\nLocation: /z\r\nContent-Length: 0\r\n\r\n",
        3,
    );
    d.flush(4);
    let ev = http_events(&d);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].status, Some(200));
    assert!(ev[0].gap);
    assert_eq!(ev[1].status, Some(302));
    assert_eq!(ev[1].location.as_deref(), Some("/z"));
}

#[test]
fn limits_are_enforced() {
    // Overlong header line: skipped and counted, parsing goes on.
    let mut req = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 100_000));
    req.extend_from_slice(b"\r\nHost: after\r\n\r\n");
    let cfg = HttpConfig {
        log_request_headers: true,
        ..HttpConfig::default()
    };
    let mut d = driver(cfg.clone());
    for c in req.chunks(1000) {
        d.feed(ToServer, c, 1);
        assert!(d.buf[0].len() <= cfg.max_line_len + 1000);
    }
    d.feed(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 2);
    d.flush(3);
    let ev = http_events(&d);
    assert_eq!(ev.len(), 1);
    assert!(ev[0].truncated);
    assert_eq!(ev[0].host.as_deref(), Some("after"));
    assert!(d.parser.stats().truncated >= 1);

    // Header count limit.
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..200 {
        req.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let (ev, _) = run(cfg.clone(), &[(ToServer, &req)]);
    assert_eq!(ev[0].request_headers.len(), cfg.max_headers);
    assert!(ev[0].truncated);

    // Overlong request line: error, bounded.
    let mut d = driver(HttpConfig::default());
    let junk = vec![b'A'; 40_000];
    d.feed(ToServer, b"GET /", 1);
    d.feed(ToServer, &junk, 1);
    assert_eq!(d.errors, 1);
    assert!(d.parser.stats().malformed >= 1);

    // Not HTTP at all: error.
    let mut d = driver(HttpConfig::default());
    d.feed(ToServer, b"\x16\x03\x01\x00\x05hello\r\n", 1);
    assert_eq!(d.errors, 1);
}

#[test]
fn pending_queue_overflow_keeps_order() {
    let cfg = HttpConfig {
        max_pending: 2,
        ..HttpConfig::default()
    };
    let mut req = Vec::new();
    let mut resp = Vec::new();
    for i in 0..5 {
        req.extend_from_slice(format!("GET /{i} HTTP/1.1\r\n\r\n").as_bytes());
        resp.extend_from_slice(
            format!("HTTP/1.1 20{i} OK\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        );
    }
    let (ev, d) = run(cfg, &[(ToServer, &req), (ToClient, &resp)]);
    // /0 and /1 kept; /2../4 dropped, their responses skipped.
    let got: Vec<(Option<String>, Option<u16>)> =
        ev.iter().map(|e| (e.uri.clone(), e.status)).collect();
    assert_eq!(
        got,
        vec![
            (Some("/0".into()), Some(200)),
            (Some("/1".into()), Some(201))
        ]
    );
    assert_eq!(d.parser.stats().pending_overflow, 3);
    assert_eq!(d.parser.stats().orphan_responses, 0);
}

#[test]
fn header_continuation_and_http09() {
    let (ev, _) = run(
        HttpConfig::default(),
        &[
            (ToServer, b"GET / HTTP/1.1\r\nUser-Agent: a\r\n b\r\n\r\n"),
            (ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
    );
    assert_eq!(ev[0].user_agent.as_deref(), Some("a b"));
    let (ev, _) = run(HttpConfig::default(), &[(ToServer, b"GET /old\r\n")]);
    assert_eq!(ev[0].uri.as_deref(), Some("/old"));
    assert_eq!(ev[0].version, None);
}

#[test]
fn absolute_uri_sets_host() {
    let (ev, _) = run(
        HttpConfig::default(),
        &[(
            ToServer,
            b"GET http://Proxy.Example:3128/x HTTP/1.1\r\nHost: other\r\n\r\n",
        )],
    );
    assert_eq!(ev[0].host.as_deref(), Some("proxy.example"));
    assert_eq!(ev[0].host_port, Some(3128));
}

// ---------------------------------------------------------------------------
// Corpus: real captures against Suricata 8.0.6's eve output.
// ---------------------------------------------------------------------------

/// Our events for a capture, as (client port, server port, event).
fn corpus_events(rel: &str) -> Vec<(u16, u16, HttpEvent)> {
    corpus_events_with(rel, false)
}

fn corpus_events_with(rel: &str, allow_errors: bool) -> Vec<(u16, u16, HttpEvent)> {
    let cap = corpus(rel);
    let flows = replay_tcp(&cap, &|_, _| {
        Box::new(HttpParser::new(HttpConfig::default()))
    });
    for f in flows.iter().filter(|_| !allow_errors) {
        assert_eq!(
            f.errors, 0,
            "{rel}: parse errors in {}->{} ({} gaps)",
            f.client_port, f.server_port, f.gaps
        );
    }
    let mut out = Vec::new();
    for f in flows {
        for e in f.events {
            if let AppEvent::Http(h) = e {
                out.push((f.client_port, f.server_port, *h));
            }
        }
    }
    out
}

fn s(v: &serde_json::Value) -> Option<String> {
    v.as_str().map(|x| x.to_string())
}

/// Compare field by field with Suricata. Suricata logs a transaction once it
/// has a response (or at flow end), so every Suricata http event must be among
/// ours with the same method/host/uri/status/length/user agent/content type/
/// referer/protocol, matched per flow in tx order.
///
/// `skip_length` lists (tx_id, why) where Suricata's `length` is not the body
/// length and ours is checked against the truth instead.
fn compare_with_suricata(rel: &str) -> usize {
    compare_with_suricata_except(rel, &[])
}

fn compare_with_suricata_except(rel: &str, skip_length: &[(u64, u64, &str)]) -> usize {
    let ours = corpus_events(rel);
    let theirs = suricata_events(rel, "http");
    assert!(!theirs.is_empty(), "{rel}: no reference events");
    let mut used = vec![false; ours.len()];
    let mut checked = 0;
    for t in &theirs {
        let sp = t["src_port"].as_u64().unwrap() as u16;
        let dp = t["dest_port"].as_u64().unwrap() as u16;
        let h = &t["http"];
        let tx_id = t["tx_id"].as_u64().unwrap();
        if h["http_method"].is_null() && h["status"].is_null() {
            // Suricata logs an empty transaction (no request, no response)
            // for stray line ends; there is nothing to compare.
            continue;
        }
        let idx = ours
            .iter()
            .enumerate()
            .position(|(i, (c, sv, e))| {
                !used[i]
                    && *c == sp
                    && *sv == dp
                    && e.tx_id == tx_id
                    && e.method.as_deref() == s(&h["http_method"]).as_deref()
            })
            .unwrap_or_else(|| panic!("{rel}: no event for {sp}->{dp} tx {tx_id}: ours {ours:#?}"));
        used[idx] = true;
        checked += 1;
        let e = &ours[idx].2;
        let ctx = format!("{rel} {sp}->{dp} tx {tx_id}");
        assert_eq!(
            e.method.as_deref(),
            s(&h["http_method"]).as_deref(),
            "{ctx} method"
        );
        assert_eq!(e.uri, s(&h["url"]), "{ctx} uri");
        assert_eq!(e.host, s(&h["hostname"]), "{ctx} host");
        assert_eq!(
            e.host_port.map(u64::from),
            h["http_port"].as_u64(),
            "{ctx} port"
        );
        assert_eq!(
            e.version.as_deref(),
            s(&h["protocol"]).as_deref(),
            "{ctx} protocol"
        );
        assert_eq!(
            e.status.map(u64::from),
            h["status"].as_u64(),
            "{ctx} status"
        );
        assert_eq!(e.user_agent, s(&h["http_user_agent"]), "{ctx} ua");
        assert_eq!(
            e.content_type.as_deref(),
            s(&h["http_content_type"]).as_deref(),
            "{ctx} content type"
        );
        assert_eq!(e.referer, s(&h["http_refer"]), "{ctx} referer");
        assert_eq!(e.location, s(&h["redirect"]), "{ctx} redirect");
        if let Some(&(_, truth, _why)) = skip_length.iter().find(|(id, _, _)| *id == tx_id) {
            assert_eq!(e.response_body_len, truth, "{ctx} length (vs truth)");
        } else if let Some(len) = h["length"].as_u64() {
            assert_eq!(e.response_body_len, len, "{ctx} length");
        }
    }
    checked
}

#[test]
fn corpus_all_headers() {
    assert_eq!(
        compare_with_suricata("http/sv-http-all-headers--input.pcap"),
        1
    );
}

#[test]
fn corpus_post_file_ipv6() {
    assert_eq!(
        compare_with_suricata("http/sv-http-post-file--input.pcap"),
        3
    );
}

#[test]
fn corpus_multiple_100_continue() {
    assert_eq!(
        compare_with_suricata("http/sv-http-multiple100--input.pcap"),
        1
    );
}

#[test]
fn corpus_range_file() {
    assert_eq!(
        compare_with_suricata("http/sv-http-range-file--input.pcap"),
        15
    );
}

#[test]
fn corpus_protocol_nodup() {
    assert_eq!(
        compare_with_suricata("http/sv-http-protocol-nodup--input.pcap"),
        40
    );
}

#[test]
fn corpus_event_chunk_request() {
    // The response is "HTTP/1.1 200 OK\n\n\n": no length, so by RFC 9112
    // the third LF is a 1-byte close-delimited body; Suricata says 0.
    assert_eq!(
        compare_with_suricata_except(
            "http/sv-http-event-chunk--input.pcap",
            &[(0, 1, "close-delimited LF")]
        ),
        1
    );
}

#[test]
fn corpus_tcp_fastopen() {
    assert_eq!(
        compare_with_suricata("http/sv-tcp-fastopen-01--tfo.pcap"),
        2
    );
}

#[test]
fn corpus_large_download_sll2() {
    // Suricata stops at its 1 MiB stream reassembly depth (length 1003464);
    // the body is the full Content-Length.
    assert_eq!(
        compare_with_suricata_except(
            "http/sv-decode-sll2-02--input.pcap",
            &[(0, 2_598_670, "stream depth")]
        ),
        1
    );
}

#[test]
fn corpus_gap_simple() {
    // Response /1 has Content-Length 12 followed by 2 extra bytes (CR LF);
    // libhtp adds them to the body (14), we treat them as blank lines
    // between messages (12 = Content-Length). /2 has a 14-byte gap in its
    // 70-byte body: both count 70.
    assert_eq!(
        compare_with_suricata_except(
            "http/sv-http-gap-simple--input.pcap",
            &[(0, 12, "bytes past Content-Length"), (2, 12, "same")]
        ),
        3
    );
}

#[test]
fn corpus_pipeline_with_gap() {
    // Suricata's `length` of a chunked body counts the chunk framing (25416
    // raw bytes); ours is the de-chunked body (24555, checked by hand).
    assert_eq!(
        compare_with_suricata_except(
            "http/sv-http-pipeline-files-with-gap--input.pcap",
            &[(0, 24_555, "chunk framing")]
        ),
        3
    );
}

#[test]
fn corpus_connect() {
    // CONNECT 200, then plain HTTP inside the tunnel: the parser stops at the
    // 2xx (is_done) and the driver re-detects HTTP on the tunnel bytes, like
    // Suricata's protocol change (its second session restarts tx ids at 0).
    // Suricata gives the CONNECT transaction length 1 (the stray CR LF after
    // the 200's header block); we count no body for a tunnel. Its third
    // event is an empty transaction (no request, no response): skipped.
    assert_eq!(
        compare_with_suricata_except(
            "http/sv-http-connect.http-connect-simple--input.pcap",
            &[(0, 0, "tunnel")]
        ),
        2
    );
}

#[test]
fn corpus_gap_captures_report_gaps() {
    for rel in [
        "http/sv-http-gap-simple--input.pcap",
        "http/sv-http-pipeline-files-with-gap--input.pcap",
    ] {
        let flows = replay_tcp(&corpus(rel), &|_, _| {
            Box::new(HttpParser::new(HttpConfig::default()))
        });
        assert!(
            flows.iter().map(|f| f.gaps).sum::<u32>() >= 1,
            "{rel}: the capture has a hole"
        );
        let gap_events = flows
            .iter()
            .flat_map(|f| f.events.iter())
            .filter(|e| matches!(e, AppEvent::Http(h) if h.gap))
            .count();
        assert!(
            gap_events >= 1,
            "{rel}: the transaction with the hole says so"
        );
    }
}

/// Suricata logs no HTTP for this Linux-cooked capture with lost segments;
/// every request tshark sees must be one of our transactions (same URI).
#[test]
fn corpus_quickplay_matches_tshark_requests() {
    let rel = "http/ndpi-quickplay.pcap";
    let cap = corpus(rel);
    let out = crate::app::testutil::tshark(&[
        "-r",
        cap.to_str().unwrap(),
        "-Y",
        "http.request",
        "-T",
        "fields",
        "-e",
        "http.request.uri",
    ]);
    let want: Vec<&str> = out.lines().collect();
    // One flow's capture starts in the middle of a response (its first
    // segments were not captured): that direction is an Error, as it should.
    let ours = corpus_events_with(rel, true);
    assert!(!want.is_empty());
    for uri in &want {
        assert!(
            ours.iter().any(|(_, _, e)| e.uri.as_deref() == Some(*uri)),
            "{rel}: request {uri} missing"
        );
    }
}

/// A body with a known length arriving in several segments (the parser's
/// fast path for mid-body segments), the last one carrying the next request.
#[test]
fn body_in_segments_then_next_request() {
    let cfg = HttpConfig {
        body_capture_bytes: 4,
        ..HttpConfig::default()
    };
    let (ev, d) = run(
        cfg,
        &[
            (
                ToServer,
                b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab",
            ),
            (ToServer, b"cde"),
            (ToServer, b"fgh"),
            (ToServer, b"ijGET /next HTTP/1.1\r\nHost: h2\r\n\r\n"),
            (
                ToClient,
                b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
            ),
            (ToClient, b"x"),
            (ToClient, b"yz"),
        ],
    );
    assert_eq!(d.errors, 0);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].request_body_len, 10);
    assert_eq!(ev[0].request_body, b"abcd");
    assert_eq!(ev[0].status, Some(204));
    assert_eq!(ev[0].reason.as_deref(), Some("No Content"));
    assert_eq!(ev[0].request_end_ts_ns, Some(1003));
    assert_eq!(ev[1].uri.as_deref(), Some("/next"));
    assert_eq!(ev[1].host.as_deref(), Some("h2"));
    assert_eq!(ev[1].response_body_len, 3);
    assert_eq!(ev[1].response_body, b"xyz");
    assert_eq!(ev[1].response_end_ts_ns, Some(1006));
    assert!(ev.iter().all(|e| !e.incomplete && !e.truncated));
}

/// Whichever header lists are kept, sensitive values in them stay
/// redacted (the parser shares the configured redaction list).
#[test]
fn registry_parser_keeps_redaction_for_header_lists() {
    for (log_req, log_resp) in [(true, false), (false, true), (false, false)] {
        let cfg = HttpConfig {
            log_request_headers: log_req,
            log_response_headers: log_resp,
            ..HttpConfig::default()
        };
        let mut d = Driver::new(Box::new(HttpParser::new(cfg.clone())));
        d.feed(ToServer, REQ1, 1);
        d.feed(ToClient, RESP1, 2);
        d.flush(3);
        let ev = http_events(&d);
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        let value = |hs: &[HttpHeader], name: &str| {
            hs.iter().find(|h| h.name == name).map(|h| h.value.clone())
        };
        let auth = value(&e.request_headers, "Authorization");
        let cookie = value(&e.response_headers, "Set-Cookie");
        assert_eq!(auth.as_deref(), log_req.then_some("[redacted]"));
        assert_eq!(cookie.as_deref(), log_resp.then_some("[redacted]"));
        assert_eq!(e.user_agent.as_deref(), Some("curl/8.0"));
    }
}
