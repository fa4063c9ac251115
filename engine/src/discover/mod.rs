//! `flowtap discover`: from observed flows to an allow-list rule base.
//!
//! Flow records (from a capture replayed in process, or from flow logs
//! flowtap wrote earlier) are folded into rules: *client (or client group)
//! → server address, protocol, server port*. The server is the side that
//! accepted the connection: for TCP the sender of the SYN-ACK when the
//! handshake was seen, otherwise (UDP, or TCP picked up mid-stream) the side
//! whose port looks like a service's (a named IANA service, then a system
//! port, then a port below the ephemeral range), and when both look alike the
//! responder (the originator spoke first: request/response). The client's
//! ephemeral port is dropped. DNS answers, TLS SNI and HTTP Host seen in the
//! same input name the servers.
//!
//! Memory is bounded by the number of distinct rules (plus capped name
//! sets), not by the number of flow records read.

pub mod baseline;
pub mod cli;
pub mod config;
pub mod input;
pub mod k8s;
pub mod net;
pub mod render;
pub mod services;
pub mod sink;
mod tap;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::IpAddr;

use hashbrown::HashMap;

pub use net::Cidr;
pub use tap::DiscoverTap;

use crate::offline::ReplayError;

/// Names shown per rule and kind.
pub const MAX_NAMES: usize = 8;
/// Addresses whose DNS names are remembered.
pub const MAX_DNS_ADDRS: usize = 1 << 20;
/// The discovery sink of a long run: addresses (DNS) and services (SNI,
/// HTTP Host) whose names are remembered.
pub const MAX_NAMED_SINK: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot open {path}: {err}")]
    Open { path: String, err: std::io::Error },
    #[error("{path}:{line}: cannot read: {err}")]
    Read {
        path: String,
        line: u64,
        err: std::io::Error,
    },
    #[error("{path}:{line}: {msg}")]
    BadLine {
        path: String,
        line: u64,
        msg: String,
    },
    #[error("invalid {what} {value:?}: {why}")]
    BadArgument {
        what: &'static str,
        value: String,
        why: String,
    },
    #[error("cannot replay {path}: {err}")]
    Replay { path: String, err: ReplayError },
    #[error("{path}: {err} (every packet before it was processed)")]
    CaptureBroken {
        path: String,
        err: capture::file::FileError,
    },
    #[error("cannot capture on {iface}: {err}")]
    Live { iface: String, err: String },
    #[error("cannot write {path}: {err}")]
    Write { path: String, err: std::io::Error },
}

/// How the server side of a flow was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The flow's responder sent the SYN-ACK.
    Responder,
    /// The flow's originator sent the SYN-ACK (history `H`, or flags).
    Originator,
    /// No handshake seen: decide by ports and who spoke first.
    Unknown,
}

/// One flow record, whatever it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowObs {
    pub orig_ip: IpAddr,
    pub resp_ip: IpAddr,
    pub orig_port: u16,
    pub resp_port: u16,
    /// IP protocol number.
    pub proto: u8,
    pub start_ns: u64,
    pub end_ns: u64,
    pub orig_pkts: u64,
    pub orig_bytes: u64,
    pub resp_pkts: u64,
    pub resp_bytes: u64,
    pub accepted: Accepted,
    pub app_proto: Option<Cow<'static, str>>,
    /// The record starts a flow (not an interim slice of a long one).
    pub first_slice: bool,
}

/// A name learnt from an application event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameObs {
    /// A DNS answer: `name` resolved to `addr`.
    Dns { addr: IpAddr, name: String },
    /// TLS SNI sent to this server (the flow's responder).
    Sni {
        server: IpAddr,
        proto: u8,
        port: u16,
        name: String,
    },
    /// HTTP Host sent to this server.
    Host {
        server: IpAddr,
        proto: u8,
        port: u16,
        name: String,
    },
}

/// Which rules are wanted relative to the scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Direction {
    /// Connections to and from the scope.
    #[default]
    Both,
    /// Connections whose server is in the scope.
    Inbound,
    /// Connections whose client is in the scope.
    Outbound,
}

/// What to fold and how.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only flows with an endpoint in one of these (empty: all flows).
    pub scope: Vec<Cidr>,
    pub direction: Direction,
    /// Flows with an endpoint in one of these are left out.
    pub exclude: Vec<Cidr>,
    /// Clients are grouped into blocks of this many bits (IPv4).
    pub group_v4: Option<u8>,
    /// Clients are grouped into blocks of this many bits (IPv6).
    pub group_v6: Option<u8>,
    /// Named client groups (the most specific block wins, before `group_*`).
    pub group_map: Vec<(String, Cidr)>,
    /// Keep at most this many rules (the largest by bytes): memory stays
    /// bounded whatever the input; what the others held is counted in
    /// [`Totals`] (`pruned_*`). `None`: every rule.
    pub max_rules: Option<usize>,
    /// Fold the ports of one client, server and protocol into port ranges.
    pub port_ranges: Option<PortRanges>,
    /// Addresses (DNS) and services (SNI, Host) whose names are kept
    /// (`None`: [`MAX_DNS_ADDRS`]); names of others are counted as dropped.
    pub max_named: Option<usize>,
}

/// The rules a port range may fold: one source, server and protocol.
type RunKey = (Source, IpAddr, u8);

/// When ports are folded into a range: a service seen on many adjacent
/// ports (passive FTP data, RTP media) is one rule `dport A-B`, not one
/// per port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRanges {
    /// A run of at least this many distinct ports becomes a range.
    pub min_ports: usize,
    /// Neighbouring ports of a run are at most this far apart.
    pub max_gap: u16,
}

impl PortRanges {
    /// System ports (below 1024) are distinct services: never folded.
    pub const FIRST_PORT: u16 = 1024;
}

/// The source side of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// One client address, or a `--group /N` block.
    Net(Cidr),
    /// A `--group-map` entry (index into [`Options::group_map`]).
    Named(u16),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RuleKey {
    source: Source,
    dst: IpAddr,
    proto: u8,
    port: u16,
}

#[derive(Clone, Debug, Default)]
struct RuleAcc {
    first_ns: u64,
    last_ns: u64,
    records: u64,
    flows: u64,
    pkts_ts: u64,
    bytes_ts: u64,
    pkts_tc: u64,
    bytes_tc: u64,
    /// Application protocols detected (few: kept as a small list).
    apps: Vec<Cow<'static, str>>,
    /// Flows where the server was the SYN-ACK sender.
    by_handshake: u64,
}

impl RuleAcc {
    /// Adds another accumulator's counters, times and protocols.
    fn add(&mut self, v: &RuleAcc) {
        self.first_ns = self.first_ns.min(v.first_ns);
        self.last_ns = self.last_ns.max(v.last_ns);
        self.records += v.records;
        self.flows += v.flows;
        self.pkts_ts += v.pkts_ts;
        self.bytes_ts += v.bytes_ts;
        self.pkts_tc += v.pkts_tc;
        self.bytes_tc += v.bytes_tc;
        self.by_handshake += v.by_handshake;
        for a in &v.apps {
            if !self.apps.contains(a) && self.apps.len() < MAX_NAMES {
                self.apps.push(a.clone());
            }
        }
    }
}

/// Names kept per server: the [`KEEP_NAMES`] first in sort order, so the
/// set does not depend on the order events arrive in (workers interleave).
pub const KEEP_NAMES: usize = 64;

/// The first [`KEEP_NAMES`] distinct names in sort order (lower case), and
/// whether there were more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameSet {
    pub names: BTreeSet<String>,
    pub overflow: bool,
}

impl NameSet {
    fn add(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        if self.names.contains(&name) {
            return;
        }
        if self.names.len() >= KEEP_NAMES {
            self.overflow = true;
            if self.names.last().is_some_and(|l| *l < name) {
                return;
            }
            self.names.pop_last();
        }
        self.names.insert(name);
    }

    fn merge(&mut self, other: &NameSet) {
        for n in &other.names {
            self.add(n);
        }
        self.overflow |= other.overflow;
    }

    /// Up to [`MAX_NAMES`] names, then `(+N more)`.
    fn list(&self) -> Vec<String> {
        let mut v: Vec<String> = self.names.iter().take(MAX_NAMES).cloned().collect();
        let more = self.names.len().saturating_sub(MAX_NAMES);
        if more > 0 || self.overflow {
            v.push(format!(
                "(+{more}{} more)",
                if self.overflow { "+" } else { "" }
            ));
        }
        v
    }
}

/// What happened to the flow records read.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Flow records seen.
    pub records: u64,
    /// Of which folded into a rule.
    pub folded: u64,
    /// Left out: no endpoint in the scope, or the other direction.
    pub out_of_scope: u64,
    /// Left out by `--exclude`.
    pub excluded: u64,
    /// Folded records' packets and bytes (both directions).
    pub packets: u64,
    pub bytes: u64,
    /// Application events seen (DNS, TLS, HTTP).
    pub app_events: u64,
    /// Rules evicted by `max_rules` (the smallest at the time; a rule
    /// evicted and seen again starts anew and may be evicted again), and
    /// the folded records, packets and bytes they held.
    pub pruned_rules: u64,
    pub pruned_records: u64,
    pub pruned_packets: u64,
    pub pruned_bytes: u64,
}

/// The aggregate: rules so far, and the names learnt.
pub struct Aggregator {
    opts: Options,
    rules: HashMap<RuleKey, RuleAcc>,
    dns: HashMap<IpAddr, NameSet>,
    sni: HashMap<(IpAddr, u8, u16), NameSet>,
    hosts: HashMap<(IpAddr, u8, u16), NameSet>,
    pub totals: Totals,
    /// Names not kept because `max_named` addresses or services were known.
    pub dns_dropped: u64,
}

/// One rule of the result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    /// Client address, block, or `name (block)`.
    pub source: String,
    /// The block the source stands for (firewall outputs).
    #[serde(skip)]
    pub source_net: Cidr,
    /// The `--group-map` name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_group: Option<String>,
    pub destination: IpAddr,
    /// `TCP`, `UDP`, `ICMP`, ... or the number.
    pub protocol: String,
    #[serde(skip)]
    pub ip_proto: u8,
    /// None for protocols without ports; the first port of a range.
    pub port: Option<u16>,
    /// The last port of a range (`--port-ranges`), else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_last: Option<u16>,
    /// A range: how many distinct ports of it were seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports_seen: Option<u32>,
    /// Relative to the scope: `inbound`, `outbound`, `internal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'static str>,
    pub first_seen: String,
    pub last_seen: String,
    #[serde(skip)]
    pub first_ns: u64,
    #[serde(skip)]
    pub last_ns: u64,
    /// Flows (records that start a flow).
    pub flows: u64,
    /// Flow records folded (flows plus interim slices of long ones).
    pub records: u64,
    pub packets_to_server: u64,
    pub bytes_to_server: u64,
    pub packets_to_client: u64,
    pub bytes_to_client: u64,
    pub app_protos: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<&'static str>,
    pub dns_names: Vec<String>,
    pub tls_sni: Vec<String>,
    pub http_hosts: Vec<String>,
    /// Flows whose server side was decided by the TCP handshake.
    pub by_handshake: u64,
    pub description: String,
    /// Seen once: review before allowing.
    pub review: bool,
}

impl Rule {
    pub fn bytes(&self) -> u64 {
        self.bytes_to_server + self.bytes_to_client
    }

    pub fn packets(&self) -> u64 {
        self.packets_to_server + self.packets_to_client
    }
}

fn proto_label(p: u8) -> String {
    match p {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "IPv6-ICMP".into(),
        132 => "SCTP".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        51 => "AH".into(),
        n => n.to_string(),
    }
}

/// IP protocol number of a name flowtap's schemas write (`TCP`, `udp`, `IPv6-ICMP`, `6`).
pub fn proto_number(name: &str) -> Option<u8> {
    Some(match name.to_ascii_uppercase().as_str() {
        "ICMP" => 1,
        "TCP" => 6,
        "UDP" => 17,
        "IPV6-ICMP" | "ICMPV6" | "ICMP6" => 58,
        "SCTP" => 132,
        "GRE" => 47,
        "ESP" => 50,
        "AH" => 51,
        n => return n.parse().ok(),
    })
}

/// Whether a protocol has ports.
pub fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132)
}

/// The server side of a flow: `(client, server, server port, server is the responder)`.
pub fn server_side(f: &FlowObs) -> (IpAddr, IpAddr, u16, bool) {
    let responder = |r: bool| {
        if r {
            (f.orig_ip, f.resp_ip, f.resp_port, true)
        } else {
            (f.resp_ip, f.orig_ip, f.orig_port, false)
        }
    };
    if !has_ports(f.proto) {
        return (f.orig_ip, f.resp_ip, 0, true);
    }
    if f.proto == 6 {
        match f.accepted {
            Accepted::Responder => return responder(true),
            Accepted::Originator => return responder(false),
            Accepted::Unknown => {}
        }
    }
    let ro = services::server_rank(f.proto, f.orig_port);
    let rr = services::server_rank(f.proto, f.resp_port);
    if ro != rr {
        return responder(rr > ro);
    }
    // Alike ports: the originator sent first, so it asked and the responder
    // answered (a request/response pattern).
    responder(true)
}

impl Aggregator {
    pub fn new(opts: Options) -> Aggregator {
        Aggregator {
            opts,
            rules: HashMap::new(),
            dns: HashMap::new(),
            sni: HashMap::new(),
            hosts: HashMap::new(),
            totals: Totals::default(),
            dns_dropped: 0,
        }
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    fn in_any(list: &[Cidr], ip: &IpAddr) -> bool {
        list.iter().any(|c| c.contains(ip))
    }

    fn source_of(&self, client: IpAddr) -> Source {
        let mut best: Option<(u8, usize)> = None;
        for (i, (_, c)) in self.opts.group_map.iter().enumerate() {
            if c.contains(&client) && best.is_none_or(|(l, _)| c.len > l) {
                best = Some((c.len, i));
            }
        }
        if let Some((_, i)) = best {
            return Source::Named(u16::try_from(i).unwrap_or(u16::MAX));
        }
        let len = if client.is_ipv4() {
            self.opts.group_v4
        } else {
            self.opts.group_v6
        };
        match len {
            Some(l) => Source::Net(Cidr::of(client, l)),
            None => Source::Net(Cidr::of(client, if client.is_ipv4() { 32 } else { 128 })),
        }
    }

    /// Folds one flow record.
    pub fn add_flow(&mut self, f: &FlowObs) {
        self.totals.records += 1;
        if Self::in_any(&self.opts.exclude, &f.orig_ip)
            || Self::in_any(&self.opts.exclude, &f.resp_ip)
        {
            self.totals.excluded += 1;
            return;
        }
        let (client, server, port, server_is_resp) = server_side(f);
        if !self.opts.scope.is_empty() {
            let c_in = Self::in_any(&self.opts.scope, &client);
            let s_in = Self::in_any(&self.opts.scope, &server);
            let wanted = match self.opts.direction {
                Direction::Both => c_in || s_in,
                Direction::Inbound => s_in,
                Direction::Outbound => c_in,
            };
            if !wanted {
                self.totals.out_of_scope += 1;
                return;
            }
        }
        let key = RuleKey {
            source: self.source_of(client),
            dst: server,
            proto: f.proto,
            port,
        };
        let (pts, bts, ptc, btc) = if server_is_resp {
            (f.orig_pkts, f.orig_bytes, f.resp_pkts, f.resp_bytes)
        } else {
            (f.resp_pkts, f.resp_bytes, f.orig_pkts, f.orig_bytes)
        };
        let acc = self.rules.entry(key).or_insert_with(|| RuleAcc {
            first_ns: u64::MAX,
            ..RuleAcc::default()
        });
        acc.first_ns = acc.first_ns.min(f.start_ns);
        acc.last_ns = acc.last_ns.max(f.end_ns);
        acc.records += 1;
        acc.flows += u64::from(f.first_slice);
        acc.pkts_ts += pts;
        acc.bytes_ts += bts;
        acc.pkts_tc += ptc;
        acc.bytes_tc += btc;
        if f.proto == 6 && f.accepted != Accepted::Unknown {
            acc.by_handshake += 1;
        }
        if let Some(a) = &f.app_proto {
            if !acc.apps.iter().any(|x| x == a) && acc.apps.len() < MAX_NAMES {
                acc.apps.push(a.clone());
            }
        }
        self.totals.folded += 1;
        self.totals.packets += pts + ptc;
        self.totals.bytes += bts + btc;
        if let Some(max) = self.opts.max_rules {
            // Twice the limit before pruning: a sort per `max` new rules.
            if self.rules.len() > max.max(1).saturating_mul(2) {
                self.prune(max);
            }
        }
    }

    /// Drops all but the `keep` largest rules (bytes, then flows), counting
    /// what they held in the totals.
    pub fn prune(&mut self, keep: usize) {
        if self.rules.len() <= keep {
            return;
        }
        let mut v: Vec<(u64, u64, RuleKey)> = self
            .rules
            .iter()
            .map(|(k, a)| (a.bytes_ts + a.bytes_tc, a.flows, k.clone()))
            .collect();
        v.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        for (_, _, k) in v.drain(keep..) {
            if let Some(a) = self.rules.remove(&k) {
                self.totals.pruned_rules += 1;
                self.totals.pruned_records += a.records;
                self.totals.pruned_packets += a.pkts_ts + a.pkts_tc;
                self.totals.pruned_bytes += a.bytes_ts + a.bytes_tc;
            }
        }
    }

    /// Applies `max_rules` to what is left (call before [`Self::rules`]).
    pub fn finish(&mut self) {
        if let Some(max) = self.opts.max_rules {
            self.prune(max);
        }
    }

    /// Learns a name (count the event that taught it with [`Self::add_app_event`]).
    pub fn add_name(&mut self, n: &NameObs) {
        let cap = self.opts.max_named.unwrap_or(MAX_DNS_ADDRS);
        fn add<K: std::hash::Hash + Eq>(
            m: &mut HashMap<K, NameSet>,
            k: K,
            name: &str,
            cap: usize,
            dropped: &mut u64,
        ) {
            if let Some(s) = m.get_mut(&k) {
                s.add(name);
            } else if m.len() < cap {
                m.entry(k).or_default().add(name);
            } else {
                *dropped += 1;
            }
        }
        match n {
            NameObs::Dns { addr, name } => {
                add(&mut self.dns, *addr, name, cap, &mut self.dns_dropped)
            }
            NameObs::Sni {
                server,
                proto,
                port,
                name,
            } => add(
                &mut self.sni,
                (*server, *proto, *port),
                name,
                cap,
                &mut self.dns_dropped,
            ),
            NameObs::Host {
                server,
                proto,
                port,
                name,
            } => add(
                &mut self.hosts,
                (*server, *proto, *port),
                name,
                cap,
                &mut self.dns_dropped,
            ),
        }
    }

    /// Counts an application event.
    pub fn add_app_event(&mut self) {
        self.totals.app_events += 1;
    }

    /// Adds another aggregate (same options) into this one.
    pub fn merge(&mut self, other: Aggregator) {
        for (k, v) in other.rules {
            self.rules
                .entry(k)
                .or_insert_with(|| RuleAcc {
                    first_ns: u64::MAX,
                    ..RuleAcc::default()
                })
                .add(&v);
        }
        for (k, v) in other.dns {
            self.dns.entry(k).or_default().merge(&v);
        }
        for (k, v) in other.sni {
            self.sni.entry(k).or_default().merge(&v);
        }
        for (k, v) in other.hosts {
            self.hosts.entry(k).or_default().merge(&v);
        }
        let t = other.totals;
        self.totals.records += t.records;
        self.totals.folded += t.folded;
        self.totals.out_of_scope += t.out_of_scope;
        self.totals.excluded += t.excluded;
        self.totals.packets += t.packets;
        self.totals.bytes += t.bytes;
        self.totals.app_events += t.app_events;
        self.totals.pruned_rules += t.pruned_rules;
        self.totals.pruned_records += t.pruned_records;
        self.totals.pruned_packets += t.pruned_packets;
        self.totals.pruned_bytes += t.pruned_bytes;
        self.dns_dropped += other.dns_dropped;
    }

    /// Number of rules so far.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, largest volume (bytes, then flows) first.
    pub fn rules(&self) -> Vec<Rule> {
        let mut out: Vec<(RuleKey, Rule)> = match self.opts.port_ranges {
            None => self
                .rules
                .iter()
                .map(|(k, a)| (k.clone(), self.rule(k, a, &[k.port])))
                .collect(),
            Some(pr) => self.rules_with_ranges(pr),
        };
        out.sort_by(|(ka, a), (kb, b)| {
            b.bytes()
                .cmp(&a.bytes())
                .then(b.flows.cmp(&a.flows))
                .then(b.records.cmp(&a.records))
                .then(ka.cmp(kb))
        });
        out.into_iter().map(|(_, r)| r).collect()
    }

    /// The rules with the runs of adjacent ports folded (see [`PortRanges`]).
    fn rules_with_ranges(&self, pr: PortRanges) -> Vec<(RuleKey, Rule)> {
        let mut out = Vec::new();
        let mut runs: std::collections::BTreeMap<RunKey, Vec<(u16, &RuleAcc)>> = Default::default();
        for (k, a) in &self.rules {
            if has_ports(k.proto) && k.port >= PortRanges::FIRST_PORT {
                runs.entry((k.source.clone(), k.dst, k.proto))
                    .or_default()
                    .push((k.port, a));
            } else {
                out.push((k.clone(), self.rule(k, a, &[k.port])));
            }
        }
        for ((source, dst, proto), mut ports) in runs {
            ports.sort_unstable_by_key(|(p, _)| *p);
            let mut start = 0;
            for i in 1..=ports.len() {
                let ends = i == ports.len() || ports[i].0 - ports[i - 1].0 > pr.max_gap;
                if !ends {
                    continue;
                }
                let run = &ports[start..i];
                start = i;
                let key = |port| RuleKey {
                    source: source.clone(),
                    dst,
                    proto,
                    port,
                };
                if run.len() < pr.min_ports.max(2) {
                    for (p, a) in run {
                        let k = key(*p);
                        out.push((k.clone(), self.rule(&k, a, &[*p])));
                    }
                    continue;
                }
                let mut acc = RuleAcc {
                    first_ns: u64::MAX,
                    ..RuleAcc::default()
                };
                for (_, a) in run {
                    acc.add(a);
                }
                let list: Vec<u16> = run.iter().map(|(p, _)| *p).collect();
                let k = key(list[0]);
                out.push((k.clone(), self.rule(&k, &acc, &list)));
            }
        }
        out
    }

    /// `ports`: the port of the rule, or the ports (ascending) of a range.
    fn rule(&self, k: &RuleKey, a: &RuleAcc, ports_of: &[u16]) -> Rule {
        let (source, source_net, source_group) = match &k.source {
            Source::Net(c) => (c.to_string(), *c, None),
            Source::Named(i) => {
                let (name, c) = &self.opts.group_map[usize::from(*i)];
                (format!("{name} ({c})"), *c, Some(name.clone()))
            }
        };
        let direction = (!self.opts.scope.is_empty()).then(|| {
            let s_in = Self::in_any(&self.opts.scope, &k.dst);
            let c_in = match &k.source {
                Source::Net(c) => Self::in_any(&self.opts.scope, &c.addr),
                Source::Named(_) => self
                    .opts
                    .scope
                    .iter()
                    .any(|s| s.contains(&source_net.addr) || source_net.contains(&s.addr)),
            };
            match (c_in, s_in) {
                (true, true) => "internal",
                (false, true) => "inbound",
                _ => "outbound",
            }
        });
        let ports = has_ports(k.proto);
        let range =
            (ports && ports_of.len() > 1).then(|| (ports_of[0], ports_of[ports_of.len() - 1]));
        let service = if ports && range.is_none() {
            services::service_name(k.proto, k.port)
        } else {
            None
        };
        let empty = NameSet::default();
        let dns = self.dns.get(&k.dst).unwrap_or(&empty).list();
        let names_of = |m: &HashMap<(IpAddr, u8, u16), NameSet>| -> Vec<String> {
            if ports_of.len() == 1 {
                return m.get(&(k.dst, k.proto, k.port)).unwrap_or(&empty).list();
            }
            let mut all = NameSet::default();
            for p in ports_of {
                if let Some(n) = m.get(&(k.dst, k.proto, *p)) {
                    all.merge(n);
                }
            }
            all.list()
        };
        let sni = names_of(&self.sni);
        let hosts = names_of(&self.hosts);
        let apps: Vec<String> = a.apps.iter().map(|s| s.to_string()).collect();
        let mut desc = Vec::new();
        let mut what = Vec::new();
        if !apps.is_empty() {
            what.push(apps.join("/"));
        }
        if let Some(s) = service {
            if !apps.iter().any(|a| a == s) {
                what.push(format!("({s})"));
            }
        }
        if let Some((lo, hi)) = range {
            what.push(format!(
                "{}/{lo}-{hi} ({} ports)",
                proto_label(k.proto).to_lowercase(),
                ports_of.len()
            ));
        }
        if what.is_empty() {
            what.push(if ports {
                format!("{}/{}", proto_label(k.proto).to_lowercase(), k.port)
            } else {
                proto_label(k.proto).to_lowercase()
            });
        }
        desc.push(what.join(" "));
        if !sni.is_empty() {
            desc.push(format!("sni {}", sni.join(",")));
        }
        if !hosts.is_empty() {
            desc.push(format!("host {}", hosts.join(",")));
        }
        if !dns.is_empty() {
            desc.push(format!("dns {}", dns.join(",")));
        }
        let review = a.flows <= 1;
        if review {
            desc.push("seen once: review".into());
        }
        Rule {
            source,
            source_net,
            source_group,
            destination: k.dst,
            protocol: proto_label(k.proto),
            ip_proto: k.proto,
            port: ports.then_some(k.port),
            port_last: range.map(|r| r.1),
            ports_seen: range.map(|_| u32::try_from(ports_of.len()).unwrap_or(u32::MAX)),
            direction,
            first_seen: net::format_time(a.first_ns),
            last_seen: net::format_time(a.last_ns),
            first_ns: a.first_ns,
            last_ns: a.last_ns,
            flows: a.flows,
            records: a.records,
            packets_to_server: a.pkts_ts,
            bytes_to_server: a.bytes_ts,
            packets_to_client: a.pkts_tc,
            bytes_to_client: a.bytes_tc,
            app_protos: apps,
            service,
            dns_names: dns,
            tls_sni: sni,
            http_hosts: hosts,
            by_handshake: a.by_handshake,
            description: desc.join("; "),
            review,
        }
    }
}

#[cfg(test)]
mod tests;
