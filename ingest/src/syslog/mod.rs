//! Text lines: syslog (RFC 3164, RFC 5424, header-less), and the formats devices send
//! inside syslog or alone: CEF, LEEF, PAN-OS CSV, FortiGate and generic `key=value`.
//!
//! Records are framed by newline or by octet counting (RFC 6587). The header, when
//! present, gives host, application, pid, severity and time; the message is then read
//! by the content format (recognized, or the one the caller named). Every line is kept
//! in `message`. An RFC 3164 time has no year and no zone: the year is the one closest
//! to the receive time and the event is tagged `year_inferred` and `timezone_missing`.

mod framing;
pub(crate) mod header;

use serde_json::Value;
use std::borrow::Cow;
use vedette_core::dead_letter::DeadLetter;

use vedette_core::event::{tag, Event, EventBatchBuilder, IntCol, TextCol};
use vedette_core::traits::{ParseStats, Parser, RawChunk};

use crate::flatten::{FieldSink, Span};
use crate::limits::Limits;
use crate::record::{
    parse_records, set_row_time, set_time, tag_truncation, Output, RecordCtx, Reject,
};
use crate::timestamp::ParsedTime;
use crate::{cef, kv, leef, paloalto};

/// What a text line's message holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextContent {
    /// Recognize per line.
    Auto,
    /// Plain syslog: the message is free text (or JSON, which is flattened).
    Syslog,
    /// ArcSight CEF.
    Cef,
    /// IBM LEEF 1.0/2.0.
    Leef,
    /// PAN-OS CSV.
    PanOs,
    /// FortiGate `key=value`.
    FortiGate,
    /// Generic `key=value`.
    KeyValue,
    /// A Windows event rendered as XML.
    WindowsXml,
}

impl TextContent {
    fn detect(message: &str) -> Self {
        if cef::find(message).is_some() {
            Self::Cef
        } else if leef::find(message).is_some() {
            Self::Leef
        } else if paloalto::looks_like_panos(message) {
            Self::PanOs
        } else if kv::looks_like_fortigate(message) {
            Self::FortiGate
        } else if crate::windows::xml::looks_like_xml_event(message) {
            Self::WindowsXml
        } else {
            Self::Syslog
        }
    }

    fn dataset(self) -> &'static str {
        match self {
            Self::Auto | Self::Syslog => "syslog",
            Self::Cef => "cef",
            Self::Leef => "leef",
            Self::PanOs => "paloalto",
            Self::FortiGate => "fortigate",
            Self::KeyValue => "kv",
            Self::WindowsXml => "windows",
        }
    }
}

/// Parser for syslog and the line formats carried in it.
#[derive(Debug, Clone)]
pub struct TextLineParser {
    content: TextContent,
    limits: Limits,
}

impl TextLineParser {
    /// A parser for `content` with the given limits.
    pub fn new(content: TextContent, limits: Limits) -> Self {
        Self { content, limits }
    }

    fn parse_record<'c>(
        &self,
        ctx: &RecordCtx<'c>,
        raw: &'c [u8],
        (sink, keys): (&mut FieldSink<'c>, &HeaderKeys),
        out: &mut Output<'_>,
    ) -> Result<(), Reject> {
        let line = crate::text::lossy_utf8(raw);
        let h = header::parse(&line, ctx.chunk.received_ms);
        let mut content = match self.content {
            TextContent::Auto => TextContent::detect(h.message),
            forced => forced,
        };
        // Recognized by a marker only: a plain line that merely mentions `CEF:` or holds
        // a broken event stays a syslog event rather than a dead letter.
        if self.content == TextContent::Auto && !content_parses(content, h.message) {
            content = TextContent::Syslog;
        }
        if content == TextContent::WindowsXml {
            // The event's own System fields give host, provider and time; the line is
            // kept as the message.
            let mut sink = FieldSink::new(ctx.limits);
            let mut extra = FieldSink::new(ctx.limits);
            crate::windows::read_xml(h.message, None, &mut sink, &mut extra)?;
            let mut row = crate::windows::normalize(&sink, ctx, raw);
            row.set(TextCol::Message, line.as_ref());
            out.row(&mut row, sink.iter());
            return Ok(());
        }
        if matches!(content, TextContent::Auto | TextContent::Syslog) {
            // Plain syslog, the common case: a row whose fields are slices of the line.
            sink.reset(match &line {
                Cow::Borrowed(text) => text,
                Cow::Owned(_) => "",
            });
            let mut row = ctx.row(content.dataset(), raw);
            push_header_fields(&h, sink, keys);
            row.set_int(IntCol::Severity, h.severity.map(i64::from));
            row.set_opt(TextCol::HostName, h.hostname);
            row.set_opt(TextCol::Provider, h.appname);
            row.set_int(IntCol::ProcessPid, h.procid.and_then(|p| p.parse().ok()));
            push_json_message(h.message, sink, ctx.limits);
            match h.time {
                Some((ms, zone_missing)) => {
                    set_row_time(&mut row, h.time_text, Some(ParsedTime { ms, zone_missing }));
                    if h.year_inferred {
                        row.add_tag(tag::YEAR_INFERRED);
                    }
                }
                None => set_row_time(&mut row, h.time_text, None),
            }
            row.set(TextCol::Message, line.as_ref());
            tag_truncation(&mut row, sink);
            out.row(&mut row, sink.iter());
            return Ok(());
        }
        let mut event = ctx.event(content.dataset(), raw);
        let mut sink = FieldSink::new(ctx.limits);
        push_header(&h, &mut event, &mut sink);
        let msg = h.message;
        let content_time: Option<(String, Option<ParsedTime>)> = match content {
            TextContent::Cef => {
                let start = cef::find(msg).ok_or("no `CEF:` header in the message")?;
                let parsed = cef::parse(&msg[start..])?;
                cef::apply(&parsed, &mut event, &mut sink)
                    .map(|t| (t.to_string(), cef::parse_time(t, ctx.chunk.received_ms)))
            }
            TextContent::Leef => {
                let start = leef::find(msg).ok_or("no `LEEF:` header in the message")?;
                let parsed = leef::parse(&msg[start..])?;
                leef::apply(&parsed, &mut event, &mut sink);
                leef::dev_time(&parsed, ctx.chunk.received_ms)
            }
            TextContent::PanOs => {
                if !paloalto::looks_like_panos(msg) {
                    return Err("not a PAN-OS CSV log (no log type in the fourth column)".into());
                }
                paloalto::apply(msg, &mut event, &mut sink).map(|t| (String::new(), Some(t)))
            }
            TextContent::FortiGate | TextContent::KeyValue => {
                let (pairs, _) = kv::pairs(msg);
                if pairs.is_empty() {
                    return Err("no key=value pairs in the message".into());
                }
                kv::apply(&pairs, &mut event, &mut sink).map(|t| (String::new(), Some(t)))
            }
            TextContent::WindowsXml => None,
            TextContent::Auto | TextContent::Syslog => {
                push_json_message(msg, &mut sink, ctx.limits);
                None
            }
        };
        match (content_time, h.time) {
            (Some((text, Some(t))), _) => set_time(&mut event, Some(&text), Some(t)),
            (_, Some((ms, zone_missing))) => {
                set_time(
                    &mut event,
                    h.time_text,
                    Some(ParsedTime { ms, zone_missing }),
                );
                if h.year_inferred {
                    event.add_tag(tag::YEAR_INFERRED);
                }
            }
            (Some((text, None)), None) => set_time(&mut event, Some(&text), None),
            (None, None) => set_time(&mut event, h.time_text, None),
        }
        event.message = Some(line.into_owned());
        out.event_with_fields(&mut event, &sink);
        Ok(())
    }
}

/// Whether a recognized content format actually parses (checked in auto mode only).
fn content_parses(content: TextContent, msg: &str) -> bool {
    match content {
        TextContent::Cef => cef::find(msg).is_some_and(|i| cef::parse(&msg[i..]).is_ok()),
        TextContent::Leef => leef::find(msg).is_some_and(|i| leef::parse(&msg[i..]).is_ok()),
        TextContent::WindowsXml => crate::windows::xml::event_from_xml(msg).is_ok(),
        _ => true,
    }
}

/// The syslog header as common columns of an event, and `syslog.*` fields.
fn push_header(h: &header::Header<'_>, event: &mut Event, sink: &mut FieldSink<'_>) {
    let keys = HeaderKeys::new(sink);
    push_header_fields(h, sink, &keys);
    event.severity = h.severity.map(i64::from);
    event.host_name = h.hostname.map(str::to_string);
    event.provider = h.appname.map(str::to_string);
    event.process_pid = h.procid.and_then(|p| p.parse().ok());
}

/// The text of the numbers a PRI splits into (facility 0-23, severity 0-7).
const PRI_PARTS: [&str; 24] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23",
];

/// The names of the `syslog.*` fields, in the order a record gets them.
const HEADER_KEYS: [&str; 9] = [
    "syslog.facility",
    "syslog.severity",
    "syslog.version",
    "syslog.timestamp",
    "syslog.hostname",
    "syslog.appname",
    "syslog.procid",
    "syslog.msgid",
    "syslog.message",
];

/// The `syslog.*` keys kept in one sink ([`FieldSink::keep_key`]), in
/// [`HEADER_KEYS`] order.
struct HeaderKeys([Span; HEADER_KEYS.len()]);

impl HeaderKeys {
    /// Keeps the keys in `sink`, before its first record.
    fn new(sink: &mut FieldSink<'_>) -> Self {
        Self(HEADER_KEYS.map(|k| sink.keep_key(k)))
    }
}

/// The syslog header as `syslog.*` fields.
fn push_header_fields(h: &header::Header<'_>, sink: &mut FieldSink<'_>, keys: &HeaderKeys) {
    let text = |n: u8| PRI_PARTS.get(usize::from(n)).copied();
    let [facility, severity, version, timestamp, hostname, appname, procid, msgid, message] =
        keys.0;
    for (key, value) in [
        (facility, h.facility.and_then(text)),
        (severity, h.severity.and_then(text)),
        (version, h.version),
        (timestamp, h.time_text),
        (hostname, h.hostname),
        (appname, h.appname),
        (procid, h.procid),
        (msgid, h.msgid),
    ] {
        if let Some(v) = value {
            sink.push_value(key, v);
        }
    }
    if let Some(sd) = h.structured_data {
        for (k, v) in header::structured_params(sd) {
            sink.push(k, v);
        }
    }
    sink.push_value(message, h.message);
}

/// A JSON object in the message is flattened into the fields too.
fn push_json_message(msg: &str, sink: &mut FieldSink<'_>, limits: &Limits) {
    let trimmed = msg.trim();
    if trimmed.starts_with('{') && trimmed.ends_with('}') {
        if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(trimmed) {
            if crate::flatten::depth(&Value::Object(obj.clone())) <= limits.max_depth {
                sink.push_object("", &obj);
            }
        }
    }
}

impl Parser for TextLineParser {
    fn name(&self) -> &str {
        self.content.dataset()
    }

    fn parse(
        &self,
        chunk: &RawChunk,
        events: &mut EventBatchBuilder,
        dead_letters: &mut Vec<DeadLetter>,
    ) -> ParseStats {
        let ctx = RecordCtx::new(chunk, &self.limits);
        // The frame being parsed was cut short (declared this many bytes): a record
        // that looks whole but lacks its end is dead-lettered, not stored.
        let cut_short = std::cell::Cell::new(None);
        let records = framing::frames(&chunk.bytes).map(|frame| {
            cut_short.set(frame.truncated);
            (frame.offset, frame.record)
        });
        let mut sink = FieldSink::over("", &self.limits);
        let keys = HeaderKeys::new(&mut sink);
        parse_records(
            &ctx,
            self.content.dataset(),
            records,
            events,
            dead_letters,
            |record, out| match cut_short.get() {
                Some(declared) => Err(format!(
                    "octet-counted frame cut short: {declared} bytes declared, {} received",
                    record.len()
                )),
                None => self.parse_record(&ctx, record, (&mut sink, &keys), out),
            },
        )
    }
}

#[cfg(test)]
mod tests;
