//! The open correlation windows of `vedette run`: one engine per tenant over the hits of
//! the running Sigma set, started afresh when a reload brings a new set, with the
//! watermark held to the slowest partition read lately. Its firings become alerts that
//! go through dedup, risk and the bus like any other.
//!
//! The open windows are saved to the data folder right after a commit of the events
//! topic (every baseline checkpoint interval, and at shutdown), and restored at start
//! when the correlation rules are the same, so a restart keeps a burst half counted.
//! Events read again after a crash are not counted twice: a window holds each hit once,
//! and hits older than the restored watermark are late. Windows of a partition taken
//! over from another process are rebuilt from its replay ([`CorrelationState::absorb_replay`],
//! called by [`crate::detect_rebuild`]).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::AsArray;
use arrow::datatypes::TimestampMillisecondType;

use vedette_core::alert::Alert;
use vedette_core::batch::EventBatch;
use vedette_core::config::CorrelationConfig;
use vedette_core::schema::col;
use vedette_detect::sigma::correlation::{CorrelationEngine, CorrelationLimits, CorrelationStats};
use vedette_detect::sigma::RuleHit;

use crate::live_rules::RunningSigma;

/// Correlation engines per tenant for one generation of the rules.
#[derive(Debug)]
pub(crate) struct CorrelationState {
    limits: CorrelationLimits,
    generation: u64,
    engines: HashMap<String, CorrelationEngine>,
    /// When each tenant's engine last saw a batch.
    seen: HashMap<String, Instant>,
    /// Counters of engines replaced by a reload, so the totals do not go back.
    retired: CorrelationStats,
    /// Per partition of the events topic: the newest event time read, and when.
    partitions: HashMap<u32, (i64, Instant)>,
}

/// The file of saved windows: per tenant, an engine's checkpoint, for one set of
/// correlation rules.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Saved {
    /// The correlation rule ids, in order: a checkpoint only fits the same set.
    rules: Vec<String>,
    /// Per tenant, the engine's checkpoint.
    tenants: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The ids of a set's correlation rules, in order.
fn rule_ids(running: &RunningSigma) -> Vec<String> {
    (0..running.correlations.len() as u32)
        .filter_map(|i| running.correlations.meta(i).map(|m| m.id.clone()))
        .collect()
}

/// A partition not read for this long no longer holds the watermark back (it is caught
/// up and quiet, or was moved to another node).
const IDLE_PARTITION: Duration = Duration::from_secs(10);
/// How far before a replay's newest event time (less the lateness) its windows stay
/// unevaluated, left to the live engine: the process that read the partition first
/// evaluated at most that far, its watermark held back by its other partitions.
const REPLAY_HELD_BACK: Duration = Duration::from_secs(30);

/// The newest event time of `batch`, Unix ms.
fn newest_time(batch: &EventBatch) -> Option<i64> {
    batch
        .records
        .column_by_name(col::TIMESTAMP)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .and_then(arrow::compute::max)
}

impl CorrelationState {
    /// No windows open yet.
    pub(crate) fn new(config: &CorrelationConfig) -> Self {
        Self {
            limits: CorrelationLimits {
                lateness_ms: Some(
                    i64::try_from(config.lateness_seconds.saturating_mul(1000)).unwrap_or(i64::MAX),
                ),
                max_groups: config.max_groups.max(1),
                ..CorrelationLimits::default()
            },
            generation: 0,
            engines: HashMap::new(),
            seen: HashMap::new(),
            retired: CorrelationStats::default(),
            partitions: HashMap::new(),
        }
    }

    /// Feeds the hits of `running`'s rules in `batch`; the alerts of the correlations
    /// that fired.
    pub(crate) fn observe(
        &mut self,
        running: &RunningSigma,
        batch: &EventBatch,
        hits: &[RuleHit],
    ) -> Vec<Alert> {
        if running.correlations.is_empty() {
            return Vec::new();
        }
        self.follow(running);
        let horizon = self.horizon(batch);
        self.seen.insert(batch.tenant.clone(), Instant::now());
        let limits = self.limits;
        let engine = self
            .engines
            .entry(batch.tenant.clone())
            .or_insert_with(|| CorrelationEngine::new(&running.correlations, limits));
        match engine.observe_within(&running.correlations, &batch.records, hits, horizon) {
            Ok(fired) => fired
                .iter()
                .filter_map(|f| f.to_alert(&running.correlations, &batch.tenant))
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, rows = batch.len(), "correlation: batch skipped");
                Vec::new()
            }
        }
    }

    /// Starts afresh when `running` is a new generation of the rules.
    fn follow(&mut self, running: &RunningSigma) {
        if self.generation == running.generation {
            return;
        }
        if !self.engines.is_empty() {
            tracing::info!(
                generation = running.generation,
                "rules reloaded: correlation windows start afresh"
            );
        }
        let totals = self.stats();
        self.retired = totals;
        self.engines.clear();
        self.generation = running.generation;
    }

    /// Rebuilds the windows of a partition taken over from another process: its
    /// processed batches (in order, with their hits of `running`'s rules) are replayed
    /// per tenant in engines of their own, whose firings were that process's alerts and
    /// are dropped, and whose open windows then join the live ones
    /// ([`CorrelationEngine::absorb`]). The replay evaluates windows only up to
    /// [`REPLAY_HELD_BACK`] before its newest event time less the lateness: the other
    /// process's watermark was held to its slowest partition, so windows closer to the
    /// end may never have been raised there, and they are evaluated here instead (a
    /// window raised twice has one alert id). Returns the hits replayed.
    pub(crate) fn absorb_replay(
        &mut self,
        running: &RunningSigma,
        replayed: &[(EventBatch, Vec<RuleHit>)],
    ) -> usize {
        if running.correlations.is_empty() {
            return 0;
        }
        self.follow(running);
        let mut newest: HashMap<&str, i64> = HashMap::new();
        for (batch, _) in replayed {
            if let Some(t) = newest_time(batch) {
                let e = newest.entry(batch.tenant.as_str()).or_insert(t);
                *e = (*e).max(t);
            }
        }
        let held_back = i64::try_from(REPLAY_HELD_BACK.as_millis()).unwrap_or(i64::MAX);
        let mut engines: HashMap<String, CorrelationEngine> = HashMap::new();
        let mut hits_replayed = 0;
        for (batch, hits) in replayed {
            let horizon = newest
                .get(batch.tenant.as_str())
                .map(|t| t.saturating_sub(held_back));
            let engine = engines
                .entry(batch.tenant.clone())
                .or_insert_with(|| CorrelationEngine::new(&running.correlations, self.limits));
            if let Err(e) =
                engine.observe_within(&running.correlations, &batch.records, hits, horizon)
            {
                tracing::warn!(error = %e, rows = batch.len(), "correlation: a replayed batch skipped");
                continue;
            }
            hits_replayed += hits.len();
        }
        let now = Instant::now();
        let limits = self.limits;
        for (tenant, replay) in engines {
            self.seen.insert(tenant.clone(), now);
            self.engines
                .entry(tenant)
                .or_insert_with(|| CorrelationEngine::new(&running.correlations, limits))
                .absorb(replay);
        }
        hits_replayed
    }

    /// Saves the open windows to `path` (through a temporary file); nothing to save
    /// writes nothing.
    pub(crate) fn save(&self, path: &Path, running: &RunningSigma) -> anyhow::Result<()> {
        if self.generation != running.generation || self.engines.is_empty() {
            return Ok(());
        }
        let mut tenants = std::collections::BTreeMap::new();
        for (tenant, engine) in &self.engines {
            let bytes = engine.checkpoint()?;
            tenants.insert(tenant.clone(), serde_json::from_slice(&bytes)?);
        }
        let saved = Saved {
            rules: rule_ids(running),
            tenants,
        };
        crate::live_rules::write_atomically(path, &serde_json::to_vec(&saved)?)
    }

    /// Restores the windows saved at `path` for `running`'s correlations; returns how
    /// many tenants' windows came back. A missing file restores nothing; a file of
    /// other rules, or unreadable, is an error and the windows start afresh (the next
    /// save replaces it). The clock of a restored tenant starts now.
    pub(crate) fn restore(&mut self, path: &Path, running: &RunningSigma) -> anyhow::Result<usize> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let saved: Saved = serde_json::from_slice(&bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        if saved.rules != rule_ids(running) {
            anyhow::bail!("saved for other correlation rules; windows start afresh");
        }
        let mut engines = HashMap::new();
        for (tenant, state) in saved.tenants {
            let bytes = serde_json::to_vec(&state)?;
            let engine = CorrelationEngine::restore(&running.correlations, self.limits, &bytes)?;
            engines.insert(tenant, engine);
        }
        let restored = engines.len();
        let now = Instant::now();
        self.seen = engines.keys().map(|t| (t.clone(), now)).collect();
        self.engines = engines;
        self.generation = running.generation;
        Ok(restored)
    }

    /// Closes the windows of tenants whose events stopped: event time moves on with the
    /// wall-clock time since their last batch (so a window closes once the lateness has
    /// passed after its end, events or not). Without this, the last burst before a
    /// quiet spell would wait for the next event.
    pub(crate) fn tick(&mut self, running: &RunningSigma) -> Vec<Alert> {
        if self.generation != running.generation || running.correlations.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        let mut alerts = Vec::new();
        for (tenant, engine) in &mut self.engines {
            let idle = self.seen.get(tenant).map_or(0, |t| {
                i64::try_from(now.duration_since(*t).as_millis()).unwrap_or(i64::MAX)
            });
            alerts.extend(
                engine
                    .advance_idle(&running.correlations, idle)
                    .iter()
                    .filter_map(|f| f.to_alert(&running.correlations, tenant)),
            );
        }
        alerts
    }

    /// The event time the watermark may reach: the oldest of the newest event times of
    /// the partitions read lately. Partitions are read in any order, and a backlog drains
    /// them unevenly; without this, hits of a partition read behind the others would be
    /// older than the watermark and dropped as late.
    fn horizon(&mut self, batch: &EventBatch) -> Option<i64> {
        let newest = newest_time(batch);
        let now = Instant::now();
        if let (Some(position), Some(t)) = (&batch.position, newest) {
            let entry = self
                .partitions
                .entry(position.partition)
                .or_insert((t, now));
            *entry = (entry.0.max(t), now);
        }
        self.partitions
            .retain(|_, (_, read)| now.duration_since(*read) < IDLE_PARTITION);
        self.partitions.values().map(|(t, _)| *t).min()
    }

    /// Counters over every engine since start.
    pub(crate) fn stats(&self) -> CorrelationStats {
        self.engines
            .values()
            .map(CorrelationEngine::stats)
            .fold(self.retired, |a, b| CorrelationStats {
                late_hits: a.late_hits + b.late_hits,
                evicted_groups: a.evicted_groups + b.evicted_groups,
                dropped_hits: a.dropped_hits + b.dropped_hits,
                alerts: a.alerts + b.alerts,
            })
    }
}
