//! [`SilentSources`]: a source (tenant, dataset, host) that sent events steadily and
//! then stops for longer than configured raises one alert, so a dead agent, a
//! stopped service or a cleared log is seen rather than mistaken for calm.
//!
//! A source counts as steady once it sent at least `min_events` events over at least
//! the silence period itself. Its alert comes at the first check after the silence
//! period ends, timed when the period ended; when it sends again, it must become steady again before it can raise
//! another. The clock is the caller's: arrival (wall-clock) time in `vedette run`, the
//! events' own time in `vedette detect`.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use vedette_core::alert::{Alert, DetectionKind, Level};
use vedette_core::batch::EventBatch;
use vedette_core::schema::col;

use super::stable_id;

/// Rule id of the alerts [`SilentSources`] raises.
pub const SILENCE_RULE_ID: &str = "vedette-silent-source";

/// Settings of [`SilentSources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceConfig {
    /// Silence, in milliseconds, after which a steady source raises; 0 turns this off.
    pub after_ms: i64,
    /// Events a source must have sent to count as steady.
    pub min_events: u64,
    /// Sources tracked at most; the longest silent go first.
    pub max_sources: usize,
}

/// (tenant, dataset, host)
pub type SourceKey = (String, String, String);

#[derive(Debug, Clone)]
struct Source {
    first_ms: i64,
    last_ms: i64,
    events: u64,
    alerted: bool,
}

/// The sources seen and when.
#[derive(Debug)]
pub struct SilentSources {
    config: SilenceConfig,
    sources: HashMap<SourceKey, Source>,
    evicted: u64,
}

/// The source of every row of `batch` (tenant from the row, else the batch's).
fn source_keys(batch: &EventBatch) -> Vec<SourceKey> {
    let records = &batch.records;
    let text = |name: &str| {
        records
            .column_by_name(name)
            .filter(|c| c.data_type() == &DataType::Utf8)
            .map(|c| c.as_string::<i32>().clone())
    };
    let (tenants, datasets, hosts) = (
        text(col::TENANT),
        text(col::EVENT_DATASET),
        text(col::HOST_NAME),
    );
    let value = |column: &Option<arrow::array::StringArray>, row: usize| {
        column
            .as_ref()
            .filter(|c| c.is_valid(row))
            .map(|c| c.value(row).to_string())
    };
    (0..records.num_rows())
        .map(|row| {
            (
                value(&tenants, row)
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| batch.tenant.clone()),
                value(&datasets, row).unwrap_or_default(),
                value(&hosts, row).unwrap_or_default(),
            )
        })
        .collect()
}

/// Events per source in `batch` (tenant from the row, else the batch's).
pub fn sources_in(batch: &EventBatch) -> HashMap<SourceKey, u64> {
    let mut out: HashMap<SourceKey, u64> = HashMap::new();
    for key in source_keys(batch) {
        *out.entry(key).or_default() += 1;
    }
    out
}

impl SilentSources {
    /// Empty state.
    pub fn new(config: SilenceConfig) -> Self {
        Self {
            config,
            sources: HashMap::new(),
            evicted: 0,
        }
    }

    /// `events` events of `source` arrived at `now_ms`.
    pub fn observe(&mut self, source: SourceKey, events: u64, now_ms: i64) {
        if self.config.after_ms <= 0 {
            return;
        }
        let s = self.sources.entry(source).or_insert(Source {
            first_ms: now_ms,
            last_ms: now_ms,
            events: 0,
            alerted: false,
        });
        if s.alerted {
            // Back after an alert: steady again before it can raise again.
            *s = Source {
                first_ms: now_ms,
                last_ms: now_ms,
                events: 0,
                alerted: false,
            };
        }
        s.first_ms = s.first_ms.min(now_ms);
        s.last_ms = s.last_ms.max(now_ms);
        s.events += events;
        if self.sources.len() > self.config.max_sources.max(1) {
            self.evict();
        }
    }

    /// Every source of `batch` arrived at `now_ms`.
    pub fn observe_batch(&mut self, batch: &EventBatch, now_ms: i64) {
        for (source, n) in sources_in(batch) {
            self.observe(source, n, now_ms);
        }
    }

    /// Every source of `batch`, at its events' own times (`@timestamp`; rows without
    /// one are left out); returns the latest time seen.
    pub fn observe_batch_by_event_time(&mut self, batch: &EventBatch) -> Option<i64> {
        let times = batch
            .records
            .column_by_name(col::TIMESTAMP)
            .and_then(|c| c.as_primitive_opt::<arrow::datatypes::TimestampMillisecondType>())?
            .clone();
        let keys = source_keys(batch);
        let mut spans: HashMap<SourceKey, (u64, i64, i64)> = HashMap::new();
        for (row, key) in keys.into_iter().enumerate() {
            if !times.is_valid(row) {
                continue;
            }
            let t = times.value(row);
            let e = spans.entry(key).or_insert((0, t, t));
            e.0 += 1;
            e.1 = e.1.min(t);
            e.2 = e.2.max(t);
        }
        let latest = spans.values().map(|s| s.2).max();
        for (key, (n, first, last)) in spans {
            self.observe(key.clone(), n, first);
            self.observe(key, 0, last);
        }
        latest
    }

    /// Drops the tenth of the sources silent longest (at least one).
    fn evict(&mut self) {
        let mut lasts: Vec<i64> = self.sources.values().map(|s| s.last_ms).collect();
        lasts.sort_unstable();
        let n = (lasts.len() / 10).max(1);
        let cut = lasts[n - 1];
        let before = self.sources.len();
        self.sources.retain(|_, s| s.last_ms > cut);
        self.evicted += (before - self.sources.len()) as u64;
    }

    /// Alerts for the steady sources silent for the configured time at `now_ms`.
    pub fn check(&mut self, now_ms: i64) -> Vec<Alert> {
        let after = self.config.after_ms;
        if after <= 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        for ((tenant, dataset, host), s) in &mut self.sources {
            let steady = s.events >= self.config.min_events && s.last_ms - s.first_ms >= after;
            if s.alerted || !steady || now_ms - s.last_ms < after {
                continue;
            }
            s.alerted = true;
            let last = s.last_ms.to_string();
            let silent_minutes = (now_ms - s.last_ms) / 60_000;
            out.push(Alert {
                id: stable_id(&[tenant, dataset, host, &last]),
                // When the silence reached the threshold (a replay checks late).
                time_ms: s.last_ms.saturating_add(after),
                tenant: tenant.clone(),
                kind: DetectionKind::Silence,
                rule_id: SILENCE_RULE_ID.into(),
                rule_title: "Log source went silent".into(),
                rule_author: None,
                level: Level::Medium,
                tags: Vec::new(),
                host: (!host.is_empty()).then(|| host.clone()),
                user: None,
                event_ids: Vec::new(),
                matched: [
                    ("event.dataset", dataset.clone()),
                    ("host.name", host.clone()),
                    ("source.last_seen_ms", last.clone()),
                    ("source.silent_minutes", silent_minutes.to_string()),
                    ("source.events_before", s.events.to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
                dedup_key: format!("{SILENCE_RULE_ID}|{dataset}|{host}"),
            });
        }
        out.sort_by(|a, b| a.dedup_key.cmp(&b.dedup_key));
        out
    }

    /// Sources tracked now.
    pub fn sources(&self) -> usize {
        self.sources.len()
    }

    /// Sources forgotten because `max_sources` was reached.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_core::event::{Event, EventBatchBuilder};

    const MIN: i64 = 60_000;

    fn key(host: &str) -> SourceKey {
        ("acme".into(), "windows.security".into(), host.into())
    }

    fn config() -> SilenceConfig {
        SilenceConfig {
            after_ms: 30 * MIN,
            min_events: 10,
            max_sources: 100,
        }
    }

    #[test]
    fn a_steady_source_that_stops_raises_once() {
        let mut s = SilentSources::new(config());
        // Steady: an event a minute for an hour; a sparse one: three events.
        for m in 0..60 {
            s.observe(key("dc1"), 1, m * MIN);
        }
        for m in [0, 20, 59] {
            s.observe(key("sparse"), 1, m * MIN);
        }
        assert!(
            s.check(59 * MIN + 29 * MIN).is_empty(),
            "not yet silent long enough"
        );
        let alerts = s.check(59 * MIN + 30 * MIN);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(a.kind, DetectionKind::Silence);
        assert_eq!(a.host.as_deref(), Some("dc1"));
        assert_eq!(a.matched["source.silent_minutes"], "30");
        assert_eq!(a.matched["source.events_before"], "60");
        assert!(s.check(200 * MIN).is_empty(), "raised once");
        // Back, but not yet steady: no second alert.
        s.observe(key("dc1"), 5, 201 * MIN);
        assert!(s.check(300 * MIN).is_empty());
    }

    #[test]
    fn a_source_just_started_is_not_steady() {
        let mut s = SilentSources::new(config());
        s.observe(key("new"), 1000, 0);
        s.observe(key("new"), 1000, 10 * MIN);
        assert!(
            s.check(100 * MIN).is_empty(),
            "ten minutes of data is not steady for a 30-minute silence"
        );
    }

    #[test]
    fn batches_are_counted_per_source_and_the_table_is_bounded() {
        let mut b = EventBatchBuilder::new();
        for (dataset, host) in [
            ("syslog", "a"),
            ("syslog", "a"),
            ("syslog", "b"),
            ("zeek.conn", "a"),
        ] {
            b.append(&Event {
                id: "x".into(),
                dataset: dataset.into(),
                host_name: Some(host.into()),
                ..Event::default()
            });
        }
        let batch = EventBatch::new(b.finish().unwrap(), "test", "acme", 0);
        let counts = sources_in(&batch);
        assert_eq!(counts.len(), 3);
        assert_eq!(
            counts[&("default".into(), "syslog".into(), "a".into())],
            2,
            "the row's tenant: {counts:?}"
        );
        let mut s = SilentSources::new(SilenceConfig {
            max_sources: 2,
            ..config()
        });
        s.observe_batch(&batch, 0);
        assert!(s.sources() <= 2);
        assert!(s.evicted() >= 1);
    }
}
