//! `vedette-storage`: the event and alert stores and SQL queries over them: Parquet
//! files queried with DataFusion on one machine ([`parquet::ParquetStore`]), and
//! ClickHouse at scale ([`clickhouse::ClickHouseStore`]). Both pass one conformance
//! suite (`tests/common/store_suite.rs`).
//!
//! Its one main trait is `vedette_core::traits::EventStore`.
//!
//! ```text
//!  bus `events`, `alerts`, `dead_letters` ─▶ EventStore::append ─▶ Parquet files / ClickHouse
//!  analyst SQL ─▶ EventStore::query (read-only, row and time limits) ─▶ record batches
//! ```

pub mod clickhouse;
pub mod parquet;
mod query_examples;
mod query_limits;

pub use query_examples::{query_examples, titled_query_examples, Dialect, QUERIES_MD};
pub use query_limits::{bounded, QueryLimits};
