//! The benchmark generator's ground truth holds: over a generated stream of every source,
//! `vedette detect` with the bundled Sigma, YARA and baseline rules and the scenario's
//! correlation raises the alert of every injected story (Sigma, YARA, baseline,
//! correlation), each on the story's own entity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;
use vedette_bench::generate::generate;
use vedette_bench::recall::recall;
use vedette_bench::scenario::Generate;

#[test]
fn every_injected_story_raises_its_alert_in_vedette_detect() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Generate {
        windows_hosts: 60,
        linux_hosts: 10,
        users: 50,
        // An hour of event time per 36 records, so hosts finish their week of learning
        // early and the baseline story runs several times.
        event_ms: 100_000,
        attack_every: 250,
        ..Generate::default()
    };
    let written = generate(&settings, 30_000, dir.path(), false, false).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vedette"))
        .args([
            "detect",
            "--rules",
            "rules/sigma",
            "--rules",
            "benches/scenarios/rules",
            "--yara",
            "rules/yara",
            "--baselines",
            "rules/baselines",
        ])
        .args(&written.files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let r = recall(&written.truth, &alerts);
    assert!(
        r.missed.is_empty(),
        "{}; missed {:?}",
        r.summary(),
        r.missed
    );
    for kind in ["sigma", "yara", "baseline", "correlation"] {
        assert!(
            r.found.get(kind).copied().unwrap_or(0) > 0,
            "{}",
            r.summary()
        );
    }
    assert_eq!(written.truth.len(), 119, "{}", r.summary());
}
