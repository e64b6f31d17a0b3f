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
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use vedette_core::schema::{col, event_schema, field_map_type};
use vedette_core::CoreError;

use super::map_refs::{self, RefIndex, Sources, StoredKey};
use super::message_tail::{self, TailColumns, TAIL_KEYS};
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

/// Finds a key's position in [`SHREDDED_KEYS`]: the keys bucketed by length, so a key
/// of a map (most of which are not shredded) costs an index and a comparison or two.
struct KeyIndex {
    by_length: Vec<Vec<(&'static [u8], usize)>>,
}

impl KeyIndex {
    /// The index of [`SHREDDED_KEYS`], built once.
    fn get() -> &'static KeyIndex {
        static INDEX: OnceLock<KeyIndex> = OnceLock::new();
        INDEX.get_or_init(|| {
            let longest = SHREDDED_KEYS.iter().map(|k| k.len()).max().unwrap_or(0);
            let mut by_length = vec![Vec::new(); longest + 1];
            for (i, k) in SHREDDED_KEYS.iter().enumerate() {
                by_length[k.len()].push((k.as_bytes(), i));
            }
            KeyIndex { by_length }
        })
    }

    /// The position of `key`, if it is shredded.
    fn find(&self, key: &[u8]) -> Option<usize> {
        self.by_length
            .get(key.len())?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, i)| *i)
    }
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
            let values = with_tail(batch, key, text)?;
            columns.push(with_same(batch, key, values)?);
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

/// The values of shredded key `key` of a stored `batch`: its column `text`, with the
/// values stored as offsets into `message` put back where the batch has them.
fn with_tail(batch: &RecordBatch, key: &str, text: &StringArray) -> Result<StringArray, CoreError> {
    let Some(starts) = batch.column_by_name(&message_tail::column_name(key)) else {
        return Ok(text.clone());
    };
    let messages = batch.column_by_name(col::MESSAGE);
    match (
        starts.as_primitive_opt::<Int32Type>(),
        messages.and_then(|m| m.as_string_opt::<i32>()),
    ) {
        (Some(starts), Some(messages)) => message_tail::join(text, messages, starts),
        _ => Err(CoreError::Internal(format!(
            "the message offsets of {key}: not 32-bit integers, or no text message"
        ))),
    }
}

/// The values of shredded key `key` of a stored `batch` (`values`, its column with any
/// offsets put back), with the values flagged as repeating another column put back.
fn with_same(
    batch: &RecordBatch,
    key: &str,
    values: StringArray,
) -> Result<StringArray, CoreError> {
    let schema = batch.schema();
    let Some((flag_name, source)) = same_as::flag_of(&schema, key) else {
        return Ok(values);
    };
    let missing = |name: &str| CoreError::Internal(format!("{key} repeats {source}: no {name}"));
    let source_column = batch
        .column_by_name(source)
        .ok_or_else(|| missing(source))?;
    let flags = batch
        .column_by_name(flag_name)
        .and_then(|f| f.as_boolean_opt())
        .ok_or_else(|| missing("boolean flags"))?;
    same_as::join(&values, source_column, flags)
}

/// The columns of `file_schema()` up to the flags of [`SAME_AS`] (the event's columns,
/// the shredded keys', the offsets of [`TAIL_KEYS`]): each key of [`SAME_AS`] folded
/// against its source, and the flag columns appended.
fn fold_repeated(mut columns: Vec<ArrayRef>) -> Result<Vec<ArrayRef>, CoreError> {
    let schema = file_schema();
    let index = |name: &str| {
        schema
            .index_of(name)
            .map_err(|e| CoreError::Internal(format!("folding repeated keys: {e}")))
    };
    let mut flags = Vec::with_capacity(SAME_AS.len());
    for (key, source) in SAME_AS {
        let at = index(&column_name(key))?;
        let text = columns
            .get(at)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| CoreError::Internal(format!("{key} is not a text column")))?;
        let source = columns
            .get(index(source)?)
            .ok_or_else(|| CoreError::Internal(format!("no column {source}")))?;
        let (kept, flag) = same_as::fold(text, source)?;
        columns[at] = kept;
        flags.push(flag);
    }
    columns.extend(flags);
    Ok(columns)
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
    let out = fold_repeated(out)?;
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
    let lookup = KeyIndex::get();
    let refs = RefIndex::get();
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
            match lookup.find(key.as_bytes()) {
                // A null value stays in the map, so the key is still there.
                Some(k)
                    if values[b].is_valid(entry)
                        && hits[k].last().is_none_or(|&(o, _, _)| o != out) =>
                {
                    hits[k].push((out, b, entry))
                }
                _ => {
                    let v = &values[b];
                    let value = v.is_valid(entry).then(|| v.value(entry));
                    let reference = value.and_then(|value| {
                        let (pair, stored) = refs.find(key)?;
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
                let (text, starts) = tail_columns(hits, &values, messages, rows);
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

/// The text and offset columns of a key of [`TAIL_KEYS`] from its `hits` (row out,
/// batch, entry), each value compared with its row's message.
fn tail_columns(
    hits: &[(usize, usize, usize)],
    values: &[StringArray],
    messages: &[Option<&StringArray>],
    rows: &[RowRef],
) -> (ArrayRef, ArrayRef) {
    let mut columns = TailColumns::with_capacity(rows.len(), 0);
    let mut next = 0;
    for &(out, b, entry) in hits {
        columns.append_nulls(out - next);
        let row = rows[out].1;
        let message = messages[b]
            .filter(|m| m.is_valid(row))
            .map(|m| m.value(row));
        columns.append(values[b].value(entry), message);
        next = out + 1;
    }
    columns.append_nulls(rows.len() - next);
    columns.finish()
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
    let mut buf = String::new();
    // The values references resolve to.
    let mut resolved_bytes = 0usize;
    if escaped {
        for row in 0..rows {
            for entry in map_offsets[row] as usize..map_offsets[row + 1] as usize {
                if let StoredKey::Reference { source, .. } = StoredKey::read(own_keys.value(entry))
                {
                    resolved_bytes += sources.value(source, row, &mut buf).map_or(0, str::len);
                }
            }
        }
    }
    let value_bytes = own_bytes(own_values) + column_bytes + resolved_bytes;
    let entries = last - first + columns.iter().map(|c| present(c)).sum::<usize>();
    check_offsets(key_bytes.max(value_bytes).max(entries))?;
    let mut key_builder = StringBuilder::with_capacity(entries, key_bytes);
    let mut value_builder = StringBuilder::with_capacity(entries, value_bytes);
    let mut offsets: Vec<i32> = Vec::with_capacity(rows + 1);
    offsets.push(0);
    let mut len = 0i32;
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
mod tests {
    use super::*;
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
        let older = RecordBatch::try_from_iter(
            stored
                .schema()
                .fields()
                .iter()
                .zip(stored.columns())
                .filter(|(f, _)| !f.name().starts_with(PREFIX) || f.name() == "fields.Image")
                .map(|(f, c)| {
                    (
                        f.name().replace("fields.Image", "fields.ImageOld"),
                        c.clone(),
                    )
                }),
        )
        .unwrap();
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
        let before = RecordBatch::try_from_iter(
            stored
                .schema()
                .fields()
                .iter()
                .zip(stored.columns())
                .filter(|(f, _)| *f.name() != starts_name)
                .map(|(f, c)| {
                    let c = if *f.name() == text_name { &whole } else { c };
                    (f.name().clone(), c.clone())
                }),
        )
        .unwrap();
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
        let before = RecordBatch::try_from_iter(
            stored
                .schema()
                .fields()
                .iter()
                .zip(stored.columns())
                .filter(|(f, _)| same_as::parse_column_name(f.name()).is_none())
                .map(|(f, c)| {
                    let c = if f.name() == col::FIELDS {
                        batch.column_by_name(col::FIELDS).unwrap()
                    } else {
                        c
                    };
                    (f.name().clone(), c.clone())
                }),
        )
        .unwrap();
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
}
