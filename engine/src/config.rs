//! The configuration file (`--config flowtap.toml`). Every key has a default;
//! unknown keys are rejected with their name, so a typo never silently falls
//! back to a default.

use std::path::Path;

use serde::Deserialize;

mod app_section;
mod capture_section;
mod export_section;
mod output_section;
pub use app_section::{AppSection, DnsSection, HttpSection, StreamSection, TlsSection};
pub use capture_section::{
    CaptureSection, CaptureSource, FilterSection, ShardSetting, XdpModeSetting, ZeroCopySetting,
};
pub use export_section::{
    DnsMatch, ExportSection, HttpMatch, MatchSection, RuleSection, Size, TlsMatch, Values,
};
pub use output_section::{metrics_addr, OutputSection, SampleSection, SinkSection};

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
    pub output: OutputSection,
    pub capture: CaptureSection,
    pub stream: StreamSection,
    pub app: AppSection,
    pub export: ExportSection,
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
            output: OutputSection::default(),
            capture: CaptureSection::default(),
            stream: StreamSection::default(),
            app: AppSection::default(),
            export: ExportSection::default(),
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
        self.app.validate()?;
        if self.decode.max_tunnel_depth == 0 {
            return bad("decode.max_tunnel_depth", "must be at least 1");
        }
        self.capture.validate()?;
        self.export.validate()?;
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
