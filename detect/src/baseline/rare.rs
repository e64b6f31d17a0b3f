//! Rare values: values of a field seen at most `max_count` times across the fleet in the
//! window (all entities together: a binary run on one host only). Counts are kept in a
//! count-min sketch (4 rows of 16 Ki 32-bit counters, 256 KiB) per half window; a
//! value's count is its two halves'. A count-min sketch only over-counts, so a rare
//! value can be missed when the sketch is crowded, never invented. The first window is
//! learned silently; each value is raised once per window.
//!
//! Beside the sketches, the fleet's most common values of the current and previous half
//! windows are kept with their text ([`HeavyHitters`], Space-Saving over 32 slots), so
//! a rare-value alert also says what the usual values are (`baseline.common_values`).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::definition::RareDef;

const WIDTH: usize = 16 * 1024;
const DEPTH: usize = 4;

/// A count-min sketch.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sketch {
    counters: Vec<u32>,
}

impl Default for Sketch {
    fn default() -> Self {
        Self {
            counters: vec![0; WIDTH * DEPTH],
        }
    }
}

impl Sketch {
    fn cells(h: u64) -> impl Iterator<Item = usize> {
        let (a, b) = (h, h.rotate_left(29) | 1);
        (0..DEPTH).map(move |row| {
            row * WIDTH + (a.wrapping_add((row as u64).wrapping_mul(b)) % WIDTH as u64) as usize
        })
    }

    fn add(&mut self, h: u64) {
        for c in Self::cells(h) {
            self.counters[c] = self.counters[c].saturating_add(1);
        }
    }

    fn estimate(&self, h: u64) -> u32 {
        Self::cells(h).map(|c| self.counters[c]).min().unwrap_or(0)
    }

    fn clear(&mut self) {
        self.counters.iter_mut().for_each(|c| *c = 0);
    }
}

/// Slots of a heavy-hitter summary.
const HEAVY_SLOTS: usize = 32;
/// Longest value text kept in a heavy-hitter slot (bytes, cut on a character boundary).
const HEAVY_TEXT_BYTES: usize = 200;

/// One tracked value: its hash, text, count and the most that count may over-state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Heavy {
    hash: u64,
    text: String,
    count: u64,
    error: u64,
}

/// The most frequent values of a stream (Space-Saving): every value with a share above
/// 1/32 of the stream is in it, and each count over-states by at most its `error`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct HeavyHitters {
    slots: Vec<Heavy>,
}

impl HeavyHitters {
    /// Counts one occurrence of `text` (hashed `hash`).
    fn add(&mut self, hash: u64, text: &str) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.hash == hash) {
            slot.count += 1;
            return;
        }
        let mut cut = text.len().min(HEAVY_TEXT_BYTES);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        if self.slots.len() < HEAVY_SLOTS {
            self.slots.push(Heavy {
                hash,
                text: text[..cut].to_string(),
                count: 1,
                error: 0,
            });
            return;
        }
        // Replace the least counted value; the newcomer inherits its count as error (its
        // text buffer is reused: a stream of distinct values allocates nothing here).
        if let Some(min) = self.slots.iter_mut().min_by_key(|s| s.count) {
            min.hash = hash;
            min.text.clear();
            min.text.push_str(&text[..cut]);
            min.error = min.count;
            min.count += 1;
        }
    }

    /// The `n` values counted most, with their counts (merged over `others` too).
    pub(crate) fn top(&self, others: &[&HeavyHitters], n: usize) -> Vec<(String, u64)> {
        let mut merged: Vec<(u64, String, u64)> = Vec::new();
        for slot in std::iter::once(self)
            .chain(others.iter().copied())
            .flat_map(|h| &h.slots)
        {
            match merged.iter_mut().find(|(h, _, _)| *h == slot.hash) {
                Some(m) => m.2 += slot.count,
                None => merged.push((slot.hash, slot.text.clone(), slot.count)),
            }
        }
        merged.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
        merged
            .into_iter()
            .take(n)
            .map(|(_, text, count)| (text, count))
            .collect()
    }
}

/// The state of one rare-values baseline.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct RareState {
    older: Sketch,
    newer: Sketch,
    /// The common values of the previous and of the current half window.
    #[serde(default)]
    older_heavy: HeavyHitters,
    #[serde(default)]
    newer_heavy: HeavyHitters,
    /// Index of the half window `newer` counts.
    half: Option<i64>,
    /// Half windows passed (learning ends after two).
    halves: u32,
    raised: HashSet<u64>,
}

impl RareState {
    /// The fleet's most common values over the window, with their counts.
    pub(crate) fn common_values(&self, n: usize) -> Vec<(String, u64)> {
        self.newer_heavy.top(&[&self.older_heavy], n)
    }

    /// Counts `text` (hashed `value`) at `time_ms`; its count in the window if it is rare.
    pub(crate) fn observe(
        &mut self,
        def: &RareDef,
        time_ms: i64,
        value: u64,
        text: &str,
    ) -> Option<u32> {
        let half_ms = i64::from(def.window_hours) * 1_800_000;
        let half = time_ms.div_euclid(half_ms);
        match self.half {
            None => self.half = Some(half),
            Some(h) if half == h + 1 => {
                std::mem::swap(&mut self.older, &mut self.newer);
                self.newer.clear();
                self.older_heavy = std::mem::take(&mut self.newer_heavy);
                self.half = Some(half);
                self.halves += 1;
                self.raised.clear();
            }
            Some(h) if half > h + 1 => {
                self.older.clear();
                self.newer.clear();
                self.older_heavy = HeavyHitters::default();
                self.newer_heavy = HeavyHitters::default();
                self.half = Some(half);
                self.halves += 2;
                self.raised.clear();
            }
            Some(_) => {}
        }
        self.newer.add(value);
        self.newer_heavy.add(value, text);
        let count = self
            .newer
            .estimate(value)
            .saturating_add(self.older.estimate(value));
        (self.halves >= 2 && count <= def.max_count && self.raised.insert(value)).then_some(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::tests::Rng;

    /// A skewed fleet (Zipf-like: value `i` about 1/i as often) of 5,000 distinct values:
    /// the top values are found in order, with counts within their error bound.
    #[test]
    fn the_common_values_are_the_most_frequent_ones() {
        let mut rng = Rng(5);
        let mut heavy = HeavyHitters::default();
        let mut exact = std::collections::HashMap::<u64, u64>::new();
        let weights: Vec<f64> = (1..=5000).map(|i| 1.0 / f64::from(i)).collect();
        let total: f64 = weights.iter().sum();
        for _ in 0..200_000 {
            let mut x = f64::from(rng.below(1_000_000)) / 1_000_000.0 * total;
            let mut v = 0u64;
            for (i, w) in weights.iter().enumerate() {
                x -= w;
                if x <= 0.0 {
                    v = i as u64;
                    break;
                }
            }
            *exact.entry(v).or_default() += 1;
            heavy.add(v, &format!("bin{v}.exe"));
        }
        let top = heavy.top(&[], 5);
        let names: Vec<&str> = top.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            names,
            ["bin0.exe", "bin1.exe", "bin2.exe", "bin3.exe", "bin4.exe"]
        );
        for slot in &heavy.slots {
            let truth = exact[&slot.hash];
            assert!(
                slot.count >= truth && slot.count - slot.error <= truth,
                "{slot:?} vs {truth}"
            );
        }
        // Long values are cut on a character boundary.
        let mut h = HeavyHitters::default();
        h.add(1, &"é".repeat(300));
        assert!(h.slots[0].text.len() <= HEAVY_TEXT_BYTES);
    }

    /// 2,000 common binaries run thousands of times a day; 20 binaries run once each
    /// after the first day: every one of the 20 is found, nothing else.
    #[test]
    fn values_seen_once_across_the_fleet_are_found() {
        let mut rng = Rng(11);
        let def = RareDef {
            field: "Image".into(),
            window_hours: 24,
            max_count: 1,
        };
        let mut s = RareState::default();
        let mut raised = Vec::new();
        let minute = 60_000;
        for m in 0..(3 * 24 * 60i64) {
            for _ in 0..40 {
                let common = rng.below(2000) as u64;
                if s.observe(&def, m * minute, common, "common").is_some() {
                    raised.push(common);
                }
            }
            if m > 24 * 60 && m % 100 == 0 && raised.len() < 40 {
                let rare = 1_000_000 + m as u64;
                if s.observe(&def, m * minute, rare, "rare").is_some() {
                    raised.push(rare);
                }
            }
        }
        let rare: Vec<u64> = raised.iter().copied().filter(|v| *v >= 1_000_000).collect();
        assert_eq!(
            rare.len(),
            raised.len(),
            "no common value raised: {raised:?}"
        );
        assert_eq!(
            rare.len(),
            (24 * 60 + 1..3 * 24 * 60).filter(|m| m % 100 == 0).count()
        );
    }
}
