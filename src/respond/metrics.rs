//! Metrics of the respond stage: deliveries and attempts per responder, attempt
//! latency, deliveries not yet finished.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a responder and an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    /// Responder name.
    pub(crate) responder: String,
    /// `delivered`, `dead_lettered` (deliveries); `ok`, `retry`, `refused` (attempts).
    pub(crate) outcome: String,
}

/// Labels naming a responder.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResponderLabels {
    /// Responder name.
    pub(crate) responder: String,
}

/// The respond stage's metrics.
#[derive(Debug)]
pub(crate) struct RespondMetrics {
    /// `vedette_responder_deliveries_total{responder,outcome}`: finished deliveries.
    pub(crate) deliveries: Family<OutcomeLabels, Counter>,
    /// `vedette_responder_attempts_total{responder,outcome}`: HTTP attempts.
    pub(crate) attempts: Family<OutcomeLabels, Counter>,
    /// `vedette_responder_attempt_seconds{responder}`: time of one attempt.
    pub(crate) attempt_seconds: Family<ResponderLabels, Histogram>,
    /// `vedette_responder_pending`: deliveries read from the bus and not finished.
    pub(crate) pending: Gauge,
}

impl RespondMetrics {
    /// Registers the metrics in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "responder_deliveries",
            "Alert deliveries finished, by responder and outcome (delivered, dead_lettered)",
            deliveries.clone(),
        );
        let attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "responder_attempts",
            "Webhook attempts, by responder and outcome (ok, retry, refused)",
            attempts.clone(),
        );
        let attempt_seconds = Family::<ResponderLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "responder_attempt_seconds",
            "Time of one webhook attempt, sending to the end of the answer",
            attempt_seconds.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "responder_pending",
            "Alert deliveries read from the bus and not yet finished (the outbox)",
            pending.clone(),
        );
        Self {
            deliveries,
            attempts,
            attempt_seconds,
            pending,
        }
    }
}
