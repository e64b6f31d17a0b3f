//! `vedette token create|revoke|list`: manage the API tokens of a data folder, also
//! while the service runs (it sees the change on the next request).

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand};
use vedette_core::config::Config;

use crate::tokens::{Role, TokenStore};

/// Where the tokens live.
#[derive(Debug, Args)]
pub(crate) struct TokenPlace {
    /// Configuration file naming the data folder.
    #[arg(long, env = "VEDETTE_CONFIG")]
    config: Option<PathBuf>,
    /// Folder of local state [default: ./vedette-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl TokenPlace {
    fn store(&self) -> anyhow::Result<TokenStore> {
        let dir = match (&self.data_dir, &self.config) {
            (Some(dir), _) => dir.clone(),
            (None, Some(path)) => Config::load(path)?.data_dir,
            (None, None) => Config::default().data_dir,
        };
        Ok(TokenStore::new(&dir))
    }
}

/// `vedette token ...`
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token and print it (once: only its hash is kept).
    Create {
        /// What the token may do.
        #[arg(long, value_enum)]
        role: Role,
        /// Confine the token to one tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// A note on who holds it.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        place: TokenPlace,
    },
    /// Revoke a token by its id.
    Revoke {
        /// The token's id (from `vedette token list`).
        id: String,
        #[command(flatten)]
        place: TokenPlace,
    },
    /// List the tokens (ids, roles, tenants; never the tokens).
    List {
        #[command(flatten)]
        place: TokenPlace,
    },
}

/// Runs one token command.
pub(crate) fn token(command: &TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            role,
            tenant,
            name,
            place,
        } => {
            let (token, record) =
                place
                    .store()?
                    .create(*role, tenant.as_deref(), name.as_deref())?;
            eprintln!(
                "created token {} (role {}{}); it is shown once:",
                record.id,
                role.name(),
                record
                    .tenant
                    .as_deref()
                    .map(|t| format!(", tenant {t}"))
                    .unwrap_or_default()
            );
            println!("{token}");
        }
        TokenCommand::Revoke { id, place } => {
            if !place.store()?.revoke(id)? {
                bail!("no active token has id {id}");
            }
            eprintln!("revoked token {id}");
        }
        TokenCommand::List { place } => {
            println!(
                "{:<16}  {:<7}  {:<16}  {:<20}  {:<20}  name",
                "id", "role", "tenant", "created", "revoked"
            );
            for r in place.store()?.list()? {
                println!(
                    "{:<16}  {:<7}  {:<16}  {:<20}  {:<20}  {}",
                    r.id,
                    r.role.name(),
                    r.tenant.as_deref().unwrap_or("*"),
                    r.created,
                    r.revoked.as_deref().unwrap_or("-"),
                    r.name.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}
