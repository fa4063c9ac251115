//! `[stream]` (TCP reassembly limits) and `[app]` (application-layer parsers).

use dissect::app::{AppConfig, DnsConfig, HttpConfig, TlsConfig};
use serde::Deserialize;

use super::ConfigError;
use crate::stream::StreamLimits;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSection {
    /// Out-of-order bytes held per flow and direction; past it the hole becomes a gap.
    pub max_ooo_bytes_per_flow: usize,
    /// Bytes a parser may leave unconsumed per flow and direction.
    pub max_pending_bytes_per_flow: usize,
    /// All reassembly and parser buffers of one worker together.
    pub max_bytes_per_worker: usize,
    /// Bytes of a direction examined to detect its protocol.
    pub detect_bytes: usize,
}

impl Default for StreamSection {
    fn default() -> Self {
        let l = StreamLimits::default();
        StreamSection {
            max_ooo_bytes_per_flow: l.max_ooo_per_flow,
            max_pending_bytes_per_flow: l.max_pending_per_flow,
            max_bytes_per_worker: 256 << 20,
            detect_bytes: l.max_detect_bytes,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AppSection {
    /// Run protocol detection and the HTTP, DNS and TLS parsers.
    pub enabled: bool,
    pub http: HttpSection,
    pub dns: DnsSection,
    pub tls: TlsSection,
}

impl Default for AppSection {
    fn default() -> Self {
        AppSection {
            enabled: true,
            http: HttpSection::default(),
            dns: DnsSection::default(),
            tls: TlsSection::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    pub log_request_headers: bool,
    pub log_response_headers: bool,
    /// Bytes of each body kept in the event (0 = none).
    pub body_capture_bytes: usize,
    /// Header names whose values are replaced by "[redacted]".
    pub redact: Vec<String>,
    /// Requests waiting for their response, per flow.
    pub max_pending: usize,
}

impl Default for HttpSection {
    fn default() -> Self {
        let d = HttpConfig::default();
        HttpSection {
            log_request_headers: d.log_request_headers,
            log_response_headers: d.log_response_headers,
            body_capture_bytes: d.body_capture_bytes,
            redact: d.redact,
            max_pending: d.max_pending,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSection {
    /// Queries waiting for their response, per flow.
    pub max_pending: usize,
    /// Seconds after which a query without response is emitted as unanswered.
    pub query_timeout: u64,
}

impl Default for DnsSection {
    fn default() -> Self {
        let d = DnsConfig::default();
        DnsSection {
            max_pending: d.max_pending,
            query_timeout: d.query_timeout_ns / 1_000_000_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// Parse certificates of TLS <= 1.2 handshakes.
    pub parse_certs: bool,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            parse_certs: TlsConfig::default().parse_certs,
        }
    }
}

impl StreamSection {
    pub fn limits(&self, app_enabled: bool) -> StreamLimits {
        StreamLimits {
            max_ooo_per_flow: self.max_ooo_bytes_per_flow,
            max_pending_per_flow: self.max_pending_bytes_per_flow,
            max_detect_bytes: self.detect_bytes,
            app_enabled,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.detect_bytes == 0 {
            return Err(ConfigError::Invalid(
                "stream.detect_bytes: must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl AppSection {
    pub fn parser_config(&self) -> AppConfig {
        let mut cfg = AppConfig::default();
        cfg.http.log_request_headers = self.http.log_request_headers;
        cfg.http.log_response_headers = self.http.log_response_headers;
        cfg.http.body_capture_bytes = self.http.body_capture_bytes;
        cfg.http.redact = self.http.redact.clone();
        cfg.http.max_pending = self.http.max_pending;
        cfg.dns.max_pending = self.dns.max_pending;
        cfg.dns.query_timeout_ns = self.dns.query_timeout.saturating_mul(1_000_000_000);
        cfg.tls.parse_certs = self.tls.parse_certs;
        cfg
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.http.max_pending == 0 {
            return Err(ConfigError::Invalid(
                "app.http.max_pending: must be at least 1".into(),
            ));
        }
        if self.dns.max_pending == 0 {
            return Err(ConfigError::Invalid(
                "app.dns.max_pending: must be at least 1".into(),
            ));
        }
        if self.dns.query_timeout == 0 {
            return Err(ConfigError::Invalid(
                "app.dns.query_timeout: must be at least 1 second".into(),
            ));
        }
        Ok(())
    }
}
