//! The ingest stage of `vedette run`: chunks from the transports are parsed into event
//! batches, flushed at a count of records, a size or an age, appended durably to the bus, counted in
//! the metrics and the loss ledger, and only then acknowledged to their source (file
//! positions). While the bus refuses appends the stage retries with backoff and reads
//! no more chunks, so the transports slow down (TCP reads pause) instead of dropping.
//!
//! ```text
//!  syslog / files / stdin ─▶ ChannelSource ─▶ parse (blocking pool) ─▶ batch ─▶ bus `events`
//!                                                      │                  │
//!                                                dead letters ──────────▶ bus `dead_letters`
//!                                                                         └▶ ack files
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vedette_connectors::file::Positions;
use vedette_connectors::ChannelSource;
use vedette_core::dead_letter::DeadLetter;
use vedette_core::event::EventBatchBuilder;
use vedette_core::traits::{ParseStats, Parser, RawChunk, Source};
use vedette_ingest::{parser_for, Format, Limits};

use crate::bus_sink::BusSink;
use crate::metrics::{reason_kind, DeadLetterLabels, Ledger, Metrics, SourceLabels};

/// Source named in the bus header of the stage's batches (rows of several transports).
const INGEST_SOURCE: &str = "ingest";

/// Everything the ingest stage needs.
pub(crate) struct IngestStage {
    /// Where parsed batches go: the bus.
    pub(crate) sink: Arc<BusSink>,
    /// Tenant named in the bus header of mixed batches (each row carries its own).
    pub(crate) tenant: String,
    /// Counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Parser per source name; sources not listed use `default_parser`.
    pub(crate) parsers: HashMap<String, Arc<dyn Parser>>,
    /// Parser of unlisted sources.
    pub(crate) default_parser: Arc<dyn Parser>,
    /// Flush at this many events and dead letters.
    pub(crate) batch_rows: usize,
    /// Flush once the oldest event waited this long.
    pub(crate) batch_age: Duration,
    /// Flush once the events and dead letters hold this many bytes.
    pub(crate) batch_bytes: usize,
    /// Positions of followed files, acknowledged after each durable flush.
    pub(crate) positions: Option<Arc<Positions>>,
    /// Fires on shutdown; a failing bus append stops being retried then.
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

/// What is waiting to be flushed.
struct Pending {
    builder: EventBatchBuilder,
    dead: Vec<DeadLetter>,
    /// File chunks to acknowledge after the flush: (path, start position).
    acks: Vec<(String, u64)>,
    /// Per source: events and dead letters parsed since the last flush (the ledger).
    counts: BTreeMap<String, (u64, u64)>,
    since: Option<Instant>,
    /// Bytes of the dead letters waiting (their raw bytes and reasons).
    dead_bytes: usize,
}

impl Pending {
    /// Whether the batch is due for a flush by its count of records or its size.
    fn full(&mut self, rows: usize, bytes: usize) -> bool {
        self.builder.len() + self.dead.len() >= rows
            || self.builder.data_bytes() + self.dead_bytes >= bytes
    }
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
        let dead_before = pending.dead.len();
        let (builder, dead, stats) = tokio::task::spawn_blocking(move || {
            let mut builder = pending.builder;
            let mut dead = pending.dead;
            let stats = parser.parse(&chunk, &mut builder, &mut dead);
            (builder, dead, stats)
        })
        .await
        .context("parser task failed")?;
        count_chunk(&self.metrics, &source, bytes, stats);
        Ledger::add(
            &self.metrics.ledger.received,
            &source,
            (stats.events + stats.dead_letters) as u64,
        );
        let counts = pending.counts.entry(source.clone()).or_default();
        counts.0 += stats.events as u64;
        counts.1 += stats.dead_letters as u64;
        pending.builder = builder;
        pending.dead_bytes += dead
            .get(dead_before..)
            .unwrap_or_default()
            .iter()
            .map(|d| d.raw.len() + d.reason.len())
            .sum::<usize>();
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
        let counts = std::mem::take(&mut pending.counts);
        // Backpressure: while a consumer is too far behind, hold the flush (and so the
        // inputs); on shutdown, append what is pending regardless.
        self.sink.pressure.wait_for_room(None, &self.cancel).await;
        let mut backoff = Duration::from_millis(100);
        loop {
            let written = self
                .sink
                .deliver(INGEST_SOURCE, &self.tenant, &batch, &dead)
                .await;
            match written {
                Ok(()) => break,
                // Nothing is acknowledged until the append succeeds: retry (the
                // transports wait meanwhile, so inputs slow down); give up only on
                // shutdown.
                Err(e) if !self.cancel.is_cancelled() => {
                    tracing::error!(error = %e, retry_in = ?backoff, "bus append failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(e) => {
                    let ledger = &self.metrics.ledger;
                    for (source, (events, dead)) in &counts {
                        Ledger::add(&ledger.rejected, source, events + dead);
                    }
                    return Err(e.context(format!(
                        "bus append failed at shutdown; {} events and {} dead letters not stored",
                        batch.num_rows(),
                        dead.len()
                    )));
                }
            }
        }
        let ledger = &self.metrics.ledger;
        for (source, (events, dead)) in &counts {
            Ledger::add(&ledger.appended, source, *events);
            Ledger::add(&ledger.dead_lettered, source, *dead);
        }
        let acks = std::mem::take(&mut pending.acks);
        self.save_positions(acks).await;
        pending.since = None;
        pending.dead_bytes = 0;
        Ok(pending)
    }

    /// Acknowledges file chunks made durable and saves the positions (also with no
    /// acknowledgements, when an earlier save failed). The events are durable already:
    /// a positions file that cannot be written (a full disk) costs duplicates after a
    /// restart, not data, so ingest goes on; the positions stay in memory and a later
    /// flush, or the shutdown, writes them.
    async fn save_positions(&self, acks: Vec<(String, u64)>) {
        let Some(positions) = self
            .positions
            .as_ref()
            .filter(|p| !acks.is_empty() || p.dirty())
        else {
            return;
        };
        let positions = positions.clone();
        let saved = tokio::task::spawn_blocking(move || {
            positions.ack_all(acks.iter().map(|(file, start)| (file.as_str(), *start)))
        })
        .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "saving file positions failed"),
            Err(e) => tracing::error!(error = %e, "saving file positions failed"),
        }
    }

    /// Runs until every sender of `source` is gone (the transports stopped on
    /// shutdown), then flushes what is pending.
    pub(crate) async fn run(self, mut source: ChannelSource) -> anyhow::Result<()> {
        let mut pending = Pending {
            builder: EventBatchBuilder::new(),
            dead: Vec::new(),
            acks: Vec::new(),
            counts: BTreeMap::new(),
            since: None,
            dead_bytes: 0,
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
                    if pending.full(self.batch_rows, self.batch_bytes) {
                        pending = self.flush(pending).await?;
                    }
                }
                Some(None) => break,
                None => pending = self.flush(pending).await?,
            }
        }
        self.flush(pending).await?;
        self.save_positions(Vec::new()).await;
        Ok(())
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
