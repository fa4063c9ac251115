use super::wire::tests_support::*;
use super::*;
use crate::app::testutil::{corpus, replay_tcp, suricata_events, tshark, Driver};
use crate::app::Direction::{ToClient, ToServer};
use std::collections::HashMap;

/// Self-signed P-256 certificate made with openssl for these tests:
/// C=US, O=Flowtap Test, CN=test.example; SAN test.example, www.test.example,
/// 192.0.2.1; serial 0x00a1b2c3; SHA-1 2B:C4:A4:7B:...:B1:83.
const CERT: &[u8] = include_bytes!("testdata/selfsigned.der");

fn tls_events(d: &Driver) -> Vec<TlsEvent> {
    d.events
        .iter()
        .map(|e| match e {
            AppEvent::Tls(t) => (**t).clone(),
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
}

fn driver() -> Driver {
    Driver::new(Box::new(TlsParser::new(TlsConfig::default())))
}

fn cert_msg(certs: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for c in certs {
        list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(c);
    }
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend(list);
    hs(11, &body)
}

/// Client and server byte streams of a TLS 1.2 full handshake.
fn tls12(sni: &str, record_max: usize) -> (Vec<u8>, Vec<u8>) {
    let cts = records(22, &hs(1, &client_hello_body(sni)), record_max);
    let mut flight = hs(2, &server_hello_body(false, Some("h2")));
    flight.extend(cert_msg(&[CERT, b"not a certificate"]));
    flight.extend(hs(12, &[0u8; 100]));
    flight.extend(hs(14, &[]));
    let stc = records(22, &flight, record_max);
    (cts, stc)
}

fn check_tls12(e: &TlsEvent) {
    assert_eq!(e.sni.as_deref(), Some("example.com"));
    assert_eq!(e.version, Some(0x0303));
    assert_eq!(version_name(e.version.unwrap()), "TLS 1.2");
    assert_eq!(e.cipher, Some(0x1301));
    assert_eq!(e.client_alpns, vec!["h2", "http/1.1"]);
    assert_eq!(e.server_alpn.as_deref(), Some("h2"));
    assert_eq!(
        e.ja3.as_deref(),
        Some("771,4865-4866-4867-49195-49199-156,0-23-65281-10-11-16-13-43-51,29-23-24,0")
    );
    assert_eq!(e.ja4.as_deref().map(|j| &j[..10]), Some("t13d0609h2"));
    assert_eq!(e.ja3s.as_deref(), Some("771,4865,65281-16"));
    assert_eq!(e.certificates.len(), 2);
    let c = &e.certificates[0];
    assert_eq!(c.subject, "C=US, O=Flowtap Test, CN=test.example");
    assert_eq!(c.issuer, c.subject);
    assert_eq!(c.serial, "00:A1:B2:C3");
    assert_eq!(
        c.sha1,
        "2b:c4:a4:7b:6b:d2:7f:ea:95:93:4d:c8:a4:57:99:93:b3:0a:b1:83"
    );
    assert_eq!(c.sha256.len(), 64);
    assert_eq!(c.san_dns, vec!["test.example", "www.test.example"]);
    assert_eq!(
        c.san_ip,
        vec!["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(c.not_before, 1_795_351_703);
    assert_eq!(format_utc(c.not_before), "2026-11-22T12:48:23");
    assert!(!c.parse_error);
    assert!(e.certificates[1].parse_error);
    assert!(!e.incomplete && !e.gap && !e.truncated);
}

#[test]
fn tls12_full_handshake() {
    let (cts, stc) = tls12("example.com", 16_384);
    let mut d = driver();
    d.feed(ToServer, &cts, 1_000);
    d.feed(ToClient, &stc, 1_700);
    assert!(d.parser.is_done());
    // Everything after is ignored.
    d.feed(ToServer, &records(23, &[1; 50], 100), 1_800);
    d.flush(2_000);
    let ev = tls_events(&d);
    assert_eq!(ev.len(), 1);
    check_tls12(&ev[0]);
    assert_eq!(
        (
            ev[0].client_hello_ts_ns,
            ev[0].server_hello_ts_ns,
            ev[0].latency_ns
        ),
        (Some(1_000), Some(1_700), Some(700))
    );
    assert_eq!(d.errors, 0);
}

#[test]
fn client_hello_split_across_records_and_segments() {
    for record_max in [7usize, 64, 16_384] {
        let (cts, stc) = tls12("example.com", record_max);
        for i in 0..=cts.len() {
            let mut d = driver();
            d.feed(ToServer, &cts[..i], 1);
            d.feed(ToServer, &cts[i..], 2);
            d.feed(ToClient, &stc, 3);
            d.flush(4);
            let ev = tls_events(&d);
            assert_eq!(ev.len(), 1, "record_max {record_max} split {i}");
            check_tls12(&ev[0]);
            // The engine never holds more than a record header.
            assert!(d.buf[0].is_empty());
        }
        // Server flight byte by byte.
        let mut d = driver();
        d.feed(ToServer, &cts, 1);
        for b in &stc {
            d.feed(ToClient, &[*b], 2);
            assert!(d.buf[1].len() < 5);
        }
        check_tls12(&tls_events(&d)[0]);
    }
}

#[test]
fn tls13_emits_after_server_hello() {
    let mut d = driver();
    d.feed(
        ToServer,
        &records(22, &hs(1, &client_hello_body("h13.example")), 16_384),
        1,
    );
    let mut stc = records(22, &hs(2, &server_hello_body(true, None)), 16_384);
    stc.extend(records(20, &[1], 10));
    stc.extend(records(23, &[0xee; 300], 16_384));
    d.feed(ToClient, &stc, 2);
    assert!(d.parser.is_done());
    d.flush(3);
    let ev = tls_events(&d);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].version, Some(0x0304));
    assert_eq!(version_name(0x0304), "TLS 1.3");
    assert_eq!(ev[0].server_legacy_version, Some(0x0303));
    assert!(ev[0].certificates.is_empty());
    assert_eq!(ev[0].sni.as_deref(), Some("h13.example"));
}

#[test]
fn hello_retry_request_waits_for_real_server_hello() {
    let mut d = driver();
    let ch = records(22, &hs(1, &client_hello_body("retry.example")), 16_384);
    d.feed(ToServer, &ch, 1);
    let mut hrr = server_hello_body(true, None);
    hrr[2..34].copy_from_slice(&wire::HRR_RANDOM);
    d.feed(ToClient, &records(22, &hs(2, &hrr), 16_384), 2);
    assert!(!d.parser.is_done());
    d.feed(ToServer, &ch, 3);
    d.feed(
        ToClient,
        &records(22, &hs(2, &server_hello_body(true, None)), 16_384),
        4,
    );
    let ev = tls_events(&d);
    assert_eq!(ev.len(), 1);
    assert!(ev[0].hello_retry);
    assert_eq!(ev[0].version, Some(0x0304));
}

#[test]
fn resumption_emits_at_change_cipher_spec() {
    let mut chb = client_hello_body("r.example");
    chb[35..67].copy_from_slice(&[0x42; 32]);
    let mut d = driver();
    d.feed(ToServer, &records(22, &hs(1, &chb), 16_384), 1);
    let mut shb = server_hello_body(false, None);
    shb[34] = 32;
    let mut shb2 = shb[..35].to_vec();
    shb2.extend_from_slice(&[0x42; 32]);
    shb2.extend_from_slice(&shb[35..]);
    let mut stc = records(22, &hs(2, &shb2), 16_384);
    stc.extend(records(20, &[1], 10));
    d.feed(ToClient, &stc, 2);
    let ev = tls_events(&d);
    assert_eq!(ev.len(), 1);
    assert!(ev[0].resumed);
    assert!(ev[0].certificates.is_empty());
}

#[test]
fn flush_emits_lone_client_hello_and_alerts() {
    let mut d = driver();
    d.feed(
        ToServer,
        &records(22, &hs(1, &client_hello_body("lonely.example")), 16_384),
        1,
    );
    d.feed(ToClient, &records(21, &[2, 40], 10), 2);
    d.flush(3);
    let ev = tls_events(&d);
    assert_eq!(ev.len(), 1);
    assert!(ev[0].incomplete && ev[0].has_client_hello && !ev[0].has_server_hello);
    assert_eq!(ev[0].alert, Some((2, 40)));
    assert!(ev[0].alert_from_server);
    assert_eq!(d.parser.stats().unanswered, 1);
    // Nothing seen: nothing emitted.
    let mut d = driver();
    d.flush(1);
    assert!(d.events.is_empty());
}

#[test]
fn limits_gaps_and_garbage() {
    // Oversized handshake message: skipped, counted, parsing goes on.
    let cfg = TlsConfig {
        max_handshake_len: 1024,
        ..TlsConfig::default()
    };
    let mut d = Driver::new(Box::new(TlsParser::new(cfg)));
    d.feed(
        ToServer,
        &records(22, &hs(1, &client_hello_body("big.example")), 16_384),
        1,
    );
    let mut flight = hs(2, &server_hello_body(false, None));
    flight.extend(hs(11, &vec![0u8; 5000]));
    flight.extend(hs(14, &[]));
    d.feed(ToClient, &records(22, &flight, 16_384), 2);
    let ev = tls_events(&d);
    assert_eq!(ev.len(), 1);
    assert!(ev[0].truncated && ev[0].certificates.is_empty());
    assert_eq!(d.parser.stats().truncated, 1);

    // Gap inside the certificate message: that message is lost, the
    // ServerHelloDone after it still ends the handshake.
    let (cts, stc) = tls12("example.com", 16_384);
    let mut d = driver();
    d.feed(ToServer, &cts, 1);
    let cut = 100;
    d.feed(ToClient, &stc[..cut], 2);
    d.gap(ToClient, 50);
    d.feed(ToClient, &stc[cut + 50..], 3);
    let ev = tls_events(&d);
    assert_eq!(ev.len(), 1);
    assert!(ev[0].gap && ev[0].certificates.is_empty() && !ev[0].incomplete);

    // Gap over a record boundary: resync if the next bytes start a record.
    let mut d = driver();
    d.feed(ToServer, &cts, 1);
    d.gap(ToClient, 1000);
    d.feed(
        ToClient,
        &records(22, &hs(2, &server_hello_body(true, None)), 16_384),
        2,
    );
    assert_eq!(tls_events(&d).len(), 1);
    assert_eq!(d.parser.stats().resyncs, 1);
    let mut d = driver();
    d.feed(ToServer, &cts, 1);
    d.gap(ToClient, 1000);
    d.feed(ToClient, b"mid-record garbage", 2);
    d.flush(3);
    assert_eq!(d.errors, 0);
    assert!(tls_events(&d)[0].incomplete);

    // Not TLS: error.
    let mut d = driver();
    d.feed(ToServer, b"GET / HTTP/1.1\r\n\r\n", 1);
    assert_eq!(d.errors, 1);
}

#[test]
fn probe_hellos() {
    let ch = records(22, &hs(1, &client_hello_body("p.example")), 16_384);
    assert_eq!(probe(ToServer, &ch), Probe::Yes);
    assert_eq!(probe(ToClient, &ch), Probe::No);
    assert_eq!(probe(ToServer, &ch[..5]), Probe::NeedMore);
    assert_eq!(probe(ToServer, &[]), Probe::NeedMore);
    assert_eq!(probe(ToServer, b"GET /"), Probe::No);
    assert_eq!(probe(ToServer, &[22, 2, 0]), Probe::No);
    let sh = records(22, &hs(2, &server_hello_body(true, None)), 16_384);
    assert_eq!(probe(ToClient, &sh), Probe::Yes);
}

// ---------------------------------------------------------------------------
// Corpus: real captures against Suricata 8.0.6 (sni, version, ja4, alpns,
// certificate fields) and tshark (JA3, JA3S; Suricata 8 logs no JA3 by default).
// ---------------------------------------------------------------------------

fn corpus_events(rel: &str) -> Vec<(u16, u16, TlsEvent)> {
    let cap = corpus(rel);
    let flows = replay_tcp(&cap, &|_, _| Box::new(TlsParser::new(TlsConfig::default())));
    let mut out = Vec::new();
    for f in flows {
        for e in f.events {
            if let AppEvent::Tls(t) = e {
                out.push((f.client_port, f.server_port, *t));
            }
        }
    }
    out
}

/// tshark's JA3 / JA3S by client port.
fn tshark_ja3(rel: &str) -> HashMap<u16, (Option<String>, Option<String>)> {
    let cap = corpus(rel);
    let mut m: HashMap<u16, (Option<String>, Option<String>)> = HashMap::new();
    let out = tshark(&[
        "-r",
        cap.to_str().unwrap(),
        "-Y",
        "tls.handshake.type == 1 || tls.handshake.type == 2",
        "-T",
        "fields",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.dstport",
        "-e",
        "tls.handshake.ja3_full",
        "-e",
        "tls.handshake.ja3s_full",
    ]);
    for l in out.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() < 4 {
            continue;
        }
        if !f[2].is_empty() {
            let e = m.entry(f[0].parse().unwrap()).or_default();
            e.0.get_or_insert(f[2].to_string());
        }
        if !f[3].is_empty() {
            let e = m.entry(f[1].parse().unwrap()).or_default();
            e.1.get_or_insert(f[3].to_string());
        }
    }
    m
}

fn compare_with_suricata(rel: &str) -> usize {
    let ours = corpus_events(rel);
    let theirs = suricata_events(rel, "tls");
    let ja3 = tshark_ja3(rel);
    for t in &theirs {
        let sp = t["src_port"].as_u64().unwrap() as u16;
        let dp = t["dest_port"].as_u64().unwrap() as u16;
        let x = &t["tls"];
        let (_, _, e) = ours
            .iter()
            .find(|(c, s, _)| *c == sp && *s == dp)
            .unwrap_or_else(|| panic!("{rel}: no TLS event for {sp}->{dp}"));
        let ctx = format!("{rel} {sp}->{dp}");
        let str_of = |v: &serde_json::Value| v.as_str().map(String::from);
        assert_eq!(e.sni, str_of(&x["sni"]), "{ctx} sni");
        assert_eq!(
            e.version.map(version_name),
            str_of(&x["version"]),
            "{ctx} version"
        );
        assert_eq!(e.ja4.as_deref(), str_of(&x["ja4"]).as_deref(), "{ctx} ja4");
        let alpns: Vec<String> = x["client_alpns"]
            .as_array()
            .map(|a| a.iter().filter_map(str_of).collect())
            .unwrap_or_default();
        assert_eq!(e.client_alpns, alpns, "{ctx} client_alpns");
        let server_alpn = x["server_alpns"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(str_of);
        assert_eq!(e.server_alpn, server_alpn, "{ctx} server_alpns");
        let leaf = e.certificates.first();
        assert_eq!(
            leaf.map(|c| c.subject.clone()),
            str_of(&x["subject"]),
            "{ctx} subject"
        );
        assert_eq!(
            leaf.map(|c| c.issuer.clone()),
            str_of(&x["issuerdn"]),
            "{ctx} issuer"
        );
        assert_eq!(
            leaf.map(|c| c.serial.clone()),
            str_of(&x["serial"]),
            "{ctx} serial"
        );
        assert_eq!(
            leaf.map(|c| c.sha1.clone()),
            str_of(&x["fingerprint"]),
            "{ctx} fingerprint"
        );
        assert_eq!(
            leaf.map(|c| format_utc(c.not_before)),
            str_of(&x["notbefore"]),
            "{ctx} notbefore"
        );
        assert_eq!(
            leaf.map(|c| format_utc(c.not_after)),
            str_of(&x["notafter"]),
            "{ctx} notafter"
        );
        if let Some(sans) = x["subjectaltname"].as_array() {
            let sans: Vec<String> = sans.iter().filter_map(str_of).collect();
            assert_eq!(leaf.map(|c| c.san_dns.clone()), Some(sans), "{ctx} sans");
        }
        let (tja3, tja3s) = ja3.get(&sp).cloned().unwrap_or_default();
        assert_eq!(e.ja3.as_deref(), tja3.as_deref(), "{ctx} ja3 vs tshark");
        if let Some(s) = &e.ja3s {
            assert_eq!(Some(&**s), tja3s.as_deref(), "{ctx} ja3s vs tshark");
        }
    }
    theirs.len()
}

#[test]
fn corpus_curl_tls12_chain() {
    assert_eq!(compare_with_suricata("tls/ndpi-443-curl.pcap"), 1);
}

#[test]
fn corpus_firefox() {
    assert_eq!(compare_with_suricata("tls/ndpi-443-firefox.pcap"), 1);
}

#[test]
fn corpus_ech_ipv6_tls13() {
    assert_eq!(compare_with_suricata("tls/ndpi-tls_ech.pcapng"), 1);
}

#[test]
fn corpus_tls13_google() {
    assert_eq!(
        compare_with_suricata("tls/sv-community-id-ipv4--input.pcap"),
        1
    );
}

#[test]
fn corpus_cert_issuer_three_flows() {
    assert_eq!(
        compare_with_suricata("tls/sv-tls.tls-cert-issuer--tls.pcap"),
        5
    );
}

#[test]
fn corpus_certs_alert_ipv6() {
    assert_eq!(
        compare_with_suricata("tls/sv-tls.tls-certs-alert--input.pcap"),
        1
    );
}

#[test]
fn corpus_client_hello_fragmented_mtu300() {
    assert_eq!(
        compare_with_suricata("tls/sv-tls.tls-client-hello-frag-01--dump_mtu300.pcap"),
        1
    );
}

#[test]
fn corpus_fin_close_tls13() {
    assert_eq!(
        compare_with_suricata("tls/sv-tls.tls-fin-close-data-01--debug-s13.pcap"),
        1
    );
}

#[test]
fn corpus_two_reassemblies_has_no_suricata_event() {
    // Suricata logs nothing for this pcapng; check we parse it without
    // errors and agree with tshark's JA3 for every ClientHello we saw.
    let rel = "tls/ndpi-tls_2_reasms.pcapng";
    let ours = corpus_events(rel);
    let ja3 = tshark_ja3(rel);
    for (c, _, e) in &ours {
        if let Some((Some(j), _)) = ja3.get(c) {
            assert_eq!(e.ja3.as_deref(), Some(j.as_str()));
        }
    }
}

/// The per-worker certificate cache changes nothing but the work: every
/// TLS capture of the corpus gives the same events with and without it, and
/// the repeated certificates are decoded once.
#[test]
fn certificate_cache_gives_the_same_events_and_decodes_repeats_once() {
    let dir = crate::app::testutil::shared_dir().join("corpus");
    let mut caps: Vec<String> = Vec::new();
    for sub in ["tls", "mixed", "vlan"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("corpus dir") {
            let name = e.expect("entry").file_name().to_string_lossy().to_string();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                caps.push(format!("{sub}/{name}"));
            }
        }
    }
    caps.sort();
    assert!(caps.len() >= 10, "corpus TLS captures missing: {caps:?}");
    let run = |rel: &str, slots: usize| -> Vec<TlsEvent> {
        let cfg = TlsConfig {
            cert_cache_entries: slots,
            ..TlsConfig::default()
        };
        replay_tcp(&corpus(rel), &|_, _| Box::new(TlsParser::new(cfg.clone())))
            .into_iter()
            .flat_map(|f| f.events)
            .filter_map(|e| match e {
                AppEvent::Tls(t) => Some(*t),
                _ => None,
            })
            .collect()
    };
    let (mut certs, mut decoded) = (0u64, 0u64);
    for rel in &caps {
        let plain = run(rel, 0);
        let (h0, m0) = cert::cache_counts();
        let cached = run(rel, 1024);
        let (h1, m1) = cert::cache_counts();
        assert_eq!(plain, cached, "{rel}: the cache changed an event");
        certs += (h1 - h0) + (m1 - m0);
        decoded += m1 - m0;
        if m1 > m0 {
            eprintln!(
                "{rel}: {} certificates, {} decoded, {} hits",
                (h1 - h0) + (m1 - m0),
                m1 - m0,
                h1 - h0
            );
        }
        // The next capture starts cold, as another run would.
        let _ = cert::summarize_cached(b"", 0);
    }
    eprintln!(
        "corpus: {certs} certificates in handshakes, {decoded} decoded ({} served from the cache)",
        certs - decoded
    );
    assert!(certs > 0, "no certificate in the TLS corpus");
    assert!(decoded < certs, "no certificate repeats in the corpus?");
}

#[test]
fn certificate_cache_is_bounded_and_never_confuses_two_certificates() {
    let a = std::fs::read(testdata("selfsigned.der")).expect("testdata/selfsigned.der");
    let mut b = a.clone();
    if let Some(x) = b.last_mut() {
        *x ^= 1;
    }
    // One slot: a and b always collide.
    let mut c = cert::CertCache::new(1);
    let sa = c.summarize(&a);
    let sb = c.summarize(&b);
    assert_ne!(sa.sha256, sb.sha256);
    assert_eq!(c.summarize(&b), sb);
    let sa2 = c.summarize(&a);
    assert_eq!(sa2, sa);
    assert_eq!((c.hits, c.misses), (1, 3));
    assert_eq!(*sa, cert::summarize(&a));
    // A hit shares the cached summary instead of copying it.
    assert!(std::sync::Arc::ptr_eq(&c.summarize(&a), &sa2));
    assert_eq!((c.hits, c.misses), (2, 3));
    // Same length and signature bytes (so the same slot and hash), one
    // byte apart near the start: still two certificates.
    let mut d = a.clone();
    if let Some(x) = d.get_mut(20) {
        *x ^= 1;
    }
    let mut wide = cert::CertCache::new(1024);
    let wa = wide.summarize(&a);
    let wd = wide.summarize(&d);
    assert_eq!(*wa, cert::summarize(&a));
    assert_eq!(*wd, cert::summarize(&d));
    assert_ne!(wa.sha256, wd.sha256);
    assert_eq!(*wide.summarize(&a), *wa);
    assert_eq!((wide.hits, wide.misses), (0, 3));
    // Too large to keep: decoded every time.
    let big = vec![0x30u8; cert::MAX_CACHED_DER + 1];
    c.summarize(&big);
    c.summarize(&big);
    assert_eq!(c.misses, 3);
}

fn testdata(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/app/tls/testdata")
        .join(name)
}
