//! DNS message parsing (RFC 1035): header, names with compression, questions
//! and resource records. Every read is bounds-checked; compression pointers
//! must point strictly before the segment being read, so decoding always
//! terminates; names are limited to 255 wire bytes and labels to 63.

use super::event::{ClientSubnet, DnsQuestion, DnsRdata, DnsRecord, Edns, SvcParam};
use crate::app::util::{be16, be32};
use std::net::{Ipv4Addr, Ipv6Addr};

pub const HEADER_LEN: usize = 12;

/// Character-strings kept per TXT/SPF record.
pub const MAX_TXT_STRINGS: usize = 64;
/// Bytes of character-strings kept per TXT/SPF record.
pub const MAX_TXT_BYTES: usize = 4096;
/// Bytes kept of a binary field (key, digest, fingerprint, TLSA data, ECH,
/// unknown SvcParam value).
pub const MAX_BLOB: usize = 1024;
/// SvcParams kept per SVCB/HTTPS record.
pub const MAX_SVC_PARAMS: usize = 32;
/// Types kept from an NSEC bitmap.
pub const MAX_NSEC_TYPES: usize = 128;
/// Unknown EDNS option codes kept.
pub const MAX_EDNS_OTHER: usize = 16;

/// Why a message did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// Ran past the end of the message or of a record's data.
    Short,
    /// Label type 0x40/0x80 (not supported/reserved).
    BadLabel,
    /// Name longer than 255 bytes on the wire.
    NameTooLong,
    /// Compression pointer to itself, forward, or into a loop.
    BadPointer,
    /// Header counts that cannot fit the message.
    BadCounts,
}

/// The fixed header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    /// Whether the message carries anything: a question or a record. A
    /// query with neither (e.g. zero bytes on the mDNS/LLMNR ports) is not
    /// a DNS transaction. (A question-less query with records, such as a
    /// cookie-only query with an OPT record, is.)
    pub fn has_content(&self) -> bool {
        self.qdcount > 0 || self.ancount > 0 || self.nscount > 0 || self.arcount > 0
    }

    pub fn qr(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
    pub fn aa(&self) -> bool {
        self.flags & 0x0400 != 0
    }
    pub fn tc(&self) -> bool {
        self.flags & 0x0200 != 0
    }
    pub fn rd(&self) -> bool {
        self.flags & 0x0100 != 0
    }
    pub fn ra(&self) -> bool {
        self.flags & 0x0080 != 0
    }
    pub fn ad(&self) -> bool {
        self.flags & 0x0020 != 0
    }
    pub fn cd(&self) -> bool {
        self.flags & 0x0010 != 0
    }
    pub fn rcode(&self) -> u16 {
        self.flags & 0x000f
    }
}

pub fn parse_header(msg: &[u8]) -> Result<Header, DnsError> {
    Ok(Header {
        id: be16(msg, 0).ok_or(DnsError::Short)?,
        flags: be16(msg, 2).ok_or(DnsError::Short)?,
        qdcount: be16(msg, 4).ok_or(DnsError::Short)?,
        ancount: be16(msg, 6).ok_or(DnsError::Short)?,
        nscount: be16(msg, 8).ok_or(DnsError::Short)?,
        arcount: be16(msg, 10).ok_or(DnsError::Short)?,
    })
}

/// Cheap plausibility check used by the probes: opcode assigned, counts
/// fit in the message (a question is at least 5 bytes, a record 11).
pub fn plausible_header(h: &Header, msg_len: usize) -> bool {
    let opcode_ok = matches!(h.opcode(), 0 | 1 | 2 | 4 | 5 | 6);
    let min = usize::from(h.qdcount) * 5
        + (usize::from(h.ancount) + usize::from(h.nscount) + usize::from(h.arcount)) * 11;
    opcode_ok && h.qdcount <= 16 && HEADER_LEN + min <= msg_len
}

fn push_label(out: &mut String, label: &[u8]) {
    if !out.is_empty() {
        out.push('.');
    }
    // Printable labels (nearly all) in one copy.
    if label.iter().all(|b| (0x21..0x7f).contains(b)) {
        if let Ok(text) = std::str::from_utf8(label) {
            out.push_str(text);
            return;
        }
    }
    for &b in label {
        if (0x21..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str("\\x");
            out.push_str(&crate::app::util::hex(&[b]));
        }
    }
}

/// Room for the dotted text of most names and one 16-byte piece copied past
/// it (small enough for the zeroing to stay inline). A longer name (up to
/// 253 bytes) takes the label-by-label path.
const NAME_TEXT: usize = 128;

/// Walks the name at `start`, calling `label(offset, len)` for each label
/// in order (its bytes are `msg[offset..offset + len]`, in bounds). Returns
/// the offset just after the name as it sits at `start` (after the first
/// pointer, if any).
#[inline(always)]
fn walk_name(
    msg: &[u8],
    start: usize,
    mut label: impl FnMut(usize, usize),
) -> Result<usize, DnsError> {
    let mut pos = start;
    // Start of the contiguous run being read: a pointer must go below it.
    let mut seg_start = start;
    let mut after: Option<usize> = None;
    let mut wire_len = 0usize;
    loop {
        let b = *msg.get(pos).ok_or(DnsError::Short)?;
        match b & 0xc0 {
            0x00 => {
                if b == 0 {
                    wire_len += 1;
                    if wire_len > 255 {
                        return Err(DnsError::NameTooLong);
                    }
                    return Ok(after.unwrap_or(pos + 1));
                }
                let l = usize::from(b);
                wire_len += l + 1;
                if wire_len > 255 {
                    return Err(DnsError::NameTooLong);
                }
                if pos + 1 + l > msg.len() {
                    return Err(DnsError::Short);
                }
                label(pos + 1, l);
                pos += 1 + l;
            }
            0xc0 => {
                let lo = *msg.get(pos + 1).ok_or(DnsError::Short)?;
                let ptr = (usize::from(b & 0x3f) << 8) | usize::from(lo);
                if after.is_none() {
                    after = Some(pos + 2);
                }
                // Strictly backwards from the current run: no self, forward
                // or looping pointers, and a bounded number of jumps.
                if ptr >= seg_start {
                    return Err(DnsError::BadPointer);
                }
                seg_start = ptr;
                pos = ptr;
            }
            _ => return Err(DnsError::BadLabel),
        }
    }
}

/// Copies `src[from..from + len]` to `dst[at..]` in fixed-size pieces (16,
/// then 8 bytes, then single bytes at the very end of the message): labels
/// are short, and a variable-length `memcpy` call costs more than the copy.
/// Bytes past `len` may be overwritten.
#[inline(always)]
fn copy_label(dst: &mut [u8; NAME_TEXT], at: usize, src: &[u8], from: usize, len: usize) {
    let mut k = 0;
    while k < len {
        let (d, s) = (at + k, from + k);
        if let (Some(dw), Some(sw)) = (dst.get_mut(d..d + 16), src.get(s..s + 16)) {
            dw.copy_from_slice(sw);
            k += 16;
        } else if let (Some(dw), Some(sw)) = (dst.get_mut(d..d + 8), src.get(s..s + 8)) {
            dw.copy_from_slice(sw);
            k += 8;
        } else {
            if let (Some(db), Some(&sb)) = (dst.get_mut(d), src.get(s)) {
                *db = sb;
            }
            k += 1;
        }
    }
}

/// Whether every byte of `t` is printable ASCII (0x21..=0x7e), eight bytes
/// at a time. A word with a byte out of range always says no; the borrows
/// and carries that could make other bytes look out of range start at
/// such a byte.
#[inline(always)]
fn all_printable(t: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let bad = |w: [u8; 8]| {
        let x = u64::from_le_bytes(w);
        let below = x.wrapping_sub(ONES * 0x21) & !x;
        let above = x.wrapping_add(ONES) | x;
        (below | above) & HIGH != 0
    };
    let mut chunks = t.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if bad(w) {
            return false;
        }
    }
    let rest = chunks.remainder();
    let mut w = [b'a'; 8];
    if let Some(head) = w.get_mut(..rest.len()) {
        head.copy_from_slice(rest);
    }
    !bad(w)
}

/// The dotted text of the name at `start` and the offset just after the name
/// as it sits at `start` (after the first pointer, if any). The text is in
/// `buf` (nearly all names: `Some`) or, for a name with bytes to escape or
/// too long for `buf`, in `spill` (`None`); nothing is allocated for most
/// names.
///
/// The labels are gathered in `buf` first; a name that is all printable
/// ASCII then is that text after one check. Names with other bytes, or too
/// long for the buffer, are walked again label by label (those bytes
/// escaped) into `spill`.
fn name_text<'a>(
    msg: &[u8],
    start: usize,
    buf: &'a mut [u8; NAME_TEXT],
    spill: &mut String,
) -> Result<(Option<&'a str>, usize), DnsError> {
    let mut n = 0usize;
    let mut long = false;
    let after = walk_name(msg, start, |from, len| {
        if n + 1 + len + 16 > NAME_TEXT {
            long = true;
            return;
        }
        if n > 0 {
            if let Some(d) = buf.get_mut(n) {
                *d = b'.';
            }
            n += 1;
        }
        copy_label(buf, n, msg, from, len);
        n += len;
    })?;
    let dotted = buf.get(..n).unwrap_or(&[]);
    if !long && all_printable(dotted) {
        if let Ok(s) = std::str::from_utf8(dotted) {
            return Ok((Some(s), after));
        }
    }
    spill.clear();
    walk_name(msg, start, |from, len| {
        push_label(spill, msg.get(from..from + len).unwrap_or(&[]))
    })?;
    Ok((None, after))
}

/// Read the name at `start` into `out` (replacing its text). Returns the
/// offset just after the name as it sits at `start` (after the first
/// pointer, if any).
pub fn read_name(msg: &[u8], start: usize, out: &mut String) -> Result<usize, DnsError> {
    let mut buf = [0u8; NAME_TEXT];
    let mut spill = String::new();
    out.clear();
    let (text, after) = name_text(msg, start, &mut buf, &mut spill)?;
    out.push_str(text.unwrap_or(&spill));
    Ok(after)
}

/// The name at `start` as a new string of exactly its length, and the
/// offset after it (see [`read_name`]).
fn name_string(msg: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    let mut buf = [0u8; NAME_TEXT];
    let mut spill = String::new();
    let (text, after) = name_text(msg, start, &mut buf, &mut spill)?;
    let name = match text {
        Some(t) => String::from(t),
        None => spill,
    };
    Ok((name, after))
}

/// Checks the question at `off` as [`read_question`] would read it, without
/// decoding its name; the offset after it.
pub fn check_question(msg: &[u8], off: usize) -> Result<usize, DnsError> {
    let p = walk_name(msg, off, |_, _| {})?;
    if p + 4 > msg.len() {
        return Err(DnsError::Short);
    }
    Ok(p + 4)
}

/// The offset after the name at `start`, without decoding it (records that
/// are only stepped over). The same checks on what is read in place: label
/// kinds, the 255-byte limit, and a pointer that goes backwards.
fn skip_name(msg: &[u8], start: usize) -> Result<usize, DnsError> {
    let mut pos = start;
    loop {
        let b = *msg.get(pos).ok_or(DnsError::Short)?;
        match b & 0xc0 {
            0x00 if b == 0 => return Ok(pos + 1),
            0x00 => {
                pos += 1 + usize::from(b);
                if pos - start > 255 {
                    return Err(DnsError::NameTooLong);
                }
            }
            0xc0 => {
                let lo = *msg.get(pos + 1).ok_or(DnsError::Short)?;
                let ptr = (usize::from(b & 0x3f) << 8) | usize::from(lo);
                if ptr >= start {
                    return Err(DnsError::BadPointer);
                }
                return Ok(pos + 2);
            }
            _ => return Err(DnsError::BadLabel),
        }
    }
}

/// One parsed question and the offset after it.
pub fn read_question(msg: &[u8], off: usize) -> Result<(DnsQuestion, usize), DnsError> {
    let (name, p) = name_string(msg, off)?;
    let rtype = be16(msg, p).ok_or(DnsError::Short)?;
    let rclass = be16(msg, p + 2).ok_or(DnsError::Short)?;
    Ok((
        DnsQuestion {
            name,
            rtype,
            rclass,
        },
        p + 4,
    ))
}

/// One parsed record and the offset after it. With `decode` false the data
/// is not decoded (only its length kept), for records past the limit.
pub fn read_record(msg: &[u8], off: usize, decode: bool) -> Result<(DnsRecord, usize), DnsError> {
    read_record_known(msg, off, decode, None)
}

/// [`read_record`], given a name already decoded from `known.0` (the first
/// question's): an owner name that is only a pointer to it (nearly every
/// answer: `c0 0c`) is that text, copied instead of decoded again. The same
/// result as decoding: the pointer goes backwards, and the name it points
/// to decoded once already.
fn read_record_known(
    msg: &[u8],
    off: usize,
    decode: bool,
    known: Option<(usize, &str)>,
) -> Result<(DnsRecord, usize), DnsError> {
    let (name, p) = match (known, msg.get(off), msg.get(off + 1)) {
        (Some((at, text)), Some(&b), Some(&lo))
            if b & 0xc0 == 0xc0
                && (usize::from(b & 0x3f) << 8 | usize::from(lo)) == at
                && at < off =>
        {
            (String::from(text), off + 2)
        }
        _ => name_string(msg, off)?,
    };
    let rtype = be16(msg, p).ok_or(DnsError::Short)?;
    let rclass = be16(msg, p + 2).ok_or(DnsError::Short)?;
    let ttl = be32(msg, p + 4).ok_or(DnsError::Short)?;
    let rdlen = be16(msg, p + 8).ok_or(DnsError::Short)?;
    let rstart = p + 10;
    let rend = rstart + usize::from(rdlen);
    if rend > msg.len() {
        return Err(DnsError::Short);
    }
    let (data, rdata_truncated) = if decode {
        // Addresses (most records) here: what decode_rdata gives them,
        // without the large function's frame and its result moved out.
        match (rtype, msg.get(rstart..rend)) {
            (1, Some(&[a, b, c, d])) => (DnsRdata::A(Ipv4Addr::new(a, b, c, d)), false),
            (28, Some(rd)) if rd.len() == 16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(rd);
                (DnsRdata::Aaaa(Ipv6Addr::from(b)), false)
            }
            _ => decode_rdata(msg, rtype, rstart, rend)
                .unwrap_or((DnsRdata::Malformed { len: rdlen }, false)),
        }
    } else {
        (DnsRdata::Other { len: rdlen }, false)
    };
    Ok((
        DnsRecord {
            name,
            rtype,
            rclass,
            ttl,
            data,
            rdata_truncated,
        },
        rend,
    ))
}

/// Name inside rdata: its in-place part must end within the data.
fn rdata_name(msg: &[u8], off: usize, end: usize) -> Result<(String, usize), DnsError> {
    let (s, p) = name_string(msg, off)?;
    if p > end {
        return Err(DnsError::Short);
    }
    Ok((s, p))
}

/// A length-prefixed character-string at `*p` in `rd`; advances `*p`.
fn char_string<'a>(rd: &'a [u8], p: &mut usize) -> Result<&'a [u8], DnsError> {
    let l = usize::from(*rd.get(*p).ok_or(DnsError::Short)?);
    let s = rd.get(*p + 1..*p + 1 + l).ok_or(DnsError::Short)?;
    *p += 1 + l;
    Ok(s)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// At most `MAX_BLOB` bytes of `b`, and whether it was cut.
fn blob(b: &[u8], cut: &mut bool) -> Vec<u8> {
    if b.len() > MAX_BLOB {
        *cut = true;
    }
    b.get(..b.len().min(MAX_BLOB)).unwrap_or(b).to_vec()
}

/// Decoded data of a known type and whether it was cut at a limit; an
/// error for a known type whose data does not decode (the caller keeps it
/// as `Malformed`). Unknown types give `Other`.
fn decode_rdata(
    msg: &[u8],
    rtype: u16,
    start: usize,
    end: usize,
) -> Result<(DnsRdata, bool), DnsError> {
    let rd = msg.get(start..end).ok_or(DnsError::Short)?;
    let u8_at = |i: usize| rd.get(i).copied().ok_or(DnsError::Short);
    let u16_at = |i: usize| be16(rd, i).ok_or(DnsError::Short);
    let u32_at = |i: usize| be32(rd, i).ok_or(DnsError::Short);
    let mut cut = false;
    let data = match rtype {
        1 => {
            let b: [u8; 4] = rd.try_into().map_err(|_| DnsError::Short)?;
            DnsRdata::A(Ipv4Addr::from(b))
        }
        28 => {
            let b: [u8; 16] = rd.try_into().map_err(|_| DnsError::Short)?;
            DnsRdata::Aaaa(Ipv6Addr::from(b))
        }
        2 | 5 | 12 | 39 => DnsRdata::Name(rdata_name(msg, start, end)?.0),
        15 => {
            let preference = u16_at(0)?;
            let (exchange, _) = rdata_name(msg, start + 2, end)?;
            DnsRdata::Mx {
                preference,
                exchange,
            }
        }
        // TXT and SPF: one or more character-strings.
        16 | 99 => {
            let mut strings = Vec::new();
            let mut bytes = 0usize;
            let mut p = 0usize;
            while p < rd.len() {
                let s = char_string(rd, &mut p)?;
                // Kept: a prefix of the strings, within both limits.
                if !cut && strings.len() < MAX_TXT_STRINGS && bytes + s.len() <= MAX_TXT_BYTES {
                    bytes += s.len();
                    strings.push(lossy(s));
                } else {
                    cut = true;
                }
            }
            DnsRdata::Txt(strings)
        }
        33 => {
            let priority = u16_at(0)?;
            let weight = u16_at(2)?;
            let port = u16_at(4)?;
            let (target, _) = rdata_name(msg, start + 6, end)?;
            DnsRdata::Srv {
                priority,
                weight,
                port,
                target,
            }
        }
        6 => {
            let (mname, p) = rdata_name(msg, start, end)?;
            let (rname, p) = rdata_name(msg, p, end)?;
            if p + 20 > end {
                return Err(DnsError::Short);
            }
            let n = |i: usize| be32(msg, p + 4 * i).ok_or(DnsError::Short);
            DnsRdata::Soa {
                mname,
                rname,
                serial: n(0)?,
                refresh: n(1)?,
                retry: n(2)?,
                expire: n(3)?,
                minimum: n(4)?,
            }
        }
        257 => {
            let flags = u8_at(0)?;
            let mut p = 1;
            let tag = char_string(rd, &mut p)?;
            if tag.is_empty() {
                return Err(DnsError::Short);
            }
            let value = rd.get(p..).unwrap_or(&[]);
            DnsRdata::Caa {
                flags,
                tag: lossy(tag),
                value: lossy(&blob(value, &mut cut)),
            }
        }
        35 => {
            let order = u16_at(0)?;
            let preference = u16_at(2)?;
            let mut p = 4;
            let flags = lossy(char_string(rd, &mut p)?);
            let services = lossy(char_string(rd, &mut p)?);
            let regexp = lossy(char_string(rd, &mut p)?);
            let (replacement, _) = rdata_name(msg, start + p, end)?;
            DnsRdata::Naptr {
                order,
                preference,
                flags,
                services,
                regexp,
                replacement,
            }
        }
        44 => DnsRdata::Sshfp {
            algorithm: u8_at(0)?,
            fp_type: u8_at(1)?,
            fingerprint: blob(rd.get(2..).ok_or(DnsError::Short)?, &mut cut),
        },
        52 => DnsRdata::Tlsa {
            usage: u8_at(0)?,
            selector: u8_at(1)?,
            matching_type: u8_at(2)?,
            data: blob(rd.get(3..).ok_or(DnsError::Short)?, &mut cut),
        },
        64 | 65 => {
            let priority = u16_at(0)?;
            let (target, p) = rdata_name(msg, start + 2, end)?;
            let mut params = Vec::new();
            let mut p = p - start;
            while p < rd.len() {
                let key = u16_at(p)?;
                let len = usize::from(u16_at(p + 2)?);
                let v = rd.get(p + 4..p + 4 + len).ok_or(DnsError::Short)?;
                p += 4 + len;
                if params.len() >= MAX_SVC_PARAMS {
                    cut = true;
                    continue;
                }
                params.push(svc_param(key, v, &mut cut));
            }
            DnsRdata::Svcb {
                priority,
                target,
                params,
            }
        }
        43 | 59 => DnsRdata::Ds {
            key_tag: u16_at(0)?,
            algorithm: u8_at(2)?,
            digest_type: u8_at(3)?,
            digest: blob(rd.get(4..).ok_or(DnsError::Short)?, &mut cut),
        },
        48 | 60 => {
            let key = rd.get(4..).ok_or(DnsError::Short)?;
            DnsRdata::Dnskey {
                flags: u16_at(0)?,
                protocol: u8_at(2)?,
                algorithm: u8_at(3)?,
                key_len: u16::try_from(key.len()).unwrap_or(u16::MAX),
                key: blob(key, &mut cut),
            }
        }
        46 => {
            let (signer, p) = rdata_name(msg, start + 18, end)?;
            DnsRdata::Rrsig {
                type_covered: u16_at(0)?,
                algorithm: u8_at(2)?,
                labels: u8_at(3)?,
                original_ttl: u32_at(4)?,
                expiration: u32_at(8)?,
                inception: u32_at(12)?,
                key_tag: u16_at(16)?,
                signer,
                signature_len: u16::try_from(end - p).unwrap_or(u16::MAX),
            }
        }
        47 => {
            let (next, p) = rdata_name(msg, start, end)?;
            let types = type_bitmap(rd.get(p - start..).unwrap_or(&[]), &mut cut)?;
            DnsRdata::Nsec { next, types }
        }
        _ => DnsRdata::Other {
            len: u16::try_from(rd.len()).unwrap_or(u16::MAX),
        },
    };
    Ok((data, cut))
}

/// One SvcParam; a known key whose value does not decode is kept raw.
fn svc_param(key: u16, v: &[u8], cut: &mut bool) -> SvcParam {
    let raw = |cut: &mut bool| SvcParam::Other {
        key,
        value: blob(v, cut),
    };
    match key {
        0 if v.len().is_multiple_of(2) => SvcParam::Mandatory(
            v.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect(),
        ),
        1 => {
            let mut ids = Vec::new();
            let mut p = 0;
            while p < v.len() {
                match char_string(v, &mut p) {
                    Ok(s) => ids.push(lossy(s)),
                    Err(_) => return raw(cut),
                }
            }
            SvcParam::Alpn(ids)
        }
        2 if v.is_empty() => SvcParam::NoDefaultAlpn,
        3 if v.len() == 2 => SvcParam::Port(u16::from_be_bytes([v[0], v[1]])),
        4 if !v.is_empty() && v.len().is_multiple_of(4) => SvcParam::Ipv4Hint(
            v.chunks_exact(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                .collect(),
        ),
        5 => SvcParam::Ech(blob(v, cut)),
        6 if !v.is_empty() && v.len().is_multiple_of(16) => SvcParam::Ipv6Hint(
            v.chunks_exact(16)
                .map(|c| {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(c);
                    Ipv6Addr::from(b)
                })
                .collect(),
        ),
        _ => raw(cut),
    }
}

/// The types of an NSEC/NSEC3 type bitmap (RFC 4034 section 4.1.2).
fn type_bitmap(mut b: &[u8], cut: &mut bool) -> Result<Vec<u16>, DnsError> {
    let mut types = Vec::new();
    while !b.is_empty() {
        let window = u16::from(*b.first().ok_or(DnsError::Short)?);
        let len = usize::from(*b.get(1).ok_or(DnsError::Short)?);
        if len == 0 || len > 32 {
            return Err(DnsError::Short);
        }
        let bits = b.get(2..2 + len).ok_or(DnsError::Short)?;
        for (i, byte) in bits.iter().enumerate() {
            for bit in 0..8u16 {
                if byte & (0x80 >> bit) != 0 {
                    if types.len() < MAX_NSEC_TYPES {
                        // i < 32: fits.
                        types.push(window * 256 + (i as u16) * 8 + bit);
                    } else {
                        *cut = true;
                    }
                }
            }
        }
        b = b.get(2 + len..).unwrap_or(&[]);
    }
    Ok(types)
}

/// EDNS from an OPT record's class, TTL and data. Options that run past
/// the data set `malformed` and end the list.
pub fn parse_opt(class: u16, ttl: u32, rd: &[u8]) -> Edns {
    let [ext_rcode, version, flags_hi, _] = ttl.to_be_bytes();
    let mut e = Edns {
        udp_size: class,
        ext_rcode,
        version,
        do_bit: flags_hi & 0x80 != 0,
        ..Edns::default()
    };
    let mut p = 0usize;
    while p < rd.len() {
        let (Some(code), Some(len)) = (be16(rd, p), be16(rd, p + 2)) else {
            e.malformed = true;
            break;
        };
        let Some(v) = rd.get(p + 4..p + 4 + usize::from(len)) else {
            e.malformed = true;
            break;
        };
        p += 4 + usize::from(len);
        match code {
            8 if v.len() >= 4 => {
                let family = u16::from_be_bytes([v[0], v[1]]);
                let source_prefix = v[2];
                let addr = &v[4..];
                let address = match family {
                    1 if addr.len() <= 4 => {
                        let mut b = [0u8; 4];
                        b[..addr.len()].copy_from_slice(addr);
                        Some(std::net::IpAddr::from(b))
                    }
                    2 if addr.len() <= 16 => {
                        let mut b = [0u8; 16];
                        b[..addr.len()].copy_from_slice(addr);
                        Some(std::net::IpAddr::from(b))
                    }
                    _ => None,
                };
                if address.is_none() {
                    e.malformed = true;
                }
                e.client_subnet = Some(ClientSubnet {
                    family,
                    source_prefix,
                    scope_prefix: v[3],
                    address,
                });
            }
            10 if v.len() == 8 || (16..=40).contains(&v.len()) => {
                e.cookie = Some((v[..8].to_vec(), v[8..].to_vec()));
            }
            8 | 10 => e.malformed = true,
            _ => {
                if e.other_options.len() < MAX_EDNS_OTHER {
                    e.other_options.push(code);
                }
            }
        }
    }
    e
}

/// A parsed message. On a fault in the record sections the records before it
/// are kept and `error` says what went wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<DnsQuestion>,
    pub answers: Vec<DnsRecord>,
    pub authorities: Vec<DnsRecord>,
    /// EDNS from the additional section's OPT record (the first one).
    pub edns: Option<Edns>,
    /// Records past `max_records` in a section were skipped.
    pub truncated: bool,
    pub error: Option<DnsError>,
}

impl Message {
    /// Kept records whose data did not decode.
    pub fn bad_rdata(&self) -> usize {
        self.answers
            .iter()
            .chain(&self.authorities)
            .filter(|r| matches!(r.data, DnsRdata::Malformed { .. }))
            .count()
    }

    /// Whether any kept record's data was cut at a limit.
    pub fn cut_rdata(&self) -> bool {
        self.answers
            .iter()
            .chain(&self.authorities)
            .any(|r| r.rdata_truncated)
    }
}

/// Parse a whole message. Fails if the header or the questions do not parse;
/// a fault in the records is reported in `Message::error`.
pub fn parse_message(msg: &[u8], max_records: usize) -> Result<Message, DnsError> {
    parse_message_with(msg, max_records, |_, _| true)
}

/// [`parse_message`], asking `want_questions` (given the header and the
/// first question's name and type, once all questions have been checked)
/// whether the questions are wanted in `Message::questions`: a response
/// whose query is known repeats its questions, and they need not be kept
/// again. The rest of the message is the same either way.
pub fn parse_message_with(
    msg: &[u8],
    max_records: usize,
    want_questions: impl FnOnce(&Header, Option<(&str, u16)>) -> bool,
) -> Result<Message, DnsError> {
    let header = parse_header(msg)?;
    if header.qdcount > 16 {
        return Err(DnsError::BadCounts);
    }
    let mut m = Message {
        header,
        ..Message::default()
    };
    // The first question's name stays as text here (answers name it again
    // by a pointer); the others are only checked unless wanted.
    let mut buf = [0u8; NAME_TEXT];
    let mut spill = String::new();
    let mut first: Option<(&str, u16, u16)> = None;
    let mut off = HEADER_LEN;
    if header.qdcount > 0 {
        let (text, p) = name_text(msg, off, &mut buf, &mut spill)?;
        let text = text.unwrap_or(&spill);
        let rtype = be16(msg, p).ok_or(DnsError::Short)?;
        let rclass = be16(msg, p + 2).ok_or(DnsError::Short)?;
        first = Some((text, rtype, rclass));
        off = p + 4;
    }
    let rest_at = off;
    for _ in 1..header.qdcount {
        off = check_question(msg, off)?;
    }
    if want_questions(&header, first.map(|(name, rtype, _)| (name, rtype))) {
        if let Some((name, rtype, rclass)) = first {
            m.questions = Vec::with_capacity(usize::from(header.qdcount));
            m.questions.push(DnsQuestion {
                name: String::from(name),
                rtype,
                rclass,
            });
            let mut at = rest_at;
            for _ in 1..header.qdcount {
                let (q, p) = read_question(msg, at)?;
                m.questions.push(q);
                at = p;
            }
        }
    }
    // Answers name the first question by a pointer to it (HEADER_LEN).
    let known = first.map(|(name, _, _)| (HEADER_LEN, name));
    let sections = [(header.ancount, 0u8), (header.nscount, 1u8)];
    'outer: for (count, which) in sections {
        // Room for the records kept, bounded by what the message can hold
        // (a record is at least 11 bytes): no growing, and no large
        // reservation for a count that does not fit.
        let room = usize::from(count)
            .min(max_records)
            .min(msg.len().saturating_sub(off) / 11);
        let list = if which == 0 {
            &mut m.answers
        } else {
            &mut m.authorities
        };
        list.reserve_exact(room);
        for _ in 0..count {
            let list = if which == 0 {
                &mut m.answers
            } else {
                &mut m.authorities
            };
            let keep = list.len() < max_records;
            match read_record_known(msg, off, keep, known) {
                Ok((r, p)) => {
                    if keep {
                        list.push(r);
                    } else {
                        m.truncated = true;
                    }
                    off = p;
                }
                Err(e) => {
                    m.error = Some(e);
                    break 'outer;
                }
            }
        }
    }
    if m.error.is_none() {
        additionals(msg, off, header.arcount, &mut m);
    }
    Ok(m)
}

/// The additional section: only the OPT record is kept (as `edns`); the
/// other records are read to reach it and dropped. A second OPT marks the
/// first malformed (RFC 6891: FORMERR).
fn additionals(msg: &[u8], mut off: usize, count: u16, m: &mut Message) {
    for _ in 0..count {
        let hdr = skip_name(msg, off).and_then(|p| {
            let rtype = be16(msg, p).ok_or(DnsError::Short)?;
            let class = be16(msg, p + 2).ok_or(DnsError::Short)?;
            let ttl = be32(msg, p + 4).ok_or(DnsError::Short)?;
            let rdlen = usize::from(be16(msg, p + 8).ok_or(DnsError::Short)?);
            let rd = msg.get(p + 10..p + 10 + rdlen).ok_or(DnsError::Short)?;
            Ok((rtype, class, ttl, rd, p + 10 + rdlen))
        });
        let (rtype, class, ttl, rd, next) = match hdr {
            Ok(h) => h,
            Err(e) => {
                m.error = Some(e);
                return;
            }
        };
        if rtype == 41 {
            match &mut m.edns {
                Some(e) => e.malformed = true,
                None => m.edns = Some(parse_opt(class, ttl, rd)),
            }
        }
        off = next;
    }
}

#[cfg(test)]
pub mod tests_support {
    /// A query message for tests.
    pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        push_name(&mut m, name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    pub fn push_name(m: &mut Vec<u8>, name: &str) {
        for l in name.split('.').filter(|l| !l.is_empty()) {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
    }

    /// A response to `query` with the given answers `(type, rdata)`, owner
    /// name compressed to the question (offset 12).
    pub fn response(query: &[u8], rcode: u8, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut m = query.to_vec();
        m[2] = 0x81;
        m[3] = 0x80 | rcode;
        m[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        for (t, rd) in answers {
            m.extend_from_slice(&[0xc0, 12]);
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
            m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            m.extend_from_slice(rd);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn names_and_compression() {
        let q = query(1, "www.Example.com", 1);
        let mut s = String::new();
        assert_eq!(read_name(&q, 12, &mut s), Ok(12 + 17));
        assert_eq!(s, "www.Example.com");
        let r = response(&q, 0, &[(5, vec![3, b'f', b'o', b'o', 0xc0, 16])]);
        let m = parse_message(&r, 10).unwrap();
        assert_eq!(m.answers[0].name, "www.Example.com");
        assert_eq!(m.answers[0].data, DnsRdata::Name("foo.Example.com".into()));
        // Root name.
        assert_eq!(read_name(&[0], 0, &mut s), Ok(1));
        assert_eq!(s, "");
        // Odd bytes are escaped.
        assert_eq!(read_name(&[2, b'a', b' ', 0], 0, &mut s), Ok(4));
        assert_eq!(s, "a\\x20");
    }

    #[test]
    fn names_long_labels_and_escapes() {
        // Labels of every length up to 63, ending right at the message end
        // (the label copy's short tail) and well inside it.
        for l in 1..=63usize {
            let label: Vec<u8> = (0..l).map(|i| b'a' + (i % 26) as u8).collect();
            let text = String::from_utf8(label.clone()).unwrap();
            let mut m = vec![l as u8];
            m.extend_from_slice(&label);
            m.extend_from_slice(&[2, b'c', b'd', 0]);
            let mut s = String::new();
            assert_eq!(read_name(&m, 0, &mut s), Ok(m.len()));
            assert_eq!(s, format!("{text}.cd"));
            m.extend_from_slice(&[0u8; 40]);
            assert_eq!(read_name(&m, 0, &mut s), Ok(l + 5));
            assert_eq!(s, format!("{text}.cd"));
        }
        // Names around and past the stack buffer's size (the label-by-label
        // path): the same text.
        let mut s = String::new();
        for count in (1..=8usize).chain(10..=25) {
            let mut m = Vec::new();
            let mut want = Vec::new();
            for i in 0..count {
                let l = if count >= 10 { 9 } else { 1 + (i * 7) % 63 };
                let label = vec![b'a' + (i % 26) as u8; l];
                m.push(l as u8);
                m.extend_from_slice(&label);
                want.push(String::from_utf8(label).unwrap());
            }
            m.push(0);
            assert_eq!(read_name(&m, 0, &mut s), Ok(m.len()), "{count} labels");
            assert_eq!(s, want.join("."));
        }
        // A non-printable byte in any label escapes that byte only.
        let m = [3, b'a', 0x7f, b'b', 2, b'c', b'.', 1, 0xc3, 0];
        assert_eq!(read_name(&m, 0, &mut s), Ok(m.len()));
        assert_eq!(s, "a\\x7fb.c..\\xc3");
        // An answer owner name pointing at an escaped question is the same text.
        let mut q = query(9, "x", 1);
        q[13] = 0x01;
        let r = response(&q, 0, &[(1, vec![192, 0, 2, 1])]);
        let m = parse_message(&r, 10).unwrap();
        assert_eq!(m.questions[0].name, "\\x01");
        assert_eq!(m.answers[0].name, "\\x01");
        // Owner name pointing past itself: still rejected, not copied.
        let mut r = response(&q, 0, &[(1, vec![192, 0, 2, 1])]);
        let at = q.len();
        r[at + 1] = (at + 2) as u8;
        let m = parse_message(&r, 10).unwrap();
        assert_eq!(m.error, Some(DnsError::BadPointer));
    }

    #[test]
    fn checked_question_agrees_with_read_question() {
        // Every cut of a query, and bytes that make bad labels/pointers: the
        // check gives the reader's offset or the reader's error.
        let q = query(3, "www.example.com", 28);
        let mut inputs: Vec<Vec<u8>> = (0..=q.len()).map(|n| q[..n].to_vec()).collect();
        for (at, b) in [(12, 0x41u8), (12, 0xc0), (16, 0xc0), (16, 0x3f), (12, 0)] {
            let mut m = q.clone();
            m[at] = b;
            inputs.push(m);
        }
        for m in &inputs {
            assert_eq!(
                check_question(m, HEADER_LEN),
                read_question(m, HEADER_LEN).map(|(_, p)| p),
                "{m:?}"
            );
        }
    }

    #[test]
    fn questions_left_out_when_not_wanted() {
        let mut q = query(5, "a.example", 1);
        // A second question, so that the others are checked too.
        q[5] = 2;
        push_name(&mut q, "b.example");
        q.extend_from_slice(&[0, 28, 0, 1]);
        let r = response(&q, 0, &[(1, vec![192, 0, 2, 7])]);
        let full = parse_message(&r, 8).unwrap();
        assert_eq!(full.questions.len(), 2);
        let mut seen = None;
        let lean = parse_message_with(&r, 8, |h, first| {
            seen = Some((h.id, first.map(|(n, t)| (n.to_string(), t))));
            false
        })
        .unwrap();
        assert_eq!(seen, Some((5, Some(("a.example".to_string(), 1)))));
        assert!(lean.questions.is_empty());
        assert_eq!(lean.answers, full.answers);
        assert_eq!(lean.answers[0].name, "a.example");
        // A bad second question fails the message either way.
        let cut = &r[..q.len() - 3];
        assert!(parse_message(cut, 8).is_err());
        assert!(parse_message_with(cut, 8, |_, _| false).is_err());
    }

    #[test]
    fn malformed_names_never_loop() {
        let mut s = String::new();
        // Pointer to itself.
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&[0xc0, 12]);
        assert_eq!(read_name(&m, 12, &mut s), Err(DnsError::BadPointer));
        // Pointer forward.
        let m = [0xc0, 4, 0, 0, 1, b'a', 0];
        assert_eq!(read_name(&m, 0, &mut s), Err(DnsError::BadPointer));
        // Loop between two names: 1 -> 0 -> 1 ...
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&[1, b'a', 0xc0, 16, 1, b'b', 0xc0, 12]);
        assert_eq!(read_name(&m, 16, &mut s), Err(DnsError::BadPointer));
        // Label past the end.
        assert_eq!(read_name(&[5, b'a'], 0, &mut s), Err(DnsError::Short));
        // Extended label types.
        assert_eq!(read_name(&[0x41, 0], 0, &mut s), Err(DnsError::BadLabel));
        // Name over 255 bytes.
        let mut m = Vec::new();
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'x'; 63]);
        }
        m.push(0);
        assert_eq!(read_name(&m, 0, &mut s), Err(DnsError::NameTooLong));
        // Long chain of backward pointers is fine but bounded by the name length.
        let mut m = vec![0u8];
        for i in 0..300usize {
            let prev = if i == 0 { 0 } else { 1 + (i - 1) * 4 };
            m.extend_from_slice(&[1, b'a', 0xc0 | (prev >> 8) as u8, prev as u8]);
        }
        let start = 1 + 299 * 4;
        assert_eq!(read_name(&m, start, &mut s), Err(DnsError::NameTooLong));
    }

    #[test]
    fn record_types() {
        let q = query(7, "example.com", 255);
        let mut mx = vec![0, 10];
        push_name(&mut mx, "mail.example.com");
        let mut srv = vec![0, 1, 0, 2, 0x13, 0xc4];
        push_name(&mut srv, "sip.example.com");
        let mut soa = Vec::new();
        push_name(&mut soa, "ns1.example.com");
        push_name(&mut soa, "admin.example.com");
        for v in [1u32, 2, 3, 4, 5] {
            soa.extend_from_slice(&v.to_be_bytes());
        }
        let r = response(
            &q,
            0,
            &[
                (1, vec![192, 0, 2, 1]),
                (
                    28,
                    vec![0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                ),
                (15, mx),
                (16, b"\x05hello\x05world".to_vec()),
                (33, srv),
                (6, soa),
                (200, vec![1, 2, 3]), // unknown type
                (1, vec![1, 2, 3]),   // bad A length: kept as Other
            ],
        );
        let m = parse_message(&r, 32).unwrap();
        assert_eq!(m.error, None);
        let d: Vec<&DnsRdata> = m.answers.iter().map(|a| &a.data).collect();
        assert_eq!(d[0], &DnsRdata::A(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(d[1], &DnsRdata::Aaaa("2001:db8::1".parse().unwrap()));
        assert_eq!(
            d[2],
            &DnsRdata::Mx {
                preference: 10,
                exchange: "mail.example.com".into()
            }
        );
        assert_eq!(d[3], &DnsRdata::Txt(vec!["hello".into(), "world".into()]));
        assert_eq!(
            d[4],
            &DnsRdata::Srv {
                priority: 1,
                weight: 2,
                port: 5060,
                target: "sip.example.com".into()
            }
        );
        assert_eq!(
            d[5],
            &DnsRdata::Soa {
                mname: "ns1.example.com".into(),
                rname: "admin.example.com".into(),
                serial: 1,
                refresh: 2,
                retry: 3,
                expire: 4,
                minimum: 5
            }
        );
        assert_eq!(d[6], &DnsRdata::Other { len: 3 });
        assert_eq!(d[7], &DnsRdata::Malformed { len: 3 });
        assert_eq!(m.answers[0].ttl, 3600);
        // Limit on kept records.
        let m = parse_message(&r, 2).unwrap();
        assert_eq!(m.answers.len(), 2);
        assert!(m.truncated);
        // Cut message: records before the fault are kept.
        let m = parse_message(&r[..r.len() - 2], 32).unwrap();
        assert_eq!(m.answers.len(), 7);
        assert_eq!(m.error, Some(DnsError::Short));
        // Header flags.
        let h = parse_header(&r).unwrap();
        assert!(h.qr() && h.rd() && h.ra() && !h.aa() && !h.tc());
        assert_eq!((h.opcode(), h.rcode()), (0, 0));
        assert!(parse_header(&r[..11]).is_err());
    }
}
