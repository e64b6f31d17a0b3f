//! Input formats by name, recognition of a format from the first bytes, and the parser
//! for each.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use vedette_core::dead_letter::DeadLetter;
use vedette_core::event::EventBatchBuilder;
use vedette_core::traits::{ParseStats, Parser, RawChunk};
use vedette_core::CoreError;

use crate::json::{JsonFamily, JsonLinesParser};
use crate::limits::Limits;
use crate::syslog::{TextContent, TextLineParser};
use crate::windows::evtx_file::{EvtxFileParser, EVTX_MAGIC};

/// An input format, as named on the command line, in config and in the
/// `X-Vedette-Format` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Recognize from the bytes (per chunk, then per record).
    Auto,
    /// JSON lines of any known family, recognized per record.
    Json,
    /// Windows events from a JSON shipper (evtx_dump, Winlogbeat, flat forms).
    WindowsJson,
    /// EVTX files.
    Evtx,
    /// Windows events rendered as XML, one per line (Event Viewer export, forwarders).
    WindowsXml,
    /// AWS CloudTrail JSON (records per line, or `{"Records": [...]}` files).
    CloudTrail,
    /// Okta System Log JSON.
    Okta,
    /// GCP Cloud Audit Logs JSON.
    GcpAudit,
    /// Azure activity / Entra audit JSON.
    Azure,
    /// Kubernetes audit JSON.
    K8sAudit,
    /// Suricata EVE JSON.
    Suricata,
    /// Zeek JSON logs.
    ZeekJson,
    /// Zeek TSV logs (with their `#fields` header).
    ZeekTsv,
    /// Linux audit logs.
    Auditd,
    /// Syslog lines (RFC 3164/5424), content recognized per line.
    Syslog,
    /// CEF, with or without a syslog header.
    Cef,
    /// LEEF 1.0/2.0, with or without a syslog header.
    Leef,
    /// PAN-OS CSV.
    PanOs,
    /// FortiGate key=value.
    FortiGate,
    /// Generic key=value lines.
    KeyValue,
}

/// Every format with its name, for parsing and help text.
pub const FORMATS: &[(Format, &str)] = &[
    (Format::Auto, "auto"),
    (Format::Json, "json"),
    (Format::WindowsJson, "windows-json"),
    (Format::Evtx, "evtx"),
    (Format::WindowsXml, "windows-xml"),
    (Format::CloudTrail, "cloudtrail"),
    (Format::Okta, "okta"),
    (Format::GcpAudit, "gcp-audit"),
    (Format::Azure, "azure"),
    (Format::K8sAudit, "k8s-audit"),
    (Format::Suricata, "suricata"),
    (Format::ZeekJson, "zeek-json"),
    (Format::ZeekTsv, "zeek-tsv"),
    (Format::Auditd, "auditd"),
    (Format::Syslog, "syslog"),
    (Format::Cef, "cef"),
    (Format::Leef, "leef"),
    (Format::PanOs, "paloalto"),
    (Format::FortiGate, "fortigate"),
    (Format::KeyValue, "kv"),
];

impl Format {
    /// The format's name.
    pub fn name(self) -> &'static str {
        FORMATS
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("auto", |(_, n)| n)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        FORMATS
            .iter()
            .find(|(_, n)| *n == wanted)
            .map(|(f, _)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = FORMATS.iter().map(|(_, n)| *n).collect();
                CoreError::BadInput(format!("unknown format `{s}`; known: {}", names.join(", ")))
            })
    }
}

/// Recognizes the format of a chunk from its first bytes (and the file name, when
/// known): EVTX by magic, Zeek TSV by its `#separator` header, audit logs by their
/// `msg=audit(` stamp, JSON by a leading `{`, anything else as syslog lines, whose
/// content is then recognized per line.
pub fn detect_format(bytes: &[u8], file_name: Option<&str>) -> Format {
    if bytes.starts_with(EVTX_MAGIC)
        || file_name.is_some_and(|n| n.to_ascii_lowercase().ends_with(".evtx"))
    {
        return Format::Evtx;
    }
    if bytes.starts_with(b"#separator") {
        return Format::ZeekTsv;
    }
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    if crate::auditd::looks_like_audit(first_line) {
        return Format::Auditd;
    }
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Format::Json,
        _ => Format::Syslog,
    }
}

/// The parser for a format.
pub fn parser_for(format: Format, limits: Limits) -> Box<dyn Parser> {
    let json = |family| -> Box<dyn Parser> { Box::new(JsonLinesParser::new(family, limits)) };
    let text = |content| -> Box<dyn Parser> { Box::new(TextLineParser::new(content, limits)) };
    match format {
        Format::Auto => Box::new(AutoParser {
            limits,
            formats: Mutex::new(HashMap::new()),
            parsers: Mutex::new(HashMap::new()),
        }),
        Format::Json => json(JsonFamily::Auto),
        Format::WindowsJson => json(JsonFamily::Windows),
        Format::Evtx => Box::new(EvtxFileParser::new(limits)),
        Format::CloudTrail => json(JsonFamily::CloudTrail),
        Format::Okta => json(JsonFamily::Okta),
        Format::GcpAudit => json(JsonFamily::GcpAudit),
        Format::Azure => json(JsonFamily::Azure),
        Format::K8sAudit => json(JsonFamily::K8sAudit),
        Format::Suricata => json(JsonFamily::Suricata),
        Format::ZeekJson => json(JsonFamily::Zeek),
        Format::ZeekTsv => Box::new(crate::zeek_tsv::ZeekTsvParser::new(limits)),
        Format::Auditd => Box::new(crate::auditd::AuditdParser::new(limits)),
        Format::Syslog => text(TextContent::Auto),
        Format::Cef => text(TextContent::Cef),
        Format::Leef => text(TextContent::Leef),
        Format::PanOs => text(TextContent::PanOs),
        Format::FortiGate => text(TextContent::FortiGate),
        Format::KeyValue => text(TextContent::KeyValue),
        Format::WindowsXml => text(TextContent::WindowsXml),
    }
}

/// Most origins whose format is remembered; past that the memory is cleared.
const MAX_REMEMBERED: usize = 4096;

/// Recognizes the format of each origin's first chunk, then parses that origin's
/// chunks with that format's parser (one instance per format, so stateful parsers such
/// as Zeek TSV see every chunk of a log).
struct AutoParser {
    limits: Limits,
    formats: Mutex<HashMap<String, Format>>,
    parsers: Mutex<HashMap<&'static str, Arc<dyn Parser>>>,
}

impl AutoParser {
    fn format_of(&self, chunk: &RawChunk) -> Format {
        let mut formats = self.formats.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = formats.get(&chunk.origin) {
            return *f;
        }
        let format = detect_format(&chunk.bytes, Some(chunk.origin.as_str()));
        if formats.len() >= MAX_REMEMBERED {
            formats.clear();
        }
        formats.insert(chunk.origin.clone(), format);
        format
    }

    fn parser(&self, format: Format) -> Arc<dyn Parser> {
        let mut parsers = self.parsers.lock().unwrap_or_else(PoisonError::into_inner);
        parsers
            .entry(format.name())
            .or_insert_with(|| Arc::from(parser_for(format, self.limits)))
            .clone()
    }
}

impl Parser for AutoParser {
    fn name(&self) -> &str {
        "auto"
    }

    fn parse(
        &self,
        chunk: &RawChunk,
        events: &mut EventBatchBuilder,
        dead_letters: &mut Vec<DeadLetter>,
    ) -> ParseStats {
        let format = self.format_of(chunk);
        self.parser(format).parse(chunk, events, dead_letters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (format, name) in FORMATS {
            assert_eq!(name.parse::<Format>().ok(), Some(*format));
            assert_eq!(format.to_string(), *name);
        }
        let err = "xml"
            .parse::<Format>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("unknown format `xml`") && err.contains("cef"),
            "{err}"
        );
    }

    #[test]
    fn detection_by_magic_and_first_byte() {
        assert_eq!(detect_format(b"ElfFile\0rest", None), Format::Evtx);
        assert_eq!(detect_format(b"  {\"a\":1}", None), Format::Json);
        assert_eq!(
            detect_format(b"<34>Oct 11 22:14:15 host su: x", None),
            Format::Syslog
        );
        assert_eq!(
            detect_format(b"", Some("C:/logs/Security.EVTX")),
            Format::Evtx
        );
        assert_eq!(
            detect_format(b"#separator \\x09\n#fields\tts", None),
            Format::ZeekTsv
        );
        assert_eq!(
            detect_format(b"type=SYSCALL msg=audit(1.0:2): pid=1\n", None),
            Format::Auditd
        );
    }
}
