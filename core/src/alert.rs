//! The alert: what a detector says about one or more events, and its Arrow schema.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::columns::{
    column, list_at, map_at, string_at, string_list_type, string_lists, string_maps,
};
use crate::error::CoreError;
use crate::schema::{field_map_type, timestamp_type, UTC};

/// Which kind of detector raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectionKind {
    /// A Sigma detection rule.
    Sigma,
    /// A Sigma correlation rule over several events.
    Correlation,
    /// A YARA rule matched event content.
    Yara,
    /// A statistical baseline saw an anomaly or a new term.
    Baseline,
    /// An entity's risk, summed over its recent alerts, crossed the threshold.
    Risk,
    /// A source that sent steadily went silent.
    Silence,
}

impl DetectionKind {
    /// The lowercase name stored in the `detection.kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sigma => "sigma",
            Self::Correlation => "correlation",
            Self::Yara => "yara",
            Self::Baseline => "baseline",
            Self::Risk => "risk",
            Self::Silence => "silence",
        }
    }
}

impl FromStr for DetectionKind {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sigma" => Ok(Self::Sigma),
            "correlation" => Ok(Self::Correlation),
            "yara" => Ok(Self::Yara),
            "baseline" => Ok(Self::Baseline),
            "risk" => Ok(Self::Risk),
            "silence" => Ok(Self::Silence),
            other => Err(CoreError::BadInput(format!(
                "unknown detection kind `{other}`"
            ))),
        }
    }
}

/// Alert severity, the Sigma levels in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Informational: no action expected.
    Informational,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical: act now.
    Critical,
}

impl Level {
    /// The lowercase name used by Sigma and stored in the `rule.level` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Informational => "informational",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "informational" => Ok(Self::Informational),
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            other => Err(CoreError::BadInput(format!("unknown level `{other}`"))),
        }
    }
}

/// One alert raised by a detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique id of the alert.
    pub id: String,
    /// When the detection happened, Unix milliseconds UTC.
    pub time_ms: i64,
    /// Tenant of the events it refers to.
    pub tenant: String,
    /// Which kind of detector raised it.
    pub kind: DetectionKind,
    /// Rule identifier (Sigma `id`, YARA `namespace:rule`, baseline name).
    pub rule_id: String,
    /// Rule title.
    pub rule_title: String,
    /// Rule author, kept in every alert as the Detection Rule License asks.
    pub rule_author: Option<String>,
    /// Severity.
    pub level: Level,
    /// Tags, ATT&CK ones as `attack.t1059.001`.
    pub tags: Vec<String>,
    /// Host the alert is about.
    pub host: Option<String>,
    /// User the alert is about.
    pub user: Option<String>,
    /// `event.id`s of the events it refers to.
    pub event_ids: Vec<String>,
    /// Field names and values that made the rule match.
    pub matched: BTreeMap<String, String>,
    /// Key under which repeated alerts are folded together.
    pub dedup_key: String,
}

/// The dedup key of an alert of `rule` on one event: the rule plus the event's entity,
/// its host, or its user when it has no host (cloud and identity events), so that two
/// accounts doing the same thing are two alerts, not one folded into the other.
pub fn entity_dedup_key(rule: &str, host: Option<&str>, user: Option<&str>) -> String {
    let entity = host
        .filter(|h| !h.is_empty())
        .or(user.filter(|u| !u.is_empty()))
        .unwrap_or("");
    format!("{rule}|{entity}")
}

/// Names of the columns of the alert schema.
pub mod alert_col {
    /// Alert id.
    pub const ID: &str = "alert.id";
    /// Detection time.
    pub const TIMESTAMP: &str = "@timestamp";
    /// Tenant.
    pub const TENANT: &str = "tenant";
    /// Detector kind.
    pub const KIND: &str = "detection.kind";
    /// Rule id.
    pub const RULE_ID: &str = "rule.id";
    /// Rule title.
    pub const RULE_TITLE: &str = "rule.title";
    /// Rule author.
    pub const RULE_AUTHOR: &str = "rule.author";
    /// Level.
    pub const LEVEL: &str = "rule.level";
    /// Tags.
    pub const TAGS: &str = "rule.tags";
    /// Host entity.
    pub const HOST: &str = "host.name";
    /// User entity.
    pub const USER: &str = "user.name";
    /// Referenced event ids.
    pub const EVENT_IDS: &str = "event.ids";
    /// Matched fields.
    pub const MATCHED: &str = "matched";
    /// Dedup key.
    pub const DEDUP_KEY: &str = "dedup.key";
}

/// The Arrow schema of stored alerts.
pub fn alert_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            use alert_col::*;
            Arc::new(Schema::new(vec![
                Field::new(ID, DataType::Utf8, false),
                Field::new(TIMESTAMP, timestamp_type(), false),
                Field::new(TENANT, DataType::Utf8, false),
                Field::new(KIND, DataType::Utf8, false),
                Field::new(RULE_ID, DataType::Utf8, false),
                Field::new(RULE_TITLE, DataType::Utf8, false),
                Field::new(RULE_AUTHOR, DataType::Utf8, true),
                Field::new(LEVEL, DataType::Utf8, false),
                Field::new(TAGS, string_list_type(), false),
                Field::new(HOST, DataType::Utf8, true),
                Field::new(USER, DataType::Utf8, true),
                Field::new(EVENT_IDS, string_list_type(), false),
                Field::new(MATCHED, field_map_type(), false),
                Field::new(DEDUP_KEY, DataType::Utf8, false),
            ]))
        })
        .clone()
}

/// Alerts as one record batch of [`alert_schema`].
pub fn alerts_to_batch(alerts: &[Alert]) -> Result<RecordBatch, CoreError> {
    let strings = |f: fn(&Alert) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(alerts.iter().map(f)))
    };
    let optional = |f: fn(&Alert) -> Option<&str>| -> ArrayRef {
        Arc::new(alerts.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        strings(|a| &a.id),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(alerts.iter().map(|a| a.time_ms))
                .with_timezone(UTC),
        ),
        strings(|a| &a.tenant),
        strings(|a| a.kind.as_str()),
        strings(|a| &a.rule_id),
        strings(|a| &a.rule_title),
        optional(|a| a.rule_author.as_deref()),
        strings(|a| a.level.as_str()),
        string_lists(alerts.iter().map(|a| &a.tags)),
        optional(|a| a.host.as_deref()),
        optional(|a| a.user.as_deref()),
        string_lists(alerts.iter().map(|a| &a.event_ids)),
        string_maps(alerts.iter().map(|a| &a.matched))?,
        strings(|a| &a.dedup_key),
    ];
    Ok(RecordBatch::try_new(alert_schema(), columns)?)
}

/// Alerts read back from a record batch of [`alert_schema`].
pub fn alerts_from_batch(batch: &RecordBatch) -> Result<Vec<Alert>, CoreError> {
    use alert_col::*;
    let times = column(batch, TIMESTAMP)?
        .as_primitive_opt::<arrow::datatypes::TimestampMillisecondType>()
        .ok_or_else(|| CoreError::BadInput(format!("`{TIMESTAMP}` is not a ms timestamp")))?
        .clone();
    let get = |name: &str| column(batch, name).cloned();
    let (id, tenant, kind, rule_id, title, author, level, tags, host, user, events, matched, key) = (
        get(ID)?,
        get(TENANT)?,
        get(KIND)?,
        get(RULE_ID)?,
        get(RULE_TITLE)?,
        get(RULE_AUTHOR)?,
        get(LEVEL)?,
        get(TAGS)?,
        get(HOST)?,
        get(USER)?,
        get(EVENT_IDS)?,
        get(MATCHED)?,
        get(DEDUP_KEY)?,
    );
    let required = |a: &ArrayRef, row: usize, name: &str| {
        string_at(a, row)
            .ok_or_else(|| CoreError::BadInput(format!("alert row {row} has no `{name}`")))
    };
    (0..batch.num_rows())
        .map(|row| {
            Ok(Alert {
                id: required(&id, row, ID)?,
                time_ms: if times.is_null(row) {
                    0
                } else {
                    times.value(row)
                },
                tenant: required(&tenant, row, TENANT)?,
                kind: required(&kind, row, KIND)?.parse()?,
                rule_id: required(&rule_id, row, RULE_ID)?,
                rule_title: required(&title, row, RULE_TITLE)?,
                rule_author: string_at(&author, row),
                level: required(&level, row, LEVEL)?.parse()?,
                tags: list_at(&tags, row),
                host: string_at(&host, row),
                user: string_at(&user, row),
                event_ids: list_at(&events, row),
                matched: map_at(&matched, row).into_iter().collect(),
                dedup_key: required(&key, row, DEDUP_KEY)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_dedup_key_names_the_host_else_the_user() {
        assert_eq!(entity_dedup_key("r", Some("h1"), Some("bob")), "r|h1");
        assert_eq!(entity_dedup_key("r", None, Some("bob")), "r|bob");
        assert_eq!(entity_dedup_key("r", Some(""), Some("bob")), "r|bob");
        assert_eq!(entity_dedup_key("r", None, None), "r|");
    }

    use super::*;

    fn alert(i: i64) -> Alert {
        Alert {
            id: format!("a{i}"),
            time_ms: 1_700_000_000_000 + i,
            tenant: "default".into(),
            kind: DetectionKind::Sigma,
            rule_id: "5b7a0f8e-0000-4000-8000-000000000001".into(),
            rule_title: "Encoded PowerShell".into(),
            rule_author: (i % 2 == 0).then(|| "Vedette".to_string()),
            level: Level::High,
            tags: vec!["attack.execution".into(), "attack.t1059.001".into()],
            host: Some("ws01".into()),
            user: None,
            event_ids: vec![format!("e{i}")],
            matched: [(
                "CommandLine".to_string(),
                "powershell -enc AAAA".to_string(),
            )]
            .into(),
            dedup_key: format!("rule|ws01|{i}"),
        }
    }

    #[test]
    fn alerts_round_trip_through_arrow() -> Result<(), CoreError> {
        let alerts: Vec<Alert> = (0..4).map(alert).collect();
        let batch = alerts_to_batch(&alerts)?;
        assert_eq!(batch.schema(), alert_schema());
        assert_eq!(alerts_from_batch(&batch)?, alerts);
        Ok(())
    }

    #[test]
    fn levels_order_and_parse() {
        assert!(Level::Critical > Level::High && Level::Low > Level::Informational);
        assert_eq!("HIGH".parse::<Level>().ok(), Some(Level::High));
        assert!("severe".parse::<Level>().is_err());
    }

    #[test]
    fn reading_a_foreign_batch_names_the_missing_column() {
        let batch = RecordBatch::new_empty(crate::schema::event_schema());
        let err = alerts_from_batch(&batch)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("alert.id"), "{err}");
    }
}
