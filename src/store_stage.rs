//! The storage stage of `vedette run`: members of consumer group `store` on the topics
//! `events`, `alerts` and `dead_letters`. Each batch is appended to its table, and only
//! once the store has it durably is its position committed (at-least-once; the store's
//! writes are idempotent per bus position, so a batch read again is not stored twice).
//! A retention pass runs every hour.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vedette_core::traits::{Bus, BusDelivery, EventStore, Table};

use crate::bus_sink::{DEAD_LETTERS_TOPIC, EVENTS_TOPIC};
use crate::detect_stage::ALERTS_TOPIC;
use crate::metrics::{Metrics, TableLabels};

/// Consumer group of the storage stage.
pub(crate) const STORE_GROUP: &str = "store";
/// How often retention runs on the store.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

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
        'batches: loop {
            let delivery = tokio::select! {
                () = self.cancel.cancelled() => break,
                d = consumer.poll(Duration::from_millis(500)) => d,
            };
            let batch = match delivery {
                Ok(Some(BusDelivery::Batch(batch))) => batch,
                Ok(Some(_)) | Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, topic, "store: reading the bus failed; retrying");
                    tokio::select! {
                        () = self.cancel.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            let mut backoff = Duration::from_millis(100);
            loop {
                let started = std::time::Instant::now();
                match self.store.append(table, &batch).await {
                    Ok(()) => {
                        self.metrics
                            .store_seconds
                            .observe(started.elapsed().as_secs_f64());
                        break;
                    }
                    Err(e @ vedette_core::CoreError::BadInput(_)) => {
                        // A batch the store refuses would be refused forever.
                        tracing::error!(error = %e, topic, rows = batch.len(), "store: batch refused and skipped");
                        self.metrics
                            .store_refused
                            .get_or_create(&labels)
                            .inc_by(batch.len() as u64);
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, topic, retry_in = ?backoff, "store: append failed; retrying");
                        tokio::select! {
                            () = self.cancel.cancelled() => break 'batches,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
            self.metrics
                .ledger_stored
                .get_or_create(&labels)
                .inc_by(batch.len() as u64);
            if let Some(position) = &batch.position {
                if let Err(e) = consumer.commit(position).await {
                    tracing::warn!(error = %e, topic, "store: commit refused; the batch will be read again");
                }
            }
        }
        consumer.close().await.context("leaving the store group")?;
        Ok(())
    }
}
