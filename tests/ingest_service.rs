//! `vedette run` ingesting for real: syslog over UDP and TCP, `POST /v1/ingest` with
//! its token, compression and formats, followed files across a restart, a bad record in
//! the middle of a batch, flushing at a size and a count before the age, and flushing on
//! SIGTERM. Events are read back from the bus (the
//! embedded log).

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use common::{free_addr, get_metrics, http_post, syslog_config, wait_for, Service};

/// How long a test waits for the service to get somewhere.
const WAIT: Duration = Duration::from_secs(10);

/// Every event batch on the bus (the embedded log under `<data>/bus`).
fn spooled(data: &Path) -> Vec<RecordBatch> {
    common::bus_batches(data, "events")
}

/// The `message` (or `event.dataset`) of every spooled event.
fn spooled_column(data: &Path, column: &str) -> Vec<String> {
    spooled(data)
        .iter()
        .flat_map(|b| {
            let c = b
                .column_by_name(column)
                .map(|c| c.as_string::<i32>().clone());
            (0..b.num_rows()).map(move |i| {
                c.as_ref()
                    .map(|c| c.value(i).to_string())
                    .unwrap_or_default()
            })
        })
        .collect()
}

fn metric(addr: SocketAddr, line_start: &str) -> Option<u64> {
    let (_, text) = get_metrics(addr).ok()?;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn write_config(dir: &Path, extra: &str) -> (SocketAddr, SocketAddr) {
    let (udp, tcp) = (free_addr(), free_addr());
    let text = format!(
        "data_dir = \"data\"\n[ingest]\nbatch_age_ms = 50\n{}{extra}",
        syslog_config(udp, tcp)
    );
    std::fs::write(dir.join("v.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    (udp, tcp)
}

/// A healthy service in a fresh folder, and an agent token for it.
fn start_with_token() -> (tempfile::TempDir, Service, String) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_config(tmp.path(), "");
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(5));
    let token = service.token("agent", None);
    (tmp, service, token)
}

#[test]
fn syslog_over_udp_and_tcp_is_parsed_counted_and_spooled() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (udp, tcp) = write_config(tmp.path(), "");
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(5));

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    socket
        .send_to(
            b"<34>Oct 11 22:14:15 web-1 su: 'su root' failed for lonvick",
            udp,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stream = TcpStream::connect(tcp).unwrap_or_else(|e| panic!("{e}"));
    stream
        .write_all(b"<13>1 2026-11-27T10:00:00Z db-2 postgres 77 - - connection received\nCEF:0|V|P|1|100|blocked|5|src=10.0.0.1 dst=10.0.0.2\n")
        .unwrap_or_else(|e| panic!("{e}"));
    drop(stream);

    let datasets = wait_for("3 spooled events", WAIT, || {
        let d = spooled_column(&tmp.path().join("data"), "event.dataset");
        (d.len() == 3).then_some(d)
    });
    assert_eq!(datasets.iter().filter(|d| *d == "syslog").count(), 2);
    assert!(datasets.contains(&"cef".to_string()));
    assert_eq!(
        metric(
            service.addr,
            "vedette_ingest_events_total{source=\"syslog-udp\"}"
        ),
        Some(1)
    );
    assert_eq!(
        metric(
            service.addr,
            "vedette_ingest_events_total{source=\"syslog-tcp\"}"
        ),
        Some(2)
    );
    assert_eq!(
        metric(
            service.addr,
            "vedette_ingest_events_by_dataset_total{dataset=\"cef\"}"
        ),
        Some(1)
    );
    let (code, _) = service.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn a_malformed_record_mid_batch_is_the_only_dead_letter() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (_, tcp) = write_config(tmp.path(), "format = \"cef\"\n");
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(5));
    let mut stream = TcpStream::connect(tcp).unwrap_or_else(|e| panic!("{e}"));
    stream
        .write_all(b"CEF:0|V|P|1|1|a|5|src=10.0.0.1\nCEF:0|truncated header\nCEF:0|V|P|1|3|c|5|src=10.0.0.3\n")
        .unwrap_or_else(|e| panic!("{e}"));
    drop(stream);
    let sources = wait_for("2 spooled events", WAIT, || {
        let s = spooled_column(&tmp.path().join("data"), "source.ip");
        (s.len() == 2).then_some(s)
    });
    assert_eq!(sources, ["10.0.0.1", "10.0.0.3"]);
    let dead = wait_for("a dead letter metric", WAIT, || {
        metric(service.addr, "vedette_ingest_dead_letters_total{source=\"syslog-tcp\",reason=\"CEF header has # of its # `|`-separated fields\"}")
    });
    assert_eq!(dead, 1);
    // The dead letter is counted when parsed and appended to the bus with its own
    // flush: wait for it there too.
    let dead_letters = wait_for("the dead letter on the bus", WAIT, || {
        let rows: usize = common::bus_batches(&tmp.path().join("data"), "dead_letters")
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        (rows > 0).then_some(rows)
    });
    assert_eq!(dead_letters, 1);
    let (code, _) = service.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn http_ingest_needs_its_token_and_takes_formats_and_compression() {
    let (tmp, service, token) = start_with_token();
    let auth = format!("Bearer {token}");
    let body = b"{\"EventID\":1,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Image\":\"C:\\\\x.exe\"}\n{broken json\n{\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\",\"eventTime\":\"2026-11-27T10:00:00Z\"}\n";

    let (status, _) =
        http_post(service.addr, "/v1/ingest", &[], body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 401);
    let (status, _) = http_post(
        service.addr,
        "/v1/ingest",
        &[("Authorization", "Bearer wrong")],
        body,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 401);

    let (status, answer) = http_post(
        service.addr,
        "/v1/ingest",
        &[("Authorization", &auth)],
        body,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["dead_letters"], 1);
    assert_eq!(answer["dead_letter_reasons"]["invalid JSON"], 1);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"CEF:0|V|P|1|100|x|5|src=1.2.3.4\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let gz = gz.finish().unwrap_or_else(|e| panic!("{e}"));
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Encoding", "gzip"),
        ("X-Vedette-Format", "cef"),
    ];
    let (status, answer) =
        http_post(service.addr, "/v1/ingest", &headers, &gz).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"accepted\":1"), "{answer}");

    let (status, answer) = http_post(
        service.addr,
        "/v1/ingest?format=xml",
        &[("Authorization", &auth)],
        b"x",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 400);
    assert!(answer.contains("unknown format"), "{answer}");
    let (status, _) = http_post(
        service.addr,
        "/v1/ingest",
        &[("Authorization", &auth), ("Content-Encoding", "br")],
        b"x",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 415);

    // Acknowledged means durable: the events are in the spool already.
    let datasets = spooled_column(&tmp.path().join("data"), "event.dataset");
    assert_eq!(datasets.len(), 3);
    assert!(
        datasets.contains(&"windows.sysmon".to_string())
            && datasets.contains(&"aws.cloudtrail".to_string())
    );
    let (code, _) = service.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn http_ingest_takes_agent_tokens_only_confines_them_to_their_tenant_and_caps_records() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_config(tmp.path(), "[ingest.http]\nmax_records = 3\n");
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(5));
    let send = |token: &str, body: &[u8]| {
        let auth = format!("Bearer {token}");
        http_post(
            service.addr,
            "/v1/ingest",
            &[("Authorization", &auth)],
            body,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let line = b"{\"message\":\"m\",\"host\":\"tenant-host\"}\n";
    let (status, answer) = http_post(service.addr, "/v1/ingest", &[], line).unwrap();
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("\"error\""), "{answer}");
    assert_eq!(send("vdt_unknown", line).0, 401);
    let analyst = service.token("analyst", None);
    let (status, answer) = send(&analyst, line);
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("agent role"), "{answer}");

    let agent = service.token("agent", Some("acme"));
    let (status, answer) = send(&agent, line);
    assert_eq!(status, 200, "{answer}");
    let tenants = wait_for("the tenant's event", WAIT, || {
        let t = spooled_column(&tmp.path().join("data"), "tenant");
        (!t.is_empty()).then_some(t)
    });
    assert_eq!(
        tenants,
        ["acme"],
        "the token's tenant, not the configured one"
    );

    // Four records where three are allowed: refused whole.
    let (status, answer) = send(&agent, &line.repeat(4));
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("split"), "{answer}");

    // Revoked with the CLI while the service runs: refused from the next request.
    let list = common::vedette_output(&[
        "token",
        "list",
        "--data-dir",
        &tmp.path().join("data").display().to_string(),
    ]);
    let listing = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(!listing.contains(&agent), "tokens are never listed");
    let id = listing
        .lines()
        .find(|l| l.contains("acme"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no acme token in {listing}"))
        .to_string();
    let revoked = common::vedette_output(&[
        "token",
        "revoke",
        &id,
        "--data-dir",
        &tmp.path().join("data").display().to_string(),
    ]);
    assert!(revoked.status.success(), "{revoked:?}");
    assert_eq!(send(&agent, line).0, 401);
}

/// A service folder whose config follows `logs/*.log` in `format`; returns the folder
/// of logs.
fn with_followed_logs(dir: &Path, format: &str) -> std::path::PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap_or_else(|e| panic!("{e}"));
    write_config(dir, "");
    let text = std::fs::read_to_string(dir.join("v.toml")).unwrap_or_default();
    let extra = format!(
        "[[ingest.files]]\npaths = [\"{}/*.log\"]\nformat = \"{format}\"\n",
        logs.display()
    );
    std::fs::write(dir.join("v.toml"), format!("{text}{extra}")).unwrap_or_else(|e| panic!("{e}"));
    logs
}

/// Appends `text` to the file at `path`, creating it.
fn append_to(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{e}"));
    f.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn followed_files_resume_after_a_restart_without_loss_or_duplicates() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = with_followed_logs(tmp.path(), "syslog").join("auth.log");
    let append = |text: &str| append_to(&log, text);
    let data = tmp.path().join("data");

    append("Feb 12 14:10:21 h sshd[1]: line one\nFeb 12 14:10:22 h sshd[1]: line two\n");
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(5));
    wait_for("2 events", WAIT, || {
        (spooled_column(&data, "message").len() == 2).then_some(())
    });
    let (code, _) = service.terminate();
    assert_eq!(code, Some(0));

    append("Feb 12 14:10:23 h sshd[1]: line three\n");
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(5));
    let messages = wait_for("3 events", WAIT, || {
        let m = spooled_column(&data, "message");
        (m.len() >= 3).then_some(m)
    });
    std::thread::sleep(Duration::from_millis(300));
    let messages_later = spooled_column(&data, "message");
    assert_eq!(messages, messages_later, "no duplicate arrives later");
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[2].ends_with("line three"));
    let (code, _) = service.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn a_followed_zeek_log_keeps_its_field_names_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = with_followed_logs(tmp.path(), "auto").join("capture_loss.log");
    let append = |text: &str| append_to(&log, text);
    let data = tmp.path().join("data");
    append(
        "#separator \\x09\n#unset_field\t-\n#path\tcapture_loss\n\
         #fields\tts\tpeer\tgaps\n#types\ttime\tstring\tcount\n\
         1521911780.600725\tzeek-a\t254\n",
    );
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(5));
    wait_for("the first event", WAIT, || {
        (spooled_column(&data, "event.dataset").len() == 1).then_some(())
    });
    let (code, _) = service.terminate();
    assert_eq!(code, Some(0));

    // After the restart the file is read on past its header: the header lines go to
    // the parser again, so the new line is still a Zeek event with its named fields.
    append("1521912680.600926\tzeek-b\t1239\n");
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(5));
    let datasets = wait_for("the second event", WAIT, || {
        let d = spooled_column(&data, "event.dataset");
        (d.len() >= 2).then_some(d)
    });
    assert_eq!(datasets, ["zeek.capture_loss", "zeek.capture_loss"]);
    let peers: Vec<String> = spooled(&data)
        .iter()
        .flat_map(|b| {
            let fields = b
                .column_by_name("fields")
                .map(|c| c.as_map().clone())
                .unwrap_or_else(|| panic!("no fields"));
            (0..b.num_rows())
                .map(|i| {
                    let entries = fields.value(i);
                    let keys = entries.column(0).as_string::<i32>().clone();
                    let values = entries.column(1).as_string::<i32>().clone();
                    (0..keys.len())
                        .find(|j| keys.value(*j) == "peer")
                        .map(|j| values.value(j).to_string())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(peers, ["zeek-a", "zeek-b"]);
    let (code, _) = service.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn sigterm_flushes_the_pending_batch() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (udp, tcp) = (free_addr(), free_addr());
    let text = format!(
        "data_dir = \"data\"\n[ingest]\nbatch_age_ms = 600000\n{}",
        syslog_config(udp, tcp)
    );
    std::fs::write(tmp.path().join("v.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(5));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    socket
        .send_to(b"<34>Oct 11 22:14:15 web-1 su: pending", udp)
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("the event to be parsed", WAIT, || {
        metric(
            service.addr,
            "vedette_ingest_events_total{source=\"syslog-udp\"}",
        )
        .filter(|n| *n == 1)
    });
    assert!(
        spooled(&tmp.path().join("data")).is_empty(),
        "not flushed before its age"
    );
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        spooled_column(&tmp.path().join("data"), "host.name"),
        ["web-1"]
    );
}

#[test]
fn a_batch_is_flushed_at_its_size_and_at_its_count_of_dead_letters_before_its_age() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = tmp.path().join("data");
    let (udp, tcp) = (free_addr(), free_addr());
    let text = format!(
        "data_dir = \"data\"\n[ingest]\nbatch_age_ms = 600000\nbatch_rows = 2\n\
         batch_bytes = 4096\n{}format = \"cef\"\n",
        syslog_config(udp, tcp)
    );
    std::fs::write(tmp.path().join("v.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(5));
    let mut stream = TcpStream::connect(tcp).unwrap_or_else(|e| panic!("{e}"));

    // One event of 5,000 bytes: under the count, over the size.
    let big = format!("CEF:0|V|P|1|1|a|5|src=10.0.0.9 msg={}\n", "x".repeat(5000));
    stream
        .write_all(big.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    stream.flush().unwrap_or_else(|e| panic!("{e}"));
    let sources = wait_for("the large event on the bus", WAIT, || {
        let s = spooled_column(&data, "source.ip");
        (!s.is_empty()).then_some(s)
    });
    assert_eq!(sources, ["10.0.0.9"]);

    // A small event waits for its age (ten minutes here)...
    stream
        .write_all(b"CEF:0|V|P|1|1|a|5|src=10.0.0.1\n")
        .unwrap_or_else(|e| panic!("{e}"));
    stream.flush().unwrap_or_else(|e| panic!("{e}"));
    wait_for("the small event to be parsed", WAIT, || {
        metric(
            service.addr,
            "vedette_ingest_events_total{source=\"syslog-tcp\"}",
        )
        .filter(|n| *n == 2)
    });
    // The count is bumped before the flush check: give a wrong flush time to land.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        spooled_column(&data, "source.ip").len(),
        1,
        "not flushed yet"
    );
    // ... until a dead letter makes the count.
    stream
        .write_all(b"CEF:0|truncated header\n")
        .unwrap_or_else(|e| panic!("{e}"));
    stream.flush().unwrap_or_else(|e| panic!("{e}"));
    let sources = wait_for("the small event on the bus", WAIT, || {
        let s = spooled_column(&data, "source.ip");
        (s.len() == 2).then_some(s)
    });
    assert_eq!(sources, ["10.0.0.9", "10.0.0.1"]);
    let dead_letters: usize = common::bus_batches(&data, "dead_letters")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(dead_letters, 1);
    drop(stream);
    let (code, _) = service.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn stdin_is_an_input_and_an_open_stdin_does_not_block_shutdown() {
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_config(tmp.path(), "");
    let addr = free_addr();
    let mut child = common::vedette()
        .current_dir(tmp.path())
        .args([
            "run",
            "--config",
            "v.toml",
            "--http-addr",
            &addr.to_string(),
            "--stdin",
            "syslog",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    stdin
        .write_all(b"<34>Oct 11 22:14:15 from-stdin su: one\n")
        .unwrap_or_else(|e| panic!("{e}"));
    stdin.flush().unwrap_or_else(|e| panic!("{e}"));
    let hosts = wait_for("the stdin event", WAIT, || {
        let h = spooled_column(&tmp.path().join("data"), "host.name");
        (!h.is_empty()).then_some(h)
    });
    assert_eq!(hosts, ["from-stdin"]);
    // stdin stays open: SIGTERM must still stop the service promptly.
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(sent.is_ok_and(|s| s.success()));
    let status = wait_for("exit after SIGTERM", WAIT, || {
        child.try_wait().ok().flatten()
    });
    assert_eq!(status.code(), Some(0));
    drop(stdin);
}

#[test]
fn http_ingest_takes_bodies_larger_than_two_mebibytes() {
    let (_tmp, service, token) = start_with_token();
    let line = format!("{{\"message\":\"{}\",\"host\":\"h\"}}\n", "x".repeat(1000));
    let body = line.repeat(3 * 1024); // about 3 MiB
    let auth = format!("Bearer {token}");
    let (status, answer) = http_post(
        service.addr,
        "/v1/ingest",
        &[("Authorization", &auth)],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"accepted\":3072"), "{answer}");
    // Over the configured limit (16 MiB) the request is refused.
    let huge = vec![b' '; 17 * 1024 * 1024];
    let refused = http_post(
        service.addr,
        "/v1/ingest",
        &[("Authorization", &auth)],
        &huge,
    );
    assert!(
        refused.map_or(true, |(status, _)| status == 413),
        "a body over the limit must be refused"
    );
}
