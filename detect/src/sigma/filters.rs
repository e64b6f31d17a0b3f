//! Sigma meta filters: a filter's detections and condition are added to every rule it
//! names (by id or name, or all rules with `rules: any`) whose log source matches the
//! filter's; the rule then fires only when its own condition and the filter's hold.

use rsigma_parser::{ConditionExpr, FilterRule, FilterRuleTarget, SelectorPattern, SigmaRule};

use super::logsource::logsource_has;

/// Whether `filter` applies to `rule`.
fn applies(filter: &FilterRule, rule: &SigmaRule) -> bool {
    let named = match &filter.rules {
        FilterRuleTarget::Any => true,
        FilterRuleTarget::Specific(refs) => refs.iter().any(|r| {
            rule.id.as_deref() == Some(r.as_str()) || rule.name.as_deref() == Some(r.as_str())
        }),
    };
    let Some(ls) = &filter.logsource else {
        return named;
    };
    named && logsource_has(&ls.product, &ls.category, &ls.service, &rule.logsource)
}

/// The condition with every detection name prefixed; `them` becomes every name of the
/// filter.
fn prefixed(c: &ConditionExpr, prefix: &str) -> ConditionExpr {
    match c {
        ConditionExpr::And(p) => {
            ConditionExpr::And(p.iter().map(|x| prefixed(x, prefix)).collect())
        }
        ConditionExpr::Or(p) => ConditionExpr::Or(p.iter().map(|x| prefixed(x, prefix)).collect()),
        ConditionExpr::Not(x) => ConditionExpr::Not(Box::new(prefixed(x, prefix))),
        ConditionExpr::Identifier(n) => ConditionExpr::Identifier(format!("{prefix}{n}")),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => ConditionExpr::Selector {
            quantifier: quantifier.clone(),
            pattern: match pattern {
                SelectorPattern::Them => SelectorPattern::Pattern(format!("{prefix}*")),
                SelectorPattern::Pattern(p) => SelectorPattern::Pattern(format!("{prefix}{p}")),
            },
        },
    }
}

/// Adds every applicable filter to `rule`; returns how many applied.
pub(crate) fn apply_filters(filters: &[FilterRule], rule: &mut SigmaRule) -> usize {
    let mut applied = 0;
    for (i, f) in filters.iter().enumerate() {
        if !applies(f, rule) {
            continue;
        }
        let prefix = format!("__filter{i}_");
        for (name, det) in &f.detection.named {
            rule.detection
                .named
                .insert(format!("{prefix}{name}"), det.clone());
        }
        let filter_conditions: Vec<ConditionExpr> = f
            .detection
            .conditions
            .iter()
            .map(|c| prefixed(c, &prefix))
            .collect();
        if filter_conditions.is_empty() {
            continue;
        }
        let filter_condition = if filter_conditions.len() == 1 {
            filter_conditions
                .into_iter()
                .next()
                .unwrap_or(ConditionExpr::And(Vec::new()))
        } else {
            ConditionExpr::Or(filter_conditions)
        };
        for c in &mut rule.detection.conditions {
            let old = std::mem::replace(c, ConditionExpr::And(Vec::new()));
            *c = ConditionExpr::And(vec![old, filter_condition.clone()]);
        }
        applied += 1;
    }
    applied
}
