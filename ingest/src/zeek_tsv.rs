//! Zeek logs in their default TSV form: `#separator`, `#fields`, `#types`, `#path`
//! header lines, then one tab-separated record per line. `-` (unset) and `(empty)`
//! values are left out of `fields`. The header must be in the same chunk as the records
//! (whole files are read as one chunk).

use std::collections::HashMap;
use std::sync::Mutex;

use vedette_core::dead_letter::DeadLetter;
use vedette_core::event::EventBatchBuilder;
use vedette_core::traits::{ParseStats, Parser, RawChunk};

use crate::flatten::FieldSink;
use crate::json::zeek_mapping;
use crate::limits::Limits;
use crate::record::{lines, tag_truncation, RecordCtx};

/// Most origins whose header is remembered; past that the memory is cleared.
const MAX_REMEMBERED: usize = 4096;

/// The header state of one Zeek log.
#[derive(Debug, Clone)]
struct Header {
    separator: String,
    unset: String,
    empty: String,
    path: String,
    names: Vec<String>,
}

impl Default for Header {
    fn default() -> Self {
        Self {
            separator: "\t".into(),
            unset: "-".into(),
            empty: "(empty)".into(),
            path: String::new(),
            names: Vec::new(),
        }
    }
}

/// Parser for Zeek TSV logs. The header of each origin (file) is remembered, so the
/// chunks of a followed log that come after its header parse too.
#[derive(Debug, Default)]
pub struct ZeekTsvParser {
    limits: Limits,
    headers: Mutex<HashMap<String, Header>>,
}

impl ZeekTsvParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            headers: Mutex::new(HashMap::new()),
        }
    }
}

/// Unescapes Zeek's `\xHH` in header values (`#separator \x09`).
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("\\x") {
        out.push_str(&rest[..i]);
        let hex = rest
            .get(i + 2..i + 4)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[i + 4..];
            }
            None => {
                out.push_str("\\x");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Parser for ZeekTsvParser {
    fn name(&self) -> &str {
        "zeek-tsv"
    }

    fn parse(
        &self,
        chunk: &RawChunk,
        events: &mut EventBatchBuilder,
        dead_letters: &mut Vec<DeadLetter>,
    ) -> ParseStats {
        let ctx = RecordCtx::new(chunk, &self.limits);
        let mut stats = ParseStats::default();
        let remembered = self
            .headers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&chunk.origin)
            .cloned()
            .unwrap_or_default();
        let Header {
            mut separator,
            mut unset,
            mut empty,
            mut path,
            mut names,
        } = remembered;
        let mut sink = FieldSink::new(ctx.limits);
        for (offset, raw) in lines(&chunk.bytes) {
            let line = crate::text::lossy_utf8(raw);
            if let Some(header) = line.strip_prefix('#') {
                let (key, value) = header.split_once([' ', '\t']).unwrap_or((header, ""));
                match key {
                    "separator" => separator = unescape(value.trim()),
                    "unset_field" => unset = value.to_string(),
                    "empty_field" => empty = value.to_string(),
                    "path" => path = value.trim().to_string(),
                    "fields" => {
                        names = value
                            .split(separator.as_str())
                            .map(str::to_string)
                            .collect()
                    }
                    _ => {}
                }
                continue;
            }
            let reject = if raw.len() > self.limits.max_record_bytes {
                Some(format!(
                    "record of {} bytes exceeds the {}-byte limit",
                    raw.len(),
                    self.limits.max_record_bytes
                ))
            } else if names.is_empty() {
                Some("Zeek record before any `#fields` header".to_string())
            } else {
                None
            };
            let values: Vec<&str> = line.split(separator.as_str()).collect();
            let reject = reject.or_else(|| {
                (values.len() != names.len()).then(|| {
                    format!(
                        "Zeek record has {} values for {} fields",
                        values.len(),
                        names.len()
                    )
                })
            });
            if let Some(reason) = reject {
                dead_letters.push(ctx.dead_letter("zeek-tsv", offset, &reason, raw));
                stats.dead_letters += 1;
                continue;
            }
            let clean: String = path
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let dataset = if clean.is_empty() {
                "zeek".to_string()
            } else {
                format!("zeek.{clean}")
            };
            let mut row = ctx.row(dataset, raw);
            sink.reset("");
            if !path.is_empty() {
                sink.push("_path", path.clone());
            }
            for (name, value) in names.iter().zip(values) {
                if value != unset && value != empty {
                    sink.push(name.clone(), value);
                }
            }
            zeek_mapping().apply(&mut row, &sink);
            tag_truncation(&mut row, &sink);
            crate::record::append_row(events, &mut row, sink.iter());
            stats.events += 1;
        }
        if !names.is_empty() {
            let mut headers = self
                .headers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if headers.len() >= MAX_REMEMBERED {
                headers.clear();
            }
            headers.insert(
                chunk.origin.clone(),
                Header {
                    separator,
                    unset,
                    empty,
                    path,
                    names,
                },
            );
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_support::run;

    const LOG: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tssh\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tclient\n#types\ttime\tstring\taddr\tport\taddr\tport\tstring\n1521911721.411148\tCkDmM22Xl8lNT0yF8\t10.47.3.151\t50372\t10.47.1.1\t22\t-\n1521911721.5\tC2\t10.47.3.152\t50373\t10.47.1.1\t22\tSSH-2.0-x\nbroken\n#close\t2018-03-24-17-15-21\n";

    #[test]
    fn header_driven_records() {
        let (stats, rows, dead) = run(&ZeekTsvParser::default(), LOG.as_bytes());
        assert_eq!((stats.events, stats.dead_letters), (2, 1));
        let r = &rows[0];
        assert_eq!(r["event.dataset"], "zeek.ssh");
        assert_eq!(r["source.ip"], "10.47.3.151");
        assert_eq!(r["destination.port"], 22);
        assert_eq!(r["@timestamp"], "2018-03-24T17:15:21.411Z");
        assert!(
            r["fields"].get("client").is_none(),
            "unset values are left out"
        );
        assert_eq!(rows[1]["fields"]["client"], "SSH-2.0-x");
        assert!(dead[0].reason.contains("1 values for 7 fields"));
    }

    #[test]
    fn later_chunks_of_the_same_log_use_its_header() {
        let parser = ZeekTsvParser::default();
        let (first, _, _) = run(&parser, LOG.as_bytes());
        assert_eq!(first.events, 2);
        let (later, rows, dead) = run(&parser, b"1521911722.0\tC3\t10.0.0.9\t1\t10.0.0.1\t22\t-\n");
        assert_eq!((later.events, dead.len()), (1, 0));
        assert_eq!(rows[0]["event.dataset"], "zeek.ssh");
    }

    #[test]
    fn records_without_a_header_are_dead_letters() {
        let (stats, _, _) = run(&ZeekTsvParser::default(), b"1.0\tx\n");
        assert_eq!(stats.dead_letters, 1);
    }
}
