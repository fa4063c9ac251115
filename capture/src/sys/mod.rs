//! Small safe wrappers over the Linux calls the live sources need. All the
//! `unsafe` of the live capture code that is not ring access lives here.

use std::ffi::CString;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::time::{SystemTime, UNIX_EPOCH};

/// Asks the CPU to bring every cache line `bytes` lies in into its caches
/// ahead of use (a packet run later, whose bytes another core or an
/// earlier read left in memory). A hint: it changes no result. A few
/// instructions a line (a slice iterator's bounds checks cost several
/// times that).
#[inline(always)]
pub(crate) fn prefetch_range(bytes: &[u8]) {
    let range = bytes.as_ptr_range();
    let mut line = range.start;
    while line < range.end {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: PREFETCHT0 loads nothing into a register and never
        // faults, whatever the address (here one inside `bytes`); SSE is
        // part of the x86_64 baseline.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(line.cast());
        }
        // `wrapping_add`: an address computed, never dereferenced.
        line = line.wrapping_add(64);
    }
}

/// Interface index of `name`, or `None` when no such interface exists.
pub(crate) fn ifindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

/// Whether the process may capture: the effective user is root, or it has
/// CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF in its effective set (a service
/// running as its own user with ambient capabilities, see
/// deploy/systemd/flowtap.service). Any missing privilege beyond these still
/// shows as EPERM where it is needed.
pub(crate) fn may_capture() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() == 0 };
    root || effective_caps().is_some_and(|c| c & CAPTURE_CAPS == CAPTURE_CAPS)
}

/// CAP_NET_ADMIN (12), CAP_NET_RAW (13), CAP_BPF (39).
const CAPTURE_CAPS: u64 = (1 << 12) | (1 << 13) | (1 << 39);

/// The effective capability set (`CapEff` in /proc/self/status).
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// Wall-clock time in nanoseconds since the Unix epoch (one vDSO clock read).
pub(crate) fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

#[repr(C)]
struct IfreqPtr {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// RX channels (rx + combined) of `iface` from ETHTOOL_GCHANNELS, in the
/// calling thread's network namespace.
fn ethtool_rx_channels(iface: &str) -> Option<usize> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    if iface.len() >= libc::IFNAMSIZ {
        return None;
    }
    let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0).ok()?;
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    let mut ifr = IfreqPtr {
        name: [0; libc::IFNAMSIZ],
        data: (&mut ch as *mut EthtoolChannels).cast(),
        _pad: [0; 16],
    };
    for (d, s) in ifr.name.iter_mut().zip(iface.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: `ifr` is a valid ifreq whose data points at a live ethtool_channels.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), SIOCETHTOOL, &mut ifr) };
    if r < 0 {
        return None;
    }
    let n = (ch.rx_count + ch.combined_count) as usize;
    (n > 0).then_some(n)
}

/// Number of RX queues of `iface` (ethtool channels, else sysfs, else 0).
pub(crate) fn rx_queue_count(iface: &str) -> usize {
    if let Some(n) = ethtool_rx_channels(iface) {
        return n;
    }
    std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(0)
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub(crate) fn socket(
    domain: libc::c_int,
    ty: libc::c_int,
    proto: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned descriptor is owned by nobody else.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: `fd` is a fresh, valid descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn setsockopt<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of the size we pass.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// getsockopt into a zeroed `T`; returns the value and the length the kernel wrote.
pub(crate) fn getsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<(T, usize)> {
    let mut val = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` is writable for `len` bytes; the kernel writes at most `len`.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            val.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    // SAFETY: zero-initialised `T: Copy` (plain old data) is a valid value, possibly partly overwritten.
    Ok((unsafe { val.assume_init() }, len as usize))
}

pub(crate) fn bind<T>(fd: BorrowedFd<'_>, addr: &T) -> io::Result<()> {
    // SAFETY: `addr` is a live sockaddr of the size we pass.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (addr as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Non-blocking empty `recvfrom`: kicks the kernel (need_wakeup / busy poll).
pub(crate) fn kick_rx(fd: BorrowedFd<'_>) {
    // SAFETY: a zero-length receive into a null buffer is allowed for AF_XDP / AF_PACKET.
    unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
    }
}

/// Non-blocking empty `sendto`: kicks AF_XDP TX / AF_PACKET TX rings.
#[allow(dead_code)]
pub(crate) fn kick_tx(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a zero-length send from a null buffer only kicks the ring.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) => Ok(()),
            _ => Err(e),
        }
    } else {
        Ok(())
    }
}

/// Waits until `fd` is readable or `timeout_ms` passes. Returns readiness.
pub(crate) fn poll_in(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}

/// A memory mapping, unmapped on drop.
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; synchronisation of its contents is the
// user's business (rings use atomics, frames are owned by one side at a time).
unsafe impl Send for Mmap {}
// SAFETY: as above; `Mmap` itself hands out only raw pointers.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Anonymous private mapping of `len` bytes, pre-faulted.
    pub(crate) fn anon(len: usize) -> io::Result<Mmap> {
        // SAFETY: anonymous mapping, no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Self::from_raw(p, len)
    }

    /// Shared mapping of `len` bytes of `fd` at `offset` (kernel rings).
    pub(crate) fn shared(fd: BorrowedFd<'_>, len: usize, offset: u64) -> io::Result<Mmap> {
        // SAFETY: maps kernel-provided ring memory; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        Self::from_raw(p, len)
    }

    fn from_raw(p: *mut libc::c_void, len: usize) -> io::Result<Mmap> {
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?,
            len,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: we own this mapping and nobody uses it after drop.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn the_effective_set_is_read_from_proc_status() {
        let status = "Name:\tflowtap\nCapInh:\t0000000000000000\nCapEff:\t00000080000030c0\n";
        let eff = parse_cap_eff(status).expect("CapEff");
        assert_eq!(eff & CAPTURE_CAPS, CAPTURE_CAPS);
        assert_eq!(
            parse_cap_eff("CapEff:\t0000000000003000\n").map(|c| c & CAPTURE_CAPS == CAPTURE_CAPS),
            Some(false)
        );
        assert!(effective_caps().is_some());
    }
}
