//! IBM QRadar Log Event Extended Format (LEEF) 1.0 and 2.0:
//! `LEEF:1.0|Vendor|Product|Version|EventID|k=v<TAB>k=v...` and
//! `LEEF:2.0|Vendor|Product|Version|EventID|DelimiterChar|k=v<DELIM>k=v...`, where the
//! 2.0 delimiter is one character or its hex code (`^`, `x09`, `0x7C`).

use crate::text::Needle;
use vedette_core::event::Event;

use crate::flatten::FieldSink;
use crate::text::parse_int;

/// A parsed LEEF message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leef {
    /// `1.0` or `2.0`.
    pub(crate) version: String,
    /// Vendor, product, product version, event id.
    pub(crate) header: [String; 4],
    /// Attributes in order.
    pub(crate) attributes: Vec<(String, String)>,
    /// Attribute text that was not `key=value`.
    pub(crate) unparsed: Vec<String>,
}

/// Header field names after the version.
pub(crate) const HEADER_NAMES: [&str; 4] = ["vendor", "product", "productVersion", "eventId"];

/// Where `LEEF:` starts in a message, if it carries LEEF.
pub(crate) fn find(message: &str) -> Option<usize> {
    static TAG: Needle = Needle::new("LEEF:");
    let i = TAG.find(message)?;
    (i == 0 || message.as_bytes()[i - 1] == b' ').then_some(i)
}

/// Splits `s` on unescaped `|`, at most `n` times; returns the parts and the rest.
fn split_header(s: &str, n: usize) -> Option<(Vec<String>, &str)> {
    let mut parts = Vec::with_capacity(n);
    let mut current = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '|')) => current.push('|'),
                Some((_, o)) => {
                    current.push('\\');
                    current.push(o);
                }
                None => current.push('\\'),
            },
            '|' => {
                parts.push(std::mem::take(&mut current));
                if parts.len() == n {
                    return Some((parts, &s[i + 1..]));
                }
            }
            o => current.push(o),
        }
    }
    None
}

/// The LEEF 2.0 delimiter from its header field.
fn delimiter(field: &str) -> Option<char> {
    let f = field.trim();
    let hex = f
        .strip_prefix("0x")
        .or_else(|| f.strip_prefix("x"))
        .or_else(|| f.strip_prefix("X"));
    match hex {
        Some(h) if !h.is_empty() => u32::from_str_radix(h, 16).ok().and_then(char::from_u32),
        _ => {
            let mut chars = f.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        }
    }
}

/// Parses a LEEF message starting at `LEEF:`.
pub(crate) fn parse(text: &str) -> Result<Leef, String> {
    let body = text.strip_prefix("LEEF:").ok_or("missing `LEEF:` prefix")?;
    let (head, rest) =
        split_header(body, 5).ok_or("LEEF header has fewer than 6 `|`-separated fields")?;
    let version = head[0].trim().to_string();
    let (delim, attrs) = match version.as_str() {
        "1.0" | "1" => ('\t', rest),
        "2.0" | "2" => match rest.split_once('|') {
            Some((d, attrs)) => (
                delimiter(d).ok_or_else(|| {
                    format!("LEEF 2.0 delimiter `{d}` is not one character or a hex code")
                })?,
                attrs,
            ),
            None => ('\t', rest),
        },
        other => return Err(format!("LEEF version `{other}` is not 1.0 or 2.0")),
    };
    let mut attributes = Vec::new();
    let mut unparsed = Vec::new();
    for item in attrs.split(delim).filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                attributes.push((k.trim().to_string(), v.to_string()))
            }
            _ => unparsed.push(item.to_string()),
        }
    }
    let header = [
        head[1].clone(),
        head[2].clone(),
        head[3].clone(),
        head[4].clone(),
    ];
    Ok(Leef {
        version,
        header,
        attributes,
        unparsed,
    })
}

/// Adds the LEEF fields to `sink` and fills the common columns (the time: [`dev_time`]).
pub(crate) fn apply(leef: &Leef, event: &mut Event, sink: &mut FieldSink<'_>) {
    sink.push("leefVersion", leef.version.clone());
    for (name, value) in HEADER_NAMES.iter().zip(&leef.header) {
        sink.push(*name, value.clone());
    }
    for (k, v) in &leef.attributes {
        sink.push(k.clone(), v.clone());
    }
    if !leef.unparsed.is_empty() {
        sink.push("leef.unparsed", leef.unparsed.join("\t"));
    }
    let get = |k: &str| {
        leef.attributes
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let owned = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| get(k))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    event.provider = Some(
        format!("{} {}", leef.header[0], leef.header[1])
            .trim()
            .to_string(),
    );
    event.code = Some(leef.header[3].clone()).filter(|c| !c.is_empty());
    event.action = owned(&["cat", "action"]);
    event.severity = get("sev").and_then(parse_int);
    event.source_ip = owned(&["src"]);
    event.source_port = get("srcPort").and_then(parse_int);
    event.destination_ip = owned(&["dst"]);
    event.destination_port = get("dstPort").and_then(parse_int);
    event.network_transport = owned(&["proto"]).map(|p| p.to_ascii_lowercase());
    event.user_name = owned(&["usrName", "suser", "userName"]);
    event.host_name = owned(&["identHostName", "srcHostName"]).or(event.host_name.take());
    event.url_full = owned(&["url"]);
}

/// A Java `SimpleDateFormat` pattern (LEEF's `devTimeFormat`) as a chrono format, for
/// the letters devices use; None for a pattern with letters it does not know.
fn java_to_chrono(pattern: &str) -> Option<String> {
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal text.
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|x| **x == c).count();
        let piece = match (c, run) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', _) => "%b",
            ('d', _) => "%d",
            ('H', _) => "%H",
            ('h', _) => "%I",
            ('m', _) => "%M",
            ('s', _) => "%S",
            ('S', _) => "%3f",
            ('a', _) => "%p",
            ('Z' | 'X', _) => "%z",
            (c, _) if c.is_ascii_alphabetic() => return None,
            _ => {
                out.extend(std::iter::repeat_n(c, run));
                i += run;
                continue;
            }
        };
        out.push_str(piece);
        i += run;
    }
    Some(out)
}

/// The event time of a LEEF message: `devTime` read with `devTimeFormat` when given,
/// else in the forms CEF uses (epoch ms, `MMM dd yyyy HH:mm:ss`, ISO 8601).
pub(crate) fn dev_time(
    leef: &Leef,
    reference_ms: i64,
) -> Option<(String, Option<crate::timestamp::ParsedTime>)> {
    let get = |k: &str| {
        leef.attributes
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let text = get("devTime")?;
    let formatted = get("devTimeFormat").and_then(java_to_chrono).and_then(|f| {
        if f.contains("%z") {
            chrono::DateTime::parse_from_str(text, &f)
                .ok()
                .map(|d| crate::timestamp::ParsedTime {
                    ms: d.timestamp_millis(),
                    zone_missing: false,
                })
        } else {
            chrono::NaiveDateTime::parse_from_str(text, &f)
                .ok()
                .map(|n| crate::timestamp::ParsedTime {
                    ms: n.and_utc().timestamp_millis(),
                    zone_missing: true,
                })
        }
    });
    let parsed = formatted.or_else(|| crate::cef::parse_time(text, reference_ms));
    Some((text.to_string(), parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leef1_tab_separated() -> Result<(), String> {
        let l = parse("LEEF:1.0|CyberArk|PTA|14.0|1|Cat=Suspected|sev=8|src=src1\tuserName=mike\tdevTime=1388577600000\tempty=")?;
        assert_eq!(
            l.header,
            [
                "CyberArk".to_string(),
                "PTA".into(),
                "14.0".into(),
                "1".into()
            ]
        );
        // `|` inside the attribute text of LEEF 1.0 is data.
        assert_eq!(
            l.attributes[0],
            ("Cat".to_string(), "Suspected|sev=8|src=src1".to_string())
        );
        assert_eq!(
            l.attributes[1],
            ("userName".to_string(), "mike".to_string())
        );
        assert_eq!(l.attributes[3], ("empty".to_string(), String::new()));
        Ok(())
    }

    #[test]
    fn leef2_with_hex_and_char_delimiters() -> Result<(), String> {
        let l = parse("LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5")?;
        assert_eq!(l.attributes.len(), 3);
        let l = parse("LEEF:2.0|V|P|1|2|x09|a=1\tb=2")?;
        assert_eq!(l.attributes[1], ("b".to_string(), "2".to_string()));
        Ok(())
    }

    #[test]
    fn dev_time_follows_dev_time_format() -> Result<(), String> {
        let l = parse("LEEF:2.0|V|P|1|2|^|devTime=2026-01-02 11:00:00 +0100^devTimeFormat=yyyy-MM-dd HH:mm:ss Z")?;
        let t = dev_time(&l, 0).and_then(|(_, p)| p);
        assert_eq!(
            t.map(|p| (p.ms, p.zone_missing)),
            Some((1_767_348_000_000, false))
        );
        let l = parse(
            "LEEF:1.0|V|P|1|2|devTime=Jan 02 2026 10:00:00\tdevTimeFormat=MMM dd yyyy HH:mm:ss",
        )?;
        let t = dev_time(&l, 0).and_then(|(_, p)| p);
        assert_eq!(
            t.map(|p| (p.ms, p.zone_missing)),
            Some((1_767_348_000_000, true))
        );
        assert_eq!(
            java_to_chrono("yyyy-MM-dd'T'HH:mm:ss.SSSZ").as_deref(),
            Some("%Y-%m-%dT%H:%M:%S.%3f%z")
        );
        assert_eq!(java_to_chrono("QQ"), None);
        Ok(())
    }

    #[test]
    fn junk_after_a_valid_header_is_kept_not_rejected() -> Result<(), String> {
        let l = parse("LEEF:1.0|Tenzir|Tenzir|4.12|42|just some random junk")?;
        assert_eq!(l.unparsed, vec!["just some random junk".to_string()]);
        assert!(parse("LEEF:3.0|a|b|c|d|x").is_err());
        assert!(parse("LEEF:1.0|a|b").is_err());
        Ok(())
    }
}
