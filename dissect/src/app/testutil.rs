//! Test helpers: corpus captures through tshark, Suricata reference eve files,
//! and a driver that plays the engine's role (through the engine's own
//! [`AppDriver`]).
//!
//! tshark is required: a missing tshark fails the tests loudly.

use super::driver::{AppDriver, DriverHost, Hit};
use super::{AppEvent, AppParser, Ctx, Direction};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `shared/` beside the repository (or `$FLOWTAP_SHARED`).
pub fn shared_dir() -> PathBuf {
    if let Ok(p) = std::env::var("FLOWTAP_SHARED") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

pub fn corpus(rel: &str) -> PathBuf {
    let p = shared_dir().join("corpus").join(rel);
    assert!(p.exists(), "corpus capture missing: {}", p.display());
    p
}

/// Suricata 8.0.6 eve events of `event_type` for a corpus capture.
pub fn suricata_events(rel: &str, event_type: &str) -> Vec<serde_json::Value> {
    let p = shared_dir()
        .join("reference/suricata-8.0.6/corpus")
        .join(format!("{rel}.eve.json"));
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("reference eve missing {}: {e}", p.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("eve line is JSON"))
        .filter(|v| v["event_type"] == event_type)
        .collect()
}

/// Run tshark; panic loudly when it is missing or fails.
pub fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("tshark is required for the corpus tests (apt-get install tshark): {e}")
        });
    assert!(
        out.status.success(),
        "tshark {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tshark output is UTF-8")
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// UDP payloads (with epoch ns and ports) of a capture, optionally filtered.
pub fn udp_payloads(cap: &Path, filter: &str) -> Vec<(u64, u16, u16, Vec<u8>)> {
    let out = tshark(&[
        "-r",
        cap.to_str().unwrap(),
        "-Y",
        filter,
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
        "-e",
        "udp.srcport",
        "-e",
        "udp.dstport",
        "-e",
        "udp.payload",
    ]);
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 4 || f[3].is_empty() {
                return None;
            }
            let (secs, frac) = f[0].split_once('.').unwrap_or((f[0], "0"));
            let frac = format!("{frac:0<9}");
            let ns = secs.parse::<u64>().ok()? * 1_000_000_000 + frac[..9].parse::<u64>().ok()?;
            Some((ns, f[1].parse().ok()?, f[2].parse().ok()?, unhex(f[3])))
        })
        .collect()
}

/// The unit tests' host of [`AppDriver`]: collects events, counts parse
/// errors, lends memory without a worker-wide budget and checks the
/// `ParseStatus` contract on every call.
struct TestHost<'a> {
    events: &'a mut Vec<AppEvent>,
    errors: &'a mut u32,
    cap: usize,
}

impl DriverHost for TestHost<'_> {
    const CHECK_CONTRACT: bool = true;

    fn max_pending(&self) -> usize {
        self.cap
    }

    fn take(&mut self, _n: usize) -> bool {
        true
    }

    fn give(&mut self, _n: usize) {}

    fn emit(&mut self, ev: AppEvent) {
        self.events.push(ev);
    }

    fn hit(&mut self, what: Hit) {
        if what == Hit::ParseError {
            *self.errors += 1;
        }
    }
}

/// Plays the engine: a parser fed through the engine's [`AppDriver`]
/// (unconsumed bytes kept per direction, `Incomplete{needed}` honoured,
/// `Error` stops a direction, buffers capped), the contract checked on
/// every call. Derefs to the driver, so tests can look at `d.buf`.
pub struct Driver {
    pub parser: Box<dyn AppParser>,
    pub events: Vec<AppEvent>,
    pub errors: u32,
    pub cap: usize,
    /// Ports, when the driver re-detects the protocol of a tunnel (after
    /// the parser says `is_done`), as the engine may.
    pub redetect: Option<(u16, u16)>,
    detecting: bool,
    core: AppDriver,
}

impl std::ops::Deref for Driver {
    type Target = AppDriver;

    fn deref(&self) -> &AppDriver {
        &self.core
    }
}

/// The host over `d`'s own fields, beside its parser and driver.
macro_rules! host {
    ($d:expr) => {
        TestHost {
            events: &mut $d.events,
            errors: &mut $d.errors,
            cap: $d.cap,
        }
    };
}

impl Driver {
    pub fn new(parser: Box<dyn AppParser>) -> Driver {
        Driver {
            parser,
            events: Vec::new(),
            errors: 0,
            cap: 256 * 1024,
            redetect: None,
            detecting: false,
            core: AppDriver::new(),
        }
    }

    /// A driver that first detects the protocol (detect_tcp on each
    /// direction's first bytes), as the engine does for a new TCP flow.
    pub fn detecting(client_port: u16, server_port: u16) -> Driver {
        let mut d = Driver::new(Box::new(crate::app::HttpParser::new(Default::default())));
        d.redetect = Some((client_port, server_port));
        d.detecting = true;
        d
    }

    /// While detecting (a new flow or a tunnel's payload): hold the bytes,
    /// probe them, start the detected parser on what was held. Unlike the
    /// engine, an unknown direction stops alone (the other may still
    /// tell), so corpus flows with one odd side keep their events.
    fn detect(&mut self, dir: Direction, data: &[u8], ts_ns: u64) {
        let mut host = host!(self);
        self.core.hold(dir, data, &mut host);
        let Some((sp, dp)) = self.redetect else {
            return;
        };
        match crate::app::detect_tcp(sp, dp, dir, self.core.buffered(dir)) {
            crate::app::Detect::Proto(p) => {
                self.parser =
                    crate::app::new_parser(p, crate::app::Transport::Tcp, &Default::default());
                self.detecting = false;
                let mut host = host!(self);
                self.core
                    .start(self.parser.as_mut(), &Ctx::new(ts_ns), &mut host);
            }
            crate::app::Detect::NeedMore => {}
            crate::app::Detect::Unknown => self.core.stop(dir, &mut host!(self)),
        }
    }

    pub fn feed(&mut self, dir: Direction, data: &[u8], ts_ns: u64) {
        if self.core.is_stopped(dir) {
            return;
        }
        // A tunnel may have opened while the detected parser started on
        // the bytes held during detection.
        self.end_tunnel(ts_ns);
        if self.detecting {
            return self.detect(dir, data, ts_ns);
        }
        let mut host = host!(self);
        self.core
            .feed(self.parser.as_mut(), dir, data, &Ctx::new(ts_ns), &mut host);
        if self.end_tunnel(ts_ns) {
            // What the parser left unconsumed belongs to the tunnel.
            self.detect(dir, &[], ts_ns);
        }
    }

    /// With `redetect`: once HTTP opened a tunnel, flush it and detect the
    /// protocol inside. Whether that happened.
    fn end_tunnel(&mut self, ts_ns: u64) -> bool {
        if self.detecting
            || self.redetect.is_none()
            || !self.parser.is_done()
            || self.parser.proto() != crate::app::AppProto::Http
        {
            return false;
        }
        let events = &mut self.events;
        self.parser.flush(&Ctx::new(ts_ns), &mut |e| events.push(e));
        self.detecting = true;
        true
    }

    pub fn gap(&mut self, dir: Direction, len: u64) {
        let mut host = host!(self);
        self.core.gap(self.parser.as_mut(), dir, len, &mut host);
    }

    pub fn flush(&mut self, ts_ns: u64) {
        let mut host = host!(self);
        self.core
            .finish(self.parser.as_mut(), &Ctx::new(ts_ns), &mut host);
    }
}

/// One TCP segment of a capture, as tshark decodes it.
#[derive(Clone, Debug)]
pub struct Seg {
    pub stream: u32,
    pub ts_ns: u64,
    pub src: String,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub syn: bool,
    pub ack: bool,
    pub payload: Vec<u8>,
}

fn epoch_ns(s: &str) -> u64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let frac = format!("{frac:0<9}");
    secs.parse::<u64>().unwrap_or(0) * 1_000_000_000 + frac[..9].parse::<u64>().unwrap_or(0)
}

/// All TCP segments of a capture in capture order.
pub fn tcp_segments(cap: &Path) -> Vec<Seg> {
    let out = tshark(&[
        "-r",
        cap.to_str().unwrap(),
        "-o",
        "tcp.desegment_tcp_streams:FALSE",
        "-Y",
        "tcp",
        "-T",
        "fields",
        "-E",
        "occurrence=f",
        "-e",
        "frame.time_epoch",
        "-e",
        "tcp.stream",
        "-e",
        "ip.src",
        "-e",
        "ipv6.src",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.dstport",
        "-e",
        "tcp.seq",
        "-e",
        "tcp.flags.syn",
        "-e",
        "tcp.flags.ack",
        "-e",
        "tcp.payload",
    ]);
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 10 {
                return None;
            }
            let flag = |s: &str| s == "1" || s == "True";
            Some(Seg {
                ts_ns: epoch_ns(f[0]),
                stream: f[1].parse().ok()?,
                src: format!("{}{}", f[2], f[3]),
                sport: f[4].parse().ok()?,
                dport: f[5].parse().ok()?,
                seq: f[6].parse().ok()?,
                syn: flag(f[7]),
                ack: flag(f[8]),
                payload: if f[9].is_empty() {
                    Vec::new()
                } else {
                    unhex(&f[9].replace(':', ""))
                },
            })
        })
        .collect()
}

/// What one TCP flow produced.
pub struct FlowOut {
    pub client_port: u16,
    pub server_port: u16,
    pub events: Vec<AppEvent>,
    pub errors: u32,
    /// Holes reported to the parser.
    pub gaps: u32,
}

/// Replay every TCP stream of `cap` through a parser made by `make`, the way
/// the engine will: in-order bytes per direction (out-of-order segments held
/// back until the hole fills; a hole still open 16 segments later is a gap),
/// retransmitted bytes dropped, `flush` at the end.
pub fn replay_tcp(cap: &Path, make: &dyn Fn(u16, u16) -> Box<dyn AppParser>) -> Vec<FlowOut> {
    replay_tcp_with(cap, &|c, s| {
        let mut d = Driver::new(make(c, s));
        d.redetect = Some((c, s));
        d
    })
}

/// Same, with protocol detection first.
pub fn replay_tcp_detect(cap: &Path) -> Vec<FlowOut> {
    replay_tcp_with(cap, &Driver::detecting)
}

fn replay_tcp_with(cap: &Path, make: &dyn Fn(u16, u16) -> Driver) -> Vec<FlowOut> {
    use std::collections::BTreeMap;
    let segs = tcp_segments(cap);
    let mut streams: Vec<u32> = segs.iter().map(|s| s.stream).collect();
    streams.sort_unstable();
    streams.dedup();
    let mut outs = Vec::new();
    for st in streams {
        let ss: Vec<&Seg> = segs.iter().filter(|s| s.stream == st).collect();
        let Some(first) = ss.first() else { continue };
        // Client: sender of a pure SYN, else the first packet's sender.
        let cl = ss
            .iter()
            .find(|s| s.syn && !s.ack)
            .map(|s| (s.src.clone(), s.sport, s.dport))
            .unwrap_or((first.src.clone(), first.sport, first.dport));
        let mut d = make(cl.1, cl.2);
        let mut next: [Option<i64>; 2] = [None, None];
        let mut held: [BTreeMap<i64, (Vec<u8>, u64)>; 2] = [BTreeMap::new(), BTreeMap::new()];
        let mut gaps = 0;
        let mut last_ts = 0;
        // Feed whatever is contiguous; with `force`, jump holes as gaps.
        let drain = |d: &mut Driver,
                     dir: Direction,
                     next: &mut Option<i64>,
                     held: &mut BTreeMap<i64, (Vec<u8>, u64)>,
                     force: bool,
                     gaps: &mut u32| {
            while let Some((&seq, _)) = held.iter().next() {
                let exp = next.unwrap_or(seq);
                if seq > exp && !force {
                    break;
                }
                let (payload, ts) = held.remove(&seq).unwrap();
                let end = seq + payload.len() as i64;
                if end <= exp {
                    continue; // retransmission
                }
                if seq > exp {
                    *gaps += 1;
                    d.gap(dir, (seq - exp) as u64);
                    d.feed(dir, &payload, ts);
                } else {
                    d.feed(dir, &payload[(exp - seq) as usize..], ts);
                }
                *next = Some(end);
            }
        };
        for s in &ss {
            last_ts = s.ts_ns;
            let dir = if s.src == cl.0 && s.sport == cl.1 {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            let i = dir.index();
            let mut seq = i64::from(s.seq);
            if s.syn {
                next[i] = Some(seq + 1);
                seq += 1; // TCP fast open: data in the SYN follows the SYN's sequence number.
            }
            if s.payload.is_empty() {
                continue;
            }
            next[i].get_or_insert(seq);
            let e = held[i].entry(seq).or_insert((Vec::new(), s.ts_ns));
            if s.payload.len() > e.0.len() {
                *e = (s.payload.clone(), s.ts_ns);
            }
            let force = held[i].len() > 16;
            drain(&mut d, dir, &mut next[i], &mut held[i], force, &mut gaps);
        }
        for dir in [Direction::ToServer, Direction::ToClient] {
            let i = dir.index();
            drain(&mut d, dir, &mut next[i], &mut held[i], true, &mut gaps);
        }
        d.flush(last_ts);
        outs.push(FlowOut {
            client_port: cl.1,
            server_port: cl.2,
            events: d.events,
            errors: d.errors,
            gaps,
        });
    }
    outs
}

/// A xorshift64 generator: the same numbers on every run, so the tests
/// that mutate inputs are reproducible.
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
