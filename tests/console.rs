//! The analyst console on a real `vedette run` (embedded bus and Parquet store) fed with
//! the bundled rules' true positives and the corpus's Sysmon events:
//! - the API the console uses answers what its pages need (session, one alert with its
//!   events and matched fields, retro-hunts, example queries, the health history, rule
//!   metadata, sources and the conformance report), with its refusals;
//! - the console itself, driven in Debian's Chromium by Playwright
//!   (`console/tests/console.e2e.mjs`): sign in, alerts, detail, triage, search, hunt,
//!   entity, rules, health, sign out. Its screenshots go to `console/screenshots/`.
//!   After it, the false-positive mark it made suppresses the next alert of that rule.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    get_metrics, http_request, metric_in, vedette_output, wait_for, Service, ADMIN_TOKEN,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
/// A rule matching the corpus's Sysmon process creations (for the retro-hunt).
const HUNT_RULE: &str = "title: Processes started from System32 (console test)\n\
id: 7b0c1c55-3f7e-4d53-9a43-5be2d1f1c001\nstatus: test\nlevel: low\n\
logsource:\n  product: windows\n  category: process_creation\n\
detection:\n  selection:\n    Image|contains: '\\System32\\'\n  condition: selection\n";
/// A user name that is markup, as a JSON string body (the console must show it as text).
const XSS_USER_JSON: &str = "<img src=x onerror=alert(1)>";
/// One line that is not an event (a dead letter for the health page).
const BAD_LINE: &str = "{\"EventID\": 1, this is not JSON\n";

/// A started, fed service and its tokens.
struct Fed {
    service: Service,
    analyst: String,
    agent: String,
    /// Alerts the bundled rules raised on the true positives.
    alerts: usize,
}

fn call(service: &Service, token: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let (code, text) = http_request(
        service.addr,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (code, value)
}

fn get(service: &Service, token: &str, path: &str) -> (u16, Value) {
    call(service, token, "GET", path, "")
}

/// Starts the service in `tmp` and feeds it; waits until every alert is stored.
fn start_fed(tmp: &Path) -> Fed {
    std::fs::write(tmp.join("v.toml"), common::test_config("")).unwrap_or_else(|e| panic!("{e}"));
    let mut service = Service::start(tmp, &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    let agent = service.token("agent", None);
    let analyst = service.token("analyst", None);
    let positives = common::true_positives();
    let mut alerts = 0;
    for (path, _) in &positives {
        common::ingest_bytes(
            &service,
            &agent,
            &std::fs::read(path).unwrap_or_else(|e| panic!("{e}")),
        );
        alerts += common::lines_of_file(path).len();
    }
    let sysmon = common::corpora().join("logs/evtx/sysmon.flat.jsonl");
    let answer = common::ingest_bytes(
        &service,
        &agent,
        &std::fs::read(&sysmon).unwrap_or_else(|e| panic!("{}: {e}", sysmon.display())),
    );
    assert!(answer["accepted"].as_u64().unwrap_or(0) > 100, "{answer}");
    common::ingest_bytes(&service, &agent, BAD_LINE.as_bytes());
    // A user name that is markup: the console must show it as text.
    let certutil = common::true_positives()
        .into_iter()
        .find(|(p, _)| p.to_string_lossy().contains("certutil_download"))
        .map(|(p, _)| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|| panic!("no certutil true positive"));
    let marked_up = certutil.replace("CORP\\\\asmith", XSS_USER_JSON);
    assert_ne!(marked_up, certutil, "the certutil event names CORP\\asmith");
    common::ingest_bytes(&service, &agent, marked_up.as_bytes());
    alerts += 1;
    wait_for("the true positives' alerts", WAIT, || {
        let (_, list) = get(
            &service,
            &analyst,
            "/v1/alerts?from=0&limit=1000&kind=sigma",
        );
        let n = list["alerts"].as_array().map_or(0, Vec::len);
        (n >= alerts).then_some(())
    });
    Fed {
        service,
        analyst,
        agent,
        alerts,
    }
}

#[test]
fn the_api_answers_what_the_console_pages_need() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fed = start_fed(tmp.path());
    let (service, analyst) = (&fed.service, fed.analyst.as_str());
    let acme = service.token("analyst", Some("acme"));

    // Who the token is.
    let (code, me) = get(service, analyst, "/v1/session");
    assert_eq!((code, me["role"].as_str()), (200, Some("analyst")), "{me}");
    assert!(me["tenant"].is_null(), "{me}");
    assert_eq!(me["risk"]["threshold"], 150.0, "{me}");
    assert_eq!(me["store"], "parquet", "{me}");
    let (_, me) = get(service, &acme, "/v1/session");
    assert_eq!(me["tenant"], "acme");
    assert_eq!(get(service, "vdt_nope", "/v1/session").0, 401);

    // One alert: its matched fields and the events it names, which hold them.
    let (_, list) = get(service, analyst, "/v1/alerts?from=0&limit=1000&kind=sigma");
    let alerts = list["alerts"].as_array().cloned().unwrap_or_default();
    assert!(alerts.len() >= fed.alerts, "{list}");
    let (_, none) = get(service, analyst, "/v1/alerts?from=0&kind=yara");
    assert_eq!(none["count"], 0, "{none}");
    for alert in &alerts {
        let id = alert["alert.id"].as_str().unwrap_or_default();
        let matched = alert["matched"].as_object().cloned().unwrap_or_default();
        assert!(!matched.is_empty(), "no matched fields: {alert}");
        let (code, detail) = get(service, analyst, &format!("/v1/alerts/{id}"));
        assert_eq!(code, 200, "{detail}");
        assert_eq!(detail["alert"]["alert.id"], id);
        let events = detail["events"].as_array().cloned().unwrap_or_default();
        assert!(!events.is_empty(), "no events for {alert}");
        let ids = alert["event.ids"].as_array().cloned().unwrap_or_default();
        for event in &events {
            assert!(ids.contains(&event["event.id"]), "{event} not in {ids:?}");
        }
        // Each matched value is in one of the events, as a column or an original field.
        for (field, value) in &matched {
            let found = events.iter().any(|e| {
                let text = e.to_string();
                e.get(field) == Some(value)
                    || e["fields"].get(field) == Some(value)
                    || value
                        .as_str()
                        .is_some_and(|v| text.contains(&v.replace('\\', "\\\\")))
            });
            assert!(found, "{field}={value} in none of {events:?}");
        }
        // Another tenant's token does not see it.
        assert_eq!(get(service, &acme, &format!("/v1/alerts/{id}")).0, 404);
    }
    assert_eq!(get(service, analyst, "/v1/alerts/0123456789").0, 404);

    // A retro-hunt: matches tagged, nothing stored; a tenant sees its events only.
    let body = json!({ "sigma": HUNT_RULE, "from": 0 }).to_string();
    let (code, hunt) = call(service, analyst, "POST", "/v1/hunt", &body);
    assert_eq!(code, 200, "{hunt}");
    assert!(hunt["events"].as_u64().unwrap_or(0) > 100, "{hunt}");
    let found = hunt["alerts"].as_array().cloned().unwrap_or_default();
    assert!(!found.is_empty(), "{hunt}");
    assert!(found.iter().all(|a| a["tags"]
        .as_array()
        .is_some_and(|t| t.contains(&json!("vedette.retro")))));
    let (_, stored) = get(
        service,
        analyst,
        "/v1/alerts?from=0&rule=7b0c1c55-3f7e-4d53-9a43-5be2d1f1c001",
    );
    assert_eq!(
        stored["count"], 0,
        "a hunt from the API stores nothing: {stored}"
    );
    let one = json!({ "sigma": HUNT_RULE, "from": 0, "max_alerts": 1 }).to_string();
    let (_, first) = call(service, analyst, "POST", "/v1/hunt", &one);
    assert_eq!(first["alerts"].as_array().map(Vec::len), Some(1), "{first}");
    assert_eq!(
        (&first["truncated"], &first["truncated_reason"]),
        (&json!(true), &json!("max_alerts")),
        "{first}"
    );
    assert_eq!(hunt["truncated_reason"], Value::Null, "{hunt}");
    let (_, theirs) = call(service, &acme, "POST", "/v1/hunt", &body);
    assert_eq!(theirs["events"], 0, "{theirs}");
    let bad = json!({ "sigma": "title: x\ndetection:\n  condition: nothing\n", "from": 0 });
    let (code, refused) = call(service, analyst, "POST", "/v1/hunt", &bad.to_string());
    assert_eq!(code, 422, "{refused}");
    assert!(
        !refused["problems"].as_array().is_some_and(Vec::is_empty),
        "{refused}"
    );
    let (code, _) = call(service, analyst, "POST", "/v1/hunt", "{\"from\": 0}");
    assert_eq!(code, 400);

    // The example queries of docs/queries.md, in DataFusion's dialect; each runs.
    let (_, examples) = get(service, analyst, "/v1/query/examples");
    assert_eq!(examples["dialect"], "datafusion");
    let examples = examples["examples"].as_array().cloned().unwrap_or_default();
    assert!(examples.len() >= 5, "{examples:?}");
    for example in &examples {
        assert!(!example["title"].as_str().unwrap_or_default().is_empty());
        let sql = example["sql"].as_str().unwrap_or_default();
        let (code, out) = call(
            service,
            analyst,
            "POST",
            "/v1/query",
            &json!({ "sql": sql }).to_string(),
        );
        assert_eq!(code, 200, "{sql}: {out}");
    }

    // The health history: the ledger balances in its latest sample; tenants may not see it.
    let latest = wait_for("a health sample with every record", WAIT, || {
        let (_, history) = get(service, analyst, "/v1/health/history");
        let sample = history["samples"].as_array()?.last()?.clone();
        let sum = |prefix: &str| -> f64 {
            sample["values"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| k.starts_with(prefix))
                        .filter_map(|(_, v)| v.as_f64())
                        .sum()
                })
                .unwrap_or(0.0)
        };
        let received = sum("vedette_ledger_received_total");
        let accounted = sum("vedette_ledger_appended_total")
            + sum("vedette_ledger_dead_lettered_total")
            + sum("vedette_ledger_rejected_total");
        (received > 100.0 && received == accounted && sum("vedette_ledger_dead_lettered") >= 1.0)
            .then_some(sample)
    });
    assert!(
        latest["values"].as_object().is_some_and(|m| m
            .keys()
            .any(|k| k.starts_with("vedette_ingest_events_by_dataset_total"))),
        "{latest}"
    );
    assert_eq!(get(service, &acme, "/v1/health/history").0, 403);
    let newest = latest["t"].as_i64().unwrap_or_default();
    let (_, newer) = get(
        service,
        analyst,
        &format!("/v1/health/history?after={newest}"),
    );
    assert!(
        newer["samples"]
            .as_array()
            .is_some_and(|s| s.iter().all(|x| x["t"].as_i64() > Some(newest))),
        "{newer}"
    );

    // Acknowledging an alert marked a false positive is refused until it is reopened.
    let id = alerts[0]["alert.id"].as_str().unwrap_or_default();
    let triage = |action: &str| {
        call(
            service,
            analyst,
            "POST",
            &format!("/v1/alerts/{id}/{action}"),
            "",
        )
        .0
    };
    assert_eq!(triage("false-positive"), 200);
    assert_eq!(triage("ack"), 409);
    assert_eq!(triage("reopen"), 200);
    assert_eq!(triage("ack"), 200);

    // Rules: metadata, sources, the conformance report once saved.
    let (_, rules) = get(service, analyst, "/v1/rules");
    assert!(rules["conformance"].is_null(), "{}", rules["conformance"]);
    let list = rules["rules"].as_array().cloned().unwrap_or_default();
    let certutil = list
        .iter()
        .find(|r| {
            r["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("certutil_download.yml"))
        })
        .unwrap_or_else(|| panic!("no certutil rule in {rules}"));
    assert_eq!(certutil["status"], "loaded");
    assert_eq!(certutil["kind"], "detection");
    assert!(
        certutil["level"].is_string() && certutil["description"].is_string(),
        "{certutil}"
    );
    assert!(
        certutil["tags"].as_array().is_some_and(|t| !t.is_empty()),
        "{certutil}"
    );
    assert!(certutil["editable_path"].is_null());
    let file = certutil["file"].as_str().unwrap_or_default();
    let (code, source) = get(
        service,
        analyst,
        &format!("/v1/rules/source?file={}", urlencode(file)),
    );
    assert_eq!(code, 200, "{source}");
    let title = certutil["title"].as_str().unwrap_or_default();
    assert!(
        source["text"].as_str().is_some_and(|t| t.contains(title)),
        "{source}"
    );
    assert_eq!(
        get(service, analyst, "/v1/rules/source?file=%2Fetc%2Fpasswd").0,
        404
    );
    assert_eq!(get(service, analyst, "/v1/rules/source").0, 400);
    let (code, put) = call(
        service,
        ADMIN_TOKEN,
        "PUT",
        "/v1/rules/team/hunt.yml",
        HUNT_RULE,
    );
    assert_eq!(code, 200, "{put}");
    let (_, rules) = get(service, analyst, "/v1/rules");
    let mine = rules["rules"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|r| r["editable_path"] == "team/hunt.yml")
                .cloned()
        })
        .unwrap_or_else(|| panic!("no editable rule in {rules}"));
    let (_, source) = get(
        service,
        analyst,
        &format!(
            "/v1/rules/source?file={}",
            urlencode(mine["file"].as_str().unwrap_or_default())
        ),
    );
    assert_eq!(source["text"], HUNT_RULE);
    assert_eq!(source["editable_path"], "team/hunt.yml");

    let corpus = common::corpora().join("sigma");
    let rules_dir = corpus.join("rules/windows/builtin/security");
    let out = vedette_output(&[
        "rules",
        "check",
        "--quiet",
        "--conformance",
        &corpus.display().to_string(),
        "--data-dir",
        &tmp.path().join("data").display().to_string(),
        &rules_dir.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, rules) = get(service, analyst, "/v1/rules");
    let conformance = &rules["conformance"];
    assert!(
        conformance["total"].as_u64().unwrap_or(0) > 0,
        "{conformance}"
    );
    assert!(
        conformance["rate_percent"].as_f64().is_some(),
        "{conformance}"
    );

    // The page and its files: public, with the policy; nothing else under /console.
    let (code, page) = common::http_get(service.addr, "/").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200);
    assert!(page.contains("/console/app.js"), "{page}");
    let (code, _) =
        common::http_get(service.addr, "/console/app.js").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200);
    let (code, _) =
        common::http_get(service.addr, "/console/../Cargo.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 404);
}

/// `text` with the characters a query value may not hold raw escaped.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The console's folder, with its npm packages installed (by scripts/ci/install.sh).
fn console_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the console's test packages are missing: run scripts/ci/install.sh (or `npm ci` in {})",
        dir.display()
    );
    dir
}

/// Debian's Chromium (or `CHROMIUM`).
fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "no browser at {path}: run scripts/ci/install.sh (it installs Debian's chromium) or set CHROMIUM"
    );
    path
}

#[test]
fn the_console_works_in_a_real_browser() {
    let (dir, browser) = (console_dir(), chromium());
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fed = start_fed(tmp.path());
    let service = &fed.service;
    let screenshots = dir.join("screenshots");
    let run = Command::new("node")
        .arg("tests/console.e2e.mjs")
        .current_dir(&dir)
        .env("VEDETTE_URL", format!("http://{}", service.addr))
        .env("VEDETTE_ANALYST_TOKEN", &fed.analyst)
        .env("VEDETTE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("VEDETTE_SCREENSHOTS", &screenshots)
        .env("VEDETTE_HUNT_RULE", HUNT_RULE)
        .env("VEDETTE_E2E_DISPOSABLE", "1")
        .env("CHROMIUM", &browser)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!("{stdout}");
    assert!(
        run.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}\nservice log:\n{}",
        service.log_tail()
    );
    println!("screenshots: {}", screenshots.display());

    // The false positive marked in the browser suppresses the next alert of its rule and
    // entity.
    let (_, marked) = get(
        service,
        &fed.analyst,
        "/v1/alerts?from=0&status=false_positive&limit=1000",
    );
    let marked = marked["alerts"]
        .as_array()
        .and_then(|a| a.first().cloned())
        .unwrap_or_else(|| panic!("no alert was marked a false positive: {marked}"));
    let rule = marked["rule.id"].as_str().unwrap_or_default().to_string();
    let (path, _) = common::true_positives()
        .into_iter()
        .find(|(_, id)| *id == rule)
        .unwrap_or_else(|| panic!("no true positive of rule {rule}"));
    let before = metric_in(
        &get_metrics(service.addr)
            .unwrap_or_else(|e| panic!("{e}"))
            .1,
        "vedette_alerts_suppressed_total",
    );
    common::ingest_bytes(
        service,
        &fed.agent,
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")),
    );
    wait_for("the marked alert's repeat suppressed", WAIT, || {
        let text = get_metrics(service.addr).ok()?.1;
        (metric_in(&text, "vedette_alerts_suppressed_total") > before).then_some(())
    });
}
