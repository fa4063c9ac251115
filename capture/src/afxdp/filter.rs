//! In-kernel pre-filter: what the XDP program drops before a frame reaches
//! user space. Mirrors `struct ft_rules` in `capture/bpf/flowtap.bpf.c`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Traffic the operator does not want, dropped in the XDP program. A frame is
/// dropped when any rule matches: any of its VLAN ids (outer or inner), its
/// IPv4/IPv6 source or destination address, its IP protocol (after IPv6
/// extension headers), or its TCP/UDP/SCTP source or destination port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreFilter {
    pub drop_vlans: Vec<u16>,
    pub drop_cidrs: Vec<Cidr>,
    pub drop_ports: Vec<u16>,
    pub drop_protocols: Vec<u8>,
    /// Drop frames arriving on a queue with no socket, instead of passing
    /// them to the kernel stack.
    pub drop_unbound: bool,
}

/// An IPv4 or IPv6 prefix, e.g. `10.0.0.0/8` or `2001:db8::/32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .parse()
            .map_err(|e| format!("bad address in CIDR {s:?}: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse()
                .map_err(|e| format!("bad prefix in CIDR {s:?}: {e}"))?
        };
        if prefix > max {
            return Err(format!(
                "prefix /{prefix} too long in CIDR {s:?} (max /{max})"
            ));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Frames dropped in the kernel, per reason (summed over CPUs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterDrops {
    pub vlan: u64,
    pub cidr: u64,
    pub protocol: u64,
    pub port: u64,
    /// Frames that arrived on a queue without a bound socket (passed to the
    /// stack, or dropped with `drop_unbound`).
    pub unbound: u64,
}

impl FilterDrops {
    pub(crate) const SLOTS: u32 = 8;

    pub(crate) fn from_slots(s: &[u64; 8]) -> FilterDrops {
        FilterDrops {
            vlan: s[0],
            cidr: s[1],
            protocol: s[2],
            port: s[3],
            unbound: s[4],
        }
    }

    /// Frames the pre-filter dropped (excluding `unbound`).
    pub fn filtered(&self) -> u64 {
        self.vlan + self.cidr + self.protocol + self.port
    }
}

const F_VLAN: u32 = 1 << 0;
const F_CIDR4: u32 = 1 << 1;
const F_CIDR6: u32 = 1 << 2;
const F_PROTO: u32 = 1 << 3;
const F_PORT: u32 = 1 << 4;
const F_DROP_UNBOUND: u32 = 1 << 8;

/// Size of `struct ft_rules`.
pub(crate) const RULES_LEN: usize = 8 + 4 * 8 + 64 * 8 + 1024 * 8;

impl PreFilter {
    /// Whether no rule is set.
    pub fn is_empty(&self) -> bool {
        self.drop_vlans.is_empty()
            && self.drop_cidrs.is_empty()
            && self.drop_ports.is_empty()
            && self.drop_protocols.is_empty()
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(v) = self.drop_vlans.iter().find(|v| **v > 4095) {
            return Err(format!("VLAN id {v} out of range 0..=4095"));
        }
        Ok(())
    }

    /// The `ft_rules` map value.
    pub(crate) fn rules_bytes(&self) -> Vec<u8> {
        let mut flags = 0u32;
        let mut proto = [0u64; 4];
        let mut vlan = [0u64; 64];
        let mut port = vec![0u64; 1024];
        for &p in &self.drop_protocols {
            proto[p as usize >> 6] |= 1 << (p & 63);
            flags |= F_PROTO;
        }
        for &v in &self.drop_vlans {
            let v = (v & 0x0fff) as usize;
            vlan[v >> 6] |= 1 << (v & 63);
            flags |= F_VLAN;
        }
        for &p in &self.drop_ports {
            port[p as usize >> 6] |= 1 << (p & 63);
            flags |= F_PORT;
        }
        for c in &self.drop_cidrs {
            flags |= if c.addr.is_ipv4() { F_CIDR4 } else { F_CIDR6 };
        }
        if self.drop_unbound {
            flags |= F_DROP_UNBOUND;
        }
        let mut out = Vec::with_capacity(RULES_LEN);
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        for w in proto.iter().chain(vlan.iter()).chain(port.iter()) {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        debug_assert_eq!(out.len(), RULES_LEN);
        out
    }

    /// LPM trie keys (`struct lpm4` / `struct lpm6`) for the CIDR rules:
    /// (is_v6, key bytes).
    pub(crate) fn cidr_keys(&self) -> Vec<(bool, Vec<u8>)> {
        self.drop_cidrs
            .iter()
            .map(|c| {
                let mut k = (c.prefix as u32).to_ne_bytes().to_vec();
                match c.addr {
                    IpAddr::V4(a) => {
                        k.extend_from_slice(&a.octets());
                        (false, k)
                    }
                    IpAddr::V6(a) => {
                        k.extend_from_slice(&a.octets());
                        (true, k)
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parse() {
        assert_eq!("10.1.0.0/16".parse::<Cidr>().unwrap().prefix, 16);
        assert_eq!("2001:db8::1".parse::<Cidr>().unwrap().prefix, 128);
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn rules_layout() {
        let f = PreFilter {
            drop_ports: vec![80],
            drop_vlans: vec![100],
            drop_protocols: vec![1],
            ..Default::default()
        };
        let b = f.rules_bytes();
        assert_eq!(b.len(), RULES_LEN);
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()),
            F_VLAN | F_PORT | F_PROTO
        );
        // proto bit 1 in word 0
        assert_eq!(u64::from_ne_bytes(b[8..16].try_into().unwrap()), 1 << 1);
        // vlan 100: word 1, bit 36
        let vo = 8 + 32 + 8;
        assert_eq!(
            u64::from_ne_bytes(b[vo..vo + 8].try_into().unwrap()),
            1 << 36
        );
        // port 80: word 1, bit 16
        let po = 8 + 32 + 512 + 8;
        assert_eq!(
            u64::from_ne_bytes(b[po..po + 8].try_into().unwrap()),
            1 << 16
        );
    }
}
