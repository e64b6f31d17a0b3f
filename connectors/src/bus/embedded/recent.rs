//! Batches just appended, kept as the producer built them, so a consumer reading at the
//! tail of a partition takes the batch from memory instead of reading its record back and
//! decoding the Arrow IPC stream (what a broker's page cache does for Kafka, one level up:
//! the decoded rows, not the bytes).
//!
//! A bounded first-in first-out store: entries are keyed by (topic, partition, offset),
//! inserted in append order, and the oldest go once the rows held pass the budget. It is
//! an optimisation only: a miss reads the record from its segment, as without it, and an
//! entry is handed out only for a record its partition already serves (the caller
//! checks the partition's bounds).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use vedette_core::batch::EventBatch;

use crate::bus::lock;

/// (topic, partition, offset) of a record.
type Key = (String, u32, u64);

/// The store of recently appended batches (see the module doc).
#[derive(Debug)]
pub(crate) struct RecentBatches {
    budget: usize,
    inner: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    batches: HashMap<Key, EventBatch>,
    /// Keys in insertion order with each entry's size, for eviction.
    order: VecDeque<(Key, usize)>,
    bytes: usize,
}

impl RecentBatches {
    /// A store holding at most `budget` bytes of rows (Arrow's memory size); 0 holds
    /// nothing.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::default(),
        }
    }

    /// Keeps `batch` (taking `size` bytes of memory) as the record at `offset` of
    /// `topic`/`partition`, evicting the oldest entries past the budget. A batch larger
    /// than the whole budget is not kept.
    pub(crate) fn insert(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        batch: &EventBatch,
        size: usize,
    ) {
        if size > self.budget {
            return;
        }
        let mut held = lock(&self.inner);
        while held.bytes + size > self.budget {
            let Some((key, old)) = held.order.pop_front() else {
                break;
            };
            held.batches.remove(&key);
            held.bytes -= old;
        }
        let key = (topic.to_string(), partition, offset);
        let entry = EventBatch {
            position: None,
            ..batch.clone()
        };
        if held.batches.insert(key.clone(), entry).is_none() {
            held.order.push_back((key, size));
            held.bytes += size;
        }
    }

    /// The batch kept as the record at `offset` of `topic`/`partition`, if still held.
    pub(crate) fn get(&self, topic: &str, partition: u32, offset: u64) -> Option<EventBatch> {
        if self.budget == 0 {
            return None;
        }
        let key = (topic.to_string(), partition, offset);
        lock(&self.inner).batches.get(&key).cloned()
    }

    /// Bytes of rows held.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        lock(&self.inner).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_core::event::{Event, EventBatchBuilder};

    fn batch(rows: usize) -> EventBatch {
        let mut b = EventBatchBuilder::new();
        for i in 0..rows {
            b.append(&Event {
                id: format!("e{i}"),
                dataset: "d".into(),
                ..Event::default()
            });
        }
        EventBatch::new(b.finish().unwrap(), "src", "acme", 7)
    }

    #[test]
    fn keeps_by_offset_and_evicts_the_oldest_past_the_budget() {
        let one = batch(10);
        let size = one.records.get_array_memory_size();
        let recent = RecentBatches::new(size * 2);
        recent.insert("events", 0, 0, &one, size);
        recent.insert("events", 1, 0, &one, size);
        assert!(recent.get("events", 0, 0).is_some());
        assert!(recent.get("events", 0, 1).is_none());
        assert!(recent.get("alerts", 0, 0).is_none());
        recent.insert("events", 0, 1, &one, size);
        assert!(recent.get("events", 0, 0).is_none(), "the oldest went");
        assert!(recent.get("events", 1, 0).is_some());
        assert!(recent.get("events", 0, 1).is_some());
        assert_eq!(recent.bytes(), size * 2);
        let got = recent.get("events", 0, 1).unwrap();
        assert_eq!(got.records, one.records);
        assert_eq!((got.source.as_str(), got.tenant.as_str()), ("src", "acme"));
        assert_eq!(got.position, None);
    }

    #[test]
    fn too_big_or_no_budget_keeps_nothing_and_a_repeat_is_counted_once() {
        let one = batch(10);
        let size = one.records.get_array_memory_size();
        let small = RecentBatches::new(size - 1);
        small.insert("events", 0, 0, &one, size);
        assert!(small.get("events", 0, 0).is_none());
        let off = RecentBatches::new(0);
        off.insert("events", 0, 0, &one, size);
        assert!(off.get("events", 0, 0).is_none());

        let recent = RecentBatches::new(size * 4);
        recent.insert("events", 0, 0, &one, size);
        recent.insert("events", 0, 0, &one, size);
        assert_eq!(recent.bytes(), size);
    }
}
