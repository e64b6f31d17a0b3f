//! Helpers shared by the end-to-end tests: start the binary, talk HTTP to it.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vedette_core::io::read_capped;

/// The `vedette` binary built for this test run.
pub fn vedette() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vedette"))
}

/// Runs `vedette` with `args` to completion.
pub fn vedette_output(args: &[&str]) -> Output {
    match vedette().args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run vedette: {e}"),
    }
}

/// The ports test services are given: below Linux's ephemeral range (32768 and up),
/// so no client socket or `bind(0)` of this or another process is handed one of them
/// between this check and the service's own bind; above the range `deploy/local`
/// gives its services (10000–19999).
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_700;

/// How long a service may take to stop after SIGTERM. A clustered node that is taking
/// over a killed node's partitions may first wait out the consumer group's rebalance
/// (a CI run once saw more than 10 s), so this is generous; a hang still fails.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// A loopback address whose port was free for TCP and UDP a moment ago and was never
/// handed out before by this process.
pub fn free_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(TEST_PORTS.end - TEST_PORTS.start);
    // Each test binary starts at a place of its own, so two runs at once rarely meet.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = TEST_PORTS.start + offset as u16;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if TcpListener::bind(addr).is_ok() && std::net::UdpSocket::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback port in {TEST_PORTS:?}");
}

/// A running `vedette run`, killed when dropped.
pub struct Service {
    pub child: Child,
    pub addr: SocketAddr,
    /// The file the process's stderr (its log) goes to; `None` when not kept.
    pub log: Option<PathBuf>,
}

/// A new file in `cwd` for a service's stderr: never a pipe, which would block the
/// service once full.
fn log_file(cwd: &Path) -> (PathBuf, std::fs::File) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = cwd.join(format!("vedette-{}-{n}.log", std::process::id()));
    let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, file)
}

impl Service {
    /// Starts `vedette run` in `cwd` with `extra` arguments and an HTTP address of its
    /// own. Without `--config` in `extra`, a config giving the syslog listeners ports of
    /// their own is written to `cwd/test.toml` and used.
    pub fn start(cwd: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(cwd, extra, &[])
    }

    /// `vedette run --http-addr ADDR` and nothing else: the embedded defaults.
    pub fn start_without_config(cwd: &Path) -> Self {
        let addr = free_addr();
        let (log, file) = log_file(cwd);
        let child = vedette()
            .current_dir(cwd)
            .args(["run", "--http-addr", &addr.to_string()])
            .env_remove("VEDETTE_CONFIG")
            .env("VEDETTE_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start vedette: {e}"));
        Self {
            child,
            addr,
            log: Some(log),
        }
    }

    /// [`Service::start`] with extra environment variables.
    pub fn start_with_env(cwd: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let addr = free_addr();
        let (log, file) = log_file(cwd);
        let mut command = vedette();
        command
            .current_dir(cwd)
            .args(["run", "--http-addr", &addr.to_string()])
            .args(extra)
            .env_remove("VEDETTE_CONFIG")
            .env("VEDETTE_ADMIN_TOKEN", ADMIN_TOKEN)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file);
        if !extra.contains(&"--config") {
            let config = cwd.join("test.toml");
            std::fs::write(&config, syslog_config(free_addr(), free_addr()))
                .unwrap_or_else(|e| panic!("writing test config: {e}"));
            command.arg("--config").arg(&config);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start vedette: {e}"));
        Self {
            child,
            addr,
            log: Some(log),
        }
    }

    /// The service's log so far (its last 64 KiB), for failure messages.
    pub fn log_tail(&self) -> String {
        let Some(path) = &self.log else {
            return "(no log kept)".into();
        };
        let text = std::fs::read(path).unwrap_or_default();
        let from = text.len().saturating_sub(64 << 10);
        String::from_utf8_lossy(&text[from..]).into_owned()
    }

    /// A new token of `role` (and `tenant`), made with the admin token.
    pub fn token(&self, role: &str, tenant: Option<&str>) -> String {
        let body = serde_json::json!({ "role": role, "tenant": tenant }).to_string();
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let (code, answer) = http_post(
            self.addr,
            "/v1/tokens",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("POST /v1/tokens: {e}"));
        assert_eq!(code, 201, "{answer}");
        let answer: serde_json::Value =
            serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
        answer["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {answer}"))
            .to_string()
    }

    /// Polls `GET /health` until it answers 200; returns how long that took.
    pub fn wait_healthy(&mut self, deadline: Duration) -> Duration {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("vedette exited early with {status}\n{}", self.log_tail());
            }
            if let Ok((200, _)) = http_get(self.addr, "/health") {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("vedette did not answer /health within {deadline:?}");
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and stderr.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM failed");
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return (status.code(), self.log_tail()),
                Ok(None) if start.elapsed() < STOP_WAIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => panic!(
                    "vedette did not stop within {STOP_WAIT:?} after SIGTERM: {other:?}\n{}",
                    self.log_tail()
                ),
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config section giving the syslog listeners their own addresses.
pub fn syslog_config(udp: SocketAddr, tcp: SocketAddr) -> String {
    format!("[ingest.syslog]\nudp_addr = \"{udp}\"\ntcp_addr = \"{tcp}\"\n")
}

/// The admin token every test service starts with (`VEDETTE_ADMIN_TOKEN`).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// A minimal HTTP/1.1 GET; returns the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, &[], b"")
}

/// `GET /metrics` with the admin token.
pub fn get_metrics(addr: SocketAddr) -> std::io::Result<(u16, String)> {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    http_request(addr, "GET", "/metrics", &[("Authorization", &auth)], b"")
}

/// A minimal HTTP/1.1 POST with extra headers; returns the status code and the body.
pub fn http_post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    http_request(addr, "POST", path, headers, body)
}

/// A minimal HTTP/1.1 request with extra headers; returns the status code and the body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    read_response(&mut stream)
}

/// POSTs `body` and returns the status and the body's bytes, chunked transfer
/// encoding undone (for streamed answers).
pub fn http_post_bytes(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let raw = read_capped(&mut stream, 64 << 20)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
    let mut rest = &raw[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return Ok((status, rest.to_vec()));
    }
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| std::io::Error::other("truncated chunk"))?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| std::io::Error::other(format!("bad chunk size {size_text:?}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok((status, body));
        }
        if rest.len() < size + 2 {
            return Err(std::io::Error::other("truncated chunk"));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let response = String::from_utf8_lossy(&read_capped(stream, 1 << 20)?).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Copies a folder tree (files only), skipping files that vanish meanwhile.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    let _ = std::fs::create_dir_all(to);
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            let _ = std::fs::copy(entry.path(), &target);
        }
    }
}

/// Every record batch on topic `topic` of the embedded log under `<data>/bus`, by
/// partition then offset. The log of a running service is copied first and the copy
/// opened, so reading never touches the live files.
pub fn bus_batches(data: &std::path::Path, topic: &str) -> Vec<arrow::array::RecordBatch> {
    use vedette_connectors::bus::codec::decode_records;
    use vedette_connectors::bus::embedded::{EmbeddedLog, LogOptions};
    let copy = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    copy_tree(&data.join("bus"), copy.path());
    if !copy.path().join("topics").join(topic).is_dir() {
        return Vec::new();
    }
    let log = EmbeddedLog::open(copy.path(), LogOptions::default())
        .unwrap_or_else(|e| panic!("opening the copied log: {e}"));
    let partitions = log.partitions(topic).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for p in 0..partitions {
        for record in log
            .read(topic, p, 0, usize::MAX)
            .unwrap_or_else(|e| panic!("{e}"))
        {
            out.push(decode_records(&record.payload).unwrap_or_else(|e| panic!("{e}")));
        }
    }
    out
}

/// Polls `probe` every 50 ms until it gives a value; panics naming `what` after
/// `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, probe: impl FnMut() -> Option<T>) -> T {
    poll(timeout, probe).unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Polls `probe` every 50 ms until it gives a value, for at most `timeout`.
fn poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if let Some(v) = probe() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// [`wait_for`], and on timeout the panic carries `service`'s log.
pub fn wait_logged<T>(
    service: &Service,
    what: &str,
    timeout: Duration,
    probe: impl FnMut() -> Option<T>,
) -> T {
    poll(timeout, probe).unwrap_or_else(|| {
        panic!(
            "timed out waiting for {what}; the service's log:\n{}",
            service.log_tail()
        )
    })
}

/// The value of the first line of a Prometheus text starting with `line_start` (0 if
/// there is none).
pub fn metric_in(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `GET path` with a bearer token; the status and body.
pub fn get_with(addr: SocketAddr, path: &str, token: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    http_request(addr, "GET", path, &[("Authorization", &auth)], b"")
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The sum over `sources` of ledger counter `name` (`received`, `appended`, ...).
pub fn ledger_sum(text: &str, name: &str, sources: &[&str]) -> u64 {
    sources
        .iter()
        .map(|s| {
            metric_in(
                text,
                &format!("vedette_ledger_{name}_total{{source=\"{s}\"}}"),
            )
        })
        .sum()
}

/// A test config: data under `data`, `tables` (whole TOML tables such as `[rules]`),
/// quick ingest flushes, and syslog listeners on ports of their own. Dedup, entity
/// risk, silent sources and baselines are off (tests count one alert per matching event) unless
/// `tables` sets `[alerts...]` itself.
pub fn test_config(tables: &str) -> String {
    test_config_on(tables, free_addr(), free_addr())
}

/// [`test_config`] with the syslog listeners on `udp` and `tcp`.
pub fn test_config_on(tables: &str, udp: SocketAddr, tcp: SocketAddr) -> String {
    format!(
        "data_dir = \"data\"\n{tables}{}[ingest]\nbatch_age_ms = 50\n{}",
        if tables.contains("[alerts") {
            ""
        } else {
            ALERT_STATE_OFF
        },
        syslog_config(udp, tcp)
    )
}

/// `[alerts]` tables that turn dedup, entity risk, silent sources and baselines off.
pub const ALERT_STATE_OFF: &str =
    "[alerts.dedup]\nwindow_seconds = 0\n[alerts.risk]\nenabled = false\n\
     [alerts.silence]\nenabled = false\n[alerts.baselines]\nenabled = false\n";

/// A number no earlier call returned (nanoseconds since the epoch), for names of
/// databases and topics of their own.
pub fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The test broker's address (`VEDETTE_KAFKA_BROKERS`, set by deploy/local/up.sh).
pub fn kafka_brokers() -> String {
    std::env::var("VEDETTE_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!("VEDETTE_KAFKA_BROKERS is not set: start the test services with deploy/local/up.sh")
    })
}

/// `POST /v1/ingest` of `body` with the agent token `token`, expecting 200.
pub fn ingest(service: &Service, token: &str, body: &str) {
    ingest_bytes(service, token, body.as_bytes());
}

/// `POST /v1/ingest` of `body` with the agent token `token`, expecting 200; the answer.
pub fn ingest_bytes(service: &Service, token: &str, body: &[u8]) -> serde_json::Value {
    let auth = format!("Bearer {token}");
    let (code, answer) = http_post(
        service.addr,
        "/v1/ingest",
        &[("Authorization", &auth)],
        body,
    )
    .unwrap_or_else(|e| panic!("ingest: {e}"));
    assert_eq!(code, 200, "{answer}");
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// A `[store]` section for the test ClickHouse server (`VEDETTE_CLICKHOUSE_URL`), in a
/// database of its own named from `prefix`.
pub fn clickhouse_store(prefix: &str) -> String {
    let url = std::env::var("VEDETTE_CLICKHOUSE_URL").unwrap_or_else(|_| {
        panic!("VEDETTE_CLICKHOUSE_URL is not set: start the test services with deploy/local/up.sh")
    });
    let nanos = unique_suffix();
    format!(
        "[store]\nkind = \"clickhouse\"\n[store.clickhouse]\nurl = \"{url}\"\ndatabase = \"{prefix}{nanos}\"\nbatch_ms = 200\n"
    )
}

/// Runs `vedette run` in `cwd` with `config` written to `cwd/v.toml`, expecting it to
/// fail at start; returns its stderr.
pub fn start_fails(cwd: &Path, config: &str) -> String {
    std::fs::write(cwd.join("v.toml"), config).unwrap_or_else(|e| panic!("{e}"));
    let out = vedette()
        .current_dir(cwd)
        .args([
            "run",
            "--config",
            "v.toml",
            "--http-addr",
            &free_addr().to_string(),
        ])
        .env_remove("VEDETTE_CONFIG")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success(), "vedette started with {config}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Non-empty lines of one file.
pub fn lines_of_file(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The bundled rules' true-positive files with their rule ids.
pub fn true_positives() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma");
    let mut out = Vec::new();
    for group in ["windows", "linux", "cloud"] {
        for entry in std::fs::read_dir(root.join(group))
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
        {
            let path = entry.path();
            let name = path.to_string_lossy().to_string();
            let Some(stem) = name.strip_suffix(".tp.jsonl") else {
                continue;
            };
            let rule =
                std::fs::read_to_string(format!("{stem}.yml")).unwrap_or_else(|e| panic!("{e}"));
            let id = rule
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .unwrap_or_else(|| panic!("{stem}.yml has no id"))
                .trim()
                .to_string();
            out.push((path, id));
        }
    }
    out.sort();
    out
}

/// `POST /v1/query` of `sql` with `token`; its NDJSON rows (panics, with the service's
/// log, on any answer but 200).
pub fn query(service: &Service, token: &str, sql: &str) -> Vec<serde_json::Value> {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let auth = format!("Bearer {token}");
    let (code, out) = http_post_bytes(
        service.addr,
        "/v1/query",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(
        code,
        200,
        "{sql}: {text}\nservice log:\n{}",
        service.log_tail()
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Column `key` of the first of `rows` as a number (ClickHouse answers 64-bit counts
/// as JSON strings).
pub fn number(rows: &[serde_json::Value], key: &str) -> u64 {
    rows.first()
        .and_then(|r| {
            r[key]
                .as_u64()
                .or_else(|| r[key].as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or_else(|| panic!("no {key} in {rows:?}"))
}

/// The third-party test corpora: `VEDETTE_CORPORA`, or `../shared/corpora` next to the
/// repository (README, "Test data").
pub fn corpora() -> PathBuf {
    let root = std::env::var("VEDETTE_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora"));
    assert!(
        root.join("logs").is_dir() && root.join("sigma").is_dir(),
        "the test corpora are missing: {} has no logs/ and sigma/. Set VEDETTE_CORPORA to the \
         corpora folder (see README, \"Test data\").",
        root.display()
    );
    root
}
