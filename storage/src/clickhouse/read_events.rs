//! Events read back from ClickHouse in the event schema, for retro-hunts: the select
//! list that undoes the table's encoding, and the conversion of its results.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, GenericListArray, MapBuilder, RecordBatch,
    StringBuilder,
};
use arrow::datatypes::DataType;
use vedette_core::schema::event_schema;
use vedette_core::traits::Table;
use vedette_core::CoreError;

use super::tables::{self, quote, Profile};

/// The query for events with `from_ms <= @timestamp < to_ms`, one result column per
/// column of the event schema, except maps (two: keys then values) and binaries (hex).
pub(crate) fn select_events(database: &str, profile: Profile, from_ms: i64, to_ms: i64) -> String {
    let schema = tables::arrow_schema(Table::Events);
    let mut list = Vec::new();
    for field in schema.fields() {
        let c = quote(field.name());
        match field.data_type() {
            DataType::Binary => list.push(format!("hex({c})")),
            DataType::Map(..) => match profile {
                Profile::Portable => {
                    list.push(quote(&format!("{}.key", field.name())));
                    list.push(quote(&format!("{}.value", field.name())));
                }
                Profile::Modern => {
                    list.push(format!("mapKeys({c})"));
                    list.push(format!("mapValues({c})"));
                }
            },
            _ => list.push(c),
        }
    }
    let (from, to) = match profile {
        Profile::Portable => (
            format!("toDateTime({})", from_ms.div_euclid(1000).max(0)),
            format!("toDateTime({})", (to_ms + 999).div_euclid(1000).max(0)),
        ),
        Profile::Modern => (
            format!("fromUnixTimestamp64Milli(toInt64({from_ms}), 'UTC')"),
            format!("fromUnixTimestamp64Milli(toInt64({to_ms}), 'UTC')"),
        ),
    };
    format!(
        "SELECT {} FROM {}.events WHERE `@timestamp` >= {from} AND `@timestamp` < {to}",
        list.join(", "),
        quote(database)
    )
}

fn shape(what: &str) -> CoreError {
    CoreError::Internal(format!(
        "clickhouse: events read back have an unexpected {what}"
    ))
}

/// Turns one result batch of [`select_events`] into a batch of the event schema.
pub(crate) fn to_event_batch(result: &RecordBatch) -> Result<RecordBatch, CoreError> {
    let schema = event_schema();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    let mut i = 0;
    for field in schema.fields() {
        let next = |i: usize| -> Result<&ArrayRef, CoreError> {
            if i < result.num_columns() {
                Ok(result.column(i))
            } else {
                Err(shape("number of columns"))
            }
        };
        match field.data_type() {
            DataType::Binary => {
                let hex = next(i)?
                    .as_string_opt::<i32>()
                    .ok_or_else(|| shape("binary"))?;
                let mut b = BinaryBuilder::new();
                for row in 0..hex.len() {
                    if hex.is_null(row) {
                        b.append_null();
                    } else {
                        b.append_value(unhex(hex.value(row))?);
                    }
                }
                columns.push(Arc::new(b.finish()));
                i += 1;
            }
            DataType::Map(..) => {
                let keys = next(i)?.as_list_opt::<i32>().ok_or_else(|| shape("map"))?;
                let values = next(i + 1)?
                    .as_list_opt::<i32>()
                    .ok_or_else(|| shape("map"))?;
                columns.push(Arc::new(zip_map(keys, values)?));
                i += 2;
            }
            wanted => {
                let c = next(i)?;
                let c = if c.data_type() == wanted {
                    c.clone()
                } else {
                    arrow::compute::cast(c, wanted)?
                };
                columns.push(c);
                i += 1;
            }
        }
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn zip_map(
    keys: &GenericListArray<i32>,
    values: &GenericListArray<i32>,
) -> Result<arrow::array::MapArray, CoreError> {
    let mut b = MapBuilder::new(
        Some(arrow::array::builder::MapFieldNames {
            entry: "entries".into(),
            key: "keys".into(),
            value: "values".into(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    for row in 0..keys.len() {
        let (k, v) = (keys.value(row), values.value(row));
        let (k, v) = (
            k.as_string_opt::<i32>().ok_or_else(|| shape("map key"))?,
            v.as_string_opt::<i32>().ok_or_else(|| shape("map value"))?,
        );
        if k.len() != v.len() {
            return Err(shape("map (keys and values differ in length)"));
        }
        for j in 0..k.len() {
            b.keys().append_value(k.value(j));
            b.values().append_value(v.value(j));
        }
        b.append(true)?;
    }
    Ok(b.finish())
}

fn unhex(text: &str) -> Result<Vec<u8>, CoreError> {
    let digit = |c: u8| -> Result<u8, CoreError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(shape("hex digit")),
        }
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [h, l] => Ok(digit(*h)? << 4 | digit(*l)?),
            _ => Err(shape("hex length")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex("00fF10").unwrap(), vec![0, 255, 16]);
        assert!(unhex("0").is_err());
        assert!(unhex("zz").is_err());
    }

    #[test]
    fn the_select_list_covers_the_schema() {
        let sql = select_events("vedette", Profile::Portable, 1500, 2500);
        assert!(sql.contains("`fields.key`, `fields.value`"), "{sql}");
        assert!(sql.contains("hex(`payload`)"), "{sql}");
        assert!(
            sql.contains(">= toDateTime(1) AND `@timestamp` < toDateTime(3)"),
            "{sql}"
        );
        let sql = select_events("vedette", Profile::Modern, 1500, 2500);
        assert!(sql.contains("mapKeys(`fields`)"), "{sql}");
    }
}
