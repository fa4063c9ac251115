//! `flowtap`: mirrored traffic in, flow records (JSON lines) out.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use engine::config::Config;
use engine::export::ExportRun;
use engine::offline::{replay, Progress, ReplayOptions, ReplaySummary, OFFLINE_POLICY};
use engine::stats::{serve_metrics, Monitor, Snapshot, WorkerStats};
use output::writer::{BatchSender, LineWriter, WhenFull};

mod cli_live;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// flowtap turns mirrored network traffic (SPAN/TAP ports, VXLAN/GRE/ERSPAN
/// mirrors, or capture files) into JSON flow records: one line per flow, with
/// both directions' packets and bytes, TCP flags and state, VLANs, tunnels
/// and a Community ID that Suricata, Zeek and Arkime share.
#[derive(Parser, Debug)]
#[command(name = "flowtap", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read packets (a capture file, or live from an interface) and write flow records.
    ///
    /// Replay: flowtap run --pcap capture.pcap --output flows.json
    ///
    /// Live (until Ctrl-C / SIGTERM, or --duration): flowtap run --iface eth1 --output flows.json
    Run(RunArgs),
    /// Send a capture file's Ethernet frames into an interface (test traffic).
    ///
    /// Example: flowtap gen --iface veth0 --pcap capture.pcap --pps 20000 --loop 10
    Gen(cli_live::GenArgs),
    /// Check an interface for live capture (queues, RSS key, offloads, XDP) and
    /// print the commands that fix what is wrong; exits 1 while one of them is needed.
    ///
    /// Example: flowtap doctor --iface eth1 --apply
    Doctor(cli_live::DoctorArgs),
    /// Print the default configuration file (every setting, with comments in the README).
    DefaultConfig,
    /// Run PCAP export rules over a capture file: one pcapng per matching
    /// flow (or a shared file), written to --dir, a `pcap` event per file.
    ///
    /// Example: flowtap export --pcap in.pcap --dir out --rule 'name=evil,http.host=*.example.com'
    Export(ExportArgs),
    /// Fold observed flows (a capture, or flow logs flowtap wrote) into an
    /// allow-list rule base: table, CSV, JSON, Markdown, nftables, iptables.
    ///
    /// Example: flowtap discover --pcap in.pcap --host 10.48.52.240 --group /24 --format nftables -o allow.nft
    Discover(Box<engine::discover::cli::DiscoverArgs>),
    /// Talk to a running live capture through its control socket: status,
    /// stats, reload (as SIGHUP), flush-export.
    ///
    /// Example: flowtap ctl --socket /run/flowtap/flowtap.sock reload
    Ctl(cli_live::CtlArgs),
    /// A live terminal view of a running flowtap, read from its `--metrics`
    /// endpoint: per-worker rates, drops, flows, sinks, top talkers, DNS
    /// names, HTTP hosts and TLS server names.
    ///
    /// Example: flowtap top --metrics 127.0.0.1:9464
    Top(TopArgs),
}

#[derive(clap::Args, Debug)]
struct ExportArgs {
    /// Capture file to read (pcap or pcapng).
    #[arg(long, value_name = "FILE")]
    pcap: PathBuf,
    /// An export rule in one line: `key=value` pairs separated by `,`,
    /// alternatives by `|`, e.g. `name=evil,http.host=*.example.com|evil.org,action=flow`.
    /// Keys: name, action (flow|shared), format (pcapng|pcap), snaplen, dir,
    /// compression (none|gzip), max_packets, max_bytes, rotate_bytes, rotate_secs,
    /// retain_files, retain_bytes; conditions: cidr, src_cidr, dst_cidr, port, src_port,
    /// dst_port, proto, vlan, tunnel, app_proto, http.host, http.uri, http.method,
    /// http.status, http.content_type, dns.query, tls.sni, tls.ja3, tls.ja4,
    /// flow_bytes, flow_packets (at least). Repeat for several rules.
    #[arg(long, value_name = "RULE")]
    rule: Vec<String>,
    /// Configuration file; its [[export.rules]] run too.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the rules that name none.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Where events go (as for `run`) [default: `-?types=pcap,stats`: the pcap events and the stats on stdout].
    #[arg(long, short, value_name = "URL|PATH|-", allow_hyphen_values = true)]
    output: Vec<String>,
    /// Worker threads [default: one per core].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Do not print the end-of-run summary on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("input").args(["pcap", "iface"]).multiple(false)))]
struct RunArgs {
    /// Capture file to replay (pcap or pcapng, also gzip- or zstd-compressed; `-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    #[command(flatten)]
    live: cli_live::LiveArgs,
    /// Worker threads; each owns the flows its shard hash gives it [default: one per core; live AF_XDP: one per RX queue].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Where events go; repeat for several sinks, each with its own schema and
    /// types: `-` (stdout), a file path, `file:///p?rotate_bytes=64M&rotate_secs=3600&compress=zstd&keep_files=24` (gzip or zstd),
    /// `gelf+udp://h:p`, `gelf+tcp://h:p`, `syslog+udp://h:p`, `syslog+tcp://h:p`, `kafka://h:p/topic`,
    /// each with `?schema=native|ecs|eve|gelf|nanocorp|nutanix&types=flow,http,dns,tls,stats`
    /// [default: the config's [[output.sinks]], else output.path, else -].
    #[arg(long, short, value_name = "URL|PATH|-", allow_hyphen_values = true)]
    output: Vec<String>,
    /// Serve Prometheus metrics on ADDR:PORT (a bare PORT means 127.0.0.1:PORT).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<String>,
    /// Configuration file (TOML); see `flowtap default-config`.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Replay: read at most this many packets per second (default: as fast as
    /// the workers go), e.g. to keep a replay running while a collector is
    /// restarted.
    #[arg(long, value_name = "N", requires = "pcap")]
    pps: Option<u64>,
    /// Replay: keep serving `--metrics` this many seconds after the replay
    /// ended, so a scraper collects the final figures.
    #[arg(long, value_name = "SECS", requires = "pcap", default_value_t = 0)]
    metrics_linger: u64,
    /// Do not draw the progress bar even when stderr is a terminal.
    #[arg(long)]
    no_progress: bool,
    /// Replay of a pcap file by several workers: bytes of it each worker
    /// reads and parses at a time [default: 262144].
    #[arg(long, value_name = "BYTES", requires = "pcap", value_parser = clap::value_parser!(u32).range(1..))]
    read_chunk: Option<u32>,
    /// Do not print the end-of-run summary on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Gen(args) => cli_live::gen(&args),
        Command::Ctl(args) => cli_live::ctl(&args),
        Command::Doctor(args) => cli_live::doctor(&args),
        Command::DefaultConfig => {
            print!("{}", engine::config::default_config_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(args) => export(args),
        Command::Top(args) => top(&args),
        Command::Discover(args) => engine::discover::cli::run(&args)
            .map(|o| ExitCode::from(o.exit_status()))
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flowtap: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The replay progress bar: percent of the file read, packets/s and Gbit/s
/// since the start, packets so far and the time left, in 80 columns.
struct Bar {
    bar: indicatif::ProgressBar,
    started: std::time::Instant,
}

impl Bar {
    const TEMPLATE: &'static str = "{bar:20} {percent:>3}% {msg} {eta:>4} left";
}

impl Progress for Bar {
    fn update(&self, bytes_read: u64, packets: u64) {
        self.bar.set_position(bytes_read);
        self.bar
            .set_message(rates(packets, bytes_read, self.started.elapsed()));
    }
}

/// "1.42 Mpkt/s 7.76 Gbit/s 12.30 Mpkt" (40 columns at most below 1 Gpkt/s,
/// 1 Tbit/s and 1 T packets): rates since the start, from the file's bytes
/// (wire bytes plus 16 per record).
fn rates(packets: u64, bytes: u64, elapsed: Duration) -> String {
    fn si(v: f64) -> String {
        match v {
            v if v >= 1e9 => format!("{:.2} G", v / 1e9),
            v if v >= 1e6 => format!("{:.2} M", v / 1e6),
            v if v >= 1e3 => format!("{:.1} k", v / 1e3),
            v => format!("{v:.0} "),
        }
    }
    let secs = elapsed.as_secs_f64().max(1e-3);
    format!(
        "{}pkt/s {:.2} Gbit/s {}pkt",
        si(packets as f64 / secs),
        bytes as f64 * 8.0 / secs / 1e9,
        si(packets as f64)
    )
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(w) = args.workers {
        cfg.workers = w;
    }
    if !args.output.is_empty() {
        cfg.output.sinks = args
            .output
            .iter()
            .map(|u| engine::config::SinkSection {
                url: u.clone(),
                ..Default::default()
            })
            .collect();
    }
    if let Some(m) = &args.metrics {
        cfg.output.metrics_listen = m.clone();
    }
    let Some(pcap) = args.pcap.clone() else {
        return cli_live::run(
            &args.live,
            cfg,
            args.quiet,
            args.config.as_deref(),
            !args.output.is_empty(),
        );
    };
    replay_offline(
        cfg,
        &pcap,
        ReplayFlags {
            pps: args.pps,
            read_chunk: args.read_chunk.map(|n| n as usize),
            no_progress: args.no_progress,
            quiet: args.quiet,
            metrics_linger: Duration::from_secs(args.metrics_linger),
        },
    )
}

/// `flowtap export`: the config's rules and the `--rule`s over a capture file.
fn export(args: ExportArgs) -> Result<ExitCode> {
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let dir = args.dir.as_ref().map(|d| d.display().to_string());
    for line in &args.rule {
        let r = engine::export::rules::parse_compact_checked(line, dir.as_deref())?;
        cfg.export.rules.push(r);
    }
    if let Some(d) = &args.dir {
        for r in &mut cfg.export.rules {
            if r.dir.is_empty() {
                r.dir = d.display().to_string();
            }
        }
    }
    if cfg.export.rules.is_empty() {
        anyhow::bail!("no export rule: give --rule 'name=...,<condition>=...' or a --config with [[export.rules]]");
    }
    if let Some(w) = args.workers {
        cfg.workers = w;
    }
    let outputs = if args.output.is_empty() {
        vec!["-?types=pcap,stats".to_string()]
    } else {
        args.output.clone()
    };
    cfg.output.sinks = outputs
        .iter()
        .map(|u| engine::config::SinkSection {
            url: u.clone(),
            ..Default::default()
        })
        .collect();
    replay_offline(
        cfg,
        &args.pcap,
        ReplayFlags {
            pps: None,
            read_chunk: None,
            no_progress: true,
            quiet: args.quiet,
            metrics_linger: Duration::ZERO,
        },
    )
}

/// How `flowtap run --pcap` runs beyond its config.
struct ReplayFlags {
    pps: Option<u64>,
    read_chunk: Option<usize>,
    no_progress: bool,
    quiet: bool,
    metrics_linger: Duration,
}

fn replay_offline(mut cfg: Config, pcap: &std::path::Path, flags: ReplayFlags) -> Result<ExitCode> {
    let ReplayFlags {
        pps,
        read_chunk,
        no_progress,
        quiet,
        metrics_linger,
    } = flags;
    cfg.validate()?;
    let workers = if cfg.workers == 0 {
        usable_cores()
    } else {
        cap_workers(cfg.workers)
    };
    // The flow tables get what the memory budget leaves.
    let plan = engine::budget::plan(&cfg, workers, engine::budget::Input::Replay)?;
    cfg.flow.max_flows_per_worker = plan.flows_per_worker as usize;
    // Every input and config check before any output is opened: a run
    // that fails to start leaves the outputs as they were.
    let mut file = capture::CaptureFile::open(pcap)
        .with_context(|| format!("cannot replay {}", pcap.display()))?;
    file.on_new_link(|link| {
        if !dissect::packet::link_supported(link.0) {
            eprintln!(
                "flowtap: warning: link type {} is not supported: its packets count as undecodable (supported: {})",
                link.0,
                dissect::packet::SUPPORTED_LINKS
            );
        }
    });
    let over_snaplen = file.over_snaplen();
    cfg.output.sink_specs(&[])?;
    cfg.output.volume()?;
    ExportRun::check(&cfg.export, true).context("cannot start PCAP export")?;
    // The endpoint first: a taken port must not cost an output file.
    let monitor = Monitor::new();
    let metrics = serve_metrics(&cfg.output.metrics_listen, &monitor)?;
    let (writer, sender) = spawn_writer(&cfg, OFFLINE_POLICY)?;
    monitor.watch_sinks(sender.probe());
    let export = ExportRun::start(&cfg.export, Some(sender.clone()), true)
        .context("cannot start PCAP export")?;
    if let Some(e) = &export {
        monitor.watch_pcap(e.counters());
    }

    let discovery = engine::discover::sink::DiscoverSink::start(&cfg.discover)?;
    let discovery_tap = discovery.as_ref().map(|d| d.tap());
    let published: Vec<Arc<Mutex<WorkerStats>>> = (0..workers)
        .map(|_| Arc::new(Mutex::new(WorkerStats::default())))
        .collect();
    monitor.watch_workers(published.clone());
    let stop_stats = Arc::new(AtomicBool::new(false));
    let stats_thread = (cfg.output.stats_interval > 0).then(|| {
        let monitor = Arc::clone(&monitor);
        let stop = Arc::clone(&stop_stats);
        let sender = sender.clone();
        let every = Duration::from_secs(cfg.output.stats_interval);
        std::thread::spawn(move || {
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                waited += Duration::from_millis(100);
                if waited < every {
                    continue;
                }
                waited = Duration::ZERO;
                let ev = monitor.snapshot().stats_event(wall_ns());
                sender.submit_stats(&ev);
            }
        })
    });

    let bar = (!no_progress && std::io::stderr().is_terminal()).then(|| {
        let len = std::fs::metadata(pcap).map(|m| m.len()).unwrap_or(0);
        let pb = indicatif::ProgressBar::new(len);
        pb.set_style(
            indicatif::ProgressStyle::with_template(Bar::TEMPLATE)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Bar {
            bar: pb,
            started: std::time::Instant::now(),
        }
    });

    let summary = replay(
        file,
        &cfg,
        workers,
        ReplayOptions {
            sender: Some(sender.clone()),
            published: &published,
            progress: bar.as_ref().map(|b| b as &dyn Progress),
            pps,
            read_chunk,
            export: export.as_ref(),
            tap: discovery_tap
                .as_ref()
                .map(|t| &*t.0 as engine::offline::Tap<'_>),
        },
    )
    .with_context(|| format!("cannot replay {}", pcap.display()));
    drop(discovery_tap);
    let discovered = discovery.map(|d| d.finish()).transpose();
    if let Some(b) = &bar {
        b.bar.finish_and_clear();
    }
    stop_stats.store(true, Ordering::Relaxed);
    if let Some(t) = stats_thread {
        let _ = t.join();
    }
    // Every worker (so every export handle) is gone: the export writer
    // finishes its files and sends their events before the last stats.
    let pcap_summary = export.map(|e| e.finish()).transpose();
    let summary = summary?;
    let pcap_writer = pcap_summary.context("writing PCAP files failed")?;
    let discovered = discovered.context("writing the discovered rules failed")?;
    // The last stats event counts every event before it as delivered (or
    // lost): the sinks finish what they were given first (bounded: a sink
    // that stays down gives up within GIVE_UP_AFTER).
    sender.settle(output::sink::GIVE_UP_AFTER + Duration::from_secs(1));
    let ev = Snapshot {
        per_worker: summary.per_worker.clone(),
        capture: None,
        sinks: monitor.sinks(),
        pcap_writer: pcap_writer.clone(),
    }
    .stats_event(summary.last_ns);
    sender.submit_stats(&ev);
    drop(sender);
    let counters = Arc::clone(writer.counters());
    let sinks = writer.join().context("writing flow records failed")?;
    if metrics.is_some() && !metrics_linger.is_zero() {
        std::thread::sleep(metrics_linger);
    }
    drop(metrics);
    if !quiet {
        print_summary(
            &summary,
            workers,
            counters.events_dropped.load(Ordering::Relaxed),
            pcap_writer.as_ref(),
        );
        for s in &sinks {
            eprintln!("flowtap: {}", s.summary_line());
        }
        eprintln!("flowtap: {}", plan.describe());
        if let Some(d) = &discovered {
            eprintln!(
                "flowtap: {}",
                engine::discover::sink::summary_line(&cfg.discover, d)
            );
        }
    }
    let over_snaplen = over_snaplen.load(Ordering::Relaxed);
    if over_snaplen > 0 && !quiet {
        eprintln!(
            "flowtap: {over_snaplen} record(s) longer than the capture's snaplen were read whole, as tshark reads them"
        );
    }
    if let Some(name) = sinks.iter().find(|s| s.reader_gone).map(|s| &s.name) {
        eprintln!(
            "flowtap: the reader of sink {name} went away: stopped after {} packets",
            summary.stats.received
        );
    }
    let lost = sinks_lost(&sinks);
    if let Some(e) = summary.file_error {
        eprintln!("flowtap: error: {e} (every packet before it was processed and written)");
        return Ok(ExitCode::from(EXIT_DAMAGED_INPUT));
    }
    Ok(lost)
}

#[derive(clap::Args, Debug)]
struct TopArgs {
    /// The instance's metrics endpoint (`output.metrics_listen`; a bare PORT means 127.0.0.1:PORT).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9464")]
    metrics: String,
    /// Seconds between scrapes (the rates are over this interval).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    interval: f64,
}

fn top(args: &TopArgs) -> Result<ExitCode> {
    let addr = output::metrics::metrics_addr(&args.metrics)
        .with_context(|| format!("--metrics: `{}` is not ADDR:PORT or PORT", args.metrics))?;
    if !(args.interval >= 0.1 && args.interval <= 3600.0) {
        anyhow::bail!(
            "--interval: {} is not between 0.1 and 3600 seconds",
            args.interval
        );
    }
    // Fail before taking the terminal when nothing answers.
    engine::top::scrape::fetch(addr, Duration::from_secs(5))
        .context("flowtap top reads a running flowtap's metrics (flowtap run --metrics ...)")?;
    engine::top::run(addr, Duration::from_secs_f64(args.interval)).context("terminal")?;
    Ok(ExitCode::SUCCESS)
}

/// The cores this process may run on (its CPU affinity).
fn usable_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Worker threads beyond the usable cores only cost memory and time (the
/// flows are the same whatever the count): capped, with a warning.
pub(crate) fn cap_workers(asked: usize) -> usize {
    let cores = usable_cores();
    if asked > cores {
        eprintln!(
            "flowtap: warning: {asked} workers asked for but {cores} core(s) are usable: running {cores} (more workers than cores cost memory and time, the flows are the same)"
        );
        return cores;
    }
    asked
}

/// Exit status of a run that read a damaged capture (what came before the
/// damage was processed and written).
const EXIT_DAMAGED_INPUT: u8 = 2;
/// Exit status of a run whose sinks lost events (dropped, failed, or
/// delivered nothing of what they were given).
const EXIT_EVENTS_LOST: u8 = 3;

/// Names each sink that lost events (one line each) and returns the exit
/// status: [`EXIT_EVENTS_LOST`] if any did, else success. A sink whose
/// reader went away (`-o - | head`) lost nothing it was asked to keep.
fn sinks_lost(sinks: &[output::SinkSnapshot]) -> ExitCode {
    let mut lost = false;
    for s in sinks.iter().filter(|s| !s.reader_gone) {
        if s.events_lost() > 0 {
            eprintln!(
                "flowtap: error: sink {} lost {} event(s) (queue full {} · spool full {} · failed {}); exit status {EXIT_EVENTS_LOST}",
                s.name,
                s.events_lost(),
                s.events_dropped,
                s.events_dropped_spool_full,
                s.events_failed
            );
            lost = true;
        } else if s.events_queued > 0 && s.events_sent == 0 {
            eprintln!(
                "flowtap: error: sink {} delivered none of its {} event(s) ({} left in its spool); exit status {EXIT_EVENTS_LOST}",
                s.name, s.events_queued, s.spool_events
            );
            lost = true;
        }
    }
    if lost {
        ExitCode::from(EXIT_EVENTS_LOST)
    } else {
        ExitCode::SUCCESS
    }
}

/// Opens the output and starts the writer thread (offline: lossless;
/// live: drops and counts when full).
fn spawn_writer(cfg: &Config, policy: WhenFull) -> Result<(LineWriter, BatchSender)> {
    let specs = cfg.output.sink_specs(&[])?;
    let volume = cfg.output.volume()?;
    // Nutanix lines: DIRECTION relative to [discover] scope.
    let encode = cfg
        .output
        .encode_options()
        .with_monitor_scope(cfg.discover.monitor_scope()?);
    LineWriter::start(specs, encode, volume, policy).context("cannot start the outputs")
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn print_summary(
    s: &ReplaySummary,
    workers: usize,
    dropped: u64,
    pcap_writer: Option<&output::pcap::PcapSummary>,
) {
    let st = &s.stats;
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "flowtap: {} packets ({} bytes) in {:.3}s with {} worker(s): {:.0} packets/s, {:.2} Gbit/s",
        st.received,
        st.bytes,
        secs,
        workers,
        st.received as f64 / secs,
        st.bytes as f64 * 8.0 / secs / 1e9
    );
    eprintln!(
        "flowtap: fates: flow {} · fragment {} · not-ip {} · undecodable {} (truncated but used: {}); accounted: {}",
        st.flow,
        st.fragment,
        st.not_ip,
        st.undecodable,
        st.truncated,
        if st.fates() == st.received { "yes" } else { "NO" }
    );
    eprintln!(
        "flowtap: flows created {} · records {} · evicted {} · defrag reassembled {} / timed out {} / dropped at cap {} · output drops {}",
        st.flows.created,
        st.records,
        st.flows.evicted,
        st.defrag.reassembled,
        st.defrag.timed_out,
        st.defrag.dropped_at_cap,
        dropped
    );
    for ((layer, why), n) in &st.decode_errors {
        eprintln!("flowtap: decode: {layer}.{why}: {n}");
    }
    if let Some(e) = &st.export {
        let w = pcap_writer.cloned().unwrap_or_default();
        eprintln!(
            "flowtap: export: matches {} · files written {} · packets {} ({} bytes) · buffered {} · pool evictions {} · missed before match {} · queue drops {} · io errors {}",
            e.matches,
            w.files_written,
            e.packets_exported,
            e.bytes_exported,
            e.packets_buffered,
            e.pool_evictions,
            e.packets_missed,
            w.queue_drops,
            w.io_errors
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widest progress line fits 80 columns: a 20-column bar, the
    /// percent, the widest rates and the time left.
    #[test]
    fn progress_line_fits_80_columns() {
        // 999 Mpkt/s and 999 Gbit/s for 1,000 s.
        let widest = rates(
            999_000_000_000,
            999_000_000_000 / 8 * 1_000,
            Duration::from_secs(1_000),
        );
        assert!(widest.len() <= 40, "{widest:?} ({})", widest.len());
        let line = 20 + " 100% ".len() + widest.len() + " 59m left".len();
        assert!(line <= 80, "{line} columns");
        assert_eq!(
            rates(1_420_000, 970_000_000, Duration::from_secs(1)),
            "1.42 Mpkt/s 7.76 Gbit/s 1.42 Mpkt"
        );
        assert_eq!(
            rates(500, 64_000, Duration::from_secs(1)),
            "500 pkt/s 0.00 Gbit/s 500 pkt"
        );
    }
}
