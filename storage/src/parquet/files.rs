//! Writing one table's rows as Parquet files (grouped and ordered by [`super::rows`]),
//! LZ4 or zstd, written durably under a name derived from
//! the rows' bus position so a re-delivered batch replaces its own files.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
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

/// Rows per row group: large enough for scans, small enough to prune by time.
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Name prefix of a day's folder under a table's folder.
const DAY_PREFIX: &str = "day=";
/// Name prefix of a dataset's folder under a day's folder.
const DATASET_PREFIX: &str = "dataset=";

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

fn io(context: String) -> impl FnOnce(std::io::Error) -> CoreError {
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

/// A file written under its temporary name, not yet durable nor visible:
/// [`Unsynced::commit`] makes it both.
pub(crate) struct Unsynced {
    /// The written file, open for its sync.
    file: File,
    /// Its temporary name (hidden: queries never read it).
    tmp: PathBuf,
    /// The name it takes once durable.
    path: PathBuf,
}

impl Unsynced {
    /// Syncs the file, renames it over any file of its final name and syncs its folder,
    /// then makes sure its partition folders' own entries are durable
    /// ([`sync_partition_entries`]); returns its path. Most of this is waiting for the
    /// disk.
    fn commit(self) -> Result<PathBuf, CoreError> {
        let Self { file, tmp, path } = self;
        file.sync_all()
            .map_err(io(format!("syncing {}", tmp.display())))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io(format!("renaming to {}", path.display())))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
            sync_partition_entries(dir)?;
        }
        Ok(path)
    }
}

/// Syncs the folder holding each partition folder (`day=`, `dataset=`) of `dir` and
/// above, once per folder and process: a folder just made (by this write or a
/// concurrent one) is durable only once its entry in its parent is. A folder is
/// remembered by path and inode (one deleted by retention and made again is new) only
/// after that sync, and the memory starts empty at every start.
fn sync_partition_entries(dir: &Path) -> Result<(), CoreError> {
    static SYNCED: OnceLock<Mutex<HashSet<(PathBuf, u64)>>> = OnceLock::new();
    let synced = SYNCED.get_or_init(Default::default);
    let partitions = dir.ancestors().take_while(|folder| {
        folder
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DAY_PREFIX) || n.starts_with(DATASET_PREFIX))
    });
    for folder in partitions {
        let inode = std::fs::metadata(folder)
            .map_err(io(format!("reading {}", folder.display())))?
            .ino();
        let key = (folder.to_path_buf(), inode);
        if lock(synced).contains(&key) {
            continue;
        }
        match folder.parent() {
            // A relative path's first folder is held by the working folder.
            Some(parent) if parent.as_os_str().is_empty() => sync_dir(Path::new("."))?,
            Some(parent) => sync_dir(parent)?,
            None => {}
        }
        lock(synced).insert(key);
    }
    Ok(())
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

/// Threads that commit the files of one [`write_durably`] call: enough for the disk's
/// queue, few enough that an append touching hundreds of folders does not start
/// hundreds of threads.
const SYNC_THREADS: usize = 8;

/// Runs `write` on every item in parallel (rayon, one item per task) and hands each file
/// it writes to one of up to [`SYNC_THREADS`] threads that commit it
/// ([`Unsynced::commit`]) as soon as it is written: the waits for the disk then overlap
/// each other and the encoding of the other files, instead of holding one of the
/// CPU-bound workers. Returns the files, in the order of `items`, once every one is
/// durable. On an error, rayon starts no further item, every file already written is
/// still committed (and visible) before the call returns, and the first error is
/// returned (the others are logged).
pub(crate) fn write_durably<T: Send>(
    items: Vec<T>,
    write: impl Fn(T) -> Result<Unsynced, CoreError> + Sync,
) -> Result<Vec<PathBuf>, CoreError> {
    let count = items.len();
    let (to_commit, queue) = std::sync::mpsc::channel::<(usize, Unsynced)>();
    let queue = Mutex::new(queue);
    // Files committed where they were written: when no committer could start, or all
    // have stopped.
    let committed_here = Mutex::new(Vec::new());
    let commit_here = |index: usize, unsynced: Unsynced| {
        let committed = unsynced.commit();
        lock(&committed_here).push((index, committed));
    };
    std::thread::scope(|scope| {
        let committers: Vec<_> = (0..count.min(SYNC_THREADS))
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("vedette-sync".into())
                    .spawn_scoped(scope, || {
                        let mut done = Vec::new();
                        loop {
                            // The lock is let go before the commit (end of statement).
                            let next = lock(&queue).recv();
                            // Every sender gone: the writes are over.
                            let Ok((index, unsynced)) = next else {
                                return done;
                            };
                            done.push((index, unsynced.commit()));
                        }
                    })
                    .ok()
            })
            .collect();
        let to_commit = (!committers.is_empty()).then_some(to_commit);
        let written = items
            .into_par_iter()
            .enumerate()
            .with_max_len(1)
            .map_with(to_commit, |to_commit, (index, item)| {
                let unsynced = write(item)?;
                match to_commit {
                    Some(sender) => {
                        if let Err(unsent) = sender.send((index, unsynced)) {
                            let (index, unsynced) = unsent.0;
                            commit_here(index, unsynced);
                        }
                    }
                    None => commit_here(index, unsynced),
                }
                Ok(())
            })
            .collect::<Result<(), CoreError>>();
        let mut results = std::mem::take(&mut *lock(&committed_here));
        for committer in committers {
            match committer.join() {
                Ok(done) => results.extend(done),
                Err(_) => results.push((
                    count,
                    Err(CoreError::Internal("a file's commit panicked".into())),
                )),
            }
        }
        let mut paths: Vec<Option<PathBuf>> = vec![None; count];
        let mut first_error = written.err();
        for (index, result) in results {
            match result {
                Ok(path) => {
                    if let Some(slot) = paths.get_mut(index) {
                        *slot = Some(path);
                    }
                }
                Err(e) if first_error.is_none() => first_error = Some(e),
                Err(e) => tracing::warn!(error = %e, "another file of the same write failed"),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => paths
                .into_iter()
                .map(|p| p.ok_or_else(|| CoreError::Internal("a file was not committed".into())))
                .collect(),
        }
    })
}

/// `mutex` locked, whether or not a thread panicked holding it (what it guards stays
/// whole: a value is pushed or received in one step).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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
    fn parallel_writes_are_durable_in_order_and_a_failed_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let batch = events(&[(1, "syslog", Some("a")), (2, "syslog", Some("b"))]);
        let names_in = |folder: &Path| -> Vec<String> {
            std::fs::read_dir(folder)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        let folders: Vec<PathBuf> = (0..5).map(|i| dir.path().join(format!("f{i}"))).collect();
        let written = write_durably(folders.clone(), |folder| {
            write_unsynced(&folder, "x.parquet", &batch, Vec::new(), Codec::Fast)
        })
        .unwrap();
        let expected: Vec<PathBuf> = folders.iter().map(|f| f.join("x.parquet")).collect();
        assert_eq!(written, expected, "one file per item, in the items' order");
        for (folder, path) in folders.iter().zip(&written) {
            assert_eq!(
                names_in(folder),
                ["x.parquet"],
                "renamed, no temporary left"
            );
            let read = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                File::open(path).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum::<usize>();
            assert_eq!(read, 2);
        }
        // A failed item is the call's error, wherever it comes; the other items either
        // were written whole (committed, no temporary left) or not started.
        for failing in [0, 4] {
            let base = dir.path().join(format!("run{failing}"));
            let items: Vec<usize> = (0..5).collect();
            let err = write_durably(items, |i| {
                if i == failing {
                    return Err(CoreError::BadInput(format!("item {i} refused")));
                }
                write_unsynced(
                    &base.join(format!("g{i}")),
                    "x.parquet",
                    &batch,
                    Vec::new(),
                    Codec::Fast,
                )
            })
            .unwrap_err();
            assert!(
                err.to_string().contains(&format!("item {failing} refused")),
                "{err}"
            );
            for i in (0..5).filter(|&i| i != failing) {
                let folder = base.join(format!("g{i}"));
                if folder.exists() {
                    assert_eq!(names_in(&folder), ["x.parquet"], "{}", folder.display());
                }
            }
        }
        // A folder that cannot be made (a file is in its place) is an error too.
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, b"not a folder").unwrap();
        let err = write_durably(vec![blocked.join("sub")], |folder| {
            write_unsynced(&folder, "x.parquet", &batch, Vec::new(), Codec::Fast)
        })
        .unwrap_err();
        assert!(err.to_string().contains("blocked"), "{err}");
    }

    #[test]
    fn partition_folders_entries_are_synced_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let key = PartitionKey {
            day: "2026-12-06".into(),
            dataset: Some("syslog".into()),
        };
        let folder = key.folder(&dir.path().join("events"));
        std::fs::create_dir_all(&folder).unwrap();
        sync_partition_entries(&folder).unwrap();
        // Remembered: a second call syncs nothing, and is as good.
        sync_partition_entries(&folder).unwrap();
        // A folder deleted (by retention) since is an error, not a silent success.
        std::fs::remove_dir_all(dir.path().join("events")).unwrap();
        let err = sync_partition_entries(&folder).unwrap_err();
        assert!(err.to_string().contains("dataset=syslog"), "{err}");
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
