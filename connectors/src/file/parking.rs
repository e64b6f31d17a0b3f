//! Parking: while an input has many files open, quiet ones are closed and remembered
//! here, then opened again when their size or modification time changes, so a pattern
//! matching many quiet files holds few file descriptors.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{listed, FileId, Fingerprint, Positions, Tracked};

/// A followed file closed while quiet: what is needed to read on when it changes.
#[derive(Debug)]
pub(super) struct Parked {
    key: String,
    /// Its path when last seen.
    path: PathBuf,
    offset: u64,
    /// Its size as last read, and its modification time when parked: either changing
    /// reopens it.
    len: u64,
    modified: Option<std::time::SystemTime>,
    fingerprint: Fingerprint,
    whole: bool,
    done: bool,
}

impl Parked {
    /// Whether the file, listed `len` bytes long and modified at `modified`, is as it
    /// was when parked.
    pub(super) fn unchanged(&self, len: u64, modified: Option<std::time::SystemTime>) -> bool {
        len == self.len && modified == self.modified
    }

    /// Whether it is a whole file read to its end (nothing is left to read in it).
    pub(super) fn finished_whole(&self) -> bool {
        self.whole && self.done
    }

    /// The same, last seen at `path`.
    pub(super) fn seen_at(self, path: PathBuf) -> Self {
        Self { path, ..self }
    }
}

/// The file `id` in the folder of `path`, if it is still there (under any name).
fn find_in_folder(path: &Path, id: FileId) -> Option<PathBuf> {
    let folder = path.parent()?;
    std::fs::read_dir(folder)
        .ok()?
        .flatten()
        .filter_map(|entry| listed(entry.path()))
        .find(|l| l.id == id)
        .map(|l| l.path)
}

/// Closes the whole files read to their end and, given `after`, the matched files that
/// have not grown for that long, keeping where they stand in `parked`.
pub(super) fn park_quiet(
    files: &mut Vec<Tracked>,
    parked: &mut HashMap<FileId, Parked>,
    after: Option<Duration>,
) {
    let mut i = 0;
    while i < files.len() {
        let t = &files[i];
        let quiet = t.matched
            && t.preamble.is_none()
            && !t.skipping_line
            && (t.whole && t.done
                || !t.whole && after.is_some_and(|a| t.last_growth.elapsed() >= a));
        let modified = t.file.metadata().and_then(|m| m.modified());
        match modified {
            Ok(modified) if quiet => {
                let t = files.swap_remove(i);
                // What was read up to: bytes written since reopen it at once.
                let len = if t.whole { t.offset } else { t.last_len };
                parked.insert(
                    t.id,
                    Parked {
                        key: t.key,
                        path: t.path,
                        offset: t.offset,
                        len,
                        modified: Some(modified),
                        fingerprint: t.fingerprint,
                        whole: t.whole,
                        done: t.done,
                    },
                );
            }
            _ => i += 1,
        }
    }
}

/// Opens a parked file again at `path`, to read on from where it stood (a file cut or
/// rewritten meanwhile is told at its next read by its size and fingerprint); `matched`
/// says whether the patterns still match it.
pub(super) fn unpark(
    path: &Path,
    id: FileId,
    p: Parked,
    matched: bool,
) -> Result<Tracked, (Parked, std::io::Error)> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return Err((p, e)),
    };
    match file.metadata() {
        Ok(m) if m.dev() == id.dev && m.ino() == id.ino => {}
        Ok(_) => {
            let e = std::io::Error::other("the path changed between listing and opening");
            return Err((p, e));
        }
        Err(e) => return Err((p, e)),
    }
    Ok(Tracked {
        file,
        id,
        key: p.key,
        path: path.to_path_buf(),
        matched,
        offset: p.offset,
        last_len: p.len,
        whole: p.whole,
        done: p.done,
        last_growth: Instant::now(),
        fingerprint: p.fingerprint,
        skipping_line: false,
        preamble: None,
    })
}

/// Settles the parked files the patterns no longer match (those left in `parked`): one
/// renamed away by a rotation is found in its folder and opened again, to be read to
/// its end and closed like any file no longer matched; one gone (deleted) has its
/// position forgotten.
pub(super) fn settle_unmatched(
    parked: &mut HashMap<FileId, Parked>,
    files: &mut Vec<Tracked>,
    positions: &Positions,
) {
    for (id, p) in parked.drain() {
        if p.finished_whole() {
            // Nothing left to read: its position stays saved, and ages.
            positions.closed(id, false);
            continue;
        }
        match find_in_folder(&p.path, id).map(|path| unpark(&path, id, p, false)) {
            Some(Ok(t)) => files.push(t),
            Some(Err((_, e))) => {
                tracing::warn!(error = %e, "cannot reopen a rotated input file");
                positions.closed(id, false);
            }
            None => positions.closed(id, true),
        }
    }
}
