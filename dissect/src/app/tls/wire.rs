//! TLS wire parsing: record headers, handshake headers, ClientHello,
//! ServerHello, the TLS ≤1.2 Certificate message. Stateless, bounds-checked.

use crate::app::util::{be16, be24};

pub const CT_CHANGE_CIPHER_SPEC: u8 = 20;
pub const CT_ALERT: u8 = 21;
pub const CT_HANDSHAKE: u8 = 22;
pub const CT_APPLICATION_DATA: u8 = 23;
pub const CT_HEARTBEAT: u8 = 24;

pub const HS_CLIENT_HELLO: u8 = 1;
pub const HS_SERVER_HELLO: u8 = 2;
pub const HS_CERTIFICATE: u8 = 11;
pub const HS_SERVER_HELLO_DONE: u8 = 14;

pub const RECORD_HEADER_LEN: usize = 5;
/// Largest record body allowed (2^14 plus expansion).
pub const MAX_RECORD_LEN: usize = 16_384 + 2_048;

pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_SUPPORTED_GROUPS: u16 = 10;
pub const EXT_EC_POINT_FORMATS: u16 = 11;
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
pub const EXT_ALPN: u16 = 16;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// SHA-256("HelloRetryRequest"): the random of a HelloRetryRequest.
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// A malformed handshake message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsError;

/// Record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: u8,
    pub version: u16,
    pub len: usize,
}

pub fn parse_record_header(b: &[u8]) -> Option<RecordHeader> {
    let content_type = *b.first()?;
    let version = be16(b, 1)?;
    let len = usize::from(be16(b, 3)?);
    Some(RecordHeader {
        content_type,
        version,
        len,
    })
}

/// Known content type, SSLv3..TLS 1.3 record version, sane length.
pub fn plausible_record(h: &RecordHeader) -> bool {
    (CT_CHANGE_CIPHER_SPEC..=CT_HEARTBEAT).contains(&h.content_type)
        && (0x0300..=0x0304).contains(&h.version)
        && h.len <= MAX_RECORD_LEN
}

/// GREASE values (RFC 8701): 0x?a?a with equal bytes.
pub fn is_grease(v: u16) -> bool {
    (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// Bounds-checked reader over a handshake body.
struct Rd<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Rd<'a> {
    fn new(b: &'a [u8]) -> Self {
        Rd { b, p: 0 }
    }
    fn u8(&mut self) -> Result<u8, TlsError> {
        let v = *self.b.get(self.p).ok_or(TlsError)?;
        self.p += 1;
        Ok(v)
    }
    fn u16(&mut self) -> Result<u16, TlsError> {
        let v = be16(self.b, self.p).ok_or(TlsError)?;
        self.p += 2;
        Ok(v)
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], TlsError> {
        let s = self
            .b
            .get(self.p..self.p.checked_add(n).ok_or(TlsError)?)
            .ok_or(TlsError)?;
        self.p += n;
        Ok(s)
    }
    fn vec8(&mut self) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u8()?);
        self.bytes(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u16()?);
        self.bytes(n)
    }
    fn done(&self) -> bool {
        self.p >= self.b.len()
    }
}

/// `out` = the big-endian u16s of `b` (its buffer reused).
fn u16_list_into(out: &mut Vec<u16>, b: &[u8]) {
    out.clear();
    out.extend(b.chunks_exact(2).map(|c| match c {
        [hi, lo] => u16::from_be_bytes([*hi, *lo]),
        _ => 0,
    }));
}

/// Room for the extensions of a block of `len` bytes: each takes at least
/// four, and hellos carry a few dozen at most (more only grow the vector).
fn extension_capacity(len: usize) -> usize {
    (len / 4).min(32)
}

/// Decoded ClientHello.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub legacy_version: u16,
    pub session_id: Vec<u8>,
    pub ciphers: Vec<u16>,
    pub extensions: Vec<u16>,
    pub sni: Option<String>,
    pub alpns: Vec<String>,
    pub supported_versions: Vec<u16>,
    pub groups: Vec<u16>,
    pub ec_point_formats: Vec<u8>,
    pub sig_algs: Vec<u16>,
}

/// Most ALPN names kept; most bytes of an SNI kept.
const MAX_ALPNS: usize = 16;
const MAX_SNI: usize = 1024;

impl ClientHello {
    /// Back to an empty hello, keeping the lists' buffers.
    fn clear(&mut self) {
        self.legacy_version = 0;
        self.session_id.clear();
        self.ciphers.clear();
        self.extensions.clear();
        self.sni = None;
        self.alpns.clear();
        self.supported_versions.clear();
        self.groups.clear();
        self.ec_point_formats.clear();
        self.sig_algs.clear();
    }
}

/// Parse a ClientHello body (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello, TlsError> {
    let mut ch = ClientHello::default();
    parse_client_hello_into(body, &mut ch)?;
    Ok(ch)
}

/// [`parse_client_hello`] into `ch`, reusing its lists' buffers (a worker
/// parses hello after hello into one); on an error `ch` holds part of the
/// hello.
pub fn parse_client_hello_into(body: &[u8], ch: &mut ClientHello) -> Result<(), TlsError> {
    ch.clear();
    let mut r = Rd::new(body);
    ch.legacy_version = r.u16()?;
    r.bytes(32)?; // random
    ch.session_id.extend_from_slice(r.vec8()?);
    let ciphers = r.vec16()?;
    u16_list_into(&mut ch.ciphers, ciphers);
    r.vec8()?; // compression methods
    if r.done() {
        return Ok(()); // no extensions (SSLv3 style)
    }
    let exts = r.vec16()?;
    ch.extensions.reserve(extension_capacity(exts.len()));
    let mut e = Rd::new(exts);
    while !e.done() {
        let t = e.u16()?;
        let data = e.vec16()?;
        ch.extensions.push(t);
        // Extension bodies are lenient: a bad one does not void the hello.
        let _ = client_extension(ch, t, data);
    }
    Ok(())
}

fn client_extension(ch: &mut ClientHello, t: u16, data: &[u8]) -> Result<(), TlsError> {
    let mut r = Rd::new(data);
    match t {
        EXT_SERVER_NAME => {
            let list = r.vec16()?;
            let mut l = Rd::new(list);
            while !l.done() {
                let kind = l.u8()?;
                let name = l.vec16()?;
                if kind == 0 && ch.sni.is_none() {
                    ch.sni = Some(crate::app::util::bounded_string(name, MAX_SNI));
                }
            }
        }
        EXT_ALPN => {
            let list = r.vec16()?;
            let mut l = Rd::new(list);
            while !l.done() {
                let p = l.vec8()?;
                if ch.alpns.len() < MAX_ALPNS {
                    ch.alpns.push(String::from_utf8_lossy(p).into_owned());
                }
            }
        }
        // A repeated extension: the last one counts.
        EXT_SUPPORTED_VERSIONS => u16_list_into(&mut ch.supported_versions, r.vec8()?),
        EXT_SUPPORTED_GROUPS => u16_list_into(&mut ch.groups, r.vec16()?),
        EXT_EC_POINT_FORMATS => {
            let formats = r.vec8()?;
            ch.ec_point_formats.clear();
            ch.ec_point_formats.extend_from_slice(formats);
        }
        EXT_SIGNATURE_ALGORITHMS => u16_list_into(&mut ch.sig_algs, r.vec16()?),
        _ => {}
    }
    Ok(())
}

/// Decoded ServerHello.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    pub legacy_version: u16,
    pub session_id: Vec<u8>,
    pub cipher: u16,
    pub extensions: Vec<u16>,
    /// supported_versions extension (TLS 1.3).
    pub selected_version: Option<u16>,
    pub alpn: Option<String>,
    pub hello_retry: bool,
}

impl ServerHello {
    /// The negotiated version.
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// Parse a ServerHello body.
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, TlsError> {
    let mut r = Rd::new(body);
    let mut sh = ServerHello {
        legacy_version: r.u16()?,
        ..ServerHello::default()
    };
    let random = r.bytes(32)?;
    sh.hello_retry = random == HRR_RANDOM;
    sh.session_id = r.vec8()?.to_vec();
    sh.cipher = r.u16()?;
    r.u8()?; // compression
    if r.done() {
        return Ok(sh);
    }
    let exts = r.vec16()?;
    sh.extensions = Vec::with_capacity(extension_capacity(exts.len()));
    let mut e = Rd::new(exts);
    while !e.done() {
        let t = e.u16()?;
        let data = e.vec16()?;
        sh.extensions.push(t);
        let mut d = Rd::new(data);
        match t {
            EXT_SUPPORTED_VERSIONS => sh.selected_version = d.u16().ok(),
            EXT_ALPN => {
                if let Ok(list) = d.vec16() {
                    let mut l = Rd::new(list);
                    if let Ok(p) = l.vec8() {
                        sh.alpn = Some(String::from_utf8_lossy(p).into_owned());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(sh)
}

/// The DER certificates of a TLS ≤1.2 Certificate message body, at most `max`.
pub fn certificate_list(body: &[u8], max: usize) -> Result<Vec<&[u8]>, TlsError> {
    let total = usize::try_from(be24(body, 0).ok_or(TlsError)?).map_err(|_| TlsError)?;
    let list = body.get(3..3 + total).ok_or(TlsError)?;
    let mut out = Vec::new();
    let mut p = 0usize;
    while p < list.len() {
        let n = usize::try_from(be24(list, p).ok_or(TlsError)?).map_err(|_| TlsError)?;
        let der = list.get(p + 3..p + 3 + n).ok_or(TlsError)?;
        if out.len() < max {
            out.push(der);
        }
        p += 3 + n;
    }
    Ok(out)
}

#[cfg(test)]
pub mod tests_support {
    //! Builders for crafted handshakes.

    pub fn ext(t: u16, data: &[u8]) -> Vec<u8> {
        let mut v = t.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    pub fn vec16(data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(data);
        v
    }

    pub fn u16s(vals: &[u16]) -> Vec<u8> {
        vals.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    /// Handshake message: type + 24-bit length + body.
    pub fn hs(t: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![t];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        v.extend_from_slice(body);
        v
    }

    /// Records of `content_type` carrying `payload`, split at `max` bytes.
    pub fn records(content_type: u8, payload: &[u8], max: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for c in payload.chunks(max.max(1)) {
            v.push(content_type);
            v.extend_from_slice(&[3, 3]);
            v.extend_from_slice(&(c.len() as u16).to_be_bytes());
            v.extend_from_slice(c);
        }
        v
    }

    /// A ClientHello body like a modern browser's (with GREASE).
    pub fn client_hello_body(sni: &str) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7u8; 32]);
        b.push(32);
        b.extend_from_slice(&[9u8; 32]);
        b.extend(vec16(&u16s(&[
            0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0x009c,
        ])));
        b.extend_from_slice(&[1, 0]);
        let mut exts = Vec::new();
        exts.extend(ext(0x1a1a, &[]));
        let mut sn = vec![0u8];
        sn.extend(vec16(sni.as_bytes()));
        exts.extend(ext(0, &vec16(&sn)));
        exts.extend(ext(23, &[]));
        exts.extend(ext(0xff01, &[0]));
        exts.extend(ext(10, &vec16(&u16s(&[0x2a2a, 29, 23, 24]))));
        exts.extend(ext(11, &[1, 0]));
        exts.extend(ext(16, &vec16(b"\x02h2\x08http/1.1")));
        exts.extend(ext(13, &vec16(&u16s(&[0x0403, 0x0804, 0x0401]))));
        exts.extend(ext(43, &[6, 0x3a, 0x3a, 3, 4, 3, 3]));
        exts.extend(ext(51, &vec16(&[])));
        b.extend(vec16(&exts));
        b
    }

    pub fn server_hello_body(version13: bool, alpn: Option<&str>) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[5u8; 32]);
        b.push(0);
        b.extend_from_slice(&[0x13, 0x01, 0]);
        let mut exts = Vec::new();
        exts.extend(ext(0xff01, &[0]));
        if version13 {
            exts.extend(ext(43, &[3, 4]));
        }
        if let Some(a) = alpn {
            let mut l = vec![a.len() as u8];
            l.extend_from_slice(a.as_bytes());
            exts.extend(ext(16, &vec16(&l)));
        }
        b.extend(vec16(&exts));
        b
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn client_hello_fields() {
        let ch = parse_client_hello(&client_hello_body("example.com")).unwrap();
        assert_eq!(ch.legacy_version, 0x0303);
        assert_eq!(ch.sni.as_deref(), Some("example.com"));
        assert_eq!(ch.alpns, vec!["h2", "http/1.1"]);
        assert_eq!(ch.ciphers.len(), 7);
        assert_eq!(
            ch.extensions,
            vec![0x1a1a, 0, 23, 0xff01, 10, 11, 16, 13, 43, 51]
        );
        assert_eq!(ch.supported_versions, vec![0x3a3a, 0x0304, 0x0303]);
        assert_eq!(ch.groups, vec![0x2a2a, 29, 23, 24]);
        assert_eq!(ch.ec_point_formats, vec![0]);
        assert_eq!(ch.sig_algs, vec![0x0403, 0x0804, 0x0401]);
        assert_eq!(ch.session_id.len(), 32);
        // Every truncation fails cleanly.
        let b = client_hello_body("example.com");
        for i in 0..b.len() {
            let _ = parse_client_hello(&b[..i]);
        }
        assert!(parse_client_hello(&b[..30]).is_err());
    }

    #[test]
    fn server_hello_fields() {
        let sh = parse_server_hello(&server_hello_body(true, None)).unwrap();
        assert_eq!(sh.version(), 0x0304);
        assert_eq!(sh.cipher, 0x1301);
        assert!(!sh.hello_retry);
        let sh = parse_server_hello(&server_hello_body(false, Some("h2"))).unwrap();
        assert_eq!(sh.version(), 0x0303);
        assert_eq!(sh.alpn.as_deref(), Some("h2"));
        assert_eq!(sh.extensions, vec![0xff01, 16]);
        let mut hrr = server_hello_body(true, None);
        hrr[2..34].copy_from_slice(&HRR_RANDOM);
        assert!(parse_server_hello(&hrr).unwrap().hello_retry);
    }

    #[test]
    fn grease_and_records() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && !is_grease(0x0a1a) && !is_grease(0x1301));
        let h = parse_record_header(&[22, 3, 1, 0x02, 0x00]).unwrap();
        assert_eq!((h.content_type, h.version, h.len), (22, 0x0301, 512));
        assert!(plausible_record(&h));
        assert!(!plausible_record(
            &parse_record_header(&[22, 3, 1, 0xff, 0xff]).unwrap()
        ));
        assert!(!plausible_record(
            &parse_record_header(&[0x47, 0x45, 0x54, 0x20, 0x2f]).unwrap()
        ));
        assert!(parse_record_header(&[22, 3]).is_none());
    }

    #[test]
    fn certificate_lists() {
        let mut body = Vec::new();
        let certs: Vec<Vec<u8>> = vec![vec![1, 2, 3], vec![4; 10]];
        let total: usize = certs.iter().map(|c| c.len() + 3).sum();
        body.extend_from_slice(&(total as u32).to_be_bytes()[1..]);
        for c in &certs {
            body.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            body.extend_from_slice(c);
        }
        let l = certificate_list(&body, 10).unwrap();
        assert_eq!(l, vec![&[1u8, 2, 3][..], &[4u8; 10][..]]);
        assert_eq!(certificate_list(&body, 1).unwrap().len(), 1);
        assert!(certificate_list(&body[..body.len() - 1], 10).is_err());
    }
}
