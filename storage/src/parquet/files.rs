//! Writing one table's rows as Parquet files: split by day (and dataset for events),
//! sorted by (host, time) within a file, zstd, written durably under a name derived from
//! the rows' bus position so a re-delivered batch replaces its own files.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{lexsort_to_indices, take_record_batch, SortColumn, SortOptions};
use arrow::datatypes::{DataType, TimestampMillisecondType};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use vedette_core::CoreError;

/// Sort order within a file.
pub(crate) const SORT_COLUMNS: &[&str] = &["host.name", "@timestamp"];
/// Rows per row group: large enough for scans, small enough to prune by time.
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Where a group of rows goes: its day (`YYYY-MM-DD`, UTC) and, for events, its dataset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PartitionKey {
    /// Day of the rows' time, UTC.
    pub(crate) day: String,
    /// Dataset, made safe as a folder name; `None` for tables not split by dataset.
    pub(crate) dataset: Option<String>,
}

impl PartitionKey {
    /// The folder of this partition under a table's folder.
    pub(crate) fn folder(&self, table_dir: &Path) -> PathBuf {
        let day = table_dir.join(format!("day={}", self.day));
        match &self.dataset {
            Some(d) => day.join(format!("dataset={d}")),
            None => day,
        }
    }
}

/// The day (UTC) of a Unix millisecond time, `YYYY-MM-DD`.
pub(crate) fn day_of(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    chrono::DateTime::from_timestamp(days * 86_400, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

/// A dataset name as a folder name: letters, digits, `.`, `_` and `-` kept, anything
/// else `_` (a dataset can never climb out of its table's folder).
pub(crate) fn safe_folder_value(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => "_".into(),
        _ => cleaned,
    }
}

/// Splits rows by partition: day of `time_column`, and value of `dataset_column` when
/// given. Rows keep their order within a partition.
pub(crate) fn split(
    batch: &RecordBatch,
    time_column: &str,
    dataset_column: Option<&str>,
) -> Result<Vec<(PartitionKey, RecordBatch)>, CoreError> {
    let times = batch
        .column_by_name(time_column)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .ok_or_else(|| {
            CoreError::BadInput(format!("batch has no millisecond column `{time_column}`"))
        })?;
    let datasets = match dataset_column {
        Some(name) => Some(
            batch
                .column_by_name(name)
                .filter(|c| c.data_type() == &DataType::Utf8)
                .map(|c| c.as_string::<i32>())
                .ok_or_else(|| CoreError::BadInput(format!("batch has no text column `{name}`")))?,
        ),
        None => None,
    };
    let mut groups: BTreeMap<PartitionKey, Vec<u32>> = BTreeMap::new();
    for row in 0..batch.num_rows() {
        let ms = if times.is_null(row) {
            0
        } else {
            times.value(row)
        };
        let dataset = datasets.map(|d| {
            if d.is_null(row) {
                "_".to_string()
            } else {
                safe_folder_value(d.value(row))
            }
        });
        groups
            .entry(PartitionKey {
                day: day_of(ms),
                dataset,
            })
            .or_default()
            .push(row as u32);
    }
    if groups.len() == 1 {
        if let Some((key, _)) = groups.pop_first() {
            return Ok(vec![(key, batch.clone())]);
        }
    }
    groups
        .into_iter()
        .map(|(key, rows)| Ok((key, take_record_batch(batch, &UInt32Array::from(rows))?)))
        .collect()
}

/// Rows sorted by the given columns (those present), nulls first, stable.
pub(crate) fn sorted(batch: &RecordBatch, columns: &[&str]) -> Result<RecordBatch, CoreError> {
    let keys: Vec<SortColumn> = columns
        .iter()
        .filter_map(|name| batch.column_by_name(name))
        .map(|values| SortColumn {
            values: values.clone(),
            options: Some(SortOptions {
                descending: false,
                nulls_first: true,
            }),
        })
        .collect();
    if keys.is_empty() || batch.num_rows() < 2 {
        return Ok(batch.clone());
    }
    let indices = lexsort_to_indices(&keys, None)?;
    Ok(take_record_batch(batch, &indices)?)
}

/// How a file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// LZ4 (raw blocks): for the small files each append writes, read soon by
    /// compaction. zstd creates and zeroes a context per page, a cost that dominated
    /// writing many small files (a profile of `vedette run` put 17 % of its CPU in zstd
    /// context set-up and the zeroing of its memory).
    Fast,
    /// zstd level 3: for the merged files that stay.
    Compact,
}

/// The writer settings of every file, with `metadata` as key-value metadata.
fn properties(
    metadata: Vec<(String, String)>,
    codec: Codec,
) -> Result<WriterProperties, CoreError> {
    let compression = match codec {
        Codec::Fast => Compression::LZ4_RAW,
        Codec::Compact => Compression::ZSTD(
            ZstdLevel::try_new(3).map_err(|e| CoreError::Internal(e.to_string()))?,
        ),
    };
    Ok(WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata((!metadata.is_empty()).then(|| {
            metadata
                .into_iter()
                .map(|(k, v)| KeyValue::new(k, v))
                .collect()
        }))
        .build())
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> CoreError {
    move |e| CoreError::io(context, e)
}

/// Writes `batch` as the Parquet file `dir/name` durably (to a temporary name, fsync,
/// rename over any file of that name, fsync of the folder), compressed for speed: the
/// file of one append.
pub(crate) fn write_file(
    dir: &Path,
    name: &str,
    batch: &RecordBatch,
) -> Result<PathBuf, CoreError> {
    write_file_with(dir, name, batch, Vec::new(), Codec::Fast)
}

/// [`write_file`] with key-value metadata in the footer and the codec chosen.
pub(crate) fn write_file_with(
    dir: &Path,
    name: &str,
    batch: &RecordBatch,
    metadata: Vec<(String, String)>,
    codec: Codec,
) -> Result<PathBuf, CoreError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties(metadata, codec)?))
        .map_err(|e| CoreError::Internal(format!("parquet writer: {e}")))?;
    writer
        .write(batch)
        .map_err(|e| CoreError::Internal(format!("writing parquet: {e}")))?;
    let file = writer
        .into_inner()
        .map_err(|e| CoreError::Internal(format!("finishing parquet: {e}")))?;
    file.sync_all()
        .map_err(io(format!("syncing {}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(io(format!("renaming to {}", path.display())))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Deletes the temporary files a write cut short (by a crash or SIGKILL) left under
/// `dir`, those last modified more than `older_than` ago (a younger one may be a write
/// in progress, of this process or another); returns how many went. Queries never
/// read them (they lack the `.parquet` ending); this only frees their space.
pub(crate) fn clear_torn_writes(dir: &Path, older_than: Duration) -> Result<u64, CoreError> {
    let mut cleared = 0;
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).map_err(io(format!("listing {}", folder.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let torn = name
                .to_str()
                .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= older_than));
            match entry.file_type() {
                Ok(t) if t.is_dir() => folders.push(path),
                Ok(t) if t.is_file() && torn => {
                    std::fs::remove_file(&path)
                        .map_err(io(format!("deleting {}", path.display())))?;
                    cleared += 1;
                }
                _ => {}
            }
        }
    }
    Ok(cleared)
}

/// Syncs a folder so renames and deletions in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), CoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing folder {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_core::event::{Event, EventBatchBuilder};

    fn events(rows: &[(i64, &str, &str)]) -> RecordBatch {
        let mut b = EventBatchBuilder::new();
        for (i, (ms, dataset, host)) in rows.iter().enumerate() {
            b.append(&Event {
                id: format!("e{i}"),
                timestamp_ms: *ms,
                dataset: (*dataset).into(),
                host_name: Some((*host).into()),
                ..Event::default()
            });
        }
        b.finish().unwrap()
    }

    #[test]
    fn days_and_datasets_split_and_rows_sort_by_host_then_time() {
        let day1 = 1_764_201_600_000; // 2025-11-27T00:00:00Z
        let batch = events(&[
            (day1 + 5, "syslog", "b"),
            (day1 + DAY_MS + 1, "syslog", "a"),
            (day1 + 1, "syslog", "b"),
            (day1 + 2, "../x", "a"),
        ]);
        let parts = split(&batch, "@timestamp", Some("event.dataset")).unwrap();
        let keys: Vec<String> = parts
            .iter()
            .map(|(k, b)| format!("{}/{:?}/{}", k.day, k.dataset, b.num_rows()))
            .collect();
        assert_eq!(
            keys,
            [
                "2025-11-27/Some(\".._x\")/1",
                "2025-11-27/Some(\"syslog\")/2",
                "2025-11-28/Some(\"syslog\")/1"
            ]
        );
        let sorted = sorted(&parts[1].1, &["host.name", "@timestamp"]).unwrap();
        let ids: Vec<&str> = sorted
            .column_by_name("event.id")
            .unwrap()
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(ids, ["e2", "e0"]);
        assert_eq!(day_of(-1), "1969-12-31");
        assert_eq!(safe_folder_value(".."), "_");
    }

    #[test]
    fn append_files_are_lz4_and_merged_files_zstd_and_both_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let batch = events(&[(1, "syslog", "a"), (2, "syslog", "b")]);
        let fast = write_file(dir.path(), "a.parquet", &batch).unwrap();
        let compact = write_file_with(
            dir.path(),
            "b.parquet",
            &batch,
            vec![("k".into(), "v".into())],
            Codec::Compact,
        )
        .unwrap();
        for (path, want) in [(fast, "LZ4_RAW"), (compact, "ZSTD")] {
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(
                File::open(&path).unwrap(),
            )
            .unwrap();
            use parquet::file::reader::FileReader;
            let meta = reader.metadata();
            assert_eq!(meta.file_metadata().num_rows(), 2);
            let codec = format!("{:?}", meta.row_group(0).column(0).compression());
            assert!(codec.starts_with(want), "{}: {codec}", path.display());
        }
    }
}
