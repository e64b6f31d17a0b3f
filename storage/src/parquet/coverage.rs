//! What a compacted file stands for: the bus positions and the file names it replaced.
//!
//! A file written from a bus batch is named after its position
//! (`{topic}-p{partition}-o{offset}-{part}.parquet`); any other write is a loose file
//! (`w{ms}-{pid}-{seq}-{part}.parquet`); a merge writes `compacted-{ms}-{pid}-{seq}.parquet`. A
//! compacted file carries, in its Parquet key-value metadata, the positions of every
//! bus file it holds (as offset ranges per topic and partition, through earlier merges
//! too) and the names of the loose and compacted files it merged. Every file of its
//! folder that it accounts for is hidden from queries and deleted, and a re-delivered
//! batch whose position it holds is not written again.

use std::collections::BTreeMap;

use vedette_core::CoreError;

/// Key-value metadata key of the covered bus positions.
pub(crate) const COVERS_KEY: &str = "vedette.covers";
/// Key-value metadata key of the merged loose and compacted file names.
pub(crate) const REPLACES_KEY: &str = "vedette.replaces";
/// Name prefix of compacted files.
pub(crate) const COMPACTED_PREFIX: &str = "compacted-";

/// The bus position a file was written from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BusKey {
    /// Topic.
    pub(crate) topic: String,
    /// Partition.
    pub(crate) partition: u32,
    /// Offset of the batch.
    pub(crate) offset: u64,
}

/// What a file name says about where its rows came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileOrigin {
    /// Written from one bus batch.
    Bus(BusKey),
    /// Written by a merge.
    Compacted,
    /// Written by a direct append (no bus position).
    Loose,
}

/// The origin of a `.parquet` file name.
pub(crate) fn origin(file_name: &str) -> FileOrigin {
    let stem = file_name.strip_suffix(".parquet").unwrap_or(file_name);
    if stem.starts_with(COMPACTED_PREFIX) {
        return FileOrigin::Compacted;
    }
    bus_key(stem).map_or(FileOrigin::Loose, FileOrigin::Bus)
}

/// Parses `{topic}-p{partition}-o{offset}-{part}`.
fn bus_key(stem: &str) -> Option<BusKey> {
    let (rest, part) = stem.rsplit_once('-')?;
    part.parse::<u32>().ok()?;
    let (rest, offset) = rest.rsplit_once("-o")?;
    let (topic, partition) = rest.rsplit_once("-p")?;
    if topic.is_empty() {
        return None;
    }
    Some(BusKey {
        topic: topic.to_string(),
        partition: partition.parse().ok()?,
        offset: offset.parse().ok()?,
    })
}

/// The file-name stem of a batch read from the bus.
pub(crate) fn bus_stem(topic: &str, partition: u32, offset: u64) -> String {
    format!("{topic}-p{partition:05}-o{offset:020}")
}

/// Bus positions and file names a compacted file accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Coverage {
    /// Offset ranges (inclusive, sorted, disjoint) per (topic, partition).
    ranges: BTreeMap<(String, u32), Vec<(u64, u64)>>,
    /// Names of the loose and compacted files merged.
    replaces: Vec<String>,
}

impl Coverage {
    /// Whether this coverage holds the rows of the bus batch `key`.
    pub(crate) fn covers(&self, key: &BusKey) -> bool {
        let Some(ranges) = self.ranges.get(&(key.topic.clone(), key.partition)) else {
            return false;
        };
        let i = ranges.partition_point(|&(_, hi)| hi < key.offset);
        ranges.get(i).is_some_and(|&(lo, _)| lo <= key.offset)
    }

    /// Whether this coverage replaced the loose or compacted file `name`.
    pub(crate) fn replaces(&self, name: &str) -> bool {
        self.replaces.iter().any(|r| r == name)
    }

    /// Whether the file `name` of the same folder is accounted for.
    pub(crate) fn accounts_for(&self, name: &str) -> bool {
        match origin(name) {
            FileOrigin::Bus(key) => self.covers(&key),
            FileOrigin::Compacted | FileOrigin::Loose => self.replaces(name),
        }
    }

    /// Adds the file `name` merged into the compacted file (and, for a compacted
    /// input, everything it covered).
    pub(crate) fn add_input(&mut self, name: &str, input_coverage: Option<&Coverage>) {
        match origin(name) {
            FileOrigin::Bus(key) => self.add_position(&key),
            FileOrigin::Compacted | FileOrigin::Loose => self.replaces.push(name.to_string()),
        }
        if let Some(c) = input_coverage {
            for ((topic, partition), ranges) in &c.ranges {
                for &(lo, hi) in ranges {
                    self.add_range(topic, *partition, lo, hi);
                }
            }
        }
    }

    /// Adds the rows of the bus batch `key`, written into the file itself.
    pub(crate) fn add_position(&mut self, key: &BusKey) {
        self.add_range(&key.topic, key.partition, key.offset, key.offset);
    }

    fn add_range(&mut self, topic: &str, partition: u32, lo: u64, hi: u64) {
        let ranges = self
            .ranges
            .entry((topic.to_string(), partition))
            .or_default();
        ranges.push((lo, hi));
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for &(lo, hi) in ranges.iter() {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        *ranges = merged;
    }

    /// The two metadata values: covered positions, replaced names.
    ///
    /// Positions read `topic/partition:lo-hi,lo-hi topic/partition:...`; names are
    /// separated by spaces (file names never hold one).
    pub(crate) fn encode(&self) -> (String, String) {
        let covers = self
            .ranges
            .iter()
            .map(|((topic, partition), ranges)| {
                let list: Vec<String> =
                    ranges.iter().map(|(lo, hi)| format!("{lo}-{hi}")).collect();
                format!("{topic}/{partition}:{}", list.join(","))
            })
            .collect::<Vec<_>>()
            .join(" ");
        (covers, self.replaces.join(" "))
    }

    /// Reads back what [`Coverage::encode`] wrote.
    pub(crate) fn decode(covers: &str, replaces: &str) -> Result<Coverage, CoreError> {
        let bad = |what: &str| CoreError::Internal(format!("compacted file metadata: bad {what}"));
        let mut c = Coverage::default();
        for item in covers.split_whitespace() {
            let (key, list) = item.rsplit_once(':').ok_or_else(|| bad(item))?;
            let (topic, partition) = key.rsplit_once('/').ok_or_else(|| bad(item))?;
            let partition: u32 = partition.parse().map_err(|_| bad(item))?;
            for range in list.split(',') {
                let (lo, hi) = range.split_once('-').ok_or_else(|| bad(range))?;
                let lo: u64 = lo.parse().map_err(|_| bad(range))?;
                let hi: u64 = hi.parse().map_err(|_| bad(range))?;
                if lo > hi {
                    return Err(bad(range));
                }
                c.add_range(topic, partition, lo, hi);
            }
        }
        c.replaces = replaces.split_whitespace().map(str::to_string).collect();
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tell_their_origin() {
        let stem = bus_stem("dead-letters", 3, 42);
        assert_eq!(
            origin(&format!("{stem}-001.parquet")),
            FileOrigin::Bus(BusKey {
                topic: "dead-letters".into(),
                partition: 3,
                offset: 42
            })
        );
        assert_eq!(origin("w1733-00000001-000.parquet"), FileOrigin::Loose);
        assert_eq!(
            origin("compacted-1733-000001.parquet"),
            FileOrigin::Compacted
        );
        assert_eq!(origin("-p00001-o1-000.parquet"), FileOrigin::Loose);
        assert_eq!(origin("x-pz-o1-000.parquet"), FileOrigin::Loose);
    }

    #[test]
    fn ranges_merge_and_survive_encoding() {
        let mut c = Coverage::default();
        for o in [5, 3, 4, 9, 10, 20] {
            c.add_input(&format!("{}-000.parquet", bus_stem("events", 1, o)), None);
        }
        c.add_input("w1-00000001-000.parquet", None);
        let mut inner = Coverage::default();
        inner.add_input(&format!("{}-000.parquet", bus_stem("alerts", 0, 7)), None);
        c.add_input("compacted-9-000002.parquet", Some(&inner));
        let (covers, replaces) = c.encode();
        assert_eq!(covers, "alerts/0:7-7 events/1:3-5,9-10,20-20");
        assert_eq!(
            replaces,
            "w1-00000001-000.parquet compacted-9-000002.parquet"
        );
        let back = Coverage::decode(&covers, &replaces).unwrap();
        assert_eq!(back, c);
        for (o, want) in [
            (2, false),
            (3, true),
            (5, true),
            (6, false),
            (10, true),
            (20, true),
        ] {
            let key = BusKey {
                topic: "events".into(),
                partition: 1,
                offset: o,
            };
            assert_eq!(back.covers(&key), want, "offset {o}");
        }
        assert!(back.accounts_for("compacted-9-000002.parquet"));
        assert!(back.accounts_for(&format!("{}-002.parquet", bus_stem("alerts", 0, 7))));
        assert!(!back.accounts_for("w2-00000001-000.parquet"));
    }

    #[test]
    fn damaged_metadata_is_an_error() {
        for covers in [
            "events",
            "events/x:1-2",
            "events/1:2-1",
            "events/1:a-b",
            "events/1:3",
        ] {
            assert!(Coverage::decode(covers, "").is_err(), "{covers}");
        }
    }
}
