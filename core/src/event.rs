//! One normalized event as a row, and the builder that turns rows into an Arrow batch.
//!
//! Parsers fill an [`Event`] per input record and append it to an [`EventBatchBuilder`];
//! the builder writes straight into Arrow column builders, so finishing a batch copies
//! nothing.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Int64Builder, ListBuilder, MapBuilder, MapFieldNames, RecordBatch,
    StringBuilder, TimestampMillisecondBuilder,
};

use crate::error::CoreError;
use crate::schema::{col, event_schema, ColumnKind, EVENT_COLUMNS, UTC};

/// Default tenant for events that name none.
pub const DEFAULT_TENANT: &str = "default";

/// One normalized event, before it becomes a row of an event batch.
///
/// Every common column is optional except the ones the schema requires
/// (`@timestamp`, `event.id`, `event.dataset`, `event.ingested`, `tenant`, `fields`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// When the event happened, Unix milliseconds UTC.
    pub timestamp_ms: i64,
    /// Stable id of the input record (see [`crate::id::event_id`]).
    pub id: String,
    /// Parser that produced it, e.g. `windows.sysmon`.
    pub dataset: String,
    /// ECS event kind.
    pub kind: Option<String>,
    /// ECS event category.
    pub category: Option<String>,
    /// What happened.
    pub action: Option<String>,
    /// `success`, `failure` or `unknown`.
    pub outcome: Option<String>,
    /// Numeric severity.
    pub severity: Option<i64>,
    /// The source's own event code.
    pub code: Option<String>,
    /// Software that wrote the event.
    pub provider: Option<String>,
    /// When Vedette received it, Unix milliseconds UTC.
    pub ingested_ms: i64,
    /// Host name.
    pub host_name: Option<String>,
    /// Host IP address.
    pub host_ip: Option<String>,
    /// User name.
    pub user_name: Option<String>,
    /// User domain.
    pub user_domain: Option<String>,
    /// Process id.
    pub process_pid: Option<i64>,
    /// Process executable path.
    pub process_executable: Option<String>,
    /// Process command line.
    pub process_command_line: Option<String>,
    /// Parent executable path.
    pub parent_executable: Option<String>,
    /// Parent command line.
    pub parent_command_line: Option<String>,
    /// File path.
    pub file_path: Option<String>,
    /// File SHA-256.
    pub file_sha256: Option<String>,
    /// Network source address.
    pub source_ip: Option<String>,
    /// Network source port.
    pub source_port: Option<i64>,
    /// Network destination address.
    pub destination_ip: Option<String>,
    /// Network destination port.
    pub destination_port: Option<i64>,
    /// Transport protocol.
    pub network_transport: Option<String>,
    /// Full URL.
    pub url_full: Option<String>,
    /// DNS name queried.
    pub dns_question_name: Option<String>,
    /// Cloud provider.
    pub cloud_provider: Option<String>,
    /// Cloud account id.
    pub cloud_account_id: Option<String>,
    /// Cloud region.
    pub cloud_region: Option<String>,
    /// Owning tenant; empty means [`DEFAULT_TENANT`].
    pub tenant: String,
    /// Original line or rendered message.
    pub message: Option<String>,
    /// Processing flags (see [`tag`]).
    pub tags: Vec<&'static str>,
    /// Every original field by its original flattened name, in record order.
    pub fields: Vec<(String, String)>,
    /// Binary content for content scanning.
    pub payload: Option<Vec<u8>>,
}

/// The processing flags a parser may put in the `tags` column.
pub mod tag {
    /// The source's time carried no zone; it was read as UTC.
    pub const TIMEZONE_MISSING: &str = "timezone_missing";
    /// The record had no usable time; `@timestamp` is the ingest time.
    pub const TIMESTAMP_MISSING: &str = "timestamp_missing";
    /// The source's time did not parse; `@timestamp` is the ingest time.
    pub const TIMESTAMP_INVALID: &str = "timestamp_invalid";
    /// The year was not in the record and was inferred (RFC 3164).
    pub const YEAR_INFERRED: &str = "year_inferred";
    /// Some fields were dropped because the record had more than the limit.
    pub const FIELDS_TRUNCATED: &str = "fields_truncated";
    /// The payload was longer than the limit and was cut.
    pub const PAYLOAD_TRUNCATED: &str = "payload_truncated";
}

impl Event {
    /// Adds a processing flag once.
    pub fn add_tag(&mut self, tag: &'static str) {
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
    }

    /// Value of an original field by exact name.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, column: &str) -> Option<&str> {
        let v = match column {
            col::EVENT_ID => Some(&self.id),
            col::EVENT_DATASET => Some(&self.dataset),
            col::EVENT_KIND => self.kind.as_ref(),
            col::EVENT_CATEGORY => self.category.as_ref(),
            col::EVENT_ACTION => self.action.as_ref(),
            col::EVENT_OUTCOME => self.outcome.as_ref(),
            col::EVENT_CODE => self.code.as_ref(),
            col::EVENT_PROVIDER => self.provider.as_ref(),
            col::HOST_NAME => self.host_name.as_ref(),
            col::HOST_IP => self.host_ip.as_ref(),
            col::USER_NAME => self.user_name.as_ref(),
            col::USER_DOMAIN => self.user_domain.as_ref(),
            col::PROCESS_EXECUTABLE => self.process_executable.as_ref(),
            col::PROCESS_COMMAND_LINE => self.process_command_line.as_ref(),
            col::PROCESS_PARENT_EXECUTABLE => self.parent_executable.as_ref(),
            col::PROCESS_PARENT_COMMAND_LINE => self.parent_command_line.as_ref(),
            col::FILE_PATH => self.file_path.as_ref(),
            col::FILE_HASH_SHA256 => self.file_sha256.as_ref(),
            col::SOURCE_IP => self.source_ip.as_ref(),
            col::DESTINATION_IP => self.destination_ip.as_ref(),
            col::NETWORK_TRANSPORT => self.network_transport.as_ref(),
            col::URL_FULL => self.url_full.as_ref(),
            col::DNS_QUESTION_NAME => self.dns_question_name.as_ref(),
            col::CLOUD_PROVIDER => self.cloud_provider.as_ref(),
            col::CLOUD_ACCOUNT_ID => self.cloud_account_id.as_ref(),
            col::CLOUD_REGION => self.cloud_region.as_ref(),
            col::TENANT if self.tenant.is_empty() => return Some(DEFAULT_TENANT),
            col::TENANT => Some(&self.tenant),
            col::MESSAGE => self.message.as_ref(),
            _ => None,
        };
        v.map(String::as_str)
    }

    fn integer(&self, column: &str) -> Option<i64> {
        match column {
            col::EVENT_SEVERITY => self.severity,
            col::PROCESS_PID => self.process_pid,
            col::SOURCE_PORT => self.source_port,
            col::DESTINATION_PORT => self.destination_port,
            _ => None,
        }
    }

    fn time(&self, column: &str) -> i64 {
        if column == col::EVENT_INGESTED {
            self.ingested_ms
        } else {
            self.timestamp_ms
        }
    }
}

enum ColumnBuilder {
    Timestamp(TimestampMillisecondBuilder),
    Text(StringBuilder),
    Integer(Int64Builder),
    TextList(ListBuilder<StringBuilder>),
    FieldMap(Box<MapBuilder<StringBuilder, StringBuilder>>),
    Binary(BinaryBuilder),
}

/// Appends [`Event`]s into Arrow column builders and finishes them as one record batch
/// of [`event_schema`].
pub struct EventBatchBuilder {
    columns: Vec<ColumnBuilder>,
    rows: usize,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        let columns = EVENT_COLUMNS
            .iter()
            .map(|c| match c.kind {
                ColumnKind::Timestamp => {
                    ColumnBuilder::Timestamp(TimestampMillisecondBuilder::new().with_timezone(UTC))
                }
                ColumnKind::Text => ColumnBuilder::Text(StringBuilder::new()),
                ColumnKind::Integer => ColumnBuilder::Integer(Int64Builder::new()),
                ColumnKind::TextList => {
                    ColumnBuilder::TextList(ListBuilder::new(StringBuilder::new()))
                }
                ColumnKind::FieldMap => ColumnBuilder::FieldMap(Box::new(MapBuilder::new(
                    Some(MapFieldNames {
                        entry: "entries".into(),
                        key: "keys".into(),
                        value: "values".into(),
                    }),
                    StringBuilder::new(),
                    StringBuilder::new(),
                ))),
                ColumnKind::Binary => ColumnBuilder::Binary(BinaryBuilder::new()),
            })
            .collect();
        Self { columns, rows: 0 }
    }

    /// Number of rows appended since the last finish.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last finish.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one event as a row.
    pub fn append(&mut self, event: &Event) {
        for (spec, builder) in EVENT_COLUMNS.iter().zip(self.columns.iter_mut()) {
            match builder {
                ColumnBuilder::Timestamp(b) => b.append_value(event.time(spec.name)),
                ColumnBuilder::Text(b) => match event.text(spec.name) {
                    Some(v) => b.append_value(v),
                    None if spec.required => b.append_value(""),
                    None => b.append_null(),
                },
                ColumnBuilder::Integer(b) => b.append_option(event.integer(spec.name)),
                ColumnBuilder::TextList(b) => {
                    for t in &event.tags {
                        b.values().append_value(t);
                    }
                    b.append(true);
                }
                ColumnBuilder::FieldMap(b) => {
                    for (k, v) in &event.fields {
                        b.keys().append_value(k);
                        b.values().append_value(v);
                    }
                    // Cannot fail: keys and values were appended in pairs above.
                    let _ = b.append(true);
                }
                ColumnBuilder::Binary(b) => b.append_option(event.payload.as_deref()),
            }
        }
        self.rows += 1;
    }

    /// Finishes the appended rows as a record batch and resets the builder.
    pub fn finish(&mut self) -> Result<RecordBatch, CoreError> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
                    ColumnBuilder::Text(b) => Arc::new(b.finish()),
                    ColumnBuilder::Integer(b) => Arc::new(b.finish()),
                    ColumnBuilder::TextList(b) => Arc::new(b.finish()),
                    ColumnBuilder::FieldMap(b) => Arc::new(b.finish()),
                    ColumnBuilder::Binary(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        self.rows = 0;
        RecordBatch::try_new(event_schema(), arrays).map_err(CoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;

    fn sample(i: i64) -> Event {
        Event {
            timestamp_ms: 1_700_000_000_000 + i,
            id: format!("id-{i}"),
            dataset: "windows.sysmon".into(),
            ingested_ms: 1_700_000_001_000,
            process_pid: Some(4242 + i),
            process_command_line: Some(format!("cmd.exe /c echo {i}")),
            fields: vec![
                ("Image".into(), "C:\\Windows\\System32\\cmd.exe".into()),
                ("EventID".into(), "1".into()),
            ],
            ..Event::default()
        }
    }

    #[test]
    fn builds_a_batch_of_the_event_schema() -> Result<(), CoreError> {
        let mut b = EventBatchBuilder::new();
        for i in 0..3 {
            b.append(&sample(i));
        }
        assert_eq!(b.len(), 3);
        let batch = b.finish()?;
        assert!(b.is_empty());
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.schema(), event_schema());

        let pid = batch
            .column_by_name(col::PROCESS_PID)
            .map(|c| c.as_primitive::<Int64Type>());
        assert_eq!(pid.map(|p| p.value(2)), Some(4244));
        let host = batch.column_by_name(col::HOST_NAME);
        assert_eq!(host.map(|h| h.null_count()), Some(3));
        let tenant = batch
            .column_by_name(col::TENANT)
            .map(|t| t.as_string::<i32>());
        assert_eq!(tenant.map(|t| t.value(0)), Some(DEFAULT_TENANT));

        let fields = batch.column_by_name(col::FIELDS).map(|f| f.as_map());
        let first = fields.map(|m| m.value(0));
        let keys = first
            .as_ref()
            .map(|s| s.column(0).as_string::<i32>().value(0).to_string());
        assert_eq!(keys.as_deref(), Some("Image"));
        Ok(())
    }

    #[test]
    fn finish_on_empty_builder_gives_empty_batch() -> Result<(), CoreError> {
        let batch = EventBatchBuilder::new().finish()?;
        assert_eq!(batch.num_rows(), 0);
        Ok(())
    }

    #[test]
    fn field_lookup_is_exact() {
        let e = sample(0);
        assert_eq!(e.field("EventID"), Some("1"));
        assert_eq!(e.field("eventid"), None);
    }
}
