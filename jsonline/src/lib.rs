//! A small JSON object writer over a reused `Vec<u8>`: no allocation once the
//! buffer has grown, no intermediate `String`s.

use std::io::Write as _;
use std::net::IpAddr;

mod cursor;

pub use cursor::JsonCursor;

/// The longest member prefix (separator, quoted key, colon, opening quote)
/// assembled on the stack.
const PREFIX_MAX: usize = 32;
/// A prefix and the longest value joined to it on the stack (a timestamp:
/// 28 bytes with its quotes).
const MEMBER_MAX: usize = 64;

/// Writes one JSON object at a time into `buf`. Keys are trusted (our own
/// literals); string values are escaped.
pub struct JsonWriter<'b> {
    buf: &'b mut Vec<u8>,
    /// What goes before the next member: `{` (the object's opening brace,
    /// written with its first member so that no member has to test
    /// whether it is the first), then `,`.
    sep: u8,
}

impl<'b> JsonWriter<'b> {
    /// Starts an object at the end of `buf`.
    pub fn object(buf: &'b mut Vec<u8>) -> Self {
        JsonWriter { buf, sep: b'{' }
    }

    /// The opening brace if no member wrote it.
    #[inline(always)]
    fn open_if_empty(&mut self) {
        if self.sep == b'{' {
            self.buf.push(b'{');
        }
    }

    /// Closes the object and ends the line.
    pub fn finish_line(mut self) {
        self.open_if_empty();
        self.buf.extend_from_slice(b"}\n");
    }

    /// The member prefix (separator, quoted key, `tail`) on the stack and
    /// its length, when it fits in [`PREFIX_MAX`] bytes. Always inlined:
    /// callers pass literal keys, so the length is a constant and the prefix
    /// a few stores; the value's bytes can then join it on the stack and the
    /// whole member be appended as one fixed-length copy (one capacity check
    /// per member instead of one per piece).
    #[inline(always)]
    fn prefix(&self, key: &str, tail: &[u8]) -> Option<([u8; MEMBER_MAX], usize)> {
        let k = key.as_bytes();
        let n = 2 + k.len() + tail.len();
        if n > PREFIX_MAX {
            return None;
        }
        let mut a = [0u8; MEMBER_MAX];
        a[0] = self.sep;
        a[1] = b'"';
        a[2..2 + k.len()].copy_from_slice(k);
        a[2 + k.len()..n].copy_from_slice(tail);
        Some((a, n))
    }

    /// Appends `a[..fixed]` in one fixed-length copy, cut back to `len`.
    #[inline(always)]
    fn append_member(&mut self, a: &[u8; MEMBER_MAX], fixed: usize, len: usize) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&a[..fixed]);
        self.buf.truncate(start + len);
        self.sep = b',';
    }

    #[inline(always)]
    fn key_then(&mut self, key: &str, tail: &[u8]) {
        match self.prefix(key, tail) {
            Some((a, n)) => self.buf.extend_from_slice(&a[..n]),
            None => {
                self.buf.extend_from_slice(&[self.sep, b'"']);
                self.buf.extend_from_slice(key.as_bytes());
                self.buf.extend_from_slice(tail);
            }
        }
        self.sep = b',';
    }

    #[inline(always)]
    fn key(&mut self, key: &str) {
        self.key_then(key, b"\":");
    }

    /// A key and the opening quote of its string value, in one piece.
    #[inline(always)]
    fn key_q(&mut self, key: &str) {
        self.key_then(key, b"\":\"");
    }

    #[inline(always)]
    pub fn str(&mut self, key: &str, value: &str) {
        self.bytes_as_str(key, value.as_bytes());
    }

    /// A byte string that should be text; invalid UTF-8 is escaped as \u00XX per byte.
    #[inline(always)]
    pub fn bytes_as_str(&mut self, key: &str, value: &[u8]) {
        // Up to 16 plain bytes (most values): the whole member in one copy.
        if let Some(t) = short_plain(value) {
            if let Some((mut a, p)) = self.prefix(key, b"\":\"") {
                let n = value.len();
                a[p..p + 16].copy_from_slice(&t);
                a[p + n] = b'"';
                self.append_member(&a, p + 17, p + n + 1);
                return;
            }
        }
        self.key_q(key);
        write_escaped_inner(self.buf, value);
        self.buf.push(b'"');
    }

    #[inline(always)]
    pub fn u64(&mut self, key: &str, value: u64) {
        // Below 100 (flags, counters, most KPIs): the whole member in one copy.
        if value < 100 {
            if let Some((mut a, p)) = self.prefix(key, b"\":") {
                let (d, n) = small_digits(value);
                a[p..p + 2].copy_from_slice(&d);
                self.append_member(&a, p + 2, p + n);
                return;
            }
        }
        // Three to five digits (ports, TTLs, ids, sizes, latencies): the
        // digits zero-padded in one word, shifted past the leading zeros,
        // and the whole member again in one copy.
        if (100..100_000).contains(&value) {
            if let Some((mut a, p)) = self.prefix(key, b"\":") {
                let (t, n) = digits5(value as u32);
                a[p..p + 8].copy_from_slice(&t);
                self.append_member(&a, p + 8, p + n);
                return;
            }
        }
        self.key(key);
        push_u64(self.buf, value);
    }

    /// A number written as a string (`"6"`: ECS keyword fields holding
    /// numbers); below 100 the whole member in one copy.
    #[inline(always)]
    pub fn u64_str(&mut self, key: &str, value: u64) {
        if value < 100 {
            if let Some((mut a, p)) = self.prefix(key, b"\":\"") {
                let (d, n) = small_digits(value);
                a[p..p + 2].copy_from_slice(&d);
                a[p + n] = b'"';
                self.append_member(&a, p + 3, p + n + 1);
                return;
            }
        }
        self.key_q(key);
        push_u64(self.buf, value);
        self.buf.push(b'"');
    }

    #[inline(always)]
    pub fn i64(&mut self, key: &str, value: i64) {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    #[inline(always)]
    pub fn bool(&mut self, key: &str, value: bool) {
        // The literal goes with the key: one copy for the whole member.
        if value {
            self.key_then(key, b"\":true");
        } else {
            self.key_then(key, b"\":false");
        }
    }

    #[inline(always)]
    pub fn null(&mut self, key: &str) {
        self.key_then(key, b"\":null");
    }

    #[inline(always)]
    pub fn ip(&mut self, key: &str, value: &IpAddr) {
        match value {
            IpAddr::V4(v4) => self.ipv4_member(key, &ipv4_text(v4.octets())),
            IpAddr::V6(_) => {
                self.key_q(key);
                push_ip(self.buf, value);
                self.buf.push(b'"');
            }
        }
    }

    /// The same address under two keys (ECS `ip` and `address`), its text
    /// formatted once.
    #[inline(always)]
    pub fn ip_twice(&mut self, key: &str, again: &str, value: &IpAddr) {
        match value {
            IpAddr::V4(v4) => {
                let text = ipv4_text(v4.octets());
                self.ipv4_member(key, &text);
                self.ipv4_member(again, &text);
            }
            IpAddr::V6(_) => {
                self.ip(key, value);
                self.ip(again, value);
            }
        }
    }

    /// An IPv4 member from its text, in one copy.
    #[inline(always)]
    fn ipv4_member(&mut self, key: &str, (t, n): &([u8; 16], usize)) {
        let n = *n;
        match self.prefix(key, b"\":\"") {
            Some((mut a, p)) => {
                a[p..p + 16].copy_from_slice(t);
                a[p + n] = b'"';
                self.append_member(&a, p + 17, p + n + 1);
            }
            None => {
                self.key_q(key);
                self.buf.extend_from_slice(&t[..n]);
                self.buf.push(b'"');
            }
        }
    }

    /// A MAC address as `00:1c:42:00:00:08`.
    #[inline(always)]
    pub fn mac(&mut self, key: &str, m: &[u8; 6]) {
        self.mac_with(key, m, b':', HEX_LOWER);
    }

    /// A MAC address as `00-1C-42-00-00-08` (ECS spelling).
    #[inline(always)]
    pub fn mac_upper_dashed(&mut self, key: &str, m: &[u8; 6]) {
        self.mac_with(key, m, b'-', HEX_UPPER);
    }

    /// A MAC address with `sep` between the bytes, as one copy.
    #[inline(always)]
    fn mac_with(&mut self, key: &str, m: &[u8; 6], sep: u8, hex: &[u8; 16]) {
        let text = mac_text(m, sep, hex);
        match self.prefix(key, b"\":\"") {
            Some((mut a, p)) => {
                a[p..p + 17].copy_from_slice(&text);
                a[p + 17] = b'"';
                self.append_member(&a, p + 18, p + 18);
            }
            None => {
                self.key_q(key);
                self.buf.extend_from_slice(&text);
                self.buf.push(b'"');
            }
        }
    }

    /// RFC 3339 UTC timestamp with microseconds.
    #[inline(always)]
    pub fn timestamp(&mut self, key: &str, ts_ns: u64) {
        if let Some((mut a, p)) = self.prefix(key, b"\":\"") {
            a[p..p + 26].copy_from_slice(&rfc3339_micros(ts_ns));
            a[p + 26] = b'Z';
            a[p + 27] = b'"';
            self.append_member(&a, p + 28, p + 28);
            return;
        }
        self.key_q(key);
        let mut out = [b'"'; 28];
        out[..26].copy_from_slice(&rfc3339_micros(ts_ns));
        out[26] = b'Z';
        self.buf.extend_from_slice(&out);
    }

    #[inline(always)]
    pub fn u64_array(&mut self, key: &str, values: impl IntoIterator<Item = u64>) {
        self.key(key);
        self.buf.push(b'[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            push_u64(self.buf, v);
        }
        self.buf.push(b']');
    }

    /// `YYYY-MM-DDTHH:MM:SS` (UTC) of seconds since the epoch, the way
    /// Suricata writes certificate validity.
    #[inline(always)]
    pub fn utc_secs(&mut self, key: &str, secs: i64) {
        self.key(key);
        push_utc_secs(self.buf, secs);
    }

    /// RFC 3339 timestamp the way Suricata's eve.json writes it
    /// (`2014-07-18T12:49:30.592064+0000`).
    #[inline(always)]
    pub fn timestamp_eve(&mut self, key: &str, ts_ns: u64) {
        self.key_q(key);
        let mut out = *b"..........................+0000\"";
        out[..26].copy_from_slice(&rfc3339_micros(ts_ns));
        self.buf.extend_from_slice(&out);
    }

    /// Seconds since the epoch as a number with microseconds (`1405687770.592064`).
    #[inline(always)]
    pub fn epoch_secs(&mut self, key: &str, ts_ns: u64) {
        self.key(key);
        push_epoch_secs(self.buf, ts_ns);
    }

    /// A string value built in place from escaped pieces (no scratch buffer).
    #[inline(always)]
    pub fn str_with(&mut self, key: &str, f: impl FnOnce(&mut StrBuilder<'_>)) {
        self.key_q(key);
        f(&mut StrBuilder { buf: self.buf });
        self.buf.push(b'"');
    }

    /// Members that are already valid JSON (`"a":1,"b":{"c":"d"}`: our own
    /// constant literals), written in one piece.
    #[inline]
    pub fn raw_members(&mut self, members: &[u8]) {
        self.raw_members_with(|b| b.extend_from_slice(members));
    }

    /// Members `f` appends as valid JSON (constant pieces around values it
    /// escapes itself).
    #[inline]
    pub fn raw_members_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        self.buf.push(self.sep);
        self.sep = b',';
        f(self.buf);
    }

    /// A value that is already valid JSON (a number or literal we formatted).
    #[inline(always)]
    pub fn raw(&mut self, key: &str, json: &[u8]) {
        self.key(key);
        self.buf.extend_from_slice(json);
    }

    /// An array of strings.
    #[inline(always)]
    pub fn str_array<'s>(&mut self, key: &str, values: impl IntoIterator<Item = &'s str>) {
        self.key(key);
        self.buf.push(b'[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            write_escaped(self.buf, v.as_bytes());
        }
        self.buf.push(b']');
    }

    /// Opens an array under `key`; close it with [`JsonArray::end`].
    #[inline(always)]
    pub fn begin_array(&mut self, key: &str) -> JsonArray<'_> {
        self.key(key);
        self.buf.push(b'[');
        JsonArray {
            buf: self.buf,
            need_comma: false,
        }
    }

    /// Opens a nested object under `key`; write its members through the
    /// returned writer, then call [`JsonWriter::end_object`].
    #[inline(always)]
    pub fn begin_object(&mut self, key: &str) -> JsonWriter<'_> {
        self.key(key);
        JsonWriter {
            buf: self.buf,
            sep: b'{',
        }
    }

    #[inline]
    pub fn end_object(mut self) {
        self.open_if_empty();
        self.buf.push(b'}');
    }
}

/// Builds the inside of a JSON string; every piece is escaped as needed.
pub struct StrBuilder<'b> {
    buf: &'b mut Vec<u8>,
}

impl StrBuilder<'_> {
    pub fn text(&mut self, s: &str) -> &mut Self {
        write_escaped_inner(self.buf, s.as_bytes());
        self
    }

    pub fn bytes(&mut self, s: &[u8]) -> &mut Self {
        write_escaped_inner(self.buf, s);
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        push_u64(self.buf, v);
        self
    }

    pub fn ip(&mut self, v: &IpAddr) -> &mut Self {
        push_ip(self.buf, v);
        self
    }

    /// Lets `f` append trusted bytes (they must need no escaping).
    pub fn trusted(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        f(self.buf);
        self
    }

    /// Bytes written so far into the string (for trimming).
    pub fn ends_with(&self, b: u8) -> bool {
        self.buf.last() == Some(&b)
    }

    pub fn pop(&mut self) {
        self.buf.pop();
    }
}

/// An open JSON array.
pub struct JsonArray<'b> {
    buf: &'b mut Vec<u8>,
    need_comma: bool,
}

impl JsonArray<'_> {
    fn sep(&mut self) {
        if self.need_comma {
            self.buf.push(b',');
        }
        self.need_comma = true;
    }

    pub fn str(&mut self, v: &str) {
        self.sep();
        write_escaped(self.buf, v.as_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.sep();
        push_u64(self.buf, v);
    }

    /// A string element built in place from escaped pieces.
    pub fn str_with(&mut self, f: impl FnOnce(&mut StrBuilder<'_>)) {
        self.sep();
        self.buf.push(b'"');
        f(&mut StrBuilder { buf: self.buf });
        self.buf.push(b'"');
    }

    pub fn ip(&mut self, v: &IpAddr) {
        self.sep();
        self.buf.push(b'"');
        push_ip(self.buf, v);
        self.buf.push(b'"');
    }

    /// Opens an object element; close it with [`JsonWriter::end_object`].
    pub fn object(&mut self) -> JsonWriter<'_> {
        self.sep();
        JsonWriter {
            buf: self.buf,
            sep: b'{',
        }
    }

    pub fn end(self) {
        self.buf.push(b']');
    }
}

/// `"00"`..`"99"`.
const PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// The digits of `v` (below 100) and how many there are, the first two
/// bytes to copy.
#[inline(always)]
fn small_digits(v: u64) -> ([u8; 2], usize) {
    let d = PAIRS[v as usize];
    if v < 10 {
        ([d[1], d[1]], 1)
    } else {
        (d, 2)
    }
}

/// Appends the decimal digits of `v`. Most numbers in events are small
/// (counters, ports, flags), so those take one store; longer ones are built
/// on the stack and appended as a fixed-length copy cut back to their
/// length (no `memcpy` call of a variable length).
#[inline]
pub fn push_u64(buf: &mut Vec<u8>, v: u64) {
    if v < 10 {
        buf.push(b'0' + v as u8);
    } else if v < 100 {
        buf.extend_from_slice(&PAIRS[v as usize]);
    } else {
        push_u64_long(buf, v);
    }
}

#[inline(never)]
fn push_u64_long(buf: &mut Vec<u8>, v: u64) {
    let (t, n) = long_digits(v);
    let start = buf.len();
    buf.extend_from_slice(&t);
    buf.truncate(start + n);
}

/// The digits of `v` (from 100) at the start of a 24-byte array and how
/// many there are: the caller copies the whole array (a fixed-length copy,
/// no variable-length `memcpy` call) and keeps `n` bytes.
#[inline(always)]
fn long_digits(v: u64) -> ([u8; 24], usize) {
    let mut out = [0u8; 24];
    if (100_000_000..10_000_000_000_000_000).contains(&v) {
        // Nine to sixteen digits (flow ids, byte counts): two halves of
        // eight digits in 32-bit arithmetic, shifted past the leading zeros
        // as one 16-byte word.
        let (hi, lo) = ((v / 100_000_000) as u32, (v % 100_000_000) as u32);
        let mut t = [0u8; 16];
        put8(&mut t, 0, hi);
        put8(&mut t, 8, lo);
        let skip = 7 - hi.ilog10() as usize;
        out[..16].copy_from_slice(&(u128::from_le_bytes(t) >> (8 * skip)).to_le_bytes());
        return (out, 16 - skip);
    }
    if v < 100_000 {
        // Three to five digits (ports, sizes, most latencies).
        let (t, n) = digits5(v as u32);
        out[..8].copy_from_slice(&t);
        return (out, n);
    }
    // Digits from the right, four at a time (one division by a constant
    // each), ending at t[20]; the number is taken as a fixed 20 bytes from
    // its first digit: no digit count up front.
    let mut t = [0u8; 40];
    let mut end = 20;
    let mut v = v;
    while v >= 10_000 {
        let r = (v % 10_000) as usize;
        v /= 10_000;
        t[end - 4..end - 2].copy_from_slice(&PAIRS[r / 100]);
        t[end - 2..end].copy_from_slice(&PAIRS[r % 100]);
        end -= 4;
    }
    // 1..=9999 left: the leading digits.
    let mut v = v as usize;
    if v >= 100 {
        t[end - 2..end].copy_from_slice(&PAIRS[v % 100]);
        v /= 100;
        end -= 2;
    }
    if v >= 10 {
        t[end - 2..end].copy_from_slice(&PAIRS[v]);
        end -= 2;
    } else {
        t[end - 1] = b'0' + v as u8;
        end -= 1;
    }
    out[..20].copy_from_slice(&t[end..end + 20]);
    (out, 20 - end)
}

/// The digits of `v` (100..100_000) at the start of a word and how many
/// there are: five digits zero-padded, shifted past the leading zeros.
#[inline(always)]
fn digits5(v: u32) -> ([u8; 8], usize) {
    let lo = (v % 10_000) as usize;
    let mut t = [0u8; 8];
    t[0] = b'0' + (v / 10_000) as u8;
    t[1..3].copy_from_slice(&PAIRS[lo / 100]);
    t[3..5].copy_from_slice(&PAIRS[lo % 100]);
    let skip = if v >= 10_000 {
        0
    } else if v >= 1_000 {
        1
    } else {
        2
    };
    (
        (u64::from_le_bytes(t) >> (8 * skip)).to_le_bytes(),
        5 - skip,
    )
}

/// The eight digits of `x` (below 10^8), zero-padded, at `t[at..at + 8]`.
#[inline(always)]
fn put8(t: &mut [u8; 16], at: usize, x: u32) {
    let (hi, lo) = ((x / 10_000) as usize, (x % 10_000) as usize);
    t[at..at + 2].copy_from_slice(&PAIRS[hi / 100]);
    t[at + 2..at + 4].copy_from_slice(&PAIRS[hi % 100]);
    t[at + 4..at + 6].copy_from_slice(&PAIRS[lo / 100]);
    t[at + 6..at + 8].copy_from_slice(&PAIRS[lo % 100]);
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// `xx:xx:xx:xx:xx:xx` with `sep` between the bytes.
#[inline(always)]
fn mac_text(m: &[u8; 6], sep: u8, hex: &[u8; 16]) -> [u8; 17] {
    let mut out = [sep; 17];
    for (i, b) in m.iter().enumerate() {
        out[3 * i] = hex[(b >> 4) as usize];
        out[3 * i + 1] = hex[(b & 0xf) as usize];
    }
    out
}

/// Appends an IP address in its canonical text form (RFC 5952 for IPv6).
pub fn push_ip(buf: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => push_ipv4(buf, v4.octets()),
        IpAddr::V6(v6) => push_ipv6(buf, v6),
    }
}

/// Every octet's decimal text followed by a dot, little-endian in the low
/// 32 bits, and that text's length (dot included) above them.
const OCTETS: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let (text, len): ([u8; 4], u64) = if b >= 100 {
            ([b'0' + b / 100, b'0' + b / 10 % 10, b'0' + b % 10, b'.'], 4)
        } else if b >= 10 {
            ([b'0' + b / 10, b'0' + b % 10, b'.', 0], 3)
        } else {
            ([b'0' + b, b'.', 0, 0], 2)
        };
        t[i] = u32::from_le_bytes(text) as u64 | len << 32;
        i += 1;
    }
    t
};

/// Dotted quad: each octet's text (with its dot) stored as one 4-byte
/// word at the running offset of a stack buffer (no per-digit branches);
/// the text is the first `len` bytes.
#[inline(always)]
fn ipv4_text(o: [u8; 4]) -> ([u8; 16], usize) {
    let mut t = [0u8; 20];
    let mut n = 0usize;
    for b in o {
        let e = OCTETS[usize::from(b)];
        t[n..n + 4].copy_from_slice(&(e as u32).to_le_bytes());
        n += (e >> 32) as usize;
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&t[..16]);
    // Without the last octet's dot.
    (out, n - 1)
}

/// Appends the dotted quad as a fixed 16-byte copy cut back to the text
/// (no variable-length memcpy call).
#[inline]
fn push_ipv4(buf: &mut Vec<u8>, o: [u8; 4]) {
    let (t, n) = ipv4_text(o);
    let start = buf.len();
    buf.extend_from_slice(&t);
    buf.truncate(start + n);
}

/// The text `std`'s `Display` gives (RFC 5952: lower-case hex, the first
/// longest run of two or more zero groups as `::`, IPv4-mapped as
/// `::ffff:a.b.c.d`) without going through `core::fmt`.
fn push_ipv6(buf: &mut Vec<u8>, a: &std::net::Ipv6Addr) {
    if let Some(v4) = a.to_ipv4_mapped() {
        buf.extend_from_slice(b"::ffff:");
        push_ipv4(buf, v4.octets());
        return;
    }
    let seg = a.segments();
    let (mut best, mut best_len, mut cur, mut cur_len) = (0, 0, 0, 0);
    for (i, &s) in seg.iter().enumerate() {
        if s == 0 {
            if cur_len == 0 {
                cur = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                best = cur;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    let mut out = [0u8; 39];
    let mut n = 0;
    let group = |out: &mut [u8; 39], n: &mut usize, s: u16| {
        let mut started = false;
        for shift in [12, 8, 4, 0] {
            let d = ((s >> shift) & 0xf) as usize;
            if d != 0 || started || shift == 0 {
                out[*n] = HEX_LOWER[d];
                *n += 1;
                started = true;
            }
        }
    };
    if best_len > 1 {
        for (i, &s) in seg[..best].iter().enumerate() {
            if i > 0 {
                out[n] = b':';
                n += 1;
            }
            group(&mut out, &mut n, s);
        }
        out[n] = b':';
        out[n + 1] = b':';
        n += 2;
        for (i, &s) in seg[best + best_len..].iter().enumerate() {
            if i > 0 {
                out[n] = b':';
                n += 1;
            }
            group(&mut out, &mut n, s);
        }
    } else {
        for (i, &s) in seg.iter().enumerate() {
            if i > 0 {
                out[n] = b':';
                n += 1;
            }
            group(&mut out, &mut n, s);
        }
    }
    let start = buf.len();
    buf.extend_from_slice(&out);
    buf.truncate(start + n);
}

/// Appends seconds since the epoch with six decimals.
pub fn push_epoch_secs(buf: &mut Vec<u8>, ts_ns: u64) {
    push_u64(buf, ts_ns / 1_000_000_000);
    let m = ((ts_ns % 1_000_000_000) / 1_000) as u32;
    let mut out = [b'.'; 7];
    out[1..3].copy_from_slice(&two_digits(m / 10_000));
    out[3..5].copy_from_slice(&two_digits((m / 100) % 100));
    out[5..7].copy_from_slice(&two_digits(m % 100));
    buf.extend_from_slice(&out);
}

/// Writes `s` as a JSON string. Valid UTF-8 is kept; each byte of an invalid
/// sequence becomes `\u00XX` so that no input can make invalid JSON.
#[inline]
pub fn write_escaped(buf: &mut Vec<u8>, s: &[u8]) {
    buf.push(b'"');
    write_escaped_inner(buf, s);
    buf.push(b'"');
}

/// The escaped contents of a JSON string, without the quotes. Always
/// inlined: most values are literals, whose checks then fold away.
#[inline(always)]
fn write_escaped_inner(buf: &mut Vec<u8>, s: &[u8]) {
    // Fast paths: most values (hosts, URIs, names) are plain printable ASCII.
    let n = s.len();
    if n <= 16 {
        // Up to 16 bytes: appended as a fixed 16-byte copy cut back to the
        // value (no variable-length memcpy call).
        match short_plain(s) {
            Some(t) => {
                let start = buf.len();
                buf.extend_from_slice(&t);
                buf.truncate(start + n);
            }
            None => write_escaped_slow(buf, s),
        }
    } else if n <= 32 {
        // 17..=32 bytes (Community IDs, most hosts and URIs): the same with
        // two overlapping 16-byte halves.
        let mut t = [b' '; 32];
        t[..16].copy_from_slice(&word::<16>(s, 0));
        t[n - 16..][..16].copy_from_slice(&word::<16>(s, n - 16));
        let any = (0..4).any(|i| special(word::<8>(&t, 8 * i)));
        if any {
            write_escaped_slow(buf, s);
        } else {
            let start = buf.len();
            buf.extend_from_slice(&t);
            buf.truncate(start + n);
        }
    } else if is_plain(s) {
        buf.extend_from_slice(s);
    } else {
        write_escaped_slow(buf, s);
    }
}

/// `s` (at most 16 bytes) padded with spaces to 16, when it needs no
/// escaping: assembled from overlapping fixed-size loads and checked as two
/// words, with no per-byte loop and no memcpy call.
#[inline(always)]
fn short_plain(s: &[u8]) -> Option<[u8; 16]> {
    let n = s.len();
    if n > 16 {
        return None;
    }
    let mut t = [b' '; 16];
    if n >= 8 {
        t[..8].copy_from_slice(&word::<8>(s, 0));
        t[n - 8..][..8].copy_from_slice(&word::<8>(s, n - 8));
    } else if n >= 4 {
        t[..4].copy_from_slice(&word::<4>(s, 0));
        t[n - 4..][..4].copy_from_slice(&word::<4>(s, n - 4));
    } else if n > 0 {
        // 1..=3 bytes: first, middle and last cover them all.
        t[0] = s[0];
        t[n / 2] = s[n / 2];
        t[n - 1] = s[n - 1];
    }
    // The second word is padding alone up to 8 bytes (most keywords,
    // types and codes): one word to check.
    if special(word::<8>(&t, 0)) || (n > 8 && special(word::<8>(&t, 8))) {
        None
    } else {
        Some(t)
    }
}

/// `N` bytes of `s` from `at` as an array (a fixed-size load).
#[inline(always)]
fn word<const N: usize>(s: &[u8], at: usize) -> [u8; N] {
    let mut w = [0u8; N];
    w.copy_from_slice(&s[at..at + N]);
    w
}

#[cold]
#[inline(never)]
fn write_escaped_slow(buf: &mut Vec<u8>, s: &[u8]) {
    for chunk in s.utf8_chunks() {
        let valid = chunk.valid().as_bytes();
        let mut start = 0;
        for (i, &b) in valid.iter().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f | 0x7f => b"",
                _ => continue,
            };
            buf.extend_from_slice(&valid[start..i]);
            start = i + 1;
            if esc.is_empty() {
                push_u00(buf, b);
            } else {
                buf.extend_from_slice(esc);
            }
        }
        buf.extend_from_slice(&valid[start..]);
        for &b in chunk.invalid() {
            push_u00(buf, b);
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether a byte of the word `w` needs escaping (a control byte, `"`,
/// `\\`, DEL or a non-ASCII byte); may say yes wrongly only when another
/// byte does (the borrows and carries start at such a byte).
#[inline(always)]
fn special(w: [u8; 8]) -> bool {
    let x = u64::from_le_bytes(w);
    let control = x.wrapping_sub(ONES * 0x20) & !x;
    let q = x ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = x ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    // 0x7f becomes 0x80; bytes from 0x80 up have the bit already.
    let high = x.wrapping_add(ONES) | x;
    (control | quote | backslash | high) & HIGH != 0
}

/// Whether `s` is printable ASCII without `"` or `\\` (nothing to escape),
/// eight bytes at a time.
#[inline]
fn is_plain(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        if special(word::<8>(c, 0)) {
            return false;
        }
    }
    // The tail as one more word, padded with spaces (plain).
    let rest = chunks.remainder();
    let mut w = [b' '; 8];
    w[..rest.len()].copy_from_slice(rest);
    !special(w)
}

fn push_u00(buf: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.extend_from_slice(b"\\u00");
    buf.push(HEX[(b >> 4) as usize]);
    buf.push(HEX[(b & 0xf) as usize]);
}

/// Appends `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
pub fn push_rfc3339_micros(buf: &mut Vec<u8>, ts_ns: u64) {
    push_rfc3339_micros_no_z(buf, ts_ns);
    buf.push(b'Z');
}

/// Appends `YYYY-MM-DDTHH:MM:SS.uuuuuu` (UTC, no zone designator).
pub fn push_rfc3339_micros_no_z(buf: &mut Vec<u8>, ts_ns: u64) {
    buf.extend_from_slice(&rfc3339_micros(ts_ns));
}

/// `YYYY-MM-DDTHH:MM:SS.uuuuuu` (UTC). Always inlined: the caller's
/// member array takes the digits directly.
#[inline(always)]
fn rfc3339_micros(ts_ns: u64) -> [u8; 26] {
    let secs = ts_ns / 1_000_000_000;
    let m = ((ts_ns % 1_000_000_000) / 1_000) as usize;
    let mut out = [0u8; 26];
    out[..20].copy_from_slice(&second_prefix(secs));
    out[20..22].copy_from_slice(&PAIRS[m / 10_000 % 100]);
    out[22..24].copy_from_slice(&PAIRS[m / 100 % 100]);
    out[24..26].copy_from_slice(&PAIRS[m % 100]);
    out
}

/// `"00"`..`"99"`.
#[inline]
fn two_digits(v: u32) -> [u8; 2] {
    [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8]
}

/// `YYYY-MM-DDTHH:MM:SS.` of a second since the epoch. The date is kept
/// per thread for the last day seen (the calendar arithmetic is most of a
/// timestamp's cost, and a flow record's start and end often straddle a
/// second but seldom a day); the time of day is three table lookups.
#[inline(always)]
fn second_prefix(secs: u64) -> [u8; 20] {
    // The prefix is kept as two words (16 + 4 bytes): a byte array in the
    // cell was read back one byte at a time.
    thread_local! {
        static DAY: std::cell::Cell<(u64, u128, u32)> =
            const { std::cell::Cell::new((u64::MAX, 0, 0)) };
    }
    let (days, sod) = (secs / 86_400, (secs % 86_400) as usize);
    let (lo, hi) = DAY.with(|day| {
        let (d, lo, hi) = day.get();
        if d == days {
            return (lo, hi);
        }
        let p = civil_prefix(days as i64, 0);
        let lo = u128::from_le_bytes(word::<16>(&p, 0));
        let hi = u32::from_le_bytes(word::<4>(&p, 16));
        day.set((days, lo, hi));
        (lo, hi)
    });
    let mut p = [0u8; 20];
    p[..16].copy_from_slice(&lo.to_le_bytes());
    p[16..].copy_from_slice(&hi.to_le_bytes());
    p[11..13].copy_from_slice(&PAIRS[sod / 3600]);
    p[14..16].copy_from_slice(&PAIRS[sod / 60 % 60]);
    p[17..19].copy_from_slice(&PAIRS[sod % 60]);
    p
}

/// `YYYY-MM-DDTHH:MM:SS.` of a day since 1970-01-01 and a second of that day.
fn civil_prefix(days: i64, sod: u32) -> [u8; 20] {
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    let mut p = *b"0000-00-00T00:00:00.";
    p[0..2].copy_from_slice(&two_digits(y / 100));
    p[2..4].copy_from_slice(&two_digits(y % 100));
    p[5..7].copy_from_slice(&two_digits(m));
    p[8..10].copy_from_slice(&two_digits(d));
    p[11..13].copy_from_slice(&two_digits(sod / 3600));
    p[14..16].copy_from_slice(&two_digits((sod / 60) % 60));
    p[17..19].copy_from_slice(&two_digits(sod % 60));
    p
}

/// Appends `"YYYY-MM-DDTHH:MM:SS"` (quoted, UTC) of seconds since the epoch
/// (years outside 0..=9999 are written as far as the format allows).
pub fn push_utc_secs(buf: &mut Vec<u8>, secs: i64) {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, _, _) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        let _ = write!(buf, "\"{}\"", format_utc(secs));
        return;
    }
    let mut p = civil_prefix(days, sod);
    p[19] = b'"';
    buf.push(b'"');
    buf.extend_from_slice(&p);
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) like Suricata's `notbefore`/`notafter`.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The timestamp format used in records, as a `String` (for logs and tests).
pub fn format_rfc3339_micros(ts_ns: u64) -> String {
    let mut v = Vec::with_capacity(27);
    push_rfc3339_micros(&mut v, ts_ns);
    String::from_utf8_lossy(&v).into_owned()
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Random values for the writers' tests.
#[cfg(test)]
pub(crate) mod test_values {
    /// A xorshift64 generator from `seed` (not zero).
    pub(crate) fn rng(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// `len` characters, printable ASCII but for about one in `every`: a
    /// quote, a backslash, control and non-ASCII characters (what escaping
    /// must handle).
    pub(crate) fn text(next: &mut impl FnMut() -> u64, len: usize, every: u64) -> String {
        (0..len)
            .map(|_| {
                let r = next();
                if r.is_multiple_of(every) {
                    ['"', '\\', '\n', '\u{1}', 'é', '\u{7f}'][(r >> 8) as usize % 6]
                } else {
                    char::from(0x20 + (r >> 16) as u8 % 0x5f)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_micros() {
        assert_eq!(format_rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        // 2026-07-06T00:00:00Z = 1783296000
        assert_eq!(
            format_rfc3339_micros(1_783_296_000_123_456_789),
            "2026-07-06T00:00:00.123456Z"
        );
        // leap day
        assert_eq!(
            format_rfc3339_micros(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        // the per-thread cache: same second, then another one
        assert_eq!(
            format_rfc3339_micros(1_405_687_770_592_064_000),
            "2014-07-18T12:49:30.592064Z"
        );
        assert_eq!(
            format_rfc3339_micros(1_405_687_770_000_001_999),
            "2014-07-18T12:49:30.000001Z"
        );
        assert_eq!(
            format_rfc3339_micros(1_405_687_799_999_999_999),
            "2014-07-18T12:49:59.999999Z"
        );
        let mut b = Vec::new();
        push_epoch_secs(&mut b, 1_405_687_770_000_042_000);
        assert_eq!(b, b"1405687770.000042");
        // a whole day and a year boundary, against plain formatting
        for secs in (0..86_400u64)
            .chain(1_703_980_800..1_704_153_600)
            .step_by(7)
        {
            let got = second_prefix(secs);
            let (y, m, d) = civil_from_days((secs / 86_400) as i64);
            let sod = secs % 86_400;
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.",
                sod / 3600,
                (sod / 60) % 60,
                sod % 60
            );
            assert_eq!(std::str::from_utf8(&got).ok(), Some(want.as_str()));
        }
    }

    #[test]
    fn integers_match_std_formatting() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut values = vec![0, 9, 10, 99, 100, 101, 999, 1000, u64::MAX, u64::MAX - 1];
        for p in 0..20 {
            let x = 10u64.pow(p);
            values.extend([x - 1, x, x + 1]);
        }
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            values.push(seed >> (seed % 64));
        }
        let mut b = b"x".to_vec();
        for v in values {
            b.truncate(1);
            push_u64(&mut b, v);
            assert_eq!(String::from_utf8_lossy(&b[1..]), v.to_string());
        }
    }

    /// The fast paths (short values as two words, plain long ones) write
    /// what the byte-by-byte escaper writes, after what was in the buffer.
    fn escaped_like_the_slow_path(s: &[u8]) {
        let mut fast = b"head".to_vec();
        write_escaped_inner(&mut fast, s);
        let mut slow = b"head".to_vec();
        write_escaped_slow(&mut slow, s);
        assert_eq!(fast, slow, "{s:?}");
    }

    #[test]
    fn plain_detection_matches_the_bytewise_rule() {
        let bytewise = |s: &[u8]| {
            s.iter()
                .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..40 {
            for _ in 0..2_000 {
                let mut s: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // mostly printable, sometimes a special byte
                        if seed.is_multiple_of(16) {
                            [0x00, 0x1f, b'"', b'\\', 0x7f, 0x80, 0xff, 0x20, 0x7e]
                                [(seed >> 8) as usize % 9]
                        } else {
                            0x20 + (seed >> 16) as u8 % 0x5f
                        }
                    })
                    .collect();
                assert_eq!(is_plain(&s), bytewise(&s), "{s:?}");
                escaped_like_the_slow_path(&s);
                s.reverse();
                assert_eq!(is_plain(&s), bytewise(&s), "{s:?}");
                escaped_like_the_slow_path(&s);
            }
        }
        for b in 0..=255u8 {
            for pos in 0..16 {
                let mut s = vec![b'a'; 16];
                s[pos] = b;
                assert_eq!(is_plain(&s), bytewise(&s), "{b:#x} at {pos}");
                for len in [pos + 1, 16] {
                    escaped_like_the_slow_path(&s[..len]);
                }
            }
        }
    }

    #[test]
    fn addresses_match_std_display() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let check = |ip: IpAddr| {
            let mut b = Vec::new();
            push_ip(&mut b, &ip);
            assert_eq!(String::from_utf8_lossy(&b), ip.to_string());
        };
        for _ in 0..20_000 {
            let r = next();
            check(IpAddr::V4(Ipv4Addr::from((r >> 7) as u32)));
            // groups that are often zero, to make runs of every length
            let mut seg = [0u16; 8];
            for s in &mut seg {
                let x = next();
                *s = if x % 3 == 0 { (x >> 20) as u16 } else { 0 };
                if x % 7 == 0 {
                    *s = (x >> 40) as u16 & 0xf;
                }
            }
            check(IpAddr::V6(Ipv6Addr::from(seg)));
        }
        for s in [
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:db8:0:0:1:0:0:1",
            "::ffff:192.0.2.1",
            "::192.0.2.1",
            "fe80::1:0:0:0",
            "0:0:1::",
            "1:0:1:0:1:0:1:0",
        ] {
            check(s.parse().expect("address"));
        }
        for o in [0u8, 9, 10, 99, 100, 199, 255] {
            check(IpAddr::V4(Ipv4Addr::new(o, o, 0, 255)));
        }
    }

    #[test]
    fn utc_seconds_match_the_tls_formatting() {
        for secs in [
            0i64,
            -1,
            951_782_400,
            2_524_607_999,
            253_402_300_799,
            -62_135_596_800,
        ]
        .into_iter()
        .chain((0..400).map(|i| i * 7_919_993))
        {
            let mut b = Vec::new();
            push_utc_secs(&mut b, secs);
            assert_eq!(
                String::from_utf8_lossy(&b),
                format!("\"{}\"", format_utc(secs)),
                "{secs}"
            );
        }
    }

    /// Every member kind with a short key (the one-copy paths) and a key
    /// too long for them (the piecewise paths) parses back to its value.
    #[test]
    fn members_round_trip_with_short_and_long_keys() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let long = "a_key_that_is_longer_than_the_stack_prefix_allows";
        let mut next = test_values::rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..3_000 {
            let len = (next() % 40) as usize;
            let text = test_values::text(&mut next, len, 13);
            let n = match round % 4 {
                0 => next() % 100,
                1 => next() % 100_000,
                _ => next() >> (next() % 64),
            };
            let v4 = IpAddr::V4(Ipv4Addr::from(next() as u32));
            let v6 = IpAddr::V6(Ipv6Addr::from(
                u128::from(next()) << 64 | u128::from(next()),
            ));
            let ts = next() % 4_102_444_800_000_000_000;
            // Keys around the stack member's limits too (a prefix of 31 and
            // 32 bytes: a 32-byte value no longer fits after the latter).
            for key in [
                "k",
                "key_of_twenty_six_bytes_ab",
                "key_of_twenty_seven_bytes_a",
                long,
            ] {
                // One member after what the buffer already held, parsed back.
                let one = |f: &dyn Fn(&mut JsonWriter<'_>)| -> serde_json::Value {
                    let mut buf = b"head".to_vec();
                    let mut w = JsonWriter::object(&mut buf);
                    f(&mut w);
                    w.finish_line();
                    serde_json::from_slice::<serde_json::Value>(&buf[4..])
                        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&buf)))[key]
                        .clone()
                };
                assert_eq!(one(&|w| w.str(key, &text)), text.as_str());
                assert_eq!(one(&|w| w.u64(key, n)), n);
                assert_eq!(one(&|w| w.u64_str(key, n)), n.to_string());
                for ip in [v4, v6] {
                    let mut buf = Vec::new();
                    let mut w = JsonWriter::object(&mut buf);
                    w.ip_twice(key, "again", &ip);
                    w.finish_line();
                    let v: serde_json::Value = serde_json::from_slice(&buf).expect("ip twice");
                    assert_eq!(v[key], ip.to_string());
                    assert_eq!(v["again"], ip.to_string());
                }
                assert_eq!(one(&|w| w.ip(key, &v4)), v4.to_string());
                assert_eq!(one(&|w| w.ip(key, &v6)), v6.to_string());
                assert_eq!(one(&|w| w.timestamp(key, ts)), format_rfc3339_micros(ts));
            }
        }
    }

    #[test]
    fn escapes_and_parses_back() {
        let mut buf = Vec::new();
        let mut w = JsonWriter::object(&mut buf);
        w.str("a", "quote\" back\\ nl\n tab\t ctl\u{1} é");
        w.bytes_as_str("b", &[b'x', 0xff, 0x00, b'y']);
        w.u64("n", 18_446_744_073_709_551_615);
        w.i64("neg", -42);
        w.mac("m", &[0, 0x1b, 0x21, 0xaa, 0xbb, 0xff]);
        w.u64_array("v", [1, 20]);
        let mut inner = w.begin_object("o");
        inner.bool("t", true);
        inner.null("z");
        inner.end_object();
        w.begin_object("empty").end_object();
        w.finish_line();
        let s = std::str::from_utf8(&buf).expect("utf8");
        assert!(s.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(s).expect("valid json");
        assert_eq!(v["a"], "quote\" back\\ nl\n tab\t ctl\u{1} é");
        assert_eq!(v["b"], "x\u{ff}\u{0}y");
        assert_eq!(v["n"], 18_446_744_073_709_551_615u64);
        assert_eq!(v["neg"], -42);
        assert_eq!(v["m"], "00:1b:21:aa:bb:ff");
        assert_eq!(v["v"], serde_json::json!([1, 20]));
        assert_eq!(v["o"]["t"], true);
        assert!(v["o"]["z"].is_null());
        assert_eq!(v["empty"], serde_json::json!({}));
        let mut empty = Vec::new();
        JsonWriter::object(&mut empty).finish_line();
        assert_eq!(empty, b"{}\n");
    }
}
