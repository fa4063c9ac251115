//! `flowtap discover`'s arguments and run (the binary only parses and
//! dispatches).

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::input::{self, ReadStats};
use super::render::{self, FirewallOptions, Format, Hook};
use super::{Aggregator, Cidr, Direction, DiscoverError, DiscoverTap, Options};
use crate::config::Config;
use crate::flow::RecordSink;
use crate::offline::{replay_file_tapped, ReplayOptions};

/// Turn observed flows into an allow-list rule base.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("input").args(["pcap", "flows", "iface"]).required(true)))]
pub struct DiscoverArgs {
    /// Capture file to replay in process (pcap or pcapng).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Flow logs flowtap wrote (native or EVE JSON lines, Nutanix-style
    /// lines; `.gz` / `.zst` by extension; a directory means its files; `-` stdin).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub flows: Vec<PathBuf>,
    /// Capture live from this interface (needs root), as `flowtap run
    /// --iface` does, until --duration or Ctrl-C / SIGTERM.
    #[arg(long, value_name = "IF")]
    pub iface: Option<String>,
    /// --iface: stop after SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<std::time::Duration>,
    /// --iface: live source [default: from the config, else afxdp].
    #[arg(long, value_name = "SOURCE")]
    pub capture: Option<crate::config::CaptureSource>,
    /// Only traffic to or from this address (repeatable).
    #[arg(long, value_name = "IP")]
    pub host: Vec<String>,
    /// Only traffic to or from this block (repeatable).
    #[arg(long, value_name = "CIDR")]
    pub cidr: Vec<String>,
    /// Relative to --host/--cidr: inbound (server in scope), outbound (client in scope), both.
    #[arg(long, value_enum, default_value_t = Direction::Both)]
    pub direction: Direction,
    /// Leave out flows with an endpoint in this block (repeatable).
    #[arg(long, value_name = "CIDR")]
    pub exclude: Vec<String>,
    /// Group clients into blocks: `/24` (IPv4); a second value `/64` applies to IPv6.
    #[arg(long, value_name = "/N")]
    pub group: Vec<String>,
    /// Named client group `name=CIDR` (repeatable; the most specific block wins).
    #[arg(long = "group-map", value_name = "NAME=CIDR")]
    pub group_map: Vec<String>,
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// nftables/iptables: where the allow list hooks in.
    #[arg(long, value_enum, default_value_t = Hook::Forward)]
    pub hook: Hook,
    /// nftables --hook ingress: the interface.
    #[arg(long, value_name = "IFACE")]
    pub device: Option<String>,
    /// nftables: the table's name.
    #[arg(long, value_name = "NAME", default_value = "flowtap_allow")]
    pub table: String,
    /// Drift: list only the rules this reviewed rule base (a previous
    /// `--format json` output) does not allow.
    #[arg(long, value_name = "RULES.json")]
    pub baseline: Option<PathBuf>,
    /// Keep at most N rules, the largest by bytes (memory stays bounded
    /// whatever the input; the rest is counted in the summary as pruned).
    #[arg(long, value_name = "N")]
    pub max_rules: Option<usize>,
    /// Fold runs of at least N adjacent ports (1024 and up) of one client,
    /// server and protocol into a port range (passive FTP data, RTP).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    pub port_ranges: Option<u64>,
    /// --port-ranges: neighbouring ports of a range are at most this far apart.
    #[arg(long, value_name = "G", default_value_t = DEFAULT_PORT_GAP, requires = "port_ranges")]
    pub port_gap: u16,
    /// k8s: the namespace of the NetworkPolicies.
    #[arg(long, value_name = "NS", default_value = "default")]
    pub k8s_namespace: String,
    /// --flows: count and skip lines that do not parse instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// --pcap: worker threads [default: one per core].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// --pcap: configuration file (decode, flow timeouts, app layer).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Do not print the summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--port-gap`'s default.
pub use crate::config::DEFAULT_PORT_GAP;

fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(std::time::Duration::from_secs_f64(v)),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

/// `/24` (IPv4) and `/64` (IPv6) group lengths, at most one of each.
pub fn group_lengths(v: &[String]) -> Result<(Option<u8>, Option<u8>), String> {
    let (mut v4, mut v6) = (None, None);
    for g in v {
        let n: u8 = g
            .trim_start_matches('/')
            .parse()
            .map_err(|_| format!("{g:?}: expected /N, e.g. /24"))?;
        if n > 128 {
            return Err(format!("{g:?}: longer than /128"));
        }
        if v4.is_none() && n <= 32 {
            v4 = Some(n);
        } else if v6.is_none() {
            v6 = Some(n);
        } else {
            return Err(format!("{g:?}: give at most one IPv4 and one IPv6 length"));
        }
    }
    Ok((v4, v6))
}

fn cidrs(what: &'static str, v: &[String]) -> Result<Vec<Cidr>, DiscoverError> {
    v.iter()
        .map(|s| {
            Cidr::parse(s).map_err(|why| DiscoverError::BadArgument {
                what,
                value: s.clone(),
                why,
            })
        })
        .collect()
}

impl DiscoverArgs {
    /// The aggregation options these arguments ask for.
    pub fn options(&self) -> Result<Options, DiscoverError> {
        let mut scope = cidrs("--host", &self.host)?;
        scope.extend(cidrs("--cidr", &self.cidr)?);
        if self.direction != Direction::Both && scope.is_empty() {
            return Err(DiscoverError::BadArgument {
                what: "--direction",
                value: format!("{:?}", self.direction).to_lowercase(),
                why: "a direction is relative to --host or --cidr; give one".into(),
            });
        }
        let mut o = Options {
            scope,
            direction: self.direction,
            exclude: cidrs("--exclude", &self.exclude)?,
            max_rules: self.max_rules,
            port_ranges: self.port_ranges.map(|n| super::PortRanges {
                min_ports: usize::try_from(n).unwrap_or(usize::MAX),
                max_gap: self.port_gap,
            }),
            ..Options::default()
        };
        for g in &self.group {
            let bad = |why: &str| DiscoverError::BadArgument {
                what: "--group",
                value: g.clone(),
                why: why.into(),
            };
            let n: u8 = g
                .trim_start_matches('/')
                .parse()
                .map_err(|_| bad("expected /N, e.g. /24"))?;
            if n > 128 {
                return Err(bad("longer than /128"));
            }
            if o.group_v4.is_none() && n <= 32 {
                o.group_v4 = Some(n);
            } else if o.group_v6.is_none() {
                o.group_v6 = Some(n);
            } else {
                return Err(bad("give at most one IPv4 and one IPv6 length"));
            }
        }
        for m in &self.group_map {
            let (name, c) = m
                .split_once('=')
                .ok_or_else(|| DiscoverError::BadArgument {
                    what: "--group-map",
                    value: m.clone(),
                    why: "expected NAME=CIDR".into(),
                })?;
            let cidr = Cidr::parse(c).map_err(|why| DiscoverError::BadArgument {
                what: "--group-map",
                value: m.clone(),
                why,
            })?;
            o.group_map.push((name.trim().to_string(), cidr));
        }
        Ok(o)
    }
}

/// What a discovery run did (the CLI prints it).
#[derive(Debug)]
pub struct Outcome {
    /// The capture broke: every packet before the damage was used.
    pub capture_error: Option<String>,
    pub rules: usize,
    pub totals: super::Totals,
    pub read: Option<ReadStats>,
    pub seconds: f64,
}

impl Outcome {
    /// The process's exit status: 0, or 2 when the capture file broke
    /// (as for `flowtap run`).
    pub fn exit_status(&self) -> u8 {
        if self.capture_error.is_some() {
            2
        } else {
            0
        }
    }
}

/// What [`aggregate`] folded and read.
pub struct Aggregated {
    pub agg: Aggregator,
    pub read: Option<ReadStats>,
    /// `--pcap`: the capture file broke there (all before it was used).
    pub capture_error: Option<String>,
}

/// Runs the aggregation the arguments ask for.
pub fn aggregate(args: &DiscoverArgs) -> Result<Aggregated, DiscoverError> {
    let opts = args.options()?;
    let load_config = || match &args.config {
        Some(p) => Config::load(p).map_err(|e| DiscoverError::BadArgument {
            what: "--config",
            value: p.display().to_string(),
            why: e.to_string(),
        }),
        None => Ok(Config::default()),
    };
    if let Some(iface) = &args.iface {
        let mut cfg = load_config()?;
        if let Some(c) = args.capture {
            cfg.capture.source = c;
        }
        if let Some(w) = args.workers {
            cfg.workers = w;
        }
        let agg = live_aggregate(iface, &cfg, args.duration, args.quiet, opts)?;
        return Ok(Aggregated {
            agg,
            read: None,
            capture_error: None,
        });
    }
    if let Some(pcap) = &args.pcap {
        let cfg = load_config()?;
        let workers = args
            .workers
            .filter(|&w| w > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let agg = Arc::new(Mutex::new(Aggregator::new(opts)));
        let make = |_i: usize| -> Box<dyn RecordSink + Send> {
            Box::new(DiscoverTap::new(Arc::clone(&agg)))
        };
        let summary = replay_file_tapped(pcap, &cfg, workers, ReplayOptions::default(), &make)
            .map_err(|e| DiscoverError::Replay {
                path: pcap.display().to_string(),
                err: e,
            })?;
        let capture_error = summary.file_error.map(|e| {
            DiscoverError::CaptureBroken {
                path: pcap.display().to_string(),
                err: e,
            }
            .to_string()
        });
        let agg = Arc::try_unwrap(agg)
            .ok()
            .and_then(|m| m.into_inner().ok())
            .ok_or_else(|| DiscoverError::BadArgument {
                what: "--pcap",
                value: pcap.display().to_string(),
                why: "a worker still held the aggregate".into(),
            })?;
        return Ok(Aggregated {
            agg,
            read: None,
            capture_error,
        });
    }
    let files = input::expand(&args.flows)?;
    let mut agg = Aggregator::new(opts);
    let st = input::read_files(&files, &mut agg, args.skip_bad)?;
    Ok(Aggregated {
        agg,
        read: Some(st),
        capture_error: None,
    })
}

/// Captures live on `iface` (the workers of `flowtap run --iface`, each
/// with a tap into one aggregate) until `duration` or SIGINT/SIGTERM.
fn live_aggregate(
    iface: &str,
    cfg: &Config,
    duration: Option<std::time::Duration>,
    quiet: bool,
    opts: Options,
) -> Result<Aggregator, DiscoverError> {
    use std::sync::atomic::AtomicBool;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| {
            DiscoverError::BadArgument {
                what: "--iface",
                value: iface.into(),
                why: format!("cannot install the signal handlers: {e}"),
            }
        })?;
    }
    let agg = Arc::new(Mutex::new(Aggregator::new(opts)));
    let tap_agg = Arc::clone(&agg);
    let live = crate::live::LiveOptions {
        iface: iface.to_string(),
        workers: cfg.workers,
        duration,
        tap: Some(crate::live::LiveTap(Arc::new(move |_| {
            Box::new(DiscoverTap::new(Arc::clone(&tap_agg))) as Box<dyn RecordSink + Send>
        }))),
        ..crate::live::LiveOptions::default()
    };
    let summary = crate::live::run_live(cfg, &live, None, &stop, |info| {
        if !quiet {
            eprintln!(
                "flowtap: discover: capturing on {} with {} {} ({} worker(s)){}",
                info.iface,
                info.source,
                info.mode,
                info.workers,
                match duration {
                    Some(d) => format!(" for {:.1}s", d.as_secs_f64()),
                    None => "; stop with Ctrl-C or SIGTERM".into(),
                }
            );
        }
    })
    .map_err(|e| DiscoverError::Live {
        iface: iface.into(),
        err: e.to_string(),
    })?;
    if let Some(e) = &summary.worker_error {
        return Err(DiscoverError::Live {
            iface: iface.into(),
            err: format!("the capture ended early: {e}"),
        });
    }
    if !quiet {
        eprintln!(
            "flowtap: discover: captured {} packets on {iface} in {:.1}s (dropped by the kernel or rings: {})",
            summary.stats.received,
            summary.elapsed.as_secs_f64(),
            summary.capture.socket_dropped + summary.capture.rx_ring_full + summary.capture.shard_ring_full
        );
    }
    // The live options (and so the tap factory's handle) go first.
    drop(live);
    Arc::try_unwrap(agg)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .ok_or_else(|| DiscoverError::Live {
            iface: iface.into(),
            err: "a worker still held the aggregate".into(),
        })
}

/// `flowtap discover`: aggregates, renders, writes, and prints a summary.
pub fn run(args: &DiscoverArgs) -> Result<Outcome, DiscoverError> {
    let started = Instant::now();
    if args.iface.is_none() && (args.duration.is_some() || args.capture.is_some()) {
        return Err(DiscoverError::BadArgument {
            what: if args.duration.is_some() {
                "--duration"
            } else {
                "--capture"
            },
            value: String::new(),
            why: "is for a live capture: give --iface IF".into(),
        });
    }
    if args.format == Format::K8s {
        if args.host.is_empty() && args.cidr.is_empty() {
            return Err(DiscoverError::BadArgument {
                what: "--format",
                value: "k8s".into(),
                why: "NetworkPolicies are for a pod CIDR: give it with --cidr".into(),
            });
        }
        let ns = &args.k8s_namespace;
        let ok = !ns.is_empty()
            && ns.len() <= 63
            && ns
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !ns.starts_with('-')
            && !ns.ends_with('-');
        if !ok {
            return Err(DiscoverError::BadArgument {
                what: "--k8s-namespace",
                value: ns.clone(),
                why: "a namespace is a DNS label: a-z, 0-9 and -, at most 63".into(),
            });
        }
    }
    // A bad baseline fails before a long read.
    let baseline = args
        .baseline
        .as_deref()
        .map(super::baseline::load)
        .transpose()?;
    let Aggregated {
        mut agg,
        read,
        capture_error,
    } = aggregate(args)?;
    agg.finish();
    let mut rules = agg.rules();
    let allowed = baseline
        .as_ref()
        .map(|b| super::baseline::drift(&mut rules, b));
    let origin = match (&args.pcap, &args.iface) {
        (Some(p), _) => p.display().to_string(),
        (None, Some(i)) => format!("a live capture on {i}"),
        (None, None) => args
            .flows
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
    };
    let fw = FirewallOptions {
        table: args.table.clone(),
        hook: args.hook,
        device: args.device.clone(),
        scope: agg.options().scope.clone(),
        direction: agg.options().direction,
        namespace: args.k8s_namespace.clone(),
        ..FirewallOptions::default()
    };
    if fw.hook == Hook::Ingress && fw.device.is_none() && args.format == Format::Nftables {
        return Err(DiscoverError::BadArgument {
            what: "--hook",
            value: "ingress".into(),
            why: "an ingress hook needs --device IFACE".into(),
        });
    }
    let text = render::render(args.format, &rules, &agg.totals, &fw, &origin);
    match &args.output {
        Some(p) => {
            // Written aside and renamed: a reader never sees half a rule file.
            let tmp = p.with_extension("tmp-flowtap");
            let werr = |e| DiscoverError::Write {
                path: p.display().to_string(),
                err: e,
            };
            std::fs::write(&tmp, text.as_bytes()).map_err(werr)?;
            std::fs::rename(&tmp, p).map_err(|e| DiscoverError::Write {
                path: p.display().to_string(),
                err: e,
            })?;
        }
        None => {
            let mut so = std::io::stdout().lock();
            match so.write_all(text.as_bytes()).and_then(|_| so.flush()) {
                // A reader that has seen enough (`| head`) is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                r => r.map_err(|e| DiscoverError::Write {
                    path: "stdout".into(),
                    err: e,
                })?,
            }
        }
    }
    if let Some(e) = &capture_error {
        // Said even with --quiet, as `flowtap run` does.
        eprintln!("flowtap: error: {e}");
    }
    let out = Outcome {
        capture_error,
        rules: rules.len(),
        totals: agg.totals.clone(),
        read,
        seconds: started.elapsed().as_secs_f64(),
    };
    if !args.quiet {
        eprintln!("{}", summary_line(&out, agg.dns_dropped));
        if let Some(n) = allowed {
            eprintln!(
                "flowtap: discover: {} rules new since the baseline ({n} allowed by it)",
                out.rules
            );
        }
    }
    Ok(out)
}

fn summary_line(o: &Outcome, dns_dropped: u64) -> String {
    let t = &o.totals;
    let mut s = format!(
        "flowtap: discover: {} rules from {} flow records (folded {} · out of scope {} · excluded {}) · {} packets · {} bytes · {} app events",
        o.rules, t.records, t.folded, t.out_of_scope, t.excluded, t.packets, t.bytes, t.app_events
    );
    if t.pruned_rules > 0 {
        s.push_str(&format!(
            " · --max-rules evicted smaller rules {} times, holding {} records, {} packets, {} bytes",
            t.pruned_rules, t.pruned_records, t.pruned_packets, t.pruned_bytes
        ));
    }
    if let Some(r) = &o.read {
        let secs = o.seconds.max(1e-9);
        s.push_str(&format!(
            "\nflowtap: discover: read {} lines ({} MB) from {} files in {:.2}s: {:.0} lines/s · other events {} · blank {} · bad {}",
            r.lines,
            r.bytes / 1_000_000,
            r.files,
            o.seconds,
            r.lines as f64 / secs,
            r.other_events,
            r.blank,
            r.bad
        ));
        if let Some(b) = &r.first_bad {
            s.push_str(&format!(" (first: {b})"));
        }
    }
    if dns_dropped > 0 {
        s.push_str(&format!(
            " · names not kept (too many servers) {dns_dropped}"
        ));
    }
    s
}
