//! `detect-stage-bench`: YARA alone, and the whole detection stage (Sigma + YARA +
//! baselines) on one stream of batches, on both cores.
//!
//! ```text
//! detect-stage-bench [--yara DIR]... [--yara-prefix P] [--sigma DIR]... [--batches N]
//!                    [--stream corpus|generated]
//! ```
//!
//! Events, in batches of 8192: `corpus` (the default), the corpora's Windows events
//! (SigmaHQ's true-positive logs and sample logs: attacks, mostly), replicated and varied
//! (as `sigma-bench` does); `generated`, the Windows part (Sysmon, Security, PowerShell)
//! of the benchmark suite's stream of `benches/scenarios/embedded.toml`: an estate's
//! ordinary activity with an attack story every 2,000 events. YARA rules: `--yara` (default: the corpus's signature-base
//! set, about 5,500 rules, with Vedette's own; `--yara-prefix gen_` keeps the files whose
//! name starts so, about 1,500 generic rules of signature-base); Sigma rules: `--sigma` (default: the
//! bundled `rules/sigma`); baselines: the bundled `rules/baselines`. It prints:
//!
//! - YARA on small fields: the batches' command lines and script blocks (and what is
//!   decoded from them), µs per field (amortized over every field, scanned or passed
//!   over by the prefilter; both cores);
//! - YARA on large payloads: 64 events with a 1 MiB text payload each, MB/s;
//! - the stage: Sigma, then YARA, then the baselines, per batch as `vedette run` does,
//!   events/s and µs per event for each part and for the whole.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use vedette_bench_sigma::{
    corpora_dir, corpus_windows_events, replicate, vedette_batches, vedette_load,
};
use vedette_core::batch::EventBatch;
use vedette_core::event::{Event, EventBatchBuilder};
use vedette_core::traits::Detector;
use vedette_detect::baseline::{BaselineEngine, BaselineSet};
use vedette_detect::yara::{YaraDetector, YaraLimits, YaraSet};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command line.
#[derive(Parser)]
struct Args {
    /// YARA rule folders (default: the corpus's signature-base set and `rules/yara`).
    #[arg(long)]
    yara: Vec<PathBuf>,
    /// Only the YARA files (found in the `--yara` folders) whose name starts with this.
    #[arg(long)]
    yara_prefix: Option<String>,
    /// Sigma rule folders (default: `rules/sigma`).
    #[arg(long)]
    sigma: Vec<PathBuf>,
    /// Batches of 8192 events.
    #[arg(long, default_value_t = 20)]
    batches: usize,
    /// The events: `corpus` or `generated` (see the module doc).
    #[arg(long, default_value = "corpus")]
    stream: String,
}

/// `n` Windows event lines of the suite's generated stream (its embedded scenario's
/// estate, mix and seed; the other sources' records left out).
fn generated_windows_events(n: usize) -> anyhow::Result<Vec<String>> {
    use vedette_bench::sources::{Source, Transport};
    let scenario =
        vedette_bench::scenario::Scenario::load(&repo().join("benches/scenarios/embedded.toml"))?;
    let g = &scenario.generate;
    let stream = vedette_bench::stream::Stream::new(g.world()?, &g.mix, g.seed, g.attack_every);
    Ok(stream
        .filter(|r| {
            r.source != Source::LinuxSysmon
                && r.source.transport() == Transport::Http("windows-json")
        })
        .take(n)
        .map(|r| r.text)
        .collect())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// 64 events with a 1 MiB text payload each (log-like lines, no rule's string).
fn payload_batch() -> anyhow::Result<EventBatch> {
    let mut b = EventBatchBuilder::new();
    let line =
        "2026-11-23T10:00:00Z app[412]: request served path=/api/v1/items status=200 bytes=5120\n";
    let text: String = line.repeat((1 << 20) / line.len() + 1);
    for i in 0..64 {
        b.append(&Event {
            id: format!("p{i}"),
            host_name: Some(format!("h{i}")),
            payload: Some(text.as_bytes()[..1 << 20].to_vec()),
            ..Event::default()
        });
    }
    Ok(EventBatch::new(b.finish()?, "bench", "default", 0))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let corpora = corpora_dir()?;
    let yara_dirs = if args.yara.is_empty() {
        vec![
            corpora.join("yara/signature-base/yara"),
            repo().join("rules/yara"),
        ]
    } else {
        args.yara.clone()
    };
    let yara_paths = match &args.yara_prefix {
        None => yara_dirs,
        Some(prefix) => YaraSet::files(&yara_dirs)?
            .into_iter()
            .filter(|f| {
                f.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix.as_str()))
            })
            .collect(),
    };
    let started = Instant::now();
    let set = YaraSet::load(&yara_paths, Vec::new())?;
    let unfiltered = set.unfiltered_rules().len();
    let shown = set
        .unfiltered_rules()
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>();
    let (files, rules, failed) = (set.files, set.rule_count(), set.errors.len());
    let yara = YaraDetector::new(set, &[], YaraLimits::default())?;
    println!(
        "# YARA: {rules} rules from {files} files ({failed} failed) compiled in {:.1} s, {unfiltered} that the prefilter cannot tell ({}); {} threads",
        started.elapsed().as_secs_f64(),
        shown.join(", "),
        rayon::current_num_threads()
    );
    let sigma_dirs = if args.sigma.is_empty() {
        vec![repo().join("rules/sigma")]
    } else {
        args.sigma.clone()
    };
    let (sigma, _) = vedette_load(&sigma_dirs)?;
    let baseline_set = BaselineSet::load(&[repo().join("rules/baselines")])?;
    anyhow::ensure!(baseline_set.errors.is_empty(), "{:?}", baseline_set.errors);
    let mut baselines = BaselineEngine::new(&baseline_set.defs, 1_000_000);

    let lines = match args.stream.as_str() {
        "corpus" => replicate(&corpus_windows_events(&corpora)?, args.batches * 8192)?,
        "generated" => generated_windows_events(args.batches * 8192)?,
        other => anyhow::bail!("--stream {other}: corpus or generated"),
    };
    let batches: Vec<EventBatch> = vedette_batches(&lines)?
        .into_iter()
        .map(|r| EventBatch::new(r, "bench", "default", 0))
        .collect();
    let events: usize = batches.iter().map(|b| b.len()).sum();

    // YARA alone on the small fields.
    let counted = || {
        let s = &yara.stats;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        (load(&s.scans), load(&s.passed_over))
    };
    let whole0 = yara
        .stats
        .whole_set_scans
        .load(std::sync::atomic::Ordering::Relaxed);
    let (scans0, over0) = counted();
    let t = Instant::now();
    let mut yara_hits = 0;
    for b in &batches {
        yara_hits += yara.detect(b).context("yara")?.len();
    }
    let yara_small = t.elapsed();
    let (scans1, over1) = counted();
    let (scans, over) = (scans1 - scans0, over1 - over0);
    let met = yara
        .stats
        .bytes_met
        .load(std::sync::atomic::Ordering::Relaxed);
    let whole = yara
        .stats
        .whole_set_scans
        .load(std::sync::atomic::Ordering::Relaxed)
        - whole0;
    let fields = scans + over;
    println!(
        "yara small   {fields} fields of {events} events ({} bytes each on average; {scans} scanned, {whole} of them with the whole set; {over} passed over) in {:.2} s: {:.2} µs per field, {:.0} events/s, {yara_hits} hits",
        met / fields.max(1),
        yara_small.as_secs_f64(),
        yara_small.as_secs_f64() * 1e6 / fields.max(1) as f64,
        events as f64 / yara_small.as_secs_f64()
    );

    // YARA on large payloads.
    let payloads = payload_batch()?;
    let (scans0, _) = counted();
    let t = Instant::now();
    let hits = yara.detect(&payloads).context("yara")?.len();
    let large = t.elapsed();
    let (scans1, _) = counted();
    println!(
        "yara large   64 payloads of 1 MiB ({} scanned) in {:.2} s: {:.1} MB/s, {hits} hits",
        scans1 - scans0,
        large.as_secs_f64(),
        64.0 * 1.048_576 / large.as_secs_f64()
    );

    // The stage: as the detect stage runs it, batch by batch.
    let (mut t_sigma, mut t_yara, mut t_base) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut alerts = 0;
    for b in &batches {
        let t = Instant::now();
        alerts += sigma.detect(b).context("sigma")?.len();
        t_sigma += t.elapsed();
        let t = Instant::now();
        alerts += yara.detect(b).context("yara")?.len();
        t_yara += t.elapsed();
        let t = Instant::now();
        alerts += baselines.observe(b).len();
        t_base += t.elapsed();
    }
    let total = t_sigma + t_yara + t_base;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / events as f64;
    println!(
        "stage        {events} events: sigma {:.2} µs, yara {:.2} µs, baselines {:.2} µs per event; whole stage {:.0} events/s ({:.2} µs per event), {alerts} alerts",
        per(t_sigma),
        per(t_yara),
        per(t_base),
        events as f64 / total.as_secs_f64(),
        per(total)
    );
    Ok(())
}
