#![no_main]
//! DNS parser over UDP (each chunk a datagram) and TCP (length framing).

use dissect::app::{DnsConfig, DnsParser, Transport};
use libfuzzer_sys::fuzz_target;

#[path = "app_driver.rs"]
mod app_driver;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, script)) = data.split_first() else {
        return;
    };
    let transport = if flags & 1 != 0 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let cfg = DnsConfig {
        max_pending: usize::from(flags >> 4) + 1,
        query_timeout_ns: if flags & 2 != 0 { 3_000_000 } else { 0 },
        max_records: 4,
    };
    // Also the probes, on the raw input.
    let _ = dissect::app::detect_udp(1234, 53, script);
    let _ = dissect::app::dns::probe_tcp(dissect::app::Direction::ToServer, script);
    // Over UDP each chunk is one datagram, as the engine delivers them.
    let datagrams = transport == Transport::Udp;
    app_driver::run(Box::new(DnsParser::new(transport, cfg)), datagrams, script);
});
