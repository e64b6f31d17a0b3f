//! Arrow record batches encoded as ClickHouse `RowBinary`, column plan by column plan
//! ([`crate::clickhouse::tables::columns`]), with no intermediate row structs.

use arrow::array::{
    Array, AsArray, BinaryArray, GenericListArray, Int64Array, MapArray, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt64Array,
};
use arrow::datatypes::{Int64Type, TimestampMillisecondType, UInt64Type};
use vedette_core::batch::BusPosition;
use vedette_core::CoreError;

use super::tables::{Column, Fill, NO_OFFSET};

/// Appends `value` as an unsigned LEB128 varint.
fn varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// One Arrow column, typed once per batch.
enum Source<'a> {
    Utf8(&'a StringArray),
    Binary(&'a BinaryArray),
    Int64(&'a Int64Array),
    UInt64(&'a UInt64Array),
    Millis(&'a TimestampMillisecondArray),
    List(&'a GenericListArray<i32>),
    Map(&'a MapArray),
    Position(u64),
}

fn source<'a>(
    batch: &'a RecordBatch,
    fill: Fill,
    position: Option<&BusPosition>,
) -> Result<Source<'a>, CoreError> {
    let wrong = |index: usize| {
        CoreError::BadInput(format!(
            "clickhouse: column {} does not have the type of the table",
            batch.schema().field(index).name()
        ))
    };
    let col = |index: usize| -> Result<&'a dyn Array, CoreError> {
        if index < batch.num_columns() {
            Ok(batch.column(index).as_ref())
        } else {
            Err(CoreError::BadInput(format!(
                "clickhouse: batch has {} columns, the table more",
                batch.num_columns()
            )))
        }
    };
    Ok(match fill {
        Fill::Str { index, .. } => {
            let c = col(index)?;
            if let Some(s) = c.as_string_opt::<i32>() {
                Source::Utf8(s)
            } else {
                Source::Binary(c.as_binary_opt::<i32>().ok_or_else(|| wrong(index))?)
            }
        }
        Fill::Int64 { index, .. } => Source::Int64(
            col(index)?
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| wrong(index))?,
        ),
        Fill::UInt64 { index } => Source::UInt64(
            col(index)?
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| wrong(index))?,
        ),
        Fill::Seconds { index, .. } | Fill::Millis { index, .. } => Source::Millis(
            col(index)?
                .as_primitive_opt::<TimestampMillisecondType>()
                .ok_or_else(|| wrong(index))?,
        ),
        Fill::StrList { index } => Source::List(
            col(index)?
                .as_list_opt::<i32>()
                .ok_or_else(|| wrong(index))?,
        ),
        Fill::Map { index } | Fill::MapKeys { index } | Fill::MapValues { index } => {
            Source::Map(col(index)?.as_map_opt().ok_or_else(|| wrong(index))?)
        }
        Fill::Partition => Source::Position(position.map_or(0, |p| u64::from(p.partition))),
        Fill::Offset => Source::Position(position.map_or(NO_OFFSET, |p| p.offset)),
    })
}

/// Text of a string-like array at `i` (`None` when null or not text).
fn text(a: &dyn Array, i: usize) -> Option<&[u8]> {
    if a.is_null(i) {
        return None;
    }
    if let Some(s) = a.as_string_opt::<i32>() {
        return Some(s.value(i).as_bytes());
    }
    a.as_binary_opt::<i32>().map(|b| b.value(i))
}

/// Appends the rows of `batch` (from bus position `position`, if any) to `out`.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    batch: &RecordBatch,
    columns: &[Column],
    position: Option<&BusPosition>,
) -> Result<(), CoreError> {
    let sources: Vec<Source<'_>> = columns
        .iter()
        .map(|c| source(batch, c.fill, position))
        .collect::<Result<_, _>>()?;
    for row in 0..batch.num_rows() {
        for (column, src) in columns.iter().zip(&sources) {
            write_cell(out, column.fill, src, row)?;
        }
    }
    Ok(())
}

fn write_cell(
    out: &mut Vec<u8>,
    fill: Fill,
    src: &Source<'_>,
    row: usize,
) -> Result<(), CoreError> {
    let nullable = matches!(
        fill,
        Fill::Str { nullable: true, .. }
            | Fill::Int64 { nullable: true, .. }
            | Fill::Seconds { nullable: true, .. }
            | Fill::Millis { nullable: true, .. }
    );
    let present = |a: &dyn Array| !a.is_null(row);
    match (fill, src) {
        (Fill::Str { .. }, Source::Utf8(a)) => {
            if nullable {
                out.push(u8::from(!present(*a)));
            }
            if present(*a) {
                bytes(out, a.value(row).as_bytes());
            } else if !nullable {
                bytes(out, b"");
            }
        }
        (Fill::Str { .. }, Source::Binary(a)) => {
            if nullable {
                out.push(u8::from(!present(*a)));
            }
            if present(*a) {
                bytes(out, a.value(row));
            } else if !nullable {
                bytes(out, b"");
            }
        }
        (Fill::Int64 { .. }, Source::Int64(a)) => {
            if nullable {
                out.push(u8::from(!present(*a)));
            }
            if present(*a) || !nullable {
                out.extend_from_slice(&a.value(row).to_le_bytes());
            }
        }
        (Fill::UInt64 { .. }, Source::UInt64(a)) => {
            out.extend_from_slice(&a.value(row).to_le_bytes());
        }
        (Fill::Seconds { .. } | Fill::Millis { .. }, Source::Millis(a)) => {
            if nullable {
                out.push(u8::from(!present(*a)));
                if !present(*a) {
                    return Ok(());
                }
            }
            if matches!(fill, Fill::Seconds { .. }) {
                // `DateTime` holds seconds from 1970 to 2106.
                let secs = a.value(row).div_euclid(1000).clamp(0, i64::from(u32::MAX));
                out.extend_from_slice(&(secs as u32).to_le_bytes());
            } else {
                out.extend_from_slice(&a.value(row).to_le_bytes());
            }
        }
        (Fill::StrList { .. }, Source::List(a)) => {
            if a.is_null(row) {
                varint(out, 0);
            } else {
                let items = a.value(row);
                varint(out, items.len() as u64);
                for i in 0..items.len() {
                    bytes(out, text(items.as_ref(), i).unwrap_or_default());
                }
            }
        }
        (Fill::Map { .. } | Fill::MapKeys { .. } | Fill::MapValues { .. }, Source::Map(m)) => {
            if m.is_null(row) {
                varint(out, 0);
                return Ok(());
            }
            let offsets = m.value_offsets();
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            let keys = m.keys();
            let values = m.values();
            varint(out, (end - start) as u64);
            for i in start..end {
                match fill {
                    Fill::MapKeys { .. } => bytes(out, text(keys.as_ref(), i).unwrap_or_default()),
                    Fill::MapValues { .. } => {
                        bytes(out, text(values.as_ref(), i).unwrap_or_default())
                    }
                    _ => {
                        bytes(out, text(keys.as_ref(), i).unwrap_or_default());
                        bytes(out, text(values.as_ref(), i).unwrap_or_default());
                    }
                }
            }
        }
        (Fill::Partition, Source::Position(p)) => {
            out.extend_from_slice(&(*p as u32).to_le_bytes());
        }
        (Fill::Offset, Source::Position(p)) => {
            out.extend_from_slice(&p.to_le_bytes());
        }
        (fill, _) => {
            return Err(CoreError::Internal(format!(
                "clickhouse: no encoding of {fill:?} for this column"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_leb128() {
        let mut out = Vec::new();
        varint(&mut out, 0);
        varint(&mut out, 127);
        varint(&mut out, 128);
        varint(&mut out, 300);
        assert_eq!(out, [0, 127, 0x80, 1, 0xac, 2]);
    }
}
