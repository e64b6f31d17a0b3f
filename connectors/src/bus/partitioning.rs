//! Which partition a row goes to: a stable hash of its partition key (by default
//! `host.name`), so one entity's events always meet the same consumer. Both buses use
//! this one function, so a topic keeps its layout when a deployment moves to Kafka.

use std::sync::atomic::{AtomicU32, Ordering};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use vedette_core::CoreError;

use super::take_rows::take_rows;

/// FNV-1a, 64 bit: stable across versions and platforms (unlike `std`'s hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The partition of a key among `partitions`.
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    (fnv1a(key.as_bytes()) % u64::from(partitions.max(1))) as u32
}

/// Splits rows across partitions by a key column.
#[derive(Debug)]
pub struct Partitioner {
    key: String,
    partitions: u32,
    /// Rows with no key value (null, empty, or no key column) go to one partition per
    /// batch, chosen in turn so they spread evenly.
    next_keyless: AtomicU32,
}

impl Partitioner {
    /// A partitioner on column `key` over `partitions` partitions.
    pub fn new(key: impl Into<String>, partitions: u32) -> Self {
        Self {
            key: key.into(),
            partitions: partitions.max(1),
            next_keyless: AtomicU32::new(0),
        }
    }

    /// Number of partitions.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The rows of `records` per partition, in partition order; rows keep their order
    /// within a partition. A batch whose rows all go to one partition is not copied.
    pub fn split(&self, records: &RecordBatch) -> Result<Vec<(u32, RecordBatch)>, CoreError> {
        self.assign(records)
            .iter()
            .map(|rows| Ok((rows.partition, rows.take(records)?)))
            .collect()
    }

    /// Which rows of `records` go to which partition, in partition order, without
    /// copying them yet: each partition's rows can then be taken on a thread of its own.
    pub fn assign(&self, records: &RecordBatch) -> Vec<PartitionRows> {
        let keyless = self.next_keyless.fetch_add(1, Ordering::Relaxed) % self.partitions;
        let whole = |partition| {
            vec![PartitionRows {
                partition,
                rows: None,
            }]
        };
        let Some(column) = records
            .column_by_name(&self.key)
            .filter(|c| c.data_type() == &DataType::Utf8)
        else {
            return whole(keyless);
        };
        let values = column.as_string::<i32>();
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); self.partitions as usize];
        for (i, value) in values.iter().enumerate() {
            let p = match value {
                Some(v) if !v.is_empty() => partition_of(v, self.partitions),
                _ => keyless,
            };
            rows[p as usize].push(i as u32);
        }
        let used: Vec<usize> = (0..rows.len()).filter(|&p| !rows[p].is_empty()).collect();
        if used.len() <= 1 {
            return whole(used.first().map_or(keyless, |&p| p as u32));
        }
        used.into_iter()
            .map(|p| PartitionRows {
                partition: p as u32,
                rows: Some(std::mem::take(&mut rows[p])),
            })
            .collect()
    }
}

/// The rows of a batch that go to one partition ([`Partitioner::assign`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRows {
    /// The partition.
    pub partition: u32,
    /// Indices of the rows, in order; `None` when every row of the batch goes there.
    rows: Option<Vec<u32>>,
}

impl PartitionRows {
    /// These rows of `records` (the batch they were assigned from), copied into a batch
    /// of their own; the batch itself when it goes whole.
    pub fn take(&self, records: &RecordBatch) -> Result<RecordBatch, CoreError> {
        match &self.rows {
            None => Ok(records.clone()),
            Some(rows) => take_rows(records, rows),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_core::event::{Event, EventBatchBuilder};

    fn hosts(names: &[&str]) -> RecordBatch {
        let mut b = EventBatchBuilder::new();
        for (i, h) in names.iter().enumerate() {
            b.append(&Event {
                id: format!("e{i}"),
                dataset: "d".into(),
                host_name: (!h.is_empty()).then(|| (*h).to_string()),
                ..Event::default()
            });
        }
        b.finish().unwrap()
    }

    #[test]
    fn same_key_same_partition_order_kept() {
        let p = Partitioner::new("host.name", 4);
        let records = hosts(&["a", "b", "a", "c", "b", "a"]);
        let parts = p.split(&records).unwrap();
        let total: usize = parts.iter().map(|(_, r)| r.num_rows()).sum();
        assert_eq!(total, 6);
        for (partition, part) in &parts {
            let ids = part.column_by_name("event.id").unwrap().as_string::<i32>();
            let hs = part.column_by_name("host.name").unwrap().as_string::<i32>();
            for h in hs.iter().flatten() {
                assert_eq!(partition_of(h, 4), *partition);
            }
            let ids: Vec<&str> = ids.iter().flatten().collect();
            let mut sorted = ids.clone();
            sorted.sort();
            assert_eq!(ids, sorted, "rows keep their order");
        }
    }

    #[test]
    fn one_partition_is_not_copied_and_keyless_rows_rotate() {
        let p = Partitioner::new("host.name", 3);
        let first = p.split(&hosts(&["", ""])).unwrap();
        let second = p.split(&hosts(&["", ""])).unwrap();
        assert_eq!(first.len(), 1);
        assert_ne!(first[0].0, second[0].0);
        let missing = Partitioner::new("no.such.column", 3);
        assert_eq!(missing.split(&hosts(&["a"])).unwrap().len(), 1);
    }

    #[test]
    fn assigned_rows_taken_apart_equal_the_split() {
        let records = hosts(&["a", "b", "a", "c", "b", "a", ""]);
        let (one, other) = (
            Partitioner::new("host.name", 4),
            Partitioner::new("host.name", 4),
        );
        let split = one.split(&records).unwrap();
        let assigned = other.assign(&records);
        assert!(assigned.len() > 1);
        let taken: Vec<(u32, RecordBatch)> = assigned
            .iter()
            .map(|rows| (rows.partition, rows.take(&records).unwrap()))
            .collect();
        assert_eq!(taken, split);
        let whole = Partitioner::new("host.name", 1).assign(&records);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].take(&records).unwrap(), records);
    }

    #[test]
    fn hash_is_stable() {
        // Pinned: changing the hash would move every entity to another partition.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
