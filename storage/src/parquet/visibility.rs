//! Which files a query sees, and when a replaced or expired file may be deleted.
//!
//! A compacted file becomes visible by one atomic rename; from that moment every
//! listing hides the files it accounts for ([`Coverage`]), so a query sees either the
//! inputs or the merge, never both. Replaced and expired files are not deleted at once:
//! they are *doomed* (hidden from this process's listings at once) and deleted by a
//! sweep only when no query that began before the doom is still running, and no
//! sooner than a grace period after it (for readers in other processes, such as
//! `vedette query` next to `vedette run`). A query never meets a missing file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use parquet::file::reader::{FileReader, SerializedFileReader};
use vedette_core::CoreError;

use super::coverage::{origin, Coverage, FileOrigin, COVERS_KEY, REPLACES_KEY};

/// Default wait before a doomed file is deleted (readers in other processes).
pub(crate) const DEFAULT_DELETE_GRACE: Duration = Duration::from_secs(300);

/// One Parquet file of a folder, as listed.
#[derive(Debug, Clone)]
pub(crate) struct FileInFolder {
    /// File name.
    pub(crate) name: String,
    /// Path on disk.
    pub(crate) path: PathBuf,
    /// Size in bytes.
    pub(crate) size: u64,
    /// Last modification.
    pub(crate) modified: SystemTime,
}

impl FileInFolder {
    /// The file `name` just written at `path`, as a listing would show it.
    pub(crate) fn stat(name: &str, path: PathBuf) -> Result<Self, CoreError> {
        let meta = std::fs::metadata(&path)
            .map_err(|e| CoreError::io(format!("reading {}", path.display()), e))?;
        Ok(Self {
            name: name.to_string(),
            path,
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }
}

/// The Parquet files of one folder (no temporary or hidden files).
pub(crate) fn list_folder(dir: &Path) -> Result<Vec<FileInFolder>, CoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CoreError::io(format!("listing {}", dir.display()), e)),
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".parquet") {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_file() {
            files.push(FileInFolder {
                name,
                path: entry.path(),
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Reads the coverage a compacted file carries in its footer, and its rows.
pub(crate) fn read_coverage(path: &Path) -> Result<(Coverage, u64), CoreError> {
    let file =
        File::open(path).map_err(|e| CoreError::io(format!("opening {}", path.display()), e))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| CoreError::Internal(format!("footer of {}: {e}", path.display())))?;
    let value = |key: &str| {
        reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == key))
            .and_then(|k| k.value.clone())
            .unwrap_or_default()
    };
    let rows = u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
    Ok((
        Coverage::decode(&value(COVERS_KEY), &value(REPLACES_KEY))?,
        rows,
    ))
}

/// The folder of a file's path.
fn folder_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A coverage read from a file, valid while the file keeps its size and time.
struct CachedCoverage {
    size: u64,
    modified: SystemTime,
    coverage: Arc<Coverage>,
    rows: u64,
}

/// When a doomed file may go.
#[derive(Debug, Clone, Copy)]
struct Doom {
    /// Deletable once no running query has a number below this.
    after_query: u64,
    /// And not before this time.
    not_before: Instant,
}

/// Running queries, by number.
#[derive(Default)]
struct Queries {
    next: u64,
    running: BTreeSet<u64>,
}

/// Shared state of what is visible and what waits for deletion.
#[derive(Default)]
pub(crate) struct Visibility {
    grace_ms: AtomicU64,
    /// Coverages of compacted files read so far, by folder and then file.
    coverage: Mutex<HashMap<PathBuf, HashMap<PathBuf, CachedCoverage>>>,
    doomed: Mutex<BTreeMap<PathBuf, Doom>>,
    queries: Mutex<Queries>,
}

impl std::fmt::Debug for Visibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visibility")
            .field("doomed", &lock(&self.doomed).len())
            .field("queries", &lock(&self.queries).running.len())
            .finish()
    }
}

/// Locks a mutex; a panic elsewhere while it was held leaves plain data behind, so the
/// poison is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Held by a running query; its files are kept until it is dropped.
#[derive(Debug)]
pub(crate) struct QueryGuard {
    visibility: Arc<Visibility>,
    number: u64,
}

impl Drop for QueryGuard {
    fn drop(&mut self) {
        lock(&self.visibility.queries).running.remove(&self.number);
    }
}

impl Visibility {
    /// A new state whose doomed files wait at least `grace`.
    pub(crate) fn new(grace: Duration) -> Self {
        let v = Self::default();
        v.set_grace(grace);
        v
    }

    /// Sets how long a doomed file waits at least.
    pub(crate) fn set_grace(&self, grace: Duration) {
        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.grace_ms.store(ms, Ordering::Relaxed);
    }

    /// The coverage of the compacted file `f`, from the cache or its footer.
    pub(crate) fn coverage_of(&self, f: &FileInFolder) -> Result<Arc<Coverage>, CoreError> {
        if let Some(coverage) = self.cached(f, |c| c.coverage.clone()) {
            return Ok(coverage);
        }
        let folder = folder_of(&f.path);
        let (coverage, rows) = read_coverage(&f.path)?;
        let coverage = Arc::new(coverage);
        lock(&self.coverage).entry(folder).or_default().insert(
            f.path.clone(),
            CachedCoverage {
                size: f.size,
                modified: f.modified,
                coverage: coverage.clone(),
                rows,
            },
        );
        Ok(coverage)
    }

    /// The rows of the compacted file `f` if its footer was read already (no I/O).
    pub(crate) fn cached_rows(&self, f: &FileInFolder) -> Option<u64> {
        self.cached(f, |c| c.rows)
    }

    /// `take` of what the cache holds for `f`, while `f` keeps its size and time.
    fn cached<T>(&self, f: &FileInFolder, take: impl FnOnce(&CachedCoverage) -> T) -> Option<T> {
        lock(&self.coverage)
            .get(&folder_of(&f.path))
            .and_then(|files| files.get(&f.path))
            .filter(|c| c.size == f.size && c.modified == f.modified)
            .map(take)
    }

    /// The coverages of the compacted files among `files` (one folder's); a
    /// compacted file whose footer cannot be read is logged and left out.
    pub(crate) fn coverages(&self, files: &[FileInFolder]) -> Vec<(String, Arc<Coverage>)> {
        files
            .iter()
            .filter(|f| origin(&f.name) == FileOrigin::Compacted)
            .filter_map(|f| match self.coverage_of(f) {
                Ok(c) => Some((f.name.clone(), c)),
                Err(e) => {
                    tracing::error!(file = %f.path.display(), error = %e, "unreadable compacted file: ignored");
                    None
                }
            })
            .collect()
    }

    /// The files of one folder that queries see: not doomed, not accounted for by a
    /// compacted file of the folder, and not an unreadable compacted file.
    pub(crate) fn visible(&self, mut files: Vec<FileInFolder>) -> Vec<FileInFolder> {
        let coverages = self.coverages(&files);
        let doomed = lock(&self.doomed);
        files.retain(|f| {
            let unreadable = origin(&f.name) == FileOrigin::Compacted
                && !coverages.iter().any(|(n, _)| n == &f.name);
            !unreadable
                && !doomed.contains_key(&f.path)
                && !coverages.iter().any(|(_, c)| c.accounts_for(&f.name))
        });
        files
    }

    /// The files of one folder that a compacted file accounts for: superseded, to be
    /// deleted.
    pub(crate) fn superseded(&self, files: &[FileInFolder]) -> Vec<PathBuf> {
        let coverages = self.coverages(files);
        files
            .iter()
            .filter(|f| coverages.iter().any(|(_, c)| c.accounts_for(&f.name)))
            .map(|f| f.path.clone())
            .collect()
    }

    /// Registers a query starting now.
    pub(crate) fn begin_query(self: &Arc<Self>) -> QueryGuard {
        let mut q = lock(&self.queries);
        let number = q.next;
        q.next += 1;
        q.running.insert(number);
        QueryGuard {
            visibility: self.clone(),
            number,
        }
    }

    /// Hides `paths` from listings now and queues them for deletion; returns how
    /// many were not doomed already.
    pub(crate) fn doom(&self, paths: impl IntoIterator<Item = PathBuf>) -> usize {
        let after_query = lock(&self.queries).next;
        let grace = Duration::from_millis(self.grace_ms.load(Ordering::Relaxed));
        let doom = Doom {
            after_query,
            not_before: Instant::now() + grace,
        };
        let mut doomed = lock(&self.doomed);
        let mut added = 0;
        for path in paths {
            if doomed.insert(path, doom).is_none() {
                added += 1;
            }
        }
        added
    }

    /// Whether a compacted file of `folder` known to this process holds the rows of
    /// the bus batch `key` (so writing them again would only add a hidden file).
    pub(crate) fn covered(&self, folder: &Path, key: &super::coverage::BusKey) -> bool {
        lock(&self.coverage)
            .get(folder)
            .is_some_and(|files| files.values().any(|c| c.coverage.covers(key)))
    }

    /// Whether `path` waits for deletion.
    pub(crate) fn is_doomed(&self, path: &Path) -> bool {
        lock(&self.doomed).contains_key(path)
    }

    /// Deletes the doomed files whose wait is over; returns how many went.
    pub(crate) fn sweep(&self) -> u64 {
        let oldest_running = lock(&self.queries).running.first().copied();
        let now = Instant::now();
        let due: Vec<PathBuf> = lock(&self.doomed)
            .iter()
            .filter(|(_, d)| {
                now >= d.not_before && oldest_running.is_none_or(|q| q >= d.after_query)
            })
            .map(|(p, _)| p.clone())
            .collect();
        let mut deleted = 0;
        for path in due {
            match std::fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot delete a replaced file");
                    continue;
                }
            }
            let folder = folder_of(&path);
            let mut coverage = lock(&self.coverage);
            if let Some(files) = coverage.get_mut(&folder) {
                files.remove(&path);
                if files.is_empty() {
                    coverage.remove(&folder);
                }
            }
            drop(coverage);
            lock(&self.doomed).remove(&path);
        }
        deleted
    }

    /// How many files wait for deletion.
    pub(crate) fn doomed_count(&self) -> usize {
        lock(&self.doomed).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, b"x").unwrap();
        p
    }

    #[test]
    fn a_doomed_file_waits_for_the_queries_that_began_before() {
        let dir = tempfile::tempdir().unwrap();
        let v = Arc::new(Visibility::new(Duration::ZERO));
        let early = v.begin_query();
        let a = touch(dir.path(), "a.parquet");
        assert_eq!(v.doom([a.clone()]), 1);
        assert_eq!(v.doom([a.clone()]), 0);
        let late = v.begin_query();
        assert!(v.visible(list_folder(dir.path()).unwrap()).is_empty());
        assert_eq!(v.sweep(), 0);
        assert!(a.exists());
        drop(early);
        assert_eq!(
            v.sweep(),
            1,
            "a query begun after the doom does not hold it"
        );
        assert!(!a.exists());
        assert_eq!(v.doomed_count(), 0);
        drop(late);
    }

    #[test]
    fn the_grace_period_holds_a_doomed_file() {
        let dir = tempfile::tempdir().unwrap();
        let v = Visibility::new(Duration::from_secs(3600));
        let a = touch(dir.path(), "a.parquet");
        v.doom([a.clone()]);
        assert_eq!(v.sweep(), 0);
        assert!(a.exists() && v.visible(list_folder(dir.path()).unwrap()).is_empty());
    }

    #[test]
    fn an_unreadable_compacted_file_is_hidden_and_its_neighbours_stay() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "compacted-1-000001.parquet");
        touch(
            dir.path(),
            "events-p00000-o00000000000000000001-000.parquet",
        );
        touch(
            dir.path(),
            ".events-p00000-o00000000000000000002-000.parquet.tmp",
        );
        let v = Visibility::default();
        let names: Vec<String> = v
            .visible(list_folder(dir.path()).unwrap())
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["events-p00000-o00000000000000000001-000.parquet"]);
        assert!(list_folder(&dir.path().join("missing")).unwrap().is_empty());
    }
}
