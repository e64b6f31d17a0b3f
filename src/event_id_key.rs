//! The secret key of event ids for `vedette run`: from the environment variable the
//! config names (`ingest.id_key_env`, the same on every node of a cluster), else, on one
//! machine (the embedded bus), a key made at first start and kept in the data folder.
//! A Kafka deployment without one falls back to the public key, with a warning.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use vedette_core::config::{BusKind, Config};

/// Name of the key file in the data folder.
const KEY_FILE: &str = "event-id.key";

/// Makes this process's event ids under the deployment's secret key.
pub(crate) fn use_event_id_key(config: &Config, data_dir: &Path) -> anyhow::Result<()> {
    let key = if let Some(var) = &config.ingest.id_key_env {
        std::env::var(var).map_err(|_| {
            anyhow::anyhow!("ingest.id_key_env names {var}, which is not set in the environment")
        })?
    } else if config.bus.kind == BusKind::Embedded {
        local_key(&data_dir.join(KEY_FILE))?
    } else {
        tracing::warn!(
            "ingest.id_key_env is not set: event ids use the public key, so crafted records \
             could share an id (and be stored as one); set the same secret key on every node"
        );
        return Ok(());
    };
    vedette_core::id::use_secret_key(&key).map_err(|e| anyhow::anyhow!("event id key: {e}"))
}

/// The key kept in `path`, made (128 random bits, owner-only) when there is none.
fn local_key(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text.trim().to_string()),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let made = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match made {
        Ok(mut file) => {
            file.write_all(key.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(key)
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => std::fs::read_to_string(path)
            .map(|t| t.trim().to_string())
            .with_context(|| format!("cannot read {}", path.display())),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_local_key_is_made_once_owner_only_and_kept() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(KEY_FILE);
        let first = local_key(&path)?;
        assert_eq!(first.len(), 32);
        assert!(first.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(local_key(&path)?, first);
        let mode = std::fs::metadata(&path)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = local_key(&tempfile::tempdir()?.path().join(KEY_FILE))?;
        assert_ne!(other, first);
        Ok(())
    }
}
