//! Statistical baselines: per-entity behaviour learned from the events, and alerts
//! when it changes. Four kinds ([`definition`] documents the file format):
//!
//! - **numeric anomaly** ([`numeric`]): a count or sum per interval per entity, EWMA
//!   mean and variance, alert on a z-score after a warm-up;
//! - **new terms** ([`new_terms`]): the first value of a field for an entity after its
//!   learning window;
//! - **rare values** ([`rare`]): values seen at most N times across the fleet in a
//!   window (count-min sketch);
//! - **predictive trend** ([`trend`]): a Holt forecast of a per-entity series, alert
//!   when it crosses a threshold within the horizon, with the predicted time.
//!
//! [`BaselineEngine`] is stateful (`&mut self`), like correlation: it runs after the
//! stateless detectors on each batch, on the events' own time, so a replay learns and
//! alerts as the live flow did. State is bounded per baseline (least recently touched
//! entities go, counted) and saved to a checkpoint file ([`BaselineEngine::save`]) that
//! a restart reads back, for the baselines whose definition did not change. In a
//! cluster each node learns the entities of the partitions it reads (events are keyed
//! by host).

pub mod definition;

mod bounded;
mod new_terms;
mod numeric;
mod rare;
mod trend;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vedette_core::alert::{Alert, DetectionKind};
use vedette_core::batch::EventBatch;
use vedette_core::schema::col;

use crate::alerting::stable_id;
use crate::error::DetectError;
use crate::field_values::{self as values, FieldValues};
use bounded::Bounded;
pub use definition::{BaselineDef, Kind};

/// FNV-1a, 64 bits: a hash that stays the same across builds (checkpoints rely on it).
pub(crate) fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The definitions found in some folders, and the files that failed.
#[derive(Debug, Default)]
pub struct BaselineSet {
    /// Valid definitions, in file order.
    pub defs: Vec<BaselineDef>,
    /// Files that failed, with the reason.
    pub errors: Vec<(PathBuf, String)>,
}

impl BaselineSet {
    /// The files [`BaselineSet::load`] reads: every file of `paths` and every `*.yml` /
    /// `*.yaml` under the folders among them (recursively), sorted.
    pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DetectError> {
        crate::rule_files::rule_files(paths, &["yml", "yaml"])
    }

    /// Reads every file of `paths` and every `*.yml` / `*.yaml` under the folders among
    /// them (recursively); a bad file is reported and skipped, a duplicate id too.
    pub fn load(paths: &[PathBuf]) -> Result<Self, DetectError> {
        let mut set = BaselineSet::default();
        for path in Self::files(paths)? {
            let text = std::fs::read_to_string(&path).map_err(|source| DetectError::Read {
                path: path.clone(),
                source,
            })?;
            set.add_text(&path, &text);
        }
        Ok(set)
    }

    /// Adds the definition `text` read from `origin`; a bad one or a duplicate id is
    /// reported in [`BaselineSet::errors`].
    pub fn add_text(&mut self, origin: &Path, text: &str) {
        match BaselineDef::parse(text, &origin.display().to_string()) {
            Ok(def) if self.defs.iter().any(|d| d.id == def.id) => {
                self.errors.push((
                    origin.to_path_buf(),
                    format!("duplicate baseline id `{}`", def.id),
                ));
            }
            Ok(def) => self.defs.push(def),
            Err(e) => self.errors.push((origin.to_path_buf(), e.to_string())),
        }
    }
}

/// The state of one baseline.
#[derive(Debug, Serialize, Deserialize)]
enum State {
    Numeric(numeric::NumericState),
    NewTerms(new_terms::NewTermsState),
    Rare(Box<rare::RareState>),
    Trend(trend::TrendState),
}

impl State {
    fn new(kind: &Kind, max_entities: usize) -> Self {
        let mut state = match kind {
            Kind::Numeric(_) => State::Numeric(numeric::NumericState::default()),
            Kind::NewTerms(_) => State::NewTerms(new_terms::NewTermsState::default()),
            Kind::Rare(_) => State::Rare(Box::default()),
            Kind::Trend(_) => State::Trend(trend::TrendState::default()),
        };
        state.set_max(max_entities);
        state
    }

    /// Sets the most entities kept (rare values keep no entities).
    fn set_max(&mut self, max_entities: usize) {
        match self {
            State::Numeric(s) => s.cells.set_max(max_entities),
            State::NewTerms(s) => s.entities.set_max(max_entities),
            State::Rare(_) => {}
            State::Trend(s) => s.cells.set_max(max_entities),
        }
    }

    /// Entities held, entities evicted, bytes of the entity table.
    fn entities(&self) -> (usize, u64, usize) {
        match self {
            State::Numeric(s) => (s.cells.len(), s.cells.evicted, s.cells.table_bytes()),
            State::NewTerms(s) => (
                s.entities.len(),
                s.entities.evicted,
                s.entities.table_bytes(),
            ),
            State::Rare(_) => (0, 0, 0),
            State::Trend(s) => (s.cells.len(), s.cells.evicted, s.cells.table_bytes()),
        }
    }
}

/// One baseline and its state.
#[derive(Debug)]
struct Running {
    def: BaselineDef,
    kind: Kind,
    fingerprint: u64,
    state: State,
}

/// Entities tracked and forgotten, per baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineStats {
    /// Baseline id.
    pub id: String,
    /// Entities tracked now.
    pub entities: usize,
    /// Entities forgotten to stay within the bound.
    pub evicted: u64,
    /// Bytes of the entity table, free slots included (not what an entity's state
    /// holds on the heap: the term sets of new-terms baselines).
    pub table_bytes: usize,
}

/// Every baseline's state, fed batch by batch.
#[derive(Debug)]
pub struct BaselineEngine {
    running: Vec<Running>,
    /// Entities kept at most per baseline (also for state taken from a checkpoint or
    /// an earlier engine).
    max_entities: usize,
}

/// What a checkpoint holds per baseline.
#[derive(Serialize, Deserialize)]
struct Saved {
    id: String,
    fingerprint: u64,
    state: State,
}

/// Fingerprint of a definition: a changed definition starts from scratch.
fn fingerprint(def: &BaselineDef) -> u64 {
    fnv64(format!("{def:?}").as_bytes())
}

impl BaselineEngine {
    /// Fresh state for `defs`, at most `max_entities` entities per baseline.
    pub fn new(defs: &[BaselineDef], max_entities: usize) -> Self {
        let running = defs
            .iter()
            .filter_map(|def| {
                let kind = def.kind()?;
                Some(Running {
                    state: State::new(&kind, max_entities),
                    fingerprint: fingerprint(def),
                    def: def.clone(),
                    kind,
                })
            })
            .collect();
        Self {
            running,
            max_entities,
        }
    }

    /// Whether none runs.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Feeds one batch; returns the alerts it raised.
    pub fn observe(&mut self, batch: &EventBatch) -> Vec<Alert> {
        let records = &batch.records;
        let times = values::times(records);
        let datasets = FieldValues::of(records, col::EVENT_DATASET);
        let ids = FieldValues::of(records, col::EVENT_ID);
        let hosts = FieldValues::of(records, col::HOST_NAME);
        let users = FieldValues::of(records, col::USER_NAME);
        let tenants = FieldValues::of(records, col::TENANT);
        let mut alerts = Vec::new();
        for r in &mut self.running {
            let entity_values = FieldValues::of(records, &r.def.entity);
            let filters: Vec<(FieldValues<'_>, &str)> = r
                .def
                .events
                .equals
                .iter()
                .map(|(k, v)| (FieldValues::of(records, k), v.as_str()))
                .collect();
            let field = match &r.kind {
                Kind::Numeric(n) => {
                    (n.value != "count").then(|| FieldValues::of(records, &n.value))
                }
                Kind::NewTerms(n) => Some(FieldValues::of(records, &n.field)),
                Kind::Rare(n) => Some(FieldValues::of(records, &n.field)),
                Kind::Trend(n) => (n.value != "count").then(|| FieldValues::of(records, &n.value)),
            };
            for (row, time) in times.iter().enumerate() {
                let Some(time) = *time else { continue };
                if let Some(d) = &r.def.events.dataset {
                    if datasets.text(row).as_deref() != Some(d.as_str()) {
                        continue;
                    }
                }
                if !filters
                    .iter()
                    .all(|(f, v)| f.text(row).as_deref() == Some(*v))
                {
                    continue;
                }
                let Some(entity) = entity_values.text(row).filter(|e| !e.is_empty()) else {
                    continue;
                };
                let tenant = tenants
                    .text(row)
                    .filter(|t| !t.is_empty())
                    .map_or_else(|| batch.tenant.clone(), |t| t.into_owned());
                let key = fnv64(format!("{tenant}\u{0}{entity}").as_bytes());
                let found: Option<(String, BTreeMap<String, String>)> =
                    match (&r.kind, &mut r.state) {
                        (Kind::Numeric(def), State::Numeric(s)) => {
                            let value = match &field {
                                None => Some(1.0),
                                Some(f) => f.number(row),
                            };
                            value.and_then(|v| s.observe(def, key, time, v)).map(|a| {
                                (
                                    a.interval_start_ms.to_string(),
                                    pairs([
                                        ("baseline.value", fmt(a.value)),
                                        ("baseline.mean", fmt(a.mean)),
                                        ("baseline.seasonal_factor", fmt(a.factor)),
                                        ("baseline.stddev", fmt(a.stddev)),
                                        ("baseline.z", fmt(a.z)),
                                        ("baseline.interval_start", rfc3339(a.interval_start_ms)),
                                    ]),
                                )
                            })
                        }
                        (Kind::NewTerms(def), State::NewTerms(s)) => field
                            .as_ref()
                            .and_then(|f| f.text(row))
                            .filter(|t| !t.is_empty())
                            .and_then(|term| {
                                s.observe(def, key, time, fnv64(term.as_bytes())).then(|| {
                                    (
                                        term.to_string(),
                                        pairs([
                                            ("baseline.field", def.field.clone()),
                                            ("baseline.term", term.to_string()),
                                        ]),
                                    )
                                })
                            }),
                        (Kind::Rare(def), State::Rare(s)) => field
                            .as_ref()
                            .and_then(|f| f.text(row))
                            .filter(|t| !t.is_empty())
                            .and_then(|value| {
                                s.observe(def, time, fnv64(value.as_bytes()), &value)
                                    .map(|count| {
                                        let common: Vec<String> = s
                                            .common_values(5)
                                            .into_iter()
                                            .map(|(v, n)| format!("{v} ({n})"))
                                            .collect();
                                        (
                                            value.to_string(),
                                            pairs([
                                                ("baseline.field", def.field.clone()),
                                                ("baseline.value", value.to_string()),
                                                ("baseline.count", count.to_string()),
                                                ("baseline.common_values", common.join("; ")),
                                            ]),
                                        )
                                    })
                            }),
                        (Kind::Trend(def), State::Trend(s)) => {
                            let value = match &field {
                                None => Some(1.0),
                                Some(f) => f.number(row),
                            };
                            value.and_then(|v| s.observe(def, key, time, v)).map(|f| {
                                (
                                    f.crossing_ms.to_string(),
                                    pairs([
                                        ("baseline.level", fmt(f.level)),
                                        ("baseline.trend_per_interval", fmt(f.trend)),
                                        ("baseline.threshold", fmt(def.threshold)),
                                        ("baseline.as_of", rfc3339(f.as_of_ms)),
                                        ("baseline.predicted_crossing", rfc3339(f.crossing_ms)),
                                    ]),
                                )
                            })
                        }
                        _ => None,
                    };
                let Some((detail, mut matched)) = found else {
                    continue;
                };
                matched.insert("baseline.entity".into(), entity.to_string());
                let event_id = ids.text(row).map(|t| t.into_owned()).unwrap_or_default();
                alerts.push(Alert {
                    id: stable_id(&[&r.def.id, &tenant, &entity, &detail]),
                    time_ms: time,
                    tenant: tenant.clone(),
                    kind: DetectionKind::Baseline,
                    rule_id: r.def.id.clone(),
                    rule_title: r.def.title.clone(),
                    rule_author: None,
                    level: r.def.level,
                    tags: r.def.tags.clone(),
                    host: hosts.text(row).map(|t| t.into_owned()),
                    user: users.text(row).map(|t| t.into_owned()),
                    event_ids: if event_id.is_empty() {
                        Vec::new()
                    } else {
                        vec![event_id]
                    },
                    matched,
                    dedup_key: format!("{}|{entity}", r.def.id),
                });
            }
        }
        alerts
    }

    /// Entities per baseline.
    pub fn stats(&self) -> Vec<BaselineStats> {
        self.running
            .iter()
            .map(|r| {
                let (entities, evicted, table_bytes) = r.state.entities();
                BaselineStats {
                    id: r.def.id.clone(),
                    entities,
                    evicted,
                    table_bytes,
                }
            })
            .collect()
    }

    /// Writes the state to `path` (to a temporary file, then renamed: a crash leaves the
    /// previous checkpoint whole).
    pub fn save(&self, path: &Path) -> Result<(), DetectError> {
        let saved: Vec<SavedRef<'_>> = self
            .running
            .iter()
            .map(|r| SavedRef {
                id: &r.def.id,
                fingerprint: r.fingerprint,
                state: &r.state,
            })
            .collect();
        let io = |source| DetectError::Read {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut w = std::io::BufWriter::new(file);
        serde_json::to_writer(&mut w, &saved)
            .map_err(|e| DetectError::Baseline(format!("writing {}: {e}", tmp.display())))?;
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads back the state of the baselines saved in `path` whose definition is
    /// unchanged; returns how many were restored. A missing file restores nothing; a
    /// damaged one is an error (the caller starts fresh and says so).
    pub fn restore(&mut self, path: &Path) -> Result<usize, DetectError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(DetectError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let saved: Vec<Saved> = serde_json::from_slice(&text)
            .map_err(|e| DetectError::Baseline(format!("{}: {e}", path.display())))?;
        Ok(saved
            .into_iter()
            .filter_map(|s| self.adopt(&s.id, s.fingerprint, s.state))
            .count())
    }

    /// Takes the state of every baseline of `old` that runs here unchanged (same id and
    /// definition); the others start afresh. Returns how many carried over.
    pub fn take_over(&mut self, old: BaselineEngine) -> usize {
        old.running
            .into_iter()
            .filter_map(|r| self.adopt(&r.def.id, r.fingerprint, r.state))
            .count()
    }

    /// Gives `state` to the baseline `id` when its definition is the one that learned
    /// it (`fingerprint`) and of the same kind; it keeps this engine's entity bound.
    fn adopt(&mut self, id: &str, fingerprint: u64, mut state: State) -> Option<()> {
        state.set_max(self.max_entities);
        let r = self
            .running
            .iter_mut()
            .find(|r| r.def.id == id && r.fingerprint == fingerprint)?;
        let same_kind = matches!(
            (&r.state, &state),
            (State::Numeric(_), State::Numeric(_))
                | (State::NewTerms(_), State::NewTerms(_))
                | (State::Rare(_), State::Rare(_))
                | (State::Trend(_), State::Trend(_))
        );
        same_kind.then(|| r.state = state)
    }
}

/// [`Saved`] by reference, for writing.
#[derive(Serialize)]
struct SavedRef<'a> {
    id: &'a str,
    fingerprint: u64,
    state: &'a State,
}

fn pairs<const N: usize>(items: [(&str, String); N]) -> BTreeMap<String, String> {
    items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn fmt(v: f64) -> String {
    format!("{v:.2}")
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vedette_core::event::{Event, EventBatchBuilder};

    const DEF: &str = "id: new-parent\ntitle: New parent process on a host\nlevel: high\n\
        tags: [attack.execution]\nevents:\n  dataset: windows.sysmon\n  where:\n    EventID: '1'\n\
        entity: host.name\nnew_terms:\n  field: ParentImage\n  learning_hours: 1\n";

    fn batch(rows: &[(&str, &str, &str, i64)]) -> EventBatch {
        let mut b = EventBatchBuilder::new();
        for (i, (host, event_id, parent, ms)) in rows.iter().enumerate() {
            b.append(&Event {
                id: format!("e{i}"),
                timestamp_ms: *ms,
                dataset: "windows.sysmon".into(),
                host_name: Some((*host).into()),
                fields: vec![
                    ("EventID".into(), (*event_id).into()),
                    ("ParentImage".into(), (*parent).into()),
                ],
                ..Event::default()
            });
        }
        EventBatch::new(b.finish().unwrap(), "test", "acme", 0)
    }

    #[test]
    fn an_engine_reads_batches_filters_rows_and_survives_a_restart() {
        let def = BaselineDef::parse(DEF, "new-parent.yml").unwrap();
        let mut engine = BaselineEngine::new(std::slice::from_ref(&def), 1000);
        let hour = 3_600_000;
        let learning = batch(&[
            ("h1", "1", "explorer.exe", 0),
            ("h1", "1", "services.exe", 10),
        ]);
        assert!(engine.observe(&learning).is_empty());
        let later = batch(&[
            ("h1", "1", "explorer.exe", 2 * hour),
            ("h1", "3", "evil.exe", 2 * hour),
            ("h1", "1", "winword.exe", 2 * hour + 1),
        ]);
        let alerts = engine.observe(&later);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(
            (a.rule_id.as_str(), a.kind),
            ("new-parent", DetectionKind::Baseline)
        );
        assert_eq!(a.matched["baseline.term"], "winword.exe");
        assert_eq!(a.matched["baseline.entity"], "h1");
        assert_eq!(a.event_ids, ["e2"]);
        assert_eq!(a.host.as_deref(), Some("h1"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baselines.json");
        engine.save(&path).unwrap();
        let mut again = BaselineEngine::new(std::slice::from_ref(&def), 1000);
        assert_eq!(again.restore(&path).unwrap(), 1);
        assert!(
            again.observe(&later).is_empty(),
            "what was learned survives"
        );
        assert_eq!(again.stats()[0].entities, 1);

        // Restored state keeps the entity bound of the engine it joins.
        let mut small = BaselineEngine::new(std::slice::from_ref(&def), 1);
        assert_eq!(small.restore(&path).unwrap(), 1);
        small.observe(&batch(&[("h2", "1", "a.exe", 3 * hour)]));
        assert_eq!(small.stats()[0].entities, 1, "at most one entity");
        assert!(small.stats()[0].evicted >= 1);

        // A new engine takes over what the running one learned, for unchanged baselines.
        let mut swapped = BaselineEngine::new(std::slice::from_ref(&def), 1000);
        assert_eq!(swapped.take_over(again), 1);
        assert!(swapped.observe(&later).is_empty(), "the state followed");
        let edited =
            BaselineDef::parse(&DEF.replace("learning_hours: 1", "learning_hours: 3"), "x")
                .unwrap();
        assert_eq!(BaselineEngine::new(&[edited], 1000).take_over(swapped), 0);
        let mut again = BaselineEngine::new(std::slice::from_ref(&def), 1000);
        again.restore(&path).unwrap();

        // A changed definition starts afresh; a damaged checkpoint is an error.
        let changed =
            BaselineDef::parse(&DEF.replace("learning_hours: 1", "learning_hours: 2"), "x")
                .unwrap();
        let mut fresh = BaselineEngine::new(&[changed], 1000);
        assert_eq!(fresh.restore(&path).unwrap(), 0);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(again.restore(&path).is_err());
        assert_eq!(again.restore(&dir.path().join("missing.json")).unwrap(), 0);
    }

    #[test]
    fn a_rare_value_alert_names_the_common_values() {
        let def = BaselineDef::parse(
            "id: rare-parent\ntitle: Rare parent\nentity: host.name\n\
             rare_values:\n  field: ParentImage\n  window_hours: 1\n",
            "rare.yml",
        )
        .unwrap();
        let mut engine = BaselineEngine::new(std::slice::from_ref(&def), 1000);
        let hour = 3_600_000;
        let mut rows: Vec<(&str, &str, &str, i64)> = Vec::new();
        for i in 0..40 {
            let parent = if i % 4 == 0 {
                "services.exe"
            } else {
                "explorer.exe"
            };
            rows.push(("h1", "1", parent, i * hour / 10));
        }
        assert!(engine.observe(&batch(&rows)).is_empty(), "learning");
        let alerts = engine.observe(&batch(&[
            ("h2", "1", "explorer.exe", 4 * hour),
            ("h2", "1", "odd.exe", 4 * hour + 1),
        ]));
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].matched["baseline.value"], "odd.exe");
        assert!(
            alerts[0].matched["baseline.common_values"].starts_with("explorer.exe ("),
            "{:?}",
            alerts[0].matched
        );
    }

    #[test]
    fn a_folder_loads_with_bad_files_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yml"), DEF).unwrap();
        std::fs::write(dir.path().join("b.yml"), DEF).unwrap();
        std::fs::write(dir.path().join("c.yml"), "id: c\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a baseline").unwrap();
        let set = BaselineSet::load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(set.defs.len(), 1);
        assert_eq!(set.errors.len(), 2, "{:?}", set.errors);
        assert!(set.errors.iter().any(|(_, e)| e.contains("duplicate")));
    }

    /// A small deterministic generator for synthetic series (xorshift).
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        /// A number in `0..n`.
        pub(crate) fn below(&mut self, n: u32) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % u64::from(n.max(1))) as u32
        }
    }
}
