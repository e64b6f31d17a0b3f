//! The `vedette run` processes a run measures: their config, start and end.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::http::{free_addr, request};

/// Admin token the harness starts the services with.
pub const TOKEN: &str = "vedette-bench-admin-token-0123456789abcdef";
/// Signing secret of the harness's webhook receiver.
pub const WEBHOOK_SECRET: &str = "vedette-bench-webhook-secret-0123456789";

/// The cluster a run uses, if any: Kafka brokers and a ClickHouse URL.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Kafka bootstrap brokers, for the Kafka bus.
    pub kafka: Option<String>,
    /// ClickHouse HTTP URL, for the ClickHouse store.
    pub clickhouse: Option<String>,
    /// A tag naming this run's topics, group and database.
    pub tag: String,
}

/// One running node.
pub struct Node {
    child: Child,
    /// Its HTTP API.
    pub http: SocketAddr,
    /// Its syslog TCP input.
    pub syslog: SocketAddr,
    /// Its data folder.
    pub data_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Node {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn toml_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The config of one node.
pub fn config(
    data_dir: &Path,
    syslog: SocketAddr,
    webhook: SocketAddr,
    sigma_dirs: &[PathBuf],
    cluster: &Cluster,
    lateness_seconds: u64,
) -> String {
    let dirs: Vec<String> = sigma_dirs
        .iter()
        .map(|d| toml_str(&d.display().to_string()))
        .collect();
    let mut text = format!(
        "data_dir = {}\n[log]\nlevel = \"warn\"\n[http]\nrate_per_token = 0.0\n\
         [ingest.syslog]\nudp_addr = \"127.0.0.1:0\"\ntcp_addr = \"{syslog}\"\n\
         [rules]\nsigma_dirs = [{}]\n[alerts.correlation]\nlateness_seconds = {lateness_seconds}\n\
         [[responders]]\nname = \"bench\"\nurl = \"http://{webhook}/hook\"\nsecret_env = \"VEDETTE_BENCH_WEBHOOK_SECRET\"\ninsecure_http = true\n",
        toml_str(&data_dir.display().to_string()),
        dirs.join(", ")
    );
    match &cluster.kafka {
        Some(brokers) => text.push_str(&format!(
            "[bus]\nkind = \"kafka\"\n[bus.kafka]\nbrokers = [{}]\ntopic_prefix = \"{tag}\"\ngroup = \"{tag}\"\npartitions = 4\nreplication_factor = 1\n",
            toml_str(brokers),
            tag = cluster.tag
        )),
        None => text.push_str("[bus.embedded]\nretention_max_hours = 87600\n"),
    }
    match &cluster.clickhouse {
        Some(url) => text.push_str(&format!(
            "[store]\nkind = \"clickhouse\"\n[store.clickhouse]\nurl = {}\ndatabase = \"{}\"\nretention_days = 3650\n",
            toml_str(url),
            cluster.tag
        )),
        // The stream's event time starts in the past: keep every day it writes.
        None => text.push_str("[store.parquet]\nretention_days = 3650\n"),
    }
    text
}

/// Starts one node and waits until it is healthy.
pub fn start(
    vedette: &Path,
    webhook: SocketAddr,
    sigma_dirs: &[PathBuf],
    cluster: &Cluster,
    lateness_seconds: u64,
    cpus: Option<&str>,
) -> anyhow::Result<Node> {
    let dir = tempfile::tempdir()?;
    let (http, syslog) = (free_addr()?, free_addr()?);
    let data_dir = dir.path().join("data");
    let config_path = dir.path().join("vedette.toml");
    std::fs::write(
        &config_path,
        config(
            &data_dir,
            syslog,
            webhook,
            sigma_dirs,
            cluster,
            lateness_seconds,
        ),
    )?;
    let mut command = match cpus {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.args(["-c", list]).arg(vedette);
            c
        }
        None => Command::new(vedette),
    };
    let child = command
        .args(["run", "--config"])
        .arg(&config_path)
        .args(["--http-addr", &http.to_string()])
        .env("VEDETTE_ADMIN_TOKEN", TOKEN)
        .env("VEDETTE_BENCH_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", vedette.display()))?;
    let node = Node {
        child,
        http,
        syslog,
        data_dir,
        _dir: dir,
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if let Ok((200, _)) = request(http, "GET", "/ready", TOKEN, b"") {
            return Ok(node);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("vedette did not become ready within 120 s")
}

/// Bytes of the files under `path` (0 when it does not exist).
pub fn disk_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}
