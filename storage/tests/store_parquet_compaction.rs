//! The Parquet store's compaction and deferred deletion: small files merged, queries
//! running across a merge or a retention pass, a merge cut by a crash, a batch
//! delivered again after its merge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::store_suite;
use futures::StreamExt;
use vedette_core::traits::{EventStore, QueryScope, Table};
use vedette_storage::parquet::ParquetStore;
use vedette_storage::QueryLimits;

const SYSMON: &str = "events/day=2026-11-20/dataset=windows.sysmon";

fn store(dir: &Path) -> ParquetStore {
    let s = ParquetStore::open(dir, 30, QueryLimits::default()).unwrap();
    s.set_delete_grace(Duration::ZERO);
    s
}

/// Parquet files of a folder, by name.
fn parquet_files(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    names.sort();
    names
}

/// Appends `n` one-host batches of sysmon events at bus offsets 0..n.
async fn fill(s: &ParquetStore, n: u64) {
    for i in 0..n {
        s.append(
            Table::Events,
            &store_suite::at(store_suite::events(&format!("b{i}"), 50, 1, 0), i),
        )
        .await
        .unwrap();
    }
}

const TOTAL_AND_DISTINCT: &str =
    "SELECT count(*) * 1000000 + count(DISTINCT \"event.id\") FROM events";

#[tokio::test]
async fn small_files_become_one_and_a_batch_delivered_again_adds_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s, 20).await;
    let folder = dir.path().join(SYSMON);
    assert_eq!(parquet_files(&folder).len(), 20);
    let want = store_suite::count(&s, TOTAL_AND_DISTINCT).await;
    assert_eq!(want, 1000 * 1_000_000 + 1000);

    let report = s.compact().await.unwrap();
    assert_eq!(
        (report.merges, report.files_merged, report.rows),
        (1, 20, 1000)
    );
    assert_eq!(report.files_deleted, 20, "no query holds them: {report:?}");
    let files = parquet_files(&folder);
    assert_eq!(files.len(), 1);
    assert!(files[0].starts_with("compacted-"), "{files:?}");
    assert_eq!(store_suite::count(&s, TOTAL_AND_DISTINCT).await, want);

    // Delivered again after the merge: nothing written, nothing counted twice.
    fill(&s, 20).await;
    assert_eq!(parquet_files(&folder), files);
    assert_eq!(store_suite::count(&s, TOTAL_AND_DISTINCT).await, want);

    // A newer batch and a second merge: the first compacted file is merged too.
    for i in 20..28 {
        s.append(
            Table::Events,
            &store_suite::at(store_suite::events(&format!("b{i}"), 50, 1, 0), i),
        )
        .await
        .unwrap();
    }
    drop(s);
    let s = store(dir.path());
    fill(&s, 20).await;
    assert_eq!(
        parquet_files(&folder).len(),
        9,
        "a reopened store still knows what was merged"
    );
    let want = want + 400 * 1_000_000 + 400;
    assert_eq!(store_suite::count(&s, TOTAL_AND_DISTINCT).await, want);
    s.compact().await.unwrap();
    assert_eq!(store_suite::count(&s, TOTAL_AND_DISTINCT).await, want);
}

/// A query that began before a merge reads on to its end; the merged files go only
/// after it.
#[tokio::test]
async fn a_query_running_across_a_merge_reads_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s, 16).await;
    let mut stream = s
        .query("SELECT \"event.id\" FROM events", &QueryScope::all())
        .await
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let report = s.compact().await.unwrap();
    assert_eq!(report.merges, 1);
    assert_eq!(
        report.files_deleted, 0,
        "the running query holds the inputs"
    );
    assert_eq!(report.files_waiting, 16);
    let mut rows = first.num_rows();
    while let Some(b) = stream.next().await {
        rows += b.unwrap().num_rows();
    }
    assert_eq!(rows, 800);
    drop(stream);
    let report = s.compact().await.unwrap();
    assert_eq!(
        (report.merges, report.files_deleted, report.files_waiting),
        (0, 16, 0)
    );
    assert_eq!(parquet_files(&dir.path().join(SYSMON)).len(), 1);
}

/// Retention during a query over the expiring day: the query completes (the failure
/// a CI run once showed: a file deleted between listing and reading).
#[tokio::test]
async fn retention_waits_for_the_query_reading_the_old_day() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s, 6).await;
    let mut stream = s
        .query("SELECT \"event.id\" FROM events", &QueryScope::all())
        .await
        .unwrap();
    let now = store_suite::DAY0 + 40 * store_suite::DAY;
    assert_eq!(s.apply_retention(now).await.unwrap(), 1);
    assert_eq!(
        store_suite::count(&s, "SELECT count(*) FROM events").await,
        0
    );
    let mut rows = 0;
    while let Some(b) = stream.next().await {
        rows += b.unwrap().num_rows();
    }
    assert_eq!(rows, 300, "the query begun before retention sees its rows");
    drop(stream);
    assert_eq!(s.apply_retention(now).await.unwrap(), 0);
    assert!(
        !dir.path().join("events/day=2026-11-20").exists(),
        "the empty day folder goes"
    );
}

fn copy_all(from: &Path, names: &[String], to: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(to).unwrap();
    names
        .iter()
        .map(|n| {
            std::fs::copy(from.join(n), to.join(n)).unwrap();
            to.join(n)
        })
        .collect()
}

/// A crash after a merge's rename but before its inputs went: the inputs come back
/// with the next open, hidden, and are deleted.
#[tokio::test]
async fn inputs_left_by_a_crash_after_a_merge_are_hidden_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let folder = dir.path().join(SYSMON);
    let s = store(dir.path());
    fill(&s, 10).await;
    let inputs = parquet_files(&folder);
    copy_all(&folder, &inputs, keep.path());
    s.compact().await.unwrap();
    drop(s);
    copy_all(keep.path(), &inputs, &folder);
    assert_eq!(parquet_files(&folder).len(), 11);

    let s = store(dir.path());
    assert_eq!(
        store_suite::count(&s, TOTAL_AND_DISTINCT).await,
        500 * 1_000_000 + 500
    );
    let report = s.compact().await.unwrap();
    assert_eq!((report.merges, report.files_deleted), (0, 10), "{report:?}");
    assert_eq!(parquet_files(&folder).len(), 1);
}

/// A compacted file whose footer cannot be read is left out, with its inputs kept
/// visible: nothing is lost or doubled.
#[tokio::test]
async fn a_damaged_compacted_file_hides_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(SYSMON);
    let s = store(dir.path());
    fill(&s, 3).await;
    std::fs::write(
        folder.join("compacted-1-000009.parquet"),
        b"PAR1 not a footer",
    )
    .unwrap();
    assert_eq!(
        store_suite::count(&s, TOTAL_AND_DISTINCT).await,
        150 * 1_000_000 + 150
    );
    let report = s.compact().await.unwrap();
    assert_eq!(report.files_deleted, 0);
    assert_eq!(parquet_files(&folder).len(), 4);
}

#[tokio::test]
async fn merged_files_take_the_configured_zstd_level() {
    let sizes = |level: i32| async move {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.set_zstd_level(level).unwrap();
        s.set_cold_after(Duration::ZERO);
        fill(&s, 8).await;
        let want = store_suite::count(&s, TOTAL_AND_DISTINCT).await;
        assert_eq!(s.compact().await.unwrap().merges, 1);
        assert_eq!(store_suite::count(&s, TOTAL_AND_DISTINCT).await, want);
        let folder = dir.path().join(SYSMON);
        let files = parquet_files(&folder);
        assert_eq!(files.len(), 1);
        std::fs::metadata(folder.join(&files[0])).unwrap().len()
    };
    // The highest level stores these events in fewer bytes than the lowest.
    let (low, high) = (sizes(1).await, sizes(19).await);
    assert!(high < low, "level 19: {high} bytes, level 1: {low}");
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for level in [0, 23, -1] {
        let err = s.set_zstd_level(level).unwrap_err();
        assert!(err.to_string().contains("1 to 22"), "{err}");
    }
}
