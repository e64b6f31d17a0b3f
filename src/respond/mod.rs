//! The respond stage of `vedette run`: a member of consumer group `respond` on topic
//! `alerts`. Each alert that passes a responder's filter becomes a delivery
//! ([`delivery`]): a signed POST with an idempotency key, retried with backoff, dead-
//! lettered after its attempts. The bus is the durable outbox: an alert's position is
//! committed only once every delivery of it has finished (and that is written in the
//! [`ledger`]), so an alert survives restarts and receiver downtime, and a delivery
//! that finished is not made again.
//!
//! ```text
//!  bus `alerts` ─▶ filters ─▶ deliveries (per responder: concurrency, retries) ─▶ receivers
//!                                  │ finished                      └─▶ dead letters
//!                                  ▼
//!                       ledger (fsync) ─▶ commit `alerts`
//! ```
//!
//! Deliveries of later alerts go on while an earlier one is retried (up to
//! [`MAX_PENDING`] unfinished deliveries); commits wait for the earliest.

pub(crate) mod delivery;
pub(crate) mod ledger;
pub(crate) mod metrics;
mod window;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use vedette_core::alert::alerts_from_batch;
use vedette_core::batch::{BusPosition, EventBatch};
use vedette_core::traits::{Bus, BusConsumer, BusDelivery};

use crate::audit_log::AuditLog;
use crate::detect_stage::ALERTS_TOPIC;
use crate::metrics::Metrics;
use delivery::{deliver, DeliveryContext, Done, Finish, Job, Responder};
use ledger::DeliveryLedger;
use window::Window;

/// Consumer group of the respond stage.
pub(crate) const RESPOND_GROUP: &str = "respond";
/// Unfinished deliveries at most; beyond, the stage stops reading alerts.
pub(crate) const MAX_PENDING: usize = 10_000;

/// Everything the respond stage needs.
pub(crate) struct RespondStage {
    /// The bus.
    pub(crate) bus: Arc<dyn Bus>,
    /// The responders (at least one).
    pub(crate) responders: Vec<Arc<Responder>>,
    /// The ledger file of finished deliveries.
    pub(crate) ledger_path: PathBuf,
    /// Counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Where finished deliveries are recorded.
    pub(crate) audit: AuditLog,
    /// Fires on shutdown.
    pub(crate) cancel: CancellationToken,
}

/// The stage's moving parts while it runs.
struct Running {
    consumer: Box<dyn BusConsumer>,
    ledger: DeliveryLedger,
    window: Window,
    tasks: JoinSet<Done>,
    committed: HashMap<u32, u64>,
}

impl RespondStage {
    /// Consumes `alerts` until shutdown.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let ledger = DeliveryLedger::open(&self.ledger_path)?;
        let consumer = self
            .bus
            .subscribe(ALERTS_TOPIC, RESPOND_GROUP)
            .await
            .context("joining the respond group on the alerts topic")?;
        let ctx = Arc::new(DeliveryContext {
            bus: self.bus.clone(),
            metrics: self.metrics.clone(),
            audit: self.audit.clone(),
            stop: CancellationToken::new(),
        });
        let mut run = Running {
            consumer,
            ledger,
            window: Window::default(),
            tasks: JoinSet::new(),
            committed: HashMap::new(),
        };
        loop {
            let room = run.tasks.len() < MAX_PENDING;
            tokio::select! {
                () = self.cancel.cancelled() => break,
                Some(joined) = run.tasks.join_next(), if !run.tasks.is_empty() => {
                    self.finished(&mut run, joined)?;
                }
                d = run.consumer.poll(Duration::from_millis(500)), if room => match d {
                    Ok(Some(BusDelivery::Batch(batch))) => self.read(&mut run, &batch, &ctx),
                    Ok(Some(BusDelivery::Assigned(ps))) => {
                        tracing::info!(partitions = ?ps, "respond: partitions assigned");
                    }
                    Ok(Some(BusDelivery::Revoked(ps))) => {
                        tracing::info!(partitions = ?ps, "respond: partitions revoked");
                        run.window.revoke(&ps);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "respond: reading the alerts topic failed; retrying");
                        tokio::select! {
                            () = self.cancel.cancelled() => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                },
            }
            self.commit_ready(&mut run).await?;
        }
        // Shutdown: waiting deliveries stop; an attempt under way ends first.
        ctx.stop.cancel();
        let grace = self
            .responders
            .iter()
            .map(|r| Duration::from_millis(r.config.timeout_ms))
            .max()
            .unwrap_or_default()
            + Duration::from_secs(2);
        let deadline = tokio::time::Instant::now() + grace;
        while !run.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, run.tasks.join_next()).await {
                Ok(Some(joined)) => self.finished(&mut run, joined)?,
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        deliveries = run.tasks.len(),
                        "respond: deliveries still under way at shutdown; they will be made again"
                    );
                    run.tasks.abort_all();
                    break;
                }
            }
        }
        self.commit_ready(&mut run).await?;
        run.ledger.sync()?;
        run.consumer
            .close()
            .await
            .context("leaving the respond group")?;
        Ok(())
    }

    /// Starts the deliveries of the alerts of `batch`.
    fn read(&self, run: &mut Running, batch: &EventBatch, ctx: &Arc<DeliveryContext>) {
        let Some(position) = &batch.position else {
            return;
        };
        let alerts = match alerts_from_batch(&batch.records) {
            Ok(a) => a,
            Err(e) => {
                // A record that is not alerts would fail forever: skipped (committed).
                tracing::error!(error = %e, offset = position.offset, "respond: unreadable alerts skipped");
                Vec::new()
            }
        };
        let mut started = 0;
        for alert in alerts {
            for responder in &self.responders {
                if !responder.config.accepts(&alert) {
                    continue;
                }
                let key = responder.key(&alert);
                if run.ledger.contains(&key) {
                    continue;
                }
                let job = Job {
                    responder: responder.clone(),
                    alert: alert.clone(),
                    key,
                    partition: position.partition,
                    offset: position.offset,
                };
                run.tasks.spawn(deliver(job, ctx.clone()));
                started += 1;
            }
        }
        run.window
            .push(position.partition, position.offset, started);
        self.metrics.respond.pending.set(run.tasks.len() as i64);
    }

    /// Takes note of a delivery that ended.
    fn finished(
        &self,
        run: &mut Running,
        joined: Result<Done, tokio::task::JoinError>,
    ) -> anyhow::Result<()> {
        self.metrics.respond.pending.set(run.tasks.len() as i64);
        let done = match joined {
            Ok(done) => done,
            Err(e) => {
                // Its alert stays uncommitted and is read again after a restart.
                tracing::error!(error = %e, "respond: a delivery task failed");
                return Ok(());
            }
        };
        if done.finish == Finish::Abandoned {
            return Ok(());
        }
        run.ledger.record(done.partition, done.offset, &done.key)?;
        run.window.finish(done.partition, done.offset);
        Ok(())
    }

    /// Commits the positions whose deliveries (and all before them) have finished.
    async fn commit_ready(&self, run: &mut Running) -> anyhow::Result<()> {
        let ready = run.window.ready();
        if ready.is_empty() {
            return Ok(());
        }
        run.ledger.sync()?;
        for (partition, offset) in ready {
            let position = BusPosition {
                topic: ALERTS_TOPIC.to_string(),
                partition,
                offset,
            };
            match run.consumer.commit(&position).await {
                Ok(()) => {
                    run.committed.insert(partition, offset + 1);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "respond: commit refused; the alerts will be read again");
                }
            }
        }
        run.ledger.compact(&run.committed)
    }
}
