//! Opening the bus `vedette run` uses: the embedded log under the data folder (the
//! default), or Kafka when `[bus] kind = "kafka"`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vedette_connectors::bus::embedded::{
    EmbeddedBus, EmbeddedLog, LogOptions, Retention, SyncPolicy,
};
use vedette_connectors::bus::kafka::KafkaBus;
use vedette_core::config::{BusConfig, BusKind};
use vedette_core::traits::Bus;

use crate::metrics::Metrics;

/// How often retention runs on the embedded log.
const RETENTION_EVERY: Duration = Duration::from_secs(300);

/// The embedded log's settings from `[bus.embedded]`.
fn log_options(config: &BusConfig) -> LogOptions {
    let e = &config.embedded;
    let hours = |h: u64| i64::try_from(h.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
    LogOptions {
        partitions: e.partitions,
        segment_bytes: e.segment_bytes,
        sync: match e.fsync_interval_ms {
            0 => SyncPolicy::EveryAppend,
            ms => SyncPolicy::Interval(Duration::from_millis(ms)),
        },
        retention: Retention {
            max_age_ms: hours(e.retention_hours),
            max_bytes: e.retention_bytes,
            hard_max_age_ms: hours(e.retention_max_hours),
        },
        recent_bytes: usize::try_from(e.recent_mib.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
        compression: e.compression,
    }
}

/// The bus of `config`: for the embedded log, also its handle (metrics, retention,
/// shutdown) and a task applying retention until `cancel` fires.
pub(crate) async fn open_bus(
    config: &BusConfig,
    data_dir: &std::path::Path,
    metrics: &Metrics,
    cancel: &CancellationToken,
) -> anyhow::Result<(Arc<dyn Bus>, Option<Arc<EmbeddedLog>>)> {
    match config.kind {
        BusKind::Embedded => {
            let root = data_dir.join("bus");
            let log = EmbeddedLog::open(&root, log_options(config))
                .with_context(|| format!("cannot open the embedded log in {}", root.display()))?;
            let _ = metrics.log.set(log.clone());
            let (retained, cancel) = (log.clone(), cancel.clone());
            tokio::spawn(async move {
                loop {
                    let now = chrono::Utc::now().timestamp_millis();
                    let log = retained.clone();
                    match tokio::task::spawn_blocking(move || log.apply_retention(now)).await {
                        Ok(Err(e)) => tracing::error!(error = %e, "embedded log retention failed"),
                        Err(e) => tracing::error!(error = %e, "embedded log retention task failed"),
                        Ok(Ok(())) => {}
                    }
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(RETENTION_EVERY) => {}
                    }
                }
            });
            let bus = EmbeddedBus::new(log.clone(), config.partition_key.clone());
            Ok((Arc::new(bus), Some(log)))
        }
        BusKind::Kafka => {
            let kafka = config
                .kafka
                .clone()
                .context("bus.kafka: required when bus.kind = \"kafka\"")?;
            let bus = KafkaBus::connect(kafka, config.partition_key.clone())
                .await
                .context("cannot start the Kafka bus")?;
            Ok((Arc::new(bus), None))
        }
    }
}
