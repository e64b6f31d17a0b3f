//! The conformance suite of the `Bus` trait: the same checks run against every
//! implementation (the embedded log and Kafka), through a [`BusUnderTest`].

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::AsArray;
use vedette_core::batch::{BusPosition, EventBatch};
use vedette_core::event::{Event, EventBatchBuilder};
use vedette_core::traits::{Bus, BusConsumer, BusDelivery};

/// A boxed future, for the factory's async methods.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How the suite reaches one implementation.
pub trait BusUnderTest: Send + Sync {
    /// A bus client. Calling it again after [`Self::restart`] gives a client of the
    /// restarted bus.
    fn open(&self) -> BoxFut<'_, Arc<dyn Bus>>;
    /// Drops every client's state that lives in memory and reopens from durable state
    /// (the embedded log is closed and reopened; Kafka clients are recreated).
    fn restart(&self) -> BoxFut<'_, ()>;
    /// A topic name no other test uses.
    fn topic(&self, tag: &str) -> String;
    /// How long to wait for deliveries (a Kafka group takes seconds to settle).
    fn patience(&self) -> Duration;
}

/// Events `tag-0 .. tag-(n-1)` spread over `hosts` hosts.
pub fn batch(tag: &str, n: usize, hosts: usize) -> EventBatch {
    let mut b = EventBatchBuilder::new();
    for i in 0..n {
        b.append(&Event {
            id: format!("{tag}-{i}"),
            dataset: "test".into(),
            host_name: Some(format!("host-{}", i % hosts.max(1))),
            timestamp_ms: 1_700_000_000_000 + i as i64,
            ..Event::default()
        });
    }
    EventBatch::new(b.finish().unwrap(), "suite", "acme", 1_700_000_000_000)
}

/// Event ids of a batch, in row order.
pub fn ids(batch: &EventBatch) -> Vec<String> {
    batch
        .records
        .column_by_name("event.id")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect()
}

/// What a consumer received.
#[derive(Debug, Default)]
pub struct Received {
    /// Batches in delivery order.
    pub batches: Vec<EventBatch>,
    /// Partitions owned at the end.
    pub owned: BTreeSet<u32>,
}

impl Received {
    /// Every event id received, in order.
    pub fn ids(&self) -> Vec<String> {
        self.batches.iter().flat_map(ids).collect()
    }
}

/// Polls until `want` events arrived or patience ran out.
pub async fn consume(
    consumer: &mut Box<dyn BusConsumer>,
    want: usize,
    patience: Duration,
    received: &mut Received,
) {
    let deadline = tokio::time::Instant::now() + patience;
    while received.ids().len() < want && tokio::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)).await.unwrap() {
            Some(BusDelivery::Batch(b)) => received.batches.push(b),
            Some(BusDelivery::Assigned(ps)) => received.owned.extend(ps),
            Some(BusDelivery::Revoked(ps)) => {
                for p in ps {
                    received.owned.remove(&p);
                }
            }
            None => {}
        }
    }
}

/// Every appended event is delivered to a group, with the positions append returned.
pub async fn append_then_consume(t: &dyn BusUnderTest) {
    let bus = t.open().await;
    let topic = t.topic("append");
    let mut positions = Vec::new();
    for round in 0..5 {
        positions.extend(
            bus.append(&topic, &batch(&format!("r{round}"), 100, 7))
                .await
                .unwrap(),
        );
    }
    assert!(positions.len() >= 5);
    let mut c = bus.subscribe(&topic, "g1").await.unwrap();
    let mut got = Received::default();
    consume(&mut c, 500, t.patience(), &mut got).await;
    let mut ids = got.ids();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 500, "every event delivered");
    let delivered: BTreeSet<(u32, u64)> = got
        .batches
        .iter()
        .map(|b| {
            let p = b.position.as_ref().unwrap();
            (p.partition, p.offset)
        })
        .collect();
    let appended: BTreeSet<(u32, u64)> =
        positions.iter().map(|p| (p.partition, p.offset)).collect();
    assert_eq!(
        delivered, appended,
        "positions of append are those delivered"
    );
    for b in &got.batches {
        assert_eq!((b.tenant.as_str(), b.source.as_str()), ("acme", "suite"));
    }
    c.close().await.unwrap();
}

/// Within a partition, batches arrive in append order and one host's rows stay in
/// one partition.
pub async fn ordering_within_partition(t: &dyn BusUnderTest) {
    let bus = t.open().await;
    let topic = t.topic("order");
    for round in 0..20 {
        bus.append(&topic, &batch(&format!("{round:03}"), 6, 3))
            .await
            .unwrap();
    }
    let mut c = bus.subscribe(&topic, "g1").await.unwrap();
    let mut got = Received::default();
    consume(&mut c, 120, t.patience(), &mut got).await;
    let mut per_partition: BTreeMap<u32, Vec<(u64, String)>> = BTreeMap::new();
    let mut host_partition: BTreeMap<String, u32> = BTreeMap::new();
    for b in &got.batches {
        let p = b.position.as_ref().unwrap();
        for id in ids(b) {
            per_partition
                .entry(p.partition)
                .or_default()
                .push((p.offset, id));
        }
        let hosts = b
            .records
            .column_by_name("host.name")
            .unwrap()
            .as_string::<i32>();
        for h in hosts.iter().flatten() {
            let prev = host_partition.insert(h.to_string(), p.partition);
            assert!(
                prev.is_none_or(|q| q == p.partition),
                "host {h} in two partitions"
            );
        }
    }
    for (p, rows) in per_partition {
        let offsets: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] <= w[1]),
            "partition {p} offsets in order"
        );
        let rounds: Vec<&str> = rows.iter().map(|r| &r.1[..3]).collect();
        assert!(
            rounds.windows(2).all(|w| w[0] <= w[1]),
            "partition {p} batches in append order"
        );
    }
    c.close().await.unwrap();
}

/// A group resumes after its last commit, across a restart; what was read but not
/// committed is read again.
pub async fn commit_and_resume_after_restart(t: &dyn BusUnderTest) {
    let topic = t.topic("resume");
    {
        let bus = t.open().await;
        for round in 0..4 {
            // One host per batch: each batch is one record.
            let b = batch(&format!("r{round}"), 10, 1);
            bus.append(&topic, &b).await.unwrap();
        }
        let mut c = bus.subscribe(&topic, "g1").await.unwrap();
        let mut got = Received::default();
        consume(&mut c, 40, t.patience(), &mut got).await;
        assert_eq!(got.ids().len(), 40);
        // Commit the first two records only.
        for b in &got.batches[..2] {
            c.commit(b.position.as_ref().unwrap()).await.unwrap();
        }
        c.close().await.unwrap();
    }
    t.restart().await;
    let bus = t.open().await;
    let mut c = bus.subscribe(&topic, "g1").await.unwrap();
    let mut got = Received::default();
    consume(&mut c, 20, t.patience(), &mut got).await;
    let mut ids = got.ids();
    ids.sort();
    let expected: Vec<String> = (2..4)
        .flat_map(|r| (0..10).map(move |i| format!("r{r}-{i}")))
        .collect();
    let mut expected = expected;
    expected.sort();
    assert_eq!(
        ids, expected,
        "resumed after the commit, uncommitted read again"
    );
    // Another group starts from the oldest record.
    let mut other = bus.subscribe(&topic, "g2").await.unwrap();
    let mut all = Received::default();
    consume(&mut other, 40, t.patience(), &mut all).await;
    assert_eq!(all.ids().len(), 40);
    c.close().await.unwrap();
    other.close().await.unwrap();
}

/// Two members of one group split the partitions; together they read everything.
pub async fn two_consumers_split_partitions(t: &dyn BusUnderTest) {
    let bus = t.open().await;
    let topic = t.topic("split");
    for round in 0..8 {
        bus.append(&topic, &batch(&format!("r{round}"), 50, 16))
            .await
            .unwrap();
    }
    let mut a = bus.subscribe(&topic, "g1").await.unwrap();
    let mut b = bus.subscribe(&topic, "g1").await.unwrap();
    let (mut got_a, mut got_b) = (Received::default(), Received::default());
    let deadline = tokio::time::Instant::now() + t.patience();
    loop {
        tokio::join!(
            consume(&mut a, usize::MAX, Duration::from_millis(400), &mut got_a),
            consume(&mut b, usize::MAX, Duration::from_millis(400), &mut got_b),
        );
        let mut all: Vec<String> = got_a.ids().into_iter().chain(got_b.ids()).collect();
        all.sort();
        all.dedup();
        let settled = !got_a.owned.is_empty() && !got_b.owned.is_empty();
        if (all.len() == 400 && settled) || tokio::time::Instant::now() > deadline {
            assert_eq!(all.len(), 400, "together they read everything");
            break;
        }
    }
    assert!(
        got_a.owned.is_disjoint(&got_b.owned),
        "{:?} / {:?}",
        got_a.owned,
        got_b.owned
    );
    assert!(
        !got_a.owned.is_empty() && !got_b.owned.is_empty(),
        "both got partitions"
    );
    // A commit on a partition owned by the other member is refused.
    let theirs = *got_b.owned.iter().next().unwrap();
    let refused = a
        .commit(&BusPosition {
            topic: topic.clone(),
            partition: theirs,
            offset: 0,
        })
        .await;
    assert!(refused.is_err(), "commit on a partition of another member");
    a.close().await.unwrap();
    b.close().await.unwrap();
}
