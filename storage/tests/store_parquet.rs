//! The Parquet store: the store conformance suite, the row limit, and the files it
//! writes (partition folders, sort order, compression).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::store_suite;
use vedette_core::traits::{EventStore, Table};
use vedette_storage::parquet::ParquetStore;
use vedette_storage::QueryLimits;

fn store(dir: &std::path::Path) -> ParquetStore {
    ParquetStore::open(dir, 30, QueryLimits::default()).unwrap()
}

#[tokio::test]
async fn conformance_events_are_stored_and_queried() {
    let dir = tempfile::tempdir().unwrap();
    store_suite::events_are_stored_and_queried(&store(dir.path())).await;
}

#[tokio::test]
async fn conformance_redelivery_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    store_suite::redelivery_is_idempotent(&store(dir.path())).await;
}

#[tokio::test]
async fn conformance_grouped_appends_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    store_suite::grouped_appends_are_idempotent(&store(dir.path())).await;
}

#[tokio::test]
async fn conformance_events_are_read_back_by_time() {
    let dir = tempfile::tempdir().unwrap();
    store_suite::events_are_read_back_by_time(&store(dir.path())).await;
}

#[tokio::test]
async fn conformance_alerts_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    store_suite::alerts_and_dead_letters(&store(dir.path())).await;
}

#[tokio::test]
async fn conformance_queries_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    store_suite::queries_are_read_only(&store(dir.path())).await;
}

#[tokio::test]
async fn conformance_wrong_shape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    store_suite::wrong_shape_is_refused(&store(dir.path())).await;
}

#[tokio::test]
async fn conformance_retention_drops_old_days() {
    let dir = tempfile::tempdir().unwrap();
    store_suite::retention_drops_old_days(&store(dir.path()), 30).await;
}

#[tokio::test]
async fn results_stop_at_the_row_limit() {
    let dir = tempfile::tempdir().unwrap();
    let limits = QueryLimits {
        max_rows: 7,
        timeout: Duration::from_secs(30),
    };
    let s = ParquetStore::open(dir.path(), 30, limits).unwrap();
    s.append(Table::Events, &store_suite::events("l", 10, 2, 0))
        .await
        .unwrap();
    let got: usize = store_suite::rows(&s, "SELECT * FROM events")
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(got, 7);
}

#[tokio::test]
async fn files_are_partitioned_by_day_and_dataset_and_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.append(Table::Events, &store_suite::events("f", 4, 2, 0))
        .await
        .unwrap();
    let sysmon = dir
        .path()
        .join("events/day=2026-11-20/dataset=windows.sysmon");
    let files: Vec<_> = std::fs::read_dir(&sysmon).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(dir
        .path()
        .join("events/day=2026-11-20/dataset=windows.security")
        .is_dir());
    // The day and dataset are columns too, and prune folders.
    assert_eq!(
        store_suite::count(
            &s,
            "SELECT count(*) FROM events WHERE day = '2026-11-20' AND dataset = 'windows.sysmon'"
        )
        .await,
        4
    );
    let reader = parquet::file::reader::SerializedFileReader::new(
        std::fs::File::open(files[0].path()).unwrap(),
    )
    .unwrap();
    use parquet::file::reader::FileReader;
    let meta = reader.metadata();
    let column = meta.row_group(0).column(0);
    // (The level is not kept in the file's metadata.)
    assert!(column.compression().to_string().starts_with("ZSTD"));
}

#[tokio::test]
async fn conformance_tenant_scope_confines_every_table() {
    let dir = tempfile::tempdir().unwrap();
    store_suite::tenant_scope_confines_every_table(&store(dir.path())).await;
}
