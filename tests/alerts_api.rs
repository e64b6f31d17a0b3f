//! Alert triage on a running service: `GET /v1/alerts` lists the alerts a bundled rule
//! raised, with filters and the caller's tenant only; acknowledging and marking a
//! false positive change the status (kept across a restart, recorded in the audit
//! table); a false-positive mark suppresses later alerts of the same rule and host
//! until the alert is reopened.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{get_metrics, http_post, http_request, metric_in, wait_for, Service};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);
/// The host of the certutil true-positive event.
const HOST: &str = "ws-hr-007.corp.example";

/// Writes the config (with `store_section`) once, then starts the service.
fn start(tmp: &Path, store_section: &str) -> Service {
    let config = tmp.join("v.toml");
    if !config.exists() {
        std::fs::write(&config, common::test_config(store_section))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut service = Service::start(tmp, &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    service
}

/// The certutil download event on `host`, with `suffix` making it a new event.
fn certutil_event(host: &str, suffix: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("rules/sigma/windows/proc_creation_certutil_download.tp.jsonl"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    text.trim()
        .replace(HOST, host)
        .replace("-urlcache", &format!("-urlcache {suffix}"))
        .into_bytes()
}

fn send(service: &Service, token: &str, body: &[u8]) {
    let auth = format!("Bearer {token}");
    let (code, answer) = http_post(
        service.addr,
        "/v1/ingest?format=windows-json",
        &[("Authorization", &auth)],
        body,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{answer}");
}

fn get(service: &Service, token: &str, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let (code, body) = http_request(service.addr, "GET", path, &[("Authorization", &auth)], b"")
        .unwrap_or_else(|e| panic!("{e}"));
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (code, value)
}

fn post(service: &Service, token: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let (code, body) = http_post(
        service.addr,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (code, value)
}

/// (host, status) of every listed alert, sorted.
fn hosts_and_statuses(listing: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = listing["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("{listing}"))
        .iter()
        .map(|a| {
            (
                a["host.name"].as_str().unwrap_or_default().to_string(),
                a["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn alert_id(listing: &Value, host: &str) -> String {
    listing["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["host.name"] == host))
        .and_then(|a| a["alert.id"].as_str())
        .unwrap_or_else(|| panic!("no alert for {host} in {listing}"))
        .to_string()
}

#[test]
fn analysts_list_acknowledge_and_suppress_alerts_of_their_tenant() {
    triage_flow("");
}

#[test]
fn on_clickhouse_too() {
    triage_flow(&common::clickhouse_store("triage"));
}

/// The whole triage story on the store of `store_section`.
fn triage_flow(store_section: &str) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut service = start(tmp.path(), store_section);
    let agent = service.token("agent", Some("acme"));
    let analyst = service.token("analyst", Some("acme"));
    let other = service.token("analyst", Some("globex"));
    let mut body = certutil_event("ws-a", "one");
    body.push(b'\n');
    body.extend(certutil_event("ws-b", "one"));
    send(&service, &agent, &body);

    let all = "/v1/alerts?from=0";
    let listing = wait_for("two stored alerts", WAIT, || {
        let (code, listing) = get(&service, &analyst, all);
        (code == 200 && listing["count"] == 2).then_some(listing)
    });
    assert_eq!(
        hosts_and_statuses(&listing),
        [
            ("ws-a".into(), "open".into()),
            ("ws-b".into(), "open".into())
        ]
    );
    let first = &listing["alerts"][0];
    assert_eq!(first["tenant"], "acme");
    assert_eq!(first["rule.id"], "d2644136-7400-49e4-8b45-45b687d7b72a");
    let (a, b) = (alert_id(&listing, "ws-a"), alert_id(&listing, "ws-b"));
    // What matched, and the event behind it (maps read the same on every store).
    assert!(
        first["matched"]["CommandLine"]
            .as_str()
            .is_some_and(|c| c.contains("-urlcache")),
        "{first}"
    );
    let (code, detail) = get(&service, &analyst, &format!("/v1/alerts/{a}"));
    assert_eq!(code, 200, "{detail}");
    let event = &detail["events"][0];
    assert_eq!(event["host.name"], "ws-a", "{detail}");
    assert!(
        event["fields"]["CommandLine"]
            .as_str()
            .is_some_and(|c| c.contains("-urlcache")),
        "{event}"
    );
    let (_, kinds) = get(
        &service,
        &analyst,
        "/v1/alerts?from=0&kind=sigma,yara&tenant=acme",
    );
    assert_eq!(kinds["count"], 2, "{kinds}");
    let (_, kinds) = get(&service, &analyst, "/v1/alerts?from=0&kind=risk");
    assert_eq!(kinds["count"], 0, "{kinds}");

    // Another tenant sees none of them and cannot triage them.
    let (code, theirs) = get(&service, &other, all);
    assert_eq!(
        (code, theirs["count"].clone()),
        (200, Value::from(0)),
        "{theirs}"
    );
    let (code, _) = post(&service, &other, &format!("/v1/alerts/{a}/ack"), "");
    assert_eq!(code, 404);

    // Filters.
    let (_, one) = get(&service, &analyst, "/v1/alerts?from=0&entity=ws-b");
    assert_eq!(hosts_and_statuses(&one), [("ws-b".into(), "open".into())]);
    let (_, none) = get(&service, &analyst, "/v1/alerts?from=0&level=informational");
    assert_eq!(none["count"], 0, "{none}");
    let (_, none) = get(&service, &analyst, "/v1/alerts?from=0&rule=no-such-rule");
    assert_eq!(none["count"], 0, "{none}");
    let (code, _) = get(&service, &analyst, "/v1/alerts?status=closed");
    assert_eq!(code, 400);
    let (code, _) = get(&service, &analyst, "/v1/alerts?entity=x%27y");
    assert_eq!(code, 400);
    let (code, _) = get(&service, &agent, all);
    assert_eq!(code, 403, "agents do not read alerts");

    // Triage.
    let (code, answer) = post(
        &service,
        &analyst,
        &format!("/v1/alerts/{a}/ack"),
        r#"{"note": "known admin task"}"#,
    );
    assert_eq!(
        (code, answer["status"].clone()),
        (200, "acknowledged".into()),
        "{answer}"
    );
    let (code, answer) = post(
        &service,
        &analyst,
        &format!("/v1/alerts/{b}/false-positive"),
        "",
    );
    assert_eq!(
        (code, answer["status"].clone()),
        (200, "false_positive".into()),
        "{answer}"
    );
    let (code, _) = post(&service, &analyst, "/v1/alerts/no-such-alert/ack", "");
    assert_eq!(code, 404);
    let (code, _) = post(
        &service,
        &analyst,
        &format!("/v1/alerts/{a}/ack"),
        "{not json",
    );
    assert_eq!(code, 400);

    let check_statuses = |service: &Service, open: usize| {
        let (_, listing) = get(service, &analyst, all);
        let mut expected = vec![
            ("ws-a".to_string(), "acknowledged".to_string()),
            ("ws-b".to_string(), "false_positive".to_string()),
        ];
        if open == 1 {
            expected.push(("ws-c".into(), "open".into()));
        }
        assert_eq!(hosts_and_statuses(&listing), expected);
        let acked = listing["alerts"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["host.name"] == "ws-a"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(acked["status_note"], "known admin task", "{acked}");
        let (_, listing) = get(service, &analyst, "/v1/alerts?from=0&status=open");
        assert_eq!(listing["count"], open, "{listing}");
        let (_, fp) = get(service, &analyst, "/v1/alerts?from=0&status=false_positive");
        assert_eq!(
            hosts_and_statuses(&fp),
            [("ws-b".into(), "false_positive".into())]
        );
    };
    check_statuses(&service, 0);

    // The false positive suppresses the same rule on the same host; other hosts alert.
    let mut again = certutil_event("ws-b", "two");
    again.push(b'\n');
    again.extend(certutil_event("ws-c", "two"));
    send(&service, &agent, &again);
    wait_for("one suppressed, one raised", WAIT, || {
        let (_, text) = get_metrics(service.addr).ok()?;
        (metric_in(&text, "vedette_alerts_suppressed_total") == 1
            && metric_in(&text, "vedette_detect_events_total") == 4)
            .then_some(())
    });
    wait_for("the ws-c alert", WAIT, || {
        let (_, listing) = get(&service, &analyst, "/v1/alerts?from=0&entity=ws-c");
        (listing["count"] == 1).then_some(())
    });

    // The audit table holds the triage, queryable by the tenant's analyst.
    let auth = format!("Bearer {analyst}");
    let sql = format!(r#"{{"sql": "SELECT action FROM audit WHERE target = '{a}'"}}"#);
    let (code, out) = common::http_post_bytes(
        service.addr,
        "/v1/query",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        sql.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(code, 200, "{out}");
    assert_eq!(out.trim(), r#"{"action":"alert.ack"}"#);

    // After a restart: statuses kept, marks still suppress.
    let (code, _) = service.terminate();
    assert_eq!(code, Some(0));
    service = start(tmp.path(), store_section);
    check_statuses(&service, 1);
    send(&service, &agent, &certutil_event("ws-b", "three"));
    wait_for("suppressed after the restart", WAIT, || {
        let (_, text) = get_metrics(service.addr).ok()?;
        (metric_in(&text, "vedette_alerts_suppressed_total") == 1).then_some(())
    });

    // Reopened: the mark is lifted, the host alerts again.
    let (code, answer) = post(&service, &analyst, &format!("/v1/alerts/{b}/reopen"), "");
    assert_eq!(
        (code, answer["status"].clone()),
        (200, "open".into()),
        "{answer}"
    );
    let (_, fp) = get(
        &service,
        &analyst,
        "/v1/alerts?from=0&status=false_positive",
    );
    assert_eq!(fp["count"], 0, "{fp}");
    send(&service, &agent, &certutil_event("ws-b", "four"));
    wait_for("a new ws-b alert", WAIT, || {
        let (_, listing) = get(&service, &analyst, "/v1/alerts?from=0&entity=ws-b");
        (listing["count"] == 2).then_some(())
    });
    let (_, text) = get_metrics(service.addr).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(metric_in(&text, "vedette_alerts_suppressed_total"), 1);
    let (code, _) = service.terminate();
    assert_eq!(code, Some(0));
}
