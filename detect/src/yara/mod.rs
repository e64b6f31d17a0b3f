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
//! others with only the rule files that need what they hold (each file is also compiled
//! alone): a scan costs microseconds even when nothing matches. Rows are scanned in
//! parallel (rayon), with reused scanners per chunk of rows (one per rule set a value of
//! the chunk needs): building a scanner costs far more than a small scan.
//!
//! One alert per event and rule, naming the fields that matched and, per pattern, where
//! (`$a@12+8`: offset and length); never the scanned bytes.

mod decode;
mod needs;
mod prefilter;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rayon::prelude::*;
use vedette_core::alert::{entity_dedup_key, Alert, DetectionKind, Level};
use vedette_core::batch::EventBatch;
use vedette_core::schema::col;
use vedette_core::traits::Detector;
use vedette_core::CoreError;

use crate::alerting::stable_id;
use crate::error::DetectError;
use crate::field_values::FieldValues;

/// Fields scanned when the configuration names none.
pub const DEFAULT_FIELDS: [&str; 3] = ["payload", "process.command_line", "ScriptBlockText"];
/// Values longer than this skip the prefilter and are scanned once with the whole set:
/// they hold some rule's strings anyway, and the prefilter's pass, the rules it cannot
/// tell and each candidate file would each read them again.
const WHOLE_SET_ABOVE: usize = 64 * 1024;
/// Fewest rows scanned by one scanner.
const CHUNK_ROWS: usize = 512;
/// External variables of THOR/LOKI rule sets, defined empty.
const EXTERNALS: [&str; 5] = ["filename", "filepath", "extension", "filetype", "owner"];

/// Limits of one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YaraLimits {
    /// Bytes of one value scanned at most (the rest is not scanned, counted).
    pub max_scan_bytes: usize,
    /// Time one scan may take (yara-x counts in whole seconds).
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
    /// Values scanned (decoded blobs included): with the files whose strings they hold,
    /// or with the whole set when they hold those of many files.
    pub scans: AtomicU64,
    /// Bytes scanned.
    pub bytes: AtomicU64,
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
    /// Scans with one file's rules alone (a value scanned with three files counts 3).
    pub file_scans: AtomicU64,
}

/// Compiled YARA rules and what failed to compile.
pub struct YaraSet {
    /// Every rule, for values that could match rules of many files.
    rules: yara_x::Rules,
    /// Each compiled file's rules alone, in the prefilter's file order: a value is
    /// scanned with the few files whose strings it holds.
    /// `None` for a file that did not compile alone (its values go to the whole set).
    per_file: Vec<Option<yara_x::Rules>>,
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

/// Whether `text` compiles alone in namespace `ns`.
fn compiles_alone(ns: &str, text: &str) -> bool {
    let mut probe = new_compiler();
    probe.new_namespace(ns);
    probe.add_source(yara_x::SourceCode::from(text)).is_ok()
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
        let chosen = if compiles_alone(&ns, &open) {
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
            let mut alone = new_compiler();
            alone.new_namespace(&namespace(origin));
            let source =
                yara_x::SourceCode::from(text.as_str()).with_origin(origin.display().to_string());
            match alone.add_source(source) {
                Ok(_) => {
                    compiled.push((origin.as_path(), text.as_str()));
                    per_file.push(Some(alone.build()));
                }
                Err(e) => errors.push((origin.clone(), e.to_string())),
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
        let prefilter = prefilter::Prefilter::of_sources(compiled.iter().map(|(_, t)| *t));
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
            per_file,
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

/// What one rule said about one scanned value.
#[derive(Debug, Clone)]
struct RuleHit {
    row: usize,
    rule: String,
    title: String,
    author: Option<String>,
    level: Level,
    tags: Vec<String>,
    field: String,
    patterns: Vec<String>,
}

/// The YARA detector.
pub struct YaraDetector {
    set: YaraSet,
    fields: Vec<String>,
    limits: YaraLimits,
    /// Counters of the scans.
    pub stats: YaraStats,
}

impl std::fmt::Debug for YaraDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YaraDetector")
            .field("set", &self.set)
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

/// The level a rule's metadata asks for (`severity`, `level` or a numeric `score`),
/// else medium.
fn level_of(meta: &BTreeMap<String, String>) -> Level {
    for key in ["severity", "level"] {
        if let Some(v) = meta.get(key) {
            if let Ok(l) = v.to_ascii_lowercase().parse::<Level>() {
                return l;
            }
        }
    }
    match meta.get("score").and_then(|s| s.parse::<i64>().ok()) {
        Some(s) if s >= 90 => Level::Critical,
        Some(s) if s >= 70 => Level::High,
        Some(s) if s >= 40 => Level::Medium,
        Some(_) => Level::Low,
        None => Level::Medium,
    }
}

impl YaraDetector {
    /// A detector of `set` over `fields` (the defaults when empty).
    pub fn new(set: YaraSet, fields: &[String], limits: YaraLimits) -> Self {
        let fields = if fields.is_empty() {
            DEFAULT_FIELDS.iter().map(|f| f.to_string()).collect()
        } else {
            fields.to_vec()
        };
        Self {
            set,
            fields,
            limits,
            stats: YaraStats::default(),
        }
    }

    /// Rules loaded.
    pub fn rule_count(&self) -> usize {
        self.set.rule_count()
    }

    /// Scans one chunk of rows with one scanner (built if a value needs it).
    fn scan_rows(&self, batch: &EventBatch, rows: std::ops::Range<usize>) -> Vec<RuleHit> {
        let records = &batch.records;
        let values: Vec<(&str, FieldValues<'_>)> = self
            .fields
            .iter()
            .map(|f| (f.as_str(), FieldValues::of(records, f)))
            .collect();
        let mut scanners = Scanners::default();
        let mut hits = Vec::new();
        for row in rows {
            for (name, column) in &values {
                let Some(value) = column.bytes(row) else {
                    continue;
                };
                if value.is_empty() {
                    continue;
                }
                let mut targets: Vec<(String, Vec<u8>)> = Vec::new();
                if let Ok(text) = std::str::from_utf8(&value) {
                    for (how, blob) in decode::blobs(text) {
                        self.stats.decoded.fetch_add(1, Ordering::Relaxed);
                        targets.push((format!("{name}({})", how.label()), blob));
                    }
                }
                self.scan_one(&mut scanners, row, name, &value, &mut hits);
                for (label, blob) in targets {
                    self.scan_one(&mut scanners, row, &label, &blob, &mut hits);
                }
            }
        }
        hits
    }

    /// A scanner of `rules` with the detector's limits.
    fn scanner<'r>(&self, rules: &'r yara_x::Rules) -> yara_x::Scanner<'r> {
        let mut scanner = yara_x::Scanner::new(rules);
        scanner.set_timeout(self.limits.timeout);
        scanner.max_matches_per_pattern(64);
        scanner
    }

    /// Scans one value: with the rules the prefilter cannot tell anything of, if any,
    /// then with the rule files whose strings it holds (each alone, or the whole set at
    /// once when there are many).
    fn scan_one<'r>(
        &'r self,
        scanners: &mut Scanners<'r>,
        row: usize,
        field: &str,
        data: &[u8],
        hits: &mut Vec<RuleHit>,
    ) {
        let data = if data.len() > self.limits.max_scan_bytes {
            self.stats.truncated.fetch_add(1, Ordering::Relaxed);
            &data[..self.limits.max_scan_bytes]
        } else {
            data
        };
        if data.len() > WHOLE_SET_ABOVE {
            // A large value holds some rule's strings anyway: one pass of the whole set.
            self.stats.scans.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            let scanner = scanners
                .all
                .get_or_insert_with(|| self.scanner(&self.set.rules));
            self.scan_with(scanner, row, field, data, hits);
            return;
        }
        let first = hits.len();
        if let Some(open) = &self.set.open {
            let scanner = scanners.open.get_or_insert_with(|| self.scanner(open));
            self.stats.open_scans.fetch_add(1, Ordering::Relaxed);
            self.scan_with(scanner, row, field, data, hits);
        }
        let candidates = self.set.prefilter.candidates(data);
        if candidates == prefilter::Candidates::None {
            self.stats.passed_over.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.scans.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        // The files hold the open rules too: what a rule said is not said twice.
        let mut said: Vec<String> = hits[first..].iter().map(|h| h.rule.clone()).collect();
        let mut scan = |scanner: &mut yara_x::Scanner<'r>, hits: &mut Vec<RuleHit>| {
            let before = hits.len();
            self.scan_with(scanner, row, field, data, hits);
            let mut i = before;
            while i < hits.len() {
                if said.contains(&hits[i].rule) {
                    hits.swap_remove(i);
                } else {
                    said.push(hits[i].rule.clone());
                    i += 1;
                }
            }
        };
        let alone = |f: &usize| self.set.per_file.get(*f).is_some_and(Option::is_some);
        match candidates {
            prefilter::Candidates::Files(files) if files.iter().all(alone) => {
                if scanners.per_file.len() < self.set.per_file.len() {
                    scanners
                        .per_file
                        .resize_with(self.set.per_file.len(), || None);
                }
                for f in files {
                    let (Some(Some(rules)), Some(slot)) =
                        (self.set.per_file.get(f), scanners.per_file.get_mut(f))
                    else {
                        continue;
                    };
                    self.stats.file_scans.fetch_add(1, Ordering::Relaxed);
                    scan(slot.get_or_insert_with(|| self.scanner(rules)), hits);
                }
            }
            _ => {
                let scanner = scanners
                    .all
                    .get_or_insert_with(|| self.scanner(&self.set.rules));
                scan(scanner, hits);
            }
        }
    }

    /// Scans `data` with `scanner`, adding what matched to `hits`.
    fn scan_with(
        &self,
        scanner: &mut yara_x::Scanner<'_>,
        row: usize,
        field: &str,
        data: &[u8],
        hits: &mut Vec<RuleHit>,
    ) {
        let results = match scanner.scan(data) {
            Ok(r) => r,
            Err(yara_x::errors::ScanError::Timeout) => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, field, "yara scan failed");
                return;
            }
        };
        for rule in results.matching_rules() {
            let meta: BTreeMap<String, String> = rule
                .metadata()
                .map(|(k, v)| {
                    let v = match v {
                        yara_x::MetaValue::Integer(i) => i.to_string(),
                        yara_x::MetaValue::Float(f) => f.to_string(),
                        yara_x::MetaValue::Bool(b) => b.to_string(),
                        yara_x::MetaValue::String(s) => s.to_string(),
                        yara_x::MetaValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    };
                    (k.to_string(), v)
                })
                .collect();
            let patterns = rule
                .patterns()
                .flat_map(|p| {
                    let id = p.identifier().to_string();
                    p.matches()
                        .map(move |m| {
                            let r = m.range();
                            format!("{id}@{}+{}", r.start, r.len())
                        })
                        .collect::<Vec<_>>()
                })
                .take(16)
                .collect();
            hits.push(RuleHit {
                row,
                rule: format!("{}:{}", rule.namespace(), rule.identifier()),
                title: meta
                    .get("description")
                    .cloned()
                    .unwrap_or_else(|| rule.identifier().to_string()),
                author: meta.get("author").cloned(),
                level: level_of(&meta),
                tags: rule.tags().map(|t| t.identifier().to_string()).collect(),
                field: field.to_string(),
                patterns,
            });
        }
    }
}

/// A chunk's scanners, built when a first value needs each: often none does.
#[derive(Default)]
struct Scanners<'r> {
    /// Of the whole rule set.
    all: Option<yara_x::Scanner<'r>>,
    /// Of each file's rules alone.
    per_file: Vec<Option<yara_x::Scanner<'r>>>,
    /// Of the rules the prefilter cannot tell anything of.
    open: Option<yara_x::Scanner<'r>>,
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
        if rows == 0 || self.set.rule_count() == 0 {
            return Ok(Vec::new());
        }
        // A scanner per chunk, and setting one up costs as much as scanning hundreds
        // of values: one chunk per thread, of CHUNK_ROWS at least.
        let chunk = rows
            .div_ceil(rayon::current_num_threads().max(1))
            .max(CHUNK_ROWS);
        let chunks: Vec<std::ops::Range<usize>> = (0..rows)
            .step_by(chunk)
            .map(|s| s..(s + chunk).min(rows))
            .collect();
        let hits: Vec<RuleHit> = chunks
            .into_par_iter()
            .flat_map_iter(|r| self.scan_rows(batch, r))
            .collect();
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
