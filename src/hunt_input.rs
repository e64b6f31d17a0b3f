//! Parsing pieces of a log file into event batches that remember, per row, which record
//! of the file it came from: the 1-based line for line formats, the `EventRecordID`
//! for EVTX, the ordinal otherwise.
//!
//! Line formats come in pieces of whole lines (see `InputStream`); each piece is
//! parsed as one chunk, and line by line only when its record count does not match its
//! line count (a dead letter, a record spanning lines). Other formats are one piece.

use anyhow::Context;
use arrow::array::{Array, AsArray, RecordBatch};
use bytes::Bytes;
use vedette_core::event::{EventBatchBuilder, DEFAULT_TENANT};
use vedette_core::traits::{Parser, RawChunk};
use vedette_ingest::{detect_format, parser_for, Format, Limits};

use crate::input::{InputBytes, InputPiece};

/// Rows per batch.
const BATCH_ROWS: usize = 8192;
/// Size of a piece of a line-format input.
pub(crate) const PIECE_BYTES: usize = 4 * 1024 * 1024;

/// A batch and the record number of each of its rows.
pub(crate) struct HuntBatch {
    /// The events.
    pub(crate) records: RecordBatch,
    /// Record number per row.
    pub(crate) record_numbers: Vec<u64>,
}

/// What parsing one piece gave.
#[derive(Default)]
pub(crate) struct HuntPiece {
    /// The batches, in input order.
    pub(crate) batches: Vec<HuntBatch>,
    /// Records that did not parse.
    pub(crate) dead_letters: usize,
}

/// How one input is parsed: its format, and whether records are lines.
pub(crate) struct HuntInput {
    /// The format used.
    pub(crate) format: Format,
    /// Whether records are one per line (the input may come in pieces).
    pub(crate) lines: bool,
    name: String,
    modified_ms: i64,
    parser: Box<dyn Parser>,
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

impl HuntInput {
    /// Recognizes the format of the input named `name` from its first bytes.
    pub(crate) fn new(
        name: &str,
        head: &[u8],
        format: Format,
        limits: Limits,
        modified_ms: i64,
    ) -> Self {
        let format = match format {
            Format::Auto => detect_format(head, Some(name)),
            f => f,
        };
        Self {
            format,
            lines: line_oriented(format, head),
            name: name.to_owned(),
            modified_ms,
            parser: parser_for(format, limits),
        }
    }

    fn chunk(&self, bytes: Bytes, position: u64) -> RawChunk {
        RawChunk {
            source: "file".into(),
            origin: self.name.clone(),
            tenant: DEFAULT_TENANT.into(),
            bytes,
            position,
            received_ms: self.modified_ms,
        }
    }

    /// Parses one piece into batches with record numbers.
    pub(crate) fn parse(&self, piece: &InputPiece) -> anyhow::Result<HuntPiece> {
        with_thread_builder(|builder| self.parse_into(piece, builder))
    }

    /// [`HuntInput::parse`] with an empty builder.
    fn parse_into(
        &self,
        piece: &InputPiece,
        builder: &mut EventBatchBuilder,
    ) -> anyhow::Result<HuntPiece> {
        let mut dead = Vec::new();
        let mut out = HuntPiece::default();
        let stats = self.parser.parse(
            &self.chunk(piece.bytes.clone(), piece.offset),
            builder,
            &mut dead,
        );
        if !self.lines {
            out.dead_letters = dead.len();
            let records = builder.finish().context("building a batch")?;
            let numbers = record_ids(&records, self.format);
            return Ok(split(records, numbers, out));
        }
        let text = &piece.bytes[..];
        // Lines found by a vector search (a split by a closure looks at every byte).
        let mut nonblank: Vec<u64> = Vec::with_capacity(stats.events);
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len()));
        for (end, line) in ends.zip(piece.first_line..) {
            if !text[start..end].trim_ascii().is_empty() {
                nonblank.push(line);
            }
            start = end + 1;
        }
        let numbers = if dead.is_empty() && stats.events == nonblank.len() {
            nonblank
        } else {
            // Line by line, so every row knows its line; the rows so far are dropped.
            builder.finish().context("building a batch")?;
            dead.clear();
            let mut numbers = Vec::new();
            let mut start = 0;
            let mut line = piece.first_line;
            while start < text.len() {
                let end =
                    memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |i| start + i + 1);
                if !text[start..end].trim_ascii().is_empty() {
                    let chunk =
                        self.chunk(piece.bytes.slice(start..end), piece.offset + start as u64);
                    let s = self.parser.parse(&chunk, builder, &mut dead);
                    numbers.extend(std::iter::repeat_n(line, s.events));
                }
                line += 1;
                start = end;
            }
            out.dead_letters = dead.len();
            numbers
        };
        let records = builder.finish().context("building a batch")?;
        Ok(split(records, numbers, out))
    }
}

/// Runs `parse` with this thread's builder, kept from piece to piece: a finished builder
/// is made again at the sizes of the batch it made, so the columns of the next piece
/// do not grow from nothing (copying each buffer on the way). Every path of `parse`
/// finishes the builder; one that still held rows would not be kept.
fn with_thread_builder<T>(parse: impl FnOnce(&mut EventBatchBuilder) -> T) -> T {
    thread_local! {
        static BUILDER: std::cell::RefCell<Option<EventBatchBuilder>> =
            const { std::cell::RefCell::new(None) };
    }
    let mut builder = BUILDER.with(|kept| kept.take()).unwrap_or_default();
    let out = parse(&mut builder);
    debug_assert!(builder.is_empty(), "a piece left rows in its builder");
    if builder.is_empty() {
        BUILDER.with(|kept| kept.replace(Some(builder)));
    }
    out
}

/// Cuts a batch into batches of the usual size.
fn split(records: RecordBatch, numbers: Vec<u64>, mut out: HuntPiece) -> HuntPiece {
    let mut offset = 0;
    while offset < records.num_rows() {
        let len = BATCH_ROWS.min(records.num_rows() - offset);
        out.batches.push(HuntBatch {
            records: records.slice(offset, len),
            record_numbers: numbers
                .get(offset..offset + len)
                .map(<[u64]>::to_vec)
                .unwrap_or_default(),
        });
        offset += len;
    }
    out
}

/// Parses a whole input held in memory, piece after piece.
pub(crate) fn read_hunt_input(
    name: &str,
    input: InputBytes,
    format: Format,
    limits: Limits,
) -> anyhow::Result<(Format, HuntPiece)> {
    let hunt = HuntInput::new(name, &input.bytes, format, limits, input.modified_ms);
    let bytes = input.bytes;
    let mut all = HuntPiece::default();
    let mut start = 0;
    let mut line = 1u64;
    while start < bytes.len() {
        let end = if hunt.lines {
            let target = (start + PIECE_BYTES).min(bytes.len());
            memchr::memchr(b'\n', &bytes[target..]).map_or(bytes.len(), |i| target + i + 1)
        } else {
            bytes.len()
        };
        let piece = InputPiece {
            bytes: bytes.slice(start..end),
            first_line: line,
            offset: start as u64,
        };
        line += memchr::memchr_iter(b'\n', &piece.bytes).count() as u64;
        let p = hunt.parse(&piece)?;
        all.batches.extend(p.batches);
        all.dead_letters += p.dead_letters;
        start = end;
    }
    Ok((hunt.format, all))
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
    let (Some(keys), Some(values)) = (
        map.keys().as_string_opt::<i32>(),
        map.values().as_string_opt::<i32>(),
    ) else {
        return (0..batch.num_rows()).map(ordinal).collect();
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_know_their_lines_across_blank_lines_and_pieces() {
        let text = "\n{\"a\":1}\n  \n{\"a\":2}\r\n\n{\"a\":3}";
        let input = HuntInput::new(
            "x.jsonl",
            text.as_bytes(),
            Format::Json,
            Limits::default(),
            0,
        );
        // The same builder serves both pieces (one thread).
        for first_line in [1, 41] {
            let piece = InputPiece {
                bytes: Bytes::from(text),
                first_line,
                offset: 0,
            };
            let parsed = input.parse(&piece).unwrap_or_else(|e| panic!("{e}"));
            let numbers: Vec<u64> = parsed
                .batches
                .iter()
                .flat_map(|b| b.record_numbers.clone())
                .collect();
            let rows: usize = parsed.batches.iter().map(|b| b.records.num_rows()).sum();
            assert_eq!(numbers, [1, 3, 5].map(|n| n + first_line), "{first_line}");
            assert_eq!(rows, 3);
        }
    }
}
