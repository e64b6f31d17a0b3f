//! [`SigmaDetector`]: a compiled rule set behind the `Detector` interface.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::TimestampMillisecondType;
use rsigma_parser::SigmaRule;
use sha2::{Digest, Sha256};
use vedette_core::alert::{entity_dedup_key, Alert, DetectionKind};
use vedette_core::batch::EventBatch;
use vedette_core::schema::col;
use vedette_core::traits::Detector;
use vedette_core::CoreError;

use super::compile::{compile, CompileOptions, CompileOutcome, Plan};
use super::evaluate::{evaluate, routed_rules, RuleHit};
use super::rule_meta::RuleMeta;
use crate::error::DetectError;

/// A Sigma rule set compiled for columnar evaluation.
#[derive(Debug)]
pub struct SigmaDetector {
    plan: Plan,
}

impl SigmaDetector {
    /// Compiles `rules` (each with the file it came from); also returns, per rule in
    /// the same order, whether it compiled and how it was routed.
    pub fn new(
        rules: Vec<(SigmaRule, String)>,
        options: &CompileOptions,
    ) -> Result<(Self, Vec<CompileOutcome>), DetectError> {
        let (plan, outcomes) = compile(rules, options).map_err(|reason| DetectError::Invalid {
            what: "rule set".into(),
            reason,
        })?;
        Ok((Self { plan }, outcomes))
    }

    /// The compiled rules.
    pub fn rules(&self) -> &[RuleMeta] {
        self.plan.rules()
    }

    /// Every (rule, row) match in a batch of the event schema.
    pub fn matches(&self, batch: &RecordBatch) -> Result<Vec<RuleHit>, DetectError> {
        evaluate(&self.plan, batch)
    }

    /// For each row of `batch`, the rules its log source routes it to (whether or not
    /// they match): what a rule sees, for tests and explanations.
    pub fn routed(&self, batch: &RecordBatch) -> Result<Vec<Vec<u32>>, DetectError> {
        routed_rules(&self.plan, batch)
    }

    /// Alerts for `hits` found in `batch`.
    pub fn alerts(&self, batch: &EventBatch, hits: &[RuleHit]) -> Vec<Alert> {
        let records = &batch.records;
        let text = |name: &str| -> Option<&StringArray> {
            records
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
        };
        let at = |a: Option<&StringArray>, row: usize| -> Option<String> {
            a.filter(|a| a.is_valid(row))
                .map(|a| a.value(row).to_owned())
        };
        let event_ids = text(col::EVENT_ID);
        let tenants = text(col::TENANT);
        let hosts = text(col::HOST_NAME);
        let users = text(col::USER_NAME);
        let times = records
            .column_by_name(col::TIMESTAMP)
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>());
        let mut out = Vec::with_capacity(hits.len());
        for hit in hits {
            let Some(rule) = self.plan.rules.get(hit.rule as usize) else {
                continue;
            };
            let row = hit.row as usize;
            let event_id = at(event_ids, row).unwrap_or_default();
            let host = at(hosts, row);
            let user = at(users, row);
            let time_ms = times
                .filter(|t| t.is_valid(row))
                .map_or(batch.ingest_time_ms, |t| t.value(row));
            let mut digest = Sha256::new();
            digest.update(rule.id.as_bytes());
            digest.update([0]);
            digest.update(event_id.as_bytes());
            let id: String = digest.finalize()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            out.push(Alert {
                id,
                time_ms,
                tenant: at(tenants, row).unwrap_or_else(|| batch.tenant.clone()),
                kind: DetectionKind::Sigma,
                rule_id: rule.id.clone(),
                rule_title: rule.title.clone(),
                rule_author: rule.author.clone(),
                level: rule.level,
                tags: rule.tags.clone(),
                dedup_key: entity_dedup_key(&rule.id, host.as_deref(), user.as_deref()),
                host,
                user,
                event_ids: vec![event_id],
                matched: hit.matched.iter().cloned().collect::<BTreeMap<_, _>>(),
            });
        }
        out
    }
}

impl Detector for SigmaDetector {
    fn name(&self) -> &str {
        "sigma"
    }

    fn detect(&self, batch: &EventBatch) -> Result<Vec<Alert>, CoreError> {
        let hits = self
            .matches(&batch.records)
            .map_err(|e| CoreError::BadInput(e.to_string()))?;
        Ok(self.alerts(batch, &hits))
    }
}
