//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Vedette: a streaming security event pipeline (ingest, bus, detection, storage,
/// response).
#[derive(Debug, Parser)]
#[command(name = "vedette", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the pipeline and its HTTP API (embedded mode when no config is given).
    Run(RunArgs),
    /// Normalize log files (or stdin) and print the events.
    Parse(crate::parse_cmd::ParseArgs),
    /// Hunt through log files with Sigma rules; one JSON line per hit.
    Detect(crate::detect_cmd::DetectArgs),
    /// Retro-hunt: run Sigma rules over the stored events of a time span.
    Hunt(crate::hunt_cmd::HuntArgs),
    /// Run one read-only SQL query against the store (tables events, alerts, dead_letters).
    Query(crate::query_cmd::QueryArgs),
    /// Work with detection rules.
    Rules {
        #[command(subcommand)]
        command: crate::rules_cmd::RulesCommand,
    },
    /// Manage API tokens (agent, analyst, admin; optionally confined to a tenant).
    Token {
        #[command(subcommand)]
        command: crate::token_cmd::TokenCommand,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

/// Flags of `vedette run`; each overrides the config file.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Configuration file (TOML). Without one, the embedded defaults apply.
    #[arg(long, env = "VEDETTE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Folder for all local state [default: ./vedette-data].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:8080].
    #[arg(long)]
    pub(crate) http_addr: Option<SocketAddr>,
    /// Also read records from standard input, in this format (`auto` recognizes it).
    #[arg(long, value_name = "FORMAT")]
    pub(crate) stdin: Option<String>,
}

/// `vedette config ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate a config file and print the effective configuration.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}
