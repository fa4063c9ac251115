//! AMQP 0-9-1 wire format: the protocol header, frames (type, channel,
//! size, payload, 0xCE), method arguments, content headers and field
//! tables. No state: every function reads one buffer.

/// `AMQP` then 0, 0, 9, 1 (0-9-1); other versions differ in the last bytes.
pub const PROTOCOL_HEADER: &[u8; 4] = b"AMQP";
pub const FRAME_END: u8 = 0xCE;
pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
/// Type, channel, size.
pub const FRAME_HEAD: usize = 7;

/// A frame's head: (type, channel, payload size).
pub fn frame_head(b: &[u8]) -> Option<(u8, u16, u32)> {
    let h = b.get(..FRAME_HEAD)?;
    Some((
        h[0],
        u16::from_be_bytes([h[1], h[2]]),
        u32::from_be_bytes([h[3], h[4], h[5], h[6]]),
    ))
}

pub fn known_frame_type(t: u8) -> bool {
    matches!(
        t,
        FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
    )
}

/// The name of a method (`basic.publish`), None when it is not one of
/// AMQP 0-9-1's.
pub fn method_name(class: u16, method: u16) -> Option<&'static str> {
    Some(match (class, method) {
        (10, 10) => "connection.start",
        (10, 11) => "connection.start-ok",
        (10, 20) => "connection.secure",
        (10, 21) => "connection.secure-ok",
        (10, 30) => "connection.tune",
        (10, 31) => "connection.tune-ok",
        (10, 40) => "connection.open",
        (10, 41) => "connection.open-ok",
        (10, 50) => "connection.close",
        (10, 51) => "connection.close-ok",
        (10, 60) => "connection.blocked",
        (10, 61) => "connection.unblocked",
        (20, 10) => "channel.open",
        (20, 11) => "channel.open-ok",
        (20, 20) => "channel.flow",
        (20, 21) => "channel.flow-ok",
        (20, 40) => "channel.close",
        (20, 41) => "channel.close-ok",
        (40, 10) => "exchange.declare",
        (40, 11) => "exchange.declare-ok",
        (40, 20) => "exchange.delete",
        (40, 21) => "exchange.delete-ok",
        (40, 30) => "exchange.bind",
        (40, 31) => "exchange.bind-ok",
        (40, 40) => "exchange.unbind",
        (40, 51) => "exchange.unbind-ok",
        (50, 10) => "queue.declare",
        (50, 11) => "queue.declare-ok",
        (50, 20) => "queue.bind",
        (50, 21) => "queue.bind-ok",
        (50, 30) => "queue.purge",
        (50, 31) => "queue.purge-ok",
        (50, 40) => "queue.delete",
        (50, 41) => "queue.delete-ok",
        (50, 50) => "queue.unbind",
        (50, 51) => "queue.unbind-ok",
        (60, 10) => "basic.qos",
        (60, 11) => "basic.qos-ok",
        (60, 20) => "basic.consume",
        (60, 21) => "basic.consume-ok",
        (60, 30) => "basic.cancel",
        (60, 31) => "basic.cancel-ok",
        (60, 40) => "basic.publish",
        (60, 50) => "basic.return",
        (60, 60) => "basic.deliver",
        (60, 70) => "basic.get",
        (60, 71) => "basic.get-ok",
        (60, 72) => "basic.get-empty",
        (60, 80) => "basic.ack",
        (60, 90) => "basic.reject",
        (60, 100) => "basic.recover-async",
        (60, 110) => "basic.recover",
        (60, 111) => "basic.recover-ok",
        (60, 120) => "basic.nack",
        (85, 10) => "confirm.select",
        (85, 11) => "confirm.select-ok",
        (90, 10) => "tx.select",
        (90, 11) => "tx.select-ok",
        (90, 20) => "tx.commit",
        (90, 21) => "tx.commit-ok",
        (90, 30) => "tx.rollback",
        (90, 31) => "tx.rollback-ok",
        _ => return None,
    })
}

/// The method that answers `(class, method)`, for synchronous requests.
/// `basic.get` has two (get-ok, get-empty): 71 is returned and 72 is
/// accepted by the caller too.
pub fn response_of(class: u16, method: u16) -> Option<u16> {
    match (class, method) {
        (10, 10 | 20 | 30 | 40 | 50)
        | (20, 10 | 20 | 40)
        | (40, 10 | 20 | 30)
        | (50, 10..=50)
        | (60, 10 | 20 | 30 | 110)
        | (85, 10)
        | (90, 10 | 20 | 30)
            if method.is_multiple_of(10) =>
        {
            Some(method + 1)
        }
        (40, 40) => Some(51),
        (60, 70) => Some(71),
        _ => None,
    }
}

/// Methods that carry content (a header frame and body frames follow).
pub fn has_content(class: u16, method: u16) -> bool {
    matches!((class, method), (60, 40 | 50 | 60 | 71))
}

/// Sequential reader of method arguments; every read is bounded by the
/// buffer (a short buffer yields None, never a panic).
pub struct Args<'a> {
    b: &'a [u8],
    pos: usize,
    /// Bits of consecutive `bit` arguments share an octet.
    bits: Option<(u8, u8)>,
}

impl<'a> Args<'a> {
    pub fn new(b: &'a [u8]) -> Args<'a> {
        Args {
            b,
            pos: 0,
            bits: None,
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        self.bits = None;
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_be_bytes([s[0], s[1]]))
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_be_bytes(a)
        })
    }

    pub fn shortstr(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    pub fn longstr(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()?;
        self.take(usize::try_from(n).ok()?)
    }

    /// A field table, as its raw bytes.
    pub fn table(&mut self) -> Option<&'a [u8]> {
        self.longstr()
    }

    /// The next `bit` argument.
    pub fn bit(&mut self) -> Option<bool> {
        let (octet, i) = match self.bits {
            Some((o, i)) if i < 8 => (o, i),
            _ => {
                let o = self.u8()?;
                (o, 0)
            }
        };
        self.bits = Some((octet, i + 1));
        Some(octet & (1 << i) != 0)
    }
}

/// The long-string values of a field table's top-level keys named in
/// `want`, passed to `f` (name, value). Values of other types are skipped;
/// nesting is bounded.
pub fn table_strings(t: &[u8], want: &[&str], f: &mut dyn FnMut(&str, &[u8])) {
    let mut a = Args::new(t);
    while let Some(name) = a.shortstr() {
        let Some(ty) = a.u8() else { return };
        if ty == b'S' {
            let Some(v) = a.longstr() else { return };
            if let Some(n) = want.iter().find(|w| w.as_bytes() == name) {
                f(n, v);
            }
        } else if skip_value(&mut a, ty, 0).is_none() {
            return;
        }
    }
}

/// Skips a field value of type `ty`.
fn skip_value(a: &mut Args<'_>, ty: u8, depth: u32) -> Option<()> {
    if depth > 8 {
        return None;
    }
    let n = match ty {
        b't' | b'b' | b'B' => 1,
        // `s` is a 16-bit integer in RabbitMQ's (and Qpid's) reading of
        // the spec, which every broker in use follows.
        b'U' | b'u' | b's' => 2,
        b'I' | b'i' | b'f' => 4,
        b'L' | b'l' | b'd' | b'T' => 8,
        b'D' => 5,
        b'V' => 0,
        b'S' | b'x' | b'F' => {
            a.longstr()?;
            return Some(());
        }
        b'A' => {
            let arr = a.longstr()?;
            let mut inner = Args::new(arr);
            while let Some(t) = inner.u8() {
                skip_value(&mut inner, t, depth + 1)?;
            }
            return Some(());
        }
        _ => return None,
    };
    a.take(n).map(|_| ())
}

/// A content header: body size and the properties an event keeps
/// (content type, delivery mode).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentHeader {
    pub class: u16,
    pub body_size: u64,
    pub content_type: Option<Vec<u8>>,
    pub delivery_mode: Option<u8>,
}

pub fn content_header(p: &[u8]) -> Option<ContentHeader> {
    let mut a = Args::new(p);
    let class = a.u16()?;
    let _weight = a.u16()?;
    let body_size = a.u64()?;
    let flags = a.u16()?;
    let mut h = ContentHeader {
        class,
        body_size,
        ..ContentHeader::default()
    };
    // Properties in flag order (bit 15 first): content-type,
    // content-encoding, headers, delivery-mode, ...
    if flags & (1 << 15) != 0 {
        h.content_type = Some(a.shortstr()?.to_vec());
    }
    if flags & (1 << 14) != 0 {
        a.shortstr()?;
    }
    if flags & (1 << 13) != 0 {
        a.table()?;
    }
    if flags & (1 << 12) != 0 {
        h.delivery_mode = Some(a.u8()?);
    }
    Some(h)
}

/// Builders for tests: frames as a client or broker writes them.
#[cfg(test)]
pub mod build {
    pub fn frame(t: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![t];
        v.extend_from_slice(&channel.to_be_bytes());
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v.push(super::FRAME_END);
        v
    }

    pub fn method(channel: u16, class: u16, method: u16, args: &[u8]) -> Vec<u8> {
        let mut p = class.to_be_bytes().to_vec();
        p.extend_from_slice(&method.to_be_bytes());
        p.extend_from_slice(args);
        frame(super::FRAME_METHOD, channel, &p)
    }

    pub fn sstr(s: &str) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    pub fn lstr(s: &[u8]) -> Vec<u8> {
        let mut v = (s.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(s);
        v
    }

    /// A table of long-string values.
    pub fn table(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut t = Vec::new();
        for (k, v) in entries {
            t.extend_from_slice(&sstr(k));
            t.push(b'S');
            t.extend_from_slice(&lstr(v.as_bytes()));
        }
        lstr(&t)
    }

    pub fn header(
        channel: u16,
        body_size: u64,
        content_type: Option<&str>,
        mode: Option<u8>,
    ) -> Vec<u8> {
        let mut p = 60u16.to_be_bytes().to_vec();
        p.extend_from_slice(&0u16.to_be_bytes());
        p.extend_from_slice(&body_size.to_be_bytes());
        let mut flags = 0u16;
        let mut props = Vec::new();
        if let Some(ct) = content_type {
            flags |= 1 << 15;
            props.extend_from_slice(&sstr(ct));
        }
        if let Some(m) = mode {
            flags |= 1 << 12;
            props.push(m);
        }
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&props);
        frame(super::FRAME_HEADER, channel, &p)
    }
}
