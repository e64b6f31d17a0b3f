//! Rebuilding the detection stage's state when it takes over partitions of the events
//! topic. On Kafka a partition moves between processes (a node joins, leaves or dies);
//! the state the stage keeps per entity (correlation windows, baselines) was built by
//! the process that read the partition before. On assignment the stage reads back what
//! its group processed of each partition ([`BusConsumer::read_processed`]): the last
//! `bus.kafka.rebuild_seconds`, and never what its own state already holds (the next
//! offset it saw of each partition is saved with its checkpoints, so after a restart
//! only what was committed since is replayed). The replay feeds the correlation windows
//! ([`CorrelationState::absorb_replay`](crate::correlation_state::CorrelationState::absorb_replay))
//! and the baselines; its alerts were the other process's and are not raised again.
//! The embedded log never moves partitions between processes and reads back nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use vedette_core::batch::{BusPosition, EventBatch};
use vedette_core::traits::BusConsumer;

use crate::detect_stage::DetectStage;

/// How long the rebuilds of one assignment may take in all; partitions left are skipped
/// (well under librdkafka's `max.poll.interval.ms`, 300 s, and peers' stall watch).
const REBUILD_BUDGET: Duration = Duration::from_secs(60);

/// How much a takeover reads back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RebuildLimits {
    /// How far back, by append time; `None`: no rebuild.
    pub(crate) window: Option<Duration>,
    /// Events per partition at most (the newest).
    pub(crate) max_events: usize,
}

/// Per partition of the events topic, the next offset the stage's state has seen.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Covered {
    next: BTreeMap<u32, u64>,
    /// Baselines were restored from a checkpoint saved without these offsets (a version
    /// before them): a partition whose offset is unknown may be in them already, so its
    /// replay feeds the correlation windows only (a window holds a hit once; a baseline
    /// would count it twice).
    #[serde(skip)]
    pub(crate) baselines_unaccounted: bool,
}

impl Covered {
    /// What `path` holds; nothing if it is missing or unreadable (said in the log: the
    /// replay then reads the whole window).
    pub(crate) fn load(path: &Path) -> Self {
        let read = match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::default(),
            Err(e) => Err(e.to_string()),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string()),
        };
        read.unwrap_or_else(|error| {
            tracing::warn!(path = %path.display(), %error, "detect: offsets of the saved state unreadable");
            Self::default()
        })
    }

    /// Writes them to `path` (through a temporary file).
    pub(crate) fn save(&self, path: &Path) -> anyhow::Result<()> {
        crate::live_rules::write_atomically(path, &serde_json::to_vec(self)?)
            .with_context(|| format!("saving {}", path.display()))
    }

    /// The state has seen everything of `position`'s partition up to its offset.
    pub(crate) fn saw(&mut self, position: &BusPosition) {
        let next = self.next.entry(position.partition).or_insert(0);
        *next = (*next).max(position.offset + 1);
    }

    /// The next offset of `partition` the state has not seen, if known.
    pub(crate) fn next(&self, partition: u32) -> Option<u64> {
        self.next.get(&partition).copied()
    }
}

impl DetectStage {
    /// Reads back and replays what the group processed of newly assigned `partitions`.
    /// A partition that cannot be read back is skipped with a warning: its windows and
    /// baselines start from what arrives next, as before this existed.
    pub(crate) async fn rebuild(
        &self,
        consumer: &mut dyn BusConsumer,
        partitions: &[u32],
        covered: &mut Covered,
    ) {
        let Some(window) = self.rebuild_limits.window else {
            return;
        };
        let since = chrono::Utc::now().timestamp_millis()
            - i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let started = Instant::now();
        for (i, &partition) in partitions.iter().enumerate() {
            if started.elapsed() > REBUILD_BUDGET {
                tracing::warn!(skipped = ?&partitions[i..], "detect: rebuilding took too long; the partitions left start afresh");
                return;
            }
            let from = covered.next(partition);
            let read = tokio::select! {
                () = self.cancel.cancelled() => return,
                r = consumer.read_processed(partition, from, Some(since), self.rebuild_limits.max_events) => r,
            };
            let batches = match read {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(partition, error = %e, "detect: reading back a partition taken over failed; its state starts afresh");
                    continue;
                }
            };
            let Some(last) = batches.last().and_then(|b| b.position.clone()) else {
                continue;
            };
            let events: usize = batches.iter().map(EventBatch::len).sum();
            let feed_baselines = from.is_some() || !covered.baselines_unaccounted;
            let hits = self.replay(batches, feed_baselines).await;
            covered.saw(&last);
            if !feed_baselines {
                tracing::info!(partition, "detect: baselines not fed by the replay (restored from a checkpoint without offsets)");
            }
            self.metrics.detect_rebuilt_events.inc_by(events as u64);
            tracing::info!(
                partition,
                events,
                hits,
                "detect: correlation windows and baselines rebuilt from a partition taken over"
            );
        }
    }

    /// Feeds replayed batches to the correlation windows and (with `feed_baselines`)
    /// the baselines, raising nothing; returns the rule hits replayed.
    async fn replay(&self, batches: Vec<EventBatch>, feed_baselines: bool) -> usize {
        let Some(running) = self.rules.running() else {
            return 0;
        };
        let correlation = self.correlation.clone();
        let replayed = tokio::task::spawn_blocking(move || {
            let mut with_hits = Vec::with_capacity(batches.len());
            for batch in batches {
                match running.detector.matches(&batch.records) {
                    Ok(hits) => with_hits.push((batch, hits)),
                    Err(e) => tracing::warn!(error = %e, rows = batch.len(), "detect: a replayed batch skipped"),
                }
            }
            let hits = correlation
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .absorb_replay(&running, &with_hits);
            (with_hits, hits)
        })
        .await;
        let (with_hits, hits) = match replayed {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "detect: the replay task failed");
                return 0;
            }
        };
        if !feed_baselines {
            return hits;
        }
        tokio::task::block_in_place(|| {
            for (batch, _) in &with_hits {
                // Their alerts were raised by the process that read them first.
                let _ = self.flow().baselines(batch);
            }
        });
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: u32, offset: u64) -> BusPosition {
        BusPosition {
            topic: "events".into(),
            partition,
            offset,
        }
    }

    #[test]
    fn offsets_seen_only_move_forward_and_survive_a_save() {
        let mut c = Covered::default();
        assert_eq!(c.next(0), None);
        c.saw(&at(0, 9));
        c.saw(&at(0, 4));
        c.saw(&at(2, 0));
        assert_eq!((c.next(0), c.next(1), c.next(2)), (Some(10), None, Some(1)));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("state").join("covered.json");
        c.save(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Covered::load(&path), c);
        // Missing or damaged: nothing known.
        assert_eq!(
            Covered::load(&dir.path().join("none.json")),
            Covered::default()
        );
        std::fs::write(&path, b"{not json").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Covered::load(&path), Covered::default());
    }
}
