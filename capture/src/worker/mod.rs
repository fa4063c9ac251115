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
    #[error("cannot drop privileges to user {user:?}: {why}")]
    Drop { user: String, why: String },
}

/// Who the process runs as after [`drop_privileges`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub uid: u32,
    pub gid: u32,
    /// Effective capabilities after the drop (`CapEff`, hex): all zero.
    pub cap_eff: u64,
}

/// Becomes `user` (and `group`, else the user's primary group) for good,
/// in every thread: supplementary groups cleared, then gid, then uid. From
/// root to another uid the kernel clears the permitted and effective
/// capabilities, so a capture already set up (its sockets, rings, the XDP
/// program's link, the metrics port) keeps running with none. Checked:
/// fails unless the uid changed and no capability is left.
pub fn drop_privileges(user: &str, group: Option<&str>) -> Result<Dropped, WorkerError> {
    use nix::unistd::{setgid, setgroups, setuid, Group, User};
    let fail = |why: String| WorkerError::Drop {
        user: user.to_string(),
        why,
    };
    let u = User::from_name(user)
        .map_err(|e| fail(format!("cannot look it up: {e}")))?
        .ok_or_else(|| fail("no such user".into()))?;
    let gid = match group {
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| fail(format!("cannot look up group {g:?}: {e}")))?
                .ok_or_else(|| fail(format!("no such group {g:?}")))?
                .gid
        }
        None => u.gid,
    };
    if u.uid.is_root() {
        return Err(fail("it is root: nothing would be dropped".into()));
    }
    // glibc's set*id() change every thread of the process (workers included).
    setgroups(&[gid]).map_err(|e| fail(format!("setgroups: {e}")))?;
    setgid(gid).map_err(|e| fail(format!("setgid: {e}")))?;
    setuid(u.uid).map_err(|e| fail(format!("setuid: {e}")))?;
    let cap_eff = own_status("CapEff:")
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .ok_or_else(|| fail("cannot read CapEff from /proc/self/status".into()))?;
    if nix::unistd::geteuid() != u.uid || cap_eff != 0 {
        return Err(fail(format!(
            "still euid {} with capabilities {cap_eff:x}",
            nix::unistd::geteuid()
        )));
    }
    Ok(Dropped {
        uid: u.uid.as_raw(),
        gid: gid.as_raw(),
        cap_eff,
    })
}

/// The value of a `/proc/self/status` line.
fn own_status(key: &str) -> Option<String> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
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
