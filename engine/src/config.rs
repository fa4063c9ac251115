//! The configuration file (`--config flowtap.toml`). Every key has a default;
//! unknown keys are rejected with their name, so a typo never silently falls
//! back to a default.

use std::path::Path;

use serde::Deserialize;

mod capture_section;
mod control_section;
mod discover_section;
mod output_section;
mod stream_section;
pub use crate::export::config::{ExportSection, MatchSection, RuleSection, Size, Values};
pub use capture_section::{
    CaptureSection, CaptureSource, DpdkSection, FilterSection, ShardSetting, XdpModeSetting,
    ZeroCopySetting, MBUF_BYTES,
};
pub use control_section::ControlSection;
pub use discover_section::{DiscoverSection, DEFAULT_PORT_GAP};
pub use dissect::app::AppConfig;
pub use output_section::{OutputSection, SinkSection};
pub use stream_section::StreamSection;

/// `flowtap default-config`: every key with its default and a comment. The
/// protocol parts (event types, sampling, `[app.*]` sections, export-rule
/// fields) come from the protocol registry, so a new protocol shows up here
/// by itself. `deploy/flowtap.toml` is a copy (a test keeps them equal).
pub fn default_config_toml() -> String {
    use dissect::app::AppProto;
    let event_types: Vec<String> = output::EventType::all()
        .map(|t| format!("\"{}\"", t.as_str()))
        .collect();
    let sample: String = AppProto::ALL
        .iter()
        .map(|p| format!("{} = 1\n", p.as_str()))
        .collect();
    let export_fields: Vec<String> = AppProto::ALL
        .iter()
        .map(|p| {
            let fields: Vec<String> = p
                .info()
                .export_fields
                .iter()
                .map(|f| format!("{}.{}", p.as_str(), f.name))
                .collect();
            format!("#   {}", fields.join(", "))
        })
        .collect();
    let st = StreamSection::default();
    let stream = format!(
        "max_ooo_bytes_per_flow = {}\nmax_pending_bytes_per_flow = {}\nmax_bytes_per_worker = {}\ndetect_bytes = {}\nreorder_window_us = {}",
        st.max_ooo_bytes_per_flow, st.max_pending_bytes_per_flow, st.max_bytes_per_worker, st.detect_bytes, st.reorder_window_us
    );
    let app: Vec<&str> = AppProto::ALL.iter().map(|p| p.info().config_toml).collect();
    include_str!("config/default.toml")
        .replace("@EVENT_TYPES@", &format!("[{}]", event_types.join(", ")))
        .replace("@SAMPLE@", &sample)
        .replace("@EXPORT_FIELDS@", &export_fields.join("\n"))
        .replace("@STREAM@", &stream)
        .replace("@APP@", &app.join("\n"))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid config value: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Worker threads (0 = one per available core).
    pub workers: usize,
    /// What the appliance may use, in bytes (`"1G"`); 0 = a quarter of the
    /// machine's memory, at most 1 GiB. The flow tables get what the other
    /// buffers' caps leave (see [`crate::budget`]).
    pub memory_budget: Size,
    /// Pin workers to cores.
    pub pin_workers: bool,
    pub decode: DecodeSection,
    pub flow: FlowSection,
    pub defrag: DefragSection,
    /// Duplicate frames from overlapping mirror sessions.
    pub dedup: crate::dedup::DedupSection,
    pub output: OutputSection,
    pub capture: CaptureSection,
    pub stream: StreamSection,
    /// `[app]` and `[app.PROTOCOL]`: the parsers' own config types.
    pub app: AppConfig,
    pub export: ExportSection,
    /// The control socket of a live run (`flowtap ctl`).
    pub control: ControlSection,
    /// `[app_metrics]`: application KPIs on `/metrics`.
    pub app_metrics: crate::kpi::AppMetricsSection,
    /// `[discover]`: the monitor scope and the discovery sink.
    pub discover: DiscoverSection,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 0,
            memory_budget: Size(0),
            pin_workers: true,
            decode: DecodeSection::default(),
            flow: FlowSection::default(),
            defrag: DefragSection::default(),
            dedup: crate::dedup::DedupSection::default(),
            output: OutputSection::default(),
            capture: CaptureSection::default(),
            stream: StreamSection::default(),
            app: AppConfig::default(),
            export: ExportSection::default(),
            control: ControlSection::default(),
            app_metrics: crate::kpi::AppMetricsSection::default(),
            discover: DiscoverSection::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeSection {
    /// UDP port that carries VXLAN.
    pub vxlan_port: u16,
    /// UDP port that carries GENEVE.
    pub geneve_port: u16,
    /// UDP port for Teredo (0 turns Teredo decoding off).
    pub teredo_port: u16,
    /// Maximum nested tunnels decapsulated.
    pub max_tunnel_depth: u8,
}

impl DecodeSection {
    /// The decoder settings of this section: every decode of a run (the
    /// worker's, and the owner lookup of the packet sources) uses them.
    pub fn decode_config(&self) -> dissect::packet::DecodeConfig {
        dissect::packet::DecodeConfig {
            vxlan_port: self.vxlan_port,
            geneve_port: self.geneve_port,
            teredo_port: (self.teredo_port != 0).then_some(self.teredo_port),
            max_tunnel_depth: self.max_tunnel_depth,
        }
    }
}

impl Default for DecodeSection {
    fn default() -> Self {
        DecodeSection {
            vxlan_port: 4789,
            geneve_port: 6081,
            teredo_port: 3544,
            max_tunnel_depth: 4,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSection {
    /// Maximum flows per worker; when full the flow nearest its timeout is
    /// evicted. Derived from `memory_budget` unless the config file sets it.
    pub max_flows_per_worker: usize,
    /// Whether the config file set `max_flows_per_worker` itself.
    #[serde(skip)]
    pub max_flows_explicit: bool,
    /// Keep flows on different VLANs apart (like Suricata's vlan.use-for-tracking).
    pub vlan_in_key: bool,
    /// Keep flows in different tunnels (VNI, ERSPAN session, GRE key) apart.
    pub tunnel_id_in_key: bool,
    pub timeouts: TimeoutSection,
}

impl Default for FlowSection {
    fn default() -> Self {
        FlowSection {
            max_flows_per_worker: 1 << 20,
            max_flows_explicit: false,
            vlan_in_key: true,
            tunnel_id_in_key: true,
            timeouts: TimeoutSection::default(),
        }
    }
}

/// Timeouts in seconds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutSection {
    /// TCP flow that has not completed its handshake.
    pub tcp_syn: u64,
    /// Established TCP flow without packets.
    pub tcp_established: u64,
    /// TCP flow after FIN from both sides or a RST (late ACKs still join it).
    pub tcp_closed: u64,
    pub udp: u64,
    /// ICMP and every other protocol.
    pub other: u64,
    /// Long flows emit an interim record every `active` seconds (0 = never).
    pub active: u64,
}

impl TimeoutSection {
    /// The flow table's timeouts (nanoseconds).
    pub fn flow_timeouts(&self) -> crate::flow::FlowTimeouts {
        const NS: u64 = 1_000_000_000;
        crate::flow::FlowTimeouts {
            tcp_syn: self.tcp_syn.saturating_mul(NS),
            tcp_established: self.tcp_established.saturating_mul(NS),
            tcp_closed: self.tcp_closed.saturating_mul(NS),
            udp: self.udp.saturating_mul(NS),
            other: self.other.saturating_mul(NS),
            active: self.active.saturating_mul(NS),
        }
    }
}

impl Default for TimeoutSection {
    fn default() -> Self {
        // Close to Suricata's defaults so flow counts compare.
        TimeoutSection {
            tcp_syn: 60,
            tcp_established: 600,
            tcp_closed: 30,
            udp: 120,
            other: 60,
            active: 1800,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DefragSection {
    /// Bytes of fragments held per worker; past it new fragments are dropped and counted.
    pub max_bytes_per_worker: usize,
    /// Datagrams being reassembled per worker.
    pub max_datagrams_per_worker: usize,
    /// Seconds a datagram may wait for its missing fragments.
    pub timeout: u64,
}

impl Default for DefragSection {
    fn default() -> Self {
        DefragSection {
            max_bytes_per_worker: 32 << 20,
            max_datagrams_per_worker: 16_384,
            timeout: 30,
        }
    }
}

impl Config {
    pub fn from_toml(text: &str, path: &str) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        cfg.flow.max_flows_explicit = toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|t| t.get("flow")?.get("max_flows_per_worker").cloned())
            .is_some();
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, why: &str| Err(ConfigError::Invalid(format!("{field}: {why}")));
        if self.flow.max_flows_per_worker == 0 {
            return bad("flow.max_flows_per_worker", "must be at least 1");
        }
        if self.flow.max_flows_per_worker > (u32::MAX as usize) / 2 {
            return bad("flow.max_flows_per_worker", "must be below 2^31");
        }
        let t = &self.flow.timeouts;
        for (name, v) in [
            ("flow.timeouts.tcp_syn", t.tcp_syn),
            ("flow.timeouts.tcp_established", t.tcp_established),
            ("flow.timeouts.tcp_closed", t.tcp_closed),
            ("flow.timeouts.udp", t.udp),
            ("flow.timeouts.other", t.other),
        ] {
            if v == 0 {
                return bad(name, "must be at least 1 second");
            }
        }
        if self.defrag.timeout == 0 {
            return bad("defrag.timeout", "must be at least 1 second");
        }
        self.output.validate()?;
        self.stream.validate()?;
        self.app.validate().map_err(ConfigError::Invalid)?;
        if self.decode.max_tunnel_depth == 0 {
            return bad("decode.max_tunnel_depth", "must be at least 1");
        }
        self.capture.validate()?;
        self.export.validate().map_err(ConfigError::Invalid)?;
        self.app_metrics.validate().map_err(ConfigError::Invalid)?;
        self.dedup.validate().map_err(ConfigError::Invalid)?;
        self.control.validate()?;
        self.discover.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::from_toml("", "x").expect("ok"), Config::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[flow.timeouts]\ntcp_synn = 5\n", "f.toml")
            .expect_err("must reject");
        let msg = err.to_string();
        assert!(msg.contains("tcp_synn"), "{msg}");
        assert!(msg.contains("f.toml"), "{msg}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = Config::from_toml("[flow.timeouts]\nudp = 0\n", "f").expect_err("reject");
        assert!(err.to_string().contains("flow.timeouts.udp"), "{err}");
        let err = Config::from_toml("workers = \"two\"\n", "f").expect_err("reject");
        assert!(err.to_string().contains("workers"), "{err}");
    }

    #[test]
    fn values_are_read() {
        let cfg = Config::from_toml(
            "workers = 2\n[flow]\nmax_flows_per_worker = 10\n[flow.timeouts]\nactive = 0\n",
            "f",
        )
        .expect("ok");
        assert_eq!(cfg.workers, 2);
        assert_eq!(cfg.flow.max_flows_per_worker, 10);
        assert_eq!(cfg.flow.timeouts.active, 0);
        assert_eq!(cfg.flow.timeouts.udp, 120);
    }
}
