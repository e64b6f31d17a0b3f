//! One group's hits and the evaluation of a correlation over a time window.

use rsigma_parser::{ConditionExpr, ConditionOperator, CorrelationType, Quantifier};
use serde::{Deserialize, Serialize};

use super::compile::{Check, Correlation};
use crate::sigma::test_spec::parse_number;

/// One hit of a named rule, as the correlation keeps it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Obs {
    /// Event time, Unix ms.
    pub(crate) time: i64,
    /// Position of the rule in the correlation's `rules`.
    pub(crate) position: u32,
    /// The condition field's value, for value types.
    pub(crate) value: Option<String>,
    /// `event.id` of the event.
    pub(crate) event_id: String,
}

/// The hits of one group, sorted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Group {
    /// Sorted by (time, position, value, event id).
    pub(crate) obs: Vec<Obs>,
    /// Hits at or before this time have been evaluated.
    pub(crate) evaluated_to: Option<i64>,
}

/// A window in which the condition held.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fired {
    /// End of the window (the time of the hit that completed it).
    pub(crate) time: i64,
    /// The measured number (count, distinct values, sum, ...).
    pub(crate) value: f64,
    /// Event ids in the window.
    pub(crate) event_ids: Vec<String>,
}

/// Most event ids an alert lists.
const MAX_ALERT_EVENTS: usize = 100;

impl Group {
    /// Inserts a hit in order; returns false if it was already there.
    pub(crate) fn insert(&mut self, obs: Obs) -> bool {
        match self.obs.binary_search(&obs) {
            Ok(_) => false,
            Err(at) => {
                self.obs.insert(at, obs);
                true
            }
        }
    }

    /// Evaluates every hit time up to `watermark` not evaluated yet, in order; returns
    /// the windows that fired. Consumes the hits of a fired window.
    pub(crate) fn advance(&mut self, c: &Correlation, watermark: i64) -> Vec<Fired> {
        let mut fired = Vec::new();
        let mut i = 0;
        while i < self.obs.len() {
            let t = self.obs[i].time;
            if t > watermark {
                break;
            }
            // Evaluate once per distinct time, with every hit at `t` in the window.
            let end = self.obs[i..].partition_point(|o| o.time == t) + i;
            if self.evaluated_to.is_some_and(|e| t <= e) {
                i = end;
                continue;
            }
            let start = self.obs[..end].partition_point(|o| o.time <= t - c.timespan_ms);
            let window = &self.obs[start..end];
            if let Some(value) = holds(c, window) {
                fired.push(Fired {
                    time: t,
                    value,
                    event_ids: window
                        .iter()
                        .take(MAX_ALERT_EVENTS)
                        .map(|o| o.event_id.clone())
                        .collect(),
                });
                self.obs.drain(..end);
                self.evaluated_to = Some(t);
                i = 0;
                continue;
            }
            self.evaluated_to = Some(t);
            i = end;
        }
        // Every hit up to the watermark is evaluated, and later hits come after it:
        // windows still to come end after the watermark and cannot reach these.
        let keep_from = self
            .obs
            .partition_point(|o| o.time <= watermark.saturating_sub(c.timespan_ms));
        self.obs.drain(..keep_from);
        fired
    }
}

fn compare(op: ConditionOperator, value: f64, bound: f64) -> bool {
    match op {
        ConditionOperator::Lt => value < bound,
        ConditionOperator::Lte => value <= bound,
        ConditionOperator::Gt => value > bound,
        ConditionOperator::Gte => value >= bound,
        ConditionOperator::Eq => value == bound,
        ConditionOperator::Neq => value != bound,
    }
}

fn numbers(window: &[Obs]) -> Vec<f64> {
    window
        .iter()
        .filter_map(|o| o.value.as_deref().and_then(|v| parse_number(v.as_bytes())))
        .collect()
}

fn percentile(mut values: Vec<f64>, p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (values.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let (a, b) = (*values.get(lo)?, *values.get(hi)?);
    Some(a + (b - a) * (rank - lo as f64))
}

/// The measured value if the correlation's condition holds on `window`.
fn holds(c: &Correlation, window: &[Obs]) -> Option<f64> {
    let measured = match c.kind {
        CorrelationType::EventCount => window.len() as f64,
        CorrelationType::ValueCount => {
            let mut values: Vec<&str> = window.iter().filter_map(|o| o.value.as_deref()).collect();
            values.sort_unstable();
            values.dedup();
            values.len() as f64
        }
        CorrelationType::ValueSum => numbers(window).iter().sum(),
        CorrelationType::ValueAvg => {
            let n = numbers(window);
            if n.is_empty() {
                return None;
            }
            n.iter().sum::<f64>() / n.len() as f64
        }
        CorrelationType::ValueMedian => percentile(numbers(window), 50.0)?,
        CorrelationType::ValuePercentile => percentile(numbers(window), c.percentile?)?,
        CorrelationType::Temporal => {
            let present = present_rules(c, window);
            return temporal_holds(c, &present);
        }
        CorrelationType::TemporalOrdered => {
            if !in_order(c, window) {
                return None;
            }
            let present = present_rules(c, window);
            return temporal_holds(c, &present);
        }
    };
    match &c.check {
        Check::Threshold(preds) => preds
            .iter()
            .all(|(op, bound)| compare(*op, measured, *bound))
            .then_some(measured),
        Check::AllRules | Check::Expression(_) => None,
    }
}

fn present_rules(c: &Correlation, window: &[Obs]) -> Vec<bool> {
    let mut present = vec![false; c.rule_count];
    for o in window {
        if let Some(p) = present.get_mut(o.position as usize) {
            *p = true;
        }
    }
    present
}

fn temporal_holds(c: &Correlation, present: &[bool]) -> Option<f64> {
    let count = present.iter().filter(|p| **p).count() as f64;
    let ok = match &c.check {
        Check::AllRules => present.iter().all(|p| *p),
        Check::Threshold(preds) => preds.iter().all(|(op, b)| compare(*op, count, *b)),
        Check::Expression(e) => expression_holds(e, c, present),
    };
    ok.then_some(count)
}

/// Whether the named rules appear in the window in their listed order, each at or
/// after the previous one.
fn in_order(c: &Correlation, window: &[Obs]) -> bool {
    let mut from_time = i64::MIN;
    for pos in 0..c.rule_count as u32 {
        match window
            .iter()
            .find(|o| o.position == pos && o.time >= from_time)
        {
            Some(o) => from_time = o.time,
            None => return false,
        }
    }
    true
}

fn expression_holds(e: &ConditionExpr, c: &Correlation, present: &[bool]) -> bool {
    let named = |name: &str| {
        c.references
            .iter()
            .position(|r| r == name)
            .and_then(|p| present.get(p).copied())
            .unwrap_or(false)
    };
    match e {
        ConditionExpr::And(parts) => parts.iter().all(|p| expression_holds(p, c, present)),
        ConditionExpr::Or(parts) => parts.iter().any(|p| expression_holds(p, c, present)),
        ConditionExpr::Not(inner) => !expression_holds(inner, c, present),
        ConditionExpr::Identifier(name) => named(name),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let hits: Vec<bool> = c
                .references
                .iter()
                .filter(|r| pattern.matches_detection_name(r))
                .map(|r| named(r))
                .collect();
            match quantifier {
                Quantifier::Any => hits.iter().any(|h| *h),
                Quantifier::All => !hits.is_empty() && hits.iter().all(|h| *h),
                Quantifier::Count(n) => hits.iter().filter(|h| **h).count() as u64 >= *n,
            }
        }
    }
}
