//! Rule data bundled into the binary from `rules/`.

/// The Sigma log-source routing map (`rules/logsources/sigma.yml`).
pub(crate) const SIGMA_LOGSOURCES: &str = include_str!("../rules/logsources/sigma.yml");
