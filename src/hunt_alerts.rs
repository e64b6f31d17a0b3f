//! The alert state of `vedette detect` (`--dedup`, `--risk`, `--silence`,
//! `--baselines`): the same dedup, entity risk, silent-source and baseline logic as
//! `vedette run` ([`vedette_detect::alerting`], [`vedette_detect::baseline`]), on the
//! events' own time, so a replay of old logs folds, adds up, learns and notices
//! silences as the live pipeline would have.

use std::io::Write;

use anyhow::Context;
use vedette_core::alert::Alert;
use vedette_core::batch::EventBatch;
use vedette_detect::alerting::dedup::{Admission, AlertDedup, DedupConfig};
use vedette_detect::alerting::risk::{EntityRisk, RiskConfig};
use vedette_detect::alerting::silence::{SilenceConfig, SilentSources};
use vedette_detect::baseline::{BaselineDef, BaselineEngine, BaselineSet};

/// Entries each kind of state keeps at most in a hunt.
const MAX_ENTRIES: usize = 1_000_000;

/// The state, each part present when its flag was given.
#[derive(Debug, Default)]
pub(crate) struct HuntAlerts {
    dedup: Option<AlertDedup>,
    risk: Option<EntityRisk>,
    silence: Option<SilentSources>,
    baselines: Option<BaselineEngine>,
    /// Latest event time seen.
    watermark: Option<i64>,
    /// Hits folded by dedup.
    pub(crate) folded: u64,
    /// Risk alerts raised.
    pub(crate) risky: u64,
    /// Silence alerts raised.
    pub(crate) silent: u64,
    /// Baseline alerts raised.
    pub(crate) baseline: u64,
}

/// Which parts are on, from the command line.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HuntAlertFlags {
    /// `--dedup SECONDS`.
    pub(crate) dedup_seconds: Option<u32>,
    /// `--risk THRESHOLD`.
    pub(crate) risk_threshold: Option<f64>,
    /// `--risk-window-hours`.
    pub(crate) risk_window_hours: u32,
    /// `--silence SECONDS`.
    pub(crate) silence_seconds: Option<u32>,
    /// `--silence-min-events`.
    pub(crate) silence_min_events: u64,
}

impl HuntAlerts {
    /// The state `flags` and `baselines` ask for; `None` when there is nothing to do.
    pub(crate) fn new(flags: HuntAlertFlags, baselines: Vec<BaselineDef>) -> Option<Self> {
        let ms = |s: u32| i64::from(s) * 1000;
        let state = Self {
            dedup: flags.dedup_seconds.map(|s| {
                AlertDedup::new(DedupConfig {
                    window_ms: ms(s),
                    max_keys: MAX_ENTRIES,
                })
            }),
            risk: flags.risk_threshold.map(|threshold| {
                EntityRisk::new(RiskConfig {
                    window_ms: ms(flags.risk_window_hours.saturating_mul(3600)),
                    threshold,
                    max_entities: MAX_ENTRIES,
                })
            }),
            silence: flags.silence_seconds.map(|s| {
                SilentSources::new(SilenceConfig {
                    after_ms: ms(s),
                    min_events: flags.silence_min_events,
                    max_sources: MAX_ENTRIES,
                })
            }),
            baselines: (!baselines.is_empty())
                .then(|| BaselineEngine::new(&baselines, MAX_ENTRIES)),
            ..Self::default()
        };
        let any = state.dedup.is_some()
            || state.risk.is_some()
            || state.silence.is_some()
            || state.baselines.is_some();
        any.then_some(state)
    }

    /// Takes one batch and its alerts (one per hit, in order); returns which hits to
    /// print and the risk and silence alerts raised.
    pub(crate) fn process(
        &mut self,
        batch: &EventBatch,
        alerts: &[Alert],
    ) -> (Vec<bool>, Vec<Alert>) {
        let mut raised = Vec::new();
        if let Some(engine) = &mut self.baselines {
            let learned = engine.observe(batch);
            self.baseline += learned.len() as u64;
            for a in &learned {
                if let Some(r) = &mut self.risk {
                    raised.extend(r.observe(a));
                }
            }
            raised.extend(learned);
        }
        let keep: Vec<bool> = alerts
            .iter()
            .map(|a| {
                let kept = match &mut self.dedup {
                    Some(d) => d.admit(a, a.time_ms) == Admission::Kept,
                    None => true,
                };
                if kept {
                    if let Some(r) = &mut self.risk {
                        raised.extend(r.observe(a));
                    }
                } else {
                    self.folded += 1;
                }
                kept
            })
            .collect();
        if let Some(s) = &mut self.silence {
            if let Some(latest) = s.observe_batch_by_event_time(batch) {
                self.watermark = Some(self.watermark.map_or(latest, |w| w.max(latest)));
            }
            if let Some(now) = self.watermark {
                raised.extend(s.check(now));
            }
        }
        self.risky += raised
            .iter()
            .filter(|a| a.kind == vedette_core::alert::DetectionKind::Risk)
            .count() as u64;
        self.silent += raised
            .iter()
            .filter(|a| a.kind == vedette_core::alert::DetectionKind::Silence)
            .count() as u64;
        (keep, raised)
    }
}

/// Writes a risk or silence alert as one JSON line.
pub(crate) fn write_alert(out: &mut impl Write, a: &Alert) -> anyhow::Result<()> {
    let timestamp = chrono::DateTime::from_timestamp_millis(a.time_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let line = serde_json::json!({
        "kind": a.kind.as_str(),
        "rule_id": a.rule_id,
        "rule_title": a.rule_title,
        "level": a.level.as_str(),
        "tags": a.tags,
        "timestamp": timestamp,
        "host": a.host,
        "user": a.user,
        "event_ids": a.event_ids,
        "matched": a.matched,
    });
    writeln!(out, "{line}").context("writing alerts")
}

/// The baseline definitions under `paths` (files or folders); a bad file fails the
/// hunt with its reason, as a bad rule does.
pub(crate) fn load_hunt_baselines(
    paths: &[std::path::PathBuf],
) -> anyhow::Result<Vec<BaselineDef>> {
    let set = BaselineSet::load(paths)?;
    if let Some((path, error)) = set.errors.first() {
        anyhow::bail!("baseline {}: {error}", path.display());
    }
    Ok(set.defs)
}
