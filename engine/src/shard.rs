//! Which worker owns a packet. Every packet source that spreads packets over
//! workers itself (offline replay of a file, AF_XDP software shard) asks an
//! [`Owners`] built from the run's configuration, so the decode that finds
//! the owner (tunnels on the configured ports, fragments) is the decode the
//! worker uses: the source passes it on instead of the worker decoding again.

use capture::Packet;
use dissect::packet::{decode_fresh, DecodeConfig, Decoded};

use crate::config::Config;

/// The owner function of one run: its decode settings and worker count.
#[derive(Clone, Copy, Debug)]
pub struct Owners {
    decode: DecodeConfig,
    workers: usize,
}

impl Owners {
    pub fn new(cfg: &Config, workers: usize) -> Owners {
        Owners {
            decode: cfg.decode.decode_config(),
            workers: workers.max(1),
        }
    }

    /// Decodes `pkt` with the run's settings (what a worker would do) into
    /// a fresh `out` (`Decoded::default()`).
    #[inline]
    pub fn decode<'a>(&self, pkt: &Packet<'a>, out: &mut Decoded<'a>) {
        decode_fresh(pkt.link.0, pkt.data, &self.decode, out);
    }

    /// The worker that owns the packet decoded as `d` (see
    /// [`dissect::flow::owner`]).
    #[inline]
    pub fn of(&self, d: &Decoded<'_>) -> usize {
        dissect::flow::owner(d, self.workers)
    }

    /// Decodes `pkt` into a fresh `out` and returns its owner: the decode
    /// stays there for the owner to use.
    #[inline]
    pub fn decode_owner<'a>(&self, pkt: &Packet<'a>, out: &mut Decoded<'a>) -> usize {
        self.decode(pkt, out);
        self.of(out)
    }

    /// The owner of `pkt` when it can be found without decoding it (see
    /// [`dissect::flow::quick_owner`]); `None`: decode it.
    #[inline]
    pub fn quick(&self, pkt: &Packet<'_>) -> Option<usize> {
        dissect::flow::quick_owner(pkt.link.0, pkt.data, &self.decode, self.workers)
    }

    pub fn workers(&self) -> usize {
        self.workers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capture::LinkType;

    /// An Ethernet/IPv4/UDP frame to `dport` carrying `inner` as its payload.
    fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, inner: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[14] = 0x45;
        let total = (20 + 8 + inner.len()) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[14 + 8] = 64;
        f[14 + 9] = 17;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f[38..40].copy_from_slice(&((8 + inner.len()) as u16).to_be_bytes());
        f.extend_from_slice(inner);
        f
    }

    /// `inner` in VXLAN (VNI 7) from one VTEP to another on `port`.
    fn vxlan(port: u16, sport: u16, inner: &[u8]) -> Vec<u8> {
        let mut v = vec![0x08, 0, 0, 0, 0, 0, 7, 0];
        v.extend_from_slice(inner);
        udp4([192, 0, 2, 1], [192, 0, 2, 2], sport, port, &v)
    }

    fn owner_of(o: &Owners, frame: &[u8]) -> usize {
        let pkt = Packet {
            ts_ns: 0,
            data: frame,
            orig_len: frame.len() as u32,
            link: LinkType::ETHERNET,
        };
        let mut d = Decoded::default();
        o.decode_owner(&pkt, &mut d)
    }

    #[test]
    fn owner_follows_the_configured_tunnel_port() {
        let mut cfg = Config::default();
        cfg.decode.vxlan_port = 8472;
        let o = Owners::new(&cfg, 64);
        // Many inner flows in one outer VTEP pair: the owner follows the
        // inner addresses (both directions alike), not the outer ones.
        let mut owners = std::collections::BTreeSet::new();
        for i in 0..32u8 {
            let a = udp4([10, 0, 0, i], [10, 9, 9, 9], 1000, 53, b"q");
            let b = udp4([10, 9, 9, 9], [10, 0, 0, i], 53, 1000, b"r");
            let fa = vxlan(8472, 40000 + u16::from(i), &a);
            let fb = vxlan(8472, 50000 - u16::from(i), &b);
            assert_eq!(owner_of(&o, &fa), owner_of(&o, &fb));
            assert_eq!(owner_of(&o, &fa), owner_of(&o, &a));
            owners.insert(owner_of(&o, &fa));
        }
        assert!(owners.len() > 1, "inner flows spread over workers");
        // On a port that is not configured, the outer pair decides.
        let d = Owners::new(&Config::default(), 64);
        let a = udp4([10, 0, 0, 1], [10, 9, 9, 9], 1000, 53, b"q");
        let outer = udp4([192, 0, 2, 1], [192, 0, 2, 2], 1, 2, b"");
        assert_eq!(owner_of(&d, &vxlan(8472, 1, &a)), owner_of(&d, &outer));
    }
}
