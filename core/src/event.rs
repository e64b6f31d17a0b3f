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
}

/// Reads one text column of an event.
type TextGetter = fn(&Event) -> Option<&str>;
/// Reads one integer column of an event.
type IntGetter = fn(&Event) -> Option<i64>;
/// Reads one timestamp column of an event.
type TimeGetter = fn(&Event) -> i64;

fn s(v: &Option<String>) -> Option<&str> {
    v.as_deref()
}

/// The getter of a text column, chosen once per builder (not per row).
fn text_getter(column: &str) -> TextGetter {
    match column {
        col::EVENT_ID => |e| Some(&e.id),
        col::EVENT_DATASET => |e| Some(&e.dataset),
        col::EVENT_KIND => |e| s(&e.kind),
        col::EVENT_CATEGORY => |e| s(&e.category),
        col::EVENT_ACTION => |e| s(&e.action),
        col::EVENT_OUTCOME => |e| s(&e.outcome),
        col::EVENT_CODE => |e| s(&e.code),
        col::EVENT_PROVIDER => |e| s(&e.provider),
        col::HOST_NAME => |e| s(&e.host_name),
        col::HOST_IP => |e| s(&e.host_ip),
        col::USER_NAME => |e| s(&e.user_name),
        col::USER_DOMAIN => |e| s(&e.user_domain),
        col::PROCESS_EXECUTABLE => |e| s(&e.process_executable),
        col::PROCESS_COMMAND_LINE => |e| s(&e.process_command_line),
        col::PROCESS_PARENT_EXECUTABLE => |e| s(&e.parent_executable),
        col::PROCESS_PARENT_COMMAND_LINE => |e| s(&e.parent_command_line),
        col::FILE_PATH => |e| s(&e.file_path),
        col::FILE_HASH_SHA256 => |e| s(&e.file_sha256),
        col::SOURCE_IP => |e| s(&e.source_ip),
        col::DESTINATION_IP => |e| s(&e.destination_ip),
        col::NETWORK_TRANSPORT => |e| s(&e.network_transport),
        col::URL_FULL => |e| s(&e.url_full),
        col::DNS_QUESTION_NAME => |e| s(&e.dns_question_name),
        col::CLOUD_PROVIDER => |e| s(&e.cloud_provider),
        col::CLOUD_ACCOUNT_ID => |e| s(&e.cloud_account_id),
        col::CLOUD_REGION => |e| s(&e.cloud_region),
        col::TENANT => |e| {
            Some(if e.tenant.is_empty() {
                DEFAULT_TENANT
            } else {
                &e.tenant
            })
        },
        col::MESSAGE => |e| s(&e.message),
        _ => |_| None,
    }
}

/// The getter of an integer column.
fn int_getter(column: &str) -> IntGetter {
    match column {
        col::EVENT_SEVERITY => |e| e.severity,
        col::PROCESS_PID => |e| e.process_pid,
        col::SOURCE_PORT => |e| e.source_port,
        col::DESTINATION_PORT => |e| e.destination_port,
        _ => |_| None,
    }
}

/// The getter of a timestamp column.
fn time_getter(column: &str) -> TimeGetter {
    if column == col::EVENT_INGESTED {
        |e| e.ingested_ms
    } else {
        |e| e.timestamp_ms
    }
}

enum ColumnBuilder {
    Timestamp(TimestampMillisecondBuilder, TimeGetter),
    Text(StringBuilder, TextGetter, bool),
    Integer(Int64Builder, IntGetter),
    TextList(ListBuilder<StringBuilder>),
    FieldMap(Box<MapBuilder<StringBuilder, StringBuilder>>),
    Binary(BinaryBuilder),
}

/// Names of the parts of the `fields` map column.
fn map_field_names() -> MapFieldNames {
    MapFieldNames {
        entry: "entries".into(),
        key: "keys".into(),
        value: "values".into(),
    }
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
                ColumnKind::Timestamp => ColumnBuilder::Timestamp(
                    TimestampMillisecondBuilder::new().with_timezone(UTC),
                    time_getter(c.name),
                ),
                ColumnKind::Text => {
                    ColumnBuilder::Text(StringBuilder::new(), text_getter(c.name), c.required)
                }
                ColumnKind::Integer => {
                    ColumnBuilder::Integer(Int64Builder::new(), int_getter(c.name))
                }
                ColumnKind::TextList => {
                    ColumnBuilder::TextList(ListBuilder::new(StringBuilder::new()))
                }
                ColumnKind::FieldMap => ColumnBuilder::FieldMap(Box::new(MapBuilder::new(
                    Some(map_field_names()),
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
        for builder in &mut self.columns {
            match builder {
                ColumnBuilder::Timestamp(b, get) => b.append_value(get(event)),
                ColumnBuilder::Text(b, get, required) => match get(event) {
                    Some(v) => b.append_value(v),
                    None if *required => b.append_value(""),
                    None => b.append_null(),
                },
                ColumnBuilder::Integer(b, get) => b.append_option(get(event)),
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
                    ColumnBuilder::Timestamp(b, _) => Arc::new(b.finish()),
                    ColumnBuilder::Text(b, _, _) => Arc::new(b.finish()),
                    ColumnBuilder::Integer(b, _) => Arc::new(b.finish()),
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
    fn a_reused_builder_makes_independent_batches() -> Result<(), CoreError> {
        let mut b = EventBatchBuilder::new();
        for i in 0..3 {
            b.append(&sample(i));
        }
        let first = b.finish()?;
        b.append(&sample(7));
        let second = b.finish()?;
        assert_eq!((first.num_rows(), second.num_rows()), (3, 1));
        let pid = second
            .column_by_name(col::PROCESS_PID)
            .map(|c| c.as_primitive::<Int64Type>().value(0));
        assert_eq!(pid, Some(4249));
        let fields = second
            .column_by_name(col::FIELDS)
            .map(|f| f.as_map().value(0).len());
        assert_eq!(fields, Some(2));
        let cmd = first
            .column_by_name(col::PROCESS_COMMAND_LINE)
            .map(|c| c.as_string::<i32>().value(2).to_string());
        assert_eq!(cmd.as_deref(), Some("cmd.exe /c echo 2"));
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
