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
#[derive(Debug)]
pub(crate) struct BatchFields<'a> {
    /// Indexed by slot.
    pub(crate) per_slot: Vec<Vec<Entry<'a>>>,
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
        let keyword_slot = slots.keywords;
        for row in 0..rows {
            if map.is_null(row) {
                continue;
            }
            let (Some(&start), Some(&end)) = (offsets.get(row), offsets.get(row + 1)) else {
                continue;
            };
            for e in start.max(0) as usize..end.max(0) as usize {
                let value = values.is_valid(e).then(|| values.value(e).as_bytes());
                if let Some(slot) = slots.index.get(keys.value(e)) {
                    per_slot[*slot as usize].push((row as u32, value));
                }
                if let (Some(k), Some(v)) = (keyword_slot, value) {
                    per_slot[k as usize].push((row as u32, Some(v)));
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
        if let Some(k) = keyword_slot {
            if let Some(message) = batch.column_by_name(col::MESSAGE) {
                if let Some(message) = message.as_string_opt::<i32>() {
                    let list = &mut per_slot[k as usize];
                    for row in 0..rows {
                        if message.is_valid(row) {
                            list.push((row as u32, Some(message.value(row).as_bytes())));
                        }
                    }
                    list.sort_by_key(|(row, _)| *row);
                }
            }
        }
        Ok(Self {
            per_slot,
            dataset: utf8(batch, col::EVENT_DATASET)?,
            code: utf8(batch, col::EVENT_CODE)?,
            rows,
        })
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
