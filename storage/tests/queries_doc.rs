//! Every query of `docs/queries.md` runs on sample data and returns rows: on the
//! Parquet store, on the ClickHouse store (the test server, Debian's 18.16), and, with
//! the modern ClickHouse schema, in a current ClickHouse engine (chDB, ClickHouse 26.x
//! in-process, driven by `chdb_modern.py`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::doc_queries::{queries, sample_alerts_and_dead_letters, sample_events, Dialect};
use vedette_core::traits::{EventStore, Table, WriteBatching};
use vedette_storage::clickhouse::{self, ClickHouseOptions, ClickHouseStore, Profile};
use vedette_storage::parquet::ParquetStore;
use vedette_storage::QueryLimits;

async fn load_samples(store: &dyn EventStore, now: i64) {
    store
        .append(Table::Events, &sample_events(now))
        .await
        .unwrap();
    for (table, batch) in sample_alerts_and_dead_letters(now) {
        store.append(table, &batch).await.unwrap();
    }
}

async fn every_query_returns_rows(store: &dyn EventStore, dialect: Dialect) {
    for sql in queries(dialect) {
        let batches = common::store_suite::rows(store, &sql)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{sql}"));
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0, "no rows from\n{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_query_runs_on_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let store = ParquetStore::open(dir.path(), 30, QueryLimits::default()).unwrap();
    load_samples(&store, chrono::Utc::now().timestamp_millis()).await;
    every_query_returns_rows(&store, Dialect::DataFusion).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_query_runs_on_clickhouse() {
    let url = std::env::var("VEDETTE_CLICKHOUSE_URL").expect(
        "VEDETTE_CLICKHOUSE_URL is not set: start the test services with deploy/local/up.sh",
    );
    let database = format!("vt_doc_{}", std::process::id());
    ::clickhouse::Client::default()
        .with_url(&url)
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await
        .unwrap();
    let store = ClickHouseStore::open(ClickHouseOptions {
        url,
        database,
        user: "default".into(),
        password: None,
        retention_days: 30,
        limits: QueryLimits::default(),
        batching: WriteBatching::IMMEDIATE,
    })
    .await
    .unwrap();
    load_samples(&store, chrono::Utc::now().timestamp_millis()).await;
    every_query_returns_rows(&store, Dialect::ClickHouse).await;
}

/// The modern schema and every ClickHouse query, in ClickHouse 26.x (chDB): the DDL
/// is accepted, rows encoded for it load, and each query returns rows.
#[test]
fn the_modern_dialect_runs_in_a_current_clickhouse() {
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let mut inserts = Vec::new();
    let mut batches = vec![(Table::Events, sample_events(now))];
    batches.extend(sample_alerts_and_dead_letters(now));
    for (table, batch) in &batches {
        let (structure, rows) = clickhouse::row_binary(*table, Profile::Modern, batch).unwrap();
        let file = dir.path().join(format!("{}.bin", table.name()));
        std::fs::write(&file, rows).unwrap();
        inserts.push(serde_json::json!({
            "table": table.name(),
            "structure": structure,
            "file": file,
        }));
    }
    let manifest = serde_json::json!({
        "database": "vedette",
        "statements": clickhouse::schema_statements("vedette", Profile::Modern, 30).unwrap(),
        "inserts": inserts,
        "queries": queries(Dialect::ClickHouse)
            .into_iter()
            .chain([clickhouse::read_events_sql("vedette", Profile::Modern, now - 86_400_000, now + 1)])
            .collect::<Vec<_>>(),
    });
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let python = std::env::var("VEDETTE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chdb_modern.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(&manifest_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e} (set VEDETTE_PYTHON)"));
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "chdb_modern.py failed:\n{report}");
    assert!(report.contains("all queries returned rows"), "{report}");
}
