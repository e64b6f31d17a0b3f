//! The baseline file format (`rules/baselines/*.yml`), parsed and checked.
//!
//! ```yaml
//! id: logon-failures-per-user          # unique, letters, digits, `-`, `_`, `.`
//! title: Unusual number of failed logons for a user
//! level: medium                        # informational | low | medium | high | critical
//! tags: [attack.credential-access, attack.t1110]
//! events:                              # which events count (all when absent)
//!   dataset: windows.security          # `event.dataset`, exact
//!   where:                             # every field equal to its value (text)
//!     EventID: "4625"
//! entity: user.name                    # what the baseline is per (a column or a field)
//! numeric_anomaly:                     # exactly one of the four kinds
//!   interval_minutes: 60
//!   value: count                       # `count`, or a numeric field summed per interval
//!   z_threshold: 4
//!   warmup_intervals: 24
//!   alpha: 0.05                        # EWMA weight of the newest interval
//!   seasonality: hour_of_week          # `none` (default), or each hour of the week its own normal
//! ```
//!
//! The other kinds:
//!
//! ```yaml
//! new_terms:        { field: ParentImage, learning_hours: 168, max_exact_terms: 1024 }
//! rare_values:      { field: Image, window_hours: 24, max_count: 2 }
//! trend:            { value: disk_used_percent, aggregate: max, interval_minutes: 60,
//!                     threshold: 90, horizon_hours: 48, alpha: 0.3, beta: 0.1, min_intervals: 6 }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use vedette_core::alert::Level;

use crate::error::DetectError;

/// One baseline definition.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineDef {
    /// Unique id (the alerts' `rule.id`).
    pub id: String,
    /// Title (the alerts' `rule.title`).
    pub title: String,
    /// Level of its alerts. Default: medium.
    #[serde(default = "default_level")]
    pub level: Level,
    /// Tags of its alerts.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Which events count.
    #[serde(default)]
    pub events: EventFilter,
    /// The field the baseline is kept per.
    pub entity: String,
    /// Numeric anomaly settings.
    #[serde(default)]
    pub numeric_anomaly: Option<NumericDef>,
    /// New terms settings.
    #[serde(default)]
    pub new_terms: Option<NewTermsDef>,
    /// Rare values settings.
    #[serde(default)]
    pub rare_values: Option<RareDef>,
    /// Predictive trend settings.
    #[serde(default)]
    pub trend: Option<TrendDef>,
}

fn default_level() -> Level {
    Level::Medium
}

/// Which events a baseline reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// `event.dataset`, exact.
    #[serde(default)]
    pub dataset: Option<String>,
    /// Fields and the text each must equal.
    #[serde(default, rename = "where")]
    pub equals: BTreeMap<String, String>,
}

/// `numeric_anomaly`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericDef {
    /// Interval length in minutes.
    pub interval_minutes: u32,
    /// `count`, or a numeric field summed per interval.
    #[serde(default = "default_count")]
    pub value: String,
    /// z-score at which an interval is anomalous. Default: 4.
    #[serde(default = "default_z")]
    pub z_threshold: f64,
    /// Intervals learned before alerting, at most 127. Default: 24.
    #[serde(default = "default_warmup")]
    pub warmup_intervals: u32,
    /// EWMA weight of the newest interval. Default: 0.05.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// `none`, or `hour_of_week`: expect each hour of the week's usual share of the
    /// activity (learned across the fleet), so office hours and nights are each compared
    /// with their own normal. Default: none.
    #[serde(default)]
    pub seasonality: Seasonality,
}

/// How a numeric baseline's expectation varies with time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seasonality {
    /// The same expectation at every hour.
    #[default]
    None,
    /// A factor per hour of the week (168), learned from the fleet's totals.
    HourOfWeek,
}

fn default_count() -> String {
    "count".into()
}
fn default_z() -> f64 {
    4.0
}
fn default_warmup() -> u32 {
    24
}
fn default_alpha() -> f64 {
    0.05
}

/// `new_terms`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTermsDef {
    /// The field whose values are terms.
    pub field: String,
    /// Hours after an entity's first event during which its terms are learned
    /// silently. Default: 168 (a week).
    #[serde(default = "default_learning")]
    pub learning_hours: u32,
    /// Terms kept exactly per entity; past it, a Bloom filter. Default: 1024.
    #[serde(default = "default_exact")]
    pub max_exact_terms: usize,
}

fn default_learning() -> u32 {
    168
}
fn default_exact() -> usize {
    1024
}

/// `rare_values`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RareDef {
    /// The field whose values are counted across the fleet.
    pub field: String,
    /// Window the counts cover, in hours. Default: 24.
    #[serde(default = "default_window")]
    pub window_hours: u32,
    /// A value seen at most this many times in the window is rare. Default: 1.
    #[serde(default = "default_max_count")]
    pub max_count: u32,
}

fn default_window() -> u32 {
    24
}
fn default_max_count() -> u32 {
    1
}

/// How a trend aggregates one interval's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// The largest value.
    Max,
    /// The last value.
    Last,
    /// The sum (with `value: count`, the number of events).
    Sum,
}

/// `trend`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendDef {
    /// `count`, or a numeric field.
    pub value: String,
    /// How one interval's values become one. Default: max.
    #[serde(default = "default_aggregate")]
    pub aggregate: Aggregate,
    /// Interval length in minutes.
    pub interval_minutes: u32,
    /// The level whose crossing is forecast.
    pub threshold: f64,
    /// How far ahead, in hours.
    pub horizon_hours: u32,
    /// Holt level smoothing. Default: 0.3.
    #[serde(default = "default_holt_alpha")]
    pub alpha: f64,
    /// Holt trend smoothing. Default: 0.1.
    #[serde(default = "default_holt_beta")]
    pub beta: f64,
    /// Intervals seen before forecasting. Default: 6.
    #[serde(default = "default_min_intervals")]
    pub min_intervals: u32,
}

fn default_aggregate() -> Aggregate {
    Aggregate::Max
}
fn default_holt_alpha() -> f64 {
    0.3
}
fn default_holt_beta() -> f64 {
    0.1
}
fn default_min_intervals() -> u32 {
    6
}

/// The kind of a baseline, with its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Per-entity EWMA z-score.
    Numeric(NumericDef),
    /// First value of a field per entity.
    NewTerms(NewTermsDef),
    /// Values rare across the fleet.
    Rare(RareDef),
    /// Forecast crossing of a threshold.
    Trend(TrendDef),
}

impl BaselineDef {
    /// Parses and checks one YAML definition; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, DetectError> {
        let def: BaselineDef = yaml_serde::from_str(text)
            .map_err(|e| DetectError::Baseline(format!("{origin}: {e}")))?;
        def.check()
            .map_err(|e| DetectError::Baseline(format!("{origin}: {e}")))?;
        Ok(def)
    }

    /// Its kind (exactly one is set, [`BaselineDef::parse`] checked).
    pub fn kind(&self) -> Option<Kind> {
        let kinds = [
            self.numeric_anomaly.clone().map(Kind::Numeric),
            self.new_terms.clone().map(Kind::NewTerms),
            self.rare_values.clone().map(Kind::Rare),
            self.trend.clone().map(Kind::Trend),
        ];
        kinds.into_iter().flatten().next()
    }

    fn check(&self) -> Result<(), String> {
        let valid_id = !self.id.is_empty()
            && self.id.len() <= 128
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_id {
            return Err(format!(
                "id `{}`: 1 to 128 letters, digits, `-`, `_`, `.`",
                self.id
            ));
        }
        if self.entity.trim().is_empty() {
            return Err("entity: must name a field".into());
        }
        let set = [
            self.numeric_anomaly.is_some(),
            self.new_terms.is_some(),
            self.rare_values.is_some(),
            self.trend.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if set != 1 {
            return Err(
                "exactly one of numeric_anomaly, new_terms, rare_values, trend must be set".into(),
            );
        }
        match self.kind() {
            Some(Kind::Numeric(n)) => {
                if n.warmup_intervals > super::numeric::MAX_SEEN {
                    return Err(format!(
                        "numeric_anomaly.warmup_intervals: at most {}",
                        super::numeric::MAX_SEEN
                    ));
                }
                if n.interval_minutes == 0 {
                    return Err("numeric_anomaly.interval_minutes: must be at least 1".into());
                }
                if !(n.alpha > 0.0 && n.alpha < 1.0) {
                    return Err("numeric_anomaly.alpha: must be between 0 and 1".into());
                }
                if !(n.z_threshold.is_finite() && n.z_threshold > 0.0) {
                    return Err("numeric_anomaly.z_threshold: must be positive".into());
                }
                if n.seasonality == Seasonality::HourOfWeek
                    && (n.interval_minutes > 60 || 60 % n.interval_minutes != 0)
                {
                    return Err(
                        "numeric_anomaly.seasonality: hour_of_week needs an interval that divides an hour (1 to 60 minutes)"
                            .into(),
                    );
                }
            }
            Some(Kind::NewTerms(n)) if n.field.trim().is_empty() || n.max_exact_terms == 0 => {
                return Err("new_terms: field and max_exact_terms must be set".into());
            }
            Some(Kind::Rare(r)) if r.field.trim().is_empty() || r.window_hours == 0 => {
                return Err("rare_values: field and window_hours must be set".into());
            }
            Some(Kind::Trend(t)) => {
                if t.interval_minutes == 0 || t.horizon_hours == 0 {
                    return Err(
                        "trend: interval_minutes and horizon_hours must be at least 1".into(),
                    );
                }
                if !(t.alpha > 0.0 && t.alpha < 1.0 && t.beta > 0.0 && t.beta < 1.0) {
                    return Err("trend: alpha and beta must be between 0 and 1".into());
                }
                if !t.threshold.is_finite() {
                    return Err("trend.threshold: must be a number".into());
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_parses_with_its_defaults() {
        let def = BaselineDef::parse(
            "id: fails\ntitle: Failed logons\nentity: user.name\nevents:\n  dataset: windows.security\n  where:\n    EventID: '4625'\nnumeric_anomaly:\n  interval_minutes: 60\n",
            "fails.yml",
        )
        .unwrap();
        assert_eq!(def.level, Level::Medium);
        assert_eq!(def.events.equals["EventID"], "4625");
        let Some(Kind::Numeric(n)) = def.kind() else {
            panic!("numeric");
        };
        assert_eq!(
            (n.value.as_str(), n.z_threshold, n.warmup_intervals),
            ("count", 4.0, 24)
        );
    }

    #[test]
    fn bad_definitions_are_refused_with_the_reason() {
        for (text, want) in [
            ("id: a\ntitle: t\nentity: h\n", "exactly one"),
            ("id: 'a b'\ntitle: t\nentity: h\nnew_terms: {field: f}\n", "id `a b`"),
            ("id: a\ntitle: t\nentity: h\nnew_terms: {field: f}\nrare_values: {field: f}\n", "exactly one"),
            ("id: a\ntitle: t\nentity: h\nnumeric_anomaly: {interval_minutes: 0}\n", "interval_minutes"),
            ("id: a\ntitle: t\nentity: h\nnumeric_anomaly: {interval_minutes: 5, alpha: 2}\n", "alpha"),
            ("id: a\ntitle: t\nentity: h\nnumeric_anomaly: {interval_minutes: 90, seasonality: hour_of_week}\n", "seasonality"),
            ("id: a\ntitle: t\nentity: h\nnumeric_anomaly: {interval_minutes: 60, seasonality: daily}\n", "daily"),
            ("id: a\ntitle: t\nentity: h\ntrend: {value: v, interval_minutes: 5, threshold: 9, horizon_hours: 0}\n", "horizon_hours"),
            ("id: a\ntitle: t\nentity: h\nnew_terms: {field: f}\nextra: 1\n", "extra"),
        ] {
            let err = BaselineDef::parse(text, "x.yml").unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.contains("x.yml"), "{err}");
        }
    }
}
