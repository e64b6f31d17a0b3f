//! Backpressure from the bus's consumers to the inputs. When the slowest consumer group
//! of this process (detection, storage) is more than `bus.embedded.max_backlog_mib`
//! behind the head of topic `events`, the inputs wait instead of appending: the ingest
//! stage stops reading chunks (TCP reads pause, file reads wait, UDP datagrams that find
//! the pipeline's queue full are dropped and counted), and HTTP ingest holds a request up
//! to a second, then answers 429 with `Retry-After`. A group that has read nothing for
//! 30 s (its store down, say) stops holding the inputs: the log keeps its backlog, as
//! retention allows, rather than one stalled consumer stopping every input. A pipeline at capacity gains nothing
//! from a longer queue but alert latency, and consumers far behind the head read their
//! records back from disk instead of from the memory of recent batches, which costs the
//! CPU they lack.
//!
//! On Kafka the broker holds the backlog of consumers on every node: the bus reports
//! none and the inputs slow down only when appends themselves wait.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vedette_core::traits::Bus;

use crate::bus_sink::EVENTS_TOPIC;

/// How often a held input looks at the backlog again.
const RECHECK: Duration = Duration::from_millis(10);

/// Metrics of backpressure.
#[derive(Debug)]
pub(crate) struct BackpressureMetrics {
    /// `vedette_ingest_held_seconds_total`: time inputs waited for consumers, summed
    /// over the inputs held (two requests held a second count two).
    pub(crate) held_seconds: Counter<f64, AtomicU64>,
    /// `vedette_ingest_throttled_requests_total`: HTTP ingest requests answered 429.
    pub(crate) throttled_requests: Counter,
}

impl BackpressureMetrics {
    /// Registers the metrics in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let held_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "ingest_held_seconds",
            "Time inputs waited because a consumer of the events topic fell behind",
            held_seconds.clone(),
        );
        let throttled_requests = Counter::default();
        registry.register(
            "ingest_throttled_requests",
            "HTTP ingest requests answered 429 because a consumer fell behind",
            throttled_requests.clone(),
        );
        Self {
            held_seconds,
            throttled_requests,
        }
    }
}

/// The inputs' view of the consumers' backlog on topic `events`.
pub(crate) struct Backpressure {
    bus: Arc<dyn Bus>,
    /// Bytes of backlog above which inputs wait; `None`: never.
    limit: Option<u64>,
    metrics: Arc<crate::metrics::Metrics>,
    /// The last answer and when it was read: many held requests share one reading of
    /// the log per [`RECHECK`].
    last: std::sync::Mutex<Option<(Instant, bool)>>,
    /// When a failure to read the backlog was last logged.
    warned: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Backpressure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backpressure")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Backpressure {
    /// Backpressure on `bus` at `limit` bytes of backlog (`None` or 0: off).
    pub(crate) fn new(
        bus: Arc<dyn Bus>,
        limit: Option<u64>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            bus,
            limit: limit.filter(|&l| l > 0),
            metrics,
            last: std::sync::Mutex::new(None),
            warned: std::sync::Mutex::new(None),
        }
    }

    /// Whether the slowest consumer is over the limit. A bus that cannot tell, or fails
    /// to, is not: an append then meets the failure itself.
    pub(crate) fn over(&self) -> bool {
        let Some(limit) = self.limit else {
            return false;
        };
        let now = Instant::now();
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, over)) = *last {
            if now.duration_since(at) < RECHECK {
                return over;
            }
        }
        let over = match self.bus.backlog_bytes(EVENTS_TOPIC) {
            Ok(Some(backlog)) => backlog > limit,
            Ok(None) => false,
            Err(e) => {
                let mut warned = self
                    .warned
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if warned.is_none_or(|w| now.duration_since(w) >= Duration::from_secs(10)) {
                    tracing::warn!(error = %e, "could not read the consumers' backlog");
                    *warned = Some(now);
                }
                false
            }
        };
        *last = Some((now, over));
        over
    }

    /// Waits while the slowest consumer is over the limit: until it is not (true), or
    /// `within` passed or `cancel` fired (false, still over).
    pub(crate) async fn wait_for_room(
        &self,
        within: Option<Duration>,
        cancel: &CancellationToken,
    ) -> bool {
        if !self.over() {
            return true;
        }
        let started = Instant::now();
        let deadline = within.map(|w| started + w);
        tracing::debug!("inputs held: a consumer of the events topic fell behind");
        let mut warn_at = started + Duration::from_secs(10);
        let room = loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break false;
            }
            if now >= warn_at {
                tracing::warn!(
                    held_s = started.elapsed().as_secs(),
                    "inputs still held: a consumer of the events topic is behind (see vedette_bus_backlog_bytes)"
                );
                warn_at = now + Duration::from_secs(10);
            }
            tokio::select! {
                () = cancel.cancelled() => break false,
                () = tokio::time::sleep(RECHECK) => {}
            }
            if !self.over() {
                break true;
            }
        };
        self.metrics
            .backpressure
            .held_seconds
            .inc_by(started.elapsed().as_secs_f64());
        room
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_connectors::bus::embedded::{EmbeddedBus, EmbeddedLog, LogOptions};
    use vedette_core::batch::EventBatch;
    use vedette_core::event::{Event, EventBatchBuilder};
    use vedette_core::traits::BusDelivery;

    fn batch(n: usize) -> EventBatch {
        let mut b = EventBatchBuilder::new();
        for i in 0..n {
            b.append(&Event {
                id: format!("e-{i}"),
                dataset: "test".into(),
                host_name: Some(format!("host-{}", i % 3)),
                message: Some("x".repeat(200)),
                timestamp_ms: 1_700_000_000_000 + i as i64,
                ..Event::default()
            });
        }
        EventBatch::new(b.finish().unwrap(), "test", "acme", 1_700_000_000_000)
    }

    #[tokio::test]
    async fn inputs_wait_while_a_consumer_is_behind_and_go_on_once_it_reads() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), LogOptions::default()).unwrap();
        let bus: Arc<dyn Bus> = Arc::new(EmbeddedBus::new(log, "host.name"));
        let metrics = crate::metrics::Metrics::new();
        let pressure = Backpressure::new(bus.clone(), Some(10_000), metrics.clone());
        let never = CancellationToken::new();
        // Answers are kept for RECHECK: wait that long after each change.
        let settle = || tokio::time::sleep(RECHECK * 2);
        // Nobody reads yet: no backlog, no wait.
        bus.append(EVENTS_TOPIC, &batch(500)).await.unwrap();
        assert!(!pressure.over());
        let mut consumer = bus.subscribe(EVENTS_TOPIC, "detect").await.unwrap();
        settle().await;
        assert!(pressure.over(), "the new group has all of it to read");
        let held = Duration::from_millis(60);
        assert!(!pressure.wait_for_room(Some(held), &never).await);
        assert!(metrics.backpressure.held_seconds.get() >= held.as_secs_f64());

        // Cancelling ends the wait too.
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert!(!pressure.wait_for_room(None, &cancel).await);

        // The consumer reads everything meanwhile: the held input goes on.
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            while let Some(d) = consumer.poll(Duration::from_millis(200)).await.unwrap() {
                if let BusDelivery::Batch(b) = d {
                    consumer.commit(b.position.as_ref().unwrap()).await.unwrap();
                }
            }
            consumer
        });
        assert!(pressure.wait_for_room(None, &never).await);
        settle().await;
        assert!(!pressure.over());
        reader.await.unwrap().close().await.unwrap();

        // A group that has everything to read again: over, unless backpressure is off
        // (no limit, or 0).
        let late = bus.subscribe(EVENTS_TOPIC, "store").await.unwrap();
        settle().await;
        assert!(pressure.over());
        assert!(!Backpressure::new(bus.clone(), None, metrics.clone()).over());
        assert!(!Backpressure::new(bus.clone(), Some(0), metrics).over());
        late.close().await.unwrap();
        settle().await;
        assert!(!pressure.over());
    }
}
