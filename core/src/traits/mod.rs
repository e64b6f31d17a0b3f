//! The boundary traits between Vedette's stages, in their first, small form.
//!
//! | boundary | trait | implemented in |
//! |---|---|---|
//! | transport in | [`Source`] | `vedette-connectors` |
//! | bytes to Arrow | [`Parser`] | `vedette-ingest` |
//! | the log | [`Bus`] | `vedette-connectors` |
//! | events to alerts | [`Detector`] | `vedette-detect` |
//! | persist and query | [`EventStore`] | `vedette-storage` |

mod bus;
mod detector;
mod parser;
mod source;
mod store;

pub use bus::{Bus, BusConsumer, BusDelivery};
pub use detector::Detector;
pub use parser::{ParseStats, Parser};
pub use source::{RawChunk, Source};
pub use store::{
    CompactionReport, EventStore, QueryScope, RecordBatchStream, Table, WriteBatching,
};
