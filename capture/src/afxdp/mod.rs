//! AF_XDP live capture.
//!
//! [`XdpCapture::open`] loads flowtap's own XDP program (`capture/bpf/flowtap.bpf.c`),
//! attaches it to the interface through a BPF link (native mode first, then
//! generic, per [`XdpMode`]), and binds one AF_XDP socket per RX queue
//! (zero-copy first, then copy, per [`ZeroCopy`]). The program applies the
//! [`PreFilter`] and redirects every other frame to the socket of its RX queue.
//!
//! Each [`XdpQueue`] is a [`PacketSource`] owned by one pinned worker. Frames
//! are handed to the callback in place (no copy) and go back to the fill ring
//! as soon as the callback returns.
//!
//! Detach: the program is attached through a BPF link, so the kernel detaches
//! it whenever the process ends, however it ends (SIGINT, SIGTERM, SIGKILL,
//! panic with `panic = "abort"`). In-process it is detached when the
//! [`XdpCapture`] and every [`XdpQueue`] taken from it have been dropped. A
//! flowtap program still attached at start (leaked link, or an older build that
//! attached through netlink) is replaced; any other program is an error.
//!
//! Why not xsk-rs: we need frames of one queue's UMEM lent to another worker
//! and returned (software shard mode), batch-level fill-ring refill, and
//! XDP_STATISTICS v2; the raw rings are ~150 lines (`ring.rs`), and xsk-rs
//! would also build libxdp (xdp-tools) from source for nothing we use.

mod filter;
mod prog;
mod ring;
mod shard;
mod spsc;
mod xsk;

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use libbpf_rs::{MapCore, MapFlags};

pub use filter::{Cidr, FilterDrops, PreFilter};
pub use prog::{attached_prog_id, xdp_features, XdpFeatures};
pub use xsk::XdpSocketStats;

use crate::source::{LinkType, Packet, PacketSource, Poll, SourceStats};
use crate::sys;
use prog::Attached;
use shard::{Lent, ShardLinks};
use xsk::Xsk;

/// Where the XDP program runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode if the driver supports it, else generic.
    #[default]
    Auto,
    /// Driver mode only (fails when the driver has no XDP support).
    Native,
    /// Generic (skb) mode: works on any interface, slower.
    Generic,
}

/// The mode the program was actually attached in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    Native,
    Generic,
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        })
    }
}

/// Zero-copy policy for binding the sockets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Zero-copy if the driver allows (native mode only), else copy.
    #[default]
    Auto,
    /// Zero-copy or fail.
    On,
    /// Copy mode.
    Off,
}

/// How flows are mapped to workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shard {
    /// Each queue's worker owns the flows its queue receives (needs a
    /// symmetric RSS key on the NIC: see `tuning::doctor`).
    #[default]
    Hardware,
    /// The receiving worker hands each frame to its owner worker through
    /// bounded SPSC rings of `ring` entries; frames are dropped and counted
    /// when full. The poller names each frame's owner
    /// ([`XdpQueue::poll_routed`]).
    Software { ring: usize },
}

/// How a frame reached the poller of [`XdpQueue::poll_routed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// From this queue's RX ring in software shard mode: the poller finds its
    /// owner and either handles it ([`Route::Here`]) or lends it.
    Received,
    /// Already at its owner: lent by another queue's worker, or any frame in
    /// hardware shard mode. The poller handles it.
    Owned,
}

/// Where a [`Hop::Received`] frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The poller owns it and has handled it.
    Here,
    /// Lend it to the worker of queue `i` (position in
    /// [`XdpCapture::take_queues`]). An index without a ring (the poller's
    /// own, or past the last queue) drops the frame and counts it invalid.
    To(usize),
}

/// Busy-poll settings (SO_PREFER_BUSY_POLL, SO_BUSY_POLL, SO_BUSY_POLL_BUDGET).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyPoll {
    pub usecs: u32,
    pub budget: u32,
}

/// AF_XDP capture configuration.
#[derive(Clone, Debug)]
pub struct XdpConfig {
    pub iface: String,
    /// RX queues to bind; `None` = every RX queue of the interface.
    pub queues: Option<Vec<u32>>,
    pub mode: XdpMode,
    pub zero_copy: ZeroCopy,
    /// UMEM frames per queue.
    pub frames: u32,
    /// Frame size: 2048 or 4096.
    pub frame_size: u32,
    /// RX ring entries (power of two).
    pub rx_ring: u32,
    /// Fill ring entries (power of two).
    pub fill_ring: u32,
    pub need_wakeup: bool,
    pub busy_poll: Option<BusyPoll>,
    pub filter: PreFilter,
    pub shard: Shard,
}

impl XdpConfig {
    /// Defaults for `iface`: all queues, auto mode and zero-copy, 4096 frames
    /// of 2048 bytes, 2048-entry rings, need_wakeup on.
    pub fn new(iface: impl Into<String>) -> XdpConfig {
        XdpConfig {
            iface: iface.into(),
            queues: None,
            mode: XdpMode::Auto,
            zero_copy: ZeroCopy::Auto,
            frames: 4096,
            frame_size: 2048,
            rx_ring: 2048,
            fill_ring: 2048,
            need_wakeup: true,
            busy_poll: None,
            filter: PreFilter::default(),
            shard: Shard::Hardware,
        }
    }

    fn validate(&self) -> Result<(), XdpError> {
        let bad = |m: String| Err(XdpError::Config(m));
        if self.frame_size != 2048 && self.frame_size != 4096 {
            return bad(format!(
                "frame_size {} must be 2048 or 4096",
                self.frame_size
            ));
        }
        for (n, v) in [("rx_ring", self.rx_ring), ("fill_ring", self.fill_ring)] {
            if !v.is_power_of_two() || v < 64 {
                return bad(format!("{n} {v} must be a power of two >= 64"));
            }
        }
        if self.frames < self.fill_ring {
            return bad(format!(
                "frames {} must be >= fill_ring {}",
                self.frames, self.fill_ring
            ));
        }
        if let Shard::Software { ring } = self.shard {
            if ring == 0 {
                return bad("software shard ring size must be > 0".into());
            }
        }
        Ok(())
    }
}

/// What can go wrong opening or running an AF_XDP capture. Each message says
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error(
        "interface {0:?} does not exist: check the name with `ip link` (and the network namespace)"
    )]
    NoSuchInterface(String),
    #[error("permission denied: run as root (or with CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_PERFMON and CAP_IPC_LOCK)")]
    NotRoot,
    #[error("{iface} does not support XDP in {mode} mode ({source}): use --xdp-mode generic (xdp_mode = \"generic\" or \"auto\" in [capture]), or capture with AF_PACKET (--capture afpacket)")]
    NoXdpSupport {
        iface: String,
        mode: AttachMode,
        source: io::Error,
    },
    #[error("{iface} already has an XDP program ({detail}): remove it with `ip link set dev {iface} xdp off` (check `bpftool net`) or capture elsewhere")]
    XdpBusy { iface: String, detail: String },
    #[error("RX queue {queue} of {iface} is already bound by another AF_XDP socket: stop the other capture or choose other queues")]
    QueueBusy { iface: String, queue: u32 },
    #[error("zero-copy is not supported on {iface} queue {queue} ({source}): set zero_copy = \"auto\" or \"off\"")]
    ZeroCopyUnsupported {
        iface: String,
        queue: u32,
        source: io::Error,
    },
    #[error("BPF error: {0} (needs a kernel with BPF and XDP; see `flowtap doctor`)")]
    Bpf(String),
    #[error("invalid AF_XDP config: {0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

/// An AF_XDP capture on one interface: the attached program and its queues.
pub struct XdpCapture {
    attached: Arc<Attached>,
    queues: Vec<XdpQueue>,
}

impl XdpCapture {
    /// Attaches the program and creates one socket per queue.
    pub fn open(cfg: &XdpConfig) -> Result<XdpCapture, XdpError> {
        cfg.validate()?;
        let ifindex =
            sys::ifindex(&cfg.iface).ok_or_else(|| XdpError::NoSuchInterface(cfg.iface.clone()))?;
        if !sys::may_capture() {
            return Err(XdpError::NotRoot);
        }
        let queue_ids: Vec<u32> = match &cfg.queues {
            Some(q) if !q.is_empty() => q.clone(),
            _ => (0..sys::rx_queue_count(&cfg.iface).max(1) as u32).collect(),
        };
        let attached = Arc::new(Attached::load_and_attach(
            &cfg.iface,
            ifindex,
            cfg.mode,
            &cfg.filter,
        )?);
        let mut socks = Vec::with_capacity(queue_ids.len());
        for &q in &queue_ids {
            let xsk = match (cfg.zero_copy, attached.mode) {
                (ZeroCopy::Off, _) | (ZeroCopy::Auto, AttachMode::Generic) => {
                    Xsk::create(cfg, ifindex, q, false)?
                }
                (ZeroCopy::On, AttachMode::Generic) => {
                    return Err(XdpError::ZeroCopyUnsupported {
                        iface: cfg.iface.clone(),
                        queue: q,
                        source: io::Error::other("zero-copy needs native XDP mode"),
                    })
                }
                (ZeroCopy::On, AttachMode::Native) => Xsk::create(cfg, ifindex, q, true)?,
                (ZeroCopy::Auto, AttachMode::Native) => {
                    match Xsk::create(cfg, ifindex, q, true) {
                        Ok(x) => x,
                        Err(XdpError::ZeroCopyUnsupported { source, .. }) => {
                            log::info!("zero-copy not available on {} queue {q} ({source}); using copy mode", cfg.iface);
                            Xsk::create(cfg, ifindex, q, false)?
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            attached
                .xsks
                .update(&q.to_ne_bytes(), &xsk.raw_fd().to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| {
                    XdpError::Bpf(format!("registering queue {q} socket in the XSKMAP: {e}"))
                })?;
            log::info!(
                "AF_XDP socket on {} queue {q}: {} mode, {}",
                cfg.iface,
                attached.mode,
                if xsk.zero_copy { "zero-copy" } else { "copy" }
            );
            socks.push((q, xsk));
        }
        let mut links: Vec<Option<ShardLinks>> = match cfg.shard {
            Shard::Software { ring } if socks.len() > 1 => {
                shard::mesh(socks.iter().map(|(_, x)| x.umem.clone()).collect(), ring)
                    .into_iter()
                    .map(Some)
                    .collect()
            }
            _ => socks.iter().map(|_| None).collect(),
        };
        let queues = socks
            .into_iter()
            .zip(links.iter_mut())
            .map(|((q, xsk), l)| XdpQueue::new(q, xsk, cfg, attached.clone(), l.take()))
            .collect();
        Ok(XdpCapture { attached, queues })
    }

    /// The mode the program was attached in.
    pub fn attach_mode(&self) -> AttachMode {
        self.attached.mode
    }

    /// Interface index the program is attached to.
    pub fn ifindex(&self) -> u32 {
        self.attached.ifindex
    }

    /// Moves the queues out, one per worker. Call once.
    pub fn take_queues(&mut self) -> Vec<XdpQueue> {
        std::mem::take(&mut self.queues)
    }

    /// Frames dropped in the kernel by the pre-filter, per reason.
    pub fn filter_drops(&self) -> Result<FilterDrops, XdpError> {
        self.attached.drops()
    }

    /// Replaces the pre-filter of the attached program (a configuration
    /// reload): the maps are updated in place, the program stays attached
    /// and the sockets keep receiving. `drop_unbound` is kept as opened.
    pub fn set_filter(&self, filter: &PreFilter) -> Result<(), XdpError> {
        let mut f = filter.clone();
        f.drop_unbound = self.attached.current_filter().drop_unbound;
        self.attached.update_filter(&f)
    }

    /// The pre-filter in force.
    pub fn filter(&self) -> PreFilter {
        self.attached.current_filter()
    }
}

/// One RX queue's AF_XDP socket: a [`PacketSource`] for one worker.
pub struct XdpQueue {
    queue_id: u32,
    xsk: Xsk,
    /// Frames of our UMEM that are neither in the kernel nor lent out.
    free: Vec<u64>,
    need_wakeup: bool,
    busy_poll: bool,
    received: u64,
    invalid: u64,
    ring_full: u64,
    shard: Option<ShardLinks>,
    _attached: Arc<Attached>,
}

impl XdpQueue {
    fn new(
        queue_id: u32,
        xsk: Xsk,
        cfg: &XdpConfig,
        attached: Arc<Attached>,
        shard: Option<ShardLinks>,
    ) -> XdpQueue {
        let fs = cfg.frame_size as u64;
        let free: Vec<u64> = (0..cfg.frames as u64).rev().map(|i| i * fs).collect();
        let mut q = XdpQueue {
            queue_id,
            xsk,
            free,
            need_wakeup: cfg.need_wakeup,
            busy_poll: cfg.busy_poll.is_some(),
            received: 0,
            invalid: 0,
            ring_full: 0,
            shard,
            _attached: attached,
        };
        q.refill();
        q
    }

    /// RX queue id.
    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// In software shard mode: (this queue's position, number of queues),
    /// the worker indices [`Route::To`] takes.
    pub fn shard_position(&self) -> Option<(usize, usize)> {
        self.shard.as_ref().map(|s| (s.me, s.umems.len()))
    }

    /// Whether the socket is bound in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.xsk.zero_copy
    }

    /// Blocks until the socket is readable or `timeout_ms` passes (for idle
    /// workers that do not want to spin). In software shard mode frames lent
    /// by other workers do not wake this; keep timeouts short there.
    pub fn wait(&self, timeout_ms: i32) -> Result<bool, XdpError> {
        sys::poll_in(self.xsk.fd.as_fd(), timeout_ms).map_err(|source| XdpError::Io {
            what: "poll",
            source,
        })
    }

    /// The socket descriptor (for epoll by the caller).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.xsk.fd.as_fd()
    }

    /// Kernel counters of this socket (XDP_STATISTICS).
    pub fn socket_stats(&self) -> Result<XdpSocketStats, XdpError> {
        self.xsk.statistics().map_err(|source| XdpError::Io {
            what: "reading XDP_STATISTICS",
            source,
        })
    }

    fn refill(&mut self) {
        let want = self.free.len() as u32;
        if want == 0 {
            return;
        }
        let n = self.xsk.fill.prod_free(want).min(want);
        for i in 0..n {
            let a = self.free.pop().unwrap_or_default();
            self.xsk.fill.prod_write(i, a);
        }
        if n > 0 {
            self.xsk.fill.prod_submit(n);
        }
        if self.need_wakeup && self.xsk.fill.needs_wakeup() {
            sys::kick_rx(self.xsk.fd.as_fd());
        }
    }

    fn poll_hw<F: FnMut(&Packet<'_>)>(&mut self, max: usize, f: &mut F) -> usize {
        let n = self.xsk.rx.cons_avail(max as u32);
        if n == 0 {
            return 0;
        }
        let ts_ns = sys::realtime_ns();
        let umem = &*self.xsk.umem;
        for i in 0..n {
            let d = self.xsk.rx.cons_read(i);
            match umem.frame(d.addr, d.len) {
                Some(data) => {
                    f(&Packet {
                        ts_ns,
                        data,
                        orig_len: d.len,
                        link: LinkType::ETHERNET,
                    });
                    self.free.push(umem.base_of(d.addr));
                }
                None => self.invalid += 1,
            }
        }
        self.xsk.rx.cons_release(n);
        self.received += n as u64;
        n as usize
    }

    fn poll_sw<F: FnMut(&Packet<'_>, Hop) -> Route>(&mut self, max: usize, f: &mut F) -> usize {
        let Some(sh) = self.shard.as_mut() else {
            return 0;
        };
        // 1. our frames coming back from their owners
        for c in sh.ret_from.iter_mut().flatten() {
            while let Some(a) = c.pop() {
                self.free.push(a);
            }
        }
        let ts_ns = sys::realtime_ns();
        let mut done = 0usize;
        // 2. our RX ring: process what we own, lend the rest
        let n = self.xsk.rx.cons_avail(max as u32);
        let umem = &*self.xsk.umem;
        for i in 0..n {
            let d = self.xsk.rx.cons_read(i);
            let Some(data) = umem.frame(d.addr, d.len) else {
                self.invalid += 1;
                continue;
            };
            let pkt = Packet {
                ts_ns,
                data,
                orig_len: d.len,
                link: LinkType::ETHERNET,
            };
            match f(&pkt, Hop::Received) {
                Route::Here => {
                    self.free.push(umem.base_of(d.addr));
                    done += 1;
                }
                Route::To(owner) => match sh.to_owner.get_mut(owner).and_then(Option::as_mut) {
                    Some(p) => {
                        if p.push(Lent {
                            addr: umem.base_of(d.addr) | (d.addr & (umem.frame_size as u64 - 1)),
                            len: d.len,
                        })
                        .is_err()
                        {
                            self.ring_full += 1;
                            self.free.push(umem.base_of(d.addr));
                        }
                    }
                    None => {
                        self.invalid += 1;
                        self.free.push(umem.base_of(d.addr));
                    }
                },
            }
        }
        if n > 0 {
            self.xsk.rx.cons_release(n);
        }
        // 3. frames other queues lent us: process in place, then return
        for j in 0..sh.from_rx.len() {
            let (Some(c), Some(ret)) = (sh.from_rx[j].as_mut(), sh.ret_to[j].as_mut()) else {
                continue;
            };
            let mut room = ret.free();
            let um = &*sh.umems[j];
            while room > 0 && done < max {
                let Some(l) = c.pop() else { break };
                if let Some(data) = um.frame(l.addr, l.len) {
                    let _ = f(
                        &Packet {
                            ts_ns,
                            data,
                            orig_len: l.len,
                            link: LinkType::ETHERNET,
                        },
                        Hop::Owned,
                    );
                    done += 1;
                }
                // cannot fail: `room` was checked and only we push here
                let _ = ret.push(um.base_of(l.addr));
                room -= 1;
            }
        }
        self.received += done as u64;
        done
    }
}

impl XdpQueue {
    /// Polls up to `max` frames; `f` handles each, told how it arrived. In
    /// software shard mode it names the owner of each frame of this queue's
    /// RX ring ([`Hop::Received`]): frames it does not keep are lent to their
    /// owner's worker, whose poll hands them over as [`Hop::Owned`]. In
    /// hardware mode every frame is [`Hop::Owned`] and the answer is ignored.
    pub fn poll_routed<F>(&mut self, max: usize, mut f: F) -> Result<Poll, XdpError>
    where
        F: FnMut(&Packet<'_>, Hop) -> Route,
    {
        let n = if self.shard.is_some() {
            self.poll_sw(max, &mut f)
        } else {
            self.poll_hw(max, &mut |p: &Packet<'_>| {
                let _ = f(p, Hop::Owned);
            })
        };
        self.refill();
        if n == 0 {
            if self.busy_poll {
                sys::kick_rx(self.xsk.fd.as_fd());
            }
            return Ok(Poll::Idle);
        }
        Ok(Poll::Packets(n))
    }
}

impl PacketSource for XdpQueue {
    type Error = XdpError;

    /// Every frame to `f`. In software shard mode `f` cannot name owners:
    /// this queue keeps every frame it receives (and handles what other
    /// queues lend it); use [`XdpQueue::poll_routed`] to shard.
    fn poll_batch<F>(&mut self, max: usize, mut f: F) -> Result<Poll, XdpError>
    where
        F: FnMut(&Packet<'_>),
    {
        self.poll_routed(max, |p, _| {
            f(p);
            Route::Here
        })
    }

    fn stats(&self) -> SourceStats {
        let k = self.xsk.statistics().unwrap_or_default();
        SourceStats {
            received: self.received,
            kernel_dropped: k.rx_dropped + k.rx_ring_full,
            ring_full: self.ring_full,
            invalid: self.invalid + k.rx_invalid_descs,
        }
    }
}
