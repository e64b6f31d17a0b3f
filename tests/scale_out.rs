//! Scale-out: two `vedette run` nodes with one cluster config (Kafka: the tansu broker,
//! ClickHouse: the test server, both started by `deploy/local/up.sh`) share the work as
//! consumer groups. One node is killed (SIGKILL) while agents send; agents fail over to
//! the other, which takes over the dead node's partitions (the test broker drops a dead
//! member without rebalancing the group: the survivor sees the partitions stall and
//! rejoins); every event ends up stored once (after ClickHouse's dedup) and every
//! expected alert exists once. Correlation windows and baselines follow the partitions:
//! the node that takes a dead node's partitions over rebuilds them from what the dead
//! node had processed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{free_addr, get_metrics, http_post, metric_in, Service, ADMIN_TOKEN};
use serde_json::Value;

/// Events per agent request.
const PER_REQUEST: usize = 50;
/// Agent requests in all.
const REQUESTS: usize = 40;
/// How long the cluster may take (the dead node's partitions move after the session
/// timeout and the stall watch; correlation windows close a lateness after the last
/// event).
const WAIT: Duration = Duration::from_secs(180);

/// The config both nodes share, but for the data folder and listener ports: the
/// `[alerts]` tables `alert_state`, and `extra` tables at the end.
fn node_config(brokers: &str, prefix: &str, store: &str, alert_state: &str, extra: &str) -> String {
    format!(
        "data_dir = \"data\"\n\
         [bus]\nkind = \"kafka\"\n\
         [bus.kafka]\nbrokers = [\"{brokers}\"]\ntopic_prefix = \"{prefix}\"\ngroup = \"{prefix}\"\n\
         partitions = 4\nreplication_factor = 1\nstall_rejoin_seconds = 8\n\
         [bus.kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\
         {store}\
         {}\
         [ingest]\nbatch_age_ms = 50\n\
         [ingest.syslog]\nudp_addr = \"{}\"\ntcp_addr = \"{}\"\n{extra}",
        alert_state,
        free_addr(),
        free_addr()
    )
}

fn start_node(dir: &Path, config: &str) -> Service {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("v.toml"), config).unwrap_or_else(|e| panic!("{e}"));
    let mut s = Service::start(dir, &["--config", "v.toml"]);
    s.wait_healthy(Duration::from_secs(60));
    s
}

/// One agent request of marker events; true if acknowledged.
fn send(node: &Service, request: usize) -> bool {
    let body: String = (0..PER_REQUEST)
        .map(|i| {
            format!(
                "{{\"message\":\"scale-{request}-{i}\",\"host\":\"host-{}\"}}\n",
                (request * PER_REQUEST + i) % 16
            )
        })
        .collect();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    matches!(
        http_post(
            node.addr,
            "/v1/ingest?format=json",
            &[("Authorization", &auth)],
            body.as_bytes(),
        ),
        Ok((200, _))
    )
}

/// The partition assignments in the logs of the nodes under `dir` (for failure
/// messages: what the broker gave each node).
fn assignments(dir: &Path) -> String {
    let mut out = String::new();
    for node in ["a", "b"] {
        let Ok(entries) = std::fs::read_dir(dir.join(node)) else {
            continue;
        };
        for log in entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        {
            let text = std::fs::read_to_string(log.path()).unwrap_or_default();
            for line in text
                .lines()
                .filter(|l| l.contains("partitions") || l.contains("WARN") || l.contains("ERROR"))
            {
                out.push_str(&format!("{node}: {line}\n"));
            }
        }
    }
    out
}

/// Polls `probe` like `common::wait_for`, and on timeout panics with the nodes' partition
/// assignments.
fn wait_in<T>(dir: &Path, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        if let Some(v) = probe() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}\n{}", assignments(dir))
}

/// The first row of `sql` on `node`.
fn row(node: &Service, sql: &str) -> Vec<Value> {
    common::query(node, ADMIN_TOKEN, sql)
}

#[test]
fn two_nodes_share_the_work_and_lose_nothing_when_one_is_killed() {
    let brokers = common::kafka_brokers();
    let prefix = format!("scale{}", common::unique_suffix());
    let store = common::clickhouse_store("scale_out_");
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let a = start_node(
        &tmp.path().join("a"),
        &node_config(&brokers, &prefix, &store, common::ALERT_STATE_OFF, ""),
    );
    let b = start_node(
        &tmp.path().join("b"),
        &node_config(&brokers, &prefix, &store, common::ALERT_STATE_OFF, ""),
    );

    // The bundled rules' true positives, through node a.
    let positives = common::true_positives();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let mut expected_alerts = 0;
    for (path, _) in &positives {
        let body = std::fs::read(path).unwrap_or_else(|e| panic!("{e}"));
        let (code, answer) = http_post(a.addr, "/v1/ingest", &[("Authorization", &auth)], &body)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(code, 200, "{answer}");
        expected_alerts += common::lines_of_file(path).len() as u64;
    }

    // Agents send to both nodes; from halfway on, b is killed once it has stored some of
    // the work; what b did not acknowledge is sent again to a. The agents go on sending while
    // b has stored nothing yet: its partitions may reach it only after the first half
    // was stored by a (a rebalance of the test broker can take seconds), and b can only
    // store what arrives after.
    let mut b = Some(b);
    let mut request = 0;
    let deadline = std::time::Instant::now() + WAIT;
    while request < REQUESTS || b.is_some() {
        if let Some(mut node) = b.take_if(|node| {
            request >= REQUESTS / 2
                && get_metrics(node.addr).is_ok_and(|(_, text)| {
                    metric_in(&text, "vedette_ledger_stored_total{table=\"events\"}") > 0
                })
        }) {
            // SIGKILL: the node leaves nothing in order; what it read and did not
            // commit is read again by a.
            node.child.kill().unwrap_or_else(|e| panic!("SIGKILL: {e}"));
            let _ = node.child.wait();
        }
        if b.is_some() && std::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for node b storing its share\n{}",
                assignments(tmp.path())
            );
        }
        let sent_to_b = request % 2 == 1 && b.as_ref().is_some_and(|b| send(b, request));
        if !sent_to_b {
            assert!(send(&a, request), "node a refused request {request}");
        }
        request += 1;
        if b.is_some() && request >= REQUESTS / 2 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // Every marker stored, once per event id; every alert once.
    let markers = (request * PER_REQUEST) as u64;
    wait_in(tmp.path(), "every marker event stored", || {
        let r = row(
            &a,
            "SELECT count(DISTINCT message) AS m FROM events WHERE message LIKE 'scale-%'",
        );
        (common::number(&r, "m") == markers).then_some(())
    });
    let r = row(
        &a,
        "SELECT count() AS n, count(DISTINCT \"event.id\") AS d FROM events FINAL \
         WHERE message LIKE 'scale-%'",
    );
    assert_eq!(
        common::number(&r, "n"),
        common::number(&r, "d"),
        "no event stored twice: {r:?}"
    );
    wait_in(tmp.path(), "every alert stored", || {
        let r = row(&a, "SELECT count(DISTINCT \"alert.id\") AS d FROM alerts");
        (common::number(&r, "d") == expected_alerts).then_some(())
    });
    let r = row(&a, "SELECT count() AS n FROM alerts FINAL");
    assert_eq!(
        common::number(&r, "n"),
        expected_alerts,
        "each alert once: {r:?}"
    );

    let (code, log) = a.terminate();
    assert_eq!(code, Some(0), "{log}");
}

/// The burst correlation of the benchmark scenario's rules.
const BURST: &str = "5f0d8a3e-2c71-4b8e-9f64-0b1e7d2a9c53";
/// Dedup, risk and silent sources off; baselines on.
const ALERT_STATE: &str = "[alerts.dedup]\nwindow_seconds = 0\n[alerts.risk]\nenabled = false\n\
     [alerts.silence]\nenabled = false\n[alerts.correlation]\nlateness_seconds = 60\n";
/// The address every failed logon comes from but the last.
const KNOWN: &str = "198.51.100.7";
/// A new-terms baseline of the test: failed logons on a host from a source address it
/// never saw, after an hour of learning.
const NEW_SOURCE: &str = "id: test-new-failed-logon-source\n\
     title: Failed logon from a source address never seen on this host\n\
     events:\n  dataset: windows.security\n  where:\n    EventID: \"4625\"\n\
     entity: host.name\nnew_terms:\n  field: IpAddress\n  learning_hours: 1\n";
/// The id of [`NEW_SOURCE`].
const NEW_SOURCE_ID: &str = "test-new-failed-logon-source";

/// Accounts of the burst test, each failing on a host of its own (so its events meet
/// on one partition).
const ACCOUNTS: usize = 16;

/// `n` failed network logons of `account` on its host from `source`, one a second, the
/// last `ago_s` seconds before now.
fn failed_logons(account: usize, n: usize, source: &str, ago_s: i64) -> String {
    let now = chrono::Utc::now().timestamp_millis() - ago_s * 1000;
    (0..n)
        .map(|s| {
            let at = chrono::DateTime::from_timestamp_millis(now - (n - s) as i64 * 1000)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            format!(
                "{}\n",
                serde_json::json!({
                    "EventID": 4625, "Channel": "Security",
                    "Provider_Name": "Microsoft-Windows-Security-Auditing",
                    "Computer": format!("ws-{account}"), "EventRecordID": now + s as i64,
                    "TimeCreated_SystemTime": at,
                    "TargetUserName": format!("user-{account}"), "TargetDomainName": "CORP",
                    "LogonType": 3, "IpAddress": source, "Status": "0xc000006d",
                })
            )
        })
        .collect()
}

/// Whether the log of the node in `dir` says it reads partitions of the events topic.
fn detects(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .any(|e| {
                std::fs::read_to_string(e.path())
                    .is_ok_and(|t| t.contains("detect: partitions assigned"))
            })
    })
}

/// Waits until `node` stores an alert of `rule` for each account, then checks that each
/// exists once (after ClickHouse's dedup) and that they are on as many `entity` values.
fn one_alert_per(node: &Service, dir: &Path, rule: &str, entity: &str) {
    wait_in(dir, &format!("one alert of {rule} per account"), || {
        let r = row(
            node,
            &format!(
                "SELECT count(DISTINCT \"alert.id\") AS d FROM alerts WHERE \"rule.id\" = '{rule}'"
            ),
        );
        (common::number(&r, "d") >= ACCOUNTS as u64).then_some(())
    });
    let r = row(
        node,
        &format!(
            "SELECT count() AS n, count(DISTINCT \"{entity}\") AS e FROM alerts FINAL \
             WHERE \"rule.id\" = '{rule}'"
        ),
    );
    assert_eq!(
        common::number(&r, "n"),
        ACCOUNTS as u64,
        "one alert of {rule} per account: {r:?}"
    );
    assert_eq!(common::number(&r, "e"), ACCOUNTS as u64, "{r:?}");
}

#[test]
fn correlation_windows_and_baselines_follow_partitions_to_the_node_that_takes_them_over() {
    let brokers = common::kafka_brokers();
    let prefix = format!("burst{}", common::unique_suffix());
    let store = common::clickhouse_store("scale_burst_");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scenarios/rules");
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let baselines = tmp.path().join("baselines");
    std::fs::create_dir_all(&baselines).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(baselines.join("new_source.yml"), NEW_SOURCE).unwrap_or_else(|e| panic!("{e}"));
    let extra = format!(
        "[rules]\nsigma_dirs = [{:?}]\nbaseline_dirs = [{:?}]\n",
        rules.display().to_string(),
        baselines.display().to_string()
    );
    let a = start_node(
        &tmp.path().join("a"),
        &node_config(&brokers, &prefix, &store, ALERT_STATE, &extra),
    );
    let mut b = start_node(
        &tmp.path().join("b"),
        &node_config(&brokers, &prefix, &store, ALERT_STATE, &extra),
    );
    wait_in(tmp.path(), "node b reading events partitions", || {
        detects(&tmp.path().join("b")).then_some(())
    });
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let post = |node: &Service, body: &str| {
        let (code, answer) = http_post(
            node.addr,
            "/v1/ingest",
            &[("Authorization", &auth)],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(code, 200, "{answer}");
    };

    // Twelve failed logons per account (a burst takes twenty within five minutes),
    // detected and committed by whichever node reads the account's partition; and one
    // two hours ago from the same address, which the new-terms baseline learned.
    let first: String = (0..ACCOUNTS)
        .map(|u| failed_logons(u, 1, KNOWN, 7200) + &failed_logons(u, 12, KNOWN, 0))
        .collect();
    post(&a, &first);
    let detected = |node: &Service| {
        get_metrics(node.addr).map_or(0, |(_, t)| metric_in(&t, "vedette_detect_events_total"))
    };
    let on_b = wait_in(
        tmp.path(),
        "the first logons detected on both nodes",
        || {
            let (on_a, on_b) = (detected(&a), detected(&b));
            (on_a + on_b >= (ACCOUNTS * 13) as u64 && on_b > 0).then_some(on_b)
        },
    );
    // A commit follows each detection; give the last one time to land.
    std::thread::sleep(Duration::from_secs(2));
    b.child.kill().unwrap_or_else(|e| panic!("SIGKILL: {e}"));
    let _ = b.child.wait();

    // The other eight of each burst, through a, and one from a new address. The
    // accounts b read reach twenty only if a rebuilt their windows from what b had
    // processed (their partitions move after the session timeout and the stall watch,
    // well within the lateness: their hits are not late when a reads them); their hosts
    // are past learning, and the new address new, only if a rebuilt their baselines.
    let second: String = (0..ACCOUNTS)
        .map(|u| failed_logons(u, 8, KNOWN, 0) + &failed_logons(u, 1, "203.0.113.50", 0))
        .collect();
    post(&a, &second);
    one_alert_per(&a, tmp.path(), BURST, "user.name");
    one_alert_per(&a, tmp.path(), NEW_SOURCE_ID, "host.name");
    let rebuilt = get_metrics(a.addr).map_or(0, |(_, t)| {
        metric_in(&t, "vedette_detect_rebuilt_events_total")
    });
    assert!(
        rebuilt > 0 && on_b > 0,
        "node a rebuilt {rebuilt} events of b's partitions (b detected {on_b})"
    );
    let (code, log) = a.terminate();
    assert_eq!(code, Some(0), "{log}");
}
