//! The Parquet store keeps the most-read raw fields as columns of their own: a query of
//! `fields['CommandLine']` reads that column, not the map; the map a query sees is whole;
//! files written before keys were shredded are rewritten when the store opens, answer
//! the same, and merge with the others.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use common::store_suite::{self, DAY0};
use vedette_core::batch::EventBatch;
use vedette_core::event::{Event, EventBatchBuilder};
use vedette_core::traits::{EventStore, QueryScope, Table};
use vedette_storage::parquet::ParquetStore;
use vedette_storage::QueryLimits;

fn store(dir: &Path) -> ParquetStore {
    ParquetStore::open(dir, 36_500, QueryLimits::default()).unwrap()
}

/// Sysmon-like events of tenant `acme`: `CommandLine` and `EventID` (shredded keys) and
/// `Custom` (not shredded); the third event has no `CommandLine`.
fn events(tag: &str) -> EventBatch {
    let mut b = EventBatchBuilder::new();
    for i in 0..4 {
        let mut fields = vec![
            ("EventID".to_string(), "1".to_string()),
            ("Custom".to_string(), format!("{tag}-custom-{i}")),
        ];
        if i != 2 {
            fields.push((
                "CommandLine".to_string(),
                format!("certutil.exe -urlcache {tag}-{i}"),
            ));
        }
        b.append(&Event {
            id: format!("{tag}-{i}"),
            timestamp_ms: DAY0 + i * 1000,
            dataset: "windows.sysmon".into(),
            host_name: Some("host-1".into()),
            tenant: "acme".into(),
            fields,
            ..Event::default()
        });
    }
    EventBatch::new(b.finish().unwrap(), "test", "acme", DAY0)
}

/// Writes `batch` as a file of the layout from before shredding (the event schema as
/// it is, the keys in the map), where the store looks for that day and dataset.
fn write_legacy_file(root: &Path, batch: &RecordBatch) {
    let folder = root.join("events/day=2026-11-20/dataset=windows.sysmon");
    std::fs::create_dir_all(&folder).unwrap();
    let file = std::fs::File::create(folder.join("legacy.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// The sorted strings of the first column of `sql`'s answer (nulls as `-`).
async fn strings(store: &dyn EventStore, sql: &str, scope: &QueryScope) -> Vec<String> {
    use futures::StreamExt;
    let mut stream = store.query(sql, scope).await.unwrap();
    let mut out = Vec::new();
    while let Some(b) = stream.next().await {
        let b = b.unwrap();
        let c = b.column(0).as_string::<i32>().clone();
        out.extend((0..c.len()).map(|i| {
            if c.is_valid(i) {
                c.value(i).to_string()
            } else {
                "-".to_string()
            }
        }));
    }
    out.sort();
    out
}

/// Each row's `fields` as sorted `key=value` text, the rows sorted.
async fn maps(store: &dyn EventStore, sql: &str) -> Vec<String> {
    let batches = store_suite::rows(store, sql).await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        let map = b.column(0).as_map();
        for row in 0..map.len() {
            let e = map.value(row);
            let (k, v) = (
                e.column(0).as_string::<i32>(),
                e.column(1).as_string::<i32>(),
            );
            let mut pairs: Vec<String> = (0..e.len())
                .map(|i| format!("{}={}", k.value(i), v.value(i)))
                .collect();
            pairs.sort();
            out.push(pairs.join(" "));
        }
    }
    out.sort();
    out
}

/// The Parquet scan of `sql`'s plan (the line that names what it reads).
async fn scan_of(store: &dyn EventStore, sql: &str) -> String {
    let batches = store_suite::rows(store, &format!("EXPLAIN {sql}"))
        .await
        .unwrap();
    let mut plan = String::new();
    for b in &batches {
        let c = b.column(1).as_string::<i32>();
        for i in 0..c.len() {
            plan.push_str(c.value(i));
            plan.push('\n');
        }
    }
    plan.lines()
        .find(|l| l.contains("DataSourceExec") && l.contains("parquet"))
        .unwrap_or_else(|| panic!("no parquet scan in {plan}"))
        .to_string()
}

#[tokio::test]
async fn a_shredded_key_is_read_from_its_column_and_the_map_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.append(Table::Events, &events("n")).await.unwrap();

    // The file holds the key as a column, and the map without it.
    let folder = dir
        .path()
        .join("events/day=2026-11-20/dataset=windows.sysmon");
    let file = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .next()
        .unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(file.path()).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let stored = reader.collect::<Result<Vec<_>, _>>().unwrap();
    let in_file = stored[0].column_by_name("fields.CommandLine").unwrap();
    assert_eq!(in_file.len() - in_file.null_count(), 3);
    let rest = stored[0].column_by_name("fields").unwrap().as_map();
    let keys = rest.keys().as_string::<i32>();
    assert!((0..keys.len()).all(|i| keys.value(i) == "Custom"));

    let sql = "SELECT fields['CommandLine'] FROM events WHERE fields['EventID'] = '1'";
    assert_eq!(
        strings(&s, sql, &QueryScope::all()).await,
        [
            "-",
            "certutil.exe -urlcache n-0",
            "certutil.exe -urlcache n-1",
            "certutil.exe -urlcache n-3"
        ]
    );
    // The scan reads the key's column, not the map (`fields@<index>` in the plan).
    let scan = scan_of(&s, sql).await;
    assert!(!scan.contains("fields@"), "the map is read: {scan}");
    assert!(scan.contains("fields.CommandLine@"), "{scan}");
    // A key that is not shredded reads the map: the check above would see it.
    let scan = scan_of(
        &s,
        "SELECT fields['Custom'] FROM events WHERE fields['Custom'] = 'x'",
    )
    .await;
    assert!(scan.contains("fields@"), "{scan}");
    // A key that is not shredded is still read from the map.
    assert_eq!(
        strings(
            &s,
            "SELECT fields['Custom'] FROM events",
            &QueryScope::all()
        )
        .await,
        ["n-custom-0", "n-custom-1", "n-custom-2", "n-custom-3"]
    );
    // The map a query sees has every key.
    let whole = maps(&s, "SELECT fields FROM events").await;
    assert_eq!(
        whole[0],
        "CommandLine=certutil.exe -urlcache n-0 Custom=n-custom-0 EventID=1"
    );
    assert_eq!(whole[3], "Custom=n-custom-2 EventID=1");
    // Answers keep the map lookup's column name, beside the column itself in `SELECT *`,
    // and the column serves lookups inside expressions, groups and orders.
    let batches = store_suite::rows(&s, "SELECT *, fields['CommandLine'] FROM events")
        .await
        .unwrap();
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert!(names.contains(&"fields.CommandLine"), "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with("fields[CommandLine]")),
        "{names:?}"
    );
    assert_eq!(
        strings(
            &s,
            "SELECT fields['EventID'] AS id FROM events \
             WHERE lower(fields['CommandLine']) LIKE 'certutil%' \
             GROUP BY fields['EventID'] ORDER BY fields['EventID']",
            &QueryScope::all()
        )
        .await,
        ["1"]
    );
    // So does a tenant's session, through its views.
    assert_eq!(
        strings(
            &s,
            "SELECT fields['CommandLine'] FROM events WHERE fields['CommandLine'] LIKE '%n-3'",
            &QueryScope::tenant("acme")
        )
        .await,
        ["certutil.exe -urlcache n-3"]
    );
}

#[tokio::test]
async fn files_from_before_shredding_answer_the_same_and_merge_with_the_others() {
    let dir = tempfile::tempdir().unwrap();
    write_legacy_file(dir.path(), &events("old").records);
    let s = store(dir.path());
    // Opening the store rewrote the file in the current layout, under its name.
    let legacy = dir
        .path()
        .join("events/day=2026-11-20/dataset=windows.sysmon/legacy.parquet");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&legacy).unwrap(),
    )
    .unwrap();
    assert!(reader
        .schema()
        .field_with_name("fields.CommandLine")
        .is_ok());
    drop(reader);
    // Every file is in the current layout now: the marker says so, and the next open
    // reads no footer.
    assert!(dir.path().join("events/.layout").is_file());
    s.append(Table::Events, &events("new")).await.unwrap();
    let check = |s: ParquetStore| async move {
        let all = QueryScope::all();
        assert_eq!(
            strings(
                &s,
                "SELECT fields['CommandLine'] FROM events WHERE fields['CommandLine'] LIKE '%-1'",
                &all
            )
            .await,
            [
                "certutil.exe -urlcache new-1",
                "certutil.exe -urlcache old-1"
            ]
        );
        assert_eq!(
            strings(
                &s,
                "SELECT \"fields.CommandLine\" FROM events WHERE \"event.id\" LIKE 'old-%'",
                &all
            )
            .await,
            [
                "-",
                "certutil.exe -urlcache old-0",
                "certutil.exe -urlcache old-1",
                "certutil.exe -urlcache old-3"
            ]
        );
        let whole = maps(
            &s,
            "SELECT fields FROM events WHERE \"event.id\" IN ('old-0', 'new-0')",
        )
        .await;
        assert_eq!(
            whole,
            [
                "CommandLine=certutil.exe -urlcache new-0 Custom=new-custom-0 EventID=1",
                "CommandLine=certutil.exe -urlcache old-0 Custom=old-custom-0 EventID=1",
            ]
        );
        s
    };
    let s = check(s).await;
    // A merge of the two layouts shreds the old rows; the answers stay.
    s.set_cold_after(std::time::Duration::ZERO);
    s.set_delete_grace(std::time::Duration::ZERO);
    let report = s.compact().await.unwrap();
    assert_eq!(report.merges, 1, "{report:?}");
    let s = check(s).await;
    // Read back for a retro-hunt: the event schema, the map whole.
    use futures::StreamExt;
    let mut stream = s.read_events(DAY0, DAY0 + 86_400_000).await.unwrap();
    let mut rows = 0;
    while let Some(b) = stream.next().await {
        let b = b.unwrap();
        assert_eq!(
            b.schema().fields(),
            vedette_core::schema::event_schema().fields()
        );
        let map = b.column_by_name("fields").unwrap().as_map();
        rows += b.num_rows();
        let keys = map.keys().as_string::<i32>();
        let command_lines = (0..keys.len())
            .filter(|&i| keys.value(i) == "CommandLine")
            .count();
        assert!(command_lines > 0);
    }
    assert_eq!(rows, 8);
}

/// Syslog events of tenant `acme`, ids `TAG-N`: the message part (`syslog.message`) is the end of the
/// line in three of them, another text in one, missing in one; one has no line.
fn syslog_events(tag: &str) -> EventBatch {
    let rows: [(Option<&str>, Option<&str>); 6] = [
        (
            Some("<38>1 2026-11-20T00:00:00Z web sshd 7 - - session opened for root"),
            Some("session opened for root"),
        ),
        (
            Some("<38>1 2026-11-20T00:00:01Z web sshd 7 - - Accepted key for süß"),
            Some("Accepted key for süß"),
        ),
        (
            Some("<38>1 2026-11-20T00:00:02Z web sshd 7 - - trimmed message  "),
            Some("trimmed message"),
        ),
        (Some("<38>1 2026-11-20T00:00:03Z web cron 9 - -"), None),
        (None, Some("no line kept")),
        (
            Some("<38>1 2026-11-20T00:00:05Z web sshd 7 - - session closed"),
            Some("session closed"),
        ),
    ];
    let mut b = EventBatchBuilder::new();
    for (i, (line, part)) in rows.into_iter().enumerate() {
        let mut fields = vec![("syslog.appname".to_string(), "sshd".to_string())];
        if let Some(part) = part {
            fields.push(("syslog.message".to_string(), part.to_string()));
        }
        b.append(&Event {
            id: format!("{tag}-{i}"),
            timestamp_ms: DAY0 + i as i64 * 1000,
            dataset: "syslog".into(),
            host_name: Some("web".into()),
            tenant: "acme".into(),
            message: line.map(str::to_string),
            fields,
            ..Event::default()
        });
    }
    EventBatch::new(b.finish().unwrap(), "test", "acme", DAY0)
}

/// The values of `key` in the maps of the day's events as a retro-hunt reads them, sorted.
async fn read_back(s: &ParquetStore, key: &str) -> Vec<String> {
    use futures::StreamExt;
    let mut stream = s.read_events(DAY0, DAY0 + 86_400_000).await.unwrap();
    let mut values = Vec::new();
    while let Some(b) = stream.next().await {
        let b = b.unwrap();
        let map = b.column_by_name("fields").unwrap().as_map();
        let (k, v) = (
            map.keys().as_string::<i32>(),
            map.values().as_string::<i32>(),
        );
        values.extend(
            (0..k.len())
                .filter(|&i| k.value(i) == key)
                .map(|i| v.value(i).to_string()),
        );
    }
    values.sort();
    values
}

/// The rows of the one file under `folder`.
fn file_rows(folder: &Path) -> Vec<RecordBatch> {
    let files: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .filter(|f| f.path().extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(files[0].path()).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap()
    .collect::<Result<Vec<_>, _>>()
    .unwrap()
}

#[tokio::test]
async fn a_message_part_that_ends_the_line_is_stored_once_and_read_back_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.append(Table::Events, &syslog_events("a")).await.unwrap();
    let folder = dir.path().join("events/day=2026-11-20/dataset=syslog");

    // Every value `copies` times over.
    let check = |s: ParquetStore, copies: usize| async move {
        let all = QueryScope::all();
        let mut parts: Vec<&str> = [
            "-",
            "Accepted key for süß",
            "no line kept",
            "session closed",
            "session opened for root",
            "trimmed message",
        ]
        .repeat(copies);
        parts.sort();
        assert_eq!(
            strings(&s, "SELECT fields['syslog.message'] FROM events", &all).await,
            parts
        );
        assert_eq!(
            strings(&s, "SELECT \"fields.syslog.message\" FROM events", &all).await,
            parts
        );
        // A filter on the key, pushed into the scan, sees the values too.
        let mut sessions = ["a-0", "a-5", "b-0", "b-5"][..copies * 2].to_vec();
        sessions.sort();
        assert_eq!(
            strings(
                &s,
                "SELECT \"event.id\" FROM events WHERE fields['syslog.message'] LIKE 'session%'",
                &QueryScope::tenant("acme")
            )
            .await,
            sessions
        );
        let whole = maps(&s, "SELECT fields FROM events").await;
        assert!(
            whole.contains(&"syslog.appname=sshd syslog.message=Accepted key for süß".into()),
            "{whole:?}"
        );
        assert!(whole.contains(&"syslog.appname=sshd".into()), "{whole:?}");
        s
    };
    let s = check(s, 1).await;

    // The file holds the three line endings as offsets, the other values as text.
    let stored = file_rows(&folder);
    let text = stored[0].column_by_name("fields.syslog.message").unwrap();
    let starts = stored[0]
        .column_by_name("message_from.syslog.message")
        .unwrap();
    assert_eq!(text.len() - text.null_count(), 2);
    assert_eq!(starts.len() - starts.null_count(), 3);

    // A merge keeps the offsets with their rows; the answers stay.
    s.append(Table::Events, &syslog_events("b")).await.unwrap();
    s.set_cold_after(std::time::Duration::ZERO);
    s.set_delete_grace(std::time::Duration::ZERO);
    let report = s.compact().await.unwrap();
    assert_eq!(report.merges, 1, "{report:?}");
    let s = check(s, 2).await;
    let stored = file_rows(&folder);
    let starts = stored[0]
        .column_by_name("message_from.syslog.message")
        .unwrap();
    assert_eq!(starts.len() - starts.null_count(), 6);

    // Read back for a retro-hunt: the map whole.
    let parts = read_back(&s, "syslog.message").await;
    let mut want = [
        "Accepted key for süß",
        "no line kept",
        "session closed",
        "session opened for root",
        "trimmed message",
    ]
    .repeat(2);
    want.sort();
    assert_eq!(parts, want);
}

#[tokio::test]
async fn a_raw_field_that_repeats_a_common_column_is_stored_once_and_read_back_everywhere() {
    // Sysmon-like events: `CommandLine` is `process.command_line` in the first two and
    // differs in the third; `ProcessId` is `process.pid` written the same way in the
    // first and in hex in the second; the third has no `ProcessId`.
    let rows = [
        (
            "cmd /c whoami",
            Some("cmd /c whoami"),
            Some("4242"),
            Some(4242),
        ),
        (
            "powershell -enc AA",
            Some("powershell -enc AA"),
            Some("0x1092"),
            Some(4242),
        ),
        ("net user", Some("net.exe user"), None, Some(7)),
    ];
    let mut b = EventBatchBuilder::new();
    for (i, (raw, normalized, pid_text, pid)) in rows.iter().enumerate() {
        let mut fields = vec![("CommandLine".to_string(), raw.to_string())];
        if let Some(p) = pid_text {
            fields.push(("ProcessId".to_string(), p.to_string()));
        }
        b.append(&Event {
            id: format!("p-{i}"),
            timestamp_ms: DAY0 + i as i64 * 1000,
            dataset: "windows.sysmon".into(),
            host_name: Some("host-1".into()),
            tenant: "acme".into(),
            process_command_line: normalized.map(str::to_string),
            process_pid: *pid,
            fields,
            ..Event::default()
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.append(
        Table::Events,
        &EventBatch::new(b.finish().unwrap(), "test", "acme", DAY0),
    )
    .await
    .unwrap();

    // The file flags the repeated values and keeps the others.
    let folder = dir
        .path()
        .join("events/day=2026-11-20/dataset=windows.sysmon");
    let stored = file_rows(&folder);
    let text = stored[0].column_by_name("fields.CommandLine").unwrap();
    let flags = stored[0]
        .column_by_name("repeats:CommandLine=process.command_line")
        .unwrap()
        .as_boolean();
    assert_eq!(text.len() - text.null_count(), 1);
    assert_eq!(flags.true_count(), 2);
    let pids = stored[0]
        .column_by_name("repeats:ProcessId=process.pid")
        .unwrap()
        .as_boolean();
    assert_eq!(pids.true_count(), 1);

    let all = QueryScope::all();
    assert_eq!(
        strings(&s, "SELECT fields['CommandLine'] FROM events", &all).await,
        ["cmd /c whoami", "net user", "powershell -enc AA"]
    );
    assert_eq!(
        strings(&s, "SELECT fields['ProcessId'] FROM events", &all).await,
        ["-", "0x1092", "4242"]
    );
    assert_eq!(
        strings(
            &s,
            "SELECT \"event.id\" FROM events WHERE fields['CommandLine'] LIKE '%whoami'",
            &QueryScope::tenant("acme")
        )
        .await,
        ["p-0"]
    );
    let whole = maps(&s, "SELECT fields FROM events").await;
    assert_eq!(
        whole,
        [
            "CommandLine=cmd /c whoami ProcessId=4242",
            "CommandLine=net user",
            "CommandLine=powershell -enc AA ProcessId=0x1092",
        ]
    );
}

#[tokio::test]
async fn a_map_entry_that_repeats_a_common_column_is_stored_once_and_read_back_everywhere() {
    // Firewall-like events: `src` is `source.ip` in the first and differs in the second;
    // `sport` is `source.port` as text; a key holds a NUL byte, one is the mark alone.
    let rows = [
        ("10.0.0.1", Some("10.0.0.1"), "443", Some(443)),
        ("10.0.0.2", Some("10.9.9.9"), "0443", Some(443)),
    ];
    let mut b = EventBatchBuilder::new();
    for (i, (src, ip, sport, port)) in rows.iter().enumerate() {
        b.append(&Event {
            id: format!("f-{i}"),
            timestamp_ms: DAY0 + i as i64 * 1000,
            dataset: "paloalto".into(),
            host_name: Some("fw".into()),
            tenant: "acme".into(),
            source_ip: ip.map(str::to_string),
            source_port: *port,
            fields: vec![
                ("src".to_string(), src.to_string()),
                ("sport".to_string(), sport.to_string()),
                ("odd\0key".to_string(), format!("odd-{i}")),
                ("\0".to_string(), "mark".to_string()),
            ],
            ..Event::default()
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.append(
        Table::Events,
        &EventBatch::new(b.finish().unwrap(), "test", "acme", DAY0),
    )
    .await
    .unwrap();

    // The file stores the repeated entries as references, with no value.
    let stored = file_rows(&dir.path().join("events/day=2026-11-20/dataset=paloalto"));
    let map = stored[0].column_by_name("fields").unwrap().as_map();
    let (keys, values) = (
        map.keys().as_string::<i32>(),
        map.values().as_string::<i32>(),
    );
    let references: Vec<usize> = (0..keys.len())
        .filter(|&i| keys.value(i).contains("\0source."))
        .collect();
    assert_eq!(references.len(), 2, "the first event's src and sport");
    assert!(references.iter().all(|&i| values.is_null(i)));

    let all = QueryScope::all();
    assert_eq!(
        strings(&s, "SELECT fields['src'] FROM events", &all).await,
        ["10.0.0.1", "10.0.0.2"]
    );
    assert_eq!(
        strings(
            &s,
            "SELECT \"event.id\" FROM events WHERE fields['sport'] = '0443'",
            &QueryScope::tenant("acme")
        )
        .await,
        ["f-1"]
    );
    assert_eq!(
        maps(&s, "SELECT fields FROM events").await,
        [
            "\0=mark odd\0key=odd-0 sport=443 src=10.0.0.1",
            "\0=mark odd\0key=odd-1 sport=0443 src=10.0.0.2",
        ]
    );
    // Read back for a retro-hunt: the map whole.
    assert_eq!(read_back(&s, "src").await, ["10.0.0.1", "10.0.0.2"]);
}
