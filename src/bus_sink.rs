//! Where `vedette run` puts what it parsed: the bus. Events go to topic `events`, dead
//! letters (as dead-letter batches) to topic `dead_letters`; a sender is acknowledged
//! (HTTP answer, file position saved) only once both appends are durable.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{AsArray, RecordBatch};
use vedette_core::batch::EventBatch;
use vedette_core::dead_letter::{dead_letters_to_batch, DeadLetter};
use vedette_core::schema::col;
use vedette_core::traits::Bus;

use crate::metrics::{DatasetLabels, Metrics, TopicLabels};

/// Topic of parsed events.
pub(crate) const EVENTS_TOPIC: &str = "events";
/// Topic of dead letters.
pub(crate) const DEAD_LETTERS_TOPIC: &str = "dead_letters";

/// Appends parsed batches to the bus and counts them.
pub(crate) struct BusSink {
    /// The bus.
    pub(crate) bus: Arc<dyn Bus>,
    /// Counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Holds inputs while a consumer is too far behind.
    pub(crate) pressure: crate::backpressure::Backpressure,
}

impl std::fmt::Debug for BusSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusSink").finish_non_exhaustive()
    }
}

impl BusSink {
    /// Appends events and dead letters received from `source` for `tenant`; returns once
    /// both are durable. (The caller counts them in the ledger by their own source.)
    pub(crate) async fn deliver(
        &self,
        source: &str,
        tenant: &str,
        events: &RecordBatch,
        dead: &[DeadLetter],
    ) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let now = chrono::Utc::now().timestamp_millis();
        if events.num_rows() > 0 {
            let batch = EventBatch::new(events.clone(), source, tenant, now);
            self.bus
                .append(EVENTS_TOPIC, &batch)
                .await
                .context("appending events to the bus")?;
            self.count_appended(EVENTS_TOPIC, events);
        }
        if !dead.is_empty() {
            let letters = dead_letters_to_batch(dead)?;
            let batch = EventBatch::new(letters, source, tenant, now);
            self.bus
                .append(DEAD_LETTERS_TOPIC, &batch)
                .await
                .context("appending dead letters to the bus")?;
            self.metrics
                .bus_appended_batches
                .get_or_create(&TopicLabels {
                    topic: DEAD_LETTERS_TOPIC.into(),
                })
                .inc();
        }
        self.metrics
            .bus_append_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    fn count_appended(&self, topic: &str, events: &RecordBatch) {
        self.metrics
            .bus_appended_batches
            .get_or_create(&TopicLabels {
                topic: topic.into(),
            })
            .inc();
        let Some(datasets) = events
            .column_by_name(col::EVENT_DATASET)
            .and_then(|c| c.as_string_opt::<i32>())
        else {
            return;
        };
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for d in datasets.iter().flatten() {
            *counts.entry(d).or_default() += 1;
        }
        for (dataset, n) in counts {
            self.metrics
                .ingest_events_by_dataset
                .get_or_create(&DatasetLabels {
                    dataset: dataset.to_string(),
                })
                .inc_by(n);
        }
    }
}
