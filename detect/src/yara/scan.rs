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

use super::relaxed::SEPARATOR;
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
    /// Of each unit's rules alone (a file or part of one) at the unit's index, and of
    /// its relaxed rules at the number of units plus that index; each with when it was
    /// last used.
    per_unit: Vec<Option<(yara_x::Scanner<'r>, u64)>>,
    /// Per-unit scanners held.
    held: usize,
    /// Uses so far: the clock of `per_unit`.
    uses: u64,
    /// Of the rules the prefilter cannot tell anything of.
    open: Option<yara_x::Scanner<'r>>,
}

impl<'r> Scanners<'r> {
    /// The scanner in `slot` (of `slots`), built by `build` if missing; the one used
    /// longest ago is dropped first when [`MAX_UNIT_SCANNERS`] are held.
    fn of_unit(
        &mut self,
        slot: usize,
        slots: usize,
        build: impl FnOnce() -> yara_x::Scanner<'r>,
    ) -> Option<&mut yara_x::Scanner<'r>> {
        if self.per_unit.len() < slots {
            self.per_unit.resize_with(slots, || None);
        }
        self.uses += 1;
        let now = self.uses;
        if self.per_unit.get(slot)?.is_none() {
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
            self.per_unit[slot] = Some((build(), now));
            self.held += 1;
        }
        let (scanner, used) = self.per_unit.get_mut(slot)?.as_mut()?;
        *used = now;
        Some(scanner)
    }

    /// Per-unit scanners held.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.held
    }
}

/// Matches of one string yara-x reports per scan at most.
const MAX_MATCHES_PER_PATTERN: usize = 64;
/// Most bytes of values gathered for one unit before they are scanned together.
const GROUP_BYTES: usize = 16 * 1024;
/// Most values gathered for one unit before they are scanned together.
const GROUP_VALUES: usize = 64;

/// Values gathered for one unit, joined by [`SEPARATOR`].
#[derive(Default)]
struct Group {
    data: Vec<u8>,
    /// Each value: its row, its field, where it is in `data`.
    values: Vec<(usize, String, Range<usize>)>,
}

/// The groups of one chunk of rows, by unit.
#[derive(Default)]
pub(super) struct Groups {
    by_unit: std::collections::BTreeMap<usize, Group>,
}

impl Groups {
    /// Adds a value to `unit`'s group; true when the group is full.
    fn add(&mut self, unit: usize, row: usize, field: &str, data: &[u8]) -> bool {
        let group = self.by_unit.entry(unit).or_default();
        if !group.data.is_empty() {
            group.data.extend_from_slice(SEPARATOR);
        }
        let start = group.data.len();
        group.data.extend_from_slice(data);
        group
            .values
            .push((row, field.to_string(), start..group.data.len()));
        group.data.len() >= GROUP_BYTES || group.values.len() >= GROUP_VALUES
    }

    /// Takes `unit`'s group out.
    fn take(&mut self, unit: usize) -> Option<Group> {
        self.by_unit.remove(&unit)
    }

    /// The units with values gathered.
    fn units(&self) -> Vec<usize> {
        self.by_unit.keys().copied().collect()
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
        let mut groups = Groups::default();
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
                self.scan_one(scanners, &mut groups, row, name, &value, &mut hits);
                for (label, blob) in targets {
                    self.scan_one(scanners, &mut groups, row, &label, &blob, &mut hits);
                }
            }
        }
        for unit in groups.units() {
            self.scan_group(scanners, &mut groups, unit, &mut hits);
        }
        // The units hold the open rules too: what a rule said of a value is said once
        // (two blobs of one field, with their own matches, are two values).
        let mut said = std::collections::HashSet::new();
        hits.retain(|h| said.insert((h.row, h.field.clone(), h.rule.clone(), h.patterns.clone())));
        hits
    }

    /// A scanner of `rules` with the limits.
    fn scanner<'r>(&self, rules: &'r yara_x::Rules) -> yara_x::Scanner<'r> {
        self.stats.scanners_built.fetch_add(1, Ordering::Relaxed);
        let mut scanner = yara_x::Scanner::new(rules);
        // yara-x's clock ticks once a second and a scan ends at the `timeout`-th tick
        // after it started, which may come at once: a 1 s limit would abandon a scan
        // that crosses the next tick, however short. One tick more makes the limit
        // between `timeout` and `timeout` + 1 s.
        scanner.set_timeout(self.limits.timeout + std::time::Duration::from_secs(1));
        scanner.max_matches_per_pattern(MAX_MATCHES_PER_PATTERN);
        scanner
    }

    /// Scans one value: with the rules the prefilter cannot tell anything of, if any,
    /// then with the units whose strings it holds (gathered in their groups when they
    /// have relaxed rules, else each alone), or with the whole set at once when there
    /// are many.
    fn scan_one<'r>(
        &'r self,
        scanners: &mut Scanners<'r>,
        groups: &mut Groups,
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
            self.scan_whole_set(scanners, row, field, data, hits);
            return;
        }
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
        match candidates {
            prefilter::Candidates::Files(units) => {
                for unit in units {
                    if self.set.relaxed.get(unit).is_some_and(Option::is_some) {
                        if groups.add(unit, row, field, data) {
                            self.scan_group(scanners, groups, unit, hits);
                        }
                    } else {
                        self.scan_unit(scanners, unit, row, field, data, hits);
                    }
                }
            }
            _ => self.scan_whole_set(scanners, row, field, data, hits),
        }
    }

    /// Scans one value with every rule at once.
    fn scan_whole_set<'r>(
        &'r self,
        scanners: &mut Scanners<'r>,
        row: usize,
        field: &str,
        data: &[u8],
        hits: &mut Vec<RuleHit>,
    ) {
        self.stats.whole_set_scans.fetch_add(1, Ordering::Relaxed);
        let scanner = scanners
            .all
            .get_or_insert_with(|| self.scanner(&self.set.rules));
        self.scan_with(scanner, row, field, data, hits);
    }

    /// The scanner of `unit`'s relaxed rules (`relaxed`) or of its own, from the cache:
    /// a unit's own at its index, its relaxed rules' after all units.
    fn unit_scanner<'r, 's>(
        &'r self,
        scanners: &'s mut Scanners<'r>,
        unit: usize,
        relaxed: bool,
    ) -> Option<&'s mut yara_x::Scanner<'r>> {
        let count = self.set.per_unit.len();
        let (slot, rules) = if relaxed {
            (count + unit, self.set.relaxed.get(unit)?.as_ref()?)
        } else {
            (unit, self.set.per_unit.get(unit)?)
        };
        scanners.of_unit(slot, 2 * count, || self.scanner(rules))
    }

    /// Scans one value with `unit`: when the unit imports modules, with its relaxed
    /// rules first, and with its own only if those matched.
    fn scan_unit<'r>(
        &'r self,
        scanners: &mut Scanners<'r>,
        unit: usize,
        row: usize,
        field: &str,
        data: &[u8],
        hits: &mut Vec<RuleHit>,
    ) {
        let modular = self.set.modular.get(unit).copied().unwrap_or(false);
        if let Some(scanner) = modular
            .then(|| self.unit_scanner(scanners, unit, true))
            .flatten()
        {
            if !may_match(scanner, data, &self.stats) {
                self.stats
                    .relaxed_passed_over
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let Some(scanner) = self.unit_scanner(scanners, unit, false) else {
            // A unit the set does not have (never, from `YaraSet::compile`): the whole
            // set, so nothing is missed.
            self.scan_whole_set(scanners, row, field, data, hits);
            return;
        };
        self.stats.file_scans.fetch_add(1, Ordering::Relaxed);
        self.scan_with(scanner, row, field, data, hits);
    }

    /// Scans the values gathered for `unit` at once with its relaxed rules (see
    /// `relaxed`): where nothing matched, none of them can match the unit; else the
    /// values that the matches fall in are scanned alone (every value, when a string
    /// reached the cap on matches and some of its matches may be missing). The group
    /// is emptied.
    fn scan_group<'r>(
        &'r self,
        scanners: &mut Scanners<'r>,
        groups: &mut Groups,
        unit: usize,
        hits: &mut Vec<RuleHit>,
    ) {
        let Some(group) = groups.take(unit) else {
            return;
        };
        self.stats.group_scans.fetch_add(1, Ordering::Relaxed);
        let marked = match self.unit_scanner(scanners, unit, true) {
            Some(scanner) => values_matched(scanner, &group, &self.stats),
            None => vec![true; group.values.len()],
        };
        let passed = marked.iter().filter(|m| !**m).count();
        self.stats
            .group_passed_over
            .fetch_add(passed as u64, Ordering::Relaxed);
        for ((row, field, range), marked) in group.values.iter().zip(marked) {
            if let (true, Some(data)) = (marked, group.data.get(range.clone())) {
                self.scan_unit(scanners, unit, *row, field, data, hits);
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

/// Per value of `group`, whether a match of the scan of the whole group with
/// `scanner` (relaxed rules) touches it; every value when the scan fails or a string
/// reached the cap on matches (its matches in later values may be missing).
fn values_matched(
    scanner: &mut yara_x::Scanner<'_>,
    group: &Group,
    stats: &YaraStats,
) -> Vec<bool> {
    let mut marked = vec![false; group.values.len()];
    let results = match scanner.scan(&group.data) {
        Ok(results) => results,
        Err(e) => {
            counted_failure(&e, stats);
            return vec![true; group.values.len()];
        }
    };
    for rule in results.matching_rules() {
        for pattern in rule.patterns().include_private(true) {
            let mut count = 0;
            for m in pattern.matches() {
                count += 1;
                let r = m.range();
                // The values from the one the match starts in to the one it ends in.
                let first = group.values.partition_point(|(_, _, v)| v.end <= r.start);
                let last = group
                    .values
                    .partition_point(|(_, _, v)| v.start < r.end.max(r.start + 1));
                for flag in marked.iter_mut().take(last).skip(first) {
                    *flag = true;
                }
            }
            if count >= MAX_MATCHES_PER_PATTERN {
                return vec![true; group.values.len()];
            }
        }
    }
    marked
}

/// Whether a scan of `data` with (relaxed) rules matches any, or could not tell (an
/// error or the time limit).
fn may_match(scanner: &mut yara_x::Scanner<'_>, data: &[u8], stats: &YaraStats) -> bool {
    match scanner.scan(data) {
        Ok(results) => results.matching_rules().next().is_some(),
        Err(e) => {
            counted_failure(&e, stats);
            true
        }
    }
}

/// Counts a scan abandoned at its time limit (its values are then scanned further, so
/// nothing is lost but time).
fn counted_failure(error: &yara_x::errors::ScanError, stats: &YaraStats) {
    if matches!(error, yara_x::errors::ScanError::Timeout) {
        stats.timeouts.fetch_add(1, Ordering::Relaxed);
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
