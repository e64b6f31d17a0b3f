//! JSON objects flattened into the `fields` map: nested keys joined with dots, scalar
//! values rendered as text (numbers in their shortest form), arrays as JSON text.

use serde_json::{Map, Value};

use crate::limits::Limits;

/// Renders a JSON scalar as the text kept in `fields` (None for `null`).
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
    }
}

/// Nesting depth of a JSON value (a scalar is 0).
pub(crate) fn depth(value: &Value) -> usize {
    // Iterative, so a hostile document cannot exhaust the stack here.
    let mut max = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    max
}

/// Collects the flattened fields of one record, enforcing the field-count limit.
#[derive(Debug, Default)]
pub(crate) struct FieldSink {
    /// The fields so far, in record order.
    pub(crate) fields: Vec<(String, String)>,
    /// Whether fields were dropped for the limit.
    pub(crate) truncated: bool,
    max: usize,
}

impl FieldSink {
    /// An empty sink that keeps at most `limits.max_fields` fields.
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            fields: Vec::new(),
            truncated: false,
            max: limits.max_fields,
        }
    }

    /// Adds one field, unless the limit is reached. Keys with white space also get
    /// an alias without it (Defender's `Threat Name` is reachable as `ThreatName`).
    pub(crate) fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        if self.fields.len() >= self.max {
            self.truncated = true;
            return;
        }
        let key = key.into();
        let value = value.into();
        if key.contains(char::is_whitespace) {
            let alias: String = key.chars().filter(|c| !c.is_whitespace()).collect();
            if !alias.is_empty() && self.fields.len() + 1 < self.max {
                self.fields.push((alias, value.clone()));
            }
        }
        self.fields.push((key, value));
    }

    /// Adds a JSON value under `key`: objects are flattened with dots, arrays and
    /// scalars are rendered as text, nulls are skipped.
    pub(crate) fn push_json(&mut self, key: &str, value: &Value) {
        match value {
            Value::Object(map) => self.push_object(key, map),
            Value::Null => {}
            other => {
                if let Some(text) = scalar_text(other) {
                    self.push(key, text);
                }
            }
        }
    }

    /// Flattens every member of an object, prefixing keys with `prefix.` when the
    /// prefix is not empty.
    pub(crate) fn push_object(&mut self, prefix: &str, map: &Map<String, Value>) {
        for (k, v) in map {
            if prefix.is_empty() {
                self.push_json(k, v);
            } else {
                self.push_json(&format!("{prefix}.{k}"), v);
            }
        }
    }

    /// Value of a field already collected, by exact key.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_objects_flatten_with_dots_and_scalars_render() {
        let v =
            json!({"a": {"b": 1, "c": {"d": "x"}}, "n": null, "f": 0.5, "t": true, "l": [1, "y"]});
        let mut sink = FieldSink::new(&Limits::default());
        if let Value::Object(map) = &v {
            sink.push_object("", map);
        }
        assert_eq!(sink.get("a.b"), Some("1"));
        assert_eq!(sink.get("a.c.d"), Some("x"));
        assert_eq!(sink.get("n"), None);
        assert_eq!(sink.get("f"), Some("0.5"));
        assert_eq!(sink.get("t"), Some("true"));
        assert_eq!(sink.get("l"), Some("[1,\"y\"]"));
    }

    #[test]
    fn white_space_keys_get_an_alias() {
        let mut sink = FieldSink::new(&Limits::default());
        sink.push("Threat Name", "EICAR");
        assert_eq!(sink.get("ThreatName"), Some("EICAR"));
        assert_eq!(sink.get("Threat Name"), Some("EICAR"));
    }

    #[test]
    fn field_limit_truncates_and_says_so() {
        let limits = Limits {
            max_fields: 2,
            ..Limits::default()
        };
        let mut sink = FieldSink::new(&limits);
        for i in 0..5 {
            sink.push(format!("k{i}"), "v");
        }
        assert_eq!(sink.fields.len(), 2);
        assert!(sink.truncated);
    }

    #[test]
    fn depth_counts_nesting() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({"a": [{"b": 1}]})), 3);
    }
}
