//! L2–L4 decode + flow key per packet over W1 (synthetic mixed traffic).
//!
//! Generate the input once:
//!   python3 shared/bench/gen_bench_pcap.py -o /tmp/w1.pcap -n 200000 --seed 1
//! and point FLOWTAP_BENCH_PCAP at it if it lives elsewhere. One criterion
//! iteration is one packet (the packets are cycled), so the reported time
//! is the time per packet.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dissect::flow::{shard_hash, FlowKey, KeyConfig};
use dissect::packet::{decode, DecodeConfig, Decoded};

/// All packets of a classic pcap, back to back in one buffer (as frames sit
/// in a capture ring), with their (offset, length).
struct Packets {
    link: u32,
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

fn load(path: &PathBuf) -> Option<Packets> {
    let file = std::fs::read(path).ok()?;
    let magic: [u8; 4] = file.get(..4)?.try_into().ok()?;
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return None,
    };
    let rd = |off: usize| -> Option<u32> {
        let b: [u8; 4] = file.get(off..off + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let link = rd(20)? & 0x0fff_ffff;
    let mut bytes = Vec::with_capacity(file.len());
    let mut spans = Vec::new();
    let mut off = 24;
    while let Some(incl) = rd(off + 8) {
        let start = off + 16;
        let Some(data) = file.get(start..start + incl as usize) else {
            break;
        };
        spans.push((bytes.len(), data.len()));
        bytes.extend_from_slice(data);
        off = start + incl as usize;
    }
    Some(Packets { link, bytes, spans })
}

fn bench_decode(c: &mut Criterion) {
    let path = std::env::var_os("FLOWTAP_BENCH_PCAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/w1.pcap"));
    let Some(pkts) = load(&path) else {
        eprintln!(
            "decode bench skipped: no classic pcap at {} (generate it with \
             `python3 shared/bench/gen_bench_pcap.py -o /tmp/w1.pcap -n 200000 --seed 1` \
             or set FLOWTAP_BENCH_PCAP)",
            path.display()
        );
        return;
    };
    let cfg = DecodeConfig::default();
    let kcfg = KeyConfig::default();
    let n = pkts.spans.len();
    eprintln!("decode bench: {n} packets from {}", path.display());

    // "w1": every packet in turn, so frames come from DRAM as in a long
    // capture ring; "w1_hot": the first 4096 packets (~2.7 MB), frames in
    // cache as after NIC DMA into the LLC; this is the decoder's own cost.
    for (name, count) in [("w1", n), ("w1_hot", n.min(4096))] {
        let mut group = c.benchmark_group(format!("decode/{name}"));
        group.throughput(Throughput::Elements(1));
        let mut i = 0;
        group.bench_function("decode_only", |b| {
            b.iter(|| {
                let (off, len) = pkts.spans[i];
                i = if i + 1 == count { 0 } else { i + 1 };
                let mut d = Decoded::default();
                decode(pkts.link, &pkts.bytes[off..off + len], &cfg, &mut d);
                black_box(&d);
            })
        });
        let mut i = 0;
        group.bench_function("decode_flowkey_hash", |b| {
            b.iter(|| {
                let (off, len) = pkts.spans[i];
                i = if i + 1 == count { 0 } else { i + 1 };
                let mut d = Decoded::default();
                decode(pkts.link, &pkts.bytes[off..off + len], &cfg, &mut d);
                let shard = shard_hash(&d);
                let key = FlowKey::from_decoded(&d, &kcfg).map(|(k, fwd)| (k.hash64(), fwd));
                black_box((shard, key, d.payload.len()));
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
