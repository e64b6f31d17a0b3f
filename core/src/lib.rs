//! `vedette-core`: what every Vedette stage shares.
//!
//! The normalized event [schema] (Arrow), the [`event::Event`] row and its batch
//! builder, [`batch::EventBatch`], [`alert::Alert`], [`dead_letter::DeadLetter`], the
//! [config], the error type [`CoreError`], and the boundary [traits] that the stage
//! crates implement. Stage crates depend on this crate only, never on each other.
//!
//! ```text
//!  agents, firewalls,        ┌────────┐ RawChunk ┌────────┐ EventBatch ┌─────┐
//!  servers, cloud ─────────▶ │ Source │────────▶ │ Parser │──────────▶ │ Bus │
//!  (syslog, HTTP, files,     └────────┘          └────────┘            └──┬──┘
//!   Kafka)                    connectors            ingest   connectors    │
//!                                                                          ▼
//!  responders ◀── webhooks ◀── Alert ◀── ┌──────────┐ ◀── EventBatch ──────┤
//!                                        │ Detector │  detect (rayon)      │
//!                                        └────┬─────┘                      ▼
//!                                             └──── Alert ──────▶ ┌────────────┐
//!                                                                 │ EventStore │ storage
//!                                                                 └────────────┘
//! ```
//!
//! The one main trait of each boundary lives in [traits]; this crate's own main type
//! is the event schema, [`schema::event_schema`].

pub mod alert;
pub mod audit;
pub mod batch;
mod columns;
pub mod config;
pub mod dead_letter;
pub mod error;
pub mod event;
pub mod event_json;
pub mod id;
pub mod io;
pub mod octet_count;
pub mod row;
pub mod schema;
pub mod traits;

pub use error::CoreError;
