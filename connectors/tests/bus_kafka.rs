//! The Kafka bus: the conformance suite against a real Kafka-protocol broker (tansu,
//! started by `deploy/local/up.sh`), a broker restart mid-stream, and broker faults
//! that only librdkafka's mock cluster can produce on demand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::bus_suite::{self, BoxFut, BusUnderTest};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use vedette_connectors::bus::kafka::KafkaBus;
use vedette_core::config::KafkaConfig;
use vedette_core::traits::Bus;

/// The broker address `deploy/local/up.sh` wrote to services.env.
fn brokers() -> String {
    std::env::var("VEDETTE_KAFKA_BROKERS").expect(
        "VEDETTE_KAFKA_BROKERS is not set: start the test services with deploy/local/up.sh \
         (scripts/test.sh does) and export the variables of its services.env",
    )
}

/// A name no other test run uses.
fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{tag}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn config(brokers: &str) -> KafkaConfig {
    KafkaConfig {
        partitions: 4,
        replication_factor: 1,
        group: unique("g"),
        topic_prefix: unique("t"),
        ..KafkaConfig::new(vec![brokers.to_string()])
    }
}

struct Kafka {
    config: KafkaConfig,
}

impl BusUnderTest for Kafka {
    fn open(&self) -> BoxFut<'_, Arc<dyn Bus>> {
        Box::pin(async move {
            Arc::new(
                KafkaBus::connect(self.config.clone(), "host.name")
                    .await
                    .unwrap(),
            ) as Arc<dyn Bus>
        })
    }

    fn restart(&self) -> BoxFut<'_, ()> {
        // Kafka clients keep nothing durable themselves: new clients are a restart.
        Box::pin(async {})
    }

    fn topic(&self, tag: &str) -> String {
        tag.to_string()
    }

    fn patience(&self) -> Duration {
        Duration::from_secs(60)
    }
}

fn on_tansu() -> Kafka {
    Kafka {
        config: config(&brokers()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_append_then_consume() {
    bus_suite::append_then_consume(&on_tansu()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_ordering_within_partition() {
    bus_suite::ordering_within_partition(&on_tansu()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_commit_and_resume_after_restart() {
    bus_suite::commit_and_resume_after_restart(&on_tansu()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_two_consumers_split_partitions() {
    bus_suite::two_consumers_split_partitions(&on_tansu()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_brokers_fail_clearly_after_retries() {
    let mut c = config("127.0.0.1:1");
    c.properties
        .insert("socket.connection.setup.timeout.ms".into(), "1000".into());
    let started = std::time::Instant::now();
    let err = KafkaBus::connect(c, "host.name").await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot reach the brokers 127.0.0.1:1"),
        "{text}"
    );
    assert!(err.is_retryable());
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "it retried with backoff"
    );
}

/// A tansu broker of this test's own, so it can be stopped and started.
struct OwnBroker {
    bin: String,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnBroker {
    fn start(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            // tansu reads the SQLite path relative to its working folder.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("tansu did not listen on {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free loopback port below Linux's ephemeral range (32768 and up): while the broker
/// is down, no client socket is handed it, so nothing else (not even a client
/// connecting to itself) holds it when the broker comes back.
fn port_outside_ephemeral_range() -> u16 {
    let start = std::process::id() % 12_000;
    (0..12_000)
        .map(|i| 20_000 + ((start + i) % 12_000) as u16)
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("no free loopback port in 20000..32000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_the_broker_restarts() {
    let bin = std::env::var("VEDETTE_TANSU_BIN")
        .expect("VEDETTE_TANSU_BIN is not set: start the test services with deploy/local/up.sh");
    let port = port_outside_ephemeral_range();
    let mut broker = OwnBroker {
        bin,
        port,
        dir: tempfile::tempdir().unwrap(),
        child: None,
    };
    broker.start();
    let mut c = config(&format!("127.0.0.1:{port}"));
    c.properties
        .insert("message.timeout.ms".into(), "5000".into());
    let bus = Arc::new(KafkaBus::connect(c.clone(), "host.name").await.unwrap());
    let writer = bus.clone();
    let producing = tokio::spawn(async move {
        let mut acked = BTreeSet::new();
        let mut failed = 0;
        for i in 0..60 {
            let tag = format!("b{i:03}");
            match writer
                .append("events", &bus_suite::batch(&tag, 20, 4))
                .await
            {
                Ok(_) => {
                    acked.insert(tag);
                }
                Err(e) => {
                    assert!(e.is_retryable(), "{e}");
                    failed += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (acked, failed)
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    broker.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    broker.start();
    let (acked, failed) = producing.await.unwrap();
    assert!(
        acked.len() >= 30,
        "only {} of 60 appends acknowledged ({failed} failed)",
        acked.len()
    );
    let bus = KafkaBus::connect(c, "host.name").await.unwrap();
    let mut consumer = bus.subscribe("events", "check").await.unwrap();
    let mut got = bus_suite::Received::default();
    bus_suite::consume(
        &mut consumer,
        acked.len() * 20,
        Duration::from_secs(60),
        &mut got,
    )
    .await;
    let seen: BTreeSet<String> = got
        .ids()
        .iter()
        .map(|id| id.split('-').next().unwrap().to_string())
        .collect();
    let lost: Vec<&String> = acked.difference(&seen).collect();
    assert!(lost.is_empty(), "acknowledged batches lost: {lost:?}");
}

fn mock_config(
    cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
) -> KafkaConfig {
    config(&cluster.bootstrap_servers())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_errors_and_leader_moves_are_retried_without_duplicates() {
    let cluster = MockCluster::new(3).unwrap();
    let c = mock_config(&cluster);
    let topic = format!("{}.events", c.topic_prefix);
    cluster.create_topic(&topic, 4, 3).unwrap();
    let bus = KafkaBus::connect(c, "host.name").await.unwrap();
    bus.append("events", &bus_suite::batch("warm", 8, 4))
        .await
        .unwrap();
    // Transient errors on the next produce requests: the idempotent producer retries.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        ],
    );
    bus.append("events", &bus_suite::batch("faulty", 40, 4))
        .await
        .unwrap();
    // Leaders move to another broker mid-stream.
    for p in 0..4 {
        cluster.partition_leader(&topic, p, Some(2)).unwrap();
    }
    bus.append("events", &bus_suite::batch("moved", 40, 4))
        .await
        .unwrap();
    let mut consumer = bus.subscribe("events", "check").await.unwrap();
    let mut got = bus_suite::Received::default();
    bus_suite::consume(&mut consumer, 88, Duration::from_secs(30), &mut got).await;
    let mut ids = got.ids();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), total), (88, 88), "every event once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_stays_down_fails_the_append_with_a_retryable_error() {
    let cluster = MockCluster::new(1).unwrap();
    let mut c = mock_config(&cluster);
    c.properties
        .insert("message.timeout.ms".into(), "2000".into());
    let topic = format!("{}.events", c.topic_prefix);
    cluster.create_topic(&topic, 2, 1).unwrap();
    let bus = KafkaBus::connect(c, "host.name").await.unwrap();
    bus.append("events", &bus_suite::batch("up", 4, 2))
        .await
        .unwrap();
    cluster.broker_down(1).unwrap();
    let err = bus
        .append("events", &bus_suite::batch("down", 4, 2))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_message_size_is_split_and_arrives_whole() {
    let mut c = config(&brokers());
    c.max_message_bytes = 64 * 1024;
    let bus = KafkaBus::connect(c, "host.name").await.unwrap();
    // One host: one partition, several messages.
    let big = bus_suite::batch("big", 3000, 1);
    let positions = bus.append("events", &big).await.unwrap();
    assert!(positions.len() >= 3, "{} messages", positions.len());
    let mut consumer = bus.subscribe("events", "check").await.unwrap();
    let mut got = bus_suite::Received::default();
    bus_suite::consume(&mut consumer, 3000, Duration::from_secs(60), &mut got).await;
    assert_eq!(got.ids(), bus_suite::ids(&big), "every row, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_group_processed_of_a_partition_is_read_back_up_to_its_commit() {
    let bus = KafkaBus::connect(config(&brokers()), "host.name")
        .await
        .unwrap();
    // One host: one partition, one message per batch.
    let parts: Vec<_> = (0..3)
        .map(|i| bus_suite::batch(&format!("part{i}"), 10, 1))
        .collect();
    let mut positions = Vec::new();
    for part in &parts {
        positions.extend(bus.append("events", part).await.unwrap());
    }
    let partition = positions[0].partition;
    let mut consumer = bus.subscribe("events", "detect").await.unwrap();
    // Nothing committed yet: nothing processed.
    let none = consumer
        .read_processed(partition, None, None, 1000)
        .await
        .unwrap();
    assert!(none.is_empty(), "{} batches before any commit", none.len());
    let mut got = bus_suite::Received::default();
    bus_suite::consume(&mut consumer, 30, Duration::from_secs(60), &mut got).await;
    assert_eq!(got.ids().len(), 30);
    // The first two are processed; the third was read, not committed.
    consumer.commit(&positions[1]).await.unwrap();

    let ids = |batches: &[vedette_core::batch::EventBatch]| -> Vec<String> {
        batches.iter().flat_map(bus_suite::ids).collect()
    };
    let processed = consumer
        .read_processed(partition, None, None, 1000)
        .await
        .unwrap();
    let want: Vec<String> = parts[..2].iter().flat_map(bus_suite::ids).collect();
    assert_eq!(ids(&processed), want, "the committed records, in order");
    assert_eq!(
        processed[1].position.as_ref().map(|p| p.offset),
        Some(positions[1].offset),
        "positions set"
    );
    // From an offset on.
    let from = consumer
        .read_processed(partition, Some(positions[1].offset), None, 1000)
        .await
        .unwrap();
    assert_eq!(ids(&from), bus_suite::ids(&parts[1]));
    // Appended since a time: all of them an hour ago, none an hour from now.
    let now = chrono::Utc::now().timestamp_millis();
    let recent = consumer
        .read_processed(partition, None, Some(now - 3_600_000), 1000)
        .await
        .unwrap();
    assert_eq!(ids(&recent), want);
    let future = consumer
        .read_processed(partition, None, Some(now + 3_600_000), 1000)
        .await
        .unwrap();
    assert!(
        future.is_empty(),
        "{} batches from the future",
        future.len()
    );
    // From an offset and since a time: the later of the two.
    let both = consumer
        .read_processed(
            partition,
            Some(positions[1].offset),
            Some(now - 3_600_000),
            1000,
        )
        .await
        .unwrap();
    assert_eq!(ids(&both), bus_suite::ids(&parts[1]));
    // From beyond the commit: nothing.
    let beyond = consumer
        .read_processed(partition, Some(positions[2].offset), None, 1000)
        .await
        .unwrap();
    assert!(
        beyond.is_empty(),
        "{} batches past the commit",
        beyond.len()
    );
    // A bound keeps the newest.
    let bounded = consumer
        .read_processed(partition, None, None, 15)
        .await
        .unwrap();
    assert_eq!(ids(&bounded), bus_suite::ids(&parts[1]));
    // Another partition of the topic: nothing processed.
    let other = consumer
        .read_processed((partition + 1) % 4, None, None, 1000)
        .await
        .unwrap();
    assert!(other.is_empty());
}
