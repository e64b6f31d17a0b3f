//! The respond stage's ledger of finished deliveries (delivered or dead-lettered):
//! one line `partition offset key` per delivery in `data_dir/respond/finished.log`.
//!
//! An alert's bus position is committed only once every delivery of it has finished;
//! until then a restart reads the alert again, and the ledger keeps the deliveries that
//! had already finished from being sent twice. The file is synced before each commit,
//! and rewritten without the lines of committed positions once it passes
//! [`COMPACT_BYTES`]. A line cut by a crash is ignored.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Size past which the ledger drops the lines of committed positions.
pub(crate) const COMPACT_BYTES: u64 = 4 << 20;
/// Longest line read back (a key is an alert id and a responder name).
const MAX_LINE: u64 = 4096;

/// One finished delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    partition: u32,
    offset: u64,
    key: String,
}

/// The ledger file and the keys it holds.
#[derive(Debug)]
pub(crate) struct DeliveryLedger {
    path: PathBuf,
    file: File,
    entries: Vec<Entry>,
    keys: HashSet<String>,
    bytes: u64,
}

impl DeliveryLedger {
    /// Opens (creating) the ledger at `path` and reads its finished keys.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut entries = Vec::new();
        if let Ok(f) = File::open(path) {
            let mut reader = BufReader::new(f);
            loop {
                let mut line = Vec::new();
                let n = (&mut reader)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut line)
                    .with_context(|| format!("reading {}", path.display()))?;
                if n == 0 {
                    break;
                }
                // A line without its newline was cut by a crash: the delivery it names
                // did not finish as far as the commit is concerned.
                if line.last() != Some(&b'\n') {
                    break;
                }
                if let Some(e) = parse(&line) {
                    entries.push(e);
                }
            }
        }
        // Rewriting at open drops any cut line, so appends start on a line of their own.
        let (file, bytes) = write_entries(path, &entries)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            keys: entries.iter().map(|e| e.key.clone()).collect(),
            entries,
            bytes,
        })
    }

    /// Whether the delivery `key` already finished.
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    /// Records that delivery `key` of the alert at (`partition`, `offset`) finished.
    pub(crate) fn record(&mut self, partition: u32, offset: u64, key: &str) -> anyhow::Result<()> {
        let line = format!("{partition} {offset} {key}\n");
        self.file
            .write_all(line.as_bytes())
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.bytes += line.len() as u64;
        self.keys.insert(key.to_string());
        self.entries.push(Entry {
            partition,
            offset,
            key: key.to_string(),
        });
        Ok(())
    }

    /// Makes what was recorded durable (before the commit it allows).
    pub(crate) fn sync(&self) -> anyhow::Result<()> {
        self.file
            .sync_data()
            .with_context(|| format!("syncing {}", self.path.display()))
    }

    /// Once the file is large, drops the lines whose position is below the commit of
    /// its partition in `committed` (next offset to read, per partition).
    pub(crate) fn compact(&mut self, committed: &HashMap<u32, u64>) -> anyhow::Result<()> {
        if self.bytes < COMPACT_BYTES {
            return Ok(());
        }
        self.entries
            .retain(|e| committed.get(&e.partition).is_none_or(|c| e.offset >= *c));
        self.keys = self.entries.iter().map(|e| e.key.clone()).collect();
        self.rewrite()
    }

    /// Rewrites the file from the entries kept.
    fn rewrite(&mut self) -> anyhow::Result<()> {
        (self.file, self.bytes) = write_entries(&self.path, &self.entries)?;
        Ok(())
    }
}

/// Writes `entries` as the ledger at `path` (a new file, synced, renamed into place);
/// returns it open for appending and its size.
fn write_entries(path: &Path, entries: &[Entry]) -> anyhow::Result<(File, u64)> {
    let tmp = path.with_extension("tmp");
    let mut text = String::new();
    for e in entries {
        text.push_str(&format!("{} {} {}\n", e.partition, e.offset, e.key));
    }
    let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} into place", tmp.display()))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok((file, text.len() as u64))
}

fn parse(line: &[u8]) -> Option<Entry> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = text.splitn(3, ' ');
    let partition = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    let key = parts.next()?.to_string();
    (!key.is_empty()).then_some(Entry {
        partition,
        offset,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_keys_survive_a_reopen_and_a_cut_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("respond/finished.log");
        let mut ledger = DeliveryLedger::open(&path).unwrap();
        ledger.record(0, 5, "a1-soar").unwrap();
        ledger.record(1, 7, "a2-soar").unwrap();
        ledger.sync().unwrap();
        drop(ledger);
        // A crash in the middle of a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"0 9 a3-so").unwrap();
        drop(f);
        let mut ledger = DeliveryLedger::open(&path).unwrap();
        assert!(ledger.contains("a1-soar") && ledger.contains("a2-soar"));
        assert!(!ledger.contains("a3-so"));
        ledger.record(0, 9, "a3-soar").unwrap();
        drop(ledger);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "0 5 a1-soar\n1 7 a2-soar\n0 9 a3-soar\n");
    }

    #[test]
    fn compaction_keeps_only_uncommitted_positions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("finished.log");
        let mut ledger = DeliveryLedger::open(&path).unwrap();
        let key = "k".repeat(1000);
        let mut offset = 0;
        while ledger.bytes < COMPACT_BYTES {
            ledger.record(0, offset, &format!("{key}{offset}")).unwrap();
            offset += 1;
        }
        ledger.record(1, 3, "other-partition").unwrap();
        ledger.compact(&HashMap::from([(0, offset - 1)])).unwrap();
        assert!(ledger.contains(&format!("{key}{}", offset - 1)));
        assert!(!ledger.contains(&format!("{key}0")));
        assert!(ledger.contains("other-partition"));
        drop(ledger);
        let reopened = DeliveryLedger::open(&path).unwrap();
        assert_eq!(reopened.entries.len(), 2);
    }
}
