//! Reading one field of a batch by name, row by row: a column of the event schema when
//! there is one, else the key of the `fields` map (the original field names).

use std::borrow::Cow;

use arrow::array::{Array, AsArray, BinaryArray, MapArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Float64Type, TimestampMillisecondType};
use vedette_core::schema::col;

/// Where a field's values are.
pub(crate) enum FieldValues<'a> {
    /// A text column.
    Text(&'a StringArray),
    /// A binary column (`payload`).
    Binary(&'a BinaryArray),
    /// A numeric column, as text or number.
    Number(Vec<Option<f64>>),
    /// Entries of the `fields` map under one key.
    Map { map: &'a MapArray, key: String },
    /// Nowhere.
    Missing,
}

impl<'a> FieldValues<'a> {
    /// The values of `name` in `batch`.
    pub(crate) fn of(batch: &'a RecordBatch, name: &str) -> Self {
        if let Some(c) = batch.column_by_name(name) {
            if c.data_type() == &DataType::Utf8 {
                return Self::Text(c.as_string::<i32>());
            }
            if c.data_type() == &DataType::Binary {
                return Self::Binary(c.as_binary::<i32>());
            }
            if c.data_type().is_numeric() {
                if let Ok(f) = arrow::compute::cast(c, &DataType::Float64) {
                    let a = f.as_primitive::<Float64Type>();
                    return Self::Number(
                        (0..a.len())
                            .map(|i| a.is_valid(i).then(|| a.value(i)))
                            .collect(),
                    );
                }
            }
        }
        match batch
            .column_by_name(col::FIELDS)
            .and_then(|c| c.as_map_opt())
        {
            Some(map) => Self::Map {
                map,
                key: name.to_string(),
            },
            None => Self::Missing,
        }
    }

    /// The value at `row` as text.
    pub(crate) fn text(&self, row: usize) -> Option<Cow<'a, str>> {
        match self {
            Self::Text(a) => a.is_valid(row).then(|| Cow::Borrowed(a.value(row))),
            Self::Number(v) => v.get(row).copied().flatten().map(|n| {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    Cow::Owned(format!("{}", n as i64))
                } else {
                    Cow::Owned(n.to_string())
                }
            }),
            Self::Map { map, key } => map_value(map, key, row).map(Cow::Borrowed),
            Self::Binary(a) => (a.is_valid(row)).then(|| String::from_utf8_lossy(a.value(row))),
            Self::Missing => None,
        }
    }

    /// The value at `row` as bytes (text as its UTF-8).
    pub(crate) fn bytes(&self, row: usize) -> Option<Cow<'a, [u8]>> {
        match self {
            Self::Binary(a) => a.is_valid(row).then(|| Cow::Borrowed(a.value(row))),
            Self::Text(a) => a
                .is_valid(row)
                .then(|| Cow::Borrowed(a.value(row).as_bytes())),
            Self::Map { map, key } => map_value(map, key, row).map(|v| Cow::Borrowed(v.as_bytes())),
            Self::Number(_) | Self::Missing => None,
        }
    }

    /// The value at `row` as a number (text that parses as one counts, hex `0x…` too).
    pub(crate) fn number(&self, row: usize) -> Option<f64> {
        match self {
            Self::Number(v) => v.get(row).copied().flatten(),
            _ => {
                let t = self.text(row)?;
                let t = t.trim();
                match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                    Some(hex) => u64::from_str_radix(hex, 16).ok().map(|n| n as f64),
                    None => t.parse::<f64>().ok().filter(|n| n.is_finite()),
                }
            }
        }
    }
}

/// The value of `key` in row `row` of the `fields` map.
fn map_value<'a>(map: &'a MapArray, key: &str, row: usize) -> Option<&'a str> {
    if map.is_null(row) {
        return None;
    }
    let keys = map.keys().as_string_opt::<i32>()?;
    let values = map.values().as_string_opt::<i32>()?;
    let offsets = map.value_offsets();
    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
    (start..end)
        .find(|&i| keys.value(i) == key)
        .filter(|&i| values.is_valid(i))
        .map(|i| values.value(i))
}

/// The event time of every row (`None` where it is missing).
pub(crate) fn times(batch: &RecordBatch) -> Vec<Option<i64>> {
    match batch
        .column_by_name(col::TIMESTAMP)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
    {
        Some(t) => (0..t.len())
            .map(|i| t.is_valid(i).then(|| t.value(i)))
            .collect(),
        None => vec![None; batch.num_rows()],
    }
}
