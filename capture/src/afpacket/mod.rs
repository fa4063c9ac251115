//! AF_PACKET capture with a TPACKET_V3 mmap ring, for kernels or NICs where
//! XDP is not available. Open one [`AfPacketSocket`] per worker with the same
//! fanout group id: the kernel spreads packets over the group with
//! PACKET_FANOUT_HASH, whose flow hash is symmetric, so each worker sees both
//! directions of its flows.
//!
//! Frames are handed to the callback in place in the ring; a block is given
//! back to the kernel as soon as all its packets were handed out. VLAN tags
//! the kernel stripped into the packet header are put back in front of the
//! frame in place (4 bytes of reserved headroom), so `data` is the frame as
//! it was on the wire. `ts_ns` is the kernel's receive timestamp (no clock
//! read in user space).

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::source::{LinkType, Packet, PacketSource, Poll, SourceStats};
use crate::sys::{self, Mmap};

const ETH_P_ALL: u16 = 0x0003;
const TPACKET_V3: libc::c_int = 2;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_RESERVE: libc::c_int = 12;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_MR_PROMISC: u16 = 1;
const PACKET_FANOUT_HASH: u32 = 0;
const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const VLAN_RESERVE: u32 = 4;

/// AF_PACKET capture configuration.
#[derive(Clone, Debug)]
pub struct AfPacketConfig {
    pub iface: String,
    /// Ring block size in bytes (power of two, multiple of the page size).
    pub block_size: u32,
    /// Number of blocks in the ring.
    pub block_count: u32,
    /// A partly filled block is handed to user space after this many ms.
    pub block_timeout_ms: u32,
    /// Put the interface in promiscuous mode while the socket is open.
    pub promiscuous: bool,
    /// Ask the kernel to reassemble IP fragments before hashing (fanout
    /// defrag), so all fragments of a datagram reach the same worker.
    pub fanout_defrag: bool,
}

impl AfPacketConfig {
    /// Defaults: 64 blocks of 1 MiB, 10 ms block timeout, promiscuous, defrag.
    pub fn new(iface: impl Into<String>) -> AfPacketConfig {
        AfPacketConfig {
            iface: iface.into(),
            block_size: 1 << 20,
            block_count: 64,
            block_timeout_ms: 10,
            promiscuous: true,
            fanout_defrag: true,
        }
    }
}

/// AF_PACKET errors. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    #[error(
        "interface {0:?} does not exist: check the name with `ip link` (and the network namespace)"
    )]
    NoSuchInterface(String),
    #[error("permission denied: run as root (or with CAP_NET_RAW)")]
    NotRoot,
    #[error("fanout group {group} on {iface} is in use with other settings ({source}): pick another group id")]
    FanoutBusy {
        iface: String,
        group: u16,
        source: io::Error,
    },
    #[error("invalid AF_PACKET config: {0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> AfPacketError {
    move |source| match source.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => AfPacketError::NotRoot,
        _ => AfPacketError::Io { what, source },
    }
}

/// One AF_PACKET socket with a TPACKET_V3 RX ring, member of a fanout group.
pub struct AfPacketSocket {
    ring: Mmap,
    fd: OwnedFd,
    block_size: usize,
    block_count: usize,
    /// Block we are reading, and where in it.
    cur: usize,
    left: u32,
    off: usize,
    received: u64,
    kernel_dropped: Cell<u64>,
    seen_by_kernel: Cell<u64>,
}

impl AfPacketSocket {
    /// Opens a socket on `cfg.iface` and joins fanout group `fanout_group`
    /// (same id in every worker of one capture).
    pub fn open(cfg: &AfPacketConfig, fanout_group: u16) -> Result<AfPacketSocket, AfPacketError> {
        let page = 4096u32;
        if !cfg.block_size.is_power_of_two() || cfg.block_size < page || cfg.block_count == 0 {
            return Err(AfPacketError::Config(format!(
                "block_size {} must be a power of two >= {page}, block_count {} > 0",
                cfg.block_size, cfg.block_count
            )));
        }
        let ifindex = sys::ifindex(&cfg.iface)
            .ok_or_else(|| AfPacketError::NoSuchInterface(cfg.iface.clone()))?;
        // protocol 0: receive nothing until bound to the interface
        let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0)
            .map_err(io_err("creating AF_PACKET socket"))?;
        let b = fd.as_fd();
        sys::setsockopt(b, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V3)
            .map_err(io_err("selecting TPACKET_V3"))?;
        sys::setsockopt(b, libc::SOL_PACKET, PACKET_RESERVE, &VLAN_RESERVE)
            .map_err(io_err("reserving headroom"))?;
        let one: libc::c_int = 1;
        // Only what arrives on the port; best effort (kernel >= 4.20).
        let _ = sys::setsockopt(b, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &one);
        let frame_size = 2048u32;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: cfg.block_size / frame_size * cfg.block_count,
            tp_retire_blk_tov: cfg.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::setsockopt(b, libc::SOL_PACKET, PACKET_RX_RING, &req).map_err(io_err(
            "creating the RX ring (lower block_size/block_count?)",
        ))?;
        let len = cfg.block_size as usize * cfg.block_count as usize;
        let ring = Mmap::shared(b, len, 0).map_err(io_err("mapping the RX ring"))?;
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid starting value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex as i32;
        sys::bind(b, &sll).map_err(io_err("binding to the interface"))?;
        if cfg.promiscuous {
            // SAFETY: packet_mreq is plain data.
            let mut mr: libc::packet_mreq = unsafe { std::mem::zeroed() };
            mr.mr_ifindex = ifindex as i32;
            mr.mr_type = PACKET_MR_PROMISC;
            sys::setsockopt(b, libc::SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr)
                .map_err(io_err("enabling promiscuous mode"))?;
        }
        let mut mode = PACKET_FANOUT_HASH;
        if cfg.fanout_defrag {
            mode |= PACKET_FANOUT_FLAG_DEFRAG;
        }
        let arg: u32 = fanout_group as u32 | (mode << 16);
        sys::setsockopt(b, libc::SOL_PACKET, PACKET_FANOUT, &arg).map_err(|source| match source
            .raw_os_error()
        {
            Some(libc::EINVAL) | Some(libc::EALREADY) | Some(libc::EEXIST) => {
                AfPacketError::FanoutBusy {
                    iface: cfg.iface.clone(),
                    group: fanout_group,
                    source,
                }
            }
            _ => AfPacketError::Io {
                what: "joining the fanout group",
                source,
            },
        })?;
        Ok(AfPacketSocket {
            ring,
            fd,
            block_size: cfg.block_size as usize,
            block_count: cfg.block_count as usize,
            cur: 0,
            left: 0,
            off: 0,
            received: 0,
            kernel_dropped: Cell::new(0),
            seen_by_kernel: Cell::new(0),
        })
    }

    /// The socket descriptor (for poll/epoll by the caller).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Blocks until a block is ready or `timeout_ms` passes.
    pub fn wait(&self, timeout_ms: i32) -> Result<bool, AfPacketError> {
        if self.left > 0 || self.block_status(self.cur) & TP_STATUS_USER != 0 {
            return Ok(true);
        }
        sys::poll_in(self.fd.as_fd(), timeout_ms).map_err(|source| AfPacketError::Io {
            what: "poll",
            source,
        })
    }

    fn block_ptr(&self, i: usize) -> *mut u8 {
        // SAFETY: i < block_count, so the offset is inside the mapping.
        unsafe { self.ring.as_ptr().add(i * self.block_size) }
    }

    fn status_word(&self, i: usize) -> &AtomicU32 {
        // SAFETY: block_status is the u32 at offset 8 of the block header,
        // 4-aligned, inside the mapping; the kernel updates it atomically.
        unsafe { &*(self.block_ptr(i).add(8) as *const AtomicU32) }
    }

    fn block_status(&self, i: usize) -> u32 {
        self.status_word(i).load(Ordering::Acquire)
    }

    fn rd32(p: *const u8, off: usize) -> u32 {
        // SAFETY: callers pass header pointers inside the mapping; fields are 4-aligned.
        unsafe { (p.add(off) as *const u32).read_volatile() }
    }

    fn rd16(p: *const u8, off: usize) -> u16 {
        // SAFETY: as above, 2-aligned.
        unsafe { (p.add(off) as *const u16).read_volatile() }
    }

    /// Cumulative PACKET_STATISTICS (the kernel resets them on each read).
    fn refresh_stats(&self) {
        if let Ok((s, _)) = sys::getsockopt::<libc::tpacket_stats_v3>(
            self.fd.as_fd(),
            libc::SOL_PACKET,
            PACKET_STATISTICS,
        ) {
            self.kernel_dropped
                .set(self.kernel_dropped.get() + s.tp_drops as u64);
            self.seen_by_kernel
                .set(self.seen_by_kernel.get() + s.tp_packets as u64);
        }
    }

    /// Packets the kernel queued to this socket (including dropped ones).
    pub fn kernel_packets(&self) -> u64 {
        self.refresh_stats();
        self.seen_by_kernel.get()
    }
}

impl PacketSource for AfPacketSocket {
    type Error = AfPacketError;

    fn poll_batch<F>(&mut self, max: usize, mut f: F) -> Result<Poll, AfPacketError>
    where
        F: FnMut(&Packet<'_>),
    {
        let mut n = 0usize;
        while n < max {
            if self.left == 0 {
                if self.block_status(self.cur) & TP_STATUS_USER == 0 {
                    break;
                }
                let bp = self.block_ptr(self.cur);
                self.left = Self::rd32(bp, 12);
                self.off = Self::rd32(bp, 16) as usize;
                if self.left == 0 {
                    self.release_block();
                    continue;
                }
            }
            let bp = self.block_ptr(self.cur);
            // SAFETY: `off` comes from the kernel and lies inside the block.
            let hp = unsafe { bp.add(self.off) };
            let next = Self::rd32(hp, 0) as usize;
            let (sec, nsec) = (Self::rd32(hp, 4) as u64, Self::rd32(hp, 8) as u64);
            let snap = Self::rd32(hp, 12) as usize;
            let wire = Self::rd32(hp, 16);
            let status = Self::rd32(hp, 20);
            let mac = Self::rd16(hp, 24) as usize;
            let in_block = self.off + mac + snap <= self.block_size && mac >= VLAN_RESERVE as usize;
            if in_block {
                let (start, len, orig) = if status & TP_STATUS_VLAN_VALID != 0 && snap >= 12 {
                    let tci = Self::rd32(hp, 32) as u16;
                    let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
                        Self::rd16(hp, 36)
                    } else {
                        0x8100
                    };
                    // SAFETY: the block is ours until released; the 4 reserved
                    // bytes before `mac` belong to this packet's slot.
                    unsafe {
                        let m = hp.add(mac);
                        std::ptr::copy(m, m.sub(4), 12);
                        let tag = m.add(8);
                        tag.copy_from_nonoverlapping(tpid.to_be_bytes().as_ptr(), 2);
                        tag.add(2)
                            .copy_from_nonoverlapping(tci.to_be_bytes().as_ptr(), 2);
                    }
                    (mac - 4, snap + 4, wire + 4)
                } else {
                    (mac, snap, wire)
                };
                // SAFETY: [off+start, off+start+len) is inside the block (checked),
                // which user space owns until `release_block`.
                let data = unsafe { std::slice::from_raw_parts(hp.add(start), len) };
                f(&Packet {
                    ts_ns: sec * 1_000_000_000 + nsec,
                    data,
                    orig_len: orig,
                    link: LinkType::ETHERNET,
                });
                n += 1;
            }
            self.left -= 1;
            if self.left == 0 || next == 0 {
                self.left = 0;
                self.release_block();
            } else {
                self.off += next;
            }
        }
        self.received += n as u64;
        Ok(if n == 0 { Poll::Idle } else { Poll::Packets(n) })
    }

    fn stats(&self) -> SourceStats {
        self.refresh_stats();
        SourceStats {
            received: self.received,
            kernel_dropped: self.kernel_dropped.get(),
            ring_full: 0,
            invalid: 0,
        }
    }
}

impl AfPacketSocket {
    fn release_block(&mut self) {
        self.status_word(self.cur)
            .store(TP_STATUS_KERNEL, Ordering::Release);
        self.cur = (self.cur + 1) % self.block_count;
    }
}
