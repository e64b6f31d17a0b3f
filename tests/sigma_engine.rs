//! The Sigma engine end to end, through `vedette detect` and `vedette rules check`:
//!
//! - conformance on the shared SigmaHQ corpus (`$VEDETTE_CORPORA/sigma`): every rule
//!   with a true-positive log fires on it; the pass rate is printed;
//! - every bundled rule (`rules/sigma/`) fires on each event of its `.tp.jsonl`;
//! - the hit lines of `vedette detect` and its error paths.

mod common;

use std::path::{Path, PathBuf};

use common::vedette_output;

/// The corpora folder: `VEDETTE_CORPORA`, else `../shared/corpora`.
fn corpora_root() -> PathBuf {
    std::env::var("VEDETTE_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora"))
}

fn corpus_sigma() -> PathBuf {
    let sigma = corpora_root().join("sigma");
    assert!(
        sigma.join("manifest.jsonl").is_file(),
        "the Sigma corpus is missing: {} has no manifest.jsonl. Set VEDETTE_CORPORA to the \
         corpora folder (see README, \"Test data\").",
        sigma.display()
    );
    sigma
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_corpus_rule_fires_on_its_true_positive_log() {
    let sigma = corpus_sigma();
    let s = |p: &str| sigma.join(p).display().to_string();
    let out = vedette_output(&[
        "rules",
        "check",
        "--quiet",
        "--conformance",
        &s(""),
        &s("rules"),
        &s("rules-emerging-threats"),
        &s("rules-threat-hunting"),
    ]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in text.lines().filter(|l| {
        l.starts_with("summary") || l.starts_with("conformance:") || l.contains(" FAIL ")
    }) {
        println!("{line}");
    }
    let cases = std::fs::read_to_string(sigma.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let verdict = text
        .lines()
        .find(|l| l.starts_with("conformance:") && l.contains("rules fire"))
        .expect("a conformance summary line");
    assert!(
        verdict.starts_with(&format!("conformance: {cases}/{cases} rules fire")),
        "{verdict}\nfailing cases:\n{}",
        text.lines()
            .filter(|l| l.contains(" FAIL "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every file of the rule tree is valid Sigma.
    assert!(text.contains(", 0 invalid files"), "{text}");
}

#[test]
fn every_bundled_rule_fires_on_its_events() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma");
    let mut checked = 0;
    for dir in std::fs::read_dir(&root).unwrap().flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let rule = file.path();
            if rule.extension().is_none_or(|e| e != "yml") {
                continue;
            }
            let tp = rule.with_extension("tp.jsonl");
            let events = std::fs::read_to_string(&tp)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count();
            let out = vedette_output(&[
                "detect",
                "--rules",
                rule.to_str().unwrap(),
                tp.to_str().unwrap(),
            ]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let hits: Vec<serde_json::Value> = stdout(&out)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let lines: Vec<u64> = hits.iter().map(|h| h["record"].as_u64().unwrap()).collect();
            assert_eq!(
                lines,
                (1..=events as u64).collect::<Vec<_>>(),
                "{} must fire once on every event of {}",
                rule.display(),
                tp.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} bundled rules found");
}

#[test]
fn detect_prints_one_json_line_per_hit_with_its_record() {
    let sigma = corpus_sigma();
    let case = "regression_data/rules/windows/process_creation/proc_creation_win_amsi_registry_tampering/7dbbcac2-57a0-45ac-b306-ff30a8bd2981";
    let rule =
        sigma.join("rules/windows/process_creation/proc_creation_win_amsi_registry_tampering.yml");
    let evtx = sigma.join(format!("{case}.evtx"));
    let jsonl = sigma.join(format!("{case}.jsonl"));
    let out = vedette_output(&[
        "detect",
        "--stats",
        "-r",
        rule.to_str().unwrap(),
        evtx.to_str().unwrap(),
        jsonl.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("events/s"),
        "--stats prints timing: {stderr}"
    );
    let hits: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 2, "{hits:?}");
    for h in &hits {
        assert_eq!(h["rule_id"], "7dbbcac2-57a0-45ac-b306-ff30a8bd2981");
        assert_eq!(h["level"], "high");
        assert!(h["rule_author"]
            .as_str()
            .is_some_and(|a| a.contains("Swachchhanda")));
        assert!(h["tags"].as_array().is_some_and(|t| !t.is_empty()));
        assert_eq!(h["timestamp"], "2025-12-25T14:30:27.369Z");
        assert_eq!(h["event_id"].as_str().map(str::len), Some(32));
        assert!(h["matched"]["CommandLine"]
            .as_str()
            .is_some_and(|c| c.contains("AmsiEnable")));
    }
    // EVTX records are numbered by EventRecordID, lines by their line number.
    assert_eq!(hits[0]["record"], 16094);
    assert_eq!(hits[1]["record"], 1);
}

#[test]
fn detect_and_check_report_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "title: [unclosed\n").unwrap();
    let out = vedette_output(&["rules", "check", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("invalid"), "{}", stdout(&out));

    let unsupported = dir.path().join("agg.yml");
    std::fs::write(
        &unsupported,
        "title: t\nid: x\nlogsource: {product: windows}\ndetection:\n  s:\n    A: b\n  condition: s | count() > 3\n",
    )
    .unwrap();
    let out = vedette_output(&["rules", "check", unsupported.to_str().unwrap()]);
    // Unsupported is reported but is not a failure.
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("unsupported"), "{}", stdout(&out));

    let missing = dir.path().join("nope.jsonl");
    let out = vedette_output(&[
        "detect",
        "-r",
        unsupported.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let out = vedette_output(&["detect", "-r", "/no/such/rules", missing.to_str().unwrap()]);
    assert!(!out.status.success());
}

#[test]
fn detect_raises_correlation_alerts_in_event_time() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/correlation");
    let rules = data.join("rules.yml");
    let log = data.join("logons.jsonl");
    let out = vedette_output(&[
        "detect",
        "-r",
        rules.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The base rule does not say `generate: true`: only the correlation alerts. The
    // records are out of order in the file; host-a has three failures in 5 minutes.
    assert_eq!(lines.len(), 1, "{lines:?}");
    let alert = &lines[0];
    assert_eq!(alert["kind"], "correlation");
    assert_eq!(alert["group"]["Computer"], "host-a");
    assert_eq!(alert["timestamp"], "2026-03-01T10:04:00.000Z");
    assert_eq!(alert["value"], 3.0);
    assert_eq!(alert["event_ids"].as_array().map(Vec::len), Some(3));
    // A second file with older records: by default windows close at the end of the
    // input, so they count; with no lateness allowed they arrive late and are dropped.
    let earlier = data.join("earlier.jsonl");
    let both = |extra: &[&str]| {
        let mut args = vec!["detect"];
        args.extend_from_slice(extra);
        args.extend([
            "-r",
            rules.to_str().unwrap(),
            log.to_str().unwrap(),
            earlier.to_str().unwrap(),
        ]);
        vedette_output(&args)
    };
    let out = both(&[]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
    let out = both(&["--lateness", "0"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 late hits"));
}

#[test]
fn a_bad_line_is_reported_and_the_other_lines_keep_their_numbers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma/windows");
    let rule = root.join("proc_creation_certutil_download.yml");
    let event =
        std::fs::read_to_string(root.join("proc_creation_certutil_download.tp.jsonl")).unwrap();
    let event = event.lines().next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mixed.jsonl");
    std::fs::write(&log, format!("{event}\n{{\"broken\": \n\n{event}\n")).unwrap();
    let out = vedette_output(&[
        "detect",
        "-r",
        rule.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<u64> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["record"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(records, vec![1, 4]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 records did not parse"));
}

#[test]
fn falcon_process_events_meet_windows_process_creation_rules() {
    // The routing map sends process_creation rules to CrowdStrike FDR ProcessRollup2
    // events, with Image and CommandLine read from the common columns.
    let rule = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sigma/powershell_encoded_command.yml");
    let fdr = corpora_root().join("logs/crowdstrike-fdr/panther_fdr.jsonl");
    let out = vedette_output(&[
        "detect",
        "-r",
        rule.to_str().unwrap(),
        fdr.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!hits.is_empty(), "no hit on the FDR sample");
    for h in &hits {
        assert_eq!(h["dataset"], "crowdstrike.fdr");
        assert!(h["matched"]["process.command_line"]
            .as_str()
            .is_some_and(|c| c.to_lowercase().contains("-enc")));
        assert!(h["matched"].get("Image").is_none());
    }
}

#[test]
fn the_bundled_ecs_pipeline_makes_rules_read_common_columns() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rule = repo.join("tests/data/sigma/powershell_encoded_command.yml");
    let pipeline = repo.join("rules/pipelines/vedette-ecs.yml");
    let sysmon = repo.join("rules/sigma/windows/proc_creation_powershell_encoded_command.tp.jsonl");
    let out = vedette_output(&[
        "detect",
        "--pipeline",
        pipeline.to_str().unwrap(),
        "-r",
        rule.to_str().unwrap(),
        sysmon.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    // The rule read the normalized columns, not the native names.
    assert!(
        hits[0]["matched"]["process.executable"].is_string(),
        "{:?}",
        hits[0]
    );
    assert!(hits[0]["matched"].get("Image").is_none());
}

#[test]
fn detect_reads_compressed_inputs_as_streams() {
    use std::io::Write as _;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma/windows");
    let rule = root.join("proc_creation_certutil_download.yml");
    let event =
        std::fs::read_to_string(root.join("proc_creation_certutil_download.tp.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&log).unwrap(),
        flate2::Compression::fast(),
    );
    // Enough lines for several 4 MiB pieces; the hit is on the last one.
    let filler = "{\"EventID\": 1, \"Channel\": \"Microsoft-Windows-Sysmon/Operational\", \"Image\": \"C:\\\\Windows\\\\notepad.exe\", \"CommandLine\": \"notepad.exe\"}\n";
    let lines = 3 * 4 * 1024 * 1024 / filler.len() + 1;
    for _ in 0..lines {
        gz.write_all(filler.as_bytes()).unwrap();
    }
    gz.write_all(event.lines().next().unwrap().as_bytes())
        .unwrap();
    gz.write_all(b"\n").unwrap();
    gz.finish().unwrap();
    let out = vedette_output(&[
        "detect",
        "-r",
        rule.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<u64> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["record"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(records, vec![lines as u64 + 1]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{} events", lines + 1)));
}
