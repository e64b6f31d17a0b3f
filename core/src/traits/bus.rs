//! `Bus`: the durable log between ingest and detection/storage.

use std::time::Duration;

use async_trait::async_trait;

use crate::batch::{BusPosition, EventBatch};
use crate::error::CoreError;

/// The log: append batches to a topic, read them back as a consumer group.
///
/// A topic has a fixed number of partitions. An append splits its batch across them by
/// the topic's partition key (rows with the same key value always land in the same
/// partition, so one entity's events meet one consumer), and returns once every part is
/// durable. Records of one partition are read in append order.
///
/// Delivery is at-least-once: a consumer commits a position only after everything
/// downstream of it (the store, the alert topic) has acknowledged, and a group resumes
/// after its last commit; what was read but not committed is read again.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Appends a batch to `topic`, creating the topic if it is missing; returns the
    /// position of each record written (one per partition the batch touched, more when
    /// a part was split to fit the largest record size) once all are durable.
    async fn append(&self, topic: &str, batch: &EventBatch) -> Result<Vec<BusPosition>, CoreError>;

    /// Joins consumer group `group` on `topic`. The group's partitions are shared among
    /// its members; a member leaves when it is closed or dropped.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn BusConsumer>, CoreError>;

    /// Bytes of `topic` that the slowest consumer group of this process has yet to
    /// read, where the bus can tell (the embedded log); `None` where consumers of other
    /// processes read it and the broker holds their backlog (Kafka). Producers slow
    /// down on it.
    fn backlog_bytes(&self, _topic: &str) -> Result<Option<u64>, CoreError> {
        Ok(None)
    }
}

/// What a consumer's poll hands over.
#[derive(Debug)]
pub enum BusDelivery {
    /// The next batch of one of this member's partitions, its position set.
    Batch(EventBatch),
    /// Partitions now owned by this member; it reads them from the group's commit.
    Assigned(Vec<u32>),
    /// Partitions taken from this member by a rebalance: its commits on them are
    /// refused from now on, and what it read past its last commit goes to the new
    /// owner, which rebuilds the state it keeps per entity from
    /// [`BusConsumer::read_processed`].
    Revoked(Vec<u32>),
}

/// One member of a consumer group.
#[async_trait]
pub trait BusConsumer: Send {
    /// The next delivery, or `None` if nothing arrived within `timeout`.
    async fn poll(&mut self, timeout: Duration) -> Result<Option<BusDelivery>, CoreError>;

    /// Everything of `position`'s partition up to and including its offset is processed
    /// and durable downstream; the group resumes after it. Fails if the partition is
    /// no longer assigned to this member.
    async fn commit(&mut self, position: &BusPosition) -> Result<(), CoreError>;

    /// Leaves the group cleanly, handing the partitions to the other members.
    async fn close(self: Box<Self>) -> Result<(), CoreError>;

    /// The batches of `partition` the group has already processed (before its commit),
    /// in order: from offset `from`, or from the first record appended at or after
    /// `since_ms` (Unix ms), whichever is later; at most about `max_rows` rows, the
    /// newest kept. A member that takes over a partition another process read replays
    /// them to rebuild the state it keeps per entity (correlation windows, baselines).
    /// Empty on a bus whose partitions never move between processes (the embedded
    /// log: a restart restores its own checkpoints).
    async fn read_processed(
        &mut self,
        _partition: u32,
        _from: Option<u64>,
        _since_ms: Option<i64>,
        _max_rows: usize,
    ) -> Result<Vec<EventBatch>, CoreError> {
        Ok(Vec::new())
    }
}
