//! Scanning event values with a compiled [`YaraSet`]: the prefilter's choice of rules
//! for each value, the decoded blobs, the limits, and the scanners kept for reuse
//! ([`Scanners`]): setting up a yara-x scanner costs far more than a small scan, so a
//! scan thread keeps the ones it built, a bounded number of them.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::RecordBatch;
use vedette_core::alert::Level;

use super::{decode, prefilter, YaraLimits, YaraSet, YaraStats, WHOLE_SET_ABOVE};
use crate::field_values::FieldValues;

/// Per-unit scanners one scan thread keeps at most; past it, the one used longest ago
/// is dropped (each holds its own WASM store, tens of KiB).
pub(super) const MAX_UNIT_SCANNERS: usize = 128;

/// What one rule said about one scanned value.
#[derive(Debug, Clone)]
pub(super) struct RuleHit {
    pub(super) row: usize,
    pub(super) rule: String,
    pub(super) title: String,
    pub(super) author: Option<String>,
    pub(super) level: Level,
    pub(super) tags: Vec<String>,
    pub(super) field: String,
    pub(super) patterns: Vec<String>,
}

/// A rule set and how to scan events with it: shared by the scan threads.
pub(super) struct Scanning {
    pub(super) set: YaraSet,
    pub(super) fields: Vec<String>,
    pub(super) limits: YaraLimits,
    pub(super) stats: Arc<YaraStats>,
}

/// The scanners one thread built, each when a first value needed it: often none is.
#[derive(Default)]
pub(super) struct Scanners<'r> {
    /// Of the whole rule set.
    all: Option<yara_x::Scanner<'r>>,
    /// Of each unit's rules alone (a file or part of one), with when it was last used.
    per_unit: Vec<Option<(yara_x::Scanner<'r>, u64)>>,
    /// Per-unit scanners held.
    held: usize,
    /// Uses so far: the clock of `per_unit`.
    uses: u64,
    /// Of the rules the prefilter cannot tell anything of.
    open: Option<yara_x::Scanner<'r>>,
}

impl<'r> Scanners<'r> {
    /// The scanner of unit `f` (`rules`), built by `build` if missing; the one used
    /// longest ago is dropped first when [`MAX_UNIT_SCANNERS`] are held.
    fn of_unit(
        &mut self,
        f: usize,
        files: usize,
        build: impl FnOnce() -> yara_x::Scanner<'r>,
    ) -> Option<&mut yara_x::Scanner<'r>> {
        if self.per_unit.len() < files {
            self.per_unit.resize_with(files, || None);
        }
        self.uses += 1;
        let now = self.uses;
        if self.per_unit.get(f)?.is_none() {
            if self.held >= MAX_UNIT_SCANNERS {
                let oldest = self
                    .per_unit
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.as_ref().map(|(_, used)| (*used, i)))
                    .min();
                if let Some((_, i)) = oldest {
                    self.per_unit[i] = None;
                    self.held -= 1;
                }
            }
            self.per_unit[f] = Some((build(), now));
            self.held += 1;
        }
        let (scanner, used) = self.per_unit.get_mut(f)?.as_mut()?;
        *used = now;
        Some(scanner)
    }

    /// Per-unit scanners held.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.held
    }
}

impl Scanning {
    /// Scans `rows` of `records` with `scanners` (built as values need them).
    pub(super) fn scan_rows<'r>(
        &'r self,
        records: &RecordBatch,
        rows: Range<usize>,
        scanners: &mut Scanners<'r>,
    ) -> Vec<RuleHit> {
        let values: Vec<(&str, FieldValues<'_>)> = self
            .fields
            .iter()
            .map(|f| (f.as_str(), FieldValues::of(records, f)))
            .collect();
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
                self.scan_one(scanners, row, name, &value, &mut hits);
                for (label, blob) in targets {
                    self.scan_one(scanners, row, &label, &blob, &mut hits);
                }
            }
        }
        hits
    }

    /// A scanner of `rules` with the limits.
    fn scanner<'r>(&self, rules: &'r yara_x::Rules) -> yara_x::Scanner<'r> {
        self.stats.scanners_built.fetch_add(1, Ordering::Relaxed);
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
        self.stats
            .bytes_met
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if data.len() > WHOLE_SET_ABOVE {
            // A large value holds some rule's strings anyway: one pass of the whole set.
            self.stats.scans.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            self.stats.whole_set_scans.fetch_add(1, Ordering::Relaxed);
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
        let alone = |f: &usize| self.set.per_unit.get(*f).is_some_and(Option::is_some);
        match candidates {
            prefilter::Candidates::Files(files) if files.iter().all(alone) => {
                let count = self.set.per_unit.len();
                for f in files {
                    let Some(Some(rules)) = self.set.per_unit.get(f) else {
                        continue;
                    };
                    let Some(scanner) = scanners.of_unit(f, count, || self.scanner(rules)) else {
                        continue;
                    };
                    self.stats.file_scans.fetch_add(1, Ordering::Relaxed);
                    scan(scanner, hits);
                }
            }
            _ => {
                self.stats.whole_set_scans.fetch_add(1, Ordering::Relaxed);
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
