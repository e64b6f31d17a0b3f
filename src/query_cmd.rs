//! `vedette query "SQL"`: one read-only SQL query against the configured store, printed
//! as a table, JSON lines or CSV.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use arrow::array::RecordBatch;
use clap::{Args, ValueEnum};
use futures::StreamExt;
use vedette_core::config::Config;
use vedette_core::traits::QueryScope;
use vedette_storage::QueryLimits;

use crate::store_setup::open_store;

/// Output formats of `vedette query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum QueryFormat {
    /// An aligned text table.
    Table,
    /// One JSON object per row.
    Json,
    /// CSV with a header row.
    Csv,
}

/// Flags of `vedette query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// The SQL query (tables `events`, `alerts`, `dead_letters`).
    pub(crate) sql: String,
    /// Configuration file naming the store [default: the embedded defaults].
    #[arg(long, env = "VEDETTE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Folder of local state [default: ./vedette-data].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: QueryFormat,
    /// Rows returned at most.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) max_rows: usize,
    /// Seconds the query may run.
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout: u64,
}

/// Runs the query and prints its results.
pub(crate) fn query(args: &QueryArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    let limits = QueryLimits {
        max_rows: args.max_rows,
        timeout: std::time::Duration::from_secs(args.timeout),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let batches = runtime.block_on(async {
        let store = open_store(&config, limits).await?;
        let mut stream = store.query(&args.sql, &QueryScope::all()).await?;
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            batches.push(batch?);
        }
        Ok::<_, anyhow::Error>(batches)
    })?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    print(&mut out, &batches, args.format)?;
    out.flush().context("writing the results")?;
    Ok(())
}

/// Writes `batches` in `format`.
pub(crate) fn print(
    out: &mut impl Write,
    batches: &[RecordBatch],
    format: QueryFormat,
) -> anyhow::Result<()> {
    match format {
        QueryFormat::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches)?;
            writeln!(out, "{table}")?;
        }
        QueryFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
        QueryFormat::Csv => {
            let mut writer = arrow::csv::Writer::new(out);
            for b in batches {
                writer.write(b)?;
            }
        }
    }
    Ok(())
}
