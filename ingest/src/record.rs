//! What every parser shares: the per-chunk context, event construction with a stable id
//! and a normalized time, dead letters, and the newline-delimited record driver.

use std::borrow::Cow;
use vedette_core::dead_letter::DeadLetter;

use vedette_core::event::{tag, Event, EventBatchBuilder, Row, TextCol};
use vedette_core::id::{event_id, stamp_time, EventId};
use vedette_core::traits::{ParseStats, RawChunk};

use crate::flatten::FieldSink;
use crate::limits::Limits;
use crate::timestamp::ParsedTime;

/// Why a record was rejected; becomes the dead letter's reason.
pub(crate) type Reject = String;

/// The chunk being parsed and the limits that apply to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordCtx<'a> {
    /// The chunk.
    pub(crate) chunk: &'a RawChunk,
    /// Per-record limits.
    pub(crate) limits: &'a Limits,
}

impl<'a> RecordCtx<'a> {
    /// A context for one chunk.
    pub(crate) fn new(chunk: &'a RawChunk, limits: &'a Limits) -> Self {
        Self { chunk, limits }
    }

    /// A new event of `dataset` for the raw record `raw`, with its stable id, tenant and
    /// ingest time set, and `@timestamp` provisionally the ingest time.
    pub(crate) fn event(&self, dataset: &str, raw: &[u8]) -> Event {
        Event {
            id: event_id(&self.chunk.tenant, dataset, raw),
            dataset: dataset.to_string(),
            tenant: self.chunk.tenant.clone(),
            ingested_ms: self.chunk.received_ms,
            timestamp_ms: self.chunk.received_ms,
            ..Event::default()
        }
    }

    /// A new row of `dataset` for the raw record `raw`, as [`RecordCtx::event`] makes
    /// an event.
    pub(crate) fn row(&self, dataset: impl Into<Cow<'a, str>>, raw: &[u8]) -> Row<'a> {
        let dataset = dataset.into();
        let mut row = Row::default();
        row.set_id(EventId::of(&self.chunk.tenant, &dataset, raw));
        row.set(TextCol::Dataset, dataset);
        row.set(TextCol::Tenant, self.chunk.tenant.as_str());
        row.ingested_ms = self.chunk.received_ms;
        row.timestamp_ms = self.chunk.received_ms;
        row
    }

    /// A dead letter for the record at byte `offset` of the chunk.
    pub(crate) fn dead_letter(
        &self,
        stage: &str,
        offset: usize,
        reason: &str,
        raw: &[u8],
    ) -> DeadLetter {
        DeadLetter::new(
            self.chunk.received_ms,
            self.chunk.tenant.clone(),
            format!("{}:{}", self.chunk.source, self.chunk.origin),
            stage,
            self.chunk.position + offset as u64,
            reason,
            raw,
        )
    }
}

/// What a source time gives: the event time (None keeps the ingest time) and the flag
/// to add (`timezone_missing`, or why there is no time: `timestamp_missing` when
/// `time_text` is None, `timestamp_invalid` when it did not parse).
fn time_result(
    time_text: Option<&str>,
    parsed: Option<ParsedTime>,
) -> (Option<i64>, Option<&'static str>) {
    match (time_text, parsed) {
        (_, Some(t)) => (Some(t.ms), t.zone_missing.then_some(tag::TIMEZONE_MISSING)),
        (Some(_), None) => (None, Some(tag::TIMESTAMP_INVALID)),
        (None, None) => (None, Some(tag::TIMESTAMP_MISSING)),
    }
}

/// Sets `@timestamp` from a parsed source time, or keeps the ingest time and tags
/// why (see [`time_result`]).
pub(crate) fn set_time(event: &mut Event, time_text: Option<&str>, parsed: Option<ParsedTime>) {
    let (ms, flag) = time_result(time_text, parsed);
    event.timestamp_ms = ms.unwrap_or(event.timestamp_ms);
    flag.into_iter().for_each(|f| event.add_tag(f));
}

/// [`set_time`] for a row.
pub(crate) fn set_row_time(row: &mut Row<'_>, time_text: Option<&str>, parsed: Option<ParsedTime>) {
    let (ms, flag) = time_result(time_text, parsed);
    row.timestamp_ms = ms.unwrap_or(row.timestamp_ms);
    flag.into_iter().for_each(|f| row.add_tag(f));
}

/// Appends an event whose fields are in `sink` (not in the event), tagging truncation.
pub(crate) fn append_with_fields(
    builder: &mut EventBatchBuilder,
    event: &mut Event,
    sink: &FieldSink<'_>,
) {
    if sink.truncated {
        event.add_tag(tag::FIELDS_TRUNCATED);
    }
    if is_own_time(event.timestamp_ms, event.ingested_ms, &event.tags) {
        stamp_time(&mut event.id, event.timestamp_ms);
    }
    builder.append_row(&event.as_row(), sink.iter());
}

/// Appends `row` with `fields`, its id stamped with the record's time where it has its
/// own ([`is_own_time`], [`stamp_time`]).
pub(crate) fn append_row<'f>(
    builder: &mut EventBatchBuilder,
    row: &mut Row<'_>,
    fields: impl IntoIterator<Item = (&'f str, &'f str)>,
) {
    if is_own_time(row.timestamp_ms, row.ingested_ms, row.tags()) {
        let time = row.timestamp_ms;
        if let Some(id) = row.id_mut() {
            id.stamp_time(time);
        } else if let Some(id) = row.text_mut(TextCol::Id) {
            stamp_time(id.to_mut(), time);
        }
    }
    builder.append_row(row, fields);
}

/// Whether an event at `timestamp_ms` with `tags` has the record's own time, which its
/// id then begins with: not the ingest time `ingested_ms` (tagged `timestamp_missing` or
/// `timestamp_invalid`, or equal to it) and not a year guessed from it
/// (`year_inferred`), which a record delivered again later would not get again.
fn is_own_time(timestamp_ms: i64, ingested_ms: i64, tags: &[&str]) -> bool {
    let not_its_own = [
        tag::TIMESTAMP_MISSING,
        tag::TIMESTAMP_INVALID,
        tag::YEAR_INFERRED,
    ];
    timestamp_ms != ingested_ms && !tags.iter().any(|t| not_its_own.contains(t))
}

/// Sets a row's payload, cut at the limit (and tagged) when longer.
pub(crate) fn set_row_payload<'a>(row: &mut Row<'a>, bytes: &'a [u8], limits: &Limits) {
    if bytes.len() > limits.max_payload_bytes {
        row.add_tag(tag::PAYLOAD_TRUNCATED);
        row.payload = Some(Cow::Borrowed(&bytes[..limits.max_payload_bytes]));
    } else {
        row.payload = Some(Cow::Borrowed(bytes));
    }
}

/// Splits `bytes` into newline-terminated records (CR before LF removed, blank lines
/// skipped) and yields each with its byte offset.
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0;
    std::iter::from_fn(move || {
        while start < bytes.len() {
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
            let line_start = start;
            let mut line = &bytes[start..end];
            start = end + 1;
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Some((line_start, line));
            }
        }
        None
    })
}

/// Where a record's events go: each straight into the batch as a row, so a parser
/// writes one only once nothing can fail any more for the record.
pub(crate) struct Output<'o> {
    builder: &'o mut EventBatchBuilder,
    rows: usize,
}

impl<'o> Output<'o> {
    /// An output into `builder`.
    pub(crate) fn new(builder: &'o mut EventBatchBuilder) -> Self {
        Self { builder, rows: 0 }
    }

    /// Writes an event of the record whose fields are in `sink`, as
    /// [`append_with_fields`]; the record must not fail after this.
    pub(crate) fn event_with_fields(&mut self, event: &mut Event, sink: &FieldSink<'_>) {
        append_with_fields(self.builder, event, sink);
        self.rows += 1;
    }

    /// Writes a row of the record with its fields, as [`append_row`]; the record must
    /// not fail after this.
    pub(crate) fn row<'f>(
        &mut self,
        row: &mut Row<'_>,
        fields: impl IntoIterator<Item = (&'f str, &'f str)>,
    ) {
        append_row(self.builder, row, fields);
        self.rows += 1;
    }

    /// Ends a record that succeeded; returns how many events it made.
    pub(crate) fn commit(&mut self) -> usize {
        std::mem::take(&mut self.rows)
    }

    /// Ends a record that failed (it wrote no row).
    pub(crate) fn discard(&mut self) {
        debug_assert_eq!(self.rows, 0, "a record failed after writing a row");
        self.rows = 0;
    }
}

/// The fields-truncated flag of a row whose fields came from `sink`.
pub(crate) fn tag_truncation(row: &mut Row<'_>, sink: &FieldSink<'_>) {
    if sink.truncated {
        row.add_tag(tag::FIELDS_TRUNCATED);
    }
}

/// Runs `parse` on every line of the chunk: the events it produces go to `events`
/// (a line may yield several), rejected or oversized lines go to `dead_letters` with
/// their reason, and the next line goes on.
pub(crate) fn parse_lines<'c, F>(
    ctx: &RecordCtx<'c>,
    stage: &str,
    events: &mut EventBatchBuilder,
    dead_letters: &mut Vec<DeadLetter>,
    parse: F,
) -> ParseStats
where
    F: FnMut(&'c [u8], &mut Output<'_>) -> Result<(), Reject>,
{
    parse_records(
        ctx,
        stage,
        lines(&ctx.chunk.bytes),
        events,
        dead_letters,
        parse,
    )
}

/// [`parse_lines`] over records framed some other way: `records` yields each record
/// with its byte offset in the chunk.
pub(crate) fn parse_records<'c, I, F>(
    ctx: &RecordCtx<'_>,
    stage: &str,
    records: I,
    events: &mut EventBatchBuilder,
    dead_letters: &mut Vec<DeadLetter>,
    mut parse: F,
) -> ParseStats
where
    I: Iterator<Item = (usize, &'c [u8])>,
    F: FnMut(&'c [u8], &mut Output<'_>) -> Result<(), Reject>,
{
    let mut stats = ParseStats::default();
    let mut out = Output::new(events);
    for (offset, line) in records {
        let outcome = if line.len() > ctx.limits.max_record_bytes {
            Err(format!(
                "record of {} bytes exceeds the {}-byte limit",
                line.len(),
                ctx.limits.max_record_bytes
            ))
        } else {
            parse(line, &mut out)
        };
        match outcome {
            Ok(()) => stats.events += out.commit(),
            Err(reason) => {
                out.discard();
                dead_letters.push(ctx.dead_letter(stage, offset, &reason, line));
                stats.dead_letters += 1;
            }
        }
    }
    stats
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers for parser unit tests.

    use bytes::Bytes;
    use vedette_core::dead_letter::DeadLetter;
    use vedette_core::event::EventBatchBuilder;
    use vedette_core::traits::{ParseStats, Parser, RawChunk};

    /// A chunk of `text` as if received at 2026-11-27T12:00:00Z.
    pub(crate) fn chunk(text: &[u8]) -> RawChunk {
        RawChunk {
            source: "test".into(),
            origin: "unit".into(),
            tenant: "default".into(),
            bytes: Bytes::copy_from_slice(text),
            position: 0,
            received_ms: 1_795_780_800_000,
        }
    }

    /// Parses `text` with `parser`; returns the stats, the events as JSON rows and the
    /// dead letters.
    pub(crate) fn run(
        parser: &dyn Parser,
        text: &[u8],
    ) -> (ParseStats, Vec<serde_json::Value>, Vec<DeadLetter>) {
        let mut events = EventBatchBuilder::new();
        let mut dead = Vec::new();
        let stats = parser.parse(&chunk(text), &mut events, &mut dead);
        let rows = events
            .finish()
            .and_then(|b| vedette_core::event_json::events_to_json(&b))
            .unwrap_or_else(|e| panic!("batch: {e}"));
        assert_eq!(rows.len(), stats.events);
        assert_eq!(dead.len(), stats.dead_letters);
        (stats, rows, dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_strip_cr_and_skip_blanks() {
        let got: Vec<(usize, &[u8])> = lines(b"a\r\n\n  \nbc\nd").collect();
        assert_eq!(got, vec![(0, &b"a"[..]), (7, &b"bc"[..]), (10, &b"d"[..])]);
        assert_eq!(lines(b"").count(), 0);
    }
}
