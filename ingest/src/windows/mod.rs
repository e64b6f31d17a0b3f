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
use vedette_core::event::Row;

use crate::flatten::FieldSink;
use crate::record::{tag_truncation, RecordCtx};

pub(crate) use columns::{dataset_for_channel, lowercase};

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

/// Adds the canonical names of the OTRF/Mordor and NXLog fields of a flat event read
/// by the JSON scanner (the tree path does it in [`flat_fields`]).
pub(crate) fn add_flat_aliases(sink: &mut FieldSink<'_>) {
    for (alias, original) in [("Provider_Name", "SourceName"), ("Computer", "Hostname")] {
        if sink.get(alias).is_none() {
            sink.alias(alias, original);
        }
    }
}

/// Pushes the fields of a Windows event given as a JSON tree (any recognized form).
pub(crate) fn push_tree(obj: &Map<String, Value>, sink: &mut FieldSink<'_>) {
    for (k, v) in &flat_fields(obj) {
        sink.push_json(k, v);
    }
}

/// Reads a Windows event given as XML text into `sink` (ready for [`normalize`]).
/// `wrapper` fields (of a JSON row that carried the XML, e.g. Azure Log Analytics'
/// `Syslog` table) go to `extra` where they do not collide with the event's own
/// fields; they follow the event's fields in the row, as far as the field limit allows
/// (see [`with_extra`]).
pub(crate) fn read_xml(
    xml_text: &str,
    wrapper: Option<&Map<String, Value>>,
    sink: &mut FieldSink<'_>,
    extra: &mut FieldSink<'_>,
) -> Result<(), String> {
    let obj =
        xml::event_from_xml(xml_text).map_err(|e| format!("invalid Windows XML event: {e}"))?;
    push_tree(&obj, sink);
    prepare(sink);
    for (k, v) in wrapper.into_iter().flatten() {
        if sink.get(k).is_none() {
            extra.push_json(k, v);
        }
    }
    Ok(())
}

/// The fields of an event read by [`read_xml`]: its own, then the wrapper's that fit.
pub(crate) fn with_extra<'f>(
    sink: &'f FieldSink<'_>,
    extra: &'f FieldSink<'_>,
    limits: &crate::limits::Limits,
) -> impl Iterator<Item = (&'f str, &'f str)> {
    let room = limits.max_fields.saturating_sub(sink.len());
    sink.iter().chain(extra.iter().take(room))
}

/// Adds the names every Windows event gets, whatever form it came in: forwarded and
/// Mordor events carry `TimeCreated` only as text, and rules and analysts also ask
/// for the bare `TimeCreated` name of the System child.
pub(crate) fn prepare(sink: &mut FieldSink<'_>) {
    sink.index_all();
    if sink.get("TimeCreated").is_none() {
        sink.alias("TimeCreated", "TimeCreated_SystemTime");
    }
}

/// Normalizes the Windows event whose flat fields are in `sink` (after [`prepare`])
/// into a row.
pub(crate) fn normalize<'s>(sink: &'s FieldSink<'_>, ctx: &RecordCtx<'s>, raw: &[u8]) -> Row<'s> {
    // When EventData has its own `Channel`, the System one is `System_Channel`.
    let channel = sink
        .get("System_Channel")
        .or_else(|| sink.get("Channel"))
        .unwrap_or_default();
    let dataset = dataset_for_channel(channel);
    let mut row = ctx.row(dataset, raw);
    columns::map_columns(&mut row, sink, ctx.limits);
    tag_truncation(&mut row, sink);
    row
}
