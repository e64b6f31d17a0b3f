//! `Parser`: turns raw bytes into rows of the event schema.

use crate::dead_letter::DeadLetter;
use crate::event::EventBatchBuilder;
use crate::traits::source::RawChunk;

/// What one call to [`Parser::parse`] produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Events appended to the batch builder.
    pub events: usize,
    /// Records sent to the dead-letter list.
    pub dead_letters: usize,
}

/// Bytes to Arrow: appends one row per record of a chunk into a batch builder.
///
/// A record that cannot be parsed becomes a [`DeadLetter`] with its reason and raw
/// bytes, and parsing goes on with the next record: a parser never fails a chunk, and
/// never panics on any input.
pub trait Parser: Send + Sync {
    /// The `event.dataset` family this parser produces (e.g. `syslog`, `windows`).
    fn name(&self) -> &str;

    /// Parses every record of `chunk`, appending events and dead letters.
    fn parse(
        &self,
        chunk: &RawChunk,
        events: &mut EventBatchBuilder,
        dead_letters: &mut Vec<DeadLetter>,
    ) -> ParseStats;
}
