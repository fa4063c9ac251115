#![no_main]
//! HTTP/1.x parser: chunks in both directions, gaps; must never panic.

use dissect::app::{HttpConfig, HttpParser};
use libfuzzer_sys::fuzz_target;

#[path = "app_driver.rs"]
mod app_driver;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, script)) = data.split_first() else {
        return;
    };
    let cfg = HttpConfig {
        log_request_headers: flags & 1 != 0,
        log_response_headers: flags & 2 != 0,
        body_capture_bytes: if flags & 4 != 0 { 64 } else { 0 },
        max_pending: usize::from(flags >> 5) + 1,
        max_line_len: 256,
        max_headers: 8,
        max_header_bytes: 512,
        max_field_len: 64,
        ..HttpConfig::default()
    };
    app_driver::run(Box::new(HttpParser::new(cfg)), false, script);
});
