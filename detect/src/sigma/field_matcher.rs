//! All tests on one field, matched together in one pass over the field's values.
//!
//! Literals of every rule (equals, contains, startswith, endswith; the expanded
//! `windash`, `base64offset` and `utf16` forms) go into one Aho-Corasick automaton per
//! case mode; an overlapping search reports each literal found with its position,
//! and the anchor decides whether it counts. Wildcard patterns are confirmed by a
//! regex only on values where their longest literal piece was found. `re` values of
//! all rules form one regex set. Numbers and addresses are parsed once per value.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexSet};

use super::batch_fields::{BatchFields, Entry};
use super::bitset::Bitset;
use super::expr::TestId;
use super::test_spec::{cidr_mask, parse_number, Anchor, NumOp, TestSpec};

/// What a found literal stands for.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// A literal test with its anchor.
    Literal(TestId, Anchor),
    /// A wildcard pattern to confirm.
    Glob(u32),
}

/// One automaton and what each of its patterns stands for.
#[derive(Debug)]
struct Literals {
    automaton: AhoCorasick,
    targets: Vec<Vec<Target>>,
}

/// Collects literals before building the automaton.
#[derive(Debug, Default)]
struct LiteralsBuilder {
    patterns: Vec<Vec<u8>>,
    index: std::collections::HashMap<Vec<u8>, usize>,
    targets: Vec<Vec<Target>>,
}

impl LiteralsBuilder {
    fn add(&mut self, bytes: &[u8], target: Target, cased: bool) {
        let key = if cased {
            bytes.to_vec()
        } else {
            bytes.to_ascii_lowercase()
        };
        let at = *self.index.entry(key.clone()).or_insert_with(|| {
            self.patterns.push(key);
            self.targets.push(Vec::new());
            self.patterns.len() - 1
        });
        self.targets[at].push(target);
    }

    fn build(self, case_insensitive: bool) -> Result<Option<Literals>, String> {
        if self.patterns.is_empty() {
            return Ok(None);
        }
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(case_insensitive)
            .match_kind(MatchKind::Standard)
            .build(&self.patterns)
            .map_err(|e| format!("building the literal automaton: {e}"))?;
        Ok(Some(Literals {
            automaton,
            targets: self.targets,
        }))
    }
}

/// A wildcard pattern.
#[derive(Debug)]
struct Glob {
    test: TestId,
    regex: Regex,
}

/// Every test on one field.
#[derive(Debug)]
pub(crate) struct FieldMatcher {
    insensitive: Option<Literals>,
    sensitive: Option<Literals>,
    /// Empty-literal tests: (test, anchor); exact means the value is empty.
    empty: Vec<(TestId, Anchor)>,
    globs: Vec<Glob>,
    /// Globs with no literal piece: tried on every value.
    untriggered: Vec<u32>,
    regexes: Option<(RegexSet, Vec<TestId>)>,
    numbers: Vec<(TestId, NumOp, f64)>,
    cidrs: Vec<(TestId, u128, u8, bool)>,
    exists: Vec<(TestId, bool)>,
    nulls: Vec<TestId>,
    fieldrefs: Vec<(TestId, u32, Anchor, bool)>,
}

impl FieldMatcher {
    /// Builds the matcher of one field from its tests; `slot_of` resolves the fields
    /// that `fieldref` tests name.
    pub(crate) fn build(
        tests: &[(TestId, TestSpec)],
        slot_of: impl Fn(&str) -> u32,
    ) -> Result<Self, String> {
        let mut ci = LiteralsBuilder::default();
        let mut cs = LiteralsBuilder::default();
        let mut m = FieldMatcher {
            insensitive: None,
            sensitive: None,
            empty: Vec::new(),
            globs: Vec::new(),
            untriggered: Vec::new(),
            regexes: None,
            numbers: Vec::new(),
            cidrs: Vec::new(),
            exists: Vec::new(),
            nulls: Vec::new(),
            fieldrefs: Vec::new(),
        };
        let mut regex_sources = Vec::new();
        let mut regex_tests = Vec::new();
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
                    b.add(bytes, Target::Literal(*id, *anchor), *cased);
                }
                TestSpec::Glob {
                    regex,
                    trigger,
                    cased,
                } => {
                    let compiled =
                        Regex::new(regex).map_err(|e| format!("wildcard pattern: {e}"))?;
                    let g = m.globs.len() as u32;
                    m.globs.push(Glob {
                        test: *id,
                        regex: compiled,
                    });
                    if trigger.is_empty() {
                        m.untriggered.push(g);
                    } else {
                        let b = if *cased { &mut cs } else { &mut ci };
                        b.add(trigger, Target::Glob(g), *cased);
                    }
                }
                TestSpec::Regex { pattern } => {
                    regex_sources.push(pattern.clone());
                    regex_tests.push(*id);
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
        m.insensitive = ci.build(true)?;
        m.sensitive = cs.build(false)?;
        if !regex_sources.is_empty() {
            let set = RegexSet::new(&regex_sources).map_err(|e| format!("regex set: {e}"))?;
            m.regexes = Some((set, regex_tests));
        }
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
        let mut globs_to_check: Vec<u32> = Vec::new();
        for &(row, value) in entries {
            let Some(value) = value else { continue };
            for lits in [&self.insensitive, &self.sensitive].into_iter().flatten() {
                for found in lits.automaton.find_overlapping_iter(value) {
                    for target in &lits.targets[found.pattern().as_usize()] {
                        match *target {
                            Target::Literal(test, anchor) => {
                                let ok = match anchor {
                                    Anchor::Contains => true,
                                    Anchor::Prefix => found.start() == 0,
                                    Anchor::Suffix => found.end() == value.len(),
                                    Anchor::Exact => {
                                        found.start() == 0 && found.end() == value.len()
                                    }
                                };
                                if ok {
                                    set(hits, test, row);
                                }
                            }
                            Target::Glob(g) => {
                                if !globs_to_check.contains(&g) {
                                    globs_to_check.push(g);
                                }
                            }
                        }
                    }
                }
            }
            globs_to_check.extend_from_slice(&self.untriggered);
            for g in globs_to_check.drain(..) {
                if let Some(glob) = self.globs.get(g as usize) {
                    if glob.regex.is_match(value) {
                        set(hits, glob.test, row);
                    }
                }
            }
            for (test, anchor) in &self.empty {
                if *anchor != Anchor::Exact || value.is_empty() {
                    set(hits, *test, row);
                }
            }
            if let Some((regexes, tests)) = &self.regexes {
                for i in regexes.matches(value).iter() {
                    if let Some(t) = tests.get(i) {
                        set(hits, *t, row);
                    }
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
