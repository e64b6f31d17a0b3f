//! Parser throughput of `vedette-ingest` on the real sample logs of the shared corpus,
//! with the `arrow-json` reader as a library baseline.
//!
//! Each input is a corpus file (`$VEDETTE_CORPORA/logs/...`) whose lines are repeated in
//! memory until the buffer holds at least `VEDETTE_BENCH_MB` MiB (default 100; EVTX is
//! one whole file, not repeated). One iteration runs the input through the ingest path
//! as a pipeline does: `parser_for(format, Limits::default())`, one `RawChunk` per piece
//! of about 4 MiB cut at a newline, `Parser::parse` into an `EventBatchBuilder`, and
//! `EventBatchBuilder::finish` once the builder holds 8192 rows or more (checked after
//! each chunk) and at the end. The builder lives across iterations, as the one of a
//! `vedette run` ingest pipeline lives as long as the pipeline (its buffers are sized
//! from the batch before). Throughput is in input bytes; the events (and dead
//! letters) per iteration are printed to stderr before each group, so events/s is
//! events per iteration divided by the time per iteration.
//!
//! For the two JSON inputs (`windows-json`, `json-generic`) the same NDJSON bytes are
//! also decoded by `arrow::json::Reader` (`arrow-json-baseline`) into a schema inferred
//! once from the first 1000 lines, 8192 rows per batch: a generic JSON-to-Arrow decoder
//! that does no normalization, as a reference point; and by `sonic-rs` (`sonic-rs-dom`),
//! one line at a time into its `Value` tree: the SIMD JSON parser the ingest issue
//! names as the class that reaches 1 GB/s, with no Arrow output and no normalization;
//! and by sonic-rs's lazy iterators (`sonic-rs-lazy`), every member read as the
//! `fields` map needs it (nested objects entered, strings unescaped) but no tree built.
//!
//! For every replicated input two floors are measured (see `parse/floor.rs`):
//! `floor-append`, the input's events, already normalized, appended into the batch
//! builder; and `floor-id`, the event ids of its records. Every parser of the event
//! schema takes both steps, so they bound its speed from above whatever its parsing
//! costs.
//!
//! Run it from the workspace root:
//!
//! ```text
//! VEDETTE_CORPORA=../shared/corpora cargo bench -p vedette-ingest --bench parse
//! ```
//!
//! `VEDETTE_BENCH_MB=8` makes quick runs; `-- --test` runs each benchmark once;
//! `VEDETTE_BENCH_INPUTS=windows-json,syslog-3164` builds and runs only the inputs named
//! (comma-separated), so a focused run does not parse the others to count them. A
//! relative `VEDETTE_CORPORA` is taken from the current folder if it exists there, else
//! from the workspace root (cargo runs benches from `ingest/`). Without it the corpus is
//! looked for at `../shared/corpora` next to the workspace.

/// The binary's allocator, so the figures are what `vedette` gets.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::json::reader::infer_json_schema_from_seekable;
use arrow::json::ReaderBuilder;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use sonic_rs::JsonValueTrait;
use vedette_core::event::{EventBatchBuilder, DEFAULT_TENANT};
use vedette_core::schema::col;
use vedette_core::traits::RawChunk;
use vedette_ingest::{parser_for, Format, Limits};

#[path = "parse/floor.rs"]
mod floor;

/// Size of one chunk handed to a parser, cut forward to the next newline.
const PIECE_BYTES: usize = 4 * 1024 * 1024;
/// Rows after which the pipeline finishes an Arrow batch; also the baseline batch size.
const BATCH_ROWS: usize = 8192;
/// Default size of a replicated input, in MiB.
const DEFAULT_MB: usize = 100;
/// Records the arrow-json baseline infers its schema from.
const SCHEMA_INFER_RECORDS: usize = 1000;
/// `received_ms` of every chunk: a fixed time, so runs are alike.
const RECEIVED_MS: i64 = 1_700_000_000_000;

struct Input {
    name: &'static str,
    /// Paths under `logs/`, concatenated in this order.
    files: &'static [&'static str],
    format: Format,
    /// Lines repeated up to the target size (false: the file as it is, one chunk).
    replicate: bool,
    /// Also decode with the arrow-json reader.
    baseline: bool,
}

const INPUTS: &[Input] = &[
    Input {
        name: "windows-json",
        files: &["windows-json/otrf_psh_lsass_memory_dump_comsvcs.jsonl"],
        format: Format::WindowsJson,
        replicate: true,
        baseline: true,
    },
    Input {
        name: "json-generic",
        files: &["cloudtrail/otrf_ec2_proxy_s3_exfiltration.jsonl"],
        format: Format::Json,
        replicate: true,
        baseline: true,
    },
    Input {
        name: "syslog-3164",
        files: &[
            "syslog/rfc3164/crowdsec_sshd.log",
            "syslog/rfc3164/crowdsec_syslog.log",
        ],
        format: Format::Syslog,
        replicate: true,
        baseline: false,
    },
    Input {
        name: "syslog-5424",
        files: &["syslog/rfc5424/crowdsec_pfsense_filterlog.log"],
        format: Format::Syslog,
        replicate: true,
        baseline: false,
    },
    Input {
        name: "cef",
        files: &["cef/cefparser_inputs.log"],
        format: Format::Cef,
        replicate: true,
        baseline: false,
    },
    Input {
        name: "auditd",
        files: &["auditd/golibaudit_audit-rhel7.log"],
        format: Format::Auditd,
        replicate: true,
        baseline: false,
    },
    Input {
        name: "evtx",
        files: &["evtx/security.evtx"],
        format: Format::Evtx,
        replicate: false,
        baseline: false,
    },
];

/// `$VEDETTE_CORPORA/logs`, or a panic naming `VEDETTE_CORPORA` when it is missing.
fn corpus_logs() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = match std::env::var_os("VEDETTE_CORPORA") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            // cargo runs a bench from the package folder; the documented command is
            // typed at the workspace root, so a relative path may be meant from there.
            if dir.is_relative() && !dir.is_dir() {
                manifest.join("..").join(dir)
            } else {
                dir
            }
        }
        None => manifest.join("../../shared/corpora"),
    };
    let logs = root.join("logs");
    if !logs.is_dir() {
        panic!(
            "the corpora folder is missing: {} is not a directory. Set VEDETTE_CORPORA to the \
             corpora folder (default: <CARGO_MANIFEST_DIR>/../../shared/corpora; see README, \
             \"Test data\").",
            logs.display()
        );
    }
    logs
}

/// Target size of a replicated input in bytes, from `VEDETTE_BENCH_MB`.
fn target_bytes() -> usize {
    let mb = match std::env::var("VEDETTE_BENCH_MB") {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("VEDETTE_BENCH_MB={v}: want a whole number of MiB >= 1")),
        Err(_) => DEFAULT_MB,
    };
    mb * 1024 * 1024
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The input's bytes: its files' lines (each ending in a newline) repeated until the
/// buffer holds at least `target` bytes, or the one file as it is.
fn build_input(logs: &Path, input: &Input, target: usize) -> Bytes {
    if !input.replicate {
        let [file] = input.files else {
            panic!(
                "{}: an input that is not replicated is one file",
                input.name
            );
        };
        return Bytes::from(read(&logs.join(file)));
    }
    let texts: Vec<Vec<u8>> = input.files.iter().map(|f| read(&logs.join(f))).collect();
    let lines: Vec<&[u8]> = texts
        .iter()
        .flat_map(|t| t.split_inclusive(|b| *b == b'\n'))
        .collect();
    let longest = lines.iter().map(|l| l.len()).max().unwrap_or(0);
    if longest == 0 {
        panic!("{}: the input files are empty", input.name);
    }
    let mut out = Vec::with_capacity(target + longest + 1);
    let mut copy = 0u64;
    'fill: loop {
        copy += 1;
        for line in &lines {
            // Audit records of one event share their serial; each copy gets serials
            // of its own so copies stay distinct events, as in a real stream.
            match audit_serial_span(line) {
                Some((start, end)) => {
                    let serial: u64 = std::str::from_utf8(&line[start..end])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    out.extend_from_slice(&line[..start]);
                    out.extend_from_slice((serial + copy * 100_000_000).to_string().as_bytes());
                    out.extend_from_slice(&line[end..]);
                }
                None => out.extend_from_slice(line),
            }
            if !line.ends_with(b"\n") {
                out.push(b'\n');
            }
            if out.len() >= target {
                break 'fill;
            }
        }
    }
    Bytes::from(out)
}

/// Where the serial of a `msg=audit(TIME:SERIAL)` stamp sits in `line`.
fn audit_serial_span(line: &[u8]) -> Option<(usize, usize)> {
    let text = std::str::from_utf8(line).ok()?;
    let stamp = text.find("msg=audit(")? + "msg=audit(".len();
    let colon = stamp + text[stamp..].find(':')?;
    let close = stamp + text[stamp..].find(')')?;
    (colon < close).then_some((colon + 1, close))
}

/// One `RawChunk` per piece of about [`PIECE_BYTES`], each cut just after a newline
/// (the whole input as one chunk when `whole`).
fn chunks(name: &str, bytes: &Bytes, whole: bool) -> Vec<RawChunk> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let target = (start + PIECE_BYTES).min(bytes.len());
        let end = if whole || target == bytes.len() {
            bytes.len()
        } else {
            memchr::memchr(b'\n', &bytes[target..]).map_or(bytes.len(), |i| target + i + 1)
        };
        out.push(RawChunk {
            source: "bench".into(),
            origin: name.into(),
            tenant: DEFAULT_TENANT.into(),
            bytes: bytes.slice(start..end),
            position: start as u64,
            received_ms: RECEIVED_MS,
        });
        start = end;
    }
    out
}

#[derive(Debug, Default)]
struct Counts {
    events: usize,
    dead_letters: usize,
    rows: usize,
    batches: usize,
}

/// The ingest path over all chunks, as a pipeline runs it; dead-letter reasons are
/// tallied into `reasons` when given (outside the timed loop only).
fn run_pipeline(
    format: Format,
    chunks: &[RawChunk],
    builder: &mut EventBatchBuilder,
    mut reasons: Option<&mut BTreeMap<String, usize>>,
) -> Counts {
    let parser = parser_for(format, Limits::default());
    let mut dead = Vec::new();
    let mut counts = Counts::default();
    for (i, chunk) in chunks.iter().enumerate() {
        let stats = parser.parse(chunk, builder, &mut dead);
        counts.events += stats.events;
        counts.dead_letters += stats.dead_letters;
        if builder.len() >= BATCH_ROWS || i + 1 == chunks.len() {
            let batch = builder
                .finish()
                .unwrap_or_else(|e| panic!("finishing a batch: {e}"));
            counts.rows += batch.num_rows();
            counts.batches += 1;
            black_box(batch);
        }
        if let Some(reasons) = reasons.as_deref_mut() {
            for d in &dead {
                *reasons.entry(d.reason.clone()).or_default() += 1;
            }
        }
        // A pipeline hands dead letters on; here they are dropped.
        dead.clear();
    }
    counts
}

/// Parses every line of `bytes` into a `sonic_rs::Value` tree; returns the lines.
fn sonic_rs_dom(name: &str, bytes: &[u8]) -> usize {
    let mut n = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', bytes).chain([bytes.len()]) {
        let line = &bytes[start..end];
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        let value: sonic_rs::Value =
            sonic_rs::from_slice(line).unwrap_or_else(|e| panic!("{name}: sonic-rs parse: {e}"));
        black_box(value);
        n += 1;
    }
    n
}

/// Reads every member of every line of `bytes` with sonic-rs's lazy iterators, as the
/// `fields` map needs them and without a tree: nested objects entered, strings
/// unescaped, other values (numbers, arrays) taken as their raw text; returns the
/// members read.
fn sonic_rs_lazy(name: &str, bytes: &[u8]) -> usize {
    fn members(object: sonic_rs::ObjectJsonIter<'_>, name: &str) -> usize {
        let mut n = 0;
        for member in object {
            let (key, value) = member.unwrap_or_else(|e| panic!("{name}: sonic-rs parse: {e}"));
            black_box(&key);
            if value.is_object() {
                if let Some(inner) = value.into_object_iter() {
                    n += members(inner, name);
                }
            } else if let Some(text) = value.as_str() {
                black_box(text);
                n += 1;
            } else {
                black_box(value.as_raw_str());
                n += 1;
            }
        }
        n
    }
    let mut n = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', bytes).chain([bytes.len()]) {
        let line = &bytes[start..end];
        start = end + 1;
        if !line.is_empty() {
            n += members(sonic_rs::to_object_iter(line), name);
        }
    }
    n
}

/// The batches the ingest path makes of all chunks.
fn parsed_batches(format: Format, chunks: &[RawChunk]) -> Vec<RecordBatch> {
    let parser = parser_for(format, Limits::default());
    let mut builder = EventBatchBuilder::new();
    let mut dead = Vec::new();
    let mut batches = Vec::new();
    for chunk in chunks {
        parser.parse(chunk, &mut builder, &mut dead);
        if builder.len() >= BATCH_ROWS {
            batches.push(
                builder
                    .finish()
                    .unwrap_or_else(|e| panic!("finishing a batch: {e}")),
            );
        }
    }
    batches.push(
        builder
            .finish()
            .unwrap_or_else(|e| panic!("finishing a batch: {e}")),
    );
    batches
}

/// The arrow-json schema of an NDJSON buffer, from its first records.
fn infer_schema(name: &str, bytes: &[u8]) -> SchemaRef {
    let (schema, _) =
        infer_json_schema_from_seekable(Cursor::new(bytes), Some(SCHEMA_INFER_RECORDS))
            .unwrap_or_else(|e| panic!("{name}: arrow-json schema inference: {e}"));
    Arc::new(schema)
}

/// Decodes all of `bytes` with the arrow-json reader; returns the rows.
fn arrow_json_rows(name: &str, schema: &SchemaRef, bytes: &[u8]) -> usize {
    let reader = ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(BATCH_ROWS)
        .build(bytes)
        .unwrap_or_else(|e| panic!("{name}: arrow-json reader: {e}"));
    let mut rows = 0;
    for batch in reader {
        let batch = batch.unwrap_or_else(|e| panic!("{name}: arrow-json decode: {e}"));
        rows += batch.num_rows();
        black_box(batch);
    }
    rows
}

fn parse_benches(c: &mut Criterion) {
    let logs = corpus_logs();
    let target = target_bytes();
    let only = std::env::var("VEDETTE_BENCH_INPUTS")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let named: Option<Vec<&str>> = only
        .as_deref()
        .map(|v| v.split(',').map(str::trim).collect());
    if let Some(named) = &named {
        for name in named {
            if !INPUTS.iter().any(|i| i.name == *name) {
                panic!("VEDETTE_BENCH_INPUTS names {name:?}, which is not an input");
            }
        }
    }
    for input in INPUTS {
        if named.as_ref().is_some_and(|n| !n.contains(&input.name)) {
            continue;
        }
        let bytes = build_input(&logs, input, target);
        let chunks = chunks(input.name, &bytes, !input.replicate);

        let mut reasons = BTreeMap::new();
        let mut builder = EventBatchBuilder::new();
        let counts = run_pipeline(input.format, &chunks, &mut builder, Some(&mut reasons));
        eprintln!(
            "{}: {} bytes in {} chunks; per iteration {} events, {} dead letters, {} rows in {} \
             batches",
            input.name,
            bytes.len(),
            chunks.len(),
            counts.events,
            counts.dead_letters,
            counts.rows,
            counts.batches,
        );
        for (reason, n) in &reasons {
            eprintln!("{}:   dead letter x{n}: {reason}", input.name);
        }

        let mut group = c.benchmark_group(input.name);
        group
            .throughput(Throughput::Bytes(bytes.len() as u64))
            .sampling_mode(SamplingMode::Flat);
        group.bench_function("vedette", |b| {
            b.iter(|| run_pipeline(input.format, black_box(&chunks), &mut builder, None))
        });
        if input.replicate {
            let mut prepared = floor::Prepared::default();
            let batches = parsed_batches(input.format, &chunks);
            for batch in &batches {
                prepared.add(batch);
            }
            let dataset = batches
                .first()
                .and_then(|b| b.column_by_name(col::EVENT_DATASET))
                .and_then(|c| c.as_string_opt::<i32>().map(|s| s.value(0).to_string()))
                .unwrap_or_default();
            drop(batches);
            let mut floor_builder = EventBatchBuilder::new();
            group.bench_function("floor-append", |b| {
                b.iter(|| prepared.append_all(&mut floor_builder))
            });
            let window = floor::id_window(&bytes);
            let window_bytes: usize = window.iter().map(|l| l.len() + 1).sum();
            let rounds = (bytes.len() / window_bytes.max(1)).max(1);
            group.throughput(Throughput::Bytes((window_bytes * rounds) as u64));
            group.bench_function("floor-id", |b| {
                b.iter(|| floor::id_all(black_box(&window), rounds, &dataset))
            });
            group.throughput(Throughput::Bytes(bytes.len() as u64));
        }
        if input.baseline {
            let schema = infer_schema(input.name, &bytes);
            let rows = arrow_json_rows(input.name, &schema, &bytes);
            eprintln!(
                "{}: arrow-json-baseline: {} columns inferred, {rows} rows per iteration",
                input.name,
                schema.fields().len(),
            );
            group.bench_function("arrow-json-baseline", |b| {
                b.iter(|| arrow_json_rows(input.name, &schema, black_box(&bytes)))
            });
            group.bench_function("sonic-rs-dom", |b| {
                b.iter(|| sonic_rs_dom(input.name, black_box(&bytes)))
            });
            group.bench_function("sonic-rs-lazy", |b| {
                b.iter(|| sonic_rs_lazy(input.name, black_box(&bytes)))
            });
        }
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse_benches
}
criterion_main!(benches);
