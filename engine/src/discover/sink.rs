//! The discovery sink of `flowtap run` (`[discover] path = ...`): every
//! worker taps its flow records and app events, unencoded, into one
//! aggregate (bounded: `max_rules` rules, the largest by bytes, plus the
//! counts of what was evicted; names of at most [`super::MAX_NAMED_SINK`]
//! servers), and a thread rewrites the rule file every `interval_minutes`
//! and once more when the run ends. Each write goes to a temporary file in
//! the same directory, synced, then renamed over the rule file: a reader
//! sees the old file or the new one, never half of one. With a `baseline`,
//! the rules it does not allow ("new since baseline") are written beside
//! the rule file the same way.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::baseline::{self, Allowed};
use super::config::DiscoverSection;
use super::render::{self, FirewallOptions, Format};
use super::{Aggregator, DiscoverError, DiscoverTap};
use crate::flow::RecordSink;
use crate::live::LiveTap;

/// What the writer thread needs.
struct Settings {
    path: PathBuf,
    format: Format,
    fw: FirewallOptions,
    baseline: Option<Vec<Allowed>>,
    drift_path: PathBuf,
}

/// What one write put in the rule file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Rules in the file.
    pub rules: usize,
    /// Flow records seen so far.
    pub records: u64,
    /// Rules of the drift report (with a baseline).
    pub new_since_baseline: Option<usize>,
}

/// A running discovery sink.
pub struct DiscoverSink {
    agg: Arc<Mutex<Aggregator>>,
    settings: Arc<Settings>,
    /// Set (and notified) to end the writer thread.
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    writes: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
}

/// Writes `text` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rules".into());
    let tmp = path.with_file_name(format!(".{name}.tmp-flowtap"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

impl Settings {
    /// Renders and writes the rule file (and the drift report).
    fn write(&self, agg: &Mutex<Aggregator>) -> Result<Written, DiscoverError> {
        // The rules are built under the lock (the taps buffer meanwhile),
        // rendered and written without it.
        let (mut rules, mut totals, max) = {
            let a = agg.lock().map_err(|_| DiscoverError::Write {
                path: self.path.display().to_string(),
                err: std::io::Error::other("a worker panicked holding the aggregate"),
            })?;
            (a.rules(), a.totals.clone(), a.options().max_rules)
        };
        // The aggregate holds up to twice `max_rules` between evictions:
        // the file has the largest `max_rules`, the others are counted as
        // pruned.
        if let Some(max) = max {
            for r in rules.drain(max.min(rules.len())..) {
                totals.pruned_rules += 1;
                totals.pruned_records += r.records;
                totals.pruned_packets += r.packets();
                totals.pruned_bytes += r.bytes();
            }
        }
        let origin = "flowtap run (discovery sink)";
        let werr = |p: &Path| {
            let p = p.display().to_string();
            move |e| DiscoverError::Write { path: p, err: e }
        };
        let text = render::render(self.format, &rules, &totals, &self.fw, origin);
        write_atomic(&self.path, &text).map_err(werr(&self.path))?;
        let mut out = Written {
            rules: rules.len(),
            records: totals.records,
            new_since_baseline: None,
        };
        if let Some(b) = &self.baseline {
            baseline::drift(&mut rules, b);
            let text = render::render(
                self.format,
                &rules,
                &totals,
                &self.fw,
                "flowtap run (discovery sink): rules not in the baseline",
            );
            write_atomic(&self.drift_path, &text).map_err(werr(&self.drift_path))?;
            out.new_since_baseline = Some(rules.len());
        }
        Ok(out)
    }
}

impl DiscoverSink {
    /// Starts the sink `sec` asks for (`None`: no `path`, no sink). A bad
    /// setting or baseline, or a rule file that cannot be written, fails
    /// here, before the capture starts: the first write happens now (an
    /// empty rule base).
    pub fn start(sec: &DiscoverSection) -> Result<Option<DiscoverSink>, DiscoverError> {
        if !sec.sink_enabled() {
            return Ok(None);
        }
        let cfg_err = |e: crate::config::ConfigError| DiscoverError::BadArgument {
            what: "[discover]",
            value: sec.path.clone(),
            why: e.to_string(),
        };
        sec.validate().map_err(cfg_err)?;
        let opts = sec.options().map_err(cfg_err)?;
        let format = sec.output_format().map_err(cfg_err)?;
        let baseline = if sec.baseline.is_empty() {
            None
        } else {
            Some(baseline::load(Path::new(&sec.baseline))?)
        };
        let settings = Arc::new(Settings {
            path: PathBuf::from(&sec.path),
            format,
            fw: FirewallOptions {
                scope: opts.scope.clone(),
                direction: opts.direction,
                namespace: sec.k8s_namespace.clone(),
                ..FirewallOptions::default()
            },
            baseline,
            drift_path: sec.drift_file(),
        });
        let agg = Arc::new(Mutex::new(Aggregator::new(opts)));
        settings.write(&agg)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let writes = Arc::new(AtomicU64::new(1));
        let failures = Arc::new(AtomicU64::new(0));
        let every = Duration::from_secs_f64(sec.interval_minutes * 60.0);
        let thread = {
            let (agg, settings, stop) =
                (Arc::clone(&agg), Arc::clone(&settings), Arc::clone(&stop));
            let (writes, failures) = (Arc::clone(&writes), Arc::clone(&failures));
            std::thread::Builder::new()
                .name("flowtap-discover".into())
                .spawn(move || {
                    let (lock, cv) = &*stop;
                    let Ok(mut stopped) = lock.lock() else {
                        return;
                    };
                    loop {
                        let Ok((s, _)) = cv.wait_timeout_while(stopped, every, |s| !*s) else {
                            return;
                        };
                        stopped = s;
                        if *stopped {
                            return;
                        }
                        match settings.write(&agg) {
                            Ok(_) => writes.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                // Said each time: the file on disk is getting old.
                                eprintln!("flowtap: discover: {e} (the previous rule file stays)");
                                failures.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                })
                .map_err(|e| DiscoverError::Write {
                    path: sec.path.clone(),
                    err: e,
                })?
        };
        Ok(Some(DiscoverSink {
            agg,
            settings,
            stop,
            thread: Some(thread),
            writes,
            failures,
        }))
    }

    /// Makes each worker's tap.
    pub fn tap(&self) -> LiveTap {
        let agg = Arc::clone(&self.agg);
        LiveTap(Arc::new(move |_| {
            Box::new(DiscoverTap::new(Arc::clone(&agg))) as Box<dyn RecordSink + Send>
        }))
    }

    /// The rule file.
    pub fn path(&self) -> &Path {
        &self.settings.path
    }

    /// Stops the writer thread and writes the rule file a last time (call
    /// once the workers, so their taps, are gone). Returns what the last
    /// write held and how many writes there were (failed ones apart).
    pub fn finish(mut self) -> Result<(Written, u64, u64), DiscoverError> {
        {
            let (lock, cv) = &*self.stop;
            if let Ok(mut s) = lock.lock() {
                *s = true;
            }
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let w = self.settings.write(&self.agg)?;
        let writes = self.writes.load(Ordering::Relaxed) + 1;
        Ok((w, writes, self.failures.load(Ordering::Relaxed)))
    }
}

impl Drop for DiscoverSink {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        if let Ok(mut s) = lock.lock() {
            *s = true;
        }
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The end-of-run line of the sink.
pub fn summary_line(sec: &DiscoverSection, (w, writes, failures): &(Written, u64, u64)) -> String {
    let mut s = format!(
        "discover: {} rules from {} flow records in {} ({writes} writes",
        w.rules, w.records, sec.path
    );
    if *failures > 0 {
        s.push_str(&format!(", {failures} failed"));
    }
    s.push(')');
    if let Some(n) = w.new_since_baseline {
        s.push_str(&format!(
            "; {n} new since the baseline in {}",
            sec.drift_file().display()
        ));
    }
    s
}
