//! [`ParquetStore`]: the embedded store. Parquet files under one folder, queried with
//! DataFusion.
//!
//! # Layout
//!
//! ```text
//!  <root>/events/day=YYYY-MM-DD/dataset=<dataset>/<name>.parquet
//!  <root>/alerts/day=YYYY-MM-DD/<name>.parquet
//!  <root>/dead_letters/day=YYYY-MM-DD/<name>.parquet
//!  <root>/audit/day=YYYY-MM-DD/<name>.parquet
//! ```
//!
//! A file holds the rows of one append (one or several bus batches) for one day (UTC,
//! of `@timestamp`) and, for events, one dataset; rows are sorted by (`host.name`,
//! `@timestamp`) and gathered once from their batches ([`rows`]), compressed with LZ4
//! (zstd once merged), in row groups of 128 Ki rows whose columns are encoded in
//! parallel, with page statistics on every column but free text, so time-range
//! predicates skip row groups, and `day` / `dataset` predicates skip whole folders
//! (they are columns of the tables too).
//!
//! # Durability and idempotence
//!
//! A file is written to a temporary name, fsynced, renamed into place and its folder
//! fsynced before `append` returns: the caller may then commit the bus position. A
//! batch read from the bus is stored under names made of its topic, partition and
//! offset, so the same batch delivered again replaces its own files instead of adding
//! rows (the write is idempotent); once merged into a compacted file, a batch
//! delivered again is not written at all, and would be hidden if it were.
//!
//! # Compaction and deletion
//!
//! [`EventStore::compact`] merges small files folder by folder ([`compaction`]). Merged
//! and expired files are hidden from queries at once and deleted only when no running
//! query can still read them ([`visibility`]): a query never fails on a file that went
//! away, never sees a row twice, and never misses one.
//!
//! # Queries
//!
//! One DataFusion session exposes `events`, `alerts` and `dead_letters` as listing
//! tables over the folders (new files are seen by the next query), read through an
//! object store that leaves hidden files out ([`filtered_store`]). `fields` is a map:
//! `fields['CommandLine']`; its most-read keys are stored as columns of their own
//! ([`shredding`]) and a query of one reads that column ([`shredded_read`]). Queries are read-only and bounded ([`crate::QueryLimits`]).
//! A query confined to a tenant runs in a session of its own whose three tables are
//! views of that tenant's rows; the unfiltered tables are not registered there.

mod compaction;
mod coverage;
mod durable;
mod files;
mod filtered_store;
mod grouped_append;
mod key_table;
mod map_refs;
mod message_tail;
mod rows;
mod same_as;
mod shredded_read;
mod shredding;
mod upgrade;
mod visibility;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use futures::StreamExt;
use vedette_core::alert::alert_schema;
use vedette_core::audit::audit_schema;
use vedette_core::batch::EventBatch;
use vedette_core::dead_letter::dead_letter_schema;
use vedette_core::schema::{col, event_schema};
use vedette_core::traits::{
    CompactionReport, EventStore, QueryScope, RecordBatchStream, Table, WriteBatching,
};
use vedette_core::CoreError;

use crate::query_limits::{bounded, QueryLimits};
use compaction::CompactionPolicy;
use coverage::{origin, FileOrigin, COMPACTED_PREFIX};
use files::Codec;
use visibility::{list_folder, FileInFolder, QueryGuard, Visibility, DEFAULT_DELETE_GRACE};

/// How one table is laid out.
struct Layout {
    /// The columns of the batches appended.
    schema: SchemaRef,
    /// The columns of its files and of the table queries see (events: with the
    /// shredded keys' columns).
    stored: SchemaRef,
    /// Split into `dataset=` folders by this column.
    dataset_column: Option<&'static str>,
}

fn layout(table: Table) -> Layout {
    match table {
        Table::Events => Layout {
            schema: event_schema(),
            stored: shredding::table_schema(),
            dataset_column: Some(col::EVENT_DATASET),
        },
        Table::Alerts => Layout {
            schema: alert_schema(),
            stored: alert_schema(),
            dataset_column: None,
        },
        Table::DeadLetters => Layout {
            schema: dead_letter_schema(),
            stored: dead_letter_schema(),
            dataset_column: None,
        },
        Table::Audit => Layout {
            schema: audit_schema(),
            stored: audit_schema(),
            dataset_column: None,
        },
    }
}

/// Time column of every table.
const TIME_COLUMN: &str = "@timestamp";
/// A temporary file older than this is a write cut short, not one in progress.
const TORN_WRITE_AGE: Duration = Duration::from_secs(600);

/// Maps a DataFusion error: the query's fault (bad SQL, unknown column, refused
/// statement) or Vedette's.
pub(crate) fn query_error(e: DataFusionError) -> CoreError {
    if is_query_fault(&e) {
        CoreError::BadInput(format!("query: {e}"))
    } else {
        CoreError::Internal(format!("query failed: {e}"))
    }
}

/// Whether an error is the query's own (bad SQL, unknown name, refused statement),
/// looking through the wrappers DataFusion puts around errors.
fn is_query_fault(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => true,
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            is_query_fault(inner)
        }
        DataFusionError::Shared(inner) => is_query_fault(inner),
        _ => false,
    }
}

/// The embedded Parquet store.
pub struct ParquetStore {
    files: Arc<Files>,
    limits: QueryLimits,
    ctx: SessionContext,
}

/// The file side of the store, shared with blocking tasks.
#[derive(Debug)]
struct Files {
    root: PathBuf,
    retention_days: u32,
    sequence: AtomicU64,
    visibility: Arc<Visibility>,
    policy: std::sync::Mutex<CompactionPolicy>,
    /// Writes hold it shared; removing empty folders holds it alone (a write must not
    /// lose the folder it is writing into).
    folders: RwLock<()>,
}

impl std::fmt::Debug for ParquetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetStore")
            .field("files", &self.files)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ParquetStore {
    /// Opens (creating the folders of) the store in `root`: days older than
    /// `retention_days` go at each retention pass; queries are bounded by `limits`.
    pub fn open(root: &Path, retention_days: u32, limits: QueryLimits) -> Result<Self, CoreError> {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
        let options = config.options_mut();
        options.execution.parquet.pushdown_filters = true;
        options.execution.parquet.reorder_filters = true;
        // No cache of directory listings: a file stored a moment ago is seen by the next
        // query.
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
            .build_arc()
            .map_err(|e| CoreError::Internal(format!("query runtime: {e}")))?;
        let visibility = Arc::new(Visibility::new(DEFAULT_DELETE_GRACE));
        // Tables are read through a view of the file system that hides replaced files.
        let local = datafusion::execution::object_store::ObjectStoreUrl::local_filesystem();
        runtime.register_object_store(
            local.as_ref(),
            Arc::new(filtered_store::VisibleFiles::new(visibility.clone())),
        );
        let ctx = session(config, runtime);
        for table in Table::ALL {
            let dir = root.join(table.name());
            std::fs::create_dir_all(&dir)
                .map_err(|e| CoreError::io(format!("creating {}", dir.display()), e))?;
            let cleared = files::clear_torn_writes(&dir, TORN_WRITE_AGE)?;
            if cleared > 0 {
                tracing::info!(table = table.name(), files = cleared, "cleared torn writes");
            }
            // Finish merges a crash interrupted: their inputs are hidden; delete them.
            let mut superseded = 0;
            for folder in leaf_folders(&dir)? {
                superseded += visibility.doom(visibility.superseded(&list_folder(&folder)?));
            }
            if superseded > 0 {
                tracing::info!(
                    table = table.name(),
                    files = superseded,
                    "files replaced by merges will be deleted"
                );
            }
            let url = ListingTableUrl::parse(format!("{}/", dir.display()))
                .map_err(|e| CoreError::Internal(format!("table url: {e}")))?;
            let l = layout(table);
            let mut partition_cols = vec![("day".to_string(), DataType::Utf8)];
            if l.dataset_column.is_some() {
                partition_cols.push(("dataset".to_string(), DataType::Utf8));
            }
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(partition_cols);
            let mut config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(l.stored);
            if table == Table::Events {
                // The map of shredded files whole again (shredded_read); files of an
                // older layout are rewritten in this one first.
                let upgraded = upgrade::upgrade_events_files(&dir)?;
                if upgraded > 0 {
                    tracing::info!(
                        files = upgraded,
                        "events files rewritten in the current layout"
                    );
                }
                config = config.with_expr_adapter_factory(Arc::new(
                    shredded_read::ShreddedFilesAdapterFactory,
                ));
            }
            let listing = ListingTable::try_new(config)
                .map_err(|e| CoreError::Internal(format!("table {}: {e}", table.name())))?;
            ctx.register_table(table.name(), Arc::new(listing))
                .map_err(|e| CoreError::Internal(format!("registering {}: {e}", table.name())))?;
        }
        Ok(Self {
            files: Arc::new(Files {
                root: root.to_path_buf(),
                retention_days,
                sequence: AtomicU64::new(0),
                visibility,
                policy: std::sync::Mutex::new(CompactionPolicy::default()),
                folders: RwLock::new(()),
            }),
            limits,
            ctx,
        })
    }

    /// Sets how long a replaced or expired file stays on disk at least, for readers in
    /// other processes (default five minutes; queries of this store are waited for
    /// whatever this is).
    pub fn set_delete_grace(&self, grace: Duration) {
        self.files.visibility.set_grace(grace);
    }

    /// Sets after how long without a new file a folder has all its small files merged,
    /// whatever their size tier (default five minutes).
    pub fn set_cold_after(&self, quiet: Duration) {
        self.files
            .policy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .cold_after = quiet;
    }

    /// Sets the zstd level of merged files (default 3; 1 to 22): higher levels store
    /// fewer bytes for more CPU per merge. Files are rewritten at their next merge only.
    pub fn set_zstd_level(&self, level: i32) -> Result<(), CoreError> {
        if !(1..=22).contains(&level) {
            return Err(CoreError::BadInput(format!(
                "zstd level {level}: must be 1 to 22"
            )));
        }
        self.files
            .policy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .zstd_level = level;
        Ok(())
    }
}

/// The folders under a table's folder that hold files: `day=` folders, or their
/// `dataset=` folders for a table split by dataset.
pub(crate) fn leaf_folders(table_dir: &Path) -> Result<Vec<PathBuf>, CoreError> {
    let mut leaves = Vec::new();
    let mut pending = vec![table_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CoreError::io(format!("listing {}", dir.display()), e)),
        };
        let mut has_files = false;
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if name.starts_with("day=") || name.starts_with("dataset=") {
                        pending.push(entry.path());
                    }
                }
                Ok(t) if t.is_file() => has_files = true,
                _ => {}
            }
        }
        if has_files && dir != table_dir {
            leaves.push(dir);
        }
    }
    leaves.sort();
    Ok(leaves)
}

/// A query session: DataFusion's defaults, with `fields['K']` planned as the column of a
/// shredded key first ([`shredded_read::ShreddedFieldPlanner`]).
fn session(
    config: SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> SessionContext {
    let mut builder = datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features();
    if let Some(planners) = builder.expr_planners() {
        planners.insert(0, Arc::new(shredded_read::ShreddedFieldPlanner));
    }
    SessionContext::new_with_state(builder.build())
}

/// A stream that keeps its query's files until it is dropped.
fn guarded(stream: RecordBatchStream, guard: QueryGuard) -> RecordBatchStream {
    stream
        .map(move |item| {
            let _held = &guard;
            item
        })
        .boxed()
}

impl ParquetStore {
    /// A session whose tables hold only `tenant`'s rows.
    async fn tenant_session(&self, tenant: &str) -> Result<SessionContext, CoreError> {
        let scoped = session(self.ctx.copied_config(), self.ctx.runtime_env());
        let literal = tenant.replace('\'', "''");
        for table in Table::ALL {
            let name = table.name();
            let view = self
                .ctx
                .sql(&format!(
                    "SELECT * FROM {name} WHERE \"{}\" = '{literal}'",
                    col::TENANT
                ))
                .await
                .map_err(|e| CoreError::Internal(format!("tenant view of {name}: {e}")))?
                .into_view();
            scoped
                .register_table(name, view)
                .map_err(|e| CoreError::Internal(format!("registering view {name}: {e}")))?;
        }
        Ok(scoped)
    }
}

impl Files {
    /// Writes the parts of one batch; returns the files written.
    fn write(&self, table: Table, batch: &EventBatch) -> Result<Vec<PathBuf>, CoreError> {
        let l = layout(table);
        check_columns(table, &l, batch)?;
        let stem = match &batch.position {
            Some(p) => coverage::bus_stem(&p.topic, p.partition, p.offset),
            // The process id keeps two processes writing at the same millisecond
            // (`vedette hunt` next to `vedette run`) from taking the same name.
            None => format!(
                "w{}-{}-{:08}",
                chrono::Utc::now().timestamp_millis(),
                std::process::id(),
                self.sequence.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let table_dir = self.root.join(table.name());
        let _folders = self.folders.read().unwrap_or_else(|p| p.into_inner());
        let records = [batch.records.clone()];
        let mut todo = Vec::new();
        for (k, (key, part)) in rows::partition_rows(&records, TIME_COLUMN, l.dataset_column)?
            .into_iter()
            .enumerate()
        {
            let name = format!("{stem}-{k:03}.parquet");
            let folder = key.folder(&table_dir);
            if let FileOrigin::Bus(position) = origin(&name) {
                if self.visibility.covered(&folder, &position) {
                    tracing::debug!(file = name, "already merged: not written again");
                    continue;
                }
            }
            todo.push((folder, name, part));
        }
        // The files of the folders are gathered and encoded in parallel, each committed by
        // one of a few threads as soon as it is written.
        durable::write_durably(todo, |(folder, name, part)| {
            let rows = shredding::gather(&records, &part)?;
            files::write_unsynced(&folder, &name, &rows, Vec::new(), Codec::Fast)
        })
    }

    /// A new name for a file that accounts for others (a merge, a grouped append).
    fn compacted_name(&self) -> String {
        format!(
            "{COMPACTED_PREFIX}{}-{}-{:06}.parquet",
            chrono::Utc::now().timestamp_millis(),
            std::process::id(),
            self.sequence.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// One compaction pass over every folder, then a sweep of doomed files.
    fn compact(&self) -> Result<CompactionReport, CoreError> {
        let mut report = CompactionReport::default();
        let now = SystemTime::now();
        let policy = *self.policy.lock().unwrap_or_else(|p| p.into_inner());
        for table in Table::ALL {
            for folder in leaf_folders(&self.root.join(table.name()))? {
                let listed = list_folder(&folder)?;
                self.visibility.doom(self.visibility.superseded(&listed));
                // A compacted file of half a merge's rows is done (`visible` has read
                // the footers of compacted files: their rows are known).
                let visible: Vec<FileInFolder> = self
                    .visibility
                    .visible(listed)
                    .into_iter()
                    .filter(|f| {
                        self.visibility
                            .cached_rows(f)
                            .is_none_or(|rows| rows < policy.max_rows / 2)
                    })
                    .collect();
                for group in compaction::plan(&visible, now, &policy) {
                    let inputs: Vec<FileInFolder> =
                        group.iter().map(|&i| visible[i].clone()).collect();
                    let name = self.compacted_name();
                    let merged = {
                        let _folders = self.folders.read().unwrap_or_else(|p| p.into_inner());
                        compaction::merge(
                            &folder,
                            &name,
                            &inputs,
                            policy.max_rows,
                            policy.zstd_level,
                            &self.visibility,
                        )
                    };
                    match merged {
                        Ok(None) => {}
                        Ok(Some(m)) => {
                            report.merges += 1;
                            report.files_merged += m.inputs.len() as u64;
                            report.bytes_in += m.inputs.iter().map(|f| f.size).sum::<u64>();
                            report.bytes_out += m.output.size;
                            report.rows += m.rows;
                            // Retention may have dropped the day meanwhile: the merge
                            // goes with its inputs then.
                            let expired =
                                m.inputs.iter().any(|f| self.visibility.is_doomed(&f.path));
                            self.visibility.doom(m.inputs.into_iter().map(|f| f.path));
                            if expired {
                                self.visibility.doom([m.output.path]);
                            }
                        }
                        Err(e) => {
                            tracing::error!(folder = %folder.display(), error = %e, "merge failed; its files stay as they are");
                        }
                    }
                }
            }
        }
        report.files_deleted = self.visibility.sweep();
        report.files_waiting = self.visibility.doomed_count() as u64;
        Ok(report)
    }

    /// Dooms the files of day folders older than the retention (hidden at once,
    /// deleted when no query reads them), removes such folders once empty, and clears
    /// torn writes; returns how many day folders were newly dropped.
    fn retain(&self, now_ms: i64) -> Result<u64, CoreError> {
        let cutoff = files::day_of(now_ms - i64::from(self.retention_days) * 86_400_000);
        let mut dropped = 0;
        for table in Table::ALL {
            let dir = self.root.join(table.name());
            files::clear_torn_writes(&dir, TORN_WRITE_AGE)?;
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let expired: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix("day="))
                        .is_some_and(|day| day < cutoff.as_str())
                })
                .map(|e| e.path())
                .collect();
            for day_dir in &expired {
                let mut doomed = 0;
                let mut folders = leaf_folders(day_dir)?;
                folders.push(day_dir.clone());
                for folder in &folders {
                    doomed += self
                        .visibility
                        .doom(list_folder(folder)?.into_iter().map(|f| f.path));
                }
                if doomed > 0 {
                    dropped += 1;
                }
            }
            // What no query holds goes now; the folders it leaves empty with it.
            self.visibility.sweep();
            for day_dir in &expired {
                self.remove_empty(day_dir);
            }
            files::sync_dir(&dir)?;
        }
        Ok(dropped)
    }

    /// Removes `day_dir` and its `dataset=` folders where they are empty.
    fn remove_empty(&self, day_dir: &Path) {
        let _alone = self.folders.write().unwrap_or_else(|p| p.into_inner());
        if let Ok(entries) = std::fs::read_dir(day_dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    // Fails, harmlessly, while the folder holds a file.
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
        }
        let _ = std::fs::remove_dir(day_dir);
    }
}

/// Refuses a batch whose columns are not `table`'s.
fn check_columns(table: Table, l: &Layout, batch: &EventBatch) -> Result<(), CoreError> {
    let names: Vec<&String> = batch
        .records
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name())
        .collect();
    if !names
        .iter()
        .copied()
        .eq(l.schema.fields().iter().map(|f| f.name()))
    {
        return Err(CoreError::BadInput(format!(
            "a batch for table {} has columns {names:?}, not the table's",
            table.name()
        )));
    }
    Ok(())
}

fn join_error(e: tokio::task::JoinError) -> CoreError {
    CoreError::Internal(format!("store task failed: {e}"))
}

#[async_trait]
impl EventStore for ParquetStore {
    async fn append(&self, table: Table, batch: &EventBatch) -> Result<(), CoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Sorting, encoding and fsync are blocking work.
        let (files, batch) = (self.files.clone(), batch.clone());
        tokio::task::spawn_blocking(move || files.write(table, &batch))
            .await
            .map_err(join_error)?
            .map(|_| ())
    }

    async fn append_all(&self, table: Table, batches: &[EventBatch]) -> Result<(), CoreError> {
        let batches: Vec<EventBatch> = batches.iter().filter(|b| !b.is_empty()).cloned().collect();
        if batches.is_empty() {
            return Ok(());
        }
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || files.write_all(table, &batches))
            .await
            .map_err(join_error)?
            .map(|_| ())
    }

    /// No waiting: what the bus already holds is stored together (so a backlog makes
    /// large files, and a trickle is queryable at once), up to 64k rows or 64 MiB, as
    /// the rows of one append are held about three times over (read, joined, sorted).
    fn write_batching(&self, _table: Table) -> WriteBatching {
        WriteBatching {
            max_rows: 64 * 1024,
            max_bytes: 64 << 20,
            max_age: Duration::ZERO,
        }
    }

    async fn query(&self, sql: &str, scope: &QueryScope) -> Result<RecordBatchStream, CoreError> {
        let guard = self.files.visibility.begin_query();
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let ctx = match &scope.tenant {
            None => self.ctx.clone(),
            Some(tenant) => self.tenant_session(tenant).await?,
        };
        let frame = ctx
            .sql_with_options(sql, options)
            .await
            .map_err(query_error)?;
        let stream = frame.execute_stream().await.map_err(query_error)?;
        Ok(bounded(
            guarded(stream.map(|r| r.map_err(query_error)).boxed(), guard),
            self.limits,
        ))
    }

    async fn read_events(&self, from_ms: i64, to_ms: i64) -> Result<RecordBatchStream, CoreError> {
        let day = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "1970-01-01".into())
        };
        // `day` prunes folders; the time predicate then prunes row groups.
        // The event schema: not the folder columns, not the shredded keys' (their
        // values are in `fields`).
        let shredded: String = shredding::SHREDDED_KEYS
            .iter()
            .map(|k| format!(", \"{}\"", shredding::column_name(k)))
            .collect();
        let sql = format!(
            "SELECT * EXCLUDE (day, dataset{shredded}) FROM events \
             WHERE day >= '{}' AND day <= '{}' \
             AND \"@timestamp\" >= to_timestamp_millis({from_ms}) \
             AND \"@timestamp\" < to_timestamp_millis({to_ms})",
            day(from_ms),
            day(to_ms)
        );
        let guard = self.files.visibility.begin_query();
        let frame = self.ctx.sql(&sql).await.map_err(query_error)?;
        let stream = frame.execute_stream().await.map_err(query_error)?;
        Ok(guarded(
            stream.map(|r| r.map_err(query_error)).boxed(),
            guard,
        ))
    }

    async fn apply_retention(&self, now_ms: i64) -> Result<u64, CoreError> {
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || files.retain(now_ms))
            .await
            .map_err(join_error)?
    }

    async fn compact(&self) -> Result<CompactionReport, CoreError> {
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || files.compact())
            .await
            .map_err(join_error)?
    }
}
