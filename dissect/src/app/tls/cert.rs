//! X.509 certificate summary with `x509-parser`, formatted like Suricata.

use super::event::TlsCert;
use crate::app::util::{bounded_string, hex, hex_colon};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
