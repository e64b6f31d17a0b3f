//! The embedded log itself: topics of partitions under one folder, appends with the
//! configured durability, reads of served records, group commits, retention, counters.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use vedette_core::batch::EventBatch;
use vedette_core::config::BusCompression;
use vedette_core::CoreError;

use super::groups::{check_name, Groups};
use super::partition::{Partition, Retention};
use super::payload::{self, PayloadCodec};
use super::recent::RecentBatches;
use super::record::{self, RecordMeta};
use super::segment::read_record;
use crate::bus::codec::BatchHeader;
use crate::bus::lock;

/// File the log leaves in its folder when closed cleanly (everything synced, nothing
/// served that is not on disk); its absence at open means records may have been lost.
const CLOSED_CLEANLY: &str = "closed-cleanly";

/// A consumer group that has not read for this long no longer holds producers back
/// (see [`EmbeddedLog::backlog_bytes`]).
pub const STALLED_AFTER: Duration = Duration::from_secs(30);

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync before acknowledging every append.
    EveryAppend,
    /// fsync every this many milliseconds; an append is acknowledged after the next one.
    Interval(Duration),
}

/// Settings of an embedded log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Partitions of a topic created by this log (4 in this library's default, as the
    /// conformance tests share partitions among members; `vedette run` takes
    /// `bus.embedded.partitions`, 1 by default).
    pub partitions: u32,
    /// A segment is sealed and a new one begun past this size.
    pub segment_bytes: u64,
    /// Durability of appends.
    pub sync: SyncPolicy,
    /// What retention deletes.
    pub retention: Retention,
    /// Memory for batches just appended, handed to consumers at the tail without
    /// reading and decoding their records (bytes of Arrow rows; 0 turns it off).
    pub recent_bytes: usize,
    /// How the bus compresses the records it appends.
    pub compression: BusCompression,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            partitions: 4,
            segment_bytes: 128 * 1024 * 1024,
            sync: SyncPolicy::EveryAppend,
            retention: Retention {
                max_age_ms: 7 * 24 * 3_600_000,
                max_bytes: 10 * 1024 * 1024 * 1024,
                hard_max_age_ms: 30 * 24 * 3_600_000,
            },
            recent_bytes: 256 * 1024 * 1024,
            compression: BusCompression::Lz4,
        }
    }
}

/// A record read back.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// Offset within its partition.
    pub offset: u64,
    /// When the log appended it, Unix ms.
    pub append_time_ms: i64,
    /// The batch header.
    pub header: BatchHeader,
    /// The payload (an Arrow IPC stream for batches).
    pub payload: Vec<u8>,
}

/// One record of an append: where it goes and what it holds.
#[derive(Debug, Clone, Copy)]
pub struct AppendPart<'a> {
    /// Partition of the topic.
    pub partition: u32,
    /// The batch header.
    pub header: &'a BatchHeader,
    /// The payload (an Arrow IPC stream for batches).
    pub payload: &'a [u8],
    /// How the payload is stored ([`compress_kept`](super::payload::compress_kept) gives
    /// it).
    pub codec: PayloadCodec,
    /// The rows the payload encodes, kept in memory for consumers at the tail (see
    /// [`EmbeddedLog::read_recent`]); `None` when the caller has none.
    pub batch: Option<&'a EventBatch>,
    /// The memory those rows take, when the caller knows it (a slice of a larger batch
    /// counts its share); `None` measures the batch.
    pub batch_bytes: Option<usize>,
}

impl<'a> AppendPart<'a> {
    /// A record of `payload` stored as given, with no rows kept in memory.
    pub fn plain(partition: u32, header: &'a BatchHeader, payload: &'a [u8]) -> Self {
        Self {
            partition,
            header,
            payload,
            codec: PayloadCodec::Plain,
            batch: None,
            batch_bytes: None,
        }
    }
}

/// Counters of an embedded log, for metrics.
#[derive(Debug, Default)]
pub struct LogCounters {
    /// Records appended.
    pub appended_records: AtomicU64,
    /// Bytes appended (whole records).
    pub appended_bytes: AtomicU64,
    /// fsyncs of segment data.
    pub syncs: AtomicU64,
    /// Bytes cut from torn tails at open.
    pub recovered_truncated_bytes: AtomicU64,
    /// Segments deleted by retention.
    pub retention_deleted_segments: AtomicU64,
    /// Bytes deleted by retention.
    pub retention_deleted_bytes: AtomicU64,
    /// Records deleted by the hard age cap before some group committed them.
    pub retention_unread_records: AtomicU64,
    /// Records found damaged when read, and skipped.
    pub damaged_records: AtomicU64,
    /// Records handed to a consumer from memory, as appended (no read, no decode).
    pub recent_hits: AtomicU64,
    /// Records read back from segment files.
    pub disk_reads: AtomicU64,
}

/// One topic.
#[derive(Debug)]
struct Topic {
    partitions: Vec<Mutex<Partition>>,
    /// Held by the one append syncing a partition (see [`EmbeddedLog::sync_partitions`]).
    syncing: Vec<Mutex<()>>,
    /// Bumped whenever records are served or become durable; consumers and appends
    /// waiting for durability wait on it.
    arrived: watch::Sender<u64>,
}

/// The embedded durable log (see the module doc of `bus::embedded`).
#[derive(Debug)]
pub struct EmbeddedLog {
    root: PathBuf,
    options: LogOptions,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    groups: Groups,
    counters: LogCounters,
    /// Fires on membership changes, so consumers rebalance promptly.
    membership: watch::Sender<u64>,
    stop: AtomicBool,
    recent: RecentBatches,
}

impl EmbeddedLog {
    /// Opens the log in `root` (created if missing), recovering every topic: torn
    /// tails are cut and counted. With an interval sync policy a background thread
    /// syncs; it stops when the log is dropped.
    pub fn open(root: &Path, options: LogOptions) -> Result<Arc<Self>, CoreError> {
        let topics_dir = root.join("topics");
        std::fs::create_dir_all(&topics_dir)
            .map_err(|e| CoreError::io(format!("creating {}", topics_dir.display()), e))?;
        let log = Arc::new(Self {
            recent: RecentBatches::new(options.recent_bytes),
            root: root.to_path_buf(),
            groups: Groups::open(&root.join("groups"))?,
            options,
            topics: RwLock::new(HashMap::new()),
            counters: LogCounters::default(),
            membership: watch::Sender::new(0),
            stop: AtomicBool::new(false),
        });
        let mark = root.join(CLOSED_CLEANLY);
        let closed_cleanly = mark.exists();
        if closed_cleanly {
            std::fs::remove_file(&mark)
                .map_err(|e| CoreError::io(format!("removing {}", mark.display()), e))?;
            super::partition::sync_dir(root)?;
        }
        let entries = std::fs::read_dir(&topics_dir)
            .map_err(|e| CoreError::io(format!("listing {}", topics_dir.display()), e))?;
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                if check_name("topic", name).is_ok() {
                    let topic = log.topic(name)?;
                    if !closed_cleanly {
                        // Consumers may have been served records an OS crash then took
                        // back: new records must not take their offsets.
                        for slot in &topic.partitions {
                            lock(slot).fence()?;
                        }
                    }
                }
            }
        }
        if let SyncPolicy::Interval(every) = log.options.sync {
            let weak = Arc::downgrade(&log);
            std::thread::Builder::new()
                .name("vedette-log-sync".into())
                .spawn(move || loop {
                    std::thread::sleep(every);
                    let Some(log) = weak.upgrade() else { break };
                    if log.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(e) = log.sync_all() {
                        tracing::error!(error = %e, "embedded log: periodic sync failed");
                    }
                })
                .map_err(|e| CoreError::io("starting the log sync thread", e))?;
        }
        Ok(log)
    }

    /// How records appended through the bus are compressed.
    pub fn compression(&self) -> BusCompression {
        self.options.compression
    }

    /// The counters.
    pub fn counters(&self) -> &LogCounters {
        &self.counters
    }

    /// The topic, opened or created with the configured partition count.
    fn topic(&self, name: &str) -> Result<Arc<Topic>, CoreError> {
        if let Some(t) = self
            .topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
        {
            return Ok(t.clone());
        }
        check_name("topic", name)?;
        let mut topics = self
            .topics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = topics.get(name) {
            return Ok(t.clone());
        }
        let dir = self.root.join("topics").join(name);
        let existing = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                    .map(|p| p + 1)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        let count = if existing > 0 {
            existing
        } else {
            self.options.partitions.max(1)
        };
        let mut partitions = Vec::with_capacity(count as usize);
        for p in 0..count {
            let (partition, truncated) =
                Partition::open(&dir.join(p.to_string()), self.options.segment_bytes)?;
            if truncated > 0 {
                tracing::warn!(
                    topic = name,
                    partition = p,
                    bytes = truncated,
                    "embedded log: cut a torn tail"
                );
                self.counters
                    .recovered_truncated_bytes
                    .fetch_add(truncated, Ordering::Relaxed);
            }
            partitions.push(Mutex::new(partition));
        }
        super::partition::sync_dir(&dir)?;
        self.bring_back_commits_past_the_end(name, &partitions)?;
        let topic = Arc::new(Topic {
            syncing: partitions.iter().map(|_| Mutex::new(())).collect(),
            partitions,
            arrived: watch::Sender::new(0),
        });
        topics.insert(name.to_string(), topic.clone());
        Ok(topic)
    }

    /// Brings back to a partition's end every group commit past it, before anything is
    /// appended: a damaged tail cut at open (records that were synced) takes back
    /// offsets a group may have committed past, and the records that take those offsets
    /// must be read. (After a stop that was not a clean close, new records start past a
    /// fence instead; see [`Partition::fence`].)
    fn bring_back_commits_past_the_end(
        &self,
        topic: &str,
        partitions: &[Mutex<Partition>],
    ) -> Result<(), CoreError> {
        for (group, t, partition, next) in self.groups.all_commits() {
            if t != topic {
                continue;
            }
            let Some(end) = partitions
                .get(partition as usize)
                .map(|p| lock(p).next_offset())
            else {
                continue;
            };
            if next > end {
                tracing::warn!(
                    group,
                    topic,
                    partition,
                    committed = next,
                    end,
                    "embedded log: a commit was past the partition's end after recovery; brought back"
                );
                self.groups.commit(&group, topic, partition, end)?;
            }
        }
        Ok(())
    }

    /// Number of partitions of a topic (created if missing).
    pub fn partitions(&self, topic: &str) -> Result<u32, CoreError> {
        Ok(self.topic(topic)?.partitions.len() as u32)
    }

    fn partition<'t>(
        topic: &'t Topic,
        name: &str,
        partition: u32,
    ) -> Result<&'t Mutex<Partition>, CoreError> {
        topic.partitions.get(partition as usize).ok_or_else(|| {
            CoreError::BadInput(format!("topic {name} has no partition {partition}"))
        })
    }

    /// Appends one record; returns its offset. Under [`SyncPolicy::EveryAppend`] it is
    /// durable on return; otherwise await [`Self::wait_durable`] before acknowledging.
    pub fn append(
        &self,
        topic_name: &str,
        partition: u32,
        header: &BatchHeader,
        payload: &[u8],
    ) -> Result<u64, CoreError> {
        let part = AppendPart::plain(partition, header, payload);
        let offsets = self.append_all(topic_name, &[part])?;
        offsets
            .first()
            .map(|&(_, offset)| offset)
            .ok_or_else(|| CoreError::Internal("append wrote nothing".into()))
    }

    /// Appends records to partitions of one topic; returns (partition, offset) of each.
    /// Under [`SyncPolicy::EveryAppend`] the partitions written are synced together (in
    /// parallel) before the return, so one batch split over partitions costs one round
    /// of fsyncs, not one per part. A part's batch, when given, is kept for consumers
    /// at the tail before the record becomes visible.
    pub fn append_all(
        &self,
        topic_name: &str,
        parts: &[AppendPart<'_>],
    ) -> Result<Vec<(u32, u64)>, CoreError> {
        let written = parts
            .iter()
            .map(|part| self.write(topic_name, part))
            .collect::<Result<Vec<_>, _>>()?;
        self.complete(topic_name, &written)?;
        Ok(written)
    }

    /// Writes one record to its partition, not yet durable nor served; returns its
    /// (partition, offset). Finish the append with [`Self::complete`].
    pub(crate) fn write(
        &self,
        topic_name: &str,
        part: &AppendPart<'_>,
    ) -> Result<(u32, u64), CoreError> {
        let topic = self.topic(topic_name)?;
        let now = chrono::Utc::now().timestamp_millis();
        let (partition, payload) = (part.partition, part.payload);
        let slot = Self::partition(&topic, topic_name, partition)?;
        let mut p = lock(slot);
        // Checked under the partition's lock: an append either precedes the close's
        // final sync of this partition or is refused, so the clean-close mark never
        // stands beside a record that was not synced.
        if self.stop.load(Ordering::Relaxed) {
            return Err(CoreError::External {
                service: "embedded log".into(),
                message: format!("appending to {topic_name}: the log is closed"),
                retryable: false,
            });
        }
        let offset = p.next_offset();
        let meta = RecordMeta {
            offset,
            append_time_ms: now,
            header: part.header.clone(),
            codec: part.codec,
        };
        let head = record::encode_head(&meta, payload)?;
        p.append(&head, payload, now)?;
        if let Some(batch) = part.batch {
            let bytes = part
                .batch_bytes
                .unwrap_or_else(|| batch.records.get_array_memory_size());
            self.recent
                .insert(topic_name, partition, offset, batch, bytes);
        }
        self.counters
            .appended_records
            .fetch_add(1, Ordering::Relaxed);
        self.counters
            .appended_bytes
            .fetch_add((head.len() + payload.len()) as u64, Ordering::Relaxed);
        Ok((partition, offset))
    }

    /// Completes the appends of records [`Self::write`] wrote: serves them to consumers
    /// at once (they are written whole), then, under [`SyncPolicy::EveryAppend`], syncs
    /// their partitions (in parallel) and wakes the appends waiting for durability;
    /// otherwise the sync thread syncs within its interval.
    pub(crate) fn complete(
        &self,
        topic_name: &str,
        written: &[(u32, u64)],
    ) -> Result<(), CoreError> {
        if written.is_empty() {
            return Ok(());
        }
        let topic = self.topic(topic_name)?;
        // Per partition written, one past the last offset this append wrote there.
        let mut needed: Vec<(u32, u64)> = Vec::new();
        for &(p, offset) in written {
            match needed.iter_mut().find(|(q, _)| *q == p) {
                Some((_, upto)) => *upto = (*upto).max(offset + 1),
                None => needed.push((p, offset + 1)),
            }
        }
        for &(p, _) in &needed {
            lock(Self::partition(&topic, topic_name, p)?).mark_visible();
        }
        topic.arrived.send_modify(|v| *v += 1);
        if self.options.sync != SyncPolicy::EveryAppend {
            return Ok(());
        }
        self.sync_partitions(&topic, &needed)?;
        topic.arrived.send_modify(|v| *v += 1);
        Ok(())
    }

    /// Makes durable, in each partition given, every offset below the one given with it,
    /// partitions in parallel. Appends share syncs: while one append syncs a partition,
    /// the others wait, and then the first of them syncs everything written meanwhile in
    /// one go; an append whose records a sync already covered does not sync at all. So
    /// concurrent appends cost about two fsyncs per partition, not one each.
    fn sync_partitions(&self, topic: &Topic, needed: &[(u32, u64)]) -> Result<(), CoreError> {
        let sync_one = |&(p, upto): &(u32, u64)| -> Result<(), CoreError> {
            let (Some(slot), Some(syncing)) = (
                topic.partitions.get(p as usize),
                topic.syncing.get(p as usize),
            ) else {
                return Ok(());
            };
            let _only_syncer = lock(syncing);
            if lock(slot).durable_offset() >= upto {
                return Ok(());
            }
            self.sync_partition(slot).map(|_| ())
        };
        match needed {
            [] => Ok(()),
            [one] => sync_one(one),
            many => std::thread::scope(|scope| {
                let handles: Vec<_> = many
                    .iter()
                    .map(|need| scope.spawn(move || sync_one(need)))
                    .collect();
                handles.into_iter().try_for_each(|h| {
                    h.join()
                        .map_err(|_| CoreError::Internal("a sync thread panicked".into()))?
                })
            }),
        }
    }

    /// Syncs what a partition holds that is not yet durable, outside its lock (appends
    /// go on meanwhile); returns whether there was anything to sync. A failed fsync
    /// stops the partition's appends (see [`Partition::mark_sync_failed`]).
    fn sync_partition(&self, slot: &Mutex<Partition>) -> Result<bool, CoreError> {
        let Some((file, upto)) = lock(slot).sync_target() else {
            return Ok(false);
        };
        if let Err(e) = file.sync_data() {
            lock(slot).mark_sync_failed();
            return Err(CoreError::io("syncing a segment", e));
        }
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        lock(slot).mark_durable(upto);
        Ok(true)
    }

    /// Waits until `offset` of a partition is durable.
    pub async fn wait_durable(
        &self,
        topic_name: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), CoreError> {
        let topic = self.topic(topic_name)?;
        let slot = Self::partition(&topic, topic_name, partition)?;
        let mut arrived = topic.arrived.subscribe();
        loop {
            if lock(slot).durable_offset() > offset {
                return Ok(());
            }
            // The sync thread bumps `arrived` after each sync; a timeout guards
            // against a missed wake-up.
            let _ = tokio::time::timeout(Duration::from_millis(50), arrived.changed()).await;
        }
    }

    /// Syncs every partition with unsynced appends; wakes consumers and waiters.
    pub fn sync_all(&self) -> Result<(), CoreError> {
        let topics: Vec<Arc<Topic>> = self
            .topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for topic in topics {
            let mut advanced = false;
            for slot in &topic.partitions {
                advanced |= self.sync_partition(slot)?;
            }
            if advanced {
                topic.arrived.send_modify(|v| *v += 1);
            }
        }
        Ok(())
    }

    /// Up to `max` records of a partition from offset `from` (or from the
    /// oldest record held, if `from` was deleted). Damaged records are skipped and
    /// counted, never served.
    pub fn read(
        &self,
        topic_name: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, CoreError> {
        let topic = self.topic(topic_name)?;
        let locations = lock(Self::partition(&topic, topic_name, partition)?).locate(from, max);
        let mut out = Vec::with_capacity(locations.len());
        self.counters
            .disk_reads
            .fetch_add(locations.len() as u64, Ordering::Relaxed);
        for location in locations {
            let decoded = read_record(&location).and_then(|body| {
                let (meta, payload) = record::decode_body(&body)?;
                if meta.offset != location.offset {
                    return Err(CoreError::BadInput(format!(
                        "bus record at offset {} says it is {}",
                        location.offset, meta.offset
                    )));
                }
                let payload = payload::decompress(meta.codec, payload, record::MAX_BODY_BYTES)?;
                Ok(StoredRecord {
                    offset: meta.offset,
                    append_time_ms: meta.append_time_ms,
                    header: meta.header,
                    payload,
                })
            });
            match decoded {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::error!(topic = topic_name, partition, offset = location.offset, error = %e, "embedded log: skipping a damaged record");
                    self.counters
                        .damaged_records
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(out)
    }

    /// The batch of the record at `offset` of a partition, from memory: only if it is
    /// served (see [`Self::bounds`]), still held by the log, and was appended with its
    /// batch recently enough to be kept. `None` means: read it with [`Self::read`].
    pub fn read_recent(
        &self,
        topic_name: &str,
        partition: u32,
        offset: u64,
    ) -> Result<Option<EventBatch>, CoreError> {
        let (start, end) = self.bounds(topic_name, partition)?;
        if offset < start || offset >= end {
            return Ok(None);
        }
        let batch = self.recent.get(topic_name, partition, offset);
        if batch.is_some() {
            self.counters.recent_hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(batch)
    }

    /// The oldest offset held and one past the newest offset served to consumers of a
    /// partition: records are served once written whole, before their fsync (an
    /// append is acknowledged only after it; see the module doc).
    pub fn bounds(&self, topic_name: &str, partition: u32) -> Result<(u64, u64), CoreError> {
        let topic = self.topic(topic_name)?;
        let p = lock(Self::partition(&topic, topic_name, partition)?);
        Ok((p.start_offset(), p.visible_offset()))
    }

    /// A receiver that changes when records are served or become durable in `topic`.
    pub fn arrivals(&self, topic: &str) -> Result<watch::Receiver<u64>, CoreError> {
        Ok(self.topic(topic)?.arrived.subscribe())
    }

    /// A receiver that changes when any group's membership changes.
    pub fn membership_changes(&self) -> watch::Receiver<u64> {
        self.membership.subscribe()
    }

    /// The next offset `group` resumes `topic`/`partition` at, if it committed there.
    pub fn committed(&self, group: &str, topic: &str, partition: u32) -> Option<u64> {
        self.groups.committed(group, topic, partition)
    }

    /// Durably commits: `group` resumes `topic`/`partition` at `next`.
    pub fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        next: u64,
    ) -> Result<(), CoreError> {
        check_name("group", group)?;
        self.groups.commit(group, topic, partition, next)
    }

    /// Adds a member to a group on a topic; returns its id.
    pub fn join(&self, group: &str, topic: &str) -> Result<u64, CoreError> {
        check_name("group", group)?;
        self.topic(topic)?;
        let id = self.groups.join(group, topic);
        self.membership.send_modify(|v| *v += 1);
        Ok(id)
    }

    /// Removes a member.
    pub fn leave(&self, group: &str, topic: &str, member: u64) {
        self.groups.leave(group, topic, member);
        self.membership.send_modify(|v| *v += 1);
    }

    /// The member's generation and partitions.
    pub fn assignment(
        &self,
        group: &str,
        topic: &str,
        member: u64,
    ) -> Result<(u64, Vec<u32>), CoreError> {
        let partitions = self.partitions(topic)?;
        Ok(self.groups.assignment(group, topic, member, partitions))
    }

    /// Notes that `group` reads `topic`/`partition` next at `next` (its members call it
    /// as they read, for [`Self::backlog_bytes`]).
    pub fn note_read(&self, group: &str, topic: &str, partition: u32, next: u64) {
        self.groups.note_read(group, topic, partition, next);
    }

    /// Bytes of records of `topic` that the slowest group reading it in this process
    /// has yet to read, summed over partitions; 0 when no group reads it. Producers slow
    /// down on it (`bus.embedded.max_backlog_mib`). Only groups with members now that
    /// read within [`STALLED_AFTER`] count: a stalled consumer (its store down, say)
    /// must not stop every input; the log holds its backlog, as retention allows.
    pub fn backlog_bytes(&self, topic_name: &str) -> Result<u64, CoreError> {
        self.backlog_bytes_of_groups_active_within(topic_name, STALLED_AFTER)
    }

    /// [`Self::backlog_bytes`], counting groups that read within `active_within`.
    pub fn backlog_bytes_of_groups_active_within(
        &self,
        topic_name: &str,
        active_within: Duration,
    ) -> Result<u64, CoreError> {
        let readers = self.groups.readers(topic_name, active_within);
        if readers.is_empty() {
            return Ok(0);
        }
        let topic = self.topic(topic_name)?;
        let mut slowest = 0;
        for (group, reads) in readers {
            let mut behind = 0;
            for (p, slot) in topic.partitions.iter().enumerate() {
                let p = p as u32;
                let from = reads
                    .get(&p)
                    .copied()
                    .or_else(|| self.groups.committed(&group, topic_name, p));
                let partition = lock(slot);
                behind += partition.bytes_from(from.unwrap_or_else(|| partition.start_offset()));
            }
            slowest = slowest.max(behind);
        }
        Ok(slowest)
    }

    /// Consumer lag: (group, topic, partition, records served but not committed).
    pub fn lags(&self) -> Vec<(String, String, u32, u64)> {
        self.groups
            .all_commits()
            .into_iter()
            .filter_map(|(g, t, p, committed)| {
                let topic = self.topic(&t).ok()?;
                let slot = topic.partitions.get(p as usize)?;
                let partition = lock(slot);
                let waiting = partition.records_between(committed, partition.visible_offset());
                Some((g, t, p, waiting))
            })
            .collect()
    }

    /// Applies retention to every topic at time `now_ms`.
    pub fn apply_retention(&self, now_ms: i64) -> Result<(), CoreError> {
        let topics: Vec<(String, Arc<Topic>)> = self
            .topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        for (name, topic) in topics {
            for (p, slot) in topic.partitions.iter().enumerate() {
                let slowest = self.groups.slowest(&name, p as u32);
                let removed = lock(slot).retain(now_ms, &self.options.retention, slowest)?;
                if removed.segments == 0 {
                    continue;
                }
                let c = &self.counters;
                c.retention_deleted_segments
                    .fetch_add(removed.segments, Ordering::Relaxed);
                c.retention_deleted_bytes
                    .fetch_add(removed.bytes, Ordering::Relaxed);
                c.retention_unread_records
                    .fetch_add(removed.unread_records, Ordering::Relaxed);
                if removed.unread_records > 0 {
                    tracing::warn!(topic = %name, partition = p, records = removed.unread_records,
                        "embedded log: the retention cap deleted records a group had not committed");
                }
            }
        }
        Ok(())
    }

    /// Syncs everything, stops the sync thread and leaves the clean-close mark; appends
    /// after it are refused.
    pub fn close(&self) -> Result<(), CoreError> {
        self.stop.store(true, Ordering::Relaxed);
        self.sync_all()?;
        let mark = self.root.join(CLOSED_CLEANLY);
        std::fs::File::create(&mark)
            .and_then(|f| f.sync_all())
            .map_err(|e| CoreError::io(format!("writing {}", mark.display()), e))?;
        super::partition::sync_dir(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BatchHeader {
        BatchHeader {
            schema_version: 1,
            tenant: "acme".into(),
            source: "src".into(),
            dataset: "d".into(),
            ingest_time_ms: 0,
        }
    }

    /// A log of topics with `partitions` partitions, syncing every append, in a
    /// temporary folder (kept while the first value lives).
    fn log_of(partitions: u32) -> (tempfile::TempDir, Arc<EmbeddedLog>) {
        let dir = tempfile::tempdir().unwrap();
        let options = LogOptions {
            partitions,
            ..LogOptions::default()
        };
        let log = EmbeddedLog::open(dir.path(), options).unwrap();
        (dir, log)
    }

    fn durable(log: &EmbeddedLog, name: &str, partition: u32) -> u64 {
        let topic = log.topic(name).unwrap();
        let slot = EmbeddedLog::partition(&topic, name, partition).unwrap();
        let offset = lock(slot).durable_offset();
        offset
    }

    #[test]
    fn an_append_whose_records_an_earlier_sync_covered_does_not_sync_again() {
        let (_dir, log) = log_of(2);
        let h = header();
        // Five appends write before any of them completes, as concurrent appends do.
        let written: Vec<(u32, u64)> = (0..5u8)
            .map(|i| {
                log.write("t", &AppendPart::plain(u32::from(i % 2), &h, &[i; 64]))
                    .unwrap()
            })
            .collect();
        let before = log.counters().syncs.load(Ordering::Relaxed);
        // The first to complete syncs its partition, covering every record written there.
        log.complete("t", &written[..1]).unwrap();
        assert_eq!(log.counters().syncs.load(Ordering::Relaxed), before + 1);
        assert_eq!(durable(&log, "t", 0), 3, "offsets 0..3 of partition 0");
        assert_eq!(durable(&log, "t", 1), 0, "partition 1 not synced by it");
        // A record written after that sync, not yet completed.
        let late = log.write("t", &AppendPart::plain(0, &h, b"late")).unwrap();
        // The other appends of partition 0 find their records durable: no fsync, though
        // the partition has a record (the late one) still to sync.
        for w in written.iter().filter(|w| w.0 == 0) {
            log.complete("t", std::slice::from_ref(w)).unwrap();
        }
        assert_eq!(log.counters().syncs.load(Ordering::Relaxed), before + 1);
        // Partition 1: one fsync for its two appends.
        for w in written.iter().filter(|w| w.0 == 1) {
            log.complete("t", std::slice::from_ref(w)).unwrap();
        }
        assert_eq!(log.counters().syncs.load(Ordering::Relaxed), before + 2);
        assert_eq!(durable(&log, "t", 1), 2);
        // The late record needs a sync of its own.
        log.complete("t", &[late]).unwrap();
        assert_eq!(log.counters().syncs.load(Ordering::Relaxed), before + 3);
        assert_eq!(durable(&log, "t", 0), 4);
    }

    #[test]
    fn concurrent_appends_are_each_durable_on_return() {
        let (_dir, log) = log_of(1);
        let h = header();
        let before = log.counters().syncs.load(Ordering::Relaxed);
        let (threads, each) = (8u64, 25u64);
        std::thread::scope(|scope| {
            for t in 0..threads {
                let (log, h) = (&log, &h);
                scope.spawn(move || {
                    for i in 0..each {
                        let offset = log.append("t", 0, h, &[(t * each + i) as u8; 32]).unwrap();
                        assert!(durable(log, "t", 0) > offset, "acknowledged before durable");
                    }
                });
            }
        });
        assert_eq!(durable(&log, "t", 0), threads * each);
        assert!(log.counters().syncs.load(Ordering::Relaxed) > before);
        let read = log.read("t", 0, 0, 1000).unwrap();
        assert_eq!(read.len() as u64, threads * each, "every record read back");
    }

    #[test]
    fn a_closed_log_refuses_appends_and_reopens_where_it_stopped() {
        let (dir, log) = log_of(1);
        let h = header();
        assert_eq!(log.append("t", 0, &h, b"one").unwrap(), 0);
        log.close().unwrap();
        let err = log.append("t", 0, &h, b"two").unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
        drop(log);
        let log = EmbeddedLog::open(dir.path(), LogOptions::default()).unwrap();
        // Closed cleanly: no fence, the next record takes the next offset.
        assert_eq!(log.append("t", 0, &h, b"two").unwrap(), 1);
        assert_eq!(log.read("t", 0, 0, 10).unwrap().len(), 2);
    }
}
