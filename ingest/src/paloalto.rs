//! Palo Alto Networks PAN-OS logs in their CSV syslog form (TRAFFIC, THREAT and the
//! other log types), with PAN-OS's own field names for the known columns.

use vedette_core::event::Event;

use crate::flatten::FieldSink;
use crate::text::parse_int;
use crate::timestamp::{parse_datetime, ParsedTime};

/// Columns every PAN-OS TRAFFIC and THREAT log starts with.
const COMMON: &[&str] = &[
    "future_use1",
    "receive_time",
    "serial",
    "type",
    "subtype",
    "future_use2",
    "time_generated",
    "src",
    "dst",
    "natsrc",
    "natdst",
    "rule",
    "srcuser",
    "dstuser",
    "app",
    "vsys",
    "from",
    "to",
    "inbound_if",
    "outbound_if",
    "logset",
    "future_use3",
    "sessionid",
    "repeatcnt",
    "sport",
    "dport",
    "natsport",
    "natdport",
    "flags",
    "proto",
    "action",
];

/// TRAFFIC columns after the common ones.
const TRAFFIC: &[&str] = &[
    "bytes",
    "bytes_sent",
    "bytes_received",
    "packets",
    "start",
    "elapsed",
    "category",
    "future_use4",
    "seqno",
    "actionflags",
    "srcloc",
    "dstloc",
    "future_use5",
    "pkts_sent",
    "pkts_received",
    "session_end_reason",
];

/// THREAT columns after the common ones.
const THREAT: &[&str] = &[
    "misc",
    "threatid",
    "category",
    "severity",
    "direction",
    "seqno",
    "actionflags",
    "srcloc",
    "dstloc",
    "future_use4",
    "contenttype",
    "pcap_id",
    "filedigest",
    "cloud",
    "url_idx",
    "user_agent",
    "filetype",
    "xff",
    "referer",
    "sender",
    "subject",
    "recipient",
    "reportid",
];

/// Log types PAN-OS writes in the fourth CSV column.
const TYPES: &[&str] = &[
    "TRAFFIC",
    "THREAT",
    "SYSTEM",
    "CONFIG",
    "HIP-MATCH",
    "GLOBALPROTECT",
    "USERID",
    "DECRYPTION",
    "AUTHENTICATION",
    "TUNNEL",
    "CORRELATION",
    "SCTP",
    "IPTAG",
];

/// Splits one CSV line (double quotes around fields that contain commas, `""` escapes).
pub(crate) fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            ('"', _) => in_quotes = !in_quotes,
            (',', false) => out.push(std::mem::take(&mut current)),
            (other, _) => current.push(other),
        }
    }
    out.push(current);
    out
}

/// Whether a message is a PAN-OS CSV log.
/// It is asked of every syslog line, so it finds its commas one at a time and looks at
/// no more of the line than it must.
pub(crate) fn looks_like_panos(message: &str) -> bool {
    let b = message.as_bytes();
    let comma_from = |from: usize| memchr::memchr(b',', b.get(from..)?).map(|i| from + i);
    // The second column is the receive time, `YYYY/MM/DD hh:mm:ss`: 19 bytes.
    let Some(receive) = comma_from(0).map(|i| i + 1) else {
        return false;
    };
    if comma_from(receive) != Some(receive + 19) || b.get(receive + 4) != Some(&b'/') {
        return false;
    }
    // The fourth is the log type.
    let Some(kind) = comma_from(receive + 20).map(|i| i + 1) else {
        return false;
    };
    let end = comma_from(kind).unwrap_or(b.len());
    message.get(kind..end).is_some_and(|k| TYPES.contains(&k))
}

/// Adds the PAN-OS fields and fills the columns; returns the event time.
pub(crate) fn apply(
    message: &str,
    event: &mut Event,
    sink: &mut FieldSink<'_>,
) -> Option<ParsedTime> {
    let values = split_csv(message);
    let kind = values.get(3).map(String::as_str).unwrap_or_default();
    let specific: &[&str] = match kind {
        "TRAFFIC" => TRAFFIC,
        "THREAT" => THREAT,
        _ => &[],
    };
    let names = COMMON.iter().chain(specific.iter());
    let mut named: Vec<(String, &str)> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let name = match (kind, i) {
            ("TRAFFIC" | "THREAT", _) => names.clone().nth(i).map(|n| n.to_string()),
            (_, 0..=6) => COMMON.get(i).map(|n| n.to_string()),
            _ => None,
        }
        .unwrap_or_else(|| format!("field_{}", i + 1));
        if name.starts_with("future_use") || value.is_empty() {
            continue;
        }
        named.push((name, value.as_str()));
    }
    for (k, v) in &named {
        sink.push(k, v);
    }
    let get = |k: &str| named.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
    let owned = |k: &str| get(k).map(str::to_string);
    event.category = Some(kind.to_ascii_lowercase()).filter(|k| !k.is_empty());
    event.action = owned("action");
    event.source_ip = owned("src");
    event.destination_ip = owned("dst");
    event.source_port = get("sport").and_then(parse_int);
    event.destination_port = get("dport").and_then(parse_int);
    event.network_transport = owned("proto");
    event.user_name = owned("srcuser");
    event.code = owned("threatid").or_else(|| owned("subtype"));
    if kind == "THREAT" {
        event.kind = Some("alert".into());
        event.url_full = owned("misc").filter(|m| m.contains('/'));
        event.severity = get("severity").and_then(|s| match s {
            "informational" => Some(1),
            "low" => Some(3),
            "medium" => Some(5),
            "high" => Some(8),
            "critical" => Some(10),
            other => parse_int(other),
        });
    }
    event.provider = Some("Palo Alto Networks PAN-OS".into());
    get("time_generated")
        .or(get("receive_time"))
        .and_then(parse_datetime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes() {
        assert_eq!(
            split_csv(r#"a,"b,c",,"d ""e""""#),
            ["a", "b,c", "", "d \"e\""]
        );
    }

    #[test]
    fn threat_columns_by_name() {
        let line = "1,2023/07/06 08:11:40,016401002737,THREAT,vulnerability,2561,2023/07/06 08:11:40,1.2.3.2,1.2.3.3,1.2.3.2,2.2.2.3,Rule0,,,ssh,vsys1,Untrust,DMZ,vlan.1,aaa.1,to-Test,2023/07/06 08:11:40,238810,23,47094,22,47094,22,0x402400,tcp,reset-both,,SSH Brute Force(40015),any,high,client-to-server";
        assert!(looks_like_panos(line));
        let mut e = Event::default();
        let mut sink = FieldSink::new(&crate::limits::Limits::default());
        let t = apply(line, &mut e, &mut sink);
        assert!(t.is_some());
        assert_eq!(e.destination_port, Some(22));
        assert_eq!(e.action.as_deref(), Some("reset-both"));
        assert_eq!(sink.get("threatid"), Some("SSH Brute Force(40015)"));
        assert_eq!(e.severity, Some(8));
        assert!(!looks_like_panos("a,b,c,d"));
    }

    #[test]
    fn the_log_type_check_agrees_with_splitting_the_columns() {
        // The plain reading of the rule: the second column 19 bytes with a `/` at 4,
        // the fourth column a known log type.
        let reference = |m: &str| {
            let mut it = m.splitn(6, ',');
            let (_, receive, _, kind) = (it.next(), it.next(), it.next(), it.next());
            matches!((receive, kind), (Some(r), Some(k))
                if TYPES.contains(&k) && r.len() == 19 && r.as_bytes()[4] == b'/')
        };
        let time = "2023/07/06 08:11:40";
        let mut lines = vec![
            String::new(),
            ",".into(),
            format!(",{time},,TRAFFIC"),
            format!("1,{time},x,TRAFFIC"),
            format!("1,{time},x,TRAFFIC,"),
            format!("1,{time},x,TRAFFICX,y"),
            format!("1,{time},x"),
            format!("1,{time}"),
            format!("1,{time}x,x,TRAFFIC"),
            "1,2023-07-06 08:11:40,x,TRAFFIC".into(),
            "1,2023/07,06 08:11:40,x,TRAFFIC".into(),
            "1,2023/07/06 08:11:4,x,TRAFFIC".into(),
            format!("é,{time},ü,THREAT,ß"),
        ];
        for kind in TYPES {
            lines.push(format!("a,{time},b,{kind},c,d,e"));
        }
        for line in &lines {
            assert_eq!(looks_like_panos(line), reference(line), "{line:?}");
        }
    }
}
