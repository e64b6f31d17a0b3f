//! Retro-hunt: `vedette hunt` over stored events raises exactly the alerts the stream
//! raised on the same events, with the same compiled rules, on the Parquet store and on
//! ClickHouse (the test server started by `deploy/local/up.sh`).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{get_metrics, http_post, metric_in, vedette_output, Service};

/// Admin tokens may also send events.
const TOKEN: &str = common::ADMIN_TOKEN;

/// (rule id, event ids) of alerts given as JSON objects with those keys.
fn hits(lines: &str, rule_key: &str, events_key: &str) -> BTreeSet<(String, Vec<String>)> {
    lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let rule = v[rule_key].as_str().unwrap_or_default().to_string();
            let mut ids: Vec<String> = v[events_key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect();
            ids.sort();
            (rule, ids)
        })
        .collect()
}

#[test]
fn retro_hunt_raises_the_alerts_the_stream_raised() {
    retro_hunt_agrees_with_the_stream(
        "",
        "SELECT count(*) AS n FROM alerts WHERE array_has(\"rule.tags\", 'vedette.retro')",
    );
}

#[test]
fn on_clickhouse_too() {
    retro_hunt_agrees_with_the_stream(
        &common::clickhouse_store("hunt"),
        "SELECT count(*) AS n FROM alerts WHERE has(\"rule.tags\", 'vedette.retro')",
    );
}

/// Streams the bundled rules' true positives through `vedette run` with the store
/// configured by `store_section`, then hunts the stored events with the same rules;
/// `retro_count_sql` counts the stored retro alerts as `n`.
fn retro_hunt_agrees_with_the_stream(store_section: &str, retro_count_sql: &str) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        tmp.path().join("v.toml"),
        common::test_config(store_section),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = tmp.path().join("v.toml").display().to_string();
    let mut service = Service::start_with_env(tmp.path(), &["--config", "v.toml"], &[]);
    service.wait_healthy(Duration::from_secs(10));
    let auth = format!("Bearer {TOKEN}");
    let (mut posted, mut accepted) = (0, 0u64);
    for entry in std::fs::read_dir(repo.join("rules/sigma/windows"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
    {
        let path = entry.path();
        if !path.to_string_lossy().ends_with(".tp.jsonl") {
            continue;
        }
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let (code, answer) = http_post(
            service.addr,
            "/v1/ingest?format=windows-json",
            &[("Authorization", auth.as_str())],
            &body,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(code, 200, "{}: {answer}", path.display());
        posted += 1;
        let answer: serde_json::Value =
            serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
        accepted += answer["accepted"].as_u64().unwrap_or(0);
    }
    assert!(posted >= 5, "only {posted} true-positive files");
    // Wait until every alert the stream raised is stored, and every event too: the
    // retro-hunt reads the store, and events still on the bus at shutdown are not in it.
    let start = Instant::now();
    loop {
        let (_, text) = get_metrics(service.addr).unwrap_or_else(|e| panic!("{e}"));
        let raised: u64 = text
            .lines()
            .filter(|l| l.starts_with("vedette_alerts_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        let stored = metric_in(&text, "vedette_ledger_stored_total{table=\"alerts\"}");
        let events = metric_in(&text, "vedette_detect_events_total");
        let stored_events = metric_in(&text, "vedette_ledger_stored_total{table=\"events\"}");
        if raised > 0 && stored == raised && events >= accepted && stored_events >= accepted {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "alerts not stored:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");

    let data = tmp.path().join("data").display().to_string();
    let stream = vedette_output(&[
        "query",
        "--config",
        &config,
        "--data-dir",
        &data,
        "--format",
        "json",
        "SELECT \"rule.id\", \"event.ids\" FROM alerts",
    ]);
    assert!(
        stream.status.success(),
        "{}",
        String::from_utf8_lossy(&stream.stderr)
    );
    let stream_hits = hits(
        &String::from_utf8_lossy(&stream.stdout),
        "rule.id",
        "event.ids",
    );
    let rules = repo.join("rules/sigma").display().to_string();
    let retro = vedette_output(&[
        "hunt",
        "--config",
        &config,
        "--rules",
        &rules,
        "--data-dir",
        &data,
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2100-01-01T00:00:00Z",
    ]);
    assert!(
        retro.status.success(),
        "{}",
        String::from_utf8_lossy(&retro.stderr)
    );
    let retro_hits = hits(
        &String::from_utf8_lossy(&retro.stdout),
        "rule_id",
        "event_ids",
    );
    assert!(!stream_hits.is_empty());
    assert_eq!(
        retro_hits, stream_hits,
        "the retro-hunt and the stream agree"
    );
    // The retro alerts are stored too, tagged.
    let tagged = vedette_output(&[
        "query",
        "--config",
        &config,
        "--data-dir",
        &data,
        "--format",
        "csv",
        retro_count_sql,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&tagged.stdout),
        format!("n\n{}\n", retro_hits.len())
    );
    // A span with no events hunts nothing.
    let empty = vedette_output(&[
        "hunt",
        "--config",
        &config,
        "--rules",
        &rules,
        "--data-dir",
        &data,
        "--from",
        "1990-01-01T00:00:00Z",
        "--to",
        "1990-01-02T00:00:00Z",
    ]);
    assert!(empty.status.success());
    assert!(empty.stdout.is_empty());
    let bad = vedette_output(&[
        "hunt",
        "--rules",
        &rules,
        "--data-dir",
        &data,
        "--since",
        "7w",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unit must be m, h or d"));
}
