//! End-to-end throughput harness: loads a capture into memory and times the
//! whole offline pipeline (read, shard, decode, defrag, flow table, app
//! parsers) up to the workers' end. By default no sink: records are built
//! but not encoded. `--sink PATH` adds a file sink (`/dev/null` to encode
//! and hand over without disk writes; any `--output` URL works too, e.g.
//! `kafka://127.0.0.1:9092/w1-{type}`) in `--schema` (native): the time then
//! includes what encoding and handing events to the sink cost the workers.
//!
//! Usage: throughput [--workers N] [--repeat R] [--small-packets N] [--sink PATH [--schema S]]
//!                   [--export-rule RULE --export-dir DIR] [FILE]
//!   FILE defaults to $FLOWTAP_BENCH_PCAP or /tmp/w1.pcap (W1:
//!   `python3 ../shared/bench/gen_bench_pcap.py -o /tmp/w1.pcap -n 200000 --seed 1`).
//!   --small-packets N also runs N synthetic 64-byte UDP frames over 4096 flows.
//!   --export-rule (repeatable, `flowtap export --rule` syntax) turns PCAP
//!   export on, files written to --export-dir (emptied before each run); the
//!   time then includes finishing the files, and export MB/s is printed.
//! Prints one line per run and the median; peak RSS from /proc/self/status.

use std::time::Duration;

use capture::file::CaptureFile;
use engine::config::Config;
use engine::export::ExportRun;
use engine::offline::{replay, ReplayOptions, OFFLINE_POLICY};
use output::sink::SinkSpec;
use output::writer::LineWriter;
use output::{EncodeOptions, Schema, Volume};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut workers = 1usize;
    let mut repeat = 5usize;
    let mut small = 0usize;
    let mut sink: Option<String> = None;
    let mut schema = Schema::Native;
    let mut path = std::env::var("FLOWTAP_BENCH_PCAP").unwrap_or_else(|_| "/tmp/w1.pcap".into());
    let mut export_rules = Vec::new();
    let mut export_dir = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| fail(&format!("{name} needs a number")))
        };
        match a.as_str() {
            "--workers" => workers = num("--workers"),
            "--repeat" => repeat = num("--repeat").max(1),
            "--small-packets" => small = num("--small-packets"),
            "--sink" => sink = Some(args.next().unwrap_or_else(|| fail("--sink needs a path"))),
            "--schema" => {
                let s = args.next().unwrap_or_default();
                schema = Schema::parse(&s).unwrap_or_else(|| fail(&format!("no schema {s:?}")));
            }
            "--export-rule" => export_rules.push(
                args.next()
                    .unwrap_or_else(|| fail("--export-rule needs a rule")),
            ),
            "--export-dir" => {
                export_dir = args
                    .next()
                    .unwrap_or_else(|| fail("--export-dir needs a directory"))
            }
            "-h" | "--help" => {
                println!("usage: throughput [--workers N] [--repeat R] [--small-packets N] [--sink PATH [--schema S]] [FILE]");
                return;
            }
            _ => path = a,
        }
    }
    let mut cfg = Config::default();
    for r in &export_rules {
        let dir = (!export_dir.is_empty()).then_some(export_dir.as_str());
        cfg.export.rules.push(
            engine::export::rules::parse_compact_checked(r, dir)
                .unwrap_or_else(|e| fail(&e.to_string())),
        );
    }
    let out = Out { sink, schema };
    match std::fs::read(&path) {
        Ok(bytes) => measure(&path, bytes, &cfg, workers, repeat, &out),
        Err(e) => eprintln!("skipping {path}: {e} (generate W1 first, see --help)"),
    }
    if small > 0 {
        let bytes = synth_small_packets(small, 4096);
        measure("synthetic 64-byte UDP", bytes, &cfg, workers, repeat, &out);
    }
    println!("peak RSS: {} MiB", peak_rss_kib() / 1024);
}

fn fail(msg: &str) -> ! {
    eprintln!("throughput: {msg}");
    std::process::exit(2)
}

/// Where events go during a measurement.
struct Out {
    /// A file sink's path; `None`: no sink (nothing encoded).
    sink: Option<String>,
    schema: Schema,
}

fn measure(name: &str, bytes: Vec<u8>, cfg: &Config, workers: usize, repeat: usize, out: &Out) {
    let mut times: Vec<Duration> = Vec::new();
    let mut cpu: Vec<u64> = Vec::new();
    let mut pkts = 0;
    let mut wire_bytes = 0;
    let mut records = 0;
    let mut exported = (0u64, 0u64, 0u64);
    // Export runs: the replay alone (workers done), without starting the
    // writer and finishing its files.
    let mut pipeline: Vec<Duration> = Vec::new();
    for _ in 0..repeat {
        for r in &cfg.export.rules {
            let _ = std::fs::remove_dir_all(&r.dir);
            let _ = std::fs::create_dir_all(&r.dir);
        }
        let file = CaptureFile::from_bytes(bytes.clone())
            .unwrap_or_else(|e| fail(&format!("{name}: {e}")));
        let writer = out.sink.as_ref().map(|path| {
            // A path is a file sink; any sink URL works too (kafka://..).
            let mut spec =
                SinkSpec::parse_url(path).unwrap_or_else(|e| fail(&format!("sink {path}: {e}")));
            spec.schema = out.schema;
            LineWriter::start(
                vec![spec],
                EncodeOptions::default(),
                Volume::default(),
                OFFLINE_POLICY,
            )
            .unwrap_or_else(|e| fail(&format!("sink {path}: {e}")))
        });
        let sender = writer.as_ref().map(|(_, s)| s.clone());
        let start = std::time::Instant::now();
        let cpu0 = thread_cpu_ns();
        let export = ExportRun::start(&cfg.export, None, true)
            .unwrap_or_else(|e| fail(&format!("export: {e}")));
        let opts = ReplayOptions {
            sender,
            export: export.as_ref(),
            ..Default::default()
        };
        let s = replay(file, cfg, workers, opts).unwrap_or_else(|e| fail(&format!("{name}: {e}")));
        let mut elapsed = s.elapsed;
        if let Some(x) = export {
            pipeline.push(s.elapsed);
            let w = x.finish().unwrap_or_else(|e| fail(&format!("export: {e}")));
            elapsed = start.elapsed();
            let e = s.stats.export.unwrap_or_default();
            exported = (w.files_written, w.bytes_written, e.matches);
            if w.queue_drops + w.io_errors > 0 {
                eprintln!(
                    "export: {} queue drops, {} io errors",
                    w.queue_drops, w.io_errors
                );
            }
        }
        if let Some((w, s)) = writer {
            drop(s);
            w.join().unwrap_or_else(|e| fail(&format!("sink: {e}")));
        }
        pkts = s.stats.received;
        wire_bytes = s.stats.bytes;
        records = s.stats.records + s.stats.app_events;
        times.push(elapsed);
        cpu.push(thread_cpu_ns().saturating_sub(cpu0));
    }
    cpu.sort_unstable();
    // With one worker this thread is the worker: its own CPU time does not
    // count time other processes took from it (a shared machine).
    let worker_cpu = (workers == 1).then(|| cpu[cpu.len() / 2] as f64 / 1e6);
    times.sort();
    let median = times[times.len() / 2].as_secs_f64().max(1e-9);
    let best = times[0].as_secs_f64().max(1e-9);
    println!(
        "{name}: {pkts} packets, {wire_bytes} bytes, {records} events, {workers} worker(s), sink {}: \
         median {:.1} ms = {:.2} Mpps ({:.2} Mpps/worker), {:.2} Gbit/s; best {:.2} Mpps",
        out.sink.as_ref().map_or("none".to_string(), |p| format!("{p} ({})", out.schema.as_str())),
        median * 1e3,
        pkts as f64 / median / 1e6,
        pkts as f64 / median / 1e6 / workers as f64,
        wire_bytes as f64 * 8.0 / median / 1e9,
        pkts as f64 / best / 1e6,
    );
    if let Some(ms) = worker_cpu {
        println!("{name}: worker CPU time median {ms:.1} ms");
    }
    if !cfg.export.rules.is_empty() {
        pipeline.sort();
        let replay = pipeline[pipeline.len() / 2].as_secs_f64().max(1e-9);
        println!(
            "  export: {} matches, {} files, {:.1} MB written = {:.1} MB/s (median run); \
             replay alone (without writer start/finish) {:.1} ms = {:.2} Mpps",
            exported.2,
            exported.0,
            exported.1 as f64 / 1e6,
            exported.1 as f64 / 1e6 / median,
            replay * 1e3,
            pkts as f64 / replay / 1e6
        );
    }
}

/// A classic pcap of `n` minimum-size Ethernet/IPv4/UDP frames over `flows` flows.
fn synth_small_packets(n: usize, flows: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + n * (16 + 60));
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..n {
        let f = (i % flows.max(1)) as u32;
        let ts_us = 1_700_000_000_000_000u64 + i as u64;
        out.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&60u32.to_le_bytes());
        out.extend_from_slice(&64u32.to_le_bytes());
        let mut frame = [0u8; 60];
        frame[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut frame[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&46u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 0, (f >> 8) as u8, f as u8]);
        ip[16..20].copy_from_slice(&[10, 1, 0, 1]);
        let udp = &mut frame[34..42];
        udp[0..2].copy_from_slice(&(1024 + (f % 50_000) as u16).to_be_bytes());
        udp[2..4].copy_from_slice(&9u16.to_be_bytes());
        udp[4..6].copy_from_slice(&26u16.to_be_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

/// CPU time this thread has run, from /proc/thread-self/schedstat (ns).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
