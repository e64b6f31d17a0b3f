//! `sigma-bench`: Vedette's Sigma engine and its peers on the same rules and events.
//!
//! ```text
//! sigma-bench --engine vedette|rsigma|sigma-rust --rules DIR [--rules DIR] \
//!             --events 1000000 [--threads 1]
//! ```
//!
//! Events are the corpora's Windows events replicated and varied to `--events`. Each
//! engine loads the rules (timed), prepares the events its own way (untimed), then
//! evaluates them (timed). One line of JSON on stdout: load time, events/s, hits.
//! Run one engine per process so memory figures stay separate (see
//! `benches/sigma.sh`). `--write FILE` writes the events instead, for whole-command runs.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use clap::Parser;
use rayon::prelude::*;
use vedette_bench_sigma::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Flags.
#[derive(Debug, Parser)]
struct Args {
    /// `vedette`, `rsigma` or `sigma-rust`.
    #[arg(long, default_value = "vedette")]
    engine: String,
    /// Rule folders.
    #[arg(long, required = true)]
    rules: Vec<PathBuf>,
    /// Number of events.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Instead of measuring, write the events (with the `product`, `category` and
    /// `service` rsigma's routing reads) to this JSON Lines file.
    #[arg(long)]
    write: Option<PathBuf>,
    /// Evaluate the events this many times (Vedette only) and report the fastest pass;
    /// more passes also make a profile of the evaluation alone.
    #[arg(long, default_value_t = 1)]
    passes: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()?;
    let corpora = corpora_dir()?;
    let base = corpus_windows_events(&corpora)?;
    let lines = replicate(&base, args.events)?;
    if let Some(path) = &args.write {
        let batches = vedette_batches(&lines)?;
        let events = rsigma_events(&lines, &batches)?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for e in &events {
            serde_json::to_writer(&mut out, e)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        std::io::Write::flush(&mut out)?;
        return Ok(());
    }
    let (rules, load_ms, secs, hits) = match args.engine.as_str() {
        "vedette" => {
            let (det, load) = vedette_load(&args.rules)?;
            let batches = vedette_batches(&lines)?;
            let mut best: Option<(std::time::Duration, usize)> = None;
            for _ in 0..args.passes.max(1) {
                let t = Instant::now();
                let hits: usize = batches
                    .par_iter()
                    .map(|b| det.matches(b).map(|h| h.len()))
                    .collect::<Result<Vec<_>, _>>()?
                    .iter()
                    .sum();
                let took = t.elapsed();
                if best.is_none_or(|(b, _)| took < b) {
                    best = Some((took, hits));
                }
            }
            let (took, hits) = best.unwrap_or_default();
            (det.rules().len(), load, took, hits)
        }
        "rsigma" => {
            let (engine, load) = rsigma_load(&args.rules)?;
            let batches = vedette_batches(&lines)?;
            let events = rsigma_events(&lines, &batches)?;
            drop(batches);
            let t = Instant::now();
            let hits: usize = events
                .par_chunks(1024)
                .map(|chunk| {
                    chunk
                        .iter()
                        .map(|v| engine.evaluate(&rsigma_eval::JsonEvent::borrow(v)).len())
                        .sum::<usize>()
                })
                .sum();
            (engine.rules().len(), load, t.elapsed(), hits)
        }
        "sigma-rust" => {
            let (rules, _failed, load) = sigma_rust_load(&args.rules)?;
            let events = sigma_rust_events(&lines)?;
            let t = Instant::now();
            let hits: usize = events
                .par_chunks(256)
                .map(|chunk| {
                    chunk
                        .iter()
                        .map(|e| rules.iter().filter(|r| r.is_match(e)).count())
                        .sum::<usize>()
                })
                .sum();
            (rules.len(), load, t.elapsed(), hits)
        }
        other => bail!("unknown engine `{other}`"),
    };
    let eps = args.events as f64 / secs.as_secs_f64().max(1e-9);
    println!(
        "{}",
        serde_json::json!({
            "engine": args.engine,
            "threads": args.threads,
            "rules": rules,
            "load_ms": load_ms.as_millis() as u64,
            "events": args.events,
            "eval_s": (secs.as_secs_f64() * 1000.0).round() / 1000.0,
            "events_per_s": eps.round(),
            "hits": hits,
        })
    );
    Ok(())
}
