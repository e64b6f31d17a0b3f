//! The data folder: created on start and locked so that two processes never share it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Name of the lock file inside the data folder.
const LOCK_FILE: &str = "LOCK";

/// An open, exclusively locked data folder; the lock is released when dropped.
#[derive(Debug)]
pub(crate) struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates the folder if needed and takes its exclusive lock.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create data folder {}", path.display()))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => bail!(
                "data folder {} is in use by another vedette process; stop it or choose \
                 another folder with --data-dir",
                path.display()
            ),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The folder's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_the_same_folder_fails_until_the_first_is_dropped() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("data");
        let first = DataDir::open(&dir)?;
        assert_eq!(first.path(), dir);
        let second = DataDir::open(&dir)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            second.contains("in use by another vedette process"),
            "{second}"
        );
        drop(first);
        DataDir::open(&dir)?;
        Ok(())
    }
}
