#![no_main]
//! Redis parser: both directions, gaps, small limits so the caps are hit.

use dissect::app::redis::{RedisConfig, RedisParser};
use libfuzzer_sys::fuzz_target;

#[path = "app_driver.rs"]
mod app_driver;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, script)) = data.split_first() else {
        return;
    };
    let cfg = RedisConfig {
        max_pending: usize::from(flags & 7) + 1,
        log_values: flags & 8 != 0,
        max_arguments: usize::from(flags >> 6),
        max_argument_bytes: 16,
        max_error_bytes: 32,
        max_line_bytes: if flags & 16 != 0 { 64 } else { 65536 },
        max_depth: if flags & 32 != 0 { 2 } else { 32 },
    };
    // Also the probe, on the raw input, both ways.
    let _ = dissect::app::redis::probe_tcp(dissect::app::Direction::ToServer, script);
    let _ = dissect::app::redis::probe_tcp(dissect::app::Direction::ToClient, script);
    let _ = dissect::app::redis::wire::plausible_at(script, true);
    let _ = dissect::app::redis::wire::plausible_at(script, false);
    let _ = dissect::app::detect_tcp(40000, 6379, dissect::app::Direction::ToServer, script);
    app_driver::run(Box::new(RedisParser::new(cfg)), false, script);
});
