//! Responders end to end: `vedette run` delivers the alerts of the bundled rules'
//! true positives to a real HTTP receiver on loopback. Every delivery is signed (the
//! receiver verifies it), 500s are retried, filters hold, a refusing receiver's
//! deliveries go to the dead letters, and alerts raised while the receiver is down
//! survive a SIGKILL of `vedette` and arrive once it is back, each idempotency key
//! delivered once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{get_metrics, metric_in, wait_for, Service};
use serde_json::Value;
use vedette_connectors::webhook::sign::verify;

const SECRET: &str = "responder-test-secret-0123456789";
const WAIT: Duration = Duration::from_secs(30);

/// How the receiver answers `/hook`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// 500 to the first attempt of each key, 200 after.
    FlakyFirst,
    /// 503 to everything.
    Down,
    /// 200 to everything.
    Up,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    key: String,
    attempt: u32,
    verified: bool,
    status: u16,
    body: Value,
}

/// A webhook receiver on loopback: `/hook` answers by its mode, `/critical` always
/// 200, `/refuse` always 400.
struct Receiver {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (m, g) = (mode.clone(), got.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (m, g) = (m.clone(), g.clone());
                std::thread::spawn(move || serve(stream, &m, &g));
            }
        });
        Self { addr, mode, got }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Keys answered 200 on `path`, with how many times each was.
    fn delivered(&self, path: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.got() {
            if r.path == path && r.status == 200 {
                *out.entry(r.key).or_insert(0) += 1;
            }
        }
        out
    }
}

/// Reads requests from one connection and answers each.
fn serve(mut stream: TcpStream, mode: &Mutex<Mode>, got: &Mutex<Vec<Received>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let len: usize = header("content-length").parse().unwrap_or(0);
        while buf.len() < end + 4 + len {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[end + 4..end + 4 + len].to_vec();
        buf.drain(..end + 4 + len);
        let path = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let key = header("idempotency-key");
        let attempt: u32 = header("x-vedette-attempt").parse().unwrap_or(0);
        let now = chrono::Utc::now().timestamp();
        let verified = verify(
            SECRET.as_bytes(),
            &header("x-vedette-timestamp"),
            &header("x-vedette-signature"),
            &body,
            now,
            300,
        )
        .is_ok();
        let status = match path.as_str() {
            _ if !verified => 401,
            "/refuse" => 400,
            "/critical" => 200,
            _ => match *mode.lock().unwrap() {
                Mode::Up => 200,
                Mode::Down => 503,
                Mode::FlakyFirst if attempt == 1 => 500,
                Mode::FlakyFirst => 200,
            },
        };
        got.lock().unwrap().push(Received {
            path,
            key,
            attempt,
            verified,
            status,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn config(receiver: SocketAddr, refused_rule: &str) -> String {
    let common = "secret_env = \"VEDETTE_TEST_WEBHOOK_SECRET\"\ninsecure_http = true\n\
                  backoff_ms = 20\nmax_backoff_ms = 100\ntimeout_ms = 2000\n";
    common::test_config(&format!(
        "[[responders]]\nname = \"soar\"\nurl = \"http://{receiver}/hook\"\n{common}max_attempts = 1000\n\n\
         [[responders]]\nname = \"pager\"\nurl = \"http://{receiver}/critical\"\n{common}min_level = \"critical\"\ntemplate = \"slack\"\n\n\
         [[responders]]\nname = \"ticketing\"\nurl = \"http://{receiver}/refuse\"\n{common}rule_ids = [\"{refused_rule}\"]\nmax_attempts = 3\n\n"
    ))
}

fn start(dir: &std::path::Path) -> Service {
    let mut s = Service::start_with_env(
        dir,
        &["--config", "v.toml"],
        &[("VEDETTE_TEST_WEBHOOK_SECRET", SECRET)],
    );
    s.wait_healthy(Duration::from_secs(10));
    s
}

fn ingest(service: &Service, token: &str, body: &[u8]) {
    common::ingest_bytes(service, token, body);
}

fn count(service: &Service, token: &str, sql: &str) -> u64 {
    common::number(&common::query(service, token, sql), "n")
}

/// Alert ids by level, from `GET /v1/alerts`.
fn alerts(service: &Service, token: &str) -> Vec<(String, String, String)> {
    let (code, body) = common::get_with(service.addr, "/v1/alerts?from=0&limit=1000", token);
    assert_eq!(code, 200, "{body}");
    let listing: Value = serde_json::from_str(&body).unwrap();
    listing["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("alert.id"), s("rule.level"), s("rule.id"))
        })
        .collect()
}

/// Each JSON line of `path` with a field that makes it a new event.
fn renewed(path: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for line in common::lines_of_file(path) {
        let mut v: Value = serde_json::from_str(&line).unwrap();
        v["vedette_test_round"] = Value::from(2);
        out.extend_from_slice(v.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

#[test]
fn alerts_reach_responders_signed_retried_filtered_and_survive_a_kill() {
    let positives = common::true_positives();
    assert!(positives.len() >= 10, "{positives:?}");
    let refused_rule = positives[0].1.clone();
    let receiver = Receiver::start(Mode::FlakyFirst);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("v.toml"),
        config(receiver.addr, &refused_rule),
    )
    .unwrap();
    let service = start(tmp.path());
    let agent = service.token("agent", None);
    let analyst = service.token("analyst", None);
    for (path, _) in &positives {
        ingest(&service, &agent, &std::fs::read(path).unwrap());
    }
    let expected: usize = positives
        .iter()
        .map(|(p, _)| common::lines_of_file(p).len())
        .sum();

    // Every alert reaches /hook once, after a 500 to its first attempt.
    let hook = wait_for("every alert delivered to /hook", WAIT, || {
        let d = receiver.delivered("/hook");
        (d.len() >= expected).then_some(d)
    });
    let listed = alerts(&service, &analyst);
    assert_eq!(listed.len(), expected, "one alert per true positive");
    let ids: BTreeSet<String> = listed
        .iter()
        .map(|(id, _, _)| format!("{id}-soar"))
        .collect();
    assert_eq!(hook.keys().cloned().collect::<BTreeSet<_>>(), ids);
    assert!(
        hook.values().all(|n| *n == 1),
        "one delivery per key: {hook:?}"
    );
    let got = receiver.got();
    assert!(got.iter().all(|r| r.verified), "every signature verifies");
    for key in &ids {
        let attempts: Vec<(u32, u16)> = got
            .iter()
            .filter(|r| &r.key == key)
            .map(|r| (r.attempt, r.status))
            .collect();
        assert_eq!(attempts, [(1, 500), (2, 200)], "{key}");
    }
    let sample = got
        .iter()
        .find(|r| r.path == "/hook" && r.status == 200)
        .unwrap();
    assert_eq!(sample.body["version"], 1);
    assert_eq!(
        format!("{}-soar", sample.body["alert"]["id"].as_str().unwrap()),
        sample.key
    );

    // Filters: the pager gets the critical alerts only, in Slack form.
    let critical: BTreeSet<String> = listed
        .iter()
        .filter(|(_, level, _)| level == "critical")
        .map(|(id, _, _)| format!("{id}-pager"))
        .collect();
    let pager = wait_for("the critical alerts paged", WAIT, || {
        let d = receiver.delivered("/critical");
        (d.len() >= critical.len()).then_some(d)
    });
    assert_eq!(pager.keys().cloned().collect::<BTreeSet<_>>(), critical);
    assert!(got
        .iter()
        .filter(|r| r.path == "/critical")
        .all(|r| r.body["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("[CRITICAL]"))));

    // A refusing receiver: one attempt each (400 is not retried), then dead letters.
    let refused = listed
        .iter()
        .filter(|(_, _, rule)| *rule == refused_rule)
        .count() as u64;
    assert!(refused > 0);
    let dead = wait_for("the refused deliveries dead-lettered", WAIT, || {
        let n = count(
            &service,
            &analyst,
            "SELECT count(*) AS n FROM dead_letters WHERE stage = 'respond' AND source = 'responder:ticketing'",
        );
        (n >= refused).then_some(n)
    });
    assert_eq!(dead, refused);
    let tickets: Vec<&Received> = got.iter().filter(|r| r.path == "/refuse").collect();
    assert_eq!(tickets.len() as u64, refused, "400 is not retried");

    // The receiver's answers are counted and audited.
    let (_, text) = get_metrics(service.addr).unwrap();
    let metric = |responder: &str, outcome: &str| {
        metric_in(
            &text,
            &format!(
                "vedette_responder_deliveries_total{{responder=\"{responder}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(metric("soar", "delivered"), expected as u64, "{text}");
    assert_eq!(metric("pager", "delivered"), critical.len() as u64);
    assert_eq!(metric("ticketing", "dead_lettered"), refused);
    let audited = (expected + critical.len()) as u64 + refused;
    wait_for("every finished delivery audited", WAIT, || {
        let n = count(
            &service,
            &analyst,
            "SELECT count(*) AS n FROM audit WHERE action = 'alert.deliver'",
        );
        (n == audited).then_some(())
    });
    let (code, body) = common::get_with(service.addr, "/v1/alerts?from=0&limit=1000", &analyst);
    assert_eq!(code, 200, "{body}");
    let listing: Value = serde_json::from_str(&body).unwrap();
    for a in listing["alerts"].as_array().unwrap() {
        let soar: Vec<&Value> = a["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["responder"] == "soar")
            .collect();
        assert_eq!(soar.len(), 1, "{a}");
        assert_eq!(soar[0]["outcome"], "delivered", "{a}");
        assert_eq!(soar[0]["status"], 200, "{a}");
        assert_eq!(soar[0]["attempts"], 2, "{a}");
    }

    // The receiver goes down; new alerts are retried; vedette is killed mid-retry.
    receiver.set(Mode::Down);
    let second = renewed(&positives[1].0);
    let new_alerts = common::lines_of_file(&positives[1].0).len();
    ingest(&service, &agent, &second);
    wait_for(
        "the new alerts tried while the receiver is down",
        WAIT,
        || {
            let tried: BTreeSet<String> = receiver
                .got()
                .iter()
                .filter(|r| r.status == 503)
                .map(|r| r.key.clone())
                .collect();
            (tried.len() >= new_alerts).then_some(())
        },
    );
    let mut service = service;
    service.child.kill().unwrap();
    let _ = service.child.wait();
    drop(service);

    // Back up: the alerts read again are delivered; nothing delivered twice.
    receiver.set(Mode::Up);
    let service = start(tmp.path());
    let all = wait_for(
        "the alerts raised during the outage delivered",
        WAIT,
        || {
            let d = receiver.delivered("/hook");
            (d.len() >= expected + new_alerts).then_some(d)
        },
    );
    assert_eq!(all.len(), expected + new_alerts);
    assert!(
        all.values().all(|n| *n == 1),
        "no key delivered twice across the restart: {all:?}"
    );
    // Give the restarted service time to (wrongly) send again what it had finished.
    std::thread::sleep(Duration::from_millis(500));
    assert!(receiver.delivered("/hook").values().all(|n| *n == 1));
    let paged = receiver.delivered("/critical");
    assert!(pager.keys().all(|k| paged.get(k) == Some(&1)), "{paged:?}");
    let (code, log) = service.terminate();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_missing_secret_or_plain_http_fails_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = "[[responders]]\nname = \"soar\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret_env = \"VEDETTE_TEST_UNSET_SECRET\"\n";
    let err = common::start_fails(tmp.path(), &common::test_config(hook));
    assert!(err.contains("insecure_http"), "{err}");
    let hook = format!("{hook}insecure_http = true\n");
    let err = common::start_fails(tmp.path(), &common::test_config(&hook));
    assert!(
        err.contains("VEDETTE_TEST_UNSET_SECRET") && err.contains("not set"),
        "{err}"
    );
}
