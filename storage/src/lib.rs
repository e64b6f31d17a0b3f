//! `vedette-storage`: the event and alert stores (Parquet with DataFusion on one
//! machine, ClickHouse at scale) and SQL queries over them.
//!
//! Its one main trait is `vedette_core::traits::EventStore`. The stores arrive with the
//! storage issue.
