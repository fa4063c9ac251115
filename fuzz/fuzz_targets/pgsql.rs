#![no_main]
//! PostgreSQL parser: both directions, gaps, small limits so the caps are hit.

use dissect::app::pgsql::{PgsqlConfig, PgsqlParser};
use libfuzzer_sys::fuzz_target;

#[path = "app_driver.rs"]
mod app_driver;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, script)) = data.split_first() else {
        return;
    };
    let cfg = PgsqlConfig {
        max_pending: usize::from(flags & 7) + 1,
        max_statement_bytes: 64,
        max_message_bytes: if flags & 8 != 0 { 1024 } else { 65536 },
        max_prepared: usize::from(flags >> 4) + 1,
        max_field_bytes: 32,
        max_parameters: 4,
        // half the inputs through the literal normaliser too
        normalize_statements: flags & 1 != 0,
    };
    // Also the probe, on the raw input, both ways.
    let _ = dissect::app::pgsql::probe_tcp(dissect::app::Direction::ToServer, script);
    let _ = dissect::app::pgsql::probe_tcp(dissect::app::Direction::ToClient, script);
    let _ = dissect::app::detect_tcp(40000, 5432, dissect::app::Direction::ToServer, script);
    app_driver::run(Box::new(PgsqlParser::new(cfg)), false, script);
});
