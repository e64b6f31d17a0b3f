//! [`EmbeddedBus`]: the [`Bus`] trait over an [`EmbeddedLog`], with consumers that share
//! a group's partitions inside this process.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rayon::iter::{IntoParallelIterator, ParallelIterator};
use tokio::time::Instant;
use vedette_core::batch::{BusPosition, EventBatch};
use vedette_core::traits::{Bus, BusConsumer, BusDelivery};
use vedette_core::CoreError;

use super::log::{AppendPart, EmbeddedLog};
use super::payload::{compress_into, PayloadCodec};
use super::record::MAX_BODY_BYTES;
use crate::bus::codec::{self, BatchHeader};
use crate::bus::lock;
use crate::bus::partitioning::{PartitionRows, Partitioner};

/// Largest payload of one record: batches above it are split.
const MAX_PAYLOAD_BYTES: usize = MAX_BODY_BYTES - 256 * 1024;
/// Largest IPC stream of one record before compression: LZ4 and zstd grow
/// incompressible data by less than 1/255, so what fits before compressing also fits
/// after.
const MAX_PLAIN_BYTES: usize = MAX_PAYLOAD_BYTES / 256 * 255;

/// Below this many rows a batch's parts are encoded one after the other: handing them
/// to other threads costs more than it saves.
const PARALLEL_ENCODE_ROWS: usize = 4096;
/// A producer thread keeps its encoding buffers up to this capacity each for its next
/// batch (a whole 8192-event batch encodes to about 10 MiB; every rayon worker and
/// blocking thread that appends holds at most twice this).
const KEPT_BUFFER_BYTES: usize = 16 * 1024 * 1024;

thread_local! {
    /// A producer thread's buffers (the plain IPC stream, the compressed payload),
    /// reused from batch to batch: fresh memory for each stream of several MiB had its
    /// pages faulted in and zeroed by the kernel every time.
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Encodes one partition's rows (in `buffers`: the plain IPC stream, the compressed
/// payload) and writes them to the log: one record, or several when they encode over a
/// record's limit (those are not kept whole in memory).
fn write_part(
    log: &EmbeddedLog,
    topic: &str,
    partition: u32,
    part: &EventBatch,
    codec: PayloadCodec,
    (plain, packed): &mut (Vec<u8>, Vec<u8>),
) -> Result<Vec<(u32, u64)>, CoreError> {
    let header = BatchHeader::of(part);
    codec::encode_records_into(&part.records, plain)?;
    if plain.len() <= MAX_PLAIN_BYTES {
        compress_into(plain, codec, packed)?;
        let record = AppendPart {
            partition,
            header: &header,
            payload: packed,
            codec,
            batch: Some(part),
        };
        return Ok(vec![log.write(topic, &record)?]);
    }
    *plain = Vec::new();
    let mut written = Vec::new();
    for piece in codec::encode_to_fit(&part.records, MAX_PLAIN_BYTES, None)? {
        compress_into(&piece, codec, packed)?;
        let record = AppendPart {
            partition,
            header: &header,
            payload: packed,
            codec,
            batch: None,
        };
        written.push(log.write(topic, &record)?);
    }
    Ok(written)
}

/// Splits `batch` by partition and writes each part to the log as soon as it is taken
/// and encoded (an IPC stream, compressed as one block or frame; parts in parallel for
/// large batches: an 8192-row batch takes ~10 ms of one core); returns where each
/// record went.
/// The records are neither durable nor visible until [`EmbeddedLog::complete`].
fn write_parts(
    log: &EmbeddedLog,
    topic: &str,
    partitioner: &Partitioner,
    batch: &EventBatch,
) -> Result<Vec<(u32, u64)>, CoreError> {
    let codec = PayloadCodec::of(log.compression());
    let take_and_write = |rows: PartitionRows| {
        let part = EventBatch {
            records: rows.take(&batch.records)?,
            ..batch.clone()
        };
        // Taken out of the thread's cell while in use (and put back after), so nothing
        // done meanwhile can find the cell borrowed.
        let mut buffers = BUFFERS.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
        let written = write_part(log, topic, rows.partition, &part, codec, &mut buffers);
        for buffer in [&mut buffers.0, &mut buffers.1] {
            if buffer.capacity() > KEPT_BUFFER_BYTES {
                *buffer = Vec::new();
            }
        }
        BUFFERS.with(|cell| *cell.borrow_mut() = buffers);
        written
    };
    // Each part is taken from the batch, encoded and written on a thread of its own.
    let split = partitioner.assign(&batch.records);
    let written: Vec<Vec<(u32, u64)>> = if batch.len() < PARALLEL_ENCODE_ROWS || split.len() < 2 {
        split
            .into_iter()
            .map(take_and_write)
            .collect::<Result<_, CoreError>>()?
    } else {
        split
            .into_par_iter()
            .map(take_and_write)
            .collect::<Result<_, CoreError>>()?
    };
    Ok(written.into_iter().flatten().collect())
}

/// The embedded log as a [`Bus`].
#[derive(Debug, Clone)]
pub struct EmbeddedBus {
    log: Arc<EmbeddedLog>,
    key: String,
    partitioners: Arc<Mutex<HashMap<String, Arc<Partitioner>>>>,
}

fn join_error(e: tokio::task::JoinError) -> CoreError {
    CoreError::Internal(format!("embedded log task failed: {e}"))
}

impl EmbeddedBus {
    /// A bus over `log`, partitioning rows by column `partition_key`.
    pub fn new(log: Arc<EmbeddedLog>, partition_key: impl Into<String>) -> Self {
        Self {
            log,
            key: partition_key.into(),
            partitioners: Arc::default(),
        }
    }

    fn partitioner(&self, topic: &str) -> Result<Arc<Partitioner>, CoreError> {
        if let Some(p) = lock(&self.partitioners).get(topic) {
            return Ok(p.clone());
        }
        let p = Arc::new(Partitioner::new(
            self.key.clone(),
            self.log.partitions(topic)?,
        ));
        lock(&self.partitioners).insert(topic.to_string(), p.clone());
        Ok(p)
    }
}

#[async_trait]
impl Bus for EmbeddedBus {
    async fn append(&self, topic: &str, batch: &EventBatch) -> Result<Vec<BusPosition>, CoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let partitioner = self.partitioner(topic)?;
        let (log, topic_name, batch) = (self.log.clone(), topic.to_string(), batch.clone());
        let written = tokio::task::spawn_blocking(move || {
            let written = write_parts(&log, &topic_name, &partitioner, &batch)?;
            log.complete(&topic_name, &written)?;
            Ok::<_, CoreError>(written)
        })
        .await
        .map_err(join_error)??;
        let mut positions = Vec::with_capacity(written.len());
        for (partition, offset) in written {
            self.log.wait_durable(topic, partition, offset).await?;
            positions.push(BusPosition {
                topic: topic.to_string(),
                partition,
                offset,
            });
        }
        Ok(positions)
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn BusConsumer>, CoreError> {
        let member = self.log.join(group, topic)?;
        Ok(Box::new(EmbeddedConsumer {
            log: self.log.clone(),
            topic: topic.to_string(),
            group: group.to_string(),
            member,
            generation: 0,
            owned: BTreeMap::new(),
            pending: VecDeque::new(),
            cursor: 0,
            arrivals: self.log.arrivals(topic)?,
            membership: self.log.membership_changes(),
            left: false,
        }))
    }

    fn backlog_bytes(&self, topic: &str) -> Result<Option<u64>, CoreError> {
        self.log.backlog_bytes(topic).map(Some)
    }
}

/// A member of a consumer group on the embedded log.
#[derive(Debug)]
pub struct EmbeddedConsumer {
    log: Arc<EmbeddedLog>,
    topic: String,
    group: String,
    member: u64,
    generation: u64,
    /// Owned partitions and the next offset to read in each.
    owned: BTreeMap<u32, u64>,
    pending: VecDeque<BusDelivery>,
    /// Which owned partition is read next, so one busy partition cannot starve others.
    cursor: usize,
    arrivals: tokio::sync::watch::Receiver<u64>,
    membership: tokio::sync::watch::Receiver<u64>,
    left: bool,
}

impl EmbeddedConsumer {
    /// Takes a new assignment if the group changed; queues the revoked and assigned
    /// partitions as deliveries.
    fn rebalance(&mut self) -> Result<(), CoreError> {
        let (generation, mine) = self.log.assignment(&self.group, &self.topic, self.member)?;
        if generation == self.generation {
            return Ok(());
        }
        self.generation = generation;
        let revoked: Vec<u32> = self
            .owned
            .keys()
            .copied()
            .filter(|p| !mine.contains(p))
            .collect();
        for p in &revoked {
            self.owned.remove(p);
        }
        let mut assigned = Vec::new();
        for p in mine {
            if self.owned.contains_key(&p) {
                continue;
            }
            let (start, _) = self.log.bounds(&self.topic, p)?;
            let from = self
                .log
                .committed(&self.group, &self.topic, p)
                .unwrap_or(start);
            self.owned.insert(p, from);
            self.log.note_read(&self.group, &self.topic, p, from);
            assigned.push(p);
        }
        if !revoked.is_empty() {
            self.pending.push_back(BusDelivery::Revoked(revoked));
        }
        if !assigned.is_empty() {
            self.pending.push_back(BusDelivery::Assigned(assigned));
        }
        Ok(())
    }

    /// The next record of an owned partition, in turn.
    async fn next_batch(&mut self) -> Result<Option<EventBatch>, CoreError> {
        let owned: Vec<(u32, u64)> = self.owned.iter().map(|(&p, &o)| (p, o)).collect();
        for i in 0..owned.len() {
            let (partition, from) = owned[(self.cursor + i) % owned.len()];
            if let Some(mut batch) = self.log.read_recent(&self.topic, partition, from)? {
                self.cursor = (self.cursor + i + 1) % owned.len().max(1);
                self.owned.insert(partition, from + 1);
                self.log
                    .note_read(&self.group, &self.topic, partition, from + 1);
                batch.position = Some(BusPosition {
                    topic: self.topic.clone(),
                    partition,
                    offset: from,
                });
                return Ok(Some(batch));
            }
            let (log, topic) = (self.log.clone(), self.topic.clone());
            let records = tokio::task::spawn_blocking(move || log.read(&topic, partition, from, 1))
                .await
                .map_err(join_error)??;
            let Some(record) = records.into_iter().next() else {
                // Everything from `from` may have been damaged and skipped: move past
                // what the log no longer serves.
                continue;
            };
            self.cursor = (self.cursor + i + 1) % owned.len().max(1);
            self.owned.insert(partition, record.offset + 1);
            self.log
                .note_read(&self.group, &self.topic, partition, record.offset + 1);
            let mut batch = codec::decode_batch(&record.header, &record.payload)?;
            batch.position = Some(BusPosition {
                topic: self.topic.clone(),
                partition,
                offset: record.offset,
            });
            return Ok(Some(batch));
        }
        Ok(None)
    }

    fn leave(&mut self) {
        if !self.left {
            self.left = true;
            self.log.leave(&self.group, &self.topic, self.member);
        }
    }
}

#[async_trait]
impl BusConsumer for EmbeddedConsumer {
    async fn poll(&mut self, timeout: Duration) -> Result<Option<BusDelivery>, CoreError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.arrivals.borrow_and_update();
            self.membership.borrow_and_update();
            self.rebalance()?;
            if let Some(d) = self.pending.pop_front() {
                return Ok(Some(d));
            }
            if let Some(batch) = self.next_batch().await? {
                return Ok(Some(BusDelivery::Batch(batch)));
            }
            let woke = tokio::time::timeout_at(deadline, async {
                tokio::select! {
                    _ = self.arrivals.changed() => {}
                    _ = self.membership.changed() => {}
                }
            })
            .await;
            if woke.is_err() {
                return Ok(None);
            }
        }
    }

    async fn commit(&mut self, position: &BusPosition) -> Result<(), CoreError> {
        self.rebalance()?;
        if position.topic != self.topic || !self.owned.contains_key(&position.partition) {
            return Err(CoreError::External {
                service: "embedded log".into(),
                message: format!(
                    "cannot commit {}/{}: the partition is not assigned to this consumer (rebalanced)",
                    position.topic, position.partition
                ),
                retryable: false,
            });
        }
        let (log, group, p) = (self.log.clone(), self.group.clone(), position.clone());
        tokio::task::spawn_blocking(move || log.commit(&group, &p.topic, p.partition, p.offset + 1))
            .await
            .map_err(join_error)?
    }

    async fn close(mut self: Box<Self>) -> Result<(), CoreError> {
        self.leave();
        Ok(())
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        self.leave();
    }
}
