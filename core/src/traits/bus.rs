//! `Bus`: the durable log between ingest and detection/storage.

use async_trait::async_trait;

use crate::batch::{BusPosition, EventBatch};
use crate::error::CoreError;

/// The log: append event batches to a topic, read them back as a consumer group.
///
/// Delivery is at-least-once: a consumer commits a position only after everything
/// downstream of it (the store) has acknowledged, and resumes after its last commit.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Appends a batch to `topic`; returns its position once durable.
    async fn append(&self, topic: &str, batch: &EventBatch) -> Result<BusPosition, CoreError>;

    /// Joins consumer group `group` on `topic`.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn BusConsumer>, CoreError>;
}

/// One member of a consumer group.
#[async_trait]
pub trait BusConsumer: Send {
    /// The next batch with its position set, or `None` if nothing arrived in time.
    async fn poll(&mut self) -> Result<Option<EventBatch>, CoreError>;

    /// Everything up to and including `position` is processed and durable.
    async fn commit(&mut self, position: &BusPosition) -> Result<(), CoreError>;
}
