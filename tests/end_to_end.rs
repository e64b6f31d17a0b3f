//! `vedette run` end to end: corpus logs by syslog (UDP, TCP) and HTTP; the bundled
//! rules' alerts through `GET /v1/alerts` and the events through `POST /v1/query`;
//! then SIGKILL while an agent is sending, a restart, and nothing acknowledged lost or
//! stored twice, with the loss ledger balanced.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{free_addr, get_metrics, http_post, http_request, metric_in, wait_for, Service};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// Events per agent request in the flow that is killed.
const PER_REQUEST: usize = 50;

/// The corpora folder: `VEDETTE_CORPORA`, else `../shared/corpora`.
fn corpora() -> PathBuf {
    let root = std::env::var("VEDETTE_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora"));
    assert!(
        root.join("logs/syslog").is_dir(),
        "the test corpus is missing: {} has no logs/syslog. Set VEDETTE_CORPORA to the corpora \
         folder (see README, \"Test data\").",
        root.display()
    );
    root
}

/// Non-empty lines of every file in `dir`.
fn lines_of(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| common::lines_of_file(f))
        .collect()
}

fn write_config(dir: &Path) -> (SocketAddr, SocketAddr) {
    let (udp, tcp) = (free_addr(), free_addr());
    // Quiet folders merged after a second: the test watches a merge happen.
    let tables = "[store.parquet]\nmerge_quiet_seconds = 1\n";
    std::fs::write(dir.join("v.toml"), common::test_config_on(tables, udp, tcp))
        .unwrap_or_else(|e| panic!("{e}"));
    (udp, tcp)
}

/// Rule id → alerts listed.
fn alerts_by_rule(service: &Service, token: &str) -> std::collections::BTreeMap<String, usize> {
    let auth = format!("Bearer {token}");
    let (code, body) = http_request(
        service.addr,
        "GET",
        "/v1/alerts?from=0&limit=1000",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{body}");
    let listing: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}"));
    let mut out = std::collections::BTreeMap::new();
    for a in listing["alerts"].as_array().cloned().unwrap_or_default() {
        *out.entry(a["rule.id"].as_str().unwrap_or_default().to_string())
            .or_insert(0) += 1;
    }
    out
}

fn ledger_balances(text: &str, source: &str) {
    let get = |name: &str| {
        metric_in(
            text,
            &format!("vedette_ledger_{name}_total{{source=\"{source}\"}}"),
        )
    };
    assert_eq!(
        get("received"),
        get("appended") + get("dead_lettered") + get("rejected"),
        "{source}: the ledger balances\n{text}"
    );
}

#[test]
fn corpus_in_alerts_and_events_out_and_nothing_acknowledged_lost_after_sigkill() {
    let corpus = corpora();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (udp, tcp) = write_config(tmp.path());
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    let agent = service.token("agent", None);
    let analyst = service.token("analyst", None);
    let auth = format!("Bearer {agent}");

    // HTTP: every bundled rule's true positive.
    let positives = common::true_positives();
    assert!(positives.len() >= 10, "{positives:?}");
    let mut http_events = 0;
    for (path, _) in &positives {
        let body = std::fs::read(path).unwrap_or_else(|e| panic!("{e}"));
        let (code, answer) = http_post(
            service.addr,
            "/v1/ingest",
            &[("Authorization", &auth)],
            &body,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(code, 200, "{}: {answer}", path.display());
        let answer: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}"));
        http_events += answer["accepted"].as_u64().unwrap_or_default();
    }
    // Syslog: the corpus's RFC 3164 lines by TCP, its RFC 5424 lines by UDP.
    let tcp_lines = lines_of(&corpus.join("logs/syslog/rfc3164"));
    let mut stream = TcpStream::connect(tcp).unwrap_or_else(|e| panic!("{e}"));
    for line in &tcp_lines {
        stream
            .write_all(format!("{line}\n").as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    stream.flush().unwrap_or_else(|e| panic!("{e}"));
    drop(stream);
    let udp_lines = lines_of(&corpus.join("logs/syslog/rfc5424"));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    for line in &udp_lines {
        socket
            .send_to(line.as_bytes(), udp)
            .unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(Duration::from_millis(2));
    }

    // Every alert of the bundled rules, once; every appended event stored.
    // One alert per true-positive event.
    let mut expected = std::collections::BTreeMap::new();
    for (path, id) in &positives {
        let events = common::lines_of_file(path).len();
        *expected.entry(id.clone()).or_insert(0) += events;
    }
    wait_for("one alert per true positive", WAIT, || {
        let got = alerts_by_rule(&service, &analyst);
        expected
            .iter()
            .all(|(id, _)| got.contains_key(id))
            .then_some(())
    });
    assert_eq!(alerts_by_rule(&service, &analyst), expected);
    let text = wait_for("every record accounted for and stored", WAIT, || {
        let (_, text) = get_metrics(service.addr).ok()?;
        let tcp_done = metric_in(
            &text,
            "vedette_ledger_received_total{source=\"syslog-tcp\"}",
        ) == tcp_lines.len() as u64;
        let appended = common::ledger_sum(&text, "appended", &["http", "syslog-tcp", "syslog-udp"]);
        let stored = metric_in(&text, "vedette_ledger_stored_total{table=\"events\"}");
        (tcp_done && appended > 0 && stored == appended).then_some(text)
    });
    for source in ["http", "syslog-tcp", "syslog-udp"] {
        ledger_balances(&text, source);
    }
    assert_eq!(
        metric_in(&text, "vedette_ledger_appended_total{source=\"http\"}"),
        http_events
    );
    let udp_received = metric_in(
        &text,
        "vedette_ledger_received_total{source=\"syslog-udp\"}",
    );
    assert!(udp_received <= udp_lines.len() as u64);
    let stored = metric_in(&text, "vedette_ledger_stored_total{table=\"events\"}");
    let counted = common::query(&service, &analyst, "SELECT count(*) AS n FROM events");
    assert_eq!(
        common::number(&counted, "n"),
        stored,
        "the query sees every stored event"
    );

    // An agent sends while the process is killed: what was acknowledged survives.
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, flow_auth) = (service.addr, auth.clone());
    let (acked_in, stop_in) = (acked.clone(), stop.clone());
    let sender = std::thread::spawn(move || {
        for request in 0.. {
            if stop_in.load(Ordering::Relaxed) {
                return;
            }
            let body: String = (0..PER_REQUEST)
                .map(|i| format!("{{\"message\":\"marker-{request}-{i}\",\"host\":\"flow\"}}\n"))
                .collect();
            match http_post(
                addr,
                "/v1/ingest?format=json",
                &[("Authorization", &flow_auth)],
                body.as_bytes(),
            ) {
                Ok((200, _)) => {
                    acked_in.fetch_add(PER_REQUEST, Ordering::SeqCst);
                }
                _ => return,
            }
        }
    });
    wait_for("some acknowledged requests", WAIT, || {
        (acked.load(Ordering::SeqCst) >= 20 * PER_REQUEST).then_some(())
    });
    service
        .child
        .kill()
        .unwrap_or_else(|e| panic!("SIGKILL: {e}"));
    let _ = service.child.wait();
    stop.store(true, Ordering::Relaxed);
    sender
        .join()
        .unwrap_or_else(|_| panic!("the sender failed"));
    let acked = acked.load(Ordering::SeqCst) as u64;

    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    let markers = "SELECT count(*) AS n, count(DISTINCT \"event.id\") AS d FROM events WHERE message LIKE 'marker-%'";
    let rows = wait_for(
        "every acknowledged event stored after the restart",
        WAIT,
        || {
            let rows = common::query(&service, &analyst, markers);
            (common::number(&rows, "n") >= acked).then_some(rows)
        },
    );
    let (n, d) = (common::number(&rows, "n"), common::number(&rows, "d"));
    assert_eq!(n, d, "no event stored twice");
    assert!(
        n <= acked + PER_REQUEST as u64,
        "{n} stored, {acked} acknowledged: at most the request in flight more"
    );
    // The small files of the markers are merged in the background once their folder
    // is quiet, and the query's answer does not change.
    wait_for("a compaction pass merging small files", WAIT, || {
        let (_, text) = get_metrics(service.addr).ok()?;
        (common::metric_in(&text, "vedette_store_compaction_merges_total") >= 1).then_some(())
    });
    // The request in flight at the SIGKILL may be stored only now: the count may grow
    // by it, never lose a row or hold one twice.
    let after = common::query(&service, &analyst, markers);
    let (n_after, d_after) = (common::number(&after, "n"), common::number(&after, "d"));
    assert_eq!(n_after, d_after, "no event twice after compaction");
    assert!(
        n_after >= n && n_after <= acked + PER_REQUEST as u64,
        "{n_after} stored after compaction, {n} before, {acked} acknowledged"
    );
    // The alerts of before are still there, once each.
    assert_eq!(alerts_by_rule(&service, &analyst), expected);
    let (_, text) = get_metrics(service.addr).unwrap_or_else(|e| panic!("{e}"));
    for source in ["http", "syslog-tcp", "syslog-udp"] {
        ledger_balances(&text, source);
    }
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}
