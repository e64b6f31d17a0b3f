//! `baseline-bench`: the statistical baselines' speed and state size.
//!
//! ```text
//! baseline-bench [--entities N] [--rounds R]
//! ```
//!
//! Generated process events (8192 per batch) from `--entities` distinct users and hosts,
//! each seen `--rounds` times an hour apart, go through one baseline of each kind (numeric
//! anomaly per user, new terms per host, rare values, trend per host) separately, on one
//! core. For each: events per second, and the growth of the process's resident memory
//! over the run divided by the entities (bytes of state per entity, allocator included).

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use vedette_core::batch::EventBatch;
use vedette_core::event::{Event, EventBatchBuilder};
use vedette_detect::baseline::{BaselineEngine, BaselineSet};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command line.
#[derive(Parser)]
struct Args {
    /// Distinct entities.
    #[arg(long, default_value_t = 1_000_000)]
    entities: usize,
    /// Events per entity, an hour apart.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

const BASELINES: [(&str, &str); 4] = [
    (
        "numeric",
        "id: n\ntitle: n\nentity: user.name\nnumeric_anomaly:\n  interval_minutes: 60\n",
    ),
    (
        "new_terms",
        "id: t\ntitle: t\nentity: host.name\nnew_terms:\n  field: process.parent.executable\n  learning_hours: 1\n",
    ),
    (
        "rare_values",
        "id: r\ntitle: r\nentity: host.name\nrare_values:\n  field: process.executable\n",
    ),
    (
        "trend",
        "id: d\ntitle: d\nentity: host.name\ntrend:\n  value: count\n  aggregate: sum\n  interval_minutes: 60\n  threshold: 100\n  horizon_hours: 24\n",
    ),
];

/// Resident memory of this process, bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// One round's batches: every entity once, at hour `round`.
fn batches(entities: usize, round: usize) -> anyhow::Result<Vec<EventBatch>> {
    let mut out = Vec::new();
    let mut b = EventBatchBuilder::new();
    for e in 0..entities {
        b.append(&Event {
            id: format!("{round}-{e}"),
            timestamp_ms: 1_795_132_800_000 + (round as i64) * 3_600_000 + (e % 1000) as i64,
            dataset: "windows.sysmon".into(),
            host_name: Some(format!("host-{e}")),
            user_name: Some(format!("user-{e}")),
            process_executable: Some(format!("C:\\Apps\\tool-{}.exe", e % 5000)),
            parent_executable: Some(format!("C:\\Windows\\parent-{}.exe", (e + round) % 7)),
            ..Event::default()
        });
        if b.len() == 8192 || e + 1 == entities {
            out.push(EventBatch::new(b.finish()?, "bench", "default", 0));
            b = EventBatchBuilder::new();
        }
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "# {} entities, {} events each, batches of 8192, one core",
        args.entities, args.rounds
    );
    for (name, text) in BASELINES {
        let mut set = BaselineSet::default();
        set.add_text(std::path::Path::new(name), text);
        anyhow::ensure!(set.errors.is_empty(), "{:?}", set.errors);
        let mut engine = BaselineEngine::new(&set.defs, args.entities + 1);
        let before = rss();
        let (mut events, mut alerts, mut busy) = (0usize, 0usize, std::time::Duration::ZERO);
        for round in 0..args.rounds {
            for batch in batches(args.entities, round).context("building events")? {
                events += batch.len();
                let started = Instant::now();
                alerts += engine.observe(&batch).len();
                busy += started.elapsed();
            }
        }
        let grown = rss().saturating_sub(before);
        let entities = engine.stats().first().map_or(0, |s| s.entities);
        println!(
            "{name:<12} {:>10.0} events/s  {:>7.3} µs/event  {entities:>8} entities  {:>6.1} bytes/entity (RSS growth {:.1} MiB)  {alerts} alerts",
            events as f64 / busy.as_secs_f64().max(1e-9),
            busy.as_secs_f64() * 1e6 / events.max(1) as f64,
            grown as f64 / entities.max(1) as f64,
            grown as f64 / (1 << 20) as f64,
        );
    }
    Ok(())
}
