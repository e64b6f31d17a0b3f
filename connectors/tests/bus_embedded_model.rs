//! The embedded log against an in-memory model (random appends, commits, restarts and
//! torn tails), and a crash test: a child process appending is killed with SIGKILL at
//! random points, and every append it saw acknowledged must be there after restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use vedette_connectors::bus::codec::{self, BatchHeader};
use vedette_connectors::bus::embedded::{EmbeddedBus, EmbeddedLog, LogOptions, SyncPolicy};
use vedette_core::traits::Bus;

/// Record bytes apart from the payload, for these headers (see the record format).
const RECORD_OVERHEAD: usize = 8 + 1 + 8 + 8 + 2 + 8 + 6 + HEADER_NAMES;
const HEADER_NAMES: usize = "acme".len() + "model".len();
const PARTITIONS: u32 = 2;
const SEGMENT_BYTES: u64 = 200;

fn header() -> BatchHeader {
    BatchHeader {
        schema_version: 1,
        tenant: "acme".into(),
        source: "model".into(),
        dataset: String::new(),
        ingest_time_ms: 0,
    }
}

fn payload(seed: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed as usize * 31 + i) as u8).collect()
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        partition: u32,
        seed: u32,
        len: usize,
    },
    Commit {
        group: u8,
        partition: u32,
        at: usize,
    },
    Restart,
    Tear {
        partition: u32,
        records: usize,
        keep: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..PARTITIONS, any::<u32>(), 0usize..120)
            .prop_map(|(partition, seed, len)| Op::Append { partition, seed, len }),
        2 => (0u8..2, 0..PARTITIONS, 0usize..40)
            .prop_map(|(group, partition, at)| Op::Commit { group, partition, at }),
        1 => Just(Op::Restart),
        1 => (0..PARTITIONS, 1usize..4, 0usize..200)
            .prop_map(|(partition, records, keep)| Op::Tear { partition, records, keep }),
    ]
}

/// What the log should hold.
#[derive(Debug, Default)]
struct Model {
    /// Per partition: payloads in offset order, and where the active segment begins.
    records: BTreeMap<u32, Vec<Vec<u8>>>,
    active_start: BTreeMap<u32, usize>,
    commits: BTreeMap<(u8, u32), u64>,
}

impl Model {
    fn append(&mut self, partition: u32, bytes: Vec<u8>) {
        let records = self.records.entry(partition).or_default();
        let start = self.active_start.entry(partition).or_default();
        let active: usize = records[*start..]
            .iter()
            .map(|r| r.len() + RECORD_OVERHEAD)
            .sum();
        if active as u64 >= SEGMENT_BYTES && records.len() > *start {
            *start = records.len();
        }
        records.push(bytes);
    }
}

fn segment_of_last(dir: &Path, partition: u32) -> std::path::PathBuf {
    let pdir = dir.join(format!("topics/events/{partition}"));
    let mut names: Vec<_> = std::fs::read_dir(&pdir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    names.sort();
    names.pop().unwrap()
}

fn open(dir: &Path) -> Arc<EmbeddedLog> {
    let options = LogOptions {
        partitions: PARTITIONS,
        segment_bytes: SEGMENT_BYTES,
        ..LogOptions::default()
    };
    EmbeddedLog::open(dir, options).unwrap()
}

fn check(log: &EmbeddedLog, model: &Model) {
    for p in 0..PARTITIONS {
        let want = model.records.get(&p).cloned().unwrap_or_default();
        let got = log.read("events", p, 0, usize::MAX).unwrap();
        let got_payloads: Vec<Vec<u8>> = got.iter().map(|r| r.payload.clone()).collect();
        assert_eq!(got_payloads, want, "partition {p}");
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.offset, i as u64);
            assert_eq!(r.header, header());
        }
        assert_eq!(log.bounds("events", p).unwrap(), (0, want.len() as u64));
        for g in 0..2u8 {
            assert_eq!(
                log.committed(&format!("g{g}"), "events", p),
                model.commits.get(&(g, p)).copied()
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn the_log_behaves_like_its_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        log.partitions("events").unwrap();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Append { partition, seed, len } => {
                    let bytes = payload(seed, len);
                    let offset = log.append("events", partition, &header(), &bytes).unwrap();
                    prop_assert_eq!(offset, model.records.get(&partition).map_or(0, Vec::len) as u64);
                    model.append(partition, bytes);
                }
                Op::Commit { group, partition, at } => {
                    let len = model.records.get(&partition).map_or(0, Vec::len);
                    let next = at.min(len) as u64;
                    log.commit(&format!("g{group}"), "events", partition, next).unwrap();
                    model.commits.insert((group, partition), next);
                }
                Op::Restart => {
                    log.close().unwrap();
                    drop(log);
                    log = open(dir.path());
                }
                Op::Tear { partition, records, keep } => {
                    let all = model.records.entry(partition).or_default();
                    let start = *model.active_start.entry(partition).or_default();
                    let in_active = all.len() - start;
                    let records = records.min(in_active);
                    if records == 0 {
                        continue;
                    }
                    // Damage the last `records` records: cut inside the first of them.
                    let first = all.len() - records;
                    let first_size = all[first].len() + RECORD_OVERHEAD;
                    let cut: usize = all[first..].iter().map(|r| r.len() + RECORD_OVERHEAD).sum::<usize>()
                        - keep % first_size;
                    log.close().unwrap();
                    drop(log);
                    let segment = segment_of_last(dir.path(), partition);
                    let len = std::fs::metadata(&segment).unwrap().len();
                    let f = std::fs::OpenOptions::new().write(true).open(&segment).unwrap();
                    f.set_len(len - cut as u64).unwrap();
                    drop(f);
                    all.truncate(first);
                    // Commits past the cut are brought back to the partition's end, so
                    // the records that take the lost offsets are read.
                    for g in 0..2u8 {
                        if let Some(next) = model.commits.get_mut(&(g, partition)) {
                            *next = (*next).min(first as u64);
                        }
                    }
                    log = open(dir.path());
                }
            }
            check(&log, &model);
        }
    }
}

/// Environment variable that turns the `crash_child` test into the appending child.
const CHILD_DIR: &str = "VEDETTE_CRASH_CHILD_DIR";
const CHILD_INTERVAL: &str = "VEDETTE_CRASH_CHILD_INTERVAL_MS";

/// Not a test on its own: run by `every_acknowledged_append_survives_sigkill` as a child
/// process, it appends batches forever and prints each acknowledged position.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let interval: u64 = std::env::var(CHILD_INTERVAL).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let sync = if interval == 0 {
            SyncPolicy::EveryAppend
        } else {
            SyncPolicy::Interval(Duration::from_millis(interval))
        };
        let log = EmbeddedLog::open(
            Path::new(&dir),
            LogOptions {
                partitions: 3,
                segment_bytes: 64 * 1024,
                sync,
                ..LogOptions::default()
            },
        )
        .unwrap();
        let bus = EmbeddedBus::new(log, "host.name");
        let run = std::process::id();
        for i in 0.. {
            let tag = format!("{run}.{i}");
            let b = common::bus_suite::batch(&tag, 40, 1);
            for p in bus.append("events", &b).await.unwrap() {
                println!("acked {} {} {tag}", p.partition, p.offset);
            }
        }
    });
}

#[test]
fn every_acknowledged_append_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(u32, u64, String)> = Vec::new();
    let mut seed = 0x9e37_79b9_u64;
    for round in 0..8 {
        let interval = if round % 2 == 0 { "0" } else { "7" };
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_INTERVAL, interval)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let kill_after = 20 + (seed >> 33) % 200;
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let parts: Vec<&str> = line.split(' ').collect();
                if parts.len() == 4 && parts[0] == "acked" {
                    lines.push((
                        parts[1].parse().unwrap(),
                        parts[2].parse().unwrap(),
                        parts[3].to_string(),
                    ));
                }
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(kill_after));
        // SIGKILL: no destructor, no flush, no clean close.
        child.kill().unwrap();
        child.wait().unwrap();
        acked.extend(reader.join().unwrap());
        let log = EmbeddedLog::open(dir.path(), LogOptions::default()).unwrap();
        for (partition, offset, tag) in &acked {
            let records = log.read("events", *partition, *offset, 1).unwrap();
            let record = records
                .first()
                .unwrap_or_else(|| panic!("acked {partition}/{offset} ({tag}) lost"));
            assert_eq!(record.offset, *offset);
            let batch = codec::decode_batch(&record.header, &record.payload).unwrap();
            assert_eq!(common::bus_suite::ids(&batch)[0], format!("{tag}-0"));
        }
        log.close().unwrap();
    }
    eprintln!("{} acknowledged appends checked over 8 kills", acked.len());
    assert!(
        acked.len() > 8,
        "the child acknowledged only {} appends",
        acked.len()
    );
}
