//! The normalized event schema: one Arrow schema for every event Vedette carries.
//!
//! Columns are ECS-style names (`process.command_line`), with the dots kept in the
//! column name itself (not nested structs) so SQL, Parquet and ClickHouse all see one
//! flat table. Every original field of a record is also kept in the `fields` map under
//! its original (flattened) name, so Sigma rules written for native names resolve.
//! `docs/schema.md` documents each column; a test keeps the two in step.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the event schema; bumped whenever a column is added, removed or retyped.
pub const SCHEMA_VERSION: u16 = 1;

/// Schema metadata key that carries [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "vedette.schema_version";

/// Time zone of every timestamp column.
pub const UTC: &str = "UTC";

/// The Arrow type of `@timestamp` and other event times: milliseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// Names of the columns of the event schema, in schema order.
pub mod col {
    /// When the event happened (UTC, milliseconds).
    pub const TIMESTAMP: &str = "@timestamp";
    /// Stable unique id of the input record (same input record, same id).
    pub const EVENT_ID: &str = "event.id";
    /// Which parser produced the event, e.g. `windows.sysmon`.
    pub const EVENT_DATASET: &str = "event.dataset";
    /// ECS event kind: `event`, `alert`, `metric`, `state`.
    pub const EVENT_KIND: &str = "event.kind";
    /// ECS event category, e.g. `process`, `network`, `authentication`.
    pub const EVENT_CATEGORY: &str = "event.category";
    /// What happened, in the source's words, e.g. `process-created`.
    pub const EVENT_ACTION: &str = "event.action";
    /// `success`, `failure` or `unknown`.
    pub const EVENT_OUTCOME: &str = "event.outcome";
    /// Severity as the source gives it, as a number.
    pub const EVENT_SEVERITY: &str = "event.severity";
    /// The source's own event code, e.g. Windows EventID `4688`.
    pub const EVENT_CODE: &str = "event.code";
    /// The software that wrote the event, e.g. `Microsoft-Windows-Sysmon`.
    pub const EVENT_PROVIDER: &str = "event.provider";
    /// When Vedette received the event (UTC, milliseconds).
    pub const EVENT_INGESTED: &str = "event.ingested";
    /// Host the event is about.
    pub const HOST_NAME: &str = "host.name";
    /// IP address of that host, canonical text form.
    pub const HOST_IP: &str = "host.ip";
    /// User the event is about.
    pub const USER_NAME: &str = "user.name";
    /// Domain of that user.
    pub const USER_DOMAIN: &str = "user.domain";
    /// Process id.
    pub const PROCESS_PID: &str = "process.pid";
    /// Full path of the process executable.
    pub const PROCESS_EXECUTABLE: &str = "process.executable";
    /// Full command line of the process.
    pub const PROCESS_COMMAND_LINE: &str = "process.command_line";
    /// Full path of the parent process executable.
    pub const PROCESS_PARENT_EXECUTABLE: &str = "process.parent.executable";
    /// Full command line of the parent process.
    pub const PROCESS_PARENT_COMMAND_LINE: &str = "process.parent.command_line";
    /// Path of the file the event is about.
    pub const FILE_PATH: &str = "file.path";
    /// SHA-256 of that file, lowercase hex.
    pub const FILE_HASH_SHA256: &str = "file.hash.sha256";
    /// Source address of a network event.
    pub const SOURCE_IP: &str = "source.ip";
    /// Source port of a network event.
    pub const SOURCE_PORT: &str = "source.port";
    /// Destination address of a network event.
    pub const DESTINATION_IP: &str = "destination.ip";
    /// Destination port of a network event.
    pub const DESTINATION_PORT: &str = "destination.port";
    /// Transport protocol, lowercase (`tcp`, `udp`, `icmp`).
    pub const NETWORK_TRANSPORT: &str = "network.transport";
    /// Full URL.
    pub const URL_FULL: &str = "url.full";
    /// DNS name queried.
    pub const DNS_QUESTION_NAME: &str = "dns.question.name";
    /// Cloud provider (`aws`, `gcp`, `azure`, `okta`).
    pub const CLOUD_PROVIDER: &str = "cloud.provider";
    /// Cloud account, project or subscription id.
    pub const CLOUD_ACCOUNT_ID: &str = "cloud.account.id";
    /// Cloud region.
    pub const CLOUD_REGION: &str = "cloud.region";
    /// Tenant that owns the event.
    pub const TENANT: &str = "tenant";
    /// The original line or rendered message.
    pub const MESSAGE: &str = "message";
    /// Processing flags: how the record was read (e.g. `timezone_missing`).
    pub const TAGS: &str = "tags";
    /// Every original field of the record, by original flattened name.
    pub const FIELDS: &str = "fields";
    /// Optional binary content (script block, uploaded file) for content scanning.
    pub const PAYLOAD: &str = "payload";
}

/// How a column is typed, for builders and docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// UTC millisecond timestamp.
    Timestamp,
    /// UTF-8 string.
    Text,
    /// 64-bit signed integer.
    Integer,
    /// List of UTF-8 strings.
    TextList,
    /// Map of UTF-8 keys to UTF-8 values.
    FieldMap,
    /// Raw bytes.
    Binary,
}

/// One column of the event schema with its documentation.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    /// Column name.
    pub name: &'static str,
    /// Arrow type family.
    pub kind: ColumnKind,
    /// Whether every row must carry a value.
    pub required: bool,
    /// One-line description (mirrored in `docs/schema.md`).
    pub doc: &'static str,
}

const fn spec(
    name: &'static str,
    kind: ColumnKind,
    required: bool,
    doc: &'static str,
) -> ColumnSpec {
    ColumnSpec {
        name,
        kind,
        required,
        doc,
    }
}

/// Every column of the event schema, in order.
pub const EVENT_COLUMNS: &[ColumnSpec] = {
    use ColumnKind::*;
    &[
        spec(
            col::TIMESTAMP,
            Timestamp,
            true,
            "when the event happened, UTC, ms",
        ),
        spec(
            col::EVENT_ID,
            Text,
            true,
            "stable unique id of the input record",
        ),
        spec(
            col::EVENT_DATASET,
            Text,
            true,
            "parser that produced the event",
        ),
        spec(col::EVENT_KIND, Text, false, "ECS event kind"),
        spec(col::EVENT_CATEGORY, Text, false, "ECS event category"),
        spec(
            col::EVENT_ACTION,
            Text,
            false,
            "what happened, in the source's words",
        ),
        spec(
            col::EVENT_OUTCOME,
            Text,
            false,
            "success, failure or unknown",
        ),
        spec(col::EVENT_SEVERITY, Integer, false, "severity as a number"),
        spec(col::EVENT_CODE, Text, false, "the source's own event code"),
        spec(
            col::EVENT_PROVIDER,
            Text,
            false,
            "software that wrote the event",
        ),
        spec(
            col::EVENT_INGESTED,
            Timestamp,
            true,
            "when Vedette received it, UTC, ms",
        ),
        spec(col::HOST_NAME, Text, false, "host the event is about"),
        spec(col::HOST_IP, Text, false, "IP address of that host"),
        spec(col::USER_NAME, Text, false, "user the event is about"),
        spec(col::USER_DOMAIN, Text, false, "domain of that user"),
        spec(col::PROCESS_PID, Integer, false, "process id"),
        spec(
            col::PROCESS_EXECUTABLE,
            Text,
            false,
            "process executable path",
        ),
        spec(
            col::PROCESS_COMMAND_LINE,
            Text,
            false,
            "process command line",
        ),
        spec(
            col::PROCESS_PARENT_EXECUTABLE,
            Text,
            false,
            "parent executable path",
        ),
        spec(
            col::PROCESS_PARENT_COMMAND_LINE,
            Text,
            false,
            "parent command line",
        ),
        spec(col::FILE_PATH, Text, false, "file path"),
        spec(
            col::FILE_HASH_SHA256,
            Text,
            false,
            "file SHA-256, lowercase hex",
        ),
        spec(col::SOURCE_IP, Text, false, "network source address"),
        spec(col::SOURCE_PORT, Integer, false, "network source port"),
        spec(
            col::DESTINATION_IP,
            Text,
            false,
            "network destination address",
        ),
        spec(
            col::DESTINATION_PORT,
            Integer,
            false,
            "network destination port",
        ),
        spec(
            col::NETWORK_TRANSPORT,
            Text,
            false,
            "transport protocol, lowercase",
        ),
        spec(col::URL_FULL, Text, false, "full URL"),
        spec(col::DNS_QUESTION_NAME, Text, false, "DNS name queried"),
        spec(col::CLOUD_PROVIDER, Text, false, "cloud provider"),
        spec(
            col::CLOUD_ACCOUNT_ID,
            Text,
            false,
            "cloud account, project or subscription",
        ),
        spec(col::CLOUD_REGION, Text, false, "cloud region"),
        spec(col::TENANT, Text, true, "tenant that owns the event"),
        spec(
            col::MESSAGE,
            Text,
            false,
            "original line or rendered message",
        ),
        spec(
            col::TAGS,
            TextList,
            true,
            "processing flags, e.g. timezone_missing",
        ),
        spec(
            col::FIELDS,
            FieldMap,
            true,
            "every original field by original name",
        ),
        spec(
            col::PAYLOAD,
            Binary,
            false,
            "binary content for content scanning",
        ),
    ]
};

/// Arrow type of the `fields` map column: UTF-8 keys to nullable UTF-8 values.
pub fn field_map_type() -> DataType {
    DataType::Map(Arc::new(field_map_entries()), false)
}

fn field_map_entries() -> Field {
    Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    )
}

fn arrow_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Timestamp => timestamp_type(),
        ColumnKind::Text => DataType::Utf8,
        ColumnKind::Integer => DataType::Int64,
        ColumnKind::TextList => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        ColumnKind::FieldMap => field_map_type(),
        ColumnKind::Binary => DataType::Binary,
    }
}

/// The event schema, built once and shared.
pub fn event_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let fields: Vec<Field> = EVENT_COLUMNS
                .iter()
                .map(|c| Field::new(c.name, arrow_type(c.kind), !c.required))
                .collect();
            let metadata = [(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string())]
                .into_iter()
                .collect();
            Arc::new(Schema::new_with_metadata(fields, metadata))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_unique() {
        let mut names: Vec<_> = EVENT_COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn schema_carries_version_and_types() {
        let schema = event_schema();
        assert_eq!(
            schema
                .metadata()
                .get(SCHEMA_VERSION_KEY)
                .map(String::as_str),
            Some("1")
        );
        let ts = schema
            .field_with_name(col::TIMESTAMP)
            .map(|f| f.data_type().clone());
        assert_eq!(ts.ok(), Some(timestamp_type()));
        let fields = schema.field_with_name(col::FIELDS).map(|f| f.is_nullable());
        assert_eq!(fields.ok(), Some(false));
        assert_eq!(schema.fields().len(), EVENT_COLUMNS.len());
    }

    /// `docs/schema.md` must list exactly the columns of the schema, in order.
    #[test]
    fn docs_list_every_column_in_order() {
        let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schema.md");
        let doc = std::fs::read_to_string(doc_path).unwrap_or_default();
        let section = doc
            .split("## Event columns")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap_or_default();
        let documented: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let expected: Vec<&str> = EVENT_COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(
            documented, expected,
            "docs/schema.md is out of step with EVENT_COLUMNS"
        );
    }
}
