//! PCAP export writer throughput, end to end: a worker's handle copies
//! frames into chunks, the writer thread encodes them, writes (optionally
//! gzip) and hashes (sha256) them, rotating and renaming files. Lossless
//! handles (`block_when_full`), so the figure is what the writer sustains.
//! Files go to `$FLOWTAP_BENCH_DIR` (default: the system temp dir) in a ring
//! bounded by retention, removed after each run.
//!
//! `cargo bench -p benches --bench pcap_writer`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use output::pcap::{
    ExportAction, ExportConfig, ExportRuleOutput, FlowLabel, PcapCompression, PcapFormat,
    PcapWriter,
};

/// Frames per benchmark iteration.
const BATCH: u64 = 1024;
/// Frames handed over per `flush` (a worker's batch).
const WORKER_BATCH: u64 = 32;

fn bench_dir(tag: &str) -> PathBuf {
    let base = std::env::var_os("FLOWTAP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join(format!("flowtap-bench-pcap-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("bench dir");
    d
}

fn rule(dir: PathBuf, action: ExportAction, compression: PcapCompression) -> ExportRuleOutput {
    ExportRuleOutput {
        name: "bench".into(),
        dir,
        action,
        format: PcapFormat::Pcapng,
        snaplen: 0,
        compression,
        retain_files: Some(8),
        retain_bytes: Some(512 << 20),
        perms: output::perms::FilePerms::default(),
    }
}

/// Frames that look like traffic to gzip (headers repeat, payload varies).
fn frames(len: usize) -> Vec<Vec<u8>> {
    (0..64u64)
        .map(|s| {
            let mut x = s.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut f: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            f[..len.min(54)].fill(0x45);
            f
        })
        .collect()
}

/// Runs `iters` batches through a fresh writer and returns the time taken
/// from the first frame to the last file renamed.
fn run(iters: u64, r: &ExportRuleOutput, per_flow: Option<u64>, frames: &[Vec<u8>]) -> Duration {
    let writer = PcapWriter::start(
        ExportConfig {
            rules: vec![r.clone()],
            queue_chunks: 64,
            block_when_full: true,
        },
        None,
    )
    .expect("start");
    let mut h = writer.handle();
    let t = Instant::now();
    let mut n = 0u64;
    let mut flows = Vec::new();
    let mut next_flow = 0u64;
    for _ in 0..iters {
        for _ in 0..BATCH {
            let f = &frames[(n % frames.len() as u64) as usize];
            let ts = 1_700_000_000_000_000_000 + n * 1000;
            match per_flow {
                None => h.shared_packet(0, 1, ts, f.len() as u32, f),
                Some(open) => {
                    if flows.len() < open as usize {
                        next_flow += 1;
                        let cid = format!("1:bench{next_flow}");
                        let l = FlowLabel {
                            flow_id: next_flow,
                            community_id: &cid,
                            first_ts_ns: ts,
                            linktype: 1,
                            worker: 0,
                            reason: "bench",
                        };
                        flows.push((h.open(0, &l), 0u32));
                    }
                    let k = (n % flows.len() as u64) as usize;
                    h.packet(flows[k].0, ts, f.len() as u32, f);
                    flows[k].1 += 1;
                    if flows[k].1 == 256 {
                        h.close(flows[k].0);
                        flows.swap_remove(k);
                    }
                }
            }
            n += 1;
            if n.is_multiple_of(WORKER_BATCH) {
                h.flush();
            }
        }
    }
    for (id, _) in flows {
        h.close(id);
    }
    drop(h);
    writer.join().expect("join");
    t.elapsed()
}

fn pcap_writer(c: &mut Criterion) {
    let mut g = c.benchmark_group("pcap_writer");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for (name, len, per_flow, compression) in [
        ("shared_1000B", 1000usize, None, PcapCompression::None),
        ("shared_64B", 64, None, PcapCompression::None),
        (
            "per_flow_64open_1000B",
            1000,
            Some(64),
            PcapCompression::None,
        ),
        ("shared_gzip_1000B", 1000, None, PcapCompression::Gzip),
    ] {
        let dir = bench_dir(name);
        let action = match per_flow {
            None => ExportAction::Shared {
                rotate_bytes: 64 << 20,
                rotate_secs: None,
            },
            Some(_) => ExportAction::PerFlow {
                max_packets: None,
                max_bytes: None,
            },
        };
        let r = rule(dir.clone(), action, compression);
        let fr = frames(len);
        g.throughput(Throughput::Bytes(BATCH * len as u64));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| run(iters, &r, per_flow, &fr))
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
    g.finish();
}

criterion_group!(benches, pcap_writer);
criterion_main!(benches);
