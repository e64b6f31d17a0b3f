//! Small helpers to build and read the list and map columns of the alert and
//! dead-letter schemas.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, ListBuilder, MapBuilder, MapFieldNames, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field};

use crate::error::CoreError;

/// Arrow type of a list of UTF-8 strings.
pub(crate) fn string_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// Builds a list-of-strings column, one list per row.
pub(crate) fn string_lists<'a, I, R>(rows: I) -> ArrayRef
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = &'a String>,
{
    let mut b = ListBuilder::new(StringBuilder::new());
    for row in rows {
        for v in row {
            b.values().append_value(v);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

/// Builds a string-to-string map column, one map per row.
pub(crate) fn string_maps<'a, I, R>(rows: I) -> Result<ArrayRef, CoreError>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = (&'a String, &'a String)>,
{
    let names = MapFieldNames {
        entry: "entries".into(),
        key: "keys".into(),
        value: "values".into(),
    };
    let mut b = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for row in rows {
        for (k, v) in row {
            b.keys().append_value(k);
            b.values().append_value(v);
        }
        b.append(true)?;
    }
    Ok(Arc::new(b.finish()))
}

/// A column by name, or an error naming the missing column.
pub(crate) fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, CoreError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| CoreError::BadInput(format!("batch has no column `{name}`")))
}

/// The string value of a UTF-8 column at a row (None when null or not a string column).
pub(crate) fn string_at(array: &ArrayRef, row: usize) -> Option<String> {
    let strings = array.as_string_opt::<i32>()?;
    (!strings.is_null(row)).then(|| strings.value(row).to_string())
}

/// The strings of a list column at a row.
pub(crate) fn list_at(array: &ArrayRef, row: usize) -> Vec<String> {
    let Some(list) = array.as_list_opt::<i32>() else {
        return Vec::new();
    };
    if list.is_null(row) {
        return Vec::new();
    }
    let values = list.value(row);
    match values.as_string_opt::<i32>() {
        Some(s) => s.iter().flatten().map(str::to_string).collect(),
        None => Vec::new(),
    }
}

/// The entries of a string map column at a row.
pub(crate) fn map_at(array: &ArrayRef, row: usize) -> Vec<(String, String)> {
    let Some(map) = array.as_map_opt() else {
        return Vec::new();
    };
    if map.is_null(row) {
        return Vec::new();
    }
    let entries = map.value(row);
    let (Some(keys), Some(values)) = (
        entries.column(0).as_string_opt::<i32>(),
        entries.column(1).as_string_opt::<i32>(),
    ) else {
        return Vec::new();
    };
    keys.iter()
        .zip(values.iter())
        .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
}
