//! The error type of `vedette-connectors`.

use thiserror::Error;

/// Errors of transports.
#[derive(Debug, Error)]
pub enum ConnectorError {
    /// A listener could not bind its address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TLS material could not be loaded.
    #[error("tls: {0}")]
    Tls(String),
    /// A local I/O operation failed.
    #[error("i/o error: {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is unusable.
    #[error("bad config: {0}")]
    BadConfig(String),
}

impl ConnectorError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
