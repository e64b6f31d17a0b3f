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

/// Labels of an alert level.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LevelLabels {
    /// `informational` to `critical`.
    pub(crate) level: String,
}

/// Labels naming a rule.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RuleLabels {
    /// The rule id.
    pub(crate) rule: String,
}

/// Labels naming a kind of alert state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StateLabels {
    /// `dedup_windows`, `risk_entities` or `sources`.
    pub(crate) kind: String,
}

/// Labels of a store table.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TableLabels {
    /// `events`, `alerts` or `dead_letters`.
    pub(crate) table: String,
}

/// Labels of a bus topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TopicLabels {
    /// Topic name.
    pub(crate) topic: String,
}

/// Labels of one consumer group's partition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LagLabels {
    /// Consumer group.
    pub(crate) group: String,
    /// Topic.
    pub(crate) topic: String,
    /// Partition.
    pub(crate) partition: u32,
}

/// The loss ledger: every record received is accounted for exactly once.
#[derive(Debug)]
pub(crate) struct Ledger {
    /// `vedette_ledger_received_total{source}`: records parsed (events + dead letters).
    pub(crate) received: Family<SourceLabels, Counter>,
    /// `vedette_ledger_appended_total{source}`: events appended durably to the bus.
    pub(crate) appended: Family<SourceLabels, Counter>,
    /// `vedette_ledger_dead_lettered_total{source}`: dead letters appended durably.
    pub(crate) dead_lettered: Family<SourceLabels, Counter>,
    /// `vedette_ledger_rejected_total{source}`: records given up (shutdown while the
    /// bus refused them); their senders were not acknowledged.
    pub(crate) rejected: Family<SourceLabels, Counter>,
}

impl Ledger {
    fn register(registry: &mut Registry) -> Self {
        let make = |registry: &mut Registry, name: &str, help: &str| {
            let f = Family::<SourceLabels, Counter>::default();
            registry.register(name, help, f.clone());
            f
        };
        Self {
            received: make(
                registry,
                "ledger_received",
                "Records received and parsed (events and dead letters), by source",
            ),
            appended: make(
                registry,
                "ledger_appended",
                "Events appended durably to the bus, by source",
            ),
            dead_lettered: make(
                registry,
                "ledger_dead_lettered",
                "Dead letters appended durably to the bus, by source",
            ),
            rejected: make(
                registry,
                "ledger_rejected",
                "Records given up without acknowledging their sender, by source",
            ),
        }
    }

    /// Adds `n` to one counter of `source`.
    pub(crate) fn add(family: &Family<SourceLabels, Counter>, source: &str, n: u64) {
        if n > 0 {
            family
                .get_or_create(&SourceLabels {
                    source: source.to_string(),
                })
                .inc_by(n);
        }
    }
}

/// Which embedded-log counter a gauge mirrors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CounterNameLabels {
    counter: String,
}

/// Gauges mirroring the embedded log's counters and consumer lag.
#[derive(Debug)]
struct LogGauges {
    counters: Family<CounterNameLabels, Gauge>,
    lag: Family<LagLabels, Gauge>,
    backlog: Family<TopicLabels, Gauge>,
}

impl LogGauges {
    fn register(registry: &mut Registry) -> Self {
        let counters = Family::<CounterNameLabels, Gauge>::default();
        registry.register(
            "bus_log",
            "Counters of the embedded log since start (appended_records, syncs, recovered_truncated_bytes, retention_unread_records, damaged_records, ...)",
            counters.clone(),
        );
        let lag = Family::<LagLabels, Gauge>::default();
        registry.register(
            "bus_consumer_lag_records",
            "Records served on the embedded log but not committed, by group and partition",
            lag.clone(),
        );
        let backlog = Family::<TopicLabels, Gauge>::default();
        registry.register(
            "bus_backlog_bytes",
            "Bytes of a topic the slowest consumer group of this process has yet to read (inputs are held past bus.embedded.max_backlog_mib)",
            backlog.clone(),
        );
        Self {
            counters,
            lag,
            backlog,
        }
    }

    fn observe(&self, log: &vedette_connectors::bus::embedded::EmbeddedLog) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = log.counters();
        for (name, value) in [
            ("appended_records", &c.appended_records),
            ("appended_bytes", &c.appended_bytes),
            ("syncs", &c.syncs),
            ("recovered_truncated_bytes", &c.recovered_truncated_bytes),
            ("retention_deleted_segments", &c.retention_deleted_segments),
            ("retention_deleted_bytes", &c.retention_deleted_bytes),
            ("retention_unread_records", &c.retention_unread_records),
            ("damaged_records", &c.damaged_records),
            ("recent_hits", &c.recent_hits),
            ("disk_reads", &c.disk_reads),
        ] {
            self.counters
                .get_or_create(&CounterNameLabels {
                    counter: name.into(),
                })
                .set(i64::try_from(value.load(Relaxed)).unwrap_or(i64::MAX));
        }
        let topic = crate::bus_sink::EVENTS_TOPIC;
        if let Ok(bytes) = log.backlog_bytes(topic) {
            self.backlog
                .get_or_create(&TopicLabels {
                    topic: topic.into(),
                })
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        for (group, topic, partition, lag) in log.lags() {
            self.lag
                .get_or_create(&LagLabels {
                    group,
                    topic,
                    partition,
                })
                .set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
    }
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
    /// `vedette_bus_appended_batches_total{topic}`: batches appended durably to the bus.
    pub(crate) bus_appended_batches: Family<TopicLabels, Counter>,
    /// `vedette_bus_append_seconds`: time to append one flush durably.
    pub(crate) bus_append_seconds: Histogram,
    /// The loss ledger, per source: records received (parsed into events or dead
    /// letters) = appended + dead-lettered + rejected.
    pub(crate) ledger: Ledger,
    /// `vedette_bus_log_*`: the embedded log's counters and consumer lag, read at each
    /// scrape (absent on Kafka, whose brokers export their own).
    pub(crate) log: std::sync::OnceLock<Arc<vedette_connectors::bus::embedded::EmbeddedLog>>,
    log_gauges: LogGauges,
    /// `vedette_syslog_udp_dropped_datagrams`: datagrams dropped because the pipeline
    /// was full, read from the listener at each scrape.
    pub(crate) udp_dropped: std::sync::OnceLock<Arc<std::sync::atomic::AtomicU64>>,
    udp_dropped_gauge: Gauge,
    /// `vedette_ledger_stored_total{table}`: rows stored durably (the downstream half of
    /// the loss ledger).
    pub(crate) ledger_stored: Family<TableLabels, Counter>,
    /// `vedette_store_refused_total{table}`: rows the store refused (skipped).
    pub(crate) store_refused: Family<TableLabels, Counter>,
    /// `vedette_store_seconds`: time to store one batch durably.
    pub(crate) store_seconds: Histogram,
    /// `vedette_detect_events_total`: events matched against the rules.
    pub(crate) detect_events: Counter,
    /// `vedette_detect_failed_batches_total`: batches the detector could not read.
    pub(crate) detect_failed_batches: Counter,
    /// `vedette_detect_rebuilt_events_total`: events read back from partitions taken
    /// over to rebuild correlation windows and baselines.
    pub(crate) detect_rebuilt_events: Counter,
    /// `vedette_detect_seconds`: time to match one batch.
    pub(crate) detect_seconds: Histogram,
    /// `vedette_alerts_total{level}`: alerts appended to the alerts topic.
    pub(crate) alerts: Family<LevelLabels, Counter>,
    /// `vedette_alerts_by_rule_total{rule}`: alerts appended, by rule id.
    pub(crate) alerts_by_rule: Family<RuleLabels, Counter>,
    /// `vedette_alerts_suppressed_total`: alerts dropped by false-positive marks.
    pub(crate) alerts_suppressed: Counter,
    /// `vedette_alerts_folded_total`: alerts folded into an earlier one by dedup.
    pub(crate) alerts_folded: Counter,
    /// `vedette_alert_state_entries{kind}`: entries of the alert state (dedup windows,
    /// risk entities, sources).
    pub(crate) alert_state: Family<StateLabels, Gauge>,
    /// `vedette_correlation{kind}`: Sigma correlation counters since start (`late_hits`,
    /// `evicted_groups`, `dropped_hits`, `alerts`).
    pub(crate) correlation: Family<StateLabels, Gauge>,
    /// `vedette_audit_records_total`: audit records stored.
    pub(crate) audit_records: Counter,
    /// `vedette_audit_lost_total`: audit records that could not be stored.
    pub(crate) audit_lost: Counter,
    /// Backpressure on the inputs (`vedette_ingest_held_seconds_total`, ...).
    pub(crate) backpressure: crate::backpressure::BackpressureMetrics,
    /// The respond stage's metrics (`vedette_responder_*`).
    pub(crate) respond: crate::respond::metrics::RespondMetrics,
    /// The store's upkeep (`vedette_store_compaction_*`, `vedette_store_files_*`).
    pub(crate) compaction: crate::compaction_metrics::CompactionMetrics,
    /// The running YARA rules, read at each scrape (`vedette_yara{counter}`).
    pub(crate) yara: std::sync::OnceLock<Arc<crate::yara_setup::LiveYara>>,
    yara_gauges: crate::yara_setup::YaraGauges,
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
        let bus_appended_batches = Family::<TopicLabels, Counter>::default();
        registry.register(
            "bus_appended_batches",
            "Batches appended durably to the bus, by topic",
            bus_appended_batches.clone(),
        );
        let bus_append_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "bus_append_seconds",
            "Time to append one flush (events and dead letters) durably to the bus",
            bus_append_seconds.clone(),
        );
        let ledger = Ledger::register(&mut registry);
        let udp_dropped_gauge = Gauge::default();
        registry.register(
            "syslog_udp_dropped_datagrams",
            "Syslog UDP datagrams dropped because the pipeline was full, since start",
            udp_dropped_gauge.clone(),
        );
        let ledger_stored = Family::<TableLabels, Counter>::default();
        registry.register(
            "ledger_stored",
            "Rows stored durably, by table",
            ledger_stored.clone(),
        );
        let store_refused = Family::<TableLabels, Counter>::default();
        registry.register(
            "store_refused",
            "Rows the store refused and skipped, by table",
            store_refused.clone(),
        );
        let store_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "store_seconds",
            "Time to store one batch durably",
            store_seconds.clone(),
        );
        let detect_events = Counter::default();
        registry.register(
            "detect_events",
            "Events matched against the detection rules",
            detect_events.clone(),
        );
        let detect_failed_batches = Counter::default();
        registry.register(
            "detect_failed_batches",
            "Batches the detector could not read (skipped)",
            detect_failed_batches.clone(),
        );
        let detect_rebuilt_events = Counter::default();
        registry.register(
            "detect_rebuilt_events",
            "Events read back from partitions taken over, to rebuild correlation windows and baselines",
            detect_rebuilt_events.clone(),
        );
        let detect_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "detect_seconds",
            "Time to match one batch against the rules",
            detect_seconds.clone(),
        );
        let alerts = Family::<LevelLabels, Counter>::default();
        registry.register(
            "alerts",
            "Alerts appended to the alerts topic, by level",
            alerts.clone(),
        );
        let alerts_by_rule = Family::<RuleLabels, Counter>::default();
        registry.register(
            "alerts_by_rule",
            "Alerts appended to the alerts topic, by rule id",
            alerts_by_rule.clone(),
        );
        let alerts_suppressed = Counter::default();
        registry.register(
            "alerts_suppressed",
            "Alerts not raised because an analyst marked the same rule and key a false positive",
            alerts_suppressed.clone(),
        );
        let alerts_folded = Counter::default();
        registry.register(
            "alerts_folded",
            "Alerts folded into an earlier alert of the same rule and entity by dedup",
            alerts_folded.clone(),
        );
        let alert_state = Family::<StateLabels, Gauge>::default();
        registry.register(
            "alert_state_entries",
            "Entries of the detection stage's alert state, by kind (dedup_windows, risk_entities, sources)",
            alert_state.clone(),
        );
        let correlation = Family::<StateLabels, Gauge>::default();
        registry.register(
            "correlation",
            "Sigma correlation counters since start, by kind (late_hits: hits older than the lateness, dropped; evicted_groups; dropped_hits; alerts)",
            correlation.clone(),
        );
        let audit_records = Counter::default();
        registry.register(
            "audit_records",
            "Audit records stored",
            audit_records.clone(),
        );
        let audit_lost = Counter::default();
        registry.register(
            "audit_lost",
            "Audit records that could not be stored (store down or queue full)",
            audit_lost.clone(),
        );
        let log_gauges = LogGauges::register(&mut registry);
        let backpressure = crate::backpressure::BackpressureMetrics::register(&mut registry);
        let respond = crate::respond::metrics::RespondMetrics::register(&mut registry);
        let compaction = crate::compaction_metrics::CompactionMetrics::register(&mut registry);
        let yara_gauges = crate::yara_setup::YaraGauges::register(&mut registry);
        Arc::new(Self {
            registry,
            http_requests,
            ingest_bytes,
            ingest_events,
            ingest_events_by_dataset,
            ingest_dead_letters,
            bus_appended_batches,
            bus_append_seconds,
            ledger,
            log: std::sync::OnceLock::new(),
            log_gauges,
            ledger_stored,
            store_refused,
            store_seconds,
            udp_dropped: std::sync::OnceLock::new(),
            udp_dropped_gauge,
            detect_events,
            detect_failed_batches,
            detect_rebuilt_events,
            detect_seconds,
            alerts,
            alerts_by_rule,
            alerts_suppressed,
            alerts_folded,
            alert_state,
            correlation,
            audit_records,
            audit_lost,
            backpressure,
            respond,
            compaction,
            yara: std::sync::OnceLock::new(),
            yara_gauges,
        })
    }

    /// All metrics in the OpenMetrics text format.
    pub(crate) fn render(&self) -> Result<String, std::fmt::Error> {
        if let Some(log) = self.log.get() {
            self.log_gauges.observe(log);
        }
        if let Some(yara) = self.yara.get() {
            self.yara_gauges.observe(yara);
        }
        if let Some(dropped) = self.udp_dropped.get() {
            let n = dropped.load(std::sync::atomic::Ordering::Relaxed);
            self.udp_dropped_gauge
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
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
        assert!(text.contains("vedette_bus_append_seconds"), "{text}");
        Ok(())
    }
}
