//! An event batch: a record batch of the event schema plus where it came from.

use arrow::array::RecordBatch;

/// Where a batch sits on the bus: enough to commit past it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BusPosition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// Offset of the record within the partition.
    pub offset: u64,
}

/// A record batch of [`crate::schema::event_schema`] with its provenance.
#[derive(Debug, Clone)]
pub struct EventBatch {
    /// The events, one row each.
    pub records: RecordBatch,
    /// Name of the source that received them (e.g. `syslog-udp`, `http`).
    pub source: String,
    /// Tenant that owns every row of the batch.
    pub tenant: String,
    /// When the batch was built, Unix milliseconds UTC.
    pub ingest_time_ms: i64,
    /// Position on the bus once the batch has been appended or read back.
    pub position: Option<BusPosition>,
}

impl EventBatch {
    /// A batch not yet on the bus.
    pub fn new(
        records: RecordBatch,
        source: impl Into<String>,
        tenant: impl Into<String>,
        ingest_time_ms: i64,
    ) -> Self {
        Self {
            records,
            source: source.into(),
            tenant: tenant.into(),
            ingest_time_ms,
            position: None,
        }
    }

    /// Number of events in the batch.
    pub fn len(&self) -> usize {
        self.records.num_rows()
    }

    /// Whether the batch holds no events.
    pub fn is_empty(&self) -> bool {
        self.records.num_rows() == 0
    }
}
