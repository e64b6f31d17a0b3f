//! Writing one table's rows as Parquet files (grouped and ordered by [`super::rows`]),
//! LZ4 or zstd, written durably under a name derived from
//! the rows' bus position so a re-delivered batch replaces its own files.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::RecordBatch;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::{ParquetError, Result as ParquetResult};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use rayon::iter::{IndexedParallelIterator, IntoParallelIterator, ParallelIterator};
use vedette_core::CoreError;

use super::durable::Unsynced;

/// Rows per row group: large enough for scans, small enough to prune by time.
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Name prefix of a day's folder under a table's folder.
pub(super) const DAY_PREFIX: &str = "day=";
/// Name prefix of a dataset's folder under a day's folder.
pub(super) const DATASET_PREFIX: &str = "dataset=";

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
        let day = table_dir.join(format!("{DAY_PREFIX}{}", self.day));
        match &self.dataset {
            Some(d) => day.join(format!("{DATASET_PREFIX}{d}")),
            None => day,
        }
    }
}

/// The day (UTC) of a Unix millisecond time, `YYYY-MM-DD`.
pub(crate) fn day_of(ms: i64) -> String {
    day_of_days(ms.div_euclid(DAY_MS))
}

/// The day (UTC) `days` days after 1970-01-01, `YYYY-MM-DD` (1970-01-01 when out of
/// range).
pub(crate) fn day_of_days(days: i64) -> String {
    days.checked_mul(86_400)
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
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

/// How a file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// LZ4 (raw blocks): for the small files each append writes, read soon by
    /// compaction. zstd creates and zeroes a context per page, a cost that dominated
    /// writing many small files (a profile of `vedette run` put 17 % of its CPU in zstd
    /// context set-up and the zeroing of its memory).
    Fast,
    /// zstd at a level ([`DEFAULT_ZSTD_LEVEL`] unless configured): for the merged files
    /// that stay.
    Compact(i32),
}

/// zstd level of merged files unless configured.
pub(crate) const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// Columns of free text or unique values: no query prunes by their minimum and maximum,
/// and dictionary encoding finds nothing to share, so both are off (computing them was
/// a fifth of the CPU of writing a file). The `fields` map's values are among them
/// only in append files: merged files keep their dictionary, which makes them smaller.
const FREE_TEXT_COLUMNS: &[&[&str]] = &[
    &["message"],
    &["event.id"],
    &["process.command_line"],
    &["process.parent.command_line"],
    FIELD_VALUES,
];
/// Parquet path of the `fields` map's values (column names hold dots: a path is parts).
const FIELD_VALUES: &[&str] = &["fields", "key_value", "value"];
/// Parquet path of the `fields` map's keys (few, repeated: dictionary kept).
const FIELD_KEYS: &[&str] = &["fields", "key_value", "key"];

/// Columns of merged files written in a delta encoding instead of a dictionary or
/// plainly, with why (per column of a merged file of the generated stream, zstd 3,
/// BENCHMARKS.md "Store: delta encodings"):
/// - `event.id`: ids begin with their time, and rows sorted by host and time share
///   those digits with the row before; a value's shared prefix is stored as a length
///   (14.2 -> 12.6 bytes/event).
/// - `message`: a host's consecutive lines share their header (13.1 -> 12.8).
/// - Windows counters and times, of near-constant width and unique per event, where a
///   dictionary shares nothing and plain text interleaves lengths with digits:
///   `EventRecordID` (3.3 -> 2.1), `TimeCreated_SystemTime` (3.6 -> 3.2),
///   `ParentProcessId` (0.8 -> 0.6) as lengths apart from bytes, and the hex
///   `LogonId`, which repeats through a session (1.2 -> 0.7), by shared prefix.
///
/// Other text keeps its encoding (a dictionary, plain pages when the dictionary grows too
/// big; command lines plain): free-length values' lengths vary, and a delta encoding of
/// them costs more than zstd's matches of a repeated value whole (command lines 2.1 ->
/// 2.6 bytes/event).
const DELTA_ENCODED_COLUMNS: &[(&str, Encoding)] = &[
    ("event.id", Encoding::DELTA_BYTE_ARRAY),
    ("message", Encoding::DELTA_BYTE_ARRAY),
    ("fields.EventRecordID", Encoding::DELTA_LENGTH_BYTE_ARRAY),
    (
        "fields.TimeCreated_SystemTime",
        Encoding::DELTA_LENGTH_BYTE_ARRAY,
    ),
    ("fields.ParentProcessId", Encoding::DELTA_LENGTH_BYTE_ARRAY),
    ("fields.LogonId", Encoding::DELTA_BYTE_ARRAY),
];

/// A Parquet column path from its parts.
fn column_path(parts: &[&str]) -> ColumnPath {
    ColumnPath::new(parts.iter().map(|p| p.to_string()).collect())
}

/// The writer settings of every file, with `metadata` as key-value metadata.
fn properties(
    metadata: Vec<(String, String)>,
    codec: Codec,
) -> Result<WriterProperties, CoreError> {
    let compression = match codec {
        Codec::Fast => Compression::LZ4_RAW,
        Codec::Compact(level) => Compression::ZSTD(
            ZstdLevel::try_new(level).map_err(|e| CoreError::BadInput(e.to_string()))?,
        ),
    };
    let mut builder = WriterProperties::builder()
        .set_compression(compression)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata((!metadata.is_empty()).then(|| {
            metadata
                .into_iter()
                .map(|(k, v)| KeyValue::new(k, v))
                .collect()
        }));
    for parts in FREE_TEXT_COLUMNS.iter().chain([&FIELD_KEYS]) {
        builder =
            builder.set_column_statistics_enabled(column_path(parts), EnabledStatistics::None);
    }
    for parts in FREE_TEXT_COLUMNS {
        if !(matches!(codec, Codec::Compact(_)) && *parts == FIELD_VALUES) {
            builder = builder.set_column_dictionary_enabled(column_path(parts), false);
        }
    }
    // The shredded keys: no statistics (the rows are not sorted by them, so min and max
    // prune nothing; comparing every value costs), and no dictionary in append files
    // (interning every value costs more than it saves before a merge). Statistics must
    // stay off for correctness too: a key column whose values are all stored elsewhere
    // (offsets, flags) is all null, and DataFusion reads a column its statistics say is
    // all null as the null literal, before the adapter puts the values back.
    for key in super::shredding::SHREDDED_KEYS {
        let path = ColumnPath::new(vec![super::shredding::column_name(key)]);
        builder = builder.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
        if codec == Codec::Fast {
            builder = builder.set_column_dictionary_enabled(path, false);
        }
    }
    for key in super::message_tail::TAIL_KEYS {
        let path = ColumnPath::new(vec![super::message_tail::column_name(key)]);
        builder = builder.set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    for (key, source) in super::same_as::SAME_AS {
        let path = ColumnPath::new(vec![super::same_as::column_name(key, source)]);
        builder = builder.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
        builder = builder.set_column_dictionary_enabled(path, false);
    }
    if matches!(codec, Codec::Compact(_)) {
        for (name, encoding) in DELTA_ENCODED_COLUMNS {
            let path = column_path(&[name]);
            builder = builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, *encoding);
        }
    }
    Ok(builder.build())
}

/// An I/O error's mapping, with what was being done.
pub(super) fn io(context: String) -> impl FnOnce(std::io::Error) -> CoreError {
    move |e| CoreError::io(context, e)
}

/// Writes `batch` as the append file `dir/name` (LZ4) durably: test files are made so.
#[cfg(test)]
pub(crate) fn write_file(
    dir: &Path,
    name: &str,
    batch: &RecordBatch,
) -> Result<PathBuf, CoreError> {
    write_file_with(dir, name, batch, Vec::new(), Codec::Fast)
}

/// Writes `batch` as the Parquet file `dir/name` durably, with key-value `metadata` in its
/// footer, compressed by `codec`: to a temporary name, fsync, rename over any file of
/// that name, fsync of the folder (and of the folders holding its partition folders, once
/// per process).
pub(crate) fn write_file_with(
    dir: &Path,
    name: &str,
    batch: &RecordBatch,
    metadata: Vec<(String, String)>,
    codec: Codec,
) -> Result<PathBuf, CoreError> {
    write_unsynced(dir, name, batch, metadata, codec)?.commit()
}

/// The first half of [`write_file_with`]: `batch` encoded into `dir/name`'s temporary
/// file, not synced.
pub(crate) fn write_unsynced(
    dir: &Path,
    name: &str,
    batch: &RecordBatch,
    metadata: Vec<(String, String)>,
    codec: Codec,
) -> Result<Unsynced, CoreError> {
    let stored = super::shredding::for_storage(batch)?;
    let batch = &stored;
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    let writer = ArrowWriter::try_new(file, batch.schema(), Some(properties(metadata, codec)?))
        .map_err(|e| CoreError::Internal(format!("parquet writer: {e}")))?;
    let file = write_row_groups(writer, batch, ROW_GROUP_ROWS)
        .map_err(|e| CoreError::Internal(format!("writing parquet: {e}")))?;
    Ok(Unsynced { file, tmp, path })
}

/// Writes `batch` through `writer` in row groups of at most `group_rows` rows, the
/// columns of each encoded and compressed in parallel (rayon), then the footer; returns
/// the file. `ArrowWriter::write` encodes one column after the other on one core.
fn write_row_groups(
    writer: ArrowWriter<File>,
    batch: &RecordBatch,
    group_rows: usize,
) -> ParquetResult<File> {
    let (mut file_writer, factory) = writer.into_serialized_writer()?;
    let schema = batch.schema();
    let (mut start, mut index) = (0, 0);
    while start < batch.num_rows() {
        let rows = batch.slice(start, group_rows.min(batch.num_rows() - start));
        let writers = factory.create_column_writers(index)?;
        let mut leaves = Vec::with_capacity(writers.len());
        for (field, column) in schema.fields().iter().zip(rows.columns()) {
            leaves.extend(compute_leaves(field, column)?);
        }
        if leaves.len() != writers.len() {
            return Err(ParquetError::General(format!(
                "{} leaf columns for {} column writers",
                leaves.len(),
                writers.len()
            )));
        }
        let chunks: Vec<ArrowColumnChunk> = writers
            .into_par_iter()
            .zip(leaves.into_par_iter())
            .map(|(mut writer, leaf)| {
                writer.write(&leaf)?;
                writer.close()
            })
            .collect::<ParquetResult<_>>()?;
        let mut row_group = file_writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        start += rows.num_rows();
        index += 1;
    }
    file_writer.into_inner()
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
    use super::super::rows::tests::events;
    use super::*;
    use parquet::file::metadata::RowGroupMetaData;
    use vedette_core::event::{Event, EventBatchBuilder};

    #[test]
    fn days_are_utc_dates_and_datasets_safe_folder_names() {
        assert_eq!(day_of(1_764_201_600_000 + DAY_MS - 1), "2025-11-27");
        assert_eq!(day_of(-1), "1969-12-31");
        assert_eq!(day_of(i64::MIN), "1970-01-01", "out of range, no overflow");
        assert_eq!(day_of_days(i64::MIN.div_euclid(DAY_MS)), "1970-01-01");
        assert_eq!(safe_folder_value(".."), "_");
        assert_eq!(safe_folder_value("../x"), ".._x");
    }

    #[test]
    fn append_files_are_lz4_and_merged_files_zstd_and_both_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let batch = events(&[(1, "syslog", Some("a")), (2, "syslog", Some("b"))]);
        let fast = write_file(dir.path(), "a.parquet", &batch).unwrap();
        let compact = write_file_with(
            dir.path(),
            "b.parquet",
            &batch,
            vec![("k".into(), "v".into())],
            Codec::Compact(DEFAULT_ZSTD_LEVEL),
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

    /// Events with a message and five fields each.
    fn full_events(n: usize) -> RecordBatch {
        let mut b = EventBatchBuilder::new();
        for i in 0..n {
            b.append(&Event {
                id: format!("e{i}"),
                timestamp_ms: i as i64,
                dataset: "windows.sysmon".into(),
                host_name: Some(format!("h{}", i % 3)),
                message: Some(format!("line {i}")),
                fields: vec![
                    ("Channel".into(), "Security".into()),
                    ("CommandLine".into(), format!("cmd /c {i}")),
                    ("EventID".into(), "4688".into()),
                    ("EventRecordID".into(), (1000 + i).to_string()),
                    ("LogonId".into(), format!("0x{:x}", 0x3e7 + i / 4)),
                ],
                ..Event::default()
            });
        }
        b.finish().unwrap()
    }

    /// `batch` written in `dir` once per codec: each file's name, codec, path and first
    /// row group.
    fn written_per_codec(
        dir: &Path,
        batch: &RecordBatch,
    ) -> Vec<(&'static str, Codec, PathBuf, RowGroupMetaData)> {
        use parquet::file::reader::FileReader;
        [
            ("a.parquet", Codec::Fast),
            ("b.parquet", Codec::Compact(DEFAULT_ZSTD_LEVEL)),
        ]
        .into_iter()
        .map(|(name, codec)| {
            let path = write_file_with(dir, name, batch, Vec::new(), codec).unwrap();
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(
                File::open(&path).unwrap(),
            )
            .unwrap();
            let group = reader.metadata().row_group(0).clone();
            (name, codec, path, group)
        })
        .collect()
    }

    #[test]
    fn merged_files_delta_encode_ids_messages_and_counters_and_read_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let batch = full_events(50);
        let stored = crate::parquet::shredding::for_storage(&batch).unwrap();
        for (name, codec, path, group) in written_per_codec(dir.path(), &batch) {
            for (column, encoding) in DELTA_ENCODED_COLUMNS {
                // Every file has every shredded key's column, all null where no event
                // has the key (`fields.ParentProcessId` here): a misspelt name fails.
                let chunk = group
                    .columns()
                    .iter()
                    .find(|c| c.column_path().parts() == [column.to_string()])
                    .unwrap_or_else(|| panic!("{name}: no column {column}"));
                let merged = matches!(codec, Codec::Compact(_));
                assert_eq!(
                    chunk.encodings().any(|e| e == *encoding),
                    merged,
                    "{name}: {column} in {encoding:?}"
                );
                assert!(
                    chunk.dictionary_page_offset().is_none() || !merged,
                    "{column}"
                );
            }
            let read: Vec<RecordBatch> =
                parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
                    File::open(&path).unwrap(),
                    1024,
                )
                .unwrap()
                .map(|b| b.unwrap())
                .collect();
            assert_eq!(read.len(), 1);
            for (i, field) in stored.schema().fields().iter().enumerate() {
                assert_eq!(
                    read[0].column_by_name(field.name()).unwrap().to_data(),
                    stored.column(i).to_data(),
                    "{name}: {}",
                    field.name()
                );
            }
        }
    }

    #[test]
    fn row_groups_encoded_in_parallel_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let batch = full_events(7);
        let path = dir.path().join("g.parquet");
        let writer = ArrowWriter::try_new(
            File::create(&path).unwrap(),
            batch.schema(),
            Some(properties(Vec::new(), Codec::Fast).unwrap()),
        )
        .unwrap();
        write_row_groups(writer, &batch, 3).unwrap();
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            File::open(&path).unwrap(),
        )
        .unwrap();
        assert_eq!(builder.metadata().num_row_groups(), 3, "7 rows by 3");
        let read: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
        let read = arrow::compute::concat_batches(&read[0].schema(), &read).unwrap();
        assert_eq!(read.num_rows(), 7);
        for (i, field) in batch.schema().fields().iter().enumerate() {
            assert_eq!(
                read.column_by_name(field.name()).unwrap().to_data(),
                batch.column(i).to_data(),
                "{}",
                field.name()
            );
        }
    }

    #[test]
    fn free_text_columns_have_no_statistics_or_dictionary_and_merged_values_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let batch = full_events(20);
        for (name, codec, _, group) in written_per_codec(dir.path(), &batch) {
            let column = |path: &str| {
                group
                    .columns()
                    .iter()
                    .find(|c| c.column_path().string() == path)
                    .unwrap_or_else(|| panic!("no column {path}"))
            };
            for free in ["message", "event.id", "fields.key_value.value"] {
                assert!(
                    column(free).statistics().is_none(),
                    "{name}: {free} statistics"
                );
            }
            assert!(column("host.name").statistics().is_some());
            // Shredded keys: no statistics; a dictionary once merged.
            assert!(column("fields.CommandLine").statistics().is_none());
            assert!(column("fields.EventID").statistics().is_none());
            assert_eq!(
                column("fields.EventID").dictionary_page_offset().is_some(),
                matches!(codec, Codec::Compact(_))
            );
            assert!(column("fields.key_value.key").statistics().is_none());
            assert!(column("fields.key_value.key")
                .dictionary_page_offset()
                .is_some());
            assert!(column("message").dictionary_page_offset().is_none());
            assert!(column("event.id").dictionary_page_offset().is_none());
            assert_eq!(
                column("fields.key_value.value")
                    .dictionary_page_offset()
                    .is_some(),
                codec == Codec::Compact(DEFAULT_ZSTD_LEVEL),
                "{name}: the values' dictionary"
            );
        }
    }
}
