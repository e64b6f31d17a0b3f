//! The detection stage of `vedette run`: a member of consumer group `detect` on topic
//! `events`. Each batch is matched against the Sigma rules on the blocking pool (the
//! detector fans out with rayon), the alerts are appended to topic `alerts`, and only
//! then is the batch's position committed: a crash or a rebalance in between makes the
//! batch be read again (at-least-once; alert ids are stable, so the repeat is the same
//! alert). Between detection and the bus, the alert state ([`crate::alert_flow`])
//! folds repeats, adds entity risk and watches for silent sources; every
//! [`TICK`] it raises the silence alerts due and writes the closed dedup windows'
//! counts to the audit log (`alert.dedup`).
//!
//! ```text
//!  bus `events` ─▶ poll, join ─▶ YaraDetector, SigmaDetector (rayon), correlations ─▶ AlertFlow ─▶ bus `alerts` ─▶ commit `events`
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vedette_core::alert::{alerts_to_batch, Alert};
use vedette_core::batch::EventBatch;
use vedette_core::traits::{Bus, BusDelivery};

use crate::alert_flow::{summary_detail, AlertFlow, DEDUP_ACTION};
use crate::audit_log::{self, AuditLog};
use crate::bus_batches::{joined, last_positions, take_waiting};
use crate::bus_sink::EVENTS_TOPIC;
use crate::correlation_state::CorrelationState;
use crate::detect_rebuild::Covered;
use crate::live_rules::LiveRules;
use crate::metrics::{LevelLabels, Metrics, RuleLabels, StateLabels};
use crate::suppressions::Suppressions;

/// Topic of alerts.
pub(crate) const ALERTS_TOPIC: &str = "alerts";
/// Consumer group of the detection stage.
pub(crate) const DETECT_GROUP: &str = "detect";
/// Rows the stage gathers from what the bus already holds before matching them
/// together: agents send small batches, and each has a fixed cost (a YARA scanner, the
/// rules' per-column passes, an alerts append).
const GROUP_ROWS: usize = 8192;
/// How often silent sources are checked and closed dedup windows reported.
const TICK: Duration = Duration::from_secs(5);

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
    /// YARA over event fields, when rules loaded.
    pub(crate) yara: Option<Arc<crate::yara_setup::LiveYara>>,
    /// Dedup, entity risk and silent sources.
    pub(crate) flow: Mutex<AlertFlow>,
    /// Open correlation windows.
    pub(crate) correlation: Arc<Mutex<CorrelationState>>,
    /// Where the open correlation windows are saved.
    pub(crate) correlation_checkpoint: std::path::PathBuf,
    /// Where the next offset seen of each events partition is saved, with the windows
    /// and the baselines.
    pub(crate) covered_checkpoint: std::path::PathBuf,
    /// How much a takeover of partitions reads back ([`crate::detect_rebuild`]).
    pub(crate) rebuild_limits: crate::detect_rebuild::RebuildLimits,
    /// Baseline definitions reloaded from disk, swapped in between batches.
    pub(crate) baselines: Option<Arc<crate::alert_flow::LiveBaselines>>,
    /// Where dedup counts go.
    pub(crate) audit: AuditLog,
    /// How often the baseline state is saved (and at shutdown).
    pub(crate) checkpoint_every: Duration,
    /// Fires on shutdown.
    pub(crate) cancel: CancellationToken,
}

/// Logs a change of the partitions this member reads.
fn log_change(change: &BusDelivery) {
    match change {
        BusDelivery::Assigned(ps) => {
            tracing::info!(partitions = ?ps, "detect: partitions assigned")
        }
        BusDelivery::Revoked(ps) => tracing::info!(partitions = ?ps, "detect: partitions revoked"),
        BusDelivery::Batch(_) => {}
    }
}

impl DetectStage {
    /// Consumes `events` until shutdown.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let mut consumer = self
            .bus
            .subscribe(EVENTS_TOPIC, DETECT_GROUP)
            .await
            .context("joining the detect group on the events topic")?;
        if let Some(running) = self.rules.running() {
            match self
                .correlations()
                .restore(&self.correlation_checkpoint, &running)
            {
                Ok(0) => {}
                Ok(tenants) => tracing::info!(tenants, "correlation windows restored"),
                Err(e) => tracing::warn!(error = %e, "correlation windows not restored"),
            }
        }
        let mut covered = Covered::load(&self.covered_checkpoint);
        covered.baselines_unaccounted =
            !self.covered_checkpoint.exists() && self.flow().baselines_saved();
        let (mut last_tick, mut last_save) = (Instant::now(), Instant::now());
        loop {
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                if !self.tick().await? {
                    break;
                }
            }
            // Right after a commit: the saved windows hold exactly the committed hits.
            if last_save.elapsed() >= self.checkpoint_every {
                last_save = Instant::now();
                tokio::task::block_in_place(|| self.save_state(&covered));
            }
            let delivery = tokio::select! {
                () = self.cancel.cancelled() => break,
                d = consumer.poll(Duration::from_millis(500)) => d,
            };
            let batch = match delivery {
                Ok(Some(BusDelivery::Batch(batch))) => batch,
                Ok(Some(change)) => {
                    self.on_change(&change, consumer.as_mut(), &mut covered)
                        .await;
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
            // What the bus already holds joins the batch, up to GROUP_ROWS.
            let mut rows = batch.len();
            let mut group = vec![batch];
            let change = if rows < GROUP_ROWS {
                take_waiting(consumer.as_mut(), |b| {
                    rows += b.len();
                    group.push(b);
                    rows < GROUP_ROWS
                })
                .await
            } else {
                None
            };
            group.retain(|b| b.position.is_some());
            let positions = last_positions(&group);
            let mut stopped = false;
            for joined in joined(group) {
                if !self.process(&joined).await? {
                    stopped = true;
                    break;
                }
            }
            if stopped {
                break;
            }
            for position in positions {
                covered.saw(&position);
                if let Err(e) = consumer.commit(&position).await {
                    tracing::warn!(error = %e, "detect: commit refused; the batches will be read again");
                }
            }
            if let Some(change) = change {
                self.on_change(&change, consumer.as_mut(), &mut covered)
                    .await;
            }
        }
        consumer.close().await.context("leaving the detect group")?;
        let open = self.flow().close();
        self.report(open);
        tokio::task::block_in_place(|| self.save_state(&covered));
        Ok(())
    }

    /// Logs a change of partitions; rebuilds the state of partitions taken over.
    async fn on_change(
        &self,
        change: &BusDelivery,
        consumer: &mut dyn vedette_core::traits::BusConsumer,
        covered: &mut Covered,
    ) {
        log_change(change);
        if let BusDelivery::Assigned(partitions) = change {
            self.rebuild(consumer, partitions, covered).await;
        }
    }

    fn correlations(&self) -> std::sync::MutexGuard<'_, CorrelationState> {
        self.correlation.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the alerts analysts marked false positive, counted.
    fn suppress(&self, alerts: &mut Vec<Alert>) {
        let raised = alerts.len();
        alerts.retain(|a| !self.suppressions.suppresses(a));
        self.metrics
            .alerts_suppressed
            .inc_by((raised - alerts.len()) as u64);
    }

    /// Saves the baselines, the open correlation windows and the offsets they cover.
    fn save_state(&self, covered: &Covered) {
        self.flow().save_baselines();
        if let Err(e) = covered.save(&self.covered_checkpoint) {
            tracing::error!(error = %e, "saving the offsets of the detection state failed");
        }
        if let Some(running) = self.rules.running() {
            if let Err(e) = self
                .correlations()
                .save(&self.correlation_checkpoint, &running)
            {
                tracing::error!(error = %e, "saving the correlation windows failed");
            }
        }
    }

    pub(crate) fn flow(&self) -> std::sync::MutexGuard<'_, AlertFlow> {
        self.flow.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Raises the silence alerts due and reports closed dedup windows; false if
    /// shutdown came first.
    async fn tick(&self) -> anyhow::Result<bool> {
        let now = chrono::Utc::now().timestamp_millis();
        let (silent, closed) = self.flow().tick(now);
        self.report(closed);
        for (kind, n) in self.flow().sizes() {
            self.metrics
                .alert_state
                .get_or_create(&StateLabels { kind: kind.into() })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        // Correlation windows the clock closed, through suppression, dedup and risk.
        let mut correlated = match self.rules.running() {
            Some(running) => self.correlations().tick(&running),
            None => Vec::new(),
        };
        self.suppress(&mut correlated);
        let processed = self.flow().raise(correlated, now);
        self.metrics.alerts_folded.inc_by(processed.folded);
        let mut by_tenant: std::collections::BTreeMap<String, Vec<Alert>> = Default::default();
        for a in silent.into_iter().chain(processed.alerts) {
            by_tenant.entry(a.tenant.clone()).or_default().push(a);
        }
        for (tenant, alerts) in by_tenant {
            if !self.append_alerts(&alerts, &tenant).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes dedup counts to the audit log.
    fn report(&self, closed: Vec<vedette_detect::alerting::dedup::DedupSummary>) {
        for s in closed {
            let mut r = audit_log::record_by("system", "", Some(&s.tenant), DEDUP_ACTION, "ok");
            r.target = Some(s.kept_id.clone());
            r.detail = Some(summary_detail(&s));
            r.rule_id = Some(s.rule_id.clone());
            r.dedup_key = Some(s.dedup_key.clone());
            self.audit.record(r);
        }
    }

    /// Detects and appends the alerts; false if shutdown came first (nothing
    /// committed then).
    async fn process(&self, batch: &EventBatch) -> anyhow::Result<bool> {
        let started = std::time::Instant::now();
        if let Some(live) = &self.baselines {
            if let Some(engine) = live.take_pending() {
                let (running, carried) = self
                    .flow()
                    .replace_baselines(engine, live.checkpoint.clone());
                tracing::info!(running, carried, "baselines reloaded");
            }
        }
        // One rule set per batch: a reload swaps sets between batches, never within one.
        let Some(running) = self.rules.running() else {
            anyhow::bail!("the running rule set is poisoned");
        };
        // Likewise one YARA set per batch.
        let (events, yara) = (batch.clone(), self.yara.as_ref().and_then(|y| y.current()));
        let correlation = self.correlation.clone();
        let detected = tokio::task::spawn_blocking(move || {
            // YARA first: its matches become the `yara.rules` column the Sigma rules see.
            let (mut alerts, events) = match &yara {
                Some(yara) => yara.detect_and_mark(&events)?,
                None => (Vec::new(), events),
            };
            let hits = running
                .detector
                .matches(&events.records)
                .map_err(|e| vedette_core::CoreError::BadInput(e.to_string()))?;
            if running.correlations.is_empty() {
                alerts.extend(running.detector.alerts(&events, &hits));
            } else {
                // Hits of a rule a correlation names raise no alert of their own unless
                // the correlation says `generate: true`.
                let own: Vec<_> = hits
                    .iter()
                    .filter(|h| running.correlations.generates(h.rule))
                    .cloned()
                    .collect();
                alerts.extend(running.detector.alerts(&events, &own));
                let mut state = correlation.lock().unwrap_or_else(|p| p.into_inner());
                alerts.extend(state.observe(&running, &events, &hits));
            }
            Ok::<_, vedette_core::CoreError>(alerts)
        })
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
        let stats = self.correlations().stats();
        for (kind, n) in [
            ("late_hits", stats.late_hits),
            ("evicted_groups", stats.evicted_groups),
            ("dropped_hits", stats.dropped_hits),
            ("alerts", stats.alerts),
        ] {
            self.metrics
                .correlation
                .get_or_create(&StateLabels { kind: kind.into() })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.metrics
            .detect_seconds
            .observe(started.elapsed().as_secs_f64());
        // Baselines learn from every batch; their CPU work stays off the async threads.
        let learned = tokio::task::block_in_place(|| self.flow().baselines(batch));
        alerts.extend(learned);
        self.suppress(&mut alerts);
        let now = chrono::Utc::now().timestamp_millis();
        let processed = self.flow().process(batch, alerts, now);
        self.metrics.alerts_folded.inc_by(processed.folded);
        if processed.alerts.is_empty() {
            return Ok(true);
        }
        self.append_alerts(&processed.alerts, &batch.tenant).await
    }

    /// Appends `alerts` to the alerts topic, retrying until it works; false if
    /// shutdown came first.
    async fn append_alerts(&self, alerts: &[Alert], tenant: &str) -> anyhow::Result<bool> {
        let records = alerts_to_batch(alerts)?;
        let out = EventBatch::new(
            records,
            "detect",
            tenant.to_string(),
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
        for alert in alerts {
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
