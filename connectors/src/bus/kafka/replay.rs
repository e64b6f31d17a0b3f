//! Reading back what a consumer group has processed of one partition, with a client of
//! its own that never joins the group: the records from a start (an offset, or the
//! first appended at a time) up to the group's commit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use vedette_core::batch::EventBatch;
use vedette_core::config::KafkaConfig;
use vedette_core::CoreError;

use super::{client_config, headers, kafka_error};

/// How long one request to the broker may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole read may take; what was read by then is returned.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Which partition to read back, from where, and how much at most.
#[derive(Debug, Clone)]
pub(crate) struct ProcessedRange<'a> {
    /// Vedette's name of the topic (positions carry it).
    pub(crate) topic: &'a str,
    /// Kafka's name of the topic.
    pub(crate) kafka_topic: &'a str,
    /// The group whose commit ends the range.
    pub(crate) group: &'a str,
    /// The partition.
    pub(crate) partition: u32,
    /// The first offset wanted, if known.
    pub(crate) from: Option<u64>,
    /// Only records appended at or after this time (Unix ms).
    pub(crate) since_ms: Option<i64>,
    /// Rows kept at most (the newest).
    pub(crate) max_rows: usize,
}

/// The first offset of the range and the group's commit (the end, not included);
/// `None` if the range is empty.
fn bounds(
    consumer: &BaseConsumer,
    range: &ProcessedRange<'_>,
) -> Result<Option<(i64, i64)>, CoreError> {
    let p = range.partition as i32;
    let mut one = TopicPartitionList::new();
    one.add_partition(range.kafka_topic, p);
    let committed = consumer
        .committed_offsets(one, REQUEST_TIMEOUT)
        .map_err(|e| kafka_error("reading the group's commit", e))?;
    let until = match committed
        .find_partition(range.kafka_topic, p)
        .map(|e| e.offset())
    {
        Some(Offset::Offset(n)) => n,
        // Nothing committed: the group has processed nothing of it.
        _ => return Ok(None),
    };
    let (low, _) = consumer
        .fetch_watermarks(range.kafka_topic, p, REQUEST_TIMEOUT)
        .map_err(|e| kafka_error("reading a partition's offsets", e))?;
    let mut start = low.max(
        range
            .from
            .map_or(0, |f| i64::try_from(f).unwrap_or(i64::MAX)),
    );
    if let Some(since) = range.since_ms {
        let mut at = TopicPartitionList::new();
        at.add_partition_offset(range.kafka_topic, p, Offset::Offset(since))
            .map_err(|e| kafka_error("building an offsets request", e))?;
        let found = consumer
            .offsets_for_times(at, REQUEST_TIMEOUT)
            .map_err(|e| kafka_error("finding the offset of a time", e))?;
        match found
            .find_partition(range.kafka_topic, p)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(n)) => start = start.max(n),
            // Nothing appended since then.
            Some(Offset::End) => return Ok(None),
            _ => {}
        }
        // Brokers answer a time past the last record differently (Kafka: the end;
        // tansu 0.6: offset 0): if the newest processed record is older, there is
        // nothing to read, whatever the answer said.
        if start < until
            && appended_at(consumer, range.kafka_topic, p, until - 1)
                .unwrap_or_else(|e| {
                    tracing::debug!(error = %e, "kafka: the append time of the last processed record is unknown");
                    None
                }).is_some_and(|t| t < since)
        {
            return Ok(None);
        }
    }
    Ok((start < until).then_some((start, until)))
}

/// When the record at `offset` of partition `p` was appended (Unix ms), if it can be
/// read.
fn appended_at(
    consumer: &BaseConsumer,
    kafka_topic: &str,
    p: i32,
    offset: i64,
) -> Result<Option<i64>, CoreError> {
    let mut at = TopicPartitionList::new();
    at.add_partition_offset(kafka_topic, p, Offset::Offset(offset))
        .map_err(|e| kafka_error("building an assignment", e))?;
    consumer
        .assign(&at)
        .map_err(|e| kafka_error("assigning a partition to the reader", e))?;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Ok(m)) => return Ok(m.timestamp().to_millis()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return Ok(None),
            Some(Err(e)) => return Err(kafka_error("reading back a partition", e)),
        }
    }
    Ok(None)
}

/// The batches of the range, in order, at most `max_rows` rows (the newest kept, and
/// always the newest batch).
/// A read that takes longer than [`READ_TIMEOUT`] returns what it has, logged.
pub(crate) fn read_processed(
    config: &KafkaConfig,
    range: &ProcessedRange<'_>,
) -> Result<Vec<EventBatch>, CoreError> {
    let consumer: BaseConsumer = client_config::consumer(config, range.group)
        // The end of the partition ends the read even if offsets before the commit are
        // missing (removed by retention or compaction).
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| kafka_error("creating a reader", e))?;
    let Some((start, until)) = bounds(&consumer, range)? else {
        return Ok(Vec::new());
    };
    let p = range.partition as i32;
    let mut from = TopicPartitionList::new();
    from.add_partition_offset(range.kafka_topic, p, Offset::Offset(start))
        .map_err(|e| kafka_error("building an assignment", e))?;
    consumer
        .assign(&from)
        .map_err(|e| kafka_error("assigning a partition to the reader", e))?;
    let mut kept: VecDeque<EventBatch> = VecDeque::new();
    let mut rows = 0;
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut next = start;
    while next < until {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(topic = %range.kafka_topic, partition = p, read_to = next, until, "kafka: reading back a partition timed out; using what was read");
            break;
        }
        let Some(message) = consumer.poll(left.min(Duration::from_secs(1))) else {
            continue;
        };
        let message = match message {
            Ok(m) => m,
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => break,
            Err(e) => return Err(kafka_error("reading back a partition", e)),
        };
        if message.offset() >= until {
            break;
        }
        next = message.offset() + 1;
        // A safety net: records appended before `since` are skipped whatever the
        // broker's answer to the time was.
        let appended = message.timestamp().to_millis();
        if range
            .since_ms
            .is_some_and(|since| appended.is_some_and(|t| t < since))
        {
            continue;
        }
        let header = headers::from_headers(message.headers());
        let decoded = super::consumer::decode_message(
            range.topic,
            range.kafka_topic,
            message.partition(),
            message.offset(),
            header,
            message.payload(),
        );
        if let Some(batch) = decoded {
            rows += batch.len();
            kept.push_back(batch);
            // The newest batch stays even if it alone is over the bound.
            while rows > range.max_rows && kept.len() > 1 {
                match kept.pop_front() {
                    Some(old) => rows -= old.len(),
                    None => break,
                }
            }
        }
    }
    Ok(kept.into())
}
