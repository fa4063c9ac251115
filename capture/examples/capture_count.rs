//! Counts packets and bytes per second from an interface with one of the live
//! sources, one pinned worker per queue / socket. Stand-in for
//! `flowtap run --iface IF --capture-only` until the engine has it.
//!
//! ```text
//! capture_count --iface IF [--source xdp|xdp-native|xdp-generic|afpacket]
//!               [--workers N] [--seconds S] [--first-core C] [--busy-poll]
//!               [--shard software]
//! ```
//! Prints one line per second and a final `RESULT` line (key=value) for scripts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capture::afpacket::{AfPacketConfig, AfPacketSocket};
use capture::afxdp::{BusyPoll, Shard, XdpCapture, XdpConfig, XdpMode};
use capture::{worker, PacketSource, Poll, SourceStats};

struct Args {
    iface: String,
    source: String,
    workers: usize,
    seconds: u64,
    first_core: usize,
    busy_poll: bool,
    software_shard: bool,
}

fn parse() -> Args {
    let mut a = Args {
        iface: String::new(),
        source: "xdp".into(),
        workers: 1,
        seconds: 10,
        first_core: 0,
        busy_poll: false,
        software_shard: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--iface" => a.iface = v(),
            "--source" => a.source = v(),
            "--workers" => a.workers = v().parse().expect("--workers N"),
            "--seconds" => a.seconds = v().parse().expect("--seconds S"),
            "--first-core" => a.first_core = v().parse().expect("--first-core C"),
            "--busy-poll" => a.busy_poll = true,
            "--shard" => a.software_shard = v() == "software",
            _ => panic!("unknown argument {k}; see the source header for usage"),
        }
    }
    assert!(!a.iface.is_empty(), "--iface IF is required");
    a
}

#[derive(Default)]
struct Counters {
    pkts: AtomicU64,
    bytes: AtomicU64,
}

fn run_worker<S: PacketSource>(
    mut src: S,
    core: usize,
    c: Arc<Counters>,
    stop: Arc<AtomicBool>,
) -> SourceStats {
    if let Err(e) = worker::pin_to_core(core) {
        eprintln!("warning: {e}");
    }
    let (mut p, mut b) = (0u64, 0u64);
    let mut idle = 0u32;
    while !stop.load(Ordering::Relaxed) {
        match src.poll_batch(64, |pk| {
            p += 1;
            b += pk.data.len() as u64;
        }) {
            Ok(Poll::Packets(_)) => {
                idle = 0;
                c.pkts.store(p, Ordering::Relaxed);
                c.bytes.store(b, Ordering::Relaxed);
            }
            Ok(_) => {
                idle += 1;
                if idle > 1000 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            Err(e) => panic!("poll: {e}"),
        }
    }
    src.stats()
}

fn main() {
    let a = parse();
    let stop = Arc::new(AtomicBool::new(false));
    let cores = worker::allowed_cores();
    let core_of = |i: usize| cores[(a.first_core + i) % cores.len()];
    let mut handles = Vec::new();
    let mut counters = Vec::new();
    let mut xdp: Option<XdpCapture> = None;
    let mode;
    if a.source.starts_with("xdp") {
        let mut cfg = XdpConfig::new(&a.iface);
        cfg.mode = match a.source.as_str() {
            "xdp-native" => XdpMode::Native,
            "xdp-generic" => XdpMode::Generic,
            _ => XdpMode::Auto,
        };
        if a.busy_poll {
            cfg.busy_poll = Some(BusyPoll {
                usecs: 20,
                budget: 64,
            });
        }
        if a.software_shard {
            cfg.shard = Shard::Software { ring: 4096 };
        }
        let mut cap = XdpCapture::open(&cfg).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1)
        });
        let qs = cap.take_queues();
        mode = format!(
            "af_xdp-{}-{}",
            cap.attach_mode(),
            if qs.iter().all(|q| q.zero_copy()) {
                "zc"
            } else {
                "copy"
            }
        );
        for (i, q) in qs.into_iter().enumerate() {
            let c = Arc::new(Counters::default());
            counters.push(c.clone());
            let s = stop.clone();
            let core = core_of(i);
            handles.push(std::thread::spawn(move || {
                let sock = q.socket_stats().ok();
                let st = run_worker(q, core, c, s);
                (st, sock)
            }));
        }
        xdp = Some(cap);
    } else {
        let cfg = AfPacketConfig::new(&a.iface);
        mode = "af_packet-v3-fanout".into();
        let group = (std::process::id() & 0xffff) as u16;
        for i in 0..a.workers {
            let sock = AfPacketSocket::open(&cfg, group).unwrap_or_else(|e| {
                eprintln!("error: {e}");
                std::process::exit(1)
            });
            let c = Arc::new(Counters::default());
            counters.push(c.clone());
            let s = stop.clone();
            let core = core_of(i);
            handles.push(std::thread::spawn(move || {
                (run_worker(sock, core, c, s), None)
            }));
        }
    }
    eprintln!(
        "capturing on {} with {mode}, {} worker(s), {} s",
        a.iface,
        handles.len(),
        a.seconds
    );
    let start = Instant::now();
    let (mut last_p, mut last_b) = (0u64, 0u64);
    let mut first_pkt: Option<(Instant, u64)> = None;
    let mut last_change = start;
    let mut last_total = 0;
    while start.elapsed() < Duration::from_secs(a.seconds) {
        std::thread::sleep(Duration::from_secs(1));
        let p: u64 = counters
            .iter()
            .map(|c| c.pkts.load(Ordering::Relaxed))
            .sum();
        let b: u64 = counters
            .iter()
            .map(|c| c.bytes.load(Ordering::Relaxed))
            .sum();
        println!(
            "{:>5.1}s  {:>12} pps  {:>10.1} Mbit/s",
            start.elapsed().as_secs_f64(),
            p - last_p,
            (b - last_b) as f64 * 8.0 / 1e6
        );
        if p > 0 && first_pkt.is_none() {
            first_pkt = Some((Instant::now(), p));
        }
        if p != last_total {
            last_change = Instant::now();
            last_total = p;
        }
        last_p = p;
        last_b = b;
    }
    stop.store(true, Ordering::Relaxed);
    let mut stats = SourceStats::default();
    for h in handles {
        let (s, _) = h.join().expect("worker");
        stats.received += s.received;
        stats.kernel_dropped += s.kernel_dropped;
        stats.ring_full += s.ring_full;
        stats.invalid += s.invalid;
    }
    let filter = xdp
        .as_ref()
        .and_then(|c| c.filter_drops().ok())
        .unwrap_or_default();
    // rate over the busy period (first second with packets to the last change)
    let rate = match first_pkt {
        Some((t0, p0)) if last_change > t0 => {
            (last_total - p0) as f64 / (last_change - t0).as_secs_f64()
        }
        _ => 0.0,
    };
    println!(
        "RESULT mode={mode} received={} bytes={last_b} rx_pps={rate:.0} kernel_dropped={} ring_full={} invalid={} filtered={} unbound={}",
        stats.received,
        stats.kernel_dropped,
        stats.ring_full,
        stats.invalid,
        filter.filtered(),
        filter.unbound
    );
    drop(xdp);
}
