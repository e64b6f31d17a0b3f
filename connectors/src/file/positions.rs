//! Read positions of followed files, saved under the data folder so that a restart
//! resumes where the last durable chunk ended: no loss, and no duplicates beyond the
//! chunks that were in flight.
//!
//! A position is saved only when the chunk that ends there is acknowledged (durable
//! downstream). Each file is identified by path and inode, so a position is never
//! applied to a different file that took the path (rotation).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::ConnectorError;

/// Where reading of one file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// Inode of the file the offset belongs to.
    pub inode: u64,
    /// Bytes of it acknowledged as durable.
    pub offset: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    files: BTreeMap<String, FilePosition>,
}

#[derive(Debug, Default)]
struct State {
    saved: Saved,
    /// Chunks handed over but not yet acknowledged: (inode, start, end) per path.
    in_flight: HashMap<String, VecDeque<(u64, u64, u64)>>,
}

/// The positions file and the chunks in flight.
#[derive(Debug)]
pub struct Positions {
    path: PathBuf,
    state: Mutex<State>,
}

impl Positions {
    /// Loads `path` (a missing file means no positions yet).
    pub fn load(path: &Path) -> Result<Self, ConnectorError> {
        let saved = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ConnectorError::BadConfig(format!(
                    "positions file {} is damaged: {e}",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(ConnectorError::io(format!("reading {}", path.display()), e)),
        };
        Ok(Self {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                saved,
                in_flight: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The saved position of `file`, if it is the same file (inode) as saved.
    pub fn resume_offset(&self, file: &str, inode: u64) -> u64 {
        match self.lock().saved.files.get(file) {
            Some(p) if p.inode == inode => p.offset,
            _ => 0,
        }
    }

    /// Records a chunk handed over, bytes `start..end` of `file` with `inode`.
    pub fn sent(&self, file: &str, inode: u64, start: u64, end: u64) {
        self.lock()
            .in_flight
            .entry(file.to_string())
            .or_default()
            .push_back((inode, start, end));
    }

    /// Acknowledges the chunk of `file` that started at `start`; saves the position
    /// when it was the oldest chunk in flight of that file.
    pub fn ack(&self, file: &str, start: u64) -> Result<(), ConnectorError> {
        let snapshot = {
            let mut state = self.lock();
            let Some(queue) = state.in_flight.get_mut(file) else {
                return Ok(());
            };
            let Some(index) = queue.iter().position(|(_, s, _)| *s == start) else {
                return Ok(());
            };
            // Acknowledgements arrive in order per file; anything before this one is
            // acknowledged with it.
            let mut last = None;
            for _ in 0..=index {
                last = queue.pop_front();
            }
            let Some((inode, _, end)) = last else {
                return Ok(());
            };
            state
                .saved
                .files
                .insert(file.to_string(), FilePosition { inode, offset: end });
            serde_json::to_vec_pretty(&state.saved)
                .map_err(|e| ConnectorError::BadConfig(format!("positions: {e}")))?
        };
        self.save(&snapshot)
    }

    /// Writes the positions atomically (temporary file, fsync, rename).
    fn save(&self, bytes: &[u8]) -> Result<(), ConnectorError> {
        let tmp = self.path.with_extension("tmp");
        let io = |e| ConnectorError::io(format!("saving {}", self.path.display()), e);
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    /// The saved position of `file`.
    pub fn get(&self, file: &str) -> Option<FilePosition> {
        self.lock().saved.files.get(file).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_persist_only_when_acknowledged() -> Result<(), ConnectorError> {
        let dir = tempfile::tempdir().map_err(|e| ConnectorError::io("tempdir", e))?;
        let path = dir.path().join("positions.json");
        let p = Positions::load(&path)?;
        p.sent("/x.log", 7, 0, 10);
        p.sent("/x.log", 7, 10, 25);
        assert_eq!(p.get("/x.log"), None);
        p.ack("/x.log", 0)?;
        assert_eq!(Positions::load(&path)?.resume_offset("/x.log", 7), 10);
        p.ack("/x.log", 10)?;
        let reloaded = Positions::load(&path)?;
        assert_eq!(reloaded.resume_offset("/x.log", 7), 25);
        // Another file at the same path (rotated) starts from zero.
        assert_eq!(reloaded.resume_offset("/x.log", 8), 0);
        Ok(())
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
