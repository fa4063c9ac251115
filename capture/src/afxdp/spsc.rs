//! Bounded single-producer / single-consumer ring between two workers, used
//! by the software shard mode to move frame ownership (not bytes).

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[repr(align(64))]
struct Padded(AtomicUsize);

struct Shared<T> {
    buf: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    head: Padded, // next slot to read (consumer)
    tail: Padded, // next slot to write (producer)
}

// SAFETY: a slot is accessed by the producer only before it publishes it
// (Release on `tail`) and by the consumer only after it observed it (Acquire);
// `T: Send` values move between threads.
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Shared<T> {}

/// Producer end (one thread).
pub(crate) struct Producer<T> {
    s: Arc<Shared<T>>,
    tail: usize,
    head_cache: usize,
}

/// Consumer end (one thread).
pub(crate) struct Consumer<T> {
    s: Arc<Shared<T>>,
    head: usize,
    tail_cache: usize,
}

/// A ring of `cap` (rounded up to a power of two) entries.
pub(crate) fn channel<T: Copy + Send>(cap: usize) -> (Producer<T>, Consumer<T>) {
    let cap = cap.max(2).next_power_of_two();
    let buf = (0..cap)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect::<Vec<_>>()
        .into_boxed_slice();
    let s = Arc::new(Shared {
        buf,
        mask: cap - 1,
        head: Padded(AtomicUsize::new(0)),
        tail: Padded(AtomicUsize::new(0)),
    });
    (
        Producer {
            s: s.clone(),
            tail: 0,
            head_cache: 0,
        },
        Consumer {
            s,
            head: 0,
            tail_cache: 0,
        },
    )
}

impl<T: Copy + Send> Producer<T> {
    /// Pushes `v`, or gives it back when the ring is full.
    #[inline]
    pub(crate) fn push(&mut self, v: T) -> Result<(), T> {
        let cap = self.s.mask + 1;
        if self.tail.wrapping_sub(self.head_cache) >= cap {
            self.head_cache = self.s.head.0.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head_cache) >= cap {
                return Err(v);
            }
        }
        let slot = &self.s.buf[self.tail & self.s.mask];
        // SAFETY: the slot is free (consumer is past it) and only we write it.
        unsafe { (*slot.get()).write(v) };
        self.tail = self.tail.wrapping_add(1);
        self.s.tail.0.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Free slots right now (may grow concurrently).
    pub(crate) fn free(&mut self) -> usize {
        self.head_cache = self.s.head.0.load(Ordering::Acquire);
        self.s.mask + 1 - self.tail.wrapping_sub(self.head_cache)
    }
}

impl<T: Copy + Send> Consumer<T> {
    /// Pops the oldest entry, if any.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.head == self.tail_cache {
            self.tail_cache = self.s.tail.0.load(Ordering::Acquire);
            if self.head == self.tail_cache {
                return None;
            }
        }
        let slot = &self.s.buf[self.head & self.s.mask];
        // SAFETY: the producer published this slot (Acquire above) and will not
        // touch it until we advance `head`.
        let v = unsafe { (*slot.get()).assume_init_read() };
        self.head = self.head.wrapping_add(1);
        self.s.head.0.store(self.head, Ordering::Release);
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_full() {
        let (mut p, mut c) = channel::<u64>(4);
        for i in 0..4 {
            p.push(i).unwrap();
        }
        assert_eq!(p.push(9), Err(9));
        assert_eq!(c.pop(), Some(0));
        p.push(4).unwrap();
        assert_eq!(
            (1..5).map(|_| c.pop().unwrap()).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(c.pop(), None);
    }

    #[test]
    fn threads() {
        let (mut p, mut c) = channel::<u64>(64);
        let t = std::thread::spawn(move || {
            let mut n = 0u64;
            while n < 100_000 {
                if p.push(n).is_ok() {
                    n += 1;
                }
            }
        });
        let mut want = 0u64;
        while want < 100_000 {
            if let Some(v) = c.pop() {
                assert_eq!(v, want);
                want += 1;
            }
        }
        t.join().unwrap();
    }
}
