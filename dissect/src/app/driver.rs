//! The one driver that feeds a parser: used by the engine (`engine/src/stream.rs`),
//! the unit tests (`testutil::Driver`) and the fuzz targets, so all three
//! exercise the same reading of the contract at the top of [`crate::app`].
//!
//! [`AppDriver`] keeps, per direction, the bytes the parser has not consumed
//! yet, how many it said it needs before the next call, and whether it gave
//! up on that direction. It does not own the parser (the engine creates one
//! only once detection has settled, while the driver already holds the bytes
//! seen so far) and it owns no limit: its caller, a [`DriverHost`], lends the
//! per-direction cap, buffer memory from a budget wider than one flow, a
//! place for events and the counters. The engine's host is its per-packet
//! stream context; the tests' and the fuzz targets' hosts check the
//! [`ParseStatus`] contract on every call ([`DriverHost::CHECK_CONTRACT`]).

use super::{AppEvent, AppParser, Ctx, Direction, ParseStatus};

/// A limit or failure the driver ran into, for the host's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// The parser needed, or left, more than [`DriverHost::max_pending`]
    /// bytes: they were dropped as a gap.
    PendingCap,
    /// [`DriverHost::take`] refused memory: the bytes were dropped as a gap.
    Budget,
    /// The parser returned [`ParseStatus::Error`].
    ParseError,
}

/// What a caller lends the driver for one call.
pub trait DriverHost {
    /// Assert the [`ParseStatus`] contract on every parse result (consumed
    /// within the slice; `Incomplete` needs more than is left). The engine
    /// leaves it off and clamps instead; the tests and fuzz targets turn it
    /// on. A constant, so the engine's code carries no check at all.
    const CHECK_CONTRACT: bool = false;
    /// Most unconsumed bytes one direction keeps; needing more is a gap.
    fn max_pending(&self) -> usize;
    /// Reserves `n` bytes of buffer memory; `false` refuses them.
    fn take(&mut self, n: usize) -> bool;
    /// Returns `n` bytes taken before.
    fn give(&mut self, n: usize);
    /// An event the parser emitted.
    fn emit(&mut self, ev: AppEvent);
    /// Counts a limit or failure.
    fn hit(&mut self, what: Hit);
}

/// Per-direction feeding state of one flow's parser (index: [`Direction::index`]).
#[derive(Debug, Default)]
pub struct AppDriver {
    /// Bytes delivered in order but not consumed by the parser yet (before
    /// detection: the first bytes, held for the probes). Crate-visible so
    /// the unit tests can assert on it.
    pub(crate) buf: [Vec<u8>; 2],
    /// The parser said it needs this many buffered bytes before another call.
    needed: [usize; 2],
    /// The parser gave up on this direction.
    stopped: [bool; 2],
}

/// (consumed, needed, error) of a parse result.
fn split_status(st: ParseStatus) -> (usize, usize, bool) {
    match st {
        ParseStatus::Consumed(n) => (n, 0, false),
        ParseStatus::Incomplete { consumed, needed } => (consumed, needed, false),
        ParseStatus::Error { consumed } => (consumed, 0, true),
    }
}

/// The contract checks of [`DriverHost::CHECK_CONTRACT`]: `len` bytes were given.
fn check(st: ParseStatus, len: usize) {
    let (consumed, needed, _) = split_status(st);
    assert!(
        consumed <= len,
        "{st:?}: consumed more than the {len} given"
    );
    if let ParseStatus::Incomplete { .. } = st {
        assert!(
            needed > len - consumed,
            "{st:?}: Incomplete must need more than the {} it has",
            len - consumed
        );
    }
}

impl AppDriver {
    pub const fn new() -> AppDriver {
        AppDriver {
            buf: [Vec::new(), Vec::new()],
            needed: [0; 2],
            stopped: [false; 2],
        }
    }

    /// Bytes of `dir` delivered and not consumed yet (or held for detection).
    pub fn buffered(&self, dir: Direction) -> &[u8] {
        &self.buf[dir.index()]
    }

    /// The parser gave up on `dir` (returned `Error`, or [`AppDriver::stop`]).
    pub fn is_stopped(&self, dir: Direction) -> bool {
        self.stopped[dir.index()]
    }

    /// Stops feeding `dir` and drops what it holds.
    pub fn stop<H: DriverHost>(&mut self, dir: Direction, host: &mut H) {
        let i = dir.index();
        self.stopped[i] = true;
        self.drop_buffered(i, host);
    }

    /// Drops the buffered bytes of direction `i`; returns how many.
    fn drop_buffered<H: DriverHost>(&mut self, i: usize, host: &mut H) -> u64 {
        let n = self.buf[i].len();
        host.give(n);
        self.buf[i].clear();
        self.needed[i] = 0;
        n as u64
    }

    /// Before a parser exists (detection): keeps `data` after what `dir`
    /// holds, if the host lends the memory. `false`: refused, nothing kept.
    pub fn hold<H: DriverHost>(&mut self, dir: Direction, data: &[u8], host: &mut H) -> bool {
        if !host.take(data.len()) {
            return false;
        }
        self.buf[dir.index()].extend_from_slice(data);
        true
    }

    /// Detection settled on `parser`: feeds it the bytes held so far, the
    /// client's first (each as one slice, the way [`AppDriver::feed`] feeds
    /// bytes when nothing is pending).
    pub fn start<H: DriverHost>(&mut self, parser: &mut dyn AppParser, ctx: &Ctx, host: &mut H) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            let i = dir.index();
            if self.buf[i].is_empty() {
                continue;
            }
            let held = std::mem::take(&mut self.buf[i]);
            host.give(held.len());
            self.parse_slice(parser, dir, &held, ctx, host);
        }
    }

    /// In-order bytes of `dir` (TCP). Nothing is fed once the direction is
    /// stopped or the parser is done.
    pub fn feed<H: DriverHost>(
        &mut self,
        parser: &mut dyn AppParser,
        dir: Direction,
        data: &[u8],
        ctx: &Ctx,
        host: &mut H,
    ) {
        let i = dir.index();
        if data.is_empty() || self.stopped[i] || parser.is_done() {
            return;
        }
        if self.buf[i].is_empty() {
            // Parse straight from the caller's bytes (the packet): copy
            // only what the parser leaves.
            return self.parse_slice(parser, dir, data, ctx, host);
        }
        if !host.take(data.len()) {
            host.hit(Hit::Budget);
            let lost = (self.buf[i].len() + data.len()) as u64;
            self.drop_buffered(i, host);
            parser.on_gap(dir, lost);
            return;
        }
        self.buf[i].extend_from_slice(data);
        if self.buf[i].len() < self.needed[i] {
            if self.needed[i] > host.max_pending() {
                self.overflow(parser, dir, host);
            }
            return;
        }
        // Parse from the buffer until it stops making progress.
        loop {
            let buf = &self.buf[i];
            let status = parser.parse(dir, buf, ctx, &mut |e| host.emit(e));
            if H::CHECK_CONTRACT {
                check(status, buf.len());
            }
            let (consumed, needed, error) = split_status(status);
            let consumed = consumed.min(self.buf[i].len());
            self.buf[i].drain(..consumed);
            host.give(consumed);
            if error {
                self.stopped[i] = true;
                host.hit(Hit::ParseError);
                self.drop_buffered(i, host);
                return;
            }
            self.needed[i] = needed;
            let left = self.buf[i].len();
            if consumed == 0 || left == 0 || left < needed {
                break;
            }
        }
        if self.buf[i].len() > host.max_pending() {
            self.overflow(parser, dir, host);
        }
    }

    /// One parse of `data` (nothing of `dir` is buffered); keeps what is left.
    // Always inlined: it is the engine's per-segment path (as a call, the
    // stream layer ran 6 % more instructions on W1's first 50k packets).
    #[inline(always)]
    fn parse_slice<H: DriverHost>(
        &mut self,
        parser: &mut dyn AppParser,
        dir: Direction,
        data: &[u8],
        ctx: &Ctx,
        host: &mut H,
    ) {
        let status = parser.parse(dir, data, ctx, &mut |e| host.emit(e));
        if H::CHECK_CONTRACT {
            check(status, data.len());
        }
        let (consumed, needed, error) = split_status(status);
        let i = dir.index();
        if error {
            self.stopped[i] = true;
            host.hit(Hit::ParseError);
            return;
        }
        let rest = data.get(consumed.min(data.len())..).unwrap_or(&[]);
        if rest.is_empty() {
            return;
        }
        // Keep the rest, within the caps.
        let cap = host.max_pending();
        if needed > cap || rest.len() > cap {
            host.hit(Hit::PendingCap);
            parser.on_gap(dir, rest.len() as u64);
            return;
        }
        if !host.take(rest.len()) {
            host.hit(Hit::Budget);
            parser.on_gap(dir, rest.len() as u64);
            return;
        }
        self.buf[i].extend_from_slice(rest);
        self.needed[i] = needed;
    }

    /// The parser wants more than a direction may hold: drop what is
    /// buffered, as a gap.
    fn overflow<H: DriverHost>(
        &mut self,
        parser: &mut dyn AppParser,
        dir: Direction,
        host: &mut H,
    ) {
        host.hit(Hit::PendingCap);
        let lost = self.drop_buffered(dir.index(), host);
        parser.on_gap(dir, lost);
    }

    /// `missed` bytes of `dir` were lost after everything fed so far: the
    /// buffered bytes go too, and the parser hears of both (even on a
    /// stopped direction: the parser's counters see every hole).
    pub fn gap<H: DriverHost>(
        &mut self,
        parser: &mut dyn AppParser,
        dir: Direction,
        missed: u64,
        host: &mut H,
    ) {
        let dropped = self.drop_buffered(dir.index(), host);
        parser.on_gap(dir, missed + dropped);
    }

    /// One whole datagram of `dir` (UDP): parsed once, nothing kept. An
    /// error is counted but does not stop the direction: the next datagram
    /// is a new message.
    pub fn datagram<H: DriverHost>(
        &mut self,
        parser: &mut dyn AppParser,
        dir: Direction,
        data: &[u8],
        ctx: &Ctx,
        host: &mut H,
    ) {
        let status = parser.parse(dir, data, ctx, &mut |e| host.emit(e));
        if H::CHECK_CONTRACT {
            check(status, data.len());
        }
        if let ParseStatus::Error { .. } = status {
            host.hit(Hit::ParseError);
        }
    }

    /// Timer hook: the parser emits transactions that waited too long.
    pub fn expire<H: DriverHost>(&mut self, parser: &mut dyn AppParser, ctx: &Ctx, host: &mut H) {
        parser.expire(ctx, &mut |e| host.emit(e));
    }

    /// Flow end: the parser emits what it still holds, and every buffer
    /// is given back.
    pub fn finish<H: DriverHost>(&mut self, parser: &mut dyn AppParser, ctx: &Ctx, host: &mut H) {
        parser.flush(ctx, &mut |e| host.emit(e));
        self.release(host);
    }

    /// Drops every buffered byte and frees the buffers (detection gave up,
    /// or the flow ended).
    pub fn release<H: DriverHost>(&mut self, host: &mut H) {
        for i in 0..2 {
            host.give(self.buf[i].len());
            self.buf[i] = Vec::new();
            self.needed[i] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{AppProto, AppStats};
    use std::collections::VecDeque;
    use Direction::{ToClient, ToServer};

    /// What the driver did to the parser.
    #[derive(Debug, PartialEq, Eq)]
    enum Call {
        Parse(Direction, Vec<u8>),
        Gap(Direction, u64),
        Flush,
    }

    /// Answers `parse` from a script (`Consumed(len)` once it runs out).
    #[derive(Default)]
    struct Scripted {
        answers: VecDeque<ParseStatus>,
        calls: Vec<Call>,
        done: bool,
    }

    impl AppParser for Scripted {
        fn parse(
            &mut self,
            dir: Direction,
            data: &[u8],
            _ctx: &Ctx,
            _emit: &mut dyn FnMut(AppEvent),
        ) -> ParseStatus {
            self.calls.push(Call::Parse(dir, data.to_vec()));
            self.answers
                .pop_front()
                .unwrap_or(ParseStatus::Consumed(data.len()))
        }
        fn on_gap(&mut self, dir: Direction, len: u64) {
            self.calls.push(Call::Gap(dir, len));
        }
        fn flush(&mut self, _ctx: &Ctx, _emit: &mut dyn FnMut(AppEvent)) {
            self.calls.push(Call::Flush);
        }
        fn is_done(&self) -> bool {
            self.done
        }
        fn stats(&self) -> AppStats {
            AppStats::default()
        }
        fn proto(&self) -> AppProto {
            AppProto::Http
        }
    }

    /// A host with a budget and the counters, contract checks as asked.
    struct Host<const CHECK: bool> {
        cap: usize,
        budget: usize,
        used: usize,
        hits: Vec<Hit>,
    }

    impl<const CHECK: bool> DriverHost for Host<CHECK> {
        const CHECK_CONTRACT: bool = CHECK;
        fn max_pending(&self) -> usize {
            self.cap
        }
        fn take(&mut self, n: usize) -> bool {
            if self.used + n > self.budget {
                return false;
            }
            self.used += n;
            true
        }
        fn give(&mut self, n: usize) {
            self.used -= n;
        }
        fn emit(&mut self, _ev: AppEvent) {}
        fn hit(&mut self, what: Hit) {
            self.hits.push(what);
        }
    }

    fn host(cap: usize, budget: usize) -> Host<false> {
        Host {
            cap,
            budget,
            used: 0,
            hits: Vec::new(),
        }
    }

    fn scripted(answers: &[ParseStatus]) -> Scripted {
        Scripted {
            answers: answers.iter().copied().collect(),
            ..Scripted::default()
        }
    }

    const CTX: Ctx = Ctx { ts_ns: 1 };

    #[test]
    fn needed_is_honoured_and_the_rest_is_parsed_from_the_buffer() {
        let mut p = scripted(&[
            ParseStatus::Incomplete {
                consumed: 2,
                needed: 6,
            },
            ParseStatus::Consumed(4),
        ]);
        let mut h = host(100, 100);
        let mut d = AppDriver::new();
        d.feed(&mut p, ToServer, b"abcdef", &CTX, &mut h);
        assert_eq!(d.buffered(ToServer), b"cdef");
        assert_eq!(h.used, 4);
        // Still short of `needed`: no call.
        d.feed(&mut p, ToServer, b"g", &CTX, &mut h);
        // Enough: one call with everything; it consumes 4 and the loop goes
        // on with the rest (`Consumed` needs nothing more).
        d.feed(&mut p, ToServer, b"h", &CTX, &mut h);
        assert_eq!(
            p.calls,
            [
                Call::Parse(ToServer, b"abcdef".to_vec()),
                Call::Parse(ToServer, b"cdefgh".to_vec()),
                Call::Parse(ToServer, b"gh".to_vec()),
            ]
        );
        assert!(d.buffered(ToServer).is_empty());
        assert_eq!(h.used, 0);
        assert!(h.hits.is_empty());
    }

    #[test]
    fn error_stops_one_direction_only() {
        let mut p = scripted(&[
            ParseStatus::Incomplete {
                consumed: 0,
                needed: 10,
            },
            ParseStatus::Error { consumed: 1 },
        ]);
        let mut h = host(100, 100);
        let mut d = AppDriver::new();
        d.feed(&mut p, ToServer, b"abc", &CTX, &mut h);
        d.feed(&mut p, ToServer, b"defghijk", &CTX, &mut h);
        assert!(d.is_stopped(ToServer) && !d.is_stopped(ToClient));
        assert!(d.buffered(ToServer).is_empty());
        assert_eq!((h.used, &h.hits[..]), (0, &[Hit::ParseError][..]));
        d.feed(&mut p, ToServer, b"more", &CTX, &mut h);
        d.feed(&mut p, ToClient, b"reply", &CTX, &mut h);
        assert_eq!(p.calls.len(), 3);
        assert_eq!(p.calls[2], Call::Parse(ToClient, b"reply".to_vec()));
        // A hole on the stopped side still reaches the parser's counters.
        d.gap(&mut p, ToServer, 7, &mut h);
        assert_eq!(p.calls[3], Call::Gap(ToServer, 7));
    }

    #[test]
    fn gap_drops_the_buffer_and_reports_it_with_the_hole() {
        let mut p = scripted(&[ParseStatus::Incomplete {
            consumed: 1,
            needed: 50,
        }]);
        let mut h = host(100, 100);
        let mut d = AppDriver::new();
        d.feed(&mut p, ToClient, b"xyz", &CTX, &mut h);
        d.gap(&mut p, ToClient, 1000, &mut h);
        assert_eq!(p.calls[1], Call::Gap(ToClient, 1002));
        assert!(d.buffered(ToClient).is_empty());
        assert_eq!(h.used, 0);
        // `needed` went with the buffer: the next bytes are parsed at once.
        d.feed(&mut p, ToClient, b"z", &CTX, &mut h);
        assert_eq!(p.calls[2], Call::Parse(ToClient, b"z".to_vec()));
    }

    #[test]
    fn caps_turn_into_gaps() {
        // Needing more than the cap: the rest is dropped as a gap at once.
        let mut p = scripted(&[ParseStatus::Incomplete {
            consumed: 0,
            needed: 11,
        }]);
        let mut h = host(10, 100);
        let mut d = AppDriver::new();
        d.feed(&mut p, ToServer, b"abcd", &CTX, &mut h);
        assert_eq!(p.calls[1], Call::Gap(ToServer, 4));
        assert_eq!(h.hits, [Hit::PendingCap]);
        // Leaving more than the cap after a buffered parse: dropped too.
        let mut p = scripted(&[
            ParseStatus::Incomplete {
                consumed: 0,
                needed: 5,
            },
            ParseStatus::Incomplete {
                consumed: 0,
                needed: 20,
            },
        ]);
        let mut h = host(10, 100);
        let mut d = AppDriver::new();
        d.feed(&mut p, ToServer, b"abcd", &CTX, &mut h);
        d.feed(&mut p, ToServer, b"efghijk", &CTX, &mut h);
        assert_eq!(p.calls[2], Call::Gap(ToServer, 11));
        assert_eq!((h.used, &h.hits[..]), (0, &[Hit::PendingCap][..]));
        // The budget refuses: what was buffered and the new bytes are lost.
        let mut p = scripted(&[ParseStatus::Incomplete {
            consumed: 0,
            needed: 5,
        }]);
        let mut h = host(100, 6);
        let mut d = AppDriver::new();
        d.feed(&mut p, ToServer, b"abcd", &CTX, &mut h);
        d.feed(&mut p, ToServer, b"efg", &CTX, &mut h);
        assert_eq!(p.calls[1], Call::Gap(ToServer, 7));
        assert_eq!((h.used, &h.hits[..]), (0, &[Hit::Budget][..]));
    }

    #[test]
    fn held_bytes_start_the_parser_client_first_and_finish_gives_all_back() {
        let mut h = host(100, 100);
        let mut d = AppDriver::new();
        assert!(d.hold(ToClient, b"220 ", &mut h));
        assert!(d.hold(ToServer, b"GE", &mut h));
        assert!(d.hold(ToServer, b"T ", &mut h));
        assert!(!d.hold(ToServer, &[0; 100], &mut h), "over the budget");
        assert_eq!(d.buffered(ToServer), b"GET ");
        let mut p = scripted(&[ParseStatus::Consumed(3)]);
        d.start(&mut p, &CTX, &mut h);
        assert_eq!(
            p.calls,
            [
                Call::Parse(ToServer, b"GET ".to_vec()),
                Call::Parse(ToClient, b"220 ".to_vec()),
            ]
        );
        assert_eq!(d.buffered(ToServer), b" ");
        assert_eq!(h.used, 1);
        d.finish(&mut p, &CTX, &mut h);
        assert_eq!(p.calls[2], Call::Flush);
        assert_eq!(h.used, 0);
        assert!(d.buffered(ToServer).is_empty());
    }

    #[test]
    fn nothing_is_fed_once_the_parser_is_done() {
        let mut p = scripted(&[]);
        p.done = true;
        let mut h = host(100, 100);
        let mut d = AppDriver::new();
        d.feed(&mut p, ToServer, b"tunnel", &CTX, &mut h);
        assert!(p.calls.is_empty() && d.buffered(ToServer).is_empty());
    }

    #[test]
    fn a_bad_datagram_does_not_stop_the_next() {
        let mut p = scripted(&[ParseStatus::Error { consumed: 0 }]);
        let mut h = host(100, 100);
        let mut d = AppDriver::new();
        d.datagram(&mut p, ToServer, b"bad", &CTX, &mut h);
        d.datagram(&mut p, ToServer, b"good", &CTX, &mut h);
        assert_eq!(p.calls.len(), 2);
        assert_eq!(h.hits, [Hit::ParseError]);
        assert!(!d.is_stopped(ToServer));
    }

    fn checked(answer: ParseStatus) {
        let mut p = scripted(&[answer]);
        let mut h = Host::<true> {
            cap: 100,
            budget: 100,
            used: 0,
            hits: Vec::new(),
        };
        AppDriver::new().feed(&mut p, ToServer, b"abcd", &CTX, &mut h);
    }

    #[test]
    fn contract_checks_accept_what_the_contract_allows() {
        checked(ParseStatus::Consumed(4));
        checked(ParseStatus::Incomplete {
            consumed: 1,
            needed: 4,
        });
        checked(ParseStatus::Error { consumed: 4 });
    }

    #[test]
    #[should_panic(expected = "consumed more than")]
    fn contract_check_consumed_past_the_end() {
        checked(ParseStatus::Consumed(5));
    }

    #[test]
    #[should_panic(expected = "must need more")]
    fn contract_check_incomplete_needing_what_it_has() {
        checked(ParseStatus::Incomplete {
            consumed: 1,
            needed: 3,
        });
    }
}
