//! Topics on Kafka: created with the configured partitions, replicas and retention if
//! missing; their partition count read from the cluster's metadata.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use vedette_core::config::KafkaConfig;
use vedette_core::CoreError;

use super::kafka_error;

/// Time allowed for one metadata or admin request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates `topic` if it does not exist yet.
pub(crate) async fn ensure_topic(
    admin: &AdminClient<DefaultClientContext>,
    config: &KafkaConfig,
    topic: &str,
) -> Result<(), CoreError> {
    let retention_ms = (config.retention_hours.saturating_mul(3_600_000)).to_string();
    let new = NewTopic::new(
        topic,
        config.partitions as i32,
        TopicReplication::Fixed(i32::from(config.replication_factor)),
    )
    .set("retention.ms", &retention_ms);
    let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let results = match admin.create_topics([&new], &options).await {
        Ok(results) => results,
        // A cluster that refuses topic creation may still have the topic.
        Err(e) if partition_count(admin, topic).unwrap_or(0) > 0 => {
            tracing::warn!(topic, error = %e, "kafka: cannot create topics; using the existing one");
            return Ok(());
        }
        Err(e) => return Err(kafka_error(&format!("creating topic {topic}"), e)),
    };
    for result in results {
        match result {
            Ok(_) => tracing::info!(
                topic,
                partitions = config.partitions,
                "kafka: created topic"
            ),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(CoreError::External {
                    service: "kafka".into(),
                    message: format!("creating topic {name}: {code}"),
                    retryable: false,
                })
            }
        }
    }
    Ok(())
}

/// Number of partitions of `topic` per the cluster's metadata (0 if it has none yet).
pub(crate) fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<u32, CoreError> {
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(|e| kafka_error(&format!("reading metadata of {topic}"), e))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len() as u32))
}
