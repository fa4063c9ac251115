//! `flowtap top`: a live terminal view of a running flowtap, read from its
//! `/metrics` endpoint every interval: per-worker packets/s and Gbit/s,
//! capture drops by cause, flows active, sinks (up, queue depth, events/s,
//! drops), and over the last interval the top talkers, DNS names, HTTP
//! hosts and TLS server names (from the application metrics).

pub mod scrape;
mod ui;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use scrape::{growth, Scrape, ScrapeError};

pub use ui::run;

/// One worker's line (or the total).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerRow {
    pub worker: String,
    pub packets_per_s: f64,
    pub gbit_per_s: f64,
    pub flows_active: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SinkRow {
    pub name: String,
    pub up: bool,
    pub queue: f64,
    pub capacity: f64,
    pub events_per_s: f64,
    pub dropped: f64,
}

/// A ranked entry: its name and its rate(s) over the last interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ranked {
    pub name: String,
    pub per_s: f64,
    /// A second rate where the list has one (bytes received for talkers).
    pub per_s_2: f64,
}

/// What the screen shows, from two scrapes `seconds` apart.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    pub seconds: f64,
    pub workers: Vec<WorkerRow>,
    pub total: WorkerRow,
    /// (cause, total so far, per second now).
    pub drops: Vec<(String, f64, f64)>,
    pub capture_packets_per_s: Option<f64>,
    pub sinks: Vec<SinkRow>,
    /// Bits/s sent and received per address.
    pub talkers: Vec<Ranked>,
    pub dns_names: Vec<Ranked>,
    pub http_hosts: Vec<Ranked>,
    pub tls_sni: Vec<Ranked>,
    /// The instance counts application metrics (`[app_metrics]`).
    pub app_metrics: bool,
}

fn key1(k: &[String]) -> String {
    k.first().cloned().unwrap_or_default()
}

/// Per-second growth of `metric` summed by `label`, heaviest first.
fn ranked(before: &Scrape, now: &Scrape, metric: &str, label: &str, seconds: f64) -> Vec<Ranked> {
    let g = growth(
        &before.sum_by(metric, &[label], |_| true),
        &now.sum_by(metric, &[label], |_| true),
    );
    let mut out: Vec<Ranked> = g
        .into_iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|(k, v)| Ranked {
            name: key1(&k),
            per_s: v / seconds,
            per_s_2: 0.0,
        })
        .collect();
    out.sort_by(|a, b| b.per_s.total_cmp(&a.per_s).then(a.name.cmp(&b.name)));
    out
}

impl View {
    pub fn new(before: &Scrape, now: &Scrape, seconds: f64) -> View {
        let seconds = seconds.max(1e-3);
        let all = |_: &scrape::Sample| true;
        let per_worker = |m: &str, s: &Scrape| s.sum_by(m, &["worker"], all);
        let packets = growth(
            &per_worker("flowtap_packets_received_total", before),
            &per_worker("flowtap_packets_received_total", now),
        );
        let bytes = growth(
            &per_worker("flowtap_received_bytes_total", before),
            &per_worker("flowtap_received_bytes_total", now),
        );
        let active = per_worker("flowtap_flows_active", now);
        let mut workers: Vec<WorkerRow> = packets
            .iter()
            .map(|(k, p)| WorkerRow {
                worker: key1(k),
                packets_per_s: p / seconds,
                gbit_per_s: bytes.get(k).copied().unwrap_or(0.0) * 8.0 / seconds / 1e9,
                flows_active: active.get(k).copied().unwrap_or(0.0),
            })
            .collect();
        workers.sort_by_key(|w| w.worker.parse::<u64>().unwrap_or(u64::MAX));
        let total = WorkerRow {
            worker: "all".into(),
            packets_per_s: workers.iter().map(|w| w.packets_per_s).sum(),
            gbit_per_s: workers.iter().map(|w| w.gbit_per_s).sum(),
            flows_active: workers.iter().map(|w| w.flows_active).sum(),
        };

        let drops_before = before.sum_by("flowtap_capture_packets_dropped_total", &["reason"], all);
        let drops_now = now.sum_by("flowtap_capture_packets_dropped_total", &["reason"], all);
        let drop_growth = growth(&drops_before, &drops_now);
        let drops = drops_now
            .iter()
            .map(|(k, total)| {
                let g = drop_growth.get(k).copied().unwrap_or(0.0);
                (key1(k), *total, g / seconds)
            })
            .collect();
        let capture_packets_per_s = now
            .samples
            .iter()
            .any(|s| s.name == "flowtap_capture_packets_received_total")
            .then(|| {
                (now.total("flowtap_capture_packets_received_total")
                    - before.total("flowtap_capture_packets_received_total"))
                .max(0.0)
                    / seconds
            });

        let by_sink = |m: &str, s: &Scrape| s.sum_by(m, &["sink"], all);
        let sent = growth(
            &by_sink("flowtap_sink_events_sent_total", before),
            &by_sink("flowtap_sink_events_sent_total", now),
        );
        let up = by_sink("flowtap_sink_up", now);
        let queue = by_sink("flowtap_sink_queue_batches", now);
        let capacity = by_sink("flowtap_sink_queue_capacity_batches", now);
        let dropped = by_sink("flowtap_sink_events_dropped_total", now);
        let sinks = up
            .iter()
            .map(|(k, u)| SinkRow {
                name: key1(k),
                up: *u > 0.0,
                queue: queue.get(k).copied().unwrap_or(0.0),
                capacity: capacity.get(k).copied().unwrap_or(0.0),
                events_per_s: sent.get(k).copied().unwrap_or(0.0) / seconds,
                dropped: dropped.get(k).copied().unwrap_or(0.0),
            })
            .collect();

        let talker = |s: &Scrape| s.sum_by("flowtap_host_bytes_total", &["host", "direction"], all);
        let t = growth(&talker(before), &talker(now));
        let mut hosts: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for (k, v) in t {
            let e = hosts.entry(key1(&k)).or_default();
            match k.get(1).map(String::as_str) {
                Some("sent") => e.0 += v,
                _ => e.1 += v,
            }
        }
        let mut talkers: Vec<Ranked> = hosts
            .into_iter()
            .filter(|(_, (s, r))| s + r > 0.0)
            .map(|(name, (s, r))| Ranked {
                name,
                per_s: s * 8.0 / seconds,
                per_s_2: r * 8.0 / seconds,
            })
            .collect();
        talkers.sort_by(|a, b| {
            (b.per_s + b.per_s_2)
                .total_cmp(&(a.per_s + a.per_s_2))
                .then(a.name.cmp(&b.name))
        });

        View {
            seconds,
            workers,
            total,
            drops,
            capture_packets_per_s,
            sinks,
            talkers,
            dns_names: ranked(
                before,
                now,
                "flowtap_dns_query_names_total",
                "name",
                seconds,
            ),
            http_hosts: ranked(before, now, "flowtap_http_requests_total", "host", seconds),
            tls_sni: ranked(before, now, "flowtap_tls_sni_total", "sni", seconds),
            app_metrics: now
                .samples
                .iter()
                .any(|s| s.name == "flowtap_app_metric_label_limit"),
        }
    }
}

/// Scrapes `addr` every `interval`, keeping the last two scrapes.
pub struct Poller {
    pub addr: SocketAddr,
    pub interval: Duration,
    last: Option<(Instant, Scrape)>,
}

impl Poller {
    pub fn new(addr: SocketAddr, interval: Duration) -> Poller {
        Poller {
            addr,
            interval,
            last: None,
        }
    }

    /// A fresh scrape, and the view against the previous one (None on the
    /// first scrape: rates need two).
    pub fn poll(&mut self) -> Result<Option<View>, ScrapeError> {
        let text = scrape::fetch(self.addr, Duration::from_secs(5))?;
        let now = (Instant::now(), Scrape::new(&text));
        let view = self
            .last
            .as_ref()
            .map(|(t, before)| View::new(before, &now.1, now.0.duration_since(*t).as_secs_f64()));
        self.last = Some(now);
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_rates_over_the_interval() {
        let a = Scrape::new(
            "flowtap_packets_received_total{worker=\"0\"} 100\n\
             flowtap_packets_received_total{worker=\"1\"} 50\n\
             flowtap_received_bytes_total{worker=\"0\"} 1000\n\
             flowtap_host_bytes_total{worker=\"0\",host=\"10.0.0.1\",direction=\"sent\"} 0\n\
             flowtap_dns_query_names_total{worker=\"0\",name=\"a.example\"} 4\n",
        );
        let b = Scrape::new(
            "flowtap_packets_received_total{worker=\"0\"} 300\n\
             flowtap_packets_received_total{worker=\"1\"} 150\n\
             flowtap_received_bytes_total{worker=\"0\"} 251000\n\
             flowtap_flows_active{worker=\"0\"} 7\n\
             flowtap_host_bytes_total{worker=\"0\",host=\"10.0.0.1\",direction=\"sent\"} 500\n\
             flowtap_host_bytes_total{worker=\"1\",host=\"10.0.0.1\",direction=\"received\"} 250\n\
             flowtap_dns_query_names_total{worker=\"0\",name=\"a.example\"} 10\n\
             flowtap_dns_query_names_total{worker=\"1\",name=\"b.example\"} 2\n\
             flowtap_capture_packets_dropped_total{reason=\"ring_full\"} 3\n\
             flowtap_sink_up{sink=\"eve\"} 1\n\
             flowtap_sink_queue_batches{sink=\"eve\"} 2\n\
             flowtap_sink_queue_capacity_batches{sink=\"eve\"} 64\n",
        );
        let v = View::new(&a, &b, 2.0);
        assert_eq!(v.workers.len(), 2);
        assert_eq!(v.workers[0].packets_per_s, 100.0);
        assert_eq!(v.workers[0].gbit_per_s, 250_000.0 * 8.0 / 2.0 / 1e9);
        assert_eq!(v.workers[0].flows_active, 7.0);
        assert_eq!(v.total.packets_per_s, 150.0);
        assert_eq!(v.talkers[0].name, "10.0.0.1");
        assert_eq!((v.talkers[0].per_s, v.talkers[0].per_s_2), (2000.0, 1000.0));
        assert_eq!(v.dns_names[0].name, "a.example");
        assert_eq!(v.dns_names[0].per_s, 3.0);
        assert_eq!(v.dns_names[1].per_s, 1.0);
        assert_eq!(v.drops, vec![("ring_full".to_string(), 3.0, 1.5)]);
        assert_eq!(v.sinks[0].queue, 2.0);
        assert!(v.sinks[0].up);
    }
}
