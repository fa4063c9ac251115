//! Capture-file reading speed: W1 replayed from memory (and from the page
//! cache through `CaptureFile::open`), parsing only: no dissection.
//!
//! W1: `python3 /work/shared/bench/gen_bench_pcap.py -o /tmp/w1.pcap -n 200000 --seed 1`
//! (200,001 packets). Path from `FLOWTAP_BENCH_PCAP`, default `/tmp/w1.pcap`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use capture::{CaptureFile, PacketSource, Poll};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench_file_read(c: &mut Criterion) {
    let path = std::env::var_os("FLOWTAP_BENCH_PCAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/w1.pcap"));
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "\n*** SKIP file_read: cannot read {} ({e}). Generate W1 with\n    \
                 python3 /work/shared/bench/gen_bench_pcap.py -o /tmp/w1.pcap -n 200000 --seed 1\n",
                path.display()
            );
            return;
        }
    };
    // The first ~512 KiB, cut at a record boundary: stays in L2, so the
    // figure is the parser's own cost rather than DRAM misses on headers.
    let hot = {
        let mut f = CaptureFile::from_bytes(bytes.clone()).unwrap();
        let mut cut = 0;
        while let Ok(Some(_)) = f.next_packet() {
            if f.offset() > 512 << 10 {
                break;
            }
            cut = f.offset() as usize;
        }
        bytes[..cut].to_vec()
    };
    let mut mem = match CaptureFile::from_bytes(bytes) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("\n*** SKIP file_read: {}: {e}\n", path.display());
            return;
        }
    };
    // Count once, so throughput is per packet.
    let mut packets = 0u64;
    while let Ok(Some(_)) = mem.next_packet() {
        packets += 1;
    }
    eprintln!("file_read: {} has {packets} packets", path.display());

    let mut g = c.benchmark_group("file_read");
    g.throughput(Throughput::Elements(packets));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));

    let mut hot = CaptureFile::from_bytes(hot).unwrap();
    let mut hot_packets = 0u64;
    while let Ok(Some(_)) = hot.next_packet() {
        hot_packets += 1;
    }
    g.throughput(Throughput::Elements(hot_packets));
    g.bench_function("memory_hot_512k_next_packet", |b| {
        b.iter(|| {
            hot.rewind().unwrap();
            let mut sum = 0u64;
            while let Some(p) = hot.next_packet().unwrap() {
                sum = sum.wrapping_add(p.ts_ns ^ p.data.len() as u64);
            }
            black_box(sum)
        })
    });
    g.bench_function("memory_hot_512k_poll_batch_64", |b| {
        b.iter(|| {
            hot.rewind().unwrap();
            let mut sum = 0u64;
            while let Poll::Packets(_) = hot
                .poll_batch(64, |p| {
                    sum = sum.wrapping_add(p.ts_ns ^ p.data.len() as u64)
                })
                .unwrap()
            {}
            black_box(sum)
        })
    });
    g.throughput(Throughput::Elements(packets));

    // One iteration = the whole file; rewinding a memory source is free.
    g.bench_function("memory_next_packet", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                mem.rewind().unwrap();
                let t = Instant::now();
                let mut sum = 0u64;
                while let Some(p) = mem.next_packet().unwrap() {
                    sum = sum.wrapping_add(p.ts_ns ^ p.data.len() as u64);
                }
                total += t.elapsed();
                black_box(sum);
            }
            total
        })
    });

    g.bench_function("memory_poll_batch_64", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                mem.rewind().unwrap();
                let t = Instant::now();
                let mut sum = 0u64;
                while let Poll::Packets(_) = mem
                    .poll_batch(64, |p| {
                        sum = sum.wrapping_add(p.ts_ns ^ p.data.len() as u64)
                    })
                    .unwrap()
                {}
                total += t.elapsed();
                black_box(sum);
            }
            total
        })
    });

    // From the file: 8 MiB reads from the page cache, copied into the buffer.
    g.bench_function("file_next_packet", |b| {
        b.iter(|| {
            let mut f = CaptureFile::open(&path).unwrap();
            let mut sum = 0u64;
            while let Some(p) = f.next_packet().unwrap() {
                sum = sum.wrapping_add(p.ts_ns ^ p.data.len() as u64);
            }
            black_box(sum)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_file_read);
criterion_main!(benches);
