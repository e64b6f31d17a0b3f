//! Background merging of small files, folder by folder (one day, one dataset).
//!
//! Each append writes at least one file per folder it touches, so a busy day collects
//! thousands of small files: slow to list, to open and to scan, and poorly compressed.
//! A pass merges them in size tiers: files of about the same size (within a factor of
//! eight) are merged once at least [`CompactionPolicy::fan_in`] of them gather, so a row
//! is rewritten about once per tier, a handful of times in all. A folder that received
//! nothing for [`CompactionPolicy::cold_after`] has all its small files merged whatever
//! their tier. A merge never exceeds [`CompactionPolicy::target_bytes`] of input, nor
//! [`CompactionPolicy::max_rows`] rows: the rows of a merge are held in memory.
//!
//! A merge reads its inputs, sorts the rows by (host, time), and writes one compacted
//! file durably, whose footer says what it replaced ([`super::coverage`]). Its rename
//! into place is the commit: from then on listings hide the inputs, which are doomed
//! and deleted once no query needs them ([`super::visibility`]). A crash before the
//! rename leaves a temporary file (cleared later); after it, the inputs are hidden and
//! deleted at the next open.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime};

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use vedette_core::CoreError;

use super::coverage::{origin, Coverage, FileOrigin, COVERS_KEY, REPLACES_KEY};
use super::files;
use super::rows;
use super::visibility::{FileInFolder, Visibility};

/// When and how much to merge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompactionPolicy {
    /// Most input bytes of one merge (also: files at least half this size are done).
    pub(crate) target_bytes: u64,
    /// Files of one tier merged together once this many gather.
    pub(crate) fan_in: usize,
    /// A folder untouched this long has all its small files merged.
    pub(crate) cold_after: Duration,
    /// Most files in one merge.
    pub(crate) max_inputs: usize,
    /// Most rows in one merge, which holds them in memory twice (read, then sorted); a
    /// file of half this many rows is done. Bytes alone do not bound memory: merged
    /// files of repetitive events hold 20 bytes per event on disk and 1.6 KB in memory.
    pub(crate) max_rows: u64,
    /// zstd level of merged files.
    pub(crate) zstd_level: i32,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self {
            target_bytes: 48 * 1024 * 1024,
            fan_in: 8,
            cold_after: Duration::from_secs(300),
            max_inputs: 2000,
            max_rows: 512 * 1024,
            zstd_level: files::DEFAULT_ZSTD_LEVEL,
        }
    }
}

/// Size tier of a file: 0 below 512 KiB, then one more per factor of eight.
fn tier(size: u64) -> u32 {
    let mut units = size / (64 * 1024);
    let mut t = 0;
    while units >= 8 {
        units /= 8;
        t += 1;
    }
    t
}

/// The merges to run in one folder: groups of indexes into `files`.
pub(crate) fn plan(
    files: &[FileInFolder],
    now: SystemTime,
    policy: &CompactionPolicy,
) -> Vec<Vec<usize>> {
    let mut small: Vec<usize> = (0..files.len())
        .filter(|&i| files[i].size < policy.target_bytes / 2)
        .collect();
    small.sort_by_key(|&i| (files[i].modified, i));
    let newest = files.iter().map(|f| f.modified).max();
    let cold = newest.is_some_and(|t| {
        now.duration_since(t)
            .is_ok_and(|age| age >= policy.cold_after)
    });
    let mut groups = Vec::new();
    if cold {
        groups.extend(fill(&small, files, policy, 2));
        return groups;
    }
    let mut tiers: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for i in small {
        tiers.entry(tier(files[i].size)).or_default().push(i);
    }
    for members in tiers.values() {
        groups.extend(fill(members, files, policy, policy.fan_in));
    }
    groups
}

/// Cuts `members` (oldest first) into groups within the byte and count limits, keeping
/// those of at least `min_len` files.
fn fill(
    members: &[usize],
    files: &[FileInFolder],
    policy: &CompactionPolicy,
    min_len: usize,
) -> Vec<Vec<usize>> {
    let mut groups = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = 0u64;
    for &i in members {
        let size = files[i].size;
        if !current.is_empty()
            && (bytes + size > policy.target_bytes || current.len() >= policy.max_inputs)
        {
            groups.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(i);
        bytes += size;
    }
    groups.push(current);
    groups.retain(|g| g.len() >= min_len.max(2));
    groups
}

/// What one merge did.
#[derive(Debug, Clone)]
pub(crate) struct Merged {
    /// The compacted file.
    pub(crate) output: FileInFolder,
    /// The files it replaces.
    pub(crate) inputs: Vec<FileInFolder>,
    /// Rows written.
    pub(crate) rows: u64,
}

/// The rows of a Parquet file, from its footer (the file is closed again: a merge may
/// have thousands of inputs).
fn rows_in(path: &Path) -> Result<u64, CoreError> {
    let file =
        File::open(path).map_err(|e| CoreError::io(format!("opening {}", path.display()), e))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| CoreError::Internal(format!("footer of {}: {e}", path.display())))?;
    Ok(u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0))
}

/// Which inputs one merge takes, given their rows (oldest first): those with fewer
/// than half of `max_rows` rows (the others are done), oldest first while their rows
/// add up to at most `max_rows`; none if fewer than two.
fn within_rows(rows: &[u64], max_rows: u64) -> Vec<usize> {
    let mut taken = Vec::new();
    let mut total = 0;
    for (i, &n) in rows.iter().enumerate() {
        if n >= max_rows / 2 {
            continue;
        }
        if total + n > max_rows {
            break;
        }
        total += n;
        taken.push(i);
    }
    if taken.len() < 2 {
        taken.clear();
    }
    taken
}

/// Reads every row of a Parquet file.
fn read_all(path: &Path) -> Result<Vec<RecordBatch>, CoreError> {
    let file =
        File::open(path).map_err(|e| CoreError::io(format!("opening {}", path.display()), e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| CoreError::Internal(format!("reading {}: {e}", path.display())))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CoreError::Internal(format!("reading {}: {e}", path.display())))
}

/// Merges files of the folder `dir` into the compacted file `name` (the rename into
/// place commits it), compressed with zstd at `zstd_level`: those of `inputs` that fit
/// in `max_rows` ([`within_rows`]); the
/// others wait for a later pass. Returns `None` when fewer than two fit. The caller
/// dooms the merged inputs afterwards.
pub(crate) fn merge(
    dir: &Path,
    name: &str,
    inputs: &[FileInFolder],
    max_rows: u64,
    zstd_level: i32,
    visibility: &Visibility,
) -> Result<Option<Merged>, CoreError> {
    // Compacted inputs' rows are cached with their coverage; the others' footers are read.
    let rows = inputs
        .iter()
        .map(|f| {
            visibility
                .cached_rows(f)
                .map_or_else(|| rows_in(&f.path), Ok)
        })
        .collect::<Result<Vec<u64>, _>>()?;
    let chosen = within_rows(&rows, max_rows);
    if chosen.is_empty() {
        return Ok(None);
    }
    let mut batches = Vec::new();
    let mut coverage = Coverage::default();
    let mut merged_inputs = Vec::with_capacity(chosen.len());
    for file in chosen.into_iter().map(|i| &inputs[i]) {
        // Files from before shredding are shredded, so that all inputs line up.
        for batch in read_all(&file.path)? {
            batches.push(super::shredding::for_storage(&batch)?);
        }
        let inner = match origin(&file.name) {
            FileOrigin::Compacted => Some(visibility.coverage_of(file)?),
            FileOrigin::Bus(_) | FileOrigin::Loose => None,
        };
        coverage.add_input(&file.name, inner.as_deref());
        merged_inputs.push(file.clone());
    }
    let Some(first) = batches.first() else {
        return Err(CoreError::Internal("a merge without rows".into()));
    };
    let schema = first.schema();
    if batches
        .iter()
        .any(|b| b.schema().fields() != schema.fields())
    {
        return Err(CoreError::Internal(format!(
            "files of {} have different columns, not merged",
            dir.display()
        )));
    }
    let order = rows::all_rows_sorted(&batches, super::TIME_COLUMN)?;
    let rows = rows::gather(&batches, &order)?;
    drop(batches);
    let (covers, replaces) = coverage.encode();
    let path = files::write_file_with(
        dir,
        name,
        &rows,
        vec![
            (COVERS_KEY.to_string(), covers),
            (REPLACES_KEY.to_string(), replaces),
        ],
        files::Codec::Compact(zstd_level),
    )?;
    let output = FileInFolder::stat(name, path)?;
    visibility.coverage_of(&output)?;
    Ok(Some(Merged {
        output,
        inputs: merged_inputs,
        rows: rows.num_rows() as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64, age_s: u64, now: SystemTime) -> FileInFolder {
        FileInFolder {
            name: name.into(),
            path: name.into(),
            size,
            modified: now - Duration::from_secs(age_s),
        }
    }

    #[test]
    fn small_files_merge_by_tier_and_large_ones_stay() {
        let now = SystemTime::now();
        let policy = CompactionPolicy {
            target_bytes: 64 * 1024 * 1024,
            fan_in: 4,
            cold_after: Duration::from_secs(300),
            max_inputs: 100,
            max_rows: 1_000_000,
            zstd_level: files::DEFAULT_ZSTD_LEVEL,
        };
        let mut files: Vec<FileInFolder> = (0..9)
            .map(|i| file(&format!("s{i}"), 10_000, 100 - i, now))
            .collect();
        files.push(file("m0", 2_000_000, 50, now));
        files.push(file("m1", 2_000_000, 40, now));
        files.push(file("big", 40 * 1024 * 1024, 30, now));
        let groups = plan(&files, now, &policy);
        assert_eq!(
            groups,
            vec![(0..9).collect::<Vec<_>>()],
            "9 tier-0 files, 2 tier-1 files wait"
        );

        let cold: Vec<FileInFolder> = files
            .iter()
            .map(|f| FileInFolder {
                modified: f.modified - Duration::from_secs(3600),
                ..f.clone()
            })
            .collect();
        let groups = plan(&cold, now, &policy);
        assert_eq!(groups.len(), 1);
        assert_eq!(
            groups[0].len(),
            11,
            "a cold folder merges every small file: {groups:?}"
        );
        assert!(!groups[0].contains(&11));
    }

    #[test]
    fn a_merge_takes_the_oldest_files_that_fit_its_rows_and_leaves_done_ones() {
        assert_eq!(within_rows(&[10, 20, 30, 45], 100), [0, 1, 2]);
        assert_eq!(within_rows(&[10, 20, 30, 40], 100), [0, 1, 2, 3]);
        assert_eq!(within_rows(&[60, 10, 20], 100), [1, 2], "60 rows are done");
        assert!(
            within_rows(&[10, 95], 100).is_empty(),
            "one file is no merge"
        );
        assert!(
            within_rows(&[30, 40, 50], 60).is_empty(),
            "all done by rows"
        );
        assert_eq!(within_rows(&[25, 25, 25], 60), [0, 1]);
    }

    #[test]
    fn a_merge_of_files_beyond_its_rows_merges_the_oldest_and_leaves_the_rest() {
        use super::super::rows::tests::events;
        let dir = tempfile::tempdir().unwrap();
        let visibility = Visibility::new(Duration::ZERO);
        let inputs: Vec<FileInFolder> = (0..3)
            .map(|i| {
                let name = format!("f{i}.parquet");
                let batch = events(&[(i, "x", Some("h")); 3]);
                let path = files::write_file(dir.path(), &name, &batch).unwrap();
                FileInFolder::stat(&name, path).unwrap()
            })
            .collect();
        let merged = merge(dir.path(), "m.parquet", &inputs, 8, 3, &visibility)
            .unwrap()
            .expect("two files of 3 rows fit in 8");
        assert_eq!(merged.rows, 6);
        let names: Vec<&str> = merged.inputs.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["f0.parquet", "f1.parquet"]);
        assert_eq!(
            visibility.cached_rows(&merged.output),
            Some(6),
            "a merge's rows are known without reading it again"
        );
        assert!(
            merge(dir.path(), "n.parquet", &inputs, 5, 3, &visibility)
                .unwrap()
                .is_none(),
            "files of 3 rows are done when a merge holds 5"
        );
    }

    #[test]
    fn a_merge_stays_within_its_byte_budget() {
        let now = SystemTime::now();
        let policy = CompactionPolicy {
            target_bytes: 100_000,
            fan_in: 2,
            cold_after: Duration::from_secs(300),
            max_inputs: 3,
            max_rows: 1_000_000,
            zstd_level: files::DEFAULT_ZSTD_LEVEL,
        };
        let files: Vec<FileInFolder> = (0..8)
            .map(|i| file(&format!("s{i}"), 20_000, 100 - i, now))
            .collect();
        let groups = plan(&files, now, &policy);
        assert_eq!(groups, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]);
        assert_eq!(tier(0), 0);
        assert_eq!(tier(511 * 1024), 0);
        assert_eq!(tier(512 * 1024), 1);
        assert_eq!(tier(4 * 1024 * 1024), 2);
    }

    /// A merge reads its inputs as they are: no shredding again.
    #[test]
    fn files_read_back_are_in_the_current_layout() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = vedette_core::event::EventBatchBuilder::new();
        b.append(&vedette_core::event::Event {
            id: "a".into(),
            dataset: "x".into(),
            ..Default::default()
        });
        let batch = b.finish().unwrap();
        let path = files::write_file(dir.path(), "a.parquet", &batch).unwrap();
        for read in read_all(&path).unwrap() {
            assert!(super::super::shredding::is_current(&read.schema()));
        }
    }
}
