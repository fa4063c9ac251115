//! One AF_XDP socket with its own UMEM, bound to one RX queue.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

use super::ring::Ring;
use super::{BusyPoll, XdpConfig, XdpError};
use crate::sys::{self, Mmap};

const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

/// UMEM: the frame memory shared with the kernel. Frames are `frame_size`
/// aligned chunks; a frame is owned by exactly one side at a time (fill ring
/// / kernel / RX ring / the worker holding it).
pub(crate) struct Umem {
    map: Mmap,
    pub(crate) frame_size: u32,
}

impl Umem {
    /// Bytes of the frame at `addr` (as the kernel gave it in an RX
    /// descriptor), or `None` when the descriptor points outside the UMEM.
    #[inline]
    pub(crate) fn frame(&self, addr: u64, len: u32) -> Option<&[u8]> {
        let end = addr.checked_add(len as u64)?;
        if end > self.map.len() as u64 || len > self.frame_size {
            return None;
        }
        // SAFETY: the range is inside the mapping (checked above); the frame
        // is owned by the caller (consumed from the RX ring, not yet returned),
        // so the kernel does not write it while the slice lives.
        Some(unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(addr as usize), len as usize)
        })
    }

    #[inline]
    pub(crate) fn base_of(&self, addr: u64) -> u64 {
        addr & !(self.frame_size as u64 - 1)
    }
}

/// A bound AF_XDP socket: RX and fill rings plus UMEM.
pub(crate) struct Xsk {
    pub(crate) rx: Ring<libc::xdp_desc>,
    pub(crate) fill: Ring<u64>,
    _comp: Ring<u64>,
    pub(crate) fd: OwnedFd,
    pub(crate) umem: Arc<Umem>,
    pub(crate) zero_copy: bool,
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> XdpError {
    move |source| XdpError::Io { what, source }
}

impl Xsk {
    /// Creates, configures and binds a socket to `ifindex`/`queue`. With
    /// `zero_copy` it binds with XDP_ZEROCOPY, otherwise with XDP_COPY.
    pub(crate) fn create(
        cfg: &XdpConfig,
        ifindex: u32,
        queue: u32,
        zero_copy: bool,
    ) -> Result<Xsk, XdpError> {
        let fd =
            sys::socket(libc::AF_XDP, libc::SOCK_RAW, 0).map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => XdpError::NotRoot,
                Some(libc::EAFNOSUPPORT) => XdpError::Io {
                    what: "creating AF_XDP socket (kernel built without CONFIG_XDP_SOCKETS?)",
                    source: e,
                },
                _ => XdpError::Io {
                    what: "creating AF_XDP socket",
                    source: e,
                },
            })?;
        let len = cfg.frames as usize * cfg.frame_size as usize;
        let map = Mmap::anon(len).map_err(io_err(
            "allocating UMEM (lower `frames` or raise the memlock limit)",
        ))?;
        let reg = libc::xdp_umem_reg {
            addr: map.as_ptr() as u64,
            len: len as u64,
            chunk_size: cfg.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        let b = fd.as_fd();
        sys::setsockopt(b, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)
            .map_err(io_err("registering UMEM"))?;
        sys::setsockopt(b, libc::SOL_XDP, libc::XDP_UMEM_FILL_RING, &cfg.fill_ring)
            .map_err(io_err("sizing the fill ring"))?;
        // The kernel requires a completion ring for every UMEM, even RX-only.
        let comp_size: u32 = 64;
        sys::setsockopt(b, libc::SOL_XDP, libc::XDP_UMEM_COMPLETION_RING, &comp_size)
            .map_err(io_err("sizing the completion ring"))?;
        sys::setsockopt(b, libc::SOL_XDP, libc::XDP_RX_RING, &cfg.rx_ring)
            .map_err(io_err("sizing the RX ring"))?;
        let (off, _) =
            sys::getsockopt::<libc::xdp_mmap_offsets>(b, libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)
                .map_err(io_err("reading ring offsets"))?;
        let rx = Ring::map(b, &off.rx, cfg.rx_ring, libc::XDP_PGOFF_RX_RING as u64)
            .map_err(io_err("mapping the RX ring"))?;
        let fill = Ring::map(b, &off.fr, cfg.fill_ring, libc::XDP_UMEM_PGOFF_FILL_RING)
            .map_err(io_err("mapping the fill ring"))?;
        let comp = Ring::map(b, &off.cr, comp_size, libc::XDP_UMEM_PGOFF_COMPLETION_RING)
            .map_err(io_err("mapping the completion ring"))?;

        if let Some(BusyPoll { usecs, budget }) = cfg.busy_poll {
            let one: libc::c_int = 1;
            let us = usecs as libc::c_int;
            let bud = budget as libc::c_int;
            sys::setsockopt(b, libc::SOL_SOCKET, libc::SO_PREFER_BUSY_POLL, &one)
                .map_err(io_err("enabling busy poll"))?;
            sys::setsockopt(b, libc::SOL_SOCKET, libc::SO_BUSY_POLL, &us)
                .map_err(io_err("setting busy poll time"))?;
            sys::setsockopt(b, libc::SOL_SOCKET, SO_BUSY_POLL_BUDGET, &bud)
                .map_err(io_err("setting busy poll budget"))?;
        }

        let mut flags = if zero_copy {
            libc::XDP_ZEROCOPY
        } else {
            libc::XDP_COPY
        };
        if cfg.need_wakeup {
            flags |= libc::XDP_USE_NEED_WAKEUP;
        }
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // A socket of a process that just died releases its queue from a
        // kernel work item: retry EBUSY briefly before calling the queue busy.
        let mut tries = 0;
        let bound = loop {
            match sys::bind(b, &sa) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r,
            }
        };
        bound.map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) => XdpError::QueueBusy {
                iface: cfg.iface.clone(),
                queue,
            },
            Some(libc::EINVAL) if queue >= sys::rx_queue_count(&cfg.iface).max(1) as u32 => {
                XdpError::Config(format!(
                    "queue {queue} does not exist on {} (it has {} RX queues)",
                    cfg.iface,
                    sys::rx_queue_count(&cfg.iface)
                ))
            }
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) if zero_copy => {
                XdpError::ZeroCopyUnsupported {
                    iface: cfg.iface.clone(),
                    queue,
                    source: e,
                }
            }
            _ => XdpError::Io {
                what: "binding AF_XDP socket",
                source: e,
            },
        })?;
        let zc = sys::getsockopt::<libc::xdp_options>(b, libc::SOL_XDP, libc::XDP_OPTIONS)
            .map(|(o, _)| o.flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
            .unwrap_or(zero_copy);
        Ok(Xsk {
            rx,
            fill,
            _comp: comp,
            fd,
            umem: Arc::new(Umem {
                map,
                frame_size: cfg.frame_size,
            }),
            zero_copy: zc,
        })
    }

    pub(crate) fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// XDP_STATISTICS of the socket.
    pub(crate) fn statistics(&self) -> io::Result<XdpSocketStats> {
        let (s, len) = sys::getsockopt::<libc::xdp_statistics>(
            self.fd.as_fd(),
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
        )?;
        let full = len >= size_of::<libc::xdp_statistics>();
        Ok(XdpSocketStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            rx_ring_full: if full { s.rx_ring_full } else { 0 },
            rx_fill_ring_empty_descs: if full { s.rx_fill_ring_empty_descs } else { 0 },
        })
    }
}

/// Kernel counters of one AF_XDP socket (XDP_STATISTICS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpSocketStats {
    /// Dropped for reasons other than a full RX ring (e.g. frame too big).
    pub rx_dropped: u64,
    /// Invalid descriptors given to the kernel in the fill ring.
    pub rx_invalid_descs: u64,
    /// Dropped because the RX ring was full (user space too slow).
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty (no frame to receive into).
    pub rx_fill_ring_empty_descs: u64,
}
