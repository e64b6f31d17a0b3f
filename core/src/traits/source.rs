//! `Source`: a transport that hands over chunks of bytes, each with its origin and an
//! ack position.

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::CoreError;

/// A chunk of raw bytes received by a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawChunk {
    /// Name of the source that received it (e.g. `syslog-udp`, `http`, `file`).
    pub source: String,
    /// Where it came from within the source: peer address, file path, topic.
    pub origin: String,
    /// Tenant the bytes belong to.
    pub tenant: String,
    /// The bytes, one or more whole records.
    pub bytes: Bytes,
    /// Position of the chunk's first byte within its source: a byte offset for files,
    /// a sequence number for network sources. Records inside the chunk are located
    /// (e.g. in dead letters) as this position plus their byte offset in the chunk;
    /// acknowledging the chunk acknowledges everything up to its end.
    pub position: u64,
    /// When the chunk was received, Unix milliseconds UTC.
    pub received_ms: i64,
}

/// A transport in: yields chunks of bytes and takes acknowledgements.
///
/// Delivery is at-least-once: a chunk not acknowledged before a restart is handed
/// over again, so everything downstream must tolerate duplicates (`event.id` is stable).
#[async_trait]
pub trait Source: Send {
    /// Name of this source, used in metrics and dead letters.
    fn name(&self) -> &str;

    /// The next chunk, or `None` once the source is exhausted or shut down.
    async fn next_chunk(&mut self) -> Result<Option<RawChunk>, CoreError>;

    /// Everything up to and including `position` is durable downstream.
    async fn ack(&mut self, position: u64) -> Result<(), CoreError>;
}
