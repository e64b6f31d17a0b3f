//! Syslog headers: RFC 5424, RFC 3164 (BSD), and the ISO-timestamp variant many devices
//! send; a missing `<PRI>` is accepted (file-style logs).

use crate::timestamp::{parse_bsd, parse_datetime, parse_epoch};

/// What a syslog header says, and where the message starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    /// Facility (PRI / 8), when a PRI was present.
    pub(crate) facility: Option<u8>,
    /// Severity (PRI % 8), when a PRI was present.
    pub(crate) severity: Option<u8>,
    /// Protocol version (`1` for RFC 5424).
    pub(crate) version: Option<&'a str>,
    /// The header's time text.
    pub(crate) time_text: Option<&'a str>,
    /// The parsed time (Unix ms) and whether its zone was missing.
    pub(crate) time: Option<(i64, bool)>,
    /// The year was inferred (BSD time).
    pub(crate) year_inferred: bool,
    /// Host name.
    pub(crate) hostname: Option<&'a str>,
    /// Application name (RFC 5424 APP-NAME, BSD tag).
    pub(crate) appname: Option<&'a str>,
    /// Process id.
    pub(crate) procid: Option<&'a str>,
    /// RFC 5424 MSGID.
    pub(crate) msgid: Option<&'a str>,
    /// RFC 5424 structured data, raw.
    pub(crate) structured_data: Option<&'a str>,
    /// The message after the header.
    pub(crate) message: &'a str,
}

fn nil(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

/// Splits the first space-delimited token off `s`.
fn token(s: &str) -> (&str, &str) {
    match s.split_once(' ') {
        Some((t, rest)) => (t, rest),
        None => (s, ""),
    }
}

/// Parses `<PRI>`; returns (pri, rest) or None when absent or invalid.
fn pri(line: &str) -> Option<(u8, &str)> {
    let rest = line.strip_prefix('<')?;
    let end = rest.find('>')?;
    if end == 0 || end > 3 {
        return None;
    }
    let value: u8 = rest[..end].parse().ok()?;
    (value <= 191).then(|| (value, &rest[end + 1..]))
}

/// Parses a syslog header; `received_ms` anchors the year of BSD times.
/// Never fails: what is not a header stays in `message`.
pub(crate) fn parse(line: &str, received_ms: i64) -> Header<'_> {
    let mut h = Header {
        message: line,
        ..Header::default()
    };
    let mut rest = line;
    if let Some((value, after)) = pri(line) {
        h.facility = Some(value / 8);
        h.severity = Some(value % 8);
        rest = after;
    }
    // RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
    if h.facility.is_some() && rest.starts_with("1 ") {
        let (_, r) = token(rest);
        let (ts, r) = token(r);
        let (host, r) = token(r);
        let (app, r) = token(r);
        let (proc_id, r) = token(r);
        let (msgid, r) = token(r);
        let (sd, msg) = split_structured_data(r);
        h.version = Some("1");
        h.time_text = nil(ts);
        h.time = h
            .time_text
            .and_then(parse_datetime)
            .map(|t| (t.ms, t.zone_missing));
        h.hostname = nil(host);
        h.appname = nil(app);
        h.procid = nil(proc_id);
        h.msgid = nil(msgid);
        h.structured_data = nil(sd);
        h.message = msg.strip_prefix('\u{feff}').unwrap_or(msg);
        return h;
    }
    // BSD: `Mmm dd hh:mm:ss HOST TAG: MSG`, or an ISO time in place of the BSD one.
    if let Some((ms, used)) = parse_bsd(rest, received_ms) {
        h.time_text = rest.get(..used);
        h.year_inferred = true;
        rest = rest.get(used..).unwrap_or_default().trim_start();
        // Some senders append the zone: `May 02 15:27:43.000 UTC host ...`.
        let (zone, after_zone) = token(rest);
        let utc = matches!(zone, "UTC" | "GMT" | "Z");
        if utc {
            rest = after_zone;
        }
        h.time = Some((ms, !utc));
    } else {
        let (ts, r) = token(rest);
        let epoch = (ts.len() == 10 || ts.len() == 13) && ts.bytes().all(|b| b.is_ascii_digit());
        if let Some(t) = parse_datetime(ts) {
            h.time_text = Some(ts);
            h.time = Some((t.ms, t.zone_missing));
            rest = r;
        } else if let Some(ms) = epoch.then(|| parse_epoch(ts)).flatten() {
            h.time_text = Some(ts);
            h.time = Some((ms, false));
            rest = r;
        } else if h.facility.is_none() {
            // Neither a PRI nor a time: not a syslog header at all.
            return h;
        }
    }
    let (host, r) = token(rest);
    if !host.is_empty() && !host.ends_with(':') && !r.is_empty() {
        h.hostname = Some(host);
        rest = r;
    }
    // TAG: `app[pid]:` or `app:`; without one, the rest is the message.
    let (tag, r) = token(rest);
    let carries_format = matches!(tag, "CEF:" | "LEEF:");
    if let Some(tag) = tag.strip_suffix(':').filter(|_| !carries_format) {
        let (app, pid) = match tag.split_once('[') {
            Some((app, pid)) => (app, pid.strip_suffix(']')),
            None => (tag, None),
        };
        if !app.is_empty() && app.len() <= 48 && !app.contains('=') {
            h.appname = Some(app);
            h.procid = pid;
            rest = r;
        }
    }
    h.message = rest;
    h
}

/// Splits RFC 5424 STRUCTURED-DATA (`-` or `[...]...`) from the message.
fn split_structured_data(s: &str) -> (&str, &str) {
    if let Some(rest) = s.strip_prefix("- ") {
        return ("-", rest);
    }
    if s == "-" {
        return ("-", "");
    }
    if !s.starts_with('[') {
        return ("-", s);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut in_quotes = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b']' if !in_quotes && bytes.get(i + 1) != Some(&b'[') => {
                let sd = &s[..=i];
                let msg = s.get(i + 1..).unwrap_or_default();
                return (sd, msg.strip_prefix(' ').unwrap_or(msg));
            }
            _ => {}
        }
        i += 1;
    }
    (s, "")
}

/// The parameters of RFC 5424 structured data as (`SD-ID.NAME`, value), unescaped.
pub(crate) fn structured_params(sd: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = sd.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '[' {
            continue;
        }
        let mut id = String::new();
        let mut closed = false;
        for c in chars.by_ref() {
            match c {
                ' ' => break,
                ']' => {
                    closed = true;
                    break;
                }
                other => id.push(other),
            }
        }
        if closed {
            // `[id]`: an element without parameters.
            continue;
        }
        loop {
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            match chars.peek() {
                None | Some(']') => {
                    chars.next();
                    break;
                }
                _ => {}
            }
            let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if chars.next() != Some('"') {
                break;
            }
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            if !matches!(n, '"' | '\\' | ']') {
                                value.push('\\');
                            }
                            value.push(n);
                        }
                    }
                    '"' => break,
                    other => value.push(other),
                }
            }
            out.push((format!("{id}.{}", name.trim()), value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED: i64 = 1_795_780_800_000; // 2026-11-27T12:00:00Z

    #[test]
    fn rfc5424_with_structured_data() {
        let line = r#"<86>1 2015-08-05T21:58:59.693Z 192.168.2.132 SecureAuth0 23108 ID52020 [SecureAuth@27389 UserAgent="Mozilla \"x\"" Realm="R"][b@1 k="v\]"] Found the user"#;
        let h = parse(line, RECEIVED);
        assert_eq!((h.facility, h.severity), (Some(10), Some(6)));
        assert_eq!(h.hostname, Some("192.168.2.132"));
        assert_eq!(h.appname, Some("SecureAuth0"));
        assert_eq!(h.procid, Some("23108"));
        assert_eq!(h.msgid, Some("ID52020"));
        assert_eq!(h.message, "Found the user");
        assert_eq!(h.time, Some((1_438_811_939_693, false)));
        let params = structured_params(h.structured_data.unwrap_or_default());
        assert_eq!(
            params[0],
            (
                "SecureAuth@27389.UserAgent".to_string(),
                "Mozilla \"x\"".to_string()
            )
        );
        assert_eq!(
            params[1],
            ("SecureAuth@27389.Realm".to_string(), "R".to_string())
        );
        assert_eq!(params[2], ("b@1.k".to_string(), "v]".to_string()));
        let params = structured_params("[empty@1][x@2 k=\"v\"]");
        assert_eq!(params, vec![("x@2.k".to_string(), "v".to_string())]);
    }

    #[test]
    fn rfc5424_nil_fields() {
        let h = parse(
            "<134>1 2016-04-01T16:44:58Z MacBook-Pro-3 - 94473 - - {\"pid\":1}",
            RECEIVED,
        );
        assert_eq!(h.appname, None);
        assert_eq!(h.structured_data, None);
        assert_eq!(h.message, "{\"pid\":1}");
    }

    #[test]
    fn bsd_with_and_without_pri() {
        let h = parse(
            "Feb 12 14:10:21 sd-126005 sshd[16378]: Invalid user pascal",
            RECEIVED,
        );
        assert_eq!(h.facility, None);
        assert_eq!(h.hostname, Some("sd-126005"));
        assert_eq!((h.appname, h.procid), (Some("sshd"), Some("16378")));
        assert_eq!(h.message, "Invalid user pascal");
        assert!(h.year_inferred);
        assert_eq!(h.time.map(|t| t.1), Some(true));
        let h = parse(
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed",
            RECEIVED,
        );
        assert_eq!((h.facility, h.severity), (Some(4), Some(2)));
        assert_eq!(h.appname, Some("su"));
    }

    #[test]
    fn iso_time_header_and_garbage() {
        let h = parse(
            "2023-07-06T08:11:40+02:00 paloalto.test.host 1,2023/07/06",
            RECEIVED,
        );
        assert_eq!(h.hostname, Some("paloalto.test.host"));
        assert_eq!(h.message, "1,2023/07/06");
        let h = parse("1493738863000 hostname.example.com CEF:0|a", RECEIVED);
        assert_eq!(
            (h.time, h.hostname),
            (
                Some((1_493_738_863_000, false)),
                Some("hostname.example.com")
            )
        );
        assert_eq!(h.message, "CEF:0|a");
        let h = parse(
            "May 02 15:27:43.000 UTC hostname.example.com CEF:0|a",
            RECEIVED,
        );
        assert_eq!(h.time.map(|t| t.1), Some(false));
        assert_eq!(h.hostname, Some("hostname.example.com"));
        let h = parse("just some text", RECEIVED);
        assert_eq!((h.hostname, h.message), (None, "just some text"));
        let h = parse("<999>x", RECEIVED);
        assert_eq!(h.facility, None);
    }
}
