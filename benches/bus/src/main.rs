//! `bus-bench`: what the bus costs, per bus, on realistic 8192-event batches.
//!
//! ```text
//! bus-bench [--batches N] [--kafka HOST:PORT]
//! ```
//!
//! Events are the corpora's Windows events (replicated and varied, as `sigma-bench`
//! does), parsed into 8192-row batches. For each bus (the embedded log syncing every
//! append, syncing every 5 ms, syncing every append with zstd records, and Kafka when
//! `--kafka` names a broker) it measures, in this order:
//!
//! - append: N batches appended one at a time (as the ingest stage does), each awaited
//!   until durable: batches/s, events/s, CPU µs per event;
//! - consume: the same N batches read back by a consumer group from the segment files
//!   (no batches kept in memory: a consumer that fell behind): events/s, CPU µs/event;
//! - latency: batches appended while a consumer polls; the time from the start of each
//!   append to the delivery of each of its records (one per partition, or per slice of
//!   a batch cut to be encoded on every core), p50 / p99 / max;
//!   for 8192-event batches 10 ms apart (back to back: about eight times the rate the
//!   pipeline sustains) and 200 ms apart (the rate `vedette run` sustains), and for
//!   512-event ones 10 ms apart (what a live flow's 250 ms flush typically holds);
//! - read back (Kafka): what the group processed of every partition, read back as a node
//!   taking the partitions over does to rebuild its correlation windows and baselines;
//! - live: the N batches appended while two consumer groups read and commit them at the
//!   same time (the detection and storage groups of `vedette run`): the bus's whole cost
//!   per event in a pipeline that keeps up (five runs).
//!
//! The CPU per event of the rest of the pipeline on the same events is measured right
//! after each live run (parsing the JSON lines, matching the SigmaHQ Windows rules,
//! storing the batches in the Parquet store in groups of 8 as the storage stage does
//! under load), each stage alone: the bus's share is stated per run, and its median
//! given, since this VM's CPU speed drifts by up to half from one minute to the next.
//! CPU is the process's user + system time (`/proc/self/stat`), all threads included.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use vedette_bench_bus::cpu;
use vedette_bench_sigma::{
    corpora_dir, corpus_windows_events, replicate, vedette_batches, vedette_hits, vedette_load,
};
use vedette_connectors::bus::embedded::{EmbeddedBus, EmbeddedLog, LogOptions, SyncPolicy};
use vedette_connectors::bus::kafka::KafkaBus;
use vedette_core::batch::EventBatch;
use vedette_core::config::{BusCompression, EmbeddedBusConfig, KafkaConfig};
use vedette_core::traits::{Bus, BusDelivery, EventStore, Table};
use vedette_storage::parquet::ParquetStore;
use vedette_storage::QueryLimits;

/// The allocator of the `vedette` binary, so costs compare.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command line.
#[derive(Parser)]
struct Args {
    /// Batches of 8192 events per throughput run.
    #[arg(long, default_value_t = 40)]
    batches: usize,
    /// A Kafka-protocol broker to measure too.
    #[arg(long)]
    kafka: Option<String>,
    /// Measure the bus only: skip the detect and store stages (no share is stated), as
    /// when profiling the bus.
    #[arg(long)]
    bus_only: bool,
    /// Partitions of the embedded log's topics (default: `bus.embedded.partitions`'s).
    #[arg(long)]
    partitions: Option<u32>,
}

/// Wall time and CPU time of `f`.
async fn measured<T>(
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, Duration, Duration)> {
    let (wall, cpu0) = (Instant::now(), cpu());
    let out = f.await?;
    Ok((out, wall.elapsed(), cpu() - cpu0))
}

fn report(bus: &str, what: &str, batches: usize, events: usize, wall: Duration, cpu: Duration) {
    println!(
        "{bus:<22} {what:<8} {:>8.1} batches/s {:>10.0} events/s {:>7.3} µs CPU/event",
        batches as f64 / wall.as_secs_f64(),
        events as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / events as f64,
    );
}

/// Appends `batches`, then consumes them as a group; with `read_back` (the topic's
/// partitions), also reads back what the group processed, as a takeover does.
async fn throughput(
    name: &str,
    bus: Arc<dyn Bus>,
    batches: &[EventBatch],
    topic: &str,
    read_back: Option<u32>,
) -> anyhow::Result<()> {
    let events: usize = batches.iter().map(EventBatch::len).sum();
    let ((), wall, cpu_time) = measured(async {
        for b in batches {
            bus.append(topic, b).await?;
        }
        Ok(())
    })
    .await?;
    report(name, "append", batches.len(), events, wall, cpu_time);
    let mut consumer = bus.subscribe(topic, "bench").await?;
    let (got, wall, cpu_time) = measured(async {
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(300);
        while got < events && Instant::now() < deadline {
            if let Some(BusDelivery::Batch(b)) = consumer.poll(Duration::from_millis(200)).await? {
                got += b.len();
                if let Some(p) = &b.position {
                    consumer.commit(p).await?;
                }
            }
        }
        Ok(got)
    })
    .await?;
    anyhow::ensure!(got == events, "{name}: consumed {got} of {events} events");
    report(name, "consume", batches.len(), events, wall, cpu_time);
    if let Some(partitions) = read_back {
        // What a node taking the partitions over reads to rebuild its state.
        let (read, wall, cpu_time) = measured(async {
            let mut read = 0;
            for p in 0..partitions {
                let back = consumer.read_processed(p, None, None, usize::MAX).await?;
                read += back.iter().map(EventBatch::len).sum::<usize>();
            }
            Ok(read)
        })
        .await?;
        anyhow::ensure!(
            read == events,
            "{name}: read back {read} of {events} events"
        );
        report(name, "read back", batches.len(), events, wall, cpu_time);
    }
    consumer.close().await?;
    Ok(())
}

/// Appends `batches` while two groups consume them; returns the CPU per event.
async fn live(
    name: &str,
    bus: Arc<dyn Bus>,
    batches: &[EventBatch],
    topic: &str,
) -> anyhow::Result<f64> {
    let events: usize = batches.iter().map(EventBatch::len).sum();
    let mut consumers = Vec::new();
    for group in ["detect", "store"] {
        consumers.push(bus.subscribe(topic, group).await?);
    }
    let ((), wall, cpu_time) = measured(async {
        let readers: Vec<_> = consumers
            .into_iter()
            .map(|mut consumer| {
                tokio::spawn(async move {
                    let mut got = 0;
                    let deadline = Instant::now() + Duration::from_secs(300);
                    while got < events && Instant::now() < deadline {
                        if let Some(BusDelivery::Batch(b)) =
                            consumer.poll(Duration::from_millis(200)).await?
                        {
                            got += b.len();
                            if let Some(p) = &b.position {
                                consumer.commit(p).await?;
                            }
                        }
                    }
                    consumer.close().await?;
                    Ok::<_, vedette_core::CoreError>(got)
                })
            })
            .collect();
        for b in batches {
            bus.append(topic, b).await?;
        }
        for reader in readers {
            let got = reader.await??;
            anyhow::ensure!(
                got == events,
                "{name}: a group consumed {got} of {events} events"
            );
        }
        Ok(())
    })
    .await?;
    report(name, "live", batches.len(), events, wall, cpu_time);
    Ok(cpu_time.as_secs_f64() * 1e6 / events as f64)
}

/// Stores `batches` in a Parquet store, 8 batches per append; returns the CPU per event.
async fn store(batches: &[EventBatch]) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let store = ParquetStore::open(dir.path(), 36_500, QueryLimits::default())?;
    let events: usize = batches.iter().map(EventBatch::len).sum();
    let ((), _, cpu_time) = measured(async {
        for group in batches.chunks(8) {
            store.append_all(Table::Events, group).await?;
        }
        Ok(())
    })
    .await?;
    Ok(cpu_time.as_secs_f64() * 1e6 / events as f64)
}

/// Detection over record batches: the SigmaHQ Windows rules, compiled once.
type Detect = Box<dyn Fn(&[arrow::array::RecordBatch]) -> anyhow::Result<usize>>;

/// CPU µs per event of the rest of the pipeline, measured again beside each bus run (this
/// VM's CPU speed drifts by up to half between minutes): parsing `lines`, detecting and
/// storing `batches`.
async fn rest_cost(
    lines: &[String],
    detect: &Detect,
    batches: &[EventBatch],
) -> anyhow::Result<f64> {
    let events = lines.len() as f64;
    let (records, _, parse_cpu) = measured(async { vedette_batches(lines) }).await?;
    let (_, _, detect_cpu) = measured(async { detect(&records) }).await?;
    let (parse, detect) = (
        parse_cpu.as_secs_f64() * 1e6 / events,
        detect_cpu.as_secs_f64() * 1e6 / events,
    );
    let store = store(batches).await?;
    println!(
        "{:<22} rest     parse {parse:.3} + detect {detect:.3} + store {store:.3} = {:.3} µs CPU/event",
        "pipeline (no bus)",
        parse + detect + store
    );
    Ok(parse + detect + store)
}

/// Appends `n` copies of `batch`, `gap` apart, while one consumer polls; prints the
/// time from the start of each append to the delivery of each of its records (one per
/// partition the batch spans).
async fn latency(
    name: &str,
    bus: Arc<dyn Bus>,
    batch: &EventBatch,
    topic: &str,
    (n, gap): (usize, Duration),
) -> anyhow::Result<()> {
    let mut consumer = bus.subscribe(topic, "latency").await?;
    // Let the group settle before timing.
    let settle = Instant::now() + Duration::from_secs(60);
    bus.append(
        topic,
        &EventBatch {
            source: "warm".into(),
            ..batch.clone()
        },
    )
    .await?;
    loop {
        if let Some(BusDelivery::Batch(b)) = consumer.poll(Duration::from_millis(100)).await? {
            if b.source == "warm" {
                break;
            }
        }
        anyhow::ensure!(
            Instant::now() < settle,
            "{name}: the consumer never got the warm-up batch"
        );
    }
    let starts: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; n]));
    let (writer, b, s) = (bus.clone(), batch.clone(), starts.clone());
    let topic_name = topic.to_string();
    let mut producer = tokio::spawn(async move {
        let mut records = 0;
        for i in 0..n {
            if let Ok(mut starts) = s.lock() {
                starts[i] = Some(Instant::now());
            }
            records += writer
                .append(
                    &topic_name,
                    &EventBatch {
                        source: i.to_string(),
                        ..b.clone()
                    },
                )
                .await?
                .len();
            tokio::time::sleep(gap).await;
        }
        Ok::<_, vedette_core::CoreError>(records)
    });
    let mut latencies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120) + gap * n as u32;
    // The records appended, known once the producer is done.
    let mut records = None;
    while records.is_none_or(|r| latencies.len() < r) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name}: {} records arrived before the deadline",
            latencies.len()
        );
        if records.is_none() && producer.is_finished() {
            records = Some((&mut producer).await??);
            continue;
        }
        if let Some(BusDelivery::Batch(b)) = consumer.poll(Duration::from_millis(50)).await? {
            let now = Instant::now();
            let start = b
                .source
                .parse::<usize>()
                .ok()
                .and_then(|i| starts.lock().ok().and_then(|s| s[i]));
            if let Some(start) = start {
                latencies.push(now - start);
            }
        }
    }
    let records = records.unwrap_or_default();
    anyhow::ensure!(
        latencies.len() == records,
        "{name}: {} of {records} records arrived",
        latencies.len()
    );
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |q: usize| ms(latencies[(records * q / 100).min(records - 1)]);
    println!(
        "{name:<22} latency  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms (append start to delivery; {records} records of {n} batches {} ms apart)",
        at(50),
        at(99),
        at(100),
        gap.as_millis(),
    );
    consumer.close().await?;
    Ok(())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An embedded log in `dir`; `recent` false keeps no batches in memory, so consumers
/// read every record back from the segments (a consumer that fell behind).
fn embedded(
    dir: &std::path::Path,
    partitions: u32,
    sync: SyncPolicy,
    compression: BusCompression,
    recent: bool,
) -> anyhow::Result<(Arc<dyn Bus>, Arc<EmbeddedLog>)> {
    let defaults = LogOptions::default();
    let log = EmbeddedLog::open(
        dir,
        LogOptions {
            partitions,
            sync,
            compression,
            recent_bytes: if recent { defaults.recent_bytes } else { 0 },
            ..defaults
        },
    )?;
    Ok((Arc::new(EmbeddedBus::new(log.clone(), "host.name")), log))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let corpora = corpora_dir()?;
    let base = corpus_windows_events(&corpora)?;
    let lines = replicate(&base, args.batches * 8192)?;
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let (records, parse_wall, parse_cpu) = measured(async { vedette_batches(&lines) }).await?;
    let events = lines.len();
    let batches: Vec<EventBatch> = records
        .into_iter()
        .map(|r| EventBatch::new(r, "bench", "default", 0))
        .collect();
    println!(
        "# {} batches of 8192 Windows events ({:.1} MiB of JSON lines), {} CPUs",
        batches.len(),
        bytes as f64 / (1 << 20) as f64,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    report(
        "pipeline (no bus)",
        "parse",
        batches.len(),
        events,
        parse_wall,
        parse_cpu,
    );
    let detect: Option<Detect> = if args.bus_only {
        None
    } else {
        let rules: PathBuf = corpora.join("sigma/rules/windows");
        let (detector, _) =
            vedette_load(std::slice::from_ref(&rules)).context("loading the SigmaHQ rules")?;
        Some(Box::new(move |records| {
            Ok(vedette_hits(&detector, records)?.len())
        }))
    };
    // The part of an append that is not I/O: split by partition key, encode as IPC and
    // compress (as the embedded log does), one part after the other.
    let partitions = args
        .partitions
        .unwrap_or(EmbeddedBusConfig::default().partitions);
    println!("# embedded log: {partitions} partition(s) per topic");
    let partitioner =
        vedette_connectors::bus::partitioning::Partitioner::new("host.name", partitions);
    let (_, wall, cpu_time) = measured(async {
        let mut parts = 0;
        for b in &batches {
            parts += partitioner.split(&b.records)?.len();
        }
        Ok(parts)
    })
    .await?;
    report("split only", "split", batches.len(), events, wall, cpu_time);
    let ((plain_bytes, encoded), wall, cpu_time) = measured(async {
        let (mut plain_bytes, mut bytes) = (0, 0);
        let (mut plain, mut packed) = (Vec::new(), Vec::new());
        for b in &batches {
            for (_, part) in partitioner.split(&b.records)? {
                vedette_connectors::bus::codec::encode_records_into(&part, &mut plain)?;
                plain_bytes += plain.len();
                bytes += vedette_connectors::bus::embedded::compress_kept(
                    &plain,
                    vedette_connectors::bus::embedded::PayloadCodec::Lz4Block,
                    &mut packed,
                )?;
            }
        }
        Ok((plain_bytes, bytes))
    })
    .await?;
    report(
        "split+encode only",
        "encode",
        batches.len(),
        events,
        wall,
        cpu_time,
    );
    let mib_per_batch = |bytes: usize| bytes as f64 / batches.len() as f64 / (1 << 20) as f64;
    println!(
        "# encoded: {:.1} MiB per batch ({:.1} MiB of IPC before compression)",
        mib_per_batch(encoded),
        mib_per_batch(plain_bytes)
    );

    let dir = tempfile::tempdir()?;
    for (name, sync, compression) in [
        (
            "embedded sync-each",
            SyncPolicy::EveryAppend,
            BusCompression::Lz4,
        ),
        (
            "embedded sync-5ms",
            SyncPolicy::Interval(Duration::from_millis(5)),
            BusCompression::Lz4,
        ),
        (
            "embedded sync-each zstd",
            SyncPolicy::EveryAppend,
            BusCompression::Zstd,
        ),
    ] {
        let folder = dir.path().join(name.replace(' ', "-"));
        let (from_disk, _) = embedded(&folder.join("disk"), partitions, sync, compression, false)?;
        throughput(name, from_disk, &batches, "events", None).await?;
        let (bus, log) = embedded(&folder.join("live"), partitions, sync, compression, true)?;
        // Latency first, on a quiet machine (the stores of the runs below leave work
        // behind in the kernel).
        // 8192-event batches back to back (10 ms apart: ~8 times what the pipeline
        // sustains, so the disk is the limit), and at the pipeline's rate (one per
        // 200 ms: the 40,000 events/s `vedette run` sustains on this machine; 300 of
        // them, so the p99 is not one hiccup of the machine).
        latency(name, bus.clone(), &batches[0], "latency", (200, ms(10))).await?;
        latency(
            name,
            bus.clone(),
            &batches[1],
            "latency-paced",
            (300, ms(200)),
        )
        .await?;
        // A live flow flushes smaller batches (every 250 ms by default).
        let small = EventBatch {
            records: batches[0].records.slice(0, 512),
            ..batches[0].clone()
        };
        let small_name = format!("{name} 512");
        latency(
            &small_name,
            bus.clone(),
            &small,
            "latency-512",
            (200, ms(10)),
        )
        .await?;
        // Five runs on fresh topics; the median, as this machine's CPU time varies by
        // a fifth from run to run (and the first run also fills the memory of recent
        // batches from fresh pages).
        let (mut costs, mut shares) = (Vec::new(), Vec::new());
        for run in 0..5 {
            let cost = live(name, bus.clone(), &batches, &format!("live-{run}")).await?;
            costs.push(cost);
            if let Some(detect) = &detect {
                let rest = rest_cost(&lines, detect, &batches).await?;
                shares.push(100.0 * cost / (rest + cost));
            }
        }
        costs.sort_by(f64::total_cmp);
        shares.sort_by(f64::total_cmp);
        let counters = log.counters();
        println!(
            "{name:<22} reads    {} records from memory, {} from the segments",
            counters
                .recent_hits
                .load(std::sync::atomic::Ordering::Relaxed),
            counters
                .disk_reads
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        if let Some(share) = shares.get(2) {
            println!(
                "{name:<22} share    {share:.1} % of the pipeline's CPU per event, median of five (each run's bus against the rest measured right after it; {:.1} to {:.1} %); bus median {:.3} µs",
                shares[0], shares[4], costs[2]
            );
        }
    }
    if let Some(broker) = &args.kafka {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let config = KafkaConfig {
            topic_prefix: format!("bench{nanos}"),
            group: format!("bench{nanos}"),
            partitions: 4,
            replication_factor: 1,
            ..KafkaConfig::new(vec![broker.clone()])
        };
        let bus: Arc<dyn Bus> = Arc::new(KafkaBus::connect(config, "host.name").await?);
        throughput("kafka (tansu)", bus.clone(), &batches, "events", Some(4)).await?;
        latency("kafka (tansu)", bus, &batches[0], "latency", (200, ms(10))).await?;
    }
    Ok(())
}
