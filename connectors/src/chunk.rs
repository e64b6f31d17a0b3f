//! The hand-over from transports to the pipeline: a bounded channel of chunks, and a
//! `Source` reading from it.

use async_trait::async_trait;
use tokio::sync::mpsc;
use vedette_core::traits::{RawChunk, Source};
use vedette_core::CoreError;

/// Where transports send their chunks. Bounded: a slow pipeline slows the transports
/// (back-pressure) instead of growing memory.
pub type ChunkSender = mpsc::Sender<RawChunk>;

/// A bounded chunk channel of `capacity` chunks.
pub fn channel(capacity: usize) -> (ChunkSender, ChannelSource) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (tx, ChannelSource { rx })
}

/// A `Source` over every chunk sent to its channel.
#[derive(Debug)]
pub struct ChannelSource {
    rx: mpsc::Receiver<RawChunk>,
}

#[async_trait]
impl Source for ChannelSource {
    fn name(&self) -> &str {
        "channel"
    }

    async fn next_chunk(&mut self) -> Result<Option<RawChunk>, CoreError> {
        Ok(self.rx.recv().await)
    }

    async fn ack(&mut self, _position: u64) -> Result<(), CoreError> {
        // Each transport keeps its own positions (see `file::Positions`).
        Ok(())
    }
}

/// Current time, Unix milliseconds UTC.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
