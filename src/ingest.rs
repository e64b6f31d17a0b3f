//! The ingest stage of `vedette run`: chunks from the transports are parsed into event
//! batches, flushed at a row count or an age, written durably to the spool, counted in
//! the metrics, and only then acknowledged to their source (file positions).
//!
//! ```text
//!  syslog / files / stdin ─▶ ChannelSource ─▶ parse (blocking pool) ─▶ batch ─▶ spool
//!                                                      │                  │
//!                                                dead letters ──────────▶ spool
//!                                                                         └▶ ack files
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arrow::array::{AsArray, RecordBatch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vedette_connectors::file::Positions;
use vedette_connectors::ChannelSource;
use vedette_core::dead_letter::DeadLetter;
use vedette_core::event::EventBatchBuilder;
use vedette_core::schema::col;
use vedette_core::traits::{ParseStats, Parser, RawChunk, Source};
use vedette_ingest::{parser_for, Format, Limits};

use crate::metrics::{reason_kind, DatasetLabels, DeadLetterLabels, Metrics, SourceLabels};
use crate::spool::Spool;

/// Everything the ingest stage needs.
pub(crate) struct IngestStage {
    /// Where durable batches go.
    pub(crate) spool: Arc<Spool>,
    /// Counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Parser per source name; sources not listed use `default_parser`.
    pub(crate) parsers: HashMap<String, Arc<dyn Parser>>,
    /// Parser of unlisted sources.
    pub(crate) default_parser: Arc<dyn Parser>,
    /// Flush at this many events.
    pub(crate) batch_rows: usize,
    /// Flush once the oldest event waited this long.
    pub(crate) batch_age: Duration,
    /// Positions of followed files, acknowledged after each durable flush.
    pub(crate) positions: Option<Arc<Positions>>,
    /// Fires on shutdown; a failing spool write stops being retried then.
    pub(crate) cancel: CancellationToken,
}

/// The parser of a format with the configured limits, shareable across threads.
pub(crate) fn shared_parser(format: Format, limits: Limits) -> Arc<dyn Parser> {
    Arc::from(parser_for(format, limits))
}

/// Counts a parsed chunk's events and dead letters.
pub(crate) fn count_chunk(metrics: &Metrics, source: &str, bytes: usize, stats: ParseStats) {
    let labels = SourceLabels {
        source: source.to_string(),
    };
    metrics
        .ingest_bytes
        .get_or_create(&labels)
        .inc_by(bytes as u64);
    metrics
        .ingest_events
        .get_or_create(&labels)
        .inc_by(stats.events as u64);
}

/// Counts dead letters by source and reason kind.
pub(crate) fn count_dead_letters(
    metrics: &Metrics,
    letters: &[DeadLetter],
) -> BTreeMap<String, usize> {
    let mut by_reason = BTreeMap::new();
    for d in letters {
        let reason = reason_kind(&d.reason);
        let source = d.source.split(':').next().unwrap_or_default().to_string();
        metrics
            .ingest_dead_letters
            .get_or_create(&DeadLetterLabels {
                source,
                reason: reason.clone(),
            })
            .inc();
        *by_reason.entry(reason).or_default() += 1;
    }
    by_reason
}

/// Writes a batch and its dead letters durably and counts them by dataset.
pub(crate) fn write_durably(
    spool: &Spool,
    metrics: &Metrics,
    batch: &RecordBatch,
    dead: &[DeadLetter],
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    if batch.num_rows() > 0 {
        spool.write_events(batch)?;
        metrics.spool_batches.inc();
        if let Some(datasets) = batch
            .column_by_name(col::EVENT_DATASET)
            .and_then(|c| c.as_string_opt::<i32>())
        {
            let mut counts: HashMap<&str, u64> = HashMap::new();
            for d in datasets.iter().flatten() {
                *counts.entry(d).or_default() += 1;
            }
            for (dataset, n) in counts {
                metrics
                    .ingest_events_by_dataset
                    .get_or_create(&DatasetLabels {
                        dataset: dataset.to_string(),
                    })
                    .inc_by(n);
            }
        }
    }
    if !dead.is_empty() {
        spool.write_dead_letters(dead)?;
    }
    metrics
        .spool_write_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(())
}

/// What is waiting to be flushed.
struct Pending {
    builder: EventBatchBuilder,
    dead: Vec<DeadLetter>,
    /// File chunks to acknowledge after the flush: (path, start position).
    acks: Vec<(String, u64)>,
    since: Option<Instant>,
}

impl IngestStage {
    async fn parse(&self, chunk: RawChunk, mut pending: Pending) -> anyhow::Result<Pending> {
        let parser = self
            .parsers
            .get(&chunk.source)
            .unwrap_or(&self.default_parser)
            .clone();
        let source = chunk.source.clone();
        let bytes = chunk.bytes.len();
        let is_file = self.parsers.contains_key(&source) && source.starts_with("file-");
        let ack = (chunk.origin.clone(), chunk.position);
        let (builder, dead, stats) = tokio::task::spawn_blocking(move || {
            let mut builder = pending.builder;
            let mut dead = pending.dead;
            let stats = parser.parse(&chunk, &mut builder, &mut dead);
            (builder, dead, stats)
        })
        .await
        .context("parser task failed")?;
        count_chunk(&self.metrics, &source, bytes, stats);
        pending.builder = builder;
        pending.dead = dead;
        if is_file {
            pending.acks.push(ack);
        }
        let waiting =
            !pending.builder.is_empty() || !pending.dead.is_empty() || !pending.acks.is_empty();
        if pending.since.is_none() && waiting {
            pending.since = Some(Instant::now());
        }
        Ok(pending)
    }

    async fn flush(&self, mut pending: Pending) -> anyhow::Result<Pending> {
        if pending.builder.is_empty() && pending.dead.is_empty() && pending.acks.is_empty() {
            return Ok(pending);
        }
        let batch = pending.builder.finish()?;
        let dead = std::mem::take(&mut pending.dead);
        count_dead_letters(&self.metrics, &dead);
        let batch = Arc::new(batch);
        let dead = Arc::new(dead);
        let mut backoff = Duration::from_millis(100);
        loop {
            let (spool, metrics) = (self.spool.clone(), self.metrics.clone());
            let (b, d) = (batch.clone(), dead.clone());
            let written =
                tokio::task::spawn_blocking(move || write_durably(&spool, &metrics, &b, &d))
                    .await
                    .context("spool task failed")?;
            match written {
                Ok(()) => break,
                // Nothing is acknowledged until the write succeeds: retry (the
                // transports wait meanwhile); give up only on shutdown.
                Err(e) if !self.cancel.is_cancelled() => {
                    tracing::error!(error = %e, retry_in = ?backoff, "spool write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(e) => {
                    return Err(e.context(format!(
                        "spool write failed at shutdown; {} events and {} dead letters not stored",
                        batch.num_rows(),
                        dead.len()
                    )))
                }
            }
        }
        if let Some(positions) = &self.positions {
            for (file, start) in pending.acks.drain(..) {
                positions.ack(&file, start)?;
            }
        }
        pending.acks.clear();
        pending.since = None;
        Ok(pending)
    }

    /// Runs until every sender of `source` is gone (the transports stopped on
    /// shutdown), then flushes what is pending.
    pub(crate) async fn run(self, mut source: ChannelSource) -> anyhow::Result<()> {
        let mut pending = Pending {
            builder: EventBatchBuilder::new(),
            dead: Vec::new(),
            acks: Vec::new(),
            since: None,
        };
        loop {
            let deadline = pending.since.map(|t| t + self.batch_age);
            let next = tokio::select! {
                chunk = source.next_chunk() => Some(chunk?),
                () = sleep_until(deadline) => None,
            };
            match next {
                Some(Some(chunk)) => {
                    pending = self.parse(chunk, pending).await?;
                    if pending.builder.len() >= self.batch_rows {
                        pending = self.flush(pending).await?;
                    }
                }
                Some(None) => break,
                None => pending = self.flush(pending).await?,
            }
        }
        self.flush(pending).await?;
        Ok(())
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
