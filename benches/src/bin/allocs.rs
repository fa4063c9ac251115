//! Allocations on the worker, per packet and per flow: one `Worker` runs on
//! this thread over a capture held in memory, and a counting allocator
//! (around mimalloc) counts what this thread allocates while it does. The
//! first half of the capture warms the tables up; the second half is
//! measured. Events are built (and, with `--encode`, encoded into the
//! worker's batches for a sink that drops them) exactly as in a replay.
//!
//! Usage: allocs [--flow-only] [FILE]   (FILE: $FLOWTAP_BENCH_PCAP or /tmp/w1.pcap)
//!
//! Flow-only is `[app] enabled = false` with only flow records: the
//! per-packet path. The full pipeline adds the parsers and their events.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

use capture::file::CaptureFile;
use engine::config::Config;
use engine::worker::{EventBatch, Worker};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to mimalloc; the counters are
// const-initialised thread-locals that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size());
        // SAFETY: the caller's contract is passed through.
        unsafe { mimalloc::MiMalloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count(l.size());
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new);
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.realloc(p, l, new) }
    }
}

fn count(bytes: usize) {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    let _ = BYTES.try_with(|c| c.set(c.get() + bytes as u64));
}

fn counters() -> (u64, u64) {
    (ALLOCS.with(Cell::get), BYTES.with(Cell::get))
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let mut flow_only = false;
    let mut path = std::env::var("FLOWTAP_BENCH_PCAP").unwrap_or_else(|_| "/tmp/w1.pcap".into());
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--flow-only" => flow_only = true,
            "-h" | "--help" => {
                println!("usage: allocs [--flow-only] [FILE]");
                return;
            }
            _ => path = a,
        }
    }
    let mut cfg = Config::default();
    if flow_only {
        cfg.app.enabled = false;
    }
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Copies of the packets, so reading the file allocates nothing later.
    let mut file = CaptureFile::from_bytes(bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut packets: Vec<(u64, u32, capture::LinkType, Vec<u8>)> = Vec::new();
    while let Ok(Some(p)) = file.next_packet() {
        packets.push((p.ts_ns, p.orig_len, p.link, p.data.to_vec()));
    }
    let half = packets.len() / 2;
    let mut worker = Worker::new(&cfg, EventBatch::new(None, 0));
    let run = |w: &mut Worker, range: &[(u64, u32, capture::LinkType, Vec<u8>)]| {
        for (i, (ts_ns, orig_len, link, data)) in range.iter().enumerate() {
            w.process(&capture::Packet {
                ts_ns: *ts_ns,
                data,
                orig_len: *orig_len,
                link: *link,
            });
            if i % 64 == 63 {
                w.end_batch();
            }
        }
        w.end_batch();
    };
    run(&mut worker, &packets[..half]);
    let created_before = worker.stats().flows.created;
    let (a0, b0) = counters();
    run(&mut worker, &packets[half..]);
    let (a1, b1) = counters();
    let s = worker.stats();
    let measured = (packets.len() - half) as f64;
    let flows = (s.flows.created - created_before) as f64;
    let ended = s.flows.expired + s.flows.evicted;
    println!(
        "{}: {} packets measured (second half of {path}), {} flows created in them, {} ended so far",
        if flow_only { "flow-only" } else { "full pipeline" },
        measured,
        flows,
        ended,
    );
    println!(
        "  worker allocations: {} ({:.3} per packet, {:.2} per new flow), {:.1} bytes per packet",
        a1 - a0,
        (a1 - a0) as f64 / measured,
        (a1 - a0) as f64 / flows.max(1.0),
        (b1 - b0) as f64 / measured
    );
}
