//! `store-bench`: the Parquet store, or ClickHouse, on realistic events.
//!
//! ```text
//! store-bench [--batches N] [--clickhouse URL] [--compact]
//! ```
//!
//! Events are the corpora's Windows events (replicated and varied, as `sigma-bench` does),
//! parsed into 40 distinct batches of 8192 rows, appended `--batches` times in turn (the
//! default 1221 makes 10,002,432 events). It reports the append rate and CPU per event,
//! the bytes stored per event against the bytes of the JSON lines, and the latency of
//! each query of `docs/queries.md` over what was stored. With `--clickhouse`, the events
//! go to a ClickHouse store (database `vedette_bench`, emptied first) in inserts of six
//! batches (49,152 rows, as the storage stage groups them), and the bytes stored are the
//! server's `bytes_on_disk` of the events table. Each round through the 40 batches gives
//! the events new ids, so every stored event is distinct.
//!
//! With `--compact` (Parquet), the queries run once on the files as appended, then the
//! store's compaction runs: passes until one merges nothing (the state a live flow
//! keeps), then one pass as if every folder had gone quiet (the state of past days).
//! It reports the files, bytes per event and time of each, and the queries again.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use vedette_bench_bus::cpu;
use vedette_bench_sigma::{corpora_dir, corpus_windows_events, replicate, vedette_batches};
use vedette_core::batch::EventBatch;
use vedette_core::traits::{EventStore, QueryScope, Table, WriteBatching};
use vedette_storage::clickhouse::{ClickHouseOptions, ClickHouseStore};
use vedette_storage::parquet::ParquetStore;
use vedette_storage::{query_examples, Dialect, QueryLimits, QUERIES_MD};

/// Command line.
#[derive(Parser)]
struct Args {
    /// Batches of 8192 events to append.
    #[arg(long, default_value_t = 1221)]
    batches: usize,
    /// Store in the ClickHouse server at this URL instead of Parquet files.
    #[arg(long)]
    clickhouse: Option<String>,
    /// Parquet: compact after appending, and run the queries before and after.
    #[arg(long)]
    compact: bool,
}

/// Runs every query of docs/queries.md, printing its time and row count.
async fn run_queries(store: &dyn EventStore, dialect: Dialect) -> anyhow::Result<()> {
    println!(
        "files    {} Parquet files",
        parquet_count(&dir.path().join("events"))
    );
    run_queries(store.as_ref(), dialect).await?;
    if let (true, Some(parquet)) = (args.compact, &parquet) {
        let events_dir = dir.path().join("events");
        compact_until_stable(parquet, &events_dir, events, "live").await?;
        parquet.set_cold_after(std::time::Duration::ZERO);
        compact_until_stable(parquet, &events_dir, events, "quiet").await?;
        run_queries(store.as_ref(), dialect).await?;
    }
    Ok(())
}
