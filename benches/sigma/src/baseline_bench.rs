//! `baseline-bench`: the statistical baselines' speed and state size.
//!
//! ```text
//! baseline-bench --kind numeric|new_terms|rare_values|trend [--entities N] [--rounds R]
//! ```
//!
//! Generated process events (8192 per batch) from `--entities` distinct users and hosts,
//! each seen `--rounds` times an hour apart, all built before the clock starts, go
//! through one baseline of the kind asked (numeric anomaly per user, new terms per host,
//! rare values, trend per host) on one core. It prints events per second, the bytes of
//! the entity table divided by the entities, and the growth of the process's resident
//! memory while the baseline ran divided by the entities (allocator included, and what
//! it kept of the table's earlier copies). One kind per process, so
//! that memory freed by one is not reused by the next.

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
    /// Which kind of baseline.
    #[arg(long)]
    kind: String,
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
    let Some((name, text)) = BASELINES.iter().find(|(n, _)| *n == args.kind) else {
        anyhow::bail!("--kind: one of numeric, new_terms, rare_values, trend");
    };
    let mut all = Vec::new();
    for round in 0..args.rounds {
        all.extend(batches(args.entities, round).context("building events")?);
    }
    let mut set = BaselineSet::default();
    set.add_text(std::path::Path::new(name), text);
    anyhow::ensure!(set.errors.is_empty(), "{:?}", set.errors);
    let mut engine = BaselineEngine::new(&set.defs, args.entities + 1);
    let before = rss();
    let (mut events, mut alerts) = (0usize, 0usize);
    let started = Instant::now();
    for batch in &all {
        events += batch.len();
        alerts += engine.observe(batch).len();
    }
    let busy = started.elapsed();
    let grown = rss().saturating_sub(before);
    let (entities, table) = engine
        .stats()
        .first()
        .map_or((0, 0), |s| (s.entities, s.table_bytes));
    println!(
        "{name:<12} {} entities x {} events, batches of 8192, one core: {:.0} events/s, {:.3} µs/event, {entities} entities held, table {:.1} MiB ({:.1} bytes/entity), RSS growth {:.1} MiB ({:.1} bytes/entity), {alerts} alerts",
        args.entities,
        args.rounds,
        events as f64 / busy.as_secs_f64().max(1e-9),
        busy.as_secs_f64() * 1e6 / events.max(1) as f64,
        table as f64 / (1 << 20) as f64,
        table as f64 / args.entities.max(1) as f64,
        grown as f64 / (1 << 20) as f64,
        grown as f64 / args.entities.max(1) as f64,
    );
    Ok(())
}
