//! What the `[discover]` section means: the monitor scope (Nutanix lines'
//! `DIRECTION`) and the discovery sink of `flowtap run`, which keeps a
//! bounded rule aggregate and rewrites a rule file every
//! `interval_minutes`. The section itself (plain data) is in the config
//! module, which does not depend on discovery.

use std::path::PathBuf;

use super::render::Format;
use super::{Cidr, Direction, Options, PortRanges};
use crate::config::ConfigError;
pub use crate::config::DiscoverSection;
use clap::ValueEnum;

fn bad(field: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid(format!("discover.{field}: {why}"))
}

fn cidrs(field: &str, v: &[String]) -> Result<Vec<Cidr>, ConfigError> {
    v.iter()
        .map(|s| Cidr::parse(s).map_err(|why| bad(field, format!("{s:?}: {why}"))))
        .collect()
}

impl DiscoverSection {
    /// Whether the discovery sink runs.
    pub fn sink_enabled(&self) -> bool {
        !self.path.is_empty()
    }

    /// The scope blocks.
    pub fn scope_cidrs(&self) -> Result<Vec<Cidr>, ConfigError> {
        cidrs("scope", &self.scope)
    }

    /// The scope as the output crate's Nutanix encoder takes it.
    pub fn monitor_scope(&self) -> Result<Vec<output::schema::nutanix::ScopeBlock>, ConfigError> {
        Ok(self
            .scope_cidrs()?
            .into_iter()
            .filter_map(|c| output::schema::nutanix::ScopeBlock::new(c.addr, c.len))
            .collect())
    }

    pub fn output_format(&self) -> Result<Format, ConfigError> {
        Format::from_str(&self.format, true).map_err(|_| {
            bad(
                "format",
                format!(
                    "{:?} (expected table, csv, json, markdown, nftables, iptables or k8s)",
                    self.format
                ),
            )
        })
    }

    /// The aggregation options of the sink.
    pub fn options(&self) -> Result<Options, ConfigError> {
        let direction = Direction::from_str(&self.direction, true).map_err(|_| {
            bad(
                "direction",
                format!("{:?} (expected both, inbound or outbound)", self.direction),
            )
        })?;
        let scope = self.scope_cidrs()?;
        if direction != Direction::Both && scope.is_empty() {
            return Err(bad("direction", "is relative to discover.scope; set one"));
        }
        let (group_v4, group_v6) =
            super::cli::group_lengths(&self.group).map_err(|why| bad("group", why))?;
        if self.max_rules == 0 {
            return Err(bad("max_rules", "must be at least 1"));
        }
        Ok(Options {
            scope,
            direction,
            exclude: cidrs("exclude", &self.exclude)?,
            group_v4,
            group_v6,
            group_map: Vec::new(),
            max_rules: Some(self.max_rules),
            port_ranges: (self.port_ranges > 0).then_some(PortRanges {
                min_ports: self.port_ranges,
                max_gap: self.port_gap,
            }),
            // A long run: the names learnt are bounded too.
            max_named: Some(super::MAX_NAMED_SINK),
        })
    }

    /// The drift report's path (`rules.json` -> `rules.drift.json`).
    pub fn drift_file(&self) -> PathBuf {
        if !self.drift_path.is_empty() {
            return PathBuf::from(&self.drift_path);
        }
        let p = PathBuf::from(&self.path);
        match (p.file_stem(), p.extension()) {
            (Some(stem), Some(ext)) => p.with_file_name(format!(
                "{}.drift.{}",
                stem.to_string_lossy(),
                ext.to_string_lossy()
            )),
            _ => PathBuf::from(format!("{}.drift", self.path)),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.scope_cidrs()?;
        if !self.sink_enabled() {
            return Ok(());
        }
        self.output_format()?;
        self.options()?;
        if !(self.interval_minutes.is_finite() && self.interval_minutes > 0.0) {
            return Err(bad("interval_minutes", "must be a positive number"));
        }
        if self.output_format()? == Format::K8s && self.scope.is_empty() {
            return Err(bad("scope", "format k8s needs the pod CIDR as the scope"));
        }
        Ok(())
    }
}
