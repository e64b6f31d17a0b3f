//! The dead letter: an input record Vedette could not process, kept with its reason.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BinaryArray, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::CoreError;
use crate::schema::{timestamp_type, UTC};

/// At most this many bytes of the raw record are kept in a dead letter.
pub const DEAD_LETTER_RAW_CAP: usize = 64 * 1024;

/// One record that could not be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// When it was rejected, Unix milliseconds UTC.
    pub time_ms: i64,
    /// Tenant it was received for.
    pub tenant: String,
    /// Source that received it (e.g. `syslog-udp`, a file path).
    pub source: String,
    /// Parser or stage that rejected it (e.g. `cef`, `bus`).
    pub stage: String,
    /// Position of the record within its source (byte offset, line number or bus offset).
    pub position: u64,
    /// Why it was rejected.
    pub reason: String,
    /// The raw bytes, capped at [`DEAD_LETTER_RAW_CAP`].
    pub raw: Vec<u8>,
    /// Length of the raw record before capping.
    pub raw_len: u64,
}

impl DeadLetter {
    /// A dead letter for `raw`, keeping at most [`DEAD_LETTER_RAW_CAP`] bytes of it.
    pub fn new(
        time_ms: i64,
        tenant: impl Into<String>,
        source: impl Into<String>,
        stage: impl Into<String>,
        position: u64,
        reason: impl Into<String>,
        raw: &[u8],
    ) -> Self {
        Self {
            time_ms,
            tenant: tenant.into(),
            source: source.into(),
            stage: stage.into(),
            position,
            reason: reason.into(),
            raw: raw[..raw.len().min(DEAD_LETTER_RAW_CAP)].to_vec(),
            raw_len: raw.len() as u64,
        }
    }
}

/// Names of the columns of the dead-letter schema.
pub mod dead_letter_col {
    /// Rejection time.
    pub const TIMESTAMP: &str = "@timestamp";
    /// Tenant.
    pub const TENANT: &str = "tenant";
    /// Source.
    pub const SOURCE: &str = "source";
    /// Rejecting stage.
    pub const STAGE: &str = "stage";
    /// Position within the source.
    pub const POSITION: &str = "position";
    /// Reason.
    pub const REASON: &str = "reason";
    /// Raw bytes (capped).
    pub const RAW: &str = "raw";
    /// Raw length before capping.
    pub const RAW_LEN: &str = "raw_len";
}

/// The Arrow schema of stored dead letters.
pub fn dead_letter_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            use dead_letter_col::*;
            Arc::new(Schema::new(vec![
                Field::new(TIMESTAMP, timestamp_type(), false),
                Field::new(TENANT, DataType::Utf8, false),
                Field::new(SOURCE, DataType::Utf8, false),
                Field::new(STAGE, DataType::Utf8, false),
                Field::new(POSITION, DataType::UInt64, false),
                Field::new(REASON, DataType::Utf8, false),
                Field::new(RAW, DataType::Binary, false),
                Field::new(RAW_LEN, DataType::UInt64, false),
            ]))
        })
        .clone()
}

/// Dead letters as one record batch of [`dead_letter_schema`].
pub fn dead_letters_to_batch(letters: &[DeadLetter]) -> Result<RecordBatch, CoreError> {
    let strings = |f: fn(&DeadLetter) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(letters.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values(letters.iter().map(|d| d.time_ms))
                .with_timezone(UTC),
        ),
        strings(|d| &d.tenant),
        strings(|d| &d.source),
        strings(|d| &d.stage),
        Arc::new(UInt64Array::from_iter_values(
            letters.iter().map(|d| d.position),
        )),
        strings(|d| &d.reason),
        Arc::new(BinaryArray::from_iter_values(
            letters.iter().map(|d| d.raw.as_slice()),
        )),
        Arc::new(UInt64Array::from_iter_values(
            letters.iter().map(|d| d.raw_len),
        )),
    ];
    Ok(RecordBatch::try_new(dead_letter_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_are_capped_and_length_kept() {
        let big = vec![b'x'; DEAD_LETTER_RAW_CAP + 10];
        let d = DeadLetter::new(0, "default", "http", "cef", 7, "missing header", &big);
        assert_eq!(d.raw.len(), DEAD_LETTER_RAW_CAP);
        assert_eq!(d.raw_len, (DEAD_LETTER_RAW_CAP + 10) as u64);
    }

    #[test]
    fn dead_letters_build_a_batch() -> Result<(), CoreError> {
        let d = DeadLetter::new(
            1,
            "t",
            "file:/var/log/x",
            "syslog",
            3,
            "no priority",
            b"garbage",
        );
        let batch = dead_letters_to_batch(&[d.clone(), d])?;
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), dead_letter_schema());
        Ok(())
    }
}
