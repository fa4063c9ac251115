//! AF_XDP single-producer / single-consumer rings shared with the kernel.
//!
//! A ring is `size` (power of two) entries plus a producer and a consumer
//! index, mmapped from the socket. User space produces into the fill ring and
//! consumes from the RX ring. Indices are free-running `u32`s.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::sys::Mmap;

/// One side's view of a kernel ring holding entries of type `T`.
pub(crate) struct Ring<T: Copy> {
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
    _map: Mmap,
}

// SAFETY: the ring is owned by exactly one thread at a time (it moves with its
// queue); the pointers stay valid while `_map` lives.
unsafe impl<T: Copy> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    /// Maps a ring of `size` entries at page offset `pgoff` with the kernel's
    /// field offsets `off`.
    pub(crate) fn map(
        fd: BorrowedFd<'_>,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: u64,
    ) -> io::Result<Ring<T>> {
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        let map = Mmap::shared(fd, len, pgoff)?;
        let base = map.as_ptr();
        // SAFETY: the kernel guarantees these offsets lie inside the mapping of `len` bytes.
        let (producer, consumer, flags, descs) = unsafe {
            (
                base.add(off.producer as usize) as *const AtomicU32,
                base.add(off.consumer as usize) as *const AtomicU32,
                base.add(off.flags as usize) as *const AtomicU32,
                base.add(off.desc as usize) as *mut T,
            )
        };
        Ok(Ring {
            producer,
            consumer,
            flags,
            descs,
            mask: size - 1,
            size,
            cached_prod: 0,
            cached_cons: 0,
            _map: map,
        })
    }

    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, aligned by the kernel.
        unsafe { &*self.producer }
    }

    fn cons(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, aligned by the kernel.
        unsafe { &*self.consumer }
    }

    /// Whether the kernel asked to be woken (XDP_RING_NEED_WAKEUP).
    pub(crate) fn needs_wakeup(&self) -> bool {
        // SAFETY: points into the live mapping, aligned by the kernel.
        let f = unsafe { &*self.flags }.load(Ordering::Relaxed);
        f & libc::XDP_RING_NEED_WAKEUP != 0
    }

    // ---- producer side (fill ring) ----

    /// Free slots, refreshing the cached consumer index only when needed.
    pub(crate) fn prod_free(&mut self, want: u32) -> u32 {
        let free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.cons().load(Ordering::Acquire);
        self.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Writes `v` at the next producer slot; caller checked `prod_free`.
    pub(crate) fn prod_write(&mut self, i: u32, v: T) {
        let idx = (self.cached_prod.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx < size; the slot belongs to the producer (checked free by caller).
        unsafe { self.descs.add(idx).write(v) }
    }

    /// Publishes `n` written entries to the kernel.
    pub(crate) fn prod_submit(&mut self, n: u32) {
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.prod().store(self.cached_prod, Ordering::Release);
    }

    // ---- consumer side (RX / completion ring) ----

    /// Entries available to consume, up to `max`.
    pub(crate) fn cons_avail(&mut self, max: u32) -> u32 {
        let mut n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n == 0 {
            self.cached_prod = self.prod().load(Ordering::Acquire);
            n = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        n.min(max)
    }

    /// Reads the `i`-th available entry; caller checked `cons_avail`.
    pub(crate) fn cons_read(&self, i: u32) -> T {
        let idx = (self.cached_cons.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx < size; the slot was published by the kernel (acquire above).
        unsafe { self.descs.add(idx).read() }
    }

    /// Hands `n` consumed entries back to the kernel.
    pub(crate) fn cons_release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.cons().store(self.cached_cons, Ordering::Release);
    }
}
