//! Tests of [`super`]: keys shredded into columns and back, values stored once, layouts.

use super::*;
use arrow::datatypes::Int32Type;
use vedette_core::event::{Event, EventBatchBuilder};

/// Events with raw fields: shredded keys, others, a key twice, and none at all.
pub(crate) fn events_with_fields() -> RecordBatch {
    let rows: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("CommandLine", "cmd /c whoami"),
            ("Image", "C:\\cmd.exe"),
            ("Other", "x"),
        ],
        vec![("Other", "y"), ("EventID", "4624"), ("EventID", "4625")],
        vec![],
        vec![("syslog.message", "session opened"), ("pid", "42")],
    ];
    let mut b = EventBatchBuilder::new();
    for (i, fields) in rows.iter().enumerate() {
        b.append(&Event {
            id: format!("e{i}"),
            timestamp_ms: 1_764_201_600_000 + i as i64,
            dataset: "windows.sysmon".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Event::default()
        });
    }
    b.finish().unwrap()
}

/// Each row's map as sorted (key, value) pairs.
fn entries(map: &MapArray) -> Vec<Vec<(String, Option<String>)>> {
    (0..map.len())
        .map(|row| {
            let e = map.value(row);
            let k = e.column(0).as_string::<i32>();
            let v = e.column(1).as_string::<i32>();
            let mut pairs: Vec<(String, Option<String>)> = (0..e.len())
                .map(|i| {
                    (
                        k.value(i).to_string(),
                        v.is_valid(i).then(|| v.value(i).to_string()),
                    )
                })
                .collect();
            pairs.sort();
            pairs
        })
        .collect()
}

#[test]
fn shredded_keys_move_to_columns_and_come_back() {
    let batch = events_with_fields();
    let original = batch.column_by_name(col::FIELDS).unwrap().as_map().clone();
    let stored = shred(&batch).unwrap();
    assert_eq!(stored.schema(), file_schema());
    assert!(is_shredded(&stored.schema()));
    let rest = stored.column_by_name(col::FIELDS).unwrap().as_map();
    assert_eq!(entries(rest)[0], vec![("Other".into(), Some("x".into()))]);
    let columns: Vec<&StringArray> = SHREDDED_KEYS
        .iter()
        .map(|k| {
            stored
                .column_by_name(&column_name(k))
                .unwrap()
                .as_string::<i32>()
        })
        .collect();
    let command_lines = stored
        .column_by_name("fields.CommandLine")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(command_lines.value(0), "cmd /c whoami");
    assert!(command_lines.is_null(1));
    // The second EventID stays in the map.
    let ids = stored
        .column_by_name("fields.EventID")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(ids.value(1), "4624");
    assert_eq!(
        entries(rest)[1],
        vec![
            ("EventID".into(), Some("4625".into())),
            ("Other".into(), Some("y".into()))
        ]
    );
    let back = unshred_map(rest, SHREDDED_KEYS, &columns, &Sources::default(), true).unwrap();
    assert_eq!(entries(&back), entries(&original));
    // A key an event had twice comes back with its first value first, as lookups
    // of the map (which take the first) read it before.
    let row = back.value(1);
    let (k, v) = (
        row.column(0).as_string::<i32>(),
        row.column(1).as_string::<i32>(),
    );
    let first = (0..row.len()).find(|&i| k.value(i) == "EventID").unwrap();
    assert_eq!(v.value(first), "4624");
}

/// `stored` in another layout: each column kept, renamed or replaced by `column(name,
/// values)`, or dropped where it gives `None`.
fn reshaped(
    stored: &RecordBatch,
    column: impl Fn(&str, &ArrayRef) -> Option<(String, ArrayRef)>,
) -> RecordBatch {
    RecordBatch::try_from_iter(
        stored
            .schema()
            .fields()
            .iter()
            .zip(stored.columns())
            .filter_map(|(f, c)| column(f.name(), c)),
    )
    .unwrap()
}

#[test]
fn events_of_any_layout_come_back_to_the_event_schema_and_to_this_layout() {
    let batch = events_with_fields();
    let stored = for_storage(&batch).unwrap();
    assert!(is_current(&stored.schema()));
    let back = to_events(&stored).unwrap();
    assert_eq!(back.schema().fields(), event_schema().fields());
    let map = |b: &RecordBatch| entries(b.column_by_name(col::FIELDS).unwrap().as_map());
    assert_eq!(map(&back), map(&batch));
    // An older layout: fewer columns, one of a key no longer shredded.
    let older = reshaped(&stored, |name, c| {
        (!name.starts_with(PREFIX) || name == "fields.Image")
            .then(|| (name.replace("fields.Image", "fields.ImageOld"), c.clone()))
    });
    assert!(is_shredded(&older.schema()) && !is_current(&older.schema()));
    let upgraded = for_storage(&older).unwrap();
    assert!(is_current(&upgraded.schema()));
    let row0 = &map(&to_events(&upgraded).unwrap())[0];
    assert!(
        row0.contains(&("ImageOld".to_string(), Some("C:\\cmd.exe".to_string()))),
        "{row0:?}"
    );
    // Rows of other tables pass as they are.
    let alerts = vedette_core::alert::alerts_to_batch(&[]).unwrap();
    assert_eq!(for_storage(&alerts).unwrap().schema(), alerts.schema());
}

#[test]
fn rows_gathered_from_several_batches_are_shredded_as_one_batch_would_be() {
    let a = events_with_fields();
    let b = events_with_fields().slice(1, 3);
    let batches = [a, b];
    let refs = [(1, 2), (0, 0), (1, 0), (0, 3), (0, 1)];
    let fused = gather(&batches, &refs).unwrap();
    let apart = shred(&crate::parquet::rows::gather(&batches, &refs).unwrap()).unwrap();
    assert_eq!(fused.schema(), file_schema());
    for (name, (x, y)) in file_schema()
        .fields()
        .iter()
        .map(|f| f.name())
        .zip(fused.columns().iter().zip(apart.columns()))
    {
        assert_eq!(x.to_data(), y.to_data(), "{name}");
    }
    let ids = fused.column_by_name("event.id").unwrap().as_string::<i32>();
    assert_eq!(ids.value(0), "e3");
    assert_eq!(
        fused
            .column_by_name("fields.syslog.message")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "session opened"
    );
}

#[test]
fn a_message_part_is_an_offset_in_this_layout_and_text_in_the_one_before() {
    let line = "<38>1 2026-11-20T00:00:00Z web sshd 7 - - session opened";
    let mut b = EventBatchBuilder::new();
    for part in ["session opened", "other"] {
        b.append(&Event {
            id: part.into(),
            dataset: "syslog".into(),
            message: Some(line.into()),
            fields: vec![("syslog.message".into(), part.into())],
            ..Event::default()
        });
    }
    let batch = b.finish().unwrap();
    let stored = shred(&batch).unwrap();
    let text_name = column_name("syslog.message");
    let starts_name = message_tail::column_name("syslog.message");
    let text = stored
        .column_by_name(&text_name)
        .unwrap()
        .as_string::<i32>();
    let starts = stored
        .column_by_name(&starts_name)
        .unwrap()
        .as_primitive::<Int32Type>();
    let start = line.len() - "session opened".len();
    assert_eq!((text.is_null(0), starts.value(0) as usize), (true, start));
    assert_eq!((text.value(1), starts.is_null(1)), ("other", true));
    let map = |b: &RecordBatch| entries(b.column_by_name(col::FIELDS).unwrap().as_map());
    assert_eq!(map(&to_events(&stored).unwrap()), map(&batch));
    // The layout before offsets: the value as text, no offset column.
    let whole: ArrayRef = Arc::new(StringArray::from(vec!["session opened", "other"]));
    let before = reshaped(&stored, |name, c| {
        let c = if name == text_name { &whole } else { c };
        (name != starts_name).then(|| (name.to_string(), c.clone()))
    });
    assert!(is_shredded(&before.schema()) && !is_current(&before.schema()));
    assert_eq!(map(&to_events(&before).unwrap()), map(&batch));
    let upgraded = for_storage(&before).unwrap();
    assert!(is_current(&upgraded.schema()));
    assert_eq!(
        upgraded.column_by_name(&starts_name).unwrap().null_count(),
        1
    );
}

#[test]
fn keys_holding_the_mark_in_files_of_every_layout_read_back_as_they_were() {
    let keys = ["a\0b", "\0x", "k\0source.ip", "src"];
    let mut b = EventBatchBuilder::new();
    b.append(&Event {
        id: "n".into(),
        dataset: "paloalto".into(),
        source_ip: Some("10.0.0.1".into()),
        fields: keys
            .iter()
            .map(|k| (k.to_string(), "10.0.0.1".to_string()))
            .collect(),
        ..Event::default()
    });
    let batch = b.finish().unwrap();
    let map = |b: &RecordBatch| entries(b.column_by_name(col::FIELDS).unwrap().as_map());
    // This layout: escaped keys and a reference, read back.
    let stored = shred(&batch).unwrap();
    assert!(same_as::has_flags(&stored.schema()));
    assert_eq!(map(&to_events(&stored).unwrap()), map(&batch));
    // A shredded layout from before references (no flag columns): keys as they are.
    let before = reshaped(&stored, |name, c| {
        let c = if name == col::FIELDS {
            batch.column_by_name(col::FIELDS).unwrap()
        } else {
            c
        };
        same_as::parse_column_name(name)
            .is_none()
            .then(|| (name.to_string(), c.clone()))
    });
    assert!(!same_as::has_flags(&before.schema()));
    assert_eq!(map(&to_events(&before).unwrap()), map(&batch));
    let upgraded = for_storage(&before).unwrap();
    assert!(is_current(&upgraded.schema()));
    assert_eq!(map(&to_events(&upgraded).unwrap()), map(&batch));
    // A reference to a column without a value there is an error, not a made-up value.
    let mut damaged_keys = StringBuilder::new();
    damaged_keys.append_value("src\0source.ip");
    let damaged = map_of(
        stored_map_type(),
        vec![0, 1],
        Arc::new(damaged_keys.finish()),
        Arc::new(StringArray::from(vec![None::<&str>])),
        None,
    )
    .unwrap();
    let err = unshred_map(&damaged, &[], &[], &Sources::default(), true).unwrap_err();
    assert!(err.to_string().contains("refers to source.ip"), "{err}");
}

#[test]
fn key_names_map_both_ways() {
    assert_eq!(column_name("CommandLine"), "fields.CommandLine");
    // Keys folded against another column, and key sources, are shredded keys.
    for (key, source) in SAME_AS {
        assert!(SHREDDED_KEYS.contains(key), "{key}");
        if let Some(k) = source.strip_prefix(PREFIX) {
            assert!(SHREDDED_KEYS.contains(&k), "{source}");
        }
    }
    assert!(!is_shredded(&event_schema()));
}
