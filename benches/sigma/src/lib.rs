//! The Sigma engine side by side with its peers, `rsigma-eval` and `sigma-rust`, on the
//! same rules and the same events: loading, evaluating and collecting hits as
//! (rule id, event index) pairs. Used by the `sigma-bench` harness and by the
//! differential test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arrow::array::{Array, AsArray, RecordBatch};
use bytes::Bytes;
use vedette_core::event::{EventBatchBuilder, DEFAULT_TENANT};
use vedette_core::schema::col;
use vedette_core::traits::RawChunk;
use vedette_detect::sigma::load::rule_files;
use vedette_detect::sigma::{load_rules, CompileOptions, LogsourceMap, SigmaDetector};
use vedette_ingest::{parser_for, Format, Limits};

/// The log-source map bundled with Vedette.
pub const LOGSOURCES: &str = include_str!("../../../rules/logsources/sigma.yml");

/// A hit: rule id and 0-based event index.
pub type Hit = (String, usize);

/// The corpora folder: `VEDETTE_CORPORA`, else `../shared/corpora` beside the repository.
pub fn corpora_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var("VEDETTE_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora"));
    if !dir.join("sigma").is_dir() {
        bail!(
            "the corpora folder is missing: {} has no sigma/. Set VEDETTE_CORPORA (see README, \"Test data\").",
            dir.display()
        );
    }
    Ok(dir)
}

fn jsonl_files(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            jsonl_files(&p, suffix, out)?;
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
    Ok(())
}

/// Every Windows event of the corpora as flat JSON lines: the SigmaHQ true-positive
/// logs, the EVTX samples' reference flattening and the Windows JSON samples.
pub fn corpus_windows_events(corpora: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    jsonl_files(&corpora.join("sigma/regression_data"), ".jsonl", &mut files)?;
    jsonl_files(&corpora.join("logs/evtx"), ".flat.jsonl", &mut files)?;
    jsonl_files(&corpora.join("logs/windows-json"), ".jsonl", &mut files)?;
    let mut lines = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| f.display().to_string())?;
        lines.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    Ok(lines)
}

/// `n` events made from `base` by repetition, each copy varied: its own record id and
/// host name, so no two events are byte-identical.
pub fn replicate(base: &[String], n: usize) -> anyhow::Result<Vec<String>> {
    let parsed: Vec<serde_json::Map<String, serde_json::Value>> = base
        .iter()
        .map(|l| serde_json::from_str(l))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let Some(src) = parsed.get(i % parsed.len().max(1)) else {
            break;
        };
        let mut ev = src.clone();
        ev.insert(
            "EventRecordID".into(),
            serde_json::Value::from(i as u64 + 1),
        );
        for host in ["Computer", "Hostname"] {
            if let Some(serde_json::Value::String(h)) = ev.get_mut(host) {
                h.push_str(&format!("-{}", i % 997));
            }
        }
        out.push(serde_json::to_string(&ev)?);
    }
    Ok(out)
}

/// Vedette's detector for the rules under `dirs`, and the time to load and compile.
pub fn vedette_load(dirs: &[PathBuf]) -> anyhow::Result<(SigmaDetector, Duration)> {
    let started = Instant::now();
    let loaded = load_rules(dirs)?;
    let options = CompileOptions {
        logsources: LogsourceMap::from_yaml(LOGSOURCES)?,
        ..CompileOptions::default()
    };
    let (detector, _) = SigmaDetector::new(loaded.rules, &options)?;
    Ok((detector, started.elapsed()))
}

/// The events as Vedette batches of 8192 rows (Windows JSON parser), one row per line.
pub fn vedette_batches(lines: &[String]) -> anyhow::Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    for chunk in lines.chunks(8192) {
        let mut text = chunk.join("\n");
        text.push('\n');
        let batch = parse_text(Format::WindowsJson, "bench", text)?;
        if batch.num_rows() != chunk.len() {
            bail!(
                "{} of {} lines parsed as Windows JSON",
                batch.num_rows(),
                chunk.len()
            );
        }
        batches.push(batch);
    }
    Ok(batches)
}

/// `text` parsed with `format`'s parser as one chunk of source `source`; an error if
/// any record is a dead letter.
pub fn parse_text(format: Format, source: &str, text: String) -> anyhow::Result<RecordBatch> {
    let parser = parser_for(format, Limits::default());
    let raw = RawChunk {
        source: source.into(),
        origin: "bench".into(),
        tenant: DEFAULT_TENANT.into(),
        bytes: Bytes::from(text),
        position: 0,
        received_ms: 0,
    };
    let mut builder = EventBatchBuilder::new();
    let mut dead = Vec::new();
    parser.parse(&raw, &mut builder, &mut dead);
    if let Some(d) = dead.first() {
        bail!(
            "{} records of {source} did not parse: {}",
            dead.len(),
            d.reason
        );
    }
    Ok(builder.finish()?)
}

/// Vedette's hits on `batches` (event index = position across the batches).
pub fn vedette_hits(detector: &SigmaDetector, batches: &[RecordBatch]) -> anyhow::Result<Vec<Hit>> {
    let mut out = Vec::new();
    let mut base = 0;
    for b in batches {
        for h in detector.matches(b)? {
            if let Some(rule) = detector.rules().get(h.rule as usize) {
                out.push((rule.id.clone(), base + h.row as usize));
            }
        }
        base += b.num_rows();
    }
    out.sort();
    Ok(out)
}

/// Vedette's hits with the names of the fields each matched rule read in the event.
pub fn vedette_hits_with_fields(
    detector: &SigmaDetector,
    batches: &[RecordBatch],
) -> anyhow::Result<Vec<(Hit, Vec<String>)>> {
    let mut out = Vec::new();
    let mut base = 0;
    for b in batches {
        for h in detector.matches(b)? {
            if let Some(rule) = detector.rules().get(h.rule as usize) {
                let fields = h.matched.into_iter().map(|(k, _)| k).collect();
                out.push(((rule.id.clone(), base + h.row as usize), fields));
            }
        }
        base += b.num_rows();
    }
    out.sort();
    Ok(out)
}

/// For each event, the ids of the rules Vedette's log-source routing applies to it.
pub fn vedette_routed(
    detector: &SigmaDetector,
    batches: &[RecordBatch],
) -> anyhow::Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for b in batches {
        for rules in detector.routed(b)? {
            out.push(
                rules
                    .iter()
                    .filter_map(|r| detector.rules().get(*r as usize).map(|m| m.id.clone()))
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// rsigma-eval's engine for the rules under `dirs` (candidate index on, as always;
/// log-source routing on, reading `product`/`category`/`service` from the event).
pub fn rsigma_load(dirs: &[PathBuf]) -> anyhow::Result<(rsigma_eval::Engine, Duration)> {
    let started = Instant::now();
    let mut rules = Vec::new();
    for d in dirs {
        let c = rsigma_parser::parse_sigma_directory(d)?;
        rules.extend(c.rules);
    }
    let mut engine = rsigma_eval::Engine::new();
    engine.set_logsource_extractor(Some(rsigma_eval::LogSourceExtractor::new()));
    let _failed = engine.add_rules(rules.iter());
    Ok((engine, started.elapsed()))
}

/// The events as JSON values for rsigma-eval, each with the `product`, `category`
/// and `service` its channel and event id mean (from Vedette's log-source map), which
/// is what rsigma's log-source routing reads.
pub fn rsigma_events(
    lines: &[String],
    batches: &[RecordBatch],
) -> anyhow::Result<Vec<serde_json::Value>> {
    let map = LogsourceMap::from_yaml(LOGSOURCES)?;
    let mut out = Vec::with_capacity(lines.len());
    let mut line = lines.iter();
    for b in batches {
        let dataset = b
            .column_by_name(col::EVENT_DATASET)
            .context("dataset")?
            .as_string::<i32>();
        let code = b
            .column_by_name(col::EVENT_CODE)
            .context("code")?
            .as_string::<i32>();
        for row in 0..b.num_rows() {
            let Some(l) = line.next() else {
                bail!("fewer lines than rows")
            };
            let mut v: serde_json::Value = serde_json::from_str(l)?;
            let channel = v
                .get("System_Channel")
                .or_else(|| v.get("Channel"))
                .and_then(|c| c.as_str())
                .map(str::to_owned);
            let code = code.is_valid(row).then(|| code.value(row));
            // rsigma routes on one value per dimension and prunes a rule only when its
            // value conflicts with the event's: an event that several categories
            // describe (Sysmon 13 is registry_set and registry_event) gets none.
            let mut products = Vec::new();
            let mut categories = Vec::new();
            let mut services = Vec::new();
            for (key, route) in map.entries() {
                if route.accepts(dataset.value(row), channel.as_deref(), code) {
                    products.extend(key.product.clone());
                    if route.event_ids.is_empty() {
                        services.extend(key.service.clone());
                    } else {
                        categories.extend(key.category.clone());
                    }
                }
            }
            let unique = |mut v: Vec<String>| {
                v.sort();
                v.dedup();
                (v.len() == 1).then(|| v.remove(0))
            };
            let ls = (unique(products), unique(categories), unique(services));
            if let Some(obj) = v.as_object_mut() {
                for (k, val) in [("product", ls.0), ("category", ls.1), ("service", ls.2)] {
                    if let Some(val) = val {
                        obj.insert(k.into(), serde_json::Value::String(val));
                    }
                }
            }
            out.push(v);
        }
    }
    Ok(out)
}

/// rsigma-eval's hits on `events`.
pub fn rsigma_hits(engine: &rsigma_eval::Engine, events: &[serde_json::Value]) -> Vec<Hit> {
    let mut out = Vec::new();
    for (i, v) in events.iter().enumerate() {
        let ev = rsigma_eval::JsonEvent::borrow(v);
        for r in engine.evaluate(&ev) {
            if let Some(id) = r.header.rule_id {
                out.push((id, i));
            }
        }
    }
    out.sort();
    out
}

/// sigma-rust's rules from the files under `dirs` (one document per file; files it
/// cannot load are counted, not fatal).
pub fn sigma_rust_load(
    dirs: &[PathBuf],
) -> anyhow::Result<(Vec<sigma_rust::Rule>, usize, Duration)> {
    let started = Instant::now();
    let mut rules = Vec::new();
    let mut failed = 0;
    for f in rule_files(dirs)? {
        let text = std::fs::read_to_string(&f)?;
        match sigma_rust::rule_from_yaml(&text) {
            Ok(r) => rules.push(r),
            Err(_) => failed += 1,
        }
    }
    Ok((rules, failed, started.elapsed()))
}

/// The events for sigma-rust.
pub fn sigma_rust_events(lines: &[String]) -> anyhow::Result<Vec<sigma_rust::Event>> {
    lines
        .iter()
        .map(|l| sigma_rust::event_from_json(l).map_err(Into::into))
        .collect()
}

/// sigma-rust's hits (every rule on every event: it has no routing or index).
pub fn sigma_rust_hits(rules: &[sigma_rust::Rule], events: &[sigma_rust::Event]) -> Vec<Hit> {
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        for r in rules {
            if r.is_match(e) {
                out.push((r.id.clone().unwrap_or_else(|| r.title.clone()), i));
            }
        }
    }
    out.sort();
    out
}
