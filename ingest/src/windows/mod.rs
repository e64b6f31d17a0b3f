//! Windows events: EVTX files and the JSON forms of the common shippers, normalized to
//! one flat field set (the `vedette-evtx-flat-v1` names) and mapped to the common
//! columns by channel and event id.
//!
//! JSON forms recognized per record:
//! - nested `{"Event": {"System": ..., "EventData": ...}}` (evtx_dump, the `evtx` crate);
//! - Winlogbeat (`winlog.event_id`, `winlog.channel`, `winlog.event_data.*`);
//! - flat objects: `vedette-evtx-flat-v1`, OTRF/Mordor (`SourceName`, `Hostname`,
//!   `TimeCreated` without zone) and NXLog (`SourceName`, `Hostname`, `EventTime`).
//!   Mordor/NXLog names also get their canonical aliases (`Provider_Name`, `Computer`).

mod columns;
pub(crate) mod evtx_file;
mod nested;
pub(crate) mod xml;

use std::borrow::Cow;

use serde_json::{Map, Value};
use vedette_core::event::Event;

use crate::flatten::FieldSink;
use crate::record::{set_fields, RecordCtx};

pub(crate) use columns::dataset_for_channel;

/// Whether a JSON object looks like a Windows event in one of the known forms.
pub(crate) fn looks_like_windows(obj: &Map<String, Value>) -> bool {
    syslog_message_xml(obj).is_some()
        || matches!(obj.get("Event"), Some(Value::Object(e)) if e.contains_key("System"))
        || matches!(obj.get("winlog"), Some(Value::Object(w)) if w.contains_key("event_id") || w.contains_key("channel"))
        || (obj.contains_key("EventID")
            && (obj.contains_key("Channel")
                || obj.contains_key("SourceName")
                || obj.contains_key("Provider_Name")))
}

/// The XML event inside a JSON row's `SyslogMessage` (Sysmon for Linux shipped through
/// Azure Log Analytics), if there is one.
pub(crate) fn syslog_message_xml(obj: &Map<String, Value>) -> Option<&str> {
    obj.get("SyslogMessage")
        .and_then(Value::as_str)
        .filter(|m| xml::looks_like_xml_event(m))
}

/// Flat fields, borrowed from the record where they can be.
type Flat<'a> = Vec<(Cow<'a, str>, Cow<'a, Value>)>;

fn owned<'a>(fields: Vec<(String, Value)>) -> Flat<'a> {
    fields
        .into_iter()
        .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))
        .collect()
}

/// The flat field list of a Windows event in any recognized JSON form.
pub(crate) fn flat_fields(obj: &Map<String, Value>) -> Flat<'_> {
    if let Some(Value::Object(event)) = obj.get("Event") {
        if event.contains_key("System") {
            return owned(nested::flatten_event(event));
        }
    }
    if let Some(Value::Object(winlog)) = obj.get("winlog") {
        return owned(winlogbeat_fields(obj, winlog));
    }
    let mut out: Flat<'_> = obj
        .iter()
        .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v)))
        .collect();
    for (alias, original) in [("Provider_Name", "SourceName"), ("Computer", "Hostname")] {
        if !obj.contains_key(alias) {
            if let Some(v) = obj.get(original) {
                out.push((Cow::Borrowed(alias), Cow::Borrowed(v)));
            }
        }
    }
    out
}

/// Winlogbeat: `winlog.event_data.X` by its own name `X`, the `winlog` system fields
/// by their canonical names, every other field flattened with dots.
fn winlogbeat_fields(
    obj: &Map<String, Value>,
    winlog: &Map<String, Value>,
) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (from, to) in [
        ("event_id", "EventID"),
        ("channel", "Channel"),
        ("provider_name", "Provider_Name"),
        ("provider_guid", "Provider_Guid"),
        ("computer_name", "Computer"),
        ("record_id", "EventRecordID"),
        ("task", "Task"),
        ("opcode", "Opcode"),
        ("keywords", "Keywords"),
    ] {
        if let Some(v) = winlog.get(from) {
            out.push((to.to_string(), v.clone()));
        }
    }
    if let Some(Value::Object(p)) = winlog.get("process") {
        if let Some(pid) = p.get("pid") {
            out.push(("Execution_ProcessID".into(), pid.clone()));
        }
    }
    for section in ["event_data", "user_data"] {
        if let Some(Value::Object(data)) = winlog.get(section) {
            out.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    for (k, v) in obj {
        if k != "winlog" {
            out.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in winlog {
        let known = matches!(
            k.as_str(),
            "event_id"
                | "channel"
                | "provider_name"
                | "provider_guid"
                | "computer_name"
                | "record_id"
                | "task"
                | "opcode"
                | "keywords"
                | "event_data"
                | "user_data"
        );
        if !known {
            out.push((format!("winlog.{k}"), v.clone()));
        }
    }
    out
}

/// Normalizes a Windows event given as XML text; `wrapper` fields (of a JSON row that
/// carried the XML, e.g. Azure Log Analytics' `Syslog` table) are kept too, where they
/// do not collide with the event's own fields.
pub(crate) fn normalize_xml(
    xml_text: &str,
    wrapper: Option<&Map<String, Value>>,
    ctx: &RecordCtx<'_>,
    raw: &[u8],
) -> Result<Event, String> {
    let obj =
        xml::event_from_xml(xml_text).map_err(|e| format!("invalid Windows XML event: {e}"))?;
    let mut event = normalize(&obj, ctx, raw);
    if let Some(wrapper) = wrapper {
        let mut extra = FieldSink::new(ctx.limits);
        for (k, v) in wrapper {
            if event.field(k).is_none() {
                extra.push_json(k, v);
            }
        }
        let room = ctx.limits.max_fields.saturating_sub(event.fields.len());
        event.fields.extend(extra.fields.into_iter().take(room));
    }
    Ok(event)
}

/// Normalizes one Windows event (any recognized form) into an event.
pub(crate) fn normalize(obj: &Map<String, Value>, ctx: &RecordCtx<'_>, raw: &[u8]) -> Event {
    let flat = flat_fields(obj);
    let mut sink = FieldSink::new(ctx.limits);
    for (k, v) in &flat {
        sink.push_json(k, v);
    }
    // Forwarded and Mordor events carry `TimeCreated` only as text; rules and analysts
    // also ask for the bare `TimeCreated` name of the System child.
    if sink.get("TimeCreated").is_none() {
        if let Some(t) = sink.get("TimeCreated_SystemTime").map(str::to_string) {
            sink.push("TimeCreated", t);
        }
    }
    // When EventData has its own `Channel`, the System one is `System_Channel`.
    let channel = sink
        .get("System_Channel")
        .or_else(|| sink.get("Channel"))
        .unwrap_or_default()
        .to_string();
    let dataset = dataset_for_channel(&channel);
    let mut event = ctx.event(dataset, raw);
    columns::map_columns(&mut event, &sink, ctx.limits);
    set_fields(&mut event, sink);
    event
}
