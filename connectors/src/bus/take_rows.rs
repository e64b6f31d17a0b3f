//! Copies chosen rows of a batch into a new one: Arrow's `take`, with a fast path for
//! maps of UTF-8 keys to UTF-8 values (the event schema's `fields`).
//!
//! Arrow's generic `take` copies a map row by row through `MutableArrayData`, growing
//! its buffers as it goes; on event batches that was half of what splitting a batch by
//! partition cost. A row's entries are contiguous in the key and value columns, so the
//! fast path sizes every buffer first and copies each row's keys and values as two
//! slices.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBufferBuilder, MapArray, RecordBatch, RecordBatchOptions,
    StringArray, StructArray, UInt32Array,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::compute::take;
use arrow::datatypes::DataType;
use vedette_core::CoreError;

/// The rows `rows` of `records`, in that order. Every row must be below the batch's
/// row count (Arrow's take panics past it).
pub(crate) fn take_rows(records: &RecordBatch, rows: &[u32]) -> Result<RecordBatch, CoreError> {
    let mut indices: Option<UInt32Array> = None;
    let columns = records
        .columns()
        .iter()
        .map(|column| {
            if let Some(taken) = column.as_map_opt().and_then(|m| take_string_map(m, rows)) {
                return Ok(taken);
            }
            let indices = indices.get_or_insert_with(|| UInt32Array::from(rows.to_vec()));
            Ok(take(column.as_ref(), indices, None)?)
        })
        .collect::<Result<Vec<ArrayRef>, CoreError>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    Ok(RecordBatch::try_new_with_options(
        records.schema(),
        columns,
        &options,
    )?)
}

/// Byte range of the values of entries `start..end` of a string column.
fn span(offsets: &[i32], start: usize, end: usize) -> Option<(usize, usize)> {
    let from = usize::try_from(*offsets.get(start)?).ok()?;
    let to = usize::try_from(*offsets.get(end)?).ok()?;
    (from <= to).then_some((from, to))
}

/// The rows `rows` of a map of non-null UTF-8 keys to UTF-8 values with no null rows or
/// entries; `None` when the map has another shape (the caller then uses Arrow's take).
fn take_string_map(map: &MapArray, rows: &[u32]) -> Option<ArrayRef> {
    let DataType::Map(entries_field, sorted) = map.data_type() else {
        return None;
    };
    let entries = map.entries();
    if map.null_count() > 0 || entries.null_count() > 0 || entries.num_columns() != 2 {
        return None;
    }
    let keys = entries.column(0).as_string_opt::<i32>()?;
    let values = entries.column(1).as_string_opt::<i32>()?;
    if keys.null_count() > 0 {
        return None;
    }
    let row_offsets = map.value_offsets();
    let (key_offsets, value_offsets) = (keys.value_offsets(), values.value_offsets());
    let entry_range = |row: u32| -> Option<(usize, usize)> {
        let row = row as usize;
        let start = usize::try_from(*row_offsets.get(row)?).ok()?;
        let end = usize::try_from(*row_offsets.get(row + 1)?).ok()?;
        (start <= end).then_some((start, end))
    };

    // Sizes first, so every buffer is allocated once.
    let (mut entry_count, mut key_bytes, mut value_bytes) = (0usize, 0usize, 0usize);
    let mut new_row_offsets = Vec::with_capacity(rows.len() + 1);
    new_row_offsets.push(0i32);
    for &row in rows {
        let (start, end) = entry_range(row)?;
        let (k0, k1) = span(key_offsets, start, end)?;
        let (v0, v1) = span(value_offsets, start, end)?;
        entry_count += end - start;
        key_bytes += k1 - k0;
        value_bytes += v1 - v0;
        new_row_offsets.push(i32::try_from(entry_count).ok()?);
    }
    i32::try_from(key_bytes.max(value_bytes)).ok()?;

    let (key_data, value_data) = (keys.value_data(), values.value_data());
    let mut new_keys = Vec::with_capacity(key_bytes);
    let mut new_values = Vec::with_capacity(value_bytes);
    let mut new_key_offsets = Vec::with_capacity(entry_count + 1);
    let mut new_value_offsets = Vec::with_capacity(entry_count + 1);
    new_key_offsets.push(0i32);
    new_value_offsets.push(0i32);
    let mut validity = values
        .nulls()
        .map(|_| BooleanBufferBuilder::new(entry_count));
    for &row in rows {
        let (start, end) = entry_range(row)?;
        copy_strings(
            key_offsets,
            key_data,
            start,
            end,
            &mut new_keys,
            &mut new_key_offsets,
        )?;
        copy_strings(
            value_offsets,
            value_data,
            start,
            end,
            &mut new_values,
            &mut new_value_offsets,
        )?;
        if let (Some(builder), Some(nulls)) = (validity.as_mut(), values.nulls()) {
            let bits = nulls.inner();
            builder.append_packed_range(bits.offset() + start..bits.offset() + end, bits.values());
        }
    }

    let new_keys = StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(new_key_offsets)),
        Buffer::from_vec(new_keys),
        None,
    )
    .ok()?;
    let new_values = StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(new_value_offsets)),
        Buffer::from_vec(new_values),
        validity.map(|mut b| NullBuffer::new(b.finish())),
    )
    .ok()?;
    let new_entries = StructArray::try_new(
        entries.fields().clone(),
        vec![Arc::new(new_keys), Arc::new(new_values)],
        None,
    )
    .ok()?;
    let taken = MapArray::try_new(
        entries_field.clone(),
        OffsetBuffer::new(ScalarBuffer::from(new_row_offsets)),
        new_entries,
        None,
        *sorted,
    )
    .ok()?;
    Some(Arc::new(taken))
}

/// Appends the strings of entries `start..end` (offsets into `data`) to `bytes`, with
/// their offsets rebased onto it.
fn copy_strings(
    offsets: &[i32],
    data: &[u8],
    start: usize,
    end: usize,
    bytes: &mut Vec<u8>,
    new_offsets: &mut Vec<i32>,
) -> Option<()> {
    let (from, to) = span(offsets, start, end)?;
    let base = i32::try_from(bytes.len()).ok()? - offsets[start];
    bytes.extend_from_slice(data.get(from..to)?);
    new_offsets.extend(offsets.get(start + 1..=end)?.iter().map(|o| o + base));
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{MapBuilder, StringBuilder};
    use arrow::compute::take_record_batch;
    use arrow::datatypes::{Field, Schema};
    use proptest::prelude::*;

    /// A batch with a `fields` map (rows of (key, value or null)) and a text column.
    fn batch(rows: &[Vec<(String, Option<String>)>]) -> RecordBatch {
        let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        let mut text = StringBuilder::new();
        for (i, row) in rows.iter().enumerate() {
            for (k, v) in row {
                map.keys().append_value(k);
                map.values().append_option(v.as_deref());
            }
            map.append(true).unwrap();
            text.append_value(format!("row {i}"));
        }
        let map = map.finish();
        let text = text.finish();
        let schema = Schema::new(vec![
            Field::new("fields", map.data_type().clone(), false),
            Field::new("message", DataType::Utf8, false),
        ]);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(map), Arc::new(text)]).unwrap()
    }

    fn row_strategy() -> impl Strategy<Value = Vec<(String, Option<String>)>> {
        prop::collection::vec(("[a-zé]{0,6}", prop::option::of("[ -~ü]{0,12}")), 0..5)
    }

    proptest! {
        #[test]
        fn same_as_arrow_take(
            rows in prop::collection::vec(row_strategy(), 1..30),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
            cut in any::<prop::sample::Index>(),
        ) {
            let whole = batch(&rows);
            // Also on a slice, whose offsets do not start at zero.
            let skip = cut.index(whole.num_rows());
            for records in [whole.clone(), whole.slice(skip, whole.num_rows() - skip)] {
                if records.num_rows() == 0 {
                    continue;
                }
                let chosen: Vec<u32> = picks.iter().map(|i| i.index(records.num_rows()) as u32).collect();
                let ours = take_rows(&records, &chosen).unwrap();
                let arrows = take_record_batch(&records, &UInt32Array::from(chosen.clone())).unwrap();
                prop_assert_eq!(ours, arrows);
            }
        }
    }

    #[test]
    fn the_fast_path_is_taken_for_string_maps_and_other_maps_fall_back() {
        let records = batch(&[
            vec![("a".into(), Some("1".into())), ("b".into(), None)],
            vec![],
            vec![("c".into(), Some("3".into()))],
        ]);
        let map = records.column(0).as_map();
        let fast = take_string_map(map, &[2, 0]).expect("a string map");
        assert_eq!(fast.len(), 2);
        // An out-of-range row is refused, not read past the buffers.
        assert!(take_string_map(map, &[3]).is_none());
        // A map with null rows falls back.
        let mut nullable = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        nullable.append(false).unwrap();
        let nullable = nullable.finish();
        assert!(take_string_map(&nullable, &[0]).is_none());
    }
}
