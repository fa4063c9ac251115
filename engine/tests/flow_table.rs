//! Flow tracking behaviour on crafted captures: timeouts, interim records,
//! eviction, port reuse, direction, TCP state.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;

enum L4 {
    Udp { payload: usize },
    Tcp { flags: u8, payload: usize },
}

struct Pkt {
    t_ms: u64,
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    l4: L4,
}

fn pcap(pkts: &[Pkt]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for p in pkts {
        let (proto, l4_len, payload) = match p.l4 {
            L4::Udp { payload } => (17u8, 8usize, payload),
            L4::Tcp { payload, .. } => (6u8, 20usize, payload),
        };
        let ip_len = 20 + l4_len + payload;
        let mut f = Vec::with_capacity(14 + ip_len);
        f.extend_from_slice(&[
            2, 0, 0, 0, 0, p.dst.0[3], 2, 0, 0, 0, 0, p.src.0[3], 0x08, 0x00,
        ]);
        f.extend_from_slice(&[
            0x45,
            0,
            (ip_len >> 8) as u8,
            ip_len as u8,
            0,
            1,
            0x40,
            0,
            64,
            proto,
            0,
            0,
        ]);
        f.extend_from_slice(&p.src.0);
        f.extend_from_slice(&p.dst.0);
        f.extend_from_slice(&p.src.1.to_be_bytes());
        f.extend_from_slice(&p.dst.1.to_be_bytes());
        match p.l4 {
            L4::Udp { .. } => {
                f.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
                f.extend_from_slice(&[0, 0]);
            }
            L4::Tcp { flags, .. } => {
                f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
            }
        }
        f.resize(14 + ip_len, 0x61);
        let ts_us = 1_700_000_000_000_000u64 + p.t_ms * 1000;
        out.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&f);
    }
    out
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = tmp_dir("flowtable").join(name);
    std::fs::write(&p, bytes).expect("write pcap");
    p
}

fn config(name: &str, text: &str) -> String {
    let p = tmp_dir("flowtable").join(name);
    std::fs::write(&p, text).expect("write config");
    p.to_string_lossy().into_owned()
}

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

fn udp(t_ms: u64, fwd: bool, sport: u16) -> Pkt {
    let (src, dst) = if fwd {
        ((A, sport), (B, 53))
    } else {
        ((B, 53), (A, sport))
    };
    Pkt {
        t_ms,
        src,
        dst,
        l4: L4::Udp { payload: 10 },
    }
}

fn tcp(t_ms: u64, fwd: bool, flags: u8, payload: usize) -> Pkt {
    let (src, dst) = if fwd {
        ((A, 40000), (B, 80))
    } else {
        ((B, 80), (A, 40000))
    };
    Pkt {
        t_ms,
        src,
        dst,
        l4: L4::Tcp { flags, payload },
    }
}

/// A whole connection from 10.0.0.1:40000 to 10.0.0.2:80 in 8 ms:
/// handshake, 100 bytes to the server and 300 back, FINs both ways.
fn connection() -> Vec<Pkt> {
    vec![
        tcp(0, true, SYN, 0),
        tcp(1, false, SYN | ACK, 0),
        tcp(2, true, ACK, 0),
        tcp(3, true, ACK | PSH, 100),
        tcp(4, false, ACK | PSH, 300),
        tcp(5, true, FIN | ACK, 0),
        tcp(6, false, FIN | ACK, 0),
        tcp(7, true, ACK, 0),
    ]
}

fn flows(run: &RunOutput) -> Vec<Value> {
    run.of_type("flow").into_iter().cloned().collect()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(u64::MAX)
}

#[test]
fn udp_idle_timeout_splits_a_flow() {
    let cap = write(
        "idle.pcap",
        &pcap(&[
            udp(0, true, 1000),
            udp(10, false, 1000),
            udp(200_000, true, 1000),
        ]),
    );
    let cfg = config("idle.toml", "[flow.timeouts]\nudp = 120\n");
    let run = run_flowtap(&cap, 1, &["--config", &cfg]);
    let f = flows(&run);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0]["flow"]["reason"], "idle_timeout");
    assert_eq!(n(&f[0]["flow"]["pkts_toserver"]), 1);
    assert_eq!(n(&f[0]["flow"]["pkts_toclient"]), 1);
    assert_eq!(f[1]["flow"]["reason"], "shutdown");
    assert_eq!(f[0]["community_id"], f[1]["community_id"]);
    assert_ne!(f[0]["flow_id"], f[1]["flow_id"]);
}

#[test]
fn tcp_connection_ends_with_fin_state_and_history() {
    let cap = write("tcp.pcap", &pcap(&connection()));
    let run = run_flowtap(&cap, 1, &[]);
    let f = flows(&run);
    assert_eq!(f.len(), 1);
    let f = &f[0];
    assert_eq!(f["src_ip"], "10.0.0.1");
    assert_eq!(f["dest_port"], 80);
    assert_eq!(f["flow"]["reason"], "fin");
    assert_eq!(f["tcp"]["state"], "SF");
    // The responder never sends a pure ACK here, so no "a".
    assert_eq!(f["tcp"]["history"], "ShADdFf");
    assert_eq!(f["tcp"]["tcp_flags_ts"], "1b");
    assert_eq!(f["tcp"]["tcp_flags_tc"], "1b");
    assert_eq!(n(&f["flow"]["pkts_toserver"]), 5);
    assert_eq!(n(&f["flow"]["bytes_toserver"]), 4 * 54 + 154);
    assert_eq!(f["src_mac"], "02:00:00:00:00:01");
}

#[test]
fn first_packet_syn_ack_makes_its_receiver_the_originator() {
    let cap = write(
        "synack.pcap",
        &pcap(&[tcp(0, false, SYN | ACK, 0), tcp(1, true, ACK, 0)]),
    );
    let run = run_flowtap(&cap, 1, &[]);
    let f = flows(&run);
    assert_eq!(f[0]["src_ip"], "10.0.0.1", "{:?}", f[0]);
    assert!(f[0]["tcp"]["history"]
        .as_str()
        .unwrap_or("")
        .starts_with('^'));
    assert_eq!(n(&f[0]["flow"]["pkts_toclient"]), 1);
}

#[test]
fn a_new_syn_after_close_starts_a_new_flow() {
    let cap = write(
        "reuse.pcap",
        &pcap(&[
            tcp(0, true, SYN, 0),
            tcp(1, false, SYN | ACK, 0),
            tcp(2, true, ACK, 0),
            tcp(3, true, FIN | ACK, 0),
            tcp(4, false, FIN | ACK, 0),
            tcp(5, true, ACK, 0),
            tcp(1000, true, SYN, 0),
            tcp(1001, false, SYN | ACK, 0),
        ]),
    );
    let run = run_flowtap(&cap, 1, &[]);
    let f = flows(&run);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0]["flow"]["reason"], "fin");
    assert_eq!(n(&f[0]["flow"]["pkts_toserver"]), 4);
    assert_eq!(f[1]["tcp"]["history"], "Sh");
    assert_eq!(run.stats()["stats"]["flows"]["tcp_port_reuse"], 1);
}

#[test]
fn long_flows_emit_interim_records_at_fixed_slices() {
    // One packet a second for 36 s, active timeout 10 s: slices 0..3.
    let pkts: Vec<Pkt> = (0..36).map(|i| udp(i * 1000, i % 2 == 0, 2000)).collect();
    let cap = write("active.pcap", &pcap(&pkts));
    let cfg = config("active.toml", "[flow.timeouts]\nactive = 10\n");
    for workers in [1, 2] {
        let run = run_flowtap(&cap, workers, &["--config", &cfg]);
        let f = flows(&run);
        assert_eq!(f.len(), 4, "{f:?}");
        let slices: Vec<u64> = f.iter().map(|r| n(&r["flow"]["slice"])).collect();
        assert_eq!(slices, vec![0, 1, 2, 3]);
        for r in &f[..3] {
            assert_eq!(r["flow"]["reason"], "active_timeout");
            assert_eq!(
                n(&r["flow"]["pkts_toserver"]) + n(&r["flow"]["pkts_toclient"]),
                10
            );
        }
        assert_eq!(f[3]["flow"]["reason"], "shutdown");
        let total: u64 = f
            .iter()
            .map(|r| n(&r["flow"]["pkts_toserver"]) + n(&r["flow"]["pkts_toclient"]))
            .sum();
        assert_eq!(total, 36);
        assert!(
            f.iter().all(|r| r["flow_id"] == f[0]["flow_id"]),
            "one flow, one id"
        );
    }
}

#[test]
fn a_full_table_evicts_and_counts_never_grows() {
    let pkts: Vec<Pkt> = (0..50)
        .map(|i| udp(i * 10, true, 3000 + i as u16))
        .collect();
    let cap = write("evict.pcap", &pcap(&pkts));
    let cfg = config("evict.toml", "[flow]\nmax_flows_per_worker = 10\n");
    let run = run_flowtap(&cap, 1, &["--config", &cfg]);
    let f = flows(&run);
    assert_eq!(f.len(), 50, "every flow is still reported");
    let stats = &run.stats()["stats"]["flows"];
    assert_eq!(n(&stats["evicted"]), 40, "{stats}");
    assert_eq!(
        f.iter()
            .filter(|r| r["flow"]["reason"] == "evicted")
            .count(),
        40
    );
    // The oldest flows were the ones evicted.
    assert_eq!(f[0]["src_port"], 3000);
}

/// A FIN shortens a connection's idle timeout to `tcp_closed` (the timeout
/// a flow keeps is worked out again when its TCP state changes): a late
/// packet seconds after the close starts a new flow instead of joining
/// the ended one, which the 60 s handshake timeout it had from its SYN
/// would have kept open.
#[test]
fn closing_a_connection_shortens_its_timeout() {
    let cap = write(
        "closed.pcap",
        &pcap(&{
            let mut pkts = connection();
            pkts.push(tcp(5_000, true, ACK, 0));
            pkts
        }),
    );
    let cfg = config(
        "closed.toml",
        "[flow.timeouts]\ntcp_syn = 60\ntcp_established = 600\ntcp_closed = 2\n",
    );
    let run = run_flowtap(&cap, 1, &["--config", &cfg]);
    let f = flows(&run);
    assert_eq!(f.len(), 2, "the late ACK is a flow of its own: {f:?}");
    assert_eq!(f[0]["flow"]["reason"], "fin");
    assert_eq!(n(&f[0]["flow"]["pkts_toserver"]), 5);
    assert_eq!(n(&f[1]["flow"]["pkts_toserver"]), 1);
    assert_eq!(f[0]["community_id"], f[1]["community_id"]);
}
