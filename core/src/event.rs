//! One normalized event as a row, and the builder that turns rows into an Arrow batch.
//!
//! Parsers fill an [`Event`] (or a borrowed [`Row`]) per input record and append it to
//! an [`EventBatchBuilder`]; the builder writes straight into Arrow column builders, so
//! finishing a batch copies nothing.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, Int64Builder, ListBuilder, MapBuilder, MapFieldNames,
    RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};

use crate::error::CoreError;
pub use crate::row::{IntCol, Row, TextCol};
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
    /// Every flag.
    pub const ALL: [&str; 6] = [
        TIMEZONE_MISSING,
        TIMESTAMP_MISSING,
        TIMESTAMP_INVALID,
        YEAR_INFERRED,
        FIELDS_TRUNCATED,
        PAYLOAD_TRUNCATED,
    ];
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

    /// The event's common columns as a [`Row`] borrowing from it.
    pub fn as_row(&self) -> Row<'_> {
        use TextCol::*;
        let mut row = Row::default();
        row.timestamp_ms = self.timestamp_ms;
        row.ingested_ms = self.ingested_ms;
        for tag in &self.tags {
            row.add_tag(tag);
        }
        row.payload = self.payload.as_deref().map(Cow::Borrowed);
        row.set(Id, self.id.as_str());
        row.set(Dataset, self.dataset.as_str());
        row.set(Tenant, self.tenant.as_str());
        for (column, value) in [
            (Kind, &self.kind),
            (Category, &self.category),
            (Action, &self.action),
            (Outcome, &self.outcome),
            (Code, &self.code),
            (Provider, &self.provider),
            (HostName, &self.host_name),
            (HostIp, &self.host_ip),
            (UserName, &self.user_name),
            (UserDomain, &self.user_domain),
            (ProcessExecutable, &self.process_executable),
            (ProcessCommandLine, &self.process_command_line),
            (ParentExecutable, &self.parent_executable),
            (ParentCommandLine, &self.parent_command_line),
            (FilePath, &self.file_path),
            (FileSha256, &self.file_sha256),
            (SourceIp, &self.source_ip),
            (DestinationIp, &self.destination_ip),
            (NetworkTransport, &self.network_transport),
            (UrlFull, &self.url_full),
            (DnsQuestionName, &self.dns_question_name),
            (CloudProvider, &self.cloud_provider),
            (CloudAccountId, &self.cloud_account_id),
            (CloudRegion, &self.cloud_region),
            (Message, &self.message),
        ] {
            row.set_opt(column, value.as_deref());
        }
        for (column, value) in [
            (IntCol::Severity, self.severity),
            (IntCol::ProcessPid, self.process_pid),
            (IntCol::SourcePort, self.source_port),
            (IntCol::DestinationPort, self.destination_port),
        ] {
            row.set_int(column, value);
        }
        row
    }
}

/// How a text column is filled when the row has no value for it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WhenMissing {
    /// Null.
    Null,
    /// `""` (the schema requires the column).
    Empty,
    /// [`DEFAULT_TENANT`], also for an empty value (the `tenant` column).
    DefaultTenant,
}

/// A text column's builder. Nulls are appended by the run when the next value (or the
/// end of the batch) comes, not one call each: most rows leave most columns empty.
struct TextColumn {
    builder: StringBuilder,
    /// The row's column it takes.
    column: TextCol,
    /// What it holds for a row without a value.
    missing: WhenMissing,
    /// Nulls not appended yet.
    pending_nulls: usize,
}

impl TextColumn {
    /// Appends a value after the nulls pending before it.
    #[inline]
    fn push(&mut self, value: &str) {
        if self.pending_nulls > 0 {
            self.builder.append_nulls(self.pending_nulls);
            self.pending_nulls = 0;
        }
        self.builder.append_value(value);
    }

    /// Appends the row's value for this column.
    #[inline]
    fn append(&mut self, row: &Row<'_>) {
        match (row.text(self.column), self.missing) {
            (Some(""), WhenMissing::DefaultTenant) => self.push(DEFAULT_TENANT),
            (Some(v), _) => self.push(v),
            (None, WhenMissing::Null) => self.pending_nulls += 1,
            (None, WhenMissing::Empty) => self.push(""),
            (None, WhenMissing::DefaultTenant) => self.push(DEFAULT_TENANT),
        }
    }

    /// The column's array; the builder starts again at the size this batch used.
    fn finish(&mut self, rows: usize) -> ArrayRef {
        self.builder
            .append_nulls(std::mem::take(&mut self.pending_nulls));
        let bytes = self.builder.values_slice().len();
        let array = self.builder.finish();
        self.builder = text_builder(rows, bytes);
        Arc::new(array)
    }
}

/// The most bytes a column's builder is made with for the next batch: 32 MiB of text is
/// a batch of 8192 rows of 4 KiB each.
const KEPT_BYTES: usize = 32 << 20;

/// The most values (rows, or entries of the `fields` map) a column's builder is made
/// with for the next batch: 8 MiB for a column of 8-byte values, and room for 8192 rows
/// of 128 fields each.
const KEPT_VALUES: usize = 1 << 20;

/// The capacity a builder is made with for the next batch, from what the last one
/// used: an eighth more, so a slightly larger batch does not double (and copy) a
/// buffer near its end. A finished Arrow builder keeps no capacity of its own, and
/// growing from nothing copies each buffer about twice.
///
/// It is capped at `cap`, so one huge batch (a whole EVTX file read as one piece) does
/// not leave a builder holding that much for good: batches past the cap grow as before.
fn headroom(used: usize, cap: usize) -> usize {
    (used + used / 8 + 16).min(cap)
}

/// [`headroom`] for a count of values.
fn values_headroom(values: usize) -> usize {
    headroom(values, KEPT_VALUES)
}

/// [`headroom`] for a count of bytes.
fn bytes_headroom(bytes: usize) -> usize {
    headroom(bytes, KEPT_BYTES)
}

/// Names of the parts of the `fields` map column.
fn map_field_names() -> MapFieldNames {
    MapFieldNames {
        entry: "entries".into(),
        key: "keys".into(),
        value: "values".into(),
    }
}

/// Where a column of the schema is built: the builders are grouped by kind, so
/// appending a row runs one loop per kind rather than a dispatch per column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Timestamp,
    Ingested,
    Text(usize),
    Integer(usize),
    Tags,
    Fields,
    Payload,
}

/// Appends rows ([`Row`]s with their fields, or whole [`Event`]s) into Arrow column
/// builders and finishes them as one record batch of [`event_schema`].
pub struct EventBatchBuilder {
    timestamp: TimestampMillisecondBuilder,
    ingested: TimestampMillisecondBuilder,
    /// In [`TextCol`] order.
    texts: Vec<TextColumn>,
    /// In [`IntCol`] order.
    ints: Vec<Int64Builder>,
    tags: ListBuilder<StringBuilder>,
    fields: MapBuilder<StringBuilder, StringBuilder>,
    payload: BinaryBuilder,
    /// Each schema column's builder, in schema order.
    slots: Vec<Slot>,
    rows: usize,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// A string builder for about `rows` values of `bytes` bytes in all, with headroom.
fn text_builder(rows: usize, bytes: usize) -> StringBuilder {
    StringBuilder::with_capacity(values_headroom(rows), bytes_headroom(bytes))
}

/// The sizes of a string array: values and bytes (0 when `array` is not one).
fn string_sizes(array: &dyn Array) -> (usize, usize) {
    array
        .as_string_opt::<i32>()
        .map_or((0, 0), |s| (s.len(), s.values().len()))
}

/// A timestamp builder in UTC for about `rows` values.
fn time_builder(rows: usize) -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::with_capacity(values_headroom(rows)).with_timezone(UTC)
}

impl EventBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        let mut texts = Vec::with_capacity(TextCol::COUNT);
        let mut ints = Vec::with_capacity(IntCol::COUNT);
        let slots = EVENT_COLUMNS
            .iter()
            .map(|c| match c.kind {
                ColumnKind::Timestamp if c.name == col::EVENT_INGESTED => Slot::Ingested,
                ColumnKind::Timestamp => Slot::Timestamp,
                ColumnKind::Text => {
                    // Every text column has its index, in order (a test in `row` checks it).
                    let column = TextCol::of(c.name).unwrap_or(TextCol::Message);
                    debug_assert_eq!(column as usize, texts.len(), "{}", c.name);
                    texts.push(TextColumn {
                        builder: StringBuilder::new(),
                        column,
                        missing: if column == TextCol::Tenant {
                            WhenMissing::DefaultTenant
                        } else if c.required {
                            WhenMissing::Empty
                        } else {
                            WhenMissing::Null
                        },
                        pending_nulls: 0,
                    });
                    Slot::Text(texts.len() - 1)
                }
                ColumnKind::Integer => {
                    debug_assert_eq!(
                        IntCol::of(c.name).map(|i| i as usize),
                        Some(ints.len()),
                        "{}",
                        c.name
                    );
                    ints.push(Int64Builder::new());
                    Slot::Integer(ints.len() - 1)
                }
                ColumnKind::TextList => Slot::Tags,
                ColumnKind::FieldMap => Slot::Fields,
                ColumnKind::Binary => Slot::Payload,
            })
            .collect();
        Self {
            timestamp: time_builder(0),
            ingested: time_builder(0),
            texts,
            ints,
            tags: ListBuilder::new(StringBuilder::new()),
            fields: MapBuilder::new(
                Some(map_field_names()),
                StringBuilder::new(),
                StringBuilder::new(),
            ),
            payload: BinaryBuilder::new(),
            slots,
            rows: 0,
        }
    }

    /// Number of rows appended since the last finish.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last finish.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// About how many bytes the rows appended since the last finish hold: their text
    /// and binary values, and eight for each fixed-width value (offsets and validity
    /// bits aside). A pipeline flushes at a size with it, so a batch of large records
    /// stays bounded in memory whatever its row count. It sums a few lengths: cheap to
    /// ask after every chunk, not after every row.
    pub fn data_bytes(&mut self) -> usize {
        let texts: usize = self
            .texts
            .iter()
            .map(|t| t.builder.values_slice().len())
            .sum();
        let (keys, values) = self.fields.entries();
        let fields = keys.values_slice().len() + values.values_slice().len();
        let tags = self.tags.values_ref().values_slice().len();
        let fixed = self.rows * 8 * (2 + IntCol::COUNT);
        texts + fields + tags + self.payload.values_slice().len() + fixed
    }

    /// Appends one event as a row.
    pub fn append(&mut self, event: &Event) {
        self.append_row(
            &event.as_row(),
            event.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
    }

    /// Appends one row: its common columns and, for the `fields` map, `fields` in order.
    /// A text column the schema requires and the row lacks is written empty, except
    /// `tenant`, which is then [`DEFAULT_TENANT`].
    pub fn append_row<'f, I>(&mut self, row: &Row<'_>, fields: I)
    where
        I: IntoIterator<Item = (&'f str, &'f str)>,
    {
        self.timestamp.append_value(row.timestamp_ms);
        self.ingested.append_value(row.ingested_ms);
        for text in &mut self.texts {
            text.append(row);
        }
        for (i, b) in self.ints.iter_mut().enumerate() {
            b.append_option(row.int_at(i));
        }
        for t in row.tags() {
            self.tags.values().append_value(t);
        }
        self.tags.append(true);
        for (k, v) in fields {
            self.fields.keys().append_value(k);
            self.fields.values().append_value(v);
        }
        // Cannot fail: keys and values were appended in pairs above.
        let _ = self.fields.append(true);
        self.payload.append_option(row.payload.as_deref());
        self.rows += 1;
    }

    /// Finishes the appended rows as a record batch and resets the builder. Every
    /// builder is reset even when the batch cannot be made, so the next rows start a
    /// batch of their own.
    pub fn finish(&mut self) -> Result<RecordBatch, CoreError> {
        let rows = std::mem::take(&mut self.rows);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.slots.len());
        // A slot without its builder cannot happen (both are made from the schema in
        // `new`); should it, the other builders are still finished before the error.
        let mut missing = None;
        for slot in &self.slots {
            arrays.push(match *slot {
                Slot::Timestamp => {
                    let array = self.timestamp.finish();
                    self.timestamp = time_builder(rows);
                    Arc::new(array)
                }
                Slot::Ingested => {
                    let array = self.ingested.finish();
                    self.ingested = time_builder(rows);
                    Arc::new(array)
                }
                Slot::Text(i) => match self.texts.get_mut(i) {
                    Some(text) => text.finish(rows),
                    None => {
                        missing.get_or_insert(format!("no text column {i}"));
                        continue;
                    }
                },
                Slot::Integer(i) => match self.ints.get_mut(i) {
                    Some(b) => {
                        let array = b.finish();
                        *b = Int64Builder::with_capacity(values_headroom(rows));
                        Arc::new(array)
                    }
                    None => {
                        missing.get_or_insert(format!("no integer column {i}"));
                        continue;
                    }
                },
                Slot::Tags => {
                    let array = self.tags.finish();
                    let (items, bytes) = string_sizes(array.values().as_ref());
                    self.tags = ListBuilder::with_capacity(
                        text_builder(items, bytes),
                        values_headroom(rows),
                    );
                    Arc::new(array)
                }
                Slot::Fields => {
                    let array = self.fields.finish();
                    let entries = array.entries();
                    let keys = string_sizes(entries.column(0).as_ref());
                    let values = string_sizes(entries.column(1).as_ref());
                    self.fields = MapBuilder::with_capacity(
                        Some(map_field_names()),
                        text_builder(keys.0, keys.1),
                        text_builder(values.0, values.1),
                        values_headroom(rows),
                    );
                    Arc::new(array)
                }
                Slot::Payload => {
                    let array = self.payload.finish();
                    let bytes = array.values().len();
                    self.payload =
                        BinaryBuilder::with_capacity(values_headroom(rows), bytes_headroom(bytes));
                    Arc::new(array)
                }
            });
        }
        if let Some(missing) = missing {
            return Err(CoreError::Internal(missing));
        }
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
    fn data_bytes_count_every_value_and_start_again_at_finish() -> Result<(), CoreError> {
        let mut b = EventBatchBuilder::new();
        assert_eq!(b.data_bytes(), 0);
        let event = sample(0);
        b.append(&event);
        let text: usize = [
            event.id.len(),
            event.dataset.len(),
            DEFAULT_TENANT.len(),
            event.process_command_line.as_ref().map_or(0, String::len),
        ]
        .iter()
        .sum();
        let fields: usize = event.fields.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert_eq!(b.data_bytes(), text + fields + 8 * 6);
        let mut big = sample(1);
        big.payload = Some(vec![7; 100_000]);
        big.add_tag(tag::PAYLOAD_TRUNCATED);
        b.append(&big);
        assert!(b.data_bytes() >= 2 * (text + fields) + 100_000 + tag::PAYLOAD_TRUNCATED.len());
        b.finish()?;
        assert_eq!(b.data_bytes(), 0);
        Ok(())
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
    fn runs_of_empty_text_columns_stay_in_their_rows() -> Result<(), CoreError> {
        // Command lines on rows 1 and 4 of 6; nulls before, between and after them,
        // then a second batch that starts with a null.
        let mut b = EventBatchBuilder::new();
        for i in 0..6 {
            let mut e = sample(i);
            if i != 1 && i != 4 {
                e.process_command_line = None;
            }
            b.append(&e);
        }
        let first = b.finish()?;
        let mut e = sample(9);
        e.process_command_line = None;
        b.append(&e);
        b.append(&sample(10));
        let second = b.finish()?;
        let values = |batch: &RecordBatch| -> Vec<Option<String>> {
            batch
                .column_by_name(col::PROCESS_COMMAND_LINE)
                .map(|c| {
                    c.as_string::<i32>()
                        .iter()
                        .map(|v| v.map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let cmd = |i: i64| Some(format!("cmd.exe /c echo {i}"));
        assert_eq!(values(&first), vec![None, cmd(1), None, None, cmd(4), None]);
        assert_eq!(values(&second), vec![None, cmd(10)]);
        Ok(())
    }

    #[test]
    fn every_column_has_a_builder_of_its_own() {
        let builder = EventBatchBuilder::new();
        let distinct: std::collections::HashSet<Slot> = builder.slots.iter().copied().collect();
        assert_eq!(distinct.len(), EVENT_COLUMNS.len());
        assert_eq!(builder.texts.len(), TextCol::COUNT);
        assert_eq!(builder.ints.len(), IntCol::COUNT);
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
