//! HTTP/1.x wire parsing: lines, start lines, header fields, chunk sizes.
//! Stateless and zero-copy; nothing here allocates.

use crate::app::Probe;

/// The next line of `data`: `(line without CR LF, bytes up to and including LF)`,
/// or `None` when no LF is there yet. A bare LF ends a line too.
pub fn next_line(data: &[u8]) -> Option<(&[u8], usize)> {
    let lf = memchr::memchr(b'\n', data)?;
    let line = data.get(..lf)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, lf + 1))
}

/// A request line: `METHOD SP target [SP HTTP/x.y]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    pub method: &'a [u8],
    pub uri: &'a [u8],
    /// `None` for an HTTP/0.9 request (no protocol).
    pub version: Option<&'a [u8]>,
}

/// A status line: `HTTP/x.y SP code [SP reason]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusLine<'a> {
    pub version: &'a [u8],
    pub status: u16,
    pub reason: &'a [u8],
}

/// RFC 9110 token characters, one entry per byte value (a lookup per
/// header-name byte instead of a search through the punctuation list).
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

/// RFC 9110 token characters.
#[inline]
pub fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// First blank (SP or HTAB). A plain loop: what it scans is a few bytes
/// (method, version, status code), shorter than memchr's set-up.
#[inline]
fn find_ws(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| is_ws(b))
}

#[inline]
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline]
fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_ws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_ws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Parse a request line. Lenient like libhtp: several blanks between parts
/// are fine, and spaces inside the target are kept when the line ends with a
/// protocol.
pub fn parse_request_line(line: &[u8]) -> Option<RequestLine<'_>> {
    let line = trim(line);
    let sp = find_ws(line)?;
    let method = line.get(..sp)?;
    if method.is_empty() || method.len() > 32 || !method.iter().all(|&b| is_tchar(b)) {
        return None;
    }
    let rest = trim(line.get(sp..)?);
    if rest.is_empty() {
        return None;
    }
    // From the end: the protocol is a few bytes after the last blank.
    if let Some(last_sp) = rest.iter().rposition(|&b| is_ws(b)) {
        let proto = rest.get(last_sp + 1..)?;
        if proto.starts_with(b"HTTP/") {
            let uri = trim(rest.get(..last_sp)?);
            if uri.is_empty() {
                return None;
            }
            return Some(RequestLine {
                method,
                uri,
                version: Some(proto),
            });
        }
    }
    Some(RequestLine {
        method,
        uri: rest,
        version: None,
    })
}

/// Parse a status line (`HTTP/1.1 200 OK`); the reason may be empty.
pub fn parse_status_line(line: &[u8]) -> Option<StatusLine<'_>> {
    let line = trim(line);
    if !line.starts_with(b"HTTP/") {
        return None;
    }
    let sp = find_ws(line)?;
    let version = line.get(..sp)?;
    let rest = trim(line.get(sp..)?);
    let code_end = find_ws(rest).unwrap_or(rest.len());
    let code = rest.get(..code_end)?;
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let status = code
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    let reason = trim(rest.get(code_end..)?);
    Some(StatusLine {
        version,
        status,
        reason,
    })
}

/// Split a header line into `(name, value)`, value trimmed. `None` if the
/// line has no colon or an empty/invalid name.
pub fn parse_header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let (name, value) = parse_header_untrimmed(line)?;
    Some((name, trim(value)))
}

/// [`parse_header`] with the value as sent after the colon (blanks kept):
/// most header lines are checked and skipped, and need no trimmed value.
pub fn parse_header_untrimmed(line: &[u8]) -> Option<(&[u8], &[u8])> {
    // One pass: blanks, the token, blanks, then the colon must come. (A
    // non-token byte before the first colon makes the line no header.)
    let start = line.iter().position(|&b| !is_ws(b))?;
    let rest = line.get(start..)?;
    let name_len = rest.iter().position(|&b| !is_tchar(b))?;
    let name = rest.get(..name_len)?;
    let after = rest.get(name_len..)?;
    let colon = after.iter().position(|&b| !is_ws(b))?;
    if name.is_empty() || after.get(colon) != Some(&b':') {
        return None;
    }
    Some((name, after.get(colon + 1..)?))
}

/// A header continuation line (obsolete line folding) starts with a blank.
pub fn is_continuation(line: &[u8]) -> bool {
    matches!(line.first(), Some(b' ' | b'\t'))
}

pub fn trim_value(v: &[u8]) -> &[u8] {
    trim(v)
}

/// Parse a chunk-size line (`1a;ext=1`). At most 15 hex digits (no overflow).
pub fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = trim(line);
    let end = line
        .iter()
        .position(|&b| b == b';' || is_ws(b))
        .unwrap_or(line.len());
    let digits = line.get(..end)?;
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        let x = char::from(d).to_digit(16)?;
        v = (v << 4) | u64::from(x);
    }
    Some(v)
}

/// Parse a Content-Length value: decimal digits, optional blanks. A list of
/// equal values ("10, 10") is accepted as RFC 9110 allows.
pub fn parse_content_length(v: &[u8]) -> Option<u64> {
    // Nearly always plain digits: no list, no blanks.
    if !v.is_empty() && v.len() <= 19 && v.iter().all(u8::is_ascii_digit) {
        return Some(
            v.iter()
                .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')),
        );
    }
    let mut result: Option<u64> = None;
    for part in v.split(|&b| b == b',') {
        let part = trim(part);
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = part
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
        match result {
            Some(prev) if prev != n => return None,
            _ => result = Some(n),
        }
    }
    result
}

/// Does a Transfer-Encoding value end in `chunked`?
pub fn is_chunked(v: &[u8]) -> bool {
    v.split(|&b| b == b',')
        .next_back()
        .map(|last| trim(last).eq_ignore_ascii_case(b"chunked"))
        .unwrap_or(false)
}

/// Split `host[:port]` (or `[v6]:port`) into host and port.
pub fn split_host_port(v: &[u8]) -> (&[u8], Option<u16>) {
    let v = trim(v);
    if let Some(rest) = v.strip_prefix(b"[") {
        if let Some(close) = rest.iter().position(|&b| b == b']') {
            let host = rest.get(..close).unwrap_or(rest);
            let after = rest.get(close + 1..).unwrap_or(&[]);
            let port = after.strip_prefix(b":").and_then(parse_port);
            return (host, port);
        }
        return (v, None);
    }
    match memchr::memrchr(b':', v) {
        // More than one colon without brackets: a bare IPv6 address.
        Some(c) if memchr::memchr(b':', v) == Some(c) => {
            let host = v.get(..c).unwrap_or(v);
            let port = v.get(c + 1..).and_then(parse_port);
            (host, port)
        }
        _ => (v, None),
    }
}

fn parse_port(p: &[u8]) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = p
        .iter()
        .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok()
}

/// Authority of an absolute-form (`http://host:port/path`) or
/// authority-form (`host:port`, CONNECT) request target.
pub fn uri_authority(uri: &[u8], connect: bool) -> Option<&[u8]> {
    if connect {
        return Some(uri);
    }
    // The scheme is the run of scheme characters at the start, and "://"
    // must follow it: ':' is not a scheme character, so this is the first
    // "://" whenever a valid scheme precedes it. (Origin-form targets, the
    // common case, stop at their leading '/'.)
    let scheme_end = uri
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.'))
        .unwrap_or(uri.len());
    if scheme_end == 0 || !uri.get(scheme_end..)?.starts_with(b"://") {
        return None;
    }
    let rest = uri.get(scheme_end + 3..)?;
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let auth = rest.get(..end)?;
    // Drop userinfo.
    let auth = match auth.iter().rposition(|&b| b == b'@') {
        Some(at) => auth.get(at + 1..)?,
        None => auth,
    };
    if auth.is_empty() {
        None
    } else {
        Some(auth)
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    memchr::memmem::find(hay, needle)
}

/// Methods the probe and the post-gap resync accept.
pub const KNOWN_METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"CONNECT",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"MKACTIVITY",
    b"CHECKOUT",
    b"MERGE",
    b"NOTIFY",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"PURGE",
    b"LINK",
    b"UNLINK",
    b"ACL",
    b"BIND",
    b"REBIND",
    b"UNBIND",
    b"MKCALENDAR",
];

/// Does `data` start with a known method followed by a blank?
pub fn probe_request_start(data: &[u8]) -> Probe {
    let mut need_more = false;
    for m in KNOWN_METHODS {
        let n = m.len();
        match data.get(n) {
            Some(&b) => {
                if data.get(..n) == Some(*m) && (b == b' ' || b == b'\t') {
                    return Probe::Yes;
                }
            }
            None => {
                if m.starts_with(data) {
                    need_more = true;
                }
            }
        }
    }
    if need_more {
        Probe::NeedMore
    } else {
        Probe::No
    }
}

/// Does `data` start with `HTTP/1.` (a status line)?
pub fn probe_response_start(data: &[u8]) -> Probe {
    const P: &[u8] = b"HTTP/1.";
    if data.len() >= P.len() {
        if data.get(..P.len()) == Some(P) {
            Probe::Yes
        } else {
            Probe::No
        }
    } else if P.starts_with(data) {
        Probe::NeedMore
    } else {
        Probe::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(next_line(b"abc\r\ndef"), Some((&b"abc"[..], 5)));
        assert_eq!(next_line(b"abc\ndef"), Some((&b"abc"[..], 4)));
        assert_eq!(next_line(b"\r\n"), Some((&b""[..], 2)));
        assert_eq!(next_line(b"abc\r"), None);
    }

    #[test]
    fn request_lines() {
        let r = parse_request_line(b"GET /a?b=c HTTP/1.1").unwrap();
        assert_eq!(
            (r.method, r.uri, r.version),
            (&b"GET"[..], &b"/a?b=c"[..], Some(&b"HTTP/1.1"[..]))
        );
        let r = parse_request_line(b"GET  /a b  HTTP/1.0 ").unwrap();
        assert_eq!(r.uri, b"/a b");
        let r = parse_request_line(b"GET /index.html").unwrap();
        assert_eq!(r.version, None);
        assert!(parse_request_line(b"GET").is_none());
        assert!(parse_request_line(b"G(T / HTTP/1.1").is_none());
        assert!(parse_request_line(b"").is_none());
        assert!(parse_request_line(b"GET  HTTP/1.1").is_some()); // uri "HTTP/1.1", 0.9 style
    }

    #[test]
    fn status_lines() {
        let s = parse_status_line(b"HTTP/1.1 200 OK").unwrap();
        assert_eq!(
            (s.version, s.status, s.reason),
            (&b"HTTP/1.1"[..], 200, &b"OK"[..])
        );
        let s = parse_status_line(b"HTTP/1.0 404").unwrap();
        assert_eq!((s.status, s.reason), (404, &b""[..]));
        let s = parse_status_line(b"HTTP/1.1 500 Internal Server Error").unwrap();
        assert_eq!(s.reason, b"Internal Server Error");
        assert!(parse_status_line(b"HTTP/1.1 20 OK").is_none());
        assert!(parse_status_line(b"HTTP/1.1 2000 OK").is_none());
        assert!(parse_status_line(b"FTP/1.1 200 OK").is_none());
        assert!(parse_status_line(b"HTTP/1.1").is_none());
    }

    #[test]
    fn headers_and_values() {
        assert_eq!(
            parse_header(b"Host: example.com "),
            Some((&b"Host"[..], &b"example.com"[..]))
        );
        assert_eq!(parse_header(b"X-Empty:"), Some((&b"X-Empty"[..], &b""[..])));
        assert_eq!(parse_header(b"no colon"), None);
        assert_eq!(parse_header(b" Host : v "), Some((&b"Host"[..], &b"v"[..])));
        assert_eq!(parse_header(b"Ho st: v"), None);
        assert_eq!(parse_header(b"Host"), None);
        assert_eq!(parse_header(b"Host "), None);
        assert_eq!(parse_header(b"   "), None);
        assert_eq!(parse_header(b"H(st: v"), None);
        assert_eq!(parse_header(b"a:b:c"), Some((&b"a"[..], &b"b:c"[..])));
        assert_eq!(parse_header(b"\tX:\t"), Some((&b"X"[..], &b""[..])));
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(
            parse_content_length(b"1234567890123456789"),
            Some(1234567890123456789)
        );
        assert_eq!(parse_content_length(b""), None);
        assert_eq!(parse_header(b": v"), None);
        assert_eq!(
            parse_header_untrimmed(b"Host:  a b \t"),
            Some((&b"Host"[..], &b"  a b \t"[..]))
        );
        assert_eq!(parse_header_untrimmed(b"Ho st: v"), None);
        assert!(is_continuation(b" more"));
        assert_eq!(parse_chunk_size(b"1a;name=v"), Some(26));
        assert_eq!(parse_chunk_size(b"0"), Some(0));
        assert_eq!(parse_chunk_size(b"FFFFFFFFFFFFFFFFF"), None);
        assert_eq!(parse_chunk_size(b"zz"), None);
        assert_eq!(parse_chunk_size(b""), None);
        assert_eq!(parse_content_length(b" 42 "), Some(42));
        assert_eq!(parse_content_length(b"42, 42"), Some(42));
        assert_eq!(parse_content_length(b"42, 43"), None);
        assert_eq!(parse_content_length(b"-1"), None);
        assert_eq!(parse_content_length(b"99999999999999999999"), None);
        assert!(is_chunked(b"gzip, Chunked"));
        assert!(!is_chunked(b"chunked, gzip"));
    }

    #[test]
    fn trims_blanks_only() {
        assert_eq!(trim(b" \t a b \t"), b"a b");
        assert_eq!(trim(b"ab"), b"ab");
        assert_eq!(trim(b" \t "), b"");
        assert_eq!(trim(b""), b"");
        assert_eq!(trim(b"\r x\r"), b"\r x\r");
    }

    #[test]
    fn tchar_table_matches_rfc9110() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), want, "byte {b:#04x}");
        }
        assert!(is_tchar(b'a') && is_tchar(b'~') && !is_tchar(b':') && !is_tchar(b' '));
    }

    #[test]
    fn hosts() {
        assert_eq!(split_host_port(b"a:1:2"), (&b"a:1:2"[..], None));
        assert_eq!(split_host_port(b" h:80 "), (&b"h"[..], Some(80)));
        assert_eq!(split_host_port(b"h:"), (&b"h"[..], None));
        assert_eq!(find(b"http://x", b"://"), Some(4));
        assert_eq!(find(b"ab", b"://"), None);
        assert_eq!(find(b"abc", b""), None);
        assert_eq!(
            split_host_port(b"example.com:8080"),
            (&b"example.com"[..], Some(8080))
        );
        assert_eq!(split_host_port(b"example.com"), (&b"example.com"[..], None));
        assert_eq!(split_host_port(b"[::1]:80"), (&b"::1"[..], Some(80)));
        assert_eq!(split_host_port(b"::1"), (&b"::1"[..], None));
        assert_eq!(split_host_port(b"h:99999"), (&b"h"[..], None));
        assert_eq!(uri_authority(b"http://u@h:81/x", false), Some(&b"h:81"[..]));
        assert_eq!(uri_authority(b"/x", false), None);
        assert_eq!(uri_authority(b"/x://h/", false), None);
        assert_eq!(uri_authority(b"://h/", false), None);
        assert_eq!(uri_authority(b"ht tp://h/", false), None);
        assert_eq!(uri_authority(b"a+b.c-d://h:1?q", false), Some(&b"h:1"[..]));
        assert_eq!(uri_authority(b"http:/h", false), None);
        assert_eq!(uri_authority(b"http://", false), None);
        assert_eq!(uri_authority(b"abc:443", true), Some(&b"abc:443"[..]));
    }

    #[test]
    fn probes() {
        assert_eq!(probe_request_start(b"GET / HTTP/1.1"), Probe::Yes);
        assert_eq!(probe_request_start(b"PROP"), Probe::NeedMore);
        assert_eq!(probe_request_start(b""), Probe::NeedMore);
        assert_eq!(probe_request_start(b"GETX /"), Probe::No);
        assert_eq!(probe_request_start(b"\x16\x03\x01"), Probe::No);
        assert_eq!(probe_response_start(b"HTTP/1.1 200"), Probe::Yes);
        assert_eq!(probe_response_start(b"HTT"), Probe::NeedMore);
        assert_eq!(probe_response_start(b"HTTP/2.0 200"), Probe::No);
    }
}
