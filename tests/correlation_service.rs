//! Sigma correlations in `vedette run`: a burst of failed logons for one account raises
//! one correlation alert on that account (the rule it counts raises none of its own),
//! windows are per tenant, and hostless cloud alerts of two accounts are two alerts, not
//! one folded into the other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Service;
use serde_json::{json, Value};

const BURST: &str = "5f0d8a3e-2c71-4b8e-9f64-0b1e7d2a9c53";
const FAILED: &str = "8c2e6f14-9b3d-4a57-b0e1-6d4f2a9c7e18";
const STOP_LOGGING: &str = "c333f022-e23a-4105-be91-57cc6241d940";

fn failed_logon(user: &str, host: &str, second: u32) -> String {
    json!({
        "EventID": 4625, "Channel": "Security",
        "Provider_Name": "Microsoft-Windows-Security-Auditing",
        "Computer": host, "EventRecordID": second,
        "TimeCreated_SystemTime": format!("2026-11-30T10:{:02}:{:02}.000Z", second / 60, second % 60),
        "TargetUserName": user, "TargetDomainName": "CORP", "LogonType": 3,
        "IpAddress": "198.51.100.7", "Status": "0xc000006d",
    })
    .to_string()
}

fn stop_logging(user: &str, second: u32) -> String {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "userName": user, "accountId": "111122223333"},
        "eventTime": format!("2026-11-30T11:00:{second:02}Z"),
        "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
        "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.9",
        "eventID": format!("stop-{user}"), "eventType": "AwsApiCall",
    })
    .to_string()
}

/// Writes `v.toml` in `dir`: the scenario's burst rules, risk, silence and baselines
/// off, and `extra` settings (sections included).
fn write_config(dir: &std::path::Path, extra: &str) {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scenarios/rules");
    let config = common::test_config(&format!(
        "[rules]\nsigma_dirs = [{:?}]\n[alerts.risk]\nenabled = false\n\
         [alerts.silence]\nenabled = false\n[alerts.baselines]\nenabled = false\n{extra}",
        rules.display().to_string()
    ));
    std::fs::write(dir.join("v.toml"), config).unwrap();
}

/// `vedette run` with `v.toml` of `dir`, healthy; its agent and analyst tokens.
fn start(dir: &std::path::Path) -> (Service, String, String) {
    let mut service = Service::start(dir, &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(20));
    let agent = service.token("agent", None);
    let analyst = service.token("analyst", None);
    (service, agent, analyst)
}

fn alerts(service: &Service, token: &str) -> Vec<Value> {
    let (code, body) = common::get_with(service.addr, "/v1/alerts?from=0&limit=1000", token);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_burst_raises_one_correlation_alert_on_its_account_and_cloud_accounts_are_not_folded() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(
        tmp.path(),
        "[alerts.dedup]\nwindow_seconds = 600\n[alerts.correlation]\nlateness_seconds = 30\n",
    );
    let (service, agent, analyst) = start(tmp.path());

    // 24 failed logons for carol within 24 s; 5 for dave (below the threshold of 20).
    let mut body = String::new();
    for s in 0..24 {
        body.push_str(&failed_logon("carol", "ws-7", s));
        body.push('\n');
        if s < 5 {
            body.push_str(&failed_logon("dave", "ws-8", s));
            body.push('\n');
        }
    }
    common::ingest(&service, &agent, &body);
    // Once those are detected (the events topic has partitions, read in any order), one
    // more event two minutes later moves event time past the lateness.
    common::wait_for("the burst detected", Duration::from_secs(30), || {
        let (_, text) = common::get_metrics(service.addr).ok()?;
        (common::metric_in(&text, "vedette_detect_events_total") >= 29).then_some(())
    });
    common::ingest(
        &service,
        &agent,
        &format!("{}\n", failed_logon("erin", "ws-9", 200)),
    );
    // The watermark is held to the slowest partition read lately: the burst's and dave's
    // partitions hold it until they have not been read for 10 s. One more event after
    // that moves it past the burst.
    std::thread::sleep(Duration::from_secs(11));
    common::ingest(
        &service,
        &agent,
        &format!("{}\n", failed_logon("erin", "ws-9", 210)),
    );
    // Two accounts stop CloudTrail logging: no host, two alerts.
    let cloud = format!(
        "{}\n{}\n",
        stop_logging("mallory", 1),
        stop_logging("trent", 2)
    );
    let auth = format!("Bearer {agent}");
    let (code, answer) = common::http_post_bytes(
        service.addr,
        "/v1/ingest?format=cloudtrail",
        &[("Authorization", &auth)],
        cloud.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&answer));

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let listed = loop {
        let listed = alerts(&service, &analyst);
        let burst = listed.iter().filter(|a| a["rule.id"] == BURST).count();
        let cloud = listed
            .iter()
            .filter(|a| a["rule.id"] == STOP_LOGGING)
            .count();
        if (burst >= 1 && cloud >= 2) || std::time::Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let rules: Vec<(&Value, &Value)> = listed
        .iter()
        .map(|a| (&a["rule.id"], &a["user.name"]))
        .collect();
    let burst: Vec<&Value> = listed.iter().filter(|a| a["rule.id"] == BURST).collect();
    assert_eq!(burst.len(), 1, "{rules:?}\n{}", service.log_tail());
    assert_eq!(burst[0]["detection.kind"], "correlation");
    assert_eq!(burst[0]["user.name"], "carol");
    assert_eq!(burst[0]["rule.level"], "high");
    assert_eq!(burst[0]["matched"]["TargetUserName"], "carol");
    assert_eq!(burst[0]["matched"]["correlation.value"], "20");
    assert_eq!(burst[0]["event.ids"].as_array().map(Vec::len), Some(20));
    assert!(
        listed.iter().all(|a| a["rule.id"] != FAILED),
        "the counted rule raised alerts of its own"
    );
    let mut users: Vec<&str> = listed
        .iter()
        .filter(|a| a["rule.id"] == STOP_LOGGING)
        .filter_map(|a| a["user.name"].as_str())
        .collect();
    users.sort();
    assert_eq!(users, ["mallory", "trent"]);

    let (_, text) = common::get_metrics(service.addr).unwrap();
    assert_eq!(
        common::metric_in(&text, "vedette_correlation{kind=\"alerts\"}"),
        1,
        "{text}"
    );
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

/// A burst followed by silence still raises its correlation: once the lateness has
/// passed on the clock since the last event, the window closes without another event.
#[test]
fn a_burst_with_nothing_after_it_is_raised_once_the_lateness_has_passed() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(tmp.path(), "[alerts.correlation]\nlateness_seconds = 2\n");
    let (service, agent, analyst) = start(tmp.path());
    let body: String = (0..24)
        .map(|s| format!("{}\n", failed_logon("carol", "ws-7", s)))
        .collect();
    common::ingest(&service, &agent, &body);
    let burst = common::wait_for("the correlation alert", Duration::from_secs(40), || {
        alerts(&service, &analyst)
            .into_iter()
            .find(|a| a["rule.id"] == BURST)
    });
    assert_eq!(burst["user.name"], "carol");
    assert_eq!(burst["matched"]["correlation.value"], "20");
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

/// A restart keeps a half-counted burst: the open windows are saved at shutdown and
/// restored at start, so twelve failed logons before the restart and eight of the twelve
/// after make the burst of twenty.
#[test]
fn a_restart_keeps_the_open_windows() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(tmp.path(), "[alerts.correlation]\nlateness_seconds = 3\n");
    let burst = |from: u32| -> String {
        (from..from + 12)
            .map(|s| format!("{}\n", failed_logon("carol", "ws-7", s)))
            .collect()
    };

    let (service, agent, _) = start(tmp.path());
    common::ingest(&service, &agent, &burst(0));
    common::wait_for("the first half detected", Duration::from_secs(30), || {
        let (_, text) = common::get_metrics(service.addr).ok()?;
        (common::metric_in(&text, "vedette_detect_events_total") >= 12).then_some(())
    });
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        tmp.path().join("data/correlation/windows.json").is_file(),
        "windows were not saved at shutdown"
    );

    let (service, agent, analyst) = start(tmp.path());
    // A minute of event time later: within the burst's five minutes.
    common::ingest(&service, &agent, &burst(60));
    let alert = common::wait_for(
        "the burst across the restart",
        Duration::from_secs(40),
        || {
            alerts(&service, &analyst)
                .into_iter()
                .find(|a| a["rule.id"] == BURST)
        },
    );
    assert_eq!(alert["user.name"], "carol");
    // The twentieth hit, eight after the restart, fires it.
    assert_eq!(alert["matched"]["correlation.value"], "20");
    assert_eq!(alert["event.ids"].as_array().map(Vec::len), Some(20));
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}
