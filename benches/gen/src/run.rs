//! `vedette-bench run`: a scenario against running `vedette` processes.
//!
//! 1. **Capacity**: `load.connections` senders take chunks of the stream and send them
//!    (each chunk split per format into `POST /v1/ingest` requests, syslog sources as
//!    lines on a TCP connection) as fast as the service answers, in rounds (all senders
//!    finish a chunk before the next), for `load.seconds`; then
//!    the harness waits until every record sent is received, detected and stored. The
//!    maximum sustained rate is the records sent over the time until the last was stored.
//! 2. **Latency at half that rate** (or `load.rate`): one sender goes on with the same
//!    stream, paced every 50 ms. For each story in it: from the answer to the request that carried its last
//!    event (accepted, durable) to the first webhook delivery naming it (the harness's
//!    receiver is the service's responder), and, for stories whose token is the alert's
//!    host or user, to the first `POST /v1/query` answer that shows the stored alert
//!    (polled every 250 ms).
//! 3. **Recall**: every story sent must have its alert in the store (`GET /v1/alerts` per
//!    rule), 100 % expected. Also: CPU time and peak RSS of the service, bytes on disk per
//!    stored event, dead letters, and every alert stored.
//! 4. **Queries**: the analyst queries of `docs/queries.md` in the store's dialect, timed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

use crate::attacks::Truth;
use crate::http::{self, percentile, request, usage, Deliveries};
use crate::recall::{recall, tokens};
use crate::scenario::{repo_root, Scenario};
use crate::service::{self, disk_bytes, Cluster, Node, TOKEN};
use crate::sources::Transport;
use crate::stream::{Record, Stream};

/// What a run is given besides the scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `vedette` binary (a release build).
    pub vedette: PathBuf,
    /// Kafka brokers, when the scenario's bus is Kafka.
    pub kafka: Option<String>,
    /// ClickHouse URL, when the scenario's store is ClickHouse.
    pub clickhouse: Option<String>,
    /// CPUs the service may use (`taskset -c` list), e.g. `0` for one core.
    pub cpus: Option<String>,
    /// Overrides `load.seconds`.
    pub seconds: Option<u64>,
    /// Overrides `load.rate` (events/s of the latency phase).
    pub rate: Option<u64>,
    /// After the run, wait this long (the store compacts quiet folders after five
    /// minutes) and measure the bytes on disk again.
    pub settle_seconds: u64,
}

fn lock<T>(m: &Mutex<T>) -> anyhow::Result<std::sync::MutexGuard<'_, T>> {
    m.lock().map_err(|_| anyhow!("a harness thread panicked"))
}

/// Stories sent, with when their last event was accepted.
type Sent = Arc<Mutex<Vec<(Truth, Instant)>>>;

/// Times one body is sent again after a 429 before the run fails.
const MAX_THROTTLED_TRIES: u32 = 300;

/// Sends `records` to a node: one request per HTTP format, syslog lines on `syslog`.
/// Returns, for each story among them, when its event was accepted.
fn send(
    node: SocketAddr,
    syslog: &mut TcpStream,
    records: Vec<Record>,
) -> anyhow::Result<Vec<(Truth, Instant)>> {
    let mut bodies: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
    let mut lines = Vec::new();
    let mut stories: Vec<(Transport, Truth)> = Vec::new();
    for r in records {
        let transport = r.source.transport();
        let out = match transport {
            Transport::Http(format) => bodies.entry(format).or_default(),
            Transport::Syslog => &mut lines,
        };
        out.extend_from_slice(r.text.as_bytes());
        out.push(b'\n');
        if let Some(t) = r.truth {
            stories.push((transport, t));
        }
    }
    let mut accepted: HashMap<Transport, Instant> = HashMap::new();
    if !lines.is_empty() {
        syslog
            .write_all(&lines)
            .context("writing to the syslog connection")?;
        accepted.insert(Transport::Syslog, Instant::now());
    }
    for (format, body) in bodies {
        let mut tries = 0;
        let (status, answer) = loop {
            let (status, answer) = request(
                node,
                "POST",
                &format!("/v1/ingest?format={format}"),
                TOKEN,
                &body,
            )?;
            // 429: the pipeline is behind (backpressure); send again after the pause it
            // asks for (`Retry-After: 1`), as an agent does.
            if status == 429 && tries < MAX_THROTTLED_TRIES {
                tries += 1;
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            break (status, answer);
        };
        if status != 200 {
            bail!(
                "ingest ({format}) answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        accepted.insert(Transport::Http(format), Instant::now());
    }
    Ok(stories
        .into_iter()
        .filter_map(|(tr, t)| Some((t, *accepted.get(&tr)?)))
        .collect())
}

fn take(stream: &Mutex<Stream>, n: usize) -> anyhow::Result<Vec<Record>> {
    let mut stream = lock(stream)?;
    Ok(stream.by_ref().take(n).collect())
}

/// The pipeline's counters, summed over the nodes.
#[derive(Debug, Clone, Copy)]
struct Counters {
    received: u64,
    appended: u64,
    dead_lettered: u64,
    detected: u64,
    stored_events: u64,
    stored_alerts: u64,
}

fn counters(nodes: &[SocketAddr]) -> anyhow::Result<Counters> {
    let text = counters_text(nodes)?;
    let m = |name: &str| http::metric(&text, name);
    Ok(Counters {
        received: m("vedette_ledger_received_total"),
        appended: m("vedette_ledger_appended_total"),
        dead_lettered: m("vedette_ledger_dead_lettered_total"),
        detected: m("vedette_detect_events_total"),
        stored_events: m("vedette_ledger_stored_total{table=\"events\"}"),
        stored_alerts: m("vedette_ledger_stored_total{table=\"alerts\"}"),
    })
}

/// Waits until `sent` records are received, detected and stored, and the stored alerts
/// have stopped growing for a second; the counters then.
fn drained(nodes: &[SocketAddr], sent: u64, limit: Duration) -> anyhow::Result<Counters> {
    let started = Instant::now();
    let mut alerts = (u64::MAX, Instant::now());
    loop {
        let c = counters(nodes)?;
        let events_done =
            c.received >= sent && c.detected >= c.appended && c.stored_events >= c.appended;
        if c.stored_alerts != alerts.0 {
            alerts = (c.stored_alerts, Instant::now());
        }
        if events_done && alerts.1.elapsed() >= Duration::from_secs(1) {
            return Ok(c);
        }
        if started.elapsed() > limit {
            bail!("the service did not finish within {limit:?}: {sent} sent, {c:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a run concludes (its figures are printed as it goes).
#[derive(Debug, Default)]
pub struct Report {
    /// Whether every story's alert was found.
    pub full_recall: bool,
}

/// Prints one line of the report.
fn say(line: String) {
    println!("{line}");
}

/// The Kafka brokers and ClickHouse URL the scenario needs (from the options, else the
/// environment `deploy/local/up.sh` writes), with a fresh tag for topics and database.
fn cluster(scenario: &Scenario, options: &RunOptions) -> anyhow::Result<Cluster> {
    let tag = format!(
        "bench{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    Ok(Cluster {
        kafka: match scenario.service.bus.as_str() {
            "kafka" => Some(
                options
                    .kafka
                    .clone()
                    .or_else(|| std::env::var("VEDETTE_KAFKA_BROKERS").ok())
                    .context("the scenario's bus is Kafka: give --kafka or VEDETTE_KAFKA_BROKERS")?,
            ),
            _ => None,
        },
        clickhouse: match scenario.service.store.as_str() {
            "clickhouse" => Some(
                options
                    .clickhouse
                    .clone()
                    .or_else(|| std::env::var("VEDETTE_CLICKHOUSE_URL").ok())
                    .context("the scenario's store is ClickHouse: give --clickhouse or VEDETTE_CLICKHOUSE_URL")?,
            ),
            _ => None,
        },
        tag,
    })
}

/// Runs `scenario` with `options`.
pub fn run(scenario: &Scenario, options: &RunOptions) -> anyhow::Result<Report> {
    let repo = repo_root()?;
    let sigma_dirs = scenario.service.sigma_paths(&repo)?;
    let cluster = cluster(scenario, options)?;
    let deliveries: Deliveries = Arc::default();
    let webhook = http::webhook_receiver(deliveries.clone())?;
    let load_started = Instant::now();
    let nodes: Vec<Node> = (0..scenario.service.nodes.max(1))
        .map(|_| {
            service::start(
                &options.vedette,
                webhook,
                &sigma_dirs,
                &cluster,
                scenario.service.correlation_lateness_seconds,
                options.cpus.as_deref(),
            )
        })
        .collect::<anyhow::Result<_>>()?;
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.http).collect();
    let mut report = Report::default();
    say(format!(
        "scenario {}: {} node(s) (pid {}), bus {}, store {}, Sigma folders {:?}, ready after {:.1} s{}",
        scenario.name,
        nodes.len(),
        nodes.iter().map(|n| n.pid().to_string()).collect::<Vec<_>>().join(", "),
        scenario.service.bus,
        scenario.service.store,
        scenario.service.sigma_dirs,
        load_started.elapsed().as_secs_f64(),
        options
            .cpus
            .as_deref()
            .map(|c| format!(", service on CPUs {c}"))
            .unwrap_or_default()
    ));
    let world = scenario.generate.world()?;
    let stream = Arc::new(Mutex::new(Stream::new(
        world,
        &scenario.generate.mix,
        scenario.generate.seed,
        scenario.generate.attack_every,
    )));
    let seconds = options.seconds.unwrap_or(scenario.load.seconds);
    let sent_stories: Sent = Arc::default();

    // 1. Capacity. The senders go in rounds, each taking the next chunk and waiting for
    // the others before the next round: event time across connections stays within one
    // round, as with agents sending live, though the stream packs hours of event time
    // into a chunk (a sender left behind by a slow request would otherwise send events
    // days of event time older than the others', and correlations would drop them late).
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let go_on = Arc::new(AtomicBool::new(true));
    let connections = scenario.load.connections.max(1);
    let barrier = Arc::new(std::sync::Barrier::new(connections));
    let failure: Arc<Mutex<Option<anyhow::Error>>> = Arc::default();
    let t0 = Instant::now();
    let senders: Vec<_> = (0..connections)
        .map(|c| {
            let node = &nodes[c % nodes.len()];
            let (http_addr, syslog_addr) = (node.http, node.syslog);
            let (sent, stop, go_on, barrier, failure, stream, stories) = (
                sent.clone(),
                stop.clone(),
                go_on.clone(),
                barrier.clone(),
                failure.clone(),
                stream.clone(),
                sent_stories.clone(),
            );
            let chunk = scenario.load.chunk.max(1);
            std::thread::spawn(move || {
                let mut syslog = TcpStream::connect(syslog_addr).map_err(anyhow::Error::from);
                loop {
                    let round = (|| -> anyhow::Result<()> {
                        let syslog = syslog.as_mut().map_err(|e| anyhow!("{e}"))?;
                        let records = take(&stream, chunk)?;
                        let n = records.len() as u64;
                        let accepted = send(http_addr, syslog, records)?;
                        lock(&stories)?.extend(accepted);
                        sent.fetch_add(n, Ordering::Relaxed);
                        Ok(())
                    })();
                    if let Err(e) = round {
                        stop.store(true, Ordering::Relaxed);
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                    }
                    if barrier.wait().is_leader() {
                        go_on.store(!stop.load(Ordering::Relaxed), Ordering::Relaxed);
                    }
                    barrier.wait();
                    if !go_on.load(Ordering::Relaxed) {
                        break;
                    }
                }
                if let Ok(s) = syslog.as_mut() {
                    let _ = s.flush();
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().map_err(|_| anyhow!("a sender panicked"))?;
    }
    if let Some(e) = lock(&failure)?.take() {
        return Err(e.context("a sender failed"));
    }
    let sent_for = t0.elapsed();
    let total_sent = sent.load(Ordering::Relaxed);
    let after_capacity = drained(&addrs, total_sent, Duration::from_secs(900))?;
    let done = t0.elapsed();
    let capacity = total_sent as f64 / done.as_secs_f64();
    let usage_all = || {
        nodes
            .iter()
            .map(|n| usage(n.pid()))
            .fold((0.0, 0.0), |(c, r), (c1, r1)| (c + c1, f64::max(r, r1)))
    };
    let (cpu_capacity, _) = usage_all();
    say(format!(
        "capacity: {total_sent} records sent in {:.1} s ({:.0}/s at the door), all stored after {:.1} s: max sustained {capacity:.0} events/s; {} dead letters; {:.1} CPU s",
        sent_for.as_secs_f64(),
        total_sent as f64 / sent_for.as_secs_f64(),
        done.as_secs_f64(),
        after_capacity.dead_lettered,
        cpu_capacity
    ));

    // 2. Latency at half the capacity.
    let chosen = options
        .rate
        .or((scenario.load.rate > 0).then_some(scenario.load.rate));
    let rate = chosen.map_or(capacity / 2.0, |r| r as f64);
    let per_tick = ((rate * 0.05).round() as usize).max(1);
    let phase_from = lock(&sent_stories)?.len();
    let stored_seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let polls = Arc::new(AtomicU64::new(0));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (stored_seen, watching, polls) = (stored_seen.clone(), watching.clone(), polls.clone());
        let node = addrs[0];
        std::thread::spawn(move || -> anyhow::Result<()> {
            let sql = serde_json::json!({
                "sql": "SELECT \"host.name\", \"user.name\" FROM alerts WHERE \"host.name\" LIKE 'atk-%' OR \"user.name\" LIKE 'atk-%'"
            })
            .to_string();
            while watching.load(Ordering::Relaxed) {
                let (status, body) = request(node, "POST", "/v1/query", TOKEN, sql.as_bytes())?;
                let at = Instant::now();
                if status != 200 {
                    bail!(
                        "the alert query answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                let mut seen = lock(&stored_seen)?;
                for token in tokens(&String::from_utf8_lossy(&body)) {
                    seen.entry(token).or_insert(at);
                }
                drop(seen);
                polls.fetch_add(1, Ordering::Relaxed);
                // Each poll is a query over every alert file: polled back to back, they
                // took a core from the service being measured.
                std::thread::sleep(Duration::from_millis(250));
            }
            Ok(())
        })
    };
    let mut syslogs: Vec<TcpStream> = nodes
        .iter()
        .map(|n| TcpStream::connect(n.syslog))
        .collect::<Result<_, _>>()?;
    let phase = Instant::now();
    let mut next = Instant::now();
    let mut tick = 0usize;
    let mut phase_sent = 0u64;
    while phase.elapsed() < Duration::from_secs(seconds) {
        let k = tick % nodes.len();
        let records = take(&stream, per_tick)?;
        phase_sent += records.len() as u64;
        let accepted = send(addrs[k], &mut syslogs[k], records)?;
        lock(&sent_stories)?.extend(accepted);
        tick += 1;
        next += Duration::from_millis(50);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    // A tail that moves event time past the correlation lateness, so the last bursts'
    // windows are evaluated; the tail's own stories are not counted.
    let lateness_ms = scenario.service.correlation_lateness_seconds as i64 * 1000;
    let tail_records = (lateness_ms / scenario.generate.event_ms.max(1)) as usize + 1000;
    let mut left = tail_records;
    while left > 0 {
        let tail = take(&stream, left.min(scenario.load.chunk.max(1)))?;
        left -= tail.len();
        phase_sent += tail.len() as u64;
        send(addrs[0], &mut syslogs[0], tail)?;
    }
    for s in &mut syslogs {
        s.flush()?;
    }
    let total_sent = total_sent + phase_sent;
    let phase_stories: Vec<(Truth, Instant)> = lock(&sent_stories)?[phase_from..].to_vec();
    let wanted_stored: HashSet<String> = phase_stories
        .iter()
        .filter(|(t, _)| t.entity_column)
        .map(|(t, _)| t.token.clone())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let stored = lock(&stored_seen)?.len();
        let delivered = phase_stories
            .iter()
            .filter(|(t, _)| deliveries.lock().is_ok_and(|d| d.contains_key(&t.token)))
            .count();
        if stored >= wanted_stored.len() && delivered >= phase_stories.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    watching.store(false, Ordering::Relaxed);
    watcher
        .join()
        .map_err(|_| anyhow!("the watcher panicked"))??;
    let poll_ms =
        phase.elapsed().as_secs_f64() * 1000.0 / polls.load(Ordering::Relaxed).max(1) as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let stored_at = lock(&stored_seen)?.clone();
    let delivered_at = lock(&deliveries)?.clone();
    let mut to_stored: Vec<Duration> = Vec::new();
    let mut to_webhook: Vec<Duration> = Vec::new();
    // Correlation alerts wait for event time to pass the lateness: apart.
    let mut correlation_to_webhook: Vec<Duration> = Vec::new();
    for (t, accepted) in &phase_stories {
        if let (true, Some(at)) = (t.entity_column, stored_at.get(&t.token)) {
            to_stored.push(at.saturating_duration_since(*accepted));
        }
        if let Some(at) = delivered_at.get(&t.token) {
            let took = at.saturating_duration_since(*accepted);
            if t.kind == "correlation" {
                correlation_to_webhook.push(took);
            } else {
                to_webhook.push(took);
            }
        }
    }
    to_stored.sort();
    to_webhook.sort();
    correlation_to_webhook.sort();
    let correlations = phase_stories
        .iter()
        .filter(|(t, _)| t.kind == "correlation")
        .count();
    let line = |name: &str, v: &[Duration], of: usize| {
        format!(
            "latency accepted -> {name} ({}/{of} stories): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            v.len(),
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            ms(v.last().copied().unwrap_or_default())
        )
    };
    say(format!(
        "latency phase: {phase_sent} records at {:.0} events/s ({}), {} stories",
        per_tick as f64 * 20.0,
        if chosen.is_some() {
            "the rate chosen"
        } else {
            "half of the capacity"
        },
        phase_stories.len()
    ));
    say(line("alert stored", &to_stored, wanted_stored.len())
        + &format!(" (stored alerts polled every {poll_ms:.1} ms)"));
    say(line(
        "webhook delivered",
        &to_webhook,
        phase_stories.len() - correlations,
    ));
    say(line(
        "webhook delivered, correlations",
        &correlation_to_webhook,
        correlations,
    ) + &format!(
        " (raised once event time passes the {} s lateness)",
        scenario.service.correlation_lateness_seconds
    ));

    // 3. Recall, resources, bytes.
    let end = drained(&addrs, total_sent, Duration::from_secs(900))?;
    let truth: Vec<Truth> = lock(&sent_stories)?
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    let alerts = stored_alerts(addrs[0], &truth)?;
    let r = recall(&truth, &alerts);
    report.full_recall = r.missed.is_empty();
    say(format!(
        "recall: {:.1} % of {} stories ({}); {} alerts stored in all",
        r.ratio() * 100.0,
        truth.len(),
        r.summary(),
        end.stored_alerts
    ));
    for t in r.missed.iter().take(10) {
        say(format!("  missed: {t}"));
    }
    let (cpu, rss) = usage_all();
    say(format!(
        "service: {cpu:.1} CPU s in all ({cpu_capacity:.1} in the capacity phase), peak RSS {rss:.0} MiB (largest node)"
    ));
    for line in analyst_queries(addrs[0])? {
        say(line);
    }
    say(disk_line(
        &nodes,
        &cluster,
        end.stored_events,
        "before compaction",
    )?);
    if options.settle_seconds > 0 {
        std::thread::sleep(Duration::from_secs(options.settle_seconds));
        let merges = counters_text(&addrs)
            .map(|t| http::metric(&t, "vedette_store_compaction_merges_total"))
            .unwrap_or(0);
        say(disk_line(
            &nodes,
            &cluster,
            end.stored_events,
            &format!(
                "{} s later, {merges} compaction merges",
                options.settle_seconds
            ),
        )?);
        for line in analyst_queries(addrs[0])? {
            say(format!("after compaction: {line}"));
        }
    }
    drop(nodes);
    Ok(report)
}

/// `/metrics` of every node, one after the other.
fn counters_text(nodes: &[SocketAddr]) -> anyhow::Result<String> {
    let mut text = String::new();
    for addr in nodes {
        let (status, body) = request(*addr, "GET", "/metrics", TOKEN, b"")?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        text.push_str(&String::from_utf8_lossy(&body));
    }
    Ok(text)
}

/// Bytes on disk per stored event now, `when` saying when.
fn disk_line(
    nodes: &[Node],
    cluster: &Cluster,
    stored_events: u64,
    when: &str,
) -> anyhow::Result<String> {
    let stored = stored_events.max(1) as f64;
    Ok(match &cluster.clickhouse {
        None => {
            let events_bytes: u64 = nodes
                .iter()
                .map(|n| disk_bytes(&n.data_dir.join("store/events")))
                .sum();
            let all_bytes: u64 = nodes.iter().map(|n| disk_bytes(&n.data_dir)).sum();
            format!(
                "disk ({when}): {:.1} bytes per stored event in the events table ({events_bytes} bytes, {stored_events} events); {:.1} per event for the whole data folder (bus log included)",
                events_bytes as f64 / stored,
                all_bytes as f64 / stored
            )
        }
        Some(url) => {
            let bytes = clickhouse_bytes(url, &cluster.tag)?;
            format!(
                "disk ({when}): {:.1} bytes per stored event in ClickHouse's events table ({bytes} bytes of active parts, {stored_events} events)",
                bytes as f64 / stored
            )
        }
    })
}

/// Runs the analyst queries of `docs/queries.md` (in the store's dialect, from
/// `GET /v1/query/examples`) once each: one line per query with its time and rows.
fn analyst_queries(node: SocketAddr) -> anyhow::Result<Vec<String>> {
    let (status, body) = request(node, "GET", "/v1/query/examples", TOKEN, b"")?;
    if status != 200 {
        bail!("/v1/query/examples answered {status}");
    }
    let answer: Value = serde_json::from_slice(&body)?;
    let examples = answer
        .get("examples")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for example in examples {
        let (Some(title), Some(sql)) = (
            example.get("title").and_then(Value::as_str),
            example.get("sql").and_then(Value::as_str),
        ) else {
            continue;
        };
        let body = serde_json::json!({ "sql": sql }).to_string();
        let started = Instant::now();
        let (status, rows) = request(node, "POST", "/v1/query", TOKEN, body.as_bytes())?;
        let took = started.elapsed();
        let rows = rows
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        out.push(format!(
            "query \"{title}\": {} in {:.0} ms, {rows} rows",
            if status == 200 {
                "answered".to_string()
            } else {
                format!("status {status}")
            },
            took.as_secs_f64() * 1000.0
        ));
    }
    Ok(out)
}

/// The alerts of the truth's rules around the truth's times, from `GET /v1/alerts`.
fn stored_alerts(node: SocketAddr, truth: &[Truth]) -> anyhow::Result<Vec<Value>> {
    let mut by_rule: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for t in truth {
        let e = by_rule
            .entry(t.rule.as_str())
            .or_insert((t.time_ms, t.time_ms));
        e.0 = e.0.min(t.time_ms);
        e.1 = e.1.max(t.time_ms);
    }
    let mut out = Vec::new();
    for (rule, (from, to)) in by_rule {
        let mut windows = vec![(from - 3_600_000, to + 3_600_000)];
        while let Some((a, b)) = windows.pop() {
            let path = format!(
                "/v1/alerts?rule={}&from={a}&to={b}&limit=1000",
                rule.replace(':', "%3A")
            );
            let (status, body) = request(node, "GET", &path, TOKEN, b"")?;
            if status != 200 {
                bail!(
                    "{path} answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            let answer: Value = serde_json::from_slice(&body)?;
            let alerts = answer
                .get("alerts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if alerts.len() >= 1000 && b - a > 1000 {
                let mid = a + (b - a) / 2;
                windows.push((a, mid));
                windows.push((mid, b));
                continue;
            }
            out.extend(alerts);
        }
    }
    Ok(out)
}

/// Bytes of the active parts of the events table in ClickHouse database `database`.
fn clickhouse_bytes(url: &str, database: &str) -> anyhow::Result<u64> {
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let addr: SocketAddr = host
        .parse()
        .with_context(|| format!("the ClickHouse URL {url} is not http://IP:PORT"))?;
    for column in ["bytes_on_disk", "bytes"] {
        let sql = format!(
            "SELECT sum({column}) FROM system.parts WHERE database = '{database}' AND table = 'events' AND active"
        );
        let (status, body) = request(addr, "POST", "/", "", sql.as_bytes())?;
        if status == 200 {
            return String::from_utf8_lossy(&body)
                .trim()
                .parse()
                .context("ClickHouse's part size");
        }
    }
    bail!("ClickHouse did not answer the part sizes")
}
