//! The `vedette` binary: reads config, wires the pipeline's stages, serves the HTTP API.

mod alert_flow;
mod audit_log;
mod backpressure;
mod bundled;
mod bus_batches;
mod bus_setup;
mod bus_sink;
mod cli;
mod compaction_metrics;
mod config_cmd;
mod correlation_state;
mod data_dir;
mod detect_cmd;
mod detect_rebuild;
mod detect_stage;
mod event_id_key;
mod file_watch;
mod health_history;
mod http;
mod hunt_alerts;
mod hunt_cmd;
mod hunt_input;
mod ingest;
mod input;
mod live_rules;
mod logging;
mod metrics;
mod parse_cmd;
mod query_cmd;
mod respond;
mod rules_cmd;
mod run;
mod sigma_setup;
mod store_setup;
mod store_stage;
mod suppressions;
mod token_cmd;
mod tokens;
mod yara_setup;

use std::process::ExitCode;

/// mimalloc: the system allocator serializes threads on multi-core parsing.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Parse(args) => parse_cmd::parse(&args),
        Command::Detect(args) => detect_cmd::detect(&args),
        Command::Query(args) => query_cmd::query(&args),
        Command::Hunt(args) => hunt_cmd::hunt(&args),
        Command::Rules { command } => rules_cmd::rules(&command),
        Command::Token { command } => token_cmd::token(&command),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => config_cmd::check(&file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vedette: {err:#}");
            ExitCode::FAILURE
        }
    }
}
