//! Making written files durable: a file written under a temporary name
//! ([`super::files::write_unsynced`]) is synced, renamed into place and its folder synced
//! ([`Unsynced::commit`]); [`write_durably`] encodes many in parallel and commits each on
//! a few threads of their own as soon as it is written.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rayon::iter::{IndexedParallelIterator, IntoParallelIterator, ParallelIterator};
use vedette_core::CoreError;

use super::files::{io, sync_dir, DATASET_PREFIX, DAY_PREFIX};

/// A file written under its temporary name, not yet durable nor visible:
/// [`Unsynced::commit`] makes it both.
pub(crate) struct Unsynced {
    /// The written file, open for its sync.
    pub(super) file: File,
    /// Its temporary name (hidden: queries never read it).
    pub(super) tmp: PathBuf,
    /// The name it takes once durable.
    pub(super) path: PathBuf,
}

impl Unsynced {
    /// Syncs the file, renames it over any file of its final name and syncs its folder,
    /// then makes sure its partition folders' own entries are durable
    /// ([`sync_partition_entries`]); returns its path. Most of this is waiting for the
    /// disk.
    pub(super) fn commit(self) -> Result<PathBuf, CoreError> {
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

#[cfg(test)]
mod tests {
    use super::super::files::{write_unsynced, Codec, PartitionKey};
    use super::super::rows::tests::events;
    use super::*;

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
}
