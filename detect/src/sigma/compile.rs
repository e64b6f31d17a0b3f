//! Compiles a Sigma rule set into one [`Plan`]: every test of every rule, grouped by
//! field and deduplicated, plus one condition expression per (rule, route).

use rsigma_parser::SigmaRule;
use rustc_hash::FxHashMap;

use super::batch_fields::SlotTable;
use super::expr::{Expr, TestId};
use super::field_matcher::FieldMatcher;
use super::logsource::{LogsourceMap, Route, Routing};
use super::matcher_build::{build_matchers, Group};
use super::numbering::{number_rules, Numbered};
use super::pipeline::Pipeline;
use super::rule_meta::RuleMeta;
use super::test_spec::{ExpandValues, TestSpec};

/// Fields whose value says which Windows channel a row came from, in order of
/// precedence (`System_Channel` exists when EventData has its own `Channel`).
pub(crate) const CHANNEL_FIELDS: [&str; 2] = ["System_Channel", "Channel"];

/// One rule on one route.
#[derive(Debug)]
pub(crate) struct RuleRoute {
    /// Index into [`Plan::rules`].
    pub(crate) rule: u32,
    /// Index into [`Plan::routes`].
    pub(crate) route: u32,
    /// The rule's condition on that route.
    pub(crate) expr: Expr,
    /// Slots of the fields the rule reads, for the alert's matched fields.
    pub(crate) slots: Vec<u32>,
}

/// The compiled rule set.
#[derive(Debug)]
pub struct Plan {
    pub(crate) rules: Vec<RuleMeta>,
    pub(crate) routes: Vec<Route>,
    pub(crate) rule_routes: Vec<RuleRoute>,
    pub(crate) slots: SlotTable,
    pub(crate) matchers: Vec<SlotMatcher>,
    pub(crate) test_count: usize,
    pub(crate) channel_slots: Vec<u32>,
}

/// Tests on one field, and the routes whose rules read them.
#[derive(Debug)]
pub(crate) struct SlotMatcher {
    /// The field.
    pub(crate) slot: u32,
    /// Routes (ascending) whose rules read these tests: the field's values are
    /// matched only on rows one of them takes in.
    pub(crate) readers: Vec<u32>,
    /// The tests.
    pub(crate) matcher: FieldMatcher,
}

impl Plan {
    /// The rules of the plan, in load order.
    pub fn rules(&self) -> &[RuleMeta] {
        &self.rules
    }
}

/// How one rule fared in compilation.
#[derive(Debug, Clone, PartialEq)]
pub enum CompileOutcome {
    /// Compiled; how it is routed.
    Compiled(Routing),
    /// Not usable, and why.
    Unsupported(String),
}

/// Everything compilation needs besides the rules.
#[derive(Debug, Default, Clone)]
pub struct CompileOptions {
    /// Log-source routing.
    pub logsources: LogsourceMap,
    /// Processing pipelines applied in order.
    pub pipelines: Vec<Pipeline>,
    /// Placeholder values for `expand`.
    pub expand: ExpandValues,
    /// Meta filters added to the rules they name.
    pub filters: Vec<rsigma_parser::FilterRule>,
}

/// Compiles `rules`; returns the plan and, per rule, whether it compiled.
pub fn compile(
    rules: Vec<(SigmaRule, String)>,
    options: &CompileOptions,
) -> Result<(Plan, Vec<CompileOutcome>), String> {
    let Numbered {
        slots,
        tests,
        routes,
        metas,
        rule_routes,
        test_routes,
        outcomes,
    } = number_rules(rules, options, &CHANNEL_FIELDS);
    let test_count = tests.len();
    let keywords = slots.keywords();
    let readers_of = TestReaders::new(test_count, test_routes);
    // One matcher per field, but keyword tests are grouped by the routes that read
    // them (a rule on every Windows event must not make every keyword of every
    // service's rules run on every event), and their `contains` literals go apart:
    // those are found by one scan of a row's values together (see
    // `FieldMatcher::run_keyword_rows`).
    /// A test and its id.
    type IdTest = (TestId, TestSpec);
    let mut by_slot: Vec<Vec<IdTest>> = Vec::new();
    by_slot.resize_with(slots.len(), Vec::new);
    let mut by_readers: FxHashMap<(bool, &[u32]), Vec<IdTest>> = FxHashMap::default();
    for (id, (slot, spec)) in tests.into_iter().enumerate() {
        let id = id as TestId;
        let list = if Some(slot) == keywords {
            let key = (spec.is_plain_contains(), readers_of.of(id));
            by_readers.entry(key).or_default()
        } else {
            match by_slot.get_mut(slot as usize) {
                Some(list) => list,
                None => continue,
            }
        };
        list.push((id, spec));
    }
    let keyword_slot = keywords.unwrap_or(u32::MAX);
    let mut groups: Vec<Group> = by_slot
        .into_iter()
        .enumerate()
        .map(|(slot, tests)| (slot as u32, tests))
        .chain(by_readers.into_values().map(|tests| (keyword_slot, tests)))
        .filter(|(_, tests)| !tests.is_empty())
        .map(|(slot, tests)| {
            // `tests` are in id order: they were added so.
            // The routes of the rules whose conditions hold these tests.
            let mut readers: Vec<u32> = tests
                .iter()
                .flat_map(|(id, _)| readers_of.of(*id))
                .copied()
                .collect();
            readers.sort_unstable();
            readers.dedup();
            Group {
                slot,
                readers,
                tests,
            }
        })
        .collect();
    // Biggest groups first, one per task, so the threads stay balanced; ties by
    // their first test, so the order does not depend on hashing.
    groups.sort_by_key(|g| {
        (
            std::cmp::Reverse(g.tests.len()),
            g.tests.first().map(|(id, _)| *id),
        )
    });
    // Every field named by a `fieldref` already has a slot (see `Numbering::test`).
    let slot_table = &slots;
    let matchers = build_matchers(groups, &|name| slot_table.get(name).unwrap_or(u32::MAX))?;
    let channel_slots = CHANNEL_FIELDS.iter().filter_map(|f| slots.get(f)).collect();
    Ok((
        Plan {
            rules: metas,
            routes,
            rule_routes,
            slots,
            matchers,
            test_count,
            channel_slots,
        },
        outcomes,
    ))
}

/// Per test, the routes whose rules read it: ascending and distinct, as ranges of one
/// list.
struct TestReaders {
    /// Test `t`'s routes are `routes[starts[t]..starts[t + 1]]`.
    starts: Vec<u32>,
    routes: Vec<u32>,
}

impl TestReaders {
    /// From (test, route) pairs, in any order and repeated; `count` tests.
    fn new(count: usize, pairs: Vec<(TestId, u32)>) -> Self {
        let mut starts = vec![0u32; count + 1];
        for (test, _) in &pairs {
            if let Some(n) = starts.get_mut(*test as usize + 1) {
                *n += 1;
            }
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut next = starts.clone();
        let mut routes = vec![0u32; pairs.len()];
        for (test, route) in pairs {
            if let Some(at) = next.get_mut(test as usize) {
                if let Some(slot) = routes.get_mut(*at as usize) {
                    *slot = route;
                }
                *at += 1;
            }
        }
        // Each test's routes sorted and made distinct, moved down over the gaps.
        let mut kept = 0usize;
        for t in 0..count {
            let (from, to) = (starts[t] as usize, starts[t + 1] as usize);
            starts[t] = kept as u32;
            if let Some(range) = routes.get_mut(from..to) {
                range.sort_unstable();
            }
            let mut last = None;
            for i in from..to {
                let route = routes[i];
                if last != Some(route) {
                    routes[kept] = route;
                    kept += 1;
                    last = Some(route);
                }
            }
        }
        if let Some(end) = starts.last_mut() {
            *end = kept as u32;
        }
        routes.truncate(kept);
        Self { starts, routes }
    }

    /// The routes that read `test`.
    fn of(&self, test: TestId) -> &[u32] {
        let t = test as usize;
        match (self.starts.get(t), self.starts.get(t + 1)) {
            (Some(&from), Some(&to)) => self.routes.get(from as usize..to as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}
