//! The floors under the ingest path: what two steps every parser of the event schema
//! takes cost alone, on the same input as the parser.
//!
//! - `floor-append`: appending the input's events, already normalized, into an
//!   [`EventBatchBuilder`] and finishing a batch every [`BATCH_ROWS`] rows: the Arrow
//!   side of the path, with no parsing. The events are the ones the parser made, read
//!   back from its batches; their text lies in one buffer in row order, as a parser's
//!   lies in the record it reads, and each row is set up from it as a parser sets up
//!   its [`Row`].
//! - `floor-id`: the event id ([`EventId::of`]) of the first [`ID_WINDOW`] bytes of
//!   records, hashed over and over up to about the input's size: the records are in
//!   cache, as they are when a parser, having read one, makes its id.
//!
//! Any parser of this schema does both, whatever else it does, so their times add up to
//! a lower bound of its time.

use std::ops::Range;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use vedette_core::event::{tag, EventBatchBuilder, DEFAULT_TENANT};
use vedette_core::id::EventId;
use vedette_core::row::{IntCol, Row, TextCol};
use vedette_core::schema::col;

use super::BATCH_ROWS;

/// Bytes of records `floor-id` hashes over and over.
pub(crate) const ID_WINDOW: usize = 2 << 20;

/// One event: where its values lie in [`Prepared::text`].
#[derive(Default)]
struct PreparedRow {
    timestamp_ms: i64,
    ingested_ms: i64,
    texts: Vec<(TextCol, Range<usize>)>,
    ints: Vec<(IntCol, i64)>,
    tags: Vec<&'static str>,
    /// Its entries of [`Prepared::fields`].
    fields: Range<usize>,
}

/// Normalized events ready to append: every value in one text buffer.
#[derive(Default)]
pub(crate) struct Prepared {
    text: String,
    /// Key and value of every event's fields, in order.
    fields: Vec<(Range<usize>, Range<usize>)>,
    rows: Vec<PreparedRow>,
}

impl Prepared {
    /// Copies `value` into the text buffer.
    fn keep(&mut self, value: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(value);
        start..self.text.len()
    }

    /// Adds the events of `batch`, every column as the parser set it (the payload
    /// column, which no replicated input fills, is left out).
    pub(crate) fn add(&mut self, batch: &RecordBatch) {
        let schema = batch.schema();
        let column =
            |name: &str| batch.column(schema.index_of(name).unwrap_or_else(|e| panic!("{e}")));
        for i in 0..batch.num_rows() {
            let mut row = PreparedRow {
                timestamp_ms: column(col::TIMESTAMP)
                    .as_primitive::<TimestampMillisecondType>()
                    .value(i),
                ingested_ms: column(col::EVENT_INGESTED)
                    .as_primitive::<TimestampMillisecondType>()
                    .value(i),
                ..PreparedRow::default()
            };
            for (field, array) in schema.fields().iter().zip(batch.columns()) {
                if array.is_null(i) {
                    continue;
                }
                let name = field.name().as_str();
                if let Some(text) = TextCol::of(name) {
                    let range = self.keep(array.as_string::<i32>().value(i));
                    row.texts.push((text, range));
                } else if let Some(int) = IntCol::of(name) {
                    row.ints
                        .push((int, array.as_primitive::<Int64Type>().value(i)));
                }
            }
            let tags = column(col::TAGS).as_list::<i32>().value(i);
            for t in tags.as_string::<i32>().iter().flatten() {
                if let Some(known) = tag::ALL.iter().find(|k| **k == t) {
                    row.tags.push(known);
                }
            }
            let entries = column(col::FIELDS).as_map().value(i);
            let (keys, values) = (
                entries.column(0).as_string::<i32>(),
                entries.column(1).as_string::<i32>(),
            );
            let start = self.fields.len();
            for j in 0..entries.len() {
                let pair = (self.keep(keys.value(j)), self.keep(values.value(j)));
                self.fields.push(pair);
            }
            row.fields = start..self.fields.len();
            self.rows.push(row);
        }
    }

    /// Appends every event into `builder`, finishing a batch every [`BATCH_ROWS`] rows
    /// and at the end; returns the rows written.
    pub(crate) fn append_all(&self, builder: &mut EventBatchBuilder) -> usize {
        let text = |r: &Range<usize>| self.text.get(r.clone()).unwrap_or_default();
        let mut written = 0;
        for (i, prepared) in self.rows.iter().enumerate() {
            let mut row = Row::default();
            row.timestamp_ms = prepared.timestamp_ms;
            row.ingested_ms = prepared.ingested_ms;
            for (column, range) in &prepared.texts {
                row.set(*column, text(range));
            }
            for (column, value) in &prepared.ints {
                row.set_int(*column, Some(*value));
            }
            for t in &prepared.tags {
                row.add_tag(t);
            }
            let fields = self.fields[prepared.fields.clone()]
                .iter()
                .map(|(k, v)| (text(k), text(v)));
            builder.append_row(&row, fields);
            if builder.len() >= BATCH_ROWS || i + 1 == self.rows.len() {
                let batch = builder
                    .finish()
                    .unwrap_or_else(|e| panic!("finishing a batch: {e}"));
                written += batch.num_rows();
                std::hint::black_box(batch);
            }
        }
        written
    }
}

/// The first records of `bytes`, their newlines left out, up to [`ID_WINDOW`] bytes.
pub(crate) fn id_window(bytes: &[u8]) -> Vec<&[u8]> {
    let mut taken = 0;
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .take_while(|l| {
            taken += l.len() + 1;
            taken <= ID_WINDOW
        })
        .collect()
}

/// The event id of every record of `window` under `dataset`, `rounds` times over;
/// returns how many ids.
pub(crate) fn id_all(window: &[&[u8]], rounds: usize, dataset: &str) -> usize {
    for _ in 0..rounds {
        for record in window {
            std::hint::black_box(EventId::of(DEFAULT_TENANT, dataset, record));
        }
    }
    window.len() * rounds
}
