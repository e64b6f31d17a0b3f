//! All tests on one field, matched together in one pass over the field's values.
//!
//! Literals of every rule (equals, contains, startswith, endswith; the expanded
//! `windash`, `base64offset` and `utf16` forms), per case mode: exact values by one
//! hash lookup, prefixes and suffixes by one trie walk from each end, and `contains`
//! literals by one Aho-Corasick scan over the (lowercased) value. Wildcard patterns
//! and `re` regexes are confirmed only on values where a literal every match must
//! contain was found (regexes without such a literal run on every value). Numbers
//! and addresses are parsed once per value.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::Regex;

use super::batch_fields::{BatchFields, Entry};
use super::bitset::Bitset;
use super::expr::TestId;
use super::glob::{glob_match, GlobToken};
use super::literal_index::{ExactMap, Trie};
use super::test_spec::{cidr_mask, parse_number, Anchor, NumOp, TestSpec};

/// What a literal found by the `contains` scan stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    /// A `contains` test holds.
    Test(TestId),
    /// A wildcard pattern to confirm.
    Glob(u32),
    /// A regex to confirm.
    Regex(u32),
}

/// The literal tests of one case mode.
#[derive(Debug)]
struct CaseGroup {
    exact: ExactMap<TestId>,
    prefix: Trie<TestId>,
    suffix: Trie<TestId>,
    contains: Option<AhoCorasick>,
    targets: Vec<Vec<Target>>,
}

/// Collects one case mode's literals.
#[derive(Debug)]
struct CaseGroupBuilder {
    fold: bool,
    exact: ExactMap<TestId>,
    prefix: Trie<TestId>,
    suffix: Trie<TestId>,
    patterns: Vec<Vec<u8>>,
    index: std::collections::HashMap<Vec<u8>, usize>,
    targets: Vec<Vec<Target>>,
}

impl CaseGroupBuilder {
    fn new(fold: bool) -> Self {
        Self {
            fold,
            exact: ExactMap::default(),
            prefix: Trie::new(),
            suffix: Trie::new(),
            patterns: Vec::new(),
            index: std::collections::HashMap::new(),
            targets: Vec::new(),
        }
    }

    fn key(&self, bytes: &[u8]) -> Vec<u8> {
        if self.fold {
            bytes.to_ascii_lowercase()
        } else {
            bytes.to_vec()
        }
    }

    fn literal(&mut self, bytes: &[u8], anchor: Anchor, test: TestId) {
        let key = self.key(bytes);
        match anchor {
            Anchor::Exact => self.exact.entry(key).or_default().push(test),
            Anchor::Prefix => self.prefix.insert(key.into_iter(), test),
            Anchor::Suffix => self.suffix.insert(key.into_iter().rev(), test),
            Anchor::Contains => self.scan(&key, Target::Test(test)),
        }
    }

    fn scan(&mut self, bytes: &[u8], target: Target) {
        let key = self.key(bytes);
        let at = *self.index.entry(key.clone()).or_insert_with(|| {
            self.patterns.push(key);
            self.targets.push(Vec::new());
            self.patterns.len() - 1
        });
        self.targets[at].push(target);
    }

    fn build(self) -> Result<CaseGroup, String> {
        let contains = if self.patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .build(&self.patterns)
                    .map_err(|e| format!("building the literal automaton: {e}"))?,
            )
        };
        Ok(CaseGroup {
            exact: self.exact,
            prefix: self.prefix,
            suffix: self.suffix,
            contains,
            targets: self.targets,
        })
    }
}

impl CaseGroup {
    fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.prefix.is_empty()
            && self.suffix.is_empty()
            && self.contains.is_none()
    }

    /// Finds this group's literals in `value` (already lowercased if the group folds).
    fn run(&self, value: &[u8], mut hit: impl FnMut(TestId), candidates: &mut Vec<Target>) {
        if let Some(tests) = self.exact.get(value) {
            tests.iter().for_each(|t| hit(*t));
        }
        self.prefix.walk(value.iter().copied(), &mut hit);
        self.suffix.walk(value.iter().rev().copied(), &mut hit);
        if let Some(ac) = &self.contains {
            for found in ac.find_overlapping_iter(value) {
                for target in &self.targets[found.pattern().as_usize()] {
                    match *target {
                        Target::Test(t) => hit(t),
                        other => candidates.push(other),
                    }
                }
            }
        }
    }
}

/// A `re` value, confirmed by its regex.
#[derive(Debug)]
struct Confirm {
    test: TestId,
    regex: Regex,
}

/// A wildcard value, confirmed by a token walk.
#[derive(Debug)]
struct Glob {
    test: TestId,
    tokens: Vec<GlobToken>,
    cased: bool,
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
    /// Builds the matcher of one field from its tests; `slot_of` resolves the fields
    /// that `fieldref` tests name.
    pub(crate) fn build(
        tests: &[(TestId, TestSpec)],
        slot_of: impl Fn(&str) -> u32,
    ) -> Result<Self, String> {
        let mut ci = CaseGroupBuilder::new(true);
        let mut cs = CaseGroupBuilder::new(false);
        let mut m = FieldMatcher {
            insensitive: CaseGroupBuilder::new(true).build()?,
            sensitive: CaseGroupBuilder::new(false).build()?,
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
                    // Validated when the rule compiled; a regex that still fails to
                    // build (over the size limit) never matches, and says so.
                    let compiled = match Regex::new(pattern) {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(pattern = %pattern, error = %e, "regex cannot be built; its test never matches");
                            continue;
                        }
                    };
                    let r = m.regexes.len() as u32;
                    m.regexes.push(Confirm {
                        test: *id,
                        regex: compiled,
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
        m.insensitive = ci.build()?;
        m.sensitive = cs.build()?;
        Ok(m)
    }

    /// Matches every value of the field in `fields.per_slot[slot]`, setting the rows
    /// where each test holds in `hits` (allocated on first hit).
    pub(crate) fn run(&self, slot: u32, fields: &BatchFields<'_>, hits: &mut [Option<Bitset>]) {
        let rows = fields.rows;
        let entries: &[Entry<'_>] = fields
            .per_slot
            .get(slot as usize)
            .map_or(&[], Vec::as_slice);
        let set = |hits: &mut [Option<Bitset>], test: TestId, row: u32| {
            if let Some(h) = hits.get_mut(test as usize) {
                h.get_or_insert_with(|| Bitset::empty(rows))
                    .set(row as usize);
            }
        };
        let fold_needed = !self.insensitive.is_empty();
        let sensitive = !self.sensitive.is_empty();
        let mut lower: Vec<u8> = Vec::new();
        let mut candidates: Vec<Target> = Vec::new();
        let mut found: Vec<TestId> = Vec::new();
        for &(row, value) in entries {
            let Some(value) = value else { continue };
            if fold_needed {
                lower.clear();
                lower.extend(value.iter().map(u8::to_ascii_lowercase));
                self.insensitive
                    .run(&lower, |t| found.push(t), &mut candidates);
            }
            if sensitive {
                self.sensitive
                    .run(value, |t| found.push(t), &mut candidates);
            }
            for t in found.drain(..) {
                set(hits, t, row);
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
                                    set(hits, glob.test, row);
                                }
                            }
                        }
                        Target::Regex(r) => {
                            if let Some(confirm) = self.regexes.get(r as usize) {
                                if confirm.regex.is_match(value) {
                                    set(hits, confirm.test, row);
                                }
                            }
                        }
                        Target::Test(_) => {}
                    }
                }
            }
            for (test, anchor) in &self.empty {
                if *anchor != Anchor::Exact || value.is_empty() {
                    set(hits, *test, row);
                }
            }
            if !self.numbers.is_empty() {
                if let Some(n) = parse_number(value) {
                    for (test, op, bound) in &self.numbers {
                        if op.holds(n, *bound) {
                            set(hits, *test, row);
                        }
                    }
                }
            }
            if !self.cidrs.is_empty() {
                if let Some((addr, v6)) = parse_ip(value) {
                    for (test, network, prefix, is_v6) in &self.cidrs {
                        let width = if *is_v6 { 128 } else { 32 };
                        if v6 == *is_v6 && addr & cidr_mask(*prefix, width) == *network {
                            set(hits, *test, row);
                        }
                    }
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

    fn presence_tests(&self, entries: &[Entry<'_>], rows: usize, hits: &mut [Option<Bitset>]) {
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
