//! ArcSight Common Event Format (CEF) 0.x/1.x:
//! `CEF:Version|Vendor|Product|Version|Signature ID|Name|Severity|Extension`.
//!
//! Header fields escape `\|` and `\\`; extension values escape `\=`, `\\`, `\n`, `\r`.
//! A value runs until the space before the next `key=`. Custom fields with labels
//! (`cs1Label=Foo cs1=bar`) are also reachable by their label (`Foo`).

use crate::text::Needle;
use vedette_core::event::Event;

use crate::flatten::FieldSink;
use crate::text::parse_int;
use crate::timestamp::{parse_any, parse_datetime, ParsedTime};

/// A parsed CEF message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cef {
    /// CEF version (0 or 1).
    pub(crate) version: String,
    /// The six header fields after the version.
    pub(crate) header: [String; 6],
    /// Extension key/value pairs in order.
    pub(crate) extensions: Vec<(String, String)>,
}

/// Names of the header fields after `cefVersion`, as the CEF guide names them.
pub(crate) const HEADER_NAMES: [&str; 6] = [
    "deviceVendor",
    "deviceProduct",
    "deviceVersion",
    "deviceEventClassId",
    "name",
    "severity",
];

/// Where `CEF:` starts in a message, if it carries CEF.
pub(crate) fn find(message: &str) -> Option<usize> {
    static TAG: Needle = Needle::new("CEF:");
    let i = TAG.find(message)?;
    (i == 0 || message.as_bytes()[i - 1] == b' ').then_some(i)
}

/// Parses a CEF message starting at `CEF:`.
pub(crate) fn parse(text: &str) -> Result<Cef, String> {
    let body = text.strip_prefix("CEF:").ok_or("missing `CEF:` prefix")?;
    let mut fields = Vec::with_capacity(7);
    let mut current = String::new();
    let mut chars = body.char_indices();
    let mut extension_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, n @ ('|' | '\\'))) => current.push(n),
                Some((_, n)) => {
                    current.push('\\');
                    current.push(n);
                }
                None => current.push('\\'),
            },
            '|' => {
                fields.push(std::mem::take(&mut current));
                if fields.len() == 7 {
                    extension_start = Some(i + 1);
                    break;
                }
            }
            other => current.push(other),
        }
    }
    let start = match extension_start {
        Some(start) => start,
        // A message may end right after the severity, with no extension at all.
        None if fields.len() == 6 && !current.is_empty() => {
            fields.push(std::mem::take(&mut current));
            body.len()
        }
        None => {
            return Err(format!(
                "CEF header has {} of its 7 `|`-separated fields",
                fields.len() + 1
            ))
        }
    };
    let version = fields[0].trim().to_string();
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("CEF version `{}` is not a number", fields[0]));
    }
    let mut header: [String; 6] = Default::default();
    for (slot, value) in header.iter_mut().zip(fields.into_iter().skip(1)) {
        *slot = value;
    }
    Ok(Cef {
        version,
        header,
        extensions: extensions(&body[start..]),
    })
}

/// Splits a CEF extension into key/value pairs, unescaping values.
pub(crate) fn extensions(text: &str) -> Vec<(String, String)> {
    let bytes = text.as_bytes();
    // Positions of unescaped `=`.
    let mut equals = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' => {
                equals.push(i);
                i += 1;
            }
            _ => i += 1,
        }
    }
    // Each `=` whose key is a plain token starts a pair; other `=` belong to values.
    let mut starts = Vec::new(); // (key start, equals index)
    let mut previous_eq = 0;
    for &eq in &equals {
        // Search back only to the previous `=`: a key never spans one (linear overall).
        let key_start = match text[previous_eq..eq].rfind(' ') {
            Some(space) => previous_eq + space + 1,
            None if previous_eq == 0 => 0,
            None => eq,
        };
        previous_eq = eq;
        let key = &text[key_start..eq];
        let plain = !key.is_empty()
            && key.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'[' | b']')
            });
        if plain
            && starts
                .last()
                .is_none_or(|&(_, last_eq)| key_start > last_eq)
        {
            starts.push((key_start, eq));
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (n, &(key_start, eq)) in starts.iter().enumerate() {
        let end = starts
            .get(n + 1)
            .map_or(text.len(), |&(next_key, _)| next_key.saturating_sub(1));
        let raw = text.get(eq + 1..end.max(eq + 1)).unwrap_or_default();
        out.push((
            text[key_start..eq].to_string(),
            unescape_value(raw.trim_end()),
        ));
    }
    out
}

fn unescape_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(n @ ('=' | '\\' | '|')) => out.push(n),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// CEF severity as a number: 0-10, or the named levels of CEF 1.
fn severity(text: &str) -> Option<i64> {
    match text.trim().to_ascii_lowercase().as_str() {
        "unknown" => None,
        "low" => Some(3),
        "medium" => Some(6),
        "high" => Some(8),
        "very-high" | "very high" => Some(10),
        other => parse_int(other),
    }
}

/// Splits a trailing zone off a time: `UTC`/`GMT`/`Z` (offset 0) or a numeric offset
/// (`+0100`, `-05:00`). Returns the rest, and the offset in seconds when known. Other zone
/// names (`PST`) are ambiguous and read as missing.
fn split_zone(text: &str) -> (&str, Option<i32>) {
    let Some((rest, zone)) = text.rsplit_once(' ') else {
        return (text, None);
    };
    match zone {
        "UTC" | "GMT" | "Z" => (rest, Some(0)),
        z if (z.starts_with('+') || z.starts_with('-')) && z.len() >= 5 => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
            let (h, m) = (
                digits.get(..2).and_then(|h| h.parse::<i32>().ok()),
                digits.get(2..4).and_then(|m| m.parse::<i32>().ok()),
            );
            match (h, m) {
                (Some(h), Some(m)) if digits.len() == 4 => (rest, Some(sign * (h * 3600 + m * 60))),
                _ => (text, None),
            }
        }
        z if z.len() <= 5 && z.chars().all(|c| c.is_ascii_uppercase()) => (rest, None),
        _ => (text, None),
    }
}

/// CEF times (the forms of the CEF guide): epoch milliseconds, or
/// `MMM dd [yyyy] HH:mm:ss[.SSS] [zone]`, or ISO 8601. Without a year, the year is
/// inferred from `reference_ms` as for BSD syslog; without a usable zone, UTC is assumed
/// and the event tagged `timezone_missing`.
pub(crate) fn parse_time(text: &str, reference_ms: i64) -> Option<ParsedTime> {
    let t = text.trim();
    if let Some(p) = parse_any(t) {
        return Some(p);
    }
    let (clock, offset) = split_zone(t);
    let naive_ms = ["%b %d %Y %H:%M:%S%.3f", "%b %d %Y %H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(clock, f).ok())
        .map(|n| n.and_utc().timestamp_millis())
        .or_else(|| {
            crate::timestamp::parse_bsd(clock, reference_ms)
                .filter(|(_, used)| *used == clock.len())
                .map(|(ms, _)| ms)
        });
    if let Some(ms) = naive_ms {
        return Some(ParsedTime {
            ms: ms - i64::from(offset.unwrap_or(0)) * 1000,
            zone_missing: offset.is_none(),
        });
    }
    parse_datetime(t)
}

/// Adds the CEF fields to `sink` and fills the common columns. Returns the time text of
/// the event, if it carries one (`rt`, `end`, `start`).
pub(crate) fn apply<'a>(
    cef: &'a Cef,
    event: &mut Event,
    sink: &mut FieldSink<'_>,
) -> Option<&'a str> {
    sink.push("cefVersion", cef.version.clone());
    for (name, value) in HEADER_NAMES.iter().zip(&cef.header) {
        sink.push(*name, value.clone());
    }
    for (k, v) in &cef.extensions {
        sink.push(k.clone(), v.clone());
    }
    // Labelled custom fields: `cs1Label=Foo cs1=bar` is also `Foo=bar`.
    for (k, label) in cef.extensions.iter().filter(|(k, _)| k.ends_with("Label")) {
        let base = &k[..k.len() - "Label".len()];
        if let Some((_, v)) = cef.extensions.iter().find(|(key, _)| key == base) {
            if !label.is_empty() && sink.get(label).is_none() {
                sink.push(label.clone(), v.clone());
            }
        }
    }
    let ext = |k: &str| {
        cef.extensions
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let owned = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| ext(k))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    event.provider = Some(
        format!("{} {}", cef.header[0], cef.header[1])
            .trim()
            .to_string(),
    );
    event.code = Some(cef.header[3].clone()).filter(|c| !c.is_empty());
    event.severity = severity(&cef.header[5]);
    event.action =
        owned(&["act"]).or_else(|| Some(cef.header[4].clone()).filter(|n| !n.is_empty()));
    event.source_ip = owned(&["src", "c6a2", "sourceTranslatedAddress"]);
    event.source_port = ext("spt").and_then(parse_int);
    event.destination_ip = owned(&["dst", "c6a3"]);
    event.destination_port = ext("dpt").and_then(parse_int);
    event.network_transport = owned(&["proto"]).map(|p| p.to_ascii_lowercase());
    event.user_name = owned(&["suser", "duser"]);
    event.host_name = owned(&["dvchost", "shost"]).or(event.host_name.take());
    event.host_ip = owned(&["dvc"]);
    event.url_full = owned(&["request"]);
    event.file_path = owned(&["filePath", "fname"]);
    event.file_sha256 = owned(&["fileHash"])
        .filter(|h| h.len() == 64)
        .map(|h| h.to_ascii_lowercase());
    event.process_executable = owned(&["sproc", "dproc"]);
    event.outcome = owned(&["outcome"]).map(|o| o.to_ascii_lowercase());
    ["rt", "end", "start"].iter().find_map(|k| ext(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_extensions_with_escapes() -> Result<(), String> {
        let c = parse(
            r"CEF:0|Sec\|urity|tm|1.0|100|name \\ here|10|src=10.0.0.1 act=blocked a \= dst=1.1.1.1 msg=line1\nline2 cs1Label=Policy cs1=Strict",
        )?;
        assert_eq!(c.header[0], "Sec|urity");
        assert_eq!(c.header[4], "name \\ here");
        let get = |k: &str| {
            c.extensions
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("act").as_deref(), Some("blocked a ="));
        assert_eq!(get("dst").as_deref(), Some("1.1.1.1"));
        assert_eq!(get("msg").as_deref(), Some("line1\nline2"));
        assert_eq!(get("cs1").as_deref(), Some("Strict"));
        Ok(())
    }

    #[test]
    fn values_may_contain_spaces_and_equals_inside_words() -> Result<(), String> {
        let c = parse("CEF:0|V|P|1|2|n|3|msg=a b=c d request=http://x/?q=1&r=2 src=1.2.3.4")?;
        let keys: Vec<&str> = c.extensions.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["msg", "b", "request", "src"]);
        assert_eq!(c.extensions[2].1, "http://x/?q=1&r=2");
        Ok(())
    }

    #[test]
    fn times_in_the_forms_of_the_cef_guide() {
        let reference = 1_795_780_800_000; // 2026-11-27T12:00:00Z
        let at = |t: &str| parse_time(t, reference);
        let utc = at("Jan 02 2026 10:00:00.500 UTC");
        assert_eq!(
            utc,
            Some(ParsedTime {
                ms: 1_767_348_000_500,
                zone_missing: false
            })
        );
        let offset = at("Jan 02 2026 11:00:00 +0100").map(|p| p.ms);
        assert_eq!(offset, Some(1_767_348_000_000));
        let no_year = at("Jan 02 10:00:00.500 GMT").map(|p| p.ms);
        assert_eq!(no_year, Some(1_767_348_000_500));
        let named = at("Jan 02 2026 10:00:00 PST");
        assert_eq!(named.map(|p| p.zone_missing), Some(true));
        assert_eq!(at("1388577600000").map(|p| p.ms), Some(1_388_577_600_000));
        assert_eq!(at("not a time"), None);
    }

    #[test]
    fn short_header_and_bad_version_are_errors() {
        assert!(parse("CEF:0|a|b|c").is_err());
        let no_extension = parse("CEF:0|security|threatmanager|1.0|100|Detected a threat.|10");
        assert_eq!(
            no_extension.map(|c| (c.header[5].clone(), c.extensions.len())),
            Ok(("10".to_string(), 0))
        );
        assert!(parse("CEF:x|a|b|c|d|e|f|").is_err());
        assert!(parse("LEEF:1.0|a").is_err());
        assert!(parse("CEF: 0|Ubiquiti|UniFi Network|9.4.19|544|Admin|1|src=1.1.1.1").is_ok());
    }
}
