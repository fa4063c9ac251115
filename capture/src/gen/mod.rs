//! `flowtap gen`: a traffic generator for line-rate tests. Replays a capture
//! file (Ethernet frames) or synthesises UDP flows of a given frame size into
//! an interface, as fast as possible or at a set pps / bps, looping N times.
//!
//! Two transmit methods:
//! - [`GenMethod::XdpLive`]: a BPF program run with `BPF_PROG_TEST_RUN` and
//!   `BPF_F_TEST_XDP_LIVE_FRAMES` that rewrites each frame in place and sends
//!   it with XDP_TX (millions of pps from one core). The frames go through the
//!   driver's `ndo_xdp_xmit`; on a veth that needs the peer to have an XDP
//!   program or GRO enabled (NAPI), else the kernel drops them silently.
//! - [`GenMethod::AfPacket`]: `sendmmsg` on an AF_PACKET socket with
//!   PACKET_QDISC_BYPASS. Slower but delivers everywhere; the default.
//!
//! Never point it at an interface that leads off the machine unless you mean to.

mod packet;
mod synth;
mod xdp;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use synth::{synth_frame, SynthSpec};

use crate::sys;

/// What to send.
#[derive(Clone, Debug)]
pub enum GenSource {
    /// Replay the Ethernet frames of a pcap/pcapng file, in order.
    Pcap(PathBuf),
    /// Synthetic UDP/IPv4 flows.
    Synthetic(SynthSpec),
    /// Frames given by the caller (tests).
    Frames(Vec<Vec<u8>>),
}

/// How to send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GenMethod {
    /// AF_PACKET (always delivers).
    #[default]
    AfPacket,
    /// BPF_F_TEST_XDP_LIVE_FRAMES + XDP_TX (fast; see the module docs).
    XdpLive,
}

/// Generator configuration.
#[derive(Clone, Debug)]
pub struct GenConfig {
    pub iface: String,
    pub source: GenSource,
    pub method: GenMethod,
    /// Packets per second (`None` and no `bps`: as fast as possible).
    pub pps: Option<u64>,
    /// Bits per second of frame bytes (L2 header to end of payload, no FCS,
    /// preamble or gap). Ignored when `pps` is set.
    pub bps: Option<u64>,
    /// Times to send the whole sequence (file, or `SynthSpec::count` frames).
    pub loops: u64,
}

impl GenConfig {
    pub fn new(iface: impl Into<String>, source: GenSource) -> GenConfig {
        GenConfig {
            iface: iface.into(),
            source,
            method: GenMethod::AfPacket,
            pps: None,
            bps: None,
            loops: 1,
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GenReport {
    /// Frames handed to the kernel for transmission.
    pub sent: u64,
    /// Frame bytes sent.
    pub bytes: u64,
    /// Frames the kernel refused (AF_PACKET send errors).
    pub failed: u64,
    /// Frames of the capture file skipped (not Ethernet, or too big).
    pub skipped: u64,
    pub elapsed: Duration,
}

impl GenReport {
    pub fn pps(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Generator errors. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error(
        "interface {0:?} does not exist: check the name with `ip link` (and the network namespace)"
    )]
    NoSuchInterface(String),
    #[error("permission denied: run as root (or with CAP_NET_RAW, and CAP_BPF + CAP_NET_ADMIN for xdp-live)")]
    NotRoot,
    #[error("reading {path}: {source}")]
    File {
        path: PathBuf,
        source: crate::file::FileError,
    },
    #[error("nothing to send: {0}")]
    Empty(String),
    #[error("xdp-live generator: {0} (use method af-packet instead)")]
    XdpLive(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

/// Maximum frame length the generator sends (no jumbo frames).
pub const MAX_FRAME: usize = 2048;

/// Loads the frames to send, skipping non-Ethernet / oversized records.
fn load_frames(src: &GenSource) -> Result<(Vec<Vec<u8>>, u64), GenError> {
    match src {
        GenSource::Frames(f) => Ok((f.clone(), 0)),
        GenSource::Synthetic(s) => {
            Ok(((0..s.flows.max(1)).map(|i| synth_frame(s, i)).collect(), 0))
        }
        GenSource::Pcap(path) => {
            let ferr = |source| GenError::File {
                path: path.clone(),
                source,
            };
            let mut f = crate::file::CaptureFile::open(path).map_err(ferr)?;
            let (mut out, mut skipped) = (Vec::new(), 0u64);
            while let Some(p) = f.next_packet().map_err(ferr)? {
                if p.link != crate::LinkType::ETHERNET
                    || p.data.len() < 14
                    || p.data.len() > MAX_FRAME
                {
                    skipped += 1;
                    continue;
                }
                out.push(p.data.to_vec());
            }
            Ok((out, skipped))
        }
    }
}

/// Paces sending: how many frames may go now.
pub(crate) struct Pacer {
    start: Instant,
    pps: Option<f64>,
    allowed_sent: u64,
}

impl Pacer {
    fn new(pps: Option<f64>) -> Pacer {
        Pacer {
            start: Instant::now(),
            pps,
            allowed_sent: 0,
        }
    }

    /// Blocks until at least one frame may be sent; returns how many (≤ `max`).
    fn grant(&mut self, sent: u64, max: u64, stop: &AtomicBool) -> u64 {
        let Some(pps) = self.pps else { return max };
        loop {
            let due = (self.start.elapsed().as_secs_f64() * pps) as u64 + 1;
            self.allowed_sent = due;
            if due > sent {
                return (due - sent).min(max);
            }
            if stop.load(Ordering::Relaxed) {
                return 0;
            }
            let wait = ((sent + 1) as f64 / pps - self.start.elapsed().as_secs_f64()).max(0.0);
            std::thread::sleep(Duration::from_secs_f64(wait.min(0.01)));
        }
    }
}

/// Sends until the sequence has been sent `loops` times or `stop` is set.
pub fn run(cfg: &GenConfig, stop: &AtomicBool) -> Result<GenReport, GenError> {
    let ifindex =
        sys::ifindex(&cfg.iface).ok_or_else(|| GenError::NoSuchInterface(cfg.iface.clone()))?;
    if !sys::may_capture() {
        return Err(GenError::NotRoot);
    }
    let (frames, skipped) = load_frames(&cfg.source)?;
    if frames.is_empty() {
        return Err(GenError::Empty("the source has no Ethernet frames".into()));
    }
    let per_loop = match &cfg.source {
        GenSource::Synthetic(s) => s.count,
        _ => frames.len() as u64,
    };
    let total = per_loop.saturating_mul(cfg.loops);
    let avg_len = frames.iter().map(|f| f.len() as f64).sum::<f64>() / frames.len() as f64;
    let pps = cfg
        .pps
        .map(|p| p as f64)
        .or(cfg.bps.map(|b| b as f64 / (avg_len * 8.0)));
    let mut rep = match cfg.method {
        GenMethod::AfPacket => packet::send(ifindex, &frames, total, pps, stop)?,
        GenMethod::XdpLive => xdp::send(ifindex, &cfg.source, &frames, total, pps, stop)?,
    };
    rep.skipped = skipped;
    Ok(rep)
}
