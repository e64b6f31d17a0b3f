//! [`Bounded`]: per-entity state keyed by a 64-bit hash, at most a set number of
//! entities; past it, about the least recently touched tenth goes (counted).
//!
//! Built to be small. The entries live in one open-addressing table (linear probing, no
//! control bytes: a zero key marks a free slot) that doubles while small and, when the
//! next doubling would pass what `max` entities need, grows to exactly that instead, at
//! most 80 % full: a power-of-two table (hashbrown's) holds 1 M entities in 2^21 slots,
//! this one in 1.25 M. A touch costs no allocation and each entry carries only a 16-bit
//! epoch (the touch clock divided by [`EPOCH_TOUCHES`]). When the table is full, the
//! epochs of up to 1,024 entries give the age of the oldest tenth, and one pass drops the
//! entries at least that old, each by backward shift (the entries after it that may
//! move up do): amortized, a constant per insert.
//! An entry untouched for more than 65,536 epochs looks young again (the epoch wraps); it
//! is then dropped later rather than sooner.

use serde::{Deserialize, Serialize};

/// Default most entities per baseline.
pub(crate) const DEFAULT_MAX_ENTITIES: usize = 1_000_000;
/// Touches per epoch.
const EPOCH_TOUCHES: u32 = 4096;
/// Entries sampled to find the eviction age.
const SAMPLE: usize = 1024;
/// Fullest the table gets, as a fraction: entries at most 4/5 of the slots.
const MAX_LOAD: (usize, usize) = (4, 5);
/// Slots of the first table.
const FIRST_SLOTS: usize = 64;
/// The key of a free slot.
const FREE: [u32; 2] = [0, 0];

/// One entity's state and when it was last touched; a free slot when its key is
/// [`FREE`].
#[derive(Debug, Clone, Default)]
struct Slot<T> {
    /// The entity hash as two halves (4-byte aligned: smaller slots).
    key: [u32; 2],
    epoch: u16,
    value: T,
}

/// Entities' state, bounded.
#[derive(Debug)]
pub(crate) struct Bounded<T> {
    slots: Vec<Slot<T>>,
    len: usize,
    touches: u32,
    epoch: u16,
    max: usize,
    /// Entities dropped to stay within `max`.
    pub(crate) evicted: u64,
}

impl<T> Default for Bounded<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
            touches: 0,
            epoch: 0,
            max: DEFAULT_MAX_ENTITIES,
            evicted: 0,
        }
    }
}

/// The stored form of an entity hash: one more, as 0 marks free slots (the hash
/// `u64::MAX` is stored as 0's: two entities sharing a baseline once in 2^63 pairs).
fn split(key: u64) -> [u32; 2] {
    let stored = key.wrapping_add(1).max(1);
    [stored as u32, (stored >> 32) as u32]
}

/// The entity hash of a stored key.
fn join(key: [u32; 2]) -> u64 {
    (u64::from(key[0]) | (u64::from(key[1]) << 32)).wrapping_sub(1)
}

/// Slots needed to hold `entries` at most [`MAX_LOAD`] full (one more, so that a probe
/// always meets a free slot).
fn slots_for(entries: usize) -> usize {
    let (num, den) = MAX_LOAD;
    entries
        .saturating_mul(den)
        .div_ceil(num)
        .max(entries.saturating_add(1))
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
                .occupied()
                .map(|s| (join(s.key), s.epoch, &s.value))
                .collect(),
            touches: self.touches,
            epoch: self.epoch,
            max: self.max,
            evicted: self.evicted,
        }
        .serialize(serializer)
    }
}

impl<'de, T: Default + Deserialize<'de>> Deserialize<'de> for Bounded<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = Saved::<T>::deserialize(deserializer)?;
        let mut table = Self {
            touches: saved.touches,
            epoch: saved.epoch,
            max: saved.max.max(1),
            evicted: saved.evicted,
            ..Self::default()
        };
        table.resize(slots_for(saved.entries.len()));
        for (key, epoch, value) in saved.entries {
            let key = split(key);
            if table.find(key).is_none() {
                table.seat(Slot { key, epoch, value });
                table.len += 1;
            }
        }
        Ok(table)
    }
}

impl<T> Bounded<T> {
    /// Sets the most entities kept.
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
    }

    /// Entities kept.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of the table (its slots, free or not).
    pub(crate) fn table_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot<T>>()
    }

    fn occupied(&self) -> impl Iterator<Item = &Slot<T>> {
        self.slots.iter().filter(|s| s.key != FREE)
    }

    /// The slot where `key`'s probe starts.
    fn home(&self, key: [u32; 2]) -> usize {
        let mixed = join(key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((u128::from(mixed) * self.slots.len() as u128) >> 64) as usize
    }

    /// The slot holding `key`, if any.
    fn find(&self, key: [u32; 2]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].key;
            if k == key {
                return Some(i);
            }
            if k == FREE {
                return None;
            }
            i = if i + 1 == self.slots.len() { 0 } else { i + 1 };
        }
    }

    /// Puts `slot` in the first free slot of its probe; returns where. The table must
    /// have a free slot.
    fn seat(&mut self, slot: Slot<T>) -> usize {
        let mut i = self.home(slot.key);
        while self.slots[i].key != FREE {
            i = if i + 1 == self.slots.len() { 0 } else { i + 1 };
        }
        self.slots[i] = slot;
        i
    }

    /// The state of `key`, if kept.
    #[cfg(test)]
    pub(crate) fn get(&self, key: u64) -> Option<&T> {
        self.find(split(key)).map(|i| &self.slots[i].value)
    }
}

impl<T: Default> Bounded<T> {
    /// The state of `key`, made by `new` if absent; touches it.
    pub(crate) fn get_or_insert(&mut self, key: u64, new: impl FnOnce() -> T) -> &mut T {
        self.touches += 1;
        if self.touches >= EPOCH_TOUCHES {
            self.touches = 0;
            self.epoch = self.epoch.wrapping_add(1);
        }
        let key = split(key);
        let epoch = self.epoch;
        let at = match self.find(key) {
            Some(i) => {
                self.slots[i].epoch = epoch;
                i
            }
            None => {
                if self.len >= self.max {
                    self.evict();
                }
                if slots_for(self.len + 1) > self.slots.len() {
                    self.grow();
                }
                self.len += 1;
                self.seat(Slot {
                    key,
                    epoch,
                    value: new(),
                })
            }
        };
        &mut self.slots[at].value
    }

    /// Doubles the table, or grows it to what `max` entries need if that is less.
    fn grow(&mut self) {
        let full = slots_for(self.max);
        let next = (self.slots.len() * 2).max(FIRST_SLOTS).min(full);
        self.resize(next.max(slots_for(self.len + 1)));
    }

    /// Moves every entry into a table of `slots` slots.
    fn resize(&mut self, slots: usize) {
        let old = std::mem::take(&mut self.slots);
        self.slots.resize_with(slots, Slot::default);
        for slot in old {
            if slot.key != FREE {
                self.seat(slot);
            }
        }
    }

    /// Drops about the oldest tenth of the entries (at least one).
    fn evict(&mut self) {
        let now = self.epoch;
        let age = |s: &Slot<T>| now.wrapping_sub(s.epoch);
        let mut ages: Vec<u16> = self.occupied().take(SAMPLE).map(age).collect();
        ages.sort_unstable_by(|a, b| b.cmp(a));
        let target = (self.len / 10).max(1);
        let Some(&cut) = ages.get(ages.len() / 10) else {
            return;
        };
        let mut dropped = 0;
        // Older than the cut first, then as old as it while short of the target.
        for strict in [true, false] {
            let mut i = 0;
            while i < self.slots.len() && dropped < target {
                let slot = &self.slots[i];
                let old = if strict {
                    age(slot) > cut
                } else {
                    age(slot) >= cut
                };
                if slot.key != FREE && old {
                    // An entry of a later slot may move into this one: look again.
                    self.remove_at(i);
                    dropped += 1;
                } else {
                    i += 1;
                }
            }
        }
        self.len -= dropped;
        self.evicted += dropped as u64;
    }

    /// Frees slot `hole`, then moves back each entry of the run after it that may sit
    /// there (its probe starts at or before the hole), so no probe meets a free slot
    /// before its key (deletion by backward shift).
    fn remove_at(&mut self, mut hole: usize) {
        let n = self.slots.len();
        self.slots[hole] = Slot::default();
        let mut j = hole;
        loop {
            j = if j + 1 == n { 0 } else { j + 1 };
            if self.slots[j].key == FREE {
                return;
            }
            let home = self.home(self.slots[j].key);
            // Stays if its probe starts after the hole, up to where it is.
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots.swap(hole, j);
                hole = j;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_touched_go_first() {
        let mut b: Bounded<u32> = Bounded::default();
        b.set_max(1000);
        for k in 1..=1000u64 {
            b.get_or_insert(k, || k as u32);
            // Keep the first 100 fresh.
            if k % 10 == 0 {
                for fresh in 1..=100u64 {
                    b.get_or_insert(fresh, || 0);
                }
            }
        }
        assert_eq!(b.len(), 1000);
        b.get_or_insert(5000, || 5000);
        assert!(b.len() <= 1000 && b.len() >= 890, "{}", b.len());
        assert!(b.evicted >= 1);
        for fresh in 1..=100u64 {
            assert!(b.get(fresh).is_some(), "entity {fresh} was touched often");
        }
        assert_eq!(b.get(5000), Some(&5000));
        let json = serde_json::to_string(&b).unwrap();
        let back: Bounded<u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), b.len());
    }

    /// Every entry the table holds is found by its key (no probe stops at a hole) and
    /// holds what was last written for it.
    fn check_against(b: &Bounded<u64>, model: &std::collections::HashMap<u64, u64>) {
        let held: Vec<u64> = b.occupied().map(|s| join(s.key)).collect();
        assert_eq!(held.len(), b.len());
        assert_eq!(held.len(), model.len());
        for key in &held {
            assert_eq!(b.get(*key), model.get(key), "entity {key}");
        }
        assert!(b.len() <= b.max);
        assert!(b.slots.len() <= slots_for(b.max).max(FIRST_SLOTS));
    }

    #[test]
    fn random_touches_keep_every_entry_reachable_through_growth_and_eviction() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for max in [1, 7, 100, 5_000] {
            let mut b: Bounded<u64> = Bounded::default();
            b.set_max(max);
            // What the table should hold, and how many entries left it.
            let mut model = std::collections::HashMap::new();
            let mut gone = 0;
            for step in 0..40_000u64 {
                // Keys from a small range come back often (0 among them).
                let key = match next() % 4 {
                    0 => next() % 64,
                    _ => next() % (max as u64 * 3 + 1),
                };
                let evicted_before = b.evicted;
                *b.get_or_insert(key, || 0) = step;
                if b.evicted != evicted_before {
                    let before = model.len();
                    model.retain(|k, _| b.get(*k).is_some());
                    gone += before - model.len();
                }
                model.insert(key, step);
                if step % 997 == 0 {
                    check_against(&b, &model);
                }
            }
            check_against(&b, &model);
            assert_eq!(gone as u64, b.evicted);
            if max < 5_000 {
                assert!(b.evicted > 0);
            }
            // What is saved reads back the same.
            let back: Bounded<u64> =
                serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
            for s in b.occupied() {
                assert_eq!(back.get(join(s.key)), Some(&s.value));
            }
            assert_eq!((back.len(), back.evicted), (b.len(), b.evicted));
        }
    }

    #[test]
    fn a_million_entities_fit_in_what_they_need_not_the_next_power_of_two() {
        let mut b: Bounded<[u32; 4]> = Bounded::default();
        for key in 1..=1_000_000u64 {
            b.get_or_insert(key.wrapping_mul(0x1000_0000_01b3), Default::default);
        }
        assert_eq!((b.len(), b.evicted), (1_000_000, 0));
        // 28-byte slots, 1.25 M of them: 35 MB, 35 bytes per entity.
        assert_eq!(std::mem::size_of::<Slot<[u32; 4]>>(), 28);
        assert_eq!(b.slots.len(), 1_250_000);
        assert!(b.table_bytes() <= 36 * 1_000_000, "{}", b.table_bytes());
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
