//! The error type of `vedette-core`, classified by who is at fault.

use thiserror::Error;

/// Errors raised by core types and shared by the boundary traits.
#[derive(Debug, Error)]
pub enum CoreError {
    /// Input data was malformed; the caller should dead-letter it and go on.
    #[error("bad input: {0}")]
    BadInput(String),
    /// The configuration is invalid.
    #[error("bad config: {0}")]
    BadConfig(String),
    /// A local I/O operation failed.
    #[error("i/o error: {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An external service (broker, database, webhook receiver) failed or refused.
    #[error("{service} failed: {message}")]
    External {
        /// Which service.
        service: String,
        /// What it said.
        message: String,
        /// Whether trying again later may succeed.
        retryable: bool,
    },
    /// An Arrow operation failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A bug in Vedette: an invariant did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// Builds an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
            ),
            Self::External { retryable, .. } => *retryable,
            Self::BadInput(_) | Self::BadConfig(_) | Self::Arrow(_) | Self::Internal(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_by_kind() {
        let timeout = CoreError::io("append", std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(timeout.is_retryable());
        let denied = CoreError::io(
            "open",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert!(!denied.is_retryable());
        assert!(!CoreError::BadInput("x".into()).is_retryable());
        let ext = CoreError::External {
            service: "kafka".into(),
            message: "down".into(),
            retryable: true,
        };
        assert!(ext.is_retryable());
        assert_eq!(ext.to_string(), "kafka failed: down");
    }
}
