//! Live capture tests on veth pairs in throw-away network namespaces.
//!
//! They need root (CI runs as root). Without root each test fails under CI
//! (`CI=true`) and elsewhere prints a loud SKIPPED line (the shared guard in
//! `engine/tests/common/root.rs`). Every test builds its own namespaces and veth
//! pair with unique names and removes them in a Drop guard (also on panic).
//! Traffic never leaves the two namespaces.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capture::afpacket::{AfPacketConfig, AfPacketSocket};
use capture::afxdp::{
    attached_prog_id, Hop, Route, Shard, XdpCapture, XdpConfig, XdpError, XdpMode, XdpQueue,
    ZeroCopy,
};
use capture::gen::{self, synth_frame, GenConfig, GenSource, SynthSpec};
use capture::{PacketSource, Poll};

#[path = "../../engine/tests/common/root.rs"]
#[macro_use]
mod root;

/// Live tests share two cores: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());
static SEQ: AtomicU32 = AtomicU32::new(0);

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh_out(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair: `a` (sender side) in `ns_a`, `b`
/// (capture side) in `ns_b`. Removed on drop.
struct Net {
    ns_a: String,
    ns_b: String,
    a: String,
    b: String,
}

impl Net {
    fn new(rx_queues: u32) -> Net {
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let net = Net {
            ns_a: format!("ftA{id}"),
            ns_b: format!("ftB{id}"),
            a: format!("fta{id}"),
            b: format!("ftb{id}"),
        };
        for ns in [&net.ns_a, &net.ns_b] {
            sh(&["ip", "netns", "add", ns]);
            // no IPv6 autoconf chatter (ND/MLD) on the test link
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
            ]);
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
        }
        let q = rx_queues.to_string();
        sh(&[
            "ip",
            "link",
            "add",
            &net.a,
            "netns",
            &net.ns_a,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            &net.b,
            "netns",
            &net.ns_b,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
        ]);
        sh(&["ip", "-n", &net.ns_a, "link", "set", &net.a, "up"]);
        sh(&["ip", "-n", &net.ns_b, "link", "set", &net.b, "up"]);
        net
    }

    fn xdp_shown_on_b(&self) -> bool {
        sh_out(&["ip", "-n", &self.ns_b, "link", "show", &self.b]).contains("xdp")
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Moves the calling thread into network namespace `ns`.
fn enter_ns(ns: &str) {
    let f = File::open(format!("/var/run/netns/{ns}")).expect("open netns");
    // SAFETY: valid namespace fd; affects only the calling thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter_ns(&ns);
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

fn corpus_pcap() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/http/sv-http-all-headers--input.pcap");
    assert!(
        p.exists(),
        "the corpus must be at ../shared beside the repository: {} is missing",
        p.display()
    );
    Some(p)
}

fn test_frames() -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    if let Some(p) = corpus_pcap() {
        let mut f = capture::file::CaptureFile::open(&p).expect("open corpus pcap");
        while let Some(pk) = f.next_packet().expect("read corpus pcap") {
            frames.push(pk.data.to_vec());
        }
    } else {
        eprintln!("corpus pcap not found; using synthetic frames only");
    }
    for (i, len) in [60usize, 64, 128, 512, 1000, 1514].into_iter().enumerate() {
        frames.push(synth_frame(
            &SynthSpec {
                frame_len: len,
                ..Default::default()
            },
            i as u32,
        ));
        // VLAN-tagged: the AF_PACKET source must put back the tag the kernel strips
        let vlan = Some(100 + i as u16);
        frames.push(synth_frame(
            &SynthSpec {
                frame_len: len,
                vlan,
                ..Default::default()
            },
            i as u32,
        ));
    }
    frames
}

fn multiset(frames: &[Vec<u8>]) -> BTreeMap<Vec<u8>, usize> {
    let mut m = BTreeMap::new();
    for f in frames {
        *m.entry(f.clone()).or_insert(0) += 1;
    }
    m
}

fn send_frames(ns: &str, iface: &str, frames: Vec<Vec<u8>>, loops: u64) -> gen::GenReport {
    let iface = iface.to_string();
    in_ns(ns, move || {
        let mut cfg = GenConfig::new(iface, GenSource::Frames(frames));
        cfg.loops = loops;
        cfg.pps = Some(20_000);
        gen::run(&cfg, &AtomicBool::new(false)).expect("generator")
    })
}

/// Polls `sources` (in this thread) until `want` frames arrived or `timeout`;
/// returns the frames per source.
fn collect<S: PacketSource>(
    sources: &mut [S],
    want: usize,
    timeout: Duration,
) -> Vec<Vec<Vec<u8>>> {
    let mut got: Vec<Vec<Vec<u8>>> = sources.iter().map(|_| Vec::new()).collect();
    let deadline = Instant::now() + timeout;
    let mut quiet_until: Option<Instant> = None;
    loop {
        let mut any = false;
        for (s, out) in sources.iter_mut().zip(got.iter_mut()) {
            if let Poll::Packets(_) = s
                .poll_batch(64, |p| out.push(p.data.to_vec()))
                .expect("poll")
            {
                any = true;
            }
        }
        let total: usize = got.iter().map(Vec::len).sum();
        let now = Instant::now();
        if total >= want {
            // keep polling briefly to catch any extra (unexpected) frames
            let q = *quiet_until.get_or_insert(now + Duration::from_millis(300));
            if now >= q {
                break;
            }
        }
        if now >= deadline {
            break;
        }
        if !any {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

/// [`collect`] for AF_XDP queues in software shard mode: each queue's poller
/// names the owner of what it receives by `owner` (as the engine does with
/// its own owner function) and keeps only what it owns.
fn collect_routed(
    queues: &mut [XdpQueue],
    want: usize,
    timeout: Duration,
    owner: fn(&[u8]) -> usize,
) -> Vec<Vec<Vec<u8>>> {
    let mut got: Vec<Vec<Vec<u8>>> = queues.iter().map(|_| Vec::new()).collect();
    let deadline = Instant::now() + timeout;
    let mut quiet_until: Option<Instant> = None;
    loop {
        let mut any = false;
        for (q, out) in queues.iter_mut().zip(got.iter_mut()) {
            let (me, _) = q.shard_position().expect("software shard");
            let polled = q.poll_routed(64, |p, hop| {
                let o = owner(p.data);
                if hop == Hop::Received && o != me {
                    return Route::To(o);
                }
                out.push(p.data.to_vec());
                Route::Here
            });
            if let Poll::Packets(_) = polled.expect("poll") {
                any = true;
            }
        }
        let total: usize = got.iter().map(Vec::len).sum();
        let now = Instant::now();
        if total >= want {
            let q = *quiet_until.get_or_insert(now + Duration::from_millis(300));
            if now >= q {
                break;
            }
        }
        if now >= deadline {
            break;
        }
        if !any {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

/// A symmetric hash of a frame's outer IP addresses and L4 ports (both
/// directions alike; up to two VLAN tags; non-IP frames hash to 0): tells
/// flows apart in these tests. flowtap's own owner function is the engine's
/// (`engine::shard`), on the decoded packet.
fn flow_hash(frame: &[u8]) -> u32 {
    let g16 = |o: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*frame.get(o)?, *frame.get(o + 1)?]))
    };
    let mut off = 12;
    let mut et = match g16(off) {
        Some(v) => v,
        None => return 0,
    };
    for _ in 0..2 {
        if et == 0x8100 || et == 0x88a8 {
            off += 4;
            et = match g16(off) {
                Some(v) => v,
                None => return 0,
            };
        }
    }
    let l3 = off + 2;
    let (a, b, proto, l4) = match et {
        0x0800 => {
            let Some(h) = frame.get(l3..l3 + 20) else {
                return 0;
            };
            let ihl = ((h[0] & 0x0f) as usize) * 4;
            let frag = u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0;
            (
                fold(&h[12..16]),
                fold(&h[16..20]),
                h[9],
                if frag { None } else { Some(l3 + ihl) },
            )
        }
        0x86dd => {
            let Some(h) = frame.get(l3..l3 + 40) else {
                return 0;
            };
            (fold(&h[8..24]), fold(&h[24..40]), h[6], Some(l3 + 40))
        }
        _ => return 0,
    };
    let (pa, pb) = match (proto, l4) {
        (6 | 17 | 132, Some(o)) => (g16(o).unwrap_or(0) as u32, g16(o + 2).unwrap_or(0) as u32),
        _ => (0, 0),
    };
    let (lo, hi) = if (a, pa) <= (b, pb) {
        ((a, pa), (b, pb))
    } else {
        ((b, pb), (a, pa))
    };
    mix(
        mix(mix(mix(proto as u32, lo.0), hi.0), lo.1 << 16 | hi.1),
        0x9e37_79b9,
    )
}

fn fold(b: &[u8]) -> u32 {
    b.chunks(4).fold(0u32, |acc, c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        mix(acc, u32::from_be_bytes(w))
    })
}

fn mix(h: u32, v: u32) -> u32 {
    (h ^ v)
        .wrapping_mul(0x0100_0193)
        .rotate_left(13)
        .wrapping_add(0x7f4a_7c15)
}

fn owner_of_two(frame: &[u8]) -> usize {
    flow_hash(frame) as usize % 2
}

fn xdp_roundtrip(mode: XdpMode) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new(1);
    let frames = test_frames();
    let loops = 3u64;
    let mut expected = Vec::new();
    for _ in 0..loops {
        expected.extend(frames.iter().cloned());
    }
    let want = expected.len();
    let (b, ns_b) = (net.b.clone(), net.ns_b.clone());
    let ready = Arc::new(AtomicBool::new(false));
    let r2 = ready.clone();
    let cap = std::thread::spawn(move || {
        enter_ns(&ns_b);
        let mut cfg = XdpConfig::new(&b);
        cfg.mode = mode;
        cfg.frames = 1024;
        cfg.rx_ring = 512;
        cfg.fill_ring = 512;
        let mut c = XdpCapture::open(&cfg).expect("open AF_XDP capture");
        let chosen = c.attach_mode();
        let mut qs = c.take_queues();
        r2.store(true, Ordering::SeqCst);
        let got = collect(&mut qs, want, Duration::from_secs(20));
        let drops = c.filter_drops().unwrap();
        let stats: Vec<_> = qs.iter().map(|q| q.stats()).collect();
        (
            chosen,
            got,
            drops,
            stats,
            qs.iter().map(|q| q.zero_copy()).collect::<Vec<_>>(),
        )
    });
    while !ready.load(Ordering::SeqCst) && !cap.is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let rep = send_frames(&net.ns_a, &net.a, frames.clone(), loops);
    assert_eq!(rep.sent, want as u64, "generator sent {rep:?}");
    let (chosen, got, drops, stats, zc) = cap.join().expect("capture thread");
    let got: Vec<Vec<u8>> = got.into_iter().flatten().collect();
    eprintln!("mode {mode:?} -> attached {chosen}, zero-copy {zc:?}, received {} of {want}, stats {stats:?}, drops {drops:?}", got.len());
    match mode {
        XdpMode::Native => assert_eq!(chosen, capture::afxdp::AttachMode::Native),
        XdpMode::Generic => assert_eq!(chosen, capture::afxdp::AttachMode::Generic),
        XdpMode::Auto => {}
    }
    assert_eq!(got.len(), want, "frame count");
    assert_eq!(
        got.iter().map(Vec::len).sum::<usize>(),
        expected.iter().map(Vec::len).sum::<usize>(),
        "byte count"
    );
    assert!(
        multiset(&got) == multiset(&expected),
        "received frames differ from sent frames"
    );
    assert_eq!(stats.iter().map(|s| s.received).sum::<u64>(), want as u64);
    assert!(
        !net.xdp_shown_on_b(),
        "XDP program still attached after drop"
    );
}

#[test]
fn afxdp_native_receives_exactly_the_sent_frames() {
    require_root!("live capture in network namespaces");
    xdp_roundtrip(XdpMode::Native);
}

#[test]
fn afxdp_generic_receives_exactly_the_sent_frames() {
    require_root!("live capture in network namespaces");
    xdp_roundtrip(XdpMode::Generic);
}

fn open_on(net: &Net, f: impl FnOnce(&mut XdpConfig) + Send + 'static) -> Result<(), XdpError> {
    let b = net.b.clone();
    in_ns(&net.ns_b, move || {
        let mut cfg = XdpConfig::new(b);
        cfg.frames = 512;
        cfg.rx_ring = 256;
        cfg.fill_ring = 256;
        f(&mut cfg);
        XdpCapture::open(&cfg).map(drop)
    })
}

#[test]
fn afxdp_no_program_left_after_drop_or_error() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new(1);
    for mode in [XdpMode::Native, XdpMode::Generic] {
        open_on(&net, move |c| c.mode = mode).expect("open");
        assert!(
            !net.xdp_shown_on_b(),
            "{mode:?}: `ip link show` still has xdp after drop"
        );
    }
    // veth reports native XDP and redirect, no zero-copy (kernel >= 6.3)
    let b = net.b.clone();
    let feats = in_ns(&net.ns_b, move || {
        capture::afxdp::xdp_features(&b).expect("query features")
    });
    if let Some(f) = feats {
        assert!(f.native && f.redirect && !f.zero_copy, "{f:?}");
    }
    // error path: a queue that does not exist fails after the program was attached
    let e = open_on(&net, |c| c.queues = Some(vec![7])).expect_err("queue 7 must not exist");
    eprintln!("expected error: {e}");
    assert!(
        !net.xdp_shown_on_b(),
        "program left attached after an open error"
    );
    // zero-copy forced on veth (no zero-copy support) is an error, and cleans up
    let e = open_on(&net, |c| {
        c.mode = XdpMode::Native;
        c.zero_copy = ZeroCopy::On;
    })
    .expect_err("veth has no zero-copy");
    eprintln!("expected error: {e}");
    assert!(matches!(e, XdpError::ZeroCopyUnsupported { .. }), "{e:?}");
    assert!(!net.xdp_shown_on_b());
}

#[test]
fn afxdp_stale_program_is_replaced() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new(1);
    let b = net.b.clone();
    in_ns(&net.ns_b, move || {
        let mut cfg = XdpConfig::new(&b);
        cfg.frames = 512;
        cfg.rx_ring = 256;
        cfg.fill_ring = 256;
        cfg.mode = XdpMode::Native;
        let mut leaked = XdpCapture::open(&cfg).expect("first open");
        let ifindex = leaked.ifindex();
        let old = attached_prog_id(ifindex);
        assert_ne!(old, 0);
        // As if a crashed run left its program behind: the sockets are gone
        // (a dead process closes them), the attachment is leaked.
        drop(leaked.take_queues());
        std::mem::forget(leaked);
        let again = XdpCapture::open(&cfg).expect("reopen over a stale program");
        let new = attached_prog_id(ifindex);
        assert!(
            new != 0 && new != old,
            "stale program {old} not replaced (now {new})"
        );
        drop(again);
        assert_eq!(attached_prog_id(ifindex), 0, "program left after drop");
    });
    assert!(!net.xdp_shown_on_b());
}

#[test]
fn afxdp_program_detached_when_process_is_killed() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new(1);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGKILL] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "hold_capture_helper",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FT_HOLD_NS", &net.ns_b)
            .env("FT_HOLD_IFACE", &net.b)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn helper");
        let t0 = Instant::now();
        while !net.xdp_shown_on_b() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "helper never attached"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        child.wait().unwrap();
        let t0 = Instant::now();
        while net.xdp_shown_on_b() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !net.xdp_shown_on_b(),
            "program still attached after signal {sig}"
        );
    }
}

/// Not a test: a child process for `afxdp_program_detached_when_process_is_killed`.
#[test]
#[ignore]
fn hold_capture_helper() {
    let (Ok(ns), Ok(iface)) = (std::env::var("FT_HOLD_NS"), std::env::var("FT_HOLD_IFACE")) else {
        return;
    };
    enter_ns(&ns);
    let mut cfg = XdpConfig::new(iface);
    cfg.frames = 512;
    cfg.rx_ring = 256;
    cfg.fill_ring = 256;
    let _c = XdpCapture::open(&cfg).expect("helper open");
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn missing_interface_is_a_clear_error() {
    let e = XdpCapture::open(&XdpConfig::new("ft-nope0"))
        .err()
        .expect("must fail");
    assert!(matches!(e, XdpError::NoSuchInterface(_)), "{e:?}");
    assert!(e.to_string().contains("ip link"), "{e}");
    let e = AfPacketSocket::open(&AfPacketConfig::new("ft-nope0"), 1)
        .err()
        .expect("must fail");
    assert!(e.to_string().contains("does not exist"), "{e}");
    let e = gen::run(
        &GenConfig::new("ft-nope0", GenSource::Frames(vec![vec![0; 60]])),
        &AtomicBool::new(false),
    )
    .expect_err("must fail");
    assert!(matches!(e, gen::GenError::NoSuchInterface(_)), "{e:?}");
}

#[test]
fn afpacket_fanout_receives_exactly_the_sent_frames() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new(1);
    let frames = test_frames();
    let loops = 2u64;
    let expected: Vec<Vec<u8>> = (0..loops).flat_map(|_| frames.iter().cloned()).collect();
    let want = expected.len();
    let (b, ns_b) = (net.b.clone(), net.ns_b.clone());
    let ready = Arc::new(AtomicBool::new(false));
    let r2 = ready.clone();
    let cap = std::thread::spawn(move || {
        enter_ns(&ns_b);
        let mut cfg = AfPacketConfig::new(&b);
        cfg.block_size = 1 << 16;
        cfg.block_count = 8;
        let group = (std::process::id() & 0xffff) as u16;
        let mut socks = vec![
            AfPacketSocket::open(&cfg, group).expect("socket 0"),
            AfPacketSocket::open(&cfg, group).expect("socket 1"),
        ];
        r2.store(true, Ordering::SeqCst);
        let got = collect(&mut socks, want, Duration::from_secs(20));
        let stats: Vec<_> = socks.iter().map(|s| s.stats()).collect();
        (got, stats)
    });
    while !ready.load(Ordering::SeqCst) && !cap.is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let rep = send_frames(&net.ns_a, &net.a, frames, loops);
    assert_eq!(rep.sent, want as u64);
    let (got, stats) = cap.join().expect("capture thread");
    eprintln!(
        "AF_PACKET fanout: per socket {:?}, stats {stats:?}",
        got.iter().map(Vec::len).collect::<Vec<_>>()
    );
    // a flow never splits over the two sockets (symmetric fanout hash)
    let owner = |f: &Vec<u8>| flow_hash(f);
    for (i, g) in got.iter().enumerate() {
        for (j, h) in got.iter().enumerate() {
            if i != j {
                assert!(
                    !g.iter()
                        .any(|f| owner(f) != 0 && h.iter().any(|x| owner(x) == owner(f))),
                    "a flow reached two sockets"
                );
            }
        }
    }
    let got: Vec<Vec<u8>> = got.into_iter().flatten().collect();
    assert_eq!(got.len(), want, "frame count");
    assert_eq!(
        got.iter().map(Vec::len).sum::<usize>(),
        expected.iter().map(Vec::len).sum::<usize>(),
        "byte count"
    );
    assert!(
        multiset(&got) == multiset(&expected),
        "received frames differ from sent frames"
    );
    assert_eq!(stats.iter().map(|s| s.kernel_dropped).sum::<u64>(), 0);
}

#[test]
fn afxdp_prefilter_drops_in_kernel_and_counts() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new(1);
    let base = SynthSpec {
        frame_len: 100,
        ..Default::default()
    };
    let mk = |spec: &SynthSpec, n: u32| (0..n).map(|i| synth_frame(spec, i)).collect::<Vec<_>>();
    let keep: Vec<Vec<u8>> = [
        mk(&base, 20),
        mk(
            &SynthSpec {
                vlan: Some(200),
                ..base.clone()
            },
            5,
        ),
    ]
    .concat();
    let vlan = mk(
        &SynthSpec {
            vlan: Some(100),
            ..base.clone()
        },
        10,
    );
    let port = mk(
        &SynthSpec {
            dst_port: 5353,
            ..base.clone()
        },
        10,
    );
    let cidr = mk(
        &SynthSpec {
            src_ip: "198.51.100.7".parse().unwrap(),
            ..base.clone()
        },
        10,
    );
    let proto: Vec<Vec<u8>> = mk(&base, 5)
        .into_iter()
        .map(|mut f| {
            f[23] = 47; // GRE
            f
        })
        .collect();
    let mut all = Vec::new();
    for set in [&keep, &vlan, &port, &cidr, &proto] {
        all.extend(set.iter().cloned());
    }
    let (b, ns_b) = (net.b.clone(), net.ns_b.clone());
    let want = keep.len();
    let ready = Arc::new(AtomicBool::new(false));
    let r2 = ready.clone();
    let cap = std::thread::spawn(move || {
        enter_ns(&ns_b);
        let mut cfg = XdpConfig::new(&b);
        cfg.frames = 1024;
        cfg.rx_ring = 512;
        cfg.fill_ring = 512;
        cfg.filter.drop_vlans = vec![100];
        cfg.filter.drop_ports = vec![5353];
        cfg.filter.drop_cidrs = vec![
            "198.51.100.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        cfg.filter.drop_protocols = vec![47];
        let mut c = XdpCapture::open(&cfg).expect("open");
        let mut qs = c.take_queues();
        r2.store(true, Ordering::SeqCst);
        let got = collect(&mut qs, want, Duration::from_secs(20));
        (got, c.filter_drops().unwrap())
    });
    while !ready.load(Ordering::SeqCst) && !cap.is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let rep = send_frames(&net.ns_a, &net.a, all.clone(), 1);
    assert_eq!(rep.sent, all.len() as u64);
    let (got, drops) = cap.join().expect("capture thread");
    let got: Vec<Vec<u8>> = got.into_iter().flatten().collect();
    eprintln!(
        "pre-filter: received {} (want {want}), drops {drops:?}",
        got.len()
    );
    assert!(
        multiset(&got) == multiset(&keep),
        "only unfiltered frames may arrive"
    );
    assert_eq!(
        (drops.vlan, drops.port, drops.cidr, drops.protocol),
        (10, 10, 10, 5)
    );
    assert_eq!(drops.unbound, 0);
}

#[test]
fn afxdp_software_shard_moves_frames_to_their_owner() {
    require_root!("live capture in network namespaces");
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::new(2);
    let spec = SynthSpec {
        frame_len: 80,
        flows: 64,
        ..Default::default()
    };
    let flows: Vec<Vec<u8>> = (0..spec.flows).map(|i| synth_frame(&spec, i)).collect();
    let loops = 8u64;
    let expected: Vec<Vec<u8>> = (0..loops).flat_map(|_| flows.iter().cloned()).collect();
    let want = expected.len();
    let (b, ns_b) = (net.b.clone(), net.ns_b.clone());
    let ready = Arc::new(AtomicBool::new(false));
    let r2 = ready.clone();
    let cap = std::thread::spawn(move || {
        enter_ns(&ns_b);
        let mut cfg = XdpConfig::new(&b);
        cfg.mode = XdpMode::Native;
        cfg.frames = 1024;
        cfg.rx_ring = 512;
        cfg.fill_ring = 512;
        cfg.shard = Shard::Software { ring: 256 };
        let mut c = XdpCapture::open(&cfg).expect("open");
        let mut qs = c.take_queues();
        assert_eq!(qs.len(), 2, "veth with 2 RX queues");
        r2.store(true, Ordering::SeqCst);
        let got = collect_routed(&mut qs, want, Duration::from_secs(20), owner_of_two);
        let stats: Vec<_> = qs
            .iter()
            .map(|q| (q.stats(), q.socket_stats().unwrap()))
            .collect();
        (got, stats)
    });
    while !ready.load(Ordering::SeqCst) && !cap.is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let rep = send_frames(&net.ns_a, &net.a, flows, loops);
    assert_eq!(rep.sent, want as u64);
    let (got, stats) = cap.join().expect("capture thread");
    eprintln!(
        "software shard: per worker {:?}, stats {stats:?}",
        got.iter().map(Vec::len).collect::<Vec<_>>()
    );
    for (w, frames) in got.iter().enumerate() {
        for f in frames {
            assert_eq!(
                owner_of_two(f),
                w,
                "frame delivered to a worker that does not own its flow"
            );
        }
    }
    let got: Vec<Vec<u8>> = got.into_iter().flatten().collect();
    assert!(
        multiset(&got) == multiset(&expected),
        "received frames differ from sent frames"
    );
    assert_eq!(stats.iter().map(|(s, _)| s.ring_full).sum::<u64>(), 0);
}
