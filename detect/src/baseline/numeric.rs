//! Numeric anomaly: a per-entity value per interval (the number of events, or the sum of
//! a field), tracked with an exponentially weighted mean and variance. Once an entity
//! has `warmup_intervals` behind it, its running interval is anomalous as soon as its
//! value is `z_threshold` standard deviations above the mean: the alert comes during
//! the interval, not after it. The deviation has a floor (the square root of the mean
//! for counts, as for a Poisson process; 1 % of the mean for sums), so a perfectly
//! regular entity does not alert on the first extra event. Intervals without events
//! count as zero. Spikes are found; drops are the silent-source check's job.
//!
//! State per entity: 16 bytes ([`Cell`]), keyed by a 64-bit hash of the entity, with a
//! 16-bit touch epoch ([`super::bounded`]): 28 bytes per table slot.

use serde::{Deserialize, Serialize};

use super::definition::NumericDef;
use super::Bounded;

/// Intervals of silence replayed as zeros at most (older history has faded anyway).
const MAX_GAP: u32 = 512;

/// One entity's statistics, 16 bytes: mean, variance and running value as `f32`, and
/// one word holding the interval (24 bits, compared with wrapping arithmetic), the
/// intervals seen (7 bits, saturating at 127) and whether the running interval alerted.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Cell {
    mean: f32,
    var: f32,
    current: f32,
    packed: u32,
}

const INTERVAL_BITS: u32 = 24;
const INTERVAL_MASK: u32 = (1 << INTERVAL_BITS) - 1;
/// Most intervals counted as seen (warm-ups are at most this).
pub(crate) const MAX_SEEN: u32 = 127;

impl Cell {
    fn interval(&self) -> u32 {
        self.packed & INTERVAL_MASK
    }
    fn seen(&self) -> u32 {
        (self.packed >> INTERVAL_BITS) & 0x7f
    }
    fn alerted(&self) -> bool {
        self.packed >> 31 == 1
    }
    fn set(&mut self, interval: u32, seen: u32, alerted: bool) {
        self.packed = (interval & INTERVAL_MASK)
            | (seen.min(MAX_SEEN) << INTERVAL_BITS)
            | (u32::from(alerted) << 31);
    }
}

/// How many intervals `k` is after `stored` (24-bit wrapping; negative: before).
fn intervals_after(k: u32, stored: u32) -> i32 {
    let d = k.wrapping_sub(stored) & INTERVAL_MASK;
    if d >= 1 << (INTERVAL_BITS - 1) {
        d as i32 - (1 << INTERVAL_BITS)
    } else {
        d as i32
    }
}

/// An anomalous interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Anomaly {
    /// The interval's value so far.
    pub(crate) value: f64,
    /// The mean it was compared with.
    pub(crate) mean: f64,
    /// The deviation used.
    pub(crate) stddev: f64,
    /// The z-score.
    pub(crate) z: f64,
    /// Start of the interval, Unix ms.
    pub(crate) interval_start_ms: i64,
}

/// The state of one numeric baseline.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct NumericState {
    pub(crate) cells: Bounded<Cell>,
    /// Events older than their entity's running interval, not counted.
    pub(crate) late: u64,
}

impl NumericState {
    /// Adds `value` for `entity` at `time_ms`; an anomaly if the interval just became
    /// one.
    pub(crate) fn observe(
        &mut self,
        def: &NumericDef,
        entity: u64,
        time_ms: i64,
        value: f64,
    ) -> Option<Anomaly> {
        let interval_ms = i64::from(def.interval_minutes) * 60_000;
        let index = time_ms.div_euclid(interval_ms);
        let k = (index as u64 & u64::from(INTERVAL_MASK)) as u32;
        let counts = def.value == "count";
        let cell = self.cells.get_or_insert(entity, || {
            let mut c = Cell::default();
            c.set(k, 0, false);
            c
        });
        let after = intervals_after(k, cell.interval());
        if after > 0 {
            let closed = f64::from(cell.current);
            let mut seen = update(cell, closed, def.alpha, cell.seen());
            for _ in 0..(after as u32 - 1).min(MAX_GAP) {
                seen = update(cell, 0.0, def.alpha, seen);
            }
            cell.current = 0.0;
            cell.set(k, seen, false);
        } else if after < 0 {
            self.late += 1;
            return None;
        }
        cell.current += value as f32;
        if cell.alerted() || cell.seen() < def.warmup_intervals.min(MAX_SEEN) {
            return None;
        }
        let mean = f64::from(cell.mean);
        let floor = if counts {
            mean.max(1.0).sqrt()
        } else {
            (mean.abs() * 0.01).max(1e-9)
        };
        let stddev = f64::from(cell.var).max(0.0).sqrt().max(floor);
        let current = f64::from(cell.current);
        let z = (current - mean) / stddev;
        if z < def.z_threshold {
            return None;
        }
        cell.set(k, cell.seen(), true);
        Some(Anomaly {
            value: current,
            mean,
            stddev,
            z,
            interval_start_ms: index * interval_ms,
        })
    }
}

/// Folds one closed interval's value into the mean and variance; returns the intervals
/// seen after it.
fn update(cell: &mut Cell, value: f64, alpha: f64, seen: u32) -> u32 {
    if seen == 0 {
        cell.mean = value as f32;
        cell.var = 0.0;
    } else {
        let mean = f64::from(cell.mean);
        let diff = value - mean;
        let incr = alpha * diff;
        cell.mean = (mean + incr) as f32;
        cell.var = ((1.0 - alpha) * (f64::from(cell.var) + diff * incr)) as f32;
    }
    (seen + 1).min(MAX_SEEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::tests::Rng;

    fn def() -> NumericDef {
        NumericDef {
            interval_minutes: 60,
            value: "count".into(),
            z_threshold: 4.0,
            warmup_intervals: 24,
            alpha: 0.05,
        }
    }

    /// 200 entities, 24 × 14 hourly intervals of ~20 events (±6); 1 % of the intervals
    /// after the warm-up get a burst of 60 extra events. Precision and recall ≥ 0.95.
    #[test]
    fn injected_bursts_are_found_with_high_precision_and_recall() {
        let mut rng = Rng(7);
        let mut state = NumericState::default();
        let d = def();
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for entity in 0..200u64 {
            for hour in 0..24 * 14i64 {
                let burst = hour >= 48 && rng.below(100) == 0;
                let n = 14 + rng.below(13) + if burst { 60 } else { 0 };
                let mut raised = false;
                for i in 0..n {
                    let t = hour * 3_600_000 + (i as i64) * 1000;
                    raised |= state.observe(&d, entity, t, 1.0).is_some();
                }
                match (burst, raised) {
                    (true, true) => tp += 1,
                    (false, true) => fp += 1,
                    (true, false) => fn_ += 1,
                    (false, false) => {}
                }
            }
        }
        let precision = f64::from(tp) / f64::from(tp + fp).max(1.0);
        let recall = f64::from(tp) / f64::from(tp + fn_).max(1.0);
        assert!(tp > 300, "{tp} bursts found");
        assert!(
            precision >= 0.95,
            "precision {precision:.3} ({tp} tp, {fp} fp)"
        );
        assert!(recall >= 0.95, "recall {recall:.3} ({tp} tp, {fn_} fn)");
    }

    #[test]
    fn nothing_is_raised_during_the_warm_up_and_late_events_are_counted() {
        let mut state = NumericState::default();
        let d = def();
        for hour in 0..10i64 {
            let n = if hour == 5 { 500 } else { 10 };
            for i in 0..n {
                assert!(state.observe(&d, 1, hour * 3_600_000 + i, 1.0).is_none());
            }
        }
        assert!(state.observe(&d, 1, 0, 1.0).is_none());
        assert_eq!(state.late, 1);
        assert_eq!(std::mem::size_of::<Cell>(), 16);
        assert_eq!(intervals_after(0, INTERVAL_MASK), 1, "the interval wraps");
        assert_eq!(intervals_after(INTERVAL_MASK, 0), -1);
    }
}
