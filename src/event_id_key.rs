//! The secret key of event ids for `vedette run`: from the environment variable the
//! config names (`ingest.id_key_env`, the same on every node of a cluster), else, on one
//! machine (the embedded bus), a key made at first start and kept in the data folder.
//! A Kafka deployment without one falls back to the public key, with a warning.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use vedette_core::config::{BusKind, Config};

/// Name of the key file in the data folder.
const KEY_FILE: &str = "event-id.key";

/// Makes this process's event ids under the deployment's secret key.
pub(crate) fn use_event_id_key(config: &Config, data_dir: &Path) -> anyhow::Result<()> {
    if let Some(var) = &config.ingest.id_key_env {
        let key = std::env::var(var).map_err(|_| {
            anyhow::anyhow!("ingest.id_key_env names {var}, which is not set in the environment")
        })?;
        vedette_core::id::use_secret_key(&key)
            .map_err(|e| anyhow::anyhow!("ingest.id_key_env ({var}): {e}"))?;
        tracing::info!(source = %var, "event ids under the key of the environment");
    } else if config.bus.kind == BusKind::Embedded {
        let path = data_dir.join(KEY_FILE);
        let key = local_key(&path)?;
        vedette_core::id::use_secret_key(&key).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} (remove the file to make a new key; ids stored so far were made under \
                 the key it held)",
                path.display()
            )
        })?;
        tracing::info!(source = %path.display(), "event ids under this machine's key");
    } else {
        tracing::warn!(
            "ingest.id_key_env is not set: event ids use the public key, so crafted records \
             could share an id (and be stored as one); set the same secret key on every node"
        );
    }
    Ok(())
}

/// The key kept in `path`, made (128 random bits, owner-only) when there is none. The
/// file appears whole or not at all: the key is written and synced under another name,
/// then linked into place, and the folder synced.
fn local_key(path: &Path) -> anyhow::Result<String> {
    if let Some(key) = read_key(path)? {
        return Ok(key);
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    let key = crate::tokens::hex(&bytes);
    let tmp = path.with_extension("key.tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(key.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    // A link fails where the name exists: a key made meanwhile is kept, not replaced.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .with_context(|| format!("cannot sync {}", dir.display()))?;
            }
            Ok(key)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            read_key(path)?.with_context(|| format!("{} vanished as it was made", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// The key in `path`, or None when there is no such file.
fn read_key(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
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
        assert!(!path.with_extension("key.tmp").exists());
        let other = local_key(&tempfile::tempdir()?.path().join(KEY_FILE))?;
        assert_ne!(other, first);
        Ok(())
    }

    #[test]
    fn a_damaged_key_file_stops_the_start_naming_the_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(KEY_FILE), "")?;
        let config = Config::default();
        let err = match use_event_id_key(&config, dir.path()) {
            Ok(()) => anyhow::bail!("an empty key file was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(KEY_FILE) && err.contains("remove the file"),
            "{err}"
        );
        Ok(())
    }
}
