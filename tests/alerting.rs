//! The alert state of `vedette run` end to end: repeats of one rule on one host folded
//! into the first alert (and counted on it), a host whose alerts add up to the risk
//! threshold raised as a high-risk entity, and the same host's log source raised when
//! it goes silent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{wait_for, Service};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const CERTUTIL: &str = "rules/sigma/windows/proc_creation_certutil_download.tp.jsonl";
const LSASS: &str = "rules/sigma/windows/proc_creation_lsass_dump_comsvcs.tp.jsonl";

/// The true positive of `file` on host `risky-host` as user `user`, as process `pid`,
/// at one fixed time.
fn event(file: &str, user: &str, pid: u64) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let line = common::lines_of_file(&path).remove(0);
    let mut v: Value = serde_json::from_str(&line).unwrap();
    v["Computer"] = "risky-host".into();
    v["User"] = user.into();
    v["ProcessId"] = pid.into();
    // Risk adds up over a window of event time: the two files' events are a day apart.
    v["TimeCreated_SystemTime"] = "2026-11-23T22:10:00.000Z".into();
    v.to_string()
}

/// The alerts listed, by rule id.
fn alerts(service: &Service, token: &str) -> Vec<Value> {
    let (code, body) = common::get_with(service.addr, "/v1/alerts?from=0&limit=1000", token);
    assert_eq!(code, 200, "{body}");
    let listing: Value = serde_json::from_str(&body).unwrap();
    listing["alerts"].as_array().cloned().unwrap_or_default()
}

fn of_rule<'a>(alerts: &'a [Value], rule: &str) -> Vec<&'a Value> {
    alerts.iter().filter(|a| a["rule.id"] == rule).collect()
}

#[test]
fn repeats_fold_risk_adds_up_and_a_silent_source_is_raised() {
    let tmp = tempfile::tempdir().unwrap();
    let config = common::test_config(
        "[alerts.dedup]\nwindow_seconds = 8\n\
         [alerts.risk]\nthreshold = 100\n\
         [alerts.silence]\nafter_seconds = 4\nmin_events = 5\n",
    );
    std::fs::write(tmp.path().join("v.toml"), config).unwrap();
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    let agent = service.token("agent", None);
    let analyst = service.token("analyst", None);
    let send = |body: String| common::ingest(&service, &agent, &format!("{body}\n"));

    // Six certutil downloads on one host, a second apart: one alert, five folded.
    for pid in 0..6 {
        send(event(CERTUTIL, "CORP\\u1", 100 + pid));
        std::thread::sleep(Duration::from_secs(1));
    }
    // A credential dump on the same host: high (52.5) + critical (90) ≥ 100.
    send(event(LSASS, "CORP\\u2", 900));

    let listed = wait_for(
        "the folded count, the risk and the silence alerts",
        WAIT,
        || {
            let listed = alerts(&service, &analyst);
            let certutil = of_rule(&listed, "d2644136-7400-49e4-8b45-45b687d7b72a");
            let done = certutil.first().is_some_and(|a| a["suppressed"] == 5)
                && !of_rule(&listed, "vedette-silent-source").is_empty();
            done.then_some(listed)
        },
    );
    let certutil = of_rule(&listed, "d2644136-7400-49e4-8b45-45b687d7b72a");
    assert_eq!(certutil.len(), 1, "one alert for six events: {certutil:?}");
    let risk = of_rule(&listed, "vedette-entity-risk");
    assert_eq!(risk.len(), 1, "{listed:#?}");
    assert_eq!(risk[0]["host.name"], "risky-host");
    assert_eq!(risk[0]["detection.kind"], "risk");
    assert_eq!(risk[0]["rule.level"], "high");
    let silent = of_rule(&listed, "vedette-silent-source");
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert_eq!(silent[0]["host.name"], "risky-host");
    assert_eq!(silent[0]["detection.kind"], "silence");

    // What the risk alert says is queryable.
    let rows = common::query(
        &service,
        &analyst,
        "SELECT matched['risk.rules'] AS rules FROM alerts WHERE \"rule.id\" = 'vedette-entity-risk'",
    );
    let rules = rows[0]["rules"].as_str().unwrap_or_default();
    assert_eq!(rules.split(',').count(), 2, "{rows:?}");

    let (_, text) = common::get_metrics(service.addr).unwrap();
    assert_eq!(
        common::metric_in(&text, "vedette_alerts_folded_total"),
        5,
        "{text}"
    );
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

/// A folder `bl` in `tmp` with the new-parent baseline, and a config (`v.toml`) that
/// loads it (with `extra` in `[rules]`), the other alert state off.
fn baseline_setup(tmp: &Path, extra: &str) -> std::path::PathBuf {
    let dir = tmp.join("bl");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("parents.yml"),
        "id: test-new-parent\ntitle: New parent on a host\nlevel: high\n\
         events:\n  dataset: windows.sysmon\nentity: host.name\n\
         new_terms:\n  field: ParentImage\n  learning_hours: 1\n",
    )
    .unwrap();
    let config = common::test_config(&format!(
        "[rules]\nbundled = false\nbaseline_dirs = [\"bl\"]\n{extra}\
         [alerts.dedup]\nwindow_seconds = 0\n[alerts.risk]\nenabled = false\n\
         [alerts.silence]\nenabled = false\n"
    ));
    std::fs::write(tmp.join("v.toml"), config).unwrap();
    dir
}

/// The certutil true positive on `host` with this parent, user, process and time.
fn process_event(host: &str, parent: &str, user: &str, time: &str, pid: u64) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CERTUTIL);
    let mut v: Value = serde_json::from_str(&common::lines_of_file(&path).remove(0)).unwrap();
    v["Computer"] = host.into();
    v["ParentImage"] = parent.into();
    v["User"] = user.into();
    v["ProcessId"] = pid.into();
    v["TimeCreated_SystemTime"] = time.into();
    format!("{v}\n")
}

/// A baseline from `[rules] baseline_dirs` learns a host's parent processes; what it
/// learned survives a restart (the checkpoint), and a new parent afterwards is raised.
#[test]
fn a_baseline_learns_keeps_its_state_over_a_restart_and_raises_a_new_term() {
    let tmp = tempfile::tempdir().unwrap();
    baseline_setup(tmp.path(), "");
    let parent = |parent: &str, time: &str, pid: u64| {
        process_event("ws-1", parent, "CORP\\asmith", time, pid)
    };

    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    let agent = service.token("agent", None);
    let analyst = service.token("analyst", None);
    common::ingest(
        &service,
        &agent,
        &parent("C:\\Windows\\explorer.exe", "2026-11-23T08:00:00.000Z", 1),
    );
    wait_for("the learning event stored", WAIT, || {
        let rows = common::query(&service, &analyst, "SELECT count(*) AS n FROM events");
        (common::number(&rows, "n") == 1).then_some(())
    });
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        tmp.path().join("data/baselines/state.json").is_file(),
        "saved at shutdown"
    );

    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    let agent = service.token("agent", None);
    let analyst = service.token("analyst", None);
    // Two hours later: the known parent is not new, the other one is.
    common::ingest(
        &service,
        &agent,
        &parent("C:\\Windows\\explorer.exe", "2026-11-23T10:00:00.000Z", 2),
    );
    common::ingest(
        &service,
        &agent,
        &parent(
            "C:\\Users\\Public\\dropper.exe",
            "2026-11-23T10:00:01.000Z",
            3,
        ),
    );
    let raised = wait_for("the new parent raised", WAIT, || {
        let listed = alerts(&service, &analyst);
        let found: Vec<Value> = of_rule(&listed, "test-new-parent")
            .into_iter()
            .cloned()
            .collect();
        (!found.is_empty()).then_some(found)
    });
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["detection.kind"], "baseline");
    assert_eq!(raised[0]["host.name"], "ws-1");
    let rows = common::query(
        &service,
        &analyst,
        "SELECT matched['baseline.term'] AS term FROM alerts WHERE \"rule.id\" = 'test-new-parent'",
    );
    assert_eq!(rows[0]["term"], "C:\\Users\\Public\\dropper.exe");
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn baselines_written_while_the_service_runs_are_swapped_in_and_keep_what_they_learned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = baseline_setup(tmp.path(), "reload_poll_ms = 200\n");
    let event = |parent: &str, user: &str, time: &str, pid: u64| {
        process_event("ws-2", parent, user, time, pid)
    };
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    let agent = service.token("agent", None);
    let analyst = service.token("analyst", None);
    let stored = |n: u64| {
        wait_for("the events stored", WAIT, || {
            let rows = common::query(&service, &analyst, "SELECT count(*) AS n FROM events");
            (common::number(&rows, "n") == n).then_some(())
        });
    };
    let explorer = "C:\\Windows\\explorer.exe";
    common::ingest(
        &service,
        &agent,
        &event(explorer, "CORP\\ann", "2026-11-23T08:00:00.000Z", 1),
    );
    stored(1);

    // A second baseline arrives while the service runs; the first keeps what it learned.
    std::fs::write(
        dir.join("users.yml"),
        "id: test-new-user\ntitle: New user on a host\nlevel: medium\n\
         events:\n  dataset: windows.sysmon\nentity: host.name\n\
         new_terms:\n  field: User\n  learning_hours: 1\n",
    )
    .unwrap();
    let mut pid = 10;
    wait_for("the reload swapped in", WAIT, || {
        pid += 1;
        common::ingest(
            &service,
            &agent,
            &event(explorer, "CORP\\ann", "2026-11-23T10:00:00.000Z", pid),
        );
        std::thread::sleep(Duration::from_millis(300));
        service
            .log_tail()
            .contains("baselines reloaded")
            .then_some(())
    });
    // The log colours its fields: read it without the escape sequences.
    let plain: String = {
        let log = service.log_tail();
        let mut out = String::with_capacity(log.len());
        let mut chars = log.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|c| *c == 'm');
            } else {
                out.push(c);
            }
        }
        out
    };
    assert!(
        plain.contains("running=2 carried=1"),
        "the unchanged baseline kept its state: {plain}"
    );
    // Learned before the swap: a new parent two hours after the first event is new.
    common::ingest(
        &service,
        &agent,
        &event(
            "C:\\Users\\Public\\dropper.exe",
            "CORP\\ann",
            "2026-11-23T10:00:01.000Z",
            2,
        ),
    );
    // The new baseline learns from the swap on: a new user after its hour is new.
    common::ingest(
        &service,
        &agent,
        &event(explorer, "CORP\\mallory", "2026-11-23T12:30:00.000Z", 3),
    );
    let raised = wait_for("both baselines' alerts", WAIT, || {
        let all = alerts(&service, &analyst);
        let parents = of_rule(&all, "test-new-parent").len();
        let users = of_rule(&all, "test-new-user").len();
        (parents >= 1 && users >= 1).then_some((parents, users))
    });
    assert_eq!(raised, (1, 1), "one alert each");
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}
