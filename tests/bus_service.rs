//! `vedette run` on its bus: the loss ledger balances for every source, and with
//! `[bus] kind = "kafka"` the events reach a real Kafka-protocol broker (tansu, started
//! by `deploy/local/up.sh`).

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use common::{free_addr, get_metrics, http_post, metric_in, wait_for, Service};

/// Admin tokens may also send events.
const TOKEN: &str = common::ADMIN_TOKEN;
/// How long a test waits for the service to get somewhere.
const WAIT: Duration = Duration::from_secs(30);

/// Writes `v.toml`: CEF over TCP syslog, a short batch age, and `bus` as given.
fn write_config(dir: &Path, bus: &str) -> SocketAddr {
    let (udp, tcp) = (free_addr(), free_addr());
    let text = format!(
        "data_dir = \"data\"\n{bus}\n[ingest]\nbatch_age_ms = 50\n[ingest.syslog]\nudp_addr = \"{udp}\"\ntcp_addr = \"{tcp}\"\nformat = \"cef\"\n"
    );
    std::fs::write(dir.join("v.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    tcp
}

/// 40 CEF lines over TCP, every eighth one broken.
fn send_cef(tcp: SocketAddr) {
    let mut body = String::new();
    for i in 0..40 {
        if i % 8 == 3 {
            body.push_str("CEF:0|broken header\n");
        } else {
            body.push_str(&format!(
                "CEF:0|V|P|1|{i}|blocked|5|src=10.0.0.{i} dhost=host-{}\n",
                i % 5
            ));
        }
    }
    let mut stream = TcpStream::connect(tcp).unwrap_or_else(|e| panic!("{e}"));
    stream
        .write_all(body.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
}

/// 10 JSON lines over HTTP, one broken.
fn post_json(addr: SocketAddr) {
    let mut body = String::new();
    for i in 0..10 {
        if i == 4 {
            body.push_str("{\"broken\": \n");
        } else {
            body.push_str(&format!("{{\"message\":\"m{i}\",\"host\":\"h{i}\"}}\n"));
        }
    }
    let auth = format!("Bearer {TOKEN}");
    let (code, answer) = http_post(
        addr,
        "/v1/ingest?format=json",
        &[("Authorization", auth.as_str())],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{answer}");
}

#[test]
fn the_loss_ledger_balances_for_every_source() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tcp = write_config(tmp.path(), "");
    let mut service = Service::start_with_env(tmp.path(), &["--config", "v.toml"], &[]);
    service.wait_healthy(Duration::from_secs(5));
    send_cef(tcp);
    post_json(service.addr);
    let text = wait_for("every record accounted for", WAIT, || {
        let (_, text) = get_metrics(service.addr).ok()?;
        let tcp_done = metric_in(
            &text,
            "vedette_ledger_appended_total{source=\"syslog-tcp\"}",
        ) + metric_in(
            &text,
            "vedette_ledger_dead_lettered_total{source=\"syslog-tcp\"}",
        ) == 40;
        tcp_done.then_some(text)
    });
    for (source, sent, broken) in [("syslog-tcp", 40, 5), ("http", 10, 1)] {
        let get = |name: &str| {
            metric_in(
                &text,
                &format!("vedette_ledger_{name}_total{{source=\"{source}\"}}"),
            )
        };
        assert_eq!(get("received"), sent, "{source} received\n{text}");
        assert_eq!(
            get("received"),
            get("appended") + get("dead_lettered") + get("rejected"),
            "{source}: the ledger balances\n{text}"
        );
        assert_eq!(get("dead_lettered"), broken, "{source} dead letters");
    }
    // What the ledger says was appended is on the bus.
    let data = tmp.path().join("data");
    let events: usize = common::bus_batches(&data, "events")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    let dead: usize = common::bus_batches(&data, "dead_letters")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!((events, dead), (35 + 9, 5 + 1));
    assert!(
        metric_in(&text, "vedette_bus_log{counter=\"appended_records\"}") >= 2,
        "{text}"
    );
    // Downstream: what was appended is stored, and the store answers for it.
    let text = wait_for("the store to hold every appended record", WAIT, || {
        let (_, text) = get_metrics(service.addr).ok()?;
        let stored = metric_in(&text, "vedette_ledger_stored_total{table=\"events\"}");
        let dead = metric_in(&text, "vedette_ledger_stored_total{table=\"dead_letters\"}");
        (stored == 44 && dead == 6).then_some(text)
    });
    let appended = common::ledger_sum(&text, "appended", &["syslog-tcp", "http"]);
    assert_eq!(
        appended,
        metric_in(&text, "vedette_ledger_stored_total{table=\"events\"}"),
        "appended = stored (nothing is filtered yet)"
    );
    let out = common::vedette_output(&[
        "query",
        "--data-dir",
        &data.display().to_string(),
        "--format",
        "csv",
        "SELECT count(*) AS n FROM events WHERE \"event.dataset\" = 'cef'",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n35\n");
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_bundled_rule_raises_an_alert_on_the_alerts_topic_and_the_group_commits() {
    use vedette_core::alert::alerts_from_batch;

    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_config(tmp.path(), "");
    let mut service = Service::start_with_env(tmp.path(), &["--config", "v.toml"], &[]);
    service.wait_healthy(Duration::from_secs(10));
    let event = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("rules/sigma/windows/proc_creation_certutil_download.tp.jsonl"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let auth = format!("Bearer {TOKEN}");
    let benign = b"{\"EventID\": 1, \"Channel\": \"Microsoft-Windows-Sysmon/Operational\", \"Computer\": \"ws-1\", \"Image\": \"C:\\\\Windows\\\\notepad.exe\", \"CommandLine\": \"notepad.exe a.txt\"}\n";
    let mut body = benign.to_vec();
    body.extend_from_slice(&event);
    let (code, answer) = http_post(
        service.addr,
        "/v1/ingest?format=windows-json",
        &[("Authorization", auth.as_str())],
        &body,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{answer}");
    let data = tmp.path().join("data");
    let alerts = wait_for("an alert on the alerts topic", WAIT, || {
        let alerts: Vec<_> = common::bus_batches(&data, "alerts")
            .iter()
            .flat_map(|b| alerts_from_batch(b).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        (!alerts.is_empty()).then_some(alerts)
    });
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].rule_id, "d2644136-7400-49e4-8b45-45b687d7b72a");
    assert_eq!(alerts[0].host.as_deref(), Some("ws-hr-007.corp.example"));
    // The detect group commits what it processed: its lag drains to zero.
    let text = wait_for("the detect group to commit", WAIT, || {
        let (_, text) = get_metrics(service.addr).ok()?;
        let lagging = text
            .lines()
            .filter(|l| l.starts_with("vedette_bus_consumer_lag_records{group=\"detect\""))
            .any(|l| !l.ends_with(" 0"));
        let seen = text.contains("vedette_bus_consumer_lag_records{group=\"detect\"");
        (seen && !lagging).then_some(text)
    });
    assert_eq!(metric_in(&text, "vedette_detect_events_total"), 2, "{text}");
    assert_eq!(
        metric_in(&text, "vedette_alerts_total{level=\"high\"}")
            + metric_in(&text, "vedette_alerts_total{level=\"medium\"}")
            + metric_in(&text, "vedette_alerts_total{level=\"critical\"}"),
        1,
        "{text}"
    );
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn with_kafka_configured_events_go_to_the_broker() {
    use vedette_connectors::bus::kafka::KafkaBus;
    use vedette_core::config::KafkaConfig;
    use vedette_core::traits::{Bus, BusDelivery};

    let brokers = common::kafka_brokers();
    let prefix = format!("svc{}", common::unique_suffix());
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tcp = write_config(
        tmp.path(),
        &format!(
            "[bus]\nkind = \"kafka\"\n[bus.kafka]\nbrokers = [\"{brokers}\"]\ntopic_prefix = \"{prefix}\"\npartitions = 2\nreplication_factor = 1\n"
        ),
    );
    let mut service = Service::start_with_env(tmp.path(), &["--config", "v.toml"], &[]);
    service.wait_healthy(Duration::from_secs(30));
    send_cef(tcp);
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let rows = runtime.block_on(async {
        let config = KafkaConfig {
            topic_prefix: prefix.clone(),
            partitions: 2,
            replication_factor: 1,
            ..KafkaConfig::new(vec![brokers.clone()])
        };
        let bus = KafkaBus::connect(config, "host.name")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut consumer = bus
            .subscribe("events", "check")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut rows = 0;
        while rows < 35 && Instant::now() < deadline {
            if let Ok(Some(BusDelivery::Batch(b))) = consumer.poll(Duration::from_millis(500)).await
            {
                rows += b.len();
            }
        }
        rows
    });
    assert_eq!(rows, 35, "every good CEF line reached Kafka");
    assert!(
        !tmp.path().join("data/bus").exists(),
        "no embedded log when Kafka is configured"
    );
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}
