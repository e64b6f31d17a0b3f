//! API tokens: a role (agent, analyst, admin), an optional tenant, and only the
//! token's SHA-256 at rest, in `<data folder>/tokens.json` (mode 0600).
//!
//! The running service and `vedette token ...` share the file: writers take
//! `tokens.lock`, write a new file and rename it over the old one; readers notice the
//! change (size, time, inode) on the next request and reload. A token reads
//! `vdt_` + 43 URL-safe base64 characters (32 random bytes); its id (16 hex digits)
//! names it in lists, audit lines and revocations without revealing it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use anyhow::{bail, Context};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// File of the token records inside the data folder.
pub(crate) const TOKENS_FILE: &str = "tokens.json";
/// Lock file taken by writers of [`TOKENS_FILE`].
const LOCK_FILE: &str = "tokens.lock";
/// Prefix of every generated token.
const TOKEN_PREFIX: &str = "vdt_";
/// Shortest token accepted from `VEDETTE_ADMIN_TOKEN`.
pub(crate) const MIN_TOKEN_CHARS: usize = 24;
/// Longest tenant name.
const MAX_TENANT_CHARS: usize = 64;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// Sends events (`POST /v1/ingest`).
    Agent,
    /// Reads events and alerts, runs queries, triages alerts.
    Analyst,
    /// Everything, including tokens and rules.
    Admin,
}

impl Role {
    /// Whether a token of this role may use an endpoint that needs `needed`.
    pub(crate) fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }

    /// The role's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

/// One token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenRecord {
    /// Public name of the token (16 hex digits).
    pub(crate) id: String,
    /// SHA-256 of the token, hex.
    pub(crate) sha256: String,
    /// What it may do.
    pub(crate) role: Role,
    /// The tenant it is confined to; none sees every tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tenant: Option<String>,
    /// A note on who holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    /// When it was created (RFC 3339).
    pub(crate) created: String,
    /// When it was revoked (RFC 3339); a revoked token opens nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revoked: Option<String>,
}

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    version: u32,
    tokens: Vec<TokenRecord>,
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// The token's id.
    pub(crate) id: String,
    /// Its role.
    pub(crate) role: Role,
    /// Its tenant, if confined to one.
    pub(crate) tenant: Option<String>,
}

/// How the first admin token came about at start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AdminBootstrap {
    /// An active admin token already existed.
    Existing,
    /// `VEDETTE_ADMIN_TOKEN` was stored (its id).
    FromEnv(String),
    /// A new token was generated: show it once.
    Generated { id: String, token: String },
}

/// What identifies one version of the file on disk.
type Stamp = (u64, Option<SystemTime>, u64);

#[derive(Debug, Default)]
struct Cache {
    stamp: Option<Stamp>,
    by_hash: HashMap<[u8; 32], Principal>,
}

/// The token records of one data folder.
#[derive(Debug)]
pub(crate) struct TokenStore {
    path: PathBuf,
    lock_path: PathBuf,
    cache: RwLock<Cache>,
}

/// Checks a tenant name: 1–64 characters of letters, digits, `_`, `-`, `.`.
pub(crate) fn validate_tenant(tenant: &str) -> anyhow::Result<()> {
    let ok = !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_CHARS
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        bail!("tenant `{tenant}`: use 1 to {MAX_TENANT_CHARS} letters, digits, `_`, `-` or `.`");
    }
    Ok(())
}

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `bytes` in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    Ok(buf)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl TokenStore {
    /// The store of `data_dir` (the file is created by the first token).
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(TOKENS_FILE),
            lock_path: data_dir.join(LOCK_FILE),
            cache: RwLock::new(Cache::default()),
        }
    }

    /// The principal of `token`, if it is a valid, unrevoked token.
    pub(crate) fn verify(&self, token: &str) -> anyhow::Result<Option<Principal>> {
        let stamp = self.stamp()?;
        let hash = sha256(token);
        {
            let cache = self
                .cache
                .read()
                .map_err(|_| anyhow::anyhow!("token cache poisoned"))?;
            if cache.stamp == stamp {
                return Ok(cache.by_hash.get(&hash).cloned());
            }
        }
        let file = self.read()?;
        let mut by_hash = HashMap::new();
        for record in file.tokens.iter().filter(|r| r.revoked.is_none()) {
            if let Some(h) = unhex(&record.sha256) {
                by_hash.insert(
                    h,
                    Principal {
                        id: record.id.clone(),
                        role: record.role,
                        tenant: record.tenant.clone(),
                    },
                );
            }
        }
        let found = by_hash.get(&hash).cloned();
        let mut cache = self
            .cache
            .write()
            .map_err(|_| anyhow::anyhow!("token cache poisoned"))?;
        *cache = Cache { stamp, by_hash };
        Ok(found)
    }

    /// Every record, revoked ones included.
    pub(crate) fn list(&self) -> anyhow::Result<Vec<TokenRecord>> {
        Ok(self.read()?.tokens)
    }

    /// Creates a token; returns it (shown once) and its record.
    pub(crate) fn create(
        &self,
        role: Role,
        tenant: Option<&str>,
        name: Option<&str>,
    ) -> anyhow::Result<(String, TokenRecord)> {
        if let Some(t) = tenant {
            validate_tenant(t)?;
        }
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
        );
        let record = self.add(&token, role, tenant, name)?;
        Ok((token, record))
    }

    /// Revokes token `id`; false when there is no such active token.
    pub(crate) fn revoke(&self, id: &str) -> anyhow::Result<bool> {
        self.update(|file| {
            let found = file
                .tokens
                .iter_mut()
                .find(|r| r.id == id && r.revoked.is_none());
            match found {
                Some(record) => {
                    record.revoked = Some(now_rfc3339());
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }

    /// Makes sure an admin token exists: stores `env_token` when given, else generates one.
    pub(crate) fn bootstrap_admin(
        &self,
        env_token: Option<&str>,
    ) -> anyhow::Result<AdminBootstrap> {
        let has_admin = |file: &TokenFile| {
            file.tokens
                .iter()
                .any(|r| r.role == Role::Admin && r.revoked.is_none() && r.tenant.is_none())
        };
        if has_admin(&self.read()?) {
            if let Some(t) = env_token {
                if self.verify(t)?.is_none() {
                    tracing::warn!(
                        "VEDETTE_ADMIN_TOKEN is ignored: an admin token exists already \
                         (create more with `vedette token create --role admin`)"
                    );
                }
            }
            return Ok(AdminBootstrap::Existing);
        }
        match env_token {
            Some(token) => {
                if token.chars().count() < MIN_TOKEN_CHARS {
                    bail!("VEDETTE_ADMIN_TOKEN must be at least {MIN_TOKEN_CHARS} characters");
                }
                let record = self.add(token, Role::Admin, None, Some("VEDETTE_ADMIN_TOKEN"))?;
                Ok(AdminBootstrap::FromEnv(record.id))
            }
            None => {
                let (token, record) = self.create(Role::Admin, None, Some("first admin"))?;
                Ok(AdminBootstrap::Generated {
                    id: record.id,
                    token,
                })
            }
        }
    }

    fn add(
        &self,
        token: &str,
        role: Role,
        tenant: Option<&str>,
        name: Option<&str>,
    ) -> anyhow::Result<TokenRecord> {
        let record = TokenRecord {
            id: hex(&random_bytes::<8>()?),
            sha256: hex(&sha256(token)),
            role,
            tenant: tenant.map(str::to_string),
            name: name.map(str::to_string),
            created: now_rfc3339(),
            revoked: None,
        };
        self.update(|file| {
            if file.tokens.iter().any(|r| r.sha256 == record.sha256) {
                bail!("this token is stored already");
            }
            file.tokens.push(record.clone());
            Ok(())
        })?;
        Ok(record)
    }

    fn stamp(&self) -> anyhow::Result<Option<Stamp>> {
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(Some((m.len(), m.modified().ok(), m.ino()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.path.display())),
        }
    }

    fn read(&self) -> anyhow::Result<TokenFile> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(TokenFile {
                    version: 1,
                    tokens: Vec::new(),
                })
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()))
            }
        };
        let file: TokenFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged", self.path.display()))?;
        if file.version != 1 {
            bail!(
                "{}: version {} is not supported",
                self.path.display(),
                file.version
            );
        }
        Ok(file)
    }

    /// Changes the file under the writers' lock; durable when it returns.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut TokenFile) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock_path)
            .with_context(|| format!("cannot open {}", self.lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", self.lock_path.display()))?;
        let mut file = self.read()?;
        let out = change(&mut file)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut w = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        w.write_all(&serde_json::to_vec_pretty(&file)?)?;
        w.sync_all()?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot replace {}", self.path.display()))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tokens_verify_until_revoked_and_only_hashes_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        let (token, record) = store.create(Role::Agent, Some("acme"), None).unwrap();
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() == 47);
        let p = store.verify(&token).unwrap().unwrap();
        assert_eq!((p.role, p.tenant.as_deref()), (Role::Agent, Some("acme")));
        assert_eq!(store.verify("vdt_not-a-token").unwrap(), None);
        let text = std::fs::read_to_string(dir.path().join(TOKENS_FILE)).unwrap();
        assert!(!text.contains(&token));
        let mode = std::fs::metadata(dir.path().join(TOKENS_FILE))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second store (another process) revokes; the first sees it.
        assert!(TokenStore::new(dir.path()).revoke(&record.id).unwrap());
        assert_eq!(store.verify(&token).unwrap(), None);
        assert!(!store.revoke(&record.id).unwrap(), "revoked twice");
    }

    #[test]
    fn the_first_admin_comes_from_the_environment_or_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        assert!(store.bootstrap_admin(Some("short")).is_err());
        let env = "env-admin-token-0123456789abcdef";
        assert!(matches!(
            store.bootstrap_admin(Some(env)).unwrap(),
            AdminBootstrap::FromEnv(_)
        ));
        assert_eq!(store.verify(env).unwrap().unwrap().role, Role::Admin);
        assert_eq!(
            store.bootstrap_admin(None).unwrap(),
            AdminBootstrap::Existing
        );
        let other = tempfile::tempdir().unwrap();
        let fresh = TokenStore::new(other.path());
        let AdminBootstrap::Generated { token, .. } = fresh.bootstrap_admin(None).unwrap() else {
            panic!("expected a generated token");
        };
        assert_eq!(fresh.verify(&token).unwrap().unwrap().role, Role::Admin);
        assert_eq!(
            fresh.bootstrap_admin(None).unwrap(),
            AdminBootstrap::Existing
        );
    }

    #[test]
    fn roles_and_tenants_are_checked() {
        assert!(Role::Admin.allows(Role::Agent) && Role::Admin.allows(Role::Analyst));
        assert!(!Role::Agent.allows(Role::Analyst) && !Role::Analyst.allows(Role::Agent));
        assert!(!Role::Analyst.allows(Role::Admin));
        assert!(validate_tenant("acme-eu.1").is_ok());
        for bad in ["", "a b", "x'--", &"t".repeat(65)] {
            assert!(validate_tenant(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(TokenStore::new(dir.path())
            .create(Role::Agent, Some("bad tenant"), None)
            .is_err());
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_open_door() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKENS_FILE), "{not json").unwrap();
        let store = TokenStore::new(dir.path());
        assert!(store.verify("anything").is_err());
        assert!(store.create(Role::Admin, None, None).is_err());
    }
}
