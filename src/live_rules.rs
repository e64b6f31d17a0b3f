//! The running rule set, swapped without stopping the pipeline.
//!
//! The detection stage takes the current detector for each batch; a reload builds a
//! whole new set off the async threads and swaps it in between batches, so every batch
//! is matched by exactly one set. A reload is triggered by a change on disk (the rule
//! folders are polled every `rules.reload_poll_ms`), by `POST /v1/rules/reload`, or by
//! `PUT /v1/rules/{path}` (which writes into `<data_dir>/rules/`).
//!
//! A reload that finds no file new, changed or removed keeps the running set (and its
//! generation). **Validation**: a reload is refused, and the running set kept, when a file that is
//! new or changed since the running set was built has a problem (does not parse, or a
//! rule in it cannot be compiled); the refusal names the files and reasons. Problems
//! of unchanged files (rules the engine never supported) do not block reloads: those
//! rules stay skipped, as at start.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use vedette_core::config::RulesConfig;
use vedette_detect::sigma::correlation::CorrelationSet;
use vedette_detect::sigma::load::rule_files;
use vedette_detect::sigma::{CompileOutcome, SigmaDetector};

use crate::bundled::SIGMA_RULES;
use crate::sigma_setup::{check_rule_text, load_run_sigma, run_rule_dirs, LoadedSigma, RuleDoc};

/// Largest rule file accepted through the API.
pub(crate) const MAX_RULE_BYTES: usize = 1024 * 1024;

/// One rule of the running set, as `GET /v1/rules` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RuleInfo {
    /// The file it came from (`bundled:...` for the bundled rules).
    pub(crate) file: String,
    /// Its title.
    pub(crate) title: String,
    /// Its id.
    pub(crate) id: Option<String>,
    /// `detection` or `correlation`.
    pub(crate) kind: &'static str,
    /// `loaded` or `unsupported`.
    pub(crate) status: &'static str,
    /// Why it is unsupported.
    pub(crate) reason: Option<String>,
    /// Its level, author, description, tags, false positives and references.
    #[serde(flatten)]
    pub(crate) doc: RuleDoc,
    /// Its path under the API rule folder, for `PUT /v1/rules/{path}`, when it is there.
    pub(crate) editable_path: Option<String>,
}

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReloadReport {
    /// Generation of the running set (1 at start).
    pub(crate) generation: u64,
    /// Rules compiled and running.
    pub(crate) loaded: usize,
    /// Rules skipped (unsupported), in unchanged files.
    pub(crate) unsupported: usize,
    /// Files new or changed in this reload.
    pub(crate) changed: Vec<String>,
}

/// Why a reload was refused: the problems of the new or changed files.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Rejection {
    /// File → its problems.
    pub(crate) problems: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .problems
            .iter()
            .map(|(file, ps)| format!("{file}: {}", ps.join("; ")))
            .collect();
        write!(f, "{}", parts.join(" | "))
    }
}

/// A reload that could not finish: refused rules, or an error reading them.
#[derive(Debug)]
pub(crate) enum ReloadError {
    /// Files with problems; the running set stays.
    Rejected(Rejection),
    /// The folders could not be read; the running set stays.
    Failed(anyhow::Error),
}

/// The state behind the running set.
#[derive(Debug, Default)]
struct State {
    /// Content hashes of the files of the running set.
    hashes: BTreeMap<String, [u8; 32]>,
    rules: Vec<RuleInfo>,
    generation: u64,
    loaded_at: String,
    last_rejection: Option<(String, Rejection)>,
}

/// The running Sigma set: the detection rules and the correlations over their hits.
pub(crate) struct RunningSigma {
    /// The detection rules.
    pub(crate) detector: SigmaDetector,
    /// The correlation rules bound to them.
    pub(crate) correlations: CorrelationSet,
    /// Which load this is (1 at start, one more per reload).
    pub(crate) generation: u64,
}

impl RunningSigma {
    fn of(sigma: LoadedSigma, generation: u64) -> Arc<Self> {
        Arc::new(Self {
            detector: sigma.detector,
            correlations: sigma.correlations,
            generation,
        })
    }
}

/// The running rules and how to replace them.
pub(crate) struct LiveRules {
    config: RulesConfig,
    local_dir: PathBuf,
    current: RwLock<Arc<RunningSigma>>,
    state: tokio::sync::Mutex<State>,
}

impl std::fmt::Debug for LiveRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRules")
            .field("local_dir", &self.local_dir)
            .finish_non_exhaustive()
    }
}

/// A rule set built from disk, not yet running.
struct Candidate {
    sigma: LoadedSigma,
    hashes: BTreeMap<String, [u8; 32]>,
    /// File → problems (parse errors, unsupported rules).
    problems: BTreeMap<String, Vec<String>>,
}

fn rule_infos(sigma: &LoadedSigma, local_dir: &Path) -> Vec<RuleInfo> {
    let editable = |file: &str| {
        Path::new(file)
            .strip_prefix(local_dir)
            .ok()
            .map(|p| p.display().to_string())
    };
    let detections =
        sigma
            .outcomes
            .iter()
            .zip(&sigma.docs)
            .map(|((file, title, id, outcome), doc)| {
                let (status, reason) = match outcome {
                    CompileOutcome::Compiled(_) => ("loaded", None),
                    CompileOutcome::Unsupported(why) => ("unsupported", Some(why.clone())),
                };
                RuleInfo {
                    file: file.clone(),
                    title: title.clone(),
                    id: id.clone(),
                    kind: "detection",
                    status,
                    reason,
                    doc: doc.clone(),
                    editable_path: editable(file),
                }
            });
    let correlations = sigma
        .correlation_outcomes
        .iter()
        .zip(&sigma.correlation_docs)
        .map(|((file, title, why), doc)| RuleInfo {
            file: file.clone(),
            title: title.clone(),
            id: doc.id.clone(),
            kind: "correlation",
            status: if why.is_none() {
                "loaded"
            } else {
                "unsupported"
            },
            reason: why.clone(),
            doc: doc.clone(),
            editable_path: editable(file),
        });
    detections.chain(correlations).collect()
}

/// The conformance report `vedette rules check --conformance DIR --data-dir D` saves.
pub(crate) fn conformance_report_path(data_dir: &Path) -> PathBuf {
    data_dir.join("conformance.json")
}

/// Content hashes of the rule files `config` and `extra` name.
fn file_hashes(
    config: &RulesConfig,
    extra: &[PathBuf],
) -> anyhow::Result<BTreeMap<String, [u8; 32]>> {
    let mut hashes = BTreeMap::new();
    for file in rule_files(&run_rule_dirs(config, extra)).context("listing rule files")? {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        hashes.insert(file.display().to_string(), Sha256::digest(&bytes).into());
    }
    Ok(hashes)
}

/// Times a build is tried again when the files change while it reads them.
const BUILD_ATTEMPTS: usize = 5;

/// Builds the set `config` and `local_dir` describe (blocking work). The files are
/// hashed before and after they are loaded, and the build is tried again if the two
/// differ: a file being written while it was read (an editor saving, a copy) would
/// otherwise be loaded half and remembered by the hash of the whole, so that its
/// problems would never refuse a reload.
fn build(config: &RulesConfig, local_dir: &Path) -> anyhow::Result<Candidate> {
    let extra = [local_dir.to_path_buf()];
    let mut attempt = 0;
    let (sigma, hashes) = loop {
        attempt += 1;
        let before = file_hashes(config, &extra);
        // Loading before what it hashed is looked at: it names a folder it cannot read.
        let sigma = load_run_sigma(config, &extra)?;
        let after = file_hashes(config, &extra)?;
        if before.is_ok_and(|b| b == after) {
            break (sigma, after);
        }
        if attempt >= BUILD_ATTEMPTS {
            anyhow::bail!("the rule files kept changing while they were read; try again");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for report in &sigma.loaded.files {
        let found: Vec<String> = report
            .problems
            .iter()
            .cloned()
            .chain(report.unsupported.clone())
            .collect();
        if !found.is_empty() {
            problems
                .entry(report.path.display().to_string())
                .or_default()
                .extend(found);
        }
    }
    for (file, title, _, outcome) in &sigma.outcomes {
        if let CompileOutcome::Unsupported(why) = outcome {
            problems
                .entry(file.clone())
                .or_default()
                .push(format!("{title}: {why}"));
        }
    }
    Ok(Candidate {
        sigma,
        hashes,
        problems,
    })
}

/// Checks an API path: relative, plain names, ending in `.yml` or `.yaml`.
pub(crate) fn checked_rule_path(path: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(path);
    let plain = p.components().all(|c| matches!(c, Component::Normal(_)));
    let yaml = p
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e == "yml" || e == "yaml");
    if path.is_empty() || !plain || !yaml || path.len() > 512 {
        bail!("rule path `{path}`: use a relative path of plain names ending in .yml or .yaml");
    }
    Ok(p.to_path_buf())
}

impl LiveRules {
    /// Loads the rules at start (an unreadable folder is an error) and creates the
    /// folder of API-written rules, `local_dir`.
    pub(crate) fn load(config: &RulesConfig, local_dir: &Path) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(local_dir)
            .with_context(|| format!("cannot create {}", local_dir.display()))?;
        let candidate = build(config, local_dir)?;
        let rules = rule_infos(&candidate.sigma, local_dir);
        tracing::info!(
            rules = candidate.sigma.detector.rules().len(),
            parse_ms = candidate.sigma.parse_time.as_millis() as u64,
            compile_ms = candidate.sigma.compile_time.as_millis() as u64,
            "sigma rules loaded"
        );
        Ok(Arc::new(Self {
            config: config.clone(),
            local_dir: local_dir.to_path_buf(),
            current: RwLock::new(RunningSigma::of(candidate.sigma, 1)),
            state: tokio::sync::Mutex::new(State {
                hashes: candidate.hashes,
                rules,
                generation: 1,
                loaded_at: chrono::Utc::now().to_rfc3339(),
                last_rejection: None,
            }),
        }))
    }

    /// The running set.
    pub(crate) fn running(&self) -> Option<Arc<RunningSigma>> {
        self.current.read().ok().map(|d| d.clone())
    }

    /// The running set as `GET /v1/rules` shows it.
    pub(crate) async fn describe(&self) -> serde_json::Value {
        let state = self.state.lock().await;
        serde_json::json!({
            "generation": state.generation,
            "loaded_at": state.loaded_at,
            "loaded": state.rules.iter().filter(|r| r.status == "loaded").count(),
            "last_rejection": state.last_rejection.as_ref().map(|(at, r)| serde_json::json!({
                "at": at,
                "problems": r.problems,
            })),
            "rules": state.rules,
            "conformance": self.conformance(),
        })
    }

    /// The last conformance report saved next to the API rule folder, if any.
    fn conformance(&self) -> Option<serde_json::Value> {
        let path = conformance_report_path(self.local_dir.parent()?);
        let text = std::fs::read_to_string(&path).ok()?;
        match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "unreadable conformance report");
                None
            }
        }
    }

    /// The text of rule file `file` of the running set, and its path for
    /// `PUT /v1/rules/{path}` when it has one; `None` when the set has no such file.
    pub(crate) async fn source(&self, file: &str) -> Option<(String, Option<String>)> {
        let editable = {
            let state = self.state.lock().await;
            state
                .rules
                .iter()
                .find(|r| r.file == file)?
                .editable_path
                .clone()
        };
        if let Some(name) = file.strip_prefix("bundled:") {
            let (_, text) = SIGMA_RULES.iter().find(|(p, _)| *p == name)?;
            return Some(((*text).to_string(), editable));
        }
        match tokio::fs::read_to_string(file).await {
            Ok(text) => Some((text, editable)),
            Err(e) => {
                tracing::warn!(file, error = %e, "cannot read a rule file of the running set");
                None
            }
        }
    }

    /// Rebuilds the set from disk and swaps it in, unless a new or changed file has a
    /// problem.
    pub(crate) async fn reload(&self, trigger: &str) -> Result<ReloadReport, ReloadError> {
        let mut state = self.state.lock().await;
        let (config, local) = (self.config.clone(), self.local_dir.clone());
        let candidate = tokio::task::spawn_blocking(move || build(&config, &local))
            .await
            .map_err(|e| ReloadError::Failed(anyhow::anyhow!("reload task failed: {e}")))?
            .map_err(ReloadError::Failed)?;
        let changed: Vec<String> = candidate
            .hashes
            .iter()
            .filter(|(file, hash)| state.hashes.get(*file) != Some(*hash))
            .map(|(file, _)| file.clone())
            .collect();
        let blocking: BTreeMap<String, Vec<String>> = candidate
            .problems
            .iter()
            .filter(|(file, _)| changed.contains(file))
            .map(|(f, p)| (f.clone(), p.clone()))
            .collect();
        if !blocking.is_empty() {
            let rejection = Rejection { problems: blocking };
            tracing::warn!(trigger, problems = %rejection, "rule reload refused; the running rules stay");
            state.last_rejection = Some((chrono::Utc::now().to_rfc3339(), rejection.clone()));
            return Err(ReloadError::Rejected(rejection));
        }
        if changed.is_empty() && candidate.hashes.len() == state.hashes.len() {
            // Nothing new: the running set stays as it is.
            return Ok(ReloadReport {
                generation: state.generation,
                loaded: state.rules.iter().filter(|r| r.status == "loaded").count(),
                unsupported: state.rules.iter().filter(|r| r.status != "loaded").count(),
                changed,
            });
        }
        let rules = rule_infos(&candidate.sigma, &self.local_dir);
        let report = ReloadReport {
            generation: state.generation + 1,
            loaded: rules.iter().filter(|r| r.status == "loaded").count(),
            unsupported: rules.iter().filter(|r| r.status != "loaded").count(),
            changed,
        };
        let running = RunningSigma::of(candidate.sigma, report.generation);
        match self.current.write() {
            Ok(mut current) => *current = running,
            Err(_) => {
                return Err(ReloadError::Failed(anyhow::anyhow!(
                    "the running rule set is poisoned"
                )))
            }
        }
        *state = State {
            hashes: candidate.hashes,
            rules,
            generation: report.generation,
            loaded_at: chrono::Utc::now().to_rfc3339(),
            last_rejection: None,
        };
        tracing::info!(
            trigger,
            generation = report.generation,
            loaded = report.loaded,
            changed = report.changed.len(),
            "rules reloaded"
        );
        Ok(report)
    }

    /// Writes rule file `path` (under the API folder) after checking it alone, then
    /// reloads; on a refusal the file is put back as it was.
    pub(crate) async fn put(&self, path: &str, text: &str) -> Result<ReloadReport, ReloadError> {
        let relative = checked_rule_path(path).map_err(ReloadError::Failed)?;
        let problems = check_rule_text(text, path).map_err(ReloadError::Failed)?;
        if !problems.is_empty() {
            let mut map = BTreeMap::new();
            map.insert(path.to_string(), problems);
            return Err(ReloadError::Rejected(Rejection { problems: map }));
        }
        let target = self.local_dir.join(relative);
        let previous = std::fs::read(&target).ok();
        write_atomically(&target, text.as_bytes()).map_err(ReloadError::Failed)?;
        let result = self.reload("api").await;
        if matches!(result, Err(ReloadError::Rejected(_))) {
            let restored = match &previous {
                Some(bytes) => write_atomically(&target, bytes),
                None => std::fs::remove_file(&target).map_err(Into::into),
            };
            if let Err(e) = restored {
                tracing::error!(error = %e, file = %target.display(), "cannot put a refused rule file back");
            }
        }
        result
    }

    /// Polls the rule folders every `every` and reloads on a change, until `cancel`.
    pub(crate) fn spawn_watch(
        self: Arc<Self>,
        every: Duration,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let dirs = run_rule_dirs(&self.config, std::slice::from_ref(&self.local_dir));
        crate::file_watch::spawn_watch(
            every,
            cancel,
            move || rule_files(&dirs).unwrap_or_default(),
            move || {
                let this = self.clone();
                async move {
                    if let Err(ReloadError::Failed(e)) = this.reload("file change").await {
                        tracing::error!(error = %e, "rule reload failed; the running rules stay");
                    }
                }
            },
        )
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_stay_inside_the_rule_folder() {
        assert!(checked_rule_path("custom/lateral.yml").is_ok());
        for bad in [
            "../x.yml",
            "/etc/x.yml",
            "a/../../x.yml",
            "x.txt",
            "",
            "./x.yml",
        ] {
            assert!(checked_rule_path(bad).is_err(), "{bad}");
        }
    }
}
