//! Traffic generator, stand-in for `flowtap gen` until the engine's CLI has it.
//!
//! ```text
//! gen --iface IF [--pcap FILE | --size BYTES [--flows N] [--count N]]
//!     [--method af-packet|xdp-live] [--pps N | --bps N] [--loops N]
//!     [--seconds S] [--core C]
//! ```
//! Prints a final `RESULT` line (key=value) for scripts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use capture::gen::{self, GenConfig, GenMethod, GenSource, SynthSpec};

fn main() {
    let mut iface = String::new();
    let mut pcap = None;
    let mut spec = SynthSpec::default();
    let (mut method, mut pps, mut bps, mut loops, mut seconds, mut core) =
        (GenMethod::AfPacket, None, None, 1u64, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--iface" => iface = v(),
            "--pcap" => pcap = Some(v()),
            "--size" => spec.frame_len = v().parse().expect("--size BYTES"),
            "--flows" => spec.flows = v().parse().expect("--flows N"),
            "--count" => spec.count = v().parse().expect("--count N"),
            "--method" => {
                method = match v().as_str() {
                    "xdp-live" => GenMethod::XdpLive,
                    _ => GenMethod::AfPacket,
                }
            }
            "--pps" => pps = Some(v().parse().expect("--pps N")),
            "--bps" => bps = Some(v().parse().expect("--bps N")),
            "--loops" => loops = v().parse().expect("--loops N"),
            "--seconds" => seconds = Some(v().parse::<f64>().expect("--seconds S")),
            "--core" => core = Some(v().parse::<usize>().expect("--core C")),
            _ => panic!("unknown argument {k}; see the source header for usage"),
        }
    }
    if let Some(c) = core {
        capture::worker::pin_to_core(c).expect("pin");
    }
    let source = match pcap {
        Some(p) => GenSource::Pcap(p.into()),
        None => GenSource::Synthetic(spec),
    };
    let mut cfg = GenConfig::new(iface, source);
    cfg.method = method;
    cfg.pps = pps;
    cfg.bps = bps;
    cfg.loops = loops;
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(s) = seconds {
        let st = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(s));
            st.store(true, Ordering::Relaxed);
        });
    }
    match gen::run(&cfg, &stop) {
        Ok(r) => println!(
            "RESULT sent={} bytes={} failed={} skipped={} secs={:.3} tx_pps={:.0}",
            r.sent,
            r.bytes,
            r.failed,
            r.skipped,
            r.elapsed.as_secs_f64(),
            r.pps()
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
