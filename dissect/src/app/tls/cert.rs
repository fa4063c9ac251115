//! X.509 certificate summary with `x509-parser`, formatted like Suricata.

use super::event::TlsCert;
use crate::app::util::{bounded_string, hex, hex_colon};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Longest subject/issuer/SAN kept.
const MAX_NAME: usize = 1024;
/// SAN entries kept per kind.
const MAX_SANS: usize = 64;

/// Summarise one DER certificate. Never fails: undecodable certificates keep
/// their hashes and set `parse_error`.
pub fn summarize(der: &[u8]) -> TlsCert {
    let mut c = TlsCert {
        sha1: hex_colon(&Sha1::digest(der), false),
        sha256: hex(&Sha256::digest(der)),
        der_len: der.len(),
        ..TlsCert::default()
    };
    let Ok((_, x)) = X509Certificate::from_der(der) else {
        c.parse_error = true;
        return c;
    };
    c.subject = bounded_string(x.subject().to_string().as_bytes(), MAX_NAME);
    c.issuer = bounded_string(x.issuer().to_string().as_bytes(), MAX_NAME);
    c.serial = hex_colon(x.raw_serial(), true);
    c.not_before = x.validity().not_before.timestamp();
    c.not_after = x.validity().not_after.timestamp();
    if let Ok(Some(san)) = x.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) if c.san_dns.len() < MAX_SANS => {
                    c.san_dns.push(bounded_string(d.as_bytes(), MAX_NAME))
                }
                GeneralName::IPAddress(b) if c.san_ip.len() < MAX_SANS => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        c.san_ip.push(IpAddr::V4(Ipv4Addr::from(a)));
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        c.san_ip.push(IpAddr::V6(Ipv6Addr::from(a)));
                    }
                }
                _ => {}
            }
        }
    }
    c
}

/// Summaries of the certificates this thread (one worker) decoded last,
/// keyed by a hash of their DER's length and signature ([`der_key`]), shared
/// with the events (`Arc`, no copy on a hit): the same CDN and service
/// certificates come back on flow after flow, and decoding one (x509
/// parsing, SHA-1 and SHA-256 of the DER) costs far more than hashing it.
/// Direct-mapped: a certificate lands in one slot and replaces what was
/// there, so the cache is bounded by its slot count (and by [`MAX_CACHED_DER`]
/// per slot) without any bookkeeping. A hit compares the whole DER, so a
/// hash collision can only cost a miss, never a wrong summary.
pub(crate) struct CertCache {
    /// The size asked for (`slots` is it rounded up).
    requested: usize,
    slots: Vec<Option<Cached>>,
    pub hits: u64,
    pub misses: u64,
}

struct Cached {
    hash: u64,
    der: Box<[u8]>,
    summary: Arc<TlsCert>,
}

/// Certificates larger than this are decoded every time (not kept).
pub(crate) const MAX_CACHED_DER: usize = 16 * 1024;

impl CertCache {
    /// `slots` is rounded up to a power of two; 0 turns caching off.
    pub(crate) fn new(slots: usize) -> CertCache {
        let n = if slots == 0 {
            0
        } else {
            slots.next_power_of_two()
        };
        CertCache {
            requested: slots,
            slots: (0..n).map(|_| None).collect(),
            hits: 0,
            misses: 0,
        }
    }

    /// The summary of `der`, decoded only when this DER is not cached.
    pub(crate) fn summarize(&mut self, der: &[u8]) -> Arc<TlsCert> {
        if self.slots.is_empty() || der.len() > MAX_CACHED_DER {
            return Arc::new(summarize(der));
        }
        let hash = der_key(der);
        let i = (hash as usize) & (self.slots.len() - 1);
        let Some(slot) = self.slots.get_mut(i) else {
            return Arc::new(summarize(der));
        };
        if let Some(c) = slot {
            if c.hash == hash && *c.der == *der {
                self.hits += 1;
                return Arc::clone(&c.summary);
            }
        }
        self.misses += 1;
        let summary = Arc::new(summarize(der));
        *slot = Some(Cached {
            hash,
            der: der.into(),
            summary: Arc::clone(&summary),
        });
        summary
    }
}

/// The slot key of a DER certificate: its length and last bytes, which are
/// the issuer's signature over the rest (distinct for distinct certificates,
/// and hashing them costs a fraction of hashing the whole DER). Any DER with
/// the same key only shares a slot: a hit still compares the whole DER.
fn der_key(der: &[u8]) -> u64 {
    const TAIL: usize = 64;
    let tail = der.get(der.len().saturating_sub(TAIL)..).unwrap_or(der);
    crate::app::util::fast_hash(tail) ^ (der.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

std::thread_local! {
    /// One cache per worker thread (workers share nothing): sized by the
    /// first parser that uses it (`app.tls.cert_cache_entries`).
    static CACHE: std::cell::RefCell<Option<CertCache>> = const { std::cell::RefCell::new(None) };
}

/// Summarises `der` through this thread's cache of `slots` entries.
pub fn summarize_cached(der: &[u8], slots: usize) -> Arc<TlsCert> {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        match c.as_mut() {
            Some(cache) if cache.requested == slots => cache.summarize(der),
            _ => c.insert(CertCache::new(slots)).summarize(der),
        }
    })
}

/// This thread's cache hits and misses so far.
pub fn cache_counts() -> (u64, u64) {
    CACHE.with(|c| c.borrow().as_ref().map_or((0, 0), |c| (c.hits, c.misses)))
}
