//! The storage stage of `vedette run`: members of consumer group `store` on the topics
//! `events`, `alerts` and `dead_letters`. Batches are grouped as the store asks
//! ([`EventStore::write_batching`]: what the bus already holds for Parquet, about a
//! second's worth for ClickHouse) and appended to their table, and only once the store has them durably
//! are their positions committed (at-least-once; the store's
//! writes are idempotent per bus position, so a batch read again is not stored twice).
//! A retention pass runs every hour; a compaction pass (merging small files, deleting
//! what merges and retention replaced) every ten seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vedette_core::batch::EventBatch;
use vedette_core::traits::{Bus, BusConsumer, BusDelivery, EventStore, Table, WriteBatching};

use crate::bus_batches::{last_positions, take_waiting};
use crate::bus_sink::{DEAD_LETTERS_TOPIC, EVENTS_TOPIC};
use crate::detect_stage::ALERTS_TOPIC;
use crate::metrics::{Metrics, TableLabels};

/// Consumer group of the storage stage.
pub(crate) const STORE_GROUP: &str = "store";
/// How often retention runs on the store.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// How often the store's compaction pass runs.
const COMPACT_EVERY: Duration = Duration::from_secs(10);

/// Everything the storage stage needs.
pub(crate) struct StoreStage {
    /// The bus.
    pub(crate) bus: Arc<dyn Bus>,
    /// The store.
    pub(crate) store: Arc<dyn EventStore>,
    /// Counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Fires on shutdown.
    pub(crate) cancel: CancellationToken,
}

impl StoreStage {
    /// Consumes the three topics until shutdown.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let this = Arc::new(self);
        let mut tasks = Vec::new();
        for (topic, table) in [
            (EVENTS_TOPIC, Table::Events),
            (ALERTS_TOPIC, Table::Alerts),
            (DEAD_LETTERS_TOPIC, Table::DeadLetters),
        ] {
            let stage = this.clone();
            tasks.push(tokio::spawn(
                async move { stage.consume(topic, table).await },
            ));
        }
        let retention = this.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let now = chrono::Utc::now().timestamp_millis();
                match retention.store.apply_retention(now).await {
                    Ok(0) => {}
                    Ok(days) => tracing::info!(days, "store retention dropped old days"),
                    Err(e) => tracing::error!(error = %e, "store retention failed"),
                }
                tokio::select! {
                    () = retention.cancel.cancelled() => break,
                    () = tokio::time::sleep(RETENTION_EVERY) => {}
                }
            }
            Ok(())
        }));
        let upkeep = this.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = upkeep.cancel.cancelled() => break,
                    () = tokio::time::sleep(COMPACT_EVERY) => {}
                }
                match upkeep.store.compact().await {
                    Ok(r) => {
                        if r.merges > 0 || r.files_deleted > 0 {
                            tracing::debug!(
                                merges = r.merges,
                                files = r.files_merged,
                                rows = r.rows,
                                bytes_in = r.bytes_in,
                                bytes_out = r.bytes_out,
                                deleted = r.files_deleted,
                                "store compaction"
                            );
                        }
                        upkeep.metrics.compaction.observe(&r);
                    }
                    Err(e) => {
                        upkeep.metrics.compaction.failed();
                        tracing::error!(error = %e, "store compaction failed");
                    }
                }
            }
            Ok(())
        }));
        for task in tasks {
            task.await.context("storage task failed")??;
        }
        Ok(())
    }

    async fn consume(&self, topic: &str, table: Table) -> anyhow::Result<()> {
        let mut consumer = self
            .bus
            .subscribe(topic, STORE_GROUP)
            .await
            .with_context(|| format!("joining the store group on topic {topic}"))?;
        let labels = TableLabels {
            table: table.name().to_string(),
        };
        let batching = self.store.write_batching(table);
        let mut pending = Pending::default();
        loop {
            let wait = pending.wait(&batching);
            let delivery = tokio::select! {
                () = self.cancel.cancelled() => break,
                d = consumer.poll(wait) => d,
            };
            match delivery {
                Ok(Some(BusDelivery::Batch(batch))) => {
                    pending.push(batch);
                    // What the bus already holds joins the group, up to its limits: a
                    // backlog is stored in large appends, a trickle at once.
                    let changed = !pending.full(&batching)
                        && take_waiting(consumer.as_mut(), |b| {
                            pending.push(b);
                            !pending.full(&batching)
                        })
                        .await
                        .is_some();
                    if changed
                        && !self
                            .flush(&mut pending, table, &labels, consumer.as_mut())
                            .await
                    {
                        break;
                    }
                }
                // Store what is waiting before partitions change hands, so its commits
                // still count.
                Ok(Some(_)) => {
                    if !self
                        .flush(&mut pending, table, &labels, consumer.as_mut())
                        .await
                    {
                        break;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, topic, "store: reading the bus failed; retrying");
                    tokio::select! {
                        () = self.cancel.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            }
            if pending.due(&batching)
                && !self
                    .flush(&mut pending, table, &labels, consumer.as_mut())
                    .await
            {
                break;
            }
        }
        // Graceful shutdown: what was read is stored and committed before leaving.
        self.flush(&mut pending, table, &labels, consumer.as_mut())
            .await;
        consumer.close().await.context("leaving the store group")?;
        Ok(())
    }

    /// Appends the waiting batches and commits their positions; returns false when
    /// shutdown interrupted the retries (the batches stay uncommitted and will be read
    /// again).
    async fn flush(
        &self,
        pending: &mut Pending,
        table: Table,
        labels: &TableLabels,
        consumer: &mut dyn BusConsumer,
    ) -> bool {
        if pending.batches.is_empty() {
            return true;
        }
        let batches = std::mem::take(&mut pending.batches);
        *pending = Pending::default();
        let started = std::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.store.append_all(table, &batches).await {
                Ok(()) => break,
                Err(vedette_core::CoreError::BadInput(_)) if batches.len() > 1 => {
                    // One refused batch must not take the others with it.
                    for batch in &batches {
                        if !self.append_one(table, batch, labels).await {
                            return false;
                        }
                    }
                    break;
                }
                Err(e @ vedette_core::CoreError::BadInput(_)) => {
                    // A batch the store refuses would be refused forever.
                    let rows: usize = batches.iter().map(EventBatch::len).sum();
                    tracing::error!(error = %e, table = table.name(), rows, "store: batch refused and skipped");
                    self.metrics
                        .store_refused
                        .get_or_create(labels)
                        .inc_by(rows as u64);
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, table = table.name(), retry_in = ?backoff, "store: append failed; retrying");
                    tokio::select! {
                        () = self.cancel.cancelled() => return false,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
        self.metrics
            .store_seconds
            .observe(started.elapsed().as_secs_f64());
        let rows: usize = batches.iter().map(EventBatch::len).sum();
        self.metrics
            .ledger_stored
            .get_or_create(labels)
            .inc_by(rows as u64);
        for position in last_positions(&batches) {
            if let Err(e) = consumer.commit(&position).await {
                tracing::warn!(error = %e, table = table.name(), "store: commit refused; the batch will be read again");
            }
        }
        true
    }

    /// Appends one batch with retries; a refused batch is counted and skipped.
    async fn append_one(&self, table: Table, batch: &EventBatch, labels: &TableLabels) -> bool {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.store.append(table, batch).await {
                Ok(()) => return true,
                Err(e @ vedette_core::CoreError::BadInput(_)) => {
                    tracing::error!(error = %e, table = table.name(), rows = batch.len(), "store: batch refused and skipped");
                    self.metrics
                        .store_refused
                        .get_or_create(labels)
                        .inc_by(batch.len() as u64);
                    return true;
                }
                Err(e) => {
                    tracing::error!(error = %e, table = table.name(), retry_in = ?backoff, "store: append failed; retrying");
                    tokio::select! {
                        () = self.cancel.cancelled() => return false,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Bus batches read and not yet stored.
#[derive(Default)]
struct Pending {
    batches: Vec<EventBatch>,
    rows: usize,
    bytes: usize,
    since: Option<Instant>,
}

impl Pending {
    fn push(&mut self, batch: EventBatch) {
        self.rows += batch.len();
        self.bytes += batch.records.get_array_memory_size();
        self.since.get_or_insert_with(Instant::now);
        self.batches.push(batch);
    }

    /// Whether the group has reached its row or byte limit.
    fn full(&self, batching: &WriteBatching) -> bool {
        self.rows >= batching.max_rows || self.bytes >= batching.max_bytes
    }

    /// Whether the waiting batches should be stored now.
    fn due(&self, batching: &WriteBatching) -> bool {
        !self.batches.is_empty()
            && (self.full(batching) || self.since.is_some_and(|t| t.elapsed() >= batching.max_age))
    }

    /// How long to wait for the next batch.
    fn wait(&self, batching: &WriteBatching) -> Duration {
        match self.since {
            Some(t) => batching
                .max_age
                .saturating_sub(t.elapsed())
                .max(Duration::from_millis(1)),
            None => Duration::from_millis(500),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: u32, offset: u64) -> EventBatch {
        let mut b = EventBatch::new(
            arrow::array::RecordBatch::new_empty(vedette_core::schema::event_schema()),
            "t",
            "default",
            0,
        );
        b.position = Some(vedette_core::batch::BusPosition {
            topic: "events".into(),
            partition,
            offset,
        });
        b
    }

    #[test]
    fn immediate_batching_stores_every_batch_at_once() {
        let mut p = Pending::default();
        assert!(!p.due(&WriteBatching::IMMEDIATE));
        p.push(at(0, 1));
        assert!(p.due(&WriteBatching::IMMEDIATE));
        let slow = WriteBatching {
            max_rows: 10,
            max_bytes: usize::MAX,
            max_age: Duration::from_secs(60),
        };
        assert!(!p.due(&slow));
        assert!(p.wait(&slow) > Duration::from_secs(50));
    }
}
