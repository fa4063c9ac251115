//! DNS message parsing (RFC 1035): header, names with compression, questions
//! and resource records. Every read is bounds-checked; compression pointers
//! must point strictly before the segment being read, so decoding always
//! terminates; names are limited to 255 wire bytes and labels to 63.

use super::event::{DnsQuestion, DnsRdata, DnsRecord};
use crate::app::util::{be16, be32};
use std::net::{Ipv4Addr, Ipv6Addr};

pub const HEADER_LEN: usize = 12;

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

/// Read the name at `start`. Returns the offset just after the name as it
/// sits at `start` (after the first pointer, if any).
pub fn read_name(msg: &[u8], start: usize, out: &mut String) -> Result<usize, DnsError> {
    out.clear();
    // Most names fit: one allocation instead of a few doublings.
    out.reserve(48);
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
                let label = msg.get(pos + 1..pos + 1 + l).ok_or(DnsError::Short)?;
                push_label(out, label);
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

/// One parsed question and the offset after it.
pub fn read_question(msg: &[u8], off: usize) -> Result<(DnsQuestion, usize), DnsError> {
    let mut name = String::new();
    let p = read_name(msg, off, &mut name)?;
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
    let mut name = String::new();
    let p = read_name(msg, off, &mut name)?;
    let rtype = be16(msg, p).ok_or(DnsError::Short)?;
    let rclass = be16(msg, p + 2).ok_or(DnsError::Short)?;
    let ttl = be32(msg, p + 4).ok_or(DnsError::Short)?;
    let rdlen = be16(msg, p + 8).ok_or(DnsError::Short)?;
    let rstart = p + 10;
    let rend = rstart + usize::from(rdlen);
    if rend > msg.len() {
        return Err(DnsError::Short);
    }
    let data = if decode {
        decode_rdata(msg, rtype, rstart, rend).unwrap_or(DnsRdata::Other { len: rdlen })
    } else {
        DnsRdata::Other { len: rdlen }
    };
    Ok((
        DnsRecord {
            name,
            rtype,
            rclass,
            ttl,
            data,
        },
        rend,
    ))
}

/// Name inside rdata: its in-place part must end within the data.
fn rdata_name(msg: &[u8], off: usize, end: usize) -> Result<(String, usize), DnsError> {
    let mut s = String::new();
    let p = read_name(msg, off, &mut s)?;
    if p > end {
        return Err(DnsError::Short);
    }
    Ok((s, p))
}

fn decode_rdata(msg: &[u8], rtype: u16, start: usize, end: usize) -> Result<DnsRdata, DnsError> {
    let rd = msg.get(start..end).ok_or(DnsError::Short)?;
    Ok(match rtype {
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
            let preference = be16(msg, start).ok_or(DnsError::Short)?;
            let (exchange, _) = rdata_name(msg, start + 2, end)?;
            DnsRdata::Mx {
                preference,
                exchange,
            }
        }
        16 => {
            let mut strings = Vec::new();
            let mut p = 0usize;
            while p < rd.len() {
                let l = usize::from(*rd.get(p).ok_or(DnsError::Short)?);
                let s = rd.get(p + 1..p + 1 + l).ok_or(DnsError::Short)?;
                // At most 255 strings fit in 64 KiB of rdata; bounded anyway.
                if strings.len() < 64 {
                    strings.push(String::from_utf8_lossy(s).into_owned());
                }
                p += 1 + l;
            }
            DnsRdata::Txt(strings)
        }
        33 => {
            let priority = be16(msg, start).ok_or(DnsError::Short)?;
            let weight = be16(msg, start + 2).ok_or(DnsError::Short)?;
            let port = be16(msg, start + 4).ok_or(DnsError::Short)?;
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
        _ => DnsRdata::Other {
            len: u16::try_from(rd.len()).unwrap_or(u16::MAX),
        },
    })
}

/// A parsed message. On a fault in the record sections the records before it
/// are kept and `error` says what went wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<DnsQuestion>,
    pub answers: Vec<DnsRecord>,
    pub authorities: Vec<DnsRecord>,
    /// Records past `max_records` in a section were skipped.
    pub truncated: bool,
    pub error: Option<DnsError>,
}

/// Parse a whole message. Fails if the header or the questions do not parse;
/// a fault in the records is reported in `Message::error`.
pub fn parse_message(msg: &[u8], max_records: usize) -> Result<Message, DnsError> {
    let header = parse_header(msg)?;
    if header.qdcount > 16 {
        return Err(DnsError::BadCounts);
    }
    let mut m = Message {
        header,
        ..Message::default()
    };
    let mut off = HEADER_LEN;
    for _ in 0..header.qdcount {
        let (q, p) = read_question(msg, off)?;
        m.questions.push(q);
        off = p;
    }
    let sections = [(header.ancount, 0u8), (header.nscount, 1u8)];
    'outer: for (count, which) in sections {
        for _ in 0..count {
            let list = if which == 0 {
                &mut m.answers
            } else {
                &mut m.authorities
            };
            let keep = list.len() < max_records;
            match read_record(msg, off, keep) {
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
    Ok(m)
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
                (99, vec![1, 2, 3]),
                (1, vec![1, 2, 3]), // bad A length: kept as Other
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
        assert_eq!(d[7], &DnsRdata::Other { len: 3 });
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
