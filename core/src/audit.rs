//! The audit record: who did what through the API (queries, token changes, alert
//! triage, rule changes), stored in table `audit` beside the alerts and queryable like
//! them. Alert triage (acknowledge, false positive) lives only here: the latest
//! triage record of an alert is its status.

use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::CoreError;
use crate::schema::{timestamp_type, UTC};

/// Tenant recorded for actions that span every tenant.
pub const ALL_TENANTS: &str = "*";

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRecord {
    /// When it happened, Unix milliseconds UTC.
    pub time_ms: i64,
    /// Unique id of the record.
    pub id: String,
    /// Tenant the action concerns ([`ALL_TENANTS`] when it spans them).
    pub tenant: String,
    /// Who acted: a token id, or `cli` / `system`.
    pub actor_id: String,
    /// The actor's role (`agent`, `analyst`, `admin`, or empty).
    pub actor_role: String,
    /// What was done, e.g. `query`, `token.create`, `alert.ack`.
    pub action: String,
    /// `ok`, `refused`, `failed`, `unauthorized`, `forbidden`.
    pub outcome: String,
    /// What it was done to: an alert id, a token id, a rule path.
    pub target: Option<String>,
    /// The SQL text, a note, an error message.
    pub detail: Option<String>,
    /// Rule of the alert, for alert triage.
    pub rule_id: Option<String>,
    /// Dedup key of the alert, for alert triage (rule + entity + key fields).
    pub dedup_key: Option<String>,
}

/// Names of the columns of the audit schema.
pub mod audit_col {
    /// Time of the action.
    pub const TIMESTAMP: &str = "@timestamp";
    /// Record id.
    pub const ID: &str = "audit.id";
    /// Tenant.
    pub const TENANT: &str = "tenant";
    /// Actor (token id).
    pub const ACTOR_ID: &str = "actor.id";
    /// Actor role.
    pub const ACTOR_ROLE: &str = "actor.role";
    /// Action.
    pub const ACTION: &str = "action";
    /// Outcome.
    pub const OUTCOME: &str = "outcome";
    /// Target.
    pub const TARGET: &str = "target";
    /// Detail.
    pub const DETAIL: &str = "detail";
    /// Rule id (alert triage).
    pub const RULE_ID: &str = "rule.id";
    /// Dedup key (alert triage).
    pub const DEDUP_KEY: &str = "dedup.key";
}

/// The Arrow schema of stored audit records.
pub fn audit_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            use audit_col::*;
            Arc::new(Schema::new(vec![
                Field::new(TIMESTAMP, timestamp_type(), false),
                Field::new(ID, DataType::Utf8, false),
                Field::new(TENANT, DataType::Utf8, false),
                Field::new(ACTOR_ID, DataType::Utf8, false),
                Field::new(ACTOR_ROLE, DataType::Utf8, false),
                Field::new(ACTION, DataType::Utf8, false),
                Field::new(OUTCOME, DataType::Utf8, false),
                Field::new(TARGET, DataType::Utf8, true),
                Field::new(DETAIL, DataType::Utf8, true),
                Field::new(RULE_ID, DataType::Utf8, true),
                Field::new(DEDUP_KEY, DataType::Utf8, true),
            ]))
        })
        .clone()
}

/// Audit records as one record batch of [`audit_schema`].
pub fn audit_to_batch(records: &[AuditRecord]) -> Result<RecordBatch, CoreError> {
    let strings = |f: fn(&AuditRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(records.iter().map(f)))
    };
    let optional = |f: fn(&AuditRecord) -> Option<&str>| -> ArrayRef {
        Arc::new(records.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values(records.iter().map(|r| r.time_ms))
                .with_timezone(UTC),
        ),
        strings(|r| &r.id),
        strings(|r| &r.tenant),
        strings(|r| &r.actor_id),
        strings(|r| &r.actor_role),
        strings(|r| &r.action),
        strings(|r| &r.outcome),
        optional(|r| r.target.as_deref()),
        optional(|r| r.detail.as_deref()),
        optional(|r| r.rule_id.as_deref()),
        optional(|r| r.dedup_key.as_deref()),
    ];
    Ok(RecordBatch::try_new(audit_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_records_build_a_batch() -> Result<(), CoreError> {
        let r = AuditRecord {
            time_ms: 5,
            id: "a1".into(),
            tenant: "acme".into(),
            actor_id: "t1".into(),
            actor_role: "analyst".into(),
            action: "alert.ack".into(),
            outcome: "ok".into(),
            target: Some("al-1".into()),
            ..AuditRecord::default()
        };
        let batch = audit_to_batch(&[r.clone(), r])?;
        assert_eq!((batch.num_rows(), batch.num_columns()), (2, 11));
        assert_eq!(batch.column(8).null_count(), 2);
        Ok(())
    }
}
