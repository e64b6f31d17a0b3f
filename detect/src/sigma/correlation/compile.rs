//! Binding correlation rules to the compiled detection rules they name.

use std::collections::HashMap;

use rsigma_parser::{
    ConditionExpr, ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType,
};
use rustc_hash::{FxHashMap, FxHashSet};
use vedette_core::alert::Level;

use crate::sigma::rule_meta::RuleMeta;

/// What a correlation decides on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    /// Predicates on a number (count, distinct values, sum, ...).
    Threshold(Vec<(ConditionOperator, f64)>),
    /// Every named rule must be present.
    AllRules,
    /// A boolean expression over rule names (temporal types).
    Expression(ConditionExpr),
}

/// One compiled correlation.
#[derive(Debug, Clone)]
pub(crate) struct Correlation {
    pub(crate) meta: RuleMeta,
    pub(crate) kind: CorrelationType,
    /// Number of rules it names.
    pub(crate) rule_count: usize,
    /// Reference (id or name) of each named rule, by position.
    pub(crate) references: Vec<String>,
    /// Group-by field names per position (aliases resolved), and the group-by names.
    pub(crate) group_fields: Vec<Vec<String>>,
    pub(crate) group_names: Vec<String>,
    /// The condition's `field`, per position (aliases resolved).
    pub(crate) value_field: Vec<Option<String>>,
    pub(crate) timespan_ms: i64,
    pub(crate) check: Check,
    pub(crate) percentile: Option<f64>,
}

/// The correlation rules of a rule set, bound to its detection rules.
#[derive(Debug, Clone, Default)]
pub struct CorrelationSet {
    pub(crate) correlations: Vec<Correlation>,
    /// Detection rule index to (correlation, position) pairs.
    pub(crate) by_rule: FxHashMap<u32, Vec<(u32, u32)>>,
    /// Detection rules named by a correlation without `generate: true`: their hits
    /// feed the correlation but raise no alert of their own.
    pub(crate) silent: FxHashSet<u32>,
}

impl CorrelationSet {
    /// Number of correlations.
    pub fn len(&self) -> usize {
        self.correlations.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.correlations.is_empty()
    }

    /// Whether hits of detection rule `rule` should raise alerts of their own.
    pub fn generates(&self, rule: u32) -> bool {
        !self.silent.contains(&rule)
    }

    /// Metadata of correlation `index`.
    pub fn meta(&self, index: u32) -> Option<&RuleMeta> {
        self.correlations.get(index as usize).map(|c| &c.meta)
    }
}

/// Compiles `correlations` against the compiled detection `rules`; returns the set
/// and, per correlation in order, `None` or why it is unsupported.
pub fn compile_correlations(
    correlations: Vec<(CorrelationRule, String)>,
    rules: &[RuleMeta],
) -> (CorrelationSet, Vec<Option<String>>) {
    let mut by_ref: HashMap<&str, u32> = HashMap::new();
    for (i, r) in rules.iter().enumerate() {
        by_ref.insert(r.id.as_str(), i as u32);
        if let Some(n) = &r.name {
            by_ref.insert(n.as_str(), i as u32);
        }
    }
    let correlation_refs: FxHashSet<String> = correlations
        .iter()
        .flat_map(|(c, _)| c.id.iter().chain(c.name.iter()).cloned())
        .collect();
    let mut set = CorrelationSet::default();
    let mut outcomes = Vec::with_capacity(correlations.len());
    for (c, source) in correlations {
        match compile_one(&c, source, &by_ref, &correlation_refs) {
            Ok((compiled, targets)) => {
                let index = set.correlations.len() as u32;
                for (pos, rule) in targets.iter().enumerate() {
                    set.by_rule
                        .entry(*rule)
                        .or_default()
                        .push((index, pos as u32));
                    if !c.generate {
                        set.silent.insert(*rule);
                    }
                }
                set.correlations.push(compiled);
                outcomes.push(None);
            }
            Err(reason) => outcomes.push(Some(reason)),
        }
    }
    (set, outcomes)
}

fn compile_one(
    c: &CorrelationRule,
    source: String,
    by_ref: &HashMap<&str, u32>,
    correlation_refs: &FxHashSet<String>,
) -> Result<(Correlation, Vec<u32>), String> {
    if c.rules.is_empty() {
        return Err("names no rules".into());
    }
    let mut targets = Vec::with_capacity(c.rules.len());
    for r in &c.rules {
        match by_ref.get(r.as_str()) {
            Some(i) => targets.push(*i),
            None if correlation_refs.contains(r) => {
                return Err(format!(
                    "names correlation `{r}`: chained correlations are not supported"
                ))
            }
            None => return Err(format!("names rule `{r}`, which is not loaded")),
        }
    }
    if c.window != rsigma_parser::WindowMode::Sliding {
        return Err(format!(
            "window mode `{}` is not supported (sliding only)",
            c.window.as_str()
        ));
    }
    let timespan_ms = i64::try_from(c.timespan.seconds)
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("bad timespan `{}`", c.timespan.original))?;
    // Field name for position `pos`: an alias resolves per rule reference.
    let resolve = |name: &str, pos: usize| -> String {
        let reference = &c.rules[pos];
        c.aliases
            .iter()
            .find(|a| a.alias == name)
            .and_then(|a| a.mapping.get(reference))
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    };
    let group_fields = (0..c.rules.len())
        .map(|pos| c.group_by.iter().map(|g| resolve(g, pos)).collect())
        .collect();
    let temporal = matches!(
        c.correlation_type,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    );
    let (check, field, percentile) = match &c.condition {
        CorrelationCondition::Threshold {
            predicates,
            field,
            percentile,
        } => {
            let preds: Vec<(ConditionOperator, f64)> =
                predicates.iter().map(|(op, v)| (*op, *v as f64)).collect();
            let default_all = temporal && preds == [(ConditionOperator::Gte, 1.0)];
            let check = if default_all {
                Check::AllRules
            } else {
                Check::Threshold(preds)
            };
            let field = match field.as_deref() {
                Some([one]) => Some(one.clone()),
                Some([]) | None => None,
                Some(_) => return Err("a condition on several fields is not supported".into()),
            };
            (check, field, percentile.map(|p| p as f64))
        }
        CorrelationCondition::Extended(expr) if temporal => {
            (Check::Expression(expr.clone()), None, None)
        }
        CorrelationCondition::Extended(_) => {
            return Err("a condition expression needs a temporal correlation".into())
        }
    };
    let needs_field = matches!(
        c.correlation_type,
        CorrelationType::ValueCount
            | CorrelationType::ValueSum
            | CorrelationType::ValueAvg
            | CorrelationType::ValuePercentile
            | CorrelationType::ValueMedian
    );
    if needs_field && field.is_none() {
        return Err(format!(
            "`{}` needs a `field` in its condition",
            c.correlation_type.as_str()
        ));
    }
    if c.correlation_type == CorrelationType::ValuePercentile && percentile.is_none() {
        return Err("`value_percentile` needs `percentile` in its condition".into());
    }
    let value_field = (0..c.rules.len())
        .map(|pos| field.as_deref().map(|f| resolve(f, pos)))
        .collect();
    let level = c
        .level
        .as_ref()
        .and_then(|l| l.as_str().parse().ok())
        .unwrap_or(Level::Medium);
    let meta = RuleMeta {
        id: c.id.clone().unwrap_or_else(|| c.title.clone()),
        title: c.title.clone(),
        name: c.name.clone(),
        author: c.author.clone(),
        level,
        tags: c.tags.clone(),
        source,
    };
    Ok((
        Correlation {
            meta,
            kind: c.correlation_type,
            rule_count: c.rules.len(),
            references: c.rules.clone(),
            group_fields,
            group_names: c.group_by.clone(),
            value_field,
            timespan_ms,
            check,
            percentile,
        },
        targets,
    ))
}
