//! The detection stage of `vedette run`: a member of consumer group `detect` on topic
//! `events`. Each batch is matched against the Sigma rules on the blocking pool (the
//! detector fans out with rayon), the alerts are appended to topic `alerts`, and only
//! then is the batch's position committed: a crash or a rebalance in between makes the
//! batch be read again (at-least-once; alert dedup downstream absorbs the repeat).
//!
//! ```text
//!  bus `events` ─▶ poll ─▶ SigmaDetector (rayon) ─▶ bus `alerts` ─▶ commit `events`
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vedette_core::alert::alerts_to_batch;
use vedette_core::batch::EventBatch;
use vedette_core::traits::{Bus, BusDelivery};

use crate::bus_sink::EVENTS_TOPIC;
use crate::live_rules::LiveRules;
use crate::metrics::{LevelLabels, Metrics, RuleLabels};
use crate::suppressions::Suppressions;

/// Topic of alerts.
pub(crate) const ALERTS_TOPIC: &str = "alerts";
/// Consumer group of the detection stage.
pub(crate) const DETECT_GROUP: &str = "detect";

/// Everything the detection stage needs.
pub(crate) struct DetectStage {
    /// The bus.
    pub(crate) bus: Arc<dyn Bus>,
    /// The running rules (swapped by reloads between batches).
    pub(crate) rules: Arc<LiveRules>,
    /// Counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Keys analysts marked false positive: their alerts are not raised.
    pub(crate) suppressions: Arc<Suppressions>,
    /// Fires on shutdown.
    pub(crate) cancel: CancellationToken,
}

impl DetectStage {
    /// Consumes `events` until shutdown.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let mut consumer = self
            .bus
            .subscribe(EVENTS_TOPIC, DETECT_GROUP)
            .await
            .context("joining the detect group on the events topic")?;
        loop {
            let delivery = tokio::select! {
                () = self.cancel.cancelled() => break,
                d = consumer.poll(Duration::from_millis(500)) => d,
            };
            let batch = match delivery {
                Ok(Some(BusDelivery::Batch(batch))) => batch,
                Ok(Some(BusDelivery::Assigned(ps))) => {
                    tracing::info!(partitions = ?ps, "detect: partitions assigned");
                    continue;
                }
                Ok(Some(BusDelivery::Revoked(ps))) => {
                    tracing::info!(partitions = ?ps, "detect: partitions revoked");
                    continue;
                }
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "detect: reading the events topic failed; retrying");
                    tokio::select! {
                        () = self.cancel.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            let Some(position) = batch.position.clone() else {
                continue;
            };
            if !self.process(&batch).await? {
                break;
            }
            if let Err(e) = consumer.commit(&position).await {
                tracing::warn!(error = %e, "detect: commit refused; the batch will be read again");
            }
        }
        consumer.close().await.context("leaving the detect group")?;
        Ok(())
    }

    /// Detects and appends the alerts; false if shutdown came first (nothing
    /// committed then).
    async fn process(&self, batch: &EventBatch) -> anyhow::Result<bool> {
        let started = std::time::Instant::now();
        // One rule set per batch: a reload swaps sets between batches, never within one.
        let Some(detector) = self.rules.detector() else {
            anyhow::bail!("the running rule set is poisoned");
        };
        let events = batch.clone();
        let detected = tokio::task::spawn_blocking(move || detector.detect(&events))
            .await
            .context("detection task failed")?;
        let mut alerts = match detected {
            Ok(alerts) => alerts,
            Err(e) => {
                // A batch the detector cannot read would fail forever: count and skip.
                tracing::error!(error = %e, rows = batch.len(), "detect: batch skipped");
                self.metrics.detect_failed_batches.inc();
                return Ok(true);
            }
        };
        self.metrics.detect_events.inc_by(batch.len() as u64);
        self.metrics
            .detect_seconds
            .observe(started.elapsed().as_secs_f64());
        let raised = alerts.len();
        alerts.retain(|a| !self.suppressions.suppresses(a));
        self.metrics
            .alerts_suppressed
            .inc_by((raised - alerts.len()) as u64);
        if alerts.is_empty() {
            return Ok(true);
        }
        let records = alerts_to_batch(&alerts)?;
        let out = EventBatch::new(
            records,
            "detect",
            batch.tenant.clone(),
            chrono::Utc::now().timestamp_millis(),
        );
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.bus.append(ALERTS_TOPIC, &out).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?backoff, "detect: appending alerts failed; retrying");
                    tokio::select! {
                        () = self.cancel.cancelled() => return Ok(false),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        for alert in &alerts {
            self.metrics
                .alerts
                .get_or_create(&LevelLabels {
                    level: alert.level.as_str().to_string(),
                })
                .inc();
            self.metrics
                .alerts_by_rule
                .get_or_create(&RuleLabels {
                    rule: alert.rule_id.clone(),
                })
                .inc();
        }
        Ok(true)
    }
}
