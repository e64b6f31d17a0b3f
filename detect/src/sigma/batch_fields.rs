//! The values of the fields the rule set reads, pulled out of one batch.
//!
//! One pass over the batch's `fields` map looks each key up once in the slot table
//! (the field names some rule reads) and records, per slot, the rows that carry it
//! with their value. Fields that are common columns of the event schema (e.g.
//! `process.command_line`) are read from the column where the map lacks them.

use arrow::array::{Array, AsArray, MapArray, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use rustc_hash::FxHashMap;
use vedette_core::schema::col;

use crate::error::DetectError;

/// Field names some rule reads, each with a slot number.
#[derive(Debug, Default, Clone)]
pub(crate) struct SlotTable {
    names: Vec<String>,
    index: FxHashMap<String, u32>,
    /// The pseudo-field of keyword searches: every value of the event.
    keywords: Option<u32>,
}

/// Name of the keyword pseudo-field (not a legal event field name).
pub(crate) const KEYWORDS: &str = "\u{0}keywords";

impl SlotTable {
    /// The slot of `name`, added if new.
    pub(crate) fn slot(&mut self, name: &str) -> u32 {
        if let Some(&s) = self.index.get(name) {
            return s;
        }
        let s = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), s);
        if name == KEYWORDS {
            self.keywords = Some(s);
        }
        s
    }

    /// The slot of `name`, if some rule reads it.
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// The slot of the keyword pseudo-field, if some rule has keywords.
    pub(crate) fn keywords(&self) -> Option<u32> {
        self.keywords
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Name of a slot.
    pub(crate) fn name(&self, slot: u32) -> &str {
        self.names.get(slot as usize).map_or("", String::as_str)
    }
}

/// A row and its value of one field (`None`: present but null).
pub(crate) type Entry<'a> = (u32, Option<&'a [u8]>);

/// Per slot, the rows of a batch that carry the field, in row order.
///
/// The keyword pseudo-field is not gathered: keyword tests read every value of a row,
/// through [`BatchFields::keyword_region`] and [`BatchFields::keyword_values`].
#[derive(Debug)]
pub(crate) struct BatchFields<'a> {
    /// Indexed by slot.
    pub(crate) per_slot: Vec<Vec<Entry<'a>>>,
    /// The `fields` map.
    map: &'a MapArray,
    /// The map's values.
    map_values: &'a StringArray,
    /// The `message` column, if the batch has one.
    message: Option<&'a StringArray>,
    /// `event.dataset` of each row.
    pub(crate) dataset: &'a StringArray,
    /// `event.code` of each row.
    pub(crate) code: &'a StringArray,
    /// Number of rows.
    pub(crate) rows: usize,
}

fn utf8<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, DetectError> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| DetectError::Schema(format!("no column `{name}`")))?;
    array
        .as_string_opt::<i32>()
        .ok_or_else(|| DetectError::Schema(format!("column `{name}` is not Utf8")))
}

impl<'a> BatchFields<'a> {
    /// Pulls every slot's values out of `batch`.
    pub(crate) fn extract(batch: &'a RecordBatch, slots: &SlotTable) -> Result<Self, DetectError> {
        let rows = batch.num_rows();
        let mut per_slot: Vec<Vec<Entry<'a>>> = vec![Vec::new(); slots.len()];
        let map: &MapArray = batch
            .column_by_name(col::FIELDS)
            .and_then(|a| a.as_map_opt())
            .ok_or_else(|| DetectError::Schema("no `fields` map column".into()))?;
        let keys = map
            .keys()
            .as_string_opt::<i32>()
            .ok_or_else(|| DetectError::Schema("`fields` keys are not Utf8".into()))?;
        let values = map
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| DetectError::Schema("`fields` values are not Utf8".into()))?;
        let offsets = map.value_offsets();
        // Rows of one source list their keys in the same order: the key at the same
        // place in the row before, if equal, has the slot already looked up.
        let mut before: Vec<(&str, Option<u32>)> = Vec::new();
        for row in 0..rows {
            if map.is_null(row) {
                continue;
            }
            let (Some(&start), Some(&end)) = (offsets.get(row), offsets.get(row + 1)) else {
                continue;
            };
            let start = start.max(0) as usize;
            for e in start..end.max(0) as usize {
                let key = keys.value(e);
                let at = e - start;
                let slot = match before.get_mut(at) {
                    Some((k, slot)) if *k == key => *slot,
                    Some(cached) => {
                        *cached = (key, slots.index.get(key).copied());
                        cached.1
                    }
                    None => {
                        let slot = slots.index.get(key).copied();
                        before.push((key, slot));
                        slot
                    }
                };
                if let Some(slot) = slot {
                    let value = values.is_valid(e).then(|| values.value(e).as_bytes());
                    per_slot[slot as usize].push((row as u32, value));
                }
            }
        }
        // Common columns under their schema names, where the map lacks them.
        for (slot, name) in slots.names.iter().enumerate() {
            let Some(column) = batch.column_by_name(name) else {
                continue;
            };
            if column.data_type() != &DataType::Utf8 {
                continue;
            }
            let column = column.as_string::<i32>();
            let list = &mut per_slot[slot];
            let mut have = vec![false; rows];
            for (row, _) in list.iter() {
                if let Some(h) = have.get_mut(*row as usize) {
                    *h = true;
                }
            }
            let before = list.len();
            for (row, seen) in have.iter().enumerate() {
                if !seen && column.is_valid(row) {
                    list.push((row as u32, Some(column.value(row).as_bytes())));
                }
            }
            if list.len() != before {
                list.sort_by_key(|(row, _)| *row);
            }
        }
        let message = batch
            .column_by_name(col::MESSAGE)
            .and_then(|m| m.as_string_opt::<i32>());
        Ok(Self {
            per_slot,
            map,
            map_values: values,
            message,
            dataset: utf8(batch, col::EVENT_DATASET)?,
            code: utf8(batch, col::EVENT_CODE)?,
            rows,
        })
    }

    /// The map values of `row` as one run of bytes, with the offsets (into the map's
    /// values) of the row's entries and their end: entry `i` of the row spans
    /// `bounds[i] - bounds[0]..bounds[i + 1] - bounds[0]` of the run.
    pub(crate) fn keyword_region(&self, row: usize) -> Option<(&'a [u8], &'a [i32], usize)> {
        let std::ops::Range { start, end } = self.entries_of(row);
        if start == end {
            return None;
        }
        let bounds = self.map_values.value_offsets().get(start..=end)?;
        let (&first, &last) = (bounds.first()?, bounds.last()?);
        let bytes = self
            .map_values
            .value_data()
            .get(first.max(0) as usize..last.max(0) as usize)?;
        Some((bytes, bounds, start))
    }

    /// The indexes of `row`'s entries in the map (none if its map is null).
    fn entries_of(&self, row: usize) -> std::ops::Range<usize> {
        if self.map.is_null(row) {
            return 0..0;
        }
        let offsets = self.map.value_offsets();
        match (offsets.get(row), offsets.get(row + 1)) {
            (Some(&s), Some(&e)) => s.max(0) as usize..e.max(0) as usize,
            _ => 0..0,
        }
    }

    /// Whether entry `entry` of the map's values is not null.
    pub(crate) fn map_value_valid(&self, entry: usize) -> bool {
        self.map_values.is_valid(entry)
    }

    /// The `message` of `row`, if any: a keyword search reads it too.
    pub(crate) fn message(&self, row: usize) -> Option<&'a [u8]> {
        let m = self.message?;
        (row < m.len() && m.is_valid(row)).then(|| m.value(row).as_bytes())
    }

    /// Every non-null value of `row` a keyword search reads: the map's, then `message`.
    pub(crate) fn keyword_values(&self, row: usize) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.entries_of(row)
            .filter(|e| self.map_values.is_valid(*e))
            .map(|e| self.map_values.value(e).as_bytes())
            .chain(self.message(row))
    }

    /// The first value of `slot` in `row`.
    pub(crate) fn value(&self, slot: u32, row: u32) -> Option<&'a [u8]> {
        let list = self.per_slot.get(slot as usize)?;
        let at = list.partition_point(|(r, _)| *r < row);
        list.get(at)
            .filter(|(r, _)| *r == row)
            .and_then(|(_, v)| *v)
    }
}
