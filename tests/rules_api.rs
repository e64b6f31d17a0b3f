//! Hot reload on a running service: rules change through the API and on disk while
//! events flow; broken rules are refused with their reason and the running rules stay;
//! every event is matched exactly once, by one rule set.

mod common;

use std::time::Duration;

use common::{get_metrics, http_post, http_request, metric_in, wait_for, Service};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// How long a reload by the file watcher may take to show.
const RELOAD_WAIT: Duration = Duration::from_secs(90);
const RULE_A: &str = "5a0e7b8e-0000-4000-8000-00000000000a";
const RULE_B: &str = "5a0e7b8e-0000-4000-8000-00000000000b";
const RULE_C: &str = "5a0e7b8e-0000-4000-8000-00000000000c";
const EVENTS: usize = 300;

/// A process-creation rule firing on `needle` in the command line.
fn rule(id: &str, needle: &str) -> String {
    format!(
        "title: Test rule {needle}\nid: {id}\nstatus: test\nlevel: high\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n  selection:\n    CommandLine|contains: '{needle}'\n  condition: selection\n"
    )
}

/// A file that does not parse as a Sigma rule.
const BROKEN: &str = "title: broken\ndetection:\n  selection: [unclosed\n  condition: selection\n";

/// A Sysmon process creation on host `h<n>` running `needle`.
fn event(n: usize, needle: &str) -> String {
    serde_json::json!({
        "EventID": 1,
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Computer": format!("h{n}"),
        "Image": "C:\\tools\\t.exe",
        "CommandLine": format!("t.exe {needle} {n}"),
    })
    .to_string()
}

fn call(service: &Service, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let (code, text) = http_request(
        service.addr,
        method,
        path,
        &[("Authorization", &auth)],
        body,
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn generation(service: &Service, token: &str) -> u64 {
    let (code, rules) = call(service, "GET", "/v1/rules", token, b"");
    assert_eq!(code, 200, "{rules}");
    rules["generation"].as_u64().unwrap_or_default()
}

fn alerts_of(service: &Service, token: &str, rule: &str) -> Vec<String> {
    let (code, listing) = call(
        service,
        "GET",
        &format!("/v1/alerts?from=0&limit=1000&rule={rule}"),
        token,
        b"",
    );
    assert_eq!(code, 200, "{listing}");
    listing["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["alert.id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn rules_change_while_events_flow_and_broken_rules_are_refused() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("sigma");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("a.yml"), rule(RULE_A, "evil-a")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        tmp.path().join("v.toml"),
        common::test_config(&format!(
            "[rules]\nsigma_dirs = [\"{}\"]\nreload_poll_ms = 200\n",
            dir.display()
        )),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    let admin = common::ADMIN_TOKEN;
    let agent = service.token("agent", None);
    let analyst = service.token("analyst", None);

    let (code, rules) = call(&service, "GET", "/v1/rules", &analyst, b"");
    assert_eq!(code, 200);
    assert_eq!(rules["generation"], 1);
    let listed = rules["rules"].as_array().cloned().unwrap_or_default();
    assert!(
        listed
            .iter()
            .any(|r| r["id"] == RULE_A && r["status"] == "loaded"),
        "{rules}"
    );
    // Roles: agents cannot read rules, analysts cannot change them.
    assert_eq!(call(&service, "GET", "/v1/rules", &agent, b"").0, 403);
    assert_eq!(
        call(&service, "POST", "/v1/rules/reload", &analyst, b"").0,
        403
    );
    let b_rule = rule(RULE_B, "evil-b");
    assert_eq!(
        call(
            &service,
            "PUT",
            "/v1/rules/custom/b.yml",
            &analyst,
            b_rule.as_bytes()
        )
        .0,
        403
    );

    // Events flow from another thread while the rules change.
    let addr = service.addr;
    let sender_token = agent.clone();
    let sender = std::thread::spawn(move || {
        let auth = format!("Bearer {sender_token}");
        for chunk in 0..EVENTS / 10 {
            let body: String = (chunk * 10..chunk * 10 + 10)
                .map(|n| event(n, if n % 2 == 0 { "evil-a" } else { "evil-b" }) + "\n")
                .collect();
            let (code, answer) = http_post(
                addr,
                "/v1/ingest?format=windows-json",
                &[("Authorization", &auth)],
                body.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(code, 200, "{answer}");
            std::thread::sleep(Duration::from_millis(100));
        }
    });

    std::thread::sleep(Duration::from_millis(300));
    // A broken rule through the API: refused with its reason, nothing changes.
    let (code, refusal) = call(
        &service,
        "PUT",
        "/v1/rules/custom/b.yml",
        admin,
        BROKEN.as_bytes(),
    );
    assert_eq!(code, 422, "{refusal}");
    assert!(refusal["problems"]["custom/b.yml"].is_array(), "{refusal}");
    assert_eq!(generation(&service, &analyst), 1);
    assert!(
        !tmp.path().join("data/rules/custom/b.yml").exists(),
        "a refused file is not kept"
    );
    let (code, _) = call(
        &service,
        "PUT",
        "/v1/rules/../../x.yml",
        admin,
        b_rule.as_bytes(),
    );
    assert!(code == 400 || code == 404, "{code}");

    // A good one: swapped in.
    let (code, report) = call(
        &service,
        "PUT",
        "/v1/rules/custom/b.yml",
        admin,
        b_rule.as_bytes(),
    );
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["generation"], 2);

    // A broken file on disk: the watcher's reload is refused, the running set stays.
    std::fs::write(dir.join("c.yml"), BROKEN).unwrap_or_else(|e| panic!("{e}"));
    // The watcher polls every 200 ms; a reload compiles the set, slow in a debug build on
    // a busy machine: the waits on it are long, and say what the service logged.
    let rejected = common::wait_logged(&service, "the refused reload", RELOAD_WAIT, || {
        let (_, rules) = call(&service, "GET", "/v1/rules", &analyst, b"");
        (!rules["last_rejection"].is_null()).then_some(rules)
    });
    assert_eq!(rejected["generation"], 2);
    let problems = rejected["last_rejection"]["problems"].to_string();
    assert!(problems.contains("c.yml"), "{problems}");
    // Fixed on disk: reloaded.
    std::fs::write(dir.join("c.yml"), rule(RULE_C, "evil-c")).unwrap_or_else(|e| panic!("{e}"));
    common::wait_logged(&service, "the fixed file reloaded", RELOAD_WAIT, || {
        (generation(&service, &analyst) == 3).then_some(())
    });
    // Nothing changed since: a reload keeps the running set.
    let (code, report) = call(&service, "POST", "/v1/rules/reload", admin, b"");
    assert_eq!(
        (code, report["generation"].clone()),
        (200, Value::from(3)),
        "{report}"
    );

    sender
        .join()
        .unwrap_or_else(|_| panic!("the sender failed"));

    // Every event matched exactly once.
    let text = wait_for("every event matched", WAIT, || {
        let (_, text) = get_metrics(service.addr).ok()?;
        (metric_in(&text, "vedette_detect_events_total") >= EVENTS as u64).then_some(text)
    });
    std::thread::sleep(Duration::from_millis(500));
    let (_, later) = get_metrics(service.addr).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        metric_in(&text, "vedette_detect_events_total"),
        EVENTS as u64
    );
    assert_eq!(
        metric_in(&later, "vedette_detect_events_total"),
        EVENTS as u64,
        "none twice"
    );
    // Rule A ran all along: one alert per matching event, none twice.
    let a = wait_for("rule A's alerts", WAIT, || {
        let ids = alerts_of(&service, &analyst, RULE_A);
        (ids.len() >= EVENTS / 2).then_some(ids)
    });
    let mut distinct = a.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!((a.len(), distinct.len()), (EVENTS / 2, EVENTS / 2));
    assert_eq!(
        metric_in(
            &later,
            &format!("vedette_alerts_by_rule_total{{rule=\"{RULE_A}\"}}")
        ),
        (EVENTS / 2) as u64
    );
    // Rule B fired on the events that came after it.
    let b = alerts_of(&service, &analyst, RULE_B);
    assert!(
        !b.is_empty() && b.len() < EVENTS / 2,
        "{} alerts of B",
        b.len()
    );

    // The changes are in the audit log.
    let (code, out) = common::http_post_bytes(
        service.addr,
        "/v1/query",
        &[("Authorization", &format!("Bearer {analyst}"))],
        br#"{"sql": "SELECT action, outcome FROM audit WHERE action LIKE 'rule%' ORDER BY \"@timestamp\""}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(code, 200, "{out}");
    assert!(
        out.contains(r#"{"action":"rule.update","outcome":"refused"}"#),
        "{out}"
    );
    assert!(
        out.contains(r#"{"action":"rule.update","outcome":"ok"}"#),
        "{out}"
    );
    assert!(
        out.contains(r#"{"action":"rules.reload","outcome":"ok"}"#),
        "{out}"
    );
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

/// A folder that cannot be read stops the start with a clear message.
#[test]
fn an_unreadable_rule_folder_fails_the_start() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = tmp.path().join("no-such-folder");
    let stderr = common::start_fails(
        tmp.path(),
        &format!("[rules]\nsigma_dirs = [\"{}\"]\n", missing.display()),
    );
    assert!(
        stderr.contains("cannot read") && stderr.contains("no-such-folder"),
        "{stderr}"
    );
}
