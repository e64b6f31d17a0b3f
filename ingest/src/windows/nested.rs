//! Nested Windows event JSON (`{"Event": {"System": ..., "EventData": ...}}`, as the
//! `evtx` crate and `evtx_dump -o json` render a record) flattened with the
//! `vedette-evtx-flat-v1` convention:
//!
//! - `System` children: a scalar is kept as `K`; an element with attributes gives
//!   `K_<Attr>` per attribute, plus `K` for its text (`EventID_Qualifiers`,
//!   `TimeCreated_SystemTime`, `Provider_Name`); empty elements are omitted.
//! - `EventData` children by their own names; unnamed `Data` items stay `Data`; the
//!   attributes of `EventData` itself become `EventData_<Attr>`.
//! - `UserData`: the children of its single inner element become top-level keys, nested
//!   elements joined with `_`; the inner element's name and `xmlns` are dropped.
//! - `RenderingInfo` children become `RenderingInfo_<Child>`.
//! - An `EventData`/`UserData` name wins the bare key over a `System` one, whose value
//!   stays reachable as `System_<Key>`.

use serde_json::{Map, Value};

const TEXT: &str = "#text";
const ATTRS: &str = "#attributes";

/// Flattens the `Event` object of one record; keys in record order.
pub(crate) fn flatten_event(event: &Map<String, Value>) -> Vec<(String, Value)> {
    let mut system: Vec<(String, Value)> = Vec::new();
    if let Some(Value::Object(sys)) = event.get("System") {
        for (k, v) in sys {
            match v {
                Value::Null => {}
                Value::Object(element) => {
                    if let Some(text) = element.get(TEXT) {
                        system.push((k.clone(), text.clone()));
                    }
                    for (child, value) in element {
                        if child == ATTRS {
                            if let Value::Object(attrs) = value {
                                for (a, x) in attrs {
                                    system.push((format!("{k}_{a}"), x.clone()));
                                }
                            }
                        } else if child != TEXT {
                            system.push((format!("{k}_{child}"), value.clone()));
                        }
                    }
                }
                other => system.push((k.clone(), other.clone())),
            }
        }
    }

    let mut data: Vec<(String, Value)> = Vec::new();
    match event.get("EventData") {
        Some(Value::Object(ed)) => {
            for (k, v) in ed {
                if k == ATTRS {
                    if let Value::Object(attrs) = v {
                        for (a, x) in attrs {
                            data.push((format!("EventData_{a}"), x.clone()));
                        }
                    }
                } else if v.is_null() || v.as_object().is_some_and(Map::is_empty) {
                    // An empty `<Data Name="X"/>` is an empty value, not an absent one.
                    data.push((k.clone(), Value::String(String::new())));
                } else {
                    data.push((k.clone(), text_of(v)));
                }
            }
        }
        Some(Value::Null) | None => {}
        Some(other) => data.push(("EventData".into(), other.clone())),
    }
    if let Some(Value::Object(ud)) = event.get("UserData") {
        for (inner_name, inner) in ud {
            match inner {
                Value::Object(node) => walk_user_data("", node, &mut data),
                other => data.push((inner_name.clone(), other.clone())),
            }
        }
    }
    if let Some(Value::Object(ri)) = event.get("RenderingInfo") {
        for (k, v) in ri {
            if k == ATTRS {
                if let Value::Object(attrs) = v {
                    for (a, x) in attrs {
                        data.push((format!("RenderingInfo_{a}"), x.clone()));
                    }
                }
            } else {
                data.push((format!("RenderingInfo_{k}"), v.clone()));
            }
        }
    }
    merge(system, data)
}

/// `{"#text": x, "#attributes": ...}` is its text; `{"#text": [..]}` its list.
fn text_of(v: &Value) -> Value {
    match v {
        Value::Object(m) if m.contains_key(TEXT) && m.keys().all(|k| k == TEXT || k == ATTRS) => {
            m.get(TEXT).cloned().unwrap_or(Value::Null)
        }
        other => other.clone(),
    }
}

fn walk_user_data(prefix: &str, node: &Map<String, Value>, out: &mut Vec<(String, Value)>) {
    for (k, v) in node {
        if k == ATTRS {
            if let (Value::Object(attrs), false) = (v, prefix.is_empty()) {
                for (a, x) in attrs.iter().filter(|(a, _)| *a != "xmlns") {
                    out.push((format!("{prefix}_{a}"), x.clone()));
                }
            }
            continue;
        }
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}_{k}")
        };
        match v {
            Value::Object(child) => {
                if let Some(text) = child.get(TEXT) {
                    out.push((key.clone(), text.clone()));
                }
                walk_user_data(&key, child, out);
            }
            other => out.push((key, other.clone())),
        }
    }
}

fn merge(system: Vec<(String, Value)>, data: Vec<(String, Value)>) -> Vec<(String, Value)> {
    let mut out = system;
    let system_len = out.len();
    let mut index: std::collections::HashMap<String, usize> = out
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.clone(), i))
        .collect();
    for (k, v) in data {
        match index.get(&k).copied() {
            Some(i) if i < system_len => {
                let displaced = std::mem::replace(&mut out[i].1, v);
                let key = format!("System_{k}");
                index.insert(key.clone(), out.len());
                out.push((key, displaced));
            }
            Some(i) => out[i].1 = v,
            None => {
                index.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flat(v: Value) -> Vec<(String, Value)> {
        match v.get("Event") {
            Some(Value::Object(e)) => flatten_event(e),
            _ => Vec::new(),
        }
    }

    fn get<'a>(f: &'a [(String, Value)], k: &str) -> Option<&'a Value> {
        f.iter().find(|(key, _)| key == k).map(|(_, v)| v)
    }

    #[test]
    fn system_attributes_and_text() {
        let f = flat(json!({"Event": {"#attributes": {"xmlns": "x"}, "System": {
            "Provider": {"#attributes": {"Name": "Service Control Manager", "Guid": "{555}"}},
            "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 7036},
            "Correlation": null,
            "TimeCreated": {"#attributes": {"SystemTime": "2017-07-12T17:16:29.690584Z"}},
            "Channel": "System"}, "EventData": {"param1": "x"}}}));
        assert_eq!(
            get(&f, "Provider_Name"),
            Some(&json!("Service Control Manager"))
        );
        assert_eq!(get(&f, "EventID"), Some(&json!(7036)));
        assert_eq!(get(&f, "EventID_Qualifiers"), Some(&json!(16384)));
        assert_eq!(
            get(&f, "TimeCreated_SystemTime"),
            Some(&json!("2017-07-12T17:16:29.690584Z"))
        );
        assert_eq!(get(&f, "Correlation"), None);
        assert_eq!(get(&f, "param1"), Some(&json!("x")));
        assert!(get(&f, "xmlns").is_none());
    }

    #[test]
    fn event_data_wins_over_system_which_stays_reachable() {
        let f = flat(
            json!({"Event": {"System": {"Version": 0, "Channel": "System"},
            "EventData": {"Version": "2", "#attributes": {"Name": "TaskDisabled"}}}}),
        );
        assert_eq!(get(&f, "Version"), Some(&json!("2")));
        assert_eq!(get(&f, "System_Version"), Some(&json!(0)));
        assert_eq!(get(&f, "EventData_Name"), Some(&json!("TaskDisabled")));
    }

    #[test]
    fn user_data_children_are_top_level_and_unnamed_data_stays_data() {
        let f = flat(json!({"Event": {"System": {"EventID": 5858},
            "UserData": {"Operation_ClientFailure": {"#attributes": {"xmlns": "http://x"},
                "ClientProcessId": 1234, "Operation": "Start", "Inner": {"A": 1}}}}}));
        assert_eq!(get(&f, "ClientProcessId"), Some(&json!(1234)));
        assert_eq!(get(&f, "Inner_A"), Some(&json!(1)));
        let f =
            flat(json!({"Event": {"System": {}, "EventData": {"Data": {"#text": ["a", "b"]}}}}));
        assert_eq!(get(&f, "Data"), Some(&json!(["a", "b"])));
    }
}
