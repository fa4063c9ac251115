//! A hashed timer wheel with lazy rescheduling.
//!
//! A flow is put on the wheel once, at its deadline. A packet does not move
//! it: it only advances the flow's `last_ns`. When the slot comes round, the
//! owner checks the flow's real deadline and either expires it or puts it
//! back at the new deadline. Each flow is therefore touched by the wheel at
//! most about once per timeout period, and never on the per-packet path.

use std::collections::VecDeque;

/// One wheel entry: a flow table slot and the generation it had when queued,
/// so entries of a recycled slot are recognised as stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub slot: u32,
    pub gen: u32,
    pub tick: u64,
}

pub struct Wheel {
    /// Entries per tick, oldest first (eviction takes from the front).
    slots: Vec<VecDeque<Entry>>,
    tick_ns: u64,
    /// The next tick not yet processed.
    cursor: u64,
    started: bool,
}

impl Wheel {
    pub fn new(slots: usize, tick_ns: u64) -> Wheel {
        Wheel {
            slots: (0..slots.max(1)).map(|_| VecDeque::new()).collect(),
            tick_ns: tick_ns.max(1),
            cursor: 0,
            started: false,
        }
    }

    /// The tick a deadline falls in (never before the cursor).
    pub fn tick_of(&self, deadline_ns: u64) -> u64 {
        (deadline_ns / self.tick_ns).max(self.cursor)
    }

    /// Queues `slot` to be looked at once `deadline_ns` has passed; returns the tick used.
    pub fn schedule(&mut self, slot: u32, gen: u32, deadline_ns: u64) -> u64 {
        let tick = self.tick_of(deadline_ns);
        let n = self.slots.len() as u64;
        if let Some(bucket) = self.slots.get_mut((tick % n) as usize) {
            bucket.push_back(Entry { slot, gen, tick });
        }
        tick
    }

    /// Hands every entry whose tick is before `now_ns`'s tick to `visit`.
    /// Entries queued for a later turn of the wheel are handed too (the
    /// visitor re-checks the real deadline and reschedules).
    pub fn advance(&mut self, now_ns: u64, mut visit: impl FnMut(&mut Wheel, Entry)) {
        let target = now_ns / self.tick_ns;
        if !self.started {
            self.started = true;
            self.cursor = target;
            return;
        }
        if target <= self.cursor {
            return;
        }
        let n = self.slots.len() as u64;
        // After a jump longer than one turn, one pass over every slot is enough.
        let first = if target - self.cursor > n {
            target - n
        } else {
            self.cursor
        };
        for tick in first..target {
            let idx = (tick % n) as usize;
            let mut bucket = std::mem::take(&mut self.slots[idx]);
            // New entries scheduled by `visit` land at or after the cursor.
            self.cursor = tick + 1;
            for e in bucket.drain(..) {
                visit(self, e);
            }
            // Keep the grown allocation unless visit queued into this slot again.
            if self.slots[idx].is_empty() {
                self.slots[idx] = bucket;
            }
        }
        self.cursor = target;
    }

    /// Removes and returns the first entry at or after the cursor for which
    /// `live` holds (used to pick an eviction victim: the flow nearest its
    /// deadline). Stale entries met on the way are dropped.
    pub fn pop_nearest(&mut self, mut live: impl FnMut(&Entry) -> bool) -> Option<Entry> {
        let n = self.slots.len() as u64;
        for step in 0..n {
            let idx = ((self.cursor + step) % n) as usize;
            let bucket = &mut self.slots[idx];
            while let Some(e) = bucket.pop_front() {
                if live(&e) {
                    return Some(e);
                }
            }
        }
        None
    }

    pub fn cursor_ns(&self) -> u64 {
        self.cursor.saturating_mul(self.tick_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_entries_after_their_deadline_only() {
        let mut w = Wheel::new(8, 1_000);
        w.advance(10_000, |_, _| panic!("first advance only starts the clock"));
        w.schedule(1, 0, 12_500);
        w.schedule(2, 0, 15_000);
        let mut seen = Vec::new();
        w.advance(13_000, |_, e| seen.push(e.slot));
        assert_eq!(seen, vec![1]);
        w.advance(16_000, |_, e| seen.push(e.slot));
        assert_eq!(seen, vec![1, 2]);
    }

    #[test]
    fn far_deadlines_come_round_and_can_be_rescheduled() {
        let mut w = Wheel::new(4, 1);
        w.advance(0, |_, _| {});
        w.schedule(7, 0, 10);
        let mut visits = 0;
        let mut expired = false;
        for now in 1..=12 {
            w.advance(now, |w, e| {
                visits += 1;
                if now > 10 {
                    expired = true;
                } else {
                    w.schedule(e.slot, e.gen, 10);
                }
            });
        }
        assert!(expired);
        assert!(visits <= 4, "lazily visited {visits} times");
    }

    #[test]
    fn a_huge_jump_visits_everything_once() {
        let mut w = Wheel::new(16, 1);
        w.advance(0, |_, _| {});
        for i in 0..16 {
            w.schedule(i, 0, u64::from(i) + 1);
        }
        let mut n = 0;
        w.advance(1_000_000_000, |_, _| n += 1);
        assert_eq!(n, 16);
    }

    #[test]
    fn pop_nearest_skips_stale_entries() {
        let mut w = Wheel::new(8, 1);
        w.advance(0, |_, _| {});
        w.schedule(1, 0, 3);
        w.schedule(2, 0, 5);
        let e = w.pop_nearest(|e| e.slot != 1).expect("one live");
        assert_eq!(e.slot, 2);
        assert!(w.pop_nearest(|_| true).is_none());
    }
}
