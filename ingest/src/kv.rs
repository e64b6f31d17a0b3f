//! Generic `key=value` messages (space separated, values optionally double-quoted with
//! `\"` escapes), and FortiGate logs, which are `key=value` with known keys.

use crate::text::Needle;
use vedette_core::event::Event;

use crate::flatten::FieldSink;
use crate::text::parse_int;
use crate::timestamp::{parse_datetime, parse_epoch, ParsedTime};

/// Splits `key=value` pairs. Text that is not a pair is skipped. Returns the pairs and
/// whether the whole message was pairs.
pub(crate) fn pairs(text: &str) -> (Vec<(String, String)>, bool) {
    let (detailed, clean) = pairs_quoted(text);
    (
        detailed.into_iter().map(|(k, v, _)| (k, v)).collect(),
        clean,
    )
}

/// [`pairs`], also saying of each value whether it was double-quoted.
pub(crate) fn pairs_quoted(text: &str) -> (Vec<(String, String, bool)>, bool) {
    let mut out = Vec::new();
    let mut clean = true;
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        if key.is_empty() || !rest[key_end..].starts_with('=') {
            // Not a pair: skip the token.
            clean = false;
            let skip = rest.find(char::is_whitespace).unwrap_or(rest.len());
            rest = rest[skip..].trim_start();
            continue;
        }
        let after = &rest[key_end + 1..];
        let was_quoted = after.starts_with('"');
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut end = quoted.len();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            if n != '"' && n != '\\' {
                                value.push('\\');
                            }
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    other => value.push(other),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((key.to_string(), value, was_quoted));
        rest = remaining.trim_start();
    }
    (out, clean)
}

/// Whether a message looks like a FortiGate log.
pub(crate) fn looks_like_fortigate(message: &str) -> bool {
    static LOGID: Needle = Needle::new("logid=");
    static DEVNAME: Needle = Needle::new("devname=");
    LOGID.is_in(message) && (message.starts_with("date=") || DEVNAME.is_in(message))
}

/// IANA protocol numbers FortiGate logs use.
fn protocol_name(number: &str) -> Option<String> {
    Some(
        match number {
            "1" => "icmp",
            "6" => "tcp",
            "17" => "udp",
            "47" => "gre",
            "50" => "esp",
            "58" => "ipv6-icmp",
            other => return (!other.is_empty()).then(|| other.to_ascii_lowercase()),
        }
        .to_string(),
    )
}

/// Adds pairs to `sink` and fills the columns FortiGate and most firewalls name the
/// same way. Returns the event time if the pairs carry one.
pub(crate) fn apply(
    pairs: &[(String, String)],
    event: &mut Event,
    sink: &mut FieldSink<'_>,
) -> Option<ParsedTime> {
    for (k, v) in pairs {
        sink.push(k.clone(), v.clone());
    }
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty() && *v != "N/A")
    };
    let owned = |keys: &[&str]| keys.iter().find_map(|k| get(k)).map(str::to_string);
    event.source_ip = owned(&["srcip", "src", "src_ip", "remip", "SRC"]);
    event.source_port = ["srcport", "spt", "src_port", "SPT"]
        .iter()
        .find_map(|k| get(k))
        .and_then(parse_int);
    event.destination_ip = owned(&["dstip", "dst", "dst_ip", "DST"]);
    event.destination_port = ["dstport", "dpt", "dst_port", "DPT"]
        .iter()
        .find_map(|k| get(k))
        .and_then(parse_int);
    event.network_transport = get("proto").or(get("PROTO")).and_then(protocol_name);
    event.action = owned(&["action", "act"]);
    event.user_name = owned(&["user", "srcuser", "usrName", "unauthuser"]);
    event.host_name = owned(&["devname", "hostname"]).or(event.host_name.take());
    event.code = owned(&["logid", "eventid"]);
    event.url_full = owned(&["url"]);
    event.dns_question_name = owned(&["qname"]);
    event.category = owned(&["type"]);
    event.severity = get("pri").or(get("level")).and_then(fortinet_level);
    if event.message.is_none() {
        event.message = owned(&["msg"]);
    }
    // FortiGate: `eventtime` (epoch in s/ms/us/ns), else `date` + `time` + `tz`.
    if let Some(ms) = get("eventtime").and_then(parse_epoch) {
        return Some(ParsedTime {
            ms,
            zone_missing: false,
        });
    }
    let (date, time) = (get("date")?, get("time")?);
    let zone = get("tz").map(|z| z.trim_matches('"').to_string());
    match zone {
        Some(z) => parse_datetime(&format!("{date} {time}{z}"))
            .or_else(|| parse_datetime(&format!("{date} {time}"))),
        None => parse_datetime(&format!("{date} {time}")),
    }
}

fn fortinet_level(text: &str) -> Option<i64> {
    Some(match text {
        "emergency" => 0,
        "alert" => 1,
        "critical" => 2,
        "error" => 3,
        "warning" => 4,
        "notice" => 5,
        "information" | "info" => 6,
        "debug" => 7,
        other => return parse_int(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_bare_values() {
        let (p, clean) = pairs(
            r#"date=2024-10-14 time=13:46:40 tz="-0700" msg="SSL \"user\" failed" empty= x=1"#,
        );
        assert!(clean);
        assert_eq!(p[2], ("tz".to_string(), "-0700".to_string()));
        assert_eq!(p[3], ("msg".to_string(), "SSL \"user\" failed".to_string()));
        assert_eq!(p[4], ("empty".to_string(), String::new()));
        assert_eq!(p[5], ("x".to_string(), "1".to_string()));
    }

    #[test]
    fn stray_tokens_are_skipped() {
        let (p, clean) = pairs("IN=eth0 OUT= junk SRC=1.2.3.4 =x");
        assert!(!clean);
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["IN", "OUT", "SRC"]);
    }

    #[test]
    fn fortigate_time_from_eventtime_or_date_and_zone() {
        let mut e = Event::default();
        let mut sink = FieldSink::new(&crate::limits::Limits::default());
        let (p, _) =
            pairs("date=2024-10-14 time=13:46:40 tz=\"-0700\" logid=\"1\" proto=6 srcip=1.2.3.4");
        let t = apply(&p, &mut e, &mut sink);
        assert_eq!(t.map(|t| t.ms), Some(1_728_938_800_000));
        assert_eq!(e.network_transport.as_deref(), Some("tcp"));
        assert_eq!(e.source_ip.as_deref(), Some("1.2.3.4"));
        let (p, _) = pairs("eventtime=1728938800841267391 logid=1");
        assert_eq!(
            apply(&p, &mut e, &mut sink).map(|t| t.ms),
            Some(1_728_938_800_841)
        );
    }
}
