//! The YARA stage of `vedette run` and `vedette detect`: the bundled rules (unless
//! `[rules] bundled = false`) and those under `[rules] yara_dirs` or `--yara`; a file
//! that does not compile is logged (or, for `vedette detect`, printed) and skipped.
//! In `vedette run` the rules are [`LiveYara`]: a change under `yara_dirs` (polled every
//! `rules.reload_poll_ms`) recompiles them off the pipeline's threads and swaps them in
//! between two batches. Scan counters are read into the metrics at each scrape.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

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
        ..YaraLimits::default()
    };
    Ok(Some(Arc::new(YaraDetector::new(set, fields, limits)?)))
}

/// The YARA counters, by name, in the order of the `vedette_yara` gauges.
const COUNTERS: [&str; 14] = [
    "scans",
    "bytes",
    "bytes_met",
    "truncated",
    "timeouts",
    "decoded",
    "passed_over",
    "open_scans",
    "file_scans",
    "whole_set_scans",
    "relaxed_passed_over",
    "group_scans",
    "group_passed_over",
    "scanners_built",
];

/// The values of [`COUNTERS`] of one detector.
fn counters_of(detector: &YaraDetector) -> [u64; COUNTERS.len()] {
    let s = &detector.stats;
    [
        &s.scans,
        &s.bytes,
        &s.bytes_met,
        &s.truncated,
        &s.timeouts,
        &s.decoded,
        &s.passed_over,
        &s.open_scans,
        &s.file_scans,
        &s.whole_set_scans,
        &s.relaxed_passed_over,
        &s.group_scans,
        &s.group_passed_over,
        &s.scanners_built,
    ]
    .map(|c| c.load(Ordering::Relaxed))
}

/// The running YARA rules of `vedette run`, replaced when their files change.
pub(crate) struct LiveYara {
    bundled: bool,
    dirs: Vec<PathBuf>,
    fields: Vec<String>,
    max_scan_bytes: usize,
    current: RwLock<Option<Arc<YaraDetector>>>,
    /// Counters of the detectors replaced so far (the gauges stay monotonic).
    retired: [AtomicU64; COUNTERS.len()],
    /// Reloads done.
    pub(crate) reloads: AtomicU64,
}

impl std::fmt::Debug for LiveYara {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveYara")
            .field("dirs", &self.dirs)
            .finish_non_exhaustive()
    }
}

impl LiveYara {
    /// Loads the rules at start (an unreadable folder is an error).
    pub(crate) fn load(
        bundled: bool,
        dirs: &[PathBuf],
        fields: &[String],
        max_scan_bytes: usize,
    ) -> anyhow::Result<Arc<Self>> {
        let detector = load_yara(bundled, dirs, fields, max_scan_bytes)?;
        Ok(Arc::new(Self {
            bundled,
            dirs: dirs.to_vec(),
            fields: fields.to_vec(),
            max_scan_bytes,
            current: RwLock::new(detector),
            retired: Default::default(),
            reloads: AtomicU64::new(0),
        }))
    }

    /// The detector of the running rules, if any rule loaded.
    pub(crate) fn current(&self) -> Option<Arc<YaraDetector>> {
        self.current.read().ok().and_then(|d| d.clone())
    }

    /// The counters since start, over every detector that ran.
    pub(crate) fn counters(&self) -> [u64; COUNTERS.len()] {
        let now = self.current().map(|d| counters_of(&d)).unwrap_or_default();
        let mut out = [0u64; COUNTERS.len()];
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.retired[i].load(Ordering::Relaxed) + now[i];
        }
        out
    }

    /// Recompiles the rules from disk and swaps them in (files that do not compile are
    /// logged and skipped, as at start).
    pub(crate) async fn reload(self: &Arc<Self>) -> anyhow::Result<()> {
        let this = self.clone();
        let fresh = tokio::task::spawn_blocking(move || {
            load_yara(this.bundled, &this.dirs, &this.fields, this.max_scan_bytes)
        })
        .await??;
        let old = match self.current.write() {
            Ok(mut current) => std::mem::replace(&mut *current, fresh),
            Err(_) => anyhow::bail!("the running YARA rules are poisoned"),
        };
        if let Some(old) = old {
            for (i, v) in counters_of(&old).into_iter().enumerate() {
                self.retired[i].fetch_add(v, Ordering::Relaxed);
            }
        }
        let n = self.reloads.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            reload = n,
            rules = self.current().map_or(0, |d| d.rule_count()),
            "YARA rules reloaded"
        );
        Ok(())
    }

    /// Polls the rule folders every `every` and reloads on a change, until `cancel`.
    pub(crate) fn spawn_watch(
        self: Arc<Self>,
        every: Duration,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let dirs = self.dirs.clone();
        crate::file_watch::spawn_watch(
            every,
            cancel,
            move || YaraSet::files(&dirs).unwrap_or_default(),
            move || {
                let this = self.clone();
                async move {
                    if let Err(e) = this.reload().await {
                        tracing::error!(error = %e, "YARA reload failed; the running rules stay");
                    }
                }
            },
        )
    }
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
            "Counters of the YARA stage since start: scans (values the prefilter kept), bytes (theirs), bytes_met (of every value), truncated (values cut at yara_max_scan_bytes), timeouts, decoded (base64 and -EncodedCommand blobs), passed_over (values no rule could match, not scanned), open_scans (scans with the few rules the prefilter cannot tell anything of), file_scans (scans of a value with one unit), whole_set_scans, relaxed_passed_over and group_passed_over (values a unit's relaxed rules passed over, alone or in a group), group_scans, scanners_built (see docs/yara.md)",
            g.counters.clone(),
        );
        g
    }

    /// Copies the running rules' counters (and those of the rules they replaced).
    pub(crate) fn observe(&self, yara: &LiveYara) {
        for (name, value) in COUNTERS.iter().zip(yara.counters()) {
            self.counters
                .get_or_create(&CounterLabels {
                    counter: (*name).into(),
                })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
    }
}
