//! Raw fields stored as columns of their own: the keys of the `fields` map that SOC
//! queries and Sigma rules read most are taken out of the map when an events file is
//! written and stored as text columns named `fields.<key>`.
//!
//! A query of `fields['CommandLine']` then reads one column instead of every key and
//! value of every event ([`super::shredded_read`] plans it so), and a key's values,
//! stored together, compress better than interleaved with every other key's. The map
//! a query sees is whole again: the read side puts the columns back into it.
//!
//! Of these keys, those whose value is usually the end of `message` (`syslog.message`)
//! store it as an offset into `message` where it is ([`super::message_tail`]); those
//! whose value is usually another column's (`CommandLine`, `process.command_line`) store
//! a flag where it is ([`super::same_as`]).
//!
//! Every events file holds all the columns (null where an event lacks the key): a
//! query then never meets a file without one (DataFusion would read a missing column
//! as null, not look in the map). Files of an older layout (no shredded keys, or
//! another list of them) are rewritten in this one when the store opens
//! ([`super::upgrade`]).

use std::sync::{Arc, OnceLock};

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, MapArray, RecordBatch, StringArray, StringBuilder,
    StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use vedette_core::schema::{col, event_schema, field_map_type};
use vedette_core::CoreError;

use super::key_table::KeyTable;
use super::map_refs::{self, RefIndex, Sources, StoredKey};
use super::message_tail::{self, TAIL_KEYS};
use super::rows::RowRef;
use super::same_as::{self, SAME_AS};

/// The keys stored as columns, in column order: Windows event data, syslog and cloud
/// audit fields an analyst filters on.
pub(crate) const SHREDDED_KEYS: &[&str] = &[
    "EventID",
    "Channel",
    "Provider_Name",
    "Computer",
    "EventRecordID",
    "TimeCreated",
    "TimeCreated_SystemTime",
    "Image",
    "CommandLine",
    "ParentImage",
    "ParentCommandLine",
    "OriginalFileName",
    "User",
    "ProcessId",
    "ParentProcessId",
    "LogonId",
    "Hashes",
    "TargetFilename",
    "TargetObject",
    "ScriptBlockText",
    "SourceIp",
    "DestinationIp",
    "DestinationPort",
    "QueryName",
    "TargetUserName",
    "SubjectUserName",
    "IpAddress",
    "LogonType",
    "syslog.appname",
    "syslog.hostname",
    "syslog.message",
    "eventName",
    "eventSource",
    "sourceIPAddress",
];

/// Prefix of a shredded column's name: `fields.CommandLine`.
pub(crate) const PREFIX: &str = "fields.";

/// The column name of shredded key `key`.
pub(crate) fn column_name(key: &str) -> String {
    format!("{PREFIX}{key}")
}

/// Rows of room a shredded key's hit list takes at its first hit: an append's rows.
const FIRST_HIT_ROOM: usize = 65_536;

/// What a key of `fields` is to a file: the column it is shredded into, and the pair of
/// [`MAP_SAME_AS`](super::map_refs::MAP_SAME_AS) it belongs to with its stored
/// reference key. One probe answers both for every entry written.
struct KeyRole {
    /// Position in [`SHREDDED_KEYS`].
    column: Option<usize>,
    /// Pair index and reference key ([`RefIndex`]).
    reference: Option<(usize, &'static str)>,
}

/// The roles of the shredded and referenced keys, built once.
fn key_roles() -> &'static KeyTable<KeyRole> {
    static ROLES: OnceLock<KeyTable<KeyRole>> = OnceLock::new();
    ROLES.get_or_init(|| {
        let refs = RefIndex::get();
        let keys = SHREDDED_KEYS
            .iter()
            .chain(map_refs::MAP_SAME_AS.iter().map(|(k, _)| k));
        KeyTable::new(keys.map(|&key| {
            let role = KeyRole {
                column: SHREDDED_KEYS.iter().position(|k| *k == key),
                reference: refs.find(key),
            };
            (key, role)
        }))
    })
}

/// The schema of the `events` table: the event schema, then one text column per
/// shredded key.
pub(crate) fn table_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| with_key_columns(field_map_type(), false))
        .clone()
}

/// The schema of events files: [`table_schema`], the map of the keys left in
/// [`stored_map_type`], then the offset column of each key of [`TAIL_KEYS`] and the
/// flag column of each pair of [`SAME_AS`].
pub(crate) fn file_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| with_key_columns(stored_map_type(), true))
        .clone()
}

/// The type of the map of the keys left in a file: the event schema's map, its parts
/// named as Parquet names them (`key_value`, `key`, `value`). The type differs from the
/// table's, so every shredded file's scan goes through [`super::shredded_read`] (which
/// puts the keys back).
pub(crate) fn stored_map_type() -> DataType {
    let entries = Field::new(
        "key_value",
        DataType::Struct(
            vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// The event schema with `fields` of type `map` and the shredded keys' columns after it,
/// then, `with_tails`, the offset columns of [`TAIL_KEYS`] and the flag columns of
/// [`SAME_AS`].
fn with_key_columns(map: DataType, with_tails: bool) -> SchemaRef {
    let events = event_schema();
    let mut fields: Vec<Field> = events
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            col::FIELDS => f.as_ref().clone().with_data_type(map.clone()),
            _ => f.as_ref().clone(),
        })
        .collect();
    fields.extend(
        SHREDDED_KEYS
            .iter()
            .map(|k| Field::new(column_name(k), DataType::Utf8, true)),
    );
    if with_tails {
        fields.extend(
            TAIL_KEYS
                .iter()
                .map(|k| Field::new(message_tail::column_name(k), DataType::Int32, true)),
        );
        fields.extend(
            SAME_AS
                .iter()
                .map(|(k, s)| Field::new(same_as::column_name(k, s), DataType::Boolean, true)),
        );
    }
    Arc::new(Schema::new_with_metadata(fields, events.metadata().clone()))
}

/// Whether a file of `schema` has its keys shredded (in this layout or an older one).
pub(crate) fn is_shredded(schema: &Schema) -> bool {
    schema.fields().iter().any(|f| f.name().starts_with(PREFIX))
}

/// Whether a file of `schema` is an events file of this layout.
pub(crate) fn is_current(schema: &Schema) -> bool {
    schema
        .fields()
        .iter()
        .map(|f| (f.name(), f.data_type()))
        .eq(file_schema()
            .fields()
            .iter()
            .map(|f| (f.name(), f.data_type())))
}

/// Whether rows of `schema` are events (they have the `fields` map).
fn is_events(schema: &Schema) -> bool {
    schema
        .field_with_name(col::FIELDS)
        .is_ok_and(|f| matches!(f.data_type(), DataType::Map(..)))
}

/// `batch` as files store it: events in this layout (shredded, from the event schema
/// or from an older layout), the rows of other tables as they are.
pub(crate) fn for_storage(batch: &RecordBatch) -> Result<RecordBatch, CoreError> {
    let schema = batch.schema();
    if !is_events(&schema) || is_current(&schema) {
        return Ok(batch.clone());
    }
    if is_shredded(&schema) {
        shred(&to_events(batch)?)
    } else {
        shred(batch)
    }
}

/// Events of a shredded layout (this one or an older) back in the event schema: every
/// `fields.<key>` column's values into the map.
pub(crate) fn to_events(batch: &RecordBatch) -> Result<RecordBatch, CoreError> {
    let schema = batch.schema();
    let map_index = schema
        .index_of(col::FIELDS)
        .map_err(|e| CoreError::Internal(format!("events without fields: {e}")))?;
    let map = batch
        .column(map_index)
        .as_map_opt()
        .ok_or_else(|| CoreError::Internal("fields is not a map".into()))?;
    let mut keys = Vec::new();
    let mut columns: Vec<StringArray> = Vec::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if let Some(key) = field.name().strip_prefix(PREFIX) {
            let text = column
                .as_string_opt::<i32>()
                .ok_or_else(|| CoreError::Internal(format!("{} is not text", field.name())))?;
            keys.push(key);
            let values = message_tail::stored_values(batch, key, text)?;
            columns.push(same_as::stored_values(batch, key, values)?);
        }
    }
    let columns: Vec<&StringArray> = columns.iter().collect();
    let sources = Sources::of(batch)?;
    let escaped = same_as::has_flags(&schema);
    let whole: ArrayRef = Arc::new(unshred_map(map, &keys, &columns, &sources, escaped)?);
    let events = event_schema();
    let out = events
        .fields()
        .iter()
        .map(|f| {
            if f.name() == col::FIELDS {
                Ok(whole.clone())
            } else {
                batch.column_by_name(f.name()).cloned().ok_or_else(|| {
                    CoreError::Internal(format!("an events file without {}", f.name()))
                })
            }
        })
        .collect::<Result<Vec<_>, CoreError>>()?;
    RecordBatch::try_new(events, out)
        .map_err(|e| CoreError::Internal(format!("events of an older layout: {e}")))
}

/// `batch` (of the event schema) in the stored layout: the shredded keys taken out of
/// `fields` into their columns. A key present twice in an event keeps its first value
/// in the column and the others in the map.
pub(crate) fn shred(batch: &RecordBatch) -> Result<RecordBatch, CoreError> {
    let rows: Vec<RowRef> = (0..batch.num_rows()).map(|r| (0, r)).collect();
    gather(std::slice::from_ref(batch), &rows)
}

/// The rows `rows` of `batches` gathered into one batch as files store it: events (of
/// the event schema) shredded as they are gathered, in one copy; other rows gathered
/// and then made ready for storage ([`for_storage`]).
pub(crate) fn gather(batches: &[RecordBatch], rows: &[RowRef]) -> Result<RecordBatch, CoreError> {
    let Some(first) = batches.first() else {
        return Err(CoreError::Internal("gathering rows of no batch".into()));
    };
    let schema = first.schema();
    if !is_events(&schema) || is_shredded(&schema) {
        return for_storage(&super::rows::gather(batches, rows)?);
    }
    let index = schema
        .index_of(col::FIELDS)
        .map_err(|e| CoreError::Internal(format!("events without fields: {e}")))?;
    let others: Vec<usize> = (0..schema.fields().len()).filter(|&c| c != index).collect();
    let projected = batches
        .iter()
        .map(|b| b.project(&others))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CoreError::Internal(format!("gathering events: {e}")))?;
    let maps = batches
        .iter()
        .map(|b| {
            b.column(index).as_map_opt().ok_or_else(|| {
                CoreError::Internal(format!(
                    "fields is {}, not a map",
                    b.column(index).data_type()
                ))
            })
        })
        .collect::<Result<Vec<&MapArray>, _>>()?;
    let messages = batches
        .iter()
        .map(|b| {
            b.column_by_name(col::MESSAGE)
                .map(|m| {
                    m.as_string_opt::<i32>().ok_or_else(|| {
                        CoreError::Internal(format!("message is {}, not text", m.data_type()))
                    })
                })
                .transpose()
        })
        .collect::<Result<Vec<Option<&StringArray>>, _>>()?;
    let sources = batches
        .iter()
        .map(Sources::of)
        .collect::<Result<Vec<_>, _>>()?;
    let (gathered, shredded) = rayon::join(
        || super::rows::gather(&projected, rows),
        || shred_rows(&maps, &messages, &sources, rows),
    );
    let (gathered, (rest, columns)) = (gathered?, shredded?);
    let mut out: Vec<ArrayRef> = gathered.columns().to_vec();
    out.insert(index, Arc::new(rest));
    out.extend(columns);
    let out = same_as::fold_all(out)?;
    RecordBatch::try_new(file_schema(), out)
        .map_err(|e| CoreError::Internal(format!("shredding fields: {e}")))
}

/// The `fields` of rows `rows` of `maps`: the map of the keys not shredded, and a column
/// per shredded key, each value copied once, then an offset column per key of
/// [`TAIL_KEYS`] (`messages` are the batches' original lines). An entry left in the map
/// that repeats its source column in `sources` is stored as a reference
/// ([`super::map_refs`]).
fn shred_rows(
    maps: &[&MapArray],
    messages: &[Option<&StringArray>],
    sources: &[Sources],
    rows: &[RowRef],
) -> Result<(MapArray, Vec<ArrayRef>), CoreError> {
    let text = |a: &ArrayRef| {
        a.as_string_opt::<i32>()
            .cloned()
            .ok_or_else(|| CoreError::Internal("fields keys or values are not UTF-8".into()))
    };
    let keys = maps
        .iter()
        .map(|m| text(m.keys()))
        .collect::<Result<Vec<StringArray>, _>>()?;
    let values = maps
        .iter()
        .map(|m| text(m.values()))
        .collect::<Result<Vec<StringArray>, _>>()?;
    let roles = key_roles();
    let pair_sources: Vec<Vec<Option<&map_refs::SourceColumn>>> =
        sources.iter().map(Sources::by_pair).collect();
    let mut buf = String::new();
    // More than 2 GiB of keys or values in one file's rows is an error, not a panic.
    let (mut entry_count, mut key_bytes, mut value_bytes) = (0usize, 0usize, 0usize);
    for &(b, row) in rows {
        let o = maps[b].value_offsets();
        let (start, end) = (o[row] as usize, o[row + 1] as usize);
        entry_count += end - start;
        let (k, v) = (keys[b].value_offsets(), values[b].value_offsets());
        key_bytes += (k[end] - k[start]) as usize;
        value_bytes += (v[end] - v[start]) as usize;
    }
    // A reference key is longer than its key, an escaped key one byte longer.
    let key_bytes = key_bytes + entry_count * (1 + map_refs::longest_source());
    check_offsets(entry_count.max(key_bytes).max(value_bytes))?;
    let mut kept_keys = StringBuilder::with_capacity(entry_count, key_bytes);
    let mut kept_values = StringBuilder::with_capacity(entry_count, value_bytes);
    // Per key, the (row out, batch, entry) of its first occurrence in each event.
    let mut hits: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new(); SHREDDED_KEYS.len()];
    let mut offsets: Vec<i32> = Vec::with_capacity(rows.len() + 1);
    offsets.push(0);
    let mut len = 0i32;
    for (out, &(b, row)) in rows.iter().enumerate() {
        let map_offsets = maps[b].value_offsets();
        for entry in map_offsets[row] as usize..map_offsets[row + 1] as usize {
            let key = keys[b].value(entry);
            let role = roles.find(key.as_bytes());
            match role.and_then(|r| r.column) {
                // A null value stays in the map, so the key is still there.
                Some(k)
                    if values[b].is_valid(entry)
                        && hits[k].last().is_none_or(|&(o, _, _)| o != out) =>
                {
                    // A key is in most rows of an append's folder or in none: room for
                    // the rows left (up to an append's size) at its first hit, then
                    // doubling as usual (a merge's rows may hold a key in few of them).
                    let key_hits = &mut hits[k];
                    if key_hits.capacity() == 0 {
                        key_hits.reserve_exact((rows.len() - out).min(FIRST_HIT_ROOM));
                    }
                    key_hits.push((out, b, entry))
                }
                _ => {
                    let v = &values[b];
                    let value = v.is_valid(entry).then(|| v.value(entry));
                    let reference = value.and_then(|value| {
                        let (pair, stored) = role?.reference?;
                        let source = pair_sources[b][pair]?;
                        (source.text(row, &mut buf)? == value).then_some(stored)
                    });
                    match reference {
                        Some(stored) => {
                            kept_keys.append_value(stored);
                            kept_values.append_null();
                        }
                        None => {
                            kept_keys.append_value(map_refs::plain_key(key));
                            kept_values.append_option(value);
                        }
                    }
                    len += 1;
                }
            }
        }
        offsets.push(len);
    }
    let nulls = maps
        .iter()
        .any(|m| m.null_count() > 0)
        .then(|| NullBuffer::from_iter(rows.iter().map(|&(b, row)| maps[b].is_valid(row))));
    let rest = map_of(
        stored_map_type(),
        offsets,
        Arc::new(kept_keys.finish()),
        Arc::new(kept_values.finish()),
        nulls,
    )?;
    // A key no event has is a column of nulls, made at once.
    let mut tails = Vec::with_capacity(TAIL_KEYS.len());
    let mut columns: Vec<ArrayRef> = hits
        .iter()
        .zip(SHREDDED_KEYS)
        .map(|(hits, key)| -> ArrayRef {
            if TAIL_KEYS.contains(key) {
                let (text, starts) = message_tail::tail_columns(hits, &values, messages, rows);
                tails.push(starts);
                return text;
            }
            if hits.is_empty() {
                return new_null_array(&DataType::Utf8, rows.len());
            }
            let bytes = hits
                .iter()
                .map(|&(_, b, e)| values[b].value_length(e) as usize)
                .sum();
            let mut column = StringBuilder::with_capacity(rows.len(), bytes);
            let mut next = 0;
            // Only values that are not null are taken out of the map.
            for &(out, b, entry) in hits {
                column.append_nulls(out - next);
                column.append_value(values[b].value(entry));
                next = out + 1;
            }
            column.append_nulls(rows.len() - next);
            Arc::new(column.finish())
        })
        .collect();
    columns.extend(tails);
    Ok((rest, columns))
}

/// The map of `fields` (without the shredded keys) with the shredded columns' values
/// put back: each event's shredded keys first (in `keys` order), then its own entries,
/// references resolved from `sources` when its keys are `escaped` (a file of the layout
/// with references, [`super::map_refs`]; the keys of older files are read as they are).
/// `columns[i]` holds the values of `keys[i]`.
pub(crate) fn unshred_map(
    map: &MapArray,
    keys: &[&str],
    columns: &[&StringArray],
    sources: &Sources,
    escaped: bool,
) -> Result<MapArray, CoreError> {
    let own_keys = map
        .keys()
        .as_string_opt::<i32>()
        .ok_or_else(|| CoreError::Internal("fields keys are not UTF-8 strings".into()))?;
    let own_values = map
        .values()
        .as_string_opt::<i32>()
        .ok_or_else(|| CoreError::Internal("fields values are not UTF-8 strings".into()))?;
    let rows = map.len();
    // Room for every entry; more than 2 GiB of text in one batch is an error, not a panic.
    let map_offsets = map.value_offsets();
    let (first, last) = (map_offsets[0] as usize, map_offsets[rows] as usize);
    let own_bytes = |a: &StringArray| {
        let o = a.value_offsets();
        (o[last] - o[first]) as usize
    };
    let column_bytes: usize = columns
        .iter()
        .map(|c| {
            let o = c.value_offsets();
            (o[c.len()] - o[0]) as usize
        })
        .sum();
    let present = |c: &StringArray| c.len() - c.null_count();
    let key_bytes = own_bytes(own_keys)
        + keys
            .iter()
            .zip(columns)
            .map(|(k, c)| k.len() * present(c))
            .sum::<usize>();
    // References' values are not counted here: each is checked as it is appended.
    let value_bytes = own_bytes(own_values) + column_bytes;
    let entries = last - first + columns.iter().map(|c| present(c)).sum::<usize>();
    check_offsets(key_bytes.max(value_bytes).max(entries))?;
    let mut key_builder = StringBuilder::with_capacity(entries, key_bytes);
    let mut value_builder = StringBuilder::with_capacity(entries, value_bytes);
    let mut offsets: Vec<i32> = Vec::with_capacity(rows + 1);
    offsets.push(0);
    let mut len = 0i32;
    let mut buf = String::new();
    for row in 0..rows {
        // The shredded keys first: a key an event had twice keeps its first value first.
        for (key, column) in keys.iter().zip(columns) {
            if column.is_valid(row) {
                key_builder.append_value(key);
                value_builder.append_value(column.value(row));
                len += 1;
            }
        }
        for entry in map_offsets[row] as usize..map_offsets[row + 1] as usize {
            let stored = own_keys.value(entry);
            let read = if escaped {
                StoredKey::read(stored)
            } else {
                StoredKey::Plain(std::borrow::Cow::Borrowed(stored))
            };
            match read {
                StoredKey::Plain(key) => {
                    key_builder.append_value(key);
                    value_builder
                        .append_option(own_values.is_valid(entry).then(|| own_values.value(entry)));
                }
                StoredKey::Reference { key, source } => {
                    let value = sources.value(source, row, &mut buf).ok_or_else(|| {
                        CoreError::Internal(format!(
                            "fields[{key}] refers to {source}, which has no value there"
                        ))
                    })?;
                    check_offsets(value_builder.values_slice().len() + value.len())?;
                    key_builder.append_value(key);
                    value_builder.append_value(value);
                }
            }
            len += 1;
        }
        offsets.push(len);
    }
    map_of(
        field_map_type(),
        offsets,
        Arc::new(key_builder.finish()),
        Arc::new(value_builder.finish()),
        map.nulls().cloned(),
    )
}

/// An error if `n` entries or bytes do not fit the 32-bit offsets of one array.
fn check_offsets(n: usize) -> Result<(), CoreError> {
    if i32::try_from(n).is_err() {
        return Err(CoreError::BadInput(format!(
            "{n} entries or bytes of fields in one file: more than 32-bit offsets hold"
        )));
    }
    Ok(())
}

/// A map array of type `map_type` (a `DataType::Map`) from its entries and nulls.
fn map_of(
    map_type: DataType,
    offsets: Vec<i32>,
    keys: ArrayRef,
    values: ArrayRef,
    nulls: Option<NullBuffer>,
) -> Result<MapArray, CoreError> {
    let internal = |e: arrow::error::ArrowError| CoreError::Internal(format!("fields: {e}"));
    let DataType::Map(entries_field, sorted) = map_type else {
        return Err(CoreError::Internal("not a map type".into()));
    };
    let DataType::Struct(parts) = entries_field.data_type() else {
        return Err(CoreError::Internal("map entries are not a struct".into()));
    };
    let entries =
        StructArray::try_new(parts.clone(), vec![keys, values], None).map_err(internal)?;
    MapArray::try_new(
        entries_field.clone(),
        OffsetBuffer::new(offsets.into()),
        entries,
        nulls,
        sorted,
    )
    .map_err(internal)
}

#[cfg(test)]
#[path = "shredding_tests.rs"]
mod tests;
