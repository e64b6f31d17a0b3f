//! One delivery of one alert to one responder: attempts until the receiver takes it,
//! refuses it for good, or the attempts run out; then the dead letters. Every finished
//! delivery leaves an audit record (`alert.deliver`) with the receiver's answer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use vedette_connectors::webhook::backoff::{random_unit, retry_delay};
use vedette_connectors::webhook::payload::payload;
use vedette_connectors::webhook::{Attempt, AttemptOutcome, WebhookClient};
use vedette_core::alert::Alert;
use vedette_core::batch::EventBatch;
use vedette_core::config::ResponderConfig;
use vedette_core::dead_letter::{dead_letters_to_batch, DeadLetter};
use vedette_core::traits::Bus;

use super::metrics::{OutcomeLabels, ResponderLabels};
use crate::audit_log::{self, AuditLog};
use crate::bus_sink::DEAD_LETTERS_TOPIC;
use crate::metrics::Metrics;

/// Audit action of a finished delivery.
pub(crate) const DELIVER_ACTION: &str = "alert.deliver";

/// A configured responder, ready to send.
#[derive(Debug)]
pub(crate) struct Responder {
    /// Its configuration.
    pub(crate) config: ResponderConfig,
    /// Its HTTP client.
    pub(crate) client: WebhookClient,
    /// Attempts in flight at once, at most `config.concurrency`.
    pub(crate) permits: Semaphore,
}

impl Responder {
    /// The responders of `configs`, each with its secret read from its environment
    /// variable; a missing or weak secret fails the start.
    pub(crate) fn all(configs: &[ResponderConfig]) -> anyhow::Result<Vec<Arc<Self>>> {
        configs
            .iter()
            .map(|c| {
                let secret = std::env::var(&c.secret_env).with_context(|| {
                    format!(
                        "responder {}: environment variable {} (its signing secret) is not set",
                        c.name, c.secret_env
                    )
                })?;
                let client = WebhookClient::new(c, secret.trim_end().as_bytes())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(Arc::new(Self {
                    config: c.clone(),
                    client,
                    permits: Semaphore::new(c.concurrency),
                }))
            })
            .collect()
    }

    /// The idempotency key of `alert`'s delivery to this responder: stable across
    /// restarts and re-detection (alert ids are derived from rule and event).
    pub(crate) fn key(&self, alert: &Alert) -> String {
        format!("{}-{}", alert.id, self.config.name)
    }
}

/// What the deliveries share.
pub(crate) struct DeliveryContext {
    /// The bus, for dead letters.
    pub(crate) bus: Arc<dyn Bus>,
    /// Counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Where finished deliveries are recorded.
    pub(crate) audit: AuditLog,
    /// Fires at shutdown: deliveries waiting to retry stop (unfinished, so sent
    /// again after the restart); an attempt under way completes first.
    pub(crate) stop: CancellationToken,
}

/// One delivery to make.
#[derive(Debug)]
pub(crate) struct Job {
    /// To whom.
    pub(crate) responder: Arc<Responder>,
    /// What.
    pub(crate) alert: Alert,
    /// Its idempotency key.
    pub(crate) key: String,
    /// Bus partition of the alert.
    pub(crate) partition: u32,
    /// Bus offset of the alert.
    pub(crate) offset: u64,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The receiver answered 2xx.
    Delivered,
    /// Refused for good or out of attempts: in the dead letters.
    DeadLettered,
    /// Stopped by shutdown before finishing: it will be made again.
    Abandoned,
}

/// A delivery that ended.
#[derive(Debug)]
pub(crate) struct Done {
    /// Bus partition of the alert.
    pub(crate) partition: u32,
    /// Bus offset of the alert.
    pub(crate) offset: u64,
    /// Its idempotency key.
    pub(crate) key: String,
    /// How it ended.
    pub(crate) finish: Finish,
}

/// Makes the delivery `job`.
pub(crate) async fn deliver(job: Job, ctx: Arc<DeliveryContext>) -> Done {
    let finish = attempts(&job, &ctx).await;
    Done {
        partition: job.partition,
        offset: job.offset,
        key: job.key,
        finish,
    }
}

async fn attempts(job: &Job, ctx: &DeliveryContext) -> Finish {
    let r = &job.responder;
    let name = &r.config.name;
    let body = payload(r.config.template, name, &job.key, &job.alert);
    let mut attempt = 1;
    loop {
        let sent = {
            let permit = tokio::select! {
                () = ctx.stop.cancelled() => return Finish::Abandoned,
                p = r.permits.acquire() => p,
            };
            let sent = r.client.send(&body, &job.key, attempt).await;
            drop(permit);
            sent
        };
        count_attempt(ctx, name, &sent);
        let latency = sent.latency;
        let (status, reason) = match sent.outcome {
            AttemptOutcome::Delivered { status } => {
                record(ctx, job, "delivered", Some(status), attempt, latency, None);
                return Finish::Delivered;
            }
            AttemptOutcome::Refused { status, reason } => (Some(status), reason),
            AttemptOutcome::Retry {
                status,
                reason,
                retry_after,
            } => {
                if attempt < r.config.max_attempts {
                    let delay = retry_delay(
                        attempt + 1,
                        Duration::from_millis(r.config.backoff_ms),
                        Duration::from_millis(r.config.max_backoff_ms),
                        random_unit(),
                        retry_after,
                    );
                    tracing::warn!(responder = %name, key = %job.key, attempt, %reason, retry_in = ?delay, "delivery failed; retrying");
                    tokio::select! {
                        () = ctx.stop.cancelled() => return Finish::Abandoned,
                        () = tokio::time::sleep(delay) => {}
                    }
                    attempt += 1;
                    continue;
                }
                (status, reason)
            }
        };
        let reason = format!("responder {name}: gave up after {attempt} attempt(s): {reason}");
        tracing::error!(responder = %name, key = %job.key, %reason, "delivery dead-lettered");
        if !dead_letter(ctx, job, &reason, &body).await {
            return Finish::Abandoned;
        }
        record(
            ctx,
            job,
            "dead_lettered",
            status,
            attempt,
            latency,
            Some(&reason),
        );
        return Finish::DeadLettered;
    }
}

fn count_attempt(ctx: &DeliveryContext, name: &str, sent: &Attempt) {
    let m = &ctx.metrics.respond;
    let outcome = match sent.outcome {
        AttemptOutcome::Delivered { .. } => "ok",
        AttemptOutcome::Retry { .. } => "retry",
        AttemptOutcome::Refused { .. } => "refused",
    };
    m.attempts
        .get_or_create(&OutcomeLabels {
            responder: name.to_string(),
            outcome: outcome.into(),
        })
        .inc();
    m.attempt_seconds
        .get_or_create(&ResponderLabels {
            responder: name.to_string(),
        })
        .observe(sent.latency.as_secs_f64());
}

/// The audit record and counter of a finished delivery.
fn record(
    ctx: &DeliveryContext,
    job: &Job,
    outcome: &str,
    status: Option<u16>,
    attempts: u32,
    latency: Duration,
    reason: Option<&str>,
) {
    let name = &job.responder.config.name;
    ctx.metrics
        .respond
        .deliveries
        .get_or_create(&OutcomeLabels {
            responder: name.clone(),
            outcome: outcome.into(),
        })
        .inc();
    let mut r = audit_log::record_by(
        "system",
        "",
        Some(&job.alert.tenant),
        DELIVER_ACTION,
        outcome,
    );
    r.target = Some(job.alert.id.clone());
    r.rule_id = Some(job.alert.rule_id.clone());
    r.dedup_key = Some(job.alert.dedup_key.clone());
    let detail = serde_json::json!({
        "responder": name,
        "status": status,
        "attempts": attempts,
        "latency_ms": u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        "reason": reason,
    });
    r.detail = Some(detail.to_string());
    ctx.audit.record(r);
}

/// Appends the dead letter of a delivery that gave up; false if shutdown came first.
async fn dead_letter(ctx: &DeliveryContext, job: &Job, reason: &str, body: &[u8]) -> bool {
    let now = chrono::Utc::now().timestamp_millis();
    let source = format!("responder:{}", job.responder.config.name);
    let letter = DeadLetter::new(
        now,
        &job.alert.tenant,
        &source,
        "respond",
        job.offset,
        reason,
        body,
    );
    let records = match dead_letters_to_batch(&[letter]) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "respond: building a dead letter failed");
            return true;
        }
    };
    let batch = EventBatch::new(records, source, job.alert.tenant.clone(), now);
    let mut backoff = Duration::from_millis(100);
    loop {
        match ctx.bus.append(DEAD_LETTERS_TOPIC, &batch).await {
            Ok(_) => return true,
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?backoff, "respond: appending a dead letter failed; retrying");
                tokio::select! {
                    () = ctx.stop.cancelled() => return false,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
