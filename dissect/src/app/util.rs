//! Small helpers shared by the parsers: bounded copies and hex formatting.

/// Copy at most `max` bytes of `b` into a `String` (lossy UTF-8).
pub(crate) fn bounded_string(b: &[u8], max: usize) -> String {
    let cut = b.get(..max).unwrap_or(b);
    // Valid UTF-8 (nearly always: header values, names) is checked a word
    // at a time by `from_utf8`; only invalid input pays for the lossy pass.
    match std::str::from_utf8(cut) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(cut).into_owned(),
    }
}

/// Same as [`bounded_string`], and says whether it cut.
pub(crate) fn bounded_string_flag(b: &[u8], max: usize) -> (String, bool) {
    (bounded_string(b, max), b.len() > max)
}

/// Append `extra` to `s` while `s` stays within `max` bytes (char-safe).
/// Returns true if something was cut.
pub(crate) fn push_bounded(s: &mut String, extra: &str, max: usize) -> bool {
    let room = max.saturating_sub(s.len());
    if extra.len() <= room {
        s.push_str(extra);
        return false;
    }
    let mut end = room;
    while end > 0 && !extra.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(part) = extra.get(..end) {
        s.push_str(part);
    }
    true
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Hex of `b`, lower case, no separator.
pub(crate) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        push_hex_byte(&mut s, x, HEX_LOWER);
    }
    s
}

/// Hex of `b` with `:` between bytes; `upper` picks the case.
pub(crate) fn hex_colon(b: &[u8], upper: bool) -> String {
    let table = if upper { HEX_UPPER } else { HEX_LOWER };
    let mut s = String::with_capacity(b.len() * 3);
    for (i, &x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        push_hex_byte(&mut s, x, table);
    }
    s
}

fn push_hex_byte(s: &mut String, x: u8, table: &[u8; 16]) {
    let hi = table.get(usize::from(x >> 4)).copied().unwrap_or(b'0');
    let lo = table.get(usize::from(x & 0x0f)).copied().unwrap_or(b'0');
    s.push(char::from(hi));
    s.push(char::from(lo));
}

/// Read a big-endian u16 at `off`.
#[inline]
pub(crate) fn be16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

/// Read a big-endian 24-bit integer at `off`.
#[inline]
pub(crate) fn be24(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(3)?)?;
    Some(u32::from_be_bytes([0, *s.first()?, *s.get(1)?, *s.get(2)?]))
}

/// Read a big-endian u32 at `off`.
#[inline]
pub(crate) fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([
        *s.first()?,
        *s.get(1)?,
        *s.get(2)?,
        *s.get(3)?,
    ]))
}

/// Reads a number of seconds into nanoseconds (config keys written in seconds).
pub(crate) fn secs_as_ns<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let secs = <u64 as serde::Deserialize>::deserialize(d)?;
    Ok(secs.saturating_mul(1_000_000_000))
}

/// A fast, non-cryptographic hash of `b`, eight bytes at a time (keys of
/// the per-worker caches, which compare the whole input on a hit).
pub(crate) fn fast_hash(b: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = b.len() as u64;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let mut x = [0u8; 8];
        x.copy_from_slice(w);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(x)).wrapping_mul(K);
    }
    for &x in words.remainder() {
        h = (h.rotate_left(5) ^ u64::from(x)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

/// Remembers the last results of a pure function of a string (digests of
/// fingerprint strings: a network's clients send the same few hellos over
/// and over). Direct-mapped, `SLOTS` entries, a hit compares the whole
/// input; meant to live in a `thread_local!` (one per worker).
pub(crate) struct Memo {
    slots: Vec<Option<(u64, String, String)>>,
}

impl Memo {
    pub(crate) fn new(slots: usize) -> Memo {
        Memo {
            slots: (0..slots.max(1)).map(|_| None).collect(),
        }
    }

    pub(crate) fn get_or(&mut self, input: &str, f: impl FnOnce(&str) -> String) -> String {
        let key = fast_hash(input.as_bytes());
        let n = self.slots.len();
        let slot = &mut self.slots[(key as usize) % n];
        if let Some((k, i, out)) = slot {
            if *k == key && i == input {
                return out.clone();
            }
        }
        let out = f(input);
        *slot = Some((key, input.to_string(), out.clone()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(hex_colon(&[0, 0xab, 0x10], true), "00:AB:10");
        assert_eq!(hex_colon(&[0xde, 0xad], false), "de:ad");
        assert_eq!(bounded_string(b"abcdef", 3), "abc");
        assert_eq!(bounded_string_flag(b"ab", 3), ("ab".to_string(), false));
        let mut s = String::from("ab");
        assert!(push_bounded(&mut s, "cdé", 4));
        assert_eq!(s, "abcd");
        let mut s = String::from("a");
        assert!(push_bounded(&mut s, "éé", 4)); // é is 2 bytes: "a" + "é" = 3, next would be 5
        assert_eq!(s, "aé");
        assert_eq!(be16(&[1, 2], 0), Some(0x0102));
        assert_eq!(be16(&[1], 0), None);
        assert_eq!(be24(&[1, 2, 3], 0), Some(0x010203));
        assert_eq!(be32(&[1, 2, 3, 4], 0), Some(0x01020304));
        assert_eq!(be32(&[1, 2, 3, 4], usize::MAX), None);
    }

    #[test]
    fn memo_returns_what_the_function_returns_and_calls_it_once_per_input() {
        let mut m = super::Memo::new(1); // one slot: every input collides
        let mut calls = 0;
        let mut f = |s: &str| {
            calls += 1;
            s.to_uppercase()
        };
        assert_eq!(m.get_or("abc", &mut f), "ABC");
        assert_eq!(m.get_or("abc", &mut f), "ABC");
        assert_eq!(m.get_or("xyz", &mut f), "XYZ");
        assert_eq!(m.get_or("abc", &mut f), "ABC");
        assert_eq!(calls, 3);
    }
}
