//! DPDK capture (`dpdk` feature): a port of a poll-mode driver, one RX queue
//! per worker, with the NIC's RSS spreading flows over the queues with the
//! symmetric key (0x6d5a repeated) so both directions of a flow reach the
//! same worker.
//!
//! The Environment Abstraction Layer (EAL) is process-global and can be
//! initialised once per process: [`open`] initialises it on first use with
//! the configured arguments; a second capture in the same process reuses
//! it (its `eal_args` are then ignored, which [`open`] reports).
//!
//! Zero copy: a burst of mbufs is received into the queue's array, each
//! frame is lent to the callback in place (the first segment's bytes), and
//! the whole burst goes back to the mempool once the callback has run for
//! every frame.
//!
//! Timestamps: the `net_pcap` virtual device stamps each mbuf with the
//! file's capture time (microseconds since the epoch, in the RX timestamp
//! dynamic field): that time is used, so a replay through DPDK sees the
//! file's clock. Every other PMD gets the wall clock, read once per burst
//! (a NIC's own timestamps count in its clock's units, not the epoch's,
//! and flowtap does not ask for them).

mod ffi;

use std::ffi::{CStr, CString};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::source::{LinkType, Packet, PacketSource, Poll, SourceStats};

/// The symmetric Toeplitz key: with 0x6d5a repeated, the hash of (a, b) is
/// the hash of (b, a), so both directions of a flow land on one queue.
pub const SYMMETRIC_RSS_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

// RSS hash types (RTE_BIT64 macros bindgen cannot evaluate).
const RSS_IPV4: u64 = 1 << 2;
const RSS_FRAG_IPV4: u64 = 1 << 3;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
const RSS_IPV6: u64 = 1 << 8;
const RSS_FRAG_IPV6: u64 = 1 << 9;
const RSS_NONFRAG_IPV6_TCP: u64 = 1 << 10;
const RSS_NONFRAG_IPV6_UDP: u64 = 1 << 11;
/// IPv4/IPv6, TCP/UDP (and fragments, hashed on addresses only).
const RSS_TYPES: u64 = RSS_IPV4
    | RSS_FRAG_IPV4
    | RSS_NONFRAG_IPV4_TCP
    | RSS_NONFRAG_IPV4_UDP
    | RSS_IPV6
    | RSS_FRAG_IPV6
    | RSS_NONFRAG_IPV6_TCP
    | RSS_NONFRAG_IPV6_UDP;

/// Largest burst a queue takes per `rte_eth_rx_burst`.
pub const MAX_BURST: u16 = 512;

/// DPDK capture configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct DpdkConfig {
    /// EAL arguments (without the program name), e.g. `["-l", "0-3",
    /// "--no-huge", "--vdev=net_pcap0,rx_pcap=f.pcap"]`.
    pub eal_args: Vec<String>,
    /// The port: a device name as EAL knows it (`net_pcap0`, `0000:03:00.0`)
    /// or a port number.
    pub port: String,
    /// RX queues = workers.
    pub queues: u16,
    /// RX descriptors per queue (the PMD may round it).
    pub rx_descriptors: u16,
    /// mbufs in the pool, for all queues together.
    pub mbufs: u32,
    /// Per-lcore mempool cache (0 = none).
    pub mbuf_cache: u32,
    /// Frames asked per `rte_eth_rx_burst` (1..=512).
    pub burst: u16,
    /// Put the port in promiscuous mode.
    pub promiscuous: bool,
}

impl DpdkConfig {
    pub fn new(port: impl Into<String>) -> DpdkConfig {
        DpdkConfig {
            eal_args: Vec::new(),
            port: port.into(),
            queues: 1,
            rx_descriptors: 1024,
            mbufs: 8191,
            mbuf_cache: 256,
            burst: 64,
            promiscuous: true,
        }
    }
}

/// DPDK errors. Each says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DpdkError {
    #[error("DPDK cannot initialise (EAL: {0}): check capture.dpdk.eal_args; without hugepages add \"--no-huge\" (or reserve some: `echo 1024 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages`), run as root, and see `flowtap doctor --capture dpdk`")]
    Eal(String),
    #[error("DPDK port {port:?} not found ({found}): give a device EAL probed (a --vdev name, or a PCI address bound to vfio-pci: `dpdk-devbind.py --status`), or a port number")]
    NoSuchPort { port: String, found: String },
    #[error("DPDK port {port}: {what} failed: {why}")]
    Port {
        port: String,
        what: &'static str,
        why: String,
    },
    #[error("DPDK port {port} has at most {have} RX queue(s) but {want} workers were asked for: use --workers {have}")]
    TooFewQueues { port: String, have: u16, want: u16 },
    #[error("invalid DPDK config: {0}")]
    Config(String),
}

/// The EAL, initialised once per process.
static EAL: OnceLock<Result<(), String>> = OnceLock::new();

fn rte_error(code: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated message for any error number.
    let msg = unsafe { CStr::from_ptr(ffi::rte_strerror(code)) };
    format!("{} (errno {code})", msg.to_string_lossy())
}

fn last_rte_error() -> String {
    // SAFETY: reads this thread's rte_errno; no arguments.
    rte_error(unsafe { ffi::ft_errno() })
}

/// Initialises the EAL with `args` unless it already is (then `args` are
/// not used). Returns whether this call initialised it.
pub fn init_eal(args: &[String]) -> Result<bool, DpdkError> {
    let mut first = false;
    let r = EAL.get_or_init(|| {
        first = true;
        let mut owned = Vec::with_capacity(args.len() + 1);
        for a in std::iter::once("flowtap").chain(args.iter().map(String::as_str)) {
            owned.push(CString::new(a).map_err(|_| format!("argument {a:?} holds a NUL byte"))?);
        }
        // EAL may keep pointers into argv (it reorders them, and some
        // drivers keep their devargs): the strings live for the process.
        let owned: &'static [CString] = Vec::leak(owned);
        let argv: &'static mut [*mut libc::c_char] = Vec::leak(
            owned
                .iter()
                .map(|c| c.as_ptr() as *mut libc::c_char)
                .collect(),
        );
        let argc = libc::c_int::try_from(argv.len()).map_err(|_| "too many arguments")?;
        // EAL pins the calling thread to its main lcore; the threads flowtap
        // starts later (workers, which pin themselves from this mask) must
        // see the process's own CPU set, so it is put back afterwards.
        let saved = affinity();
        // SAFETY: argv holds argc valid NUL-terminated strings that live for
        // the process; rte_eal_init runs once (OnceLock).
        let r = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
        if let Some(set) = saved {
            set_affinity(&set);
        }
        if r < 0 {
            return Err(last_rte_error());
        }
        Ok(())
    });
    r.clone().map_err(DpdkError::Eal).map(|()| first)
}

/// The calling thread's CPU set.
fn affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is writable and of the size passed; 0 = calling thread.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    (r == 0).then_some(set)
}

fn set_affinity(set: &libc::cpu_set_t) {
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 = calling thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if r != 0 {
        log::warn!(
            "cannot restore the CPU set after EAL init: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Port-level counters (`rte_eth_stats_get`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Dropped by the NIC: no free RX descriptor (the queues were full).
    pub imissed: u64,
    /// Frames with errors the NIC discarded.
    pub ierrors: u64,
    /// mbuf allocation failures (the pool was empty).
    pub rx_nombuf: u64,
    /// Per queue (packets, bytes, errors), where the PMD provides them.
    pub queues: Vec<QueueStats>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
}

/// What [`open`] found about the port.
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub id: u16,
    pub name: String,
    pub driver: String,
    /// NUMA node of the device (-1 when unknown).
    pub numa_node: i32,
    pub queues: u16,
    /// RSS with the symmetric key is on (more than one queue and the PMD
    /// supports RSS).
    pub rss: bool,
    /// EAL was initialised by this open (false: reused, eal_args ignored).
    pub eal_initialised_here: bool,
}

/// A started port: stopped, closed and its mempool freed when the last
/// queue and the port handle are dropped.
struct PortInner {
    id: u16,
    name: String,
    pool: *mut ffi::rte_mempool,
    /// Serialises stats reads (rte_eth_stats_get is not thread-safe
    /// against itself for every PMD).
    stats_lock: Mutex<()>,
}

// SAFETY: the port id and mempool pointer refer to process-global DPDK
// objects; ethdev control calls (stats, stop, close) are made under
// `stats_lock` or in Drop (once, after every queue is gone), and the mempool
// is multi-producer/multi-consumer safe.
unsafe impl Send for PortInner {}
// SAFETY: as above; shared access only reads stats under `stats_lock`.
unsafe impl Sync for PortInner {}

impl PortInner {
    fn stats(&self, queues: u16) -> Option<PortStats> {
        let _g = self.stats_lock.lock().ok()?;
        let mut s = ffi::rte_eth_stats::default();
        // SAFETY: `s` is a valid, writable rte_eth_stats; the port is started.
        let r = unsafe { ffi::rte_eth_stats_get(self.id, &mut s) };
        if r != 0 {
            return None;
        }
        let n = usize::from(queues).min(s.q_ipackets.len());
        Some(PortStats {
            rx_packets: s.ipackets,
            rx_bytes: s.ibytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            rx_nombuf: s.rx_nombuf,
            queues: (0..n)
                .map(|q| QueueStats {
                    packets: s.q_ipackets[q],
                    bytes: s.q_ibytes[q],
                    errors: s.q_errors[q],
                })
                .collect(),
        })
    }
}

impl Drop for PortInner {
    fn drop(&mut self) {
        // SAFETY: every queue is gone (they hold an Arc to us), so no burst
        // runs; stop and close the port, then free the pool its queues used.
        unsafe {
            ffi::rte_eth_dev_stop(self.id);
            ffi::rte_eth_dev_close(self.id);
            ffi::rte_mempool_free(self.pool);
        }
        log::debug!("DPDK port {} closed", self.name);
    }
}

/// The opened port, for counters; the queues do the receiving.
pub struct DpdkPort {
    inner: Arc<PortInner>,
    info: PortInfo,
}

impl DpdkPort {
    pub fn info(&self) -> &PortInfo {
        &self.info
    }

    /// The port's counters now (None if the PMD cannot say).
    pub fn stats(&self) -> Option<PortStats> {
        self.inner.stats(self.info.queues)
    }
}

fn port_error(port: &str, what: &'static str, code: i32) -> DpdkError {
    DpdkError::Port {
        port: port.to_string(),
        what,
        why: rte_error(-code),
    }
}

fn find_port(name: &str) -> Result<u16, DpdkError> {
    let c = CString::new(name).map_err(|_| DpdkError::Config("port holds a NUL byte".into()))?;
    let mut id = 0u16;
    // SAFETY: `c` is a NUL-terminated string, `id` a writable u16.
    if unsafe { ffi::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) } == 0 {
        return Ok(id);
    }
    // SAFETY: no arguments.
    let count = unsafe { ffi::rte_eth_dev_count_avail() };
    if let Ok(n) = name.parse::<u16>() {
        if n < count {
            return Ok(n);
        }
    }
    let found: Vec<String> = (0..count).map(port_name).collect();
    Err(DpdkError::NoSuchPort {
        port: name.to_string(),
        found: if found.is_empty() {
            "EAL probed no port".into()
        } else {
            format!("ports: {}", found.join(", "))
        },
    })
}

fn port_name(id: u16) -> String {
    let mut buf = [0 as libc::c_char; 64];
    // SAFETY: `buf` is writable and RTE_ETH_NAME_MAX_LEN (64) bytes long.
    if unsafe { ffi::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) } != 0 {
        return id.to_string();
    }
    // SAFETY: on success the name is NUL-terminated inside `buf`.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Initialises EAL (once per process), configures `cfg.port` with
/// `cfg.queues` RX queues (RSS with the symmetric key when more than one),
/// starts it and returns it with one [`DpdkQueue`] per queue.
pub fn open(cfg: &DpdkConfig) -> Result<(DpdkPort, Vec<DpdkQueue>), DpdkError> {
    if cfg.queues == 0 || cfg.burst == 0 || cfg.burst > MAX_BURST {
        return Err(DpdkError::Config(format!(
            "queues {} must be at least 1 and burst {} 1..={MAX_BURST}",
            cfg.queues, cfg.burst
        )));
    }
    if cfg.port.is_empty() {
        return Err(DpdkError::Config(
            "no port: set capture.dpdk.port (or --iface) to a device EAL probes".into(),
        ));
    }
    let first = init_eal(&cfg.eal_args)?;
    let id = find_port(&cfg.port)?;
    let name = port_name(id);
    let mut dev = ffi::rte_eth_dev_info::default();
    // SAFETY: `dev` is a valid, writable rte_eth_dev_info; `id` is a valid port.
    let r = unsafe { ffi::rte_eth_dev_info_get(id, &mut dev) };
    if r != 0 {
        return Err(port_error(&name, "reading the device info", r));
    }
    let driver = if dev.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: driver_name is a NUL-terminated static string of the PMD.
        unsafe { CStr::from_ptr(dev.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    if cfg.queues > dev.max_rx_queues {
        return Err(DpdkError::TooFewQueues {
            port: name,
            have: dev.max_rx_queues,
            want: cfg.queues,
        });
    }
    let rss = cfg.queues > 1 && dev.flow_type_rss_offloads & RSS_TYPES != 0;
    let mut key = SYMMETRIC_RSS_KEY;
    let mut conf = ffi::rte_eth_conf::default();
    if rss {
        conf.rxmode.mq_mode = ffi::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
        conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
        conf.rx_adv_conf.rss_conf.rss_hf = dev.flow_type_rss_offloads & RSS_TYPES;
    }
    // One TX queue: some PMDs refuse a port without one; it is never used.
    let tx = u16::from(dev.max_tx_queues > 0);
    // SAFETY: `conf` is a valid rte_eth_conf (the key it points to lives
    // until this function returns; the PMD copies it at configure time).
    let r = unsafe { ffi::rte_eth_dev_configure(id, cfg.queues, tx, &conf) };
    if r != 0 {
        return Err(port_error(&name, "configuring the port", r));
    }
    // SAFETY: no arguments.
    let socket = unsafe { ffi::rte_eth_dev_socket_id(id) };
    let pool_name = CString::new(format!("flowtap_p{id}"))
        .map_err(|_| DpdkError::Config("mbuf pool name holds a NUL byte".into()))?;
    let cache = cfg.mbuf_cache.min(512).min(cfg.mbufs / 2);
    // SAFETY: `pool_name` is NUL-terminated; sizes are plain numbers.
    let pool = unsafe {
        ffi::rte_pktmbuf_pool_create(
            pool_name.as_ptr(),
            cfg.mbufs,
            cache,
            0,
            ffi::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            socket.max(0),
        )
    };
    if pool.is_null() {
        return Err(DpdkError::Port {
            port: name,
            what: "creating the mbuf pool",
            why: format!(
                "{} ({} mbufs of 2 KiB: lower capture.dpdk.mbufs, or give EAL more memory)",
                last_rte_error(),
                cfg.mbufs
            ),
        });
    }
    // From here the port owns the pool: errors drop `inner`, which closes both.
    let inner = Arc::new(PortInner {
        id,
        name: name.clone(),
        pool,
        stats_lock: Mutex::new(()),
    });
    let mut nb_rx = cfg.rx_descriptors;
    let mut nb_tx = 128u16;
    // SAFETY: both counts are valid writable u16s; the port is configured.
    let r = unsafe { ffi::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nb_rx, &mut nb_tx) };
    if r != 0 {
        return Err(port_error(&name, "sizing the RX ring", r));
    }
    for q in 0..cfg.queues {
        // SAFETY: the port is configured with `cfg.queues` RX queues; a null
        // rxconf asks for the PMD's defaults; `pool` is a valid mempool.
        let r = unsafe {
            ffi::rte_eth_rx_queue_setup(id, q, nb_rx, socket.max(0) as u32, std::ptr::null(), pool)
        };
        if r != 0 {
            return Err(port_error(&name, "setting up an RX queue", r));
        }
    }
    if tx == 1 {
        // SAFETY: one TX queue was configured; null = the PMD's defaults.
        let r = unsafe {
            ffi::rte_eth_tx_queue_setup(id, 0, nb_tx, socket.max(0) as u32, std::ptr::null())
        };
        if r != 0 {
            return Err(port_error(&name, "setting up the TX queue", r));
        }
    }
    // SAFETY: every queue is set up.
    let r = unsafe { ffi::rte_eth_dev_start(id) };
    if r != 0 {
        return Err(port_error(&name, "starting the port", r));
    }
    if cfg.promiscuous {
        // Best effort: virtual devices without the notion say so; harmless.
        // SAFETY: the port is started.
        let _ = unsafe { ffi::rte_eth_promiscuous_enable(id) };
    }
    let (ts_offset, ts_flag) = if driver == "net_pcap" {
        timestamp_field()
    } else {
        (-1, 0)
    };
    let queues = (0..cfg.queues)
        .map(|q| DpdkQueue {
            port: Arc::clone(&inner),
            queue: q,
            burst: cfg.burst,
            mbufs: vec![std::ptr::null_mut(); usize::from(MAX_BURST)],
            frames: vec![ffi::ft_frame::default(); usize::from(MAX_BURST)],
            ts_offset,
            ts_flag,
            received: 0,
            registered: false,
        })
        .collect();
    let info = PortInfo {
        id,
        name,
        driver,
        numa_node: socket,
        queues: cfg.queues,
        rss,
        eal_initialised_here: first,
    };
    Ok((DpdkPort { inner, info }, queues))
}

/// The RX timestamp dynamic field and flag, if a PMD registered them.
fn timestamp_field() -> (i32, u64) {
    // SAFETY: the names are NUL-terminated constants; a null params pointer
    // is allowed by both lookups.
    unsafe {
        let off = ffi::rte_mbuf_dynfield_lookup(
            ffi::RTE_MBUF_DYNFIELD_TIMESTAMP_NAME.as_ptr() as *const libc::c_char,
            std::ptr::null_mut(),
        );
        let bit = ffi::rte_mbuf_dynflag_lookup(
            ffi::RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME.as_ptr() as *const libc::c_char,
            std::ptr::null_mut(),
        );
        if off < 0 || !(0..64).contains(&bit) {
            (-1, 0)
        } else {
            (off, 1u64 << bit)
        }
    }
}

/// One RX queue of a started port, polled by exactly one worker.
pub struct DpdkQueue {
    port: Arc<PortInner>,
    queue: u16,
    burst: u16,
    mbufs: Vec<*mut ffi::rte_mbuf>,
    frames: Vec<ffi::ft_frame>,
    ts_offset: i32,
    ts_flag: u64,
    received: u64,
    /// The polling thread is registered with EAL (it has an lcore id, so
    /// the mempool's per-lcore cache serves its frees).
    registered: bool,
}

impl Drop for DpdkQueue {
    fn drop(&mut self) {
        if self.registered {
            // SAFETY: `registered` is only set by the thread that polls the
            // queue, which is the thread dropping it (the worker owns it).
            unsafe { ffi::rte_thread_unregister() };
        }
    }
}

// SAFETY: a queue is used by one thread at a time (it is moved into its
// worker); DPDK RX queues may be polled from any thread as long as only one
// polls a given queue, and mbufs go back to a thread-safe mempool.
unsafe impl Send for DpdkQueue {}

impl DpdkQueue {
    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// This queue's counters from the PMD (packets, bytes, errors), when
    /// it keeps per-queue ones.
    pub fn queue_stats(&self) -> Option<QueueStats> {
        let s = self.port.stats(self.queue + 1)?;
        s.queues.get(usize::from(self.queue)).copied()
    }

    /// The port's counters (every queue).
    pub fn port_stats(&self) -> Option<PortStats> {
        self.port.stats(self.queue + 1)
    }
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl PacketSource for DpdkQueue {
    type Error = DpdkError;

    fn poll_batch<F>(&mut self, max: usize, mut f: F) -> Result<Poll, DpdkError>
    where
        F: FnMut(&Packet<'_>),
    {
        let want = u16::try_from(max)
            .unwrap_or(u16::MAX)
            .min(self.burst)
            .max(1);
        // SAFETY: `mbufs` and `frames` hold MAX_BURST >= want entries; the
        // queue is set up and polled only by this thread.
        let n = unsafe {
            ffi::ft_rx_burst(
                self.port.id,
                self.queue,
                self.mbufs.as_mut_ptr(),
                self.frames.as_mut_ptr(),
                want,
                self.ts_offset,
                self.ts_flag,
            )
        };
        if n == 0 {
            return Ok(Poll::Idle);
        }
        let n = usize::from(n);
        let mut now = 0u64;
        for fr in &self.frames[..n] {
            let ts_ns = if fr.has_ts != 0 {
                // net_pcap: microseconds since the epoch
                fr.ts.saturating_mul(1000)
            } else {
                if now == 0 {
                    now = wall_ns();
                }
                now
            };
            // SAFETY: `data` points at `data_len` bytes of the mbuf's first
            // segment, which stays ours until the burst is freed below.
            let data = unsafe { std::slice::from_raw_parts(fr.data, fr.data_len as usize) };
            f(&Packet {
                ts_ns,
                data,
                orig_len: fr.pkt_len,
                link: LinkType::ETHERNET,
            });
        }
        // SAFETY: the first `n` entries are mbufs this burst received; no
        // borrow of their data outlives the callbacks above.
        unsafe { ffi::rte_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), n as u32) };
        self.received += n as u64;
        Ok(Poll::Packets(n))
    }

    fn stats(&self) -> SourceStats {
        SourceStats {
            received: self.received,
            ..SourceStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Toeplitz hash the NIC computes over `input` with `key`.
    fn toeplitz(key: &[u8; 40], input: &[u8]) -> u32 {
        let mut hash = 0u32;
        let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
        for (i, byte) in input.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    hash ^= window;
                }
                let next = key.get(i + 4).copied().unwrap_or(0);
                window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
            }
        }
        hash
    }

    fn tuple(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(src);
        v.extend(dst);
        v.extend(sport.to_be_bytes());
        v.extend(dport.to_be_bytes());
        v
    }

    #[test]
    fn the_rss_key_hashes_both_directions_alike() {
        assert_eq!(&SYMMETRIC_RSS_KEY[..4], &[0x6d, 0x5a, 0x6d, 0x5a]);
        let mut distinct = std::collections::HashSet::new();
        for i in 0..200u16 {
            let (a, b) = (
                [10, 0, (i >> 8) as u8, i as u8],
                [192, 0, 2, (i % 250) as u8],
            );
            let (pa, pb) = (1024 + i * 7, 80 + i);
            let fwd = toeplitz(&SYMMETRIC_RSS_KEY, &tuple(a, b, pa, pb));
            let rev = toeplitz(&SYMMETRIC_RSS_KEY, &tuple(b, a, pb, pa));
            assert_eq!(fwd, rev, "flow {i}");
            distinct.insert(fwd);
        }
        // symmetric, yet it still spreads flows
        assert!(distinct.len() > 150, "{}", distinct.len());
        // the Microsoft verification key is not symmetric: the test can tell
        let mut ms = [0u8; 40];
        ms[..8].copy_from_slice(&[0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2]);
        let t = tuple([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80);
        let r = tuple([10, 0, 0, 2], [10, 0, 0, 1], 80, 1000);
        assert_ne!(toeplitz(&ms, &t), toeplitz(&ms, &r));
    }
}
