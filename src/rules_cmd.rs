//! `vedette rules check`: load every rule, say per rule whether it is usable, and
//! optionally run each rule's true-positive log from a SigmaHQ-style regression
//! corpus.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use vedette_detect::sigma::load::read_rule_file;
use vedette_detect::sigma::{CompileOutcome, Routing};
use vedette_ingest::{Format, Limits};

use crate::hunt_input::read_hunt_input;
use crate::input::read_input;
use crate::sigma_setup::{load_sigma, LoadedSigma};

/// `vedette rules ...`
#[derive(Debug, Subcommand)]
pub(crate) enum RulesCommand {
    /// Load rules and report, per rule, loaded or unsupported with the reason.
    Check(CheckArgs),
}

/// Flags of `vedette rules check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Processing pipelines (pySigma YAML).
    #[arg(long, short)]
    pub(crate) pipeline: Vec<PathBuf>,
    /// Also run each rule's true-positive log (`regression_tests_path`, relative to
    /// this folder) and report the pass rate.
    #[arg(long)]
    pub(crate) conformance: Option<PathBuf>,
    /// With `--conformance`: also save the result where a service with this data
    /// folder shows it (`<data_dir>/conformance.json`, on the console's rules page).
    #[arg(long, requires = "conformance")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Print only problems and the summary.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Rule files or folders.
    #[arg(required = true)]
    pub(crate) paths: Vec<PathBuf>,
}

/// Runs `vedette rules ...`.
pub(crate) fn rules(command: &RulesCommand) -> anyhow::Result<()> {
    match command {
        RulesCommand::Check(args) => check(args),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<()> {
    let sigma = load_sigma(&args.paths, &args.pipeline)?;
    let mut invalid = 0usize;
    let mut unsupported: BTreeMap<String, usize> = BTreeMap::new();
    for f in &sigma.loaded.files {
        if let Some(reason) = &f.unsupported {
            *unsupported.entry(reason_kind(reason)).or_default() += 1;
            println!("unsupported  {}: {reason}", f.path.display());
        } else if f.is_invalid() {
            invalid += 1;
            println!(
                "invalid      {}: {}",
                f.path.display(),
                f.problems.join("; ")
            );
        }
    }
    let mut loaded = 0usize;
    let mut fallbacks = 0usize;
    for (src, title, id, outcome) in &sigma.outcomes {
        let id = id.as_deref().unwrap_or("-");
        match outcome {
            CompileOutcome::Compiled(routing) => {
                loaded += 1;
                let note = match routing {
                    Routing::Mapped(_) => String::new(),
                    Routing::ProductOnly(_) => {
                        fallbacks += 1;
                        "  (log source not in the map: sees every event of its product)".into()
                    }
                    Routing::ByName(name) => {
                        fallbacks += 1;
                        format!("  (log source not in the map: sees only datasets `{name}` and `{name}.*`)")
                    }
                    Routing::Everything => {
                        fallbacks += 1;
                        "  (no log source: sees every event)".into()
                    }
                };
                if !args.quiet || !note.is_empty() {
                    println!("loaded       {src}  {id}  {title}{note}");
                }
            }
            CompileOutcome::Unsupported(reason) => {
                *unsupported.entry(reason_kind(reason)).or_default() += 1;
                println!("unsupported  {src}  {id}  {title}: {reason}");
            }
        }
    }
    for (src, title, why) in &sigma.correlation_outcomes {
        match why {
            None => {
                loaded += 1;
                if !args.quiet {
                    println!("loaded       {src}  {title}  (correlation)");
                }
            }
            Some(reason) => {
                *unsupported.entry(reason_kind(reason)).or_default() += 1;
                println!("unsupported  {src}  {title}: {reason}");
            }
        }
    }
    for (src, title) in &sigma.loaded.filters {
        if !args.quiet {
            println!("loaded       {src}  {title}  (filter)");
        }
    }
    let unsupported_total: usize = unsupported.values().sum();
    println!(
        "summary: {} files, {loaded} rules loaded ({fallbacks} with a fallback log source), {unsupported_total} unsupported, {invalid} invalid files",
        sigma.loaded.files.len()
    );
    for (reason, n) in &unsupported {
        println!("summary:   unsupported x{n}: {reason}");
    }
    println!(
        "summary: read and parsed in {} ms, compiled in {} ms",
        sigma.parse_time.as_millis(),
        sigma.compile_time.as_millis()
    );
    if let Some(dir) = &args.conformance {
        let report = conformance(&sigma, dir)?;
        if let Some(data_dir) = &args.data_dir {
            save_report(data_dir, &report)?;
        }
    }
    if invalid > 0 {
        bail!("{invalid} rule files are not valid Sigma");
    }
    Ok(())
}

/// The reason with quoted specifics removed, for counting.
fn reason_kind(reason: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in reason.chars() {
        if c == '`' {
            quoted = !quoted;
            if quoted {
                out.push_str("`…`");
            }
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// One regression case: where its log is and how many matches it expects.
struct Case {
    log: PathBuf,
    match_count: usize,
}

fn read_case(dir: &Path, info_path: &str) -> anyhow::Result<Case> {
    let info_file = dir.join(info_path);
    let text = read_rule_file(&info_file)?;
    let info: yaml_serde::Value = yaml_serde::from_str(&text)
        .with_context(|| format!("{}: not YAML", info_file.display()))?;
    let test = info
        .get("regression_tests_info")
        .and_then(|t| t.get(0))
        .context("no regression_tests_info")?;
    let match_count = test
        .get("match_count")
        .and_then(yaml_serde::Value::as_u64)
        .map_or(1, |n| n.max(1) as usize);
    let evtx = test
        .get("path")
        .and_then(yaml_serde::Value::as_str)
        .map(|p| dir.join(p))
        .context("no path")?;
    let log = if evtx.exists() {
        evtx
    } else {
        evtx.with_extension("jsonl")
    };
    Ok(Case { log, match_count })
}

/// What a conformance run found.
#[derive(Debug, serde::Serialize)]
struct ConformanceReport {
    /// When it ran (RFC 3339).
    at: String,
    /// Rules that fired on their true-positive logs.
    passed: usize,
    /// Rules with a true-positive log present.
    total: usize,
    /// `passed / total` in percent.
    rate_percent: f64,
    /// The corpus folder.
    corpus: String,
    /// Ids of the rules that did not fire.
    failing: Vec<String>,
}

/// Writes `report` to `<data_dir>/conformance.json` (through a rename).
fn save_report(data_dir: &Path, report: &ConformanceReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = crate::live_rules::conformance_report_path(data_dir);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    println!("conformance: saved to {}", path.display());
    Ok(())
}

fn conformance(sigma: &LoadedSigma, dir: &Path) -> anyhow::Result<ConformanceReport> {
    let mut passed = 0usize;
    let mut failed = Vec::new();
    let mut absent = 0usize;
    for (rule_id, info_path) in &sigma.loaded.regression_paths {
        if !dir.join(info_path).exists() {
            absent += 1;
            continue;
        }
        let verdict = run_case(sigma, dir, rule_id, info_path);
        match verdict {
            Ok((n, expected)) if n >= expected => {
                passed += 1;
                println!("conformance  pass  {rule_id}  {n}/{expected}");
            }
            Ok((n, expected)) => {
                failed.push(rule_id.clone());
                println!("conformance  FAIL  {rule_id}  {n}/{expected}  ({info_path})");
            }
            Err(e) => {
                failed.push(rule_id.clone());
                println!("conformance  FAIL  {rule_id}  error: {e:#}  ({info_path})");
            }
        }
    }
    let total = passed + failed.len();
    let rate = if total == 0 {
        0.0
    } else {
        100.0 * passed as f64 / total as f64
    };
    println!(
        "conformance: {passed}/{total} rules fire on their true-positive logs ({rate:.1}%); {absent} cases absent from {}",
        dir.display()
    );
    if !failed.is_empty() {
        println!("conformance: failing: {}", failed.join(", "));
    }
    Ok(ConformanceReport {
        at: chrono::Utc::now().to_rfc3339(),
        passed,
        total,
        rate_percent: (rate * 10.0).round() / 10.0,
        corpus: dir.display().to_string(),
        failing: failed,
    })
}

fn run_case(
    sigma: &LoadedSigma,
    dir: &Path,
    rule_id: &str,
    info_path: &str,
) -> anyhow::Result<(usize, usize)> {
    let case = read_case(dir, info_path)?;
    let input = read_input(&case.log)?;
    let name = case.log.display().to_string();
    let (_, hunt) = read_hunt_input(&name, input, Format::Auto, Limits::default())?;
    let Some(index) = sigma.detector.rules().iter().position(|r| r.id == rule_id) else {
        bail!("rule did not compile");
    };
    let mut n = 0;
    for b in &hunt.batches {
        n += sigma
            .detector
            .matches(&b.records)?
            .iter()
            .filter(|h| h.rule as usize == index)
            .count();
    }
    Ok((n, case.match_count))
}
