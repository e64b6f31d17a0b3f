//! [`StallWatch`]: tells a group member when partitions it does not own have stopped
//! moving while its own move, the sign that their owner is gone and the broker never
//! handed them over.
//!
//! A broker's group coordinator drops a member whose heartbeats stop and rebalances the
//! group. Some Kafka-protocol brokers drop the member without rebalancing (tansu 0.6:
//! the survivors keep their old assignments and the dead member's partitions are read
//! by nobody). The member then cannot learn from the broker that work is orphaned, but
//! it can see it in the offsets: a partition it does not own holds records past the
//! group's commit, and the commit has not moved for a while. It leaves and rejoins the
//! group, which makes the coordinator assign every partition again, only when its own
//! work shows the cause is not shared: one of its own commits moved after the partition
//! stopped (or, for a member whose partitions are quiet, the partition stood still for
//! twice the wait), and none of its own partitions with records waiting is stalled (the
//! store being down stalls every partition alike). A member whose partitions are quiet
//! during an outage that stalls the others' may thus rejoin once per twice the wait.
//! The timer of a partition that comes to or leaves this member starts again (its new
//! owner needs time to start on it), and a partition a rejoin did not move waits ten
//! waits for another.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Where one partition stands: the group's commit and the partition's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionReading {
    /// The partition.
    pub(crate) partition: u32,
    /// The group's committed offset (the next to read); the partition's start if none.
    pub(crate) committed: i64,
    /// The offset the next record appended will get.
    pub(crate) end: i64,
}

/// Watches the group's commits on every partition of a topic.
#[derive(Debug)]
pub(crate) struct StallWatch {
    /// How long a partition's commit may stay still with records waiting.
    after: Duration,
    /// Per partition, the commit last seen with records waiting and since when.
    still: HashMap<u32, (i64, Instant)>,
    /// When this member last rejoined: it waits `after` again before the next.
    rejoined: Option<Instant>,
    /// The partitions this member owned at the last reading.
    owned_before: Vec<u32>,
    /// The commit of each partition at the last reading.
    committed_before: HashMap<u32, i64>,
    /// When one of this member's own commits last moved.
    own_progress: Option<Instant>,
    /// Per partition, the commit a rejoin was made for and when: a partition still at
    /// that commit afterwards (a record no member can read holds it, say) is not worth
    /// another rejoin until [`RETRY_AFTER_WAITS`] waits have passed.
    tried: HashMap<u32, (i64, Instant)>,
}

/// Waits before a partition that a rejoin did not move is worth another.
const RETRY_AFTER_WAITS: u32 = 10;

impl StallWatch {
    /// A watch that calls a partition stalled after `after` without progress.
    pub(crate) fn new(after: Duration) -> Self {
        Self {
            after,
            still: HashMap::new(),
            rejoined: None,
            owned_before: Vec::new(),
            committed_before: HashMap::new(),
            own_progress: None,
            tried: HashMap::new(),
        }
    }

    /// How often the offsets are worth reading.
    pub(crate) fn check_every(&self) -> Duration {
        (self.after / 4).clamp(Duration::from_secs(1), Duration::from_secs(15))
    }

    /// Takes a reading of every partition at `now`; returns the partitions not owned
    /// by this member that are orphaned (the member should rejoin the group), or an
    /// empty list.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        owned: impl Fn(u32) -> bool,
        readings: &[PartitionReading],
    ) -> Vec<u32> {
        let owned_now: Vec<u32> = readings
            .iter()
            .map(|r| r.partition)
            .filter(|p| owned(*p))
            .collect();
        if owned_now != self.owned_before {
            // A rebalance: a partition that came to or left this member has a new owner,
            // which needs time to start on it.
            for p in self.owned_before.iter().chain(&owned_now) {
                if self.owned_before.contains(p) != owned_now.contains(p) {
                    self.still.remove(p);
                }
            }
            self.owned_before = owned_now;
        }
        for r in readings {
            let before = self.committed_before.insert(r.partition, r.committed);
            if owned(r.partition) && before.is_some_and(|c| r.committed > c) {
                self.own_progress = Some(now);
            }
        }
        self.tried.retain(|p, (committed, at)| {
            now.duration_since(*at) < self.after * RETRY_AFTER_WAITS
                && readings
                    .iter()
                    .any(|r| r.partition == *p && r.committed == *committed)
        });
        for r in readings {
            if r.committed >= r.end {
                self.still.remove(&r.partition);
                continue;
            }
            match self.still.get(&r.partition) {
                Some(&(committed, _)) if committed == r.committed => {}
                _ => {
                    self.still.insert(r.partition, (r.committed, now));
                }
            }
        }
        let known: std::collections::HashSet<u32> = readings.iter().map(|r| r.partition).collect();
        self.still.retain(|p, _| known.contains(p));
        if self
            .rejoined
            .is_some_and(|t| now.duration_since(t) < self.after)
        {
            return Vec::new();
        }
        let stalled = |p: &u32| {
            self.still
                .get(p)
                .is_some_and(|(_, since)| now.duration_since(*since) >= self.after)
        };
        // This member's own work moved while the partition stood still, or (a member
        // whose partitions are quiet) the partition stood still twice the wait.
        let moved_since = |p: &u32| {
            self.still.get(p).is_some_and(|(_, since)| {
                self.own_progress.is_some_and(|t| t >= *since)
                    || now.duration_since(*since) >= self.after * 2
            })
        };
        let mut orphaned: Vec<u32> = readings
            .iter()
            .map(|r| r.partition)
            .filter(|p| !owned(*p) && stalled(p) && moved_since(p) && !self.tried.contains_key(p))
            .collect();
        let own_stalled = readings
            .iter()
            .map(|r| r.partition)
            .any(|p| owned(p) && stalled(&p));
        if own_stalled {
            orphaned.clear();
        }
        if !orphaned.is_empty() {
            self.rejoined = Some(now);
            for p in &orphaned {
                if let Some(&(committed, _)) = self.still.get(p) {
                    self.tried.insert(*p, (committed, now));
                }
            }
            self.still.clear();
        }
        orphaned.sort_unstable();
        orphaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(partition: u32, committed: i64, end: i64) -> PartitionReading {
        PartitionReading {
            partition,
            committed,
            end,
        }
    }

    const AFTER: Duration = Duration::from_secs(10);

    #[test]
    fn a_partition_nobody_reads_is_orphaned_after_the_wait() {
        let mut w = StallWatch::new(AFTER);
        let t0 = Instant::now();
        let owned = |p: u32| p < 2;
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Partitions 2 and 3 belong to a member that died; 3 has records waiting.
        assert!(w
            .observe(
                at(0),
                owned,
                &[
                    reading(0, 5, 9),
                    reading(1, 4, 4),
                    reading(2, 7, 7),
                    reading(3, 3, 8)
                ]
            )
            .is_empty());
        assert!(w
            .observe(
                at(9),
                owned,
                &[
                    reading(0, 9, 12),
                    reading(1, 4, 4),
                    reading(2, 7, 7),
                    reading(3, 3, 9)
                ]
            )
            .is_empty());
        assert_eq!(
            w.observe(
                at(10),
                owned,
                &[
                    reading(0, 12, 12),
                    reading(1, 4, 4),
                    reading(2, 7, 7),
                    reading(3, 3, 9)
                ]
            ),
            vec![3]
        );
        // Right after a rejoin, the watch waits again before calling another.
        assert!(w
            .observe(at(15), |_| false, &[reading(0, 12, 13), reading(3, 3, 9)])
            .is_empty());
    }

    #[test]
    fn a_commit_that_moves_is_not_a_stall() {
        let mut w = StallWatch::new(AFTER);
        let t0 = Instant::now();
        let owned = |p: u32| p == 0;
        for s in 0..30 {
            let committed = 100 + s as i64;
            let got = w.observe(
                t0 + Duration::from_secs(s),
                owned,
                &[reading(0, 0, 0), reading(1, committed, committed + 50)],
            );
            assert!(got.is_empty(), "second {s}: {got:?}");
        }
    }

    #[test]
    fn every_partition_stalled_alike_is_not_an_orphan() {
        // The store is down: no member commits, its own partitions included.
        let mut w = StallWatch::new(AFTER);
        let t0 = Instant::now();
        let owned = |p: u32| p == 0;
        let readings = [reading(0, 10, 20), reading(1, 10, 20)];
        for s in 0..30 {
            assert!(w
                .observe(t0 + Duration::from_secs(s), owned, &readings)
                .is_empty());
        }
    }

    #[test]
    fn a_partition_without_waiting_records_is_never_stalled() {
        let mut w = StallWatch::new(AFTER);
        let t0 = Instant::now();
        for s in 0..30 {
            assert!(w
                .observe(
                    t0 + Duration::from_secs(s),
                    |_| false,
                    &[reading(1, 40, 40)]
                )
                .is_empty());
        }
        assert_eq!(w.check_every(), Duration::from_millis(2500));
    }

    #[test]
    fn a_member_whose_own_work_does_not_move_waits_twice_as_long() {
        // Its partition is quiet (nothing waiting) while another's commit is still: the
        // other member may be slow for a shared reason, or gone.
        let mut w = StallWatch::new(AFTER);
        let t0 = Instant::now();
        for s in 0..20 {
            let got = w.observe(
                t0 + Duration::from_secs(s),
                |p| p == 0,
                &[reading(0, 8, 8), reading(1, 3, 9)],
            );
            assert!(got.is_empty(), "second {s}: {got:?}");
        }
        assert_eq!(
            w.observe(
                t0 + Duration::from_secs(20),
                |p| p == 0,
                &[reading(0, 8, 8), reading(1, 3, 9)]
            ),
            vec![1]
        );
        // And then not again within the wait.
        assert!(w
            .observe(
                t0 + Duration::from_secs(25),
                |p| p == 0,
                &[reading(1, 3, 9)]
            )
            .is_empty());
    }

    #[test]
    fn a_rebalance_starts_the_timers_again() {
        let mut w = StallWatch::new(AFTER);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Partition 1 stalls from second 0 while this member owns 0 and 1.
        for s in 0..6 {
            let c = 10 + s as i64;
            assert!(w
                .observe(at(s), |p| p < 2, &[reading(0, c, c + 5), reading(1, 3, 9)])
                .is_empty());
        }
        // Partition 1 moves to another member, which needs time to start on it: the
        // stall it had here does not count against the new owner.
        for s in 6..15 {
            let c = 10 + s as i64;
            let got = w.observe(at(s), |p| p == 0, &[reading(0, c, c + 5), reading(1, 3, 9)]);
            assert!(got.is_empty(), "second {s}: {got:?}");
        }
        let c = 10 + 16;
        assert_eq!(
            w.observe(
                at(16),
                |p| p == 0,
                &[reading(0, c, c + 5), reading(1, 3, 9)]
            ),
            vec![1]
        );
    }

    #[test]
    fn a_partition_a_rejoin_did_not_move_is_tried_again_only_much_later() {
        // A record nobody can read holds partition 1's commit: a rejoin does not help.
        let mut w = StallWatch::new(AFTER);
        let t0 = Instant::now();
        let mut rejoins = Vec::new();
        for s in 0..200u64 {
            let c = 10 + s as i64;
            let got = w.observe(
                t0 + Duration::from_secs(s),
                |p| p == 0,
                &[reading(0, c, c + 5), reading(1, 3, 4)],
            );
            if !got.is_empty() {
                rejoins.push(s);
            }
        }
        assert_eq!(rejoins, vec![10, 110], "once, then ten waits later");
        // Once its commit moves, a new stall counts afresh.
        let got = w.observe(
            t0 + Duration::from_secs(200),
            |p| p == 0,
            &[reading(0, 300, 305), reading(1, 4, 6)],
        );
        assert!(got.is_empty());
        assert_eq!(
            w.observe(
                t0 + Duration::from_secs(210),
                |p| p == 0,
                &[reading(0, 310, 315), reading(1, 4, 6)]
            ),
            vec![1]
        );
    }
}
