//! `vedette detect`: hunt over log files with Sigma rules, like Hayabusa and
//! Chainsaw: one JSON line per hit on stdout, a summary on stderr.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMillisecondType;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use vedette_core::batch::EventBatch;
use vedette_core::schema::col;
use vedette_detect::sigma::{
    CompileOutcome, CorrelationAlert, CorrelationEngine, CorrelationLimits, CorrelationSet,
    RuleHit, RuleMeta, SigmaDetector,
};
use vedette_ingest::{Format, Limits};

use crate::hunt_alerts::{load_hunt_baselines, write_alert, HuntAlertFlags, HuntAlerts};
use crate::hunt_input::{HuntBatch, HuntInput, HuntPiece, PIECE_BYTES};
use crate::input::{open_input, InputPiece};
use crate::sigma_setup::{load_sigma, LoadedSigma};
use vedette_detect::yara::YaraDetector;

/// Flags of `vedette detect`.
#[derive(Debug, Args)]
pub(crate) struct DetectArgs {
    /// Sigma rule file or folder (searched recursively); repeat for more.
    #[arg(long, short, required = true)]
    pub(crate) rules: Vec<PathBuf>,
    /// Processing pipelines (pySigma YAML), applied by priority.
    #[arg(long, short)]
    pub(crate) pipeline: Vec<PathBuf>,
    /// Input format, or `auto`.
    #[arg(long, short, default_value = "auto", value_parser = parse_format)]
    pub(crate) format: Format,
    /// Print per-rule hit counts and timings to stderr.
    #[arg(long)]
    pub(crate) stats: bool,
    /// Close correlation windows this many seconds behind the latest event time;
    /// hits older than that are dropped. Default: windows close at the end of the
    /// input, so the order of records does not matter.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) lateness: Option<u32>,
    /// Fold hits of one rule on one host within this many seconds (of event time)
    /// into the first: only the first is printed.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) dedup: Option<u32>,
    /// Add up each host's and user's risk over the hits (a high hit with an ATT&CK
    /// technique tag adds 52.5) and print a `risk` line when it reaches this.
    #[arg(long, value_name = "THRESHOLD")]
    pub(crate) risk: Option<f64>,
    /// Window of `--risk`, in hours of event time.
    #[arg(long, default_value_t = 24, value_name = "HOURS")]
    pub(crate) risk_window_hours: u32,
    /// Print a `silence` line when a source (dataset and host) that sent steadily
    /// sends nothing for this many seconds of event time while the logs go on.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) silence: Option<u32>,
    /// Events a source must have sent to count as steady for `--silence`.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub(crate) silence_min_events: u64,
    /// YARA rule file or folder (see docs/yara.md); repeat for more. The configured
    /// fields (`--yara-field`) and the content decoded from them are scanned; hits are
    /// printed as `yara` lines.
    #[arg(long, value_name = "PATH")]
    pub(crate) yara: Vec<PathBuf>,
    /// A field YARA scans (repeat); default `payload`, `process.command_line`,
    /// `ScriptBlockText`.
    #[arg(long, value_name = "FIELD")]
    pub(crate) yara_field: Vec<String>,
    /// Baseline definition file or folder (see docs/baselines.md); repeat for more.
    /// Their alerts are printed as `baseline` lines, learned on the events' time.
    #[arg(long, value_name = "PATH")]
    pub(crate) baselines: Vec<PathBuf>,
    /// Log files to hunt through (`-` for stdin).
    #[arg(required = true)]
    pub(crate) inputs: Vec<PathBuf>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
        .map_err(|e: vedette_core::CoreError| e.to_string())
}

/// Runs `vedette detect`.
pub(crate) fn detect(args: &DetectArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let sigma = load_sigma(&args.rules, &args.pipeline)?;
    let load_time = started.elapsed();
    let unsupported = sigma
        .outcomes
        .iter()
        .filter(|o| matches!(o.3, CompileOutcome::Unsupported(_)))
        .count()
        + sigma
            .correlation_outcomes
            .iter()
            .filter(|o| o.2.is_some())
            .count();
    eprintln!(
        "vedette detect: {} rules and {} correlations loaded, {unsupported} unsupported (see `vedette rules check`), in {} ms",
        sigma.detector.rules().len(),
        sigma.correlations.len(),
        load_time.as_millis()
    );
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let limits = CorrelationLimits {
        lateness_ms: args.lateness.map(|s| i64::from(s) * 1000),
        ..CorrelationLimits::default()
    };
    let mut correlation = CorrelationEngine::new(&sigma.correlations, limits);
    let mut totals = Totals::default();
    let yara = if args.yara.is_empty() {
        None
    } else {
        let set = vedette_detect::yara::YaraSet::load(&args.yara, Vec::new())?;
        if let Some((path, error)) = set.errors.first() {
            bail!("YARA rules {}: {error}", path.display());
        }
        eprintln!("vedette detect: {} YARA rules loaded", set.rule_count());
        Some(YaraDetector::new(
            set,
            &args.yara_field,
            vedette_detect::yara::YaraLimits::default(),
        )?)
    };
    let baselines = load_hunt_baselines(&args.baselines)?;
    let mut state = HuntAlerts::new(
        HuntAlertFlags {
            dedup_seconds: args.dedup,
            risk_threshold: args.risk,
            risk_window_hours: args.risk_window_hours,
            silence_seconds: args.silence,
            silence_min_events: args.silence_min_events,
        },
        baselines,
    );
    let mut unreadable = 0;
    let progress = progress_bar(args.inputs.len() as u64, "files");
    for path in &args.inputs {
        let mut hunt = Hunt {
            sigma: &sigma,
            correlation: &mut correlation,
            state: state.as_mut(),
            yara: yara.as_ref(),
            totals: &mut totals,
        };
        if let Err(e) = hunt_one(path, args, &mut hunt, &mut out) {
            eprintln!("{}: cannot read: {e:#}", path.display());
            unreadable += 1;
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    for alert in correlation.flush(&sigma.correlations) {
        totals.correlation_alerts += 1;
        write_correlation(&mut out, &sigma.correlations, &alert)?;
    }
    out.flush().context("writing alerts")?;
    let cstats = correlation.stats();
    if cstats.late_hits + cstats.evicted_groups + cstats.dropped_hits > 0 {
        eprintln!(
            "vedette detect: correlations dropped {} late hits, {} groups and {} hits over the caps",
            cstats.late_hits, cstats.evicted_groups, cstats.dropped_hits
        );
    }
    let hits: usize = totals.per_rule.values().sum();
    eprintln!(
        "vedette detect: {} events, {hits} hits from {} rules, {} correlation alerts, {} YARA hits; {} ms reading and parsing and {} ms detecting (CPU time over {} threads), {} ms wall",
        totals.events,
        totals.per_rule.len(),
        totals.correlation_alerts,
        totals.yara_alerts,
        totals.parse_time.as_millis(),
        totals.detect_time.as_millis(),
        rayon::current_num_threads(),
        totals.wall.as_millis()
    );
    if let Some(state) = &state {
        eprintln!(
            "vedette detect: {} hits folded by --dedup, {} risk, {} silence and {} baseline alerts",
            state.folded, state.risky, state.silent, state.baseline
        );
    }
    if args.stats {
        print_stats(
            &sigma.detector,
            &totals.per_rule,
            totals.events,
            totals.detect_time,
        );
    }
    if unreadable > 0 {
        bail!(
            "{unreadable} of {} inputs could not be read",
            args.inputs.len()
        );
    }
    Ok(())
}

/// Counts over all inputs.
#[derive(Default)]
struct Totals {
    per_rule: BTreeMap<u32, usize>,
    events: usize,
    parse_time: Duration,
    detect_time: Duration,
    wall: Duration,
    correlation_alerts: usize,
    yara_alerts: usize,
}

/// What a hunt carries from one input to the next.
struct Hunt<'a> {
    sigma: &'a LoadedSigma,
    correlation: &'a mut CorrelationEngine,
    state: Option<&'a mut HuntAlerts>,
    yara: Option<&'a YaraDetector>,
    totals: &'a mut Totals,
}

/// What detection found in one batch of a piece: the batch as the Sigma rules saw it
/// (with the YARA column), their hits and the YARA alerts.
struct BatchHits {
    events: EventBatch,
    sigma: Vec<RuleHit>,
    /// Per Sigma hit, its JSON line (rendered on the worker thread), or `None` for a
    /// rule whose hits only feed correlations.
    lines: Vec<Option<String>>,
    yara: Vec<vedette_core::alert::Alert>,
}

/// Most pieces parsed and matched ahead of the one being written.
const MAX_PIECES_AHEAD: usize = 32;

/// One piece parsed and matched.
struct MatchedPiece {
    piece: HuntPiece,
    /// Per batch of `piece`, what detection found.
    hits: Vec<BatchHits>,
    parse_time: Duration,
    detect_time: Duration,
}

/// What a task made of one piece: its size in bytes, and the piece matched.
type PieceOutcome = (u64, anyhow::Result<MatchedPiece>);

/// Parses one piece and runs YARA and the Sigma rules over its batches.
fn detect_piece(
    piece: &InputPiece,
    hunt: &HuntInput,
    sigma: &LoadedSigma,
    yara: Option<&YaraDetector>,
    name: &str,
) -> anyhow::Result<MatchedPiece> {
    let t = Instant::now();
    let parsed_piece = hunt.parse(piece)?;
    let parse_time = t.elapsed();
    let t = Instant::now();
    let hits = parsed_piece
        .batches
        .iter()
        .map(|b| {
            let events = EventBatch::new(b.records.clone(), name, "default", 0);
            // YARA first: its matches become a column the Sigma rules can use.
            let (scanned, events) = match yara {
                Some(y) => y.detect_and_mark(&events)?,
                None => (Vec::new(), events),
            };
            let sigma_hits = sigma.detector.matches(&events.records)?;
            let lines = sigma_hits
                .iter()
                .map(|hit| {
                    sigma
                        .correlations
                        .generates(hit.rule)
                        .then(|| hit_line(&sigma.detector, name, b, hit))
                        .flatten()
                })
                .collect();
            Ok(BatchHits {
                events,
                sigma: sigma_hits,
                lines,
                yara: scanned,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(MatchedPiece {
        piece: parsed_piece,
        hits,
        parse_time,
        detect_time: t.elapsed(),
    })
}

/// Writes the hits of one matched piece in input order, through the hunt's alert state
/// and correlations, and adds its counts to the totals.
fn write_piece(
    matched: MatchedPiece,
    hunt_state: &mut Hunt<'_>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let sigma = hunt_state.sigma;
    let totals = &mut *hunt_state.totals;
    totals.parse_time += matched.parse_time;
    totals.detect_time += matched.detect_time;
    for (batch, found) in matched.piece.batches.iter().zip(matched.hits) {
        totals.events += batch.records.num_rows();
        let BatchHits {
            events,
            sigma: hits,
            lines,
            yara: scanned,
        } = found;
        totals.yara_alerts += scanned.len();
        let (keep, raised) = match hunt_state.state.as_deref_mut() {
            Some(state) => {
                let mut alerts = sigma.detector.alerts(&events, &hits);
                let sigma_count = alerts.len();
                alerts.extend(scanned.iter().cloned());
                let (mut keep, raised) = state.process(&events, &alerts);
                // YARA hits that dedup kept are printed with the others.
                let yara_keep = keep.split_off(sigma_count.min(keep.len()));
                for (a, k) in scanned.iter().zip(yara_keep) {
                    if k {
                        write_alert(out, a)?;
                    }
                }
                (keep, raised)
            }
            None => {
                for a in &scanned {
                    write_alert(out, a)?;
                }
                (vec![true; hits.len()], Vec::new())
            }
        };
        for (i, (hit, line)) in hits.iter().zip(&lines).enumerate() {
            *totals.per_rule.entry(hit.rule).or_default() += 1;
            let printed = keep.get(i).copied().unwrap_or(true);
            if let Some(line) = line.as_deref().filter(|_| printed) {
                writeln!(out, "{line}").context("writing alerts")?;
            }
        }
        for alert in &raised {
            write_alert(out, alert)?;
        }
        let observed =
            hunt_state
                .correlation
                .observe(&sigma.correlations, &batch.records, &hits)?;
        for alert in observed {
            totals.correlation_alerts += 1;
            write_correlation(out, &sigma.correlations, &alert)?;
        }
    }
    Ok(())
}

/// What the tasks of one input's pieces share.
#[derive(Clone, Copy)]
struct Matching<'s> {
    hunt: &'s HuntInput,
    sigma: &'s LoadedSigma,
    yara: Option<&'s YaraDetector>,
    name: &'s str,
    /// Set when the hunt stops on an error: a task not started yet does nothing.
    stop: &'s AtomicBool,
}

/// Has `piece` parsed and matched on the thread pool; its outcome arrives on the
/// receiver (a panic in the task is an error, not a lost piece).
fn spawn_detect<'s>(
    scope: &rayon::Scope<'s>,
    piece: InputPiece,
    matching: &Matching<'s>,
) -> Receiver<PieceOutcome> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let m = *matching;
    scope.spawn(move |_| {
        let outcome = if m.stop.load(Ordering::Relaxed) {
            Err(anyhow::anyhow!("the hunt stopped"))
        } else {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                detect_piece(&piece, m.hunt, m.sigma, m.yara, m.name)
            }))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("matching a piece panicked")))
        };
        // The one-slot buffer takes the result even when nobody reads it.
        let _ = tx.send((piece.bytes.len() as u64, outcome));
    });
    rx
}

/// Hunts through one input: pieces read as a stream, parsed and matched a few ahead on
/// the thread pool, hits written in input order. Runs on a thread outside the pool (it
/// waits for the pool's results; on a worker of a one-thread pool it would wait forever).
fn hunt_one(
    path: &std::path::Path,
    args: &DetectArgs,
    hunt_state: &mut Hunt<'_>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let name = path.display().to_string();
    let t0 = Instant::now();
    let mut stream = open_input(path)?;
    let Some(first) = stream.next_piece(PIECE_BYTES)? else {
        return Ok(());
    };
    let hunt = HuntInput::new(
        &name,
        &first.bytes,
        args.format,
        Limits::default(),
        stream.modified_ms,
    );
    let mut next = Some(if hunt.lines {
        first
    } else {
        stream.rest(first)?
    });
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = byte_bar(size);
    let mut dead_letters = 0;
    // Pieces are parsed and matched on the thread pool as they are read, a few ahead
    // of the one whose hits are written next (in input order, on this thread): no
    // thread waits at the end of a round for the slowest piece of the round. At most
    // `ahead` pieces (4 MiB each, up to 64 MiB for one very long record) are in flight.
    let ahead = (rayon::current_num_threads().max(1) * 3).min(MAX_PIECES_AHEAD);
    let hunt = &hunt;
    let mut read_all = false;
    // A read error stops the reading; what was read before it is matched and written
    // first, then the error is returned.
    let mut read_error = None;
    // Set when the hunt stops on an error: queued pieces are then not matched.
    let stop = AtomicBool::new(false);
    let matching = Matching {
        hunt,
        sigma: hunt_state.sigma,
        yara: hunt_state.yara,
        name: &name,
        stop: &stop,
    };
    let mut queue: VecDeque<Receiver<PieceOutcome>> = VecDeque::new();
    let outcome = rayon::in_place_scope(|scope| -> anyhow::Result<()> {
        let written = (|| -> anyhow::Result<()> {
            loop {
                // Read ahead while the next piece to write is not done yet.
                while queue.len() < ahead && !read_all {
                    let piece = match next.take() {
                        Some(p) => p,
                        None => match stream.next_piece(PIECE_BYTES) {
                            Ok(Some(p)) => p,
                            Ok(None) => {
                                read_all = true;
                                break;
                            }
                            Err(e) => {
                                read_error = Some(e);
                                read_all = true;
                                break;
                            }
                        },
                    };
                    queue.push_back(spawn_detect(scope, piece, &matching));
                    if !hunt.lines {
                        read_all = true;
                    }
                }
                let Some(rx) = queue.pop_front() else {
                    return Ok(());
                };
                let (bytes, r) = rx
                    .recv()
                    .map_err(|_| anyhow::anyhow!("a matching task stopped without a result"))?;
                let matched = r?;
                dead_letters += matched.piece.dead_letters;
                write_piece(matched, hunt_state, out)?;
                bar.inc(bytes);
            }
        })();
        if written.is_err() {
            matching.stop.store(true, Ordering::Relaxed);
        }
        written
    });
    hunt_state.totals.wall += t0.elapsed();
    outcome?;
    bar.finish_and_clear();
    if dead_letters > 0 {
        eprintln!(
            "{name}: {dead_letters} records did not parse as {} (see `vedette parse`)",
            hunt.format
        );
    }
    read_error.map_or(Ok(()), Err)
}

/// The JSON line of one Sigma hit (`None` for a rule the detector does not have).
fn hit_line(
    detector: &SigmaDetector,
    input: &str,
    batch: &HuntBatch,
    hit: &RuleHit,
) -> Option<String> {
    let rule = detector.rules().get(hit.rule as usize)?;
    let row = hit.row as usize;
    let records = &batch.records;
    let text = |name: &str| {
        records
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .filter(|c| c.is_valid(row))
            .map(|c| c.value(row).to_owned())
    };
    let time_ms = records
        .column_by_name(col::TIMESTAMP)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .filter(|c| c.is_valid(row))
        .map(|c| c.value(row));
    let mut line = alert_line("sigma", rule, time_ms);
    line.insert("input".into(), input.into());
    line.insert(
        "record".into(),
        batch.record_numbers.get(row).copied().into(),
    );
    line.insert("event_id".into(), text(col::EVENT_ID).into());
    line.insert("dataset".into(), text(col::EVENT_DATASET).into());
    line.insert("host".into(), text(col::HOST_NAME).into());
    line.insert("user".into(), text(col::USER_NAME).into());
    line.insert("matched".into(), string_map(&hit.matched));
    Some(serde_json::Value::Object(line).to_string())
}

/// The fields every alert line has: kind, rule identity and metadata, time.
fn alert_line(
    kind: &str,
    rule: &RuleMeta,
    time_ms: Option<i64>,
) -> serde_json::Map<String, serde_json::Value> {
    let timestamp = time_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let mut line = serde_json::Map::new();
    line.insert("kind".into(), kind.into());
    line.insert("rule_id".into(), rule.id.clone().into());
    line.insert("rule_title".into(), rule.title.clone().into());
    line.insert("rule_author".into(), rule.author.clone().into());
    line.insert("level".into(), rule.level.as_str().into());
    line.insert("tags".into(), rule.tags.clone().into());
    line.insert("timestamp".into(), timestamp.into());
    line
}

/// Name/value pairs as a JSON object of strings.
fn string_map(pairs: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

fn write_correlation(
    out: &mut impl Write,
    set: &CorrelationSet,
    alert: &CorrelationAlert,
) -> anyhow::Result<()> {
    let Some(rule) = set.meta(alert.correlation) else {
        return Ok(());
    };
    let mut line = alert_line("correlation", rule, Some(alert.time_ms));
    line.insert("group".into(), string_map(&alert.group));
    line.insert("value".into(), alert.value.into());
    line.insert("event_ids".into(), alert.event_ids.clone().into());
    writeln!(out, "{}", serde_json::Value::Object(line)).context("writing alerts")
}

fn print_stats(
    detector: &SigmaDetector,
    per_rule: &BTreeMap<u32, usize>,
    events: usize,
    detect_time: Duration,
) {
    let secs = detect_time.as_secs_f64().max(1e-9);
    eprintln!(
        "stats: {events} events in {:.3} s of detection CPU time: {:.0} events/s per core with {} rules",
        secs,
        events as f64 / secs,
        detector.rules().len()
    );
    let mut rows: Vec<(usize, &str, &str)> = per_rule
        .iter()
        .filter_map(|(r, n)| {
            detector
                .rules()
                .get(*r as usize)
                .map(|m| (*n, m.id.as_str(), m.title.as_str()))
        })
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    for (n, id, title) in rows {
        eprintln!("stats: {n:>8}  {id}  {title}");
    }
}

/// A progress bar over the bytes of an input of 64 MiB or more (hidden otherwise).
fn byte_bar(size: u64) -> ProgressBar {
    if size < 64 * 1024 * 1024 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// A progress bar on stderr when there are at least 16 steps.
fn progress_bar(steps: u64, unit: &str) -> ProgressBar {
    if steps < 16 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    if let Ok(style) =
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {unit} eta {{eta}}"))
    {
        bar.set_style(style);
    }
    bar
}
