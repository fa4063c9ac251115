//! Shared by the app-parser fuzz targets: feeds the parser through the
//! engine's own driver (`dissect::app::driver::AppDriver`) with the
//! `ParseStatus` contract checked on every call. The input is a script of
//! chunks: a control byte `c` then data. `c == 0xff`: a gap (next byte =
//! length, its low bit = direction); `0xf0..=0xfe`: direction `c & 1`,
//! length in the next two bytes (big-endian); else direction `c & 1`, length
//! `(c >> 1) + 1`. Over UDP each chunk is a datagram.

use dissect::app::driver::{AppDriver, DriverHost, Hit};
use dissect::app::{AppEvent, AppParser, Ctx, Direction};

/// Engine buffer cap per direction (DNS/TCP needs 64 KiB + 2).
const CAP: usize = 70 * 1024;
/// A worker-wide budget small enough that the fuzzer reaches its refusals.
const BUDGET: usize = 96 * 1024;

struct Host {
    events: usize,
    used: usize,
}

impl DriverHost for Host {
    const CHECK_CONTRACT: bool = true;

    fn max_pending(&self) -> usize {
        CAP
    }

    fn take(&mut self, n: usize) -> bool {
        if self.used + n > BUDGET {
            return false;
        }
        self.used += n;
        true
    }

    fn give(&mut self, n: usize) {
        assert!(n <= self.used, "gave back {n} bytes, {} taken", self.used);
        self.used -= n;
    }

    fn emit(&mut self, _ev: AppEvent) {
        self.events += 1;
    }

    fn hit(&mut self, _what: Hit) {}
}

/// `datagrams`: the parser runs over UDP (each chunk one datagram).
pub fn run(mut p: Box<dyn AppParser>, datagrams: bool, script: &[u8]) {
    let mut d = AppDriver::new();
    let mut host = Host { events: 0, used: 0 };
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
            let dir = if len & 1 == 0 {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            d.gap(p.as_mut(), dir, len, &mut host);
            continue;
        }
        let dir = if c & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
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
        if datagrams {
            d.datagram(p.as_mut(), dir, chunk, &ctx, &mut host);
        } else {
            d.feed(p.as_mut(), dir, chunk, &ctx, &mut host);
        }
        // Whatever is kept is within the cap and was taken from the budget.
        let kept = d.buffered(Direction::ToServer).len() + d.buffered(Direction::ToClient).len();
        assert_eq!(
            kept, host.used,
            "every buffered byte is taken from the budget"
        );
        assert!(d.buffered(dir).len() <= CAP, "buffer over its cap");
    }
    d.expire(p.as_mut(), &Ctx::new(ts + 60_000_000_000), &mut host);
    d.finish(p.as_mut(), &Ctx::new(ts + 1), &mut host);
    assert_eq!(host.used, 0, "every byte taken is given back at the end");
    assert_eq!(
        p.stats().events as usize,
        host.events,
        "every emitted event is counted"
    );
}
