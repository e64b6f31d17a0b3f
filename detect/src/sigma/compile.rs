//! Compiles a Sigma rule set into one [`Plan`]: every test of every rule, grouped by
//! field and deduplicated, plus one condition expression per (rule, route).

use std::collections::HashMap;

use rsigma_parser::{
    ConditionExpr, Detection, DetectionItem, Modifier, Quantifier, SigmaRule, SigmaValue,
};
use rustc_hash::FxHashMap;

use super::batch_fields::{SlotTable, KEYWORDS};
use super::expr::{Expr, TestId};
use super::field_matcher::FieldMatcher;
use super::logsource::{LogsourceKey, LogsourceMap, Route, RouteRef, Routing};
use super::pipeline::Pipeline;
use super::rule_meta::RuleMeta;
use super::test_spec::{value_tests, Anchor, ExpandValues, TestSpec};

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

/// Builds a plan step by step.
#[derive(Debug, Default)]
struct PlanBuilder {
    slots: SlotTable,
    tests: TestTable,
    routes: Vec<Route>,
    route_index: HashMap<RouteRef, u32>,
}

/// Every distinct test of the rule set, numbered in the order first seen.
#[derive(Debug, Default)]
struct TestTable {
    /// By test id: the field's slot and the test.
    specs: Vec<(u32, TestSpec)>,
    /// A leaf's hash (see [`leaf_hash`]) to the last test numbered with it.
    last: FxHashMap<u64, TestId>,
    /// By test id: the test numbered before it with the same hash, or `NO_TEST`.
    previous: Vec<TestId>,
}

/// End of a [`TestTable::previous`] chain.
const NO_TEST: TestId = TestId::MAX;

impl TestTable {
    /// The id of `(slot, spec)`, whose leaf hashed to `hash`, numbered if new.
    fn intern(&mut self, hash: u64, slot: u32, spec: TestSpec) -> TestId {
        let head = self.last.get(&hash).copied().unwrap_or(NO_TEST);
        let mut at = head;
        while let Some((s, known)) = self.specs.get(at as usize) {
            if *s == slot && *known == spec {
                return at;
            }
            at = self.previous.get(at as usize).copied().unwrap_or(NO_TEST);
        }
        let id = self.specs.len() as TestId;
        self.specs.push((slot, spec));
        self.previous.push(head);
        self.last.insert(hash, id);
        id
    }

    fn len(&self) -> usize {
        self.specs.len()
    }
}

/// The hash a leaf is interned by: equal leaves hash alike in every thread.
fn leaf_hash(leaf: &Leaf) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(leaf)
}

impl PlanBuilder {
    fn test(&mut self, hash: u64, leaf: Leaf) -> TestId {
        let (field, spec) = leaf;
        if let TestSpec::FieldRef { other, .. } = &spec {
            self.slots.slot(other);
        }
        let slot = self.slots.slot(&field);
        self.tests.intern(hash, slot, spec)
    }

    fn route(&mut self, map: &LogsourceMap, entry: RouteRef) -> u32 {
        if let Some(&r) = self.route_index.get(&entry) {
            return r;
        }
        let route = entry.resolve(map).into_owned();
        let r = self.routes.len() as u32;
        self.routes.push(route);
        self.route_index.insert(entry, r);
        r
    }
}

/// Compiles `rules`; returns the plan and, per rule, whether it compiled.
pub fn compile(
    rules: Vec<(SigmaRule, String)>,
    options: &CompileOptions,
) -> Result<(Plan, Vec<CompileOutcome>), String> {
    let mut b = PlanBuilder::default();
    for f in CHANNEL_FIELDS {
        b.slots.slot(f);
    }
    // Each rule on its own in parallel (its condition built, simplified and its
    // distinct tests hashed; the rule itself dropped there); then its tests and
    // routes are numbered in rule order, so the plan does not depend on the thread
    // count.
    let irs: Vec<Result<RuleIr, String>> = {
        use rayon::prelude::*;
        rules
            .into_par_iter()
            .map(|(rule, source)| rule_ir(rule, source, options))
            .collect()
    };
    let compiled = irs.iter().filter(|ir| ir.is_ok()).count();
    let mut metas = Vec::with_capacity(compiled);
    let mut rule_routes = Vec::new();
    // (test, route): a rule of `route` reads the test.
    let mut test_routes: Vec<(TestId, u32)> = Vec::new();
    let mut outcomes = Vec::with_capacity(irs.len());
    let mut ids: Vec<TestId> = Vec::new();
    for ir in irs {
        match ir {
            Ok(ir) => {
                let index = metas.len() as u32;
                metas.push(ir.meta);
                for route_ir in ir.routes {
                    let route = b.route(&options.logsources, route_ir.entry);
                    ids.clear();
                    for (hash, leaf) in route_ir.leaves {
                        let id = b.test(hash, leaf);
                        test_routes.push((id, route));
                        ids.push(id);
                    }
                    let mut expr = route_ir.expr;
                    expr.leaves_mut(&mut |leaf| {
                        *leaf = ids.get(*leaf as usize).copied().unwrap_or(NO_TEST)
                    });
                    let mut slots: Vec<u32> =
                        route_ir.fields.iter().map(|f| b.slots.slot(f)).collect();
                    slots.sort_unstable();
                    slots.dedup();
                    rule_routes.push(RuleRoute {
                        rule: index,
                        route,
                        expr,
                        slots,
                    });
                }
                outcomes.push(CompileOutcome::Compiled(ir.routing));
            }
            Err(reason) => outcomes.push(CompileOutcome::Unsupported(reason)),
        }
    }
    let test_count = b.tests.len();
    let keywords = b.slots.keywords();
    test_routes.sort_unstable();
    test_routes.dedup();
    let mut routes_of_test: Vec<Vec<u32>> = vec![Vec::new(); test_count];
    for (test, route) in test_routes {
        if let Some(list) = routes_of_test.get_mut(test as usize) {
            list.push(route);
        }
    }
    // One matcher per field, but keyword tests are grouped by the routes that read
    // them (a rule on every Windows event must not make every keyword of every
    // service's rules run on every event), and their `contains` literals go apart:
    // those are found by one scan of a row's values together (see
    // `FieldMatcher::run_keyword_rows`).
    type GroupKey = (u32, bool, Vec<u32>);
    let mut grouped: FxHashMap<GroupKey, Vec<(TestId, TestSpec)>> = FxHashMap::default();
    for (id, (slot, spec)) in b.tests.specs.into_iter().enumerate() {
        let id = id as TestId;
        let key = if Some(slot) == keywords {
            let routes = routes_of_test.get(id as usize).cloned().unwrap_or_default();
            (slot, spec.is_plain_contains(), routes)
        } else {
            (slot, false, Vec::new())
        };
        grouped.entry(key).or_default().push((id, spec));
    }
    /// Tests built into one matcher, and the routes that read them.
    struct Group {
        slot: u32,
        readers: Vec<u32>,
        tests: Vec<(TestId, TestSpec)>,
    }
    let mut groups: Vec<Group> = grouped
        .into_iter()
        .map(|((slot, _, _), tests)| {
            // `tests` are in id order: they were added so.
            // The routes of the rules whose conditions hold these tests.
            let mut readers: Vec<u32> = tests
                .iter()
                .filter_map(|(id, _)| routes_of_test.get(*id as usize))
                .flatten()
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
    // Every field named by a `fieldref` already has a slot (see `PlanBuilder::test`).
    let slots = &b.slots;
    let matchers = {
        use rayon::prelude::*;
        groups
            .into_par_iter()
            .with_max_len(1)
            .map(|g| {
                FieldMatcher::build(&g.tests, |name| slots.get(name).unwrap_or(u32::MAX)).map(
                    |matcher| SlotMatcher {
                        slot: g.slot,
                        readers: g.readers,
                        matcher,
                    },
                )
            })
            .collect::<Result<Vec<_>, String>>()?
    };
    let channel_slots = CHANNEL_FIELDS
        .iter()
        .filter_map(|f| b.slots.get(f))
        .collect();
    Ok((
        Plan {
            rules: metas,
            routes: b.routes,
            rule_routes,
            slots: b.slots,
            matchers,
            test_count,
            channel_slots,
        },
        outcomes,
    ))
}

/// A test not numbered yet: the field it reads and what it checks.
type Leaf = (String, TestSpec);

/// A rule compiled on its own.
struct RuleIr {
    /// What its alerts say of it.
    meta: RuleMeta,
    /// How it is routed.
    routing: Routing,
    /// Per route it is compiled for, its condition.
    routes: Vec<RouteIr>,
}

/// A rule's condition on one route, its tests not numbered yet.
struct RouteIr {
    /// The route.
    entry: RouteRef,
    /// The condition, simplified; a leaf is an index into `leaves`.
    expr: Expr<u32>,
    /// The condition's distinct tests, each with its [`leaf_hash`].
    leaves: Vec<(u64, Leaf)>,
    /// The fields the rule reads.
    fields: Vec<String>,
}

fn rule_ir(
    mut rule: SigmaRule,
    source: String,
    options: &CompileOptions,
) -> Result<RuleIr, String> {
    if rule
        .detection
        .condition_strings
        .iter()
        .any(|c| c.contains('|'))
    {
        return Err("aggregation in the condition (deprecated; use a correlation rule)".into());
    }
    if rule.detection.conditions.is_empty() {
        return Err("no condition".into());
    }
    let meta = RuleMeta::of(&rule, source);
    super::filters::apply_filters(&options.filters, &mut rule);
    for p in &options.pipelines {
        p.apply(&mut rule)?;
    }
    let key = LogsourceKey::of(&rule.logsource);
    let routing = options.logsources.routing(&key);
    let entries = routing.routes();
    let mut routes = Vec::with_capacity(entries.len());
    for entry in entries {
        let route = entry.resolve(&options.logsources);
        let mut ctx = RuleCtx {
            rule: &rule,
            route: &route,
            expand: &options.expand,
            slots: Vec::new(),
            cache: HashMap::new(),
        };
        let mut conditions = Vec::new();
        for c in &rule.detection.conditions {
            conditions.push(ctx.condition(c)?);
        }
        let mut parts = vec![Expr::Or(conditions)];
        for (field, values) in &route.conditions {
            let alts = values
                .iter()
                .map(|v| {
                    Expr::Test((
                        field.clone(),
                        TestSpec::Literal {
                            bytes: v.as_bytes().to_vec(),
                            anchor: Anchor::Exact,
                            cased: false,
                        },
                    ))
                })
                .collect();
            parts.push(Expr::Or(alts));
        }
        let fields = ctx.slots;
        let (expr, leaves) = distinct_leaves(Expr::And(parts).simplify());
        routes.push(RouteIr {
            entry,
            expr,
            leaves,
            fields,
        });
    }
    Ok(RuleIr {
        meta,
        routing,
        routes,
    })
}

/// `expr` with each leaf replaced by its index among the distinct leaves, and those
/// leaves with their hashes, in the order first met.
fn distinct_leaves(expr: Expr<Leaf>) -> (Expr<u32>, Vec<(u64, Leaf)>) {
    let mut leaves: Vec<(u64, Leaf)> = Vec::new();
    // Hash to the first leaf with it; leaves that share a hash but differ are kept
    // apart (numbering finds them equal or not).
    let mut first: FxHashMap<u64, u32> = FxHashMap::default();
    let expr = expr.map_tests(&mut |leaf: Leaf| {
        let hash = leaf_hash(&leaf);
        if let Some(&at) = first.get(&hash) {
            if leaves.get(at as usize).is_some_and(|(_, l)| *l == leaf) {
                return at;
            }
        }
        let at = leaves.len() as u32;
        first.entry(hash).or_insert(at);
        leaves.push((hash, leaf));
        at
    });
    (expr, leaves)
}

struct RuleCtx<'a> {
    rule: &'a SigmaRule,
    route: &'a Route,
    expand: &'a ExpandValues,
    /// Fields the rule reads (not keywords), for the alert's matched fields.
    slots: Vec<String>,
    cache: HashMap<String, Expr<Leaf>>,
}

impl RuleCtx<'_> {
    fn mapped(&self, name: &str) -> String {
        self.route
            .field_mappings
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }

    fn condition(&mut self, c: &ConditionExpr) -> Result<Expr<Leaf>, String> {
        Ok(match c {
            ConditionExpr::And(parts) => Expr::And(
                parts
                    .iter()
                    .map(|p| self.condition(p))
                    .collect::<Result<_, _>>()?,
            ),
            ConditionExpr::Or(parts) => Expr::Or(
                parts
                    .iter()
                    .map(|p| self.condition(p))
                    .collect::<Result<_, _>>()?,
            ),
            ConditionExpr::Not(inner) => Expr::Not(Box::new(self.condition(inner)?)),
            ConditionExpr::Identifier(name) => self.named(name)?,
            ConditionExpr::Selector {
                quantifier,
                pattern,
            } => {
                let mut names: Vec<&String> = self
                    .rule
                    .detection
                    .named
                    .keys()
                    .filter(|n| pattern.matches_detection_name(n))
                    .collect();
                names.sort();
                if names.is_empty() {
                    return Err(format!("condition selects no detection: `{pattern}`"));
                }
                let parts = names
                    .into_iter()
                    .map(|n| self.named(n))
                    .collect::<Result<Vec<_>, _>>()?;
                match quantifier {
                    Quantifier::Any => Expr::Or(parts),
                    Quantifier::All => Expr::And(parts),
                    Quantifier::Count(n) => {
                        Expr::AtLeast(usize::try_from(*n).unwrap_or(usize::MAX), parts)
                    }
                }
            }
        })
    }

    fn named(&mut self, name: &str) -> Result<Expr<Leaf>, String> {
        if let Some(e) = self.cache.get(name) {
            return Ok(e.clone());
        }
        let det = self
            .rule
            .detection
            .named
            .get(name)
            .ok_or_else(|| format!("condition names `{name}`, which is not defined"))?;
        let expr = self.detection(det)?;
        self.cache.insert(name.to_owned(), expr.clone());
        Ok(expr)
    }

    fn detection(&mut self, d: &Detection) -> Result<Expr<Leaf>, String> {
        Ok(match d {
            Detection::AllOf(items) => Expr::And(
                items
                    .iter()
                    .map(|i| self.item(i))
                    .collect::<Result<_, _>>()?,
            ),
            Detection::AnyOf(dets) => Expr::Or(
                dets.iter()
                    .map(|x| self.detection(x))
                    .collect::<Result<_, _>>()?,
            ),
            Detection::And(dets) => Expr::And(
                dets.iter()
                    .map(|x| self.detection(x))
                    .collect::<Result<_, _>>()?,
            ),
            Detection::Keywords(values) => {
                let mut alts = Vec::new();
                for v in values {
                    alts.push(self.values_expr(None, v, &[Modifier::Contains])?);
                }
                Expr::Or(alts)
            }
            Detection::ArrayMatch { .. } | Detection::Conditional { .. } => {
                return Err("array matching blocks (`field[any]`) are not supported".into())
            }
        })
    }

    fn item(&mut self, item: &DetectionItem) -> Result<Expr<Leaf>, String> {
        let mut modifiers = item.field.modifiers.clone();
        if item.field.name.is_none()
            && !modifiers.iter().any(|m| {
                matches!(
                    m,
                    Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith | Modifier::Re
                )
            })
        {
            modifiers.push(Modifier::Contains);
        }
        let field = item.field.name.as_deref();
        if item.values.is_empty() {
            return Ok(Expr::False);
        }
        let mut parts = Vec::with_capacity(item.values.len());
        for v in &item.values {
            parts.push(self.values_expr(field, v, &modifiers)?);
        }
        let joined = if modifiers.contains(&Modifier::All) {
            Expr::And(parts)
        } else {
            Expr::Or(parts)
        };
        if modifiers.contains(&Modifier::Neq) {
            let exists = self.values_expr(field, &SigmaValue::Bool(true), &[Modifier::Exists])?;
            return Ok(Expr::And(vec![exists, Expr::Not(Box::new(joined))]));
        }
        Ok(joined)
    }

    fn values_expr(
        &mut self,
        field: Option<&str>,
        value: &SigmaValue,
        modifiers: &[Modifier],
    ) -> Result<Expr<Leaf>, String> {
        let field = match field {
            Some(f) => self.mapped(f),
            None => KEYWORDS.to_owned(),
        };
        let mut specs = value_tests(value, modifiers, self.expand)?;
        for s in &mut specs {
            if let TestSpec::FieldRef { other, .. } = s {
                *other = self.mapped(other);
            }
        }
        if field != KEYWORDS {
            self.slots.push(field.clone());
        }
        Ok(Expr::Or(
            specs
                .into_iter()
                .map(|s| Expr::Test((field.clone(), s)))
                .collect(),
        ))
    }
}
