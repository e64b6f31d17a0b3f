//! [`EmbeddedBus`]: the [`Bus`] trait over an [`EmbeddedLog`], with consumers that share
//! a group's partitions inside this process.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use rayon::iter::{IntoParallelIterator, ParallelIterator};
use tokio::time::Instant;
use vedette_core::batch::{BusPosition, EventBatch};
use vedette_core::traits::{Bus, BusConsumer, BusDelivery};
use vedette_core::CoreError;

use super::log::{AppendPart, EmbeddedLog};
use super::payload::{compress_kept, PayloadCodec};
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

/// A batch is cut into records of at least this many rows, so that its records encode
/// on several threads (handing fewer rows to another thread costs more than it saves).
const MIN_RECORD_ROWS: usize = 4096;
/// The bus keeps its encoding buffers up to this capacity each for the next batch (a
/// whole 8192-event batch encodes to about 10 MiB).
const KEPT_BUFFER_BYTES: usize = 16 * 1024 * 1024;
/// Buffers of each kind (plain IPC streams, stored payloads) the bus keeps for its next
/// appends.
const KEPT_BUFFERS: usize = 8;

/// The rows of one record of an append, before encoding.
struct Record {
    partition: u32,
    rows: EventBatch,
    /// The memory the rows take, when they are a slice of a larger batch.
    memory: Option<usize>,
}

/// One record of an append, encoded: its partition, the rows it holds and its payloads,
/// each a buffer and the length stored in it (one, or several when the rows encode over
/// a record's limit; those are not kept whole in memory).
struct EncodedPart {
    record: Record,
    header: BatchHeader,
    payloads: Vec<(Vec<u8>, usize)>,
}

/// Buffers kept from one append for the next, whichever thread encodes it: fresh memory
/// for each stream of several MiB had its pages faulted in and zeroed by the kernel every
/// time (appends run on the runtime's blocking threads, which come and go, so buffers
/// kept per thread were often fresh too).
#[derive(Debug, Default)]
struct BufferPool(Mutex<Vec<Vec<u8>>>);

impl BufferPool {
    fn take(&self) -> Vec<u8> {
        lock(&self.0).pop().unwrap_or_default()
    }

    fn give(&self, buffers: impl IntoIterator<Item = Vec<u8>>) {
        let mut kept = lock(&self.0);
        for buffer in buffers {
            if kept.len() < KEPT_BUFFERS && buffer.capacity() <= KEPT_BUFFER_BYTES {
                kept.push(buffer);
            }
        }
    }
}

/// The buffers of an [`EmbeddedBus`]'s producers.
#[derive(Debug, Default)]
struct EncodeBuffers {
    /// Plain IPC streams.
    plain: BufferPool,
    /// Stored (compressed) payloads.
    stored: BufferPool,
}

/// The records `batch` is appended as: each partition's rows (taken from the batch; a
/// batch whose rows all go to one partition is not copied), a partition's rows cut into
/// consecutive slices when the batch is large enough to encode on every thread (slices
/// are not copied). In partition order, each partition's slices in row order.
/// `threads` is how many threads encode.
fn cut_into_records(
    partitioner: &Partitioner,
    batch: &EventBatch,
    threads: usize,
) -> Result<Vec<Record>, CoreError> {
    let split = partitioner.assign(&batch.records);
    let take = |rows: PartitionRows| {
        let records = rows.take(&batch.records)?;
        Ok::<_, CoreError>((rows.partition, records))
    };
    let parts: Vec<(u32, RecordBatch)> = if split.len() < 2 || batch.len() < 2 * MIN_RECORD_ROWS {
        split.into_iter().map(take).collect::<Result<_, _>>()?
    } else {
        split.into_par_iter().map(take).collect::<Result<_, _>>()?
    };
    let threads = threads.max(1);
    let record_rows = MIN_RECORD_ROWS.max(batch.len().div_ceil(threads));
    let mut records = Vec::new();
    for (partition, rows) in parts {
        // Whole records of at least `record_rows`: the remainder goes to the last.
        let slices = (rows.num_rows() / record_rows).max(1);
        if slices == 1 {
            records.push(Record {
                partition,
                rows: EventBatch {
                    records: rows,
                    ..batch.clone()
                },
                memory: None,
            });
            continue;
        }
        // A slice shares its batch's buffers: it counts its share of their memory.
        let memory = rows.get_array_memory_size();
        let per_slice = rows.num_rows() / slices;
        for i in 0..slices {
            let offset = i * per_slice;
            let len = if i + 1 == slices {
                rows.num_rows() - offset
            } else {
                per_slice
            };
            records.push(Record {
                partition,
                rows: EventBatch {
                    records: rows.slice(offset, len),
                    ..batch.clone()
                },
                memory: Some(memory * len / rows.num_rows().max(1)),
            });
        }
    }
    Ok(records)
}

/// Encodes one record's rows as an IPC stream, compressed as one block or frame, with
/// buffers from `buffers`; rows that encode over a record's limit become several payloads.
fn encode_part(
    record: Record,
    codec: PayloadCodec,
    buffers: &EncodeBuffers,
) -> Result<EncodedPart, CoreError> {
    let rows = &record.rows;
    let header = BatchHeader::of(rows);
    let mut plain = buffers.plain.take();
    let encoded = codec::encode_records_into(&rows.records, &mut plain);
    let payloads = match encoded {
        Ok(()) if plain.len() <= MAX_PLAIN_BYTES => {
            let mut stored = buffers.stored.take();
            compress_kept(&plain, codec, &mut stored).map(|len| vec![(stored, len)])
        }
        Ok(()) => {
            plain = Vec::new();
            codec::encode_to_fit(&rows.records, MAX_PLAIN_BYTES, None).and_then(|pieces| {
                pieces
                    .iter()
                    .map(|piece| {
                        // Held until written with the other pieces: cut to what it stores.
                        let mut out = Vec::new();
                        let len = compress_kept(piece, codec, &mut out)?;
                        out.truncate(len);
                        out.shrink_to_fit();
                        Ok((out, len))
                    })
                    .collect()
            })
        }
        Err(e) => Err(e),
    };
    buffers.plain.give([plain]);
    let payloads = payloads?;
    Ok(EncodedPart {
        record,
        header,
        payloads,
    })
}

/// Cuts `batch` into records ([`cut_into_records`]), encodes them (in parallel when there
/// are several) and writes them to the log in order; returns where each record went.
/// The records are not durable until [`EmbeddedLog::complete`] (they may be served
/// before, once another append to the partition completes; a failure part way leaves the
/// records written so far, read again when the sender resends: at-least-once).
fn write_parts(
    log: &EmbeddedLog,
    topic: &str,
    partitioner: &Partitioner,
    buffers: &EncodeBuffers,
    batch: &EventBatch,
) -> Result<Vec<(u32, u64)>, CoreError> {
    let codec = PayloadCodec::of(log.compression());
    let records = cut_into_records(partitioner, batch, rayon::current_num_threads())?;
    let encode = |record: Record| encode_part(record, codec, buffers);
    let encoded: Vec<EncodedPart> = if records.len() < 2 {
        records.into_iter().map(encode).collect::<Result<_, _>>()?
    } else {
        records
            .into_par_iter()
            .map(encode)
            .collect::<Result<_, _>>()?
    };
    // Written one after the other: a partition's records keep the batch's row order.
    let mut written = Vec::with_capacity(encoded.len());
    for part in &encoded {
        let whole = part.payloads.len() == 1;
        for (buffer, len) in &part.payloads {
            written.push(log.write(
                topic,
                &AppendPart {
                    partition: part.record.partition,
                    header: &part.header,
                    payload: &buffer[..*len],
                    codec,
                    batch: whole.then_some(&part.record.rows),
                    batch_bytes: part.record.memory,
                },
            )?);
        }
    }
    buffers.stored.give(
        encoded
            .into_iter()
            .flat_map(|part| part.payloads)
            .map(|(b, _)| b),
    );
    Ok(written)
}

/// The embedded log as a [`Bus`].
#[derive(Debug, Clone)]
pub struct EmbeddedBus {
    log: Arc<EmbeddedLog>,
    key: String,
    partitioners: Arc<Mutex<HashMap<String, Arc<Partitioner>>>>,
    buffers: Arc<EncodeBuffers>,
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
            buffers: Arc::default(),
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
        let buffers = self.buffers.clone();
        let written = tokio::task::spawn_blocking(move || {
            let written = write_parts(&log, &topic_name, &partitioner, &buffers, &batch)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_core::event::{Event, EventBatchBuilder};

    fn batch(rows: usize, hosts: usize) -> EventBatch {
        let mut b = EventBatchBuilder::new();
        for i in 0..rows {
            b.append(&Event {
                id: format!("e{i}"),
                dataset: "d".into(),
                host_name: Some(format!("h{}", i % hosts)),
                ..Event::default()
            });
        }
        EventBatch::new(b.finish().unwrap(), "src", "acme", 7)
    }

    fn sizes(records: &[Record]) -> Vec<(u32, usize)> {
        records
            .iter()
            .map(|r| (r.partition, r.rows.len()))
            .collect()
    }

    #[test]
    fn a_large_batch_is_cut_into_records_of_at_least_the_minimum_one_per_thread() {
        let one = Partitioner::new("host.name", 1);
        let cut = |rows, threads| sizes(&cut_into_records(&one, &batch(rows, 3), threads).unwrap());
        assert_eq!(cut(8192, 2), [(0, 4096), (0, 4096)]);
        assert_eq!(cut(8193, 2), [(0, 8193)], "two would be under the minimum");
        assert_eq!(cut(4097, 2), [(0, 4097)]);
        assert_eq!(cut(20_000, 2), [(0, 10_000), (0, 10_000)]);
        assert_eq!(cut(20_001, 8), [(0, 5000), (0, 5000), (0, 5000), (0, 5001)]);
        assert_eq!(cut(100, 2), [(0, 100)]);
        assert_eq!(cut(8192, 1), [(0, 8192)]);
        // Slices keep the rows in order and count their share of the memory.
        let whole = batch(8192, 3);
        let records = cut_into_records(&one, &whole, 2).unwrap();
        assert_eq!(records[0].rows.records, whole.records.slice(0, 4096));
        assert_eq!(records[1].rows.records, whole.records.slice(4096, 4096));
        let memory: usize = records.iter().map(|r| r.memory.unwrap()).sum();
        assert!(memory <= whole.records.get_array_memory_size());
        assert!(memory * 10 >= whole.records.get_array_memory_size() * 9);
    }

    #[test]
    fn a_batch_over_several_partitions_goes_one_record_per_partition() {
        let four = Partitioner::new("host.name", 4);
        let whole = batch(8192, 64);
        let records = cut_into_records(&four, &whole, 2).unwrap();
        let rows: usize = records.iter().map(|r| r.rows.len()).sum();
        assert_eq!(rows, 8192);
        let partitions: Vec<u32> = records.iter().map(|r| r.partition).collect();
        assert_eq!(partitions, [0, 1, 2, 3]);
        assert!(
            records.iter().all(|r| r.memory.is_none()),
            "copies, not slices"
        );
    }
}
