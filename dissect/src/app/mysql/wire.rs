//! MySQL/MariaDB client/server protocol: the packet head (3-byte little
//! endian length, sequence number), the server greeting (protocol 10), the
//! client's handshake response, OK/ERR/EOF packets and the other bodies
//! flowtap reads. Every reader is bounds-checked and returns `None` (or
//! partial data) on short input rather than panicking.

/// A packet of this payload length continues in the next packet.
pub const MAX_PAYLOAD: usize = 0xff_ffff;

/// Capability flags flowtap reads.
pub const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
pub const CLIENT_COMPRESS: u32 = 0x0000_0020;
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
pub const CLIENT_SSL: u32 = 0x0000_0800;
pub const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
pub const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
pub const CLIENT_PLUGIN_AUTH_LENENC_DATA: u32 = 0x0020_0000;
pub const CLIENT_SESSION_TRACK: u32 = 0x0080_0000;
pub const CLIENT_DEPRECATE_EOF: u32 = 0x0100_0000;

/// Server status flag: another result set (or OK) follows this one.
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
/// Server status flag: the execute opened a cursor (rows come by COM_STMT_FETCH).
pub const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x0040;

/// Command bytes.
pub const COM_QUIT: u8 = 0x01;
pub const COM_INIT_DB: u8 = 0x02;
pub const COM_QUERY: u8 = 0x03;
pub const COM_FIELD_LIST: u8 = 0x04;
pub const COM_CHANGE_USER: u8 = 0x11;
pub const COM_BINLOG_DUMP: u8 = 0x12;
pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_EXECUTE: u8 = 0x17;
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
pub const COM_STMT_CLOSE: u8 = 0x19;
pub const COM_STMT_RESET: u8 = 0x1a;
pub const COM_STMT_FETCH: u8 = 0x1c;
pub const COM_BINLOG_DUMP_GTID: u8 = 0x1e;

/// Zeek's names of the commands (its `mysql.log` `cmd` column), by byte.
pub fn command_name(c: u8) -> Option<&'static str> {
    const NAMES: [&str; 32] = [
        "sleep",
        "quit",
        "init_db",
        "query",
        "field_list",
        "create_db",
        "drop_db",
        "refresh",
        "shutdown",
        "statistics",
        "process_info",
        "connect",
        "process_kill",
        "debug",
        "ping",
        "time",
        "delayed_insert",
        "change_user",
        "binlog_dump",
        "table_dump",
        "connect_out",
        "register_slave",
        "stmt_prepare",
        "stmt_execute",
        "stmt_send_long_data",
        "stmt_close",
        "stmt_reset",
        "set_option",
        "stmt_fetch",
        "daemon",
        "binlog_dump_gtid",
        "reset_connection",
    ];
    NAMES.get(usize::from(c)).copied()
}

/// Head of a packet: (payload length, sequence number). `None` under 4 bytes.
pub fn head(data: &[u8]) -> Option<(usize, u8)> {
    let b = data.get(..4)?;
    let len = usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16;
    Some((len, b[3]))
}

pub fn le16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

pub fn le32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// A length-encoded integer at `off`: (value, offset after it). `0xfb`
/// (NULL) reads as 0; `0xff` is not an integer.
pub fn lenenc(b: &[u8], off: usize) -> Option<(u64, usize)> {
    let first = *b.get(off)?;
    let width = match first {
        0..=0xfa => return Some((u64::from(first), off + 1)),
        0xfb => return Some((0, off + 1)),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        0xff => return None,
    };
    let s = b.get(off + 1..off + 1 + width)?;
    let mut v = 0u64;
    for (i, &x) in s.iter().enumerate() {
        v |= u64::from(x) << (8 * i);
    }
    Some((v, off + 1 + width))
}

/// A NUL-terminated string at `off`: (bytes, offset after the NUL). One
/// without its NUL runs to the end.
pub fn cstr(b: &[u8], off: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(off..)?;
    match rest.iter().position(|&c| c == 0) {
        Some(n) => Some((rest.get(..n)?, off + n + 1)),
        None => Some((rest, b.len())),
    }
}

/// Copies at most `max` bytes of `b` into a String (lossy UTF-8); says if it cut.
pub fn text(b: &[u8], max: usize) -> (String, bool) {
    crate::app::util::bounded_string_flag(b, max)
}

/// The server greeting (Protocol::HandshakeV10).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Greeting<'a> {
    pub version: &'a [u8],
    pub connection_id: u32,
    pub capabilities: u32,
    pub auth_plugin: Option<&'a [u8]>,
}

/// Reads a greeting payload (protocol byte 10 first). `None` when it is
/// not one: the version must be printable and NUL-terminated, the filler
/// after the first 8 bytes of scramble zero.
pub fn greeting(p: &[u8]) -> Option<Greeting<'_>> {
    if *p.first()? != 10 {
        return None;
    }
    let nul = p.get(1..)?.iter().position(|&c| c == 0)?;
    let version = p.get(1..1 + nul)?;
    if version.is_empty() || !version.iter().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    let mut off = 1 + nul + 1;
    let connection_id = le32(p, off)?;
    off += 4 + 8;
    if *p.get(off)? != 0 {
        return None;
    }
    off += 1;
    let cap_low = le16(p, off)?;
    off += 2;
    let mut g = Greeting {
        version,
        connection_id,
        capabilities: u32::from(cap_low),
        auth_plugin: None,
    };
    // Servers before 4.1 end here.
    let Some(&_charset) = p.get(off) else {
        return Some(g);
    };
    off += 1 + 2; // charset, status
    let cap_high = le16(p, off).unwrap_or(0);
    g.capabilities |= u32::from(cap_high) << 16;
    off += 2;
    let auth_len = usize::from(p.get(off).copied().unwrap_or(0));
    off += 1 + 10;
    if g.capabilities & CLIENT_SECURE_CONNECTION != 0 {
        off += auth_len.saturating_sub(8).max(13);
    }
    if g.capabilities & CLIENT_PLUGIN_AUTH != 0 {
        if let Some((name, _)) = cstr(p, off) {
            g.auth_plugin = Some(name).filter(|n| !n.is_empty());
        }
    }
    Some(g)
}

/// Is `data` (the first bytes from the server) the start of a greeting?
/// `Some(true)` yes, `Some(false)` no, `None` not enough bytes to tell.
pub fn plausible_greeting(data: &[u8]) -> Option<bool> {
    let Some((len, seq)) = head(data) else {
        // A greeting is at most 1 KiB: the length's upper bytes are small.
        return if data.get(2).is_some_and(|&b| b != 0) || data.get(1).is_some_and(|&b| b > 4) {
            Some(false)
        } else {
            None
        };
    };
    // Shortest real greeting: protocol, "5.0.x\0", id, scramble, filler, caps.
    if seq != 0 || !(20..=1024).contains(&len) {
        return Some(false);
    }
    match data.get(4) {
        None => return None,
        Some(10) => {}
        Some(_) => return Some(false),
    }
    let p = data.get(4..4 + len.min(data.len() - 4)).unwrap_or(&[]);
    // The version: digits first, printable, NUL within 64 bytes.
    let v = p.get(1..).unwrap_or(&[]);
    if v.first().is_some_and(|c| !c.is_ascii_digit()) {
        return Some(false);
    }
    match v.iter().position(|&c| c == 0) {
        Some(n) if n == 0 || n > 64 || !v[..n].iter().all(|c| c.is_ascii_graphic()) => {
            return Some(false)
        }
        None if v.len() > 64 || !v.iter().all(|c| c.is_ascii_graphic()) => return Some(false),
        None => return None,
        Some(_) => {}
    }
    if p.len() < len {
        return None;
    }
    Some(greeting(p).is_some())
}

/// The client's handshake response (or SSL request: its first 32 bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandshakeResponse<'a> {
    pub capabilities: u32,
    /// Only the capabilities: an SSL request, TLS follows.
    pub ssl_request: bool,
    pub user: Option<&'a [u8]>,
    pub schema: Option<&'a [u8]>,
    pub auth_plugin: Option<&'a [u8]>,
}

/// Reads HandshakeResponse41 (or 320, for clients without `PROTOCOL_41`).
/// The auth response (a scrambled password) is skipped, never returned.
pub fn handshake_response(p: &[u8]) -> Option<HandshakeResponse<'_>> {
    let low = le16(p, 0)?;
    if u32::from(low) & CLIENT_PROTOCOL_41 == 0 {
        // HandshakeResponse320: caps(2), max packet(3), user, auth.
        let mut r = HandshakeResponse {
            capabilities: u32::from(low),
            ..HandshakeResponse::default()
        };
        if p.len() <= 5 {
            r.ssl_request = r.capabilities & CLIENT_SSL != 0;
            return Some(r);
        }
        r.user = cstr(p, 5).map(|(u, _)| u);
        return Some(r);
    }
    let caps = le32(p, 0)?;
    let mut r = HandshakeResponse {
        capabilities: caps,
        ..HandshakeResponse::default()
    };
    // caps(4), max packet(4), charset(1), filler(23).
    if p.len() <= 32 {
        r.ssl_request = caps & CLIENT_SSL != 0;
        return Some(r);
    }
    let (user, mut off) = cstr(p, 32)?;
    r.user = Some(user);
    if caps & CLIENT_PLUGIN_AUTH_LENENC_DATA != 0 {
        let (n, o) = lenenc(p, off)?;
        off = o.checked_add(usize::try_from(n).ok()?)?;
    } else if caps & CLIENT_SECURE_CONNECTION != 0 {
        off += 1 + usize::from(*p.get(off)?);
    } else {
        off = cstr(p, off)?.1;
    }
    if caps & CLIENT_CONNECT_WITH_DB != 0 && off < p.len() {
        let (db, o) = cstr(p, off)?;
        r.schema = Some(db);
        off = o;
    }
    if caps & CLIENT_PLUGIN_AUTH != 0 && off < p.len() {
        r.auth_plugin = cstr(p, off).map(|(n, _)| n).filter(|n| !n.is_empty());
    }
    Some(r)
}

/// An OK packet (header 0x00, or 0xfe ending a result set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ok {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

/// Reads an OK packet's payload (its header byte first). The human
/// readable info that may follow is returned as the second value.
pub fn ok_packet(p: &[u8], session_track: bool) -> Option<(Ok, &[u8])> {
    let (affected_rows, off) = lenenc(p, 1)?;
    let (last_insert_id, off) = lenenc(p, off)?;
    let status = le16(p, off).unwrap_or(0);
    let warnings = le16(p, off + 2).unwrap_or(0);
    // Info: a length-encoded string when session tracking is on (session
    // state changes may follow it), else the rest of the packet.
    let rest = p.get(off + 4..).unwrap_or(&[]);
    let info = if session_track {
        match lenenc(rest, 0) {
            Some((n, o)) => rest
                .get(o..o.saturating_add(usize::try_from(n).unwrap_or(usize::MAX)))
                .unwrap_or(rest.get(o..).unwrap_or(&[])),
            None => &[],
        }
    } else {
        rest
    };
    Some((
        Ok {
            affected_rows,
            last_insert_id,
            status,
            warnings,
        },
        info,
    ))
}

/// An EOF packet's payload (0xfe, warnings, status): (warnings, status).
pub fn eof_packet(p: &[u8]) -> (u16, u16) {
    (le16(p, 1).unwrap_or(0), le16(p, 3).unwrap_or(0))
}

/// An ERR packet, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Err<'a> {
    pub code: u16,
    /// Servers before 4.1 (and errors before the handshake) have no `#`
    /// and SQLSTATE.
    pub sql_state: Option<&'a [u8]>,
    pub message: &'a [u8],
}

/// Reads an ERR packet's payload (0xff first).
pub fn err_packet(p: &[u8]) -> Option<Err<'_>> {
    let code = le16(p, 1)?;
    let rest = p.get(3..).unwrap_or(&[]);
    Some(if rest.first() == Some(&b'#') && rest.len() >= 6 {
        Err {
            code,
            sql_state: rest.get(1..6),
            message: rest.get(6..).unwrap_or(&[]),
        }
    } else {
        Err {
            code,
            sql_state: None,
            message: rest,
        }
    })
}

/// COM_STMT_PREPARE's OK: (statement id, columns, parameters, warnings).
pub fn prepare_ok(p: &[u8]) -> Option<(u32, u16, u16, u16)> {
    Some((
        le32(p, 1)?,
        le16(p, 5)?,
        le16(p, 7)?,
        le16(p, 10).unwrap_or(0),
    ))
}

/// Test helpers: packets built by hand.
#[cfg(test)]
pub(crate) mod build {
    pub fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        v.extend_from_slice(payload);
        v
    }

    pub fn greeting(version: &str, id: u32, caps: u32, plugin: &str) -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(version.as_bytes());
        p.push(0);
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(b"abcdefgh");
        p.push(0);
        p.extend_from_slice(&(caps as u16).to_le_bytes());
        p.push(0x21);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        packet(0, &p)
    }

    pub fn response(
        caps: u32,
        user: &str,
        secret: &[u8],
        db: Option<&str>,
        plugin: &str,
    ) -> Vec<u8> {
        let mut p = caps.to_le_bytes().to_vec();
        p.extend_from_slice(&(1u32 << 24).to_le_bytes());
        p.push(0x21);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(secret.len() as u8);
        p.extend_from_slice(secret);
        if let Some(db) = db {
            p.extend_from_slice(db.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        packet(1, &p)
    }

    pub fn ok(seq: u8, affected: u8, insert_id: u8, status: u16, warnings: u16) -> Vec<u8> {
        let mut p = vec![0, affected, insert_id];
        p.extend_from_slice(&status.to_le_bytes());
        p.extend_from_slice(&warnings.to_le_bytes());
        packet(seq, &p)
    }

    pub fn err(seq: u8, code: u16, state: &str, msg: &str) -> Vec<u8> {
        let mut p = vec![0xff];
        p.extend_from_slice(&code.to_le_bytes());
        p.push(b'#');
        p.extend_from_slice(state.as_bytes());
        p.extend_from_slice(msg.as_bytes());
        packet(seq, &p)
    }

    pub fn eof(seq: u8, status: u16) -> Vec<u8> {
        let mut p = vec![0xfe, 0, 0];
        p.extend_from_slice(&status.to_le_bytes());
        packet(seq, &p)
    }

    pub fn command(cmd: u8, arg: &[u8]) -> Vec<u8> {
        let mut p = vec![cmd];
        p.extend_from_slice(arg);
        packet(0, &p)
    }

    /// A text result set: column count, definitions, EOF, rows, EOF.
    pub fn result_set(columns: &[&str], rows: &[&[&str]], status: u16) -> Vec<u8> {
        let mut out = packet(1, &[columns.len() as u8]);
        let mut seq = 2u8;
        for c in columns {
            let mut d = Vec::new();
            for part in ["def", "db", "t", "t", c, c] {
                d.push(part.len() as u8);
                d.extend_from_slice(part.as_bytes());
            }
            d.extend_from_slice(&[0x0c, 0x21, 0, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0]);
            out.extend(packet(seq, &d));
            seq = seq.wrapping_add(1);
        }
        out.extend(eof(seq, 2));
        seq = seq.wrapping_add(1);
        for r in rows {
            let mut d = Vec::new();
            for v in *r {
                d.push(v.len() as u8);
                d.extend_from_slice(v.as_bytes());
            }
            out.extend(packet(seq, &d));
            seq = seq.wrapping_add(1);
        }
        out.extend(eof(seq, status));
        out
    }
}
