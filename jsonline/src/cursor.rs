//! A record's JSON written at a cursor inside the buffer: the buffer is
//! grown once to hold the whole record, pieces are stored past the cursor
//! with no capacity check of their own, and the buffer is cut back to the
//! cursor at the end.
//!
//! Meant for records with a fixed layout (the flow record, the envelope of
//! application events): the caller writes keys and punctuation as constant
//! literals that join several members (`"\",\"src_port\":"`), and values
//! through the typed methods. [`JsonWriter`] builds each member on the stack
//! and appends it with its own capacity check; here a member is a literal
//! store and its value's digits.

use std::net::IpAddr;

use crate::{
    digits5, ipv4_text, long_digits, mac_text, push_ip, rfc3339_micros, short_plain, special, word,
    write_escaped_inner, JsonWriter, HEX_LOWER,
};

/// How much the buffer grows past the cursor when a piece does not fit:
/// most records then need one growth.
const ROOM: usize = 512;

/// Writes JSON text at `pos` in a buffer taken over from the caller.
/// Between pieces the buffer may hold scratch bytes past `pos`;
/// [`JsonCursor::finish`] or [`JsonCursor::into_object`] cuts them off and
/// hands the buffer back, so one of them must end every cursor.
///
/// The buffer is moved into the cursor (not borrowed) so that its pointer
/// and length stay in registers: through a `&mut Vec`, every byte stored
/// might have changed them, and each piece reloaded both. For the same
/// reason the cursor's address is never taken (the slow paths get the
/// buffer by value and the position).
#[must_use = "finish() or into_object() hands the buffer back"]
pub struct JsonCursor<'b> {
    out: &'b mut Vec<u8>,
    buf: Vec<u8>,
    pos: usize,
}

/// The buffer grown to hold `w` bytes at `pos`.
#[cold]
#[inline(never)]
fn grown(mut buf: Vec<u8>, pos: usize, w: usize) -> Vec<u8> {
    buf.resize(pos + w.max(ROOM), 0);
    buf
}

/// Lets `f` append at `pos` (pieces of unbounded length): the scratch
/// bytes are cut off first; returns the buffer and the position past what
/// `f` wrote.
#[inline(never)]
fn append_at(mut buf: Vec<u8>, pos: usize, f: impl FnOnce(&mut Vec<u8>)) -> (Vec<u8>, usize) {
    buf.truncate(pos);
    f(&mut buf);
    let end = buf.len();
    (buf, end)
}

#[inline(never)]
fn digits_long(v: u64) -> ([u8; 24], usize) {
    long_digits(v)
}

/// `"0"`..`"99"` as the low two bytes and their length above them.
const SMALL: [u32; 100] = {
    let mut t = [0u32; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = if i < 10 {
            (b'0' + i as u8) as u32 | 1 << 16
        } else {
            (b'0' + (i / 10) as u8) as u32 | ((b'0' + (i % 10) as u8) as u32) << 8 | 2 << 16
        };
        i += 1;
    }
    t
};

/// The digits of `v` (below 100,000) at the start of a word, and how many.
#[inline(always)]
fn digits_short(v: u64) -> ([u8; 8], usize) {
    if v < 100 {
        let e = SMALL[v as usize];
        (u64::from(e & 0xffff).to_le_bytes(), (e >> 16) as usize)
    } else {
        digits5(v as u32)
    }
}

impl<'b> JsonCursor<'b> {
    /// Starts at the end of `out` with room for `room` bytes before the
    /// first growth (an estimate of the record's length).
    pub fn new(out: &'b mut Vec<u8>, room: usize) -> Self {
        let mut buf = std::mem::take(out);
        let pos = buf.len();
        buf.resize(pos + room, 0);
        JsonCursor { out, buf, pos }
    }

    /// The next `w` bytes past the cursor, the buffer grown if they are
    /// not there yet. The caller stores `w` bytes and advances the cursor
    /// by as many as it keeps.
    #[inline(always)]
    fn room(&mut self, w: usize) -> &mut [u8] {
        if self.buf.len().wrapping_sub(self.pos) < w {
            self.buf = grown(std::mem::take(&mut self.buf), self.pos, w);
        }
        &mut self.buf[self.pos..][..w]
    }

    /// Appends through `f` at the cursor.
    #[inline(always)]
    fn append(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let (buf, pos) = append_at(std::mem::take(&mut self.buf), self.pos, f);
        self.buf = buf;
        self.pos = pos;
    }

    /// Stores the literal `lit` then the fixed-size `t`, keeping `n` bytes
    /// of `t`: one room test for the pair.
    #[inline(always)]
    fn put<const W: usize>(&mut self, lit: &[u8], t: &[u8; W], n: usize) {
        let k = lit.len();
        let s = self.room(k + W);
        s[..k].copy_from_slice(lit);
        s[k..].copy_from_slice(t);
        self.pos += k + n;
    }

    /// Stores `lit`, the fixed-size `t` and `close`, keeping `n` bytes of
    /// `t` (the closing bytes are moved back onto the cut).
    #[inline(always)]
    fn put_closed<const W: usize, const C: usize>(
        &mut self,
        lit: &[u8],
        t: &[u8; W],
        n: usize,
        close: &[u8; C],
    ) {
        let k = lit.len();
        let s = self.room(k + W + C);
        s[..k].copy_from_slice(lit);
        s[k..k + W].copy_from_slice(t);
        s[k + n..][..C].copy_from_slice(close);
        self.pos += k + n + C;
    }

    /// JSON text we trust (keys, punctuation, constant values): callers
    /// pass literals, so this is a few fixed stores.
    #[inline(always)]
    pub fn lit(&mut self, text: &[u8]) {
        let n = text.len();
        self.room(n).copy_from_slice(text);
        self.pos += n;
    }

    /// The decimal digits of `v`.
    #[inline(always)]
    pub fn u64(&mut self, v: u64) {
        self.member_u64(b"", v);
    }

    /// The literal `prefix` (separator, key, colon) then the decimal
    /// digits of `v`.
    #[inline(always)]
    pub fn member_u64(&mut self, prefix: &[u8], v: u64) {
        if v < 100_000 {
            let (t, n) = digits_short(v);
            self.put(prefix, &t, n);
        } else {
            let (t, n) = digits_long(v);
            self.put(prefix, &t, n);
        }
    }

    /// The literal `prefix` (ending in the opening quote), the escaped
    /// contents of `s`, and the closing quote.
    #[inline(always)]
    pub fn member_str(&mut self, prefix: &[u8], s: &str) {
        self.member_bytes_as_str(prefix, s.as_bytes());
    }

    /// [`JsonCursor::member_str`] of a byte string that should be text
    /// (invalid UTF-8 is escaped as `\u00XX` per byte).
    #[inline(always)]
    pub fn member_bytes_as_str(&mut self, prefix: &[u8], s: &[u8]) {
        let n = s.len();
        if n <= 16 {
            if let Some(t) = short_plain(s) {
                self.put_closed(prefix, &t, n, b"\"");
                return;
            }
        } else if n <= 32 {
            // 17..=32 bytes (Community IDs, hosts): two overlapping halves.
            let mut t = [b' '; 32];
            t[..16].copy_from_slice(&word::<16>(s, 0));
            t[n - 16..][..16].copy_from_slice(&word::<16>(s, n - 16));
            if !(0..4).any(|i| special(word::<8>(&t, 8 * i))) {
                self.put_closed(prefix, &t, n, b"\"");
                return;
            }
        }
        self.lit(prefix);
        self.append(|buf| {
            write_escaped_inner(buf, s);
            buf.push(b'"');
        });
    }

    /// The literal `prefix` (ending in the opening quote), an IP address's
    /// text and the closing quote.
    #[inline(always)]
    pub fn member_ip(&mut self, prefix: &[u8], ip: &IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                let (t, n) = ipv4_text(v4.octets());
                self.put_closed(prefix, &t, n, b"\"");
            }
            IpAddr::V6(_) => {
                self.lit(prefix);
                self.append(|buf| {
                    push_ip(buf, ip);
                    buf.push(b'"');
                });
            }
        }
    }

    /// The literal `prefix` (ending in the opening quote) and
    /// `YYYY-MM-DDTHH:MM:SS.uuuuuuZ"` (UTC).
    #[inline(always)]
    pub fn member_timestamp(&mut self, prefix: &[u8], ts_ns: u64) {
        let mut t = *b"..........................Z\"";
        t[..26].copy_from_slice(&rfc3339_micros(ts_ns));
        self.put(prefix, &t, 28);
    }

    /// The literal `prefix` (ending in the opening quote) and
    /// `YYYY-MM-DDTHH:MM:SS.uuuuuu+0000"` (Suricata's eve.json spelling).
    #[inline(always)]
    pub fn member_timestamp_eve(&mut self, prefix: &[u8], ts_ns: u64) {
        let mut t = *b"..........................+0000\"";
        t[..26].copy_from_slice(&rfc3339_micros(ts_ns));
        self.put(prefix, &t, 32);
    }

    /// The literal `prefix` (ending in the opening quote) and a MAC address
    /// as `00:1c:42:00:00:08"`.
    #[inline(always)]
    pub fn member_mac(&mut self, prefix: &[u8], m: &[u8; 6]) {
        let mut t = [b'"'; 18];
        t[..17].copy_from_slice(&mac_text(m, b':', HEX_LOWER));
        self.put(prefix, &t, 18);
    }

    /// The literal `prefix` (ending in the opening quote) and a byte as two
    /// lower-case hex digits with the closing quote.
    #[inline(always)]
    pub fn member_hex_byte(&mut self, prefix: &[u8], b: u8) {
        let t = [
            HEX_LOWER[usize::from(b >> 4)],
            HEX_LOWER[usize::from(b & 0xf)],
            b'"',
        ];
        self.put(prefix, &t, 3);
    }

    /// Ends the text: the buffer is cut back to what was written and
    /// handed back.
    #[inline(always)]
    pub fn finish(mut self) {
        self.buf.truncate(self.pos);
        *self.out = self.buf;
    }

    /// Ends the text inside an object this cursor opened and has written at
    /// least one member of: the rest of its members go through the
    /// returned writer.
    #[inline(always)]
    pub fn into_object(mut self) -> JsonWriter<'b> {
        self.buf.truncate(self.pos);
        *self.out = self.buf;
        JsonWriter {
            buf: self.out,
            sep: b',',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every piece, with values on both sides of each fast path's limits,
    /// writes what the object writer writes for the same value.
    #[test]
    fn pieces_match_the_object_writer() {
        let mut next = crate::test_values::rng(0x2545_f491_4f6c_dd1d);
        // What JsonWriter writes for one member `"k":<value>` and a cursor
        // writing `{"k":` + the value + `}\n` must agree.
        let writer = |f: &dyn Fn(&mut JsonWriter<'_>)| {
            let mut buf = b"head".to_vec();
            let mut w = JsonWriter::object(&mut buf);
            f(&mut w);
            w.finish_line();
            buf
        };
        let cursor = |room: usize, f: &dyn Fn(&mut JsonCursor<'_>)| {
            let mut buf = b"head".to_vec();
            let mut c = JsonCursor::new(&mut buf, room);
            f(&mut c);
            c.lit(b"}\n");
            c.finish();
            buf
        };
        for round in 0..20_000 {
            let n = match round % 5 {
                0 => next() % 100,
                1 => next() % 100_000,
                2 => 10u64.pow((next() % 20) as u32) + next() % 3 - 1,
                _ => next() >> (next() % 64),
            };
            let len = (next() % 48) as usize;
            let text = crate::test_values::text(&mut next, len, 17);
            let ip = if round % 3 == 0 {
                IpAddr::from((u128::from(next()) << 64 | u128::from(next())).to_be_bytes())
            } else {
                IpAddr::from((next() as u32).to_be_bytes())
            };
            let ts = next() % 4_102_444_800_000_000_000;
            let mac = next().to_le_bytes()[..6].try_into().expect("six bytes");
            // Room from none at all (every piece grows the buffer) up.
            for room in [0, 7, 64, 1024] {
                assert_eq!(
                    cursor(room, &|c| c.member_u64(b"{\"k\":", n)),
                    writer(&|w| w.raw("k", n.to_string().as_bytes())),
                    "{n}"
                );
                assert_eq!(
                    cursor(room, &|c| c.member_str(b"{\"k\":\"", &text)),
                    writer(&|w| w.str("k", &text)),
                    "{text:?}"
                );
                assert_eq!(
                    cursor(room, &|c| c.member_ip(b"{\"k\":\"", &ip)),
                    writer(&|w| w.ip("k", &ip))
                );
                assert_eq!(
                    cursor(room, &|c| c.member_timestamp(b"{\"k\":\"", ts)),
                    writer(&|w| w.timestamp("k", ts))
                );
                assert_eq!(
                    cursor(room, &|c| c.member_timestamp_eve(b"{\"k\":\"", ts)),
                    writer(&|w| w.timestamp_eve("k", ts))
                );
                assert_eq!(
                    cursor(room, &|c| c.member_mac(b"{\"k\":\"", &mac)),
                    writer(&|w| w.mac("k", &mac))
                );
                assert_eq!(
                    cursor(room, &|c| c.member_hex_byte(b"{\"k\":\"", n as u8)),
                    writer(&|w| w.str("k", &format!("{:02x}", n as u8)))
                );
            }
        }
    }

    /// The object writer a cursor hands over continues the same object.
    #[test]
    fn into_object_continues_the_object() {
        let mut buf = Vec::new();
        let mut c = JsonCursor::new(&mut buf, 256);
        c.lit(b"{\"a\":");
        c.u64(1);
        c.member_u64(b",\"l\":", 1 << 40);
        let mut w = c.into_object();
        w.u64("b", 2);
        w.finish_line();
        assert_eq!(buf, b"{\"a\":1,\"l\":1099511627776,\"b\":2}\n");
    }
}
