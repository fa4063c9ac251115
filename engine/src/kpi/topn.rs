//! A label with a bounded number of values: the heaviest keys keep their
//! own series, everything else is summed under `other`.
//!
//! Keys are admitted while there is room. Once the table is full, a new
//! key's observations go to `other` and to a small heavy-hitter sketch
//! (direct-mapped counters with decay, indexed by the key's hash, so
//! tracking a candidate allocates nothing). At each [`TopN::rebalance`]
//! (once per second of traffic), candidates that were observed more often
//! in the past window than the lightest kept keys take their places: the
//! lightest keys are demoted (their values are added to `other`, so every
//! series but the demoted one stays monotonic and the series still sum to
//! every observation) and the freed slots go to the next new keys seen.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use hashbrown::{DefaultHashBuilder, HashTable};

/// Values that can be summed (a demoted key's into `other`).
pub trait Merge {
    fn merge(&mut self, other: &Self);
}

impl Merge for u64 {
    fn merge(&mut self, other: &u64) {
        *self += other;
    }
}

#[derive(Clone, Debug)]
struct Slot<K, V> {
    key: K,
    hash: u64,
    value: V,
    /// Weight observed since the last rebalance.
    window: u64,
}

/// Equal when the same keys hold the same values (the hasher and the
/// heavy-hitter sketch aside).
impl<K: PartialEq, V: PartialEq> PartialEq for TopN<K, V> {
    fn eq(&self, o: &Self) -> bool {
        self.limit == o.limit
            && self.other == o.other
            && self.folded == o.folded
            && self.demoted == o.demoted
            && self.slots.len() == o.slots.len()
            && self
                .slots
                .iter()
                .zip(&o.slots)
                .all(|(a, b)| a.key == b.key && a.value == b.value)
    }
}

impl<K: Eq, V: Eq> Eq for TopN<K, V> {}

#[derive(Clone, Debug)]
pub struct TopN<K, V> {
    limit: usize,
    build: DefaultHashBuilder,
    index: HashTable<u32>,
    slots: Vec<Slot<K, V>>,
    other: V,
    /// (hash, weight) of keys folded into `other` in this window.
    candidates: Vec<(u64, u64)>,
    /// Observations that went to `other` because the table was full.
    pub folded: u64,
    /// Keys that lost their series to a heavier one.
    pub demoted: u64,
}

impl<K: Hash + Eq, V: Default + Merge> TopN<K, V> {
    /// Keeps at most `limit` keys (at least 1).
    pub fn new(limit: usize) -> TopN<K, V> {
        let limit = limit.max(1);
        TopN {
            limit,
            build: DefaultHashBuilder::default(),
            index: HashTable::new(),
            slots: Vec::new(),
            other: V::default(),
            candidates: vec![(0, 0); limit.clamp(16, 4096)],
            folded: 0,
            demoted: 0,
        }
    }

    /// The value of `key` (admitted if there is room), else `other`; one
    /// observation.
    pub fn entry<Q>(&mut self, key: &Q) -> &mut V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.entry_weighted(key, 1)
    }

    /// As [`TopN::entry`], for an observation that weighs `weight` (bytes,
    /// for a label ranked by volume).
    pub fn entry_weighted<Q>(&mut self, key: &Q, weight: u64) -> &mut V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let hash = self.build.hash_one(key);
        let slots = &self.slots;
        if let Some(&i) = self
            .index
            .find(hash, |&i| slots[i as usize].key.borrow() == key)
        {
            let s = &mut self.slots[i as usize];
            s.window += weight;
            return &mut s.value;
        }
        if self.slots.len() < self.limit {
            let i = self.slots.len();
            self.slots.push(Slot {
                key: key.to_owned(),
                hash,
                value: V::default(),
                window: weight,
            });
            let slots = &self.slots;
            self.index
                .insert_unique(hash, i as u32, |&j| slots[j as usize].hash);
            return &mut self.slots[i].value;
        }
        self.folded += 1;
        let n = self.candidates.len();
        let c = &mut self.candidates[(hash >> 32) as usize % n];
        if c.0 == hash {
            c.1 = c.1.saturating_add(weight);
        } else if c.1 <= weight {
            // The newcomer outweighs what the slot held: it takes it over.
            *c = (hash, weight - c.1);
        } else {
            c.1 -= weight;
        }
        &mut self.other
    }

    /// Demotes the kept keys that candidates outweighed in the window now
    /// ending (at most a quarter of the table per call, against churn),
    /// then starts a new window.
    pub fn rebalance(&mut self) {
        let mut heavy: Vec<u64> = self
            .candidates
            .iter()
            .map(|c| c.1)
            .filter(|&n| n > 0)
            .collect();
        if !heavy.is_empty() && self.slots.len() == self.limit {
            heavy.sort_unstable_by(|a, b| b.cmp(a));
            heavy.truncate(self.limit.div_ceil(4));
            let mut light: Vec<(u64, usize)> = self
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| (s.window, i))
                .collect();
            light.sort_unstable();
            let mut out: Vec<usize> = heavy
                .iter()
                .zip(&light)
                .take_while(|(&candidate, &(window, _))| candidate > window)
                .map(|(_, &(_, i))| i)
                .collect();
            // Highest index first: a swap-remove then only moves a slot
            // that stays.
            out.sort_unstable_by(|a, b| b.cmp(a));
            for i in out {
                self.demote(i);
            }
        }
        for s in &mut self.slots {
            s.window = 0;
        }
        self.candidates.fill((0, 0));
    }

    fn demote(&mut self, i: usize) {
        let Some(hash) = self.slots.get(i).map(|s| s.hash) else {
            return;
        };
        if let Ok(e) = self.index.find_entry(hash, |&j| j as usize == i) {
            e.remove();
        }
        let gone = self.slots.swap_remove(i);
        self.other.merge(&gone.value);
        self.demoted += 1;
        if let Some(moved) = self.slots.get(i) {
            let old = self.slots.len() as u32;
            if let Some(j) = self.index.find_mut(moved.hash, |&j| j == old) {
                *j = i as u32;
            }
        }
    }

    /// The kept keys and their values, then `other`'s.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots.iter().map(|s| (&s.key, &s.value))
    }

    pub fn other(&self) -> &V {
        &self.other
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_limit_keys_and_sums_the_rest_under_other() {
        let mut t: TopN<String, u64> = TopN::new(3);
        for name in ["a", "b", "c", "d", "e", "a", "d"] {
            *t.entry(name) += 1;
        }
        let kept: Vec<(&str, u64)> = t.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(kept, [("a", 2), ("b", 1), ("c", 1)]);
        assert_eq!(*t.other(), 3);
        assert_eq!(t.folded, 3);
    }

    #[test]
    fn a_heavier_newcomer_takes_the_lightest_slot_and_nothing_is_lost() {
        let mut t: TopN<String, u64> = TopN::new(2);
        *t.entry("light") += 1;
        *t.entry("steady") += 1;
        t.rebalance();
        for _ in 0..10 {
            *t.entry("heavy") += 1;
            *t.entry("steady") += 1;
        }
        *t.entry("light") += 1;
        t.rebalance();
        assert_eq!(t.demoted, 1);
        // The next sighting of the heavy key gets the freed slot.
        *t.entry("heavy") += 1;
        let kept: Vec<(&str, u64)> = t.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert!(kept.contains(&("heavy", 1)), "{kept:?}");
        assert!(kept.contains(&("steady", 11)), "{kept:?}");
        let total: u64 = t.iter().map(|(_, v)| *v).sum::<u64>() + t.other();
        assert_eq!(total, 2 + 20 + 1 + 1);
        // Index still finds every kept key after the swap-remove.
        *t.entry("steady") += 1;
        assert!(t.iter().any(|(k, v)| k == "steady" && *v == 12));
    }
}
