//! Vedette's configuration: one TOML file, every field optional with a documented
//! default, the defaults giving the embedded single-machine mode.
//!
//! Parsing rejects unknown keys (naming the key, line and column); [`Config::validate`]
//! is a pure check of values, separate from anything that does I/O.

mod alerts;
mod ingest;
mod responders;
mod sections;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

pub use alerts::{
    AlertsConfig, BaselinesConfig, CorrelationConfig, DedupConfig, RiskConfig, SilenceConfig,
};
pub use ingest::{FileInputConfig, HttpIngestConfig, IngestConfig, SyslogConfig, SyslogTlsConfig};
pub use responders::{PayloadTemplate, ResponderConfig};
pub use sections::{
    BusCompression, BusConfig, BusKind, ClickHouseConfig, EmbeddedBusConfig, HttpConfig,
    HttpTlsConfig, KafkaConfig, LogConfig, LogFormat, ParquetConfig, RulesConfig, StoreConfig,
    StoreKind,
};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Folder holding all local state (embedded log, Parquet store, tokens).
    /// Default: `./vedette-data`.
    pub data_dir: PathBuf,
    /// Logging. Default: `info`, text.
    pub log: LogConfig,
    /// The HTTP API listener. Default: `127.0.0.1:8080`.
    pub http: HttpConfig,
    /// The bus between ingest and detection. Default: the embedded log.
    pub bus: BusConfig,
    /// Where events and alerts are stored. Default: Parquet under `data_dir`.
    pub store: StoreConfig,
    /// Which rules are loaded. Default: the bundled rules only.
    pub rules: RulesConfig,
    /// Inputs, batching and limits. Default: syslog on 127.0.0.1:5514 (UDP and TCP)
    /// and HTTP ingest.
    pub ingest: IngestConfig,
    /// Dedup, entity risk and silent sources (`[alerts]`). Default: all on.
    pub alerts: AlertsConfig,
    /// Webhooks that receive alerts (`[[responders]]`). Default: none.
    pub responders: Vec<ResponderConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./vedette-data"),
            log: LogConfig::default(),
            http: HttpConfig::default(),
            bus: BusConfig::default(),
            store: StoreConfig::default(),
            rules: RulesConfig::default(),
            ingest: IngestConfig::default(),
            alerts: AlertsConfig::default(),
            responders: Vec::new(),
        }
    }
}

impl Config {
    /// Parses a configuration from TOML text and validates it. `origin` names the text
    /// in error messages (usually the file path).
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, CoreError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| CoreError::BadConfig(format!("{origin}: {}", e.to_string().trim_end())))?;
        config
            .validate()
            .map_err(|e| CoreError::BadConfig(format!("{origin}: {e}")))?;
        Ok(config)
    }

    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, CoreError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CoreError::io(format!("reading config {}", path.display()), e))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The effective configuration as TOML, every default spelled out.
    pub fn to_toml(&self) -> Result<String, CoreError> {
        toml::to_string(self).map_err(|e| CoreError::Internal(format!("config to toml: {e}")))
    }

    /// Checks values that parsing cannot: consistency between sections, ranges.
    /// Returns the first problem found, naming its key.
    pub fn validate(&self) -> Result<(), String> {
        if self.data_dir.as_os_str().is_empty() {
            return Err("data_dir: must not be empty".into());
        }
        self.log.validate()?;
        self.http.validate()?;
        self.bus.validate()?;
        self.store.validate()?;
        self.ingest.validate()?;
        self.alerts.validate()?;
        if self.rules.yara_max_scan_bytes == 0 {
            return Err("rules.yara_max_scan_bytes: must be at least 1".into());
        }
        responders::validate_all(&self.responders)?;
        Ok(())
    }

    /// The HTTP listen address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.addr
    }
}

#[cfg(test)]
mod tests;
