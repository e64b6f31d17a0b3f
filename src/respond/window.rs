//! Which alert positions may be committed: per partition, the positions read, in
//! order, each with its unfinished deliveries; a position is ready once it and every
//! position before it in its partition have none left.

use std::collections::{BTreeMap, VecDeque};

/// One position read and its unfinished deliveries.
#[derive(Debug)]
struct Slot {
    offset: u64,
    remaining: usize,
}

/// The positions read and not yet committed.
#[derive(Debug, Default)]
pub(crate) struct Window {
    partitions: BTreeMap<u32, VecDeque<Slot>>,
}

impl Window {
    /// A position read, with `deliveries` started for it.
    pub(crate) fn push(&mut self, partition: u32, offset: u64, deliveries: usize) {
        self.partitions
            .entry(partition)
            .or_default()
            .push_back(Slot {
                offset,
                remaining: deliveries,
            });
    }

    /// One delivery of (`partition`, `offset`) finished. Unknown positions (of
    /// partitions revoked since) are ignored.
    pub(crate) fn finish(&mut self, partition: u32, offset: u64) {
        let Some(slots) = self.partitions.get_mut(&partition) else {
            return;
        };
        if let Ok(i) = slots.binary_search_by_key(&offset, |s| s.offset) {
            if let Some(s) = slots.get_mut(i) {
                s.remaining = s.remaining.saturating_sub(1);
            }
        }
    }

    /// Takes the positions ready to commit: per partition, the last of the leading
    /// slots without unfinished deliveries.
    pub(crate) fn ready(&mut self) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        for (partition, slots) in &mut self.partitions {
            let mut last = None;
            while slots.front().is_some_and(|s| s.remaining == 0) {
                last = slots.pop_front().map(|s| s.offset);
            }
            if let Some(offset) = last {
                out.push((*partition, offset));
            }
        }
        out
    }

    /// Forgets partitions taken away by a rebalance.
    pub(crate) fn revoke(&mut self, partitions: &[u32]) {
        for p in partitions {
            self.partitions.remove(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_wait_for_the_earliest_unfinished_position() {
        let mut w = Window::default();
        w.push(0, 10, 2);
        w.push(0, 11, 0);
        w.push(0, 12, 1);
        w.push(1, 4, 0);
        assert_eq!(w.ready(), [(1, 4)]);
        w.finish(0, 12);
        assert_eq!(w.ready(), []);
        w.finish(0, 10);
        assert_eq!(w.ready(), []);
        w.finish(0, 10);
        assert_eq!(w.ready(), [(0, 12)]);
        w.push(0, 13, 1);
        w.revoke(&[0]);
        w.finish(0, 13);
        assert_eq!(w.ready(), []);
    }
}
