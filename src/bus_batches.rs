//! Groups of batches read from the bus together: taking what the bus already holds, the
//! positions to commit for them, and the batches joined into fewer, larger ones for
//! detection.

use std::collections::HashMap;
use std::time::Duration;

use vedette_core::batch::{BusPosition, EventBatch};
use vedette_core::traits::{BusConsumer, BusDelivery};

/// Hands `take` the batches `consumer` already holds, without waiting, while `take`
/// says there is room for more; returns a change of partitions met on the way (the
/// caller stores or detects what it took before acting on it). A read error ends the
/// taking; it shows again at the next poll.
pub(crate) async fn take_waiting(
    consumer: &mut dyn BusConsumer,
    mut take: impl FnMut(EventBatch) -> bool,
) -> Option<BusDelivery> {
    loop {
        match consumer.poll(Duration::ZERO).await {
            Ok(Some(BusDelivery::Batch(b))) => {
                if !take(b) {
                    return None;
                }
            }
            Ok(Some(change)) => return Some(change),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// The last position of each partition among `batches`: committing it commits the
/// partition up to there.
pub(crate) fn last_positions(batches: &[EventBatch]) -> Vec<BusPosition> {
    let mut last: HashMap<(String, u32), BusPosition> = HashMap::new();
    for position in batches.iter().filter_map(|b| b.position.as_ref()) {
        let key = (position.topic.clone(), position.partition);
        match last.get(&key) {
            Some(p) if p.offset >= position.offset => {}
            _ => {
                last.insert(key, position.clone());
            }
        }
    }
    let mut out: Vec<BusPosition> = last.into_values().collect();
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}

/// The batches of each (tenant, source, partition) joined into one, in the order read,
/// with the position of the last: what a batch carries stays true of the join. Batches
/// whose columns differ are left apart.
pub(crate) fn joined(batches: Vec<EventBatch>) -> Vec<EventBatch> {
    let mut groups: Vec<Vec<EventBatch>> = Vec::new();
    for batch in batches {
        let same = |g: &Vec<EventBatch>| {
            g.first().is_some_and(|f| {
                f.tenant == batch.tenant
                    && f.source == batch.source
                    && f.position.as_ref().map(|p| p.partition)
                        == batch.position.as_ref().map(|p| p.partition)
                    && f.records.schema() == batch.records.schema()
            })
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.push(batch),
            None => groups.push(vec![batch]),
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for mut group in groups {
        if group.len() == 1 {
            out.extend(group.pop());
            continue;
        }
        let records: Vec<_> = group.iter().map(|b| b.records.clone()).collect();
        match arrow::compute::concat_batches(&group[0].records.schema(), &records) {
            Ok(all) => {
                let mut joined = group.swap_remove(0);
                joined.records = all;
                joined.position = group.last().and_then(|b| b.position.clone());
                out.push(joined);
            }
            Err(e) => {
                tracing::warn!(error = %e, "batches not joined; detected one by one");
                out.extend(group);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_core::event::{Event, EventBatchBuilder};

    fn at(tenant: &str, partition: u32, offset: u64, rows: usize) -> EventBatch {
        let mut builder = EventBatchBuilder::new();
        for i in 0..rows {
            builder.append(&Event {
                id: format!("{tenant}-{partition}-{offset}-{i}"),
                ..Event::default()
            });
        }
        let mut b = EventBatch::new(builder.finish().unwrap(), "http", tenant, 7);
        b.position = Some(BusPosition {
            topic: "events".into(),
            partition,
            offset,
        });
        b
    }

    #[test]
    fn each_partition_commits_its_last_offset() {
        let batches = [
            at("a", 1, 5, 0),
            at("a", 0, 3, 0),
            at("a", 1, 7, 0),
            at("a", 0, 2, 0),
            at("a", 1, 6, 0),
        ];
        let last: Vec<(u32, u64)> = last_positions(&batches)
            .iter()
            .map(|p| (p.partition, p.offset))
            .collect();
        assert_eq!(last, [(0, 3), (1, 7)]);
    }

    #[test]
    fn batches_join_per_tenant_and_partition_in_order() {
        let read = vec![
            at("a", 0, 1, 2),
            at("b", 0, 2, 1),
            at("a", 1, 1, 3),
            at("a", 0, 3, 4),
        ];
        let joined = joined(read);
        let shape: Vec<(String, u32, u64, usize)> = joined
            .iter()
            .map(|b| {
                let p = b.position.as_ref().unwrap();
                (b.tenant.clone(), p.partition, p.offset, b.len())
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("a".to_string(), 0, 3, 6),
                ("b".to_string(), 0, 2, 1),
                ("a".to_string(), 1, 1, 3)
            ]
        );
        let ids = vedette_core::event_json::events_to_json(&joined[0].records).unwrap();
        let ids: Vec<&str> = ids
            .iter()
            .map(|e| e["event.id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["a-0-1-0", "a-0-1-1", "a-0-3-0", "a-0-3-1", "a-0-3-2", "a-0-3-3"]
        );
    }
}
