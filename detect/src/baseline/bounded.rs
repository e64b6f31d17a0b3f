//! [`Bounded`]: per-entity state keyed by a 64-bit hash, at most a set number of
//! entities; past it, the least recently touched go (counted).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Default most entities per baseline.
pub(crate) const DEFAULT_MAX_ENTITIES: usize = 1_000_000;

/// Entities' state, bounded.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Bounded<T> {
    entries: FxHashMap<u64, (T, u64)>,
    /// Touches in order; an entry is stale when its entity was touched since.
    #[serde(skip)]
    order: VecDeque<(u64, u64)>,
    /// Whether `order` covers every entry (not after a restore, until rebuilt).
    #[serde(skip)]
    ordered: bool,
    clock: u64,
    max: usize,
    /// Entities dropped to stay within `max`.
    pub(crate) evicted: u64,
}

impl<T> Default for Bounded<T> {
    fn default() -> Self {
        Self {
            entries: FxHashMap::default(),
            order: VecDeque::new(),
            ordered: true,
            clock: 0,
            max: DEFAULT_MAX_ENTITIES,
            evicted: 0,
        }
    }
}

impl<T> Bounded<T> {
    /// Sets the most entities kept.
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
    }

    /// The state of `key`, made by `new` if absent; touches it.
    pub(crate) fn get_or_insert(&mut self, key: u64, new: impl FnOnce() -> T) -> &mut T {
        if !self.ordered {
            let mut all: Vec<(u64, u64)> =
                self.entries.iter().map(|(k, (_, t))| (*t, *k)).collect();
            all.sort_unstable();
            self.order = all.into();
            self.ordered = true;
        }
        self.clock += 1;
        let clock = self.clock;
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max {
            self.evict_one();
        }
        self.order.push_back((clock, key));
        if self.order.len() > 2 * self.entries.len() + 1024 {
            let entries = &self.entries;
            self.order
                .retain(|(t, k)| entries.get(k).is_some_and(|(_, touched)| touched == t));
        }
        let entry = self.entries.entry(key).or_insert_with(|| (new(), clock));
        entry.1 = clock;
        &mut entry.0
    }

    fn evict_one(&mut self) {
        while let Some((touched, key)) = self.order.pop_front() {
            if self.entries.get(&key).is_some_and(|(_, t)| *t == touched) {
                self.entries.remove(&key);
                self.evicted += 1;
                return;
            }
        }
    }

    /// The state of `key`, if kept.
    #[cfg(test)]
    pub(crate) fn get(&self, key: u64) -> Option<&T> {
        self.entries.get(&key).map(|(v, _)| v)
    }

    /// Entities kept.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_touched_go_first() {
        let mut b: Bounded<u32> = Bounded::default();
        b.set_max(2);
        *b.get_or_insert(1, || 10) += 1;
        b.get_or_insert(2, || 20);
        b.get_or_insert(1, || 0);
        b.get_or_insert(3, || 30);
        assert_eq!((b.get(1), b.get(2), b.get(3)), (Some(&11), None, Some(&30)));
        assert_eq!(b.evicted, 1);
        let json = serde_json::to_string(&b).unwrap();
        let mut back: Bounded<u32> = serde_json::from_str(&json).unwrap();
        back.get_or_insert(4, || 40);
        assert_eq!(
            (back.get(1), back.get(3)),
            (None, Some(&30)),
            "order survives a restore"
        );
    }
}
