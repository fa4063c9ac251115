//! TLS (SSLv3 to TLS 1.3) handshake metadata over TCP.
//!
//! * `wire`: records, hellos, certificate lists.
//! * `state`: record layer, handshake reassembly (bounded), emission rules.
//! * `event`: [`TlsEvent`], one per handshake.
//! * `fingerprint`: JA3, JA3S, JA4. `cert`: X.509 summary (x509-parser).
//!
//! The engine holds at most a 5-byte record header between calls: record
//! bodies are consumed as they arrive and handshake messages are reassembled
//! here, up to `max_handshake_len`.

pub mod cert;
pub mod event;
pub mod fingerprint;
mod schema;
mod state;
pub mod wire;

pub use event::{format_utc, version_name, TlsCert, TlsEvent};

use super::registry::{ExportField, FieldValue, MatchKind, Outcome, Protocol, Transaction};
use super::{
    AppEvent, AppParser, AppProto, AppStats, Ctx, Direction, ParseStatus, Probe, Transport,
};

/// TLS parser limits.
/// `[app.tls]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Largest handshake message reassembled; larger ones are skipped (counted).
    pub max_handshake_len: usize,
    /// Certificates of the chain decoded.
    pub max_certs: usize,
    /// Decode certificates with x509-parser (off: no certificate fields).
    pub parse_certs: bool,
    /// Certificates whose summary each worker keeps (decoded once, then
    /// reused while they keep coming back); 0 = decode every time.
    pub cert_cache_entries: usize,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            max_handshake_len: 64 * 1024,
            max_certs: 10,
            parse_certs: true,
            cert_cache_entries: 1024,
        }
    }
}

/// Content probe: a handshake record holding a ClientHello (to the server)
/// or a ServerHello (to the client).
pub fn probe(dir: Direction, data: &[u8]) -> Probe {
    let Some(&ct) = data.first() else {
        return Probe::NeedMore;
    };
    if ct != wire::CT_HANDSHAKE {
        return Probe::No;
    }
    if data.get(1).is_some_and(|&b| b != 3) || data.get(2).is_some_and(|&b| b > 4) {
        return Probe::No;
    }
    let (Some(h), Some(&hs)) = (wire::parse_record_header(data), data.get(5)) else {
        return Probe::NeedMore;
    };
    if !wire::plausible_record(&h) || h.len < 4 {
        return Probe::No;
    }
    let want = match dir {
        Direction::ToServer => wire::HS_CLIENT_HELLO,
        Direction::ToClient => wire::HS_SERVER_HELLO,
    };
    if hs == want {
        Probe::Yes
    } else {
        Probe::No
    }
}

/// TLS parser of one flow.
pub struct TlsParser {
    st: state::TlsState,
}

impl TlsParser {
    pub fn new(cfg: TlsConfig) -> TlsParser {
        TlsParser {
            st: state::TlsState::new(cfg),
        }
    }
}

impl AppParser for TlsParser {
    fn parse(
        &mut self,
        dir: Direction,
        data: &[u8],
        ctx: &Ctx,
        emit: &mut dyn FnMut(AppEvent),
    ) -> ParseStatus {
        self.st.parse(dir, data, ctx, emit)
    }

    fn on_gap(&mut self, dir: Direction, len: u64) {
        self.st.on_gap(dir, len)
    }

    fn flush(&mut self, ctx: &Ctx, emit: &mut dyn FnMut(AppEvent)) {
        self.st.flush(ctx, emit)
    }

    fn is_done(&self) -> bool {
        self.st.is_done()
    }

    fn peek(&self, f: &mut dyn FnMut(crate::app::Peek<'_>)) {
        if let Some(ev) = self.st.pending() {
            f(crate::app::Peek::Tls(ev));
        }
    }

    fn stats(&self) -> AppStats {
        self.st.stats
    }

    fn proto(&self) -> AppProto {
        AppProto::Tls
    }
}

/// TLS handshakes in the registry.
pub struct TlsProtocol;

impl Protocol for TlsProtocol {
    const NAME: &'static str = "tls";
    type Event = TlsEvent;
    type Config = TlsConfig;
    const CONFIG_TOML: &'static str = r#"[app.tls]
# Largest handshake message reassembled; larger ones are skipped (counted).
max_handshake_len = 65536
# Certificates of a chain decoded.
max_certs = 10
# Decode certificates of TLS <= 1.2 handshakes (subject, issuer, SANs, fingerprints).
parse_certs = true
# Certificates each worker keeps decoded (a repeated certificate is parsed
# and hashed once); 0 = decode every time. At most 16 KiB of DER each.
cert_cache_entries = 1024
"#;
    const ONE_TRANSACTION_PER_FLOW: bool = true;
    const TCP_PORTS: &'static [u16] = &[
        443, 465, 636, 853, 993, 995, 8443, 989, 990, 992, 994, 5061, 6697,
    ];

    fn probe_tcp(dir: Direction, data: &[u8]) -> Probe {
        probe(dir, data)
    }

    fn new_parser(_transport: Transport, cfg: &TlsConfig) -> Box<dyn AppParser> {
        Box::new(TlsParser::new(cfg.clone()))
    }

    fn example_event() -> TlsEvent {
        schema::example()
    }

    fn transaction(ev: &TlsEvent) -> Transaction<'_> {
        Transaction {
            operation: if ev.resumed {
                "resumption"
            } else {
                "handshake"
            },
            outcome: Outcome::of(ev.has_server_hello, false),
            error_code: None,
            latency_ns: ev.latency_ns,
        }
    }

    fn event_start_ns(ev: &TlsEvent) -> Option<u64> {
        ev.client_hello_ts_ns.or(ev.server_hello_ts_ns)
    }

    const EXPORT_FIELDS: &'static [ExportField] = &[
        ExportField {
            name: "sni",
            kind: MatchKind::Name,
            early: true,
            doc: "server name (SNI)",
        },
        ExportField {
            name: "ja3",
            kind: MatchKind::Hex(32),
            early: true,
            doc: "JA3 hash (MD5 hex)",
        },
        ExportField {
            name: "ja4",
            kind: MatchKind::Name,
            early: true,
            doc: "JA4 fingerprint",
        },
    ];

    fn export_values(ev: &TlsEvent, field: usize, f: &mut dyn FnMut(FieldValue<'_>)) {
        let v = match field {
            0 => ev.sni.as_deref(),
            1 => ev.ja3_hash.as_deref(),
            2 => ev.ja4.as_deref(),
            _ => None,
        };
        if let Some(v) = v {
            f(FieldValue::Str(v));
        }
    }
}

#[cfg(test)]
mod tests;
