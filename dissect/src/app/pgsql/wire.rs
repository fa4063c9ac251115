//! PostgreSQL v3 wire format: the untyped startup-phase packets (length,
//! code), typed messages (type byte, length including itself, body), and
//! the bodies flowtap reads. Every reader is bounds-checked and returns
//! `None`/partial data on short input rather than panicking.

use crate::app::util::{be16, be32};

/// SSLRequest code (1234.5679).
pub const SSL_REQUEST: u32 = 80_877_103;
/// GSSENCRequest code (1234.5680).
pub const GSSENC_REQUEST: u32 = 80_877_104;
/// CancelRequest code (1234.5678).
pub const CANCEL_REQUEST: u32 = 80_877_102;
/// The server refuses startup packets longer than this (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_LEN: usize = 10_000;
/// A message longer than this (PostgreSQL's 1 GiB limit) is not PostgreSQL.
pub const MAX_MESSAGE_LEN: usize = 0x4000_0000;

/// An untyped packet of the startup phase, from its 8-byte head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Untyped {
    Ssl,
    GssEnc,
    Cancel,
    /// StartupMessage with this protocol version.
    Startup(u16, u16),
}

/// Reads the head of an untyped packet: its total length and kind.
/// `None` when fewer than 8 bytes are there; `Some(Err)` when it is not one.
pub fn untyped_head(data: &[u8]) -> Option<Result<(usize, Untyped), ()>> {
    let len = be32(data, 0)? as usize;
    let code = be32(data, 4)?;
    let kind = match code {
        SSL_REQUEST if len == 8 => Untyped::Ssl,
        GSSENC_REQUEST if len == 8 => Untyped::GssEnc,
        CANCEL_REQUEST if len == 16 => Untyped::Cancel,
        // Protocol 3.x (2.0 has a fixed 296-byte packet without key/value pairs).
        v if v >> 16 == 3 && (9..=MAX_STARTUP_LEN).contains(&len) => {
            Untyped::Startup((v >> 16) as u16, (v & 0xffff) as u16)
        }
        _ => return Some(Err(())),
    };
    Some(Ok((len, kind)))
}

/// A NUL-terminated string at `off`: (bytes, offset after the NUL). A
/// string without its NUL (cut message) runs to the end; `terminated` says
/// which.
pub fn cstr(b: &[u8], off: usize) -> Option<(&[u8], usize, bool)> {
    let rest = b.get(off..)?;
    match rest.iter().position(|&c| c == 0) {
        Some(n) => Some((rest.get(..n)?, off + n + 1, true)),
        None => Some((rest, b.len(), false)),
    }
}

/// Copies at most `max` bytes of `b` into a String (lossy UTF-8); says if it cut.
pub fn text(b: &[u8], max: usize) -> (String, bool) {
    crate::app::util::bounded_string_flag(b, max)
}

/// The key/value pairs of a StartupMessage body (after length and
/// version): at most `max_pairs`, each string cut at `max_len`. The bool
/// says something was cut or dropped.
pub fn startup_params(
    body: &[u8],
    max_pairs: usize,
    max_len: usize,
) -> (Vec<(String, String)>, bool) {
    let mut out = Vec::new();
    let mut cut = false;
    let mut off = 0;
    while let Some((k, next, true)) = cstr(body, off) {
        if k.is_empty() {
            break; // the list's terminator
        }
        let Some((v, after, _)) = cstr(body, next) else {
            break;
        };
        off = after;
        if out.len() >= max_pairs {
            cut = true;
            continue;
        }
        let (k, c1) = text(k, max_len);
        let (v, c2) = text(v, max_len);
        cut |= c1 | c2;
        out.push((k, v));
    }
    (out, cut)
}

/// Is a startup parameter list plausible (printable keys, terminated
/// pairs, a `user`)? For the content probe: `complete` when the whole
/// packet is in `body`.
pub fn plausible_startup(body: &[u8], complete: bool) -> bool {
    let mut off = 0;
    let mut user = false;
    loop {
        let Some((k, next, term)) = cstr(body, off) else {
            return !complete;
        };
        if !term {
            return !complete && k.iter().all(|c| c.is_ascii_graphic());
        }
        if k.is_empty() {
            return user && next == body.len();
        }
        if !k.iter().all(|c| c.is_ascii_graphic()) {
            return false;
        }
        user |= k == b"user";
        match cstr(body, next) {
            Some((_, after, true)) => off = after,
            _ => return !complete,
        }
    }
}

/// Message types a client (frontend) sends after the startup packet.
pub fn is_frontend_type(t: u8) -> bool {
    matches!(
        t,
        b'Q' | b'P'
            | b'B'
            | b'E'
            | b'D'
            | b'C'
            | b'H'
            | b'S'
            | b'X'
            | b'p'
            | b'd'
            | b'c'
            | b'f'
            | b'F'
    )
}

/// Message types a server (backend) sends.
pub fn is_backend_type(t: u8) -> bool {
    matches!(
        t,
        b'R' | b'S'
            | b'K'
            | b'Z'
            | b'T'
            | b'D'
            | b'C'
            | b'E'
            | b'N'
            | b'I'
            | b'1'
            | b'2'
            | b'3'
            | b'n'
            | b't'
            | b's'
            | b'G'
            | b'H'
            | b'W'
            | b'd'
            | b'c'
            | b'A'
            | b'V'
            | b'v'
    )
}

/// Head of a typed message: (type, total length on the wire = 1 + length
/// field). `None` under 5 bytes; `Some(Err)` when the length is impossible.
pub fn typed_head(data: &[u8]) -> Option<Result<(u8, usize), ()>> {
    let t = *data.first()?;
    let len = be32(data, 1)? as usize;
    if !(4..=MAX_MESSAGE_LEN).contains(&len) {
        return Some(Err(()));
    }
    Some(Ok((t, 1 + len)))
}

/// Fields of an ErrorResponse/NoticeResponse body: at most `max_fields`,
/// each value cut at `max_len`. The bool says something was cut.
pub fn error_fields(body: &[u8], max_fields: usize, max_len: usize) -> (Vec<(u8, String)>, bool) {
    let mut out = Vec::new();
    let mut cut = false;
    let mut off = 0;
    while let Some(&t) = body.get(off) {
        if t == 0 {
            break;
        }
        let Some((v, next, term)) = cstr(body, off + 1) else {
            break;
        };
        off = next;
        if out.len() >= max_fields {
            cut = true;
            continue;
        }
        let (v, c) = text(v, max_len);
        cut |= c || !term;
        out.push((t, v));
    }
    (out, cut)
}

/// Parse (`P`): statement name, query text (the text may be cut when the
/// message was).
pub fn parse_msg(body: &[u8]) -> Option<(&[u8], &[u8], bool)> {
    let (name, next, _) = cstr(body, 0)?;
    let (query, _, term) = cstr(body, next)?;
    Some((name, query, term))
}

/// Bind (`B`): portal name, statement name.
pub fn bind_msg(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let (portal, next, _) = cstr(body, 0)?;
    let (stmt, _, _) = cstr(body, next)?;
    Some((portal, stmt))
}

/// Close (`C`): what (`S` statement / `P` portal) and its name.
pub fn close_msg(body: &[u8]) -> Option<(u8, &[u8])> {
    let what = *body.first()?;
    let (name, _, _) = cstr(body, 1)?;
    Some((what, name))
}

/// Authentication request code.
pub fn auth_code(body: &[u8]) -> Option<u32> {
    be32(body, 0)
}

/// ParameterStatus: name, value.
pub fn parameter_status(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let (k, next, _) = cstr(body, 0)?;
    let (v, _, _) = cstr(body, next)?;
    Some((k, v))
}

/// BackendKeyData / CancelRequest body: process id, secret key.
pub fn key_data(body: &[u8]) -> Option<(u32, u32)> {
    Some((be32(body, 0)?, be32(body, 4)?))
}

/// RowDescription: number of columns.
pub fn field_count(body: &[u8]) -> Option<u16> {
    be16(body, 0)
}

/// The row count a CommandComplete tag reports: its last number, for the
/// commands that have one (`SELECT 3`, `INSERT 0 1`, `UPDATE 2`, `COPY 5`).
pub fn tag_rows(tag: &str) -> Option<u64> {
    let cmd = tag.split(' ').next()?;
    if !matches!(
        cmd,
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "FETCH" | "MOVE" | "COPY"
    ) {
        return None;
    }
    tag.rsplit(' ').next()?.parse().ok()
}

/// Longest message taken on trust after a gap when it runs past the data.
const RESYNC_OPEN_MAX: usize = 16 << 20;

/// Is there a plausible message head at the start of `data` (after a gap)?
/// The type must be one the direction sends, the length sane, and when the
/// next head is in `data` too, it must be plausible as well (or the
/// message must end exactly where `data` ends). With `open_end` (the head
/// is where a segment starts, which is where senders usually start
/// messages) a message running past the data is taken when under 16 MiB:
/// a long result stream otherwise might never offer a whole message.
pub fn plausible_at(data: &[u8], from_client: bool, open_end: bool) -> bool {
    let ok_type = |t: u8| {
        if from_client {
            is_frontend_type(t)
        } else {
            is_backend_type(t)
        }
    };
    let Some(Ok((t, total))) = typed_head(data) else {
        return false;
    };
    if !ok_type(t) {
        return false;
    }
    if total == data.len() {
        return true;
    }
    if total > data.len() {
        return open_end && total <= RESYNC_OPEN_MAX;
    }
    match data.get(total..).map(typed_head) {
        Some(Some(Ok((t2, _)))) => ok_type(t2),
        _ => false,
    }
}

/// Builders of wire messages for the tests.
#[cfg(test)]
pub(crate) mod build {
    pub fn msg(t: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![t];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }
    pub fn cstrs(parts: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for p in parts {
            v.extend_from_slice(p.as_bytes());
            v.push(0);
        }
        v
    }
    pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
        let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
        for (k, v) in params {
            body.extend(cstrs(&[k, v]));
        }
        body.push(0);
        let mut v = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        v.extend(body);
        v
    }
    pub fn ssl_request() -> Vec<u8> {
        let mut v = 8u32.to_be_bytes().to_vec();
        v.extend_from_slice(&super::SSL_REQUEST.to_be_bytes());
        v
    }
    pub fn query(q: &str) -> Vec<u8> {
        msg(b'Q', &cstrs(&[q]))
    }
    pub fn auth(code: u32, extra: &[u8]) -> Vec<u8> {
        let mut b = code.to_be_bytes().to_vec();
        b.extend_from_slice(extra);
        msg(b'R', &b)
    }
    pub fn ready(status: u8) -> Vec<u8> {
        msg(b'Z', &[status])
    }
    pub fn complete(tag: &str) -> Vec<u8> {
        msg(b'C', &cstrs(&[tag]))
    }
    pub fn error(code: &str, message: &str) -> Vec<u8> {
        let mut b = Vec::new();
        for (t, v) in [
            (b'S', "ERROR"),
            (b'V', "ERROR"),
            (b'C', code),
            (b'M', message),
        ] {
            b.push(t);
            b.extend(cstrs(&[v]));
        }
        b.push(0);
        msg(b'E', &b)
    }
    pub fn row_description(n: u16) -> Vec<u8> {
        msg(b'T', &n.to_be_bytes())
    }
    pub fn data_row(cols: &[&str]) -> Vec<u8> {
        let mut b = (cols.len() as u16).to_be_bytes().to_vec();
        for c in cols {
            b.extend_from_slice(&(c.len() as u32).to_be_bytes());
            b.extend_from_slice(c.as_bytes());
        }
        msg(b'D', &b)
    }
}
