//! Linux audit logs (`type=... msg=audit(TIME:SERIAL): key=value ...`).
//!
//! The records of one event share `TIME:SERIAL` and are joined into one event, even when
//! interleaved with other events' records (within one chunk). Hex-encoded values
//! (`proctitle`, `EXECVE` arguments, `exe`, `name`, ...) are decoded; the `EXECVE`
//! arguments are joined into `process.command_line`. Each field is kept under its own
//! name (the first record that has it wins, later different values get
//! `TYPE.key`); `type` is the event's main record type (`SYSCALL` when present).

use std::collections::HashMap;

use vedette_core::dead_letter::DeadLetter;
use vedette_core::event::EventBatchBuilder;
use vedette_core::traits::{ParseStats, Parser, RawChunk};

use crate::flatten::FieldSink;
use crate::kv::{pairs, pairs_quoted};
use crate::limits::Limits;
use crate::record::{append_with_fields, lines, set_time, RecordCtx};
use crate::text::parse_int;
use crate::timestamp::ParsedTime;

/// Parser for Linux audit logs.
#[derive(Debug, Clone, Default)]
pub struct AuditdParser {
    limits: Limits,
}

impl AuditdParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }
}

/// One audit record.
#[derive(Debug)]
struct Record {
    kind: String,
    pairs: Vec<(String, String)>,
}

/// The records of one event.
#[derive(Debug)]
struct Group {
    /// Event time; None for a record that came without its `msg=audit(...)` stamp.
    time_ms: Option<i64>,
    node: Option<String>,
    raw: Vec<u8>,
    records: Vec<Record>,
}

/// Whether a line looks like an audit record.
pub(crate) fn looks_like_audit(line: &[u8]) -> bool {
    memchr::memmem::find(line, b"msg=audit(").is_some()
        && memchr::memmem::find(line, b"type=").is_some()
}

/// Keys whose unquoted values auditd writes in hex when they contain special bytes.
fn may_be_hex(record: &str, key: &str) -> bool {
    matches!(
        key,
        "proctitle" | "exe" | "comm" | "name" | "cwd" | "data" | "cmd" | "acct" | "path"
    ) || (record == "EXECVE"
        && key.starts_with('a')
        && key[1..].bytes().all(|b| b.is_ascii_digit())
        && key.len() > 1)
}

/// Decodes an auditd hex value (NUL separators become spaces); None if not hex text.
fn decode_hex(value: &str) -> Option<String> {
    if value.len() < 2
        || !value.len().is_multiple_of(2)
        || !value.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..value.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&value[i..i + 2], 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let text = text.trim_end_matches('\0').replace('\0', " ");
    text.chars()
        .all(|c| !c.is_control() || c == '\t' || c == '\n')
        .then_some(text)
}

/// A record auditd wrote without a stamp (`type=UNKNOWN[1329] msg=?`): kept as an event
/// of its own, without a time.
fn parse_unstamped(line: &str) -> Result<Record, String> {
    let (pairs, _) = pairs(line);
    let kind = pairs
        .iter()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.clone())
        .ok_or("not an audit record: no `type=` and no `msg=audit(`")?;
    Ok(Record {
        kind,
        pairs: pairs.into_iter().filter(|(k, _)| k != "type").collect(),
    })
}

/// Parses one record line: (TIME:SERIAL key, time ms, node, record).
fn parse_line(line: &str) -> Result<(String, i64, Option<String>, Record), String> {
    let msg = line
        .find("msg=audit(")
        .ok_or("not an audit record: no `msg=audit(`")?;
    let after = &line[msg + "msg=audit(".len()..];
    let close = after.find(')').ok_or("unterminated `msg=audit(`")?;
    let stamp = &after[..close];
    let (time, serial) = stamp
        .split_once(':')
        .ok_or_else(|| format!("audit stamp `{stamp}` has no serial"))?;
    let seconds: f64 = time
        .parse()
        .map_err(|_| format!("audit time `{time}` is not a number"))?;
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("audit serial `{serial}` is not a number"));
    }
    let head = &line[..msg];
    let (head_pairs, _) = pairs(head);
    let kind = head_pairs
        .iter()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.clone())
        .ok_or("audit record has no `type=`")?;
    let node = head_pairs
        .iter()
        .find(|(k, _)| k == "node")
        .map(|(_, v)| v.clone());
    let body = after[close + 1..].trim_start_matches(':').trim_start();
    // USER_* records nest their own fields in msg='...'.
    let body = body.replace("msg='", "").replace('\'', " ");
    let (detailed, _) = pairs_quoted(&body);
    let record_pairs: Vec<(String, String)> = detailed
        .into_iter()
        .map(|(k, v, was_quoted)| {
            let decoded = (!was_quoted && may_be_hex(&kind, &k))
                .then(|| decode_hex(&v))
                .flatten();
            (k, decoded.unwrap_or(v))
        })
        .collect();
    let ms = (seconds * 1000.0).round() as i64;
    Ok((
        stamp.to_string(),
        ms,
        node,
        Record {
            kind,
            pairs: record_pairs,
        },
    ))
}

/// Quotes an argument for a readable command line when it holds white space.
fn shell_word(arg: &str) -> String {
    if arg.is_empty() || arg.contains(char::is_whitespace) {
        format!("\"{}\"", arg.replace('"', "\\\""))
    } else {
        arg.to_string()
    }
}

/// Appends the event of one group of records.
fn append_event(ctx: &RecordCtx<'_>, group: &Group, events: &mut EventBatchBuilder) {
    let mut event = ctx.event("auditd", &group.raw);
    let mut sink = FieldSink::new(ctx.limits);
    let main = group
        .records
        .iter()
        .find(|r| r.kind == "SYSCALL")
        .or_else(|| group.records.first())
        .map_or("", |r| r.kind.as_str());
    sink.push("type", main);
    let kinds: Vec<&str> = group.records.iter().map(|r| r.kind.as_str()).collect();
    sink.push("record_types", kinds.join(","));
    if let Some(node) = &group.node {
        sink.push("node", node.clone());
    }
    for record in &group.records {
        for (k, v) in &record.pairs {
            // Looked up as they are added: the index is kept current, not caught up.
            sink.index_all();
            match sink.get(k) {
                None => sink.push(k.clone(), v.clone()),
                Some(existing) if existing != v => {
                    sink.push(format!("{}.{k}", record.kind), v.clone())
                }
                Some(_) => {}
            }
        }
    }
    let field = |record: &str, key: &str| {
        group
            .records
            .iter()
            .filter(|r| r.kind == record)
            .find_map(|r| {
                r.pairs
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            })
    };
    let any = |key: &str| {
        sink.get(key)
            .filter(|v| !v.is_empty() && *v != "?" && *v != "(null)")
            .map(str::to_string)
    };
    if let Some(execve) = group.records.iter().find(|r| r.kind == "EXECVE") {
        let args: Vec<String> = execve
            .pairs
            .iter()
            .filter(|(k, _)| {
                k.len() > 1 && k.starts_with('a') && k[1..].bytes().all(|b| b.is_ascii_digit())
            })
            .map(|(_, v)| shell_word(v))
            .collect();
        event.process_command_line = Some(args.join(" ")).filter(|c| !c.is_empty());
        event.category = Some("process".into());
    }
    if event.process_command_line.is_none() {
        event.process_command_line = field("PROCTITLE", "proctitle");
    }
    event.process_executable = any("exe");
    event.process_pid = sink.get("pid").and_then(parse_int);
    event.user_name = any("AUID").or_else(|| any("acct")).or_else(|| any("UID"));
    event.host_name = group
        .node
        .clone()
        .or_else(|| any("hostname").filter(|h| h != "?"));
    event.source_ip = any("addr").filter(|a| a != "?");
    event.file_path = field("PATH", "name");
    event.outcome = match sink.get("success").or_else(|| sink.get("res")) {
        Some("yes" | "success") => Some("success".into()),
        Some("no" | "failed") => Some("failure".into()),
        _ => None,
    };
    event.action = Some(main.to_ascii_lowercase());
    if main.starts_with("USER_") || main == "CRED_ACQ" || main == "LOGIN" {
        event.category = Some("authentication".into());
    }
    event.kind = Some("event".into());
    match group.time_ms {
        Some(ms) => set_time(
            &mut event,
            Some(""),
            Some(ParsedTime {
                ms,
                zone_missing: false,
            }),
        ),
        None => set_time(&mut event, None, None),
    }
    event.message = Some(String::from_utf8_lossy(&group.raw).into_owned());
    append_with_fields(events, &mut event, &sink);
}

impl Parser for AuditdParser {
    fn name(&self) -> &str {
        "auditd"
    }

    fn parse(
        &self,
        chunk: &RawChunk,
        events: &mut EventBatchBuilder,
        dead_letters: &mut Vec<DeadLetter>,
    ) -> ParseStats {
        let ctx = RecordCtx::new(chunk, &self.limits);
        let mut stats = ParseStats::default();
        let mut groups: Vec<Group> = Vec::new();
        let mut by_stamp: HashMap<String, usize> = HashMap::new();
        for (offset, raw) in lines(&chunk.bytes) {
            if raw.len() > self.limits.max_record_bytes {
                let reason = format!(
                    "record of {} bytes exceeds the {}-byte limit",
                    raw.len(),
                    self.limits.max_record_bytes
                );
                dead_letters.push(ctx.dead_letter("auditd", offset, &reason, raw));
                stats.dead_letters += 1;
                continue;
            }
            let line = crate::text::lossy_utf8(raw);
            let parsed = if line.contains("msg=audit(") {
                parse_line(&line).map(|(stamp, ms, node, record)| (stamp, Some(ms), node, record))
            } else {
                // Unstamped records each stand alone: key them by their offset.
                parse_unstamped(&line).map(|record| (format!("@{offset}"), None, None, record))
            };
            match parsed {
                Ok((stamp, time_ms, node, record)) => {
                    let index = *by_stamp.entry(stamp).or_insert_with(|| {
                        groups.push(Group {
                            time_ms,
                            node,
                            raw: Vec::new(),
                            records: Vec::new(),
                        });
                        groups.len() - 1
                    });
                    let group = &mut groups[index];
                    if group.records.len() >= self.limits.max_fields {
                        let reason = format!(
                            "audit event has more than {} records",
                            self.limits.max_fields
                        );
                        dead_letters.push(ctx.dead_letter("auditd", offset, &reason, raw));
                        stats.dead_letters += 1;
                        continue;
                    }
                    if !group.raw.is_empty() {
                        group.raw.push(b'\n');
                    }
                    group.raw.extend_from_slice(raw);
                    if record.kind != "EOE" {
                        group.records.push(record);
                    }
                }
                Err(reason) => {
                    dead_letters.push(ctx.dead_letter("auditd", offset, &reason, raw));
                    stats.dead_letters += 1;
                }
            }
        }
        for group in groups.iter().filter(|g| !g.records.is_empty()) {
            append_event(&ctx, group, events);
            stats.events += 1;
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_support::run;

    #[test]
    fn records_join_by_serial_even_interleaved() {
        let input = concat!(
            "type=SYSCALL msg=audit(1604994496.155:92733): arch=c000003e syscall=59 success=yes exit=0 ppid=29002 pid=1631 auid=1000 uid=1000 comm=\"arp\" exe=\"/usr/sbin/arp\" key=(null)\n",
            "type=PROCTITLE msg=audit(1604994497.000:92734): proctitle=737368643A206275726E205B707269765D\n",
            "type=EXECVE msg=audit(1604994496.155:92733): argc=3 a0=\"arp\" a1=\"-a\" a2=2F746D702F6120622F63\n",
            "type=CWD msg=audit(1604994496.155:92733): cwd=\"/home/wardog\"\n",
            "type=EOE msg=audit(1604994496.155:92733):\n",
        );
        let (stats, rows, dead) = run(&AuditdParser::default(), input.as_bytes());
        assert_eq!((stats.events, dead.len()), (2, 0));
        let r = &rows[0];
        assert_eq!(r["event.dataset"], "auditd");
        assert_eq!(
            r["process.command_line"],
            "arp -a /tmp/a b/c".replace("/tmp/a b/c", "\"/tmp/a b/c\"")
        );
        assert_eq!(r["process.executable"], "/usr/sbin/arp");
        assert_eq!(r["process.pid"], 1631);
        assert_eq!(r["event.outcome"], "success");
        assert_eq!(r["@timestamp"], "2020-11-10T07:48:16.155Z");
        assert_eq!(r["fields"]["type"], "SYSCALL");
        assert_eq!(r["fields"]["record_types"], "SYSCALL,EXECVE,CWD");
        assert_eq!(r["fields"]["a0"], "arp");
        assert_eq!(r["fields"]["cwd"], "/home/wardog");
        assert_eq!(rows[1]["process.command_line"], "sshd: burn [priv]");
    }

    #[test]
    fn lines_that_are_not_audit_records_are_dead_letters() {
        let input = b"type=SYSCALL msg=audit(1.0:1): pid=1\nhello world\ntype=X msg=audit(abc:1): x=1\ntype=UNKNOWN[1329] msg=?\n";
        let (stats, rows, dead) = run(&AuditdParser::default(), input);
        assert_eq!((stats.events, stats.dead_letters), (2, 2));
        assert!(dead[0].reason.contains("no `type=`"), "{}", dead[0].reason);
        assert!(dead[1].reason.contains("is not a number"));
        assert_eq!(rows[1]["fields"]["type"], "UNKNOWN[1329]");
        assert_eq!(rows[1]["tags"][0], "timestamp_missing");
    }

    #[test]
    fn hex_is_decoded_only_where_auditd_uses_it() {
        assert_eq!(decode_hex("2F62696E2F7368").as_deref(), Some("/bin/sh"));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("0001"), None);
        assert!(may_be_hex("EXECVE", "a12"));
        assert!(!may_be_hex("SYSCALL", "a0"));
    }
}
