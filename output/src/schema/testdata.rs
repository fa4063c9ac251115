//! Sample records for encoder tests and benches.

use dissect::app::dns::{DnsQuestion, DnsRdata, DnsRecord};
use dissect::app::http::HttpHeader;
use dissect::app::tls::TlsCert;
use dissect::app::{AppEvent, Direction, DnsEvent, HttpEvent, TlsEvent};
use dissect::event::{AppEnvelope, DirectionStats, EndReason, FlowRecord, TunnelInfo};

pub fn flow() -> FlowRecord {
    FlowRecord {
        flow_id: 5_164_307_337_712_871,
        community_id: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=".into(),
        start_ns: 1_405_687_770_458_338_000,
        end_ns: 1_405_687_770_592_064_000,
        src_ip: "192.168.1.103"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        dst_ip: "195.154.172.150"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        src_port: 52869,
        dst_port: 80,
        proto: 6,
        src_mac: Some([0, 0x1c, 0x42, 0, 0, 8]),
        dst_mac: Some([0, 0x1c, 0x42, 0, 0, 0x18]),
        vlans: vec![100, 200],
        tunnel: Some(TunnelInfo {
            kind: "vxlan",
            outer_src: "192.0.2.1"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            outer_dst: "192.0.2.2"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            id: Some(5001),
        }),
        orig: DirectionStats {
            packets: 6,
            bytes: 531,
            tcp_flags: 0x1b,
        },
        resp: DirectionStats {
            packets: 5,
            bytes: 1480,
            tcp_flags: 0x1b,
        },
        conn_state: "SF",
        history: "ShADadFf".into(),
        end_reason: EndReason::Fin,
        slice: 0,
        app_proto: Some("http"),
        tcp: None,
    }
}

pub fn http() -> AppEvent {
    AppEvent::Http(Box::new(HttpEvent {
        tx_id: 0,
        has_request: true,
        has_response: true,
        method: Some("GET".into()),
        uri: Some("/download.html?x=1".into()),
        host: Some("www.ethereal.com".into()),
        host_port: Some(8080),
        version: Some("HTTP/1.1".into()),
        user_agent: Some("Mozilla/5.0 \"quoted\"".into()),
        referer: Some("http://www.ethereal.com/development.html".into()),
        request_headers: vec![HttpHeader {
            name: "Host".into(),
            value: "www.ethereal.com".into(),
        }],
        request_body: b"a=1&b=\x00\xff".to_vec(),
        request_body_len: 9,
        response_version: Some("HTTP/1.1".into()),
        status: Some(200),
        reason: Some("OK".into()),
        content_type: Some("text/html".into()),
        response_body_len: 18070,
        latency_ns: Some(1_500_000),
        request_ts_ns: Some(1_084_443_432_328_438_000),
        ..HttpEvent::default()
    }))
}

pub fn dns() -> AppEvent {
    AppEvent::Dns(Box::new(DnsEvent {
        id: 60246,
        opcode: 0,
        has_query: true,
        has_response: true,
        queries: vec![DnsQuestion {
            name: "www.example.com".into(),
            rtype: 1,
            rclass: 1,
        }],
        query_flags: Some(0x0120),
        response_flags: Some(0x8180),
        rd: true,
        ra: true,
        rcode: Some(0),
        answers: vec![
            DnsRecord {
                name: "www.example.com".into(),
                rtype: 5,
                rclass: 1,
                ttl: 300,
                data: DnsRdata::Name("example.com".into()),
            },
            DnsRecord {
                name: "example.com".into(),
                rtype: 1,
                rclass: 1,
                ttl: 300,
                data: DnsRdata::A([93, 184, 216, 34].into()),
            },
            DnsRecord {
                name: "_sip._udp.example.com".into(),
                rtype: 33,
                rclass: 1,
                ttl: 275,
                data: DnsRdata::Srv {
                    priority: 10,
                    weight: 1,
                    port: 5060,
                    target: "sip.example.com".into(),
                },
            },
        ],
        latency_ns: Some(15_030_000),
        ..DnsEvent::default()
    }))
}

pub fn tls() -> AppEvent {
    AppEvent::Tls(Box::new(TlsEvent {
        has_client_hello: true,
        sni: Some("www.ntop.org".into()),
        client_alpns: vec!["h2".into(), "http/1.1".into()],
        ja3: Some("771,4865-4866,0-23,29-23,0".into()),
        ja3_hash: Some("e7d705a3286e19ea42f587b344ee6865".into()),
        ja4: Some("t13d1814h2_29a2cd9e9f10_d267a5f792d4".into()),
        has_server_hello: true,
        version: Some(0x0303),
        cipher: Some(0xc02f),
        server_alpn: Some("h2".into()),
        ja3s: Some("771,49199,65281-0".into()),
        ja3s_hash: Some("ccc514751b175866924439bdbb5bba34".into()),
        certificates: vec![TlsCert {
            subject: "CN=www.ntop.org".into(),
            issuer: "C=US, O=Let's Encrypt, CN=Let's Encrypt Authority X3".into(),
            serial: "03:C5:6F:66".into(),
            not_before: 1_576_545_448,
            not_after: 1_584_321_448,
            san_dns: vec!["www.ntop.org".into()],
            sha1: "db:a7:e4:3e".into(),
            sha256: "abcdef".into(),
            der_len: 1200,
            ..TlsCert::default()
        }],
        ..TlsEvent::default()
    }))
}

pub fn envelope<'a>(rec: &'a FlowRecord, ev: &'a AppEvent) -> AppEnvelope<'a> {
    AppEnvelope {
        flow_id: rec.flow_id,
        community_id: &rec.community_id,
        ts_ns: rec.end_ns,
        src_ip: rec.src_ip,
        dst_ip: rec.dst_ip,
        src_port: rec.src_port,
        dst_port: rec.dst_port,
        proto: rec.proto,
        src_mac: rec.src_mac,
        dst_mac: rec.dst_mac,
        direction: Direction::ToClient,
        vlans: &rec.vlans,
        event: ev,
    }
}

pub const STATS_LINE: &[u8] = br#"{"timestamp":"2014-07-18T12:49:30.592064Z","event_type":"stats","stats":{"workers":2,"packets":{"received":10,"accounted":true},"decode_errors":{"ipv4.truncated":1}}}
"#;

/// A finished per-flow pcap file of the [`flow`] record.
pub fn pcap_event() -> crate::pcap::PcapEvent<'static> {
    crate::pcap::PcapEvent {
        ts_ns: 1_405_687_770_592_064_000,
        path:
            "/var/lib/flowtap/pcap/20140718T124930.458338Z_web_1-LQU9qZlK-B5F3KDmev6m5PMibrg.pcapng",
        rule: "web",
        flow_id: Some(5_164_307_337_712_871),
        community_id: Some("1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
        reason: Some("http.host=www.ethereal.com"),
        worker: Some(1),
        format: "pcapng",
        compression: None,
        packets: 11,
        captured_bytes: 2011,
        file_bytes: 2500,
        dropped_packets: 0,
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        first_ts_ns: Some(1_405_687_770_458_338_000),
        last_ts_ns: Some(1_405_687_770_592_064_000),
        truncated: false,
    }
}
