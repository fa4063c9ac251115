//! The control socket of a live capture and its protocol (`flowtap ctl`).
//!
//! A Unix stream socket, mode 0600 (owner only: root, or the
//! `capture.drop_user` it is handed to). One request per line, one reply
//! per line, both JSON objects; a connection may send several requests.
//!
//! ```text
//! -> {"cmd":"status"}
//! <- {"ok":true,"status":{"uptime_secs":12.5,"iface":"eth1",...}}
//! -> {"cmd":"reload"}
//! <- {"ok":false,"error":"invalid config value: output.sinks[1].url: ..."}
//! ```
//!
//! Commands: `status` (uptime, capture source and mode, workers, sinks up
//! or down, reloads done), `stats` (the figures of the `stats` event, as
//! that event's JSON), `reload` (see [`crate::reload`]), `flush-export`
//! (finish the shared PCAP files and write out the per-flow ones now). A
//! bare word (`status`) is taken as `{"cmd":"status"}`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::reload::Reloader;
use crate::stats::Monitor;

/// The default socket path of `flowtap ctl` (the systemd unit's).
pub const DEFAULT_SOCKET: &str = "/run/flowtap/flowtap.sock";

/// Longest request line accepted.
const MAX_REQUEST: usize = 4096;
/// How long a reply waits for the export writer's flush.
const FLUSH_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control.socket {path}: {what}")]
    Io {
        path: String,
        what: &'static str,
        source: io::Error,
    },
    #[error("control.socket {0}: another flowtap answers on it (stop it, or give this one another --control-socket)")]
    InUse(String),
    #[error("control.socket {path}: user {user:?} (capture.drop_user) not found")]
    NoSuchUser { path: String, user: String },
}

/// What the capture reports once running (for `status`).
#[derive(Clone, Debug, Default)]
pub struct CaptureInfo {
    pub source: String,
    pub iface: String,
    pub mode: String,
    pub workers: usize,
    pub capture_only: bool,
}

/// What the control socket answers from.
pub struct LiveControl {
    started: Instant,
    info: Mutex<Option<CaptureInfo>>,
    monitor: Arc<Monitor>,
    reloader: Arc<Reloader>,
}

impl LiveControl {
    pub fn new(monitor: Arc<Monitor>, reloader: Arc<Reloader>) -> Arc<LiveControl> {
        Arc::new(LiveControl {
            started: Instant::now(),
            info: Mutex::new(None),
            monitor,
            reloader,
        })
    }

    /// The capture is running (every worker started).
    pub fn set_info(&self, info: CaptureInfo) {
        if let Ok(mut g) = self.info.lock() {
            *g = Some(info);
        }
    }

    pub fn reloader(&self) -> &Arc<Reloader> {
        &self.reloader
    }

    /// The reply to one request line.
    pub fn handle(&self, line: &str) -> Value {
        let line = line.trim();
        let cmd = if line.starts_with('{') {
            match serde_json::from_str::<Value>(line) {
                Ok(v) => match v.get("cmd").and_then(Value::as_str) {
                    Some(c) => c.to_string(),
                    None => return fail("request without a \"cmd\" string"),
                },
                Err(e) => return fail(&format!("request is not JSON: {e}")),
            }
        } else {
            line.to_string()
        };
        match cmd.as_str() {
            "status" => json!({"ok": true, "status": self.status()}),
            "stats" => json!({"ok": true, "stats": self.stats()}),
            "reload" => match self.reload() {
                Ok(v) => json!({"ok": true, "reload": v}),
                Err(e) => fail(&e),
            },
            "flush-export" => match self.flush_export() {
                Ok(v) => json!({"ok": true, "flush_export": v}),
                Err(e) => fail(&e),
            },
            other => fail(&format!(
                "unknown command {other:?}: status, stats, reload or flush-export"
            )),
        }
    }

    fn status(&self) -> Value {
        let info = self
            .info
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_default();
        let sinks: Vec<Value> = self
            .monitor
            .sinks()
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "kind": s.kind,
                    "schema": s.schema,
                    "up": s.up,
                    "queue_batches": s.queue_batches,
                    "queue_capacity": s.queue_capacity,
                    "events_sent": s.events_sent,
                    "events_lost": s.events_lost(),
                })
            })
            .collect();
        let running = self.reloader.running();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_secs": (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            "source": info.source,
            "iface": info.iface,
            "mode": info.mode,
            "workers": info.workers,
            "capture_only": info.capture_only,
            "config": self.reloader.path().map(|p| p.display().to_string()),
            "reloads": self.reloader.reloads(),
            "export_rules": running.export.rules.len(),
            "sinks": sinks,
            "sinks_up": sinks.iter().filter(|s| s["up"] == true).count(),
            "sinks_down": sinks.iter().filter(|s| s["up"] != true).count(),
        })
    }

    /// The figures of the `stats` event now, as that event's JSON.
    fn stats(&self) -> Value {
        let ev = self.monitor.snapshot().stats_event(crate::live::wall_ns());
        let mut buf = Vec::new();
        output::schema::encode_stats(
            output::Schema::Native,
            &output::EncodeOptions::default(),
            &ev,
            &mut buf,
        );
        serde_json::from_slice::<Value>(&buf)
            .ok()
            .and_then(|v| v.get("stats").cloned())
            .unwrap_or(Value::Null)
    }

    /// Reloads the configuration; logs the outcome on stderr (as SIGHUP does).
    pub fn reload(&self) -> Result<Value, String> {
        crate::service::reloading();
        let result = self.reloader.reload();
        crate::service::reloaded(match &result {
            Ok(_) => "capturing; configuration reloaded",
            Err(_) => "capturing; reload refused, the running configuration stays",
        });
        match result {
            Ok(r) => {
                eprintln!("flowtap: {}", r.describe());
                Ok(json!({
                    "generation": r.generation,
                    "sinks_kept": r.sinks.kept,
                    "sinks_started": r.sinks.started,
                    "sinks_retired": r.sinks.retired,
                    "export_changed": r.export_changed,
                    "filter_changed": r.filter_changed,
                    "app_metrics_changed": r.app_metrics_changed,
                    "needs_restart": r.needs_restart,
                    "workers_took_over": r.workers_took_over,
                }))
            }
            Err(e) => {
                let msg = error_chain(&e);
                eprintln!("flowtap: reload refused, the running configuration stays: {msg}");
                Err(msg)
            }
        }
    }

    fn flush_export(&self) -> Result<Value, String> {
        let run = self
            .reloader
            .hub()
            .export()
            .ok_or("no PCAP export runs (no [[export.rules]])")?;
        let r = run
            .flush_now(FLUSH_WAIT)
            .ok_or("the export writer did not answer in time")?;
        Ok(json!({
            "shared_files_finished": r.shared_files_finished,
            "flow_files_flushed": r.flow_files_flushed,
        }))
    }
}

/// `e: its source: its source ...` on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn fail(msg: &str) -> Value {
    json!({"ok": false, "error": msg})
}

/// The listening socket and its thread; removes the socket when dropped.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Creates the socket at `path` (mode 0600; owned by `owner` when
    /// given, the user the capture drops to) and serves `control` on it.
    /// The socket appears with its final mode: it is made in a private
    /// directory next to `path` and renamed into place. A leftover socket
    /// nobody answers on is replaced; one that answers is an error.
    pub fn start(
        path: &Path,
        owner: Option<&str>,
        control: Arc<LiveControl>,
    ) -> Result<ControlServer, ControlError> {
        let p = path.display().to_string();
        let io_err = |what: &'static str| {
            let p = p.clone();
            move |source| ControlError::Io {
                path: p,
                what,
                source,
            }
        };
        let owner = match owner {
            Some(user) => Some(
                nix::unistd::User::from_name(user)
                    .ok()
                    .flatten()
                    .map(|u| (u.uid.as_raw(), u.gid.as_raw()))
                    .ok_or_else(|| ControlError::NoSuchUser {
                        path: p.clone(),
                        user: user.to_string(),
                    })?,
            ),
            None => None,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(io_err("cannot create its directory"))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750))
                .map_err(io_err("cannot set its directory's mode"))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                    .map_err(io_err("cannot hand its directory to capture.drop_user"))?;
            }
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(ControlError::Io {
                    path: p,
                    what: "exists and is not a socket (not replaced)",
                    source: io::Error::from(io::ErrorKind::AlreadyExists),
                });
            }
            if UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse(p));
            }
            std::fs::remove_file(path).map_err(io_err("cannot remove the stale socket"))?;
        }
        let private = dir.join(format!(".flowtap-ctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&private);
        std::fs::create_dir(&private).map_err(io_err("cannot create a private directory"))?;
        let made = (|| {
            std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))?;
            let tmp = private.join("s");
            let listener = UnixListener::bind(&tmp)?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))?;
            }
            std::fs::rename(&tmp, path)?;
            Ok(listener)
        })();
        let _ = std::fs::remove_dir_all(&private);
        let listener = made.map_err(io_err("cannot create the socket"))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("cannot set the socket non-blocking"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("control".into())
                .spawn(move || serve(listener, stop, control))
                .map_err(io_err("cannot start its thread"))?
        };
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Accepts until `stop`; each connection gets its own thread (a slow
/// client, or a reload waiting for the workers, holds up no other).
fn serve(listener: UnixListener, stop: Arc<AtomicBool>, control: Arc<LiveControl>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                let control = Arc::clone(&control);
                let _ = std::thread::Builder::new()
                    .name("control-conn".into())
                    .spawn(move || {
                        let _ = answer(conn, &control);
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn answer(conn: UnixStream, control: &LiveControl) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_REQUEST as u64)
            .read_line(&mut line)?;
        if n == 0 {
            return Ok(());
        }
        let reply = if !line.ends_with('\n') && n >= MAX_REQUEST {
            fail(&format!("request longer than {MAX_REQUEST} bytes"))
        } else {
            control.handle(&line)
        };
        let mut text = reply.to_string();
        text.push('\n');
        out.write_all(text.as_bytes())?;
    }
}

/// `flowtap ctl`: sends `cmd` to the socket at `path`, returns the reply.
pub fn request(path: &Path, cmd: &str, timeout: Duration) -> Result<Value, ControlClientError> {
    let p = path.display().to_string();
    let conn = UnixStream::connect(path).map_err(|source| ControlClientError::Connect {
        path: p.clone(),
        source,
    })?;
    conn.set_read_timeout(Some(timeout))
        .and_then(|()| conn.set_write_timeout(Some(timeout)))
        .map_err(|source| ControlClientError::Io {
            path: p.clone(),
            source,
        })?;
    let mut w = conn.try_clone().map_err(|source| ControlClientError::Io {
        path: p.clone(),
        source,
    })?;
    let line = format!("{}\n", json!({ "cmd": cmd }));
    w.write_all(line.as_bytes())
        .map_err(|source| ControlClientError::Io {
            path: p.clone(),
            source,
        })?;
    let mut reply = String::new();
    BufReader::new(conn)
        .read_line(&mut reply)
        .map_err(|source| ControlClientError::Io {
            path: p.clone(),
            source,
        })?;
    serde_json::from_str(&reply).map_err(|e| ControlClientError::Reply {
        path: p,
        message: e.to_string(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ControlClientError {
    #[error("cannot connect to {path} (is a live `flowtap run` with a control socket running, and may you open it? it is 0600)")]
    Connect { path: String, source: io::Error },
    #[error("control socket {path}")]
    Io { path: String, source: io::Error },
    #[error("control socket {path}: bad reply: {message}")]
    Reply { path: String, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::reload::{LiveHub, Reloader};
    use output::writer::{LineWriter, WhenFull};

    struct Setup {
        dir: PathBuf,
        cfg: PathBuf,
        control: Arc<LiveControl>,
        hub: Arc<LiveHub>,
    }

    fn setup(tag: &str) -> Setup {
        let dir =
            std::env::temp_dir().join(format!("flowtap-control-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let cfg = dir.join("flowtap.toml");
        std::fs::write(
            &cfg,
            format!(
                "[[output.sinks]]\nurl = \"{}\"\n",
                dir.join("a.json").display()
            ),
        )
        .expect("config");
        let file = Config::load(&cfg).expect("load");
        let (writer, sender) = LineWriter::start(
            file.output.sink_specs(&[]).expect("specs"),
            file.output.encode_options(),
            file.output.volume().expect("volume"),
            WhenFull::DropNewest,
        )
        .expect("writer");
        let monitor = Monitor::new();
        monitor.watch_sinks(sender.probe());
        // The run begins (a sink starts with its first event).
        sender.submit_stats(&output::event::StatsEvent {
            ts_ns: 1,
            members: Vec::new(),
        });
        let hub = LiveHub::new(Some(sender), None);
        let reloader = Arc::new(Reloader::new(
            Some(cfg.clone()),
            false,
            file.clone(),
            file,
            writer,
            Arc::clone(&hub),
            Some(Arc::clone(&monitor)),
        ));
        let control = LiveControl::new(monitor, reloader);
        Setup {
            dir,
            cfg,
            control,
            hub,
        }
    }

    /// Waits (bounded) until `n` sinks are up.
    fn sinks_up(c: &LiveControl, n: u64) {
        let t0 = Instant::now();
        while c.handle("status")["status"]["sinks_up"] != n {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "{}",
                c.handle("status")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn finish(s: Setup) {
        s.hub.release_sender();
        let (writer, errors) = s.control.reloader().finish();
        assert!(errors.is_empty(), "{errors:?}");
        writer.expect("writer").join().expect("join");
        let _ = std::fs::remove_dir_all(&s.dir);
    }

    #[test]
    fn requests_are_answered_and_bad_ones_refused() {
        let s = setup("proto");
        sinks_up(&s.control, 1);
        let st = s.control.handle("status\n");
        assert_eq!(st["ok"], true, "{st}");
        assert_eq!(st["status"]["sinks_down"], 0, "{st}");
        assert_eq!(st["status"]["reloads"], 0, "{st}");
        assert_eq!(s.control.handle("{\"cmd\":\"status\"}")["ok"], true);
        let stats = s.control.handle("{\"cmd\":\"stats\"}");
        assert!(stats["stats"]["packets"].is_object(), "{stats}");
        for (line, says) in [
            ("{\"cmd\":\"nope\"}", "unknown command \"nope\""),
            ("{bad", "not JSON"),
            ("{}", "without a \"cmd\""),
            ("flush-export", "no PCAP export"),
        ] {
            let r = s.control.handle(line);
            assert_eq!(r["ok"], false, "{line}: {r}");
            assert!(
                r["error"].as_str().unwrap_or("").contains(says),
                "{line}: {r}"
            );
        }
        finish(s);
    }

    #[test]
    fn a_bad_config_is_refused_naming_the_field_and_a_good_one_applied() {
        let s = setup("reload");
        sinks_up(&s.control, 1);
        let good = std::fs::read_to_string(&s.cfg).expect("cfg");
        for (bad, says) in [
            (format!("{good}workers = \"two\"\n"), "workers"),
            (
                format!("{good}[output.sample]\nhttp = \"often\"\n"),
                "http = \"often\"",
            ),
            (
                format!(
                    "{good}[[output.sinks]]\nurl = \"{}\"\n",
                    s.dir.join("missing").join("b.json").display()
                ),
                "missing",
            ),
        ] {
            std::fs::write(&s.cfg, &bad).expect("cfg");
            let r = s.control.handle("reload");
            assert_eq!(r["ok"], false, "{bad}: {r}");
            let e = r["error"].as_str().unwrap_or("");
            assert!(e.contains(says), "{says} in {e}");
            assert_eq!(s.control.handle("status")["status"]["sinks_up"], 1);
        }
        // Settings a reload cannot change are named, the rest applied.
        std::fs::write(
            &s.cfg,
            format!(
                "{good}[[output.sinks]]\nurl = \"{}\"\n[flow]\nvlan_in_key = false\n",
                s.dir.join("b.json").display()
            ),
        )
        .expect("cfg");
        let r = s.control.handle("reload");
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["reload"]["generation"], 1, "{r}");
        assert_eq!(
            r["reload"]["sinks_started"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(r["reload"]["needs_restart"], json!(["flow"]), "{r}");
        sinks_up(&s.control, 2);
        assert_eq!(s.control.handle("status")["status"]["reloads"], 1);
        finish(s);
    }

    #[test]
    fn the_socket_is_private_replaces_a_stale_one_and_refuses_a_live_one() {
        let s = setup("socket");
        let path = s.dir.join("run").join("ctl.sock");
        // A socket left by a killed run: nobody answers on it.
        std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        drop(UnixListener::bind(&path).expect("stale socket"));
        assert!(path.exists());
        let server = ControlServer::start(&path, None, Arc::clone(&s.control)).expect("start");
        let meta = std::fs::metadata(&path).expect("socket");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "only the socket: {leftovers:?}");
        let r = request(&path, "status", Duration::from_secs(5)).expect("status");
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["status"]["pid"], std::process::id());
        let e = ControlServer::start(&path, None, Arc::clone(&s.control))
            .err()
            .expect("a second server on a live socket");
        assert!(matches!(e, ControlError::InUse(_)), "{e}");
        // Several requests on one connection, each answered on its line.
        let mut conn = UnixStream::connect(&path).expect("connect");
        conn.write_all(b"status\n{\"cmd\":\"stats\"}\nnope\n")
            .expect("write");
        let mut lines = BufReader::new(conn.try_clone().expect("clone")).lines();
        for want in [true, true, false] {
            let l = lines.next().expect("a reply").expect("read");
            let v: Value = serde_json::from_str(&l).expect("json");
            assert_eq!(v["ok"], want, "{l}");
        }
        drop(server);
        assert!(!path.exists(), "removed when the server ends");
        // A file that is not a socket is never replaced.
        std::fs::write(&path, "keep me").expect("file");
        let e = ControlServer::start(&path, None, Arc::clone(&s.control))
            .err()
            .expect("a regular file in the way");
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), "keep me");
        std::fs::remove_file(&path).expect("rm");
        let e = request(&path, "status", Duration::from_secs(1)).expect_err("gone");
        assert!(e.to_string().contains("cannot connect"), "{e}");
        finish(s);
    }
}
