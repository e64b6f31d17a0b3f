//! [`Bounded`]: per-entity state keyed by a 64-bit hash, at most a set number of
//! entities; past it, about the least recently touched tenth goes (counted).
//!
//! Built to be small: a touch costs no allocation and each entry carries only a 16-bit
//! epoch (the touch clock divided by [`EPOCH_TOUCHES`]). When the table is full, the
//! epochs of up to 1,024 entries give the age of the oldest tenth, and one pass drops
//! the entries at least that old: amortized, a constant per insert. An entry untouched
//! for more than 65,536 epochs looks young again (the epoch wraps); it is then dropped
//! later rather than sooner.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Default most entities per baseline.
pub(crate) const DEFAULT_MAX_ENTITIES: usize = 1_000_000;
/// Touches per epoch.
const EPOCH_TOUCHES: u32 = 4096;
/// Entries sampled to find the eviction age.
const SAMPLE: usize = 1024;

/// One entity's state and when it was last touched.
#[derive(Debug, Clone)]
struct Slot<T> {
    value: T,
    epoch: u16,
}

/// Entities' state, bounded.
#[derive(Debug)]
pub(crate) struct Bounded<T> {
    /// Keyed by the entity hash as two halves (4-byte aligned: smaller buckets).
    entries: FxHashMap<[u32; 2], Slot<T>>,
    touches: u32,
    epoch: u16,
    max: usize,
    /// Entities dropped to stay within `max`.
    pub(crate) evicted: u64,
}

impl<T> Default for Bounded<T> {
    fn default() -> Self {
        Self {
            entries: FxHashMap::default(),
            touches: 0,
            epoch: 0,
            max: DEFAULT_MAX_ENTITIES,
            evicted: 0,
        }
    }
}

fn split(key: u64) -> [u32; 2] {
    [key as u32, (key >> 32) as u32]
}

fn join(key: [u32; 2]) -> u64 {
    u64::from(key[0]) | (u64::from(key[1]) << 32)
}

/// How a [`Bounded`] is saved: entries as (key, epoch, state) triples.
#[derive(Serialize)]
struct SavedRef<'a, T> {
    entries: Vec<(u64, u16, &'a T)>,
    touches: u32,
    epoch: u16,
    max: usize,
    evicted: u64,
}

/// A saved [`Bounded`], read back.
#[derive(Deserialize)]
struct Saved<T> {
    entries: Vec<(u64, u16, T)>,
    touches: u32,
    epoch: u16,
    max: usize,
    evicted: u64,
}

impl<T: Serialize> Serialize for Bounded<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SavedRef {
            entries: self
                .entries
                .iter()
                .map(|(k, s)| (join(*k), s.epoch, &s.value))
                .collect(),
            touches: self.touches,
            epoch: self.epoch,
            max: self.max,
            evicted: self.evicted,
        }
        .serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Bounded<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = Saved::<T>::deserialize(deserializer)?;
        Ok(Self {
            entries: saved
                .entries
                .into_iter()
                .map(|(k, epoch, value)| (split(k), Slot { value, epoch }))
                .collect(),
            touches: saved.touches,
            epoch: saved.epoch,
            max: saved.max.max(1),
            evicted: saved.evicted,
        })
    }
}

impl<T> Bounded<T> {
    /// Sets the most entities kept.
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
    }

    /// The state of `key`, made by `new` if absent; touches it.
    pub(crate) fn get_or_insert(&mut self, key: u64, new: impl FnOnce() -> T) -> &mut T {
        self.touches += 1;
        if self.touches >= EPOCH_TOUCHES {
            self.touches = 0;
            self.epoch = self.epoch.wrapping_add(1);
        }
        let key = split(key);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max {
            self.evict();
        }
        let epoch = self.epoch;
        let slot = self.entries.entry(key).or_insert_with(|| Slot {
            value: new(),
            epoch,
        });
        slot.epoch = epoch;
        &mut slot.value
    }

    /// Drops about the oldest tenth of the entries (at least one).
    fn evict(&mut self) {
        let now = self.epoch;
        let age = |s: &Slot<T>| now.wrapping_sub(s.epoch);
        let mut ages: Vec<u16> = self.entries.values().take(SAMPLE).map(age).collect();
        ages.sort_unstable_by(|a, b| b.cmp(a));
        let target = (self.entries.len() / 10).max(1);
        let Some(&cut) = ages.get(ages.len() / 10) else {
            return;
        };
        let mut dropped = 0;
        // Older than the cut first, then as old as it while short of the target.
        self.entries.retain(|_, s| {
            let keep = age(s) <= cut || dropped >= target;
            dropped += usize::from(!keep);
            keep
        });
        if dropped < target {
            self.entries.retain(|_, s| {
                let keep = age(s) < cut || dropped >= target;
                dropped += usize::from(!keep);
                keep
            });
        }
        self.evicted += dropped as u64;
    }

    /// The state of `key`, if kept.
    #[cfg(test)]
    pub(crate) fn get(&self, key: u64) -> Option<&T> {
        self.entries.get(&split(key)).map(|s| &s.value)
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
        b.set_max(1000);
        for k in 0..1000u64 {
            b.get_or_insert(k, || k as u32);
            // Keep the first 100 fresh.
            if k % 10 == 0 {
                for fresh in 0..100u64 {
                    b.get_or_insert(fresh, || 0);
                }
            }
        }
        assert_eq!(b.len(), 1000);
        b.get_or_insert(5000, || 5000);
        assert!(b.len() <= 1000 && b.len() >= 890, "{}", b.len());
        assert!(b.evicted >= 1);
        for fresh in 0..100u64 {
            assert!(b.get(fresh).is_some(), "entity {fresh} was touched often");
        }
        assert_eq!(b.get(5000), Some(&5000));
        let json = serde_json::to_string(&b).unwrap();
        let back: Bounded<u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), b.len());
    }

    #[test]
    fn a_table_of_one_keeps_the_newest() {
        let mut b: Bounded<u32> = Bounded::default();
        b.set_max(1);
        b.get_or_insert(1, || 1);
        b.get_or_insert(2, || 2);
        assert_eq!((b.get(1), b.get(2), b.evicted), (None, Some(&2), 1));
    }
}
