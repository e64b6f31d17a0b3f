//! `EventStore`: persist events, alerts and dead letters, and query them with SQL.

use arrow::array::RecordBatch;
use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::alert::Alert;
use crate::batch::EventBatch;
use crate::dead_letter::DeadLetter;
use crate::error::CoreError;

/// A stream of query results.
pub type RecordBatchStream = BoxStream<'static, Result<RecordBatch, CoreError>>;

/// Persists events, alerts and dead letters, and answers SQL over them.
///
/// An append returns only once the data is durable, so the caller may then commit the
/// bus position it came from.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends a batch of events.
    async fn append_events(&self, batch: &EventBatch) -> Result<(), CoreError>;

    /// Appends alerts.
    async fn append_alerts(&self, alerts: &[Alert]) -> Result<(), CoreError>;

    /// Appends dead letters.
    async fn append_dead_letters(&self, letters: &[DeadLetter]) -> Result<(), CoreError>;

    /// Runs one SQL query over the tables `events`, `alerts` and `dead_letters`.
    async fn query(&self, sql: &str) -> Result<RecordBatchStream, CoreError>;
}
