//! Rare values: values of a field seen at most `max_count` times across the fleet in the
//! window (all entities together: a binary run on one host only). Counts are kept in a
//! count-min sketch (4 rows of 16 Ki 32-bit counters, 256 KiB) per half window; a
//! value's count is its two halves'. A count-min sketch only over-counts, so a rare
//! value can be missed when the sketch is crowded, never invented. The first window is
//! learned silently; each value is raised once per window.

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

/// The state of one rare-values baseline.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct RareState {
    older: Sketch,
    newer: Sketch,
    /// Index of the half window `newer` counts.
    half: Option<i64>,
    /// Half windows passed (learning ends after two).
    halves: u32,
    raised: HashSet<u64>,
}

impl RareState {
    /// Counts `value` (hashed) at `time_ms`; its count in the window if it is rare.
    pub(crate) fn observe(&mut self, def: &RareDef, time_ms: i64, value: u64) -> Option<u32> {
        let half_ms = i64::from(def.window_hours) * 1_800_000;
        let half = time_ms.div_euclid(half_ms);
        match self.half {
            None => self.half = Some(half),
            Some(h) if half == h + 1 => {
                std::mem::swap(&mut self.older, &mut self.newer);
                self.newer.clear();
                self.half = Some(half);
                self.halves += 1;
                self.raised.clear();
            }
            Some(h) if half > h + 1 => {
                self.older.clear();
                self.newer.clear();
                self.half = Some(half);
                self.halves += 2;
                self.raised.clear();
            }
            Some(_) => {}
        }
        self.newer.add(value);
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
                if s.observe(&def, m * minute, common).is_some() {
                    raised.push(common);
                }
            }
            if m > 24 * 60 && m % 100 == 0 && raised.len() < 40 {
                let rare = 1_000_000 + m as u64;
                if s.observe(&def, m * minute, rare).is_some() {
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
