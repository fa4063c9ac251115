//! The TLS handshake record: one per handshake. Field names follow Suricata's
//! eve `tls` object where one exists (`sni`, `version`, `subject`, `issuerdn`,
//! `serial`, `fingerprint`, `notbefore`, `notafter`, `ja3`, `ja3s`, `ja4`,
//! `client_alpns`, `server_alpns`) and ECS `tls.*` otherwise. The leaf
//! certificate's subject/issuer/serial/fingerprint are formatted exactly like
//! Suricata's (the same `x509-parser` rendering).

use std::net::IpAddr;
use std::sync::Arc;

/// One certificate of the server's chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsCert {
    /// "C=US, O=Let's Encrypt, CN=R3" (eve: `subject`).
    pub subject: String,
    /// eve: `issuerdn`.
    pub issuer: String,
    /// Upper-case hex bytes joined by ':' as encoded, leading 00 kept (eve: `serial`).
    pub serial: String,
    /// Validity, seconds since the epoch (eve: `notbefore`/`notafter`, see [`format_utc`]).
    pub not_before: i64,
    pub not_after: i64,
    /// subjectAltName DNS names (eve: `subjectaltname`).
    pub san_dns: Vec<String>,
    /// subjectAltName IP addresses.
    pub san_ip: Vec<IpAddr>,
    /// SHA-1 of the DER, lower-case hex joined by ':' (eve: `fingerprint`).
    pub sha1: String,
    /// SHA-256 of the DER, lower-case hex, no separator (ecs: `tls.server.hash.sha256` is upper-case).
    pub sha256: String,
    /// DER length.
    pub der_len: usize,
    /// x509-parser could not decode it (only the hashes are set).
    pub parse_error: bool,
}

/// One TLS handshake as far as it is visible.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsEvent {
    // ---- ClientHello ----
    pub has_client_hello: bool,
    /// Server name indication (eve: `sni`).
    pub sni: Option<String>,
    /// legacy_version of the ClientHello.
    pub client_version: Option<u16>,
    /// ALPN protocols offered (eve: `client_alpns`).
    pub client_alpns: Vec<String>,
    /// JA3 string and its MD5 (eve: `ja3.string` / `ja3.hash`).
    /// (Shared with this worker's fingerprint cache: a handshake whose
    /// hello values were seen before copies no strings.)
    pub ja3: Option<Arc<str>>,
    pub ja3_hash: Option<Arc<str>>,
    /// JA4 (eve: `ja4`).
    pub ja4: Option<Arc<str>>,
    /// A second ClientHello was sent (after a HelloRetryRequest); the fields
    /// above are from the first one.
    pub hello_retry: bool,

    // ---- ServerHello ----
    pub has_server_hello: bool,
    /// legacy_version of the ServerHello.
    pub server_legacy_version: Option<u16>,
    /// Negotiated version: supported_versions of the ServerHello if present,
    /// else its legacy_version (eve: `version`, see [`version_name`]).
    pub version: Option<u16>,
    /// Selected cipher suite.
    pub cipher: Option<u16>,
    /// ALPN selected by the server (eve: `server_alpns`; TLS ≤1.2 only).
    pub server_alpn: Option<String>,
    /// JA3S string and MD5.
    pub ja3s: Option<Arc<str>>,
    pub ja3s_hash: Option<Arc<str>>,
    /// The server echoed a non-empty session id (TLS ≤1.2 resumption).
    pub resumed: bool,

    // ---- Certificate (TLS ≤1.2; encrypted in 1.3) ----
    /// Server chain, leaf first, at most `TlsConfig::max_certs`. Shared
    /// with the worker's certificate cache: a repeated certificate's
    /// summary is not copied.
    pub certificates: Vec<Arc<TlsCert>>,

    // ---- Alerts ----
    /// First unencrypted alert seen (level, description) and its sender.
    pub alert: Option<(u8, u8)>,
    pub alert_from_server: bool,

    // ---- Timing ----
    pub client_hello_ts_ns: Option<u64>,
    pub server_hello_ts_ns: Option<u64>,
    /// Handshake latency: ServerHello seen minus ClientHello seen (one round
    /// trip plus server think time; the rest of the handshake is encrypted in 1.3).
    pub latency_ns: Option<u64>,

    // ---- Quality ----
    /// Emitted at flow end before the visible part of the handshake completed.
    pub incomplete: bool,
    /// Bytes were lost in the handshake.
    pub gap: bool,
    /// A handshake message was larger than the limit and skipped, or lists were cut.
    pub truncated: bool,
}

/// Version as Suricata prints it ("TLS 1.2", "TLSv1", "SSLv3", "0x7f1c").
pub fn version_name(v: u16) -> String {
    match v {
        0x0200 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        0x7f00..=0x7fff => format!("TLS 1.3 draft-{}", v & 0xff),
        _ => format!("0x{v:04x}"),
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SS` (UTC), any year.
pub use jsonline::format_utc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_times() {
        assert_eq!(version_name(0x0303), "TLS 1.2");
        assert_eq!(version_name(0x0304), "TLS 1.3");
        assert_eq!(version_name(0x0301), "TLSv1");
        assert_eq!(version_name(0x1234), "0x1234");
        assert_eq!(format_utc(0), "1970-01-01T00:00:00");
        assert_eq!(format_utc(1_576_545_448), "2019-12-17T01:17:28");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59");
    }
}
