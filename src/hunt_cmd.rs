//! `vedette hunt`: a retro-hunt. Sigma rules run over the events already in the store,
//! with the same compiled matcher as the stream; the alerts are printed as JSON lines,
//! tagged `vedette.retro`, and written to the store's `alerts` table.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use futures::StreamExt;
use vedette_core::alert::alerts_to_batch;
use vedette_core::batch::EventBatch;
use vedette_core::config::Config;
use vedette_core::traits::{Detector, Table};
use vedette_storage::QueryLimits;

use crate::sigma_setup::load_sigma;
use crate::store_setup::open_store;

/// Tag of every alert a retro-hunt raises.
pub(crate) const RETRO_TAG: &str = "vedette.retro";

/// Batches read from the store before they are matched together, in parallel.
const HUNT_PARALLEL_BATCHES: usize = 4;

/// Flags of `vedette hunt`.
#[derive(Debug, Args)]
pub(crate) struct HuntArgs {
    /// Sigma rule file or folder (searched recursively); repeat for more.
    #[arg(long, short, required = true)]
    pub(crate) rules: Vec<PathBuf>,
    /// Processing pipelines (pySigma YAML), applied by priority.
    #[arg(long, short)]
    pub(crate) pipeline: Vec<PathBuf>,
    /// Hunt over the events of this last span: `90m`, `36h`, `7d`.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub(crate) since: Option<String>,
    /// Hunt over events from this time on (RFC 3339).
    #[arg(long, requires = "to")]
    pub(crate) from: Option<String>,
    /// ... up to this time, excluded (RFC 3339).
    #[arg(long, requires = "from")]
    pub(crate) to: Option<String>,
    /// Configuration file naming the store [default: the embedded defaults].
    #[arg(long, env = "VEDETTE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Folder of local state [default: ./vedette-data].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Print the alerts only; do not write them to the store.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// A span like `90m`, `36h` or `7d`.
fn parse_span(text: &str) -> anyhow::Result<Duration> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = number
        .parse()
        .with_context(|| format!("--since `{text}`: expected a number and m, h or d"))?;
    let secs = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("--since `{text}`: the unit must be m, h or d"),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

fn parse_time(flag: &str, text: &str) -> anyhow::Result<i64> {
    Ok(chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("--{flag} `{text}` is not an RFC 3339 time"))?
        .timestamp_millis())
}

/// The hunted span, Unix ms: [from, to).
fn span(args: &HuntArgs) -> anyhow::Result<(i64, i64)> {
    let now = chrono::Utc::now().timestamp_millis();
    match (&args.since, &args.from, &args.to) {
        (Some(since), _, _) => {
            let back = i64::try_from(parse_span(since)?.as_millis()).unwrap_or(i64::MAX);
            Ok((now.saturating_sub(back), now.saturating_add(1)))
        }
        (None, Some(from), Some(to)) => {
            let (from, to) = (parse_time("from", from)?, parse_time("to", to)?);
            if from >= to {
                bail!("--from must be before --to");
            }
            Ok((from, to))
        }
        _ => bail!("say which events to hunt over: --since SPAN, or --from T --to T"),
    }
}

/// Runs `vedette hunt`.
pub(crate) fn hunt(args: &HuntArgs) -> anyhow::Result<()> {
    let (from, to) = span(args)?;
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    let sigma = load_sigma(&args.rules, &args.pipeline)?;
    let detector = sigma.detector;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (events, alerts) = runtime.block_on(async {
        let store = open_store(&config, QueryLimits::default()).await?;
        let mut stream = store.read_events(from, to).await?;
        let (mut events, mut raised) = (0usize, 0usize);
        let mut pending: Vec<EventBatch> = Vec::new();
        let (mut failed, mut done) = (None, false);
        while !done && failed.is_none() {
            // Batches are taken a few at a time and matched in parallel, one per core.
            match stream.next().await {
                Some(Ok(records)) => {
                    events += records.num_rows();
                    pending.push(EventBatch::new(
                        records,
                        "hunt",
                        config.ingest.tenant.clone(),
                        chrono::Utc::now().timestamp_millis(),
                    ));
                    if pending.len() < HUNT_PARALLEL_BATCHES {
                        continue;
                    }
                }
                // What was read before the error is matched and reported first.
                Some(Err(e)) => failed = Some(anyhow::Error::from(e)),
                None => done = true,
            }
            if pending.is_empty() {
                continue;
            }
            let taken = std::mem::take(&mut pending);
            let found: Vec<Result<Vec<vedette_core::alert::Alert>, _>> =
                tokio::task::block_in_place(|| {
                    use rayon::prelude::*;
                    taken
                        .par_iter()
                        .map(|batch| detector.detect(batch))
                        .collect()
                });
            // In read order; the first batch that fails stops the hunt after those before.
            for (batch, alerts) in taken.iter().zip(found) {
                let mut alerts = alerts?;
                if alerts.is_empty() {
                    continue;
                }
                for alert in &mut alerts {
                    alert.tags.push(RETRO_TAG.to_string());
                    serde_json::to_writer(&mut out, alert)?;
                    writeln!(out)?;
                }
                raised += alerts.len();
                if !args.dry_run {
                    let stored = EventBatch::new(
                        alerts_to_batch(&alerts)?,
                        "hunt",
                        batch.tenant.clone(),
                        batch.ingest_time_ms,
                    );
                    store.append(Table::Alerts, &stored).await?;
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        Ok::<_, anyhow::Error>((events, raised))
    })?;
    out.flush()?;
    eprintln!("hunted {events} events, {alerts} alerts");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse() {
        assert_eq!(parse_span("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_span("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_span("7w").is_err());
        assert!(parse_span("d").is_err());
        assert!(parse_time("from", "yesterday").is_err());
    }
}
