//! [`KafkaBus`]: the [`Bus`] trait over a Kafka cluster (rdkafka), for deployments that
//! outgrow one machine. Several `vedette` processes share the work as one consumer
//! group per stage.
//!
//! - A message is one Arrow IPC stream (one record batch); a batch over
//!   `max_message_bytes` is split by rows. Headers carry the schema version, tenant,
//!   source, dataset and ingest time.
//! - Rows are sent to partitions chosen by Vedette (see `bus::partitioning`), so both
//!   buses lay a topic out the same way.
//! - The producer is idempotent with `acks=all`: an append returns once every part is
//!   acknowledged by all in-sync replicas; librdkafka retries with backoff up to
//!   `message.timeout.ms`, then the append fails with a retryable error.
//! - Consumers never commit on their own: the stage commits a position once the work
//!   downstream is durable. On a rebalance the revoked partitions are reported (and
//!   commits on them refused), so what was read but not committed is read again by the
//!   new owner: at-least-once.
//! - Topics `<topic_prefix>.<topic>` are created with the configured partitions,
//!   replicas and `retention.ms` if missing.
//!
//! TLS and SASL to the brokers go through librdkafka's own settings
//! (`[bus.kafka.properties]`); this build links librdkafka without OpenSSL, so brokers
//! are reached over plain TCP on a trusted network.

mod client_config;
mod consumer;
mod headers;
mod replay;
mod stall_watch;
mod topics;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::try_join_all;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use vedette_core::batch::{BusPosition, EventBatch};
use vedette_core::config::KafkaConfig;
use vedette_core::traits::{Bus, BusConsumer};
use vedette_core::CoreError;

pub use consumer::KafkaConsumer;

use crate::bus::codec::{self, BatchHeader};
use crate::bus::lock;
use crate::bus::partitioning::Partitioner;

/// Attempts to reach the cluster at start before giving up.
const CONNECT_ATTEMPTS: u32 = 5;

/// Maps an rdkafka error to Vedette's, saying whether trying again may help.
pub(crate) fn kafka_error(context: &str, e: KafkaError) -> CoreError {
    let retryable = match e.rdkafka_error_code() {
        Some(code) => matches!(
            code,
            RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotEnoughReplicas
                | RDKafkaErrorCode::NotEnoughReplicasAfterAppend
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::QueueFull
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::RebalanceInProgress
        ),
        None => false,
    };
    CoreError::External {
        service: "kafka".into(),
        message: format!("{context}: {e}"),
        retryable,
    }
}

/// The Kafka cluster as a [`Bus`].
#[derive(Clone)]
pub struct KafkaBus {
    config: KafkaConfig,
    key: String,
    producer: FutureProducer,
    admin: Arc<AdminClient<DefaultClientContext>>,
    partitioners: Arc<Mutex<HashMap<String, Arc<Partitioner>>>>,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("brokers", &self.config.brokers)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Connects to the cluster: checks that a broker answers (retrying with backoff),
    /// then returns a bus partitioning rows by column `partition_key`.
    pub async fn connect(
        config: KafkaConfig,
        partition_key: impl Into<String>,
    ) -> Result<Self, CoreError> {
        let producer: FutureProducer = client_config::producer(&config)
            .create()
            .map_err(|e| kafka_error("creating the producer", e))?;
        let admin: AdminClient<DefaultClientContext> = client_config::admin(&config)
            .create()
            .map_err(|e| kafka_error("creating the admin client", e))?;
        let admin = Arc::new(admin);
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=CONNECT_ATTEMPTS {
            let probe = admin.clone();
            let reached = tokio::task::spawn_blocking(move || {
                probe.inner().fetch_metadata(None, Duration::from_secs(5))
            })
            .await
            .map_err(|e| CoreError::Internal(format!("kafka metadata task: {e}")))?;
            match reached {
                Ok(_) => break,
                Err(e) if attempt == CONNECT_ATTEMPTS => {
                    return Err(CoreError::External {
                        service: "kafka".into(),
                        message: format!(
                            "cannot reach the brokers {} after {CONNECT_ATTEMPTS} attempts: {e}",
                            config.brokers.join(",")
                        ),
                        retryable: true,
                    })
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, brokers = %config.brokers.join(","), "kafka: brokers not reachable yet, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(8));
                }
            }
        }
        Ok(Self {
            config,
            key: partition_key.into(),
            producer,
            admin,
            partitioners: Arc::default(),
        })
    }

    /// The Kafka name of a Vedette topic.
    pub fn topic_name(&self, topic: &str) -> String {
        format!("{}.{topic}", self.config.topic_prefix)
    }

    /// The Kafka name of a Vedette consumer group.
    pub fn group_name(&self, group: &str) -> String {
        format!("{}.{group}", self.config.group)
    }

    /// Creates the topic if missing; returns its partitioner.
    async fn partitioner(&self, topic: &str) -> Result<Arc<Partitioner>, CoreError> {
        if let Some(p) = lock(&self.partitioners).get(topic) {
            return Ok(p.clone());
        }
        let name = self.topic_name(topic);
        topics::ensure_topic(&self.admin, &self.config, &name).await?;
        let mut count = 0;
        for _ in 0..50 {
            let admin = self.admin.clone();
            let n = name.clone();
            count = tokio::task::spawn_blocking(move || topics::partition_count(&admin, &n))
                .await
                .map_err(|e| CoreError::Internal(format!("kafka metadata task: {e}")))??;
            if count > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if count == 0 {
            return Err(CoreError::External {
                service: "kafka".into(),
                message: format!("topic {name} has no partitions after creation"),
                retryable: true,
            });
        }
        let p = Arc::new(Partitioner::new(self.key.clone(), count));
        lock(&self.partitioners).insert(topic.to_string(), p.clone());
        Ok(p)
    }
}

#[async_trait]
impl Bus for KafkaBus {
    async fn append(&self, topic: &str, batch: &EventBatch) -> Result<Vec<BusPosition>, CoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let partitioner = self.partitioner(topic).await?;
        let name = self.topic_name(topic);
        let max = self.config.max_message_bytes;
        let b = batch.clone();
        let parts = tokio::task::spawn_blocking(move || {
            let mut parts = Vec::new();
            for (partition, records) in partitioner.split(&b.records)? {
                let part = EventBatch {
                    records,
                    ..b.clone()
                };
                let header = BatchHeader::of(&part);
                for payload in codec::encode_to_fit(&part.records, max, None)? {
                    parts.push((partition, header.clone(), payload));
                }
            }
            Ok::<_, CoreError>(parts)
        })
        .await
        .map_err(|e| CoreError::Internal(format!("encoding task: {e}")))??;
        let sends = parts.iter().map(|(partition, header, payload)| {
            let record = FutureRecord::<(), _>::to(&name)
                .partition(*partition as i32)
                .payload(payload.as_slice())
                .headers(headers::to_headers(header));
            let name = &name;
            async move {
                match self
                    .producer
                    .send(record, Timeout::After(Duration::from_secs(30)))
                    .await
                {
                    Ok(delivery) => Ok(BusPosition {
                        topic: topic.to_string(),
                        partition: delivery.partition as u32,
                        offset: delivery.offset as u64,
                    }),
                    Err((e, _)) => Err(kafka_error(&format!("producing to {name}"), e)),
                }
            }
        });
        try_join_all(sends).await
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn BusConsumer>, CoreError> {
        self.partitioner(topic).await?;
        let consumer = KafkaConsumer::new(
            &self.config,
            topic,
            &self.topic_name(topic),
            &self.group_name(group),
        )?;
        Ok(Box::new(consumer))
    }
}
