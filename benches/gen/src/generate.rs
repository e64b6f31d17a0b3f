//! `vedette-bench generate`: the stream written to files, one per source, with the truth.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::attacks::Truth;
use crate::scenario::Generate;
use crate::sources::Source;
use crate::stream::Stream;

/// What a generation wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// Records per source.
    pub per_source: HashMap<Source, u64>,
    /// The stories injected.
    pub truth: Vec<Truth>,
    /// The files, by source.
    pub files: Vec<PathBuf>,
}

/// The Sigma log source of a JSON record of `source`, for peers that route by
/// `product`/`category`/`service` fields in the event (rsigma).
fn logsource(source: Source, event: &Value) -> Vec<(&'static str, &'static str)> {
    let id = event.get("EventID").and_then(Value::as_u64).unwrap_or(0);
    match (source, id) {
        (Source::Sysmon, 1) => vec![("product", "windows"), ("category", "process_creation")],
        (Source::Sysmon, 3) => vec![("product", "windows"), ("category", "network_connection")],
        (Source::Sysmon, 11) => vec![("product", "windows"), ("category", "file_event")],
        (Source::Security, 4688) => vec![
            ("product", "windows"),
            ("service", "security"),
            ("category", "process_creation"),
        ],
        (Source::Security, _) => vec![("product", "windows"), ("service", "security")],
        (Source::PowerShell, _) => vec![("product", "windows"), ("category", "ps_script")],
        (Source::LinuxSysmon, _) => vec![("product", "linux"), ("category", "process_creation")],
        (Source::CloudTrail, _) => vec![("product", "aws"), ("service", "cloudtrail")],
        (Source::Okta, _) => vec![("product", "okta"), ("service", "okta")],
        _ => Vec::new(),
    }
}

/// Writes `events` records of the stream `settings` describes into `out`: one file per
/// source (`<source>.jsonl` or `.log`), `truth.jsonl`, and with `combined_json` also every
/// JSON record in stream order in `json-events.jsonl`, with the Sigma log-source fields
/// when `logsource_fields`.
pub fn generate(
    settings: &Generate,
    events: u64,
    out: &Path,
    combined_json: bool,
    logsource_fields: bool,
) -> anyhow::Result<Written> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let world = settings.world()?;
    let stream = Stream::new(world, &settings.mix, settings.seed, settings.attack_every);
    let mut files: HashMap<Source, BufWriter<File>> = HashMap::new();
    let mut combined = if combined_json {
        Some(BufWriter::new(File::create(out.join("json-events.jsonl"))?))
    } else {
        None
    };
    let mut written = Written::default();
    for record in stream.take(events as usize) {
        let f = match files.entry(record.source) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let ext = if record.source.is_json() {
                    "jsonl"
                } else {
                    "log"
                };
                let path = out.join(format!("{}.{ext}", record.source.name()));
                let file = BufWriter::new(File::create(&path)?);
                written.files.push(path);
                e.insert(file)
            }
        };
        f.write_all(record.text.as_bytes())?;
        f.write_all(b"\n")?;
        if let (Some(c), true) = (combined.as_mut(), record.source.is_json()) {
            if logsource_fields {
                let mut event: Value = serde_json::from_str(&record.text)?;
                let fields = logsource(record.source, &event);
                if let Some(obj) = event.as_object_mut() {
                    for (k, v) in fields {
                        obj.insert(k.into(), v.into());
                    }
                }
                serde_json::to_writer(&mut *c, &event)?;
            } else {
                c.write_all(record.text.as_bytes())?;
            }
            c.write_all(b"\n")?;
        }
        *written.per_source.entry(record.source).or_default() += 1;
        if let Some(t) = record.truth {
            written.truth.push(t);
        }
    }
    for (_, mut f) in files {
        f.flush()?;
    }
    if let Some(mut c) = combined {
        c.flush()?;
    }
    let mut truth = BufWriter::new(File::create(out.join("truth.jsonl"))?);
    for t in &written.truth {
        serde_json::to_writer(&mut truth, t)?;
        truth.write_all(b"\n")?;
    }
    truth.flush()?;
    written.files.sort();
    Ok(written)
}

/// Reads a `truth.jsonl`.
pub fn read_truth(path: &Path) -> anyhow::Result<Vec<Truth>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).with_context(|| format!("a truth line of {}", path.display()))
        })
        .collect()
}
