//! JSON lines: one JSON object per line, recognized per record (Windows shippers,
//! CloudTrail, Okta, GCP audit, Azure, Kubernetes audit, Suricata EVE, Zeek, CrowdStrike
//! FDR, VPC flow) or taken as generic JSON. CloudTrail's `{"Records": [...]}` files are
//! split into one event per record.

mod mapping;
mod scan;

use std::borrow::Cow;

use serde_json::{Map, Value};
use vedette_core::dead_letter::DeadLetter;
use vedette_core::event::{EventBatchBuilder, Row, TextCol};
use vedette_core::traits::{ParseStats, Parser, RawChunk};

use crate::flatten::{depth, FieldSink};
use crate::limits::Limits;
use crate::record::{parse_lines, tag_truncation, Output, RecordCtx, Reject};
use mapping::Mapping;
use scan::TopKeys;

/// Which JSON family a parser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonFamily {
    /// Recognize each record by its keys.
    Auto,
    /// Any JSON object.
    Generic,
    /// Windows events from a JSON shipper.
    Windows,
    /// AWS CloudTrail.
    CloudTrail,
    /// Okta System Log.
    Okta,
    /// GCP Cloud Audit Logs.
    GcpAudit,
    /// Azure activity / Entra audit.
    Azure,
    /// Kubernetes audit.
    K8sAudit,
    /// Suricata EVE.
    Suricata,
    /// Zeek JSON logs.
    Zeek,
    /// CrowdStrike FDR.
    CrowdStrike,
    /// AWS VPC flow logs as JSON.
    VpcFlow,
}

impl JsonFamily {
    /// Recognizes the family of one parsed record by its keys.
    pub(crate) fn sniff(obj: &Map<String, Value>) -> Self {
        Self::sniff_keys(
            |k| obj.contains_key(k),
            crate::windows::looks_like_windows(obj),
            has_array(obj, "Records"),
        )
    }

    /// Recognizes the family of one scanned record by its top-level keys.
    fn sniff_scanned(top: TopKeys) -> Self {
        let has = |k: &str| top.has(k);
        let windows =
            has("EventID") && (has("Channel") || has("SourceName") || has("Provider_Name"));
        Self::sniff_keys(has, windows, false)
    }

    /// Recognizes a family by which top-level keys `has`, whether the record is a
    /// Windows event and whether it holds a `Records` array.
    fn sniff_keys(has: impl Fn(&str) -> bool, windows: bool, records_array: bool) -> Self {
        // Keys are matched as the sources spell them; a few exporters lower-case them
        // (`protopayload`), hence the alternatives.
        if windows {
            Self::Windows
        } else if has("eventSource") && has("eventName") || records_array {
            Self::CloudTrail
        } else if has("eventType")
            && (has("actor") || has("legacyEventType") || has("displayMessage"))
        {
            Self::Okta
        } else if has("protoPayload")
            || has("protopayload")
            || (has("logName") || has("logname")) && (has("insertId") || has("insertid"))
        {
            Self::GcpAudit
        } else if has("operationName")
            && (has("resourceId") || has("callerIpAddress") || has("category"))
        {
            Self::Azure
        } else if has("auditID") || has("objectRef") || has("verb") && has("requestURI") {
            Self::K8sAudit
        } else if has("event_type")
            && (has("flow_id") || has("src_ip") || has("in_iface") || has("stats"))
        {
            Self::Suricata
        } else if has("_path")
            || has("@stream")
            || (has("uid") && (has("id.orig_h") || has("id_orig_h")))
        {
            Self::Zeek
        } else if has("event_simpleName") || (has("aid") && has("cid")) {
            Self::CrowdStrike
        } else if (has("srcaddr") || has("srcAddr")) && (has("dstaddr") || has("dstAddr"))
            || has("interface-id")
        {
            Self::VpcFlow
        } else {
            Self::Generic
        }
    }

    fn mapping(self) -> &'static Mapping {
        match self {
            Self::Auto | Self::Generic | Self::Windows => &mapping::GENERIC,
            Self::CloudTrail => &mapping::CLOUDTRAIL,
            Self::Okta => &mapping::OKTA,
            Self::GcpAudit => &mapping::GCP_AUDIT,
            Self::Azure => &mapping::AZURE,
            Self::K8sAudit => &mapping::K8S_AUDIT,
            Self::Suricata => &mapping::SURICATA,
            Self::Zeek => &mapping::ZEEK,
            Self::CrowdStrike => &mapping::CROWDSTRIKE_FDR,
            Self::VpcFlow => &mapping::VPC_FLOW,
        }
    }
}

/// The column mapping of Zeek logs, shared with the TSV parser.
pub(crate) fn zeek_mapping() -> &'static Mapping {
    &mapping::ZEEK
}

fn has_array(obj: &Map<String, Value>, key: &str) -> bool {
    matches!(obj.get(key), Some(Value::Array(_)))
}

/// Parser for JSON lines of one family (or of any, recognized per record).
#[derive(Debug, Clone)]
pub struct JsonLinesParser {
    family: JsonFamily,
    limits: Limits,
}

impl JsonLinesParser {
    /// A parser for `family` with the given limits.
    pub fn new(family: JsonFamily, limits: Limits) -> Self {
        Self { family, limits }
    }

    /// Parses one JSON record into rows: scanned straight into `sink` when it is a
    /// plain object, else parsed as a tree.
    fn parse_record<'c>(
        &self,
        ctx: &RecordCtx<'c>,
        raw: &'c [u8],
        sink: &mut FieldSink<'c>,
        out: &mut Output<'_>,
    ) -> Result<(), Reject> {
        if let Ok(text) = std::str::from_utf8(raw) {
            sink.reset(text);
            if let Some(top) = scan::scan_record(text, sink, ctx.limits.max_depth) {
                if let Some(family) = self.scanned_family(top, sink) {
                    if family == JsonFamily::Windows {
                        crate::windows::add_flat_aliases(sink);
                        crate::windows::prepare(sink);
                    }
                    let sink = &*sink;
                    let mut row = if family == JsonFamily::Windows {
                        crate::windows::normalize(sink, ctx, raw)
                    } else {
                        normalize(family, sink, ctx, raw)
                    };
                    out.row(&mut row, sink.iter());
                    return Ok(());
                }
            }
        }
        self.parse_tree(ctx, raw, out)
    }

    /// The family of a scanned record, or None when its form needs the tree path.
    fn scanned_family(&self, top: TopKeys, sink: &FieldSink<'_>) -> Option<JsonFamily> {
        let xml_inside = top.has("SyslogMessage")
            && sink
                .get("SyslogMessage")
                .is_some_and(crate::windows::xml::looks_like_xml_event);
        if top.needs_tree() || xml_inside {
            return None;
        }
        Some(match self.family {
            JsonFamily::Auto => JsonFamily::sniff_scanned(top),
            f => f,
        })
    }

    /// Parses one JSON record as a tree into rows (several for a CloudTrail `Records`
    /// file); writes nothing unless every row can be made.
    fn parse_tree(
        &self,
        ctx: &RecordCtx<'_>,
        raw: &[u8],
        out: &mut Output<'_>,
    ) -> Result<(), Reject> {
        let value: Value = serde_json::from_slice(raw).map_err(|e| format!("invalid JSON: {e}"))?;
        let d = depth(&value);
        if d > ctx.limits.max_depth {
            return Err(format!(
                "JSON nesting depth {d} exceeds the limit of {}",
                ctx.limits.max_depth
            ));
        }
        let Value::Object(obj) = value else {
            return Err("JSON record is not an object".into());
        };
        let family = match self.family {
            JsonFamily::Auto => JsonFamily::sniff(&obj),
            f => f,
        };
        if let (JsonFamily::CloudTrail, Some(Value::Array(records))) = (family, obj.get("Records"))
        {
            if records.iter().any(|r| !r.is_object()) {
                return Err("a CloudTrail `Records` item is not an object".into());
            }
            for record in records {
                let Value::Object(r) = record else {
                    continue;
                };
                let raw = serde_json::to_vec(record).unwrap_or_default();
                let mut sink = FieldSink::new(ctx.limits);
                sink.push_object("", r);
                sink.index_all();
                let mut row = normalize(JsonFamily::CloudTrail, &sink, ctx, &raw);
                out.row(&mut row, sink.iter());
            }
            return Ok(());
        }
        let mut sink = FieldSink::new(ctx.limits);
        if family != JsonFamily::Windows {
            sink.push_object("", &obj);
            sink.index_all();
            let mut row = normalize(family, &sink, ctx, raw);
            out.row(&mut row, sink.iter());
            return Ok(());
        }
        let mut extra = FieldSink::new(ctx.limits);
        if let Some(xml) = crate::windows::syslog_message_xml(&obj) {
            let mut wrapper = obj.clone();
            wrapper.remove("SyslogMessage");
            crate::windows::read_xml(xml, Some(&wrapper), &mut sink, &mut extra)?;
        } else {
            crate::windows::push_tree(&obj, &mut sink);
            crate::windows::prepare(&mut sink);
        }
        let mut row = crate::windows::normalize(&sink, ctx, raw);
        out.row(
            &mut row,
            crate::windows::with_extra(&sink, &extra, ctx.limits),
        );
        Ok(())
    }
}

/// Normalizes the fields of one record of a known family (not Windows) into a row.
pub(crate) fn normalize<'s>(
    family: JsonFamily,
    sink: &'s FieldSink<'_>,
    ctx: &RecordCtx<'s>,
    raw: &[u8],
) -> Row<'s> {
    let mapping = family.mapping();
    let mut row = ctx.row(dataset(family, mapping, sink), raw);
    mapping.apply(&mut row, sink);
    outcome(family, &mut row, sink);
    tag_truncation(&mut row, sink);
    row
}

/// The dataset: Zeek names its log (`zeek.conn`), the rest are fixed.
fn dataset(family: JsonFamily, mapping: &Mapping, f: &FieldSink<'_>) -> Cow<'static, str> {
    if family == JsonFamily::Zeek {
        if let Some(path) = f.get("_path").or_else(|| f.get("@stream")) {
            let clean: String = path
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !clean.is_empty() {
                return Cow::Owned(format!("zeek.{clean}"));
            }
        }
    }
    Cow::Borrowed(mapping.dataset)
}

/// `event.outcome` and kind by each family's conventions.
fn outcome(family: JsonFamily, row: &mut Row<'_>, f: &FieldSink<'_>) {
    let lower = |k: &str| f.get(k).map(str::to_ascii_lowercase);
    let outcome = match family {
        JsonFamily::CloudTrail => Some(if f.get("errorCode").is_some() {
            "failure"
        } else {
            "success"
        }),
        JsonFamily::Okta => match lower("outcome.result").as_deref() {
            Some("success" | "allow") => Some("success"),
            Some("failure" | "deny") => Some("failure"),
            Some(_) => Some("unknown"),
            None => None,
        },
        JsonFamily::GcpAudit => match f.get("protoPayload.status.code") {
            Some(code) if code != "0" => Some("failure"),
            _ => Some("success"),
        },
        JsonFamily::Azure => match lower("resultType")
            .or_else(|| lower("properties.result"))
            .as_deref()
        {
            Some("success" | "succeeded") => Some("success"),
            Some("failure" | "failed") => Some("failure"),
            _ => None,
        },
        JsonFamily::K8sAudit => f
            .get("responseStatus.code")
            .and_then(|c| c.parse::<u16>().ok())
            .map(|c| if c < 400 { "success" } else { "failure" }),
        _ => None,
    };
    row.set_opt(TextCol::Outcome, outcome);
    if family == JsonFamily::Suricata && f.get("event_type") == Some("alert") {
        row.set(TextCol::Kind, "alert");
    }
    if family == JsonFamily::CloudTrail && f.get("eventName") == Some("ConsoleLogin") {
        row.set(TextCol::Category, "authentication");
    }
}

impl Parser for JsonLinesParser {
    fn name(&self) -> &str {
        "json"
    }

    fn parse(
        &self,
        chunk: &RawChunk,
        events: &mut EventBatchBuilder,
        dead_letters: &mut Vec<DeadLetter>,
    ) -> ParseStats {
        let ctx = RecordCtx::new(chunk, &self.limits);
        // A whole document (pretty-printed, or a CloudTrail `Records` file) that is not
        // one record per line: parse it as one record.
        let trimmed = chunk.bytes.trim_ascii_start();
        if trimmed.starts_with(b"{") && memchr::memchr(b'\n', trimmed.trim_ascii_end()).is_some() {
            if let Ok(Value::Object(_)) = serde_json::from_slice::<Value>(trimmed) {
                let mut out = Output::new(events);
                if self.parse_tree(&ctx, trimmed, &mut out).is_ok() {
                    return ParseStats {
                        events: out.commit(),
                        dead_letters: 0,
                    };
                }
                out.discard();
            }
        }
        let mut sink = FieldSink::over("", &self.limits);
        parse_lines(&ctx, "json", events, dead_letters, |line, out| {
            self.parse_record(&ctx, line, &mut sink, out)
        })
    }
}
