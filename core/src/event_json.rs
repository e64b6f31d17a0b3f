//! Event batches as JSON objects: one object per row with the non-null common columns,
//! `tags`, and `fields` as an object. Used by `vedette parse`, the API and tests.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use base64::Engine;
use chrono::{TimeZone, Utc};
use serde_json::{Map, Value};

use crate::columns::{list_at, map_at};
use crate::error::CoreError;
use crate::schema::{ColumnKind, EVENT_COLUMNS};

/// Unix milliseconds as RFC 3339 text with millisecond precision, UTC (`Z`).
pub fn format_ms(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

/// Every row of an event batch as a JSON object.
pub fn events_to_json(batch: &RecordBatch) -> Result<Vec<Value>, CoreError> {
    let mut rows = vec![Map::new(); batch.num_rows()];
    for spec in EVENT_COLUMNS {
        let Some(column) = batch.column_by_name(spec.name) else {
            return Err(CoreError::BadInput(format!(
                "batch has no column `{}`",
                spec.name
            )));
        };
        for (row, out) in rows.iter_mut().enumerate() {
            if column.is_null(row) {
                continue;
            }
            let value = match spec.kind {
                ColumnKind::Timestamp => column
                    .as_primitive_opt::<TimestampMillisecondType>()
                    .map(|a| Value::String(format_ms(a.value(row)))),
                ColumnKind::Text => column
                    .as_string_opt::<i32>()
                    .map(|a| Value::from(a.value(row))),
                ColumnKind::Integer => column
                    .as_primitive_opt::<Int64Type>()
                    .map(|a| Value::from(a.value(row))),
                ColumnKind::TextList => {
                    let items = list_at(column, row);
                    (!items.is_empty()).then(|| Value::from(items))
                }
                ColumnKind::FieldMap => {
                    let map: Map<String, Value> = map_at(column, row)
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect();
                    Some(Value::Object(map))
                }
                ColumnKind::Binary => column.as_binary_opt::<i32>().map(|a| {
                    Value::String(base64::engine::general_purpose::STANDARD.encode(a.value(row)))
                }),
            };
            if let Some(v) = value {
                out.insert(spec.name.to_string(), v);
            }
        }
    }
    Ok(rows.into_iter().map(Value::Object).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventBatchBuilder};

    #[test]
    fn rows_carry_set_columns_only() -> Result<(), CoreError> {
        let mut b = EventBatchBuilder::new();
        b.append(&Event {
            timestamp_ms: 1_700_000_000_123,
            id: "x".into(),
            dataset: "syslog".into(),
            ingested_ms: 1_700_000_000_500,
            source_port: Some(22),
            tags: vec!["timezone_missing"],
            fields: vec![("k".into(), "v".into())],
            payload: Some(b"hi".to_vec()),
            ..Event::default()
        });
        let rows = events_to_json(&b.finish()?)?;
        let row = &rows[0];
        assert_eq!(row["@timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(row["source.port"], 22);
        assert_eq!(row["fields"]["k"], "v");
        assert_eq!(row["tags"][0], "timezone_missing");
        assert_eq!(row["payload"], "aGk=");
        assert!(row.get("host.name").is_none());
        Ok(())
    }
}
