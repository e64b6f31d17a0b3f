//! JSON lines: one JSON object per line, recognized per record (Windows shippers,
//! CloudTrail, Okta, GCP audit, Azure, Kubernetes audit, Suricata EVE, Zeek, CrowdStrike
//! FDR, VPC flow) or taken as generic JSON. CloudTrail's `{"Records": [...]}` files are
//! split into one event per record.

mod mapping;

use serde_json::{Map, Value};
use vedette_core::dead_letter::DeadLetter;
use vedette_core::event::{Event, EventBatchBuilder};
use vedette_core::traits::{ParseStats, Parser, RawChunk};

use crate::flatten::{depth, FieldSink};
use crate::limits::Limits;
use crate::record::{parse_lines, set_fields, RecordCtx, Reject};
use mapping::Mapping;

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
    /// Recognizes the family of one record by its keys.
    pub(crate) fn sniff(obj: &Map<String, Value>) -> Self {
        let has = |k: &str| obj.contains_key(k);
        // Keys are matched as the sources spell them; a few exporters lower-case them
        // (`protopayload`), hence the alternatives.
        if crate::windows::looks_like_windows(obj) {
            Self::Windows
        } else if has("eventSource") && has("eventName")
            || has("Records") && has_array(obj, "Records")
        {
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

    /// Parses one JSON record into events (several for a CloudTrail `Records` file).
    fn parse_record(
        &self,
        ctx: &RecordCtx<'_>,
        raw: &[u8],
        out: &mut Vec<Event>,
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
            for record in records {
                let Value::Object(r) = record else {
                    return Err("a CloudTrail `Records` item is not an object".into());
                };
                let raw = serde_json::to_vec(record).unwrap_or_default();
                out.push(normalize(JsonFamily::CloudTrail, r, ctx, &raw)?);
            }
            return Ok(());
        }
        out.push(normalize(family, &obj, ctx, raw)?);
        Ok(())
    }
}

/// Normalizes one object of a known family.
pub(crate) fn normalize(
    family: JsonFamily,
    obj: &Map<String, Value>,
    ctx: &RecordCtx<'_>,
    raw: &[u8],
) -> Result<Event, Reject> {
    if family == JsonFamily::Windows {
        if let Some(xml) = crate::windows::syslog_message_xml(obj) {
            let mut wrapper = obj.clone();
            wrapper.remove("SyslogMessage");
            return crate::windows::normalize_xml(xml, Some(&wrapper), ctx, raw);
        }
        return Ok(crate::windows::normalize(obj, ctx, raw));
    }
    let mapping = family.mapping();
    let mut sink = FieldSink::new(ctx.limits);
    sink.push_object("", obj);
    let dataset = dataset(family, mapping, &sink);
    let mut event = ctx.event(&dataset, raw);
    mapping.apply(&mut event, &sink);
    outcome(family, &mut event, &sink);
    set_fields(&mut event, sink);
    Ok(event)
}

/// The dataset: Zeek names its log (`zeek.conn`), the rest are fixed.
fn dataset(family: JsonFamily, mapping: &Mapping, f: &FieldSink) -> String {
    if family == JsonFamily::Zeek {
        if let Some(path) = f.get("_path").or_else(|| f.get("@stream")) {
            let clean: String = path
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !clean.is_empty() {
                return format!("zeek.{clean}");
            }
        }
    }
    mapping.dataset.to_string()
}

/// `event.outcome` and kind by each family's conventions.
fn outcome(family: JsonFamily, event: &mut Event, f: &FieldSink) {
    let lower = |k: &str| f.get(k).map(str::to_ascii_lowercase);
    event.outcome = match family {
        JsonFamily::CloudTrail => Some(
            if f.get("errorCode").is_some() {
                "failure"
            } else {
                "success"
            }
            .into(),
        ),
        JsonFamily::Okta => match lower("outcome.result").as_deref() {
            Some("success" | "allow") => Some("success".into()),
            Some("failure" | "deny") => Some("failure".into()),
            Some(_) => Some("unknown".into()),
            None => None,
        },
        JsonFamily::GcpAudit => match f.get("protoPayload.status.code") {
            Some(code) if code != "0" => Some("failure".into()),
            _ => Some("success".into()),
        },
        JsonFamily::Azure => match lower("resultType")
            .or_else(|| lower("properties.result"))
            .as_deref()
        {
            Some("success" | "succeeded") => Some("success".into()),
            Some("failure" | "failed") => Some("failure".into()),
            _ => None,
        },
        JsonFamily::K8sAudit => f
            .get("responseStatus.code")
            .and_then(|c| c.parse::<u16>().ok())
            .map(|c| if c < 400 { "success" } else { "failure" }.to_string()),
        _ => None,
    };
    if family == JsonFamily::Suricata && f.get("event_type") == Some("alert") {
        event.kind = Some("alert".into());
    }
    if family == JsonFamily::CloudTrail && f.get("eventName") == Some("ConsoleLogin") {
        event.category = Some("authentication".into());
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
                let mut out = Vec::new();
                if self.parse_record(&ctx, trimmed, &mut out).is_ok() {
                    out.iter().for_each(|e| events.append(e));
                    return ParseStats {
                        events: out.len(),
                        dead_letters: 0,
                    };
                }
            }
        }
        parse_lines(&ctx, "json", events, dead_letters, |line, out| {
            self.parse_record(&ctx, line, out)
        })
    }
}
