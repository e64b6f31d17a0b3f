//! `store-bench`: the Parquet store, or ClickHouse, on realistic events.
//!
//! ```text
//! store-bench [--batches N] [--group G] [--times live|original] [--data corpus|generated]
//!             [--clickhouse URL] [--compact] [--no-queries] [--dir DIR]
//! ```
//!
//! With `--data generated`, events are the benchmark suite's generated stream
//! (`benches/scenarios/embedded.toml`: Sysmon, Security, PowerShell, Linux, auditd, syslog,
//! CEF, PAN-OS, CloudTrail and Okta over thousands of hosts and users), new events all the
//! way, each source parsed as the service parses it; `--batches` counts 8192-record
//! batches of the stream. By default (`corpus`),
//! events are the corpora's Windows events (replicated and varied, as `sigma-bench` does),
//! parsed into 40 distinct batches of 8192 rows, appended `--batches` times in turn (the
//! default 1221 makes 10,002,432 events), `--group` batches per append, each with a bus
//! position as the storage stage hands them over (the default is what the store asks the
//! stage for: 8 batches, 64 Ki rows, for Parquet; 6 for ClickHouse). With `--times live`
//! (the default) each batch's events are given times in the minute before its append,
//! as a live flow has; `--times original` keeps the corpus events' own times, which
//! spread every append over 20 days and 82 (day, dataset) folders. It reports the append rate and CPU per event,
//! the bytes stored per event against the bytes of the JSON lines, and the latency of
//! each query of `docs/queries.md` over what was stored. With `--clickhouse`, the events
//! go to a ClickHouse store (database `vedette_bench`, emptied first) in inserts of six
//! batches (49,152 rows, as the storage stage groups them), and the bytes stored are the
//! server's `bytes_on_disk` of the events table. Each round through the 40 batches gives
//! the events new ids, so every stored event is distinct.
//!
//! With `--compact` (Parquet), the queries run once on the files as appended, then the
//! store's compaction runs: passes until one merges nothing (the state a live flow
//! keeps), then one pass as if every folder had gone quiet (the state of past days).
//! It reports the files, bytes per event and time of each, and the queries again. For
//! Parquet it also reports the bytes per event of the largest columns. `--dir` keeps the
//! store in a folder (for `vedette hunt` or `vedette query` afterwards).

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use vedette_bench_bus::cpu;
use vedette_bench_bus::store_data::{column_bytes, GeneratedEvents};
use vedette_bench_sigma::{corpora_dir, corpus_windows_events, replicate, vedette_batches};
use vedette_core::batch::EventBatch;
use vedette_core::traits::{EventStore, QueryScope, Table, WriteBatching};
use vedette_storage::clickhouse::{ClickHouseOptions, ClickHouseStore};
use vedette_storage::parquet::ParquetStore;
use vedette_storage::{query_examples, Dialect, QueryLimits, QUERIES_MD};

/// The allocator of the `vedette` binary, so costs compare.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command line.
#[derive(Parser)]
struct Args {
    /// Batches of 8192 events to append.
    #[arg(long, default_value_t = 1221)]
    batches: usize,
    /// Store in the ClickHouse server at this URL instead of Parquet files.
    #[arg(long)]
    clickhouse: Option<String>,
    /// Parquet: compact after appending, and run the queries before and after.
    #[arg(long)]
    compact: bool,
    /// Only append: no queries (for profiling the write path).
    #[arg(long)]
    no_queries: bool,
    /// Batches per append (default: 8 for Parquet, 6 for ClickHouse).
    #[arg(long)]
    group: Option<usize>,
    /// Event times: `live` (the minute before each append) or `original` (the corpus's).
    #[arg(long, default_value = "live")]
    times: Times,
    /// Events: `corpus` (the corpora's Windows events, replicated) or `generated` (the
    /// suite's stream of ten sources, new events all the way).
    #[arg(long, default_value = "corpus")]
    data: Data,
    /// Keep the store in this (new or empty) folder instead of a temporary one.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Parquet: zstd level of merged files (`store.parquet.zstd_level`).
    #[arg(long, default_value_t = 3)]
    zstd_level: i32,
}

/// Which events are stored.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Data {
    /// The corpora's Windows events, replicated into 40 batches, new ids every round.
    Corpus,
    /// The suite's generated stream (`benches/scenarios/embedded.toml`), parsed per source.
    Generated,
}

/// Which times the stored events carry.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Times {
    /// Times in the minute before each append, as a live flow has.
    Live,
    /// The corpus events' own times (spread over days).
    Original,
}

/// Bus batches per Parquet append (64 Ki rows, the store's `write_batching`).
const PARQUET_GROUP: usize = 8;

/// Bus batches per ClickHouse insert (49,152 rows, within the stage's default 50,000).
const CLICKHOUSE_GROUP: usize = 6;
/// Database the ClickHouse run uses.
const BENCH_DATABASE: &str = "vedette_bench";

/// Bytes ClickHouse keeps on disk for the events table.
async fn clickhouse_bytes(url: &str) -> anyhow::Result<u64> {
    let client = clickhouse::Client::default().with_url(url);
    let mut cursor = client
        .query(&format!(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = '{BENCH_DATABASE}' AND table = 'events'"
        ))
        .fetch_bytes("TSV")?;
    let text = String::from_utf8(cursor.collect().await?.to_vec())?;
    Ok(text.trim().parse()?)
}

/// `batch` with `-r<round>` appended to every `event.id`, so that each round stores
/// distinct events (ClickHouse would otherwise merge the copies away).
fn distinct_ids(batch: &EventBatch, round: usize) -> anyhow::Result<EventBatch> {
    use arrow::array::{Array, AsArray, StringArray};
    let records = &batch.records;
    let index = records
        .schema()
        .index_of(vedette_core::schema::col::EVENT_ID)?;
    let ids = records.column(index).as_string::<i32>();
    let renamed: StringArray = (0..ids.len())
        .map(|i| (!ids.is_null(i)).then(|| format!("{}-r{round}", ids.value(i))))
        .collect();
    let mut columns = records.columns().to_vec();
    columns[index] = std::sync::Arc::new(renamed);
    let mut out = batch.clone();
    out.records = arrow::array::RecordBatch::try_new(records.schema(), columns)?;
    Ok(out)
}

/// `batch` with its events' times moved into the minute before `now_ms` (each keeps its
/// millisecond within the minute), and a bus position at `offset`. An id that begins with
/// its event's time (`vedette_core::id::with_time`) begins with the new time, as the
/// ingest would have made it.
fn live(batch: &EventBatch, now_ms: i64, offset: u64) -> anyhow::Result<EventBatch> {
    use arrow::array::{Array, AsArray, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::TimestampMillisecondType;
    use vedette_core::id::with_time;
    let records = &batch.records;
    let index = records
        .schema()
        .index_of(vedette_core::schema::col::TIMESTAMP)?;
    let id_index = records
        .schema()
        .index_of(vedette_core::schema::col::EVENT_ID)?;
    let times = records
        .column(index)
        .as_primitive::<TimestampMillisecondType>();
    let ids = records.column(id_index).as_string::<i32>();
    let moved: TimestampMillisecondArray = times
        .iter()
        .map(|t| t.map(|ms| now_ms - 60_000 + ms.rem_euclid(60_000)))
        .collect::<TimestampMillisecondArray>()
        .with_timezone(vedette_core::schema::UTC);
    let restamped: StringArray = (0..ids.len())
        .map(|i| {
            let id = ids.is_valid(i).then(|| ids.value(i))?;
            let (old, new) = (times.value(i), moved.value(i));
            match with_time(id, old) {
                Some(same) if same == id && times.is_valid(i) => with_time(id, new),
                _ => Some(id.to_string()),
            }
        })
        .collect();
    let mut columns = records.columns().to_vec();
    columns[index] = std::sync::Arc::new(moved);
    columns[id_index] = std::sync::Arc::new(restamped);
    let mut out = batch.clone();
    out.records = arrow::array::RecordBatch::try_new(records.schema(), columns)?;
    out.position = Some(vedette_core::batch::BusPosition {
        topic: "events".into(),
        partition: 0,
        offset,
    });
    Ok(out)
}

/// The wall clock in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Bytes and Parquet files under `dir`.
fn folder_stats(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries.flatten().fold((0, 0), |(bytes, files), e| {
        let path = e.path();
        let (b, f) = if path.is_dir() {
            folder_stats(&path)
        } else {
            (
                e.metadata().map_or(0, |m| m.len()),
                u64::from(path.extension().is_some_and(|x| x == "parquet")),
            )
        };
        (bytes + b, files + f)
    })
}

/// Prints the columns that hold most of the bytes under `dir`, per event.
fn print_columns(dir: &Path, events: usize) -> anyhow::Result<()> {
    let columns = column_bytes(dir)?;
    let shown: Vec<String> = columns
        .iter()
        .take(12)
        .map(|(name, bytes)| format!("{name} {:.1}", *bytes as f64 / events.max(1) as f64))
        .collect();
    println!("columns  bytes/event: {}", shown.join(", "));
    Ok(())
}

/// Runs every query of docs/queries.md, printing its time and row count.
async fn run_queries(store: &dyn EventStore, dialect: Dialect) -> anyhow::Result<()> {
    for sql in query_examples(QUERIES_MD, dialect) {
        let started = Instant::now();
        let mut stream = store
            .query(&sql, &QueryScope::all())
            .await
            .with_context(|| sql.clone())?;
        let mut rows = 0;
        let mut failed = None;
        while let Some(b) = stream.next().await {
            match b {
                Ok(b) => rows += b.num_rows(),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            println!(
                "query    failed after {:.1} ms: {e}",
                started.elapsed().as_secs_f64() * 1e3
            );
            continue;
        }
        let first = sql
            .lines()
            .find(|l| l.contains("FROM"))
            .unwrap_or("")
            .trim();
        println!(
            "query    {:>8.1} ms {rows:>6} rows  {} … {first}",
            started.elapsed().as_secs_f64() * 1e3,
            sql.lines().next().unwrap_or("").trim()
        );
    }
    Ok(())
}

/// Compaction passes until one merges nothing; prints what they did.
async fn compact_until_stable(
    store: &ParquetStore,
    events_dir: &Path,
    events: usize,
    label: &str,
) -> anyhow::Result<()> {
    let (wall, cpu0) = (Instant::now(), cpu());
    let (mut passes, mut merges, mut rows) = (0, 0, 0);
    loop {
        let r = store.compact().await?;
        passes += 1;
        merges += r.merges;
        rows += r.rows;
        if r.merges == 0 {
            break;
        }
    }
    let (wall, cpu_time) = (wall.elapsed(), cpu() - cpu0);
    let (stored, files) = folder_stats(events_dir);
    println!(
        "{label:<8} {passes} passes, {merges} merges, {rows} rows rewritten in {:.1} s ({:.0} rows/s, {} µs CPU/row); {} files, {:.1} bytes/event",
        wall.as_secs_f64(),
        rows as f64 / wall.as_secs_f64().max(1e-9),
        // A pass that merged nothing has no CPU per row.
        if rows == 0 {
            "-".to_string()
        } else {
            format!("{:.3}", cpu_time.as_secs_f64() * 1e6 / rows as f64)
        },
        files,
        stored as f64 / events as f64
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (batches, mut generated, corpus_bytes) = match args.data {
        Data::Corpus => {
            let base = corpus_windows_events(&corpora_dir()?)?;
            let lines = replicate(&base, 40 * 8192)?;
            let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
            let batches: Vec<EventBatch> = vedette_batches(&lines)?
                .into_iter()
                .map(|r| EventBatch::new(r, "bench", "default", 0))
                .collect();
            (batches, None, bytes as f64 / lines.len() as f64)
        }
        Data::Generated => (Vec::new(), Some(GeneratedEvents::new()?), 0.0),
    };
    let temp = tempfile::tempdir()?;
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let parquet = match &args.clickhouse {
        Some(_) => None,
        None => {
            let s = std::sync::Arc::new(ParquetStore::open(
                root.as_path(),
                36_500,
                QueryLimits::default(),
            )?);
            // Nothing else reads these files: delete what merges replace at once.
            s.set_delete_grace(std::time::Duration::ZERO);
            s.set_zstd_level(args.zstd_level)?;
            Some(s)
        }
    };
    let store: std::sync::Arc<dyn EventStore> = match &args.clickhouse {
        Some(url) => {
            clickhouse::Client::default()
                .with_url(url)
                .query(&format!("DROP DATABASE IF EXISTS {BENCH_DATABASE}"))
                .execute()
                .await?;
            std::sync::Arc::new(
                ClickHouseStore::open(ClickHouseOptions {
                    url: url.clone(),
                    database: BENCH_DATABASE.into(),
                    user: "default".into(),
                    password: None,
                    retention_days: 36_500,
                    limits: QueryLimits::default(),
                    batching: WriteBatching::IMMEDIATE,
                })
                .await?,
            )
        }
        None => parquet.clone().context("the Parquet store")?,
    };
    let group = args.group.unwrap_or(if args.clickhouse.is_some() {
        CLICKHOUSE_GROUP
    } else {
        PARQUET_GROUP
    });
    // Only the appends are timed: the harness's own work on each batch (new ids, new
    // times) is not the store's.
    let (mut wall, mut cpu_time) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    let mut events = 0usize;
    if let Some(generated) = generated.as_mut() {
        // New events all the way: each append is `group` batches' worth of the stream.
        let mut offset = 0u64;
        for _ in 0..args.batches.div_ceil(group) {
            let mut appended = Vec::new();
            for b in generated.next_batches(group * 8192)? {
                let b = match args.times {
                    Times::Live => live(&b, now_ms(), offset)?,
                    Times::Original => b,
                };
                offset += 1;
                events += b.len();
                appended.push(b);
            }
            let (started, cpu0) = (Instant::now(), cpu());
            store.append_all(Table::Events, &appended).await?;
            (wall, cpu_time) = (wall + started.elapsed(), cpu_time + (cpu() - cpu0));
        }
    } else {
        let mut pending = Vec::new();
        for i in 0..args.batches {
            let b = distinct_ids(&batches[i % batches.len()], i / batches.len())?;
            let b = match args.times {
                Times::Live => live(&b, now_ms(), i as u64)?,
                Times::Original => b,
            };
            events += b.len();
            pending.push(b);
            if pending.len() == group || i + 1 == args.batches {
                let (started, cpu0) = (Instant::now(), cpu());
                store.append_all(Table::Events, &pending).await?;
                (wall, cpu_time) = (wall + started.elapsed(), cpu_time + (cpu() - cpu0));
                pending.clear();
            }
        }
    }
    let (stored, dialect) = match &args.clickhouse {
        Some(url) => (clickhouse_bytes(url).await?, Dialect::ClickHouse),
        None => (
            folder_stats(&root.as_path().join("events")).0,
            Dialect::DataFusion,
        ),
    };
    let data = match &generated {
        Some(g) => format!(
            "the generated stream of ten sources, {:.0} bytes of text per event",
            g.text_bytes as f64 / g.records.max(1) as f64
        ),
        None => format!(
            "{} distinct batches of 8192 corpus Windows events, {corpus_bytes:.0} bytes of JSON per event",
            batches.len()
        ),
    };
    println!(
        "# {events} events ({data}), {group} batches per append, {} times, {} CPUs",
        if args.times == Times::Live {
            "live"
        } else {
            "original"
        },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "append   {:>10.0} events/s {:>7.3} µs CPU/event  {:.1} s",
        events as f64 / wall.as_secs_f64(),
        cpu_time.as_secs_f64() * 1e6 / events as f64,
        wall.as_secs_f64()
    );
    println!(
        "stored   {:.1} bytes/event ({:.1} MiB in all)",
        stored as f64 / events as f64,
        stored as f64 / (1 << 20) as f64
    );
    println!(
        "files    {} Parquet files",
        folder_stats(&root.as_path().join("events")).1
    );
    if parquet.is_some() {
        print_columns(&root.as_path().join("events"), events)?;
    }
    if args.no_queries {
        return Ok(());
    }
    run_queries(store.as_ref(), dialect).await?;
    if let (true, Some(parquet)) = (args.compact, &parquet) {
        let events_dir = root.as_path().join("events");
        compact_until_stable(parquet, &events_dir, events, "live").await?;
        parquet.set_cold_after(std::time::Duration::ZERO);
        compact_until_stable(parquet, &events_dir, events, "quiet").await?;
        print_columns(&events_dir, events)?;
        run_queries(store.as_ref(), dialect).await?;
    }
    Ok(())
}
