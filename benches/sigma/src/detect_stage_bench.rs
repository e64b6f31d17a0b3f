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
//! - YARA on 500-byte fields: the same command lines and script blocks joined by
//!   newlines and cut in 500-byte pieces, µs per field (as above);
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

/// The command lines and script blocks of `batches`, in order.
fn field_texts(batches: &[EventBatch]) -> Vec<String> {
    use arrow::array::{Array, AsArray};
    let mut out = Vec::new();
    for b in batches {
        let records = &b.records;
        if let Some(lines) = records
            .column_by_name("process.command_line")
            .and_then(|c| c.as_string_opt::<i32>())
        {
            out.extend(lines.iter().flatten().map(str::to_owned));
        }
        if let Some(map) = records
            .column_by_name("fields")
            .and_then(|c| c.as_map_opt())
        {
            let (keys, values) = (
                map.keys().as_string::<i32>(),
                map.values().as_string::<i32>(),
            );
            for i in 0..keys.len() {
                if keys.value(i) == "ScriptBlockText" && values.is_valid(i) {
                    out.push(values.value(i).to_owned());
                }
            }
        }
    }
    out
}

/// Events whose command line is `bytes` long (cut at a character boundary): `texts`
/// joined by newlines and cut in pieces, in batches of 8192.
fn joined_batches(texts: &[String], bytes: usize) -> anyhow::Result<Vec<EventBatch>> {
    let all = texts.join("\n");
    let mut pieces = Vec::new();
    let mut rest = all.as_str();
    while rest.len() >= bytes {
        let mut cut = bytes;
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    let mut batches = Vec::new();
    for (n, chunk) in pieces.chunks(8192).enumerate() {
        let mut b = EventBatchBuilder::new();
        for (i, text) in chunk.iter().enumerate() {
            b.append(&Event {
                id: format!("j{n}-{i}"),
                host_name: Some(format!("h{}", i % 97)),
                process_command_line: Some((*text).to_string()),
                ..Event::default()
            });
        }
        batches.push(EventBatch::new(b.finish()?, "bench", "default", 0));
    }
    Ok(batches)
}

/// What one pass of the YARA detector over some batches did.
struct YaraPhase {
    seconds: f64,
    hits: usize,
    scanned: u64,
    whole_set: u64,
    passed_over: u64,
    bytes: u64,
    unit_scans: u64,
    relaxed_passed_over: u64,
    group_scans: u64,
    group_passed_over: u64,
}

impl YaraPhase {
    /// Values met (decoded blobs included).
    fn fields(&self) -> u64 {
        self.scanned + self.passed_over
    }

    /// Amortized over every value met.
    fn per_field_us(&self) -> f64 {
        self.seconds * 1e6 / self.fields().max(1) as f64
    }

    /// Mean size and what the prefilter did.
    fn detail(&self) -> String {
        format!(
            "{} bytes each on average; {} scanned, {} of them with the whole set; {} passed over; {} unit scans, {} more passed over by relaxed rules, {} by {} group scans",
            self.bytes / self.fields().max(1),
            self.scanned,
            self.whole_set,
            self.passed_over,
            self.unit_scans,
            self.relaxed_passed_over,
            self.group_passed_over,
            self.group_scans
        )
    }
}

/// Runs `yara` over `batches`, counting from its counters.
fn yara_phase(yara: &YaraDetector, batches: &[EventBatch]) -> anyhow::Result<YaraPhase> {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &yara.stats;
    let read = || YaraPhase {
        seconds: 0.0,
        hits: 0,
        scanned: s.scans.load(Relaxed),
        whole_set: s.whole_set_scans.load(Relaxed),
        passed_over: s.passed_over.load(Relaxed),
        bytes: s.bytes_met.load(Relaxed),
        unit_scans: s.file_scans.load(Relaxed),
        relaxed_passed_over: s.relaxed_passed_over.load(Relaxed),
        group_scans: s.group_scans.load(Relaxed),
        group_passed_over: s.group_passed_over.load(Relaxed),
    };
    let before = read();
    let t = Instant::now();
    let mut hits = 0;
    for b in batches {
        hits += yara.detect(b).context("yara")?.len();
    }
    let seconds = t.elapsed().as_secs_f64();
    let after = read();
    Ok(YaraPhase {
        seconds,
        hits,
        scanned: after.scanned - before.scanned,
        whole_set: after.whole_set - before.whole_set,
        passed_over: after.passed_over - before.passed_over,
        bytes: after.bytes - before.bytes,
        unit_scans: after.unit_scans - before.unit_scans,
        relaxed_passed_over: after.relaxed_passed_over - before.relaxed_passed_over,
        group_scans: after.group_scans - before.group_scans,
        group_passed_over: after.group_passed_over - before.group_passed_over,
    })
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

    // YARA alone on the small fields, then on 500-byte fields (the same texts, joined
    // and cut).
    let small = yara_phase(&yara, &batches)?;
    println!(
        "yara small   {} fields of {events} events ({}) in {:.2} s: {:.2} µs per field, {:.0} events/s, {} hits",
        small.fields(),
        small.detail(),
        small.seconds,
        small.per_field_us(),
        events as f64 / small.seconds,
        small.hits
    );
    let joined = yara_phase(&yara, &joined_batches(&field_texts(&batches), 500)?)?;
    println!(
        "yara 500 B   {} fields ({}) in {:.2} s: {:.2} µs per field, {:.1} MB/s, {} hits",
        joined.fields(),
        joined.detail(),
        joined.seconds,
        joined.per_field_us(),
        joined.bytes as f64 / 1e6 / joined.seconds,
        joined.hits
    );

    // YARA on large payloads.
    let large = yara_phase(&yara, &[payload_batch()?])?;
    println!(
        "yara large   64 payloads of 1 MiB ({} scanned) in {:.2} s: {:.1} MB/s, {} hits",
        large.scanned,
        large.seconds,
        64.0 * 1.048_576 / large.seconds,
        large.hits
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
