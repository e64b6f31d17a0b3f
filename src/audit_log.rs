//! The audit log writer: API actions become [`AuditRecord`]s in the store's `audit`
//! table, and `audit` lines in the log.
//!
//! Records are grouped (up to [`MAX_GROUP`] or [`MAX_WAIT`]) so that frequent actions
//! (queries) do not make one file each. An action whose answer must not come before
//! its record is durable (alert triage, token and rule changes) uses
//! [`AuditLog::record_durable`], which flushes at once and waits. A record that
//! cannot be stored is counted (`vedette_audit_lost_total`) and logged in full.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use vedette_core::audit::{audit_to_batch, AuditRecord, ALL_TENANTS};
use vedette_core::batch::EventBatch;
use vedette_core::traits::{EventStore, Table};

use crate::metrics::Metrics;
use crate::tokens::Principal;

/// Records grouped into one append at most.
const MAX_GROUP: usize = 1000;
/// Longest a record waits for its group.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Records queued for the writer at most; beyond, records are counted lost.
const QUEUE: usize = 10_000;

type Ack = oneshot::Sender<Result<(), String>>;

/// Where API handlers send audit records.
#[derive(Debug, Clone)]
pub(crate) struct AuditLog {
    tx: mpsc::Sender<(AuditRecord, Option<Ack>)>,
    metrics: Arc<Metrics>,
}

/// A new record id, 32 hex digits that sort in time order: the time in milliseconds
/// (8 bytes), a counter of this process (4 bytes) and 4 random bytes. Queries break
/// ties of `@timestamp` (to the second on old ClickHouse servers) by it.
fn record_id(time_ms: i64) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut random = [0u8; 4];
    // Without randomness the time and counter still order and mostly distinguish ids.
    let _ = getrandom::fill(&mut random);
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&u64::try_from(time_ms).unwrap_or(0).to_be_bytes());
    buf[8..12].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    buf[12..].copy_from_slice(&random);
    crate::tokens::hex(&buf)
}

/// A record of `action` by `actor` (a token) with `outcome`, now.
pub(crate) fn record(actor: &Principal, action: &str, outcome: &str) -> AuditRecord {
    record_by(
        &actor.id,
        actor.role.name(),
        actor.tenant.as_deref(),
        action,
        outcome,
    )
}

/// A record of `action` by `actor_id` (`anonymous`, `system`, a token id) in `role`
/// (empty for none) for `tenant` (none: every tenant), with `outcome`, now.
pub(crate) fn record_by(
    actor_id: &str,
    role: &str,
    tenant: Option<&str>,
    action: &str,
    outcome: &str,
) -> AuditRecord {
    let time_ms = chrono::Utc::now().timestamp_millis();
    AuditRecord {
        time_ms,
        id: record_id(time_ms),
        tenant: tenant.unwrap_or(ALL_TENANTS).to_string(),
        actor_id: actor_id.to_string(),
        actor_role: role.to_string(),
        action: action.to_string(),
        outcome: outcome.to_string(),
        ..AuditRecord::default()
    }
}

impl AuditLog {
    /// Starts the writer over `store`; it ends once every sender is gone, after a last
    /// flush.
    pub(crate) fn start(
        store: Arc<dyn EventStore>,
        metrics: Arc<Metrics>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write_loop(rx, store, metrics.clone()));
        (Self { tx, metrics }, writer)
    }

    /// Queues `r` (stored within about a second).
    pub(crate) fn record(&self, r: AuditRecord) {
        log_line(&r);
        if let Err(e) = self.tx.try_send((r, None)) {
            self.metrics.audit_lost.inc();
            tracing::error!(error = %e, "audit queue full or closed: record lost from the store");
        }
    }

    /// Stores `r` now; returns once it is durable.
    pub(crate) async fn record_durable(&self, r: AuditRecord) -> Result<(), String> {
        log_line(&r);
        let (ack, done) = oneshot::channel();
        if self.tx.send((r, Some(ack))).await.is_err() {
            self.metrics.audit_lost.inc();
            return Err("the audit log is closed".into());
        }
        done.await
            .unwrap_or_else(|_| Err("the audit writer stopped".into()))
    }
}

fn log_line(r: &AuditRecord) {
    tracing::info!(
        target: "audit",
        action = %r.action,
        outcome = %r.outcome,
        actor = %r.actor_id,
        role = %r.actor_role,
        tenant = %r.tenant,
        target_id = r.target.as_deref().unwrap_or(""),
        detail = r.detail.as_deref().unwrap_or(""),
    );
}

async fn write_loop(
    mut rx: mpsc::Receiver<(AuditRecord, Option<Ack>)>,
    store: Arc<dyn EventStore>,
    metrics: Arc<Metrics>,
) {
    let mut group: Vec<AuditRecord> = Vec::new();
    let mut acks: Vec<Ack> = Vec::new();
    // The group is stored at most MAX_WAIT after its first record, however steadily
    // records keep arriving.
    let mut deadline = tokio::time::Instant::now();
    loop {
        let next = if group.is_empty() {
            let next = rx.recv().await;
            deadline = tokio::time::Instant::now() + MAX_WAIT;
            next
        } else {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    flush(&store, &metrics, &mut group, &mut acks).await;
                    continue;
                }
            }
        };
        let Some((r, ack)) = next else {
            flush(&store, &metrics, &mut group, &mut acks).await;
            return;
        };
        group.push(r);
        let urgent = ack.is_some();
        acks.extend(ack);
        if urgent || group.len() >= MAX_GROUP {
            flush(&store, &metrics, &mut group, &mut acks).await;
        }
    }
}

async fn flush(
    store: &Arc<dyn EventStore>,
    metrics: &Metrics,
    group: &mut Vec<AuditRecord>,
    acks: &mut Vec<Ack>,
) {
    if group.is_empty() {
        return;
    }
    let result = match audit_to_batch(group) {
        Ok(records) => {
            let batch = EventBatch::new(
                records,
                "api",
                ALL_TENANTS,
                chrono::Utc::now().timestamp_millis(),
            );
            store
                .append(Table::Audit, &batch)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    match &result {
        Ok(()) => {
            metrics.audit_records.inc_by(group.len() as u64);
        }
        Err(e) => {
            metrics.audit_lost.inc_by(group.len() as u64);
            tracing::error!(error = %e, records = group.len(), "audit records could not be stored");
        }
    }
    group.clear();
    for ack in acks.drain(..) {
        let _ = ack.send(result.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_sort_in_time_order() {
        let ids: Vec<String> = [5, 5, 6, 1_000_000].iter().map(|&t| record_id(t)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids.iter().all(|i| i.len() == 32));
    }

    /// Records arriving more often than MAX_WAIT are still stored within about
    /// MAX_WAIT of the first, not only once MAX_GROUP have gathered.
    #[tokio::test]
    async fn a_steady_trickle_is_stored_within_the_wait() {
        use futures::StreamExt;
        use vedette_core::traits::QueryScope;
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> = Arc::new(
            vedette_storage::parquet::ParquetStore::open(
                dir.path(),
                30,
                vedette_storage::QueryLimits::default(),
            )
            .unwrap(),
        );
        let (audit, writer) = AuditLog::start(store.clone(), Metrics::new());
        let stored = |store: Arc<dyn EventStore>| async move {
            let mut s = store
                .query("SELECT count(*) AS n FROM audit", &QueryScope::default())
                .await
                .unwrap();
            let b = s.next().await.unwrap().unwrap();
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .value(0)
        };
        for _ in 0..25 {
            audit.record(record_by("system", "", None, "query", "ok"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let n = stored(store.clone()).await;
        assert!(n >= 10, "{n} of 25 stored while records kept coming");
        drop(audit);
        writer.await.unwrap();
        assert_eq!(stored(store).await, 25);
    }
}
