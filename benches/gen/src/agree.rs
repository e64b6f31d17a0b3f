//! Whether two detectors agree on the same events: hits per rule id from `vedette detect`
//! and from `rsigma engine eval` output, and the rules where the counts differ.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// The rule id of one output line: `rule_id` (vedette), else `id`, or `rule.id` nested.
fn rule_id(line: &Value) -> Option<String> {
    line.get("rule_id")
        .or_else(|| line.get("id"))
        .or_else(|| line.get("rule").and_then(|r| r.get("id")))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Hits per rule id in a JSON-lines file (lines that are not JSON objects are skipped).
pub fn hits_per_rule(path: &Path) -> anyhow::Result<BTreeMap<String, u64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let value: Value = serde_json::from_str(line)
            .with_context(|| format!("a line of {} is not JSON", path.display()))?;
        if value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k != "sigma")
        {
            continue;
        }
        if let Some(id) = rule_id(&value) {
            *out.entry(id).or_default() += 1;
        }
    }
    Ok(out)
}

/// A report of the hits of both outputs per rule id.
pub fn compare(vedette: &Path, rsigma: &Path) -> anyhow::Result<String> {
    Ok(report(&hits_per_rule(vedette)?, &hits_per_rule(rsigma)?))
}

fn report(v: &BTreeMap<String, u64>, r: &BTreeMap<String, u64>) -> String {
    let rules: BTreeSet<&String> = v.keys().chain(r.keys()).collect();
    let same = rules.iter().filter(|k| v.get(**k) == r.get(**k)).count();
    let mut differ: Vec<(&String, u64, u64)> = rules
        .iter()
        .map(|k| {
            (
                *k,
                v.get(*k).copied().unwrap_or(0),
                r.get(*k).copied().unwrap_or(0),
            )
        })
        .filter(|(_, a, b)| a != b)
        .collect();
    differ.sort_by_key(|(_, a, b)| std::cmp::Reverse(a.abs_diff(*b)));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# hits: vedette {} from {} rules, rsigma {} from {} rules; {same} of {} rules with the same count",
        v.values().sum::<u64>(),
        v.len(),
        r.values().sum::<u64>(),
        r.len(),
        rules.len()
    );
    for (k, a, b) in differ.iter().take(25) {
        let _ = writeln!(out, "# differs: {k}: vedette {a}, rsigma {b}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_rule_and_lists_the_differences_largest_first() {
        let v: BTreeMap<String, u64> = [("a".into(), 3), ("b".into(), 1)].into();
        let r: BTreeMap<String, u64> = [("a".into(), 3), ("b".into(), 4), ("c".into(), 1)].into();
        let text = report(&v, &r);
        assert!(
            text.starts_with("# hits: vedette 4 from 2 rules, rsigma 8 from 3 rules; 1 of 3 rules"),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "# differs: b: vedette 1, rsigma 4",
                "# differs: c: vedette 0, rsigma 1"
            ]
        );
        assert_eq!(
            rule_id(&serde_json::json!({"rule": {"id": "x"}})).as_deref(),
            Some("x")
        );
    }
}
