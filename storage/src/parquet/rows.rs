//! Which stored rows go to which file, in which order: the rows of one or more batches
//! grouped by partition (day, and dataset for events) and sorted by (host, time), then
//! gathered from their batches in one copy. Splitting, joining and sorting as separate
//! steps copied every row three times (the `fields` map through Arrow's generic,
//! row-by-row path): the larger part of the CPU of an append.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::compute::interleave;
use arrow::datatypes::{DataType, TimestampMillisecondType};
use rayon::iter::{IntoParallelIterator, IntoParallelRefMutIterator, ParallelIterator};
use vedette_core::CoreError;

use super::files::{day_of_days, safe_folder_value, PartitionKey, DAY_MS};

/// A row of one of several batches: (batch index, row index).
pub(crate) type RowRef = (usize, usize);

/// Column the rows of a file are first sorted by (the time column comes second).
const HOST_COLUMN: &str = "host.name";

/// A row's sort key: host, then time (a missing value sorts first).
type SortKey<'a> = (Option<&'a str>, Option<i64>);

/// The sort columns of one batch: host (when the table has it) and time.
struct SortColumns<'a> {
    host: Option<&'a StringArray>,
    time: &'a TimestampMillisecondArray,
}

impl<'a> SortColumns<'a> {
    fn of(batch: &'a RecordBatch, time_column: &str) -> Result<Self, CoreError> {
        let time = batch
            .column_by_name(time_column)
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
            .ok_or_else(|| {
                CoreError::BadInput(format!("batch has no millisecond column `{time_column}`"))
            })?;
        let host = batch
            .column_by_name(HOST_COLUMN)
            .filter(|c| c.data_type() == &DataType::Utf8)
            .map(|c| c.as_string::<i32>());
        Ok(Self { host, time })
    }

    /// The sort key of `row`: host then time, a missing value before any other.
    fn key(&self, row: usize) -> SortKey<'a> {
        let host = self
            .host
            .and_then(|h| (!h.is_null(row)).then(|| h.value(row)));
        let time = (!self.time.is_null(row)).then(|| self.time.value(row));
        (host, time)
    }
}

/// Orders `rows` by (host, time), ties kept in their (batch, row) order.
fn sort_rows(rows: &mut [RowRef], columns: &[SortColumns<'_>]) {
    let mut keyed: Vec<(SortKey<'_>, RowRef)> = rows
        .iter()
        .map(|&(b, r)| (columns[b].key(r), (b, r)))
        .collect();
    keyed.sort_unstable();
    for (slot, (_, row)) in rows.iter_mut().zip(keyed) {
        *slot = row;
    }
}

/// The rows of `batches` by partition (day of `time_column`, and value of
/// `dataset_column` when given), each partition's rows in file order.
pub(crate) fn partition_rows(
    batches: &[RecordBatch],
    time_column: &str,
    dataset_column: Option<&str>,
) -> Result<BTreeMap<PartitionKey, Vec<RowRef>>, CoreError> {
    let columns: Vec<SortColumns<'_>> = batches
        .iter()
        .map(|b| SortColumns::of(b, time_column))
        .collect::<Result<_, _>>()?;
    // Grouped first by day number and raw dataset (no string made per row)...
    let mut groups: HashMap<(i64, Option<&str>), Vec<RowRef>> = HashMap::new();
    for (b, batch) in batches.iter().enumerate() {
        let datasets = match dataset_column {
            Some(name) => Some(
                batch
                    .column_by_name(name)
                    .filter(|c| c.data_type() == &DataType::Utf8)
                    .map(|c| c.as_string::<i32>())
                    .ok_or_else(|| {
                        CoreError::BadInput(format!("batch has no text column `{name}`"))
                    })?,
            ),
            None => None,
        };
        let times = columns[b].time;
        for row in 0..batch.num_rows() {
            let ms = if times.is_null(row) {
                0
            } else {
                times.value(row)
            };
            let dataset = datasets.map(|d| if d.is_null(row) { "" } else { d.value(row) });
            groups
                .entry((ms.div_euclid(DAY_MS), dataset))
                .or_default()
                .push((b, row));
        }
    }
    // ...then by folder, which two raw datasets may share once made safe.
    let mut partitions: BTreeMap<PartitionKey, Vec<RowRef>> = BTreeMap::new();
    for ((day, dataset), rows) in groups {
        let key = PartitionKey {
            day: day_of_days(day),
            dataset: dataset.map(|d| {
                if d.is_empty() {
                    "_".to_string()
                } else {
                    safe_folder_value(d)
                }
            }),
        };
        partitions.entry(key).or_default().extend(rows);
    }
    // Sorted in parallel: on one thread, the sorts of an append held the other core idle.
    partitions
        .par_iter_mut()
        .for_each(|(_, rows)| sort_rows(rows, &columns));
    Ok(partitions)
}

/// All the rows of `batches` in file order (for a merge, whose rows share a folder).
pub(crate) fn all_rows_sorted(
    batches: &[RecordBatch],
    time_column: &str,
) -> Result<Vec<RowRef>, CoreError> {
    let columns: Vec<SortColumns<'_>> = batches
        .iter()
        .map(|b| SortColumns::of(b, time_column))
        .collect::<Result<_, _>>()?;
    let mut rows: Vec<RowRef> = batches
        .iter()
        .enumerate()
        .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r)))
        .collect();
    sort_rows(&mut rows, &columns);
    Ok(rows)
}

/// One batch of the given rows, copied once from their batches, in the given order.
pub(crate) fn gather(batches: &[RecordBatch], rows: &[RowRef]) -> Result<RecordBatch, CoreError> {
    if let [only] = batches {
        if rows.len() == only.num_rows() && rows.iter().enumerate().all(|(i, &(_, r))| i == r) {
            return Ok(only.clone());
        }
    }
    let Some(first) = batches.first() else {
        return Err(CoreError::Internal("gathering rows of no batch".into()));
    };
    let schema = first.schema();
    if let Some(other) = batches
        .iter()
        .find(|b| b.num_columns() != schema.fields().len())
    {
        return Err(CoreError::Internal(format!(
            "gathering rows: a batch of {} columns among batches of {}",
            other.num_columns(),
            schema.fields().len()
        )));
    }
    // Column by column in parallel: the `fields` map alone is a third of the bytes.
    let columns: Vec<ArrayRef> = (0..schema.fields().len())
        .into_par_iter()
        .map(|c| {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            interleave(&arrays, rows)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| CoreError::Internal(format!("gathering rows: {e}")))?;
    RecordBatch::try_new(schema, columns)
        .map_err(|e| CoreError::Internal(format!("gathering rows: {e}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vedette_core::event::{Event, EventBatchBuilder};

    /// Events of the given (time, dataset, host), with ids `e0`, `e1`...
    pub(crate) fn events(rows: &[(i64, &str, Option<&str>)]) -> RecordBatch {
        let mut b = EventBatchBuilder::new();
        for (i, (ms, dataset, host)) in rows.iter().enumerate() {
            b.append(&Event {
                id: format!("e{i}"),
                timestamp_ms: *ms,
                dataset: (*dataset).into(),
                host_name: host.map(String::from),
                ..Event::default()
            });
        }
        b.finish().unwrap()
    }

    fn ids(batch: &RecordBatch) -> Vec<String> {
        batch
            .column_by_name("event.id")
            .unwrap()
            .as_string::<i32>()
            .iter()
            .map(|v| v.unwrap_or("-").to_string())
            .collect()
    }

    const DAY1: i64 = 1_764_201_600_000; // 2025-11-27T00:00:00Z

    #[test]
    fn rows_of_several_batches_split_by_day_and_dataset_and_sort_by_host_then_time() {
        let a = events(&[
            (DAY1 + 5, "syslog", Some("b")),
            (DAY1 + DAY_MS + 1, "syslog", Some("a")),
            (DAY1 + 1, "syslog", Some("b")),
            (DAY1 + 2, "../x", Some("a")),
        ]);
        let b = events(&[
            (DAY1 + 3, "syslog", Some("b")),
            (DAY1 + 9, "syslog", None),
            (DAY1 + 1, "syslog", Some("b")),
        ]);
        let batches = [a, b];
        let parts = partition_rows(&batches, "@timestamp", Some("event.dataset")).unwrap();
        let summary: Vec<String> = parts
            .iter()
            .map(|(k, rows)| format!("{}/{:?}/{rows:?}", k.day, k.dataset))
            .collect();
        assert_eq!(
            summary,
            [
                "2025-11-27/Some(\".._x\")/[(0, 3)]",
                // null host first; equal keys keep their (batch, row) order
                "2025-11-27/Some(\"syslog\")/[(1, 1), (0, 2), (1, 2), (1, 0), (0, 0)]",
                "2025-11-28/Some(\"syslog\")/[(0, 1)]",
            ]
        );
        let rows = &parts.values().nth(1).unwrap();
        let gathered = gather(&batches, rows).unwrap();
        assert_eq!(ids(&gathered), ["e1", "e2", "e2", "e0", "e0"]);
        assert_eq!(gathered.schema(), batches[0].schema());
    }

    #[test]
    fn datasets_that_share_a_folder_share_a_file_and_null_times_go_to_day_zero() {
        let mut b = EventBatchBuilder::new();
        for (i, dataset) in ["a/b", "a_b"].iter().enumerate() {
            b.append(&Event {
                id: format!("e{i}"),
                timestamp_ms: DAY1,
                dataset: (*dataset).into(),
                ..Event::default()
            });
        }
        let batch = b.finish().unwrap();
        let parts = partition_rows(&[batch], "@timestamp", Some("event.dataset")).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts.values().next().unwrap(), &vec![(0, 0), (0, 1)]);
        assert!(partition_rows(&[events(&[])], "missing", None).is_err());
    }

    #[test]
    fn a_merge_sorts_every_row_and_a_batch_already_in_order_is_not_copied() {
        let a = events(&[(DAY1 + 2, "x", Some("h")), (DAY1 + 1, "x", Some("h"))]);
        let b = events(&[(DAY1, "x", Some("g"))]);
        let batches = [a, b];
        let rows = all_rows_sorted(&batches, "@timestamp").unwrap();
        assert_eq!(rows, [(1, 0), (0, 1), (0, 0)]);
        let one = [events(&[
            (DAY1, "x", Some("a")),
            (DAY1 + 1, "x", Some("a")),
        ])];
        let same = gather(&one, &[(0, 0), (0, 1)]).unwrap();
        assert_eq!(
            same.column(0).to_data().buffers()[0].as_ptr(),
            one[0].column(0).to_data().buffers()[0].as_ptr()
        );
    }
}
