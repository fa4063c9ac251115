//! Talking to systemd when it runs flowtap as a `Type=notify` service
//! (`NOTIFY_SOCKET` set): READY once the capture runs, RELOADING and READY
//! around a reload, STOPPING when it ends, a STATUS line, and the watchdog
//! pings. Outside systemd every call does nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    // A manager that went away is not flowtap's problem: nothing to do.
    let _ = sd_notify::notify(states);
}

/// The capture runs: the service is up.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts; [`reloaded`] ends it.
pub fn reloading() {
    // systemd wants the monotonic time with RELOADING=1 (notify-reload).
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The reload ended (applied or refused: the service runs either way).
pub fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// The capture is stopping (a signal, `--duration`, a reader gone).
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// When the capture's supervising loop last turned (it turns every 50 ms
/// while the capture runs and every worker is alive).
#[derive(Debug)]
pub struct Heartbeat {
    base: Instant,
    /// Milliseconds after `base` of the last beat; 0: none yet.
    last_ms: std::sync::atomic::AtomicU64,
}

impl Heartbeat {
    pub fn new() -> Arc<Heartbeat> {
        Arc::new(Heartbeat {
            base: Instant::now(),
            last_ms: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn beat(&self) {
        let ms = self.base.elapsed().as_millis().max(1);
        self.last_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn last(&self) -> Option<Instant> {
        match self.last_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.base + Duration::from_millis(ms)),
        }
    }
}

/// Pings the watchdog at half its interval while the [`Heartbeat`] is
/// fresh (`WatchdogSec=` in the unit; no thread without it): a capture loop
/// stuck, or a worker gone, for longer than the interval stops the pings
/// and systemd restarts the service.
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(heartbeat: Arc<Heartbeat>) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = sd_notify::watchdog_enabled().map(|interval| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let every = (interval / 2).max(Duration::from_millis(50));
                while !stop.load(Ordering::Relaxed) {
                    if heartbeat.last().is_some_and(|t| t.elapsed() < interval) {
                        send(&[NotifyState::Watchdog]);
                    }
                    std::thread::sleep(every);
                }
            })
        });
        Watchdog { stop, thread }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
