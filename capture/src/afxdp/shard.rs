//! Software flow sharding for NICs without a symmetric RSS hash: the worker
//! that receives a frame hands it to the frame's owner worker through a
//! bounded SPSC ring (UMEM frame ownership moves; bytes are not copied) and
//! the owner returns it through a second ring for refill.

use std::sync::Arc;

use super::spsc::{channel, Consumer, Producer};
use super::xsk::Umem;

/// A frame lent to another worker: address and length in the lender's UMEM.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lent {
    pub(crate) addr: u64,
    pub(crate) len: u32,
}

/// Queue `i`'s ends of the rings to and from every other queue `j`.
pub(crate) struct ShardLinks {
    pub(crate) me: usize,
    /// to_owner[j]: frames of my UMEM I hand to worker j.
    pub(crate) to_owner: Vec<Option<Producer<Lent>>>,
    /// from_rx[j]: frames of j's UMEM that j handed to me.
    pub(crate) from_rx: Vec<Option<Consumer<Lent>>>,
    /// ret_to[j]: frames of j's UMEM I return to j.
    pub(crate) ret_to: Vec<Option<Producer<u64>>>,
    /// ret_from[j]: frames of my UMEM that j returns to me.
    pub(crate) ret_from: Vec<Option<Consumer<u64>>>,
    /// UMEM of every queue, to read lent frames.
    pub(crate) umems: Vec<Arc<Umem>>,
}

/// Builds the N×N ring mesh; element `i` belongs to queue `i`.
pub(crate) fn mesh(umems: Vec<Arc<Umem>>, ring: usize) -> Vec<ShardLinks> {
    let n = umems.len();
    let mut links: Vec<ShardLinks> = (0..n)
        .map(|me| ShardLinks {
            me,
            to_owner: (0..n).map(|_| None).collect(),
            from_rx: (0..n).map(|_| None).collect(),
            ret_to: (0..n).map(|_| None).collect(),
            ret_from: (0..n).map(|_| None).collect(),
            umems: umems.clone(),
        })
        .collect();
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            let (p, c) = channel::<Lent>(ring);
            links[i].to_owner[j] = Some(p);
            links[j].from_rx[i] = Some(c);
            // The return ring is as big as the hand-off ring, and an owner only
            // takes a frame when it has room to return it: it never overflows.
            let (p, c) = channel::<u64>(ring);
            links[j].ret_to[i] = Some(p);
            links[i].ret_from[j] = Some(c);
        }
    }
    links
}

/// Symmetric hash of a frame's IP addresses and L4 ports (both directions of
/// a flow hash the same). Handles up to two VLAN tags, IPv4 and IPv6 (no
/// extension-header walk); non-IP frames hash to 0. Keep this the only
/// definition of frame ownership in software shard mode.
pub fn symmetric_hash(frame: &[u8]) -> u32 {
    let g16 = |o: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*frame.get(o)?, *frame.get(o + 1)?]))
    };
    let mut off = 12;
    let mut et = match g16(off) {
        Some(v) => v,
        None => return 0,
    };
    for _ in 0..2 {
        if et == 0x8100 || et == 0x88a8 {
            off += 4;
            et = match g16(off) {
                Some(v) => v,
                None => return 0,
            };
        }
    }
    let l3 = off + 2;
    let (a, b, proto, l4) = match et {
        0x0800 => {
            let Some(h) = frame.get(l3..l3 + 20) else {
                return 0;
            };
            let ihl = ((h[0] & 0x0f) as usize) * 4;
            let frag = u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0;
            let a = fold(&h[12..16]);
            let b = fold(&h[16..20]);
            (a, b, h[9], if frag { None } else { Some(l3 + ihl) })
        }
        0x86dd => {
            let Some(h) = frame.get(l3..l3 + 40) else {
                return 0;
            };
            (fold(&h[8..24]), fold(&h[24..40]), h[6], Some(l3 + 40))
        }
        _ => return 0,
    };
    let (pa, pb) = match (proto, l4) {
        (6 | 17 | 132, Some(o)) => (g16(o).unwrap_or(0) as u32, g16(o + 2).unwrap_or(0) as u32),
        _ => (0, 0),
    };
    let (lo, hi) = if (a, pa) <= (b, pb) {
        ((a, pa), (b, pb))
    } else {
        ((b, pb), (a, pa))
    };
    mix(
        mix(mix(mix(proto as u32, lo.0), hi.0), lo.1 << 16 | hi.1),
        0x9e37_79b9,
    )
}

fn fold(b: &[u8]) -> u32 {
    b.chunks(4).fold(0u32, |acc, c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        mix(acc, u32::from_be_bytes(w))
    })
}

#[inline]
fn mix(h: u32, v: u32) -> u32 {
    (h ^ v)
        .wrapping_mul(0x0100_0193)
        .rotate_left(13)
        .wrapping_add(0x7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp4(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = 17;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sp.to_be_bytes());
        f[36..38].copy_from_slice(&dp.to_be_bytes());
        f
    }

    #[test]
    fn symmetric() {
        let a = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53);
        let b = udp4([10, 0, 0, 2], [10, 0, 0, 1], 53, 1234);
        let c = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1235, 53);
        assert_eq!(symmetric_hash(&a), symmetric_hash(&b));
        assert_ne!(symmetric_hash(&a), symmetric_hash(&c));
        assert_eq!(symmetric_hash(&[1, 2, 3]), 0);
    }
}
