//! All tests on one field, matched together in one pass over the field's values.
//!
//! Literals of every rule (equals, contains, startswith, endswith; the expanded
//! `windash`, `base64offset` and `utf16` forms), per case mode: exact values by one
//! hash lookup, prefixes and suffixes by one trie walk from each end, and `contains`
//! literals by one Aho-Corasick scan over the (lowercased) value. Wildcard patterns
//! and `re` regexes are confirmed only on values where a literal every match must
//! contain was found (regexes without such a literal run on every value). Numbers
//! and addresses are parsed once per value.

use regex::bytes::Regex;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::OnceLock;

use super::batch_fields::{self, BatchFields};
use super::bitset::Bitset;
use super::case_group::{CaseGroup, CaseGroupBuilder, PreparedGroup, SharedAnchors, Target};
use super::expr::TestId;
use super::glob::{glob_match, GlobToken};
use super::test_spec::{cidr_mask, parse_number, Anchor, NumOp, TestSpec};

/// A `re` value, confirmed by its regex.
#[derive(Debug)]
struct Confirm {
    test: TestId,
    pattern: String,
    /// Built the first time a value needs it: most rules' regexes are on fields of
    /// datasets a deployment may never see, and building one costs up to a millisecond
    /// (its automata, Unicode classes included): for SigmaHQ's 206 regexes, about a
    /// fifth of compiling the rule set.
    /// `None`: it could not be built (over the size limit) and never matches.
    regex: OnceLock<Option<Regex>>,
}

impl Confirm {
    fn is_match(&self, value: &[u8]) -> bool {
        let regex = self.regex.get_or_init(|| match Regex::new(&self.pattern) {
            Ok(r) => Some(r),
            Err(e) => {
                // Validated when the rule compiled; one that still fails to build says so
                // once.
                tracing::warn!(pattern = %self.pattern, error = %e, "regex cannot be built; its test never matches");
                None
            }
        });
        regex.as_ref().is_some_and(|r| r.is_match(value))
    }
}

/// A wildcard value, confirmed by a token walk.
#[derive(Debug)]
struct Glob {
    test: TestId,
    tokens: Vec<GlobToken>,
    cased: bool,
}

/// Every this many values, [`FieldMatcher::run`] checks whether a batch's values recur.
const DEDUP_PROBE: usize = 512;

/// At least one value in this many must recur among those seen so far for the rest of
/// the batch to be matched once per distinct value.
const DEDUP_MIN_REPEAT: usize = 8;

/// Buffers reused from value to value, and from field to field of one batch.
#[derive(Debug, Default)]
pub(crate) struct Scratch<'a> {
    /// Per-value buffers.
    values: ValueScratch,
    /// Distinct value -> its range in `passed`.
    seen: HashMap<&'a [u8], (u32, u32), foldhash::fast::RandomState>,
    /// The tests each distinct value passes, end to end.
    passed: Vec<TestId>,
}

/// Buffers reused from value to value.
#[derive(Debug, Default)]
struct ValueScratch {
    /// The value lowercased.
    lower: Vec<u8>,
    /// Globs and regexes to confirm.
    candidates: Vec<Target>,
}

/// Every test on one field.
#[derive(Debug)]
pub(crate) struct FieldMatcher {
    insensitive: CaseGroup,
    sensitive: CaseGroup,
    /// Empty-literal tests: (test, anchor); exact means the value is empty.
    empty: Vec<(TestId, Anchor)>,
    globs: Vec<Glob>,
    regexes: Vec<Confirm>,
    /// Globs and regexes with no literal to wait for: tried on every value.
    untriggered: Vec<Target>,
    numbers: Vec<(TestId, NumOp, f64)>,
    cidrs: Vec<(TestId, u128, u8, bool)>,
    exists: Vec<(TestId, bool)>,
    nulls: Vec<TestId>,
    fieldrefs: Vec<(TestId, u32, Anchor, bool)>,
}

/// Literals every match of `pattern` must contain (prefix or suffix literals), if
/// they are few and long enough to be worth waiting for; and whether they are
/// case-insensitive.
fn regex_triggers(pattern: &str) -> Option<(Vec<Vec<u8>>, bool)> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let fold = pattern.starts_with("(?")
        && pattern[2..]
            .split(')')
            .next()
            .is_some_and(|f| f.contains('i'));
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let mut ex = Extractor::new();
        ex.kind(kind);
        let seq = ex.extract(&hir);
        let Some(lits) = seq.literals() else { continue };
        if lits.is_empty() || lits.len() > 64 || lits.iter().any(|l| l.as_bytes().len() < 3) {
            continue;
        }
        let mut out: Vec<Vec<u8>> = lits
            .iter()
            .map(|l| {
                if fold {
                    l.as_bytes().to_ascii_lowercase()
                } else {
                    l.as_bytes().to_vec()
                }
            })
            .collect();
        out.sort();
        out.dedup();
        return Some((out, fold));
    }
    None
}

impl FieldMatcher {
    /// The matcher of one field sorted out from its tests, its automata not built
    /// yet; `slot_of` resolves the fields that `fieldref` tests name.
    pub(crate) fn parts(
        tests: &[(TestId, TestSpec)],
        slot_of: impl Fn(&str) -> u32,
    ) -> FieldMatcherParts {
        let mut ci = CaseGroupBuilder::new(true);
        let mut cs = CaseGroupBuilder::new(false);
        let mut m = FieldMatcher {
            insensitive: CaseGroup::default(),
            sensitive: CaseGroup::default(),
            empty: Vec::new(),
            globs: Vec::new(),
            regexes: Vec::new(),
            untriggered: Vec::new(),
            numbers: Vec::new(),
            cidrs: Vec::new(),
            exists: Vec::new(),
            nulls: Vec::new(),
            fieldrefs: Vec::new(),
        };
        for (id, spec) in tests {
            match spec {
                TestSpec::Literal { bytes, anchor, .. } if bytes.is_empty() => {
                    m.empty.push((*id, *anchor));
                }
                TestSpec::Literal {
                    bytes,
                    anchor,
                    cased,
                } => {
                    let b = if *cased { &mut cs } else { &mut ci };
                    b.literal(bytes, *anchor, *id);
                }
                TestSpec::Glob {
                    tokens,
                    trigger,
                    cased,
                } => {
                    let g = m.globs.len() as u32;
                    m.globs.push(Glob {
                        test: *id,
                        tokens: tokens.clone(),
                        cased: *cased,
                    });
                    if trigger.is_empty() {
                        m.untriggered.push(Target::Glob(g));
                    } else {
                        let b = if *cased { &mut cs } else { &mut ci };
                        b.scan(trigger, Target::Glob(g));
                    }
                }
                TestSpec::Regex { pattern } => {
                    let r = m.regexes.len() as u32;
                    m.regexes.push(Confirm {
                        test: *id,
                        pattern: pattern.clone(),
                        regex: OnceLock::new(),
                    });
                    match regex_triggers(pattern) {
                        Some((lits, fold)) => {
                            let b = if fold { &mut ci } else { &mut cs };
                            lits.iter().for_each(|l| b.scan(l, Target::Regex(r)));
                        }
                        None => m.untriggered.push(Target::Regex(r)),
                    }
                }
                TestSpec::Cidr {
                    network,
                    prefix,
                    v6,
                } => m.cidrs.push((*id, *network, *prefix, *v6)),
                TestSpec::Num { op, bound_bits } => {
                    m.numbers.push((*id, *op, f64::from_bits(*bound_bits)));
                }
                TestSpec::Exists(b) => m.exists.push((*id, *b)),
                TestSpec::Null => m.nulls.push(*id),
                TestSpec::FieldRef {
                    other,
                    anchor,
                    cased,
                } => m.fieldrefs.push((*id, slot_of(other), *anchor, *cased)),
            }
        }
        FieldMatcherParts {
            matcher: m,
            insensitive: ci.prepare(),
            sensitive: cs.prepare(),
        }
    }

    /// Matches every value of the field in `fields.per_slot[slot]`, setting the rows
    /// where each test holds in `hits` (allocated on first hit).
    ///
    /// A value that recurs in the batch is matched once: the tests it passes are kept
    /// per distinct value and set on every row that carries it. Where the values
    /// hardly recur (fewer than one in [`DEDUP_MIN_REPEAT`] of those seen, checked
    /// every [`DEDUP_PROBE`] values), the rest of the batch is matched value by value.
    pub(crate) fn run<'a>(
        &self,
        entries: &[batch_fields::Entry<'a>],
        fields: &BatchFields<'_>,
        hits: &mut [Option<Bitset>],
        scratch: &mut Scratch<'a>,
    ) {
        let rows = fields.rows;
        let set = |hits: &mut [Option<Bitset>], test: TestId, row: u32| {
            set_hit(hits, test, row as usize, rows)
        };
        let Scratch {
            values: scratch,
            seen,
            passed,
        } = scratch;
        seen.clear();
        passed.clear();
        // Matching a value costs about one lookup where there is no automaton scan
        // and nothing to confirm: then values are not looked up twice.
        let mut dedup = self.costly();
        let mut looked = 0usize;
        for &(row, value) in entries {
            let Some(value) = value else { continue };
            if dedup {
                looked += 1;
                let (start, end) = match seen.entry(value) {
                    Entry::Occupied(e) => *e.get(),
                    Entry::Vacant(e) => {
                        let start = passed.len() as u32;
                        self.value_tests(value, scratch, passed);
                        *e.insert((start, passed.len() as u32))
                    }
                };
                for t in passed.get(start as usize..end as usize).unwrap_or(&[]) {
                    set(hits, *t, row);
                }
                if looked.is_multiple_of(DEDUP_PROBE)
                    && seen.len() * DEDUP_MIN_REPEAT > looked * (DEDUP_MIN_REPEAT - 1)
                {
                    dedup = false;
                    passed.clear();
                }
            } else {
                self.value_tests(value, scratch, passed);
                for t in passed.drain(..) {
                    set(hits, t, row);
                }
            }
            for (test, other, anchor, cased) in &self.fieldrefs {
                if let Some(o) = fields.value(*other, row) {
                    if anchored_eq(value, o, *anchor, *cased) {
                        set(hits, *test, row);
                    }
                }
            }
        }
        self.presence_tests(entries, rows, hits);
    }

    /// Matches the keyword tests on the rows of `mask`: every value of a row.
    ///
    /// A matcher of `contains` literals alone scans each row's map values end to end
    /// in one pass and keeps the literals found inside one value; any other matcher
    /// goes value by value.
    pub(crate) fn run_keyword_rows<'a>(
        &self,
        mask: &Bitset,
        fields: &BatchFields<'a>,
        hits: &mut [Option<Bitset>],
        scratch: &mut Scratch<'a>,
    ) {
        if !self.only_contains() {
            let entries: Vec<batch_fields::Entry<'a>> = mask
                .rows()
                .flat_map(|row| {
                    fields
                        .keyword_values(row)
                        .map(move |v| (row as u32, Some(v)))
                })
                .collect();
            self.run(&entries, fields, hits, scratch);
            return;
        }
        let rows = fields.rows;
        let ValueScratch { lower, .. } = &mut scratch.values;
        let found = &mut scratch.passed;
        found.clear();
        for row in mask.rows() {
            if let Some((text, bounds, first)) = fields.keyword_region(row) {
                let base = bounds.first().map_or(0, |b| *b as usize);
                let inside = |start: usize, end: usize| {
                    let (start, end) = (base + start, base + end);
                    let i = bounds.partition_point(|b| *b as usize <= start);
                    i > 0
                        && bounds.get(i).is_some_and(|b| end <= *b as usize)
                        && fields.map_value_valid(first + i - 1)
                };
                self.contains_in(text, lower, inside, found);
            }
            if let Some(message) = fields.message(row) {
                self.contains_in(message, lower, |_, _| true, found);
            }
            for t in found.drain(..) {
                set_hit(hits, t, row, rows);
            }
        }
    }

    /// Whether matching a value takes more than lookups: an automaton scan,
    /// patterns to confirm, or parsing.
    fn costly(&self) -> bool {
        self.insensitive.scans()
            || self.sensitive.scans()
            || !self.globs.is_empty()
            || !self.regexes.is_empty()
            || !self.numbers.is_empty()
            || !self.cidrs.is_empty()
    }

    /// Whether every test of this matcher is a `contains` literal.
    fn only_contains(&self) -> bool {
        self.insensitive.only_contains_tests()
            && self.sensitive.only_contains_tests()
            && self.empty.is_empty()
            && self.globs.is_empty()
            && self.regexes.is_empty()
            && self.untriggered.is_empty()
            && self.numbers.is_empty()
            && self.cidrs.is_empty()
            && self.exists.is_empty()
            && self.nulls.is_empty()
            && self.fieldrefs.is_empty()
    }

    /// Appends the `contains` tests whose literal occurs in `text` at a place
    /// `inside(start, end)` accepts.
    fn contains_in(
        &self,
        text: &[u8],
        lower: &mut Vec<u8>,
        inside: impl Fn(usize, usize) -> bool,
        out: &mut Vec<TestId>,
    ) {
        let mut scan = |group: &CaseGroup, text: &[u8]| {
            group.find_literals(text, |start, end, targets| {
                if inside(start, end) {
                    for target in targets {
                        if let Target::Test(t) = target {
                            out.push(*t);
                        }
                    }
                }
            });
        };
        if self.insensitive.scans() {
            scan(&self.insensitive, lowercased(text, lower));
        }
        scan(&self.sensitive, text);
    }

    /// The tests of this field that `value` passes on its own, ascending.
    #[cfg(test)]
    pub(crate) fn passed_by(&self, value: &[u8]) -> Vec<TestId> {
        let mut out = Vec::new();
        self.value_tests(value, &mut ValueScratch::default(), &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Appends to `out` every test of this field that `value` passes on its own
    /// (all but `fieldref`, which reads another field of the row).
    fn value_tests(&self, value: &[u8], scratch: &mut ValueScratch, out: &mut Vec<TestId>) {
        let ValueScratch { lower, candidates } = scratch;
        if !self.insensitive.is_empty() {
            let lower = lowercased(value, lower);
            self.insensitive.run(lower, |t| out.push(t), candidates);
        }
        if !self.sensitive.is_empty() {
            self.sensitive.run(value, |t| out.push(t), candidates);
        }
        candidates.extend_from_slice(&self.untriggered);
        if !candidates.is_empty() {
            candidates.sort_unstable();
            candidates.dedup();
            for c in candidates.drain(..) {
                match c {
                    Target::Glob(g) => {
                        if let Some(glob) = self.globs.get(g as usize) {
                            if glob_match(&glob.tokens, value, glob.cased) {
                                out.push(glob.test);
                            }
                        }
                    }
                    Target::Regex(r) => {
                        if let Some(confirm) = self.regexes.get(r as usize) {
                            if confirm.is_match(value) {
                                out.push(confirm.test);
                            }
                        }
                    }
                    Target::Test(_) => {}
                }
            }
        }
        for (test, anchor) in &self.empty {
            if *anchor != Anchor::Exact || value.is_empty() {
                out.push(*test);
            }
        }
        if !self.numbers.is_empty() {
            if let Some(n) = parse_number(value) {
                for (test, op, bound) in &self.numbers {
                    if op.holds(n, *bound) {
                        out.push(*test);
                    }
                }
            }
        }
        if !self.cidrs.is_empty() {
            if let Some((addr, v6)) = parse_ip(value) {
                for (test, network, prefix, is_v6) in &self.cidrs {
                    let width = if *is_v6 { 128 } else { 32 };
                    if v6 == *is_v6 && addr & cidr_mask(*prefix, width) == *network {
                        out.push(*test);
                    }
                }
            }
        }
    }

    fn presence_tests(
        &self,
        entries: &[batch_fields::Entry<'_>],
        rows: usize,
        hits: &mut [Option<Bitset>],
    ) {
        if self.exists.is_empty() && self.nulls.is_empty() {
            return;
        }
        let mut present = Bitset::empty(rows);
        let mut non_null = Bitset::empty(rows);
        for &(row, value) in entries {
            present.set(row as usize);
            if value.is_some() {
                non_null.set(row as usize);
            }
        }
        for (test, want) in &self.exists {
            let mut b = present.clone();
            if !want {
                b.invert();
            }
            if let Some(h) = hits.get_mut(*test as usize) {
                *h = (!b.is_empty()).then_some(b);
            }
        }
        for test in &self.nulls {
            let mut b = non_null.clone();
            b.invert();
            if let Some(h) = hits.get_mut(*test as usize) {
                *h = (!b.is_empty()).then_some(b);
            }
        }
    }

    /// Whether the field has absence tests, which hold on rows without the field.
    pub(crate) fn has_absence_tests(&self) -> bool {
        !self.exists.is_empty() || !self.nulls.is_empty()
    }
}

/// A field's tests sorted out, the automata of its `contains` literals not built.
#[derive(Debug)]
pub(crate) struct FieldMatcherParts {
    matcher: FieldMatcher,
    insensitive: PreparedGroup,
    sensitive: PreparedGroup,
}

impl FieldMatcherParts {
    /// The case-insensitive group, to share an automaton with others.
    pub(crate) fn insensitive_group(&self) -> &PreparedGroup {
        &self.insensitive
    }

    /// The matcher, its case-insensitive literals scanned by `shared` if given (which
    /// must hold all their anchors), by an automaton of their own otherwise.
    pub(crate) fn build(self, shared: Option<&SharedAnchors>) -> Result<FieldMatcher, String> {
        let mut m = self.matcher;
        m.insensitive = match shared {
            Some(shared) => self.insensitive.build_shared(shared),
            None => self.insensitive.build()?,
        };
        m.sensitive = self.sensitive.build()?;
        Ok(m)
    }
}

/// Marks `row` in the bitmap of `test` (allocated on its first row).
fn set_hit(hits: &mut [Option<Bitset>], test: TestId, row: usize, rows: usize) {
    if let Some(h) = hits.get_mut(test as usize) {
        h.get_or_insert_with(|| Bitset::empty(rows)).set(row);
    }
}

/// `text` ASCII-lowercased into `buf`.
fn lowercased<'b>(text: &[u8], buf: &'b mut Vec<u8>) -> &'b [u8] {
    buf.clear();
    buf.extend_from_slice(text);
    buf.make_ascii_lowercase();
    buf
}

fn anchored_eq(value: &[u8], other: &[u8], anchor: Anchor, cased: bool) -> bool {
    let eq = |a: &[u8], b: &[u8]| {
        if cased {
            a == b
        } else {
            a.eq_ignore_ascii_case(b)
        }
    };
    match anchor {
        Anchor::Exact => eq(value, other),
        Anchor::Prefix => value.len() >= other.len() && eq(&value[..other.len()], other),
        Anchor::Suffix => {
            value.len() >= other.len() && eq(&value[value.len() - other.len()..], other)
        }
        Anchor::Contains => other.is_empty() || value.windows(other.len()).any(|w| eq(w, other)),
    }
}

/// An IP address as a 128-bit number and whether it is IPv6.
fn parse_ip(value: &[u8]) -> Option<(u128, bool)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    match text.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => Some((u128::from(u32::from(v4)), false)),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Some((u128::from(u32::from(v4)), false)),
            None => Some((u128::from(v6), true)),
        },
    }
}
