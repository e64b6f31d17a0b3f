//! YARA rules (yara-x) over event fields: [`YaraDetector`], a
//! `vedette_core::traits::Detector`.
//!
//! Rules are compiled once, one namespace per file; a file that does not compile is
//! reported with the compiler's message and skipped, the rest load. The THOR/LOKI
//! external variables (`filename`, `filepath`, `extension`, `filetype`, `owner`) are
//! defined, empty, so rule sets written for file scanners compile.
//!
//! Each event's configured fields are scanned (by default `payload`,
//! `process.command_line` and PowerShell's `ScriptBlockText`), and so is content hidden
//! in them: base64 blobs and `-EncodedCommand` arguments, decoded (`decode`). A value
//! is cut at [`YaraLimits::max_scan_bytes`] and a scan that passes its timeout is
//! abandoned, both counted ([`YaraStats`]). A literal prefilter (`prefilter`) passes
//! over values that hold none of the strings the rules' conditions need, and scans the
//! others with only the *units* that need what they hold: each rule file compiled
//! alone, or in two parts when it imports a module that some of its rules never read
//! (`units`). A unit's relaxed rules (`relaxed`: monotone, module-free) scan the values
//! a chunk of rows holds for it all at once, and only the values their matches touch
//! are scanned with the unit: a scan costs microseconds even when nothing matches. A
//! batch's rows are scanned in parallel by the detector's own scan threads (`workers`,
//! one per core), each keeping the scanners it built from batch to batch (`scan`):
//! building a scanner costs far more than a small scan.
//!
//! One alert per event and rule, naming the fields that matched and, per pattern, where
//! (`$a@12+8`: offset and length); never the scanned bytes.

mod decode;
mod needs;
mod prefilter;
mod relaxed;
mod scan;
mod units;
mod workers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use vedette_core::alert::{entity_dedup_key, Alert, DetectionKind};
use vedette_core::batch::EventBatch;
use vedette_core::schema::col;
use vedette_core::traits::Detector;
use vedette_core::CoreError;

use crate::alerting::stable_id;
use crate::error::DetectError;
use crate::field_values::FieldValues;
use scan::{RuleHit, Scanning};
use workers::ScanWorkers;

/// Fields scanned when the configuration names none.
pub const DEFAULT_FIELDS: [&str; 3] = ["payload", "process.command_line", "ScriptBlockText"];
/// Values longer than this skip the prefilter and are scanned once with the whole set:
/// they hold some rule's strings anyway, and the prefilter's pass, the rules it cannot
/// tell and each candidate file would each read them again.
const WHOLE_SET_ABOVE: usize = 64 * 1024;
/// Fewest rows of one scan job.
const CHUNK_ROWS: usize = 512;
/// External variables of THOR/LOKI rule sets, defined empty.
const EXTERNALS: [&str; 5] = ["filename", "filepath", "extension", "filetype", "owner"];

/// Limits of one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YaraLimits {
    /// Bytes of one value scanned at most (the rest is not scanned, counted).
    pub max_scan_bytes: usize,
    /// Time one scan may take; yara-x counts whole seconds, so a scan is abandoned
    /// between this rounded up to a second and one second more.
    pub timeout: Duration,
}

impl Default for YaraLimits {
    fn default() -> Self {
        Self {
            max_scan_bytes: 1 << 20,
            timeout: Duration::from_secs(1),
        }
    }
}

/// What the scans did since the detector was built.
#[derive(Debug, Default)]
pub struct YaraStats {
    /// Values the prefilter did not pass over (decoded blobs included): gathered for
    /// the units whose strings they hold, or scanned with the whole set when they hold
    /// those of many units.
    pub scans: AtomicU64,
    /// Bytes of the values the prefilter did not pass over.
    pub bytes: AtomicU64,
    /// Bytes of every value met, scanned or passed over (cut at the byte limit).
    pub bytes_met: AtomicU64,
    /// Values cut at the byte limit.
    pub truncated: AtomicU64,
    /// Scans abandoned at the timeout.
    pub timeouts: AtomicU64,
    /// Blobs decoded from base64 or `-EncodedCommand`.
    pub decoded: AtomicU64,
    /// Values the whole rule set passed over: the prefilter found none of the strings
    /// the rules need.
    pub passed_over: AtomicU64,
    /// Scans with the rules the prefilter can tell nothing of (every value, when any).
    pub open_scans: AtomicU64,
    /// Scans of one value with one unit's own rules (a value scanned with three units
    /// counts 3).
    pub file_scans: AtomicU64,
    /// Scans of a unit's relaxed rules (module reads left out) that matched nothing,
    /// so the unit itself was not scanned.
    pub relaxed_passed_over: AtomicU64,
    /// Scans of several values gathered for one unit, at once.
    pub group_scans: AtomicU64,
    /// Values a scan of their group passed over (no match of it touched them).
    pub group_passed_over: AtomicU64,
    /// Scans with the whole set at once: values over 64 KiB, and values that hold the
    /// strings of more than 8 units (or of a unit that has no rules of its own).
    pub whole_set_scans: AtomicU64,
    /// Scanners set up by the scan threads (each kept for the next batches, a bounded
    /// number per thread).
    pub scanners_built: AtomicU64,
}

/// Compiled YARA rules and what failed to compile.
pub struct YaraSet {
    /// Every rule, for values that could match rules of many files.
    rules: yara_x::Rules,
    /// Each compiled unit's rules alone (a file, or part of one: see `units`), in the
    /// prefilter's order: a value is scanned with the few units whose strings it
    /// holds.
    per_unit: Vec<yara_x::Rules>,
    /// Per unit, its relaxed rules (see `relaxed`), when it has them: a group of values
    /// they do not match is not scanned with the unit.
    relaxed: Vec<Option<yara_x::Rules>>,
    /// Per unit, whether it imports modules: then each value is scanned with its
    /// relaxed rules before the unit's own.
    modular: Vec<bool>,
    /// The rules the prefilter can tell nothing of, apart (see [`prefilter`]).
    open: Option<yara_x::Rules>,
    prefilter: prefilter::Prefilter,
    /// Rule files loaded.
    pub files: usize,
    /// Files that failed, with the compiler's message.
    pub errors: Vec<(PathBuf, String)>,
}

impl std::fmt::Debug for YaraSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YaraSet")
            .field("files", &self.files)
            .field("errors", &self.errors.len())
            .field("prefilter", &self.prefilter)
            .finish()
    }
}

/// The namespace of a rule file: its stem, made of letters, digits and `_`.
fn namespace(origin: &Path) -> String {
    let stem = origin
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ns: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if ns.is_empty() {
        "default".into()
    } else {
        ns
    }
}

/// A compiler with the THOR/LOKI external variables defined, empty.
fn new_compiler<'a>() -> yara_x::Compiler<'a> {
    let mut compiler = yara_x::Compiler::new();
    for name in EXTERNALS {
        // Defining a fresh name cannot fail; if it did, rules using it fail to compile
        // and are reported.
        let _ = compiler.define_global(name, "");
    }
    compiler
}

/// The rules of compiled files that the prefilter cannot tell anything of, compiled
/// apart (same namespaces) to be scanned on every value: each file's such rules with
/// its imports, or the whole file when those do not compile alone (a rule that names
/// another); `None` when there are none.
fn open_rules(compiled: &[(&Path, &str)]) -> Option<yara_x::Rules> {
    let mut compiler = new_compiler();
    let mut any = false;
    for (origin, text) in compiled {
        let Some(open) = prefilter::open_rules_source(text) else {
            continue;
        };
        let ns = namespace(origin);
        // Tried apart first: yara-x keeps what a failing source compiled before its
        // error, which would leave half a file here.
        let chosen = if compile_alone(origin, &open).is_ok() {
            open.as_str()
        } else {
            text
        };
        compiler.new_namespace(&ns);
        let label = origin.display().to_string();
        match compiler.add_source(yara_x::SourceCode::from(chosen).with_origin(label.as_str())) {
            Ok(_) => any = true,
            Err(e) => {
                tracing::warn!(file = %label, error = %e, "YARA: a rule file no longer compiles")
            }
        }
    }
    any.then(|| compiler.build())
}

/// `source` compiled alone in the namespace of `origin`, or the compiler's message.
fn compile_alone(origin: &Path, source: &str) -> Result<yara_x::Rules, String> {
    let mut compiler = new_compiler();
    compiler.new_namespace(&namespace(origin));
    let code = yara_x::SourceCode::from(source).with_origin(origin.display().to_string());
    compiler.add_source(code).map_err(|e| e.to_string())?;
    Ok(compiler.build())
}

/// A file that imports modules cut in units that each compile alone (in the file's
/// namespace) and leave the same rules to the open set as the file whole; `None` when
/// it is scanned whole.
fn cut_units(origin: &Path, text: &str) -> Option<Vec<(String, yara_x::Rules)>> {
    let units = units::scan_units(text);
    if units.len() < 2 {
        return None;
    }
    let open_of = |source: &str| -> Option<Vec<String>> {
        let needs = needs::rule_needs(source).ok()?;
        let mut open: Vec<String> = needs
            .into_iter()
            .filter(|(_, n)| n.is_none())
            .map(|(r, _)| r)
            .collect();
        open.sort();
        Some(open)
    };
    let mut open_of_units = Vec::new();
    let mut cut = Vec::new();
    for unit in units {
        open_of_units.extend(open_of(&unit)?);
        let rules = compile_alone(origin, &unit).ok()?;
        cut.push((unit, rules));
    }
    open_of_units.sort();
    (open_of(text)? == open_of_units).then_some(cut)
}

impl YaraSet {
    /// Compiles `sources` ((origin, text) pairs); a source that fails is reported and
    /// left out, whole.
    pub fn compile(sources: &[(PathBuf, String)]) -> Self {
        let mut errors = Vec::new();
        // Each file alone first (its rules, scanned when a value holds its strings): a
        // file that fails is left out whole; in a shared compiler yara-x would keep the
        // rules it compiled before the error.
        let mut compiled: Vec<(&Path, &str)> = Vec::new();
        let mut per_file = Vec::new();
        for (origin, text) in sources {
            match compile_alone(origin, text) {
                Ok(rules) => {
                    compiled.push((origin.as_path(), text.as_str()));
                    per_file.push(rules);
                }
                Err(e) => errors.push((origin.clone(), e)),
            }
        }
        // The whole set, of the files that compiled alone (each in its own namespace).
        let compiler = loop {
            let mut compiler = new_compiler();
            let mut failed = None;
            for (i, (origin, text)) in compiled.iter().enumerate() {
                compiler.new_namespace(&namespace(origin));
                let source =
                    yara_x::SourceCode::from(*text).with_origin(origin.display().to_string());
                if let Err(e) = compiler.add_source(source) {
                    failed = Some((i, e.to_string()));
                    break;
                }
            }
            match failed {
                None => break compiler,
                Some((i, e)) => {
                    errors.push((compiled[i].0.to_path_buf(), e));
                    compiled.remove(i);
                    per_file.remove(i);
                }
            }
        };
        // Files that import modules, cut where they can be (see `units`).
        let mut units: Vec<String> = Vec::new();
        let mut per_unit = Vec::new();
        let mut relaxed = Vec::new();
        let mut modular = Vec::new();
        for ((origin, text), rules) in compiled.iter().zip(per_file) {
            let parts = cut_units(origin, text).unwrap_or_else(|| vec![(text.to_string(), rules)]);
            for (unit, rules) in parts {
                let relaxed_rules = relaxed::relaxed_source(&unit)
                    .and_then(|source| compile_alone(origin, &source).ok());
                modular.push(rules.imports().next().is_some());
                relaxed.push(relaxed_rules);
                units.push(unit);
                per_unit.push(rules);
            }
        }
        let prefilter = prefilter::Prefilter::of_sources(units.iter().map(String::as_str));
        let open = if prefilter.open_rules.is_empty() {
            None
        } else {
            open_rules(&compiled)
        };
        if !prefilter.open_rules.is_empty() {
            let shown: Vec<&str> = prefilter
                .open_rules
                .iter()
                .take(10)
                .map(String::as_str)
                .collect();
            tracing::info!(
                rules = prefilter.open_rules.len(),
                first = %shown.join(", "),
                "YARA: rules whose condition needs no string the prefilter can look for; they are scanned on every value"
            );
        }
        Self {
            rules: compiler.build(),
            per_unit,
            relaxed,
            modular,
            open,
            prefilter,
            files: compiled.len(),
            errors,
        }
    }

    /// The files [`YaraSet::load`] reads: every file of `paths` and every `*.yar` /
    /// `*.yara` under the folders among them (recursively), sorted.
    pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DetectError> {
        crate::rule_files::rule_files(paths, &["yar", "yara"])
    }

    /// Reads and compiles every file of `paths` and every `*.yar` / `*.yara` under the
    /// folders among them (recursively), plus `extra` sources.
    pub fn load(paths: &[PathBuf], extra: Vec<(PathBuf, String)>) -> Result<Self, DetectError> {
        let mut sources = extra;
        for path in Self::files(paths)? {
            let text = std::fs::read(&path).map_err(|source| DetectError::Read {
                path: path.clone(),
                source,
            })?;
            sources.push((path, String::from_utf8_lossy(&text).into_owned()));
        }
        Ok(Self::compile(&sources))
    }

    /// Rules loaded.
    pub fn rule_count(&self) -> usize {
        self.rules.iter().len()
    }

    /// Rules whose condition needs no string the prefilter can look for: they are
    /// scanned apart, on every value.
    pub fn unfiltered_rules(&self) -> &[String] {
        &self.prefilter.open_rules
    }
}

/// The YARA detector: a rule set, the fields it scans, and its scan threads.
pub struct YaraDetector {
    scanning: Arc<Scanning>,
    workers: ScanWorkers,
    /// Counters of the scans.
    pub stats: Arc<YaraStats>,
}

impl std::fmt::Debug for YaraDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YaraDetector")
            .field("set", &self.scanning.set)
            .field("fields", &self.scanning.fields)
            .field("threads", &self.workers.threads())
            .finish_non_exhaustive()
    }
}

impl YaraDetector {
    /// A detector of `set` over `fields` (the defaults when empty), with one scan
    /// thread per thread of rayon's pool; fails if a thread cannot be started.
    pub fn new(set: YaraSet, fields: &[String], limits: YaraLimits) -> Result<Self, DetectError> {
        Self::with_threads(set, fields, limits, rayon::current_num_threads())
    }

    /// [`YaraDetector::new`] with `threads` scan threads (at least one).
    pub fn with_threads(
        set: YaraSet,
        fields: &[String],
        limits: YaraLimits,
        threads: usize,
    ) -> Result<Self, DetectError> {
        let fields = if fields.is_empty() {
            DEFAULT_FIELDS.iter().map(|f| f.to_string()).collect()
        } else {
            fields.to_vec()
        };
        let stats = Arc::new(YaraStats::default());
        let scanning = Arc::new(Scanning {
            set,
            fields,
            limits,
            stats: stats.clone(),
        });
        let workers = ScanWorkers::start(scanning.clone(), threads)?;
        Ok(Self {
            scanning,
            workers,
            stats,
        })
    }

    /// Rules loaded.
    pub fn rule_count(&self) -> usize {
        self.scanning.set.rule_count()
    }
}

/// Column added to a batch before the Sigma rules see it: the identifiers of the YARA
/// rules that matched each row, comma-separated (null where none did), so a Sigma rule
/// or a correlation can build on them (`yara.rules|contains: powershell_download`).
pub const YARA_RULES_COLUMN: &str = "yara.rules";

/// `batch` with [`YARA_RULES_COLUMN`] set from `found` (row, alert); the column it
/// may already have is replaced.
fn with_rules_column(
    batch: &EventBatch,
    found: &[(usize, Alert)],
) -> Result<EventBatch, CoreError> {
    let records = &batch.records;
    let mut per_row: Vec<Vec<&str>> = vec![Vec::new(); records.num_rows()];
    for (row, alert) in found {
        if let Some(rules) = per_row.get_mut(*row) {
            if !rules.contains(&alert.rule_id.as_str()) {
                rules.push(&alert.rule_id);
            }
        }
    }
    let column: arrow::array::StringArray = per_row
        .iter()
        .map(|rules| (!rules.is_empty()).then(|| rules.join(",")))
        .collect();
    let mut fields: Vec<arrow::datatypes::FieldRef> = Vec::new();
    let mut columns: Vec<arrow::array::ArrayRef> = Vec::new();
    for (field, array) in records.schema().fields().iter().zip(records.columns()) {
        if field.name() != YARA_RULES_COLUMN {
            fields.push(field.clone());
            columns.push(array.clone());
        }
    }
    fields.push(std::sync::Arc::new(arrow::datatypes::Field::new(
        YARA_RULES_COLUMN,
        arrow::datatypes::DataType::Utf8,
        true,
    )));
    columns.push(std::sync::Arc::new(column));
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new_with_metadata(
        fields,
        records.schema().metadata().clone(),
    ));
    Ok(EventBatch {
        records: arrow::array::RecordBatch::try_new(schema, columns)?,
        ..batch.clone()
    })
}

impl YaraDetector {
    /// [`Detector::detect`], and the batch with [`YARA_RULES_COLUMN`] added for the
    /// detectors that run after it.
    pub fn detect_and_mark(
        &self,
        batch: &EventBatch,
    ) -> Result<(Vec<Alert>, EventBatch), CoreError> {
        let found = self.detect_rows(batch)?;
        let marked = with_rules_column(batch, &found)?;
        Ok((found.into_iter().map(|(_, alert)| alert).collect(), marked))
    }

    /// Every (row, rule) that matched, as an alert.
    fn detect_rows(&self, batch: &EventBatch) -> Result<Vec<(usize, Alert)>, CoreError> {
        let rows = batch.records.num_rows();
        if rows == 0 || self.rule_count() == 0 {
            return Ok(Vec::new());
        }
        // One chunk per scan thread, of CHUNK_ROWS at least.
        let chunk = rows.div_ceil(self.workers.threads()).max(CHUNK_ROWS);
        let chunks: Vec<std::ops::Range<usize>> = (0..rows)
            .step_by(chunk)
            .map(|s| s..(s + chunk).min(rows))
            .collect();
        let hits = self
            .workers
            .scan(&batch.records, chunks)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        // One alert per (row, rule), listing every field that matched.
        let mut grouped: BTreeMap<(usize, String), (RuleHit, Vec<String>)> = BTreeMap::new();
        for hit in hits {
            let entry = grouped
                .entry((hit.row, hit.rule.clone()))
                .or_insert_with(|| (hit.clone(), Vec::new()));
            entry
                .1
                .push(format!("{}: {}", hit.field, hit.patterns.join(" ")));
        }
        let records = &batch.records;
        let ids = FieldValues::of(records, col::EVENT_ID);
        let hosts = FieldValues::of(records, col::HOST_NAME);
        let users = FieldValues::of(records, col::USER_NAME);
        let tenants = FieldValues::of(records, col::TENANT);
        let times = crate::field_values::times(records);
        Ok(grouped
            .into_values()
            .map(|(hit, fields)| {
                let event_id = ids
                    .text(hit.row)
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let host = hosts.text(hit.row).map(|t| t.into_owned());
                let user = users.text(hit.row).map(|t| t.into_owned());
                let fields_hit: Vec<&str> =
                    fields.iter().filter_map(|f| f.split(": ").next()).collect();
                let alert = Alert {
                    id: stable_id(&[&hit.rule, &event_id]),
                    time_ms: times
                        .get(hit.row)
                        .copied()
                        .flatten()
                        .unwrap_or(batch.ingest_time_ms),
                    tenant: tenants
                        .text(hit.row)
                        .filter(|t| !t.is_empty())
                        .map_or_else(|| batch.tenant.clone(), |t| t.into_owned()),
                    kind: DetectionKind::Yara,
                    rule_id: hit.rule.clone(),
                    rule_title: hit.title.clone(),
                    rule_author: hit.author.clone(),
                    level: hit.level,
                    tags: hit.tags.clone(),
                    dedup_key: entity_dedup_key(&hit.rule, host.as_deref(), user.as_deref()),
                    host,
                    user,
                    event_ids: vec![event_id],
                    matched: [
                        ("yara.fields".to_string(), fields_hit.join(",")),
                        ("yara.patterns".to_string(), fields.join("; ")),
                    ]
                    .into_iter()
                    .collect(),
                };
                (hit.row, alert)
            })
            .collect())
    }
}

impl Detector for YaraDetector {
    fn name(&self) -> &str {
        "yara"
    }

    fn detect(&self, batch: &EventBatch) -> Result<Vec<Alert>, CoreError> {
        Ok(self
            .detect_rows(batch)?
            .into_iter()
            .map(|(_, alert)| alert)
            .collect())
    }
}

#[cfg(test)]
mod tests;
