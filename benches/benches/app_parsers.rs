//! Application-layer parser throughput (MB/s of stream bytes): HTTP/1.1
//! request/response streams, DNS query/response datagrams, TLS 1.2
//! ClientHello + server flight with a certificate chain.
//!
//! The driver plays the engine: 1448-byte segments, unconsumed bytes kept.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dissect::app::{
    new_parser, AppConfig, AppParser, AppProto, Ctx, Direction, ParseStatus, Transport,
};

const SEG: usize = 1448;

/// The engine's side of one flow: a buffer of unconsumed bytes per direction.
struct Flow {
    p: Box<dyn AppParser>,
    buf: [Vec<u8>; 2],
    events: usize,
}

impl Flow {
    fn new(p: Box<dyn AppParser>) -> Flow {
        Flow {
            p,
            buf: [Vec::with_capacity(4096), Vec::with_capacity(4096)],
            events: 0,
        }
    }

    /// Feed `data` in segments, keeping unconsumed bytes like the engine.
    fn feed(&mut self, dir: Direction, data: &[u8]) {
        let ctx = Ctx::new(1);
        let buf = &mut self.buf[dir.index()];
        let events = &mut self.events;
        for seg in data.chunks(SEG) {
            buf.extend_from_slice(seg);
            match self.p.parse(dir, buf, &ctx, &mut |_| *events += 1) {
                ParseStatus::Consumed(n) | ParseStatus::Incomplete { consumed: n, .. } => {
                    buf.drain(..n);
                }
                ParseStatus::Error { .. } => return,
            }
        }
    }
}

/// `n` keep-alive transactions: (request, response) bytes each.
fn http_txs(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let body = vec![b'x'; 2000];
    let mut txs = Vec::new();
    for i in 0..n {
        let mut req = Vec::new();
        let mut resp = Vec::new();
        req.extend_from_slice(
            format!(
                "GET /static/app/{i}/bundle.js?v=1.2.3 HTTP/1.1\r\nHost: www.example.com\r\n\
                 User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
                 Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n\
                 Referer: https://www.example.com/\r\nCookie: session=abcdef0123456789\r\nConnection: keep-alive\r\n\r\n"
            )
            .as_bytes(),
        );
        if i % 2 == 0 {
            resp.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nServer: nginx\r\n\
                  Content-Type: application/javascript; charset=utf-8\r\nContent-Length: 2000\r\n\
                  Cache-Control: max-age=3600\r\nETag: \"abc123\"\r\nConnection: keep-alive\r\n\r\n",
            );
            resp.extend_from_slice(&body);
        } else {
            resp.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\n\
                  Transfer-Encoding: chunked\r\n\r\n",
            );
            for c in body.chunks(500) {
                resp.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                resp.extend_from_slice(c);
                resp.extend_from_slice(b"\r\n");
            }
            resp.extend_from_slice(b"0\r\n\r\n");
        }
        txs.push((req, resp));
    }
    txs
}

fn push_name(m: &mut Vec<u8>, name: &str) {
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
}

fn dns_pair() -> (Vec<u8>, Vec<u8>) {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    push_name(&mut q, "www.example.com");
    q.extend_from_slice(&[0, 1, 0, 1]);
    let mut r = q.clone();
    r[2] = 0x81;
    r[3] = 0x80;
    r[7] = 5;
    // CNAME www.example.com -> cdn.example.net, then 4 A records.
    r.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10]);
    let mut cname = Vec::new();
    push_name(&mut cname, "cdn.example.net");
    r.extend_from_slice(&(cname.len() as u16).to_be_bytes());
    let cname_off = r.len() as u16;
    r.extend_from_slice(&cname);
    for i in 0..4u8 {
        r.extend_from_slice(&(0xc000 | cname_off).to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, i]);
    }
    (q, r)
}

const CERT: &[u8] = include_bytes!("../../dissect/src/app/tls/testdata/selfsigned.der");

fn hs(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    v.extend_from_slice(body);
    v
}

fn records(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for c in payload.chunks(16_384) {
        v.extend_from_slice(&[22, 3, 3]);
        v.extend_from_slice(&(c.len() as u16).to_be_bytes());
        v.extend_from_slice(c);
    }
    v
}

fn ext(t: u16, data: &[u8]) -> Vec<u8> {
    let mut v = t.to_be_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn vec16(d: &[u8]) -> Vec<u8> {
    let mut v = (d.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(d);
    v
}

fn tls_flights() -> (Vec<u8>, Vec<u8>) {
    let mut ch = vec![3, 3];
    ch.extend_from_slice(&[7; 32]);
    ch.push(32);
    ch.extend_from_slice(&[9; 32]);
    let ciphers: Vec<u8> = [
        0x1a1a_u16, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
        0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
    ]
    .iter()
    .flat_map(|v| v.to_be_bytes())
    .collect();
    ch.extend(vec16(&ciphers));
    ch.extend_from_slice(&[1, 0]);
    let mut e = Vec::new();
    let mut sn = vec![0u8];
    sn.extend(vec16(b"www.example.com"));
    e.extend(ext(0, &vec16(&sn)));
    e.extend(ext(23, &[]));
    e.extend(ext(0xff01, &[0]));
    e.extend(ext(10, &vec16(&[0x2a, 0x2a, 0, 29, 0, 23, 0, 24])));
    e.extend(ext(11, &[1, 0]));
    e.extend(ext(35, &[]));
    e.extend(ext(16, &vec16(b"\x02h2\x08http/1.1")));
    e.extend(ext(5, &[1, 0, 0, 0, 0]));
    e.extend(ext(
        13,
        &vec16(&[4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1, 8, 6, 6, 1]),
    ));
    e.extend(ext(18, &[]));
    e.extend(ext(
        51,
        &vec16(
            &[0, 29, 0, 32]
                .iter()
                .copied()
                .chain([1u8; 32])
                .collect::<Vec<u8>>(),
        ),
    ));
    e.extend(ext(45, &[1, 1]));
    e.extend(ext(43, &[4, 3, 4, 3, 3]));
    e.extend(ext(27, &[2, 0, 2]));
    e.extend(ext(21, &[0; 200]));
    ch.extend(vec16(&e));
    let client = records(&hs(1, &ch));

    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[5; 32]);
    sh.push(0);
    sh.extend_from_slice(&[0xc0, 0x2f, 0]);
    sh.extend(vec16(
        &[
            ext(0xff01, &[0]),
            ext(11, &[1, 0]),
            ext(16, &vec16(b"\x02h2")),
        ]
        .concat(),
    ));
    let mut list = Vec::new();
    for _ in 0..3 {
        list.extend_from_slice(&(CERT.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(CERT);
    }
    let mut cert = (list.len() as u32).to_be_bytes()[1..].to_vec();
    cert.extend(list);
    let mut flight = hs(2, &sh);
    flight.extend(hs(11, &cert));
    flight.extend(hs(12, &[0; 300]));
    flight.extend(hs(14, &[]));
    (client, records(&flight))
}

fn bench(c: &mut Criterion) {
    let cfg = AppConfig::default();
    let mut g = c.benchmark_group("app_parsers");

    let txs = http_txs(100);
    let bytes: usize = txs.iter().map(|(a, b)| a.len() + b.len()).sum();
    g.throughput(Throughput::Bytes(bytes as u64));
    let run_http = |cfg: &AppConfig| {
        let mut f = Flow::new(new_parser(AppProto::Http, Transport::Tcp, cfg));
        for (req, resp) in &txs {
            f.feed(Direction::ToServer, req);
            f.feed(Direction::ToClient, resp);
        }
        f.events
    };
    g.bench_function("http_100_keepalive_txs", |b| {
        b.iter(|| {
            let ev = run_http(&cfg);
            assert_eq!(ev, 100);
            black_box(ev)
        })
    });
    let mut hcfg = cfg.clone();
    hcfg.http.log_request_headers = true;
    hcfg.http.log_response_headers = true;
    g.bench_function("http_100_txs_with_header_lists", |b| {
        b.iter(|| black_box(run_http(&hcfg)))
    });

    let (q, r) = dns_pair();
    g.throughput(Throughput::Bytes((q.len() + r.len()) as u64));
    g.bench_function("dns_udp_query_response", |b| {
        b.iter(|| {
            let mut p = new_parser(AppProto::Dns, Transport::Udp, &cfg);
            let mut ev = 0;
            p.parse(Direction::ToServer, &q, &Ctx::new(1), &mut |_| ev += 1);
            p.parse(Direction::ToClient, &r, &Ctx::new(2), &mut |_| ev += 1);
            assert_eq!(ev, 1);
            black_box(ev)
        })
    });

    let (client, server) = tls_flights();
    g.throughput(Throughput::Bytes((client.len() + server.len()) as u64));
    g.bench_function("tls12_hello_and_3_cert_chain", |b| {
        b.iter(|| {
            let mut f = Flow::new(new_parser(AppProto::Tls, Transport::Tcp, &cfg));
            f.feed(Direction::ToServer, &client);
            f.feed(Direction::ToClient, &server);
            assert_eq!(f.events, 1);
            black_box(f.events)
        })
    });
    let mut ncfg = cfg.clone();
    ncfg.tls.parse_certs = false;
    g.bench_function("tls12_hello_chain_no_cert_decode", |b| {
        b.iter(|| {
            let mut f = Flow::new(new_parser(AppProto::Tls, Transport::Tcp, &ncfg));
            f.feed(Direction::ToServer, &client);
            f.feed(Direction::ToClient, &server);
            black_box(f.events)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
