//! The sections of the configuration file.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[log]`: how Vedette logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `vedette=debug,info`. Default: `info`.
    /// The environment variable `RUST_LOG`, when set, wins.
    pub level: String,
    /// `text` for people, `json` for log shippers. Default: `text`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl LogConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.level.trim().is_empty() {
            return Err("log.level: must not be empty".into());
        }
        Ok(())
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[http]`: the HTTP API listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address. Default: `127.0.0.1:8080` (loopback only).
    pub addr: SocketAddr,
    /// Largest request body accepted, in bytes. Default: 16 MiB.
    pub max_body_bytes: usize,
    /// Time allowed for one request, in seconds. Default: 30.
    pub request_timeout_secs: u64,
    /// Requests per second allowed to one token (0: no limit). Default: 100.
    pub rate_per_token: f64,
    /// Requests one token may send at once after a quiet spell. Default: 200.
    pub rate_burst: u32,
    /// TLS for the API (rustls). Default: none (plain HTTP, loopback only by default).
    pub tls: Option<HttpTlsConfig>,
}

/// `[http.tls]`: HTTPS for the API, optionally with client certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTlsConfig {
    /// PEM file with the server certificate chain. Required.
    pub cert: PathBuf,
    /// PEM file with the server private key. Required.
    pub key: PathBuf,
    /// PEM file of CA certificates; client certificates signed by one of them are
    /// verified when presented (mutual TLS). Default: none.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// `POST /v1/ingest` only on connections with a verified client certificate (needs
    /// `client_ca`); the other endpoints still take tokens alone. Default: false.
    #[serde(default)]
    pub ingest_requires_client_cert: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_secs: 30,
            rate_per_token: 100.0,
            rate_burst: 200,
            tls: None,
        }
    }
}

impl HttpConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_body_bytes == 0 {
            return Err("http.max_body_bytes: must be greater than 0".into());
        }
        if self.request_timeout_secs == 0 {
            return Err("http.request_timeout_secs: must be greater than 0".into());
        }
        if !(self.rate_per_token >= 0.0 && self.rate_per_token.is_finite()) {
            return Err("http.rate_per_token: must be a number of at least 0".into());
        }
        if let Some(tls) = &self.tls {
            if tls.ingest_requires_client_cert && tls.client_ca.is_none() {
                return Err(
                    "http.tls.ingest_requires_client_cert: set http.tls.client_ca too".into(),
                );
            }
        }
        if self.rate_per_token > 0.0 && self.rate_burst == 0 {
            return Err("http.rate_burst: must be at least 1 when rates are limited".into());
        }
        Ok(())
    }
}

/// Which bus implementation carries batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// The embedded durable log under `data_dir`.
    Embedded,
    /// A Kafka cluster.
    Kafka,
}

/// `[bus]`: the log between ingest and detection/storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// `embedded` or `kafka`. Default: `embedded`.
    pub kind: BusKind,
    /// `[bus.embedded]`: settings of the embedded log.
    pub embedded: EmbeddedBusConfig,
    /// `[bus.kafka]`: settings of the Kafka bus; required when `kind = "kafka"`.
    pub kafka: Option<KafkaConfig>,
    /// Column whose value picks a row's partition, so one entity's events meet one
    /// consumer (baselines and correlations rely on it). Default: `host.name`.
    pub partition_key: String,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            kind: BusKind::Embedded,
            embedded: EmbeddedBusConfig::default(),
            kafka: None,
            partition_key: "host.name".into(),
        }
    }
}

impl BusConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.partition_key.trim().is_empty() {
            return Err("bus.partition_key: must name a column".into());
        }
        self.embedded.validate()?;
        match (self.kind, &self.kafka) {
            (BusKind::Kafka, None) => Err("bus.kafka: required when bus.kind = \"kafka\"".into()),
            (_, Some(kafka)) => kafka.validate(),
            (BusKind::Embedded, None) => Ok(()),
        }
    }
}

/// `[bus.embedded]`: the embedded durable log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedBusConfig {
    /// Milliseconds between fsyncs; 0 syncs every append before acknowledging it
    /// (appends at the same moment share syncs). Default: 0.
    pub fsync_interval_ms: u64,
    /// Partitions per topic created by this log (a topic keeps the count it was created
    /// with). Default: 1. One process reads each consumer group of the embedded log, so
    /// more partitions only cost a copy of every batch, taken apart by partition key;
    /// a large batch is still encoded on every core, cut into consecutive records.
    pub partitions: u32,
    /// Keep records at most this many hours. Default: 168 (7 days).
    pub retention_hours: u64,
    /// Keep at most this many bytes per partition. Default: 10 GiB.
    pub retention_bytes: u64,
    /// Records past `retention_hours` or `retention_bytes` are deleted only once every
    /// consumer group committed them, except past this age, when they go regardless
    /// (and the records a group missed are counted). Default: 720 (30 days).
    pub retention_max_hours: u64,
    /// Size at which a segment file is sealed and the next begun. Default: 128 MiB.
    pub segment_bytes: u64,
    /// MiB of memory for batches just appended, handed to consumers at the tail without
    /// reading and decoding them again; 0 turns it off. Default: 256.
    pub recent_mib: u64,
    /// MiB of records of topic `events` the slowest consumer group (detection, storage)
    /// may be behind before the inputs wait for it (TCP reads pause, HTTP ingest answers
    /// 429); 0 never holds them. Keep it under about a sixth of `recent_mib` (LZ4
    /// stores a batch in a third to a fifth of its memory, as the logs compress) so
    /// that a consumer behind still reads from memory. Default: 32 (about 90,000
    /// events).
    pub max_backlog_mib: u64,
    /// How records are compressed: `lz4` (the default: least CPU), `zstd` (about a
    /// third fewer bytes to write and sync, for about a quarter more CPU in the bus) or
    /// `none`.
    pub compression: BusCompression,
}

impl Default for EmbeddedBusConfig {
    fn default() -> Self {
        Self {
            fsync_interval_ms: 0,
            partitions: 1,
            retention_hours: 168,
            retention_bytes: 10 * 1024 * 1024 * 1024,
            retention_max_hours: 720,
            segment_bytes: 128 * 1024 * 1024,
            recent_mib: 256,
            max_backlog_mib: 32,
            compression: BusCompression::Lz4,
        }
    }
}

impl EmbeddedBusConfig {
    fn validate(&self) -> Result<(), String> {
        if self.partitions == 0 || self.partitions > 1024 {
            return Err("bus.embedded.partitions: must be 1 to 1024".into());
        }
        if self.retention_hours == 0 {
            return Err("bus.embedded.retention_hours: must be at least 1".into());
        }
        if self.retention_max_hours < self.retention_hours {
            return Err(
                "bus.embedded.retention_max_hours: must be at least retention_hours".into(),
            );
        }
        if self.segment_bytes < 1024 * 1024 {
            return Err("bus.embedded.segment_bytes: must be at least 1 MiB".into());
        }
        if self.recent_mib > 1024 * 1024 {
            return Err("bus.embedded.recent_mib: must be at most 1048576 (1 TiB)".into());
        }
        if self.max_backlog_mib > 1024 * 1024 {
            return Err("bus.embedded.max_backlog_mib: must be at most 1048576 (1 TiB)".into());
        }
        Ok(())
    }
}

/// How bus records are compressed: Kafka messages, records of the embedded log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusCompression {
    /// No compression.
    None,
    /// LZ4: fast, the default.
    Lz4,
    /// Zstandard: smaller, more CPU.
    Zstd,
}

/// `[bus.kafka]`: a Kafka cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port`. Required.
    pub brokers: Vec<String>,
    /// Prefix of every topic name. Default: `vedette`.
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// Consumer group shared by every `vedette` process of a cluster. Default: `vedette`.
    #[serde(default = "default_group")]
    pub group: String,
    /// Partitions of a topic Vedette creates. Default: 12.
    #[serde(default = "default_kafka_partitions")]
    pub partitions: u32,
    /// Replicas of a topic Vedette creates. Default: 3 (set 1 for a one-broker test).
    #[serde(default = "default_replication")]
    pub replication_factor: u16,
    /// `retention.ms` of a topic Vedette creates, in hours. Default: 168 (7 days).
    #[serde(default = "default_kafka_retention_hours")]
    pub retention_hours: u64,
    /// Message compression. Default: `lz4`.
    #[serde(default = "default_compression")]
    pub compression: BusCompression,
    /// Largest message sent; larger batches are split by rows. Keep it under the
    /// broker's `message.max.bytes`. Default: 1,000,000.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Extra librdkafka properties (e.g. `security.protocol`). Default: none.
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
    /// A member rejoins its group when a partition it does not own keeps records
    /// waiting and its commit still this long while its own partitions move: the
    /// partition's member is gone and the broker did not rebalance. 0 turns the watch
    /// off. Default: 30.
    #[serde(default = "default_stall_rejoin_seconds")]
    pub stall_rejoin_seconds: u64,
    /// When the detection stage takes over a partition another process read, it
    /// reads back this many seconds of what the group processed of it to rebuild
    /// correlation windows and baselines (alerts of the replay are not raised again).
    /// 0 turns it off. Default: 3600.
    #[serde(default = "default_rebuild_seconds")]
    pub rebuild_seconds: u64,
    /// Events read back per partition at most (the newest; they are held in memory
    /// while replayed). Default: 200,000.
    #[serde(default = "default_rebuild_max_events")]
    pub rebuild_max_events: usize,
}

fn default_rebuild_seconds() -> u64 {
    3600
}

fn default_rebuild_max_events() -> usize {
    200_000
}

fn default_stall_rejoin_seconds() -> u64 {
    30
}

fn default_kafka_partitions() -> u32 {
    12
}

fn default_replication() -> u16 {
    3
}

fn default_kafka_retention_hours() -> u64 {
    168
}

fn default_compression() -> BusCompression {
    BusCompression::Lz4
}

fn default_max_message_bytes() -> usize {
    1_000_000
}

fn default_topic_prefix() -> String {
    "vedette".into()
}

fn default_group() -> String {
    "vedette".into()
}

impl KafkaConfig {
    /// A configuration for these brokers, every other field at its default.
    pub fn new(brokers: Vec<String>) -> Self {
        Self {
            brokers,
            topic_prefix: default_topic_prefix(),
            group: default_group(),
            partitions: default_kafka_partitions(),
            replication_factor: default_replication(),
            retention_hours: default_kafka_retention_hours(),
            compression: default_compression(),
            max_message_bytes: default_max_message_bytes(),
            properties: Default::default(),
            stall_rejoin_seconds: default_stall_rejoin_seconds(),
            rebuild_seconds: default_rebuild_seconds(),
            rebuild_max_events: default_rebuild_max_events(),
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.brokers.is_empty() {
            return Err("bus.kafka.brokers: must name at least one broker".into());
        }
        for broker in &self.brokers {
            let ok = broker
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(format!("bus.kafka.brokers: `{broker}` is not host:port"));
            }
        }
        if self.group.is_empty() || self.topic_prefix.is_empty() {
            return Err("bus.kafka: group and topic_prefix must not be empty".into());
        }
        if self.partitions == 0 || self.replication_factor == 0 {
            return Err("bus.kafka: partitions and replication_factor must be at least 1".into());
        }
        if self.max_message_bytes < 64 * 1024 {
            return Err("bus.kafka.max_message_bytes: must be at least 65536".into());
        }
        Ok(())
    }
}

/// Which store implementation persists events and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Parquet files under `data_dir`, queried with DataFusion.
    Parquet,
    /// A ClickHouse server.
    Clickhouse,
}

/// `[store]`: where events, alerts and dead letters are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `parquet` or `clickhouse`. Default: `parquet`.
    pub kind: StoreKind,
    /// `[store.parquet]`: settings of the Parquet store.
    pub parquet: ParquetConfig,
    /// `[store.clickhouse]`: settings of the ClickHouse store; required when
    /// `kind = "clickhouse"`.
    pub clickhouse: Option<ClickHouseConfig>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Parquet,
            parquet: ParquetConfig::default(),
            clickhouse: None,
        }
    }
}

impl StoreConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.parquet.retention_days == 0 {
            return Err("store.parquet.retention_days: must be at least 1".into());
        }
        if !(1..=22).contains(&self.parquet.zstd_level) {
            return Err("store.parquet.zstd_level: must be 1 to 22".into());
        }
        match (self.kind, &self.clickhouse) {
            (StoreKind::Clickhouse, None) => {
                Err("store.clickhouse: required when store.kind = \"clickhouse\"".into())
            }
            (_, Some(ch)) => ch.validate(),
            (StoreKind::Parquet, None) => Ok(()),
        }
    }
}

/// `[store.parquet]`: the embedded Parquet store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParquetConfig {
    /// Days of events kept before their partitions are deleted. Default: 30.
    pub retention_days: u32,
    /// Seconds without a new file after which a folder has all its small files merged,
    /// whatever their size. Default: 300.
    pub merge_quiet_seconds: u64,
    /// zstd level of merged files, 1 to 22: higher stores fewer bytes for more CPU per
    /// merge. Default: 3.
    pub zstd_level: i32,
}

impl Default for ParquetConfig {
    fn default() -> Self {
        Self {
            retention_days: 30,
            merge_quiet_seconds: 300,
            zstd_level: 3,
        }
    }
}

/// `[store.clickhouse]`: a ClickHouse server over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP(S) URL of the server, e.g. `http://127.0.0.1:8123`. Required.
    pub url: String,
    /// Database holding Vedette's tables. Default: `vedette`.
    #[serde(default = "default_database")]
    pub database: String,
    /// User name. Default: `default`.
    #[serde(default = "default_user")]
    pub user: String,
    /// Name of the environment variable holding the password (never the password
    /// itself). Default: none (no password).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Days kept in each table (TTL on current servers, partitions dropped on old
    /// ones). Default: 30.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Rows grouped into one insert at most. Default: 50000.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Bytes (Arrow, in memory) grouped into one insert at most. Default: 16 MiB.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// Milliseconds a batch waits for others before its insert. Default: 1000.
    #[serde(default = "default_batch_ms")]
    pub batch_ms: u64,
}

impl ClickHouseConfig {
    /// Settings for a server at `url`, defaults for everything else.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            database: default_database(),
            user: default_user(),
            password_env: None,
            retention_days: default_retention_days(),
            batch_rows: default_batch_rows(),
            batch_bytes: default_batch_bytes(),
            batch_ms: default_batch_ms(),
        }
    }
}

fn default_retention_days() -> u32 {
    30
}

fn default_batch_rows() -> usize {
    50_000
}

fn default_batch_bytes() -> usize {
    16 << 20
}

fn default_batch_ms() -> u64 {
    1000
}

fn default_database() -> String {
    "vedette".into()
}

fn default_user() -> String {
    "default".into()
}

impl ClickHouseConfig {
    fn validate(&self) -> Result<(), String> {
        let rest = self
            .url
            .strip_prefix("http://")
            .or_else(|| self.url.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() => {}
            _ => {
                return Err(format!(
                    "store.clickhouse.url: `{}` is not an http(s) URL",
                    self.url
                ))
            }
        }
        let valid_name =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if self.retention_days == 0 {
            return Err("store.clickhouse.retention_days: must be at least 1".into());
        }
        if self.batch_rows == 0 || self.batch_bytes == 0 {
            return Err("store.clickhouse.batch_rows and batch_bytes: must be at least 1".into());
        }
        if !valid_name(&self.database) {
            return Err(format!(
                "store.clickhouse.database: `{}` must be letters, digits and _",
                self.database
            ));
        }
        Ok(())
    }
}

/// `[rules]`: which rule sets are loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Load the rules bundled with Vedette (`rules/`). Default: true.
    pub bundled: bool,
    /// Extra folders of Sigma rules (e.g. a SigmaHQ checkout). Default: none.
    pub sigma_dirs: Vec<PathBuf>,
    /// Extra folders of YARA rules. Default: none.
    pub yara_dirs: Vec<PathBuf>,
    /// Extra folders of baseline definitions. Default: none.
    pub baseline_dirs: Vec<PathBuf>,
    /// Event fields YARA scans (a column or an original field name), with the base64
    /// and `-EncodedCommand` content decoded from them. Default: `payload`,
    /// `process.command_line`, `ScriptBlockText`.
    pub yara_fields: Vec<String>,
    /// Bytes of one value YARA scans at most. Default: 1048576.
    pub yara_max_scan_bytes: usize,
    /// How often the Sigma, YARA and baseline folders are checked for changes, in
    /// milliseconds; a change reloads them (Sigma rules validated first). 0 turns
    /// watching off. Default: 2000.
    pub reload_poll_ms: u64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            bundled: true,
            sigma_dirs: Vec::new(),
            yara_dirs: Vec::new(),
            baseline_dirs: Vec::new(),
            yara_fields: vec![
                "payload".into(),
                "process.command_line".into(),
                "ScriptBlockText".into(),
            ],
            yara_max_scan_bytes: 1 << 20,
            reload_poll_ms: 2000,
        }
    }
}
