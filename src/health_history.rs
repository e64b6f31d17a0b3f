//! The last hour of the health figures (`GET /v1/health/history`, the console's health
//! page): every few seconds the process's own metrics are rendered and the series that
//! tell whether the pipeline keeps up (input by source and dataset, dead letters, the
//! loss ledger, bus lag, store and detection time, alerts) are kept in a ring. The
//! values are the same as `/metrics` shows at that moment, under the same names.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Metric families kept (series whose name starts with one of these).
const KEPT: &[&str] = &[
    "vedette_ingest_events_total",
    "vedette_ingest_events_by_dataset_total",
    "vedette_ingest_dead_letters_total",
    "vedette_ledger_",
    "vedette_bus_consumer_lag_records",
    "vedette_store_seconds_sum",
    "vedette_store_seconds_count",
    "vedette_detect_events_total",
    "vedette_detect_seconds_sum",
    "vedette_detect_seconds_count",
    "vedette_alerts_total",
    "vedette_alerts_suppressed_total",
    "vedette_alerts_folded_total",
    "vedette_syslog_udp_dropped_datagrams",
];

/// Series kept per metric at most: the largest values; the rest are summed into one
/// series whose first label reads `(other)` (labels such as `dataset` come from the
/// input, and must not grow the history without bound).
const MAX_SERIES_PER_METRIC: usize = 50;

/// One sample: its time and every kept series' value.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Sample {
    /// Unix milliseconds.
    pub(crate) t: i64,
    /// Series (`name{labels}` as in `/metrics`) → value.
    pub(crate) values: BTreeMap<String, f64>,
}

/// A ring of samples covering the last hour.
#[derive(Debug)]
pub(crate) struct HealthHistory {
    interval: Duration,
    capacity: usize,
    samples: Mutex<VecDeque<Sample>>,
}

/// The kept series of an OpenMetrics text, at most [`MAX_SERIES_PER_METRIC`] per metric.
pub(crate) fn kept_series(text: &str) -> BTreeMap<String, f64> {
    let mut by_metric: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || !KEPT.iter().any(|k| line.starts_with(k)) {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        if let Ok(v) = value.parse::<f64>() {
            let metric = series.split('{').next().unwrap_or(series);
            by_metric.entry(metric).or_default().push((series, v));
        }
    }
    let mut out = BTreeMap::new();
    for (metric, mut series) in by_metric {
        if series.len() > MAX_SERIES_PER_METRIC {
            series.sort_by(|a, b| b.1.total_cmp(&a.1));
            let rest: f64 = series
                .drain(MAX_SERIES_PER_METRIC - 1..)
                .map(|(_, v)| v)
                .sum();
            let label = series
                .first()
                .and_then(|(name, _)| name.split_once('{'))
                .and_then(|(_, labels)| labels.split_once('='))
                .map_or("other", |(key, _)| key);
            out.insert(format!("{metric}{{{label}=\"(other)\"}}"), rest);
        }
        for (name, v) in series {
            out.insert(name.to_string(), v);
        }
    }
    out
}

impl HealthHistory {
    /// An empty history of one sample every `interval`, an hour long.
    pub(crate) fn new(interval: Duration) -> Arc<Self> {
        let per_hour = 3600 / interval.as_secs().max(1);
        Arc::new(Self {
            interval,
            capacity: usize::try_from(per_hour).unwrap_or(720).max(1),
            samples: Mutex::new(VecDeque::new()),
        })
    }

    /// Seconds between samples.
    pub(crate) fn interval_seconds(&self) -> u64 {
        self.interval.as_secs()
    }

    /// Takes one sample of `metrics` now.
    pub(crate) fn sample(&self, metrics: &Metrics) {
        let text = match metrics.render() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "rendering metrics for the health history failed");
                return;
            }
        };
        let sample = Sample {
            t: chrono::Utc::now().timestamp_millis(),
            values: kept_series(&text),
        };
        if let Ok(mut samples) = self.samples.lock() {
            if samples.len() == self.capacity {
                samples.pop_front();
            }
            samples.push_back(sample);
        }
    }

    /// The samples of the last `minutes` taken after `after_ms`, oldest first.
    pub(crate) fn since(&self, minutes: u64, after_ms: i64) -> Vec<Sample> {
        let cut = chrono::Utc::now().timestamp_millis()
            - i64::try_from(minutes.saturating_mul(60_000)).unwrap_or(i64::MAX);
        self.samples
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|x| x.t >= cut && x.t > after_ms)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Samples `metrics` at once and then every interval, until `cancel`.
    pub(crate) fn spawn(
        self: Arc<Self>,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticks.tick() => self.sample(&metrics),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_health_series_only() {
        let text = "# TYPE vedette_ingest_events counter\n\
                    vedette_ingest_events_total{source=\"http\"} 12\n\
                    vedette_http_requests_total{route=\"/health\",status=\"200\"} 3\n\
                    vedette_ledger_received_total{source=\"a b\"} 7\n\
                    vedette_store_seconds_sum 0.25\n# EOF\n";
        let kept = kept_series(text);
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert_eq!(kept["vedette_ingest_events_total{source=\"http\"}"], 12.0);
        assert_eq!(kept["vedette_ledger_received_total{source=\"a b\"}"], 7.0);
        assert_eq!(kept["vedette_store_seconds_sum"], 0.25);
    }

    #[test]
    fn the_ring_holds_an_hour() {
        let history = HealthHistory::new(Duration::from_secs(600));
        let metrics = Metrics::new();
        for _ in 0..10 {
            history.sample(&metrics);
        }
        assert_eq!(history.since(60, 0).len(), 6);
        let last = history.since(60, 0).last().map_or(0, |s| s.t);
        assert!(history.since(60, last).is_empty());
    }

    #[test]
    fn input_labels_cannot_grow_a_sample_without_bound() {
        let mut text = String::new();
        for i in 0..500 {
            text.push_str(&format!(
                "vedette_ingest_events_by_dataset_total{{dataset=\"zeek.x{i}\"}} {i}\n"
            ));
        }
        text.push_str("vedette_store_seconds_count 4\n");
        let kept = kept_series(&text);
        assert_eq!(kept.len(), MAX_SERIES_PER_METRIC + 1, "{kept:?}");
        assert_eq!(
            kept["vedette_ingest_events_by_dataset_total{dataset=\"zeek.x499\"}"],
            499.0
        );
        let other = kept["vedette_ingest_events_by_dataset_total{dataset=\"(other)\"}"];
        assert_eq!(other, (0..451).map(f64::from).sum::<f64>());
    }
}
