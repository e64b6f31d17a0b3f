//! Errors of the detection crate.

use std::path::PathBuf;

/// What can go wrong while loading or compiling detection content.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A rule or map file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A log-source map or pipeline file is not valid.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which file or section.
        what: String,
        /// Why.
        reason: String,
    },
    /// A baseline definition or checkpoint is not valid.
    #[error("baseline: {0}")]
    Baseline(String),
    /// A batch does not have the event schema.
    #[error("batch does not have the event schema: {0}")]
    Schema(String),
    /// The YARA scan threads could not start or did not answer.
    #[error("yara: {0}")]
    Yara(String),
}
