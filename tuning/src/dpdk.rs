//! DPDK preflight (`flowtap doctor --capture dpdk --iface DEV`): hugepages,
//! IOMMU and VFIO, the device's driver binding, and the NUMA node of the
//! device against the cores the workers may run on. Reads sysfs and
//! /proc only; says, for each problem, what fixes it.
//!
//! `DEV` is a PCI address (`0000:03:00.0`), a kernel interface name (its
//! PCI device is looked up) or a virtual device (`net_pcap0`,
//! `net_af_packet0`, ...: nothing to bind, no NUMA node).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::doctor::Problem;

/// Drivers a DPDK PMD can drive a PCI device through without taking it
/// from the kernel (bifurcated: Mellanox/NVIDIA), or that DPDK binds to.
const USERSPACE_DRIVERS: &[&str] = &["vfio-pci", "uio_pci_generic", "igb_uio"];
const BIFURCATED_DRIVERS: &[&str] = &["mlx5_core", "mlx4_core"];

/// One hugepage size's pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hugepages {
    pub size_kb: u64,
    pub total: u64,
    pub free: u64,
}

/// What [`inspect`] found.
#[derive(Clone, Debug, Default)]
pub struct DpdkReport {
    pub device: String,
    /// The PCI address, when the device is a PCI one.
    pub pci: Option<String>,
    /// The kernel driver the PCI device is bound to (None: unbound).
    pub driver: Option<String>,
    pub hugepages: Vec<Hugepages>,
    pub hugetlbfs_mounted: bool,
    /// IOMMU groups the kernel made (0: no IOMMU, or it is off).
    pub iommu_groups: usize,
    pub vfio_pci_loaded: bool,
    pub vfio_noiommu: bool,
    /// NUMA node of the device (None: unknown or virtual).
    pub numa_node: Option<u32>,
    /// Cores the workers may run on, and their NUMA nodes.
    pub cores: Vec<(usize, u32)>,
    pub problems: Vec<Problem>,
}

fn read(p: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn is_pci_address(s: &str) -> bool {
    let b = s.as_bytes();
    // DDDD:BB:DD.F or BB:DD.F
    let short = b.len() == 7 && b[2] == b':' && b[5] == b'.';
    let long = b.len() == 12 && b[4] == b':' && b[7] == b':' && b[10] == b'.';
    (short || long)
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
}

/// The cpulist format of sysfs (`0-3,8,10-11`).
fn parse_cpulist(s: &str) -> Vec<usize> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    v.extend(a..=b);
                }
            }
            None => v.extend(part.parse::<usize>().ok()),
        }
    }
    v
}

/// Reads the state under `sys` (normally `/sys`) and `proc_mounts`
/// (normally `/proc/mounts`) for `device`, the workers running on `cores`.
pub fn inspect_at(sys: &Path, proc_mounts: &Path, device: &str, cores: &[usize]) -> DpdkReport {
    let mut r = DpdkReport {
        device: device.to_string(),
        ..DpdkReport::default()
    };
    // Hugepages, by size.
    if let Ok(dir) = std::fs::read_dir(sys.join("kernel/mm/hugepages")) {
        for e in dir.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(kb) = name
                .strip_prefix("hugepages-")
                .and_then(|s| s.strip_suffix("kB"))
                .and_then(|s| s.parse().ok())
            else {
                continue;
            };
            let num = |f: &str| {
                read(e.path().join(f))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            };
            r.hugepages.push(Hugepages {
                size_kb: kb,
                total: num("nr_hugepages"),
                free: num("free_hugepages"),
            });
        }
    }
    r.hugepages.sort_by_key(|h| h.size_kb);
    r.hugetlbfs_mounted = read(proc_mounts).is_some_and(|m| {
        m.lines()
            .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"))
    });
    r.iommu_groups = std::fs::read_dir(sys.join("kernel/iommu_groups")).map_or(0, |d| d.count());
    r.vfio_pci_loaded = sys.join("bus/pci/drivers/vfio-pci").exists();
    r.vfio_noiommu = read(sys.join("module/vfio/parameters/enable_unsafe_noiommu_mode"))
        .is_some_and(|v| v == "Y" || v == "1");
    // The device: a PCI address, or a kernel interface's PCI device.
    let pci_dir: Option<PathBuf> = if is_pci_address(device) {
        let full = if device.len() == 7 {
            format!("0000:{device}")
        } else {
            device.to_string()
        };
        Some(sys.join("bus/pci/devices").join(full))
    } else {
        let dev = sys.join("class/net").join(device).join("device");
        dev.exists().then_some(dev)
    };
    if let Some(dir) = &pci_dir {
        let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        r.pci = canon
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| is_pci_address(n));
        r.driver = std::fs::read_link(dir.join("driver"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        r.numa_node = read(dir.join("numa_node"))
            .and_then(|s| s.parse::<i64>().ok())
            .and_then(|n| u32::try_from(n).ok());
    }
    // Cores and their nodes.
    let mut node_of = std::collections::HashMap::new();
    if let Ok(dir) = std::fs::read_dir(sys.join("devices/system/node")) {
        for e in dir.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(n) = name
                .strip_prefix("node")
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            for c in parse_cpulist(&read(e.path().join("cpulist")).unwrap_or_default()) {
                node_of.insert(c, n);
            }
        }
    }
    r.cores = cores
        .iter()
        .map(|&c| (c, node_of.get(&c).copied().unwrap_or(0)))
        .collect();
    r.diagnose();
    r
}

/// [`inspect_at`] on this machine's /sys and /proc/mounts.
pub fn inspect(device: &str, cores: &[usize]) -> DpdkReport {
    inspect_at(Path::new("/sys"), Path::new("/proc/mounts"), device, cores)
}

impl DpdkReport {
    /// Whether the device is a DPDK virtual device (`net_pcap0`, ...).
    pub fn is_virtual(&self) -> bool {
        self.pci.is_none() && self.device.starts_with("net_")
    }

    fn diagnose(&mut self) {
        let mut p = Vec::new();
        let huge_total: u64 = self.hugepages.iter().map(|h| h.total).sum();
        if huge_total == 0 {
            p.push(Problem {
                what: "no hugepages reserved: EAL needs them for packet buffers (only tests may run with --no-huge)".into(),
                fix: vec!["sysctl -w vm.nr_hugepages=1024".into()],
            });
        } else if self.hugepages.iter().all(|h| h.free == 0) {
            p.push(Problem {
                what: "every hugepage is in use (another DPDK process?)".into(),
                fix: vec![],
            });
        }
        if !self.hugetlbfs_mounted {
            p.push(Problem {
                what: "hugetlbfs is not mounted".into(),
                fix: vec!["mount -t hugetlbfs nodev /dev/hugepages".into()],
            });
        }
        if self.is_virtual() {
            self.problems = p;
            return;
        }
        let Some(pci) = self.pci.clone() else {
            p.push(Problem {
                what: format!(
                    "{} is neither a PCI address, a kernel interface with a PCI device, nor a DPDK virtual device (net_*): list the devices with `dpdk-devbind.py --status` (package dpdk)",
                    self.device
                ),
                fix: vec![],
            });
            self.problems = p;
            return;
        };
        let driver = self.driver.clone().unwrap_or_default();
        let bifurcated = BIFURCATED_DRIVERS.contains(&driver.as_str());
        if !bifurcated {
            if self.iommu_groups == 0 && !self.vfio_noiommu {
                p.push(Problem {
                    what: "no IOMMU groups: the IOMMU is off, so vfio-pci cannot take the device (add intel_iommu=on iommu=pt or amd_iommu=on to the kernel command line and reboot)".into(),
                    fix: vec![],
                });
            }
            if !self.vfio_pci_loaded {
                p.push(Problem {
                    what: "the vfio-pci module is not loaded".into(),
                    fix: vec!["modprobe vfio-pci".into()],
                });
            }
            if !USERSPACE_DRIVERS.contains(&driver.as_str()) {
                p.push(Problem {
                    what: format!(
                        "{pci} is bound to {}: DPDK needs it on vfio-pci (this takes it from the kernel; run by hand: `dpdk-devbind.py --bind=vfio-pci {pci}`, package dpdk)",
                        if driver.is_empty() { "no driver" } else { &driver }
                    ),
                    fix: vec![],
                });
            }
        }
        if let Some(node) = self.numa_node {
            let local = self.cores.iter().filter(|(_, n)| *n == node).count();
            if !self.cores.is_empty() && local < self.cores.len() {
                p.push(Problem {
                    what: format!(
                        "{pci} is on NUMA node {node} but {} of the {} worker core(s) are not: pin the workers to node {node}'s cores (EAL -l, taskset) so packet buffers stay local",
                        self.cores.len() - local,
                        self.cores.len()
                    ),
                    fix: vec![],
                });
            }
        }
        self.problems = p;
    }

    /// Every command that would fix a problem, in order.
    pub fn fix_commands(&self) -> Vec<String> {
        Problem::fix_commands(&self.problems)
    }

    /// Human-readable report.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "device      {}", self.device);
        if self.is_virtual() {
            let _ = writeln!(
                s,
                "kind        DPDK virtual device (no binding, no NUMA node)"
            );
        } else {
            let _ = writeln!(
                s,
                "pci         {} (driver {})",
                self.pci.as_deref().unwrap_or("?"),
                self.driver.as_deref().unwrap_or("none")
            );
            let _ = writeln!(
                s,
                "numa node   {}",
                self.numa_node.map_or("unknown".into(), |n| n.to_string())
            );
        }
        if self.hugepages.is_empty() {
            let _ = writeln!(s, "hugepages   none available (kernel without hugetlb?)");
        }
        for h in &self.hugepages {
            let _ = writeln!(
                s,
                "hugepages   {} kB: {} reserved, {} free",
                h.size_kb, h.total, h.free
            );
        }
        let _ = writeln!(
            s,
            "hugetlbfs   {}",
            if self.hugetlbfs_mounted {
                "mounted"
            } else {
                "not mounted"
            }
        );
        let _ = writeln!(
            s,
            "iommu       {} group(s){}; vfio-pci {}",
            self.iommu_groups,
            if self.vfio_noiommu {
                " (vfio no-IOMMU mode on)"
            } else {
                ""
            },
            if self.vfio_pci_loaded {
                "loaded"
            } else {
                "not loaded"
            }
        );
        let cores: Vec<String> = self
            .cores
            .iter()
            .map(|(c, n)| format!("{c}@node{n}"))
            .collect();
        let _ = writeln!(s, "cores       {}", cores.join(" "));
        if self.problems.is_empty() {
            let _ = writeln!(s, "\nno problem found");
        } else {
            let _ = writeln!(s, "\nproblems:");
            for p in &self.problems {
                let _ = writeln!(s, "  - {}", p.what);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulists_and_pci_addresses() {
        assert_eq!(parse_cpulist("0-3,8,10-11\n"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert!(is_pci_address("0000:03:00.0"));
        assert!(is_pci_address("03:00.1"));
        assert!(!is_pci_address("eth0"));
        assert!(!is_pci_address("net_pcap0"));
    }

    /// A sysfs tree of a machine with a NIC on node 1 bound to ixgbe, no
    /// hugepages and no IOMMU (this machine has no NIC to look at).
    #[test]
    fn a_kernel_bound_nic_on_the_other_node_is_diagnosed() {
        let root = std::env::temp_dir().join(format!("ft-dpdk-doctor-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dev = root.join("bus/pci/devices/0000:03:00.0");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::create_dir_all(root.join("bus/pci/drivers/ixgbe")).unwrap();
        std::os::unix::fs::symlink(root.join("bus/pci/drivers/ixgbe"), dev.join("driver")).unwrap();
        std::fs::write(dev.join("numa_node"), "1\n").unwrap();
        let hp = root.join("kernel/mm/hugepages/hugepages-2048kB");
        std::fs::create_dir_all(&hp).unwrap();
        std::fs::write(hp.join("nr_hugepages"), "0\n").unwrap();
        std::fs::write(hp.join("free_hugepages"), "0\n").unwrap();
        for (n, cpus) in [(0, "0-3"), (1, "4-7")] {
            let d = root.join(format!("devices/system/node/node{n}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cpulist"), cpus).unwrap();
        }
        let mounts = root.join("mounts");
        std::fs::write(&mounts, "proc /proc proc rw 0 0\n").unwrap();
        let r = inspect_at(&root, &mounts, "03:00.0", &[2, 5]);
        assert_eq!(r.pci.as_deref(), Some("0000:03:00.0"));
        assert_eq!(r.driver.as_deref(), Some("ixgbe"));
        assert_eq!(r.numa_node, Some(1));
        assert_eq!(r.cores, vec![(2, 0), (5, 1)]);
        let whats: Vec<&str> = r.problems.iter().map(|p| p.what.as_str()).collect();
        assert_eq!(whats.len(), 6, "{whats:#?}");
        assert!(whats[0].starts_with("no hugepages"));
        assert!(whats[1].starts_with("hugetlbfs"));
        assert!(whats[2].starts_with("no IOMMU groups"));
        assert!(whats[3].contains("vfio-pci module"));
        assert!(whats[4].contains("bound to ixgbe"));
        assert!(
            whats[5].contains("NUMA node 1 but 1 of the 2"),
            "{}",
            whats[5]
        );
        assert_eq!(
            r.fix_commands(),
            [
                "sysctl -w vm.nr_hugepages=1024",
                "mount -t hugetlbfs nodev /dev/hugepages",
                "modprobe vfio-pci"
            ]
        );
        // Mellanox is bifurcated: no binding, IOMMU or VFIO needed.
        std::fs::remove_file(dev.join("driver")).unwrap();
        std::fs::create_dir_all(root.join("bus/pci/drivers/mlx5_core")).unwrap();
        std::os::unix::fs::symlink(root.join("bus/pci/drivers/mlx5_core"), dev.join("driver"))
            .unwrap();
        let r = inspect_at(&root, &mounts, "0000:03:00.0", &[4, 5]);
        assert_eq!(r.problems.len(), 2, "{:#?}", r.problems);
        let _ = std::fs::remove_dir_all(&root);
    }

    /// This machine: a virtual device needs hugepages only.
    #[test]
    fn a_virtual_device_here() {
        let r = inspect("net_pcap0", &[0]);
        assert!(r.is_virtual());
        assert!(r.pci.is_none() && r.driver.is_none());
        assert!(r.render().contains("DPDK virtual device"));
        assert!(r
            .problems
            .iter()
            .all(|p| p.what.contains("hugepage") || p.what.contains("hugetlbfs")));
    }
}
