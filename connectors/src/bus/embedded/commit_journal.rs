//! Where one consumer group's commits are kept durably: a snapshot of every commit
//! (`<group>.json`, replaced atomically) and a journal of the commits made since
//! (`<group>.journal`), appended and synced once per commit.
//!
//! A commit costs one small append and one `fdatasync`, instead of creating, syncing and
//! renaming a file (which, at one commit per batch per group, made the file system's
//! inode allocation a visible share of the bus's CPU). Past [`COMPACT_AFTER`] entries the
//! snapshot is rewritten and the journal emptied.
//!
//! Journal entry (little-endian): `u32 body length │ u32 CRC32C of the body │ body: u64
//! next offset │ u32 partition │ topic (UTF-8, the rest of the body)`. At open the
//! journal is replayed over the snapshot up to its first torn or damaged entry, where
//! the file is cut: such an entry was being written when the process died, and its
//! commit was never acknowledged. Replaying entries already in the snapshot (a crash
//! between rewriting it and emptying the journal) gives the same commits, as each entry
//! sets a partition's offset and the snapshot holds the last one.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vedette_core::CoreError;

use super::io;

use super::partition::sync_dir;

/// Committed next-offsets of one group: topic → partition → offset.
pub(crate) type Commits = BTreeMap<String, BTreeMap<u32, u64>>;

/// Journal entries after which the snapshot is rewritten and the journal emptied.
pub(crate) const COMPACT_AFTER: usize = 1024;

/// A journal is never larger than [`COMPACT_AFTER`] entries of at most ~220 bytes (topic
/// names are at most 200 bytes); a bigger file is refused rather than read.
const MAX_JOURNAL_BYTES: u64 = 16 * 1024 * 1024;

/// Bytes before an entry's body: length and CRC.
const ENTRY_HEAD: usize = 8;

/// The snapshot file's layout.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    /// topic → partition → next offset to read.
    topics: Commits,
}

/// A group's commits, in memory and on disk.
#[derive(Debug)]
pub(crate) struct CommitJournal {
    snapshot: PathBuf,
    journal_path: PathBuf,
    /// Opened at the first commit.
    journal: Option<File>,
    entries: usize,
    commits: Commits,
}

impl CommitJournal {
    /// The snapshot and journal paths of `group` in `dir`.
    fn paths(dir: &Path, group: &str) -> (PathBuf, PathBuf) {
        (
            dir.join(format!("{group}.json")),
            dir.join(format!("{group}.journal")),
        )
    }

    /// Loads `group`'s commits from `dir`: the snapshot, then the journal over it (cut
    /// at its first torn entry).
    pub(crate) fn open(dir: &Path, group: &str) -> Result<Self, CoreError> {
        let (snapshot, journal_path) = Self::paths(dir, group);
        let mut commits = match std::fs::read_to_string(&snapshot) {
            Ok(text) => {
                let file: Snapshot = serde_json::from_str(&text).map_err(|e| {
                    CoreError::Internal(format!(
                        "group commits {} are damaged: {e}",
                        snapshot.display()
                    ))
                })?;
                file.topics
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Commits::new(),
            Err(e) => return Err(CoreError::io(format!("reading {}", snapshot.display()), e)),
        };
        let (journal, entries) = if journal_path.exists() {
            let (file, entries) = open_journal(&journal_path, &mut commits)?;
            (Some(file), entries)
        } else {
            (None, 0)
        };
        Ok(Self {
            snapshot,
            journal_path,
            journal,
            entries,
            commits,
        })
    }

    /// Every commit of the group.
    pub(crate) fn commits(&self) -> &Commits {
        &self.commits
    }

    /// Durably records that the group resumes `topic`/`partition` at `next`.
    pub(crate) fn commit(
        &mut self,
        topic: &str,
        partition: u32,
        next: u64,
    ) -> Result<(), CoreError> {
        let entry = encode_entry(topic, partition, next)?;
        let path = &self.journal_path;
        let file = match &mut self.journal {
            Some(file) => file,
            None => {
                // First commit, or the first after a failed one: (re)open the journal,
                // cutting whatever a failed append left half written.
                let (file, _) = open_journal(path, &mut Commits::new())?;
                self.journal.insert(file)
            }
        };
        if let Err(e) = file.write_all(&entry).and_then(|()| file.sync_data()) {
            self.journal = None;
            return Err(CoreError::io(format!("appending to {}", path.display()), e));
        }
        self.commits
            .entry(topic.to_string())
            .or_default()
            .insert(partition, next);
        self.entries += 1;
        if self.entries >= COMPACT_AFTER {
            self.compact()?;
        }
        Ok(())
    }

    /// Writes every commit to the snapshot (atomically) and empties the journal.
    fn compact(&mut self) -> Result<(), CoreError> {
        let text = serde_json::to_string(&Snapshot {
            topics: self.commits.clone(),
        })
        .map_err(|e| CoreError::Internal(format!("group commits to json: {e}")))?;
        let tmp = self.snapshot.with_extension("json.tmp");
        let mut f = File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, &self.snapshot)
            .map_err(io(format!("replacing {}", self.snapshot.display())))?;
        if let Some(dir) = self.snapshot.parent() {
            sync_dir(dir)?;
        }
        let emptied = match &self.journal {
            Some(file) => file.set_len(0).and_then(|()| file.sync_all()),
            None => match OpenOptions::new().write(true).open(&self.journal_path) {
                Ok(file) => file.set_len(0).and_then(|()| file.sync_all()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            },
        };
        emptied.map_err(io(format!("emptying {}", self.journal_path.display())))?;
        self.entries = 0;
        Ok(())
    }
}

/// Opens (or creates) a journal for appending, replays it into `commits` and cuts it at
/// its first torn or damaged entry; returns the file and the good entries' count.
fn open_journal(path: &Path, commits: &mut Commits) -> Result<(File, usize), CoreError> {
    let created = !path.exists();
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(io(format!("opening {}", path.display())))?;
    if created {
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
    }
    // Over the cap it is not a journal this log wrote: refused, not read.
    let bytes = vedette_core::io::read_capped(&mut file, MAX_JOURNAL_BYTES)
        .map_err(io(format!("reading commit journal {}", path.display())))?;
    let (good, entries) = replay(&bytes, commits);
    if good < bytes.len() {
        tracing::warn!(
            journal = %path.display(),
            bytes = bytes.len() - good,
            "embedded log: cut a torn commit journal entry"
        );
        file.set_len(good as u64)
            .and_then(|()| file.sync_all())
            .map_err(io(format!("cutting {}", path.display())))?;
    }
    Ok((file, entries))
}

/// One journal entry.
fn encode_entry(topic: &str, partition: u32, next: u64) -> Result<Vec<u8>, CoreError> {
    let body_len = u32::try_from(12 + topic.len())
        .map_err(|_| CoreError::BadInput("topic name too long for a commit".into()))?;
    let mut entry = Vec::with_capacity(ENTRY_HEAD + body_len as usize);
    entry.extend_from_slice(&body_len.to_le_bytes());
    entry.extend_from_slice(&[0; 4]);
    entry.extend_from_slice(&next.to_le_bytes());
    entry.extend_from_slice(&partition.to_le_bytes());
    entry.extend_from_slice(topic.as_bytes());
    let crc = crc32c::crc32c(&entry[ENTRY_HEAD..]);
    entry[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(entry)
}

/// Applies the journal's entries to `commits` up to the first torn or damaged one;
/// returns the bytes of good entries and how many there were.
fn replay(bytes: &[u8], commits: &mut Commits) -> (usize, usize) {
    let (mut at, mut count) = (0, 0);
    while let Some(head) = bytes.get(at..at + ENTRY_HEAD) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(body) = bytes.get(at + ENTRY_HEAD..at + ENTRY_HEAD + len) else {
            break;
        };
        if len < 12 || crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(topic) = std::str::from_utf8(&body[12..]) else {
            break;
        };
        let mut next = [0; 8];
        next.copy_from_slice(&body[..8]);
        let partition = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
        commits
            .entry(topic.to_string())
            .or_default()
            .insert(partition, u64::from_le_bytes(next));
        at += ENTRY_HEAD + len;
        count += 1;
    }
    (at, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(j: &CommitJournal, topic: &str, p: u32) -> Option<u64> {
        j.commits().get(topic)?.get(&p).copied()
    }

    #[test]
    fn commits_are_replayed_over_the_snapshot_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = CommitJournal::open(dir.path(), "detect").unwrap();
        j.commit("events", 0, 5).unwrap();
        j.commit("events", 1, 9).unwrap();
        j.commit("events", 0, 7).unwrap();
        j.commit("alerts", 3, 1).unwrap();
        drop(j);
        let j = CommitJournal::open(dir.path(), "detect").unwrap();
        assert_eq!(offset(&j, "events", 0), Some(7));
        assert_eq!(offset(&j, "events", 1), Some(9));
        assert_eq!(offset(&j, "alerts", 3), Some(1));
        assert_eq!(offset(&j, "alerts", 0), None);
        assert!(!dir.path().join("detect.json").exists(), "no snapshot yet");
    }

    #[test]
    fn a_torn_or_damaged_tail_is_cut_and_commits_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = CommitJournal::open(dir.path(), "g").unwrap();
        j.commit("events", 0, 5).unwrap();
        j.commit("events", 0, 6).unwrap();
        drop(j);
        let path = dir.path().join("g.journal");
        let whole = std::fs::read(&path).unwrap();
        // A half-written third entry.
        let third = encode_entry("events", 0, 99).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(&third[..third.len() - 3]);
        std::fs::write(&path, &torn).unwrap();
        let mut j = CommitJournal::open(dir.path(), "g").unwrap();
        assert_eq!(offset(&j, "events", 0), Some(6));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            whole,
            "the torn entry was cut"
        );
        j.commit("events", 0, 8).unwrap();
        drop(j);
        // A flipped bit in the last entry: it and what follows are not replayed.
        let mut damaged = std::fs::read(&path).unwrap();
        let last = damaged.len() - 1;
        damaged[last] ^= 0x40;
        std::fs::write(&path, &damaged).unwrap();
        let j = CommitJournal::open(dir.path(), "g").unwrap();
        assert_eq!(offset(&j, "events", 0), Some(6));
    }

    #[test]
    fn the_journal_is_folded_into_the_snapshot_and_a_crash_between_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = CommitJournal::open(dir.path(), "g").unwrap();
        for i in 0..(COMPACT_AFTER as u64 + 10) {
            j.commit("events", (i % 4) as u32, i + 1).unwrap();
        }
        drop(j);
        let journal = dir.path().join("g.journal");
        let len = std::fs::metadata(&journal).unwrap().len();
        assert_eq!(
            len,
            10 * (ENTRY_HEAD as u64 + 12 + 6),
            "emptied, then 10 entries"
        );
        let j = CommitJournal::open(dir.path(), "g").unwrap();
        let last = COMPACT_AFTER as u64 + 10;
        for p in 0..4u32 {
            let expected = (1..=last).filter(|n| (n - 1) % 4 == u64::from(p)).max();
            assert_eq!(offset(&j, "events", p), expected);
        }
        // A crash after the snapshot but before the journal was emptied: the journal's
        // entries are applied again over the snapshot, to the same result.
        let snapshot = Snapshot {
            topics: j.commits().clone(),
        };
        drop(j);
        std::fs::write(
            dir.path().join("g.json"),
            serde_json::to_string(&snapshot).unwrap(),
        )
        .unwrap();
        let j = CommitJournal::open(dir.path(), "g").unwrap();
        assert_eq!(j.commits(), &snapshot.topics);
    }

    #[test]
    fn a_snapshot_alone_loads_and_a_damaged_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("old.json"),
            r#"{"topics":{"events":{"2":17}}}"#,
        )
        .unwrap();
        let j = CommitJournal::open(dir.path(), "old").unwrap();
        assert_eq!(offset(&j, "events", 2), Some(17));
        std::fs::write(dir.path().join("bad.json"), "{not json").unwrap();
        let err = CommitJournal::open(dir.path(), "bad").unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}
