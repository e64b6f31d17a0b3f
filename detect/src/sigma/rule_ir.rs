//! One Sigma rule compiled on its own, before the rule set is numbered: per route
//! its condition, simplified, over its distinct tests (each hashed for numbering),
//! and the fields it reads. Built in parallel, one rule per task.

use std::collections::HashMap;

use rsigma_parser::{
    ConditionExpr, Detection, DetectionItem, Modifier, Quantifier, SigmaRule, SigmaValue,
};
use rustc_hash::FxHashMap;

use super::batch_fields::KEYWORDS;
use super::compile::CompileOptions;
use super::expr::Expr;
use super::logsource::{LogsourceKey, RouteRef, Routing};
use super::rule_meta::RuleMeta;
use super::test_spec::{value_tests, Anchor, ExpandValues, TestSpec};

/// A test not numbered yet: the field it reads and what it checks.
pub(crate) type Leaf = (String, TestSpec);

/// A rule compiled on its own.
pub(crate) struct RuleIr {
    /// What its alerts say of it.
    pub(crate) meta: RuleMeta,
    /// How it is routed.
    pub(crate) routing: Routing,
    /// Per route it is compiled for, its condition.
    pub(crate) routes: Vec<RouteIr>,
}

/// A rule's condition on one route, its tests not numbered yet.
pub(crate) struct RouteIr {
    /// The route.
    pub(crate) entry: RouteRef,
    /// The condition, simplified; a leaf is an index into `leaves`.
    pub(crate) expr: Expr<u32>,
    /// The condition's distinct tests.
    pub(crate) leaves: Vec<RouteLeaf>,
    /// The fields the tests read, by [`RouteLeaf::field`].
    pub(crate) leaf_fields: Vec<String>,
    /// The fields the rule reads.
    pub(crate) fields: Vec<String>,
}

/// A test not numbered yet.
pub(crate) struct RouteLeaf {
    /// The [`leaf_hash`] of the test with its field's name.
    pub(crate) hash: u64,
    /// Its field, by place in [`RouteIr::leaf_fields`].
    pub(crate) field: u32,
    /// What it checks.
    pub(crate) spec: TestSpec,
}

/// Compiles one rule on its own, with the filters and pipelines of `options` applied:
/// its metadata, routing and, per route, its condition.
pub(crate) fn rule_ir(
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
    // The condition is built once, with the rule's own field names, then renamed per
    // route: the values' expansions (windash, base64offset, ...) do not depend on it.
    let mut ctx = RuleCtx {
        rule: &rule,
        expand: &options.expand,
        slots: Vec::new(),
        cache: HashMap::new(),
    };
    let mut conditions = Vec::new();
    for c in &rule.detection.conditions {
        conditions.push(ctx.condition(c)?);
    }
    let mut condition = Some(Expr::Or(conditions));
    let rule_fields = ctx.slots;
    let last = entries.len().saturating_sub(1);
    let mut routes = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let route = entry.resolve(&options.logsources);
        let mut expr = if i == last {
            condition.take().unwrap_or(Expr::False)
        } else {
            condition.clone().unwrap_or(Expr::False)
        };
        let mut fields = rule_fields.clone();
        if !route.field_mappings.is_empty() {
            let rename = |name: &mut String| {
                if let Some(to) = route.field_mappings.get(name.as_str()) {
                    name.clone_from(to);
                }
            };
            expr.leaves_mut(&mut |(field, spec): &mut Leaf| {
                if field != KEYWORDS {
                    rename(field);
                }
                if let TestSpec::FieldRef { other, .. } = spec {
                    rename(other);
                }
            });
            fields.iter_mut().for_each(rename);
        }
        let mut parts = vec![expr];
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
        let (expr, leaves, leaf_fields) = distinct_leaves(Expr::And(parts).simplify());
        routes.push(RouteIr {
            entry,
            expr,
            leaves,
            leaf_fields,
            fields,
        });
    }
    Ok(RuleIr {
        meta,
        routing,
        routes,
    })
}

/// The hash a leaf is numbered by: equal leaves hash alike in every thread.
pub(crate) fn leaf_hash(leaf: &Leaf) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(leaf)
}

/// `expr` with each leaf replaced by its index among the distinct leaves, and those
/// leaves with their hashes, in the order first met.
fn distinct_leaves(expr: Expr<Leaf>) -> (Expr<u32>, Vec<RouteLeaf>, Vec<String>) {
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
    // Field names kept once: a rule reads few fields.
    let mut names: Vec<String> = Vec::new();
    let leaves = leaves
        .into_iter()
        .map(|(hash, (name, spec))| {
            let field = match names.iter().position(|n| *n == name) {
                Some(at) => at,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            };
            RouteLeaf {
                hash,
                field: field as u32,
                spec,
            }
        })
        .collect();
    (expr, leaves, names)
}

/// Builds a rule's condition, fields named as the rule names them.
struct RuleCtx<'a> {
    rule: &'a SigmaRule,
    expand: &'a ExpandValues,
    /// Fields the rule reads (not keywords), for the alert's matched fields.
    slots: Vec<String>,
    cache: HashMap<String, Expr<Leaf>>,
}

impl RuleCtx<'_> {
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
        // Kept only for a detection the conditions name more than once: a copy of
        // every detection's expression would double the work of most rules.
        let uses: usize = self
            .rule
            .detection
            .conditions
            .iter()
            .map(|c| uses_of(c, name))
            .sum();
        if uses > 1 {
            self.cache.insert(name.to_owned(), expr.clone());
        }
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
        let field = field.unwrap_or(KEYWORDS).to_owned();
        let specs = value_tests(value, modifiers, self.expand)?;
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

/// How many times `condition` takes the detection `name` (by name or by a selector).
fn uses_of(condition: &ConditionExpr, name: &str) -> usize {
    match condition {
        ConditionExpr::And(parts) | ConditionExpr::Or(parts) => {
            parts.iter().map(|p| uses_of(p, name)).sum()
        }
        ConditionExpr::Not(inner) => uses_of(inner, name),
        ConditionExpr::Identifier(n) => usize::from(n == name),
        ConditionExpr::Selector { pattern, .. } => {
            usize::from(pattern.matches_detection_name(name))
        }
    }
}
