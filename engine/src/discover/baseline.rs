//! Drift against a baseline: the rules a reviewed rule base (a previous
//! `flowtap discover --format json`) does not allow.

use std::net::IpAddr;
use std::path::Path;

use super::{proto_number, Cidr, DiscoverError, Rule};

/// One allow rule of the baseline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    pub source: Cidr,
    pub destination: IpAddr,
    pub proto: u8,
    pub port: Option<u16>,
    /// The last port of a range rule (`port` is its first).
    pub port_last: Option<u16>,
}

impl Allowed {
    /// Whether this baseline rule allows everything `r` stands for.
    pub fn allows(&self, r: &Rule) -> bool {
        self.destination == r.destination
            && self.proto == r.ip_proto
            && self.allows_ports(r)
            && self.source.len <= r.source_net.len
            && self.source.contains(&r.source_net.addr)
    }
}

impl Allowed {
    /// Whether this rule's port or range covers `r`'s.
    fn allows_ports(&self, r: &Rule) -> bool {
        match (self.port, r.port) {
            (None, None) => true,
            (Some(lo), Some(p)) => {
                let hi = self.port_last.unwrap_or(lo);
                let last = r.port_last.unwrap_or(p);
                lo <= p && last <= hi
            }
            _ => false,
        }
    }
}

/// Reads a baseline: the JSON document `--format json` writes.
pub fn load(path: &Path) -> Result<Vec<Allowed>, DiscoverError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| DiscoverError::Open {
        path: name.clone(),
        err: e,
    })?;
    let bad = |msg: String| DiscoverError::BadLine {
        path: name.clone(),
        line: 0,
        msg,
    };
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not a `--format json` rule base: {e}")))?;
    let rules = doc["rules"]
        .as_array()
        .ok_or_else(|| bad("no \"rules\" array: not a `--format json` rule base".into()))?;
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let field = |k: &str| {
                r[k].as_str()
                    .ok_or_else(|| bad(format!("rule {}: no {k:?}", i + 1)))
            };
            let src = field("source")?;
            // `name (10.0.0.0/24)` for a --group-map group.
            let block = src
                .rsplit_once(" (")
                .map_or(src, |(_, b)| b.trim_end_matches(')'));
            let source = Cidr::parse(block)
                .map_err(|why| bad(format!("rule {}: source {src:?}: {why}", i + 1)))?;
            let dst = field("destination")?;
            let destination = dst
                .parse()
                .map_err(|_| bad(format!("rule {}: destination {dst:?}", i + 1)))?;
            let p = field("protocol")?;
            let proto =
                proto_number(p).ok_or_else(|| bad(format!("rule {}: protocol {p:?}", i + 1)))?;
            let port = match &r["port"] {
                serde_json::Value::Null => None,
                v => Some(
                    v.as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .ok_or_else(|| bad(format!("rule {}: port {v}", i + 1)))?,
                ),
            };
            let port_last = match &r["port_last"] {
                serde_json::Value::Null => None,
                v => Some(
                    v.as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .filter(|&n| port.is_some_and(|p| p <= n))
                        .ok_or_else(|| bad(format!("rule {}: port_last {v}", i + 1)))?,
                ),
            };
            Ok(Allowed {
                source,
                destination,
                proto,
                port,
                port_last,
            })
        })
        .collect()
}

/// Keeps the rules no baseline rule allows; returns how many were allowed.
pub fn drift(rules: &mut Vec<Rule>, baseline: &[Allowed]) -> usize {
    let before = rules.len();
    rules.retain(|r| !baseline.iter().any(|a| a.allows(r)));
    before - rules.len()
}
