//! TLS: handshakes by negotiated version and cipher, by SNI and by ALPN;
//! handshake latency; the expiry time of server certificates that expire
//! soon (or already have).

use dissect::app::tls::{version_name, TlsEvent};
use dissect::event::AppEnvelope;
use output::metrics::{fig, Exposition, Histogram, Kind};

use super::{each_value, list_label, AppMetricsSection, Merge, TopN};

/// The soonest expiry among certificates (seconds since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Expiry(i64);

impl Default for Expiry {
    fn default() -> Self {
        Expiry(i64::MAX)
    }
}

impl Merge for Expiry {
    fn merge(&mut self, o: &Self) {
        self.0 = self.0.min(o.0);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TlsMetrics {
    /// (version, cipher) as negotiated (0: no ServerHello seen).
    handshakes: TopN<(u16, u16), u64>,
    sni: TopN<String, u64>,
    alpn: TopN<String, u64>,
    latency: Histogram,
    /// Leaf certificates by subject.
    expiring: TopN<String, Expiry>,
    expiry_window_s: i64,
}

impl TlsMetrics {
    pub(super) fn new(cfg: &AppMetricsSection) -> TlsMetrics {
        TlsMetrics {
            handshakes: TopN::new(cfg.tls_ciphers),
            sni: TopN::new(cfg.tls_sni),
            alpn: TopN::new(cfg.tls_alpn),
            latency: Histogram::default(),
            expiring: TopN::new(cfg.tls_certificates),
            expiry_window_s: i64::from(cfg.certificate_expiry_days) * 86_400,
        }
    }

    pub(super) fn observe(&mut self, env: &AppEnvelope<'_>, ev: &TlsEvent) {
        let negotiated = if ev.has_server_hello {
            (ev.version.unwrap_or(0), ev.cipher.unwrap_or(0))
        } else {
            (0, 0)
        };
        *self.handshakes.entry(&negotiated) += 1;
        if ev.has_client_hello {
            *self.sni.entry(ev.sni.as_deref().unwrap_or("none")) += 1;
        }
        if ev.has_server_hello {
            *self.alpn.entry(ev.server_alpn.as_deref().unwrap_or("none")) += 1;
        }
        if let Some(ns) = ev.latency_ns {
            self.latency.observe_ns(ns);
        }
        let seen_s = i64::try_from(env.ts_ns / 1_000_000_000).unwrap_or(i64::MAX);
        if let Some(leaf) = ev.certificates.first().filter(|c| !c.parse_error) {
            if leaf.not_after.saturating_sub(seen_s) <= self.expiry_window_s {
                let e = self.expiring.entry(leaf.subject.as_str());
                e.0 = leaf.not_after.min(e.0);
            }
        }
    }

    pub(super) fn rebalance(&mut self) {
        self.handshakes.rebalance();
        self.sni.rebalance();
        self.alpn.rebalance();
        self.expiring.rebalance();
    }

    pub(super) fn list(&self, e: &mut Exposition) {
        e.declare_all(&[
            ("flowtap_tls_handshakes_total", Kind::Counter, HANDSHAKES),
            ("flowtap_tls_sni_total", Kind::Counter, SNI),
            ("flowtap_tls_alpn_total", Kind::Counter, ALPN),
            (
                "flowtap_tls_handshake_latency_seconds",
                Kind::Histogram,
                LATENCY,
            ),
            (
                "flowtap_tls_certificate_expiry_timestamp_seconds",
                Kind::Gauge,
                EXPIRY,
            ),
        ]);
        let negotiated = |&(v, c): &(u16, u16)| -> (String, String) {
            if v == 0 {
                ("none".into(), "none".into())
            } else {
                (version_name(v), format!("0x{c:04x}"))
            }
        };
        for (&(v, c), n) in self.handshakes.iter() {
            let (version, cipher) = negotiated(&(v, c));
            let l = [("version", version.as_str()), ("cipher", cipher.as_str())];
            fig(
                e,
                "",
                "flowtap_tls_handshakes_total",
                Kind::Counter,
                HANDSHAKES,
                &l,
                *n,
            );
        }
        if *self.handshakes.other() > 0 {
            let l = [("version", "other"), ("cipher", "other")];
            let n = *self.handshakes.other();
            fig(
                e,
                "",
                "flowtap_tls_handshakes_total",
                Kind::Counter,
                HANDSHAKES,
                &l,
                n,
            );
        }
        for (sni, n) in each_value(&self.sni, |s| s.clone()) {
            if *n > 0 {
                let l = [("sni", sni.as_str())];
                fig(e, "", "flowtap_tls_sni_total", Kind::Counter, SNI, &l, *n);
            }
        }
        for (alpn, n) in each_value(&self.alpn, |s| s.clone()) {
            if *n > 0 {
                let l = [("alpn", alpn.as_str())];
                fig(e, "", "flowtap_tls_alpn_total", Kind::Counter, ALPN, &l, *n);
            }
        }
        e.histogram(
            "flowtap_tls_handshake_latency_seconds",
            LATENCY,
            &[],
            &self.latency,
        );
        for (subject, x) in each_value(&self.expiring, |s| s.clone()) {
            if x.0 != i64::MAX {
                let l = [("subject", subject.as_str())];
                let at = u64::try_from(x.0).unwrap_or(0);
                fig(
                    e,
                    "",
                    "flowtap_tls_certificate_expiry_timestamp_seconds",
                    Kind::Gauge,
                    EXPIRY,
                    &l,
                    at,
                );
            }
        }
        list_label(e, "tls_version_cipher", &self.handshakes);
        list_label(e, "tls_sni", &self.sni);
        list_label(e, "tls_alpn", &self.alpn);
        list_label(e, "tls_certificate", &self.expiring);
    }
}

const HANDSHAKES: &str = "TLS handshakes by negotiated version and cipher suite (IANA number; \"none\": no ServerHello seen).";
const SNI: &str = "TLS ClientHellos by server name indication (\"none\": no SNI).";
const ALPN: &str = "TLS ServerHellos by the ALPN protocol the server chose (\"none\": no ALPN).";
const LATENCY: &str = "TLS ClientHello to ServerHello.";
const EXPIRY: &str = "Not-after time of server (leaf) certificates seen that expire within [app_metrics] certificate_expiry_days of when they were seen, or already expired, by subject (`other`: the soonest of the rest).";
