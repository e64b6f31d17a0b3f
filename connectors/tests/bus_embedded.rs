//! The embedded log: the bus conformance suite, retention, durability policies, and
//! recovery from torn tails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::bus_suite::{self, BoxFut, BusUnderTest};
use std::sync::atomic::Ordering;

use vedette_connectors::bus::codec::{self, BatchHeader};
use vedette_connectors::bus::embedded::{
    AppendPart, EmbeddedBus, EmbeddedLog, LogOptions, Retention, SyncPolicy,
};
use vedette_core::batch::EventBatch;
use vedette_core::config::BusCompression;
use vedette_core::traits::{Bus, BusDelivery};

struct Embedded {
    dir: tempfile::TempDir,
    options: LogOptions,
    log: Mutex<Option<Arc<EmbeddedLog>>>,
}

impl Embedded {
    fn new(options: LogOptions) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            options,
            log: Mutex::new(None),
        }
    }

    fn log(&self) -> Arc<EmbeddedLog> {
        let mut slot = self.log.lock().unwrap();
        slot.get_or_insert_with(|| {
            EmbeddedLog::open(self.dir.path(), self.options.clone()).unwrap()
        })
        .clone()
    }
}

impl BusUnderTest for Embedded {
    fn open(&self) -> BoxFut<'_, Arc<dyn Bus>> {
        Box::pin(async move { Arc::new(EmbeddedBus::new(self.log(), "host.name")) as Arc<dyn Bus> })
    }

    fn restart(&self) -> BoxFut<'_, ()> {
        Box::pin(async move {
            let old = self.log.lock().unwrap().take();
            if let Some(log) = old {
                log.close().unwrap();
                assert_eq!(Arc::strong_count(&log), 1, "a client still holds the log");
            }
        })
    }

    fn topic(&self, tag: &str) -> String {
        format!("t-{tag}")
    }

    fn patience(&self) -> Duration {
        Duration::from_secs(5)
    }
}

/// Both sync policies; the second also with no memory for recent batches, so every
/// read goes through the segment files, and with zstd records.
fn both_policies() -> [Embedded; 2] {
    [
        Embedded::new(LogOptions::default()),
        Embedded::new(LogOptions {
            sync: SyncPolicy::Interval(Duration::from_millis(5)),
            segment_bytes: 4096,
            recent_bytes: 0,
            compression: BusCompression::Zstd,
            ..LogOptions::default()
        }),
    ]
}

#[tokio::test]
async fn conformance_append_then_consume() {
    for t in both_policies() {
        bus_suite::append_then_consume(&t).await;
    }
}

#[tokio::test]
async fn conformance_ordering_within_partition() {
    for t in both_policies() {
        bus_suite::ordering_within_partition(&t).await;
    }
}

#[tokio::test]
async fn conformance_commit_and_resume_after_restart() {
    for t in both_policies() {
        bus_suite::commit_and_resume_after_restart(&t).await;
    }
}

#[tokio::test]
async fn conformance_two_consumers_split_partitions() {
    for t in both_policies() {
        bus_suite::two_consumers_split_partitions(&t).await;
    }
}

#[tokio::test]
async fn conformance_retention() {
    // Small segments: every append seals the previous one.
    let t = Embedded::new(LogOptions {
        partitions: 1,
        segment_bytes: 1,
        retention: Retention {
            max_age_ms: 3_600_000,
            max_bytes: u64::MAX,
            hard_max_age_ms: 24 * 3_600_000,
        },
        ..LogOptions::default()
    });
    let bus = t.open().await;
    for round in 0..5 {
        bus.append("events", &bus_suite::batch(&format!("r{round}"), 10, 1))
            .await
            .unwrap();
    }
    let log = t.log();
    let now = chrono::Utc::now().timestamp_millis();
    // A group that committed two records holds the rest back from age retention.
    let mut c = bus.subscribe("events", "slow").await.unwrap();
    let mut got = bus_suite::Received::default();
    bus_suite::consume(&mut c, 50, t.patience(), &mut got).await;
    c.commit(got.batches[1].position.as_ref().unwrap())
        .await
        .unwrap();
    log.apply_retention(now + 2 * 3_600_000).unwrap();
    assert_eq!(
        log.bounds("events", 0).unwrap().0,
        2,
        "only what the group committed went"
    );
    assert_eq!(
        log.counters()
            .retention_unread_records
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // Past the hard cap, the rest of the sealed segments go even unread.
    log.apply_retention(now + 25 * 3_600_000).unwrap();
    assert_eq!(
        log.bounds("events", 0).unwrap().0,
        4,
        "the active segment stays"
    );
    assert_eq!(
        log.counters()
            .retention_unread_records
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    c.close().await.unwrap();
    // The group resumes at the oldest record held.
    let mut c = bus.subscribe("events", "slow").await.unwrap();
    let mut got = bus_suite::Received::default();
    bus_suite::consume(&mut c, 10, t.patience(), &mut got).await;
    assert_eq!(got.ids()[0], "r4-0");
    drop(c);
    // Size retention: with no group reading, everything sealed over the cap goes.
    let t = Embedded::new(LogOptions {
        partitions: 1,
        segment_bytes: 1,
        retention: Retention {
            max_age_ms: i64::MAX,
            max_bytes: 1,
            hard_max_age_ms: i64::MAX,
        },
        ..LogOptions::default()
    });
    let bus = t.open().await;
    for round in 0..3 {
        bus.append("events", &bus_suite::batch(&format!("r{round}"), 10, 1))
            .await
            .unwrap();
    }
    t.log().apply_retention(now).unwrap();
    assert_eq!(t.log().bounds("events", 0).unwrap(), (2, 3));
}

#[tokio::test]
async fn a_consumer_sees_appends_as_they_arrive() {
    let t = Embedded::new(LogOptions {
        sync: SyncPolicy::Interval(Duration::from_millis(20)),
        ..LogOptions::default()
    });
    let bus = t.open().await;
    let mut c = bus.subscribe("live", "g").await.unwrap();
    // First the assignment.
    match c.poll(Duration::from_secs(1)).await.unwrap() {
        Some(BusDelivery::Assigned(ps)) => assert_eq!(ps, vec![0, 1, 2, 3]),
        other => panic!("expected the assignment, got {other:?}"),
    }
    assert!(c.poll(Duration::from_millis(50)).await.unwrap().is_none());
    let writer = bus.clone();
    let append = tokio::spawn(async move {
        writer
            .append("live", &bus_suite::batch("x", 3, 1))
            .await
            .unwrap()
    });
    match c.poll(Duration::from_secs(2)).await.unwrap() {
        Some(BusDelivery::Batch(b)) => assert_eq!(bus_suite::ids(&b), ["x-0", "x-1", "x-2"]),
        other => panic!("expected the batch, got {other:?}"),
    }
    assert_eq!(append.await.unwrap().len(), 1);
}

/// Everything a consumer of `topic` reads until nothing more comes, with its batches.
async fn drain(bus: &Arc<dyn Bus>, topic: &str, group: &str) -> Vec<EventBatch> {
    let mut c = bus.subscribe(topic, group).await.unwrap();
    let mut got = Vec::new();
    while let Some(d) = c.poll(Duration::from_millis(300)).await.unwrap() {
        if let BusDelivery::Batch(b) = d {
            c.commit(b.position.as_ref().unwrap()).await.unwrap();
            got.push(b);
        }
    }
    got
}

#[tokio::test]
async fn consumers_at_the_tail_take_recent_batches_from_memory_the_same_as_from_disk() {
    let t = Embedded::new(LogOptions::default());
    let bus = t.open().await;
    for i in 0..5 {
        bus.append("tail", &bus_suite::batch(&format!("b{i}"), 40, 7))
            .await
            .unwrap();
    }
    let counters = || {
        let log = t.log();
        let c = log.counters();
        (
            c.recent_hits.load(Ordering::Relaxed),
            c.disk_reads.load(Ordering::Relaxed),
        )
    };
    // Two groups, as detection and storage: both served from memory.
    let first = drain(&bus, "tail", "detect").await;
    let second = drain(&bus, "tail", "store").await;
    let records = first.len() as u64;
    assert!(records > 5, "the batches were split over partitions");
    assert_eq!(counters(), (2 * records, 0));
    // After a restart nothing is in memory: the same batches come from the segments.
    drop(bus);
    t.restart().await;
    let bus = t.open().await;
    let from_disk = drain(&bus, "tail", "audit").await;
    assert_eq!(counters(), (0, records));
    for got in [&second, &from_disk] {
        assert_eq!(got.len(), first.len());
        for (a, b) in first.iter().zip(got.iter()) {
            assert_eq!(a.records, b.records);
            assert_eq!(a.records.schema(), b.records.schema());
            assert_eq!(
                (&a.source, &a.tenant, a.ingest_time_ms, &a.position),
                (&b.source, &b.tenant, b.ingest_time_ms, &b.position)
            );
        }
    }
}

#[tokio::test]
async fn records_of_every_compression_read_back_whole_from_the_segments() {
    for compression in [
        BusCompression::Zstd,
        BusCompression::None,
        BusCompression::Lz4,
    ] {
        large_batches_read_back_whole(compression).await;
    }
}

async fn large_batches_read_back_whole(compression: BusCompression) {
    let t = Embedded::new(LogOptions {
        partitions: 2,
        recent_bytes: 0,
        compression,
        ..LogOptions::default()
    });
    let bus = t.open().await;
    // Two hosts: two parts of 12,000 rows each, encoded in parallel.
    let big = bus_suite::batch("big", 24_000, 2);
    let plain = codec::encode_records(&big.records).unwrap().len();
    let small = bus_suite::batch("small", 10, 2);
    for b in [&big, &small, &big] {
        bus.append("large", b).await.unwrap();
    }
    let stored = t.log().counters().appended_bytes.load(Ordering::Relaxed);
    if compression == BusCompression::None {
        assert!(
            stored > plain as u64 * 2,
            "{stored} bytes stored, {plain} x 2 plain"
        );
    } else {
        assert!(
            stored < plain as u64 / 2,
            "{stored} bytes stored, {plain} x 2 plain"
        );
    }
    let got = drain(&bus, "large", "g").await;
    assert_eq!(t.log().counters().recent_hits.load(Ordering::Relaxed), 0);
    let mut rows: Vec<String> = got.iter().flat_map(bus_suite::ids).collect();
    let mut sent: Vec<String> = [&big, &small, &big]
        .iter()
        .flat_map(|b| bus_suite::ids(b))
        .collect();
    rows.sort();
    sent.sort();
    assert_eq!(rows, sent, "{compression:?}");
    // Within a partition, rows keep their order.
    for b in &got {
        let ids = bus_suite::ids(b);
        let numbers: Vec<usize> = ids
            .iter()
            .map(|id| id.rsplit('-').next().unwrap().parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{:?}", &ids[..3]);
    }
}

#[tokio::test]
async fn a_large_batch_on_one_partition_is_cut_into_records_in_row_order() {
    for recent_bytes in [0, 64 << 20] {
        let t = Embedded::new(LogOptions {
            partitions: 1,
            recent_bytes,
            ..LogOptions::default()
        });
        let bus = t.open().await;
        let big = bus_suite::batch("big", 20_000, 7);
        let positions = bus.append("cut", &big).await.unwrap();
        if rayon::current_num_threads() >= 2 {
            assert!(positions.len() >= 2, "encoded on one thread: {positions:?}");
        }
        let offsets: Vec<u64> = positions.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, (0..positions.len() as u64).collect::<Vec<_>>());
        let got = drain(&bus, "cut", "g").await;
        assert_eq!(got.len(), positions.len());
        let ids: Vec<String> = got.iter().flat_map(bus_suite::ids).collect();
        assert_eq!(ids, bus_suite::ids(&big), "recent {recent_bytes}");
        let hits = t.log().counters().recent_hits.load(Ordering::Relaxed);
        let expected = if recent_bytes > 0 { positions.len() } else { 0 };
        assert_eq!(hits as usize, expected, "every slice from memory, or none");
    }
}

#[tokio::test]
async fn records_of_the_first_format_with_lz4_framed_buffers_are_still_read() {
    let t = Embedded::new(LogOptions {
        partitions: 1,
        ..LogOptions::default()
    });
    let batch = bus_suite::batch("old", 5, 1);
    let header = BatchHeader::of(&batch);
    let payload =
        codec::encode_records_with(&batch.records, Some(arrow::ipc::CompressionType::LZ4_FRAME))
            .unwrap();
    let part = AppendPart::plain(0, &header, &payload);
    t.log().append_all("old", &[part]).unwrap();
    let bus = t.open().await;
    bus.append("old", &bus_suite::batch("new", 5, 1))
        .await
        .unwrap();
    let got = drain(&bus, "old", "g").await;
    let ids: Vec<Vec<String>> = got.iter().map(bus_suite::ids).collect();
    assert_eq!(ids[0], bus_suite::ids(&batch));
    assert_eq!(ids[1][0], "new-0");
}

#[tokio::test]
async fn a_record_is_served_once_written_and_acknowledged_only_once_durable() {
    let t = Embedded::new(LogOptions {
        partitions: 1,
        sync: SyncPolicy::Interval(Duration::from_secs(3600)),
        ..LogOptions::default()
    });
    let bus = t.open().await;
    let log = t.log();
    let mut consumer = bus.subscribe("slow", "g").await.unwrap();
    let batch = bus_suite::batch("d", 3, 1);
    let mut append = {
        let (bus, batch) = (bus.clone(), batch.clone());
        tokio::spawn(async move { bus.append("slow", &batch).await })
    };
    // The consumer gets the batch while its append still waits for the (hourly) fsync.
    let got = loop {
        match consumer.poll(Duration::from_secs(10)).await.unwrap() {
            Some(BusDelivery::Batch(b)) => break b,
            Some(_) => continue,
            None => panic!("the written batch was not served"),
        }
    };
    assert_eq!(got.records, batch.records);
    assert_eq!(log.read("slow", 0, 0, 10).unwrap().len(), 1);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut append)
            .await
            .is_err(),
        "acknowledged before its fsync"
    );
    log.sync_all().unwrap();
    let positions = tokio::time::timeout(Duration::from_secs(10), append)
        .await
        .expect("acknowledged after the fsync")
        .unwrap()
        .unwrap();
    assert_eq!(positions[0].offset, 0);
}

#[tokio::test]
async fn a_commit_past_a_damaged_tail_cut_at_open_is_brought_back_and_new_records_are_read() {
    let t = Embedded::new(LogOptions {
        partitions: 1,
        ..LogOptions::default()
    });
    let bus = t.open().await;
    let segment = t
        .dir
        .path()
        .join("topics/events/0/00000000000000000000.log");
    let mut lengths = Vec::new();
    for round in 0..3 {
        bus.append("events", &bus_suite::batch(&format!("r{round}"), 2, 1))
            .await
            .unwrap();
        lengths.push(std::fs::metadata(&segment).unwrap().len());
    }
    t.log().commit("g", "events", 0, 3).unwrap();
    drop(bus);
    t.restart().await;
    // The last record is damaged (after a clean close: no fence): it is cut at open.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len((lengths[1] + lengths[2]) / 2)
        .unwrap();
    let bus = t.open().await;
    let log = t.log();
    assert_eq!(log.bounds("events", 0).unwrap(), (0, 2));
    assert_eq!(
        log.committed("g", "events", 0),
        Some(2),
        "brought back to the end"
    );
    let p = bus
        .append("events", &bus_suite::batch("new", 2, 1))
        .await
        .unwrap();
    assert_eq!(p[0].offset, 2);
    let mut c = bus.subscribe("events", "g").await.unwrap();
    let mut got = bus_suite::Received::default();
    bus_suite::consume(&mut c, 2, t.patience(), &mut got).await;
    assert_eq!(got.ids(), ["new-0", "new-1"]);
}

#[tokio::test]
async fn after_a_stop_without_a_clean_close_new_records_start_past_a_fence() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions {
        partitions: 1,
        ..LogOptions::default()
    };
    let open = || {
        let log = EmbeddedLog::open(dir.path(), options.clone()).unwrap();
        let bus: Arc<dyn Bus> = Arc::new(EmbeddedBus::new(log.clone(), "host.name"));
        (log, bus)
    };
    let (log, bus) = open();
    for round in 0..2 {
        bus.append("events", &bus_suite::batch(&format!("r{round}"), 2, 1))
            .await
            .unwrap();
    }
    log.commit("g", "events", 0, 2).unwrap();
    // A crash: the log is dropped without `close`. Records served before their fsync
    // may be gone, so the next record does not take offset 2.
    drop((log, bus));
    let (log, bus) = open();
    assert_eq!(
        log.read("events", 0, 0, 10).unwrap().len(),
        2,
        "nothing lost"
    );
    let fenced = bus
        .append("events", &bus_suite::batch("new", 2, 1))
        .await
        .unwrap()[0]
        .offset;
    assert_eq!(fenced, 2 + (1 << 20));
    let lag: Vec<u64> = log.lags().into_iter().map(|(_, _, _, lag)| lag).collect();
    assert_eq!(lag, [1], "the fence is not counted as records waiting");
    let mut c = bus.subscribe("events", "g").await.unwrap();
    let mut got = bus_suite::Received::default();
    bus_suite::consume(&mut c, 2, Duration::from_secs(5), &mut got).await;
    assert_eq!(got.ids(), ["new-0", "new-1"]);
    assert_eq!(got.batches[0].position.as_ref().unwrap().offset, fenced);
    c.close().await.unwrap();
    // After a clean close, offsets go on where they stopped.
    log.close().unwrap();
    drop((log, bus));
    let (_log, bus) = open();
    let next = bus
        .append("events", &bus_suite::batch("after", 1, 1))
        .await
        .unwrap()[0]
        .offset;
    assert_eq!(next, fenced + 1);
}

#[tokio::test]
async fn a_torn_tail_is_cut_counted_and_never_served() {
    use std::io::Write;
    let t = Embedded::new(LogOptions {
        partitions: 1,
        ..LogOptions::default()
    });
    let bus = t.open().await;
    for round in 0..3 {
        bus.append("events", &bus_suite::batch(&format!("r{round}"), 5, 1))
            .await
            .unwrap();
    }
    drop(bus);
    t.restart().await;
    let segment = t
        .dir
        .path()
        .join("topics/events/0/00000000000000000000.log");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    f.write_all(&[0x40, 0, 0, 0, 1, 2, 3, 4, 5, 6]).unwrap();
    drop(f);
    let before = std::fs::metadata(&segment).unwrap().len();
    let bus = t.open().await;
    let log = t.log();
    assert_eq!(
        log.counters()
            .recovered_truncated_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
        10
    );
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), before - 10);
    let mut c = bus.subscribe("events", "g").await.unwrap();
    let mut got = bus_suite::Received::default();
    bus_suite::consume(&mut c, 15, t.patience(), &mut got).await;
    assert_eq!(got.ids().len(), 15);
    // Appends go on after the cut.
    let p = bus
        .append("events", &bus_suite::batch("r3", 5, 1))
        .await
        .unwrap();
    assert_eq!(p[0].offset, 3);
}

#[tokio::test]
async fn bad_names_are_refused() {
    let t = Embedded::new(LogOptions::default());
    let bus = t.open().await;
    assert!(bus
        .append("../etc", &bus_suite::batch("a", 1, 1))
        .await
        .is_err());
    assert!(bus.subscribe("events", "a/b").await.is_err());
}

/// Batches delivered to `consumer` until nothing arrives within a short wait.
async fn take_batches(
    consumer: &mut Box<dyn vedette_core::traits::BusConsumer>,
    most: usize,
) -> usize {
    let mut batches = 0;
    while batches < most {
        match consumer.poll(Duration::from_millis(200)).await.unwrap() {
            Some(BusDelivery::Batch(_)) => batches += 1,
            Some(_) => {}
            None => break,
        }
    }
    batches
}

#[tokio::test]
async fn the_backlog_is_what_the_slowest_reading_group_has_yet_to_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(
        dir.path(),
        LogOptions {
            partitions: 2,
            segment_bytes: 8 * 1024,
            ..LogOptions::default()
        },
    )
    .unwrap();
    let bus = EmbeddedBus::new(log.clone(), "host.name");
    assert_eq!(bus.backlog_bytes("events").unwrap(), Some(0));
    let mut fast = bus.subscribe("events", "fast").await.unwrap();
    let mut slow = bus.subscribe("events", "slow").await.unwrap();
    for i in 0..6 {
        bus.append("events", &bus_suite::batch(&format!("b{i}"), 400, 4))
            .await
            .unwrap();
    }
    let appended = log.counters().appended_bytes.load(Ordering::Relaxed);
    let records = log.counters().appended_records.load(Ordering::Relaxed) as usize;
    assert!(records >= 6, "{records} records");
    // Several segments per partition: the count crosses segment boundaries.
    assert!(appended > 4 * 8 * 1024, "{appended} bytes");
    assert_eq!(bus.backlog_bytes("events").unwrap(), Some(appended));

    // The fast group reading everything leaves the slow one's backlog.
    assert_eq!(take_batches(&mut fast, usize::MAX).await, records);
    assert_eq!(bus.backlog_bytes("events").unwrap(), Some(appended));

    // The slow group's backlog falls with each record it reads, to nothing.
    assert_eq!(take_batches(&mut slow, 1).await, 1);
    let after_one = bus.backlog_bytes("events").unwrap().unwrap();
    assert!(
        after_one < appended && after_one > 0,
        "{after_one} of {appended}"
    );
    assert_eq!(take_batches(&mut slow, usize::MAX).await, records - 1);
    assert_eq!(bus.backlog_bytes("events").unwrap(), Some(0));

    // New records count again; a group with no members left does not count at all.
    bus.append("events", &bus_suite::batch("late", 50, 4))
        .await
        .unwrap();
    assert!(bus.backlog_bytes("events").unwrap().unwrap() > 0);
    slow.close().await.unwrap();
    fast.close().await.unwrap();
    assert_eq!(bus.backlog_bytes("events").unwrap(), Some(0));
    // Another topic's readers are not this topic's.
    assert_eq!(bus.backlog_bytes("alerts").unwrap(), Some(0));

    // A group that stops reading stops counting once it has been still long enough.
    let _still = bus.subscribe("events", "still").await.unwrap();
    let held = log.backlog_bytes("events").unwrap();
    assert!(held > 0);
    let window = Duration::from_millis(200);
    assert_eq!(
        log.backlog_bytes_of_groups_active_within("events", window)
            .unwrap(),
        held
    );
    tokio::time::sleep(window * 2).await;
    assert_eq!(
        log.backlog_bytes_of_groups_active_within("events", window)
            .unwrap(),
        0
    );
    assert_eq!(log.backlog_bytes("events").unwrap(), held);
}
