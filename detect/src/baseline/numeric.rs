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
//!
//! **Hour-of-week seasonality** (`seasonality: hour_of_week`): the fleet's total per
//! interval is learned per hour of the week (168 EWMA levels, [`Season`]); an hour's
//! factor is its level over the average level (1 until that hour has been seen). An
//! entity's mean is then kept per unit of factor: the interval's expected value is
//! `mean × factor`, and its deviation `σ × √factor` (counts vary with their size, as a
//! Poisson process does), so a quiet night and a busy Monday morning are each compared
//! with their own normal, with no per-entity state beyond the 16 bytes. The profile is
//! the whole fleet's (every tenant), a property of the baseline, not of an entity.

use serde::{Deserialize, Serialize};

use super::definition::{NumericDef, Seasonality};
use super::Bounded;

/// Hours in a week.
const HOURS_PER_WEEK: usize = 168;
/// EWMA weight of the newest week in an hour's level.
const SEASON_ALPHA: f64 = 0.3;
/// Factors are kept within these bounds (an hour that is nearly always empty would
/// otherwise make any event an anomaly).
const FACTOR_RANGE: (f64, f64) = (0.05, 20.0);

/// The fleet's activity per hour of the week.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Season {
    /// Per hour of the week (Monday 00:00 UTC first): EWMA of the fleet's total per
    /// interval.
    level: Vec<f64>,
    /// Intervals learned per hour of the week.
    seen: Vec<u32>,
    /// The fleet's running interval and its total so far.
    interval: i64,
    total: f64,
    /// The average level of the hours learned, kept as the levels change (a factor is
    /// read for every event).
    #[serde(default)]
    average: f64,
}

impl Default for Season {
    fn default() -> Self {
        Self {
            level: vec![0.0; HOURS_PER_WEEK],
            seen: vec![0; HOURS_PER_WEEK],
            interval: i64::MIN,
            total: 0.0,
            average: 0.0,
        }
    }
}

/// The hour of the week (Monday 00:00 UTC = 0) of Unix time `ms`.
pub(crate) fn hour_of_week(ms: i64) -> usize {
    let hours = ms.div_euclid(3_600_000);
    let days = hours.div_euclid(24);
    // 1970-01-01 was a Thursday (3 days after a Monday).
    let weekday = (days + 3).rem_euclid(7);
    (weekday * 24 + hours.rem_euclid(24)) as usize
}

impl Season {
    /// Adds `value` to the fleet's interval `index`, closing the one before.
    fn add(&mut self, index: i64, interval_ms: i64, value: f64) {
        if index > self.interval {
            if self.interval != i64::MIN {
                let h = hour_of_week(self.interval * interval_ms);
                self.level[h] = if self.seen[h] == 0 {
                    self.total
                } else {
                    self.level[h] + SEASON_ALPHA * (self.total - self.level[h])
                };
                self.seen[h] = self.seen[h].saturating_add(1);
                let (sum, n) = self
                    .level
                    .iter()
                    .zip(&self.seen)
                    .filter(|(_, s)| **s > 0)
                    .fold((0.0, 0u32), |(sum, n), (l, _)| (sum + l, n + 1));
                self.average = sum / f64::from(n.max(1));
            }
            self.interval = index;
            self.total = 0.0;
        }
        if index == self.interval {
            self.total += value;
        }
    }

    /// The factor of the hour of week of Unix time `ms`: its level over the average
    /// learned level; 1 while that hour is not learned.
    pub(crate) fn factor(&self, ms: i64) -> f64 {
        let h = hour_of_week(ms);
        if self.seen[h] == 0 || self.average <= 0.0 {
            return 1.0;
        }
        (self.level[h] / self.average).clamp(FACTOR_RANGE.0, FACTOR_RANGE.1)
    }
}

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
    /// The value expected for the interval (the entity's mean, times the hour's
    /// seasonal factor).
    pub(crate) mean: f64,
    /// The hour-of-week factor applied (1 without seasonality).
    pub(crate) factor: f64,
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
    /// The fleet's hour-of-week profile, with `seasonality: hour_of_week`.
    #[serde(default)]
    pub(crate) season: Option<Season>,
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
        let season = match def.seasonality {
            Seasonality::HourOfWeek => {
                let season = self.season.get_or_insert_with(Season::default);
                season.add(index, interval_ms, value);
                Some(&*season)
            }
            Seasonality::None => None,
        };
        let factor_at = |i: i64| season.map_or(1.0, |s| s.factor(i.saturating_mul(interval_ms)));
        let cell = self.cells.get_or_insert(entity, || {
            let mut c = Cell::default();
            c.set(k, 0, false);
            c
        });
        let after = intervals_after(k, cell.interval());
        if after > 0 {
            let closed = f64::from(cell.current);
            let closed_index = index - i64::from(after);
            let mut seen = update(
                cell,
                closed,
                factor_at(closed_index),
                def.alpha,
                cell.seen(),
            );
            let gap = (after as u32 - 1).min(MAX_GAP);
            for i in 0..gap {
                let at = index - i64::from(gap) + i64::from(i);
                seen = update(cell, 0.0, factor_at(at), def.alpha, seen);
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
        let factor = factor_at(index);
        let mean = f64::from(cell.mean) * factor;
        let floor = if counts {
            mean.max(1.0).sqrt()
        } else {
            (mean.abs() * 0.01).max(1e-9)
        };
        let stddev = (f64::from(cell.var).max(0.0) * factor).sqrt().max(floor);
        let current = f64::from(cell.current);
        let z = (current - mean) / stddev;
        if z < def.z_threshold {
            return None;
        }
        cell.set(k, cell.seen(), true);
        Some(Anomaly {
            value: current,
            mean,
            factor,
            stddev,
            z,
            interval_start_ms: index * interval_ms,
        })
    }
}

/// Folds one closed interval's value, expected at `factor` times the mean, into the
/// mean and variance (both per unit of factor); returns the intervals seen after it.
fn update(cell: &mut Cell, value: f64, factor: f64, alpha: f64, seen: u32) -> u32 {
    if seen == 0 {
        cell.mean = (value / factor) as f32;
        cell.var = 0.0;
    } else {
        let mean = f64::from(cell.mean);
        // The residual scaled so that its spread does not depend on the hour's size.
        let residual = (value - mean * factor) / factor.sqrt();
        cell.mean = (mean + alpha * (value / factor - mean)) as f32;
        cell.var = ((1.0 - alpha) * (f64::from(cell.var) + alpha * residual * residual)) as f32;
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
            seasonality: Seasonality::None,
        }
    }

    /// Intervals with a burst and intervals raised, counted as true and false positives
    /// and false negatives.
    #[derive(Default)]
    struct Scores {
        tp: u32,
        fp: u32,
        fn_: u32,
    }

    impl Scores {
        fn count(&mut self, burst: bool, raised: bool) {
            match (burst, raised) {
                (true, true) => self.tp += 1,
                (false, true) => self.fp += 1,
                (true, false) => self.fn_ += 1,
                (false, false) => {}
            }
        }

        fn precision(&self) -> f64 {
            f64::from(self.tp) / f64::from(self.tp + self.fp).max(1.0)
        }

        fn recall(&self) -> f64 {
            f64::from(self.tp) / f64::from(self.tp + self.fn_).max(1.0)
        }
    }

    /// Feeds `n` events of `entity` in hour `hour`; whether one of them raised.
    fn hour_raises(
        state: &mut NumericState,
        d: &NumericDef,
        entity: u64,
        hour: i64,
        n: i64,
    ) -> bool {
        let mut raised = false;
        for i in 0..n {
            raised |= state
                .observe(d, entity, hour * 3_600_000 + i * 1000, 1.0)
                .is_some();
        }
        raised
    }

    /// Events per hour of one entity on a weekday office (Monday to Friday, 08:00 to
    /// 18:00 UTC) or quiet hour.
    fn office_rate(hour: i64) -> u32 {
        let how = hour_of_week(hour * 3_600_000);
        if how / 24 < 5 && (8..18).contains(&(how % 24)) {
            30
        } else {
            2
        }
    }

    /// Precision and recall on 100 entities over 6 weeks of office-hours activity, with
    /// bursts of 40 extra events in 1 % of the hours after the first two weeks.
    fn office_week_scores(seasonality: Seasonality) -> (f64, f64) {
        let mut rng = Rng(11);
        let mut state = NumericState::default();
        let d = NumericDef {
            seasonality,
            warmup_intervals: 48,
            ..def()
        };
        // 1970-01-05 was a Monday.
        let monday = 4 * 24;
        let mut scores = Scores::default();
        for hour in monday..monday + 24 * 7 * 6 {
            for entity in 0..100u64 {
                let usual = office_rate(hour);
                let noise = i64::from(rng.below(2 * usual / 3 + 1)) - i64::from(usual / 3);
                let burst = hour >= monday + 24 * 14 && rng.below(100) == 0;
                let n = (i64::from(usual) + noise).max(0) + if burst { 40 } else { 0 };
                let raised = hour_raises(&mut state, &d, entity, hour, n);
                if hour >= monday + 24 * 14 {
                    scores.count(burst, raised);
                }
            }
        }
        (scores.precision(), scores.recall())
    }

    #[test]
    fn hour_of_week_seasonality_finds_bursts_that_a_flat_mean_misses() {
        let (p, r) = office_week_scores(Seasonality::HourOfWeek);
        assert!(
            p >= 0.9 && r >= 0.9,
            "seasonal: precision {p:.3}, recall {r:.3}"
        );
        let (flat_precision, flat_recall) = office_week_scores(Seasonality::None);
        println!(
            "hour_of_week: precision {p:.3}, recall {r:.3}; flat: precision {flat_precision:.3}, recall {flat_recall:.3}"
        );
        assert!(
            flat_recall < 0.5 && flat_precision < 0.6,
            "without seasonality a burst at night hides in the day's variance, and mornings \
             look like bursts: precision {flat_precision:.3}, recall {flat_recall:.3}"
        );
    }

    #[test]
    fn hours_of_the_week_start_on_monday() {
        // 1970-01-01 00:00 UTC was a Thursday; 1970-01-05 a Monday.
        assert_eq!(hour_of_week(0), 3 * 24);
        assert_eq!(hour_of_week(4 * 86_400_000), 0);
        assert_eq!(hour_of_week(4 * 86_400_000 + 167 * 3_600_000), 167);
        assert_eq!(hour_of_week(-3_600_000), 3 * 24 - 1);
    }

    /// 200 entities, 24 × 14 hourly intervals of ~20 events (±6); 1 % of the intervals
    /// after the warm-up get a burst of 60 extra events. Precision and recall ≥ 0.95.
    #[test]
    fn injected_bursts_are_found_with_high_precision_and_recall() {
        let mut rng = Rng(7);
        let mut state = NumericState::default();
        let d = def();
        let mut scores = Scores::default();
        for entity in 0..200u64 {
            for hour in 0..24 * 14i64 {
                let burst = hour >= 48 && rng.below(100) == 0;
                let n = 14 + rng.below(13) + if burst { 60 } else { 0 };
                let raised = hour_raises(&mut state, &d, entity, hour, i64::from(n));
                scores.count(burst, raised);
            }
        }
        let (precision, recall) = (scores.precision(), scores.recall());
        let Scores { tp, fp, fn_ } = scores;
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
