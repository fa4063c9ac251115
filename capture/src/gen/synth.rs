//! Synthetic UDP/IPv4 frames.

use std::net::Ipv4Addr;

/// Synthetic traffic: `count` frames per loop of `frame_len` bytes (Ethernet
/// header to end of payload, no FCS; 60..=1514), cycling over `flows` flows
/// that differ by UDP source port (`src_port`, `src_port + 1`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthSpec {
    pub frame_len: usize,
    pub flows: u32,
    pub count: u64,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    /// 802.1Q VLAN id to tag frames with.
    pub vlan: Option<u16>,
}

impl Default for SynthSpec {
    fn default() -> SynthSpec {
        SynthSpec {
            frame_len: 64,
            flows: 1024,
            count: 1_000_000,
            src_mac: [0x02, 0, 0, 0, 0, 0x01],
            dst_mac: [0x02, 0, 0, 0, 0, 0x02],
            // RFC 2544 benchmarking range
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 19, 0, 1),
            src_port: 10000,
            dst_port: 9,
            vlan: None,
        }
    }
}

/// Offset of the UDP source port in a synthetic frame.
pub(crate) fn port_offset(spec: &SynthSpec) -> usize {
    14 + if spec.vlan.is_some() { 4 } else { 0 } + 20
}

/// Frame number `flow` of the spec (UDP checksum 0, valid IPv4 checksum).
pub fn synth_frame(spec: &SynthSpec, flow: u32) -> Vec<u8> {
    let tag = if spec.vlan.is_some() { 4 } else { 0 };
    let min = 14 + tag + 20 + 8;
    let len = spec.frame_len.clamp(min.max(60), 1514 + tag);
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&spec.dst_mac);
    f[6..12].copy_from_slice(&spec.src_mac);
    let mut o = 12;
    if let Some(v) = spec.vlan {
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&(v & 0x0fff).to_be_bytes());
        o = 16;
    }
    f[o..o + 2].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = o + 2;
    let ip_len = (len - ip) as u16;
    f[ip] = 0x45;
    f[ip + 2..ip + 4].copy_from_slice(&ip_len.to_be_bytes());
    f[ip + 6] = 0x40; // DF
    f[ip + 8] = 64;
    f[ip + 9] = 17;
    f[ip + 12..ip + 16].copy_from_slice(&spec.src_ip.octets());
    f[ip + 16..ip + 20].copy_from_slice(&spec.dst_ip.octets());
    let sum = checksum(&f[ip..ip + 20]);
    f[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
    let udp = ip + 20;
    let sport = spec.src_port.wrapping_add(flow as u16);
    f[udp..udp + 2].copy_from_slice(&sport.to_be_bytes());
    f[udp + 2..udp + 4].copy_from_slice(&spec.dst_port.to_be_bytes());
    f[udp + 4..udp + 6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    for (i, b) in f[udp + 8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    f
}

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_shape() {
        let s = SynthSpec {
            frame_len: 64,
            ..Default::default()
        };
        let f = synth_frame(&s, 3);
        assert_eq!(f.len(), 64);
        assert_eq!(checksum(&f[14..34]), 0);
        assert_eq!(u16::from_be_bytes([f[34], f[35]]), 10003);
        let v = synth_frame(
            &SynthSpec {
                vlan: Some(7),
                frame_len: 1000,
                ..Default::default()
            },
            0,
        );
        assert_eq!(v.len(), 1000);
        assert_eq!(&v[12..16], &[0x81, 0, 0, 7]);
        assert_eq!(
            port_offset(&SynthSpec {
                vlan: Some(7),
                ..Default::default()
            }),
            38
        );
    }
}
