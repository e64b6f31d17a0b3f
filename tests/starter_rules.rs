//! The bundled Sigma rules under `rules/sigma/`: each is a well-formed Sigma detection
//! rule with a unique id, and each has a true-positive test event file beside it
//! (`<rule>.tp.jsonl`) that carries every field the rule's detection names.
//!
//! Whether each rule actually fires on its events is checked by the Sigma engine's
//! own tests; this test keeps the rule pack itself honest.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use yaml_serde::Value;

const LEVELS: &[&str] = &["informational", "low", "medium", "high", "critical"];
const STATUSES: &[&str] = &[
    "stable",
    "test",
    "experimental",
    "deprecated",
    "unsupported",
];

fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rule_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yml") {
            out.push(path);
        }
    }
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Field names a detection refers to (modifiers stripped), from every selection map.
fn detection_fields(detection: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Mapping(m) => {
                for (k, _) in m {
                    if let Some(key) = k.as_str() {
                        let field = key.split('|').next().unwrap_or(key);
                        if !field.is_empty() {
                            out.insert(field.to_string());
                        }
                    }
                }
            }
            Value::Sequence(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    if let Value::Mapping(m) = detection {
        for (name, selection) in m {
            if name.as_str() != Some("condition") {
                walk(selection, &mut out);
            }
        }
    }
    out
}

/// Every key of a JSON object, nested objects flattened with dots.
fn flat_keys(v: &serde_json::Value, prefix: &str, out: &mut HashSet<String>) {
    if let serde_json::Value::Object(map) = v {
        for (k, child) in map {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            flat_keys(child, &key, out);
            out.insert(key);
        }
    }
}

#[test]
fn every_bundled_rule_is_well_formed_and_has_true_positive_events() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma");
    let mut files = Vec::new();
    rule_files(&root, &mut files);
    assert!(
        files.len() >= 10,
        "expected a starter pack of rules, found {}",
        files.len()
    );
    let mut ids = HashSet::new();
    for path in &files {
        let name = path.display();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let rule: Value = yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let get = |k: &str| {
            rule.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };

        for key in ["title", "description", "author", "date"] {
            assert!(!get(key).trim().is_empty(), "{name}: `{key}` missing");
        }
        let id = get("id");
        assert!(is_uuid(&id), "{name}: id `{id}` is not a UUID");
        assert!(ids.insert(id.clone()), "{name}: id {id} used twice");
        assert!(LEVELS.contains(&get("level").as_str()), "{name}: bad level");
        assert!(
            STATUSES.contains(&get("status").as_str()),
            "{name}: bad status"
        );
        let tags = rule
            .get("tags")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        assert!(
            tags.iter()
                .filter_map(Value::as_str)
                .any(|t| t.starts_with("attack.t")),
            "{name}: no ATT&CK technique tag"
        );
        for tag in tags.iter().filter_map(Value::as_str) {
            assert_eq!(tag, tag.to_lowercase(), "{name}: tag {tag} not lowercase");
        }
        let logsource = rule.get("logsource").and_then(Value::as_mapping);
        assert!(
            logsource.is_some_and(|l| !l.is_empty()),
            "{name}: no logsource"
        );

        let detection = rule.get("detection").cloned().unwrap_or(Value::Null);
        let condition = detection
            .get("condition")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(!condition.is_empty(), "{name}: detection has no condition");
        let fields = detection_fields(&detection);
        assert!(!fields.is_empty(), "{name}: detection names no field");

        let tp = path.with_extension("tp.jsonl");
        let events = std::fs::read_to_string(&tp)
            .unwrap_or_else(|e| panic!("{name}: true-positive file {}: {e}", tp.display()));
        let mut seen = HashSet::new();
        let mut count = 0;
        for (n, line) in events
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", tp.display(), n + 1));
            assert!(
                event.is_object(),
                "{}:{}: not an object",
                tp.display(),
                n + 1
            );
            flat_keys(&event, "", &mut seen);
            count += 1;
        }
        assert!(count > 0, "{}: no events", tp.display());
        for field in &fields {
            assert!(
                seen.contains(field),
                "{name}: field `{field}` is in no true-positive event"
            );
        }
    }
}

#[test]
fn rule_folders_each_say_what_goes_there() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    for folder in ["sigma", "yara", "baselines", "pipelines"] {
        let readme = root.join(folder).join("README.md");
        let text = std::fs::read_to_string(&readme).unwrap_or_default();
        assert!(text.len() > 100, "{} is missing or empty", readme.display());
    }
}
