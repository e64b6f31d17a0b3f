//! The alert state of the detection stage (`[alerts]`): repeated alerts folded, entity
//! risk added up, silent sources watched ([`vedette_detect::alerting`]), on the
//! wall clock of this process; and the statistical baselines
//! ([`vedette_detect::baseline`]), on the events' time, checkpointed under the data
//! folder. `vedette detect` uses the same state on the events' own time.

use std::path::{Path, PathBuf};

use vedette_core::alert::Alert;
use vedette_core::batch::EventBatch;
use vedette_core::config::AlertsConfig;
use vedette_detect::alerting::dedup::{AlertDedup, DedupConfig, DedupSummary};
use vedette_detect::alerting::risk::{EntityRisk, RiskConfig};
use vedette_detect::alerting::silence::{SilenceConfig, SilentSources};
use vedette_detect::baseline::{BaselineEngine, BaselineSet};

use crate::bundled::BASELINES;

/// Audit action of a dedup summary: `target` is the kept alert, `detail` the count.
pub(crate) const DEDUP_ACTION: &str = "alert.dedup";

/// The alert state, and the baselines with their checkpoint file when any runs.
#[derive(Debug)]
pub(crate) struct AlertFlow {
    dedup: AlertDedup,
    risk: EntityRisk,
    silence: SilentSources,
    baselines: Option<(BaselineEngine, PathBuf)>,
}

/// What one batch's alerts became.
#[derive(Debug, Default)]
pub(crate) struct Processed {
    /// Alerts that go on: the kept ones, then the risk alerts they raised.
    pub(crate) alerts: Vec<Alert>,
    /// Alerts folded into an earlier one.
    pub(crate) folded: u64,
}

impl AlertFlow {
    /// Empty state set up from `[alerts]`.
    pub(crate) fn new(config: &AlertsConfig) -> Self {
        let ms = |seconds: u64| i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        Self {
            dedup: AlertDedup::new(DedupConfig {
                window_ms: ms(config.dedup.window_seconds),
                max_keys: config.dedup.max_keys,
            }),
            risk: EntityRisk::new(RiskConfig {
                window_ms: if config.risk.enabled {
                    ms(config.risk.window_hours.saturating_mul(3600))
                } else {
                    0
                },
                threshold: config.risk.threshold,
                max_entities: config.risk.max_entities,
            }),
            silence: SilentSources::new(SilenceConfig {
                after_ms: if config.silence.enabled {
                    ms(config.silence.after_seconds)
                } else {
                    0
                },
                min_events: config.silence.min_events,
                max_sources: config.silence.max_sources,
            }),
            baselines: None,
        }
    }

    /// Runs `engine` too (unless it has no baseline), saving its state to `checkpoint`
    /// (restored from it first).
    pub(crate) fn with_baselines(
        mut self,
        mut engine: BaselineEngine,
        checkpoint: PathBuf,
    ) -> Self {
        if engine.is_empty() {
            return self;
        }
        match engine.restore(&checkpoint) {
            Ok(0) => {}
            Ok(n) => tracing::info!(baselines = n, "baseline state restored"),
            Err(e) => tracing::warn!(error = %e, "baseline checkpoint unreadable: learning afresh"),
        }
        self.baselines = Some((engine, checkpoint));
        self
    }

    /// Runs `engine` instead of the running baselines, carrying over the state of every
    /// baseline whose definition did not change; returns (baselines running, carried).
    pub(crate) fn replace_baselines(
        &mut self,
        mut engine: BaselineEngine,
        checkpoint: PathBuf,
    ) -> (usize, usize) {
        let carried = match self.baselines.take() {
            Some((old, _)) => engine.take_over(old),
            None => 0,
        };
        let running = engine.stats().len();
        self.baselines = (!engine.is_empty()).then_some((engine, checkpoint));
        (running, carried)
    }

    /// The baseline alerts of one batch.
    pub(crate) fn baselines(&mut self, batch: &EventBatch) -> Vec<Alert> {
        match &mut self.baselines {
            Some((engine, _)) => engine.observe(batch),
            None => Vec::new(),
        }
    }

    /// Saves the baseline state (a no-op without baselines).
    /// Whether the baselines have a checkpoint on disk.
    pub(crate) fn baselines_saved(&self) -> bool {
        self.baselines
            .as_ref()
            .is_some_and(|(_, path)| path.exists())
    }

    pub(crate) fn save_baselines(&self) {
        let Some((engine, path)) = &self.baselines else {
            return;
        };
        if let Err(e) = engine.save(path) {
            tracing::error!(error = %e, "saving the baseline state failed");
        }
    }

    /// Takes one batch and its alerts at `now_ms`.
    pub(crate) fn process(
        &mut self,
        batch: &EventBatch,
        alerts: Vec<Alert>,
        now_ms: i64,
    ) -> Processed {
        self.silence.observe_batch(batch, now_ms);
        self.raise(alerts, now_ms)
    }

    /// Folds repeats of `alerts` and adds the risk alerts they bring (alerts raised
    /// without a batch: correlation windows closed by the clock).
    pub(crate) fn raise(&mut self, alerts: Vec<Alert>, now_ms: i64) -> Processed {
        let (mut kept, folded) = self.dedup.filter(alerts, now_ms);
        let raised: Vec<Alert> = kept.iter().flat_map(|a| self.risk.observe(a)).collect();
        kept.extend(raised);
        Processed {
            alerts: kept,
            folded,
        }
    }

    /// The silence alerts due at `now_ms`, and the summaries of the dedup windows
    /// closed by then.
    pub(crate) fn tick(&mut self, now_ms: i64) -> (Vec<Alert>, Vec<DedupSummary>) {
        (self.silence.check(now_ms), self.dedup.close_due(now_ms))
    }

    /// The summaries of every open dedup window (at shutdown or the end of a replay).
    pub(crate) fn close(&mut self) -> Vec<DedupSummary> {
        self.dedup.close_all()
    }

    /// Entries held: open dedup windows, risk entities, sources.
    pub(crate) fn sizes(&self) -> [(&'static str, usize); 4] {
        [
            ("dedup_windows", self.dedup.open_windows()),
            ("risk_entities", self.risk.entities()),
            ("sources", self.silence.sources()),
            (
                "baseline_entities",
                self.baselines
                    .as_ref()
                    .map_or(0, |(e, _)| e.stats().iter().map(|s| s.entities).sum()),
            ),
        ]
    }
}

/// The JSON detail of a dedup summary's audit record.
pub(crate) fn summary_detail(s: &DedupSummary) -> String {
    serde_json::json!({
        "suppressed": s.suppressed,
        "first_ms": s.first_ms,
        "last_ms": s.last_ms,
    })
    .to_string()
}

/// The baseline definitions of `vedette run`, reloaded when their files change: a
/// watcher rebuilds the engine off the pipeline's threads and leaves it here; the
/// detection stage swaps it in between two batches ([`AlertFlow::replace_baselines`]),
/// so unchanged baselines keep what they learned.
#[derive(Debug)]
pub(crate) struct LiveBaselines {
    bundled: bool,
    dirs: Vec<PathBuf>,
    max_entities: usize,
    /// Where the state is saved.
    pub(crate) checkpoint: PathBuf,
    pending: std::sync::Mutex<Option<BaselineEngine>>,
}

impl LiveBaselines {
    /// Baselines of `[rules]` (bundled and `baseline_dirs`), saved to `checkpoint`.
    pub(crate) fn new(
        bundled: bool,
        dirs: &[PathBuf],
        max_entities: usize,
        checkpoint: PathBuf,
    ) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            bundled,
            dirs: dirs.to_vec(),
            max_entities,
            checkpoint,
            pending: std::sync::Mutex::new(None),
        })
    }

    /// The engine a reload built and nobody took yet.
    pub(crate) fn take_pending(&self) -> Option<BaselineEngine> {
        self.pending.lock().ok().and_then(|mut p| p.take())
    }

    /// Polls the definition folders every `every` and builds a new engine on a change,
    /// until `cancel`.
    pub(crate) fn spawn_watch(
        self: std::sync::Arc<Self>,
        every: std::time::Duration,
        cancel: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let dirs = self.dirs.clone();
        crate::file_watch::spawn_watch(
            every,
            cancel,
            move || BaselineSet::files(&dirs).unwrap_or_default(),
            move || {
                let (this, loader) = (self.clone(), self.clone());
                async move {
                    let built = tokio::task::spawn_blocking(move || {
                        load_baselines(loader.bundled, &loader.dirs)
                            .map(|set| BaselineEngine::new(&set.defs, loader.max_entities))
                    })
                    .await;
                    match built {
                        Ok(Ok(engine)) => {
                            if let Ok(mut pending) = this.pending.lock() {
                                *pending = Some(engine);
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "baseline reload failed; the running baselines stay")
                        }
                        Err(e) => tracing::error!(error = %e, "baseline reload task failed"),
                    }
                }
            },
        )
    }
}

/// The baselines `vedette run` loads: the bundled ones (unless `[rules] bundled =
/// false`) and those under `baseline_dirs`. A bad file is logged and skipped.
pub(crate) fn load_baselines(bundled: bool, dirs: &[PathBuf]) -> anyhow::Result<BaselineSet> {
    let mut set = BaselineSet::load(dirs)?;
    if bundled {
        for (name, text) in BASELINES {
            set.add_text(&Path::new("bundled").join(name), text);
        }
    }
    for (path, error) in &set.errors {
        tracing::warn!(file = %path.display(), %error, "baseline skipped");
    }
    Ok(set)
}
