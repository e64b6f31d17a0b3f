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
async fn conformance_compaction_changes_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    store_suite::compaction_changes_no_answer(&store(dir.path())).await;
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
    // The file of one append is LZ4 (merges are zstd: store_parquet_compaction).
    assert!(
        column.compression().to_string().starts_with("LZ4_RAW"),
        "{}",
        column.compression()
    );
}

#[tokio::test]
async fn conformance_tenant_scope_confines_every_table() {
    let dir = tempfile::tempdir().unwrap();
    store_suite::tenant_scope_confines_every_table(&store(dir.path())).await;
}

/// A batch read again after a restart is stored again while analysts query: no query
/// may fail or count a row twice while the file of that position is written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_during_redelivery_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(store(dir.path()));
    let batches: Vec<_> = (0..8)
        .map(|i| store_suite::at(store_suite::events(&format!("r{i}"), 500, 3, 0), i))
        .collect();
    for b in &batches {
        s.append(Table::Events, b).await.unwrap();
    }
    let sql = "SELECT count(*) - count(DISTINCT \"event.id\") FROM events";
    assert_eq!(store_suite::count(s.as_ref(), sql).await, 0);
    let stored = store_suite::count(s.as_ref(), "SELECT count(*) FROM events").await;
    let writer = {
        let (s, batches) = (s.clone(), batches.clone());
        tokio::spawn(async move {
            for _ in 0..30 {
                for b in &batches {
                    s.append(Table::Events, b).await.unwrap();
                }
            }
        })
    };
    let mut queries = 0;
    while !writer.is_finished() {
        let rows = store_suite::rows(s.as_ref(), "SELECT count(*) AS n FROM events")
            .await
            .unwrap_or_else(|e| panic!("query {queries} failed during re-delivery: {e}"));
        let n = rows[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(n, stored, "query {queries} during re-delivery");
        queries += 1;
    }
    writer.await.unwrap();
    assert!(queries > 0);
    assert_eq!(store_suite::count(s.as_ref(), sql).await, 0);
}

/// What a write cut by SIGKILL leaves (a torn temporary file) is never read, and is
/// cleared when the store opens again; a fresh one (a write in progress, maybe of
/// another process) is left alone.
#[tokio::test]
async fn a_torn_temporary_file_is_ignored_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.append(
        Table::Events,
        &store_suite::at(store_suite::events("t", 10, 1, 0), 1),
    )
    .await
    .unwrap();
    let folder = dir
        .path()
        .join("events/day=2026-11-20/dataset=windows.sysmon");
    assert!(folder.is_dir());
    let torn = folder.join(".events-p00000-o00000000000000000002-000.parquet.tmp");
    std::fs::write(&torn, b"PAR1 torn").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&torn)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let in_progress = folder.join(".events-p00000-o00000000000000000003-000.parquet.tmp");
    std::fs::write(&in_progress, b"PAR1 being written").unwrap();
    let stored = store_suite::count(&s, "SELECT count(*) FROM events").await;
    assert!(stored > 0);
    drop(s);
    let s = store(dir.path());
    assert!(!torn.exists(), "the torn file is cleared at open");
    assert!(in_progress.exists(), "a write in progress is left alone");
    assert_eq!(
        store_suite::count(&s, "SELECT count(*) FROM events").await,
        stored
    );
}

/// The Parquet files of one folder of the store.
fn parquet_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    files
}

/// Batches read from the bus together are stored as one file per folder, whatever the
/// number of batches; a batch read again after a restart (nothing cached: the store is
/// opened anew), grouped differently or alone, is not stored twice.
#[tokio::test]
async fn grouped_batches_make_one_file_per_folder_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let group: Vec<_> = (0..5)
        .map(|i| store_suite::at(store_suite::events(&format!("g{i}"), 10, 2, 0), 10 + i))
        .collect();
    {
        let s = store(dir.path());
        // One batch stored alone first, as a store of an older version would have.
        s.append(Table::Events, &group[0]).await.unwrap();
        s.append_all(Table::Events, &group[..3]).await.unwrap();
    }
    let day = dir.path().join("events/day=2026-11-20");
    for dataset in ["windows.sysmon", "windows.security"] {
        // The single batch's file and the group's file.
        assert_eq!(
            parquet_files(&day.join(format!("dataset={dataset}"))).len(),
            2
        );
    }
    let s = store(dir.path());
    let distinct = "SELECT count(*) - count(DISTINCT \"event.id\") FROM events";
    assert_eq!(
        store_suite::count(&s, "SELECT count(*) FROM events").await,
        60
    );
    assert_eq!(store_suite::count(&s, distinct).await, 0);
    // Read again after the restart, grouped anew with two batches not stored yet.
    s.append_all(Table::Events, &group[1..]).await.unwrap();
    s.append(Table::Events, &group[2]).await.unwrap();
    assert_eq!(
        store_suite::count(&s, "SELECT count(*) FROM events").await,
        100
    );
    assert_eq!(store_suite::count(&s, distinct).await, 0);
    // Still so once merges ran.
    s.set_cold_after(Duration::ZERO);
    s.compact().await.unwrap();
    assert_eq!(
        store_suite::count(&s, "SELECT count(*) FROM events").await,
        100
    );
    assert_eq!(store_suite::count(&s, distinct).await, 0);
}

/// A group with a batch of the wrong columns is refused whole, as bad input (the
/// storage stage then stores the others one by one), and writes nothing.
#[tokio::test]
async fn a_group_with_a_wrong_batch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let mut wrong = store_suite::at(store_suite::events("w", 1, 1, 0), 2);
    wrong.records = wrong.records.project(&[0, 1, 2]).unwrap();
    let group = [
        store_suite::at(store_suite::events("ok", 10, 2, 0), 1),
        wrong,
    ];
    let err = s.append_all(Table::Events, &group).await.unwrap_err();
    assert!(matches!(err, vedette_core::CoreError::BadInput(_)), "{err}");
    assert_eq!(
        store_suite::count(&s, "SELECT count(*) FROM events").await,
        0
    );
}
