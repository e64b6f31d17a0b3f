//! Every sample log of the shared corpus (`$VEDETTE_CORPORA/logs`) through ingest, with
//! the format recognized as `vedette parse --format auto` does:
//!
//! - a golden snapshot per file: format, events by dataset, dead letters by reason, the
//!   first two normalized events and a digest of the whole normalized output;
//! - the dataset each corpus folder must produce;
//! - no dead letters except in the files that are damaged on purpose;
//! - EVTX read natively gives the same fields as the reference flattening of the same
//!   records (`*.flat.jsonl`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use vedette_core::event::EventBatchBuilder;
use vedette_core::event_json::events_to_json;
use vedette_core::traits::RawChunk;
use vedette_ingest::{detect_format, parser_for, Format, Limits};

/// 2026-11-27T12:00:00Z: the receive time of every chunk, so that output is stable.
const RECEIVED_MS: i64 = 1_795_780_800_000;

/// Files that are damaged on purpose and must yield dead letters.
const DAMAGED: &[&str] = &[
    "evtx/sample_with_a_bad_chunk_magic.evtx",
    "evtx/sysmon.evtx",
];

/// The dataset (prefix) each file must produce at least once, by path prefix.
const EXPECTED: &[(&str, &str)] = &[
    ("auditd/crowdsec_laurel", "json"),
    ("auditd/otrf_auoms", "json"),
    ("auditd/", "auditd"),
    ("aws-vpcflow/", "aws.vpcflow"),
    ("azure-activity/", "azure.activity"),
    ("azure-audit/", "azure.activity"),
    ("cef/cefparser_cases", "json"),
    ("cef/", "cef"),
    ("cloudtrail/", "aws.cloudtrail"),
    ("crowdstrike-fdr/", "crowdstrike.fdr"),
    ("evtx/", "windows."),
    ("fortigate/crowdsec_vpn", "fortigate"),
    ("fortigate/", "syslog"),
    ("gcp-audit/", "gcp.audit"),
    ("k8s-audit/", "kubernetes.audit"),
    ("leef/", "leef"),
    ("okta/", "okta.system"),
    ("paloalto/", "paloalto"),
    ("suricata/crowdsec_fast", "syslog"),
    ("suricata/", "suricata.eve"),
    ("syslog/", "syslog"),
    ("sysmon-linux/", "linux.sysmon"),
    ("webserver/", "syslog"),
    ("windows-json/", "windows."),
    ("windows-xml/", "windows.security"),
    ("zeek/", "zeek"),
];

fn corpus_logs() -> PathBuf {
    let root = std::env::var("VEDETTE_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora"));
    let logs = root.join("logs");
    assert!(
        logs.is_dir(),
        "the test corpus is missing: {} does not exist. Set VEDETTE_CORPORA to the corpora \
         folder (see README, \"Test data\").",
        logs.display()
    );
    logs
}

fn data_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_dir() {
            if name != "LICENSES" {
                data_files(&path, out);
            }
        } else if name != "README.md" && !name.starts_with("LICENSE") {
            out.push(path);
        }
    }
}

/// Parses a whole file as one chunk, the format recognized from its bytes and name.
fn parse_file(
    path: &Path,
    rel: &str,
    format: Option<Format>,
) -> (Format, Vec<Value>, Vec<(String, u64)>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let format = format.unwrap_or_else(|| detect_format(&bytes, Some(rel)));
    let chunk = RawChunk {
        source: "corpus".into(),
        origin: rel.to_string(),
        tenant: "default".into(),
        bytes: Bytes::from(bytes),
        position: 0,
        received_ms: RECEIVED_MS,
    };
    let mut builder = EventBatchBuilder::new();
    let mut dead = Vec::new();
    let stats = parser_for(format, Limits::default()).parse(&chunk, &mut builder, &mut dead);
    let batch = builder.finish().unwrap_or_else(|e| panic!("{rel}: {e}"));
    let rows = events_to_json(&batch).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(
        rows.len(),
        stats.events,
        "{rel}: stats disagree with the batch"
    );
    (
        format,
        rows,
        dead.into_iter().map(|d| (d.reason, d.position)).collect(),
    )
}

#[test]
fn every_corpus_file_normalizes_as_expected() {
    let logs = corpus_logs();
    let mut files = Vec::new();
    data_files(&logs, &mut files);
    assert!(
        files.len() > 60,
        "expected the full log corpus, found {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(&logs)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let (format, rows, dead) = parse_file(path, &rel, None);

        let mut datasets: BTreeMap<String, usize> = BTreeMap::new();
        let mut digest = Sha256::new();
        for row in &rows {
            *datasets
                .entry(
                    row["event.dataset"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
                .or_default() += 1;
            digest.update(row.to_string().as_bytes());
            digest.update(b"\n");
        }
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for (reason, _) in &dead {
            *reasons.entry(reason.clone()).or_default() += 1;
        }

        let expected = EXPECTED
            .iter()
            .find(|(prefix, _)| rel.starts_with(prefix))
            .map(|(_, d)| *d);
        match expected {
            Some(want) if !datasets.keys().any(|d| d.starts_with(want)) => {
                failures.push(format!("{rel}: no event of dataset {want}: {datasets:?}"));
            }
            None => failures.push(format!("{rel}: no expected dataset listed for this file")),
            _ => {}
        }
        let damaged = DAMAGED.contains(&rel.as_str());
        if damaged == dead.is_empty() {
            failures.push(format!(
                "{rel}: damaged={damaged} but dead letters: {reasons:?}"
            ));
        }
        if rows.is_empty() {
            failures.push(format!("{rel}: no events"));
        }

        let summary = json!({
            "file": rel,
            "format": format.to_string(),
            "events": rows.len(),
            "datasets": datasets,
            "dead_letters": reasons,
            "first_events": rows.iter().take(2).collect::<Vec<_>>(),
            "sha256_of_all_events": format!("{:x}", digest.finalize()),
        });
        let name = rel.replace(['/', '.'], "_");
        insta::with_settings!({ snapshot_path => "snapshots/corpus", prepend_module_to_snapshot => false }, {
            insta::assert_json_snapshot!(name, summary);
        });
    }
    assert!(
        failures.is_empty(),
        "corpus expectations failed:\n{}",
        failures.join("\n")
    );
}

/// The fields of EVTX records read natively equal those of the reference flattening.
#[test]
fn evtx_fields_match_the_reference_flattening() {
    let logs = corpus_logs();
    let mut compared = 0;
    for name in [
        "security",
        "system",
        "sysmon",
        "new-user-security",
        "Security_short_selected",
        "MSExchange_Management_wec",
    ] {
        let evtx = format!("evtx/{name}.evtx");
        let flat = format!("evtx/{name}.flat.jsonl");
        let (_, native, _) = parse_file(&logs.join(&evtx), &evtx, None);
        let (_, reference, _) = parse_file(&logs.join(&flat), &flat, Some(Format::WindowsJson));
        assert_eq!(
            native.len(),
            reference.len(),
            "{name}: record counts differ"
        );
        for (i, (a, b)) in native.iter().zip(&reference).enumerate() {
            assert_eq!(
                rendering_neutral(&a["fields"]),
                rendering_neutral(&b["fields"]),
                "{name} record {i}: fields differ"
            );
            for column in [
                "event.dataset",
                "event.code",
                "host.name",
                "process.command_line",
                "user.name",
            ] {
                assert_eq!(
                    a.get(column),
                    b.get(column),
                    "{name} record {i}: `{column}` differs"
                );
            }
            compared += 1;
        }
    }
    assert!(compared > 4000, "compared only {compared} records");
}

/// Field values with the rendering differences between `evtx` crate versions removed:
/// GUIDs with or without braces in any case, times with 6 or 7 fraction digits, and
/// empty unnamed `<Data/>` elements (which the Rust `evtx` 0.15 leaves out). Names with
/// white space are compared by their alias without it (Vedette keeps both; the reference
/// keeps only the alias).
fn rendering_neutral(fields: &Value) -> BTreeMap<String, String> {
    let Some(map) = fields.as_object() else {
        return BTreeMap::new();
    };
    map.iter()
        .filter(|(k, v)| !(k.as_str() == "Data" && v.as_str() == Some("")))
        .filter(|(k, _)| !k.contains(char::is_whitespace))
        .map(|(k, v)| {
            let text = v.as_str().unwrap_or_default();
            let mut out = text
                .trim_matches(|c| c == '{' || c == '}')
                .to_ascii_lowercase();
            let is_time =
                out.len() > 20 && out.ends_with('z') && out.as_bytes().get(10) == Some(&b't');
            if is_time {
                if let Some(dot) = out.find('.') {
                    let digits: String = out[dot + 1..out.len() - 1].chars().take(6).collect();
                    out = format!("{}.{digits:0<6}z", &out[..dot]);
                }
            }
            (k.clone(), out)
        })
        .collect()
}

/// CEF golden cases (`cefparser_cases.jsonl`): header and extensions as expected.
#[test]
fn cef_golden_cases() {
    let logs = corpus_logs();
    let text = std::fs::read_to_string(logs.join("cef/cefparser_cases.jsonl")).unwrap_or_default();
    let mut checked = 0;
    for line in text.lines() {
        let case: Value = serde_json::from_str(line).unwrap_or_default();
        let input = case["input"].as_str().unwrap_or_default();
        let (_, rows, dead) = {
            let path = std::env::temp_dir().join(format!("vedette-cef-{}.log", std::process::id()));
            std::fs::write(&path, input).unwrap_or_else(|e| panic!("{e}"));
            let out = parse_file(&path, "case.log", Some(Format::Cef));
            let _ = std::fs::remove_file(&path);
            out
        };
        let file = case["file"].as_str().unwrap_or_default();
        assert!(dead.is_empty(), "{file}: dead-lettered: {dead:?}");
        let fields = &rows[0]["fields"];
        let expected = &case["expected"];
        for key in [
            "deviceVendor",
            "deviceProduct",
            "deviceVersion",
            "deviceEventClassId",
            "name",
            "severity",
        ] {
            assert_eq!(fields[key], expected[key], "{file}: {key}");
        }
        if let Some(ext) = expected["extensions"].as_object() {
            for (k, v) in ext {
                assert_eq!(&fields[k], v, "{file}: extension {k} of {input}");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 90);
}
