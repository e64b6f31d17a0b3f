//! `EventStore`: persist events, alerts and dead letters, and query them with SQL.

use std::time::Duration;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::batch::EventBatch;
use crate::error::CoreError;

/// A stream of query results.
pub type RecordBatchStream = BoxStream<'static, Result<RecordBatch, CoreError>>;

/// The tables of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Normalized events ([`crate::schema::event_schema`]).
    Events,
    /// Alerts ([`crate::alert::alert_schema`]).
    Alerts,
    /// Dead letters ([`crate::dead_letter::dead_letter_schema`]).
    DeadLetters,
    /// The audit log ([`crate::audit::audit_schema`]).
    Audit,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 4] = [
        Table::Events,
        Table::Alerts,
        Table::DeadLetters,
        Table::Audit,
    ];

    /// The table's SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Alerts => "alerts",
            Table::DeadLetters => "dead_letters",
            Table::Audit => "audit",
        }
    }
}

/// Which rows a query may see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryScope {
    /// Only rows of this tenant, in every table; none sees every tenant.
    pub tenant: Option<String>,
}

impl QueryScope {
    /// Every tenant's rows (operators, the CLI).
    pub fn all() -> Self {
        Self::default()
    }

    /// One tenant's rows.
    pub fn tenant(tenant: impl Into<String>) -> Self {
        Self {
            tenant: Some(tenant.into()),
        }
    }
}

/// How the storage stage should group bus batches into appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBatching {
    /// Append once this many rows are waiting.
    pub max_rows: usize,
    /// Append once this many bytes (in memory) are waiting.
    pub max_bytes: usize,
    /// Append once the oldest waiting batch is this old.
    pub max_age: Duration,
}

impl WriteBatching {
    /// Every batch appended as it arrives.
    pub const IMMEDIATE: WriteBatching = WriteBatching {
        max_rows: 0,
        max_bytes: 0,
        max_age: Duration::ZERO,
    };
}

/// Persists events, alerts and dead letters, and answers SQL over them.
///
/// An append returns only once the data is durable, so the caller may then commit the
/// bus position it came from. Appending a batch read from the bus again (same
/// position, same rows) must not store its rows twice.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends a batch of `table`'s schema (events, alerts, dead letters or audit).
    async fn append(&self, table: Table, batch: &EventBatch) -> Result<(), CoreError>;

    /// Appends several batches of `table`'s schema; a store that prefers large writes
    /// stores them together. Durable when it returns, like [`EventStore::append`].
    async fn append_all(&self, table: Table, batches: &[EventBatch]) -> Result<(), CoreError> {
        for batch in batches {
            self.append(table, batch).await?;
        }
        Ok(())
    }

    /// How the storage stage should group `table`'s batches for [`EventStore::append_all`].
    fn write_batching(&self, _table: Table) -> WriteBatching {
        WriteBatching::IMMEDIATE
    }

    /// Runs one read-only SQL query over the tables `events`, `alerts`,
    /// `dead_letters` and `audit`, seeing only the rows `scope` allows: with a tenant, each table
    /// holds that tenant's rows and nothing else is reachable (other databases,
    /// table functions), or the query is refused as [`CoreError::BadInput`].
    async fn query(&self, sql: &str, scope: &QueryScope) -> Result<RecordBatchStream, CoreError>;

    /// Events with `from_ms <= @timestamp < to_ms`, as batches of the event schema
    /// (for retro-hunts: not bounded by the analyst query limits).
    async fn read_events(&self, from_ms: i64, to_ms: i64) -> Result<RecordBatchStream, CoreError>;

    /// Deletes what is older than each table's retention at time `now_ms`; returns
    /// how many partitions (days) were dropped.
    async fn apply_retention(&self, now_ms: i64) -> Result<u64, CoreError>;

    /// One pass of background upkeep: merges small files into larger ones and deletes
    /// what merges and retention replaced once no query needs it. Queries see the same
    /// rows before, during and after. A store whose server merges its own parts
    /// (ClickHouse) has nothing to do here.
    async fn compact(&self) -> Result<CompactionReport, CoreError> {
        Ok(CompactionReport::default())
    }
}

/// What one [`EventStore::compact`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Merges run (one file written each).
    pub merges: u64,
    /// Files merged.
    pub files_merged: u64,
    /// Bytes of the files merged.
    pub bytes_in: u64,
    /// Bytes of the files written.
    pub bytes_out: u64,
    /// Rows rewritten.
    pub rows: u64,
    /// Replaced or expired files deleted.
    pub files_deleted: u64,
    /// Files waiting for deletion (a query may still read them).
    pub files_waiting: u64,
}
