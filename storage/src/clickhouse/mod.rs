//! [`ClickHouseStore`]: events, alerts and dead letters in ClickHouse, for deployments
//! that outgrow one machine. Several `vedette` processes write to one server (or
//! cluster) and analysts query it with ClickHouse SQL.
//!
//! # Writes
//!
//! Rows go over HTTP with the official `clickhouse` crate as `RowBinary`, LZ4
//! compressed, encoded straight from the Arrow columns ([`row_binary`]). The storage
//! stage groups bus batches into inserts of about [`WriteBatching`] size (ClickHouse
//! wants 10k–100k rows per insert, about one per second per table); a group of up to
//! [`MAX_INSERT_ROWS`] rows is one insert, which the server applies as one block (all
//! or nothing).
//!
//! # Idempotence
//!
//! Every row carries the bus position of its batch (`_partition`, `_offset`), and a
//! materialized view writes one row per position into the ledger `<table>_batches`
//! within the same insert. Before inserting, the store looks the group's positions up
//! in the ledger and leaves out the batches already stored: a batch delivered again
//! after a crash or a rebalance is not stored twice. (The tables are also
//! `ReplacingMergeTree` on a key that ends with the event or alert id, a second guard
//! that merges away duplicates in the background.)
//!
//! # Schema and server versions
//!
//! Tables are created at start, or completed with the columns they lack. The server's
//! version picks a profile ([`tables::Profile`]): portable types on old servers
//! (18.16: `DateTime` to the second, maps as `Nested` arrays, retention by dropping
//! partitions) and current types and features on 22.3 and later (`DateTime64(3)`,
//! `LowCardinality`, `Map`, codecs, skip indexes, TTL). A table keeps the profile it
//! was created with. On portable tables, `fields['CommandLine']` in a query is
//! rewritten to the equivalent array lookup, so the same query text works on both.
//! Partitions are days (`toYYYYMMDD(@timestamp)`); run the server in UTC.
//!
//! # Queries
//!
//! Analyst SQL must be one read statement ([`sql`]); it runs with `readonly=1`, the
//! row limit and time limit of [`QueryLimits`] (on the server and again on the
//! stream), and results stream back as `TabSeparatedWithNamesAndTypes` decoded into
//! Arrow ([`tsv`]). A query confined to a tenant runs against that tenant's views
//! and is checked first so that it reaches nothing else ([`tenant`]).

mod read_events;
mod row_binary;
mod sql;
mod tables;
mod tenant;
mod tsv;

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use bytes::Bytes;
use clickhouse::query::BytesCursor;
use clickhouse::{Client, Compression};
use futures::stream::{self, BoxStream, StreamExt};
use vedette_core::batch::EventBatch;
use vedette_core::traits::{EventStore, QueryScope, RecordBatchStream, Table, WriteBatching};
use vedette_core::CoreError;

use crate::query_limits::{bounded, QueryLimits};
pub use tables::Profile;
use tables::{Column, NO_OFFSET};

/// Rows in one insert at most, well under the server's block size (1 Mi rows), so an
/// insert stays one block.
pub const MAX_INSERT_ROWS: usize = 500_000;
/// Time allowed to reach the server at start, with retries.
const CONNECT_PATIENCE: Duration = Duration::from_secs(30);

/// How to reach and use the server.
#[derive(Debug, Clone)]
pub struct ClickHouseOptions {
    /// HTTP(S) URL, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database of Vedette's tables (letters, digits and `_`).
    pub database: String,
    /// User name.
    pub user: String,
    /// Password, if the user has one.
    pub password: Option<String>,
    /// Days kept in each table.
    pub retention_days: u32,
    /// Bounds of analyst queries.
    pub limits: QueryLimits,
    /// Size of the inserts the storage stage should group bus batches into.
    pub batching: WriteBatching,
}

/// One table as this server holds it.
struct TableInfo {
    profile: Profile,
    columns: Vec<Column>,
    insert_sql: String,
}

/// The ClickHouse store.
pub struct ClickHouseStore {
    client: Client,
    database: String,
    tables: [TableInfo; Table::ALL.len()],
    /// Map columns kept as `Nested` arrays (queries rewrite their lookups).
    nested_maps: Vec<String>,
    options: ClickHouseOptions,
    version: String,
    /// Tenants whose views exist (created on their first query).
    tenant_views: std::sync::Mutex<HashSet<String>>,
}

fn table_index(table: Table) -> usize {
    match table {
        Table::Events => 0,
        Table::Alerts => 1,
        Table::DeadLetters => 2,
        Table::Audit => 3,
    }
}

/// ClickHouse error codes that mean the query itself is wrong or too big.
const QUERY_FAULT_CODES: &[u32] = &[
    1, 6, 10, 16, 27, 36, 38, 41, 42, 43, 44, 46, 47, 48, 50, 53, 59, 60, 62, 63, 69, 70, 72, 73,
    80, 81, 115, 158, 159, 164, 179, 184, 215, 241, 307, 352, 386, 396, 497,
];

/// The server's error code in an error message (`Code: 62, ...` or `Code: 62. ...`).
fn error_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Maps a client error: the query's fault, or the server's / the network's.
fn query_error(e: clickhouse::error::Error) -> CoreError {
    let message = e.to_string();
    match error_code(&message) {
        Some(code) if QUERY_FAULT_CODES.contains(&code) => {
            CoreError::BadInput(format!("query: {}", server_message(&message)))
        }
        _ => external(e),
    }
}

/// The readable part of a server error.
fn server_message(message: &str) -> String {
    let m = message.trim().trim_start_matches("bad response: ");
    m.split(", e.what()").next().unwrap_or(m).trim().to_string()
}

fn external(e: clickhouse::error::Error) -> CoreError {
    let retryable = matches!(
        e,
        clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut
    ) || error_code(&e.to_string()).is_none();
    CoreError::External {
        service: "clickhouse".into(),
        message: server_message(&e.to_string()),
        retryable,
    }
}

impl ClickHouseStore {
    /// Connects (retrying for a while), detects the server version, and creates or
    /// completes the database and tables.
    pub async fn open(options: ClickHouseOptions) -> Result<Self, CoreError> {
        let mut client = Client::default()
            .with_url(&options.url)
            .with_user(&options.user)
            .with_compression(Compression::Lz4)
            .with_validation(false);
        if let Some(password) = &options.password {
            client = client.with_password(password);
        }
        let version = connect(&client, &options.url).await?;
        let database = options.database.clone();
        run(
            &client,
            &format!("CREATE DATABASE IF NOT EXISTS {}", tables::quote(&database)),
        )
        .await?;
        let server_profile = Profile::for_version(&version);
        let mut infos = Vec::new();
        for table in Table::ALL {
            infos.push(
                prepare_table(
                    &client,
                    &database,
                    table,
                    server_profile,
                    options.retention_days,
                )
                .await?,
            );
        }
        let nested_maps = Table::ALL
            .iter()
            .zip(&infos)
            .filter(|(_, info)| info.profile == Profile::Portable)
            .flat_map(|(t, _)| tables::map_columns(*t))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let tables: [TableInfo; Table::ALL.len()] = infos
            .try_into()
            .map_err(|_| CoreError::Internal("clickhouse: one info per table expected".into()))?;
        tracing::info!(
            url = %options.url,
            version,
            events_profile = ?tables[0].profile,
            "clickhouse store ready"
        );
        Ok(Self {
            client: client.with_database(&database),
            database,
            tables,
            nested_maps,
            options,
            version,
            tenant_views: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// A client whose default database holds only `tenant`'s views (created once).
    async fn tenant_client(&self, tenant: &str) -> Result<Client, CoreError> {
        let known = self
            .tenant_views
            .lock()
            .map(|v| v.contains(tenant))
            .unwrap_or(false);
        if !known {
            for statement in tenant::view_statements(&self.database, tenant) {
                run(&self.client, &statement).await?;
            }
            if let Ok(mut v) = self.tenant_views.lock() {
                v.insert(tenant.to_string());
            }
        }
        Ok(self
            .client
            .clone()
            .with_database(tenant::tenant_database(&self.database, tenant)))
    }

    /// The server's version string.
    pub fn server_version(&self) -> &str {
        &self.version
    }

    /// The profile `table` was created with.
    pub fn profile(&self, table: Table) -> Profile {
        self.tables[table_index(table)].profile
    }

    /// Positions among `batches` already in the ledger of `table`.
    async fn stored_positions(
        &self,
        table: Table,
        batches: &[&EventBatch],
    ) -> Result<HashSet<(u32, u64)>, CoreError> {
        let keys: Vec<String> = batches
            .iter()
            .filter_map(|b| b.position.as_ref())
            .map(|p| format!("({}, {})", p.partition, p.offset))
            .collect();
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        let sql = format!(
            "SELECT _partition, _offset FROM {}.{} WHERE (_partition, _offset) IN ({})",
            tables::quote(&self.database),
            tables::quote(&tables::ledger_name(table)),
            keys.join(", ")
        );
        let text = fetch_text(&self.client, &sql).await?;
        let mut found = HashSet::new();
        for line in text.lines() {
            let mut cells = line.split('\t');
            if let (Some(Ok(p)), Some(Ok(o))) = (
                cells.next().map(str::parse::<u32>),
                cells.next().map(str::parse::<u64>),
            ) {
                found.insert((p, o));
            }
        }
        Ok(found)
    }

    /// Inserts `batches` as one insert (they are already checked and not yet stored).
    async fn insert(&self, table: Table, batches: &[&EventBatch]) -> Result<(), CoreError> {
        let info = &self.tables[table_index(table)];
        let mut body = Vec::new();
        for b in batches {
            row_binary::encode(&mut body, &b.records, &info.columns, b.position.as_ref())?;
        }
        if body.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .client
            .insert_formatted_with(info.insert_sql.clone())
            .with_timeouts(
                Some(Duration::from_secs(60)),
                Some(Duration::from_secs(120)),
            );
        insert.send(Bytes::from(body)).await.map_err(external)?;
        insert.end().await.map_err(external)
    }
}

/// Every statement that creates Vedette's database and tables under `profile`, in
/// order (for operators who create them by hand, and for dialect tests).
pub fn schema_statements(
    database: &str,
    profile: Profile,
    retention_days: u32,
) -> Result<Vec<String>, CoreError> {
    let mut out = vec![format!(
        "CREATE DATABASE IF NOT EXISTS {}",
        tables::quote(database)
    )];
    for table in Table::ALL {
        out.push(tables::create_table(
            database,
            table,
            profile,
            retention_days,
        )?);
        out.push(tables::create_ledger(database, table));
        out.push(tables::create_ledger_view(database, table));
    }
    Ok(out)
}

/// `batch` encoded as the rows of `table` under `profile`, with the column list of
/// the encoding (`` `name` Type, ...``, as the `file()` / `input()` table functions
/// take it).
pub fn row_binary(
    table: Table,
    profile: Profile,
    batch: &EventBatch,
) -> Result<(String, Vec<u8>), CoreError> {
    check_shape(table, batch)?;
    let columns = tables::columns(table, profile)?;
    let mut body = Vec::new();
    row_binary::encode(&mut body, &batch.records, &columns, batch.position.as_ref())?;
    let structure = columns
        .iter()
        .map(|c| format!("{} {}", tables::quote(&c.name), c.ch_type))
        .collect::<Vec<_>>()
        .join(", ");
    Ok((structure, body))
}

/// The query a retro-hunt reads events with, from `from_ms` to `to_ms` (Unix ms).
pub fn read_events_sql(database: &str, profile: Profile, from_ms: i64, to_ms: i64) -> String {
    read_events::select_events(database, profile, from_ms, to_ms)
}

/// Asks the server its version, retrying while it is not reachable.
async fn connect(client: &Client, url: &str) -> Result<String, CoreError> {
    let started = std::time::Instant::now();
    let mut wait = Duration::from_millis(200);
    loop {
        match fetch_text(client, "SELECT version()").await {
            Ok(v) => return Ok(v.trim().to_string()),
            Err(CoreError::External {
                message,
                retryable: true,
                ..
            }) if started.elapsed() < CONNECT_PATIENCE => {
                tracing::warn!(url, error = %message, retry_in = ?wait, "clickhouse not reachable yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                return Err(CoreError::External {
                    service: "clickhouse".into(),
                    message: format!("cannot reach {url}: {e}"),
                    retryable: false,
                })
            }
        }
    }
}

/// The chunks of a response, as a stream.
fn chunks(cursor: BytesCursor) -> BoxStream<'static, Result<Bytes, CoreError>> {
    stream::unfold(Some(cursor), |cursor| async move {
        let mut cursor = cursor?;
        match cursor.next().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(cursor))),
            Ok(None) => None,
            Err(e) => Some((Err(query_error(e)), None)),
        }
    })
    .boxed()
}

/// Decodes `TabSeparatedWithNamesAndTypes` chunks into batches, each passed through
/// `convert`; the stream ends after the first error.
fn decode_stream(
    chunks: BoxStream<'static, Result<Bytes, CoreError>>,
    convert: fn(RecordBatch) -> Result<RecordBatch, CoreError>,
) -> BoxStream<'static, Result<RecordBatch, CoreError>> {
    let state = (chunks, Some(tsv::TsvDecoder::new()), VecDeque::new());
    stream::unfold(
        state,
        move |(mut chunks, mut decoder, mut ready)| async move {
            loop {
                if let Some(batch) = ready.pop_front() {
                    return Some((convert(batch), (chunks, decoder, ready)));
                }
                let d = decoder.as_mut()?;
                let step = match chunks.next().await {
                    Some(Ok(chunk)) => d.feed(&chunk).map(|more| (more, false)),
                    Some(Err(e)) => Err(e),
                    None => decoder
                        .take()
                        .map_or(Ok(None), |d| d.finish())
                        .map(|last| (last.into_iter().collect(), true)),
                };
                match step {
                    Ok((more, done)) => {
                        ready.extend(more);
                        if done {
                            decoder = None;
                            if ready.is_empty() {
                                return None;
                            }
                        }
                    }
                    Err(e) => return Some((Err(e), (chunks, None, VecDeque::new()))),
                }
            }
        },
    )
    .boxed()
}

/// Runs a statement that returns nothing.
async fn run(client: &Client, sql: &str) -> Result<(), CoreError> {
    client.query_raw(sql).execute().await.map_err(external)
}

/// Runs a query and returns its `TabSeparated` text.
async fn fetch_text(client: &Client, sql: &str) -> Result<String, CoreError> {
    let mut cursor = client
        .query_raw(sql)
        .fetch_bytes("TabSeparated")
        .map_err(external)?;
    let bytes = cursor.collect().await.map_err(external)?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| CoreError::Internal("clickhouse: answer is not UTF-8".into()))
}

/// Creates `table` (or completes it) with its ledger; returns how it is laid out.
async fn prepare_table(
    client: &Client,
    database: &str,
    table: Table,
    server_profile: Profile,
    retention_days: u32,
) -> Result<TableInfo, CoreError> {
    let existing = fetch_text(
        client,
        &format!(
            "SELECT name, type FROM system.columns WHERE database = '{database}' AND table = '{}'",
            table.name()
        ),
    )
    .await?;
    let existing: Vec<(String, String)> = existing
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let profile = existing
        .iter()
        .find(|(n, _)| n == "@timestamp")
        .map_or(server_profile, |(_, t)| Profile::of_time_type(t));
    run(
        client,
        &tables::create_table(database, table, profile, retention_days)?,
    )
    .await?;
    let columns = tables::columns(table, profile)?;
    if !existing.is_empty() {
        for c in &columns {
            if !existing.iter().any(|(n, _)| *n == c.name) {
                tracing::info!(table = table.name(), column = %c.name, "clickhouse: adding a column");
                run(
                    client,
                    &format!(
                        "ALTER TABLE {}.{} ADD COLUMN {} {}",
                        tables::quote(database),
                        tables::quote(table.name()),
                        tables::quote(&c.name),
                        c.ch_type
                    ),
                )
                .await?;
            }
        }
        if profile == Profile::Modern {
            run(
                client,
                &format!(
                    "ALTER TABLE {}.{} MODIFY TTL toDateTime(`@timestamp`) + INTERVAL {retention_days} DAY DELETE",
                    tables::quote(database),
                    tables::quote(table.name()),
                ),
            )
            .await?;
        }
    }
    run(client, &tables::create_ledger(database, table)).await?;
    run(client, &tables::create_ledger_view(database, table)).await?;
    let names: Vec<String> = columns.iter().map(|c| tables::quote(&c.name)).collect();
    let insert_sql = format!(
        "INSERT INTO {}.{} ({}) FORMAT RowBinary",
        tables::quote(database),
        tables::quote(table.name()),
        names.join(", ")
    );
    Ok(TableInfo {
        profile,
        columns,
        insert_sql,
    })
}

/// Whether `batch` has exactly the columns of `table`.
fn check_shape(table: Table, batch: &EventBatch) -> Result<(), CoreError> {
    let want = tables::arrow_schema(table);
    let got = batch.records.schema();
    let same = want.fields().len() == got.fields().len()
        && want
            .fields()
            .iter()
            .zip(got.fields())
            .all(|(w, g)| w.name() == g.name() && w.data_type().equals_datatype(g.data_type()));
    if same {
        Ok(())
    } else {
        Err(CoreError::BadInput(format!(
            "clickhouse: a batch for table {} does not have its columns",
            table.name()
        )))
    }
}

#[async_trait]
impl EventStore for ClickHouseStore {
    async fn append(&self, table: Table, batch: &EventBatch) -> Result<(), CoreError> {
        self.append_all(table, std::slice::from_ref(batch)).await
    }

    async fn append_all(&self, table: Table, batches: &[EventBatch]) -> Result<(), CoreError> {
        for b in batches {
            check_shape(table, b)?;
        }
        let stored = self
            .stored_positions(table, &batches.iter().collect::<Vec<_>>())
            .await?;
        let fresh: Vec<&EventBatch> = batches
            .iter()
            .filter(|b| {
                !b.is_empty()
                    && !b.position.as_ref().is_some_and(|p| {
                        p.offset != NO_OFFSET && stored.contains(&(p.partition, p.offset))
                    })
            })
            .collect();
        if fresh.len() < batches.len() {
            tracing::debug!(
                table = table.name(),
                skipped = batches.len() - fresh.len(),
                "clickhouse: batches already stored"
            );
        }
        let mut group: Vec<&EventBatch> = Vec::new();
        let mut rows = 0;
        for b in fresh {
            if rows + b.len() > MAX_INSERT_ROWS && !group.is_empty() {
                self.insert(table, &group).await?;
                group.clear();
                rows = 0;
            }
            rows += b.len();
            group.push(b);
        }
        if !group.is_empty() {
            self.insert(table, &group).await?;
        }
        Ok(())
    }

    fn write_batching(&self, _table: Table) -> WriteBatching {
        self.options.batching
    }

    async fn query(&self, sql: &str, scope: &QueryScope) -> Result<RecordBatchStream, CoreError> {
        let statement = sql::read_only_statement(sql)?;
        let client = match &scope.tenant {
            None => self.client.clone(),
            Some(t) => {
                tenant::check_tenant_query(statement)?;
                self.tenant_client(t).await?
            }
        };
        let maps: Vec<&str> = self.nested_maps.iter().map(String::as_str).collect();
        let statement = sql::rewrite_map_lookups(statement, &maps)?;
        let limits = self.options.limits;
        let mut cursor = client
            .query_raw(&statement)
            .with_setting("readonly", "1")
            .with_setting(
                "max_execution_time",
                limits.timeout.as_secs().max(1).to_string(),
            )
            .with_setting("max_result_rows", (limits.max_rows + 1).to_string())
            .with_setting("result_overflow_mode", "break")
            .with_setting("wait_end_of_query", "1")
            .fetch_bytes("TabSeparatedWithNamesAndTypes")
            .map_err(query_error)?;
        // The first chunk carries the server's verdict on the query (errors come as an
        // HTTP status, since the server waits for the end of the query).
        let first = cursor.next().await.map_err(query_error)?;
        let head = stream::iter(first.map(Ok));
        let batches = decode_stream(head.chain(chunks(cursor)).boxed(), Ok);
        Ok(bounded(batches, limits))
    }

    async fn read_events(&self, from_ms: i64, to_ms: i64) -> Result<RecordBatchStream, CoreError> {
        let profile = self.tables[table_index(Table::Events)].profile;
        let sql = read_events::select_events(&self.database, profile, from_ms, to_ms);
        let cursor = self
            .client
            .query_raw(&sql)
            .fetch_bytes("TabSeparatedWithNamesAndTypes")
            .map_err(external)?;
        Ok(decode_stream(chunks(cursor), |b| {
            read_events::to_event_batch(&b)
        }))
    }

    async fn apply_retention(&self, now_ms: i64) -> Result<u64, CoreError> {
        const DAY_MS: i64 = 86_400_000;
        let cut_ms = now_ms - i64::from(self.options.retention_days) * DAY_MS;
        let cut = chrono::DateTime::from_timestamp_millis(cut_ms)
            .map(|t| t.format("%Y%m%d").to_string())
            .and_then(|d| d.parse::<u32>().ok())
            .ok_or_else(|| CoreError::Internal("retention: time out of range".into()))?;
        let mut dropped = 0u64;
        let ledgers = Table::ALL.map(tables::ledger_name);
        let names = Table::ALL
            .iter()
            .map(|t| (t.name(), true))
            .chain(ledgers.iter().map(|l| (l.as_str(), false)));
        for (name, counted) in names {
            let partitions = fetch_text(
                &self.client,
                &format!(
                    "SELECT DISTINCT partition FROM system.parts \
                     WHERE database = '{}' AND table = '{}' AND active",
                    self.database, name
                ),
            )
            .await?;
            for p in partitions
                .lines()
                .filter_map(|l| l.trim().parse::<u32>().ok())
            {
                if p < cut {
                    run(
                        &self.client,
                        &format!(
                            "ALTER TABLE {}.{} DROP PARTITION {p}",
                            tables::quote(&self.database),
                            tables::quote(name)
                        ),
                    )
                    .await?;
                    if counted {
                        dropped += 1;
                        tracing::info!(table = name, day = p, "clickhouse: dropped an old day");
                    }
                }
            }
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_classified() {
        assert_eq!(
            error_code("bad response: Code: 62, e.displayText() = x"),
            Some(62)
        );
        assert_eq!(error_code("Code: 159. DB::Exception: Timeout"), Some(159));
        assert_eq!(error_code("connection refused"), None);
        assert_eq!(
            server_message("bad response: Code: 62, e.displayText() = DB::Exception: Syntax error, e.what() = DB::Exception"),
            "Code: 62, e.displayText() = DB::Exception: Syntax error"
        );
    }
}
