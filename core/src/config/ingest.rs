//! `[ingest]`: how raw input becomes event batches, and the inputs that feed it.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[ingest]`: batching, per-record limits and inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Tenant of input that names none. Default: `default`.
    pub tenant: String,
    /// A batch is flushed at this many events and dead letters. Default: 8192.
    pub batch_rows: usize,
    /// A batch is flushed once its oldest event waited this long, in ms. Default: 250.
    pub batch_age_ms: u64,
    /// A batch is flushed once its events and dead letters hold this many bytes (their
    /// values, as [`crate::event::EventBatchBuilder::data_bytes`] counts them), so a
    /// stream of large records stays bounded in memory. Default: 64 MiB.
    pub batch_bytes: usize,
    /// Largest record in bytes; longer ones are dead-lettered. Default: 1 MiB.
    pub max_record_bytes: usize,
    /// Most fields kept per event. Default: 1024.
    pub max_fields: usize,
    /// Deepest JSON nesting accepted. Default: 32.
    pub max_depth: usize,
    /// `[ingest.syslog]`: syslog listeners.
    pub syslog: SyslogConfig,
    /// `[ingest.http]`: `POST /v1/ingest`.
    pub http: HttpIngestConfig,
    /// `[[ingest.files]]`: files read once or followed. Default: none.
    pub files: Vec<FileInputConfig>,
    /// Environment variable holding the secret key of event ids (32 hex digits), the
    /// same on every node that ingests; without it ids are made under a public key and
    /// a sender who crafts records could make two share an id. Default: none.
    pub id_key_env: Option<String>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            tenant: "default".into(),
            batch_rows: 8192,
            batch_age_ms: 250,
            batch_bytes: 64 << 20,
            max_record_bytes: 1024 * 1024,
            max_fields: 1024,
            max_depth: 32,
            syslog: SyslogConfig::default(),
            http: HttpIngestConfig::default(),
            files: Vec::new(),
            id_key_env: None,
        }
    }
}

impl IngestConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.tenant.is_empty() {
            return Err("ingest.tenant: must not be empty".into());
        }
        if self.batch_rows == 0 || self.batch_age_ms == 0 || self.batch_bytes == 0 {
            return Err(
                "ingest.batch_rows, ingest.batch_age_ms and ingest.batch_bytes: must be greater \
                 than 0"
                    .into(),
            );
        }
        if self.max_record_bytes < 1024 || self.max_fields == 0 || self.max_depth == 0 {
            return Err(
                "ingest.max_record_bytes (at least 1024), max_fields and max_depth: too small"
                    .into(),
            );
        }
        self.syslog.validate()?;
        if self.http.max_records == 0 || self.http.max_decompressed_bytes == 0 {
            return Err(
                "ingest.http.max_records and max_decompressed_bytes: must be greater than 0".into(),
            );
        }
        if self
            .id_key_env
            .as_ref()
            .is_some_and(|v| v.trim().is_empty())
        {
            return Err("ingest.id_key_env: name the environment variable holding the key".into());
        }
        for (i, f) in self.files.iter().enumerate() {
            if f.paths.is_empty() {
                return Err(format!(
                    "ingest.files[{i}].paths: must name at least one path or glob"
                ));
            }
        }
        Ok(())
    }
}

/// `[ingest.syslog]`: syslog over UDP, TCP and TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    /// Listen for syslog over UDP. Default: true.
    pub udp: bool,
    /// UDP listen address. Default: `127.0.0.1:5514`.
    pub udp_addr: SocketAddr,
    /// Listen for syslog over TCP (newline or octet-counted framing). Default: true.
    pub tcp: bool,
    /// TCP listen address. Default: `127.0.0.1:5514`.
    pub tcp_addr: SocketAddr,
    /// `[ingest.syslog.tls]`: syslog over TLS (RFC 5425); absent disables it.
    pub tls: Option<SyslogTlsConfig>,
    /// Input format of syslog messages (see `vedette parse --help`). Default: `syslog`.
    pub format: String,
    /// Most TCP/TLS connections at once. Default: 1024.
    pub max_connections: usize,
    /// Largest syslog message; longer ones are dead-lettered. Default: 64 KiB.
    pub max_message_bytes: usize,
    /// A TCP/TLS connection idle this long, in seconds, is closed. Default: 300.
    pub idle_timeout_secs: u64,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            udp: true,
            udp_addr: SocketAddr::from(([127, 0, 0, 1], 5514)),
            tcp: true,
            tcp_addr: SocketAddr::from(([127, 0, 0, 1], 5514)),
            tls: None,
            format: "syslog".into(),
            max_connections: 1024,
            max_message_bytes: 64 * 1024,
            idle_timeout_secs: 300,
        }
    }
}

impl SyslogConfig {
    fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 || self.max_message_bytes < 480 || self.idle_timeout_secs == 0
        {
            return Err(
                "ingest.syslog: max_connections and idle_timeout_secs must be > 0, max_message_bytes at least 480".into(),
            );
        }
        Ok(())
    }
}

/// `[ingest.syslog.tls]`: syslog over TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTlsConfig {
    /// Listen address. Required.
    pub addr: SocketAddr,
    /// PEM file with the server certificate chain. Required.
    pub cert: PathBuf,
    /// PEM file with the server private key. Required.
    pub key: PathBuf,
    /// PEM file of CA certificates; when set, clients must present a certificate signed
    /// by one of them (mutual TLS). Default: none (any client).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// `[ingest.http]`: the `POST /v1/ingest` endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpIngestConfig {
    /// Largest body after decompression, in bytes. Default: 64 MiB.
    pub max_decompressed_bytes: usize,
    /// Most records (lines, events) in one request; a larger body is refused whole
    /// with 413. Default: 100000.
    pub max_records: usize,
}

impl Default for HttpIngestConfig {
    fn default() -> Self {
        Self {
            max_decompressed_bytes: 64 * 1024 * 1024,
            max_records: 100_000,
        }
    }
}

/// `[[ingest.files]]`: one file input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInputConfig {
    /// Paths or glob patterns (`/var/log/*.log`). Required.
    pub paths: Vec<String>,
    /// Input format. Default: `auto`.
    #[serde(default = "default_auto")]
    pub format: String,
    /// Keep reading what is appended (tail), following rotation, with positions kept
    /// under the data folder; false reads each file once. Default: true.
    #[serde(default = "default_true")]
    pub follow: bool,
    /// Tenant of these events. Default: `[ingest] tenant`.
    #[serde(default)]
    pub tenant: Option<String>,
}

fn default_auto() -> String {
    "auto".into()
}

fn default_true() -> bool {
    true
}
