//! The process's Prometheus metrics: one typed metric per thing counted.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Labels of an HTTP request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct HttpLabels {
    /// The matched route, or `unmatched`.
    pub(crate) route: String,
    /// The response status code.
    pub(crate) status: u16,
}

/// Labels naming an input source (`syslog-udp`, `http`, `file-0`, ...).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SourceLabels {
    /// The source.
    pub(crate) source: String,
}

/// Labels naming a dataset.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DatasetLabels {
    /// The `event.dataset`.
    pub(crate) dataset: String,
}

/// Labels of a dead-letter counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DeadLetterLabels {
    /// The source.
    pub(crate) source: String,
    /// The kind of reason (specifics removed, see [`reason_kind`]).
    pub(crate) reason: String,
}

/// Every metric of the process, registered once.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// `vedette_http_requests_total{route,status}`.
    pub(crate) http_requests: Family<HttpLabels, Counter>,
    /// `vedette_ingest_bytes_total{source}`: raw bytes received.
    pub(crate) ingest_bytes: Family<SourceLabels, Counter>,
    /// `vedette_ingest_events_total{source}`: events parsed.
    pub(crate) ingest_events: Family<SourceLabels, Counter>,
    /// `vedette_ingest_events_by_dataset_total{dataset}`: events made durable.
    pub(crate) ingest_events_by_dataset: Family<DatasetLabels, Counter>,
    /// `vedette_ingest_dead_letters_total{source,reason}`.
    pub(crate) ingest_dead_letters: Family<DeadLetterLabels, Counter>,
    /// `vedette_spool_batches_total`: batches written durably.
    pub(crate) spool_batches: Counter,
    /// `vedette_spool_write_seconds`: time to write one batch durably.
    pub(crate) spool_write_seconds: Histogram,
}

/// A dead-letter reason without its specifics (numbers, and what follows `: `), so
/// that it makes a bounded set of label values.
pub(crate) fn reason_kind(reason: &str) -> String {
    let head = reason.split(": ").next().unwrap_or(reason);
    let mut out = String::with_capacity(head.len().min(120));
    for c in head.chars().take(120) {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

impl Metrics {
    /// Registers every metric.
    pub(crate) fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("vedette");
        registry.register(
            "build",
            "Version of the running vedette binary",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let start: Gauge = Gauge::default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        start.set(i64::try_from(now).unwrap_or(i64::MAX));
        registry.register("start_time_seconds", "Unix time the process started", start);
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served",
            http_requests.clone(),
        );
        let ingest_bytes = Family::<SourceLabels, Counter>::default();
        registry.register(
            "ingest_bytes",
            "Raw bytes received, by source",
            ingest_bytes.clone(),
        );
        let ingest_events = Family::<SourceLabels, Counter>::default();
        registry.register(
            "ingest_events",
            "Events parsed, by source",
            ingest_events.clone(),
        );
        let ingest_events_by_dataset = Family::<DatasetLabels, Counter>::default();
        registry.register(
            "ingest_events_by_dataset",
            "Events written durably, by dataset",
            ingest_events_by_dataset.clone(),
        );
        let ingest_dead_letters = Family::<DeadLetterLabels, Counter>::default();
        registry.register(
            "ingest_dead_letters",
            "Records dead-lettered, by source and reason",
            ingest_dead_letters.clone(),
        );
        let spool_batches = Counter::default();
        registry.register(
            "spool_batches",
            "Event batches written durably to the spool",
            spool_batches.clone(),
        );
        let spool_write_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "spool_write_seconds",
            "Time to write one batch durably",
            spool_write_seconds.clone(),
        );
        Arc::new(Self {
            registry,
            http_requests,
            ingest_bytes,
            ingest_events,
            ingest_events_by_dataset,
            ingest_dead_letters,
            spool_batches,
            spool_write_seconds,
        })
    }

    /// All metrics in the OpenMetrics text format.
    pub(crate) fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_group_by_kind() {
        assert_eq!(
            reason_kind("invalid JSON: expected value at line 1 column 2"),
            "invalid JSON"
        );
        assert_eq!(
            reason_kind("record of 2000000 bytes exceeds the 1048576-byte limit"),
            "record of # bytes exceeds the #-byte limit"
        );
    }

    #[test]
    fn renders_registered_metrics() -> Result<(), std::fmt::Error> {
        let m = Metrics::new();
        m.http_requests
            .get_or_create(&HttpLabels {
                route: "/health".into(),
                status: 200,
            })
            .inc();
        let text = m.render()?;
        assert!(
            text.contains("vedette_build_info{version=\"0.1.0\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vedette_http_requests_total{route=\"/health\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"));
        assert!(text.contains("vedette_spool_batches_total 0"), "{text}");
        Ok(())
    }
}
