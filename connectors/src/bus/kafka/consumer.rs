//! [`KafkaConsumer`]: one member of a Kafka consumer group, committing only when told.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use vedette_core::batch::{BusPosition, EventBatch};
use vedette_core::config::KafkaConfig;
use vedette_core::traits::{BusConsumer, BusDelivery};
use vedette_core::CoreError;

use super::stall_watch::{PartitionReading, StallWatch};
use super::{client_config, headers, kafka_error, replay};
use crate::bus::codec;
use crate::bus::lock;

/// What the rebalance callbacks share with the consumer.
#[derive(Debug, Default)]
struct Shared {
    /// Partitions this member owns now.
    owned: BTreeSet<u32>,
    /// Assignment changes not handed over yet, in order.
    changes: VecDeque<BusDelivery>,
}

/// The rdkafka context: records assignment changes as they happen.
struct GroupContext {
    shared: Arc<Mutex<Shared>>,
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<u32> {
    tpl.elements()
        .iter()
        .map(|e| e.partition() as u32)
        .collect()
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Every position the stage acknowledged was committed synchronously when it
        // did, so nothing acknowledged is pending here; what was read but not
        // acknowledged goes to the new owner.
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked = partitions_of(tpl);
            let mut shared = lock(&self.shared);
            for p in &revoked {
                shared.owned.remove(p);
            }
            if !revoked.is_empty() {
                tracing::info!(partitions = ?revoked, "kafka: partitions revoked");
                shared.changes.push_back(BusDelivery::Revoked(revoked));
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let assigned = partitions_of(tpl);
                let mut shared = lock(&self.shared);
                shared.owned.extend(assigned.iter().copied());
                if !assigned.is_empty() {
                    tracing::info!(partitions = ?assigned, "kafka: partitions assigned");
                    shared.changes.push_back(BusDelivery::Assigned(assigned));
                }
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "kafka: rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// A member of a consumer group on one Kafka topic.
pub struct KafkaConsumer {
    consumer: Arc<StreamConsumer<GroupContext>>,
    shared: Arc<Mutex<Shared>>,
    /// Vedette's name of the topic (positions carry it).
    topic: String,
    /// Kafka's name of the topic.
    kafka_topic: String,
    /// A batch received while assignment changes were pending: handed over after them.
    held: Option<EventBatch>,
    /// Watches for partitions left unread by a member that is gone (`None`: off).
    stall_watch: Option<StallWatch>,
    /// When the offsets were last read for the stall watch.
    last_stall_check: Instant,
    /// The settings it was made with (a reader of processed records uses them).
    config: KafkaConfig,
    /// The consumer group.
    group: String,
}

/// How long a read of the group's offsets may take.
const OFFSETS_TIMEOUT: Duration = Duration::from_secs(5);

/// The group's commit and the end of every partition of `topic`.
fn read_offsets(
    consumer: &StreamConsumer<GroupContext>,
    topic: &str,
) -> Result<Vec<PartitionReading>, rdkafka::error::KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), OFFSETS_TIMEOUT)?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    let mut all = TopicPartitionList::new();
    for p in 0..partitions {
        all.add_partition(topic, p as i32);
    }
    let committed = consumer.committed_offsets(all, OFFSETS_TIMEOUT)?;
    let mut readings = Vec::with_capacity(partitions);
    for e in committed.elements() {
        let (start, end) = consumer.fetch_watermarks(topic, e.partition(), OFFSETS_TIMEOUT)?;
        let committed = match e.offset() {
            Offset::Offset(n) => n,
            _ => start,
        };
        readings.push(PartitionReading {
            partition: e.partition() as u32,
            committed,
            end,
        });
    }
    Ok(readings)
}

impl KafkaConsumer {
    /// Joins `group` on `kafka_topic`.
    pub(crate) fn new(
        config: &KafkaConfig,
        topic: &str,
        kafka_topic: &str,
        group: &str,
    ) -> Result<Self, CoreError> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let consumer: StreamConsumer<GroupContext> = client_config::consumer(config, group)
            .create_with_context(GroupContext {
                shared: shared.clone(),
            })
            .map_err(|e| kafka_error("creating a consumer", e))?;
        consumer
            .subscribe(&[kafka_topic])
            .map_err(|e| kafka_error(&format!("subscribing to {kafka_topic}"), e))?;
        let stall_watch = (config.stall_rejoin_seconds > 0)
            .then(|| StallWatch::new(Duration::from_secs(config.stall_rejoin_seconds)));
        Ok(Self {
            consumer: Arc::new(consumer),
            shared,
            topic: topic.to_string(),
            kafka_topic: kafka_topic.to_string(),
            held: None,
            stall_watch,
            last_stall_check: Instant::now(),
            config: config.clone(),
            group: group.to_string(),
        })
    }

    /// Reads the group's offsets when the stall watch is due, and rejoins the group if
    /// partitions this member does not own are orphaned. A failed read is logged and
    /// tried at the next check.
    async fn watch_stalls(&mut self) {
        let Some(watch) = &self.stall_watch else {
            return;
        };
        if self.last_stall_check.elapsed() < watch.check_every() {
            return;
        }
        self.last_stall_check = Instant::now();
        let (consumer, topic) = (self.consumer.clone(), self.kafka_topic.clone());
        let readings = match tokio::task::spawn_blocking(move || read_offsets(&consumer, &topic))
            .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!(topic = %self.kafka_topic, error = %e, "kafka: reading the group's offsets failed");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "kafka: the offsets task failed");
                return;
            }
        };
        let owned = lock(&self.shared).owned.clone();
        let Some(watch) = &mut self.stall_watch else {
            return;
        };
        let orphaned = watch.observe(Instant::now(), |p| owned.contains(&p), &readings);
        if orphaned.is_empty() {
            return;
        }
        tracing::warn!(
            topic = %self.kafka_topic,
            partitions = ?orphaned,
            "kafka: partitions of this group are read by nobody (their member is gone and the broker did not rebalance); rejoining the group"
        );
        self.consumer.unsubscribe();
        if let Err(e) = self.consumer.subscribe(&[&self.kafka_topic]) {
            tracing::error!(topic = %self.kafka_topic, error = %e, "kafka: rejoining the group failed");
        }
    }

    fn next_change(&self) -> Option<BusDelivery> {
        lock(&self.shared).changes.pop_front()
    }
}

/// Decodes a message of `kafka_topic` (Vedette's `topic`); `None` (logged) for one
/// Vedette cannot read.
pub(crate) fn decode_message(
    topic: &str,
    kafka_topic: &str,
    partition: i32,
    offset: i64,
    header: Result<codec::BatchHeader, CoreError>,
    payload: Option<&[u8]>,
) -> Option<EventBatch> {
    let decoded = header.and_then(|h| codec::decode_batch(&h, payload.unwrap_or_default()));
    match decoded {
        Ok(mut batch) => {
            batch.position = Some(BusPosition {
                topic: topic.to_string(),
                partition: partition as u32,
                offset: offset as u64,
            });
            Some(batch)
        }
        Err(e) => {
            tracing::error!(topic = %kafka_topic, partition, offset, error = %e, "kafka: skipping a message Vedette cannot read");
            None
        }
    }
}

#[async_trait]
impl BusConsumer for KafkaConsumer {
    async fn poll(&mut self, timeout: Duration) -> Result<Option<BusDelivery>, CoreError> {
        if let Some(change) = self.next_change() {
            return Ok(Some(change));
        }
        if let Some(batch) = self.held.take() {
            return Ok(Some(BusDelivery::Batch(batch)));
        }
        self.watch_stalls().await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let received = tokio::time::timeout_at(deadline, self.consumer.recv()).await;
            let batch = match received {
                Err(_) => return Ok(self.next_change()),
                Ok(Err(e)) => return Err(kafka_error(&format!("reading {}", self.kafka_topic), e)),
                Ok(Ok(message)) => {
                    let header = headers::from_headers(message.headers());
                    decode_message(
                        &self.topic,
                        &self.kafka_topic,
                        message.partition(),
                        message.offset(),
                        header,
                        message.payload(),
                    )
                }
            };
            if let Some(change) = self.next_change() {
                self.held = batch;
                return Ok(Some(change));
            }
            if let Some(batch) = batch {
                return Ok(Some(BusDelivery::Batch(batch)));
            }
        }
    }

    async fn commit(&mut self, position: &BusPosition) -> Result<(), CoreError> {
        if position.topic != self.topic || !lock(&self.shared).owned.contains(&position.partition) {
            return Err(CoreError::External {
                service: "kafka".into(),
                message: format!(
                    "cannot commit {}/{}: the partition is not assigned to this consumer (rebalanced)",
                    position.topic, position.partition
                ),
                retryable: false,
            });
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(
            &self.kafka_topic,
            position.partition as i32,
            Offset::Offset(position.offset as i64 + 1),
        )
        .map_err(|e| kafka_error("building a commit", e))?;
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
            .await
            .map_err(|e| CoreError::Internal(format!("kafka commit task: {e}")))?
            .map_err(|e| kafka_error("committing", e))
    }

    async fn close(self: Box<Self>) -> Result<(), CoreError> {
        self.consumer.unsubscribe();
        Ok(())
    }

    async fn read_processed(
        &mut self,
        partition: u32,
        from: Option<u64>,
        since_ms: Option<i64>,
        max_rows: usize,
    ) -> Result<Vec<EventBatch>, CoreError> {
        let (config, topic, kafka_topic, group) = (
            self.config.clone(),
            self.topic.clone(),
            self.kafka_topic.clone(),
            self.group.clone(),
        );
        tokio::task::spawn_blocking(move || {
            replay::read_processed(
                &config,
                &replay::ProcessedRange {
                    topic: &topic,
                    kafka_topic: &kafka_topic,
                    group: &group,
                    partition,
                    from,
                    since_ms,
                    max_rows,
                },
            )
        })
        .await
        .map_err(|e| CoreError::Internal(format!("kafka read-back task: {e}")))?
    }
}
