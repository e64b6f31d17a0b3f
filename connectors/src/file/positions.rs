//! Read positions of followed files, saved under the data folder so that a restart
//! resumes where the last durable chunk ended: no loss, and no duplicates beyond the
//! chunks that were in flight.
//!
//! A position is saved only when the chunk that ends there is acknowledged (durable
//! downstream). Each position belongs to a file, not a path: it is kept under the
//! file's device and inode, with a fingerprint of its first bytes. A file renamed by
//! rotation (`app.log` to `app.log.1`) is therefore found again under its new name, a
//! new file that took a rotated file's path starts from zero, and a file that took a
//! deleted file's inode (or was rewritten in place) is told apart by its fingerprint
//! and starts from zero too. Positions of files that are neither open nor moved for
//! [`RETAIN_MS`] are dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::chunk::now_ms;
use crate::error::ConnectorError;

/// How long the position of a file that is not open is kept: 30 days.
pub const RETAIN_MS: i64 = 30 * 24 * 3600 * 1000;

/// Bytes at the start of a file its fingerprint covers, at most.
pub const FINGERPRINT_BYTES: usize = 1024;

/// A file's identity on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
}

impl FileId {
    /// The key of the file's saved position.
    fn key(self) -> String {
        format!("{}:{}", self.dev, self.ino)
    }
}

/// A hash of a file's first bytes (FNV-1a, stable across builds), to tell a file from
/// another that took its inode or was rewritten in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    /// How many first bytes it covers (0: none, the file was empty).
    pub len: usize,
    /// Their hash.
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `bytes` (the first bytes of a file).
    pub fn of(bytes: &[u8]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Self {
            len: bytes.len(),
            hash,
        }
    }

    /// Whether `head` (at least this fingerprint's length of a file's first bytes)
    /// begins with the bytes this fingerprint was made of. One of no bytes (an empty
    /// file's, or none saved) matches every file.
    pub fn matches(self, head: &[u8]) -> bool {
        self.len == 0 || head.get(..self.len).is_some_and(|b| Self::of(b) == self)
    }
}

/// Where reading of one file stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// Inode of the file the offset belongs to.
    pub inode: u64,
    /// Bytes of it acknowledged as durable.
    pub offset: u64,
    /// Device of the file (0 in positions saved before devices were kept).
    #[serde(default)]
    pub dev: u64,
    /// The path the file was read under.
    #[serde(default)]
    pub path: String,
    /// Its first bytes' fingerprint.
    #[serde(default)]
    pub fingerprint: Fingerprint,
    /// When the position last moved (Unix ms).
    #[serde(default)]
    pub updated_ms: i64,
}

impl FilePosition {
    /// Whether this is a position saved before devices were kept, under its path.
    fn is_legacy(&self) -> bool {
        self.dev == 0 && self.path.is_empty()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// By file (`dev:ino`); positions saved by earlier versions are by path.
    files: BTreeMap<String, FilePosition>,
}

/// A chunk handed over and not yet acknowledged.
#[derive(Debug, Clone)]
struct InFlight {
    id: FileId,
    fingerprint: Fingerprint,
    start: u64,
    end: u64,
}

#[derive(Debug, Default)]
struct State {
    saved: Saved,
    /// Chunks handed over but not yet acknowledged, per chunk origin.
    in_flight: HashMap<String, VecDeque<InFlight>>,
    /// Files open now, with how many inputs have each open: their positions are kept
    /// however old.
    open: HashMap<FileId, usize>,
    /// Positions changed in memory and not yet saved (a save failed).
    dirty: bool,
}

/// The positions file and the chunks in flight.
#[derive(Debug)]
pub struct Positions {
    path: PathBuf,
    state: Mutex<State>,
    /// Held from taking a snapshot to writing it, so saves land in order.
    saving: Mutex<()>,
}

impl Positions {
    /// Loads `path` (a missing file means no positions yet).
    pub fn load(path: &Path) -> Result<Self, ConnectorError> {
        let mut saved: Saved = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ConnectorError::BadConfig(format!(
                    "positions file {} is damaged: {e} (delete it to read every file from its \
                     start again)",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(ConnectorError::io(format!("reading {}", path.display()), e)),
        };
        // Positions of earlier versions name a path and an inode only: kept while that
        // path still holds that inode, and from now on they age like the others.
        let now = now_ms();
        saved.files.retain(|key, p| {
            if !p.is_legacy() {
                return true;
            }
            p.updated_ms = now;
            std::fs::metadata(key).is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.ino() == p.inode
            })
        });
        Ok(Self {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                saved,
                ..State::default()
            }),
            saving: Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where to resume reading the file `id`, now at `path`, `len` bytes long and
    /// beginning with `head` (its first [`FINGERPRINT_BYTES`] bytes or all of it): the
    /// saved offset when it is the same file, else 0. The file counts as open until
    /// [`Positions::closed`].
    pub fn resume(&self, path: &str, id: FileId, len: u64, head: &[u8]) -> u64 {
        let mut state = self.lock();
        *state.open.entry(id).or_default() += 1;
        let saved = &state.saved.files;
        let position = saved
            .get(&id.key())
            .filter(|p| p.inode == id.ino && p.dev == id.dev)
            .or_else(|| {
                saved
                    .get(path)
                    .filter(|p| p.is_legacy() && p.inode == id.ino)
            });
        match position {
            // Past the end: the file was cut (copytruncate) while nobody read it.
            Some(p) if p.offset <= len && p.fingerprint.matches(head) => p.offset,
            _ => 0,
        }
    }

    /// Records a chunk of the file `id` handed over under `origin`: bytes `start..end`.
    pub fn sent(&self, origin: &str, id: FileId, fingerprint: Fingerprint, start: u64, end: u64) {
        self.lock()
            .in_flight
            .entry(origin.to_string())
            .or_default()
            .push_back(InFlight {
                id,
                fingerprint,
                start,
                end,
            });
    }

    /// Forgets the file `id`, closed by one input; when it was deleted, its position
    /// and its chunks in flight too (their acknowledgements then change nothing).
    pub fn closed(&self, id: FileId, deleted: bool) {
        let mut state = self.lock();
        if let Some(n) = state.open.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                state.open.remove(&id);
            }
        }
        if deleted && !state.open.contains_key(&id) {
            state.saved.files.remove(&id.key());
            for queue in state.in_flight.values_mut() {
                queue.retain(|c| c.id != id);
            }
        }
    }

    /// Whether positions changed since the last save that worked.
    pub fn dirty(&self) -> bool {
        self.lock().dirty
    }

    /// Acknowledges the chunk of `origin` that started at `start` and saves.
    pub fn ack(&self, origin: &str, start: u64) -> Result<(), ConnectorError> {
        self.ack_all([(origin, start)])
    }

    /// Acknowledges chunks, each by its origin and start, and saves once. Chunks of one
    /// origin are acknowledged in the order they were handed over; anything before an
    /// acknowledged chunk is acknowledged with it. The positions are updated in memory
    /// even when saving fails, and the next call saves them, with acknowledgements or
    /// without ([`Positions::dirty`]).
    pub fn ack_all<'a>(
        &self,
        acks: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Result<(), ConnectorError> {
        let _saving = self
            .saving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let snapshot = {
            let mut state = self.lock();
            let now = now_ms();
            let mut moved = false;
            for (origin, start) in acks {
                let Some(queue) = state.in_flight.get_mut(origin) else {
                    continue;
                };
                let Some(index) = queue.iter().position(|c| c.start == start) else {
                    continue;
                };
                let done: Vec<InFlight> = queue.drain(..=index).collect();
                for chunk in done {
                    if let Some(legacy) = state.saved.files.get(origin) {
                        if legacy.is_legacy() && legacy.inode == chunk.id.ino {
                            state.saved.files.remove(origin);
                        }
                    }
                    state.saved.files.insert(
                        chunk.id.key(),
                        FilePosition {
                            inode: chunk.id.ino,
                            offset: chunk.end,
                            dev: chunk.id.dev,
                            path: origin.to_string(),
                            fingerprint: chunk.fingerprint,
                            updated_ms: now,
                        },
                    );
                    moved = true;
                }
            }
            if !moved && !state.dirty {
                return Ok(());
            }
            let State { saved, open, .. } = &mut *state;
            saved.files.retain(|key, p| {
                let id = FileId {
                    dev: p.dev,
                    ino: p.inode,
                };
                open.contains_key(&id) || now - p.updated_ms < RETAIN_MS || {
                    tracing::debug!(file = %key, "position of a file not seen for 30 days dropped");
                    false
                }
            });
            state.dirty = true;
            serde_json::to_vec_pretty(&state.saved)
                .map_err(|e| ConnectorError::BadConfig(format!("positions: {e}")))?
        };
        self.save(&snapshot)?;
        self.lock().dirty = false;
        Ok(())
    }

    /// Writes the positions atomically: a temporary file, fsync, rename, and fsync of
    /// the folder so the rename itself survives a power loss.
    fn save(&self, bytes: &[u8]) -> Result<(), ConnectorError> {
        let tmp = self.path.with_extension("tmp");
        let io = |e| ConnectorError::io(format!("saving {}", self.path.display()), e);
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }

    /// The saved position of the file last read under `path`.
    pub fn get(&self, path: &str) -> Option<FilePosition> {
        let state = self.lock();
        state
            .saved
            .files
            .iter()
            .filter(|(key, p)| p.path == path || (p.is_legacy() && key.as_str() == path))
            .max_by_key(|(_, p)| p.updated_ms)
            .map(|(_, p)| p.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: FileId = FileId { dev: 1, ino: 7 };
    const B: FileId = FileId { dev: 1, ino: 8 };

    #[test]
    fn positions_persist_only_when_acknowledged() -> Result<(), ConnectorError> {
        let dir = tempfile::tempdir().map_err(|e| ConnectorError::io("tempdir", e))?;
        let path = dir.path().join("positions.json");
        let head = b"first line\nsecond line\n";
        let fp = Fingerprint::of(head);
        let p = Positions::load(&path)?;
        p.sent("/x.log", A, fp, 0, 10);
        p.sent("/x.log", A, fp, 10, 23);
        assert_eq!(p.get("/x.log"), None);
        p.ack("/x.log", 0)?;
        assert_eq!(Positions::load(&path)?.resume("/x.log", A, 23, head), 10);
        p.ack("/x.log", 10)?;
        let reloaded = Positions::load(&path)?;
        assert_eq!(reloaded.resume("/x.log", A, 23, head), 23);
        // The same file under another name (rotated) resumes too.
        assert_eq!(reloaded.resume("/x.log.1", A, 30, head), 23);
        // Another file at the same path starts from zero.
        assert_eq!(reloaded.resume("/x.log", B, 23, head), 0);
        // The same inode with other first bytes (reused, or rewritten) starts from zero.
        assert_eq!(
            reloaded.resume("/x.log", A, 23, b"other content\n......."),
            0
        );
        // Cut below the saved offset while nobody read it: from zero.
        assert_eq!(reloaded.resume("/x.log", A, 5, &head[..5]), 0);
        Ok(())
    }

    #[test]
    fn positions_of_earlier_versions_are_still_found_by_path() -> Result<(), ConnectorError> {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().map_err(|e| ConnectorError::io("tempdir", e))?;
        let path = dir.path().join("positions.json");
        let (log, gone) = (dir.path().join("x.log"), dir.path().join("gone.log"));
        std::fs::write(&log, "anything\nmore\n").map_err(|e| ConnectorError::io("write", e))?;
        let meta = std::fs::metadata(&log).map_err(|e| ConnectorError::io("stat", e))?;
        let id = FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        };
        let log_key = log.to_string_lossy().to_string();
        let legacy = serde_json::json!({"files": {
            log_key.clone(): {"inode": id.ino, "offset": 12},
            // Its path now holds another file (or none): dropped at load.
            gone.to_string_lossy(): {"inode": id.ino, "offset": 3},
        }});
        std::fs::write(&path, legacy.to_string()).map_err(|e| ConnectorError::io("write", e))?;
        let p = Positions::load(&path)?;
        assert_eq!(p.resume(&log_key, id, 14, b"anything\nmore\n"), 12);
        let other = FileId {
            ino: id.ino + 1,
            ..id
        };
        assert_eq!(p.resume(&log_key, other, 14, b"anything"), 0);
        assert_eq!(p.get(&gone.to_string_lossy()), None);
        // Once acknowledged, the position is kept by file and the old entry goes.
        p.sent(&log_key, id, Fingerprint::of(b"anything\nmore\n"), 12, 14);
        p.ack(&log_key, 12)?;
        let text = std::fs::read_to_string(&path).map_err(|e| ConnectorError::io("read", e))?;
        assert!(
            text.contains(&format!("\"{}\"", id.key()))
                && !text.contains(&format!("\"{log_key}\": {{")),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn a_deleted_file_forgets_its_position_and_old_closed_ones_expire() -> Result<(), ConnectorError>
    {
        let dir = tempfile::tempdir().map_err(|e| ConnectorError::io("tempdir", e))?;
        let path = dir.path().join("positions.json");
        let p = Positions::load(&path)?;
        p.resume("/a.log", A, 0, b"");
        p.resume("/b.log", B, 0, b"");
        p.sent("/a.log", A, Fingerprint::default(), 0, 5);
        p.sent("/b.log", B, Fingerprint::default(), 0, 5);
        p.ack_all([("/a.log", 0), ("/b.log", 0)])?;
        // Open by two inputs: one closing it (even as deleted) keeps its position.
        p.resume("/a.log", A, 5, b"");
        p.closed(A, true);
        assert_eq!(p.get("/a.log").map(|f| f.offset), Some(5));
        // A chunk still in flight when the last input closes the deleted file: its
        // acknowledgement does not bring the position back.
        p.sent("/a.log", A, Fingerprint::default(), 5, 9);
        p.closed(A, true);
        assert_eq!(p.get("/a.log"), None);
        p.ack("/a.log", 5)?;
        assert_eq!(p.get("/a.log"), None);
        assert_eq!(p.get("/b.log").map(|f| f.offset), Some(5));
        // B closed (not deleted) and untouched past the retention: dropped at the next
        // save; an open file's position is kept however old.
        p.closed(B, false);
        p.lock()
            .saved
            .files
            .values_mut()
            .for_each(|f| f.updated_ms -= RETAIN_MS + 1);
        p.resume("/c.log", FileId { dev: 1, ino: 9 }, 0, b"");
        p.sent(
            "/c.log",
            FileId { dev: 1, ino: 9 },
            Fingerprint::default(),
            0,
            1,
        );
        p.ack("/c.log", 0)?;
        assert_eq!(Positions::load(&path)?.get("/b.log"), None);
        assert_eq!(
            Positions::load(&path)?.get("/c.log").map(|f| f.offset),
            Some(1)
        );
        Ok(())
    }

    #[test]
    fn a_failed_save_is_retried_by_the_next_call_with_or_without_acknowledgements(
    ) -> Result<(), ConnectorError> {
        let dir = tempfile::tempdir().map_err(|e| ConnectorError::io("tempdir", e))?;
        let path = dir.path().join("positions.json");
        let p = Positions::load(&path)?;
        // A folder where the file should go: the rename fails.
        std::fs::create_dir(&path).map_err(|e| ConnectorError::io("mkdir", e))?;
        p.sent("/a.log", A, Fingerprint::default(), 0, 5);
        assert!(p.ack("/a.log", 0).is_err());
        assert!(p.dirty());
        std::fs::remove_dir(&path).map_err(|e| ConnectorError::io("rmdir", e))?;
        p.ack_all([])?;
        assert!(!p.dirty());
        assert_eq!(
            Positions::load(&path)?.get("/a.log").map(|f| f.offset),
            Some(5)
        );
        Ok(())
    }

    #[test]
    fn fingerprints_cover_their_length_only() {
        let fp = Fingerprint::of(b"abc");
        assert!(fp.matches(b"abc"));
        assert!(fp.matches(b"abcdef"));
        assert!(!fp.matches(b"ab"));
        assert!(!fp.matches(b"abd"));
        assert!(Fingerprint::default().matches(b""));
        assert!(Fingerprint::default().matches(b"any"));
    }

    #[test]
    fn a_damaged_positions_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("positions.json");
        std::fs::write(&path, b"{not json").unwrap_or_else(|e| panic!("{e}"));
        let err = Positions::load(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("positions.json") && err.contains("damaged"),
            "{err}"
        );
    }
}
