//! The process's Prometheus metrics: one typed metric per thing counted.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

/// Every metric of the process, registered once.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// `vedette_http_requests_total{route,status}`.
    pub(crate) http_requests: Family<HttpLabels, Counter>,
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
        Arc::new(Self {
            registry,
            http_requests,
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
        Ok(())
    }
}
