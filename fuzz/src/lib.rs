//! Shared body of the fuzz targets: one chunk of arbitrary bytes through one parser,
//! which must return normally with its counts matching what it produced.

use bytes::Bytes;
use vedette_core::event::EventBatchBuilder;
use vedette_core::traits::RawChunk;
use vedette_ingest::{parser_for, Format, Limits};

/// Parses `data` with the parser of `format` and checks its accounting.
pub fn run(format: Format, data: &[u8]) {
    let chunk = RawChunk {
        source: "fuzz".into(),
        origin: "input".into(),
        tenant: "t".into(),
        bytes: Bytes::copy_from_slice(data),
        position: 0,
        received_ms: 1_700_000_000_000,
    };
    let mut builder = EventBatchBuilder::new();
    let mut dead = Vec::new();
    let stats = parser_for(format, Limits::default()).parse(&chunk, &mut builder, &mut dead);
    assert_eq!(stats.events, builder.len());
    assert_eq!(stats.dead_letters, dead.len());
    assert!(builder.finish().is_ok());
}
