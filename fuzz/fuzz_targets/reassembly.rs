//! TCP reassembly with protocol detection and the parsers behind it, fed
//! arbitrary segments: overlaps, holes, retransmissions, wrap-around,
//! acknowledgements of bytes never seen. Nothing may panic, and the bytes
//! held must stay within the caps.
#![no_main]

use dissect::app::{AppConfig, Direction};
use engine::stream::{Budget, Session, StreamCounters, StreamCtx, StreamLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = StreamLimits {
        max_ooo_per_flow: 4096,
        max_pending_per_flow: 4096,
        max_detect_bytes: 512,
        // 20 segments (1 µs apart): both waiting and expiring are reached.
        reorder_window_ns: 20_000,
        app_enabled: true,
    };
    let app_cfg = AppConfig::default();
    let mut budget = Budget { used: 0, max: 16 << 10 };
    let mut counters = StreamCounters::default();
    let mut events = Vec::new();
    // The first byte picks the server port, i.e. the detection hint.
    let port = match data.first().copied().unwrap_or(0) % 4 {
        0 => 80,
        1 => 443,
        2 => 53,
        _ => 9999,
    };
    let mut session = Session::new(&limits, (40000, port));
    let mut seq = [1000u32, 5000u32];
    let mut rest = data.get(1..).unwrap_or(&[]);
    let mut ts = 1u64;
    // Segment header: dir+flags, seq jitter (i16), ack jitter (i16), length.
    while rest.len() >= 6 {
        let (head, tail) = rest.split_at(6);
        let dir = if head[0] & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
        let flags = head[0] >> 1;
        let jitter = i16::from_le_bytes([head[1], head[2]]) as i32;
        let ack_jitter = i16::from_le_bytes([head[3], head[4]]) as i32;
        let len = (head[5] as usize).min(tail.len());
        let (payload, after) = tail.split_at(len);
        let d = dir.index();
        let s = seq[d].wrapping_add(jitter as u32);
        let ack = seq[1 - d].wrapping_add(ack_jitter as u32);
        let mut cx = StreamCtx {
            limits: &limits,
            app_cfg: &app_cfg,
            budget: &mut budget,
            counters: &mut counters,
            events: &mut events,
            dir,
        };
        session.on_tcp(dir, s, ack, flags, 1024, payload, ts, &mut cx);
        seq[d] = s.wrapping_add(len as u32);
        events.clear();
        assert!(budget.used <= budget.max, "budget exceeded");
        ts += 1000;
        rest = after;
    }
    let mut cx = StreamCtx {
        limits: &limits,
        app_cfg: &app_cfg,
        budget: &mut budget,
        counters: &mut counters,
        events: &mut events,
        dir: Direction::ToServer,
    };
    session.finish(ts, &mut cx);
    assert_eq!(budget.used, 0, "every byte held is given back at flow end");
});
