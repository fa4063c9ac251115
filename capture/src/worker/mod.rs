//! Worker thread setup: CPU pinning, real-time priority, locked memory.

use std::io;

/// Errors setting up a worker thread. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot pin to core {core}: {source} (check the core exists and is in this process's cpuset: `taskset -p $$`)")]
    Pin { core: usize, source: io::Error },
    #[error("cannot set SCHED_FIFO priority {prio}: {source} (run as root or with CAP_SYS_NICE; priority must be 1..=99)")]
    Fifo { prio: i32, source: io::Error },
    #[error(
        "cannot lock memory: {source} (run as root or raise `ulimit -l` / LimitMEMLOCK=infinity)"
    )]
    Mlock { source: io::Error },
}

/// Pins the calling thread to `core`.
pub fn pin_to_core(core: usize) -> Result<(), WorkerError> {
    if core >= libc::CPU_SETSIZE as usize {
        return Err(WorkerError::Pin {
            core,
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `core` < CPU_SETSIZE (checked above).
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size we pass; 0 = calling thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(WorkerError::Pin {
            core,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Gives the calling thread SCHED_FIFO priority `prio` (1..=99).
pub fn set_sched_fifo(prio: i32) -> Result<(), WorkerError> {
    let p = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: `p` is a valid sched_param; 0 = calling thread.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) };
    if r != 0 {
        return Err(WorkerError::Fifo {
            prio,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Locks all current and future pages of the process in memory.
pub fn mlock_all() -> Result<(), WorkerError> {
    // SAFETY: plain syscall, no pointers.
    let r = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    if r != 0 {
        return Err(WorkerError::Mlock {
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Cores this process may run on (its affinity mask), in order.
pub fn allowed_cores() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is writable and of the size we pass.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    // SAFETY: index < CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_to_allowed_core() {
        let cores = allowed_cores();
        assert!(!cores.is_empty());
        let c = cores[0];
        std::thread::spawn(move || pin_to_core(c).unwrap())
            .join()
            .unwrap();
        assert!(matches!(pin_to_core(100_000), Err(WorkerError::Pin { .. })));
    }
}
