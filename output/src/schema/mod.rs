//! Event schemas. Each sink picks one; a worker encodes an event once per
//! schema in use, straight into a reused buffer, one line per event (JSON
//! strings never hold a raw newline, so a batch splits on `\n`).
//!
//! | schema | layout |
//! |---|---|
//! | `native` | flowtap's own JSON (see `docs/schema-native.md`), EVE-like names |
//! | `ecs` | Elastic Common Schema 8.11 names (`source.ip`, `network.community_id`, `url.*`, `dns.*`, `tls.*`, `event.*`); flowtap-only fields under `flowtap.*` |
//! | `eve` | Suricata eve.json layout (`event_type`, `src_ip`, `flow{}`, `http{}`, `dns{}` v3, `tls{}`) |
//! | `gelf` | GELF 1.1 (`version`, `host`, `short_message`, `timestamp`, `level`, flat `_` fields) |
//! | `nanocorp` | network events: `event_id`, `event_type`, `seen_at` (epoch ms), `source_ip`/`mac`, `dest_ip`/`mac`, `proto_path`, `network_protocol` |
//! | `nutanix` | flow lines `SRC= DST= PROTO= SPORT= DPORT= ORIG: PKTS= BYTES= REPLY: PKTS= BYTES= ACTION=MONITOR [DIRECTION=]` (flow events only) |

pub(crate) mod common;
pub mod ecs;
pub mod eve;
pub mod gelf;
pub mod nanocorp;
pub mod native;
pub mod nutanix;

use dissect::app::encode::WriteOptions;
use dissect::event::{AppEnvelope, FlowRecord};

use crate::event::{EventType, StatsEvent};

/// Version of the native schema; bumped on any incompatible change.
pub const NATIVE_SCHEMA_VERSION: u32 = 1;
/// The ECS version the `ecs` schema follows.
pub const ECS_VERSION: &str = "8.11.0";

/// An output schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Schema {
    Native,
    Ecs,
    Eve,
    Gelf,
    Nanocorp,
    Nutanix,
}

impl Schema {
    pub const ALL: [Schema; 6] = [
        Schema::Native,
        Schema::Ecs,
        Schema::Eve,
        Schema::Gelf,
        Schema::Nanocorp,
        Schema::Nutanix,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Schema::Native => "native",
            Schema::Ecs => "ecs",
            Schema::Eve => "eve",
            Schema::Gelf => "gelf",
            Schema::Nanocorp => "nanocorp",
            Schema::Nutanix => "nutanix",
        }
    }

    pub fn parse(s: &str) -> Option<Schema> {
        Schema::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether this schema has a layout for `t` (nutanix lines are flows only).
    pub fn supports(self, t: EventType) -> bool {
        match self {
            Schema::Nutanix => t == EventType::Flow,
            _ => true,
        }
    }
}

/// Settings the encoders share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeOptions {
    host: String,
    max_body_bytes: usize,
    /// ECS's constant members (`ecs`, `observer` with the escaped host
    /// name), written once here instead of piece by piece per event.
    ecs_constant: Vec<u8>,
    /// Nutanix lines: `DIRECTION=` is relative to these blocks (none: no field).
    monitor_scope: Vec<nutanix::ScopeBlock>,
}

impl EncodeOptions {
    /// `host`: this appliance's name (GELF `host`, ECS `observer.hostname`,
    /// syslog HOSTNAME); `max_body_bytes`: captured HTTP bodies are cut to
    /// this many bytes in events (0 = never written).
    pub fn new(host: String, max_body_bytes: usize) -> EncodeOptions {
        let mut ecs_constant = br#""ecs":{"version":""#.to_vec();
        ecs_constant.extend_from_slice(ECS_VERSION.as_bytes());
        ecs_constant.extend_from_slice(br#""},"observer":{"hostname":"#);
        crate::json::write_escaped(&mut ecs_constant, host.as_bytes());
        ecs_constant.extend_from_slice(br#","type":"sensor","product":"flowtap"}"#);
        EncodeOptions {
            host,
            max_body_bytes,
            ecs_constant,
            monitor_scope: Vec::new(),
        }
    }

    /// Nutanix lines carry `DIRECTION=` relative to `scope`.
    pub fn with_monitor_scope(mut self, scope: Vec<nutanix::ScopeBlock>) -> EncodeOptions {
        self.monitor_scope = scope;
        self
    }

    pub fn monitor_scope(&self) -> &[nutanix::ScopeBlock] {
        &self.monitor_scope
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// What the protocols' own writers need (see `dissect::app::encode`).
    pub fn write_options(&self) -> WriteOptions {
        WriteOptions {
            max_body_bytes: self.max_body_bytes,
        }
    }

    pub(crate) fn ecs_constant(&self) -> &[u8] {
        &self.ecs_constant
    }
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions::new(local_hostname(), 256)
    }
}

/// The kernel's host name, or "flowtap".
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "flowtap".into())
}

/// Appends one flow record as a line in `schema`.
pub fn encode_flow(schema: Schema, opts: &EncodeOptions, rec: &FlowRecord, buf: &mut Vec<u8>) {
    match schema {
        Schema::Native => native::encode_flow(rec, buf),
        Schema::Ecs => ecs::encode_flow(opts, rec, buf),
        Schema::Eve => eve::encode_flow(rec, buf),
        Schema::Gelf => gelf::encode_flow(opts, rec, buf),
        Schema::Nanocorp => nanocorp::encode_flow(rec, buf),
        Schema::Nutanix => nutanix::encode_flow(&opts.monitor_scope, rec, buf),
    }
}

/// Appends one application-layer event as a line in `schema`; returns false
/// (and appends nothing) when the schema has no layout for it.
pub fn encode_app(
    schema: Schema,
    opts: &EncodeOptions,
    env: &AppEnvelope<'_>,
    buf: &mut Vec<u8>,
) -> bool {
    match schema {
        Schema::Native => native::encode_app(opts, env, buf),
        Schema::Ecs => ecs::encode_app(opts, env, buf),
        Schema::Eve => eve::encode_app(opts, env, buf),
        Schema::Gelf => gelf::encode_app(opts, env, buf),
        Schema::Nanocorp => nanocorp::encode_app(opts, env, buf),
        Schema::Nutanix => return false,
    }
    true
}

/// Appends a `stats` event in `schema`; returns false when the schema has
/// no layout for stats (nutanix).
pub fn encode_stats(
    schema: Schema,
    opts: &EncodeOptions,
    ev: &StatsEvent,
    buf: &mut Vec<u8>,
) -> bool {
    match schema {
        Schema::Native => native::encode_stats(ev, buf),
        Schema::Ecs => ecs::encode_stats(opts, ev, buf),
        Schema::Eve => eve::encode_stats(ev, buf),
        Schema::Gelf => gelf::encode_stats(opts, ev, buf),
        Schema::Nanocorp => nanocorp::encode_stats(ev, buf),
        Schema::Nutanix => return false,
    }
    true
}

/// Appends a `pcap` event (a finished export file) in `schema`; returns
/// false when the schema has no layout for it (nutanix).
pub fn encode_pcap(
    schema: Schema,
    opts: &EncodeOptions,
    ev: &crate::event::PcapEvent<'_>,
    buf: &mut Vec<u8>,
) -> bool {
    match schema {
        Schema::Native => native::encode_pcap(ev, buf),
        Schema::Ecs => ecs::encode_pcap(opts, ev, buf),
        Schema::Eve => eve::encode_pcap(ev, buf),
        Schema::Gelf => gelf::encode_pcap(opts, ev, buf),
        Schema::Nanocorp => nanocorp::encode_pcap(ev, buf),
        Schema::Nutanix => return false,
    }
    true
}

/// The type of an application event.
pub fn app_type(env: &AppEnvelope<'_>) -> EventType {
    EventType::App(env.event.proto())
}

#[doc(hidden)]
pub mod ecs_check;
#[doc(hidden)]
pub mod testdata;
#[cfg(test)]
mod tests;
