//! Metrics of the store's background upkeep (`vedette_store_compaction_*`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vedette_core::traits::CompactionReport;

/// Counters of the compaction passes.
#[derive(Debug, Default)]
pub(crate) struct CompactionMetrics {
    merges: Counter,
    files_merged: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    rows: Counter,
    files_deleted: Counter,
    files_waiting: Gauge,
    failures: Counter,
}

impl CompactionMetrics {
    /// Registers the metrics.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        for (name, help, counter) in [
            (
                "store_compaction_merges",
                "Merges of small files run",
                &m.merges,
            ),
            (
                "store_compaction_files_merged",
                "Files merged into larger ones",
                &m.files_merged,
            ),
            (
                "store_compaction_bytes_in",
                "Bytes of the files merged",
                &m.bytes_in,
            ),
            (
                "store_compaction_bytes_out",
                "Bytes of the merged files written",
                &m.bytes_out,
            ),
            ("store_compaction_rows", "Rows rewritten by merges", &m.rows),
            (
                "store_files_deleted",
                "Replaced or expired files deleted",
                &m.files_deleted,
            ),
            (
                "store_compaction_failures",
                "Compaction passes that failed",
                &m.failures,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "store_files_waiting",
            "Replaced or expired files waiting for the queries that may read them",
            m.files_waiting.clone(),
        );
        m
    }

    /// Adds one pass.
    pub(crate) fn observe(&self, r: &CompactionReport) {
        self.merges.inc_by(r.merges);
        self.files_merged.inc_by(r.files_merged);
        self.bytes_in.inc_by(r.bytes_in);
        self.bytes_out.inc_by(r.bytes_out);
        self.rows.inc_by(r.rows);
        self.files_deleted.inc_by(r.files_deleted);
        self.files_waiting
            .set(i64::try_from(r.files_waiting).unwrap_or(i64::MAX));
    }

    /// Counts a failed pass.
    pub(crate) fn failed(&self) {
        self.failures.inc();
    }
}
