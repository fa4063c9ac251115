#![no_main]
//! TLS parser: records split anywhere in both directions, gaps.

use dissect::app::{TlsConfig, TlsParser};
use libfuzzer_sys::fuzz_target;

#[path = "app_driver.rs"]
mod app_driver;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, script)) = data.split_first() else {
        return;
    };
    let cfg = TlsConfig {
        max_handshake_len: if flags & 1 != 0 { 512 } else { 64 * 1024 },
        max_certs: usize::from(flags >> 4),
        parse_certs: flags & 2 == 0,
        // A tiny certificate cache: hits, misses and evictions all happen.
        cert_cache_entries: if flags & 4 != 0 { 0 } else { 2 },
    };
    let _ = dissect::app::detect_tcp(1234, 443, dissect::app::Direction::ToServer, script);
    app_driver::run(Box::new(TlsParser::new(cfg)), false, script);
});
