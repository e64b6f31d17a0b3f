//! Loading a Sigma rule set for the CLI: rule files, pipelines, the bundled
//! log-source map, compiled into a detector.

use std::path::PathBuf;

use anyhow::Context;
use vedette_detect::sigma::load::read_rule_file;
use vedette_detect::sigma::{
    compile_correlations, load_rules, CompileOptions, CompileOutcome, CorrelationSet, LoadedRules,
    LogsourceMap, Pipeline, SigmaDetector,
};

use vedette_core::config::RulesConfig;

use crate::bundled::{SIGMA_LOGSOURCES, SIGMA_RULES};

/// A compiled rule set and what loading it found.
pub(crate) struct LoadedSigma {
    /// The detector.
    pub(crate) detector: SigmaDetector,
    /// Per file, as read.
    pub(crate) loaded: LoadedRulesSummary,
    /// Per detection rule in load order: (file, title, id, outcome).
    pub(crate) outcomes: Vec<(String, String, Option<String>, CompileOutcome)>,
    /// The correlation rules bound to the detector's rules.
    pub(crate) correlations: CorrelationSet,
    /// Per correlation rule in load order: (file, title, why unsupported).
    pub(crate) correlation_outcomes: Vec<(String, String, Option<String>)>,
    /// What analysts read about each detection rule, in the order of `outcomes`.
    pub(crate) docs: Vec<RuleDoc>,
    /// The same for each correlation rule, in the order of `correlation_outcomes`.
    pub(crate) correlation_docs: Vec<RuleDoc>,
    /// Time spent reading and parsing the rule files.
    pub(crate) parse_time: std::time::Duration,
    /// Time spent compiling them.
    pub(crate) compile_time: std::time::Duration,
}

/// A rule's descriptive metadata, as its file gives it (shown by the console).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct RuleDoc {
    /// Its id, when it has one.
    pub(crate) id: Option<String>,
    /// `informational` to `critical`.
    pub(crate) level: Option<&'static str>,
    /// Who wrote it.
    pub(crate) author: Option<String>,
    /// What it detects.
    pub(crate) description: Option<String>,
    /// Its tags (`attack.t1059.001`, ...).
    pub(crate) tags: Vec<String>,
    /// Known false positives.
    pub(crate) falsepositives: Vec<String>,
    /// Links to read.
    pub(crate) references: Vec<String>,
}

/// The parts of [`LoadedRules`] kept after compilation.
pub(crate) struct LoadedRulesSummary {
    /// File reports.
    pub(crate) files: Vec<vedette_detect::sigma::FileReport>,
    /// Filters: (file, title).
    pub(crate) filters: Vec<(String, String)>,
    /// Rule ids with the rule's `regression_tests_path`, when it has one.
    pub(crate) regression_paths: Vec<(String, String)>,
}

/// Loads and compiles the rules under `paths` with the given pipeline files.
pub(crate) fn load_sigma(paths: &[PathBuf], pipelines: &[PathBuf]) -> anyhow::Result<LoadedSigma> {
    let started = std::time::Instant::now();
    let loaded: LoadedRules = load_rules(paths).context("reading rules")?;
    compile_sigma(loaded, pipelines, started.elapsed())
}

/// The rules `vedette run` loads per `[rules]`: the bundled ones (compiled into the
/// binary) when `bundled`, every folder of `sigma_dirs`, and the folders of
/// `extra_dirs` (the rules written through the API). An unreadable folder is an
/// error; a rule that does not parse or compile is logged and skipped.
pub(crate) fn load_run_sigma(
    rules: &RulesConfig,
    extra_dirs: &[PathBuf],
) -> anyhow::Result<LoadedSigma> {
    let started = std::time::Instant::now();
    let dirs = run_rule_dirs(rules, extra_dirs);
    for dir in &dirs {
        std::fs::read_dir(dir)
            .with_context(|| format!("rules.sigma_dirs: cannot read {}", dir.display()))?;
    }
    let mut loaded: LoadedRules = load_rules(&dirs).context("reading rules")?;
    if rules.bundled {
        for (path, text) in SIGMA_RULES {
            loaded.add_text(text, &format!("bundled:{path}"), PathBuf::from(path));
        }
    }
    let sigma = compile_sigma(loaded, &[], started.elapsed())?;
    for report in &sigma.loaded.files {
        for problem in &report.problems {
            tracing::warn!(file = %report.path.display(), %problem, "sigma rule skipped");
        }
    }
    for (file, title, _, outcome) in &sigma.outcomes {
        if let CompileOutcome::Unsupported(why) = outcome {
            tracing::warn!(%file, %title, %why, "sigma rule not compiled");
        }
    }
    Ok(sigma)
}

/// The rule folders of `vedette run`: `sigma_dirs`, then `extra_dirs`.
pub(crate) fn run_rule_dirs(rules: &RulesConfig, extra_dirs: &[PathBuf]) -> Vec<PathBuf> {
    rules.sigma_dirs.iter().chain(extra_dirs).cloned().collect()
}

/// Parses and compiles one rule file's text alone; returns what is wrong with it.
pub(crate) fn check_rule_text(text: &str, name: &str) -> anyhow::Result<Vec<String>> {
    Ok(match load_rule_text(text, name)? {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    })
}

/// Parses and compiles one rule file's text alone (with the bundled log-source map):
/// the compiled set, or what is wrong with it. Correlations are not checked here (they
/// name rules of other files).
pub(crate) fn load_rule_text(
    text: &str,
    name: &str,
) -> anyhow::Result<Result<LoadedSigma, Vec<String>>> {
    let mut loaded = LoadedRules::default();
    loaded.add_text(text, name, PathBuf::from(name));
    let mut problems: Vec<String> = loaded
        .files
        .iter()
        .flat_map(|f| f.problems.iter().cloned().chain(f.unsupported.clone()))
        .collect();
    if loaded.rules.is_empty() && loaded.correlations.is_empty() && loaded.filters.is_empty() {
        problems.push("the file holds no Sigma rule".into());
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let sigma = compile_sigma(loaded, &[], std::time::Duration::ZERO)?;
    problems.extend(
        sigma
            .outcomes
            .iter()
            .filter_map(|(_, title, _, o)| match o {
                CompileOutcome::Unsupported(why) => Some(format!("{title}: {why}")),
                CompileOutcome::Compiled(_) => None,
            }),
    );
    Ok(if problems.is_empty() {
        Ok(sigma)
    } else {
        Err(problems)
    })
}

/// Compiles loaded rules with the given pipeline files.
fn compile_sigma(
    loaded: LoadedRules,
    pipelines: &[PathBuf],
    parse_time: std::time::Duration,
) -> anyhow::Result<LoadedSigma> {
    let started = std::time::Instant::now();
    let mut options = CompileOptions {
        logsources: LogsourceMap::from_yaml(SIGMA_LOGSOURCES)
            .context("the bundled log-source map")?,
        ..CompileOptions::default()
    };
    for p in pipelines {
        let text = read_rule_file(p)?;
        let pipeline =
            Pipeline::from_yaml(&text).with_context(|| format!("pipeline {}", p.display()))?;
        options.pipelines.push(pipeline);
    }
    options.pipelines.sort_by_key(|p| p.priority);
    // Detection and correlation rules are types of their own with the same fields.
    macro_rules! doc_of {
        ($r:expr) => {
            RuleDoc {
                id: $r.id.clone(),
                level: $r.level.map(|l| l.as_str()),
                author: $r.author.clone(),
                description: $r.description.clone(),
                tags: $r.tags.clone(),
                falsepositives: $r.falsepositives.clone(),
                references: $r.references.clone(),
            }
        };
    }
    let docs: Vec<RuleDoc> = loaded.rules.iter().map(|(r, _)| doc_of!(r)).collect();
    let correlation_docs: Vec<RuleDoc> = loaded
        .correlations
        .iter()
        .map(|(r, _)| doc_of!(r))
        .collect();
    let described: Vec<(String, String, Option<String>)> = loaded
        .rules
        .iter()
        .map(|(r, src)| (src.clone(), r.title.clone(), r.id.clone()))
        .collect();
    let regression_paths = loaded
        .rules
        .iter()
        .filter_map(|(r, _)| {
            let path = r.custom_attributes.get("regression_tests_path")?.as_str()?;
            Some((
                r.id.clone().unwrap_or_else(|| r.title.clone()),
                path.to_owned(),
            ))
        })
        .collect();
    let summary = LoadedRulesSummary {
        files: loaded.files,
        filters: loaded
            .filters
            .iter()
            .map(|(f, src)| (src.clone(), f.title.clone()))
            .collect(),
        regression_paths,
    };
    options.filters = loaded.filters.iter().map(|(f, _)| f.clone()).collect();
    let correlation_names: Vec<(String, String)> = loaded
        .correlations
        .iter()
        .map(|(c, src)| (src.clone(), c.title.clone()))
        .collect();
    let (detector, outcomes) =
        SigmaDetector::new(loaded.rules, &options).context("compiling rules")?;
    let (correlations, why) = compile_correlations(loaded.correlations, detector.rules());
    let correlation_outcomes = correlation_names
        .into_iter()
        .zip(why)
        .map(|((src, title), w)| (src, title, w))
        .collect();
    let outcomes = described
        .into_iter()
        .zip(outcomes)
        .map(|((src, title, id), o)| (src, title, id, o))
        .collect();
    Ok(LoadedSigma {
        detector,
        loaded: summary,
        outcomes,
        correlations,
        correlation_outcomes,
        docs,
        correlation_docs,
        parse_time,
        compile_time: started.elapsed(),
    })
}
