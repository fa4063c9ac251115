//! RESP2/RESP3 framing, read incrementally and without buffering values.
//!
//! A [`Reader`] is fed the unconsumed bytes of one direction and returns
//! one top-level message at a time. Lines (type byte, header, simple
//! strings, errors, numbers) must be whole in the slice it is given; bulk
//! payloads are consumed as they arrive and only their first
//! `max_elem_bytes` are kept, so a 100 MB `GET` reply costs no memory.
//! Nesting is tracked with a stack bounded by `max_depth`. Only the
//! top-level scalar and the direct elements of a top-level aggregate are
//! kept (a command's name and arguments, a push's kind and channel): that
//! is all an event needs.

/// A value's type byte (RESP3 adds `_ , # ( ! = % ~ > |`).
pub mod kind {
    pub const SIMPLE: u8 = b'+';
    pub const ERROR: u8 = b'-';
    pub const INTEGER: u8 = b':';
    pub const BULK: u8 = b'$';
    pub const ARRAY: u8 = b'*';
    pub const NULL: u8 = b'_';
    pub const DOUBLE: u8 = b',';
    pub const BOOLEAN: u8 = b'#';
    pub const BIG_NUMBER: u8 = b'(';
    pub const BLOB_ERROR: u8 = b'!';
    pub const VERBATIM: u8 = b'=';
    pub const MAP: u8 = b'%';
    pub const SET: u8 = b'~';
    pub const PUSH: u8 = b'>';
    pub const ATTRIBUTE: u8 = b'|';
    /// An inline command (`PING\r\n`, as typed into telnet): not a RESP type.
    pub const INLINE: u8 = 0;
}

/// Caps of one reader.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Direct elements kept per message (the rest are only counted).
    pub max_elems: usize,
    /// Bytes kept per element (and of a top-level scalar).
    pub max_elem_bytes: usize,
    /// Longest line (header, simple string, error, inline command).
    pub max_line: usize,
    /// Deepest nesting of aggregates.
    pub max_depth: usize,
}

/// One scalar as far as it is kept: a command's name or argument, a
/// reply's text, a push's kind or channel. An aggregate element keeps its
/// type and count only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Elem {
    pub kind: u8,
    /// The first `max_elem_bytes` of its content (bulk payload, line text).
    pub data: Vec<u8>,
    /// Its full length (bulk, line) or element count (aggregate); -1 is null.
    pub len: i64,
    /// `data` is shorter than the content.
    pub cut: bool,
}

/// One top-level message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The value itself (for an aggregate: its type and count, no data).
    pub head: Elem,
    /// Direct elements of a top-level aggregate, at most `max_elems`.
    pub elems: Vec<Elem>,
    /// Bytes of the message on the wire (attributes included).
    pub bytes: u64,
    /// RESP3 attributes that came before the value.
    pub attributes: u32,
    /// Some element was cut or not kept.
    pub cut: bool,
}

/// What [`Reader::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A whole message; `used` bytes of the slice were consumed.
    Msg { used: usize, msg: Message },
    /// The slice ends inside a message: `used` bytes were consumed (their
    /// content is kept in the reader); call again once at least `needed`
    /// bytes follow them (0: any more bytes will do).
    Partial { used: usize, needed: usize },
    /// Not RESP: framing is lost at `used`.
    Bad { used: usize },
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    /// Values still to come in this aggregate.
    left: u64,
    /// An attribute: not an element of its parent.
    attr: bool,
}

/// Where a bulk payload's bytes go.
#[derive(Clone, Copy, Debug)]
enum Keep {
    Nothing,
    Head,
    Elem(usize),
}

#[derive(Clone, Copy, Debug)]
struct Bulk {
    /// Content bytes still to come, then the CRLF.
    left: u64,
    crlf: u8,
    keep: Keep,
}

/// Incremental reader of one direction.
#[derive(Debug, Default)]
pub struct Reader {
    stack: Vec<Frame>,
    bulk: Option<Bulk>,
    msg: Message,
}

/// Position of the first CRLF in `b`, looking at most `max` bytes.
fn find_crlf(b: &[u8], max: usize) -> Option<usize> {
    let lim = b.len().min(max.saturating_add(2));
    let w = b.get(..lim)?;
    let mut from = 0;
    while let Some(k) = w.get(from..)?.iter().position(|&c| c == b'\r') {
        let at = from + k;
        if w.get(at + 1) == Some(&b'\n') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// A RESP length or integer: optional `-`, 1 to 19 digits.
pub fn parse_int(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0i64, |a, &d| a * 10 + i64::from(d - b'0'));
    Some(if neg { -v } else { v })
}

fn is_line_kind(t: u8) -> bool {
    matches!(
        t,
        kind::SIMPLE
            | kind::ERROR
            | kind::INTEGER
            | kind::DOUBLE
            | kind::BOOLEAN
            | kind::BIG_NUMBER
    )
}

fn is_bulk_kind(t: u8) -> bool {
    matches!(t, kind::BULK | kind::BLOB_ERROR | kind::VERBATIM)
}

fn is_aggregate_kind(t: u8) -> bool {
    matches!(
        t,
        kind::ARRAY | kind::MAP | kind::SET | kind::PUSH | kind::ATTRIBUTE
    )
}

/// Could a message start at `b` (a whole header line)? Used to find the
/// footing again after a gap. A client's message is an array of bulk
/// strings whose first is a plausible command name; a server's is any
/// value whose header line parses.
pub fn plausible_at(b: &[u8], from_client: bool) -> bool {
    let Some(eol) = find_crlf(b, 64) else {
        return false;
    };
    let (Some(&t), Some(body)) = (b.first(), b.get(1..eol)) else {
        return false;
    };
    if from_client {
        return t == kind::ARRAY
            && parse_int(body).is_some_and(|n| (1..=1 << 20).contains(&n))
            && command_at(b.get(eol + 2..).unwrap_or(&[])) == Some(true);
    }
    match t {
        kind::NULL => body.is_empty(),
        kind::BOOLEAN => body == b"t" || body == b"f",
        kind::INTEGER | kind::BIG_NUMBER => parse_int(body).is_some(),
        kind::SIMPLE | kind::ERROR => {
            !body.is_empty() && body.iter().all(|&c| c.is_ascii_graphic() || c == b' ')
        }
        kind::DOUBLE => !body.is_empty() && body.len() < 40,
        _ if is_bulk_kind(t) || is_aggregate_kind(t) => {
            parse_int(body).is_some_and(|n| (-1..=1 << 32).contains(&n))
        }
        _ => false,
    }
}

/// A bulk string holding a command name (`$3\r\nSET\r\n`) at `b`:
/// `Some(true)` it is, `Some(false)` it is not, `None` too short to tell.
pub fn command_at(b: &[u8]) -> Option<bool> {
    if b.is_empty() {
        return None;
    }
    if b.first() != Some(&kind::BULK) {
        return Some(false);
    }
    let Some(eol) = find_crlf(b, 8) else {
        // `$` and up to two digits, still coming.
        let digits = b.get(1..).unwrap_or(&[]);
        return if b.len() < 5 && digits.iter().all(u8::is_ascii_digit) {
            None
        } else {
            Some(false)
        };
    };
    let Some(n) = b.get(1..eol).and_then(parse_int) else {
        return Some(false);
    };
    // Command names are 1 to 32 letters (`CLIENT`, `FT.SEARCH`, `JSON.SET`).
    if !(1..=32).contains(&n) {
        return Some(false);
    }
    let start = eol + 2;
    let name = b.get(start..start + n as usize);
    let avail = b.get(start..).unwrap_or(&[]);
    let ok = |c: &u8| c.is_ascii_alphabetic() || matches!(c, b'.' | b'_' | b'-' | b'|');
    match name {
        None => {
            if avail.iter().all(ok) {
                None
            } else {
                Some(false)
            }
        }
        Some(name) => {
            if !name.iter().all(ok) || !name.first().is_some_and(u8::is_ascii_alphabetic) {
                return Some(false);
            }
            b.get(start + n as usize..start + n as usize + 2)
                .map(|crlf| crlf == b"\r\n")
        }
    }
}

impl Reader {
    /// Forget any message in progress (after a gap or lost framing).
    pub fn reset(&mut self) {
        self.stack.clear();
        self.bulk = None;
        self.msg = Message::default();
    }

    /// A message is in progress.
    pub fn in_message(&self) -> bool {
        self.msg.bytes > 0 || !self.stack.is_empty() || self.bulk.is_some()
    }

    /// Reads from `data` (the bytes after those already consumed) up to the
    /// end of the next message. `inline_ok`: a line that is not RESP is an
    /// inline command (client side only).
    pub fn read(&mut self, data: &[u8], lim: &Limits, inline_ok: bool) -> Read {
        let mut p = 0usize;
        let r = self.read_inner(data, lim, inline_ok, &mut p);
        self.msg.bytes += p as u64;
        match r {
            None => Read::Partial { used: p, needed: 0 },
            Some(Ok(needed)) if needed > 0 => Read::Partial { used: p, needed },
            Some(Ok(_)) => {
                let msg = std::mem::take(&mut self.msg);
                Read::Msg { used: p, msg }
            }
            Some(Err(())) => {
                self.reset();
                Read::Bad { used: p }
            }
        }
    }

    /// `None`: all of `data` consumed, message not over; `Some(Ok(0))`:
    /// message complete at `*p`; `Some(Ok(n))`: need `n` bytes from `*p`;
    /// `Some(Err)`: not RESP.
    fn read_inner(
        &mut self,
        data: &[u8],
        lim: &Limits,
        inline_ok: bool,
        p: &mut usize,
    ) -> Option<Result<usize, ()>> {
        loop {
            if let Some(mut b) = self.bulk {
                let avail = data.len() - *p;
                if b.left > 0 {
                    let n = (b.left.min(avail as u64)) as usize;
                    let chunk = data.get(*p..*p + n).unwrap_or(&[]);
                    self.keep_bytes(b.keep, chunk, lim);
                    b.left -= n as u64;
                    *p += n;
                }
                while b.left == 0 && b.crlf > 0 {
                    let Some(&c) = data.get(*p) else { break };
                    let want = if b.crlf == 2 { b'\r' } else { b'\n' };
                    if c != want {
                        return Some(Err(()));
                    }
                    *p += 1;
                    b.crlf -= 1;
                }
                if b.left > 0 || b.crlf > 0 {
                    self.bulk = Some(b);
                    return None;
                }
                self.bulk = None;
                if self.value_done() {
                    return Some(Ok(0));
                }
                continue;
            }
            let rest = data.get(*p..).unwrap_or(&[]);
            if rest.is_empty() {
                return None;
            }
            let Some(eol) = find_crlf(rest, lim.max_line) else {
                if rest.len() >= lim.max_line.saturating_add(2) {
                    return Some(Err(()));
                }
                return Some(Ok(rest.len() + 1));
            };
            let line = rest.get(..eol).unwrap_or(&[]);
            let t = line.first().copied().unwrap_or(kind::INLINE);
            let body = line.get(1..).unwrap_or(&[]);
            let top = self.stack.is_empty() && self.msg.attributes == 0 && self.msg.bytes == 0;
            if is_line_kind(t) || t == kind::NULL {
                if t == kind::NULL && !body.is_empty() {
                    return Some(Err(()));
                }
                if t == kind::INTEGER && parse_int(body).is_none() {
                    return Some(Err(()));
                }
                *p += eol + 2;
                let len = if t == kind::NULL {
                    -1
                } else {
                    body.len() as i64
                };
                self.start_value(t, len, body, lim);
                if self.value_done() {
                    return Some(Ok(0));
                }
            } else if is_bulk_kind(t) {
                let Some(n) = parse_int(body) else {
                    return Some(Err(()));
                };
                let n = match n {
                    -1 if t == kind::BULK => -1,
                    n if n >= 0 => n,
                    _ => return Some(Err(())),
                };
                *p += eol + 2;
                let keep = self.start_value(t, n, &[], lim);
                if n < 0 {
                    if self.value_done() {
                        return Some(Ok(0));
                    }
                } else {
                    self.bulk = Some(Bulk {
                        left: n as u64,
                        crlf: 2,
                        keep,
                    });
                }
            } else if is_aggregate_kind(t) {
                let Some(n) = parse_int(body) else {
                    return Some(Err(()));
                };
                if !(-1..=1 << 32).contains(&n) || (n == -1 && t == kind::ATTRIBUTE) {
                    return Some(Err(()));
                }
                *p += eol + 2;
                let pairs = matches!(t, kind::MAP | kind::ATTRIBUTE);
                let attr = t == kind::ATTRIBUTE;
                if !attr {
                    self.start_value(t, n, &[], lim);
                }
                let count = if pairs {
                    n.max(0) as u64 * 2
                } else {
                    n.max(0) as u64
                };
                if count == 0 {
                    if attr {
                        self.attr_done();
                        continue;
                    }
                    if self.value_done() {
                        return Some(Ok(0));
                    }
                    continue;
                }
                if self.stack.len() >= lim.max_depth {
                    return Some(Err(()));
                }
                self.stack.push(Frame { left: count, attr });
            } else if top && inline_ok {
                *p += eol + 2;
                self.inline(line, lim);
                return Some(Ok(0));
            } else {
                return Some(Err(()));
            }
        }
    }

    /// An inline command: words separated by spaces.
    fn inline(&mut self, line: &[u8], lim: &Limits) {
        let words = line
            .split(|c| *c == b' ' || *c == b'\t')
            .filter(|w| !w.is_empty());
        let mut n = 0i64;
        for w in words {
            n += 1;
            if self.msg.elems.len() < lim.max_elems {
                let keep = w.len().min(lim.max_elem_bytes);
                self.msg.cut |= keep < w.len();
                self.msg.elems.push(Elem {
                    kind: kind::BULK,
                    data: w.get(..keep).unwrap_or(&[]).to_vec(),
                    len: w.len() as i64,
                    cut: keep < w.len(),
                });
            } else {
                self.msg.cut = true;
            }
        }
        self.msg.head = Elem {
            kind: kind::INLINE,
            data: Vec::new(),
            len: n,
            cut: false,
        };
    }

    /// Where the value starting now is kept (the head, a direct element, or
    /// nowhere); records its type, length and line text.
    fn start_value(&mut self, t: u8, len: i64, text: &[u8], lim: &Limits) -> Keep {
        let keep_n = text.len().min(lim.max_elem_bytes);
        let e = Elem {
            kind: t,
            data: text.get(..keep_n).unwrap_or(&[]).to_vec(),
            len,
            cut: keep_n < text.len(),
        };
        self.msg.cut |= e.cut;
        match self.stack.as_slice() {
            [] => {
                self.msg.head = e;
                Keep::Head
            }
            [f] if !f.attr => {
                if self.msg.elems.len() < lim.max_elems {
                    self.msg.elems.push(e);
                    Keep::Elem(self.msg.elems.len() - 1)
                } else {
                    self.msg.cut = true;
                    Keep::Nothing
                }
            }
            _ => Keep::Nothing,
        }
    }

    fn keep_bytes(&mut self, keep: Keep, chunk: &[u8], lim: &Limits) {
        let e = match keep {
            Keep::Nothing => return,
            Keep::Head => &mut self.msg.head,
            Keep::Elem(i) => match self.msg.elems.get_mut(i) {
                Some(e) => e,
                None => return,
            },
        };
        let room = lim.max_elem_bytes.saturating_sub(e.data.len());
        let n = room.min(chunk.len());
        e.data.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        if n < chunk.len() {
            e.cut = true;
            self.msg.cut = true;
        }
    }

    /// An attribute ended: it belongs to no parent; at the top it only
    /// precedes the message's value.
    fn attr_done(&mut self) {
        if self.stack.is_empty() {
            self.msg.attributes += 1;
        }
    }

    /// A value ended: close the aggregates it completes. True when that
    /// was the whole message.
    fn value_done(&mut self) -> bool {
        loop {
            let Some(f) = self.stack.last_mut() else {
                return true;
            };
            f.left -= 1;
            if f.left > 0 {
                return false;
            }
            let attr = f.attr;
            self.stack.pop();
            if attr {
                self.attr_done();
                return false;
            }
        }
    }
}

/// Builders for tests and benches: RESP as a client or server writes it.
#[cfg(test)]
pub mod build {
    /// A command as an array of bulk strings (what every client sends).
    pub fn cmd(args: &[&str]) -> Vec<u8> {
        let mut v = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        v
    }

    pub fn bulk(s: &str) -> Vec<u8> {
        format!("${}\r\n{s}\r\n", s.len()).into_bytes()
    }

    pub fn array(items: &[Vec<u8>]) -> Vec<u8> {
        let mut v = format!("*{}\r\n", items.len()).into_bytes();
        for i in items {
            v.extend_from_slice(i);
        }
        v
    }

    pub fn push(items: &[Vec<u8>]) -> Vec<u8> {
        let mut v = array(items);
        v[0] = b'>';
        v
    }
}
