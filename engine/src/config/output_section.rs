//! `[output]`: sinks (`[[output.sinks]]`), volume controls, metrics.

use dissect::app::AppProto;
use output::perms::FilePerms;
use output::sink::spec::{parse_size, parse_when_full, SpoolSpec, TlsSpec};
use output::sink::SinkKind;
use output::{EventType, Schema, SinkSpec, TypeSet, Volume};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSection {
    /// `-` for stdout or a file path; used when no `[[output.sinks]]` and no `--output`.
    pub path: String,
    /// Batches queued between the workers and each sink.
    pub queue_batches: usize,
    /// A worker hands its batch to a sink when it reaches this many bytes.
    pub batch_bytes: usize,
    /// Seconds between `stats` events (0 = only at the end).
    pub stats_interval: u64,
    /// Name written as GELF `host`, ECS `observer.hostname`, syslog HOSTNAME ("" = this host's name).
    pub host: String,
    /// Event types emitted at all (flow, one per protocol, stats, pcap).
    pub types: Vec<String>,
    /// Captured HTTP bodies are cut to this many bytes in events (0 = never written).
    pub max_body_bytes: usize,
    /// Keep 1 in N flows' events of each app-layer protocol (by name; 0, 1
    /// or absent = all).
    pub sample: BTreeMap<String, u32>,
    /// Prometheus metrics on this address ("" = off). A bare port means 127.0.0.1:PORT.
    pub metrics_listen: String,
    /// Sinks; when empty, `path` is the one sink.
    pub sinks: Vec<SinkSection>,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection {
            path: "-".into(),
            queue_batches: 64,
            batch_bytes: 256 << 10,
            stats_interval: 0,
            host: String::new(),
            types: EventType::all().map(|t| t.as_str().to_string()).collect(),
            max_body_bytes: 256,
            sample: AppProto::ALL
                .iter()
                .map(|p| (p.as_str().to_string(), 1))
                .collect(),
            metrics_listen: String::new(),
            sinks: Vec::new(),
        }
    }
}

/// One `[[output.sinks]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SinkSection {
    /// Where: the same syntax as `--output` (`-`, a path, `file:///p?rotate_bytes=..`,
    /// `gelf+udp://h:p`, `gelf+tcp://h:p`, `syslog+udp://h:p`, `syslog+tcp://h:p`, `kafka://h:p/topic`).
    pub url: String,
    pub name: Option<String>,
    /// native, ecs, eve, gelf, nanocorp, nutanix.
    pub schema: Option<String>,
    /// Event types this sink takes (default all).
    pub types: Option<Vec<String>>,
    pub batch_events: Option<usize>,
    pub batch_bytes: Option<usize>,
    pub batch_ms: Option<u64>,
    pub queue_batches: Option<usize>,
    /// block or drop (default: block for replay, drop for live capture).
    pub when_full: Option<String>,
    /// Directory of a disk spool that absorbs collector outages.
    pub spool_dir: Option<String>,
    /// Spool cap, e.g. "1G".
    pub spool_bytes: Option<String>,
    /// TCP sinks (syslog+tcp, gelf+tcp): TLS on (the URL's `tls=true`).
    pub tls: Option<bool>,
    /// PEM CA file the collector's certificate must chain to (default: the
    /// system bundle).
    pub tls_ca: Option<String>,
    /// PEM client certificate and key, for collectors that require one.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// Name the collector's certificate must carry (default: the URL's host).
    pub tls_server_name: Option<String>,
    /// TCP sinks: a write that makes no progress this long marks the
    /// collector stalled (default 10000).
    pub write_timeout_ms: Option<u64>,
    /// TCP sinks: socket send buffer, e.g. "256k" (default: the kernel's
    /// autotuning); bounds what a collector crash can take in flight.
    pub send_buffer: Option<String>,
    /// File sinks and spools: mode of the files created, an octal string
    /// (default "0640"; directories get the search bits: 0750).
    pub file_mode: Option<String>,
    /// File sinks and spools: group of the files created (a name; default
    /// the process's).
    pub group: Option<String>,
}

fn bad(field: String, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid(format!("{field}: {why}"))
}

impl SinkSection {
    fn to_spec(&self, at: &str, out: &OutputSection) -> Result<SinkSpec, ConfigError> {
        // [output]'s queue and batch sizes are defaults the URL may override.
        let mut s = SinkSpec::parse_url_with(&self.url, |s| {
            s.queue_batches = out.queue_batches;
            s.batch_bytes = out.batch_bytes;
        })
        .map_err(|e| bad(format!("{at}.url"), e))?;
        if let Some(n) = &self.name {
            s.name = n.clone();
        }
        if let Some(v) = &self.schema {
            s.schema = Schema::parse(v).ok_or_else(|| {
                bad(
                    format!("{at}.schema"),
                    format!("`{v}` (expected native, ecs, eve, gelf, nanocorp or nutanix)"),
                )
            })?;
        }
        if let Some(v) = &self.types {
            s.types =
                TypeSet::parse_list(&v.join(",")).map_err(|e| bad(format!("{at}.types"), e))?;
        }
        if let Some(v) = self.batch_events {
            s.batch_events = v;
        }
        if let Some(v) = self.batch_bytes {
            s.batch_bytes = v;
        }
        if let Some(v) = self.batch_ms {
            s.batch_age = Duration::from_millis(v);
        }
        if let Some(v) = self.queue_batches {
            s.queue_batches = v;
        }
        if let Some(v) = &self.when_full {
            s.when_full =
                Some(parse_when_full(v).map_err(|e| bad(format!("{at}.when_full"), e.why))?);
        }
        if let Some(d) = &self.spool_dir {
            let max = match &self.spool_bytes {
                Some(b) => parse_size("spool_bytes", b)
                    .map_err(|e| bad(format!("{at}.spool_bytes"), e.why))?,
                None => 1 << 30,
            };
            s.spool = Some(SpoolSpec {
                dir: d.into(),
                max_bytes: max,
                perms: Default::default(),
            });
        } else if self.spool_bytes.is_some() {
            return Err(bad(format!("{at}.spool_bytes"), "needs spool_dir"));
        }
        self.apply_tcp(at, &mut s)?;
        self.apply_perms(at, &mut s)?;
        s.validate()
            .map_err(|e| bad(format!("{at}.{}", e.what), e.why))?;
        Ok(s)
    }

    /// Applies `file_mode` and `group` to a file sink's files and a spool.
    fn apply_perms(&self, at: &str, s: &mut SinkSpec) -> Result<(), ConfigError> {
        let mode = match &self.file_mode {
            Some(v) => {
                Some(FilePerms::parse_mode(v).map_err(|e| bad(format!("{at}.file_mode"), e))?)
            }
            None => None,
        };
        let gid = match &self.group {
            Some(v) => Some(FilePerms::group_id(v).map_err(|e| bad(format!("{at}.group"), e))?),
            None => None,
        };
        let mut targets: Vec<&mut FilePerms> = Vec::new();
        if let SinkKind::File(f) = &mut s.kind {
            targets.push(&mut f.perms);
        }
        if let Some(sp) = &mut s.spool {
            targets.push(&mut sp.perms);
        }
        if targets.is_empty() && (mode.is_some() || gid.is_some()) {
            let k = if mode.is_some() { "file_mode" } else { "group" };
            return Err(bad(
                format!("{at}.{k}"),
                "only for file sinks and sinks with a spool_dir",
            ));
        }
        for p in targets {
            if let Some(m) = mode {
                p.mode = m;
            }
            if gid.is_some() {
                p.gid = gid;
            }
        }
        Ok(())
    }

    /// Applies the TLS and write-timeout keys to a TCP sink.
    fn apply_tcp(&self, at: &str, s: &mut SinkSpec) -> Result<(), ConfigError> {
        let set = [
            ("tls", self.tls.is_some()),
            ("tls_ca", self.tls_ca.is_some()),
            ("tls_cert", self.tls_cert.is_some()),
            ("tls_key", self.tls_key.is_some()),
            ("tls_server_name", self.tls_server_name.is_some()),
            ("write_timeout_ms", self.write_timeout_ms.is_some()),
            ("send_buffer", self.send_buffer.is_some()),
        ];
        let tcp = match &mut s.kind {
            SinkKind::SyslogTcp { tcp, .. } | SinkKind::GelfTcp { tcp, .. } => tcp,
            _ => {
                return match set.iter().find(|(_, on)| *on) {
                    Some((k, _)) => Err(bad(
                        format!("{at}.{k}"),
                        "only for TCP sinks (syslog+tcp, gelf+tcp)",
                    )),
                    None => Ok(()),
                }
            }
        };
        if let Some(ms) = self.write_timeout_ms {
            tcp.write_timeout = Duration::from_millis(ms);
        }
        if let Some(b) = &self.send_buffer {
            tcp.send_buffer = Some(
                parse_size("send_buffer", b).map_err(|e| bad(format!("{at}.send_buffer"), e.why))?
                    as usize,
            );
        }
        let any_file = set[1..5].iter().any(|(_, on)| *on);
        match self.tls {
            Some(false) if any_file => {
                let k = set[1..5]
                    .iter()
                    .find(|(_, on)| *on)
                    .map_or("tls", |(k, _)| k);
                return Err(bad(format!("{at}.{k}"), "needs tls = true"));
            }
            Some(false) => tcp.tls = None,
            Some(true) => {
                tcp.tls.get_or_insert_with(TlsSpec::default);
            }
            None if any_file && tcp.tls.is_none() => {
                let k = set[1..5]
                    .iter()
                    .find(|(_, on)| *on)
                    .map_or("tls", |(k, _)| k);
                return Err(bad(format!("{at}.{k}"), "needs tls = true"));
            }
            None => {}
        }
        if let Some(t) = &mut tcp.tls {
            if let Some(v) = &self.tls_ca {
                t.ca = Some(v.into());
            }
            if let Some(v) = &self.tls_cert {
                t.cert = Some(v.into());
            }
            if let Some(v) = &self.tls_key {
                t.key = Some(v.into());
            }
            if let Some(v) = &self.tls_server_name {
                t.server_name = Some(v.clone());
            }
        }
        tcp.validate().map_err(|e| {
            let k = match e.what.as_str() {
                w @ ("write_timeout_ms" | "send_buffer") => w.to_string(),
                w => format!("tls_{w}"),
            };
            bad(format!("{at}.{k}"), e.why)
        })
    }
}

impl OutputSection {
    /// The sinks: `--output` values when given, else `[[output.sinks]]`, else `path`.
    pub fn sink_specs(&self, cli: &[String]) -> Result<Vec<SinkSpec>, ConfigError> {
        if !cli.is_empty() {
            return cli
                .iter()
                .map(|u| {
                    SinkSpec::parse_url_with(u, |s| s.queue_batches = self.queue_batches)
                        .map_err(|e| bad(format!("--output {u}"), e))
                })
                .collect();
        }
        if self.sinks.is_empty() {
            let s = SinkSpec::parse_url_with(&self.path, |s| {
                s.queue_batches = self.queue_batches;
                s.batch_bytes = self.batch_bytes;
            })
            .map_err(|e| bad("output.path".into(), e))?;
            return Ok(vec![s]);
        }
        self.sinks
            .iter()
            .enumerate()
            .map(|(i, s)| s.to_spec(&format!("output.sinks[{i}]"), self))
            .collect()
    }

    /// Volume controls.
    pub fn volume(&self) -> Result<Volume, ConfigError> {
        let enabled = if self.types.is_empty() {
            TypeSet::EMPTY
        } else {
            TypeSet::parse_list(&self.types.join(",")).map_err(|e| bad("output.types".into(), e))?
        };
        let mut v = Volume {
            enabled,
            ..Volume::default()
        };
        for (name, &n) in &self.sample {
            let Some(p) = AppProto::parse(name) else {
                return Err(bad(
                    format!("output.sample.{name}"),
                    format!("unknown protocol (expected {})", AppProto::names_list()),
                ));
            };
            v.sample[EventType::App(p).index()] = n;
        }
        Ok(v)
    }

    pub fn encode_options(&self) -> output::EncodeOptions {
        let host = if self.host.is_empty() {
            output::schema::local_hostname()
        } else {
            self.host.clone()
        };
        output::EncodeOptions::new(host, self.max_body_bytes)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.queue_batches == 0 {
            return Err(bad("output.queue_batches".into(), "must be at least 1"));
        }
        if self.batch_bytes == 0 {
            return Err(bad("output.batch_bytes".into(), "must be at least 1"));
        }
        self.volume()?;
        self.sink_specs(&[])?;
        if !self.metrics_listen.is_empty()
            && output::metrics::metrics_addr(&self.metrics_listen).is_none()
        {
            return Err(bad(
                "output.metrics_listen".into(),
                format!("`{}` is not ADDR:PORT or PORT", self.metrics_listen),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn sinks_are_read_and_checked_by_name() {
        let cfg = Config::from_toml(
            r#"
[output]
types = ["flow", "dns", "stats"]
[output.sample]
dns = 10
[[output.sinks]]
url = "file:///tmp/x/eve.json?rotate_bytes=1M&queue_batches=3"
schema = "eve"
types = ["flow", "dns"]
[[output.sinks]]
url = "syslog+tcp://127.0.0.1:6514"
spool_dir = "/tmp/spool"
spool_bytes = "64M"
when_full = "drop"
tls = true
tls_ca = "/etc/flowtap/ca.pem"
tls_server_name = "collector.lan"
write_timeout_ms = 2500
send_buffer = "128k"
"#,
            "f",
        )
        .expect("ok");
        let specs = cfg.output.sink_specs(&[]).expect("specs");
        assert_eq!(specs.len(), 2);
        let output::SinkKind::SyslogTcp { tcp, .. } = &specs[1].kind else {
            panic!("syslog+tcp")
        };
        assert_eq!(tcp.write_timeout, std::time::Duration::from_millis(2500));
        assert_eq!(tcp.send_buffer, Some(128 << 10));
        let tls = tcp.tls.as_ref().expect("tls on");
        assert_eq!(
            tls.ca.as_deref(),
            Some(std::path::Path::new("/etc/flowtap/ca.pem"))
        );
        assert_eq!(tls.server_name.as_deref(), Some("collector.lan"));
        assert_eq!(tls.cert, None);
        assert_eq!(specs[0].schema, output::Schema::Eve);
        // The URL's own queue size beats [output]'s default.
        assert_eq!(specs[0].queue_batches, 3);
        assert_eq!(specs[1].queue_batches, 64);
        assert_eq!(specs[1].spool.as_ref().map(|s| s.max_bytes), Some(64 << 20));
        let v = cfg.output.volume().expect("volume");
        assert!(!v
            .enabled
            .contains(output::EventType::App(dissect::app::AppProto::Http)));
        assert_eq!(
            v.sample[output::EventType::App(dissect::app::AppProto::Dns).index()],
            10
        );

        for (toml, field) in [
            (
                "[[output.sinks]]\nurl = \"-\"\nschema = \"xml\"\n",
                "output.sinks[0].schema",
            ),
            (
                "[[output.sinks]]\nurl = \"gelf+udp://h\"\n",
                "output.sinks[0].url",
            ),
            ("[[output.sinks]]\nurl = \"-\"\ncolour = 1\n", "colour"),
            (
                "[[output.sinks]]\nurl = \"-\"\ntypes = [\"smb\"]\n",
                "output.sinks[0].types",
            ),
            (
                "[[output.sinks]]\nurl = \"-\"\nwhen_full = \"maybe\"\n",
                "output.sinks[0].when_full",
            ),
            (
                "[[output.sinks]]\nurl = \"syslog+tcp://h:1\"\nspool_bytes = \"1G\"\n",
                "output.sinks[0].spool_bytes",
            ),
            (
                "[[output.sinks]]\nurl = \"syslog+udp://h:1\"\ntls = true\n",
                "output.sinks[0].tls",
            ),
            (
                "[[output.sinks]]\nurl = \"gelf+tcp://h:1\"\ntls_ca = \"/ca.pem\"\n",
                "output.sinks[0].tls_ca",
            ),
            (
                "[[output.sinks]]\nurl = \"gelf+tcp://h:1\"\ntls = true\ntls_key = \"/k.pem\"\n",
                "output.sinks[0].tls_cert",
            ),
            (
                "[[output.sinks]]\nurl = \"gelf+tcp://h:1\"\nwrite_timeout_ms = 0\n",
                "output.sinks[0].write_timeout_ms",
            ),
            ("[output]\ntypes = [\"flows\"]\n", "output.types"),
            (
                "[output]\nmetrics_listen = \"nope\"\n",
                "output.metrics_listen",
            ),
        ] {
            let e = Config::from_toml(toml, "f").expect_err(toml).to_string();
            assert!(e.contains(field), "{toml}: {e}");
        }
    }
}
