//! Predictive trend: a per-entity series (one value per interval: the largest, the
//! last, or the sum of a field, or the number of events) smoothed with Holt's linear
//! method (a level and a trend). After each closed interval, when the level is below
//! the threshold and rising, the interval at which the forecast reaches the threshold
//! is computed; within the horizon, one alert says when (disk full on Thursday, not
//! "disk at 91 %"). An entity is raised again only after its forecast left the horizon
//! or its level passed the threshold. Intervals without values are skipped.

use serde::{Deserialize, Serialize};

use super::definition::{Aggregate, TrendDef};
use super::Bounded;

/// One entity's series.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Cell {
    level: f64,
    trend: f64,
    current: f64,
    interval: u32,
    seen: u16,
    has_current: bool,
    alerted: bool,
}

/// A forecast crossing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Forecast {
    /// Smoothed level at the end of the last closed interval.
    pub(crate) level: f64,
    /// Change per interval.
    pub(crate) trend: f64,
    /// When the forecast reaches the threshold, Unix ms.
    pub(crate) crossing_ms: i64,
    /// End of the last closed interval, Unix ms.
    pub(crate) as_of_ms: i64,
}

/// The state of one trend baseline.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct TrendState {
    pub(crate) cells: Bounded<Cell>,
}

impl TrendState {
    /// Adds `value` for `entity` at `time_ms`; a forecast when closing an interval made
    /// one within the horizon.
    pub(crate) fn observe(
        &mut self,
        def: &TrendDef,
        entity: u64,
        time_ms: i64,
        value: f64,
    ) -> Option<Forecast> {
        let interval_ms = i64::from(def.interval_minutes) * 60_000;
        let k = u32::try_from(time_ms.div_euclid(interval_ms)).unwrap_or(0);
        let cell = self.cells.get_or_insert(entity, || Cell {
            interval: k,
            ..Cell::default()
        });
        let mut out = None;
        if k > cell.interval {
            if cell.has_current {
                smooth(cell, def);
                out = forecast(
                    cell,
                    def,
                    (i64::from(cell.interval) + 1) * interval_ms,
                    interval_ms,
                );
            }
            cell.interval = k;
            cell.has_current = false;
        } else if k < cell.interval {
            return None;
        }
        cell.current = match (cell.has_current, def.aggregate) {
            (false, _) => value,
            (true, Aggregate::Max) => cell.current.max(value),
            (true, Aggregate::Last) => value,
            (true, Aggregate::Sum) => cell.current + value,
        };
        cell.has_current = true;
        out
    }
}

/// Folds the closed interval's value into the level and trend.
fn smooth(cell: &mut Cell, def: &TrendDef) {
    let x = cell.current;
    // The trend starts at zero and is learned: a first difference would carry the
    // noise of two single intervals for many intervals.
    match cell.seen {
        0 => {
            cell.level = x;
            cell.trend = 0.0;
        }
        _ => {
            let previous = cell.level;
            cell.level = def.alpha * x + (1.0 - def.alpha) * (cell.level + cell.trend);
            cell.trend = def.beta * (cell.level - previous) + (1.0 - def.beta) * cell.trend;
        }
    }
    cell.seen = cell.seen.saturating_add(1);
}

/// The crossing within the horizon, if any (and not raised already).
fn forecast(cell: &mut Cell, def: &TrendDef, as_of_ms: i64, interval_ms: i64) -> Option<Forecast> {
    if u32::from(cell.seen) < def.min_intervals {
        return None;
    }
    if cell.level >= def.threshold || cell.trend <= 0.0 {
        cell.alerted = false;
        return None;
    }
    let steps = (def.threshold - cell.level) / cell.trend;
    let ahead_ms = (steps * interval_ms as f64).ceil();
    let horizon_ms = f64::from(def.horizon_hours) * 3_600_000.0;
    if ahead_ms > horizon_ms {
        cell.alerted = false;
        return None;
    }
    if cell.alerted {
        return None;
    }
    cell.alerted = true;
    Some(Forecast {
        level: cell.level,
        trend: cell.trend,
        crossing_ms: as_of_ms.saturating_add(ahead_ms as i64),
        as_of_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::tests::Rng;

    fn def() -> TrendDef {
        TrendDef {
            value: "disk_used_percent".into(),
            aggregate: Aggregate::Max,
            interval_minutes: 60,
            threshold: 90.0,
            horizon_hours: 48,
            alpha: 0.3,
            beta: 0.1,
            min_intervals: 6,
        }
    }

    /// 100 hosts report disk use every 10 minutes for 10 days: 90 hover around 50 %
    /// (±3), 10 fill by 0.5 % an hour from 40 %. Each filling host is forecast once,
    /// its predicted crossing within 6 hours of the true one, at least 24 hours ahead;
    /// no flat host is.
    #[test]
    fn filling_disks_are_forecast_and_flat_ones_are_not() {
        let mut rng = Rng(5);
        let mut s = TrendState::default();
        let d = def();
        let hour = 3_600_000i64;
        let mut raised: Vec<(u64, Forecast)> = Vec::new();
        for step in 0..(10 * 24 * 6i64) {
            let t = step * 600_000;
            for host in 0..100u64 {
                let noise = (rng.below(61) as f64 - 30.0) / 10.0;
                let v = if host < 10 {
                    40.0 + 0.5 * (t as f64 / hour as f64) + noise / 3.0
                } else {
                    50.0 + noise
                };
                if let Some(f) = s.observe(&d, host, t, v) {
                    raised.push((host, f));
                }
            }
        }
        let mut hosts: Vec<u64> = raised.iter().map(|(h, _)| *h).collect();
        hosts.sort_unstable();
        assert_eq!(hosts, (0..10).collect::<Vec<_>>(), "{raised:?}");
        // 40 % + 0.5 %/h reaches 90 % at hour 100.
        let truth = 100 * hour;
        for (host, f) in &raised {
            assert!(
                (f.crossing_ms - truth).abs() <= 6 * hour,
                "host {host}: {f:?}"
            );
            assert!(
                f.crossing_ms - f.as_of_ms >= 24 * hour,
                "host {host}: {f:?}"
            );
        }
    }
}
