//! The live-capture side of the `flowtap` binary: `run --iface`, `gen` and
//! `doctor`. A module of the binary (declared in main.rs), not of the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use capture::gen::{GenConfig, GenMethod, GenSource};
use engine::config::{CaptureSource, Config, XdpModeSetting};
use engine::live::{run_live_with_export, LiveOptions, LiveSummary, StopCause, LIVE_POLICY};
use engine::stats::{serve_metrics, Monitor};

/// Options of `flowtap run` that only make sense live.
#[derive(clap::Args, Debug)]
pub struct LiveArgs {
    /// Capture live from this interface (needs root) [default: capture.iface from the config].
    #[arg(long, value_name = "IF")]
    pub iface: Option<String>,
    /// Live source [default: from the config, else afxdp].
    #[arg(long, value_name = "SOURCE", conflicts_with = "pcap")]
    pub capture: Option<CaptureSource>,
    /// Where the XDP program runs (AF_XDP) [default: from the config, else auto].
    #[arg(long, value_name = "MODE", conflicts_with = "pcap")]
    pub xdp_mode: Option<XdpModeSetting>,
    /// Stop after SECS seconds [default: run until SIGINT or SIGTERM].
    #[arg(long, value_name = "SECS", value_parser = parse_secs, conflicts_with = "pcap")]
    pub duration: Option<Duration>,
    /// Only count frames and hand them straight back (no decoding, no flow
    /// records): the capture ceiling, for benchmarks.
    #[arg(long, conflicts_with = "pcap")]
    pub capture_only: bool,
    /// Listen for `flowtap ctl` on this Unix socket (mode 0600) [default: control.socket from the config; none if empty].
    #[arg(long, value_name = "PATH", conflicts_with = "pcap")]
    pub control_socket: Option<PathBuf>,
}

/// `flowtap ctl`: talk to a running live capture through its control socket.
#[derive(clap::Args, Debug)]
pub struct CtlArgs {
    /// The capture's control socket (`run --control-socket`, `control.socket`).
    #[arg(long, value_name = "PATH", default_value = engine::control::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Seconds to wait for the reply (a reload waits for every worker).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub timeout: Duration,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(clap::Subcommand, Debug, Clone, Copy)]
pub enum CtlCommand {
    /// Uptime, capture source and mode, workers, sinks up or down (JSON).
    Status,
    /// The figures of the `stats` event, now (JSON).
    Stats,
    /// Re-read the configuration file and apply it without a restart (as
    /// SIGHUP does); a bad configuration is refused with the error and the
    /// running one stays. Exits 1 when refused.
    Reload,
    /// Finish the shared PCAP export files and write out the per-flow ones now.
    FlushExport,
}

impl CtlCommand {
    fn wire(self) -> &'static str {
        match self {
            CtlCommand::Status => "status",
            CtlCommand::Stats => "stats",
            CtlCommand::Reload => "reload",
            CtlCommand::FlushExport => "flush-export",
        }
    }
}

/// `flowtap ctl ...`: prints the reply (pretty JSON) on stdout; a refused
/// request prints its error on stderr and exits 1.
pub fn ctl(args: &CtlArgs) -> Result<ExitCode> {
    let reply = engine::control::request(&args.socket, args.command.wire(), args.timeout)?;
    if reply["ok"] == true {
        let body = reply
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.as_str() != "ok"))
            .map(|(_, v)| v.clone())
            .unwrap_or(serde_json::Value::Null);
        println!("{}", serde_json::to_string_pretty(&body)?);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "flowtap ctl {}: {}",
            args.command.wire(),
            reply["error"].as_str().unwrap_or("refused")
        );
        Ok(ExitCode::FAILURE)
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

/// SIGINT/SIGTERM set `stop`; a second one ends the process at once.
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .context("cannot install the signal handlers")?;
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install the signal handlers")?;
    }
    Ok(stop)
}

/// `flowtap run --iface IF ...`: `cfg` already has --workers / --output;
/// `config` is the file it came from (reloaded on SIGHUP and `ctl reload`),
/// `cli_sinks` whether --output gave the sinks (a reload keeps them).
pub fn run(
    live: &LiveArgs,
    mut cfg: Config,
    quiet: bool,
    config: Option<&std::path::Path>,
    cli_sinks: bool,
) -> Result<ExitCode> {
    // SIGHUP reloads; registered first, as its default action ends the process.
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .context("cannot install the signal handlers")?;
    let file_cfg = match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(s) = live.capture {
        cfg.capture.source = s;
    }
    if let Some(m) = live.xdp_mode {
        cfg.capture.xdp_mode = m;
    }
    // AF_PACKET runs one socket and worker per core; AF_XDP one per RX
    // queue (more than the NIC has is refused, naming the count).
    if cfg.capture.source == CaptureSource::AfPacket {
        cfg.workers = crate::cap_workers(cfg.workers);
    }
    // DPDK: the port is a device name EAL knows (--iface, else
    // capture.dpdk.port, else capture.iface).
    let iface = match live.iface.as_deref() {
        Some(i) if !i.is_empty() => i.to_string(),
        _ if cfg.capture.source == CaptureSource::Dpdk && !cfg.capture.dpdk.port.is_empty() => {
            cfg.capture.dpdk.port.clone()
        }
        _ => cfg.capture.iface.clone(),
    };
    if iface.is_empty() {
        bail!("nothing to read: give --pcap FILE to replay a capture, or --iface IF to capture live (or set capture.iface in the config)");
    }
    cfg.validate()?;
    // The flow tables get what the memory budget leaves.
    let plan = memory_plan(&cfg, &iface)?;
    cfg.flow.max_flows_per_worker = plan.flows_per_worker as usize;
    let stop = stop_on_signals()?;
    // The endpoint first: a taken port must not cost an output file or an
    // attached XDP program.
    let monitor = Monitor::new();
    let metrics = serve_metrics(&cfg.output.metrics_listen, &monitor)?;
    let discovery = engine::discover::sink::DiscoverSink::start(&cfg.discover)?;
    // Under systemd (Type=notify, WatchdogSec=): pinged while the capture
    // loop turns.
    let heartbeat = engine::service::Heartbeat::new();
    let watchdog = engine::service::Watchdog::start(Arc::clone(&heartbeat));
    let opts = LiveOptions {
        iface: iface.clone(),
        workers: cfg.workers,
        duration: live.duration,
        capture_only: live.capture_only,
        monitor: Some(monitor),
        hub: None,
        tap: discovery.as_ref().map(|d| d.tap()),
        heartbeat: Some(Arc::clone(&heartbeat)),
    };
    let (writer, sender) = crate::spawn_writer(&cfg, LIVE_POLICY)?;
    let export = engine::export::ExportRun::start(&cfg.export, Some(sender.clone()), false)
        .context("cannot start PCAP export")?;
    if let (Some(e), Some(m)) = (&export, &opts.monitor) {
        m.watch_pcap(e.counters());
    }
    // The workers take their outputs and export from the hub, which a
    // reload (SIGHUP, `flowtap ctl reload`) updates.
    let hub = engine::reload::LiveHub::new(Some(sender.clone()), export);
    let monitor = opts.monitor.clone().unwrap_or_else(Monitor::new);
    let reloader = Arc::new(engine::reload::Reloader::new(
        config.map(std::path::Path::to_path_buf),
        cli_sinks,
        file_cfg,
        cfg.clone(),
        writer,
        Arc::clone(&hub),
        Some(Arc::clone(&monitor)),
    ));
    let control = engine::control::LiveControl::new(monitor, Arc::clone(&reloader));
    let socket = match &live.control_socket {
        Some(p) => Some(p.clone()),
        None if !cfg.control.socket.is_empty() => Some(PathBuf::from(&cfg.control.socket)),
        None => None,
    };
    // Made before the capture drops its privileges (it may then no longer
    // write the socket's directory); handed to capture.drop_user.
    let server = match &socket {
        Some(p) => {
            let owner =
                (!cfg.capture.drop_user.is_empty()).then_some(cfg.capture.drop_user.as_str());
            Some(engine::control::ControlServer::start(
                p,
                owner,
                Arc::clone(&control),
            )?)
        }
        None => None,
    };
    let opts = LiveOptions {
        hub: Some(Arc::clone(&hub)),
        ..opts
    };
    // A reader that closes stdout (`-o - | head`) stops the capture, as a
    // signal does. SIGHUP reloads.
    let capturing = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (stop, capturing, hub) = (Arc::clone(&stop), Arc::clone(&capturing), Arc::clone(&hub));
        std::thread::spawn(move || {
            while capturing.load(Ordering::Relaxed) {
                if hub.sender().is_some_and(|s| s.reader_gone()) {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let reload_on_hup = {
        let (capturing, control) = (Arc::clone(&capturing), Arc::clone(&control));
        std::thread::spawn(move || {
            while capturing.load(Ordering::Relaxed) {
                if hup.swap(false, Ordering::Relaxed) {
                    // Logged (applied or refused) by the control itself.
                    let _ = control.reload();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let result = run_live_with_export(
        &cfg,
        &opts,
        Some(sender),
        &stop,
        |info| {
            control.set_info(engine::control::CaptureInfo {
                source: info.source.to_string(),
                iface: info.iface.clone(),
                mode: info.mode.clone(),
                workers: info.workers,
                capture_only: info.capture_only,
            });
            engine::service::ready(&format!(
                "capturing on {} with {} {}, {} worker(s)",
                info.iface, info.source, info.mode, info.workers
            ));
            if !quiet {
                eprintln!(
                "flowtap: capturing on {} with {} {} ({} worker(s){}); stop with Ctrl-C or SIGTERM",
                info.iface,
                info.source,
                info.mode,
                info.workers,
                if info.capture_only {
                    ", capture only"
                } else {
                    ""
                }
            );
                if let Some(d) = &info.dropped_to {
                    eprintln!(
                        "flowtap: now running as uid {} gid {} with no capabilities (capture.drop_user)",
                        d.uid, d.gid
                    );
                }
                if let Some(s) = &server {
                    eprintln!(
                        "flowtap: control socket {} (flowtap ctl --socket {0} status)",
                        s.path().display()
                    );
                }
            }
        },
        None,
    );
    engine::service::stopping();
    drop(watchdog);
    // The workers (so the export handles) are gone: the export writer
    // finishes its files and sends their events, then the line writer ends.
    capturing.store(false, Ordering::Relaxed);
    let _ = watcher.join();
    let _ = reload_on_hup.join();
    drop(server);
    drop(control);
    hub.release_sender();
    let exported = hub.take_export().map(|e| e.finish()).transpose();
    let (writer, replaced_exports) = reloader.finish();
    let written = writer
        .context("the outputs were taken")?
        .join()
        .context("writing flow records failed");
    drop(metrics);
    for e in &replaced_exports {
        eprintln!("flowtap: error: an export writer replaced by a reload: {e}");
    }
    drop(opts);
    let discovered = discovery.map(|d| d.finish()).transpose();
    let summary = result.with_context(|| format!("cannot capture on {iface}"))?;
    let sinks = written?;
    exported.context("writing PCAP files failed")?;
    let discovered = discovered.context("writing the discovered rules failed")?;
    if !quiet {
        print_summary(&summary);
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
    if let Some(e) = &summary.worker_error {
        eprintln!(
            "flowtap: error: capture on {iface} ended early: {e} (every open flow was written)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(crate::sinks_lost(&sinks))
}

/// The memory plan of a live run: its workers (AF_XDP: one per RX queue
/// unless --workers says; AF_PACKET: one per core) and their rings.
fn memory_plan(cfg: &Config, iface: &str) -> Result<engine::budget::MemoryPlan> {
    let c = &cfg.capture;
    let (workers, ring) = match c.source {
        // DPDK: one RX queue per worker (--workers, default 1), each with
        // its share of the mbuf pool.
        CaptureSource::Dpdk => {
            let workers = cfg.workers.max(1);
            let budget = if cfg.memory_budget.0 == 0 {
                engine::budget::default_budget()
            } else {
                cfg.memory_budget.0
            };
            (
                workers,
                u64::from(c.dpdk.mbufs_for(budget, workers)) * engine::config::MBUF_BYTES,
            )
        }
        CaptureSource::AfPacket => (
            match cfg.workers {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            },
            u64::from(c.afpacket_block_size) * u64::from(c.afpacket_block_count),
        ),
        _ => (
            match cfg.workers {
                0 => std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                            .count()
                    })
                    .unwrap_or(1)
                    .max(1),
                n => n,
            },
            u64::from(c.umem_frames) * u64::from(c.frame_size),
        ),
    };
    Ok(engine::budget::plan(
        cfg,
        workers,
        engine::budget::Input::Live {
            ring_bytes_per_worker: ring,
        },
    )?)
}

fn print_summary(s: &LiveSummary) {
    let st = &s.stats;
    let c = &s.capture;
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let why = match s.cause {
        StopCause::Signal => "stopped by signal",
        StopCause::Duration => "duration reached",
        StopCause::WorkerFailed => "a worker ended",
    };
    eprintln!(
        "flowtap: {} packets ({} bytes) in {secs:.3}s on {} with {} {} and {} worker(s), {why}: {:.0} packets/s, {:.3} Gbit/s",
        st.received,
        st.bytes,
        c.iface,
        c.source,
        c.mode,
        s.workers,
        st.received as f64 / secs,
        st.bytes as f64 * 8.0 / secs / 1e9
    );
    eprintln!(
        "flowtap: capture drops: {} (socket {} · rx ring full {} · shard ring full {} · invalid {} · unbound queue {}) · pre-filter dropped {} · output events dropped {}",
        c.dropped(),
        c.socket_dropped,
        c.rx_ring_full,
        c.shard_ring_full,
        c.invalid,
        c.unbound,
        c.filtered(),
        c.output_events_dropped
    );
    if let Some(n) = &c.nic {
        eprintln!(
            "flowtap: DPDK port: received {} packets ({} bytes) · imissed {} · ierrors {} · rx_nombuf {}",
            n.rx_packets, n.rx_bytes, n.imissed, n.ierrors, n.rx_nombuf
        );
    }
    if c.capture_only {
        eprintln!(
            "flowtap: capture only: {} packets counted, none decoded",
            st.uninspected
        );
        return;
    }
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
        "flowtap: flows created {} · records {} · evicted {} · defrag reassembled {} / timed out {} / dropped at cap {}",
        st.flows.created,
        st.records,
        st.flows.evicted,
        st.defrag.reassembled,
        st.defrag.timed_out,
        st.defrag.dropped_at_cap,
    );
}

/// How `flowtap gen` transmits.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum GenMethodArg {
    /// AF_PACKET sendmmsg: delivers everywhere.
    AfPacket,
    /// BPF_F_TEST_XDP_LIVE_FRAMES + XDP_TX: millions of pps (on a veth the
    /// peer needs an XDP program or GRO on).
    XdpLive,
}

/// `flowtap gen`: replay a capture file's Ethernet frames into an interface.
#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// Interface to send into. Never one that leads off the machine unless you mean it.
    #[arg(long, value_name = "IF")]
    pub iface: String,
    /// Capture file (pcap or pcapng) whose Ethernet frames are sent in order.
    #[arg(long, value_name = "FILE")]
    pub pcap: PathBuf,
    /// Packets per second [default: as fast as possible].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub pps: Option<u64>,
    /// Times to send the whole file.
    #[arg(long = "loop", value_name = "N", default_value_t = 1)]
    pub loops: u64,
    /// Transmit method.
    #[arg(long, value_enum, default_value = "af-packet")]
    pub method: GenMethodArg,
}

pub fn gen(args: &GenArgs) -> Result<ExitCode> {
    let stop = stop_on_signals()?;
    let mut cfg = GenConfig::new(&args.iface, GenSource::Pcap(args.pcap.clone()));
    cfg.pps = args.pps;
    cfg.loops = args.loops;
    cfg.method = match args.method {
        GenMethodArg::AfPacket => GenMethod::AfPacket,
        GenMethodArg::XdpLive => GenMethod::XdpLive,
    };
    let rep = capture::gen::run(&cfg, &stop)
        .with_context(|| format!("cannot send into {}", args.iface))?;
    eprintln!(
        "flowtap gen: sent {} frames ({} bytes) into {} in {:.3}s: {:.0} packets/s; skipped {} (not Ethernet or over {} bytes); refused {}{}",
        rep.sent,
        rep.bytes,
        args.iface,
        rep.elapsed.as_secs_f64(),
        rep.pps(),
        rep.skipped,
        capture::gen::MAX_FRAME,
        rep.failed,
        if stop.load(Ordering::Relaxed) { " (stopped by signal)" } else { "" }
    );
    if rep.failed > 0 {
        eprintln!(
            "flowtap: error: the kernel refused {} frame(s): are they larger than the MTU of {}? (`ip link set dev {} mtu N`)",
            rep.failed, args.iface, args.iface
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `flowtap doctor`: check what live capture depends on.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Interface to inspect (with `--capture dpdk`: a PCI address, an
    /// interface name, or a DPDK virtual device such as net_pcap0).
    #[arg(long, value_name = "IF")]
    pub iface: String,
    /// The source to check for: afxdp/afpacket (the NIC's queues, RSS,
    /// offloads) or dpdk (hugepages, IOMMU/VFIO, binding, NUMA).
    #[arg(long, value_name = "SOURCE")]
    pub capture: Option<CaptureSource>,
    /// Run the fix commands (needs root), then inspect again.
    #[arg(long)]
    pub apply: bool,
}

/// `flowtap doctor --capture dpdk`: the workers' cores are the ones this
/// process may run on (as `pin_workers` would use them).
fn doctor_dpdk(args: &DoctorArgs) -> Result<ExitCode> {
    let cores = capture::worker::allowed_cores();
    let report = tuning::dpdk::inspect(&args.iface, &cores);
    print!("{}", report.render());
    if args.apply {
        bail!("--apply is not offered for DPDK: binding a NIC to vfio-pci takes it from the kernel; run the commands above by hand");
    }
    let fixes = report.fix_commands();
    if !fixes.is_empty() {
        println!(
            "
to fix, run:"
        );
        for f in &fixes {
            println!("  {f}");
        }
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn inspect(iface: &str) -> Result<tuning::doctor::Report> {
    let mut r =
        tuning::doctor::inspect(iface).with_context(|| format!("cannot inspect {iface}"))?;
    if let Ok(Some(f)) = capture::afxdp::xdp_features(iface) {
        r.set_xdp(tuning::doctor::XdpSupport {
            native: f.native && f.redirect,
            zero_copy: f.zero_copy,
        });
    }
    Ok(r)
}

/// Exit status: 0 when no problem with a fix command is left (problems
/// without one, like a driver without zero-copy, are only reported), else 1.
pub fn doctor(args: &DoctorArgs) -> Result<ExitCode> {
    if args.capture == Some(CaptureSource::Dpdk) {
        return doctor_dpdk(args);
    }
    let mut report = inspect(&args.iface)?;
    print!("{}", report.render());
    let fixes = report.fix_commands();
    if fixes.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if !args.apply {
        println!(
            "\nto fix everything, run (or `flowtap doctor --iface {} --apply`):",
            args.iface
        );
        for f in &fixes {
            println!("  {f}");
        }
        return Ok(ExitCode::FAILURE);
    }
    println!("\napplying:");
    for a in tuning::doctor::apply(&report) {
        println!(
            "  [{}] {}{}{}",
            if a.ok { "ok" } else { "FAILED" },
            a.command,
            if a.output.is_empty() { "" } else { ": " },
            a.output.replace('\n', " ")
        );
    }
    report = inspect(&args.iface)?;
    println!("\nafter applying:");
    print!("{}", report.render());
    Ok(if report.fix_commands().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
