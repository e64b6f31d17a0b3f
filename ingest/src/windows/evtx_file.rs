//! EVTX files read natively with the `evtx` crate. A damaged chunk or record becomes a
//! dead letter with the parser's message, and the rest of the file is still read.

use evtx::EvtxParser;
use serde_json::Value;
use vedette_core::dead_letter::DeadLetter;
use vedette_core::event::EventBatchBuilder;
use vedette_core::traits::{ParseStats, Parser, RawChunk};

use crate::flatten::FieldSink;
use crate::limits::Limits;
use crate::record::RecordCtx;

/// The magic bytes at the start of every EVTX file.
pub(crate) const EVTX_MAGIC: &[u8] = b"ElfFile\0";

/// Parser for whole EVTX files (one chunk = one file).
#[derive(Debug, Default)]
pub struct EvtxFileParser {
    limits: Limits,
}

impl EvtxFileParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }
}

impl Parser for EvtxFileParser {
    fn name(&self) -> &str {
        "evtx"
    }

    fn parse(
        &self,
        chunk: &RawChunk,
        events: &mut EventBatchBuilder,
        dead_letters: &mut Vec<DeadLetter>,
    ) -> ParseStats {
        let ctx = RecordCtx::new(chunk, &self.limits);
        let mut stats = ParseStats::default();
        let mut parser = match EvtxParser::from_buffer(chunk.bytes.to_vec()) {
            Ok(p) => p,
            Err(e) => {
                let head = &chunk.bytes[..chunk.bytes.len().min(4096)];
                dead_letters.push(ctx.dead_letter(
                    "evtx",
                    0,
                    &format!("not an EVTX file: {e}"),
                    head,
                ));
                stats.dead_letters += 1;
                return stats;
            }
        };
        let mut sink = FieldSink::new(&self.limits);
        for (index, record) in parser.records_json_value().enumerate() {
            match record {
                Ok(record) => {
                    let Value::Object(obj) = &record.data else {
                        let reason = "EVTX record did not render as a JSON object";
                        dead_letters.push(ctx.dead_letter("evtx", index, reason, b""));
                        stats.dead_letters += 1;
                        continue;
                    };
                    let raw = serde_json::to_vec(&record.data).unwrap_or_default();
                    sink.reset("");
                    super::push_tree(obj, &mut sink);
                    super::prepare(&mut sink);
                    let mut row = super::normalize(&sink, &ctx, &raw);
                    crate::record::append_row(events, &mut row, sink.iter());
                    stats.events += 1;
                }
                Err(e) => {
                    let reason = format!("damaged EVTX data after record {index}: {e}");
                    dead_letters.push(ctx.dead_letter("evtx", index, &reason, b""));
                    stats.dead_letters += 1;
                }
            }
        }
        stats
    }
}
