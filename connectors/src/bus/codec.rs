//! How a batch travels on either bus: its rows as one Arrow IPC stream (schema and one
//! record batch), its provenance as a small header beside it.

use std::io::Cursor;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow::ipc::CompressionType;
use vedette_core::batch::EventBatch;
use vedette_core::schema::{col, SCHEMA_VERSION, SCHEMA_VERSION_KEY};
use vedette_core::CoreError;

/// Provenance carried beside a batch's rows: in the embedded log's record header, in
/// Kafka message headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader {
    /// Version of the batch's schema (the event schema's, or the alert schema's).
    pub schema_version: u16,
    /// Tenant owning every row.
    pub tenant: String,
    /// Source that received the rows.
    pub source: String,
    /// The one dataset of every row, or empty when the rows mix datasets.
    pub dataset: String,
    /// When the batch was built, Unix ms UTC.
    pub ingest_time_ms: i64,
}

impl BatchHeader {
    /// The header describing `batch`.
    pub fn of(batch: &EventBatch) -> Self {
        Self {
            schema_version: schema_version_of(&batch.records),
            tenant: batch.tenant.clone(),
            source: batch.source.clone(),
            dataset: single_dataset(&batch.records).unwrap_or_default(),
            ingest_time_ms: batch.ingest_time_ms,
        }
    }
}

/// The schema version a batch's schema metadata declares (the event schema's if none).
fn schema_version_of(records: &RecordBatch) -> u16 {
    records
        .schema_ref()
        .metadata()
        .get(SCHEMA_VERSION_KEY)
        .and_then(|v| v.parse().ok())
        .unwrap_or(SCHEMA_VERSION)
}

/// The dataset of every row, when the batch has an `event.dataset` column holding one
/// value only.
fn single_dataset(records: &RecordBatch) -> Option<String> {
    let column = records.column_by_name(col::EVENT_DATASET)?;
    if column.data_type() != &DataType::Utf8 || column.null_count() > 0 || column.is_empty() {
        return None;
    }
    let values = column.as_string::<i32>();
    let first = values.value(0);
    values
        .iter()
        .all(|v| v == Some(first))
        .then(|| first.to_string())
}

/// Encodes rows as an Arrow IPC stream, uncompressed (Kafka compresses whole messages).
pub fn encode_records(records: &RecordBatch) -> Result<Vec<u8>, CoreError> {
    encode_records_with(records, None)
}

/// Encodes rows as an Arrow IPC stream whose buffers are compressed with `compression`
/// (the first record format of the embedded log had LZ4-framed buffers).
pub fn encode_records_with(
    records: &RecordBatch,
    compression: Option<CompressionType>,
) -> Result<Vec<u8>, CoreError> {
    let mut out = Vec::with_capacity(records.get_array_memory_size() / 2 + 1024);
    write_records(records, compression, &mut out)?;
    Ok(out)
}

/// Encodes rows as an uncompressed Arrow IPC stream into `out`, replacing what it held:
/// a producer reuses one buffer from batch to batch.
pub fn encode_records_into(records: &RecordBatch, out: &mut Vec<u8>) -> Result<(), CoreError> {
    out.clear();
    write_records(records, None, out)
}

fn write_records(
    records: &RecordBatch,
    compression: Option<CompressionType>,
    out: &mut Vec<u8>,
) -> Result<(), CoreError> {
    let options = IpcWriteOptions::default().try_with_compression(compression)?;
    let mut writer = StreamWriter::try_new_with_options(out, records.schema_ref(), options)?;
    writer.write(records)?;
    writer.finish()?;
    Ok(())
}

/// Encodes rows as one or more IPC streams of at most `max_bytes` each, halving the
/// rows until each part fits. A single row larger than `max_bytes` is an error.
pub fn encode_to_fit(
    records: &RecordBatch,
    max_bytes: usize,
    compression: Option<CompressionType>,
) -> Result<Vec<Vec<u8>>, CoreError> {
    let encoded = encode_records_with(records, compression)?;
    if encoded.len() <= max_bytes {
        return Ok(vec![encoded]);
    }
    let rows = records.num_rows();
    if rows <= 1 {
        return Err(CoreError::BadInput(format!(
            "one event encodes to {} bytes, more than the bus record limit of {max_bytes}",
            encoded.len()
        )));
    }
    let half = rows / 2;
    let mut parts = encode_to_fit(&records.slice(0, half), max_bytes, compression)?;
    parts.extend(encode_to_fit(
        &records.slice(half, rows - half),
        max_bytes,
        compression,
    )?);
    Ok(parts)
}

/// Decodes an Arrow IPC stream holding exactly one record batch.
pub fn decode_records(bytes: &[u8]) -> Result<RecordBatch, CoreError> {
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    let first = reader
        .next()
        .transpose()?
        .ok_or_else(|| CoreError::BadInput("bus record holds no record batch".into()))?;
    if reader.next().is_some() {
        return Err(CoreError::BadInput(
            "bus record holds more than one record batch".into(),
        ));
    }
    Ok(first)
}

/// Rebuilds the batch a record carried.
pub fn decode_batch(header: &BatchHeader, payload: &[u8]) -> Result<EventBatch, CoreError> {
    let records = decode_records(payload)?;
    Ok(EventBatch::new(
        records,
        header.source.clone(),
        header.tenant.clone(),
        header.ingest_time_ms,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_core::event::{Event, EventBatchBuilder};

    fn batch(datasets: &[&str]) -> EventBatch {
        let mut b = EventBatchBuilder::new();
        for (i, d) in datasets.iter().enumerate() {
            b.append(&Event {
                id: format!("e{i}"),
                dataset: (*d).into(),
                message: Some(format!("{i:>2000}")),
                ..Event::default()
            });
        }
        EventBatch::new(b.finish().unwrap(), "test", "acme", 42)
    }

    #[test]
    fn rows_round_trip() {
        let b = batch(&["syslog", "syslog"]);
        let bytes = encode_records(&b.records).unwrap();
        let header = BatchHeader::of(&b);
        assert_eq!(header.dataset, "syslog");
        assert_eq!(header.schema_version, SCHEMA_VERSION);
        let back = decode_batch(&header, &bytes).unwrap();
        assert_eq!(back.records, b.records);
        assert_eq!((back.tenant.as_str(), back.ingest_time_ms), ("acme", 42));
    }

    #[test]
    fn mixed_datasets_leave_the_header_empty() {
        assert_eq!(BatchHeader::of(&batch(&["a", "b"])).dataset, "");
    }

    #[test]
    fn big_batches_split_to_fit() {
        let names: Vec<String> = (0..64).map(|i| format!("d{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let b = batch(&refs);
        let whole = encode_records(&b.records).unwrap().len();
        let parts = encode_to_fit(&b.records, whole / 3 + 10_000, None).unwrap();
        assert!(parts.len() >= 3);
        let rows: usize = parts
            .iter()
            .map(|p| decode_records(p).unwrap().num_rows())
            .sum();
        assert_eq!(rows, 64);
        assert!(encode_to_fit(&b.records, 10, None).is_err());
        let lz4 = encode_records_with(&b.records, Some(CompressionType::LZ4_FRAME)).unwrap();
        assert!(lz4.len() < whole, "{} >= {whole}", lz4.len());
        assert_eq!(decode_records(&lz4).unwrap(), b.records);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode_records(b"not arrow").is_err());
        assert!(decode_records(&[]).is_err());
    }
}
