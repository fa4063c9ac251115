//! `[capture]`: live capture settings (AF_XDP / AF_PACKET, worker threads,
//! the in-kernel pre-filter). Offline replay ignores them.

use capture::afxdp::Cidr;
use serde::Deserialize;

use super::ConfigError;

/// Which live source reads the interface.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
pub enum CaptureSource {
    /// AF_XDP: the XDP program redirects frames into per-queue sockets.
    #[default]
    #[serde(rename = "afxdp", alias = "af_xdp")]
    #[value(name = "afxdp")]
    AfXdp,
    /// AF_PACKET v3 ring, one socket per worker in a fanout group.
    #[serde(rename = "afpacket", alias = "af_packet")]
    #[value(name = "afpacket")]
    AfPacket,
    /// DPDK poll-mode driver, one RX queue per worker (`[capture.dpdk]`;
    /// needs a build with the `dpdk` feature).
    #[serde(rename = "dpdk")]
    #[value(name = "dpdk")]
    Dpdk,
}

impl CaptureSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureSource::AfXdp => "afxdp",
            CaptureSource::AfPacket => "afpacket",
            CaptureSource::Dpdk => "dpdk",
        }
    }
}

/// Where the XDP program runs.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum XdpModeSetting {
    /// Native if the driver supports it, else generic.
    #[default]
    Auto,
    /// Driver mode only.
    Native,
    /// Generic (skb) mode: any interface, slower.
    Generic,
}

/// AF_XDP zero-copy policy.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ZeroCopySetting {
    #[default]
    Auto,
    On,
    Off,
}

/// How flows are mapped to workers with AF_XDP.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ShardSetting {
    /// The NIC's RSS (with a symmetric key) puts both directions of a flow on
    /// one queue; each queue's worker owns what its queue receives.
    #[default]
    Hardware,
    /// The receiving worker hands each frame to its owner worker through a
    /// bounded ring (for NICs without a symmetric RSS key).
    Software,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureSection {
    /// `afxdp` or `afpacket` (`--capture`).
    pub source: CaptureSource,
    /// Interface to capture on (`--iface` overrides it).
    pub iface: String,
    /// `auto`, `native` or `generic` (`--xdp-mode`).
    pub xdp_mode: XdpModeSetting,
    /// `auto`, `on` or `off`.
    pub zero_copy: ZeroCopySetting,
    /// UMEM frames per queue.
    pub umem_frames: u32,
    /// UMEM frame size: 2048 or 4096.
    pub frame_size: u32,
    /// AF_XDP RX ring entries (power of two).
    pub rx_ring: u32,
    /// AF_XDP fill ring entries (power of two, at most `umem_frames`).
    pub fill_ring: u32,
    /// Let the kernel say when it needs a wakeup (fewer syscalls).
    pub need_wakeup: bool,
    /// SO_BUSY_POLL microseconds (0 = off) and budget.
    pub busy_poll_usecs: u32,
    pub busy_poll_budget: u32,
    /// `hardware` or `software`.
    pub shard: ShardSetting,
    /// Entries of each worker-to-worker ring in software shard mode.
    pub shard_ring: usize,
    /// AF_PACKET ring block size in bytes (power of two, >= 4096).
    pub afpacket_block_size: u32,
    /// AF_PACKET ring blocks per socket.
    pub afpacket_block_count: u32,
    /// A partly filled AF_PACKET block is handed over after this many ms.
    pub afpacket_block_timeout_ms: u32,
    /// SCHED_FIFO priority of the workers (1..=99; 0 = normal scheduling).
    pub sched_fifo: u8,
    /// Lock all memory (mlockall) so the capture never pages. Every table is
    /// then faulted in at its configured maximum (RSS = the budget).
    pub mlock: bool,
    /// Once the capture runs (sockets, XDP program, rings, metrics port and
    /// outputs open), become this user for good, with no capability left
    /// ("" = keep running as started). For runs not under the systemd unit,
    /// which starts as the user already.
    pub drop_user: String,
    /// The group to take with `drop_user` ("" = the user's primary group).
    pub drop_group: String,
    pub filter: FilterSection,
    pub dpdk: DpdkSection,
}

/// `[capture.dpdk]`: the DPDK source (`source = "dpdk"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DpdkSection {
    /// EAL arguments, e.g. `["-l", "0-3", "-a", "0000:03:00.0"]` or
    /// `["--no-huge", "--no-pci", "--vdev=net_pcap0,rx_pcap=f.pcap"]`.
    pub eal_args: Vec<String>,
    /// The port: a device name EAL probed (`net_pcap0`, `0000:03:00.0`) or
    /// a port number ("" = `--iface`, else `capture.iface`).
    pub port: String,
    /// RX descriptors per queue.
    pub rx_descriptors: u16,
    /// Frames asked per RX burst (1..=512).
    pub burst: u16,
    /// mbufs per queue (0 = from the memory budget).
    pub mbufs_per_queue: u32,
    /// Per-lcore mempool cache.
    pub mbuf_cache: u32,
    pub promiscuous: bool,
}

impl Default for DpdkSection {
    fn default() -> Self {
        DpdkSection {
            eal_args: Vec::new(),
            port: String::new(),
            rx_descriptors: 1024,
            burst: 64,
            mbufs_per_queue: 0,
            mbuf_cache: 256,
            promiscuous: true,
        }
    }
}

/// What one mbuf costs in its pool: 2 KiB of data, 128 bytes of headroom,
/// the 128-byte rte_mbuf and the mempool's object header, rounded up.
pub const MBUF_BYTES: u64 = 2560;

impl DpdkSection {
    /// mbufs per queue: the configured number, else a 1/16 share of the
    /// memory budget over the queues, at least enough for the RX ring, a
    /// burst in flight and the cache, at most 65535.
    pub fn mbufs_for(&self, budget: u64, queues: usize) -> u32 {
        let floor = 2 * u64::from(self.rx_descriptors)
            + u64::from(self.burst)
            + u64::from(self.mbuf_cache)
            + 64;
        if self.mbufs_per_queue > 0 {
            return self.mbufs_per_queue;
        }
        let share = budget / 16 / MBUF_BYTES / queues.max(1) as u64;
        share.clamp(floor.min(65535), 65535) as u32
    }
}

impl Default for CaptureSection {
    fn default() -> Self {
        CaptureSection {
            source: CaptureSource::AfXdp,
            iface: String::new(),
            xdp_mode: XdpModeSetting::Auto,
            zero_copy: ZeroCopySetting::Auto,
            // 64 MiB per queue (like AF_PACKET's 64 x 1 MiB ring): enough to
            // ride out a worker stall of ~10 ms at 2 Mpps without a drop.
            umem_frames: 32768,
            frame_size: 2048,
            rx_ring: 16384,
            fill_ring: 16384,
            need_wakeup: true,
            busy_poll_usecs: 0,
            busy_poll_budget: 64,
            shard: ShardSetting::Hardware,
            shard_ring: 4096,
            afpacket_block_size: 1 << 20,
            afpacket_block_count: 64,
            afpacket_block_timeout_ms: 10,
            sched_fifo: 0,
            mlock: false,
            drop_user: String::new(),
            drop_group: String::new(),
            filter: FilterSection::default(),
            dpdk: DpdkSection::default(),
        }
    }
}

/// `[capture.filter]`: traffic dropped in the XDP program, before it costs a
/// worker anything (AF_XDP only). A frame is dropped when any rule matches.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilterSection {
    /// VLAN ids (outer or inner), 0..=4095.
    pub drop_vlans: Vec<u16>,
    /// IPv4/IPv6 prefixes matched against source and destination, e.g. "10.0.0.0/8".
    pub drop_cidrs: Vec<String>,
    /// TCP/UDP/SCTP ports matched against source and destination.
    pub drop_ports: Vec<u16>,
    /// IP protocol numbers (after IPv6 extension headers).
    pub drop_protocols: Vec<u8>,
}

impl FilterSection {
    pub fn is_empty(&self) -> bool {
        self.drop_vlans.is_empty()
            && self.drop_cidrs.is_empty()
            && self.drop_ports.is_empty()
            && self.drop_protocols.is_empty()
    }

    /// The prefixes, parsed.
    pub fn cidrs(&self) -> Result<Vec<Cidr>, ConfigError> {
        self.drop_cidrs
            .iter()
            .map(|c| {
                c.parse::<Cidr>()
                    .map_err(|e| ConfigError::Invalid(format!("capture.filter.drop_cidrs: {e}")))
            })
            .collect()
    }
}

impl CaptureSection {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |field: &str, why: String| Err(ConfigError::Invalid(format!("capture.{field}: {why}")));
        if self.iface.len() > 15 {
            return bad("iface", format!("{:?} is longer than 15 bytes", self.iface));
        }
        if self.frame_size != 2048 && self.frame_size != 4096 {
            return bad(
                "frame_size",
                format!("{} must be 2048 or 4096", self.frame_size),
            );
        }
        for (name, v) in [("rx_ring", self.rx_ring), ("fill_ring", self.fill_ring)] {
            if !v.is_power_of_two() || !(64..=1 << 20).contains(&v) {
                return bad(
                    name,
                    format!("{v} must be a power of two from 64 to 1048576"),
                );
            }
        }
        if self.umem_frames < self.fill_ring || self.umem_frames > 1 << 22 {
            return bad(
                "umem_frames",
                format!(
                    "{} must be at least fill_ring ({}) and at most 4194304",
                    self.umem_frames, self.fill_ring
                ),
            );
        }
        if self.busy_poll_usecs > 0 && self.busy_poll_budget == 0 {
            return bad(
                "busy_poll_budget",
                "must be at least 1 with busy polling on".into(),
            );
        }
        if self.shard_ring == 0 || self.shard_ring > 1 << 20 {
            return bad(
                "shard_ring",
                format!("{} must be 1..=1048576", self.shard_ring),
            );
        }
        let b = self.afpacket_block_size;
        if !b.is_power_of_two() || !(4096..=1 << 30).contains(&b) {
            return bad(
                "afpacket_block_size",
                format!("{b} must be a power of two from 4096 to 1073741824"),
            );
        }
        if self.afpacket_block_count == 0
            || u64::from(b) * u64::from(self.afpacket_block_count) > 1 << 32
        {
            return bad(
                "afpacket_block_count",
                format!(
                    "{} must be at least 1, and block size x count at most 4 GiB",
                    self.afpacket_block_count
                ),
            );
        }
        if self.sched_fifo > 99 {
            return bad(
                "sched_fifo",
                format!("{} must be 0 (off) or 1..=99", self.sched_fifo),
            );
        }
        if let Some(v) = self.filter.drop_vlans.iter().find(|v| **v > 4095) {
            return bad(
                "filter.drop_vlans",
                format!("VLAN id {v} is out of range 0..=4095"),
            );
        }
        self.filter.cidrs()?;
        let d = &self.dpdk;
        if d.burst == 0 || d.burst > 512 {
            return bad("dpdk.burst", format!("{} must be 1..=512", d.burst));
        }
        if d.rx_descriptors < 32 {
            return bad(
                "dpdk.rx_descriptors",
                format!("{} must be at least 32", d.rx_descriptors),
            );
        }
        if d.mbuf_cache > 512 {
            return bad(
                "dpdk.mbuf_cache",
                format!("{} must be 0..=512", d.mbuf_cache),
            );
        }
        let floor = 2 * u32::from(d.rx_descriptors) + u32::from(d.burst);
        if d.mbufs_per_queue != 0 && (d.mbufs_per_queue < floor || d.mbufs_per_queue > 1 << 20) {
            return bad(
                "dpdk.mbufs_per_queue",
                format!(
                    "{} must be 0 (from the memory budget) or {floor} (2 x rx_descriptors + burst) to 1048576",
                    d.mbufs_per_queue
                ),
            );
        }
        if let Some(a) = d.eal_args.iter().find(|a| a.contains('\0')) {
            return bad("dpdk.eal_args", format!("{a:?} holds a NUL byte"));
        }
        if self.source == CaptureSource::Dpdk && !self.filter.is_empty() {
            return bad(
                "filter",
                "the pre-filter runs in the XDP program: it needs source = \"afxdp\" \
                 (remove [capture.filter] to capture with DPDK)"
                    .into(),
            );
        }
        if self.source == CaptureSource::AfPacket && !self.filter.is_empty() {
            return bad(
                "filter",
                "the pre-filter runs in the XDP program: it needs source = \"afxdp\" \
                 (remove [capture.filter] to capture with AF_PACKET)"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn err(toml: &str) -> String {
        Config::from_toml(toml, "f.toml")
            .expect_err("must be rejected")
            .to_string()
    }

    #[test]
    fn capture_values_are_read() {
        let cfg = Config::from_toml(
            "[capture]\nsource = \"afpacket\"\niface = \"eth1\"\nxdp_mode = \"generic\"\n\
             shard = \"software\"\nsched_fifo = 10\n",
            "f",
        )
        .expect("ok");
        assert_eq!(cfg.capture.source, super::CaptureSource::AfPacket);
        assert_eq!(cfg.capture.iface, "eth1");
        assert_eq!(cfg.capture.xdp_mode, super::XdpModeSetting::Generic);
        assert_eq!(cfg.capture.shard, super::ShardSetting::Software);
        assert_eq!(cfg.capture.sched_fifo, 10);
        let cfg = Config::from_toml(
            "[capture.filter]\ndrop_vlans = [10]\ndrop_cidrs = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n\
             drop_ports = [5353]\ndrop_protocols = [47]\n",
            "f",
        )
        .expect("ok");
        assert_eq!(cfg.capture.filter.cidrs().expect("cidrs").len(), 2);
        let cfg = Config::from_toml(
            "[capture]\nsource = \"dpdk\"\n[capture.dpdk]\neal_args = [\"--no-huge\", \"--no-pci\"]\n\
             port = \"net_pcap0\"\nburst = 32\nmbufs_per_queue = 4096\n",
            "f",
        )
        .expect("ok");
        assert_eq!(cfg.capture.source, super::CaptureSource::Dpdk);
        let d = &cfg.capture.dpdk;
        assert_eq!(d.eal_args, ["--no-huge", "--no-pci"]);
        assert_eq!(
            (d.port.as_str(), d.burst, d.mbufs_per_queue),
            ("net_pcap0", 32, 4096)
        );
        assert_eq!(d.mbufs_for(1 << 30, 4), 4096);
    }

    #[test]
    fn dpdk_mbufs_follow_the_budget() {
        let d = super::DpdkSection::default();
        // 1 GiB / 16 over 2 queues of 2560-byte mbufs
        assert_eq!(d.mbufs_for(1 << 30, 2), 13107);
        // a small budget still fills the RX ring twice, a burst and the cache
        assert_eq!(d.mbufs_for(64 << 20, 8), 2 * 1024 + 64 + 256 + 64);
        assert_eq!(d.mbufs_for(1 << 40, 1), 65535);
    }

    #[test]
    fn bad_capture_values_name_the_field() {
        for (toml, field) in [
            ("[capture]\nsource = \"pcap\"\n", "source"),
            ("[capture]\nxdp_mode = \"fast\"\n", "xdp_mode"),
            ("[capture]\nzero_copy = true\n", "zero_copy"),
            ("[capture]\nframe_size = 1500\n", "capture.frame_size"),
            ("[capture]\nrx_ring = 1000\n", "capture.rx_ring"),
            ("[capture]\nfill_ring = 32\n", "capture.fill_ring"),
            ("[capture]\numem_frames = 100\n", "capture.umem_frames"),
            ("[capture]\nshard = \"rss\"\n", "shard"),
            ("[capture]\nshard_ring = 0\n", "capture.shard_ring"),
            (
                "[capture]\nafpacket_block_size = 5000\n",
                "capture.afpacket_block_size",
            ),
            (
                "[capture]\nafpacket_block_count = 0\n",
                "capture.afpacket_block_count",
            ),
            ("[capture]\nsched_fifo = 100\n", "capture.sched_fifo"),
            (
                "[capture]\nbusy_poll_usecs = 50\nbusy_poll_budget = 0\n",
                "capture.busy_poll_budget",
            ),
            (
                "[capture]\niface = \"a-very-long-interface-name\"\n",
                "capture.iface",
            ),
            ("[capture]\nifname = \"eth0\"\n", "ifname"),
            (
                "[capture.filter]\ndrop_vlans = [5000]\n",
                "capture.filter.drop_vlans",
            ),
            (
                "[capture.filter]\ndrop_cidrs = [\"10.0.0.0/40\"]\n",
                "capture.filter.drop_cidrs",
            ),
            (
                "[capture.filter]\ndrop_cidrs = [\"nope\"]\n",
                "capture.filter.drop_cidrs",
            ),
            (
                "[capture.filter]\ndrop_protocols = [300]\n",
                "drop_protocols",
            ),
            ("[capture.filter]\ndrop_port = [53]\n", "drop_port"),
            ("[capture.dpdk]\nburst = 0\n", "capture.dpdk.burst"),
            (
                "[capture.dpdk]\nrx_descriptors = 8\n",
                "capture.dpdk.rx_descriptors",
            ),
            (
                "[capture.dpdk]\nmbufs_per_queue = 100\n",
                "capture.dpdk.mbufs_per_queue",
            ),
            (
                "[capture.dpdk]\nmbuf_cache = 1000\n",
                "capture.dpdk.mbuf_cache",
            ),
            ("[capture.dpdk]\nports = \"x\"\n", "ports"),
            (
                "[capture]\nsource = \"dpdk\"\n[capture.filter]\ndrop_ports = [53]\n",
                "capture.filter",
            ),
            (
                "[capture]\nsource = \"afpacket\"\n[capture.filter]\ndrop_ports = [53]\n",
                "capture.filter",
            ),
        ] {
            let e = err(toml);
            assert!(e.contains(field), "{toml:?}: {e}");
        }
    }
}
