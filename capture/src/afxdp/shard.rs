//! Software flow sharding for NICs without a symmetric RSS hash: the worker
//! that receives a frame hands it to the frame's owner worker through a
//! bounded SPSC ring (UMEM frame ownership moves; bytes are not copied) and
//! the owner returns it through a second ring for refill.
//!
//! Which worker owns a frame is not decided here: the worker that polls the
//! queue says so for each frame it receives ([`super::XdpQueue::poll_routed`]),
//! from the decode it needs anyway, so the owner function, its decode
//! settings (tunnel ports) and the decode itself are the engine's, once.

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
