//! Reading a log file into event batches that remember, per row, which record of the
//! file it came from: the 1-based line for line formats, the `EventRecordID` for
//! EVTX, the ordinal otherwise.

use anyhow::Context;
use arrow::array::{Array, AsArray, RecordBatch};
use bytes::Bytes;
use vedette_core::event::{EventBatchBuilder, DEFAULT_TENANT};
use vedette_core::traits::RawChunk;
use vedette_ingest::{detect_format, parser_for, Format, Limits};

use crate::input::InputBytes;

/// Rows per batch.
const BATCH_ROWS: usize = 8192;

/// A batch and the record number of each of its rows.
pub(crate) struct HuntBatch {
    /// The events.
    pub(crate) records: RecordBatch,
    /// Record number per row.
    pub(crate) record_numbers: Vec<u64>,
}

/// What reading one input gave.
pub(crate) struct HuntInput {
    /// The format used.
    pub(crate) format: Format,
    /// The batches.
    pub(crate) batches: Vec<HuntBatch>,
    /// Records that did not parse.
    pub(crate) dead_letters: usize,
}

/// Whether records of `format` are one per line.
fn line_oriented(format: Format, bytes: &[u8]) -> bool {
    match format {
        Format::Evtx | Format::ZeekTsv | Format::Auditd | Format::WindowsXml => false,
        Format::Syslog
        | Format::Cef
        | Format::Leef
        | Format::PanOs
        | Format::FortiGate
        | Format::KeyValue => true,
        // JSON: lines when the first non-blank line is a whole object.
        _ => bytes
            .split(|b| *b == b'\n')
            .map(<[u8]>::trim_ascii)
            .find(|l| !l.is_empty())
            .is_some_and(|l| l.first() == Some(&b'{') && l.last() == Some(&b'}')),
    }
}

/// Parses `input` (named `name`) into batches with record numbers.
pub(crate) fn read_hunt_input(
    name: &str,
    input: InputBytes,
    format: Format,
    limits: Limits,
) -> anyhow::Result<HuntInput> {
    let format = match format {
        Format::Auto => detect_format(&input.bytes, Some(name)),
        f => f,
    };
    let parser = parser_for(format, limits);
    let bytes: Bytes = input.bytes;
    let chunk_of = |start: usize, end: usize| RawChunk {
        source: "file".into(),
        origin: name.to_owned(),
        tenant: DEFAULT_TENANT.into(),
        bytes: bytes.slice(start..end),
        position: start as u64,
        received_ms: input.modified_ms,
    };
    let mut out = HuntInput {
        format,
        batches: Vec::new(),
        dead_letters: 0,
    };
    let mut builder = EventBatchBuilder::new();
    let mut numbers: Vec<u64> = Vec::new();
    let mut dead = Vec::new();
    let flush = |builder: &mut EventBatchBuilder,
                 numbers: &mut Vec<u64>,
                 out: &mut HuntInput|
     -> anyhow::Result<()> {
        if builder.is_empty() {
            return Ok(());
        }
        let records = builder.finish().context("building a batch")?;
        out.batches.push(HuntBatch {
            records,
            record_numbers: std::mem::take(numbers),
        });
        Ok(())
    };
    if line_oriented(format, &bytes) {
        let mut start = 0;
        let mut line_no = 0u64;
        while start < bytes.len() {
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i + 1);
            line_no += 1;
            if !bytes[start..end].trim_ascii().is_empty() {
                let stats = parser.parse(&chunk_of(start, end), &mut builder, &mut dead);
                numbers.extend(std::iter::repeat_n(line_no, stats.events));
                out.dead_letters += dead.len();
                dead.clear();
                if builder.len() >= BATCH_ROWS {
                    flush(&mut builder, &mut numbers, &mut out)?;
                }
            }
            start = end;
        }
    } else {
        parser.parse(&chunk_of(0, bytes.len()), &mut builder, &mut dead);
        out.dead_letters += dead.len();
        let records = builder.finish().context("building a batch")?;
        let numbers = record_ids(&records, format);
        // Split into batches of the usual size.
        let mut offset = 0;
        while offset < records.num_rows() {
            let len = BATCH_ROWS.min(records.num_rows() - offset);
            out.batches.push(HuntBatch {
                records: records.slice(offset, len),
                record_numbers: numbers[offset..offset + len].to_vec(),
            });
            offset += len;
        }
        return Ok(out);
    }
    flush(&mut builder, &mut numbers, &mut out)?;
    Ok(out)
}

/// Record numbers of a whole-file batch: `EventRecordID` for EVTX, else ordinals.
fn record_ids(batch: &RecordBatch, format: Format) -> Vec<u64> {
    let ordinal = |row: usize| row as u64 + 1;
    if format != Format::Evtx {
        return (0..batch.num_rows()).map(ordinal).collect();
    }
    let Some(map) = batch
        .column_by_name(vedette_core::schema::col::FIELDS)
        .and_then(|c| c.as_map_opt())
    else {
        return (0..batch.num_rows()).map(ordinal).collect();
    };
    let keys = map.keys().as_string::<i32>();
    let values = map.values().as_string::<i32>();
    let offsets = map.value_offsets();
    (0..batch.num_rows())
        .map(|row| {
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            (start..end)
                .find(|&e| keys.value(e) == "EventRecordID" && values.is_valid(e))
                .and_then(|e| values.value(e).parse().ok())
                .unwrap_or_else(|| ordinal(row))
        })
        .collect()
}
