//! False-positive suppressions: an analyst's false-positive mark on an alert stops
//! alerts of the same tenant, rule and dedup key (the rule's entity and key fields)
//! from being raised again.
//!
//! The marks are audit records (`alert.false_positive`) in the store, so every node of
//! a cluster sees them: each loads them at start and again every
//! [`REFRESH`]; the node that takes a mark applies it at once. Reopening the alert
//! (`alert.reopen`) lifts the mark the same way: a key follows its latest record.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use vedette_core::alert::Alert;
use vedette_core::traits::{EventStore, QueryScope};

/// Action of a false-positive mark in the audit log.
pub(crate) const FALSE_POSITIVE: &str = "alert.false_positive";
/// Action of a reopening in the audit log: it lifts a false-positive mark.
pub(crate) const REOPEN: &str = "alert.reopen";
/// How often marks taken by other nodes are picked up.
const REFRESH: Duration = Duration::from_secs(30);

/// (tenant, rule id, dedup key)
type Key = (String, String, String);

/// The suppressed keys.
#[derive(Debug, Default)]
pub(crate) struct Suppressions {
    keys: RwLock<HashSet<Key>>,
}

/// The string at `row` of column `name`, if the column is text and the value present.
fn text(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let column = batch.column_by_name(name)?;
    if column.is_null(row) {
        return None;
    }
    match column.data_type() {
        DataType::Utf8 => Some(column.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Some(column.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Some(column.as_string_view().value(row).to_string()),
        _ => None,
    }
}

impl Suppressions {
    /// Suppresses alerts of `tenant`, `rule_id` and `dedup_key` from now on.
    pub(crate) fn insert(&self, tenant: &str, rule_id: &str, dedup_key: &str) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert((tenant.into(), rule_id.into(), dedup_key.into()));
        }
    }

    /// Whether `alert` is suppressed.
    pub(crate) fn suppresses(&self, alert: &Alert) -> bool {
        let Ok(keys) = self.keys.read() else {
            return false;
        };
        if keys.is_empty() {
            return false;
        }
        keys.contains(&(
            alert.tenant.clone(),
            alert.rule_id.clone(),
            alert.dedup_key.clone(),
        ))
    }

    /// How many keys are suppressed.
    pub(crate) fn len(&self) -> usize {
        self.keys.read().map_or(0, |k| k.len())
    }

    /// Lifts the suppression of `tenant`, `rule_id` and `dedup_key`.
    pub(crate) fn remove(&self, tenant: &str, rule_id: &str, dedup_key: &str) {
        if let Ok(mut keys) = self.keys.write() {
            keys.remove(&(tenant.into(), rule_id.into(), dedup_key.into()));
        }
    }

    /// Applies the marks and reopenings stored in the audit table (each key by its
    /// latest record); returns how many keys are suppressed. Keys the store does not
    /// name are left as they are.
    pub(crate) async fn load(&self, store: &dyn EventStore) -> anyhow::Result<usize> {
        let sql = format!(
            "SELECT tenant, \"rule.id\", \"dedup.key\", action FROM audit \
             WHERE action IN ('{FALSE_POSITIVE}', '{REOPEN}') AND outcome = 'ok' \
             ORDER BY \"@timestamp\", \"audit.id\""
        );
        let mut stream = store.query(&sql, &QueryScope::all()).await?;
        let mut latest: HashMap<Key, bool> = HashMap::new();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            for row in 0..batch.num_rows() {
                let key = (
                    text(&batch, "tenant", row),
                    text(&batch, "rule.id", row),
                    text(&batch, "dedup.key", row),
                );
                if let (Some(t), Some(r), Some(k)) = key {
                    let suppressed = text(&batch, "action", row).as_deref() == Some(FALSE_POSITIVE);
                    latest.insert((t, r, k), suppressed);
                }
            }
        }
        if let Ok(mut keys) = self.keys.write() {
            for (key, suppressed) in latest {
                if suppressed {
                    keys.insert(key);
                } else {
                    keys.remove(&key);
                }
            }
        }
        Ok(self.len())
    }

    /// Reloads the marks every [`REFRESH`] until `cancel`.
    pub(crate) fn spawn_refresh(
        self: Arc<Self>,
        store: Arc<dyn EventStore>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(REFRESH) => {}
                }
                if let Err(e) = self.load(store.as_ref()).await {
                    tracing::warn!(error = %e, "reloading false-positive marks failed");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_core::alert::{DetectionKind, Level};

    fn alert(tenant: &str, rule: &str, key: &str) -> Alert {
        Alert {
            id: "a".into(),
            time_ms: 0,
            tenant: tenant.into(),
            kind: DetectionKind::Sigma,
            rule_id: rule.into(),
            rule_title: "t".into(),
            rule_author: None,
            level: Level::High,
            tags: vec![],
            host: None,
            user: None,
            event_ids: vec![],
            matched: Default::default(),
            dedup_key: key.into(),
        }
    }

    #[test]
    fn only_the_same_tenant_rule_and_key_are_suppressed() {
        let s = Suppressions::default();
        assert!(!s.suppresses(&alert("acme", "r1", "r1|host-1")));
        s.insert("acme", "r1", "r1|host-1");
        assert!(s.suppresses(&alert("acme", "r1", "r1|host-1")));
        assert!(!s.suppresses(&alert("acme", "r1", "r1|host-2")));
        assert!(!s.suppresses(&alert("globex", "r1", "r1|host-1")));
        assert!(!s.suppresses(&alert("acme", "r2", "r1|host-1")));
        s.remove("acme", "r1", "r1|host-1");
        assert!(!s.suppresses(&alert("acme", "r1", "r1|host-1")));
    }
}
