//! NIC preflight (`flowtap doctor --iface IF`): reads what the capture path
//! depends on and says, for each problem, the exact command that fixes it.
//!
//! Reads through `ethtool` (Debian package `ethtool`) and sysfs; no unsafe.
//! What needs BPF (native XDP / zero-copy support) is supplied by the caller
//! with [`Report::set_xdp`] (the engine gets it from `capture::afxdp`), so
//! this crate stays below `capture`.

use std::fmt::Write as _;
use std::process::Command;

/// The symmetric Toeplitz key byte pair: with the key made of 0x6d5a repeated
/// both directions of a flow hash to the same RX queue.
pub const SYMMETRIC_KEY_PAIR: [u8; 2] = [0x6d, 0x5a];

/// Doctor errors. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error(
        "interface {0:?} does not exist: check the name with `ip link` (and the network namespace)"
    )]
    NoSuchInterface(String),
    #[error("`ethtool` is not installed: `apt-get install -y ethtool`")]
    NoEthtool,
    #[error("running `{cmd}`: {err}")]
    Command { cmd: String, err: String },
}

/// RX/TX channels (queues).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Channels {
    pub rx: u32,
    pub tx: u32,
    pub combined: u32,
    pub max_rx: u32,
    pub max_combined: u32,
}

impl Channels {
    /// RX queues in use.
    pub fn rx_queues(&self) -> u32 {
        (self.rx + self.combined).max(1)
    }
}

/// RSS indirection state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rss {
    pub key: Vec<u8>,
    pub hfunc: Option<String>,
}

impl Rss {
    /// Whether the key is 0x6d5a repeated (symmetric Toeplitz).
    pub fn symmetric(&self) -> bool {
        !self.key.is_empty()
            && self
                .key
                .chunks(2)
                .all(|c| c == &SYMMETRIC_KEY_PAIR[..c.len()])
    }
}

/// XDP capabilities of the interface, as found by the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpSupport {
    pub native: bool,
    pub zero_copy: bool,
}

/// One problem and the commands that fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub what: String,
    pub fix: Vec<String>,
}

impl Problem {
    /// Every command that would fix one of `problems`, in order.
    pub fn fix_commands(problems: &[Problem]) -> Vec<String> {
        problems
            .iter()
            .flat_map(|p| p.fix.iter().cloned())
            .collect()
    }
}

/// What `inspect` found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub iface: String,
    pub driver: Option<String>,
    pub up: bool,
    pub mtu: Option<u32>,
    pub promiscuous: bool,
    pub channels: Option<Channels>,
    pub rss: Option<Rss>,
    /// (rx, rx max) ring entries.
    pub rx_ring: Option<(u32, u32)>,
    /// Receive offloads that change what the capture sees: (ethtool name, on, fixed).
    pub offloads: Vec<(String, bool, bool)>,
    pub xdp: Option<XdpSupport>,
    pub problems: Vec<Problem>,
}

/// Receive-side features that must be off: they merge or rewrite frames
/// before the capture sees them.
const MUST_BE_OFF: &[(&str, &str)] = &[
    ("generic-receive-offload", "gro"),
    ("large-receive-offload", "lro"),
    ("rx-gro-hw", "rx-gro-hw"),
    ("rx-vlan-offload", "rxvlan"),
    ("rx-gro-list", "rx-gro-list"),
    ("rx-udp-gro-forwarding", "rx-udp-gro-forwarding"),
];

fn ethtool(args: &[&str]) -> Result<Option<String>, DoctorError> {
    match Command::new("ethtool").args(args).output() {
        Ok(o) if o.status.success() => Ok(Some(String::from_utf8_lossy(&o.stdout).into_owned())),
        Ok(_) => Ok(None), // not supported by this driver
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DoctorError::NoEthtool),
        Err(e) => Err(DoctorError::Command {
            cmd: format!("ethtool {}", args.join(" ")),
            err: e.to_string(),
        }),
    }
}

fn sysfs(iface: &str, f: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/{f}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Reads the interface's state and lists its problems.
pub fn inspect(iface: &str) -> Result<Report, DoctorError> {
    if sysfs(iface, "ifindex").is_none() {
        return Err(DoctorError::NoSuchInterface(iface.to_string()));
    }
    let flags = sysfs(iface, "flags")
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    let mut r = Report {
        iface: iface.to_string(),
        up: flags & 0x1 != 0,
        promiscuous: flags & 0x100 != 0,
        mtu: sysfs(iface, "mtu").and_then(|m| m.parse().ok()),
        ..Default::default()
    };
    r.driver = ethtool(&["-i", iface])?.and_then(|s| parse_kv(&s, "driver"));
    r.channels = ethtool(&["-l", iface])?.map(|s| parse_channels(&s));
    r.rss = ethtool(&["-x", iface])?.and_then(|s| parse_rss(&s));
    r.rx_ring = ethtool(&["-g", iface])?.and_then(|s| parse_rings(&s));
    r.offloads = ethtool(&["-k", iface])?
        .map(|s| parse_features(&s))
        .unwrap_or_default();
    r.diagnose();
    Ok(r)
}

impl Report {
    /// Records XDP support found by the caller and re-diagnoses.
    pub fn set_xdp(&mut self, xdp: XdpSupport) {
        self.xdp = Some(xdp);
        self.diagnose();
    }

    fn diagnose(&mut self) {
        let i = &self.iface;
        let mut p = Vec::new();
        if !self.up {
            p.push(Problem {
                what: "interface is down".into(),
                fix: vec![format!("ip link set dev {i} up")],
            });
        }
        if !self.promiscuous {
            p.push(Problem {
                what: "promiscuous mode is off (mirrored frames to other MACs may be dropped by the NIC)".into(),
                fix: vec![format!("ip link set dev {i} promisc on")],
            });
        }
        if let Some(m) = self.mtu {
            if m > 3498 {
                p.push(Problem {
                    what: format!(
                        "MTU {m} is above what most drivers allow with native XDP (3498)"
                    ),
                    fix: vec![format!("ip link set dev {i} mtu 3498")],
                });
            }
        }
        for (name, on, fixed) in &self.offloads {
            if *on {
                let short = MUST_BE_OFF
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, s)| *s)
                    .unwrap_or(name);
                p.push(Problem {
                    what: format!(
                        "{name} is on{}: frames are merged or rewritten before capture",
                        if *fixed { " (fixed by the driver)" } else { "" }
                    ),
                    fix: if *fixed {
                        vec![]
                    } else {
                        vec![format!("ethtool -K {i} {short} off")]
                    },
                });
            }
        }
        if let Some(c) = self.channels {
            if c.max_combined > c.combined && c.combined > 0 {
                p.push(Problem {
                    what: format!(
                        "{} of {} combined queues in use",
                        c.combined, c.max_combined
                    ),
                    fix: vec![format!("ethtool -L {i} combined {}", c.max_combined)],
                });
            }
            if c.rx_queues() > 1 {
                match &self.rss {
                    Some(rss) if rss.symmetric() => {}
                    Some(rss) => {
                        let key = symmetric_key(rss.key.len().max(40));
                        p.push(Problem {
                            what: "RSS hash key is not symmetric: the two directions of a flow land on different queues (or use shard = \"software\")".into(),
                            fix: vec![
                                format!("ethtool -X {i} hkey {key} hfunc toeplitz"),
                                format!("ethtool -N {i} rx-flow-hash tcp4 sdfn"),
                                format!("ethtool -N {i} rx-flow-hash udp4 sdfn"),
                                format!("ethtool -N {i} rx-flow-hash tcp6 sdfn"),
                                format!("ethtool -N {i} rx-flow-hash udp6 sdfn"),
                            ],
                        });
                    }
                    None => p.push(Problem {
                        what: "cannot read the RSS key: use shard = \"software\" for flow affinity"
                            .into(),
                        fix: vec![],
                    }),
                }
            }
        }
        if let Some((cur, max)) = self.rx_ring {
            if cur < max {
                p.push(Problem {
                    what: format!("RX ring {cur} below maximum {max}"),
                    fix: vec![format!("ethtool -G {i} rx {max}")],
                });
            }
        }
        if let Some(x) = self.xdp {
            if !x.native {
                p.push(Problem {
                    what: "driver has no native XDP: AF_XDP runs in generic mode (slow); consider AF_PACKET".into(),
                    fix: vec![],
                });
            } else if !x.zero_copy {
                p.push(Problem {
                    what: "driver has no AF_XDP zero-copy: copy mode will be used".into(),
                    fix: vec![],
                });
            }
        }
        self.problems = p;
    }

    /// Every command that would fix a problem, in order.
    pub fn fix_commands(&self) -> Vec<String> {
        Problem::fix_commands(&self.problems)
    }

    /// Human-readable report.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let yn = |b: bool| if b { "on" } else { "off" };
        let _ = writeln!(
            s,
            "interface   {} (driver {})",
            self.iface,
            self.driver.as_deref().unwrap_or("?")
        );
        let _ = writeln!(
            s,
            "link        {}, MTU {}, promiscuous {}",
            if self.up { "up" } else { "down" },
            self.mtu.map_or("?".into(), |m| m.to_string()),
            yn(self.promiscuous)
        );
        match self.channels {
            Some(c) => {
                let _ = writeln!(
                    s,
                    "queues      rx {} tx {} combined {} (max rx {} combined {})",
                    c.rx, c.tx, c.combined, c.max_rx, c.max_combined
                );
            }
            None => {
                let _ = writeln!(s, "queues      unknown (ethtool -l not supported)");
            }
        }
        match &self.rss {
            Some(r) => {
                let key: Vec<String> = r.key.iter().map(|b| format!("{b:02x}")).collect();
                let _ = writeln!(
                    s,
                    "RSS key     {} ({}symmetric, hfunc {})",
                    key.join(":"),
                    if r.symmetric() { "" } else { "NOT " },
                    r.hfunc.as_deref().unwrap_or("?")
                );
            }
            None => {
                let _ = writeln!(s, "RSS key     unknown (ethtool -x not supported)");
            }
        }
        match self.rx_ring {
            Some((c, m)) => {
                let _ = writeln!(s, "RX ring     {c} (max {m})");
            }
            None => {
                let _ = writeln!(s, "RX ring     unknown (ethtool -g not supported)");
            }
        }
        for (n, on, fixed) in &self.offloads {
            let _ = writeln!(
                s,
                "offload     {n}: {}{}",
                yn(*on),
                if *fixed { " [fixed]" } else { "" }
            );
        }
        match self.xdp {
            Some(x) => {
                let _ = writeln!(
                    s,
                    "XDP         native {}, zero-copy {}",
                    yn(x.native),
                    yn(x.zero_copy)
                );
            }
            None => {
                let _ = writeln!(s, "XDP         not checked");
            }
        }
        if self.problems.is_empty() {
            let _ = writeln!(s, "\nno problems found");
        } else {
            let _ = writeln!(s, "\n{} problem(s):", self.problems.len());
            for p in &self.problems {
                let _ = writeln!(s, "  - {}", p.what);
                for f in &p.fix {
                    let _ = writeln!(s, "      fix: {f}");
                }
            }
        }
        s
    }
}

/// Result of applying one fix command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub command: String,
    pub ok: bool,
    pub output: String,
}

/// Runs every fix command of `report` (needs root). Returns each outcome;
/// re-run [`inspect`] to see what is left.
pub fn apply(report: &Report) -> Vec<Applied> {
    report
        .fix_commands()
        .into_iter()
        .map(|cmd| {
            let mut parts = cmd.split_whitespace();
            let prog = parts.next().unwrap_or_default();
            match Command::new(prog).args(parts).output() {
                Ok(o) => Applied {
                    ok: o.status.success(),
                    output: format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                    .trim()
                    .to_string(),
                    command: cmd,
                },
                Err(e) => Applied {
                    ok: false,
                    output: e.to_string(),
                    command: cmd,
                },
            }
        })
        .collect()
}

/// `6d:5a:6d:5a:...` of `len` bytes.
pub fn symmetric_key(len: usize) -> String {
    (0..len)
        .map(|i| format!("{:02x}", SYMMETRIC_KEY_PAIR[i % 2]))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_kv(s: &str, key: &str) -> Option<String> {
    s.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix(':')
            .map(|v| v.trim().to_string())
    })
}

fn num(v: &str) -> u32 {
    v.trim().parse().unwrap_or(0)
}

pub(crate) fn parse_channels(s: &str) -> Channels {
    let mut c = Channels::default();
    let mut current = false;
    for l in s.lines() {
        if l.starts_with("Current hardware settings") {
            current = true;
        }
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        match (k.trim(), current) {
            ("RX", false) => c.max_rx = num(v),
            ("Combined", false) => c.max_combined = num(v),
            ("RX", true) => c.rx = num(v),
            ("TX", true) => c.tx = num(v),
            ("Combined", true) => c.combined = num(v),
            _ => {}
        }
    }
    c
}

pub(crate) fn parse_rss(s: &str) -> Option<Rss> {
    let mut lines = s.lines();
    let mut rss = Rss::default();
    while let Some(l) = lines.next() {
        if l.starts_with("RSS hash key") {
            let k = lines.next()?.trim();
            rss.key = k
                .split(':')
                .filter_map(|b| u8::from_str_radix(b, 16).ok())
                .collect();
        } else if let Some(rest) = l.trim().strip_suffix(": on") {
            // "    toeplitz: on" under "RSS hash function:"
            rss.hfunc = Some(rest.trim().to_string());
        }
    }
    (!rss.key.is_empty()).then_some(rss)
}

pub(crate) fn parse_rings(s: &str) -> Option<(u32, u32)> {
    let mut max = None;
    let mut cur = None;
    let mut in_current = false;
    for l in s.lines() {
        if l.starts_with("Current hardware settings") {
            in_current = true;
        }
        if let Some(v) = l.strip_prefix("RX:") {
            if in_current {
                cur = Some(num(v));
            } else {
                max = Some(num(v));
            }
        }
    }
    Some((cur?, max?))
}

pub(crate) fn parse_features(s: &str) -> Vec<(String, bool, bool)> {
    s.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            MUST_BE_OFF.iter().any(|(n, _)| *n == k).then(|| {
                (
                    k.to_string(),
                    v.trim().starts_with("on"),
                    v.contains("[fixed]"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANNELS: &str = "Channel parameters for eth0:\nPre-set maximums:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\t1\nCombined:\t8\nCurrent hardware settings:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\t1\nCombined:\t4\n";
    const RSS: &str = "RX flow hash indirection table for eth0 with 4 RX ring(s):\n    0:      0     1     2     3\nRSS hash key:\n6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a:6d:5a\nRSS hash function:\n    toeplitz: on\n    xor: off\n";
    const RINGS: &str = "Ring parameters for eth0:\nPre-set maximums:\nRX:\t\t4096\nRX Mini:\tn/a\nTX:\t\t4096\nCurrent hardware settings:\nRX:\t\t512\nRX Mini:\tn/a\nTX:\t\t512\n";
    const FEATURES: &str = "Features for eth0:\nrx-checksumming: on\ngeneric-receive-offload: on\nlarge-receive-offload: off [fixed]\nrx-vlan-offload: on\nrx-gro-hw: off [fixed]\n";

    #[test]
    fn parses_ethtool_output() {
        let c = parse_channels(CHANNELS);
        assert_eq!((c.combined, c.max_combined, c.rx_queues()), (4, 8, 4));
        let r = parse_rss(RSS).unwrap();
        assert_eq!(r.key.len(), 40);
        assert!(r.symmetric());
        assert_eq!(r.hfunc.as_deref(), Some("toeplitz"));
        assert_eq!(parse_rings(RINGS), Some((512, 4096)));
        let f = parse_features(FEATURES);
        assert!(f.contains(&("generic-receive-offload".into(), true, false)));
        assert!(f.contains(&("large-receive-offload".into(), false, true)));
    }

    #[test]
    fn diagnoses_and_fixes() {
        let mut rss = parse_rss(RSS).unwrap();
        rss.key[0] = 0x11;
        let mut r = Report {
            iface: "eth0".into(),
            up: true,
            promiscuous: false,
            mtu: Some(1500),
            channels: Some(parse_channels(CHANNELS)),
            rss: Some(rss),
            rx_ring: parse_rings(RINGS),
            offloads: parse_features(FEATURES),
            ..Default::default()
        };
        r.set_xdp(XdpSupport {
            native: true,
            zero_copy: true,
        });
        let cmds = r.fix_commands();
        for want in [
            "ip link set dev eth0 promisc on",
            "ethtool -K eth0 gro off",
            "ethtool -K eth0 rxvlan off",
            "ethtool -L eth0 combined 8",
            "ethtool -G eth0 rx 4096",
            "ethtool -N eth0 rx-flow-hash udp4 sdfn",
        ] {
            assert!(
                cmds.iter().any(|c| c == want),
                "missing {want:?} in {cmds:#?}"
            );
        }
        assert!(cmds
            .iter()
            .any(|c| c.starts_with("ethtool -X eth0 hkey 6d:5a:6d:5a")
                && c.ends_with("hfunc toeplitz")));
        assert!(
            !cmds.iter().any(|c| c.contains("lro")),
            "fixed features get no command"
        );
        assert!(r.render().contains("NOT symmetric"));
    }

    #[test]
    fn symmetric_key_text() {
        assert_eq!(symmetric_key(4), "6d:5a:6d:5a");
    }

    #[test]
    fn missing_interface() {
        assert!(matches!(
            inspect("ft-nope0"),
            Err(DoctorError::NoSuchInterface(_))
        ));
    }
}

#[cfg(test)]
mod live_tests {
    use super::*;

    #[test]
    fn inspect_loopback() {
        match inspect("lo") {
            Ok(r) => {
                assert!(r.up);
                assert!(!r.render().is_empty());
            }
            Err(DoctorError::NoEthtool) => {
                eprintln!("SKIPPED inspect_loopback: ethtool not installed")
            }
            Err(e) => panic!("{e}"),
        }
    }
}
