//! Export rules compiled from `[[export.rules]]` or from the compact
//! one-line syntax of `flowtap export --rule`, and their evaluation.
//!
//! A rule's conditions fall in three groups, decided at different times:
//! - flow conditions (addresses, ports, protocol, VLAN, tunnel): known when
//!   the flow starts, decided once;
//! - application conditions (`app_proto`, `http.*`, `dns.*`, `tls.*`): all
//!   the conditions of one protocol must hold on one event (one HTTP
//!   transaction, one DNS query, one TLS handshake); decided when an event
//!   matches, or false once the flow's protocol is known to be another one
//!   (or none);
//! - KPI conditions (`flow_bytes`, `flow_packets`: at least N): become true
//!   while the flow runs.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use dissect::app::registry::{FieldValue, MatchKind};
use dissect::app::{AppProto, Peek};
use dissect::packet::TunnelKind;
use output::pcap::{ExportAction, ExportConfig, ExportRuleOutput, PcapCompression, PcapFormat};
use serde::Deserialize;

use super::config::{ExportSection, MatchSection, RuleSection, Size, Values};

/// Rules evaluated per flow are tracked in a 64-bit mask.
pub const MAX_RULES: usize = 64;

/// A rule that cannot be used: which rule, which field, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// `export.rules[2] "evil"` or `--rule "name=evil,..."`.
    pub rule: String,
    pub field: String,
    pub why: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "export rule {}: {}: {}", self.rule, self.field, self.why)
    }
}

impl std::error::Error for RuleError {}

/// A name pattern: exact or with `*` / `?` wildcards, case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePat {
    Exact(String),
    /// `*.example.com`: names ending in `.example.com`.
    Suffix(String),
    Glob(String),
}

impl NamePat {
    pub fn new(p: &str) -> NamePat {
        let p = p.trim().to_ascii_lowercase();
        let p = p.strip_suffix('.').map(str::to_string).unwrap_or(p);
        if !p.contains(['*', '?']) {
            NamePat::Exact(p)
        } else if let Some(rest) = p.strip_prefix('*') {
            if !rest.contains(['*', '?']) {
                NamePat::Suffix(rest.to_string())
            } else {
                NamePat::Glob(p)
            }
        } else {
            NamePat::Glob(p)
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name);
        match self {
            NamePat::Exact(e) => name.eq_ignore_ascii_case(e),
            NamePat::Suffix(s) => {
                name.len() >= s.len()
                    && name.as_bytes()[name.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            }
            NamePat::Glob(g) => glob_match(g.as_bytes(), name.as_bytes()),
        }
    }
}

/// `*` (any run, also empty) and `?` (one byte) over ASCII-lowercased
/// `text`; `pat` is lowercase. Iterative with one backtrack point, so it is
/// linear-ish and never recursive.
fn glob_match(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let c = text[t].to_ascii_lowercase();
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&b) if b == b'?' || b == c => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&b| b == b'*')
}

/// An address prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    v6: bool,
    bits: u128,
    mask: u128,
}

impl Net {
    fn parse(s: &str) -> Result<Net, String> {
        let (a, p) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
        let addr: IpAddr = a.parse().map_err(|_| format!("`{s}` is not a CIDR"))?;
        let max = if addr.is_ipv4() { 32u32 } else { 128 };
        let prefix: u32 = if p.is_empty() {
            max
        } else {
            p.parse()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("bad prefix in `{s}` (0..={max})"))?
        };
        let (v6, bits) = addr_bits(addr);
        let width = if v6 { 128 } else { 32 };
        let mask = if prefix == 0 {
            0
        } else {
            (u128::MAX << (width - prefix)) & width_mask(width)
        };
        Ok(Net {
            v6,
            bits: bits & mask,
            mask,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (v6, bits) = addr_bits(ip);
        v6 == self.v6 && bits & self.mask == self.bits
    }
}

fn width_mask(width: u32) -> u128 {
    if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    }
}

fn addr_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

/// Inclusive ranges of a number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges(Vec<(u32, u32)>);

impl Ranges {
    fn parse(v: &Values, max: u32, what: &str) -> Result<Ranges, String> {
        let mut out = Vec::new();
        for s in &v.0 {
            let one = |x: &str| -> Result<u32, String> {
                x.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| format!("`{s}` is not a {what} (0..={max}) or a range a-b"))
            };
            let (lo, hi) = match s.split_once('-') {
                Some((a, b)) => (one(a)?, one(b)?),
                None => {
                    let n = one(s)?;
                    (n, n)
                }
            };
            if lo > hi {
                return Err(format!("empty range `{s}`"));
            }
            out.push((lo, hi));
        }
        Ok(Ranges(out))
    }

    fn contains(&self, n: u32) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= n && n <= hi)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Conditions on what a flow's first packet says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowConds {
    cidr: Vec<Net>,
    src_cidr: Vec<Net>,
    dst_cidr: Vec<Net>,
    port: Ranges,
    src_port: Ranges,
    dst_port: Ranges,
    proto: Vec<u8>,
    vlan: Vec<u16>,
    /// `Some(None)` in the list = no tunnel.
    tunnel: Vec<Option<TunnelKind>>,
}

/// What is known of a flow when it starts (src = originator).
#[derive(Debug, Clone, Copy)]
pub struct FlowFacts<'a> {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub proto: u8,
    pub vlans: &'a [u16],
    pub tunnel: Option<TunnelKind>,
}

impl FlowConds {
    fn is_empty(&self) -> bool {
        *self == FlowConds::default()
    }

    pub fn matches(&self, f: &FlowFacts<'_>) -> bool {
        let any_net =
            |nets: &[Net], ip: IpAddr| nets.is_empty() || nets.iter().any(|n| n.contains(ip));
        let has_ports = matches!(f.proto, 6 | 17 | 132);
        (self.cidr.is_empty()
            || self
                .cidr
                .iter()
                .any(|n| n.contains(f.src) || n.contains(f.dst)))
            && any_net(&self.src_cidr, f.src)
            && any_net(&self.dst_cidr, f.dst)
            && (self.port.is_empty()
                || (has_ports
                    && (self.port.contains(u32::from(f.src_port))
                        || self.port.contains(u32::from(f.dst_port)))))
            && (self.src_port.is_empty()
                || (has_ports && self.src_port.contains(u32::from(f.src_port))))
            && (self.dst_port.is_empty()
                || (has_ports && self.dst_port.contains(u32::from(f.dst_port))))
            && (self.proto.is_empty() || self.proto.contains(&f.proto))
            && (self.vlan.is_empty() || f.vlans.iter().any(|v| self.vlan.contains(v)))
            && (self.tunnel.is_empty() || self.tunnel.contains(&f.tunnel))
    }
}

/// How one protocol field is tested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldTest {
    /// Any of these names (wildcards, case-insensitive).
    Names(Vec<NamePat>),
    /// Any of these words, exactly but case-insensitively.
    Words(Vec<String>),
    /// A number in one of these ranges.
    Ranges(Ranges),
}

impl FieldTest {
    fn accepts(&self, v: FieldValue<'_>) -> bool {
        match (self, v) {
            (FieldTest::Names(pats), FieldValue::Str(s)) => pats.iter().any(|p| p.matches(s)),
            (FieldTest::Words(words), FieldValue::Str(s)) => {
                words.iter().any(|w| w.eq_ignore_ascii_case(s))
            }
            (FieldTest::Ranges(r), FieldValue::Num(n)) => r.contains(n),
            _ => false,
        }
    }
}

/// One condition on a field the protocol declares for export rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCond {
    /// Index in the protocol's `EXPORT_FIELDS`.
    pub field: usize,
    pub test: FieldTest,
}

/// Conditions that must all hold on one application event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AppConds {
    #[default]
    None,
    /// `match.PROTO.FIELD` conditions, all of one protocol.
    Fields {
        proto: AppProto,
        conds: Vec<FieldCond>,
    },
}

impl AppConds {
    pub fn proto(&self) -> Option<AppProto> {
        match self {
            AppConds::None => None,
            AppConds::Fields { proto, .. } => Some(*proto),
        }
    }

    /// The conditions only use what the first part of a transaction says
    /// (HTTP request head, ClientHello, DNS query), so a transaction can be
    /// judged before its event (see [`Peek`]).
    pub fn decidable_early(&self) -> bool {
        match self {
            AppConds::None => false,
            AppConds::Fields { proto, conds } => conds
                .iter()
                .all(|c| proto.info().export_fields[c.field].early),
        }
    }

    /// `Some(reason)` when the event satisfies every condition: each
    /// condition's first matching value, as `PROTO.FIELD=value`.
    pub fn matches(&self, ev: Peek<'_>) -> Option<String> {
        let (proto, conds) = match self {
            AppConds::None => return Some(format!("app_proto={}", ev.proto().as_str())),
            AppConds::Fields { proto, conds } => (*proto, conds),
        };
        if ev.proto() != proto {
            return None;
        }
        let fields = proto.info().export_fields;
        let mut why = Vec::with_capacity(conds.len());
        for c in conds {
            let mut hit = None;
            ev.export_values(c.field, &mut |v| {
                if hit.is_none() && c.test.accepts(v) {
                    hit = Some(match v {
                        FieldValue::Str(s) => s.to_string(),
                        FieldValue::Num(n) => n.to_string(),
                    });
                }
            });
            why.push(format!(
                "{}.{}={}",
                proto.as_str(),
                fields[c.field].name,
                hit?
            ));
        }
        Some(if why.is_empty() {
            format!("app_proto={}", proto.as_str())
        } else {
            why.join(" ")
        })
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub output: ExportRuleOutput,
    pub flow: FlowConds,
    /// Alternatives for the flow's application protocol (empty: any).
    pub app_proto: Vec<AppProto>,
    pub app: AppConds,
    /// The rule needs an application event (or at least a detected protocol).
    pub needs_app: bool,
    /// Its application conditions can be judged on a transaction's first
    /// part ([`AppConds::decidable_early`]).
    pub early: bool,
    pub min_bytes: Option<u64>,
    pub min_packets: Option<u64>,
    /// The rule's flow conditions in the compact syntax (the reason of a
    /// match that had nothing else to say).
    pub flow_reason: String,
}

impl Rule {
    pub fn per_flow_limits(&self) -> (Option<u64>, Option<u64>) {
        match self.output.action {
            ExportAction::PerFlow {
                max_packets,
                max_bytes,
            } => (max_packets, max_bytes),
            ExportAction::Shared { .. } => (None, None),
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self.output.action, ExportAction::Shared { .. })
    }

    /// The KPI conditions hold for a flow with these totals.
    pub fn kpis_met(&self, packets: u64, bytes: u64) -> bool {
        self.min_packets.is_none_or(|n| packets >= n) && self.min_bytes.is_none_or(|n| bytes >= n)
    }

    pub fn has_kpis(&self) -> bool {
        self.min_packets.is_some() || self.min_bytes.is_some()
    }

    /// Whether a flow whose protocol is `proto` (None: not one we parse)
    /// can still satisfy the application conditions.
    pub fn app_possible(&self, proto: Option<AppProto>) -> bool {
        if !self.needs_app {
            return true;
        }
        match proto {
            None => false,
            Some(p) => {
                (self.app_proto.is_empty() || self.app_proto.contains(&p))
                    && self.app.proto().is_none_or(|q| q == p)
            }
        }
    }

    /// `Some(reason)` when `ev` satisfies the application conditions.
    pub fn app_matches(&self, ev: Peek<'_>) -> Option<String> {
        if !self.app_proto.is_empty() && !self.app_proto.contains(&ev.proto()) {
            return None;
        }
        self.app.matches(ev)
    }
}

/// Every rule, compiled, and the settings of the pre-trigger pool.
#[derive(Debug, Clone)]
pub struct ExportRules {
    pub rules: Vec<Rule>,
    /// Shared rules without any condition: every frame goes to them, before
    /// decoding (a full-capture ring; also non-IP and undecodable frames).
    pub capture_all: Vec<usize>,
    /// Rules evaluated per flow (all the others), as a mask.
    pub flow_rules: u64,
    pub buffer_packets: u32,
    pub buffer_bytes: u32,
    pub pool_bytes: usize,
    pub fragment_bytes: usize,
    /// Bytes of a frame worth buffering (the largest snaplen; 0 = whole).
    pub buffer_snaplen: u32,
    pub queue_chunks: usize,
}

impl ExportRules {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What the writer needs. `block_when_full`: offline replay waits for
    /// the writer (lossless), live capture drops and counts.
    pub fn writer_config(&self, block_when_full: bool) -> ExportConfig {
        ExportConfig {
            rules: self.rules.iter().map(|r| r.output.clone()).collect(),
            queue_chunks: self.queue_chunks,
            block_when_full,
        }
    }
}

/// Compiles and checks every rule of the section.
pub fn compile(sec: &ExportSection) -> Result<ExportRules, RuleError> {
    let mut rules = Vec::with_capacity(sec.rules.len());
    for (i, r) in sec.rules.iter().enumerate() {
        let label = if r.name.is_empty() {
            format!("export.rules[{i}]")
        } else {
            format!("export.rules[{i}] `{}`", r.name)
        };
        if let Some(j) = sec.rules[..i].iter().position(|o| o.name == r.name) {
            return Err(RuleError {
                rule: label,
                field: "name".into(),
                why: format!("the name is already used by export.rules[{j}]"),
            });
        }
        rules.push(compile_rule(r, &label)?);
    }
    if rules.len() > MAX_RULES {
        return Err(RuleError {
            rule: format!("export.rules[{MAX_RULES}]"),
            field: "rules".into(),
            why: format!("at most {MAX_RULES} rules"),
        });
    }
    let mut capture_all = Vec::new();
    let mut flow_rules = 0u64;
    for (i, r) in rules.iter().enumerate() {
        let unconditional =
            r.flow.is_empty() && !r.needs_app && !r.has_kpis() && r.app_proto.is_empty();
        if unconditional && r.is_shared() {
            capture_all.push(i);
        } else {
            flow_rules |= 1 << i;
        }
    }
    let buffer_snaplen = if rules.iter().any(|r| r.output.snaplen == 0) {
        0
    } else {
        rules.iter().map(|r| r.output.snaplen).max().unwrap_or(0)
    };
    let bad = |field: &str, why: &str| RuleError {
        rule: "[export]".into(),
        field: field.into(),
        why: why.into(),
    };
    let buffer_bytes = u32::try_from(sec.buffer_bytes.0)
        .map_err(|_| bad("export.buffer_bytes", "must be below 4G"))?;
    Ok(ExportRules {
        rules,
        capture_all,
        flow_rules,
        buffer_packets: sec.buffer_packets,
        buffer_bytes,
        pool_bytes: usize::try_from(sec.pool_bytes_per_worker.0)
            .map_err(|_| bad("export.pool_bytes_per_worker", "too large"))?,
        fragment_bytes: usize::try_from(sec.fragment_bytes_per_worker.0)
            .map_err(|_| bad("export.fragment_bytes_per_worker", "too large"))?,
        buffer_snaplen,
        queue_chunks: sec.queue_chunks,
    })
}

fn compile_rule(r: &RuleSection, label: &str) -> Result<Rule, RuleError> {
    let err = |field: &str, why: String| RuleError {
        rule: label.to_string(),
        field: field.to_string(),
        why,
    };
    if r.name.is_empty() {
        return Err(err("name", "missing (every rule needs a name)".into()));
    }
    if !r
        .name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(err(
            "name",
            format!("`{}` may only hold A-Z a-z 0-9 _ -", r.name),
        ));
    }
    if r.dir.is_empty() {
        return Err(err("dir", "missing (the directory the files go to)".into()));
    }
    let format = match r.format.as_str() {
        "pcapng" => PcapFormat::Pcapng,
        "pcap" => PcapFormat::Pcap,
        o => return Err(err("format", format!("`{o}`: use pcapng or pcap"))),
    };
    let compression = match r.compression.as_str() {
        "none" | "" => PcapCompression::None,
        "gzip" => PcapCompression::Gzip,
        o => return Err(err("compression", format!("`{o}`: use none or gzip"))),
    };
    let shared_only = |field: &str, set: bool| {
        if set && r.action != "shared" {
            Err(err(field, "only for action = \"shared\"".into()))
        } else {
            Ok(())
        }
    };
    let flow_only = |field: &str, set: bool| {
        if set && r.action != "flow" {
            Err(err(field, "only for action = \"flow\"".into()))
        } else {
            Ok(())
        }
    };
    shared_only("rotate_bytes", r.rotate_bytes.is_some())?;
    shared_only("rotate_secs", r.rotate_secs.is_some())?;
    flow_only("max_packets", r.max_packets.is_some())?;
    flow_only("max_bytes", r.max_bytes.is_some())?;
    let action = match r.action.as_str() {
        "flow" => ExportAction::PerFlow {
            max_packets: r.max_packets,
            max_bytes: r.max_bytes.map(|s| s.0),
        },
        "shared" => ExportAction::Shared {
            rotate_bytes: r.rotate_bytes.map_or(64 << 20, |s| s.0),
            rotate_secs: r.rotate_secs,
        },
        o => return Err(err("action", format!("`{o}`: use flow or shared"))),
    };
    if r.max_packets == Some(0) {
        return Err(err("max_packets", "must be at least 1".into()));
    }
    if r.rotate_bytes.is_some_and(|s| s.0 < 4096) || r.rotate_secs == Some(0) {
        return Err(err(
            if r.rotate_secs == Some(0) {
                "rotate_secs"
            } else {
                "rotate_bytes"
            },
            "too small (at least 4K / 1 second)".into(),
        ));
    }
    if r.retain_files == Some(0) {
        return Err(err("retain_files", "must be at least 1".into()));
    }
    let mut perms = output::perms::FilePerms::default();
    if let Some(v) = &r.file_mode {
        perms.mode = output::perms::FilePerms::parse_mode(v).map_err(|e| err("file_mode", e))?;
    }
    if let Some(v) = &r.group {
        perms.gid = Some(output::perms::FilePerms::group_id(v).map_err(|e| err("group", e))?);
    }
    let m = &r.matches;
    let (flow, flow_reason) = compile_flow(m).map_err(|(f, w)| err(&f, w))?;
    let app_proto = m
        .app_proto
        .0
        .iter()
        .map(|p| {
            AppProto::parse(&p.to_ascii_lowercase()).ok_or_else(|| {
                err(
                    "match.app_proto",
                    format!("`{p}`: use {}", AppProto::names_list()),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let app = compile_app(m).map_err(|(f, w)| err(&f, w))?;
    if let Some(p) = app.proto() {
        if !app_proto.is_empty() && !app_proto.contains(&p) {
            return Err(err(
                "match.app_proto",
                format!(
                    "excludes {}, which the {}.* conditions need",
                    p.as_str(),
                    p.as_str()
                ),
            ));
        }
    }
    let needs_app = !app_proto.is_empty() || app != AppConds::None;
    if needs_app && flow.proto.iter().all(|p| !matches!(p, 6 | 17)) && !flow.proto.is_empty() {
        return Err(err(
            "match.proto",
            "application conditions need tcp or udp".into(),
        ));
    }
    Ok(Rule {
        name: r.name.clone(),
        output: ExportRuleOutput {
            name: r.name.clone(),
            dir: PathBuf::from(&r.dir),
            action,
            format,
            snaplen: r.snaplen,
            compression,
            retain_files: r.retain_files,
            retain_bytes: r.retain_bytes.map(|s| s.0),
            perms,
        },
        flow,
        app_proto,
        early: app.decidable_early(),
        app,
        needs_app,
        min_bytes: m.flow_bytes.map(|s| s.0),
        min_packets: m.flow_packets,
        flow_reason,
    })
}

/// The `match.PROTO.FIELD` conditions, checked against what each protocol
/// declares: all of one protocol, values of the field's kind.
fn compile_app(m: &MatchSection) -> Result<AppConds, (String, String)> {
    let mut found: Option<(AppProto, Vec<FieldCond>)> = None;
    for (key, table) in &m.app {
        let at = format!("match.{key}");
        let proto = AppProto::parse(key).ok_or_else(|| (at.clone(), "unknown key".to_string()))?;
        let info = proto.info();
        let toml::Value::Table(table) = table else {
            return Err((at, "expected a table of fields".into()));
        };
        if let Some((other, _)) = &found {
            return Err((
                "match".into(),
                format!(
                    "{}.* and {key}.* conditions cannot both hold on one transaction: use one protocol per rule",
                    other.as_str()
                ),
            ));
        }
        let mut conds = Vec::new();
        for (name, value) in table {
            let at = format!("match.{key}.{name}");
            let Some((field, decl)) = info.export_field(name) else {
                let names: Vec<&str> = info.export_fields.iter().map(|f| f.name).collect();
                return Err((at, format!("unknown field (expected {})", names.join(", "))));
            };
            let values =
                Values::deserialize(value.clone()).map_err(|e| (at.clone(), e.to_string()))?;
            if values.is_empty() {
                continue;
            }
            let test =
                match decl.kind {
                    MatchKind::Name => {
                        FieldTest::Names(values.0.iter().map(|s| NamePat::new(s)).collect())
                    }
                    MatchKind::Word => FieldTest::Words(values.0.clone()),
                    MatchKind::Hex(digits) => {
                        if let Some(h) = values.0.iter().find(|h| {
                            h.len() != digits || !h.bytes().all(|b| b.is_ascii_hexdigit())
                        }) {
                            return Err((
                                at,
                                format!("`{h}` is not a {} ({digits} hex digits)", decl.doc),
                            ));
                        }
                        FieldTest::Words(values.0.clone())
                    }
                    MatchKind::Number(max) => FieldTest::Ranges(
                        Ranges::parse(&values, max, decl.name).map_err(|w| (at, w))?,
                    ),
                };
            conds.push(FieldCond { field, test });
        }
        if !conds.is_empty() {
            // Conditions in the protocol's declaration order (so the
            // reason of a match reads the same whatever the rule's order).
            conds.sort_by_key(|c| c.field);
            found = Some((proto, conds));
        }
    }
    Ok(match found {
        Some((proto, conds)) => AppConds::Fields { proto, conds },
        None => AppConds::None,
    })
}

fn compile_flow(m: &MatchSection) -> Result<(FlowConds, String), (String, String)> {
    let nets = |field: &str, v: &Values| {
        v.0.iter()
            .map(|s| Net::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|w| (format!("match.{field}"), w))
    };
    let ports = |field: &str, v: &Values| {
        Ranges::parse(v, 65535, "port").map_err(|w| (format!("match.{field}"), w))
    };
    let proto = m
        .proto
        .0
        .iter()
        .map(|p| match p.to_ascii_lowercase().as_str() {
            "tcp" => Ok(6),
            "udp" => Ok(17),
            "icmp" => Ok(1),
            "icmpv6" | "ipv6-icmp" => Ok(58),
            "sctp" => Ok(132),
            n => n.parse::<u8>().map_err(|_| {
                (
                    "match.proto".to_string(),
                    format!("`{p}`: use tcp, udp, icmp, icmpv6, sctp or 0..255"),
                )
            }),
        })
        .collect::<Result<Vec<u8>, _>>()?;
    let vlan = m
        .vlan
        .0
        .iter()
        .map(|v| {
            v.parse::<u16>().ok().filter(|n| *n < 4096).ok_or_else(|| {
                (
                    "match.vlan".to_string(),
                    format!("`{v}` is not a VLAN id (0..4095)"),
                )
            })
        })
        .collect::<Result<Vec<u16>, _>>()?;
    let mut tunnel = Vec::new();
    for t in &m.tunnel.0 {
        match t.to_ascii_lowercase().as_str() {
            "none" => tunnel.push(None),
            "gre" => tunnel.push(Some(TunnelKind::Gre)),
            "vxlan" => tunnel.push(Some(TunnelKind::Vxlan)),
            "geneve" => tunnel.push(Some(TunnelKind::Geneve)),
            "erspan" => tunnel.extend([
                Some(TunnelKind::ErspanI),
                Some(TunnelKind::ErspanII),
                Some(TunnelKind::ErspanIII),
            ]),
            "erspan1" => tunnel.push(Some(TunnelKind::ErspanI)),
            "erspan2" => tunnel.push(Some(TunnelKind::ErspanII)),
            "erspan3" => tunnel.push(Some(TunnelKind::ErspanIII)),
            "ipip" => tunnel.push(Some(TunnelKind::IpInIp)),
            "teredo" => tunnel.push(Some(TunnelKind::Teredo)),
            "gtpu" => tunnel.push(Some(TunnelKind::GtpU)),
            o => {
                return Err((
                    "match.tunnel".into(),
                    format!(
                    "`{o}`: use none, gre, vxlan, geneve, erspan, erspan1..3, ipip, teredo or gtpu"
                ),
                ))
            }
        }
    }
    let conds = FlowConds {
        cidr: nets("cidr", &m.cidr)?,
        src_cidr: nets("src_cidr", &m.src_cidr)?,
        dst_cidr: nets("dst_cidr", &m.dst_cidr)?,
        port: ports("port", &m.port)?,
        src_port: ports("src_port", &m.src_port)?,
        dst_port: ports("dst_port", &m.dst_port)?,
        proto,
        vlan,
        tunnel,
    };
    let mut reason = Vec::new();
    for (k, v) in [
        ("cidr", &m.cidr),
        ("src_cidr", &m.src_cidr),
        ("dst_cidr", &m.dst_cidr),
        ("port", &m.port),
        ("src_port", &m.src_port),
        ("dst_port", &m.dst_port),
        ("proto", &m.proto),
        ("vlan", &m.vlan),
        ("tunnel", &m.tunnel),
    ] {
        if !v.is_empty() {
            reason.push(format!("{k}={}", v.0.join("|")));
        }
    }
    Ok((conds, reason.join(" ")))
}

/// Parses the compact one-line rule of `flowtap export --rule`:
/// `key=value` pairs separated by `,`; alternatives of one condition by `|`
/// (or by repeating the key); `\,` and `\|` for literal characters.
///
/// `name=evil,http.host=*.example.com|evil.org,action=flow,dir=out`
///
/// Keys: `name`, `action`, `format`, `snaplen`, `dir`, `compression`,
/// `max_packets`, `max_bytes`, `rotate_bytes`, `rotate_secs`,
/// `retain_files`, `retain_bytes`, and the match conditions (optionally
/// prefixed `match.`): `cidr`, `src_cidr`, `dst_cidr`, `port`, `src_port`,
/// `dst_port`, `proto`, `vlan`, `tunnel`, `app_proto`, `http.host`,
/// `http.uri`, `http.method`, `http.status`, `http.content_type`,
/// `dns.query`, `tls.sni`, `tls.ja3`, `tls.ja4`, `flow_bytes`, `flow_packets`.
pub fn parse_compact(line: &str) -> Result<RuleSection, RuleError> {
    let label = format!("--rule {line:?}");
    let err = |field: &str, why: String| RuleError {
        rule: label.clone(),
        field: field.to_string(),
        why,
    };
    let mut r = RuleSection::default();
    for part in split_unescaped(line, ',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(err(part, "expected key=value".into()));
        };
        let (k, v) = (k.trim(), v.trim());
        let num = |field: &str| -> Result<u64, RuleError> {
            v.parse::<u64>()
                .map_err(|_| err(field, format!("`{v}` is not a number")))
        };
        let size = |field: &str| -> Result<Size, RuleError> {
            Size::parse(v).ok_or_else(|| err(field, format!("`{v}` is not a size")))
        };
        let alts: Vec<String> = split_unescaped(v, '|')
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let m = &mut r.matches;
        let list: Option<&mut Values> = match k.strip_prefix("match.").unwrap_or(k) {
            "cidr" => Some(&mut m.cidr),
            "src_cidr" => Some(&mut m.src_cidr),
            "dst_cidr" => Some(&mut m.dst_cidr),
            "port" => Some(&mut m.port),
            "src_port" => Some(&mut m.src_port),
            "dst_port" => Some(&mut m.dst_port),
            "proto" => Some(&mut m.proto),
            "vlan" => Some(&mut m.vlan),
            "tunnel" => Some(&mut m.tunnel),
            "app_proto" => Some(&mut m.app_proto),
            key => match key.split_once('.') {
                // `PROTO.FIELD`: checked against the registry when the rule compiles.
                Some((proto, field)) if AppProto::parse(proto).is_some() => {
                    if alts.is_empty() {
                        return Err(err(k, "empty value".into()));
                    }
                    let table = m
                        .app
                        .entry(proto.to_string())
                        .or_insert_with(|| toml::Value::Table(Default::default()));
                    if let toml::Value::Table(t) = table {
                        let list = t
                            .entry(field.to_string())
                            .or_insert_with(|| toml::Value::Array(Vec::new()));
                        if let toml::Value::Array(a) = list {
                            a.extend(alts.into_iter().map(toml::Value::String));
                        }
                    }
                    continue;
                }
                _ => None,
            },
        };
        if let Some(list) = list {
            if alts.is_empty() {
                return Err(err(k, "empty value".into()));
            }
            list.0.extend(alts);
            continue;
        }
        match k.strip_prefix("match.").unwrap_or(k) {
            "flow_bytes" => r.matches.flow_bytes = Some(size(k)?),
            "flow_packets" => r.matches.flow_packets = Some(num(k)?),
            _ => match k {
                "name" => r.name = v.to_string(),
                "action" => r.action = v.to_string(),
                "format" => r.format = v.to_string(),
                "snaplen" => {
                    r.snaplen =
                        u32::try_from(num(k)?).map_err(|_| err(k, format!("`{v}` is too large")))?
                }
                "dir" => r.dir = v.to_string(),
                "compression" => r.compression = v.to_string(),
                "max_packets" => r.max_packets = Some(num(k)?),
                "max_bytes" => r.max_bytes = Some(size(k)?),
                "rotate_bytes" => r.rotate_bytes = Some(size(k)?),
                "rotate_secs" => r.rotate_secs = Some(num(k)?),
                "retain_files" => {
                    r.retain_files = Some(
                        usize::try_from(num(k)?)
                            .map_err(|_| err(k, format!("`{v}` is too large")))?,
                    )
                }
                "retain_bytes" => r.retain_bytes = Some(size(k)?),
                _ => return Err(err(k, "unknown key".into())),
            },
        }
    }
    Ok(r)
}

/// Parses a compact rule and checks it (errors name the `--rule` it came
/// from). `default_dir` is used when the rule names no `dir`.
pub fn parse_compact_checked(
    line: &str,
    default_dir: Option<&str>,
) -> Result<RuleSection, RuleError> {
    let mut r = parse_compact(line)?;
    if r.dir.is_empty() {
        if let Some(d) = default_dir {
            r.dir = d.to_string();
        }
    }
    compile_rule(&r, &format!("--rule {line:?}"))?;
    Ok(r)
}

/// Splits on `sep` except where it is escaped with a backslash (which is dropped).
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek().copied() {
                Some(n) if n == sep => {
                    cur.push(n);
                    chars.next();
                    continue;
                }
                // Keep `\|` for the split on alternatives that follows.
                Some('|') if sep == ',' => {
                    cur.push('\\');
                    continue;
                }
                _ => {}
            }
        }
        if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dissect::app::AppEvent;

    /// `[[export.rules]]` text, read as the config file would read it.
    fn rule(toml: &str) -> Result<ExportRules, String> {
        #[derive(serde::Deserialize)]
        struct File {
            export: ExportSection,
        }
        let f: File = toml::from_str(toml).map_err(|e| e.to_string())?;
        compile(&f.export).map_err(|e| e.to_string())
    }

    #[test]
    fn globs() {
        let p = NamePat::new("*.Example.com");
        assert_eq!(p, NamePat::Suffix(".example.com".into()));
        assert!(p.matches("www.EXAMPLE.com"));
        assert!(p.matches("a.b.example.com."));
        assert!(!p.matches("example.com"));
        assert!(!p.matches("badexample.com"));
        let p = NamePat::new("Evil.org");
        assert!(p.matches("evil.ORG") && !p.matches("www.evil.org"));
        let p = NamePat::new("/admin/*.php?x=*");
        assert!(p.matches("/admin/login.php?x=1"));
        assert!(!p.matches("/admin/login.php"));
        assert!(glob_match(b"a*b*c", b"aXXbYYbc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYYb"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"??", b"ab") && !glob_match(b"??", b"a"));
    }

    #[test]
    fn cidrs_and_ports() {
        let n = Net::parse("10.1.0.0/16").expect("net");
        assert!(n.contains("10.1.200.3".parse().expect("ip")));
        assert!(!n.contains("10.2.0.1".parse().expect("ip")));
        assert!(!n.contains("::ffff:10.1.0.1".parse().expect("ip")));
        let n = Net::parse("2001:db8::/32").expect("net");
        assert!(n.contains("2001:db8:1::1".parse().expect("ip")));
        assert!(Net::parse("0.0.0.0/0")
            .expect("any")
            .contains("1.2.3.4".parse().expect("ip")));
        assert!(Net::parse("10.0.0.0/33").is_err());
        let r = Ranges::parse(
            &Values(vec!["80".into(), "8000-8099".into()]),
            65535,
            "port",
        )
        .expect("ranges");
        assert!(r.contains(80) && r.contains(8050) && !r.contains(81));
        assert!(Ranges::parse(&Values(vec!["9-1".into()]), 65535, "port").is_err());
    }

    #[test]
    fn toml_rules_compile() {
        let r = rule(
            "[[export.rules]]\nname = \"web\"\ndir = \"/tmp\"\nmatch.http.host = [\"*.example.com\"]\n\
             match.port = [80, \"8000-8099\"]\n\
             [[export.rules]]\nname = \"everything\"\ndir = \"/tmp\"\naction = \"shared\"\nrotate_bytes = \"1M\"\n\
             [[export.rules]]\nname = \"big\"\ndir = \"/tmp\"\nmatch.flow_bytes = \"1M\"\nmax_packets = 100\n",
        )
        .expect("compiles");
        assert_eq!(r.rules.len(), 3);
        assert_eq!(r.capture_all, vec![1]);
        assert_eq!(r.flow_rules, 0b101);
        assert!(r.rules[0].needs_app);
        assert_eq!(r.rules[2].min_bytes, Some(1 << 20));
        assert_eq!(r.rules[2].per_flow_limits(), (Some(100), None));
        assert_eq!(
            r.rules[1].output.action,
            ExportAction::Shared {
                rotate_bytes: 1 << 20,
                rotate_secs: None
            }
        );
    }

    #[test]
    fn bad_rules_name_rule_and_field() {
        let cases = [
            (
                "name = \"x\"\ndir = \"/tmp\"\nmatch.cidr = \"10.0.0.0/99\"\n",
                "`x`: match.cidr",
            ),
            (
                "name = \"x\"\ndir = \"/tmp\"\nmatch.port = 70000\n",
                "match.port",
            ),
            ("name = \"x y\"\ndir = \"/tmp\"\n", "name"),
            ("name = \"x\"\n", "`x`: dir"),
            (
                "name = \"x\"\ndir = \"/tmp\"\naction = \"copy\"\n",
                "action",
            ),
            (
                "name = \"x\"\ndir = \"/tmp\"\nmatch.tls.ja3 = \"abc\"\n",
                "match.tls.ja3",
            ),
            (
                "name = \"x\"\ndir = \"/tmp\"\nmatch.http.host = \"a\"\nmatch.dns.query = \"b\"\n",
                "match",
            ),
            (
                "name = \"x\"\ndir = \"/tmp\"\nrotate_secs = 5\n",
                "rotate_secs",
            ),
            (
                "name = \"x\"\ndir = \"/tmp\"\nmatch.tunnel = \"foo\"\n",
                "match.tunnel",
            ),
            (
                "name = \"x\"\ndir = \"/tmp\"\nmatch.app_proto = \"smtp\"\n",
                "match.app_proto",
            ),
        ];
        for (body, want) in cases {
            let err = rule(&format!("[[export.rules]]\n{body}")).expect_err(body);
            assert!(err.contains(want), "{body}: {err}");
            assert!(err.contains("export rule export.rules[0]"), "{err}");
        }
        let err = rule("[[export.rules]]\nname = \"x\"\ndir = \"/t\"\nmatch.http.hots = \"a\"\n")
            .expect_err("unknown key");
        assert!(err.contains("hots"), "{err}");
        let err = rule(
            "[[export.rules]]\nname = \"x\"\ndir = \"/t\"\n[[export.rules]]\nname = \"x\"\ndir = \"/t\"\n",
        )
        .expect_err("dup");
        assert!(err.contains("export.rules[1] `x`: name"), "{err}");
    }

    #[test]
    fn compact_syntax() {
        let r = parse_compact(
            "name=evil,http.host=*.example.com|evil.org,match.port=80,action=flow,dir=/tmp/x,max_packets=10,http.uri=/a\\,b",
        )
        .expect("parses");
        assert_eq!(r.name, "evil");
        let http = &r.matches.app["http"];
        assert_eq!(
            http["host"],
            toml::Value::Array(vec!["*.example.com".into(), "evil.org".into()])
        );
        assert_eq!(http["uri"], toml::Value::Array(vec!["/a,b".into()]));
        assert_eq!(r.matches.port.0, vec!["80"]);
        assert_eq!(r.max_packets, Some(10));
        assert_eq!(r.dir, "/tmp/x");
        let r = parse_compact("name=big,flow_bytes=1M,dir=d").expect("parses");
        assert_eq!(r.matches.flow_bytes, Some(Size(1 << 20)));
        let e = parse_compact("name=x,htp.host=a").expect_err("unknown");
        assert_eq!(e.field, "htp.host");
        assert!(e.to_string().contains("--rule"), "{e}");
        let e = parse_compact("name=x,snaplen=lots").expect_err("number");
        assert_eq!(e.field, "snaplen");
    }

    fn facts(src: &str, sp: u16, dst: &str, dp: u16, proto: u8) -> FlowFacts<'static> {
        FlowFacts {
            src: src.parse().expect("ip"),
            src_port: sp,
            dst: dst.parse().expect("ip"),
            dst_port: dp,
            proto,
            vlans: &[],
            tunnel: None,
        }
    }

    #[test]
    fn flow_conditions() {
        let r = rule(
            "[[export.rules]]\nname = \"x\"\ndir = \"/t\"\nmatch.dst_cidr = \"10.0.0.0/8\"\nmatch.dst_port = 443\nmatch.proto = \"tcp\"\n",
        )
        .expect("ok");
        let c = &r.rules[0].flow;
        assert!(c.matches(&facts("1.1.1.1", 5000, "10.9.9.9", 443, 6)));
        assert!(!c.matches(&facts("10.9.9.9", 443, "1.1.1.1", 5000, 6)));
        assert!(!c.matches(&facts("1.1.1.1", 5000, "10.9.9.9", 443, 17)));
        assert_eq!(
            r.rules[0].flow_reason,
            "dst_cidr=10.0.0.0/8 dst_port=443 proto=tcp"
        );
        let r = rule("[[export.rules]]\nname = \"x\"\ndir = \"/t\"\nmatch.vlan = 100\nmatch.tunnel = \"none\"\n")
            .expect("ok");
        let mut f = facts("1.1.1.1", 1, "2.2.2.2", 2, 17);
        assert!(!r.rules[0].flow.matches(&f));
        f.vlans = &[5, 100];
        assert!(r.rules[0].flow.matches(&f));
        f.tunnel = Some(TunnelKind::Vxlan);
        assert!(!r.rules[0].flow.matches(&f));
    }

    #[test]
    fn app_conditions() {
        let r = rule(
            "[[export.rules]]\nname = \"x\"\ndir = \"/t\"\nmatch.http.host = \"*.example.com\"\nmatch.http.status = \"400-499\"\n",
        )
        .expect("ok");
        let rule = &r.rules[0];
        let mut h = dissect::app::HttpEvent {
            host: Some("www.example.com".into()),
            status: Some(404),
            ..dissect::app::HttpEvent::default()
        };
        let ev = AppEvent::Http(Box::new(h.clone()));
        assert_eq!(
            rule.app_matches(Peek::of(&ev)).as_deref(),
            Some("http.host=www.example.com http.status=404")
        );
        h.status = Some(200);
        assert!(rule
            .app_matches(Peek::of(&AppEvent::Http(Box::new(h))))
            .is_none());
        assert!(!rule.early, "http.status needs the response");
        assert!(rule.app_possible(Some(AppProto::Http)));
        assert!(!rule.app_possible(Some(AppProto::Tls)));
        assert!(!rule.app_possible(None));
        let tls = dissect::app::TlsEvent {
            sni: Some("www.example.com".into()),
            ..dissect::app::TlsEvent::default()
        };
        assert!(rule.app_matches(Peek::Tls(&tls)).is_none());
    }
}
