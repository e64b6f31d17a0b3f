//! The YARA stage of `vedette run` and `vedette detect`: the bundled rules (unless
//! `[rules] bundled = false`) and those under `[rules] yara_dirs` or `--yara`, compiled
//! once; a file that does not compile is logged (or, for `vedette detect`, printed)
//! and skipped. Scan counters are read into the metrics at each scrape.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vedette_detect::yara::{YaraDetector, YaraLimits, YaraSet};

use crate::bundled::YARA_RULES;

/// The YARA detector for `dirs` (and the bundled rules when `bundled`); `None` when no
/// rule loaded.
pub(crate) fn load_yara(
    bundled: bool,
    dirs: &[PathBuf],
    fields: &[String],
    max_scan_bytes: usize,
) -> anyhow::Result<Option<Arc<YaraDetector>>> {
    let extra: Vec<(PathBuf, String)> = if bundled {
        YARA_RULES
            .iter()
            .map(|(name, text)| (Path::new("bundled").join(name), (*text).to_string()))
            .collect()
    } else {
        Vec::new()
    };
    let set = YaraSet::load(dirs, extra)?;
    for (path, error) in &set.errors {
        tracing::warn!(file = %path.display(), %error, "YARA rule file skipped");
    }
    tracing::info!(
        files = set.files,
        rules = set.rule_count(),
        skipped = set.errors.len(),
        "YARA rules loaded"
    );
    if set.rule_count() == 0 {
        return Ok(None);
    }
    let limits = YaraLimits {
        max_scan_bytes,
        timeout: Duration::from_secs(1),
    };
    Ok(Some(Arc::new(YaraDetector::new(set, fields, limits))))
}

/// Which YARA counter a gauge mirrors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CounterLabels {
    counter: String,
}

/// `vedette_yara{counter}`: the YARA stage's counters since start.
#[derive(Debug, Default)]
pub(crate) struct YaraGauges {
    counters: Family<CounterLabels, Gauge>,
}

impl YaraGauges {
    /// Registers the gauges.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let g = Self::default();
        registry.register(
            "yara",
            "Counters of the YARA stage since start: scans, bytes, truncated (values cut at yara_max_scan_bytes), timeouts, decoded (base64 and -EncodedCommand blobs)",
            g.counters.clone(),
        );
        g
    }

    /// Copies `detector`'s counters.
    pub(crate) fn observe(&self, detector: &YaraDetector) {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &detector.stats;
        for (name, value) in [
            ("scans", &s.scans),
            ("bytes", &s.bytes),
            ("truncated", &s.truncated),
            ("timeouts", &s.timeouts),
            ("decoded", &s.decoded),
        ] {
            self.counters
                .get_or_create(&CounterLabels {
                    counter: name.into(),
                })
                .set(i64::try_from(value.load(Relaxed)).unwrap_or(i64::MAX));
        }
    }
}
