//! TLS handshake state: record layer per direction, handshake messages
//! reassembled across records and segments (bounded), and the rules for when
//! the one event per handshake is emitted.
//!
//! Emission: at ServerHelloDone (TLS ≤1.2 full handshake), at the server's
//! ChangeCipherSpec or first application data (resumption), right after the
//! ServerHello for TLS 1.3 (the rest is encrypted), or at flush.

use std::cell::RefCell;

use super::event::TlsEvent;
use super::wire::{self, ClientHello, ServerHello};
use super::{cert, fingerprint, TlsConfig};
use crate::app::util::be24;
use crate::app::{AppEvent, AppStats, Ctx, Direction, ParseStatus};

#[derive(Debug, Default)]
struct DirState {
    /// Bytes left in the current record body (0: a record header is next).
    rec_left: usize,
    rec_type: u8,
    /// Partial handshake message (header included), at most `max_handshake_len + 4`.
    hs_buf: Vec<u8>,
    /// Bytes of a skipped handshake message still to skip.
    hs_skip: usize,
    /// Handshake framing lost after a gap: handshake bytes are ignored.
    hs_dead: bool,
    /// After ChangeCipherSpec (or TLS 1.3 ServerHello): handshake records are opaque.
    encrypted: bool,
    /// Record framing lost after a gap: the next bytes must start a record.
    lost: bool,
    /// Direction given up: everything is consumed unparsed.
    dead: bool,
    /// Some valid record was seen.
    seen: bool,
}

pub(crate) struct TlsState {
    cfg: TlsConfig,
    dirs: [DirState; 2],
    ev: TlsEvent,
    client_session_id: Vec<u8>,
    emitted: bool,
    pub(crate) stats: AppStats,
}

impl TlsState {
    pub(crate) fn new(cfg: TlsConfig) -> TlsState {
        TlsState {
            cfg,
            dirs: [DirState::default(), DirState::default()],
            ev: TlsEvent::default(),
            client_session_id: Vec::new(),
            emitted: false,
            stats: AppStats::default(),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.emitted
    }

    /// The handshake being built, once its ClientHello is parsed.
    pub(crate) fn pending(&self) -> Option<&TlsEvent> {
        (!self.emitted && self.ev.has_client_hello).then_some(&self.ev)
    }

    fn dir(&mut self, d: usize) -> &mut DirState {
        // d is always 0 or 1 (Direction::index).
        let [to_server, to_client] = &mut self.dirs;
        if d == 0 {
            to_server
        } else {
            to_client
        }
    }

    pub(crate) fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) -> ParseStatus {
        let d = dir.index();
        let mut pos = 0usize;
        loop {
            if self.emitted || self.dir(d).dead {
                return ParseStatus::Consumed(data.len());
            }
            let rest = data.get(pos..).unwrap_or(&[]);
            if rest.is_empty() {
                return ParseStatus::Consumed(pos);
            }
            if self.dir(d).rec_left == 0 {
                if rest.len() < wire::RECORD_HEADER_LEN {
                    return ParseStatus::Incomplete {
                        consumed: pos,
                        needed: wire::RECORD_HEADER_LEN,
                    };
                }
                let h = wire::parse_record_header(rest);
                let ok = h.as_ref().is_some_and(wire::plausible_record);
                let ds = self.dir(d);
                if !ok {
                    if ds.lost {
                        // Not at a record boundary after the gap: give up this side.
                        ds.dead = true;
                        return ParseStatus::Consumed(data.len());
                    }
                    self.stats.malformed += 1;
                    return ParseStatus::Error { consumed: pos };
                }
                if ds.lost {
                    // At a record boundary again; assume a handshake message
                    // starts here too (a wrong guess only fails to parse).
                    ds.lost = false;
                    ds.hs_dead = false;
                    self.stats.resyncs += 1;
                }
                let Some(h) = h else {
                    return ParseStatus::Error { consumed: pos };
                };
                let ds = self.dir(d);
                ds.seen = true;
                ds.rec_type = h.content_type;
                ds.rec_left = h.len;
                pos += wire::RECORD_HEADER_LEN;
                if h.len == 0 {
                    self.record_end(d, ctx, emit);
                }
                continue;
            }
            let n = self.dir(d).rec_left.min(rest.len());
            let body = rest.get(..n).unwrap_or(&[]);
            self.record_bytes(d, body, ctx, emit);
            let ds = self.dir(d);
            ds.rec_left -= n;
            pos += n;
            if ds.rec_left == 0 {
                self.record_end(d, ctx, emit);
            }
        }
    }

    fn record_bytes(&mut self, d: usize, body: &[u8], ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let (rec_type, encrypted, hs_dead) = {
            let ds = self.dir(d);
            (ds.rec_type, ds.encrypted, ds.hs_dead)
        };
        match rec_type {
            wire::CT_HANDSHAKE => {
                if encrypted {
                    // Encrypted Finished: the visible handshake is over.
                    if d == 1 && self.ev.has_server_hello {
                        self.emit_event(emit);
                    }
                } else if !hs_dead {
                    self.hs_bytes(d, body, ctx, emit);
                }
            }
            wire::CT_ALERT if !encrypted && self.ev.alert.is_none() => {
                if let (Some(&level), Some(&desc)) = (body.first(), body.get(1)) {
                    self.ev.alert = Some((level, desc));
                    self.ev.alert_from_server = d == 1;
                }
            }
            // Application data: the visible handshake is over.
            wire::CT_APPLICATION_DATA if self.ev.has_server_hello => self.emit_event(emit),
            _ => {}
        }
    }

    fn record_end(&mut self, d: usize, _ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        if self.dir(d).rec_type == wire::CT_CHANGE_CIPHER_SPEC {
            self.dir(d).encrypted = true;
            if d == 1 && self.ev.has_server_hello {
                self.emit_event(emit);
            }
        }
    }

    /// Reassemble handshake messages from record bodies.
    fn hs_bytes(&mut self, d: usize, mut inp: &[u8], ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        let max = self.cfg.max_handshake_len;
        while !inp.is_empty() && !self.emitted {
            let ds = self.dir(d);
            if ds.hs_skip > 0 {
                let k = ds.hs_skip.min(inp.len());
                ds.hs_skip -= k;
                inp = inp.get(k..).unwrap_or(&[]);
                continue;
            }
            // Fast path: a whole message in the input.
            if ds.hs_buf.is_empty() && inp.len() >= 4 {
                let len = be24(inp, 1).map(|v| v as usize).unwrap_or(0);
                if len > max {
                    ds.hs_skip = 4 + len;
                    self.skipped_message();
                    continue;
                }
                if inp.len() >= 4 + len {
                    let t = inp.first().copied().unwrap_or(0);
                    let body = inp.get(4..4 + len).unwrap_or(&[]);
                    self.handle(d, t, body, ctx, emit);
                    inp = inp.get(4 + len..).unwrap_or(&[]);
                    continue;
                }
            }
            // Slow path: buffer.
            if ds.hs_buf.len() < 4 {
                let take = (4 - ds.hs_buf.len()).min(inp.len());
                ds.hs_buf.extend_from_slice(inp.get(..take).unwrap_or(&[]));
                inp = inp.get(take..).unwrap_or(&[]);
                if ds.hs_buf.len() < 4 {
                    continue;
                }
            }
            let len = be24(&ds.hs_buf, 1).map(|v| v as usize).unwrap_or(0);
            if len > max {
                ds.hs_skip = 4 + len - ds.hs_buf.len();
                ds.hs_buf = Vec::new();
                self.skipped_message();
                continue;
            }
            let total = 4 + len;
            let take = (total - ds.hs_buf.len()).min(inp.len());
            ds.hs_buf.extend_from_slice(inp.get(..take).unwrap_or(&[]));
            inp = inp.get(take..).unwrap_or(&[]);
            if ds.hs_buf.len() == total {
                let buf = std::mem::take(&mut ds.hs_buf);
                let t = buf.first().copied().unwrap_or(0);
                self.handle(d, t, buf.get(4..).unwrap_or(&[]), ctx, emit);
            }
        }
    }

    fn skipped_message(&mut self) {
        self.stats.truncated += 1;
        self.ev.truncated = true;
    }

    fn handle(&mut self, d: usize, t: u8, body: &[u8], ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        match (d, t) {
            (0, wire::HS_CLIENT_HELLO) => {
                if self.ev.has_client_hello {
                    self.ev.hello_retry = true;
                    return;
                }
                // Parsed into this worker's hello, whose lists keep their
                // buffers: a hello then allocates only what the event keeps.
                std::thread_local! {
                    static HELLO: RefCell<ClientHello> = RefCell::default();
                }
                HELLO.with(|h| {
                    let mut fresh = ClientHello::default();
                    let mut held = h.try_borrow_mut();
                    let ch = match held.as_deref_mut() {
                        Ok(ch) => ch,
                        Err(_) => &mut fresh,
                    };
                    match wire::parse_client_hello_into(body, ch) {
                        Ok(()) => self.client_hello(ch, ctx),
                        Err(_) => self.stats.malformed += 1,
                    }
                });
            }
            (1, wire::HS_SERVER_HELLO) => match wire::parse_server_hello(body) {
                Ok(sh) if sh.hello_retry => self.ev.hello_retry = true,
                Ok(sh) => {
                    let v13 = sh.version() == 0x0304;
                    self.server_hello(sh, ctx);
                    if v13 {
                        self.dir(1).encrypted = true;
                        self.emit_event(emit);
                    }
                }
                Err(_) => self.stats.malformed += 1,
            },
            (1, wire::HS_CERTIFICATE)
                if self.ev.certificates.is_empty() && self.ev.version != Some(0x0304) =>
            {
                match wire::certificate_list(body, self.cfg.max_certs) {
                    Ok(list) if self.cfg.parse_certs => {
                        let slots = self.cfg.cert_cache_entries;
                        self.ev.certificates = list
                            .into_iter()
                            .map(|der| cert::summarize_cached(der, slots))
                            .collect();
                    }
                    Ok(_) => {}
                    Err(_) => self.stats.malformed += 1,
                }
            }
            (1, wire::HS_SERVER_HELLO_DONE) => self.emit_event(emit),
            _ => {}
        }
    }

    fn client_hello(&mut self, ch: &mut ClientHello, ctx: &Ctx) {
        let fp = fingerprint::client_fingerprints(ch);
        let ev = &mut self.ev;
        ev.has_client_hello = true;
        ev.ja4 = Some(fp.ja4);
        ev.ja3 = Some(fp.ja3);
        ev.ja3_hash = Some(fp.ja3_hash);
        ev.client_version = Some(ch.legacy_version);
        ev.client_hello_ts_ns = Some(ctx.ts_ns);
        self.client_session_id.clone_from(&ch.session_id);
        ev.sni = ch.sni.take();
        ev.client_alpns = std::mem::take(&mut ch.alpns);
    }

    fn server_hello(&mut self, sh: ServerHello, ctx: &Ctx) {
        let (ja3s, ja3s_hash) = fingerprint::server_fingerprint(&sh);
        let ev = &mut self.ev;
        ev.has_server_hello = true;
        ev.ja3s = Some(ja3s);
        ev.ja3s_hash = Some(ja3s_hash);
        ev.server_legacy_version = Some(sh.legacy_version);
        ev.version = Some(sh.version());
        ev.cipher = Some(sh.cipher);
        ev.resumed = !sh.session_id.is_empty() && sh.session_id == self.client_session_id;
        ev.server_alpn = sh.alpn;
        ev.server_hello_ts_ns = Some(ctx.ts_ns);
        ev.latency_ns = ev.client_hello_ts_ns.map(|c| ctx.ts_ns.saturating_sub(c));
    }

    fn emit_event(&mut self, emit: &mut dyn FnMut(AppEvent)) {
        if self.emitted {
            return;
        }
        self.emitted = true;
        self.stats.events += 1;
        for ds in &mut self.dirs {
            ds.hs_buf = Vec::new();
        }
        emit(AppEvent::Tls(Box::new(std::mem::take(&mut self.ev))));
    }

    pub(crate) fn on_gap(&mut self, dir: Direction, len: u64) {
        self.stats.gaps += 1;
        if self.emitted {
            return;
        }
        self.ev.gap = true;
        let ds = self.dir(dir.index());
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if ds.rec_left > 0 && len < ds.rec_left {
            // Inside one record: the record framing survives.
            ds.rec_left -= len;
            if ds.rec_type == wire::CT_HANDSHAKE && !ds.encrypted && !ds.hs_dead {
                if ds.hs_skip >= len {
                    ds.hs_skip -= len;
                } else if ds.hs_buf.len() >= 4 && ds.hs_skip == 0 {
                    let total = 4 + be24(&ds.hs_buf, 1).map(|v| v as usize).unwrap_or(0);
                    let left = total.saturating_sub(ds.hs_buf.len());
                    if len <= left {
                        // Lose this message only.
                        ds.hs_skip = left - len;
                        ds.hs_buf = Vec::new();
                    } else {
                        ds.hs_dead = true;
                    }
                } else {
                    ds.hs_dead = true;
                }
            }
            return;
        }
        // Record framing lost: the next bytes must start a record.
        ds.rec_left = 0;
        ds.lost = true;
        ds.hs_buf = Vec::new();
        ds.hs_skip = 0;
        ds.hs_dead = true;
    }

    pub(crate) fn flush(&mut self, _ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        if self.emitted || !(self.ev.has_client_hello || self.ev.has_server_hello) {
            return;
        }
        self.ev.incomplete = true;
        if self.ev.has_client_hello && !self.ev.has_server_hello {
            self.stats.unanswered += 1;
        }
        self.emit_event(emit);
    }
}
