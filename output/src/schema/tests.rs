use serde_json::Value;

use super::testdata::{dns, envelope, flow, http, pcap_event, stats_event, tls};
use super::*;

fn opts() -> EncodeOptions {
    EncodeOptions::new("probe-1".into(), 4)
}

fn all_lines(schema: Schema) -> Vec<Vec<u8>> {
    let rec = flow();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    encode_flow(schema, &opts(), &rec, &mut buf);
    out.push(std::mem::take(&mut buf));
    for ev in [http(), dns(), tls()] {
        if encode_app(schema, &opts(), &envelope(&rec, &ev), &mut buf) {
            out.push(std::mem::take(&mut buf));
        }
    }
    if encode_stats(schema, &opts(), &stats_event(), &mut buf) {
        out.push(std::mem::take(&mut buf));
    }
    if encode_pcap(schema, &opts(), &pcap_event(), &mut buf) {
        out.push(std::mem::take(&mut buf));
    }
    out
}

fn json(line: &[u8]) -> Value {
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(
        line.iter().filter(|&&b| b == b'\n').count(),
        1,
        "one line per event"
    );
    serde_json::from_slice(line)
        .unwrap_or_else(|e| panic!("invalid JSON {e}: {}", String::from_utf8_lossy(line)))
}

#[test]
fn every_json_schema_writes_one_valid_line_per_event() {
    for schema in [
        Schema::Native,
        Schema::Ecs,
        Schema::Eve,
        Schema::Gelf,
        Schema::Nanocorp,
    ] {
        let lines = all_lines(schema);
        assert_eq!(lines.len(), 6, "{schema:?}");
        for l in &lines {
            let v = json(l);
            assert!(v.is_object());
        }
    }
}

#[test]
fn native_flow_is_unchanged_and_app_events_carry_the_envelope() {
    let lines = all_lines(Schema::Native);
    let f = json(&lines[0]);
    assert_eq!(f["event_type"], "flow");
    assert_eq!(f["flow"]["bytes_toclient"], 1480);
    let h = json(&lines[1]);
    assert_eq!(h["event_type"], "http");
    assert_eq!(h["flow_id"], 5_164_307_337_712_871u64);
    assert_eq!(h["community_id"], "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    assert_eq!(h["direction"], "to_client");
    assert_eq!(h["http"]["method"], "GET");
    assert_eq!(h["http"]["user_agent"], "Mozilla/5.0 \"quoted\"");
    // body cut at max_body_bytes
    assert_eq!(h["http"]["request_body"], "a=1&");
    let d = json(&lines[2]);
    assert_eq!(d["dns"]["answers"][1]["rdata"], "93.184.216.34");
    assert_eq!(d["dns"]["answers"][2]["srv"]["port"], 5060);
    let t = json(&lines[3]);
    assert_eq!(t["tls"]["sni"], "www.ntop.org");
    assert_eq!(t["tls"]["version"], "TLS 1.2");
    let s = json(&lines[4]);
    assert_eq!(s["stats"]["packets"]["received"], 10);
    let p = json(&lines[5]);
    assert_eq!(p["event_type"], "pcap");
    assert_eq!(p["timestamp"], "2014-07-18T12:49:30.592064Z");
    assert_eq!(p["flow_id"], 5_164_307_337_712_871u64);
    assert_eq!(p["community_id"], "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    assert_eq!(p["pcap"]["rule"], "web");
    assert_eq!(p["pcap"]["flow_id"], 5_164_307_337_712_871u64);
    assert_eq!(p["pcap"]["packets"], 11);
    assert_eq!(p["pcap"]["bytes"], 2500);
    assert_eq!(p["pcap"]["captured_bytes"], 2011);
    assert_eq!(p["pcap"]["dropped_packets"], 0);
    assert_eq!(p["pcap"]["reason"], "http.host=www.ethereal.com");
    assert_eq!(p["pcap"]["first_ts"], "2014-07-18T12:49:30.458338Z");
    assert_eq!(p["pcap"]["last_ts"], "2014-07-18T12:49:30.592064Z");
    assert_eq!(p["pcap"]["format"], "pcapng");
    assert_eq!(p["pcap"]["truncated"], false);
    assert_eq!(p["pcap"]["sha256"].as_str().map(str::len), Some(64), "{p}");
}

#[test]
fn eve_layout_matches_suricata() {
    let lines = all_lines(Schema::Eve);
    let f = json(&lines[0]);
    assert_eq!(f["timestamp"], "2014-07-18T12:49:30.592064+0000");
    assert_eq!(f["event_type"], "flow");
    assert_eq!(f["ip_v"], 4);
    assert_eq!(f["proto"], "TCP");
    assert_eq!(f["flow"]["start"], "2014-07-18T12:49:30.458338+0000");
    assert_eq!(f["flow"]["age"], 0);
    assert_eq!(f["flow"]["state"], "closed");
    assert_eq!(f["flow"]["reason"], "timeout");
    assert_eq!(f["tcp"]["tcp_flags"], "1b");
    assert_eq!(f["tcp"]["syn"], true);
    assert_eq!(f["ether"]["src_mac"], "00:1c:42:00:00:08");
    let h = json(&lines[1]);
    assert_eq!(h["http"]["hostname"], "www.ethereal.com");
    assert_eq!(h["http"]["http_method"], "GET");
    assert_eq!(h["http"]["protocol"], "HTTP/1.1");
    assert_eq!(h["http"]["length"], 18070);
    assert_eq!(h["tx_id"], 0);
    let d = json(&lines[2]);
    assert_eq!(d["dns"]["version"], 3);
    assert_eq!(d["dns"]["type"], "response");
    assert_eq!(d["dns"]["flags"], "8180");
    assert_eq!(d["dns"]["rcode"], "NOERROR");
    assert_eq!(d["dns"]["queries"][0]["rrtype"], "A");
    let t = json(&lines[3]);
    assert_eq!(
        t["tls"]["issuerdn"],
        "C=US, O=Let's Encrypt, CN=Let's Encrypt Authority X3"
    );
    assert_eq!(t["tls"]["notbefore"], "2019-12-17T01:17:28");
    assert_eq!(t["tls"]["ja3"]["hash"], "e7d705a3286e19ea42f587b344ee6865");
    assert_eq!(t["tls"]["server_alpns"], serde_json::json!(["h2"]));
    let p = json(&lines[5]);
    assert_eq!(p["event_type"], "pcap");
    assert_eq!(p["timestamp"], "2014-07-18T12:49:30.592064+0000");
    assert_eq!(p["pcap"]["first_ts"], "2014-07-18T12:49:30.458338+0000");
    assert_eq!(p["pcap"]["packets"], 11);
}

use super::ecs_check::ecs_problems;

#[test]
fn ecs_output_uses_only_ecs_fields_of_the_right_type() {
    for line in all_lines(Schema::Ecs) {
        let v = json(&line);
        let problems = ecs_problems(&v);
        assert!(problems.is_empty(), "{problems:#?}\n{v}");
    }
    let lines = all_lines(Schema::Ecs);
    let f = json(&lines[0]);
    assert_eq!(f["source"]["ip"], "192.168.1.103");
    assert_eq!(f["destination"]["port"], 80);
    assert_eq!(f["source"]["mac"], "00-1C-42-00-00-08");
    assert_eq!(
        f["network"]["community_id"],
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    );
    assert_eq!(f["network"]["transport"], "tcp");
    assert_eq!(f["network"]["vlan"]["id"], "100");
    assert_eq!(f["network"]["inner"]["vlan"]["id"], "200");
    assert_eq!(f["event"]["duration"], 133_726_000u64);
    let h = json(&lines[1]);
    assert_eq!(h["url"]["original"], "/download.html?x=1");
    assert_eq!(h["url"]["path"], "/download.html");
    assert_eq!(h["url"]["query"], "x=1");
    assert_eq!(h["http"]["response"]["status_code"], 200);
    assert_eq!(h["http"]["version"], "1.1");
    let d = json(&lines[2]);
    assert_eq!(d["dns"]["question"]["name"], "www.example.com");
    assert_eq!(
        d["dns"]["resolved_ip"],
        serde_json::json!(["93.184.216.34"])
    );
    assert_eq!(d["dns"]["header_flags"], serde_json::json!(["RD", "RA"]));
    let t = json(&lines[3]);
    assert_eq!(t["tls"]["client"]["server_name"], "www.ntop.org");
    assert_eq!(t["tls"]["version"], "1.2");
    let p = json(&lines[5]);
    assert_eq!(p["event"]["category"], serde_json::json!(["file"]));
    assert_eq!(p["event"]["dataset"], "flowtap.pcap");
    assert_eq!(
        p["file"]["name"],
        "20140718T124930.458338Z_web_1-LQU9qZlK-B5F3KDmev6m5PMibrg.pcapng"
    );
    assert_eq!(p["file"]["directory"], "/var/lib/flowtap/pcap");
    assert_eq!(p["file"]["size"], 2500);
    assert_eq!(p["file"]["extension"], "pcapng");
    assert_eq!(p["rule"]["name"], "web");
    assert_eq!(p["flowtap"]["pcap"]["packets"], 11);
    assert_eq!(p["flowtap"]["flow_id"], 5_164_307_337_712_871u64);
}

#[test]
fn ecs_check_catches_wrong_names_and_types() {
    let bad = serde_json::json!({"source": {"ip": "nope", "portt": 1}, "event": {"kind": "flow"}});
    let p = ecs_problems(&bad);
    assert_eq!(p.len(), 3, "{p:?}");
}

#[test]
fn gelf_is_gelf_1_1() {
    for line in all_lines(Schema::Gelf) {
        let v = json(&line);
        let m = v.as_object().expect("object");
        assert_eq!(m["version"], "1.1");
        assert_eq!(m["host"], "probe-1");
        assert!(m["short_message"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(m["timestamp"].is_f64(), "{}", m["timestamp"]);
        assert_eq!(m["level"], 6);
        for (k, v) in m {
            if [
                "version",
                "host",
                "short_message",
                "timestamp",
                "level",
                "full_message",
            ]
            .contains(&k.as_str())
            {
                continue;
            }
            assert!(k.starts_with('_') && k != "_id", "{k}");
            assert!(
                k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
                "{k}"
            );
            assert!(v.is_string() || v.is_number(), "{k}: {v}");
        }
    }
    let f = json(&all_lines(Schema::Gelf)[0]);
    assert_eq!(f["timestamp"].as_f64(), Some(1_405_687_770.592_064));
    assert_eq!(
        f["short_message"],
        "flow TCP 192.168.1.103:52869 -> 195.154.172.150:80 fin"
    );
    assert_eq!(f["_flow_id"], "5164307337712871");
    let s = json(&all_lines(Schema::Gelf)[4]);
    assert_eq!(s["_stats_packets_received"], 10);
    assert_eq!(s["_stats_decode_errors_ipv4_truncated"], 1);
    let p = json(&all_lines(Schema::Gelf)[5]);
    assert_eq!(p["_event_type"], "pcap");
    assert_eq!(p["_pcap_rule"], "web");
    assert_eq!(p["_pcap_packets"], 11);
    assert_eq!(p["_flow_id"], "5164307337712871");
}

#[test]
fn nanocorp_events() {
    let lines = all_lines(Schema::Nanocorp);
    let f = json(&lines[0]);
    assert_eq!(f["event_type"], "flow");
    assert_eq!(f["seen_at"], 1_405_687_770_592u64);
    assert_eq!(f["source_ip"], "192.168.1.103");
    assert_eq!(f["source_mac"], "00:1c:42:00:00:08");
    assert_eq!(f["dest_mac"], "00:1c:42:00:00:18");
    assert_eq!(f["proto_path"], "/Ethernet/Vlan/Vlan/Ipv4/Tcp/Http/");
    assert_eq!(f["network_protocol"], "http");
    assert_eq!(f["event_id"].as_str().map(str::len), Some(16));
    let d = json(&lines[2]);
    assert_eq!(d["proto_path"], "/Ethernet/Vlan/Vlan/Ipv4/Tcp/Dns/");
    assert_eq!(d["dns"]["query"], "www.example.com");
    // deterministic ids
    assert_eq!(all_lines(Schema::Nanocorp)[0], lines[0]);
    let p = json(&lines[5]);
    assert_eq!(p["event_type"], "pcap");
    assert_eq!(p["seen_at"], 1_405_687_770_592u64);
    assert_eq!(p["pcap"]["packets"], 11);
    assert_eq!(p["pcap"]["first_ts"], 1_405_687_770_458u64);
    assert_ne!(p["event_id"], f["event_id"]);
}

#[test]
fn nutanix_lines() {
    let lines = all_lines(Schema::Nutanix);
    assert_eq!(lines.len(), 1, "flows only");
    let s = std::str::from_utf8(&lines[0]).expect("utf8");
    assert_eq!(
        s,
        "2014-07-18T12:49:30.592064Z SRC=192.168.1.103 DST=195.154.172.150 PROTO=TCP SPORT=52869 DPORT=80 ORIG: PKTS=6 BYTES=531 REPLY: PKTS=5 BYTES=1480 ACTION=MONITOR\n"
    );
    let p = nutanix::parse_line(s.trim_end()).expect("parses");
    assert_eq!(p.reply_bytes, 1480);
    assert_eq!(p.sport, 52869);
    assert_eq!(p.action, "MONITOR");
    assert_eq!(p.direction, None, "no scope, no DIRECTION");
}

#[test]
fn nutanix_direction_is_relative_to_the_scope() {
    use std::net::IpAddr;
    let block = |a: &str, l: u8| nutanix::ScopeBlock::new(a.parse::<IpAddr>().unwrap(), l).unwrap();
    let rec = flow(); // 192.168.1.103 -> 195.154.172.150
    for (scope, want) in [
        (vec![block("192.168.1.0", 24)], "outbound"),
        (vec![block("195.154.172.150", 32)], "inbound"),
        (
            vec![block("192.168.0.0", 16), block("195.154.0.0", 16)],
            "internal",
        ),
        (
            vec![block("10.0.0.0", 8), block("2001:db8::", 32)],
            "external",
        ),
        // Host bits are cleared: 192.168.1.200/24 is 192.168.1.0/24.
        (vec![block("192.168.1.200", 24)], "outbound"),
    ] {
        let o = opts().with_monitor_scope(scope.clone());
        let mut buf = Vec::new();
        encode_flow(Schema::Nutanix, &o, &rec, &mut buf);
        let s = std::str::from_utf8(&buf).unwrap();
        assert!(
            s.ends_with(&format!(" BYTES=1480 ACTION=MONITOR DIRECTION={want}\n")),
            "{scope:?}: {s}"
        );
        let p = nutanix::parse_line(s.trim_end()).expect("parses");
        assert_eq!(
            (p.action.as_str(), p.direction.as_deref()),
            ("MONITOR", Some(want))
        );
        assert_eq!(
            (p.src.as_str(), p.dst.as_str()),
            ("192.168.1.103", "195.154.172.150")
        );
        assert_eq!((p.orig_bytes, p.reply_bytes), (531, 1480));
    }
    assert!(nutanix::ScopeBlock::new("10.0.0.0".parse().unwrap(), 33).is_none());
}

#[test]
fn flow_encoding_allocates_nothing_once_warm() {
    // The buffer is the only growing thing; encoding twice into a cleared,
    // already-grown buffer keeps its capacity (no reallocation).
    let rec = flow();
    for schema in Schema::ALL {
        let mut buf = Vec::with_capacity(4096);
        encode_flow(schema, &opts(), &rec, &mut buf);
        let cap = buf.capacity();
        let ptr = buf.as_ptr();
        buf.clear();
        encode_flow(schema, &opts(), &rec, &mut buf);
        assert_eq!((buf.capacity(), buf.as_ptr()), (cap, ptr), "{schema:?}");
    }
}

#[test]
fn ecs_certificate_fingerprints_are_upper_case_without_colons() {
    let rec = flow();
    let mut buf = Vec::new();
    assert!(encode_app(
        Schema::Ecs,
        &opts(),
        &envelope(&rec, &tls()),
        &mut buf
    ));
    let v = json(&buf);
    let server = &v["tls"]["server"];
    assert_eq!(server["hash"]["sha1"], "DBA7E43E", "{server}");
    assert_eq!(server["x509"]["serial_number"], "03C56F66", "{server}");
    assert_eq!(server["not_before"], "2019-12-17T01:17:28", "{server}");
    assert_eq!(server["hash"]["sha256"], "ABCDEF", "{server}");
}
