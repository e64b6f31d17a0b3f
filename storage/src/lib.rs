//! `vedette-storage`: the event and alert stores and SQL queries over them: Parquet
//! files queried with DataFusion on one machine ([`parquet::ParquetStore`]), and
//! ClickHouse at scale (with the rest of the storage issue).
//!
//! Its one main trait is `vedette_core::traits::EventStore`.
//!
//! ```text
//!  bus `events`, `alerts`, `dead_letters` ─▶ EventStore::append ─▶ Parquet files (durable)
//!  analyst SQL ─▶ EventStore::query (read-only, row and time limits) ─▶ record batches
//! ```

pub mod parquet;
mod query_limits;

pub use query_limits::{bounded, QueryLimits};
