//! `vedette-bench`: generate a scenario's event stream to files, check alerts against its
//! ground truth, or run it end to end against `vedette run`.
//!
//! ```text
//! vedette-bench generate --scenario benches/scenarios/embedded.toml --events 1000000 --out DIR
//! vedette-bench recall --truth DIR/truth.jsonl ALERTS.jsonl
//! vedette-bench run --scenario benches/scenarios/embedded.toml --vedette target/release/vedette
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::Value;
use vedette_bench::generate::{generate, read_truth};
use vedette_bench::recall::recall;
use vedette_bench::run::{run, RunOptions};
use vedette_bench::scenario::Scenario;

/// Command line.
#[derive(Parser)]
#[command(about = "Vedette's benchmark suite: event generator with ground truth, end-to-end runs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a scenario's stream to files: one per source, and `truth.jsonl`.
    Generate {
        /// The scenario file.
        #[arg(long)]
        scenario: PathBuf,
        /// Records to write.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Also write every JSON record, in stream order, to `json-events.jsonl`.
        #[arg(long)]
        combined_json: bool,
        /// In `json-events.jsonl`, add the Sigma `product`/`category`/`service` fields
        /// (for peers that route rules by them, such as rsigma).
        #[arg(long)]
        logsource_fields: bool,
        /// Overrides the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Check alerts (JSON lines, e.g. `vedette detect` output) against a truth file; exits
    /// with 1 unless every story's alert is there.
    Recall {
        /// The `truth.jsonl` of a generation.
        #[arg(long)]
        truth: PathBuf,
        /// Files of alerts, one JSON object per line.
        alerts: Vec<PathBuf>,
    },
    /// Run a scenario end to end against `vedette run`.
    Run {
        /// The scenario file.
        #[arg(long)]
        scenario: PathBuf,
        /// The `vedette` binary (a release build).
        #[arg(long, default_value = "target/release/vedette")]
        vedette: PathBuf,
        /// Kafka brokers (else `VEDETTE_KAFKA_BROKERS`) for a Kafka scenario.
        #[arg(long)]
        kafka: Option<String>,
        /// ClickHouse URL (else `VEDETTE_CLICKHOUSE_URL`) for a ClickHouse scenario.
        #[arg(long)]
        clickhouse: Option<String>,
        /// CPUs the service runs on (a `taskset -c` list, e.g. `0`).
        #[arg(long)]
        cpus: Option<String>,
        /// Seconds of each phase (overrides the scenario).
        #[arg(long)]
        seconds: Option<u64>,
        /// Events per second of the latency phase (overrides the scenario; default half
        /// the capacity measured).
        #[arg(long)]
        rate: Option<u64>,
        /// Then wait this many seconds (the Parquet store compacts a folder quiet for
        /// five minutes) and measure the bytes on disk and the queries again.
        #[arg(long, default_value_t = 0)]
        settle: u64,
    },
    /// Compare the hits of `vedette detect` and `rsigma engine eval` on the same events:
    /// hits per rule id, and the rules where they differ.
    Agree {
        /// `vedette detect` output (JSON lines).
        #[arg(long)]
        vedette: PathBuf,
        /// `rsigma engine eval` output (JSON lines).
        #[arg(long)]
        rsigma: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate {
            scenario,
            events,
            out,
            combined_json,
            logsource_fields,
            seed,
        } => {
            let mut scenario = Scenario::load(&scenario)?;
            if let Some(seed) = seed {
                scenario.generate.seed = seed;
            }
            let started = std::time::Instant::now();
            let written = generate(
                &scenario.generate,
                events,
                &out,
                combined_json,
                logsource_fields,
            )?;
            let mut per: Vec<String> = written
                .per_source
                .iter()
                .map(|(s, n)| format!("{} {n}", s.name()))
                .collect();
            per.sort();
            eprintln!(
                "{events} records in {:.1} s to {}: {}; {} stories in truth.jsonl",
                started.elapsed().as_secs_f64(),
                out.display(),
                per.join(", "),
                written.truth.len()
            );
        }
        Command::Recall { truth, alerts } => {
            let truth = read_truth(&truth)?;
            let mut lines = Vec::new();
            for path in &alerts {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                for line in text.lines().filter(|l| l.starts_with('{')) {
                    lines.push(serde_json::from_str::<Value>(line)?);
                }
            }
            let r = recall(&truth, &lines);
            println!(
                "recall {:.1} % of {} stories ({})",
                r.ratio() * 100.0,
                truth.len(),
                r.summary()
            );
            for t in &r.missed {
                println!("missed: {t}");
            }
            if !r.missed.is_empty() {
                std::process::exit(1);
            }
        }
        Command::Run {
            scenario,
            vedette,
            kafka,
            clickhouse,
            cpus,
            seconds,
            rate,
            settle,
        } => {
            let scenario = Scenario::load(&scenario)?;
            let report = run(
                &scenario,
                &RunOptions {
                    vedette,
                    kafka,
                    clickhouse,
                    cpus,
                    seconds,
                    rate,
                    settle_seconds: settle,
                },
            )?;
            if !report.full_recall {
                anyhow::bail!("recall below 100 %: see the missed stories above");
            }
        }
        Command::Agree { vedette, rsigma } => {
            print!("{}", vedette_bench::agree::compare(&vedette, &rsigma)?);
        }
    }
    Ok(())
}
