//! `[discover]`: the monitor scope and the discovery sink of `flowtap
//! run` (what the settings mean: `crate::discover::config`).

use serde::Deserialize;

/// Neighbouring ports of a discovered port range are at most this far apart
/// (`--port-gap`, `discover.port_gap`).
pub const DEFAULT_PORT_GAP: u16 = 64;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoverSection {
    /// Addresses and blocks the monitored application lives in.
    pub scope: Vec<String>,
    /// The rule file the discovery sink rewrites ("" = no sink).
    pub path: String,
    /// table, csv, json, markdown, nftables, iptables or k8s.
    pub format: String,
    /// Minutes between rewrites (fractions allowed); the file is also
    /// written when the run ends.
    pub interval_minutes: f64,
    /// Rules kept in memory: the largest by bytes (what the others held is
    /// counted in the totals).
    pub max_rules: usize,
    /// both, inbound (server in the scope) or outbound (client in it).
    pub direction: String,
    /// Client grouping, e.g. ["/24", "/64"].
    pub group: Vec<String>,
    /// Blocks whose flows are left out.
    pub exclude: Vec<String>,
    /// Fold runs of at least this many adjacent ports into a range (0: off).
    pub port_ranges: usize,
    /// Neighbouring ports of a range are at most this far apart.
    pub port_gap: u16,
    /// A reviewed rule base (`--format json`): also write the rules it does
    /// not allow ("new since baseline") to `drift_path`.
    pub baseline: String,
    /// "" = `path` with `.drift` before its extension.
    pub drift_path: String,
    /// k8s: the namespace of the policies.
    pub k8s_namespace: String,
}

impl Default for DiscoverSection {
    fn default() -> Self {
        DiscoverSection {
            scope: Vec::new(),
            path: String::new(),
            format: "json".into(),
            interval_minutes: 10.0,
            max_rules: 10_000,
            direction: "both".into(),
            group: Vec::new(),
            exclude: Vec::new(),
            port_ranges: 0,
            port_gap: DEFAULT_PORT_GAP,
            baseline: String::new(),
            drift_path: String::new(),
            k8s_namespace: "default".into(),
        }
    }
}
