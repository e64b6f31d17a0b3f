//! The literal tests of one field in one case mode: exact values by one hash lookup,
//! prefixes and suffixes by one trie walk from each end, and `contains` literals by
//! one Aho-Corasick scan for their anchors (their first [`ANCHOR_MAX`] bytes).
//!
//! Fields that hold nearly the same literals (a rule field renamed on another route,
//! `CommandLine` and `process.command_line`) share one automaton over the union of
//! their anchors ([`SharedAnchors`]): it is built once.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use rustc_hash::FxHashMap;

use super::expr::TestId;
use super::literal_index::{ExactMap, Trie};
use super::test_spec::Anchor;

/// What a literal found by the `contains` scan stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    /// A `contains` test holds.
    Test(TestId),
    /// A wildcard pattern to confirm.
    Glob(u32),
    /// A regex to confirm.
    Regex(u32),
}

/// The literal tests of one case mode.
#[derive(Debug, Default)]
pub(crate) struct CaseGroup {
    exact: ExactMap<TestId>,
    prefix: Trie<TestId>,
    suffix: Trie<TestId>,
    /// Finds the anchors of the `contains` literals.
    contains: Option<AhoCorasick>,
    /// A vectorized searcher for the same anchors where there are few: a value it
    /// finds none in is not scanned by the automaton.
    gate: Option<aho_corasick::packed::Searcher>,
    /// By anchor (as the automaton numbers them): the `contains` literals that begin
    /// with it.
    by_anchor: Vec<Vec<Literal>>,
}

/// A `contains` literal, found where its anchor (its first [`ANCHOR_MAX`] bytes, or all
/// of it) is.
#[derive(Debug)]
struct Literal {
    /// The bytes after the anchor.
    rest: Vec<u8>,
    /// What the literal stands for.
    targets: Vec<Target>,
}

/// Groups of up to this many anchors get a [`CaseGroup::gate`].
const GATE_MAX_PATTERNS: usize = 64;

/// The automaton holds at most this many bytes of a literal; the rest is compared where
/// the anchor is found. Hash values (`Hashes|contains: IMPHASH=...`) run to 70 bytes:
/// whole, they made the automaton three times bigger and slower to build.
const ANCHOR_MAX: usize = 16;

/// Literals that begin with the same [`ANCHOR_MAX`] bytes are cut there only if they
/// are at most this many: a family such as the 79 registry paths beginning
/// `\software\micros` stays whole, so that finding its prefix, in nearly every registry
/// value, does not mean comparing every member's rest (whole, they share the prefix's
/// states anyway).
const ANCHOR_MAX_SHARED: usize = 4;

/// Collects one case mode's literals.
#[derive(Debug)]
pub(crate) struct CaseGroupBuilder {
    fold: bool,
    exact: ExactMap<TestId>,
    prefix: Trie<TestId>,
    suffix: Trie<TestId>,
    /// Each distinct `contains` literal and its place in `targets`.
    index: FxHashMap<Vec<u8>, u32>,
    targets: Vec<Vec<Target>>,
}

impl CaseGroupBuilder {
    /// An empty group; `fold`: case-insensitive (literals are lowercased).
    pub(crate) fn new(fold: bool) -> Self {
        Self {
            fold,
            exact: ExactMap::default(),
            prefix: Trie::new(),
            suffix: Trie::new(),
            index: FxHashMap::default(),
            targets: Vec::new(),
        }
    }

    /// `bytes` as this group stores them: lowercased if it folds.
    fn key(&self, bytes: &[u8]) -> Vec<u8> {
        if self.fold {
            bytes.to_ascii_lowercase()
        } else {
            bytes.to_vec()
        }
    }

    /// Adds a literal test.
    pub(crate) fn literal(&mut self, bytes: &[u8], anchor: Anchor, test: TestId) {
        match anchor {
            Anchor::Exact => self.exact.entry(self.key(bytes)).or_default().push(test),
            Anchor::Prefix => self.prefix.insert(self.key(bytes).into_iter(), test),
            Anchor::Suffix => self.suffix.insert(self.key(bytes).into_iter().rev(), test),
            Anchor::Contains => self.scan(bytes, Target::Test(test)),
        }
    }

    /// Adds `bytes` to the `contains` scan, standing for `target`.
    pub(crate) fn scan(&mut self, bytes: &[u8], target: Target) {
        let key = self.key(bytes);
        let next = self.targets.len() as u32;
        let at = *self.index.entry(key).or_insert(next);
        if at == next {
            self.targets.push(Vec::new());
        }
        if let Some(list) = self.targets.get_mut(at as usize) {
            list.push(target);
        }
    }

    /// The literals sorted by anchor, ready for an automaton.
    pub(crate) fn prepare(self) -> PreparedGroup {
        // The literals in the order first added, so the automaton does not depend on
        // hashing.
        let mut literals: Vec<(Vec<u8>, u32)> = self.index.into_iter().collect();
        literals.sort_unstable_by_key(|(_, at)| *at);
        let mut sharing: FxHashMap<&[u8], usize> = FxHashMap::default();
        for (bytes, _) in &literals {
            if bytes.len() > ANCHOR_MAX {
                *sharing.entry(&bytes[..ANCHOR_MAX]).or_default() += 1;
            }
        }
        let cuts: Vec<usize> = literals
            .iter()
            .map(|(bytes, _)| match bytes.get(..ANCHOR_MAX) {
                Some(prefix)
                    if bytes.len() > ANCHOR_MAX
                        && sharing.get(prefix).is_some_and(|&n| n <= ANCHOR_MAX_SHARED) =>
                {
                    ANCHOR_MAX
                }
                _ => bytes.len(),
            })
            .collect();
        drop(sharing);
        let mut targets = self.targets;
        let mut anchors: Vec<Vec<u8>> = Vec::new();
        let mut anchor_index: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
        let mut by_anchor: Vec<Vec<Literal>> = Vec::new();
        for ((mut bytes, at), cut) in literals.into_iter().zip(cuts) {
            let rest = bytes.split_off(cut);
            let slot = *anchor_index.entry(bytes).or_insert_with_key(|anchor| {
                anchors.push(anchor.clone());
                by_anchor.push(Vec::new());
                anchors.len() - 1
            });
            let targets = targets
                .get_mut(at as usize)
                .map(std::mem::take)
                .unwrap_or_default();
            if let Some(list) = by_anchor.get_mut(slot) {
                list.push(Literal { rest, targets });
            }
        }
        PreparedGroup {
            exact: self.exact,
            prefix: self.prefix,
            suffix: self.suffix,
            anchors,
            by_anchor,
        }
    }
}

/// A case group's literals sorted by anchor, its automaton not built yet.
#[derive(Debug)]
pub(crate) struct PreparedGroup {
    exact: ExactMap<TestId>,
    prefix: Trie<TestId>,
    suffix: Trie<TestId>,
    anchors: Vec<Vec<u8>>,
    by_anchor: Vec<Vec<Literal>>,
}

impl PreparedGroup {
    /// The distinct anchors of its `contains` literals.
    pub(crate) fn anchors(&self) -> &[Vec<u8>] {
        &self.anchors
    }

    /// The group with an automaton of its own.
    pub(crate) fn build(self) -> Result<CaseGroup, String> {
        let gated = (1..=GATE_MAX_PATTERNS).contains(&self.anchors.len());
        let contains = if self.anchors.is_empty() {
            None
        } else {
            // Behind a gate the automaton scans only the values that hold an anchor: a
            // DFA, three times slower to build, would not pay for itself.
            let kind = gated.then_some(AhoCorasickKind::ContiguousNFA);
            Some(automaton(&self.anchors, kind)?)
        };
        let gate = if gated {
            aho_corasick::packed::Config::new()
                .builder()
                .extend(&self.anchors)
                .build()
        } else {
            None
        };
        Ok(CaseGroup {
            exact: self.exact,
            prefix: self.prefix,
            suffix: self.suffix,
            contains,
            gate,
            by_anchor: self.by_anchor,
        })
    }

    /// The group scanned by `shared`, whose anchors hold all of this group's.
    pub(crate) fn build_shared(self, shared: &SharedAnchors) -> CaseGroup {
        let mut by_anchor: Vec<Vec<Literal>> = Vec::new();
        by_anchor.resize_with(shared.anchors, Vec::new);
        for (anchor, literals) in self.anchors.iter().zip(self.by_anchor) {
            if let Some(list) = shared
                .index
                .get(anchor)
                .and_then(|&at| by_anchor.get_mut(at))
            {
                *list = literals;
            }
        }
        CaseGroup {
            exact: self.exact,
            prefix: self.prefix,
            suffix: self.suffix,
            contains: Some(shared.automaton.clone()),
            gate: None,
            by_anchor,
        }
    }
}

/// One automaton over the anchors of several groups.
#[derive(Debug)]
pub(crate) struct SharedAnchors {
    automaton: AhoCorasick,
    /// Anchor to its number in the automaton.
    index: FxHashMap<Vec<u8>, usize>,
    /// How many anchors the automaton has.
    anchors: usize,
}

impl SharedAnchors {
    /// One automaton over the anchors of every group of `groups`, each group's
    /// anchors in its order, the first group's first.
    pub(crate) fn new(groups: &[&PreparedGroup]) -> Result<Self, String> {
        let mut index: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
        let mut union: Vec<&[u8]> = Vec::new();
        for anchor in groups.iter().flat_map(|g| &g.anchors) {
            if !index.contains_key(anchor) {
                index.insert(anchor.clone(), union.len());
                union.push(anchor);
            }
        }
        Ok(Self {
            automaton: automaton(&union, None)?,
            anchors: union.len(),
            index,
        })
    }
}

/// The automaton that finds `anchors`, every occurrence of each; of `kind`, or the
/// kind the crate picks for their number.
fn automaton<P: AsRef<[u8]>>(
    anchors: &[P],
    kind: Option<AhoCorasickKind>,
) -> Result<AhoCorasick, String> {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::Standard)
        .kind(kind)
        .build(anchors)
        .map_err(|e| format!("building the literal automaton: {e}"))
}

impl CaseGroup {
    /// Whether `text` may hold one of the `contains` literals (false: it holds none).
    fn may_contain(&self, text: &[u8]) -> bool {
        self.gate.as_ref().is_none_or(|g| g.find(text).is_some())
    }

    /// Whether the group has no test at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.prefix.is_empty()
            && self.suffix.is_empty()
            && self.contains.is_none()
    }

    /// Whether the group has `contains` literals.
    pub(crate) fn scans(&self) -> bool {
        self.contains.is_some()
    }

    /// Whether every test of the group is a `contains` literal test.
    pub(crate) fn only_contains_tests(&self) -> bool {
        self.exact.is_empty()
            && self.prefix.is_empty()
            && self.suffix.is_empty()
            && self
                .by_anchor
                .iter()
                .flatten()
                .flat_map(|literal| &literal.targets)
                .all(|t| matches!(t, Target::Test(_)))
    }

    /// Calls `found(start, end, targets)` for every place in `text` where one of the
    /// `contains` literals is.
    pub(crate) fn find_literals<'g>(
        &'g self,
        text: &[u8],
        mut found: impl FnMut(usize, usize, &'g [Target]),
    ) {
        let Some(ac) = self.contains.as_ref().filter(|_| self.may_contain(text)) else {
            return;
        };
        for m in ac.find_overlapping_iter(text) {
            for literal in self
                .by_anchor
                .get(m.pattern().as_usize())
                .into_iter()
                .flatten()
            {
                let end = m.end() + literal.rest.len();
                if text.get(m.end()..end) == Some(literal.rest.as_slice()) {
                    found(m.start(), end, &literal.targets);
                }
            }
        }
    }

    /// Finds this group's literals in `value` (already lowercased if the group folds).
    pub(crate) fn run(
        &self,
        value: &[u8],
        mut hit: impl FnMut(TestId),
        candidates: &mut Vec<Target>,
    ) {
        if let Some(tests) = self.exact.get(value) {
            tests.iter().for_each(|t| hit(*t));
        }
        self.prefix.walk(value.iter().copied(), &mut hit);
        self.suffix.walk(value.iter().rev().copied(), &mut hit);
        self.find_literals(value, |_, _, targets| {
            for target in targets {
                match *target {
                    Target::Test(t) => hit(t),
                    other => candidates.push(other),
                }
            }
        });
    }
}
