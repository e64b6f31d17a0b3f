//! What `store-bench` stores and how it reports the bytes: the suite's generated stream
//! parsed into bus batches, and the Parquet bytes of each column.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use parquet::file::reader::{FileReader, SerializedFileReader};
use vedette_bench::scenario::{repo_root, Scenario};
use vedette_bench::sources::{Source, Transport};
use vedette_bench::stream::Stream;
use vedette_bench_sigma::parse_text;
use vedette_core::batch::EventBatch;
use vedette_core::event::DEFAULT_TENANT;
use vedette_ingest::Format;

/// Rows of a bus batch.
const BATCH_ROWS: usize = 8192;

/// The suite's generated stream (the scenario `benches/scenarios/embedded.toml`: ten
/// sources of Windows, Linux, firewall and cloud logs over thousands of hosts and users),
/// parsed as the service parses each source, handed out as bus batches.
pub struct GeneratedEvents {
    stream: Stream,
    /// Bytes of the records' text so far (each line with its newline).
    pub text_bytes: u64,
    /// Records taken so far.
    pub records: u64,
}

impl GeneratedEvents {
    /// The stream of the embedded scenario.
    pub fn new() -> anyhow::Result<Self> {
        let path = repo_root()?.join("benches/scenarios/embedded.toml");
        let scenario = Scenario::load(&path)?;
        let g = &scenario.generate;
        Ok(Self {
            stream: Stream::new(g.world()?, &g.mix, g.seed, g.attack_every),
            text_bytes: 0,
            records: 0,
        })
    }

    /// The next `records` records as bus batches: each source's records parsed with
    /// its format, in batches of at most 8192 rows.
    pub fn next_batches(&mut self, records: usize) -> anyhow::Result<Vec<EventBatch>> {
        let mut by_source: BTreeMap<&'static str, (Format, String)> = BTreeMap::new();
        for record in self.stream.by_ref().take(records) {
            let format = format_of(record.source)?;
            let entry = by_source
                .entry(record.source.name())
                .or_insert_with(|| (format, String::new()));
            entry.1.push_str(&record.text);
            entry.1.push('\n');
            self.text_bytes += record.text.len() as u64 + 1;
            self.records += 1;
        }
        let mut batches = Vec::new();
        for (name, (format, text)) in by_source {
            let all = parse_text(format, name, text)?;
            let mut start = 0;
            while start < all.num_rows() {
                let rows = BATCH_ROWS.min(all.num_rows() - start);
                batches.push(EventBatch::new(
                    all.slice(start, rows),
                    name,
                    DEFAULT_TENANT,
                    0,
                ));
                start += rows;
            }
        }
        Ok(batches)
    }
}

/// The format the service parses `source` with (syslog lines carry CEF and PAN-OS).
fn format_of(source: Source) -> anyhow::Result<Format> {
    let name = match source.transport() {
        Transport::Http(name) => name,
        Transport::Syslog => "syslog",
    };
    name.parse()
        .map_err(|e| anyhow::anyhow!("format {name}: {e}"))
}

/// Compressed bytes per top-level column over every Parquet file under `dir`, largest
/// first.
pub fn column_bytes(dir: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                let file = std::fs::File::open(&path)?;
                let reader = SerializedFileReader::new(file)
                    .with_context(|| format!("reading {}", path.display()))?;
                for rg in reader.metadata().row_groups() {
                    for c in rg.columns() {
                        let top = c.column_path().parts().first().cloned().unwrap_or_default();
                        *sizes.entry(top).or_default() += c.compressed_size().max(0) as u64;
                    }
                }
            }
        }
    }
    let mut out: Vec<(String, u64)> = sizes.into_iter().collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.1));
    Ok(out)
}
