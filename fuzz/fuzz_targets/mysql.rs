#![no_main]
//! MySQL parser: both directions, gaps, small limits so the caps are hit.

use dissect::app::mysql::{MysqlConfig, MysqlParser};
use libfuzzer_sys::fuzz_target;

#[path = "app_driver.rs"]
mod app_driver;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, script)) = data.split_first() else {
        return;
    };
    let cfg = MysqlConfig {
        max_pending: usize::from(flags & 7) + 1,
        max_statement_bytes: 64,
        max_message_bytes: if flags & 8 != 0 { 1024 } else { 65536 },
        max_prepared: usize::from(flags >> 4) + 1,
        max_field_bytes: 32,
        // half the inputs through the literal normaliser too
        normalize_statements: flags & 1 != 0,
    };
    // Also the probe, on the raw input, both ways.
    let _ = dissect::app::mysql::probe_tcp(dissect::app::Direction::ToServer, script);
    let _ = dissect::app::mysql::probe_tcp(dissect::app::Direction::ToClient, script);
    let _ = dissect::app::detect_tcp(40000, 3306, dissect::app::Direction::ToClient, script);
    app_driver::run(Box::new(MysqlParser::new(cfg)), false, script);
});
