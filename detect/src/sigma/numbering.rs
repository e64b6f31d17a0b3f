//! Numbering a rule set: rules compiled on their own ([`rule_ir`]) are taken in load
//! order, and their tests, fields and routes get the numbers the plan uses. The first
//! rules are numbered while later ones still compile.

use std::collections::{BTreeMap, HashMap};

use rsigma_parser::SigmaRule;
use rustc_hash::FxHashMap;

use super::batch_fields::SlotTable;
use super::compile::{CompileOptions, CompileOutcome, RuleRoute};
use super::expr::TestId;
use super::logsource::{LogsourceMap, Route, RouteRef};
use super::rule_ir::{rule_ir, RouteLeaf, RuleIr};
use super::rule_meta::RuleMeta;
use super::test_spec::TestSpec;

/// A rule set numbered.
#[derive(Debug, Default)]
pub(crate) struct Numbered {
    /// The fields rules read.
    pub(crate) slots: SlotTable,
    /// By test id: the field's slot and the test.
    pub(crate) tests: Vec<(u32, TestSpec)>,
    /// The routes, by number.
    pub(crate) routes: Vec<Route>,
    /// The compiled rules, in load order.
    pub(crate) metas: Vec<RuleMeta>,
    /// Each compiled rule on each of its routes.
    pub(crate) rule_routes: Vec<RuleRoute>,
    /// (test, route): a rule of `route` reads the test.
    pub(crate) test_routes: Vec<(TestId, u32)>,
    /// Per rule in load order, whether it compiled.
    pub(crate) outcomes: Vec<CompileOutcome>,
}

/// Compiles each rule on its own, in parallel, and numbers them in load order, so the
/// numbers do not depend on the thread count. `fields` get slots before any rule.
pub(crate) fn number_rules(
    rules: Vec<(SigmaRule, String)>,
    options: &CompileOptions,
    fields: &[&str],
) -> Numbered {
    let mut n = Numbering {
        out: Numbered {
            outcomes: Vec::with_capacity(rules.len()),
            ..Numbered::default()
        },
        tests: TestTable::default(),
        route_index: HashMap::new(),
        ids: Vec::new(),
        field_slots: Vec::new(),
        map: &options.logsources,
    };
    for f in fields {
        n.out.slots.slot(f);
    }
    each_in_order(rules, options, |ir| n.add(ir));
    let mut out = n.out;
    out.tests = n.tests.specs;
    out
}

/// Rules compiled per task: numbering waits for whole tasks.
const CHUNK: usize = 32;

/// Calls `f` with each rule compiled ([`rule_ir`]), in rule order; the rules compile
/// on the thread pool while `f` runs on this thread.
fn each_in_order(
    rules: Vec<(SigmaRule, String)>,
    options: &CompileOptions,
    mut f: impl FnMut(Result<RuleIr, String>),
) {
    use rayon::prelude::*;
    if rayon::current_thread_index().is_some() {
        // On a pool thread, waiting for the pool could hold its only thread: compile
        // every rule first.
        let irs: Vec<Result<RuleIr, String>> = rules
            .into_par_iter()
            .map(|(rule, source)| rule_ir(rule, source, options))
            .collect();
        irs.into_iter().for_each(f);
        return;
    }
    let mut chunks: Vec<Vec<(SigmaRule, String)>> = Vec::new();
    let mut rest = rules.into_iter();
    loop {
        let chunk: Vec<_> = rest.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Vec<Result<RuleIr, String>>)>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            chunks
                .into_par_iter()
                .enumerate()
                .for_each_with(tx, |tx, (i, chunk)| {
                    let irs = chunk
                        .into_iter()
                        .map(|(rule, source)| rule_ir(rule, source, options))
                        .collect();
                    // The receiver stays until every sender is gone.
                    let _ = tx.send((i, irs));
                });
        });
        // Chunks arrive in any order; they are taken in theirs.
        let mut pending: BTreeMap<usize, Vec<Result<RuleIr, String>>> = BTreeMap::new();
        let mut next = 0;
        for (i, irs) in rx {
            pending.insert(i, irs);
            while let Some(irs) = pending.remove(&next) {
                irs.into_iter().for_each(&mut f);
                next += 1;
            }
        }
    });
}

/// The state of numbering.
struct Numbering<'o> {
    out: Numbered,
    tests: TestTable,
    route_index: HashMap<RouteRef, u32>,
    /// Scratch: the ids of one route's leaves.
    ids: Vec<TestId>,
    /// Scratch: the slots of one route's leaf fields.
    field_slots: Vec<u32>,
    map: &'o LogsourceMap,
}

impl Numbering<'_> {
    /// Numbers one more rule.
    fn add(&mut self, ir: Result<RuleIr, String>) {
        let ir = match ir {
            Ok(ir) => ir,
            Err(reason) => {
                self.out.outcomes.push(CompileOutcome::Unsupported(reason));
                return;
            }
        };
        let index = self.out.metas.len() as u32;
        self.out.metas.push(ir.meta);
        for route_ir in ir.routes {
            let route = self.route(route_ir.entry);
            self.ids.clear();
            self.field_slots.clear();
            for name in &route_ir.leaf_fields {
                let slot = self.out.slots.slot(name);
                self.field_slots.push(slot);
            }
            for leaf in route_ir.leaves {
                let id = self.test(leaf);
                self.out.test_routes.push((id, route));
                self.ids.push(id);
            }
            let mut expr = route_ir.expr;
            let ids = &self.ids;
            expr.leaves_mut(&mut |leaf| {
                *leaf = ids.get(*leaf as usize).copied().unwrap_or(NO_TEST)
            });
            let mut slots: Vec<u32> = route_ir
                .fields
                .iter()
                .map(|f| self.out.slots.slot(f))
                .collect();
            slots.sort_unstable();
            slots.dedup();
            self.out.rule_routes.push(RuleRoute {
                rule: index,
                route,
                expr,
                slots,
            });
        }
        self.out.outcomes.push(CompileOutcome::Compiled(ir.routing));
    }

    fn test(&mut self, leaf: RouteLeaf) -> TestId {
        if let TestSpec::FieldRef { other, .. } = &leaf.spec {
            self.out.slots.slot(other);
        }
        let slot = self
            .field_slots
            .get(leaf.field as usize)
            .copied()
            .unwrap_or(u32::MAX);
        self.tests.intern(leaf.hash, slot, leaf.spec)
    }

    fn route(&mut self, entry: RouteRef) -> u32 {
        if let Some(&r) = self.route_index.get(&entry) {
            return r;
        }
        let route = entry.resolve(self.map).into_owned();
        let r = self.out.routes.len() as u32;
        self.out.routes.push(route);
        self.route_index.insert(entry, r);
        r
    }
}

/// Every distinct test of the rule set, numbered in the order first seen.
#[derive(Debug, Default)]
struct TestTable {
    /// By test id: the field's slot and the test.
    specs: Vec<(u32, TestSpec)>,
    /// A leaf's hash ([`super::rule_ir::leaf_hash`]) to the last test numbered with it.
    last: FxHashMap<u64, TestId>,
    /// By test id: the test numbered before it with the same hash, or `NO_TEST`.
    previous: Vec<TestId>,
}

/// No test: the end of a [`TestTable::previous`] chain.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigma::load::LoadedRules;
    use crate::sigma::logsource::LogsourceMap;

    /// Rules of several log sources and routes, more than one chunk of them.
    fn rules() -> Vec<(SigmaRule, String)> {
        let mut loaded = LoadedRules::default();
        for i in 0..(CHUNK * 3 + 5) {
            let yaml = format!(
                "title: r{i}\nid: r{i}\nlogsource: {{product: windows, category: process_creation}}\ndetection:\n    s:\n        Image|endswith: '\\\\x{}.exe'\n        CommandLine|contains: ['-a', 'run{i}']\n    condition: s\n",
                i % 7
            );
            loaded.add_text(&yaml, &format!("r{i}.yml"), format!("r{i}.yml").into());
        }
        loaded.rules
    }

    fn options() -> CompileOptions {
        let map = "logsources:\n  - logsource: {product: windows, category: process_creation}\n    when: {channel: [Security], event_id: [4688]}\n    field_mappings: {Image: NewProcessName}\n  - logsource: {product: windows, category: process_creation}\n    when: {channel: [Microsoft-Windows-Sysmon/Operational], event_id: [1]}\n";
        CompileOptions {
            logsources: LogsourceMap::from_yaml(map).expect("map"),
            ..CompileOptions::default()
        }
    }

    #[test]
    fn numbers_are_the_same_on_a_pool_thread_and_off_it() {
        let options = options();
        let off = number_rules(rules(), &options, &["Channel"]);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        // On the pool's only thread: the path that compiles every rule first.
        let on = pool.install(|| number_rules(rules(), &options, &["Channel"]));
        assert_eq!(off.metas.len(), CHUNK * 3 + 5);
        assert_eq!(off.metas, on.metas);
        assert_eq!(off.tests, on.tests);
        assert_eq!(off.outcomes, on.outcomes);
        assert_eq!(off.test_routes, on.test_routes);
        let exprs = |n: &Numbered| -> Vec<String> {
            n.rule_routes
                .iter()
                .map(|r| format!("{} {} {:?} {:?}", r.rule, r.route, r.expr, r.slots))
                .collect()
        };
        assert_eq!(exprs(&off), exprs(&on));
        // Two routes per rule, the Security one reading `NewProcessName`.
        assert_eq!(off.rule_routes.len(), 2 * (CHUNK * 3 + 5));
        assert!(off.slots.get("NewProcessName").is_some());
        // `-a` is one test however many rules hold it, per field.
        let dash_a = off
            .tests
            .iter()
            .filter(|(_, t)| matches!(t, TestSpec::Literal { bytes, .. } if bytes == b"-a"))
            .count();
        assert_eq!(dash_a, 1);
    }
}
