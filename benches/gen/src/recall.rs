//! Ground truth against what a detector raised: each story's alert is the one whose rule
//! id is the story's and whose text names the story's token.

use std::collections::HashMap;

use serde_json::Value;

use crate::attacks::Truth;

/// The outcome of matching alerts to the truth.
#[derive(Debug, Default)]
pub struct Recall {
    /// Stories whose alert was found, by kind.
    pub found: HashMap<String, usize>,
    /// Stories by kind.
    pub expected: HashMap<String, usize>,
    /// The stories whose alert is missing.
    pub missed: Vec<Truth>,
}

impl Recall {
    /// Found over expected, all kinds (1.0 when nothing was expected).
    pub fn ratio(&self) -> f64 {
        let expected: usize = self.expected.values().sum();
        let found: usize = self.found.values().sum();
        if expected == 0 {
            1.0
        } else {
            found as f64 / expected as f64
        }
    }

    /// One line per kind: `kind found/expected`.
    pub fn summary(&self) -> String {
        let mut kinds: Vec<&String> = self.expected.keys().collect();
        kinds.sort();
        kinds
            .iter()
            .map(|k| {
                format!(
                    "{k} {}/{}",
                    self.found.get(*k).copied().unwrap_or(0),
                    self.expected.get(*k).copied().unwrap_or(0)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The rule id an alert carries: `rule_id` (detect lines, the alerts API), `rule.id`
/// (store rows) or `rule.id` nested.
pub fn rule_of(alert: &Value) -> Option<&str> {
    alert
        .get("rule_id")
        .or_else(|| alert.get("rule.id"))
        .or_else(|| alert.get("rule").and_then(|r| r.get("id")))
        .and_then(Value::as_str)
}

/// The story tokens (`atk-` and six digits, not followed by a seventh) in `text`.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("atk-") {
        let digits = rest.as_bytes()[at + 4..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 6 {
            out.push(rest[at..at + 10].to_string());
        }
        rest = &rest[at + 4..];
    }
    out
}

/// Matches `alerts` to `truth`.
pub fn recall<'a>(truth: &[Truth], alerts: impl IntoIterator<Item = &'a Value>) -> Recall {
    let mut tokens_by_rule: HashMap<&str, Vec<String>> = HashMap::new();
    for alert in alerts {
        let Some(rule) = rule_of(alert) else { continue };
        tokens_by_rule
            .entry(rule)
            .or_default()
            .extend(tokens(&alert.to_string()));
    }
    let mut out = Recall::default();
    for t in truth {
        *out.expected.entry(t.kind.clone()).or_default() += 1;
        let hit = tokens_by_rule
            .get(t.rule.as_str())
            .is_some_and(|tokens| tokens.contains(&t.token));
        if hit {
            *out.found.entry(t.kind.clone()).or_default() += 1;
        } else {
            out.missed.push(t.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn truth(n: u64, rule: &str) -> Truth {
        Truth {
            id: n,
            kind: "sigma".into(),
            rule: rule.into(),
            token: crate::attacks::token(n),
            entity_column: true,
            source: "sysmon".into(),
            index: n,
            time_ms: 0,
        }
    }

    #[test]
    fn an_alert_counts_only_for_its_rule_and_its_own_token() {
        let truth = [truth(1, "r1"), truth(2, "r1"), truth(12, "r2")];
        let alerts = [
            json!({"rule_id": "r1", "host": "atk-000001.corp.example"}),
            // Right token, wrong rule; a longer token that starts like story 1's.
            json!({"rule.id": "r2", "host.name": "atk-000002.corp.example"}),
            json!({"rule": {"id": "r2"}, "matched": {"x": "C:\\atk-0000123"}}),
        ];
        let r = recall(&truth, &alerts);
        assert_eq!(r.summary(), "sigma 1/3");
        let missed: Vec<u64> = r.missed.iter().map(|t| t.id).collect();
        assert_eq!(missed, [2, 12]);
        assert!((r.ratio() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            tokens("host atk-000001.corp, atk-0000123, atk-12, atk-999999"),
            ["atk-000001", "atk-999999"]
        );
    }
}
