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
}

impl CaptureSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureSource::AfXdp => "afxdp",
            CaptureSource::AfPacket => "afpacket",
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
