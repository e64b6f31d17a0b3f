//! Processing pipelines in the pySigma YAML format: rule transformations applied
//! before compilation.
//!
//! Supported transformations: `field_name_mapping` (one target per field),
//! `add_condition`, `change_logsource` and `drop_detection_item`, each optionally
//! limited by `rule_conditions` of type `logsource` (all must hold) and, for the
//! field-level ones, `field_name_conditions` of type `include_fields` /
//! `exclude_fields`. Any other transformation type is rejected when the pipeline
//! loads, so a pipeline never half-applies.

use std::collections::BTreeMap;

use rsigma_parser::{ConditionExpr, Detection, DetectionItem, FieldSpec, SigmaRule, SigmaValue};
use serde::Deserialize;

use super::logsource::logsource_has;
use crate::error::DetectError;

/// A loaded pipeline.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    /// The pipeline's `name`.
    pub name: String,
    /// Its `priority`: pipelines apply in ascending order.
    pub priority: i64,
    items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
struct PipelineFile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    transformations: Vec<ItemFile>,
    #[serde(default)]
    vars: Option<yaml_serde::Value>,
}

#[derive(Debug, Deserialize)]
struct ItemFile {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    mapping: BTreeMap<String, yaml_serde::Value>,
    #[serde(default)]
    conditions: BTreeMap<String, yaml_serde::Value>,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    rule_conditions: Vec<RuleConditionFile>,
    #[serde(default)]
    field_name_conditions: Vec<FieldConditionFile>,
}

#[derive(Debug, Clone, Deserialize)]
struct RuleConditionFile {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    service: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct FieldConditionFile {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    fields: Vec<String>,
}

#[derive(Debug, Clone)]
enum Transform {
    FieldNameMapping(BTreeMap<String, String>),
    AddCondition(Vec<(String, SigmaValue)>),
    ChangeLogsource {
        product: Option<String>,
        category: Option<String>,
        service: Option<String>,
    },
    DropDetectionItem,
}

#[derive(Debug, Clone)]
struct Item {
    transform: Transform,
    logsources: Vec<RuleConditionFile>,
    include: Option<Vec<String>>,
    exclude: Vec<String>,
}

fn invalid(reason: String) -> DetectError {
    DetectError::Invalid {
        what: "pipeline".into(),
        reason,
    }
}

impl Pipeline {
    /// Parses a pipeline file.
    pub fn from_yaml(text: &str) -> Result<Self, DetectError> {
        let file: PipelineFile = yaml_serde::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.vars.is_some() {
            return Err(invalid("`vars` are not supported".into()));
        }
        let mut items = Vec::with_capacity(file.transformations.len());
        for (i, t) in file.transformations.into_iter().enumerate() {
            let label = t.id.clone().unwrap_or_else(|| format!("#{}", i + 1));
            let transform = match t.kind.as_str() {
                "field_name_mapping" => {
                    let mut mapping = BTreeMap::new();
                    for (k, v) in t.mapping {
                        let target = match v {
                            yaml_serde::Value::String(s) => s,
                            yaml_serde::Value::Sequence(ref list) if list.len() == 1 => list
                                .first()
                                .and_then(|x| x.as_str())
                                .map(str::to_owned)
                                .ok_or_else(|| invalid(format!("{label}: bad target of `{k}`")))?,
                            _ => {
                                return Err(invalid(format!(
                                    "{label}: `{k}` must map to one field name"
                                )))
                            }
                        };
                        mapping.insert(k, target);
                    }
                    Transform::FieldNameMapping(mapping)
                }
                "add_condition" => Transform::AddCondition(
                    t.conditions
                        .iter()
                        .map(|(k, v)| (k.clone(), SigmaValue::from_yaml(v)))
                        .collect(),
                ),
                "change_logsource" => Transform::ChangeLogsource {
                    product: t.product,
                    category: t.category,
                    service: t.service,
                },
                "drop_detection_item" => Transform::DropDetectionItem,
                other => {
                    return Err(invalid(format!(
                        "{label}: transformation `{other}` is not supported"
                    )))
                }
            };
            for c in &t.rule_conditions {
                if c.kind != "logsource" {
                    return Err(invalid(format!(
                        "{label}: rule condition `{}` is not supported",
                        c.kind
                    )));
                }
            }
            let mut include = None;
            let mut exclude = Vec::new();
            for c in t.field_name_conditions {
                match c.kind.as_str() {
                    "include_fields" => include = Some(c.fields),
                    "exclude_fields" => exclude = c.fields,
                    other => {
                        return Err(invalid(format!(
                            "{label}: field condition `{other}` is not supported"
                        )))
                    }
                }
            }
            items.push(Item {
                transform,
                logsources: t.rule_conditions,
                include,
                exclude,
            });
        }
        Ok(Self {
            name: file.name,
            priority: file.priority,
            items,
        })
    }

    /// Applies every transformation whose conditions hold to `rule`.
    pub fn apply(&self, rule: &mut SigmaRule) -> Result<(), String> {
        for item in &self.items {
            if !item.logsources.iter().all(|c| logsource_holds(c, rule)) {
                continue;
            }
            let selects = |field: &str| {
                item.include
                    .as_ref()
                    .is_none_or(|inc| inc.iter().any(|f| f == field))
                    && !item.exclude.iter().any(|f| f == field)
            };
            match &item.transform {
                Transform::FieldNameMapping(map) => {
                    for det in rule.detection.named.values_mut() {
                        for_each_item(det, &mut |it| {
                            if let Some(name) = &it.field.name {
                                if selects(name) {
                                    if let Some(to) = map.get(name) {
                                        it.field.name = Some(to.clone());
                                    }
                                }
                            }
                        });
                    }
                }
                Transform::AddCondition(conds) => {
                    let mut name = String::from("_pipeline_condition");
                    while rule.detection.named.contains_key(&name) {
                        name.push('_');
                    }
                    let items = conds
                        .iter()
                        .map(|(f, v)| DetectionItem {
                            field: FieldSpec::new(Some(f.clone()), Vec::new()),
                            values: vec![v.clone()],
                        })
                        .collect();
                    rule.detection
                        .named
                        .insert(name.clone(), Detection::AllOf(items));
                    for c in &mut rule.detection.conditions {
                        let old = std::mem::replace(c, ConditionExpr::Identifier(String::new()));
                        *c = ConditionExpr::And(vec![ConditionExpr::Identifier(name.clone()), old]);
                    }
                }
                Transform::ChangeLogsource {
                    product,
                    category,
                    service,
                } => {
                    if product.is_some() {
                        rule.logsource.product = product.clone();
                    }
                    if category.is_some() {
                        rule.logsource.category = category.clone();
                    }
                    if service.is_some() {
                        rule.logsource.service = service.clone();
                    }
                }
                Transform::DropDetectionItem => {
                    for det in rule.detection.named.values_mut() {
                        drop_items(det, &selects);
                    }
                }
            }
        }
        Ok(())
    }
}

fn logsource_holds(c: &RuleConditionFile, rule: &SigmaRule) -> bool {
    logsource_has(&c.product, &c.category, &c.service, &rule.logsource)
}

fn for_each_item(det: &mut Detection, f: &mut dyn FnMut(&mut DetectionItem)) {
    match det {
        Detection::AllOf(items) => items.iter_mut().for_each(f),
        Detection::AnyOf(dets) | Detection::And(dets) => {
            dets.iter_mut().for_each(|d| for_each_item(d, f));
        }
        Detection::Keywords(_) | Detection::ArrayMatch { .. } | Detection::Conditional { .. } => {}
    }
}

fn drop_items(det: &mut Detection, selects: &dyn Fn(&str) -> bool) {
    match det {
        Detection::AllOf(items) => {
            items.retain(|it| !it.field.name.as_deref().is_some_and(selects));
        }
        Detection::AnyOf(dets) | Detection::And(dets) => {
            dets.iter_mut().for_each(|d| drop_items(d, selects));
        }
        Detection::Keywords(_) | Detection::ArrayMatch { .. } | Detection::Conditional { .. } => {}
    }
}
