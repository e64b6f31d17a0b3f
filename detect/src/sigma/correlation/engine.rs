//! The stateful correlation engine: hits in, correlation alerts out, in event time.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, MapArray, RecordBatch, StringArray};
use arrow::datatypes::TimestampMillisecondType;
use serde::{Deserialize, Serialize};
use vedette_core::schema::col;

use super::compile::CorrelationSet;
use super::window::{Group, Obs};
use crate::error::DetectError;
use crate::sigma::evaluate::RuleHit;

/// Bounds on correlation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationLimits {
    /// How late (event time behind the latest seen) a hit may arrive and still count,
    /// ms. `None`: windows close only at [`CorrelationEngine::flush`] (batch hunts).
    pub lateness_ms: Option<i64>,
    /// Most open groups per correlation; the group with the oldest hit goes first.
    pub max_groups: usize,
    /// Most hits kept per group; the oldest go first.
    pub max_hits_per_group: usize,
}

impl Default for CorrelationLimits {
    fn default() -> Self {
        Self {
            lateness_ms: Some(60_000),
            max_groups: 100_000,
            max_hits_per_group: 10_000,
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrelationStats {
    /// Hits older than the watermark, dropped.
    pub late_hits: u64,
    /// Groups dropped to stay under the cap.
    pub evicted_groups: u64,
    /// Hits dropped to stay under the per-group cap.
    pub dropped_hits: u64,
    /// Correlation alerts raised.
    pub alerts: u64,
}

/// A correlation that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationAlert {
    /// Index of the correlation in its [`CorrelationSet`].
    pub correlation: u32,
    /// Event time of the hit that completed the window, Unix ms.
    pub time_ms: i64,
    /// The group: `group-by` names and values.
    pub group: Vec<(String, String)>,
    /// The measured number (count, distinct values, sum, ...).
    pub value: f64,
    /// `event.id`s of the events in the window (at most 100).
    pub event_ids: Vec<String>,
}

/// The state of every open window, serializable for checkpoints.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// Largest event time seen.
    max_time: Option<i64>,
    /// The watermark evaluation has reached.
    watermark: Option<i64>,
    /// Per correlation, per group key.
    #[serde(with = "group_list")]
    groups: Vec<BTreeMap<Vec<String>, Group>>,
    stats: CorrelationStats,
}

/// Group maps as lists of (key, group) pairs: JSON map keys must be strings.
mod group_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Group;

    type Groups = Vec<BTreeMap<Vec<String>, Group>>;

    pub(super) fn serialize<S: Serializer>(groups: &Groups, s: S) -> Result<S::Ok, S::Error> {
        let lists: Vec<Vec<(&Vec<String>, &Group)>> =
            groups.iter().map(|m| m.iter().collect()).collect();
        lists.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Groups, D::Error> {
        let lists: Vec<Vec<(Vec<String>, Group)>> = Vec::deserialize(d)?;
        Ok(lists.into_iter().map(|l| l.into_iter().collect()).collect())
    }
}

/// Evaluates a [`CorrelationSet`] over a stream of detection hits.
#[derive(Debug)]
pub struct CorrelationEngine {
    limits: CorrelationLimits,
    state: State,
}

/// The string value of `name` in `row`: the `fields` map first, then a Utf8 column.
fn row_value(
    batch: &RecordBatch,
    fields: Option<&MapArray>,
    row: usize,
    name: &str,
) -> Option<String> {
    if let Some(map) = fields {
        let keys = map.keys().as_string_opt::<i32>();
        let values = map.values().as_string_opt::<i32>();
        if let (Some(keys), Some(values)) = (keys, values) {
            let offsets = map.value_offsets();
            if let (Some(&s), Some(&e)) = (offsets.get(row), offsets.get(row + 1)) {
                for i in s.max(0) as usize..e.max(0) as usize {
                    if keys.value(i) == name && values.is_valid(i) {
                        return Some(values.value(i).to_owned());
                    }
                }
            }
        }
    }
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .filter(|c: &&StringArray| c.is_valid(row))
        .map(|c| c.value(row).to_owned())
}

impl CorrelationEngine {
    /// A fresh engine for `set`.
    pub fn new(set: &CorrelationSet, limits: CorrelationLimits) -> Self {
        Self {
            limits,
            state: State {
                groups: vec![BTreeMap::new(); set.len()],
                ..State::default()
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CorrelationStats {
        self.state.stats
    }

    /// Feeds the hits found in `batch`; returns the correlations that fired as the
    /// watermark moved.
    pub fn observe(
        &mut self,
        set: &CorrelationSet,
        batch: &RecordBatch,
        hits: &[RuleHit],
    ) -> Result<Vec<CorrelationAlert>, DetectError> {
        self.observe_within(set, batch, hits, None)
    }

    /// [`Self::observe`], with the event time the watermark may reach capped at
    /// `horizon_ms` (less the lateness): a reader of several partitions passes the
    /// oldest of their newest event times, so that hits of a partition read behind the
    /// others are not late.
    pub fn observe_within(
        &mut self,
        set: &CorrelationSet,
        batch: &RecordBatch,
        hits: &[RuleHit],
        horizon_ms: Option<i64>,
    ) -> Result<Vec<CorrelationAlert>, DetectError> {
        if set.is_empty() {
            return Ok(Vec::new());
        }
        let times = batch
            .column_by_name(col::TIMESTAMP)
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>());
        let Some(times) = times else {
            if hits.is_empty() {
                return Ok(Vec::new());
            }
            return Err(DetectError::Schema("no `@timestamp` column".into()));
        };
        let ids = batch
            .column_by_name(col::EVENT_ID)
            .and_then(|c| c.as_string_opt::<i32>());
        let fields = batch
            .column_by_name(col::FIELDS)
            .and_then(|c| c.as_map_opt());
        // Every event moves event time, not only the hits: windows close while the
        // rules they wait for stay quiet.
        let mut max_time = match (self.state.max_time, arrow::compute::max(times)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for hit in hits {
            let Some(targets) = set.by_rule.get(&hit.rule) else {
                continue;
            };
            let row = hit.row as usize;
            if !times.is_valid(row) {
                continue;
            }
            let time = times.value(row);
            if self.state.watermark.is_some_and(|w| time <= w) {
                self.state.stats.late_hits += targets.len() as u64;
                continue;
            }
            max_time = Some(max_time.map_or(time, |m| m.max(time)));
            let event_id = ids
                .filter(|a| a.is_valid(row))
                .map(|a| a.value(row).to_owned())
                .unwrap_or_default();
            for &(ci, pos) in targets {
                let Some(c) = set.correlations.get(ci as usize) else {
                    continue;
                };
                let key: Vec<String> = c.group_fields[pos as usize]
                    .iter()
                    .map(|f| row_value(batch, fields, row, f).unwrap_or_default())
                    .collect();
                let value = c.value_field[pos as usize]
                    .as_deref()
                    .and_then(|f| row_value(batch, fields, row, f));
                if c.value_field[pos as usize].is_some() && value.is_none() {
                    // A value correlation counts only events that carry the field.
                    continue;
                }
                self.insert(
                    ci,
                    key,
                    Obs {
                        time,
                        position: pos,
                        value,
                        event_id: event_id.clone(),
                    },
                );
            }
        }
        self.state.max_time = max_time;
        let Some(lateness) = self.limits.lateness_ms else {
            return Ok(Vec::new());
        };
        let Some(max) = self.state.max_time else {
            return Ok(Vec::new());
        };
        let max = horizon_ms.map_or(max, |h| max.min(h));
        Ok(self.advance(set, max.saturating_sub(lateness)))
    }

    fn insert(&mut self, ci: u32, key: Vec<String>, obs: Obs) {
        let max_hits = self.limits.max_hits_per_group;
        let Some(group) = self.group_mut(ci, key) else {
            return;
        };
        if group.insert(obs) && group.obs.len() > max_hits {
            group.obs.remove(0);
            self.state.stats.dropped_hits += 1;
        }
    }

    /// The group `key` of correlation `ci`, made (evicting the group whose newest hit is
    /// oldest when at the cap) if missing.
    fn group_mut(&mut self, ci: u32, key: Vec<String>) -> Option<&mut Group> {
        let groups = self.state.groups.get_mut(ci as usize)?;
        if !groups.contains_key(&key) && groups.len() >= self.limits.max_groups {
            let oldest = groups
                .iter()
                .min_by_key(|(_, g)| g.obs.last().map_or(i64::MIN, |o| o.time))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                groups.remove(&k);
                self.state.stats.evicted_groups += 1;
            }
        }
        Some(groups.entry(key).or_default())
    }

    /// Takes in the open windows of `other`, an engine of the same set that replayed
    /// events this one never saw (a partition taken over from another process; its
    /// alerts were that process's). A group this engine lacks comes as it is, evaluated
    /// as far as `other` evaluated it, so hits `other` had not evaluated yet are
    /// evaluated here. The hits of a group both hold join this engine's (a hit is held
    /// once), which keeps its own evaluation point. Hits older than this engine's
    /// watermark are taken too: they are not late, but the past of windows to come.
    pub fn absorb(&mut self, other: CorrelationEngine) {
        for (ci, groups) in other.state.groups.into_iter().enumerate() {
            for (key, theirs) in groups {
                let max_hits = self.limits.max_hits_per_group;
                let Some(group) = self.group_mut(ci as u32, key) else {
                    continue;
                };
                if group.obs.is_empty() && group.evaluated_to.is_none() {
                    *group = theirs;
                } else {
                    for obs in theirs.obs {
                        group.insert(obs);
                    }
                }
                let over = group.obs.len().saturating_sub(max_hits);
                group.obs.drain(..over);
                self.state.stats.dropped_hits += over as u64;
            }
        }
        self.state.max_time = match (self.state.max_time, other.state.max_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Moves event time on by `idle_ms` past the newest event seen, for a stream that
    /// has been silent that long (wall-clock time): the windows a burst left open close
    /// without waiting for the next event. Returns the correlations that fired.
    pub fn advance_idle(&mut self, set: &CorrelationSet, idle_ms: i64) -> Vec<CorrelationAlert> {
        let (Some(lateness), Some(max)) = (self.limits.lateness_ms, self.state.max_time) else {
            return Vec::new();
        };
        if idle_ms <= 0 {
            return Vec::new();
        }
        self.advance(set, max.saturating_add(idle_ms).saturating_sub(lateness))
    }

    /// Closes every window: evaluates all remaining hits (end of a hunt, shutdown).
    pub fn flush(&mut self, set: &CorrelationSet) -> Vec<CorrelationAlert> {
        self.advance(set, i64::MAX)
    }

    fn advance(&mut self, set: &CorrelationSet, watermark: i64) -> Vec<CorrelationAlert> {
        if self.state.watermark.is_some_and(|w| watermark <= w) {
            return Vec::new();
        }
        self.state.watermark = Some(watermark);
        let mut out = Vec::new();
        for (ci, groups) in self.state.groups.iter_mut().enumerate() {
            let Some(c) = set.correlations.get(ci) else {
                continue;
            };
            groups.retain(|key, group| {
                for f in group.advance(c, watermark) {
                    out.push(CorrelationAlert {
                        correlation: ci as u32,
                        time_ms: f.time,
                        group: c
                            .group_names
                            .iter()
                            .cloned()
                            .zip(key.iter().cloned())
                            .collect(),
                        value: f.value,
                        event_ids: f.event_ids,
                    });
                }
                !group.obs.is_empty()
            });
        }
        self.state.stats.alerts += out.len() as u64;
        out.sort_by_key(|a| (a.time_ms, a.correlation));
        out
    }

    /// The open windows as bytes, to restore after a restart.
    pub fn checkpoint(&self) -> Result<Vec<u8>, DetectError> {
        serde_json::to_vec(&self.state).map_err(|e| DetectError::Invalid {
            what: "correlation checkpoint".into(),
            reason: e.to_string(),
        })
    }

    /// An engine resuming from [`checkpoint`](Self::checkpoint) bytes of the same set.
    pub fn restore(
        set: &CorrelationSet,
        limits: CorrelationLimits,
        bytes: &[u8],
    ) -> Result<Self, DetectError> {
        let state: State = serde_json::from_slice(bytes).map_err(|e| DetectError::Invalid {
            what: "correlation checkpoint".into(),
            reason: e.to_string(),
        })?;
        if state.groups.len() != set.len() {
            return Err(DetectError::Invalid {
                what: "correlation checkpoint".into(),
                reason: format!(
                    "made for {} correlations, the rule set has {}",
                    state.groups.len(),
                    set.len()
                ),
            });
        }
        Ok(Self { limits, state })
    }
}
