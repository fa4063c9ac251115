#![no_main]
//! AMQP 0-9-1 parser: both directions, gaps, small limits so the caps are hit.

use dissect::app::amqp::{AmqpConfig, AmqpParser};
use libfuzzer_sys::fuzz_target;

#[path = "app_driver.rs"]
mod app_driver;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, script)) = data.split_first() else {
        return;
    };
    let cfg = AmqpConfig {
        max_pending: usize::from(flags & 7) + 1,
        max_frame_bytes: if flags & 8 != 0 { 1024 } else { 65536 },
        max_frame_size: if flags & 16 != 0 { 4096 } else { 16 << 20 },
        max_name_bytes: 16,
    };
    // Also the probe, on the raw input, both ways.
    let _ = dissect::app::amqp::probe_tcp(dissect::app::Direction::ToServer, script);
    let _ = dissect::app::amqp::probe_tcp(dissect::app::Direction::ToClient, script);
    let _ = dissect::app::amqp::wire::content_header(script);
    let _ = dissect::app::detect_tcp(40000, 5672, dissect::app::Direction::ToServer, script);
    app_driver::run(Box::new(AmqpParser::new(cfg)), false, script);
});
