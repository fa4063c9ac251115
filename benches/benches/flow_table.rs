//! Flow tracking per packet: decode + key + table lookup/update (+ timer
//! wheel housekeeping per batch), app layer off, records encoded but not
//! written. Two workloads: W1's first 50,000 packets (realistic mix, every
//! flow's whole life) and 64-byte UDP frames over 65,536 live flows (table
//! pressure, lookups missing the cache).

use capture::{LinkType, Packet};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::config::Config;
use engine::worker::{EventBatch, Worker};

struct Frames {
    ts: Vec<u64>,
    data: Vec<Vec<u8>>,
    link: u32,
}

fn w1(limit: usize) -> Option<Frames> {
    let path = std::env::var("FLOWTAP_BENCH_PCAP").unwrap_or_else(|_| "/tmp/w1.pcap".into());
    let mut f = match capture::file::CaptureFile::open(std::path::Path::new(&path)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("skipping W1 flow-table bench: {e} (generate W1, see README)");
            return None;
        }
    };
    let mut out = Frames {
        ts: Vec::new(),
        data: Vec::new(),
        link: 1,
    };
    while out.data.len() < limit {
        match f.next_packet() {
            Ok(Some(p)) => {
                out.ts.push(p.ts_ns);
                out.link = p.link.0;
                out.data.push(p.data.to_vec());
            }
            _ => break,
        }
    }
    Some(out)
}

fn small_udp(n: usize, flows: u32) -> Frames {
    let mut out = Frames {
        ts: Vec::new(),
        data: Vec::new(),
        link: 1,
    };
    for i in 0..n {
        let f = i as u32 % flows;
        let mut frame = vec![0u8; 60];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        frame[16..18].copy_from_slice(&46u16.to_be_bytes());
        frame[22] = 64;
        frame[23] = 17;
        frame[26..30].copy_from_slice(&[10, 0, (f >> 8) as u8, f as u8]);
        frame[30..34].copy_from_slice(&[10, 1, 0, 1]);
        frame[34..36].copy_from_slice(&(1024u16 + (f % 50_000) as u16).to_be_bytes());
        frame[36..38].copy_from_slice(&9u16.to_be_bytes());
        frame[38..40].copy_from_slice(&26u16.to_be_bytes());
        out.ts.push(1_700_000_000_000_000_000 + i as u64 * 1_000);
        out.data.push(frame);
    }
    out
}

fn run(frames: &Frames, cfg: &Config) -> u64 {
    let mut w = Worker::new(cfg, EventBatch::new(None, 256 << 10));
    for (i, (d, ts)) in frames.data.iter().zip(&frames.ts).enumerate() {
        w.process(&Packet {
            ts_ns: *ts,
            data: d,
            orig_len: d.len() as u32,
            link: LinkType(frames.link),
        });
        if i % 256 == 255 {
            w.end_batch();
        }
    }
    let last = frames.ts.last().copied().unwrap_or(0);
    w.finish(last).records
}

fn bench(c: &mut Criterion) {
    let mut cfg = Config::default();
    cfg.app.enabled = false;
    let mut g = c.benchmark_group("flow_table");
    if let Some(frames) = w1(50_000) {
        g.throughput(Throughput::Elements(frames.data.len() as u64));
        g.bench_function("w1_50k_flow_only", |b| b.iter(|| run(&frames, &cfg)));
    }
    let small = small_udp(200_000, 65_536);
    g.throughput(Throughput::Elements(small.data.len() as u64));
    g.bench_function("udp64_65k_flows", |b| b.iter(|| run(&small, &cfg)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
