//! `vedette config check FILE`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use vedette_core::config::Config;

/// Validates `file` and prints the effective configuration, defaults spelled out.
pub(crate) fn check(file: &Path) -> anyhow::Result<()> {
    let config = Config::load(file)?;
    let text = config.to_toml()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "# {}: valid; effective configuration:", file.display())
        .and_then(|()| out.write_all(text.as_bytes()))
        .context("writing to stdout")?;
    Ok(())
}
