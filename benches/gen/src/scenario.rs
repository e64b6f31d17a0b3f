//! Scenario files (`benches/scenarios/*.toml`): the stream to generate, the service
//! setup to run it against, and the load to apply.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::stream::Mix;
use crate::world::World;

/// A whole scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name, as reports show it.
    pub name: String,
    /// What it measures, in a sentence.
    #[serde(default)]
    pub description: String,
    /// The stream.
    #[serde(default)]
    pub generate: Generate,
    /// The service setup.
    #[serde(default)]
    pub service: ServiceSetup,
    /// The load.
    #[serde(default)]
    pub load: Load,
}

/// The stream's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// Seed of the generator.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Windows hosts.
    #[serde(default = "default_windows_hosts")]
    pub windows_hosts: u32,
    /// Linux hosts.
    #[serde(default = "default_linux_hosts")]
    pub linux_hosts: u32,
    /// User accounts.
    #[serde(default = "default_users")]
    pub users: u32,
    /// Event time of the first event: RFC 3339, or `now-<days>d` (whole minutes before
    /// the start of the run, so that the stream reaches the present and the analyst
    /// queries over "the last 24 hours" find events).
    #[serde(default = "default_start")]
    pub start: String,
    /// Event time between consecutive events, milliseconds.
    #[serde(default = "default_event_ms")]
    pub event_ms: i64,
    /// One attack story every this many events (0: none).
    #[serde(default = "default_attack_every")]
    pub attack_every: u64,
    /// The benign mix.
    #[serde(default)]
    pub mix: Mix,
}

fn default_seed() -> u64 {
    42
}
fn default_windows_hosts() -> u32 {
    2000
}
fn default_linux_hosts() -> u32 {
    300
}
fn default_users() -> u32 {
    1500
}
fn default_start() -> String {
    "2026-10-01T00:00:00Z".into()
}
fn default_event_ms() -> i64 {
    5000
}
fn default_attack_every() -> u64 {
    2000
}

impl Default for Generate {
    fn default() -> Self {
        Self {
            seed: default_seed(),
            windows_hosts: default_windows_hosts(),
            linux_hosts: default_linux_hosts(),
            users: default_users(),
            start: default_start(),
            event_ms: default_event_ms(),
            attack_every: default_attack_every(),
            mix: Mix::default(),
        }
    }
}

impl Generate {
    /// The estate and clock these settings describe.
    pub fn world(&self) -> anyhow::Result<World> {
        let start_ms = match self
            .start
            .strip_prefix("now-")
            .and_then(|d| d.strip_suffix('d'))
        {
            Some(days) => {
                let days: i64 = days
                    .parse()
                    .with_context(|| format!("generate.start `{}`: now-<days>d", self.start))?;
                let now = chrono::Utc::now().timestamp_millis();
                // Whole minutes, so runs started within a minute share their clock.
                now - now.rem_euclid(60_000) - days * 86_400_000
            }
            None => chrono::DateTime::parse_from_rfc3339(&self.start)
                .with_context(|| {
                    format!(
                        "generate.start `{}` is not RFC 3339 or now-<days>d",
                        self.start
                    )
                })?
                .timestamp_millis(),
        };
        anyhow::ensure!(self.event_ms > 0, "generate.event_ms must be positive");
        anyhow::ensure!(
            self.windows_hosts > 0,
            "generate.windows_hosts must be positive"
        );
        Ok(World {
            windows_hosts: self.windows_hosts,
            linux_hosts: self.linux_hosts.max(1),
            users: self.users.max(1),
            start_ms,
            event_ms: self.event_ms,
        })
    }
}

/// Where the service keeps its bus and store, and which rules it loads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSetup {
    /// `embedded` or `kafka` (brokers from `--kafka` or `VEDETTE_KAFKA_BROKERS`).
    #[serde(default = "default_bus")]
    pub bus: String,
    /// `parquet` or `clickhouse` (URL from `--clickhouse` or `VEDETTE_CLICKHOUSE_URL`).
    #[serde(default = "default_store")]
    pub store: String,
    /// Vedette processes sharing the work (more than one needs Kafka).
    #[serde(default = "default_nodes")]
    pub nodes: usize,
    /// Extra Sigma rule folders; `corpora:` at the start means under `VEDETTE_CORPORA`,
    /// a relative path is from the repository root.
    #[serde(default)]
    pub sigma_dirs: Vec<String>,
    /// `[alerts.correlation] lateness_seconds` of the nodes. The stream packs hours of
    /// event time into each chunk and senders and bus partitions interleave chunks, so
    /// the lateness must span several chunks' event time (default a day).
    #[serde(default = "default_lateness")]
    pub correlation_lateness_seconds: u64,
}

fn default_lateness() -> u64 {
    86_400
}

fn default_bus() -> String {
    "embedded".into()
}
fn default_store() -> String {
    "parquet".into()
}
fn default_nodes() -> usize {
    1
}

impl Default for ServiceSetup {
    fn default() -> Self {
        Self {
            bus: default_bus(),
            store: default_store(),
            nodes: default_nodes(),
            sigma_dirs: vec!["benches/scenarios/rules".into()],
            correlation_lateness_seconds: default_lateness(),
        }
    }
}

impl ServiceSetup {
    /// The Sigma folders as paths, checked to exist.
    pub fn sigma_paths(&self, repo: &Path) -> anyhow::Result<Vec<PathBuf>> {
        self.sigma_dirs
            .iter()
            .map(|d| {
                let path = match d.strip_prefix("corpora:") {
                    Some(rest) => corpora()?.join(rest),
                    None => repo.join(d),
                };
                anyhow::ensure!(
                    path.is_dir(),
                    "the Sigma folder {} does not exist{}",
                    path.display(),
                    if d.starts_with("corpora:") {
                        " (set VEDETTE_CORPORA to the corpora folder; its README says where they come from)"
                    } else {
                        ""
                    }
                );
                Ok(path)
            })
            .collect()
    }
}

/// The test corpora folder: `VEDETTE_CORPORA`, by default `../shared/corpora` from the
/// repository root.
pub fn corpora() -> anyhow::Result<PathBuf> {
    match std::env::var_os("VEDETTE_CORPORA") {
        Some(p) => Ok(PathBuf::from(p)),
        None => Ok(repo_root()?.join("../shared/corpora")),
    }
}

/// The repository root (where the workspace `Cargo.toml` is), from the current folder up.
pub fn repo_root() -> anyhow::Result<PathBuf> {
    let mut dir = std::env::current_dir()?;
    loop {
        if dir.join("Cargo.toml").is_file() && dir.join("benches/scenarios").is_dir() {
            return Ok(dir);
        }
        if !dir.pop() {
            anyhow::bail!(
                "run vedette-bench from inside the repository (no benches/scenarios above)"
            );
        }
    }
}

/// The load a run applies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Seconds of each phase (capacity, then latency at half of it).
    #[serde(default = "default_seconds")]
    pub seconds: u64,
    /// Concurrent senders; each has an HTTP agent and a syslog TCP connection.
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// Records per chunk a sender takes (split per format into requests).
    #[serde(default = "default_chunk")]
    pub chunk: usize,
    /// Events per second of the latency phase; 0: half the capacity measured.
    #[serde(default)]
    pub rate: u64,
}

fn default_seconds() -> u64 {
    20
}
fn default_connections() -> usize {
    4
}
fn default_chunk() -> usize {
    1000
}

impl Default for Load {
    fn default() -> Self {
        Self {
            seconds: default_seconds(),
            connections: default_connections(),
            chunk: default_chunk(),
            rate: 0,
        }
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the scenario {}", path.display()))?;
        let scenario: Scenario = toml::from_str(&text)
            .with_context(|| format!("the scenario {} is not valid", path.display()))?;
        scenario.generate.world()?;
        anyhow::ensure!(
            matches!(scenario.service.bus.as_str(), "embedded" | "kafka"),
            "service.bus must be `embedded` or `kafka`"
        );
        anyhow::ensure!(
            matches!(scenario.service.store.as_str(), "parquet" | "clickhouse"),
            "service.store must be `parquet` or `clickhouse`"
        );
        anyhow::ensure!(
            scenario.service.nodes == 1 || scenario.service.bus == "kafka",
            "several nodes need the Kafka bus"
        );
        Ok(scenario)
    }
}
