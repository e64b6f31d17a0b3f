//! A correlation that fired, as the alert the pipeline stores and delivers.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use vedette_core::alert::{Alert, DetectionKind};

use super::{CorrelationAlert, CorrelationSet};

/// `group-by` fields that name a host, in the names sources and Sigma rules use.
const HOST_FIELDS: &[&str] = &["host.name", "Computer", "ComputerName", "Hostname", "host"];
/// `group-by` fields that name a user account.
const USER_FIELDS: &[&str] = &[
    "user.name",
    "TargetUserName",
    "SubjectUserName",
    "User",
    "UserName",
    "userName",
    "AccountName",
];

impl CorrelationAlert {
    /// The alert of `tenant` this firing raises, with the correlation's metadata from
    /// `set`; `None` when `set` does not hold its correlation. The host and user are the
    /// group's values of a host or user field; `matched` holds the group and the measured
    /// value; the id is stable over replays (rule, group, time, events).
    pub fn to_alert(&self, set: &CorrelationSet, tenant: &str) -> Option<Alert> {
        let meta = set.meta(self.correlation)?;
        let value_of = |names: &[&str]| {
            self.group
                .iter()
                .find(|(k, v)| !v.is_empty() && names.iter().any(|n| n.eq_ignore_ascii_case(k)))
                .map(|(_, v)| v.clone())
        };
        let mut digest = Sha256::new();
        for part in [meta.id.as_str(), tenant] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        for (k, v) in &self.group {
            digest.update(k.as_bytes());
            digest.update([1]);
            digest.update(v.as_bytes());
            digest.update([0]);
        }
        digest.update(self.time_ms.to_be_bytes());
        for id in &self.event_ids {
            digest.update(id.as_bytes());
        }
        let id: String = digest.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let group: Vec<String> = self.group.iter().map(|(_, v)| v.clone()).collect();
        let mut matched: BTreeMap<String, String> = self.group.iter().cloned().collect();
        matched.insert("correlation.value".into(), format_value(self.value));
        Some(Alert {
            id,
            time_ms: self.time_ms,
            tenant: tenant.to_string(),
            kind: DetectionKind::Correlation,
            rule_id: meta.id.clone(),
            rule_title: meta.title.clone(),
            rule_author: meta.author.clone(),
            level: meta.level,
            tags: meta.tags.clone(),
            host: value_of(HOST_FIELDS),
            user: value_of(USER_FIELDS),
            event_ids: self.event_ids.clone(),
            matched,
            dedup_key: format!("{}|{}", meta.id, group.join("|")),
        })
    }
}

/// A measured value as text: whole numbers without a fraction.
fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}
