//! Shared by the app-parser fuzz targets: plays the engine's role. The input
//! is a script of chunks: a control byte `c` then data. `c == 0xff`: a gap
//! (next byte = length, its low bit = direction); `0xf0..=0xfe`: direction
//! `c & 1`, length in the next two bytes (big-endian); else direction `c & 1`,
//! length `(c >> 1) + 1`.
//! Checks the `ParseStatus` contract on every call.

use dissect::app::{AppParser, Ctx, Direction, ParseStatus};

/// Engine buffer cap per direction (DNS/TCP needs 64 KiB + 2).
const CAP: usize = 70 * 1024;

pub fn run(mut p: Box<dyn AppParser>, script: &[u8]) {
    let mut buf: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut stopped = [false, false];
    let mut events = 0usize;
    let mut ts = 1_000u64;
    let mut i = 0usize;
    while i < script.len() {
        let c = script[i];
        i += 1;
        ts += 1_000_000;
        let ctx = Ctx::new(ts);
        if c == 0xff {
            let len = script.get(i).copied().unwrap_or(0) as u64;
            i += 1;
            let d = if len & 1 == 0 {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            let k = d.index();
            let pending = buf[k].len() as u64;
            buf[k].clear();
            p.on_gap(d, len + pending);
            continue;
        }
        let d = if c & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let k = d.index();
        let n = if c >= 0xf0 {
            let hi = script.get(i).copied().unwrap_or(0);
            let lo = script.get(i + 1).copied().unwrap_or(0);
            i += 2;
            usize::from(u16::from_be_bytes([hi, lo]))
        } else {
            usize::from(c >> 1) + 1
        };
        let i0 = i.min(script.len());
        let end = (i0 + n).min(script.len());
        let chunk = &script[i0..end];
        i = end;
        if stopped[k] {
            continue;
        }
        buf[k].extend_from_slice(chunk);
        let st = p.parse(d, &buf[k], &ctx, &mut |_| events += 1);
        match st {
            ParseStatus::Consumed(n) => {
                assert!(n <= buf[k].len());
                buf[k].drain(..n);
            }
            ParseStatus::Incomplete { consumed, needed } => {
                assert!(consumed <= buf[k].len());
                buf[k].drain(..consumed);
                assert!(
                    needed > buf[k].len(),
                    "Incomplete must ask for more than it has"
                );
                if needed > CAP {
                    let n = buf[k].len() as u64;
                    buf[k].clear();
                    p.on_gap(d, n);
                }
            }
            ParseStatus::Error { consumed } => {
                assert!(consumed <= buf[k].len());
                stopped[k] = true;
                buf[k].clear();
            }
        }
        if buf[k].len() > CAP {
            let n = buf[k].len() as u64;
            buf[k].clear();
            p.on_gap(d, n);
        }
        let _ = p.is_done();
    }
    p.expire(&Ctx::new(ts + 60_000_000_000), &mut |_| events += 1);
    p.flush(&Ctx::new(ts + 1), &mut |_| events += 1);
    assert_eq!(
        p.stats().events as usize,
        events,
        "every emitted event is counted"
    );
}
