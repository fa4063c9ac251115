//! Sample records for encoder tests and benches.

use dissect::app::{AppEvent, AppProto, Direction};
use dissect::event::{AppEnvelope, DirectionStats, EndReason, FlowRecord, TunnelInfo};

pub fn flow() -> FlowRecord<'static> {
    FlowRecord {
        flow_id: 5_164_307_337_712_871,
        community_id: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
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
        vlans: &[100, 200],
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
        history: "ShADadFf",
        end_reason: EndReason::Fin,
        one_sided: None,
        app_transactions: 0,
        app_errors: 0,
        slice: 0,
        app_proto: Some("http"),
        tcp: None,
    }
}

pub fn http() -> AppEvent {
    AppEvent::example(AppProto::Http)
}

pub fn dns() -> AppEvent {
    AppEvent::example(AppProto::Dns)
}

pub fn tls() -> AppEvent {
    AppEvent::example(AppProto::Tls)
}

pub fn envelope<'a>(rec: &'a FlowRecord, ev: &'a AppEvent) -> AppEnvelope<'a> {
    AppEnvelope {
        flow_id: rec.flow_id,
        community_id: rec.community_id,
        ts_ns: rec.end_ns,
        src_ip: rec.src_ip,
        dst_ip: rec.dst_ip,
        src_port: rec.src_port,
        dst_port: rec.dst_port,
        proto: rec.proto,
        src_mac: rec.src_mac,
        dst_mac: rec.dst_mac,
        direction: Direction::ToClient,
        vlans: rec.vlans,
        event: ev,
    }
}

/// A small `stats` event at the [`flow`] record's end.
pub fn stats_event() -> crate::event::StatsEvent {
    use crate::event::StatValue::{Flag, Number, Object};
    crate::event::StatsEvent {
        ts_ns: 1_405_687_770_592_064_000,
        members: vec![
            ("workers".into(), Number(2)),
            (
                "packets".into(),
                Object(vec![
                    ("received".into(), Number(10)),
                    ("accounted".into(), Flag(true)),
                ]),
            ),
            (
                "decode_errors".into(),
                Object(vec![("ipv4.truncated".into(), Number(1))]),
            ),
        ],
    }
}

/// A finished per-flow pcap file of the [`flow`] record.
pub fn pcap_event() -> crate::event::PcapEvent<'static> {
    crate::event::PcapEvent {
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
