//! The spool: durable Arrow IPC files of parsed event batches and dead letters under
//! `<data_dir>/spool/`, written until the bus carries batches onward.
//!
//! Each flush writes one file: to a temporary name, fsync, rename, fsync of the folder.
//! A batch is acknowledged (file positions saved, HTTP answered) only after that, so
//! what was acknowledged survives a crash. File names sort by time:
//! `events/<unix_ms>-<seq>.arrow`, `dead_letters/<unix_ms>-<seq>.arrow`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use arrow::array::RecordBatch;
use arrow::ipc::writer::FileWriter;
use vedette_core::dead_letter::{dead_letters_to_batch, DeadLetter};

/// Writes spool files.
#[derive(Debug)]
pub(crate) struct Spool {
    events: PathBuf,
    dead_letters: PathBuf,
    sequence: AtomicU64,
}

impl Spool {
    /// Creates the spool folders under `data_dir`.
    pub(crate) fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let root = data_dir.join("spool");
        let events = root.join("events");
        let dead_letters = root.join("dead_letters");
        for dir in [&events, &dead_letters] {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(Self {
            events,
            dead_letters,
            sequence: AtomicU64::new(0),
        })
    }

    /// The folder of event files.
    #[cfg(test)]
    pub(crate) fn events_dir(&self) -> &Path {
        &self.events
    }

    /// Durably writes an event batch; returns the file written.
    pub(crate) fn write_events(&self, batch: &RecordBatch) -> anyhow::Result<PathBuf> {
        self.write(&self.events, batch)
    }

    /// Durably writes dead letters.
    pub(crate) fn write_dead_letters(&self, letters: &[DeadLetter]) -> anyhow::Result<PathBuf> {
        let batch = dead_letters_to_batch(letters)?;
        self.write(&self.dead_letters, &batch)
    }

    fn write(&self, dir: &Path, batch: &RecordBatch) -> anyhow::Result<PathBuf> {
        let now = chrono::Utc::now().timestamp_millis();
        let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
        let name = format!("{now:013}-{seq:08}.arrow");
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(&name);
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut writer = FileWriter::try_new(file, &batch.schema())?;
        writer.write(batch)?;
        writer.finish()?;
        let file = writer.into_inner()?;
        file.sync_all()
            .with_context(|| format!("fsync {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("rename to {}", path.display()))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("fsync {}", dir.display()))?;
        Ok(path)
    }
}

/// Every event batch in the spool's event folder, oldest first.
#[cfg(test)]
pub(crate) fn read_event_files(dir: &Path) -> anyhow::Result<Vec<RecordBatch>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "arrow"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let reader = arrow::ipc::reader::FileReader::try_new(File::open(&path)?, None)?;
        for batch in reader {
            out.push(batch?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_core::event::{Event, EventBatchBuilder};

    #[test]
    fn batches_round_trip_through_the_spool() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let spool = Spool::open(dir.path())?;
        let mut b = EventBatchBuilder::new();
        b.append(&Event {
            id: "a".into(),
            dataset: "syslog".into(),
            ..Event::default()
        });
        spool.write_events(&b.finish()?)?;
        let d = DeadLetter::new(0, "t", "s", "syslog", 1, "bad", b"raw");
        spool.write_dead_letters(&[d])?;
        let batches = read_event_files(spool.events_dir())?;
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        assert_eq!(
            std::fs::read_dir(dir.path().join("spool/dead_letters"))?.count(),
            1
        );
        Ok(())
    }
}
