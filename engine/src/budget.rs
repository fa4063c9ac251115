//! The memory budget: one number (`memory_budget`, bytes) for what the
//! appliance may use, divided over what holds memory. Every part but the
//! flow tables has a cap of its own in the config (reassembly, defrag,
//! export pool, sink queues, capture rings); those caps are reserved whole,
//! and what is left goes to the flow tables: `flow.max_flows_per_worker`
//! derives from it unless the config sets it. A budget too small for the
//! fixed parts is an error naming them.

use crate::config::Config;

/// What one flow costs in the table, all included (the flow, its key and
/// hash slot, its timer, its share of the table's growth), rounded up from
/// the measured 0.84 KB (`benches/scripts/flood_pcap.py`: 1 and 2 million
/// one-packet UDP flows, peak RSS, slope), so a table at its limit stays
/// within its share.
pub const FLOW_BYTES: u64 = 1024;

/// The process itself: code, allocator, threads' stacks, small tables.
pub const BASE_BYTES: u64 = 48 << 20;

/// The fewest flows a worker's table may hold.
pub const MIN_FLOWS_PER_WORKER: u64 = 1024;

/// Replay, per worker: the file's bytes in memory (the sequential
/// reader's 256 KiB buffer, or, when workers share the reading, up to three
/// chunks of 256 KiB plus 64 KiB read past their end) and the packet
/// batches in flight from a reader thread (24 of 256 packets of up to 1600
/// bytes).
const REPLAY_READ_BYTES_PER_WORKER: u64 = 1 << 20;
const REPLAY_BATCHES_PER_WORKER: u64 = 24 * 256 * 1600;

/// The default budget: a quarter of the machine's memory, at most 1 GiB.
pub fn default_budget() -> u64 {
    let quarter = total_memory().map_or(1 << 30, |m| m / 4);
    quarter.clamp(64 << 20, 1 << 30)
}

/// MemTotal from /proc/meminfo.
fn total_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// How the run's budget is divided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    pub budget: u64,
    pub workers: usize,
    /// Fixed reservations: (what, bytes, where it is set).
    pub parts: Vec<(&'static str, u64, &'static str)>,
    /// The flow-table limit per worker (derived, or the config's).
    pub flows_per_worker: u64,
    /// Whether the config set the limit itself.
    pub flows_explicit: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("memory_budget {budget} is too small: {need} are reserved before any flow ({parts}) and {workers} worker(s) need at least {min} flows each; raise memory_budget or lower those settings")]
pub struct BudgetError {
    pub budget: String,
    pub need: String,
    pub parts: String,
    pub workers: usize,
    pub min: u64,
}

/// Where the packets come from, for the buffers that depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Replay,
    /// Live: bytes of capture rings per worker (UMEM, or AF_PACKET ring).
    Live {
        ring_bytes_per_worker: u64,
    },
}

/// Divides `cfg.memory_budget` (0: [`default_budget`]) for `workers`.
pub fn plan(cfg: &Config, workers: usize, input: Input) -> Result<MemoryPlan, BudgetError> {
    let budget = if cfg.memory_budget.0 == 0 {
        default_budget()
    } else {
        cfg.memory_budget.0
    };
    let w = workers.max(1) as u64;
    let sinks = cfg.output.sinks.len().max(1) as u64;
    // A sink's queue plus its pool of spare batches (queue + 8), each
    // batch up to 1.25 times batch_bytes; each worker fills one per sink.
    let batch = cfg.output.batch_bytes as u64 * 5 / 4;
    let queue_batches = cfg.output.queue_batches as u64;
    let mut parts = vec![
        ("process", BASE_BYTES, "fixed"),
        (
            "reassembly",
            cfg.stream.max_bytes_per_worker as u64 * w,
            "stream.max_bytes_per_worker",
        ),
        (
            "defrag",
            cfg.defrag.max_bytes_per_worker as u64 * w,
            "defrag.max_bytes_per_worker",
        ),
        (
            "sink queues",
            sinks * batch * (2 * queue_batches + 8 + w),
            "output.queue_batches, output.batch_bytes",
        ),
    ];
    if !cfg.export.rules.is_empty() {
        parts.push((
            "export pool",
            (cfg.export.pool_bytes_per_worker.0 + cfg.export.fragment_bytes_per_worker.0) * w,
            "export.pool_bytes_per_worker, export.fragment_bytes_per_worker",
        ));
    }
    match input {
        Input::Replay => parts.push((
            "replay buffers",
            (REPLAY_READ_BYTES_PER_WORKER + REPLAY_BATCHES_PER_WORKER) * w,
            "fixed",
        )),
        Input::Live {
            ring_bytes_per_worker,
        } => parts.push((
            "capture rings",
            ring_bytes_per_worker * w,
            "capture.umem_frames × frame_size, capture.afpacket_block_*",
        )),
    }
    let fixed: u64 = parts.iter().map(|p| p.1).sum();
    let derived = budget.saturating_sub(fixed) / w / FLOW_BYTES;
    let explicit = cfg.flow.max_flows_explicit;
    if !explicit && derived < MIN_FLOWS_PER_WORKER {
        return Err(BudgetError {
            budget: human(budget),
            need: human(fixed),
            parts: parts
                .iter()
                .map(|(what, n, _)| format!("{what} {}", human(*n)))
                .collect::<Vec<_>>()
                .join(", "),
            workers,
            min: MIN_FLOWS_PER_WORKER,
        });
    }
    Ok(MemoryPlan {
        budget,
        workers,
        parts,
        flows_per_worker: if explicit {
            cfg.flow.max_flows_per_worker as u64
        } else {
            derived.min((u32::MAX / 2) as u64)
        },
        flows_explicit: explicit,
    })
}

impl MemoryPlan {
    /// The flow tables' share at their limit.
    pub fn flow_bytes(&self) -> u64 {
        self.flows_per_worker * self.workers.max(1) as u64 * FLOW_BYTES
    }

    /// Everything reserved, flow tables included.
    pub fn total(&self) -> u64 {
        self.parts.iter().map(|p| p.1).sum::<u64>() + self.flow_bytes()
    }

    /// One line for the operator.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "memory budget {}: flow tables {} ({} worker(s) × {} flows × {} B{})",
            human(self.budget),
            human(self.flow_bytes()),
            self.workers,
            self.flows_per_worker,
            FLOW_BYTES,
            if self.flows_explicit {
                ", flow.max_flows_per_worker"
            } else {
                ""
            }
        );
        for (what, n, _) in &self.parts {
            s.push_str(&format!(" · {what} {}", human(*n)));
        }
        s
    }
}

/// `1.5 GiB`, `64 MiB`, `12 KiB`.
pub fn human(n: u64) -> String {
    let (v, unit) = if n >= 1 << 30 {
        (n as f64 / (1u64 << 30) as f64, "GiB")
    } else if n >= 1 << 20 {
        (n as f64 / (1u64 << 20) as f64, "MiB")
    } else {
        (n as f64 / 1024.0, "KiB")
    };
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Size;

    #[test]
    fn the_flow_tables_get_what_the_fixed_parts_leave() {
        let mut cfg = Config {
            memory_budget: Size(1 << 30),
            ..Config::default()
        };
        let one = plan(&cfg, 1, Input::Replay).expect("plan");
        let two = plan(&cfg, 2, Input::Replay).expect("plan");
        assert!(one.total() <= 1 << 30 && two.total() <= 1 << 30);
        assert!(one.flows_per_worker > 2 * two.flows_per_worker);
        assert!(two.flows_per_worker >= MIN_FLOWS_PER_WORKER);
        // Set in the config: kept as is.
        cfg.flow.max_flows_per_worker = 5000;
        cfg.flow.max_flows_explicit = true;
        assert_eq!(
            plan(&cfg, 2, Input::Replay).expect("plan").flows_per_worker,
            5000
        );
    }

    #[test]
    fn a_budget_below_the_fixed_parts_is_refused_naming_them() {
        let cfg = Config {
            memory_budget: Size(64 << 20),
            ..Config::default()
        };
        let e = plan(&cfg, 2, Input::Replay).expect_err("too small");
        let m = e.to_string();
        assert!(m.contains("memory_budget 64.0 MiB is too small"), "{m}");
        assert!(m.contains("reassembly 512.0 MiB"), "{m}");
    }

    #[test]
    fn the_default_is_a_quarter_of_the_memory_at_most_1_gib() {
        let d = default_budget();
        assert!((64 << 20..=1 << 30).contains(&d), "{d}");
        if let Some(m) = total_memory() {
            assert_eq!(d, (m / 4).clamp(64 << 20, 1 << 30));
        }
    }
}
