//! `[alerts]`: what happens to alerts after detection: dedup, entity risk, silent
//! sources, baselines, and the evaluation of correlation windows.

use serde::{Deserialize, Serialize};

/// `[alerts]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Folding of repeated alerts. Default: a 10-minute window.
    pub dedup: DedupConfig,
    /// Entity risk. Default: on, 24 hours, threshold 150.
    pub risk: RiskConfig,
    /// Silent sources. Default: on, an hour.
    pub silence: SilenceConfig,
    /// Statistical baselines (definitions: `[rules]`). Default: on.
    pub baselines: BaselinesConfig,
    /// Sigma correlation windows. Default: a minute of lateness.
    pub correlation: CorrelationConfig,
}

/// `[alerts.correlation]`: how Sigma correlation rules are evaluated in the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrelationConfig {
    /// How far behind the newest event time a hit may arrive and still count, in
    /// seconds; a window is evaluated once the newest event time is this far past it.
    /// Larger values tolerate agents that send late (buffered, offline laptops) and
    /// delay correlation alerts by as much event time. Default: 60.
    pub lateness_seconds: u64,
    /// Open groups per correlation at most (the oldest go first, counted). Default: 100000.
    pub max_groups: usize,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            lateness_seconds: 60,
            max_groups: 100_000,
        }
    }
}

/// `[alerts.baselines]`: the statistical baselines' state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselinesConfig {
    /// Run the baselines (bundled and `rules.baseline_dirs`). Default: true.
    pub enabled: bool,
    /// Entities each baseline keeps at most. Default: 1000000.
    pub max_entities: usize,
    /// How often the state is saved to `<data_dir>/baselines/state.json`, in seconds
    /// (and at shutdown). Default: 300.
    pub checkpoint_seconds: u64,
}

impl Default for BaselinesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entities: 1_000_000,
            checkpoint_seconds: 300,
        }
    }
}

/// `[alerts.dedup]`: alerts of one tenant, rule and dedup key (the rule and its host)
/// within a window are folded into the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupConfig {
    /// Window in seconds; 0 turns dedup off. Default: 600.
    pub window_seconds: u64,
    /// Windows open at most (the oldest closes early past it). Default: 100000.
    pub max_keys: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            window_seconds: 600,
            max_keys: 100_000,
        }
    }
}

/// `[alerts.risk]`: each alert adds risk to its host and user; an entity whose risk
/// over the window reaches the threshold raises a `high-risk entity` alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// Raise high-risk entity alerts. Default: true.
    pub enabled: bool,
    /// Window over which risk adds up, in hours. Default: 24.
    pub window_hours: u64,
    /// Risk at which an entity is raised (a high alert with an ATT&CK technique tag
    /// adds 52.5, a medium one 15). Default: 150.
    pub threshold: f64,
    /// Entities tracked at most. Default: 100000.
    pub max_entities: usize,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_hours: 24,
            threshold: 150.0,
            max_entities: 100_000,
        }
    }
}

/// `[alerts.silence]`: a source (tenant, dataset, host) that sent steadily and stops
/// raises an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SilenceConfig {
    /// Raise silent-source alerts. Default: true.
    pub enabled: bool,
    /// Seconds of silence after which a steady source raises. Default: 3600.
    pub after_seconds: u64,
    /// Events a source must have sent (over at least `after_seconds`) to count as
    /// steady. Default: 100.
    pub min_events: u64,
    /// Sources tracked at most. Default: 100000.
    pub max_sources: usize,
}

impl Default for SilenceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            after_seconds: 3600,
            min_events: 100,
            max_sources: 100_000,
        }
    }
}

impl AlertsConfig {
    /// Checks ranges; names the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.dedup.max_keys == 0 {
            return Err("alerts.dedup.max_keys: must be at least 1".into());
        }
        if self.risk.enabled {
            if self.risk.window_hours == 0 {
                return Err("alerts.risk.window_hours: must be at least 1".into());
            }
            if !(self.risk.threshold.is_finite() && self.risk.threshold > 0.0) {
                return Err("alerts.risk.threshold: must be a positive number".into());
            }
            if self.risk.max_entities == 0 {
                return Err("alerts.risk.max_entities: must be at least 1".into());
            }
        }
        if self.baselines.enabled {
            if self.baselines.max_entities == 0 {
                return Err("alerts.baselines.max_entities: must be at least 1".into());
            }
            if self.baselines.checkpoint_seconds == 0 {
                return Err("alerts.baselines.checkpoint_seconds: must be at least 1".into());
            }
        }
        if self.silence.enabled {
            if self.silence.after_seconds == 0 {
                return Err("alerts.silence.after_seconds: must be at least 1".into());
            }
            if self.silence.max_sources == 0 {
                return Err("alerts.silence.max_sources: must be at least 1".into());
            }
        }
        Ok(())
    }
}
