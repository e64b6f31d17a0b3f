//! One partition: its segments in offset order, the last one open for appends.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vedette_core::CoreError;

use super::io;

use super::segment::{parse_segment_name, RecordLocation, Segment};

/// When sealed segments may be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Segments whose newest record is older than this (ms) may go once every group
    /// has committed past them.
    pub max_age_ms: i64,
    /// While a partition is larger than this (bytes), its oldest segments may go once
    /// every group has committed past them.
    pub max_bytes: u64,
    /// Segments older than this (ms) go even if a group has not read them (the
    /// records it misses are counted).
    pub hard_max_age_ms: i64,
}

/// What one retention pass removed from a partition.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Removed {
    /// Segment files deleted.
    pub(crate) segments: u64,
    /// Bytes deleted.
    pub(crate) bytes: u64,
    /// Records deleted before the slowest group committed them.
    pub(crate) unread_records: u64,
}

/// Most records a partition serves past its last fsync. After a stop that was not a
/// clean close, a partition starts its next records this many offsets past its end, so
/// no record takes the offset of one that was served and then lost with the OS's page
/// cache.
pub(crate) const MAX_UNSYNCED_SERVED: u64 = 1 << 20;

/// The segments of one partition.
#[derive(Debug)]
pub(crate) struct Partition {
    dir: PathBuf,
    /// Never empty: the last one takes appends.
    segments: Vec<Segment>,
    /// One past the last offset known to be on disk (fsynced).
    durable: u64,
    /// One past the last offset served to consumers: every record before it is written
    /// whole (in the OS's page cache at least); never below `durable`, never more than
    /// [`MAX_UNSYNCED_SERVED`] above it.
    visible: u64,
    /// An fsync of this partition failed: what it should have covered may not be on disk,
    /// and a later fsync may not say so (the kernel reports a writeback error once), so
    /// the partition takes no more appends until the log is opened again.
    sync_failed: bool,
    segment_bytes: u64,
}

/// Syncs a folder so that files created or deleted in it stay so after a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), CoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing folder {}", dir.display())))
}

impl Partition {
    /// Opens (or creates) the partition in `dir`, recovering its last segment. Returns
    /// the bytes cut from torn tails.
    pub(crate) fn open(dir: &Path, segment_bytes: u64) -> Result<(Self, u64), CoreError> {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let mut bases: Vec<u64> = std::fs::read_dir(dir)
            .map_err(io(format!("listing {}", dir.display())))?
            .filter_map(|e| e.ok())
            .filter_map(|e| parse_segment_name(e.file_name().to_str()?))
            .collect();
        bases.sort_unstable();
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
        let mut truncated = 0;
        for (i, &base) in bases.iter().enumerate() {
            let last = i + 1 == bases.len();
            let path = dir.join(super::segment::segment_name(base));
            let (segment, recovery) = Segment::open(&path, base, last)?;
            truncated += recovery.truncated_bytes;
            if let Some(prev) = segments.last() {
                if prev.next_offset() > base {
                    return Err(CoreError::Internal(format!(
                        "segments of {} overlap at offset {base}: the partition is damaged",
                        dir.display()
                    )));
                }
            }
            segments.push(segment);
        }
        if segments.is_empty() {
            segments.push(Segment::create(dir, 0)?);
            sync_dir(dir)?;
        }
        // What the last segment holds may not have been synced before a crash: it is
        // synced now, before any of it counts as durable.
        if let Some(last) = segments.last() {
            last.sync()?;
        }
        let durable = segments.last().map_or(0, Segment::next_offset);
        Ok((
            Self {
                dir: dir.to_path_buf(),
                segments,
                durable,
                visible: durable,
                sync_failed: false,
                segment_bytes,
            },
            truncated,
        ))
    }

    fn active(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    /// The offset the next append gets.
    pub(crate) fn next_offset(&self) -> u64 {
        self.segments.last().map_or(0, Segment::next_offset)
    }

    /// The oldest offset still held.
    pub(crate) fn start_offset(&self) -> u64 {
        self.segments
            .iter()
            .find(|s| s.records() > 0)
            .map_or_else(|| self.next_offset(), Segment::base)
    }

    /// One past the last durable offset.
    pub(crate) fn durable_offset(&self) -> u64 {
        self.durable
    }

    /// One past the last offset served to consumers.
    pub(crate) fn visible_offset(&self) -> u64 {
        self.visible
    }

    /// Serves every record written so far (each was written whole under the partition's
    /// lock, so all before [`Self::next_offset`] are complete), up to
    /// [`MAX_UNSYNCED_SERVED`] past the last durable one.
    pub(crate) fn mark_visible(&mut self) {
        let served = self
            .next_offset()
            .min(self.durable.saturating_add(MAX_UNSYNCED_SERVED));
        self.visible = self.visible.max(served);
    }

    /// Records from `from` (inclusive) to `upto` (exclusive) held by the partition;
    /// offsets skipped by a fence are not counted.
    pub(crate) fn records_between(&self, from: u64, upto: u64) -> u64 {
        self.segments
            .iter()
            .map(|s| upto.min(s.next_offset()).saturating_sub(from.max(s.base())))
            .sum()
    }

    /// Starts a new segment [`MAX_UNSYNCED_SERVED`] offsets past the end, after a stop
    /// that may have lost records consumers were served: the offsets those records had
    /// are never given to other records (a store remembers what it stored by offset).
    /// Called right after [`Self::open`], which synced the last segment.
    pub(crate) fn fence(&mut self) -> Result<(), CoreError> {
        let base = self.next_offset().saturating_add(MAX_UNSYNCED_SERVED);
        let next = Segment::create(&self.dir, base)?;
        sync_dir(&self.dir)?;
        self.segments.push(next);
        self.durable = base;
        self.visible = base;
        Ok(())
    }

    /// Records that an fsync of the partition failed (see `sync_failed`).
    pub(crate) fn mark_sync_failed(&mut self) {
        self.sync_failed = true;
    }

    /// Bytes held.
    pub(crate) fn size(&self) -> u64 {
        self.segments.iter().map(Segment::size).sum()
    }

    /// Bytes of the records from `offset` to the newest one (what a reader at `offset`
    /// has yet to read).
    pub(crate) fn bytes_from(&self, offset: u64) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.next_offset() > offset)
            .map(|s| s.bytes_from(offset))
            .sum()
    }

    /// Appends a record (encoded head, payload), rolling to a new segment first if the
    /// active one is full. The record's offset must be [`Self::next_offset`].
    pub(crate) fn append(
        &mut self,
        head: &[u8],
        payload: &[u8],
        append_ms: i64,
    ) -> Result<(), CoreError> {
        if self.sync_failed {
            return Err(CoreError::External {
                service: "embedded log".into(),
                message: format!(
                    "an fsync of {} failed: the partition takes no appends until the log is opened again",
                    self.dir.display()
                ),
                retryable: false,
            });
        }
        if self.active().size() >= self.segment_bytes && self.active().records() > 0 {
            if let Err(e) = self.roll() {
                self.sync_failed = true;
                return Err(e);
            }
        }
        self.active().append(head, payload, append_ms)
    }

    /// Seals the active segment (synced) and starts the next.
    fn roll(&mut self) -> Result<(), CoreError> {
        self.active().sync()?;
        self.durable = self.next_offset();
        self.visible = self.visible.max(self.durable);
        let next = Segment::create(&self.dir, self.next_offset())?;
        sync_dir(&self.dir)?;
        self.segments.push(next);
        Ok(())
    }

    /// What a sync outside the lock needs: the file and the offset it will cover.
    pub(crate) fn sync_target(&self) -> Option<(Arc<File>, u64)> {
        let next = self.next_offset();
        if next <= self.durable {
            return None;
        }
        self.segments.last().map(|s| (s.file(), next))
    }

    /// Records that a sync outside the lock covered everything before `upto`.
    pub(crate) fn mark_durable(&mut self, upto: u64) {
        self.durable = self.durable.max(upto);
        self.visible = self.visible.max(self.durable);
    }

    /// Locations of up to `max` visible records from `from`; if `from` was deleted,
    /// the list starts at the oldest record held.
    pub(crate) fn locate(&self, from: u64, max: usize) -> Vec<RecordLocation> {
        let from = from.max(self.start_offset());
        let mut out = Vec::new();
        let Some(first) = self.segments.iter().rposition(|s| s.base() <= from) else {
            return out;
        };
        let mut offset = from;
        for segment in &self.segments[first..] {
            offset = offset.max(segment.base());
            while offset < self.visible && out.len() < max {
                match segment.locate(offset) {
                    Some(loc) => out.push(loc),
                    None => break,
                }
                offset += 1;
            }
            if out.len() >= max || offset >= self.visible {
                break;
            }
        }
        out
    }

    /// Deletes sealed segments that retention lets go, oldest first. `committed` is the
    /// lowest next-offset committed by the groups reading this partition (`None` when
    /// no group reads it).
    pub(crate) fn retain(
        &mut self,
        now_ms: i64,
        retention: &Retention,
        committed: Option<u64>,
    ) -> Result<Removed, CoreError> {
        let mut removed = Removed::default();
        let mut size = self.size();
        while self.segments.len() > 1 {
            let oldest = &self.segments[0];
            let age = now_ms.saturating_sub(oldest.last_append_ms());
            let read_by_all = committed.is_none_or(|c| c >= oldest.next_offset());
            let soft = (age > retention.max_age_ms || size > retention.max_bytes) && read_by_all;
            let hard = age > retention.hard_max_age_ms;
            if !(soft || hard) {
                break;
            }
            let unread = match committed {
                Some(c) if c < oldest.next_offset() => oldest.next_offset() - c.max(oldest.base()),
                _ => 0,
            };
            std::fs::remove_file(oldest.path())
                .map_err(io(format!("deleting {}", oldest.path().display())))?;
            removed.segments += 1;
            removed.bytes += oldest.size();
            removed.unread_records += unread;
            size -= oldest.size();
            self.segments.remove(0);
        }
        if removed.segments > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }
}
