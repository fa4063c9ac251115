//! How a protocol's event is written in each output schema. The output
//! crate writes what every event shares (timestamp, flow, 5-tuple, the
//! schema's envelope) and calls these for the protocol's own members, so a
//! protocol's layout in every schema sits beside its event
//! (`app/<proto>/schema.rs`). Writing JSON into a buffer is not I/O: this
//! crate still does none.

pub use jsonline::{JsonWriter, StrBuilder};

/// What the protocol writers may need to know of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// Captured bodies are cut to this many bytes (0 = never written).
    pub max_body_bytes: usize,
}

/// One writer method per schema (`nutanix` lines are flows only).
pub trait EventWriters {
    /// `native`: the members after the envelope's `app_proto` (the
    /// `"NAME":{...}` object).
    fn native(&self, w: &mut JsonWriter<'_>, o: &WriteOptions);
    /// `ecs`: the members of `event` (`kind`, `category`, `type`,
    /// `action`, `dataset`, `module`), pre-assembled.
    fn ecs_event(&self) -> &'static [u8];
    /// `ecs`: the protocol's ECS field sets (`url`, `http`, `dns`, `tls`, ...).
    fn ecs(&self, w: &mut JsonWriter<'_>, o: &WriteOptions);
    /// `ecs`: what ECS has no field for, inside `flowtap` (after `flow_id`, `direction`).
    fn ecs_flowtap(&self, f: &mut JsonWriter<'_>);
    /// `eve`: Suricata's members for the event type (after `community_id`).
    fn eve(&self, w: &mut JsonWriter<'_>, o: &WriteOptions);
    /// `gelf`: what follows the event type in `short_message` (` GET example.com / 200`).
    fn gelf_short(&self, s: &mut StrBuilder<'_>);
    /// `gelf`: the flat `_` fields.
    fn gelf(&self, w: &mut JsonWriter<'_>, o: &WriteOptions);
    /// `nanocorp`: the number that makes the event id unique within its flow.
    fn nanocorp_id(&self) -> u64;
    /// `nanocorp`: the protocol object.
    fn nanocorp(&self, w: &mut JsonWriter<'_>, o: &WriteOptions);
}

/// `key` when the value is there.
#[inline(always)]
pub fn opt_str<S: AsRef<str>>(w: &mut JsonWriter<'_>, key: &str, v: &Option<S>) {
    if let Some(s) = v {
        w.str(key, s.as_ref());
    }
}

/// `key` when the value is there.
#[inline(always)]
pub fn opt_u64(w: &mut JsonWriter<'_>, key: &str, v: Option<u64>) {
    if let Some(n) = v {
        w.u64(key, n);
    }
}

/// Cuts `b` to at most `max` bytes.
pub fn cut(b: &[u8], max: usize) -> &[u8] {
    b.get(..max.min(b.len())).unwrap_or(b)
}

/// Lower-case hex of a u16 without leading zeros (Suricata's dns `flags`).
pub fn push_hex_u16(buf: &mut Vec<u8>, v: u16) {
    let (digits, skip) = hex_u16_digits(v);
    buf.extend_from_slice(digits.get(skip..).unwrap_or(&digits));
}

/// The four hex digits of `v` and how many leading zeros to skip (at most
/// three): the text without a buffer of its own.
#[inline]
pub fn hex_u16_digits(v: u16) -> ([u8; 4], usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = [
        HEX[usize::from(v >> 12)],
        HEX[usize::from((v >> 8) & 0xf)],
        HEX[usize::from((v >> 4) & 0xf)],
        HEX[usize::from(v & 0xf)],
    ];
    // at least one digit
    (digits, (v.leading_zeros() / 4).min(3) as usize)
}

/// A member holding `v` in hex without leading zeros (`"8180"`). Always
/// inlined: the writer folds a literal key into the member's bytes, while
/// a key passed through a call costs a memset and two memcpy calls.
#[inline(always)]
pub fn hex_u16_member(w: &mut JsonWriter<'_>, key: &str, v: u16) {
    let (digits, skip) = hex_u16_digits(v);
    w.bytes_as_str(key, digits.get(skip..).unwrap_or(&digits));
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_u16_has_no_leading_zeros() {
        for v in [0u16, 1, 0xf, 0x10, 0x100, 0x120, 0x8180, 0xffff, 0x0abc] {
            let mut b = Vec::new();
            super::push_hex_u16(&mut b, v);
            assert_eq!(String::from_utf8_lossy(&b), format!("{v:x}"));
        }
    }
}
