//! `vedette parse`: normalize log files (or stdin) and print the events.
//!
//! Events go to stdout as JSON lines (the common columns plus `fields`), an Arrow IPC
//! stream or a Parquet file; a summary per input (events by dataset, dead letters by
//! reason) goes to stderr. The exit code is 0 unless an input could not be read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use arrow::array::RecordBatch;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use vedette_core::dead_letter::DeadLetter;
use vedette_core::event::{EventBatchBuilder, DEFAULT_TENANT};
use vedette_core::event_json::events_to_json;
use vedette_core::schema::event_schema;
use vedette_core::traits::RawChunk;
use vedette_ingest::{detect_format, parser_for, Format, Limits};

use crate::input::{read_input, InputBytes};
use crate::metrics::reason_kind;

/// Flags of `vedette parse`.
#[derive(Debug, Args)]
pub(crate) struct ParseArgs {
    /// Input format, or `auto` to recognize it per file and per record.
    #[arg(long, short, default_value = "auto", value_parser = parse_format)]
    pub(crate) format: Format,
    /// What to write to stdout.
    #[arg(long, short, value_enum, default_value_t = Output::Jsonl)]
    pub(crate) output: Output,
    /// Also write every dead letter as a JSON line to this file.
    #[arg(long)]
    pub(crate) dead_letters: Option<PathBuf>,
    /// Files to read (`-` for stdin); gzip and zstd files are decompressed.
    #[arg(required = true)]
    pub(crate) inputs: Vec<PathBuf>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
        .map_err(|e: vedette_core::CoreError| e.to_string())
}

/// Output encodings of `vedette parse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// One JSON object per event.
    Jsonl,
    /// An Arrow IPC stream of event batches.
    Arrow,
    /// One Parquet file (zstd) of all events.
    Parquet,
}

/// Events per batch handed to the writer.
const BATCH_ROWS: usize = 8192;

/// Counts for the summary of one input.
#[derive(Debug, Default)]
struct Summary {
    format: String,
    events_by_dataset: BTreeMap<String, usize>,
    dead_by_reason: BTreeMap<String, usize>,
}

/// Runs `vedette parse`.
pub(crate) fn parse(args: &ParseArgs) -> anyhow::Result<()> {
    let limits = Limits::default();
    let stdout = std::io::stdout();
    let mut sink = EventSink::new(args.output, BufWriter::new(stdout))?;
    let mut dead_out = match &args.dead_letters {
        Some(path) => {
            Some(BufWriter::new(File::create(path).with_context(|| {
                format!("cannot create {}", path.display())
            })?))
        }
        None => None,
    };
    let mut unreadable = 0;
    for path in &args.inputs {
        let name = path.display().to_string();
        let input = match read_input(path) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("{name}: cannot read: {e:#}");
                unreadable += 1;
                continue;
            }
        };
        let summary = parse_one(
            &name,
            input,
            args.format,
            limits,
            &mut sink,
            dead_out.as_mut(),
        )?;
        print_summary(&name, &summary);
    }
    sink.finish()?;
    if let Some(out) = dead_out.as_mut() {
        out.flush().context("writing dead letters")?;
    }
    if unreadable > 0 {
        bail!(
            "{unreadable} of {} inputs could not be read",
            args.inputs.len()
        );
    }
    Ok(())
}

fn parse_one(
    name: &str,
    input: InputBytes,
    format: Format,
    limits: Limits,
    sink: &mut EventSink<impl Write + Send>,
    mut dead_out: Option<&mut BufWriter<File>>,
) -> anyhow::Result<Summary> {
    let format = match format {
        Format::Auto => detect_format(&input.bytes, Some(name)),
        f => f,
    };
    let parser = parser_for(format, limits);
    let mut summary = Summary {
        format: format.to_string(),
        ..Summary::default()
    };
    let progress = progress_bar(input.bytes.len() as u64);
    let mut builder = EventBatchBuilder::new();
    let mut dead = Vec::new();
    for (position, piece) in pieces(&input.bytes, format) {
        let chunk = RawChunk {
            source: "file".into(),
            origin: name.to_string(),
            tenant: DEFAULT_TENANT.into(),
            bytes: input.bytes.slice(position..position + piece),
            position: position as u64,
            received_ms: input.modified_ms,
        };
        parser.parse(&chunk, &mut builder, &mut dead);
        if builder.len() >= BATCH_ROWS || position + piece == input.bytes.len() {
            let batch = builder.finish()?;
            count_datasets(&batch, &mut summary)?;
            sink.write(&batch)?;
        }
        for d in dead.drain(..) {
            *summary
                .dead_by_reason
                .entry(reason_kind(&d.reason))
                .or_default() += 1;
            if let Some(out) = dead_out.as_deref_mut() {
                write_dead_letter(out, &d)?;
            }
        }
        progress.inc(piece as u64);
    }
    let batch = builder.finish()?;
    count_datasets(&batch, &mut summary)?;
    sink.write(&batch)?;
    progress.finish_and_clear();
    Ok(summary)
}

/// Splits input into pieces of about 16 MiB at newlines (whole file for EVTX).
fn pieces(bytes: &Bytes, format: Format) -> Vec<(usize, usize)> {
    const PIECE: usize = 16 * 1024 * 1024;
    // EVTX files and Zeek TSV (whose header governs every record) are one piece.
    if matches!(format, Format::Evtx | Format::ZeekTsv) || bytes.len() <= PIECE {
        return vec![(0, bytes.len())];
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let target = (start + PIECE).min(bytes.len());
        let end = if target == bytes.len() {
            target
        } else {
            bytes[target..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |i| target + i + 1)
        };
        out.push((start, end - start));
        start = end;
    }
    out
}

fn progress_bar(total: u64) -> ProgressBar {
    if total < 64 * 1024 * 1024 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

fn count_datasets(batch: &RecordBatch, summary: &mut Summary) -> anyhow::Result<()> {
    use arrow::array::AsArray;
    let Some(column) = batch.column_by_name(vedette_core::schema::col::EVENT_DATASET) else {
        bail!("event batch without event.dataset");
    };
    let Some(datasets) = column.as_string_opt::<i32>() else {
        bail!("event.dataset is not a string column");
    };
    for d in datasets.iter().flatten() {
        *summary.events_by_dataset.entry(d.to_string()).or_default() += 1;
    }
    Ok(())
}

fn write_dead_letter(out: &mut impl Write, d: &DeadLetter) -> anyhow::Result<()> {
    let line = serde_json::json!({
        "source": d.source,
        "stage": d.stage,
        "position": d.position,
        "reason": d.reason,
        "raw": String::from_utf8_lossy(&d.raw),
        "raw_len": d.raw_len,
    });
    writeln!(out, "{line}").context("writing dead letters")
}

fn print_summary(name: &str, s: &Summary) {
    let events: usize = s.events_by_dataset.values().sum();
    let dead: usize = s.dead_by_reason.values().sum();
    let datasets: Vec<String> = s
        .events_by_dataset
        .iter()
        .map(|(d, n)| format!("{d}={n}"))
        .collect();
    eprintln!(
        "{name}: format {}: {events} events ({}), {dead} dead letters",
        s.format,
        datasets.join(", ")
    );
    for (reason, n) in &s.dead_by_reason {
        eprintln!("{name}:   dead letter x{n}: {reason}");
    }
}

/// Where parsed batches go.
enum EventSink<W: Write + Send> {
    Jsonl(W),
    Arrow(Box<arrow::ipc::writer::StreamWriter<W>>),
    Parquet(Box<parquet::arrow::ArrowWriter<W>>),
}

impl<W: Write + Send> EventSink<W> {
    fn new(output: Output, out: W) -> anyhow::Result<Self> {
        let schema = event_schema();
        Ok(match output {
            Output::Jsonl => Self::Jsonl(out),
            Output::Arrow => Self::Arrow(Box::new(arrow::ipc::writer::StreamWriter::try_new(
                out, &schema,
            )?)),
            Output::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                    .build();
                Self::Parquet(Box::new(parquet::arrow::ArrowWriter::try_new(
                    out,
                    schema,
                    Some(props),
                )?))
            }
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match self {
            Self::Jsonl(out) => {
                for row in events_to_json(batch)? {
                    writeln!(out, "{row}").context("writing to stdout")?;
                }
            }
            Self::Arrow(w) => w.write(batch)?,
            Self::Parquet(w) => w.write(batch)?,
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Jsonl(mut out) => out.flush().context("writing to stdout")?,
            Self::Arrow(mut w) => w.finish()?,
            Self::Parquet(w) => {
                w.close()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_end_at_newlines() {
        let mut data = vec![b'x'; 20 * 1024 * 1024];
        data[17 * 1024 * 1024] = b'\n';
        let p = pieces(&Bytes::from(data), Format::Syslog);
        assert_eq!(
            p,
            vec![
                (0, 17 * 1024 * 1024 + 1),
                (17 * 1024 * 1024 + 1, 3 * 1024 * 1024 - 1)
            ]
        );
    }
}
