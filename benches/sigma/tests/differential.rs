//! Differential test: Vedette's hits against rsigma-eval's and sigma-rust's, on every
//! SigmaHQ Windows rule of the corpus and every Windows event of the corpora.
//!
//! Every difference must fall into a documented class (`docs/sigma-compat.md`):
//!
//! - **routing**: the peer fires a rule on an event outside the rule's log source
//!   (SigmaHQ's taxonomy: e.g. `wmi_event` is Sysmon 19-21, not System 19-21);
//! - **normalization**: Vedette fires because ingest gave the event a field its
//!   shipper named differently (OTRF `SourceName` is the `Provider_Name`), so the
//!   peer, reading the raw JSON, cannot see it;
//! - for sigma-rust, **typing**: it compares numbers and numeric strings as different
//!   values (`EventID: 4688` does not match `"4688"`), which the spec and SigmaHQ's
//!   own flattening treat alike; and **null**: its `field: null` does not hold when
//!   the field is missing, where the spec and pySigma say it does.
//!
//! sigma-rust has no log-source routing or field mapping: it is compared on the
//! (rule, event) pairs Vedette routes, with Security 4688's `NewProcessName` and
//! `ParentProcessName` also given to it under the rule's names.
//!
//! Anything else fails the test with the rule and the event.

// Test code: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use vedette_bench_sigma::*;

struct Run {
    lines: Vec<String>,
    raw: Vec<serde_json::Map<String, serde_json::Value>>,
    ours: BTreeMap<Hit, Vec<String>>,
    routed: Vec<BTreeSet<String>>,
    batches: Vec<arrow::array::RecordBatch>,
    dirs: Vec<std::path::PathBuf>,
}

fn run() -> Run {
    let corpora = corpora_dir().unwrap();
    let lines = corpus_windows_events(&corpora).unwrap();
    let dirs = vec![corpora.join("sigma/rules/windows")];
    let (det, _) = vedette_load(&dirs).unwrap();
    let batches = vedette_batches(&lines).unwrap();
    let ours = vedette_hits_with_fields(&det, &batches)
        .unwrap()
        .into_iter()
        .collect();
    let routed = vedette_routed(&det, &batches)
        .unwrap()
        .into_iter()
        .map(|r| r.into_iter().collect())
        .collect();
    let raw = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Run {
        lines,
        raw,
        ours,
        routed,
        batches,
        dirs,
    }
}

/// Whether Vedette's hit used a field the raw event does not have under that name.
fn normalized(r: &Run, hit: &Hit) -> bool {
    r.ours
        .get(hit)
        .is_some_and(|fields| fields.iter().any(|f| !r.raw[hit.1].contains_key(f)))
}

fn show(r: &Run, what: &str, hits: &[&Hit]) -> String {
    hits.iter()
        .take(20)
        .map(|(rule, i)| {
            format!(
                "{what} {rule} on event {i}: {}",
                &r.lines[*i][..r.lines[*i].len().min(300)]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn vedette_and_rsigma_eval_differ_only_in_documented_ways() {
    let r = run();
    let (engine, _) = rsigma_load(&r.dirs).unwrap();
    let events = rsigma_events(&r.lines, &r.batches).unwrap();
    let theirs: BTreeSet<Hit> = rsigma_hits(&engine, &events).into_iter().collect();
    let ours: BTreeSet<Hit> = r.ours.keys().cloned().collect();
    let mut routing = 0;
    let mut normalization = 0;
    let mut unexplained_theirs = Vec::new();
    let mut unexplained_ours = Vec::new();
    for hit in theirs.difference(&ours) {
        if r.routed[hit.1].contains(&hit.0) {
            unexplained_theirs.push(hit);
        } else {
            routing += 1;
        }
    }
    for hit in ours.difference(&theirs) {
        if normalized(&r, hit) {
            normalization += 1;
        } else {
            unexplained_ours.push(hit);
        }
    }
    println!(
        "rsigma-eval differential: {} events, Vedette {} hits, rsigma-eval {} hits, {} in common; \
         rsigma-only outside the rule's log source (routing): {routing}; Vedette-only through \
         normalized fields: {normalization}; unexplained: {} rsigma-only, {} Vedette-only",
        r.lines.len(),
        ours.len(),
        theirs.len(),
        ours.intersection(&theirs).count(),
        unexplained_theirs.len(),
        unexplained_ours.len()
    );
    assert!(
        unexplained_theirs.is_empty() && unexplained_ours.is_empty(),
        "{}\n{}",
        show(&r, "rsigma-only", &unexplained_theirs),
        show(&r, "Vedette-only", &unexplained_ours)
    );
    assert!(
        ours.intersection(&theirs).count() > 300,
        "too few common hits to mean anything"
    );
}

/// Whether the rule compares a field holding a JSON number in the event with a
/// value: sigma-rust's strict typing then decides differently.
fn typed(raw: &serde_json::Map<String, serde_json::Value>, fields: &[String]) -> bool {
    fields
        .iter()
        .any(|f| raw.get(f).is_some_and(serde_json::Value::is_number))
}

/// Field names a rule compares with `null`, by rule id (read from the rule files).
fn null_fields(dirs: &[std::path::PathBuf]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for f in vedette_detect::sigma::load::rule_files(dirs).unwrap() {
        let text = std::fs::read_to_string(&f).unwrap();
        let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .map(|s| s.trim().to_owned())
        else {
            continue;
        };
        let fields: Vec<String> = text
            .lines()
            .filter_map(|l| {
                let l = l.trim().trim_start_matches("- ");
                let (field, value) = l.split_once(':')?;
                (value.trim() == "null").then(|| field.trim().to_owned())
            })
            .collect();
        if !fields.is_empty() {
            out.insert(id, fields);
        }
    }
    out
}

/// The event as Vedette's route sees it for process-creation rules: Security 4688
/// names the image `NewProcessName` (SigmaHQ's own mapping), so the peer gets the
/// rule's names too.
fn mapped_for_peer(raw: &serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    let mut ev = raw.clone();
    let is_4688 = ev.get("EventID").is_some_and(|v| v == 4688 || v == "4688");
    if is_4688 {
        for (from, to) in [
            ("NewProcessName", "Image"),
            ("ParentProcessName", "ParentImage"),
        ] {
            if let Some(v) = ev.get(from).cloned() {
                ev.entry(to).or_insert(v);
            }
        }
    }
    serde_json::Value::Object(ev)
}

#[test]
fn vedette_and_sigma_rust_differ_only_in_documented_ways() {
    let r = run();
    let (rules, failed, _) = sigma_rust_load(&r.dirs).unwrap();
    let events: Vec<sigma_rust::Event> = r
        .raw
        .iter()
        .map(|raw| sigma_rust::Event::try_from(mapped_for_peer(raw)).unwrap())
        .collect();
    let nulls = null_fields(&r.dirs);
    let by_id: BTreeMap<String, &sigma_rust::Rule> = rules
        .iter()
        .map(|rule| (rule.id.clone().unwrap_or_else(|| rule.title.clone()), rule))
        .collect();
    // sigma-rust has no log-source routing: compare on the (rule, event) pairs
    // Vedette's routing applies, which also keeps this test fast.
    let mut theirs = BTreeSet::new();
    for (i, e) in events.iter().enumerate() {
        for id in &r.routed[i] {
            if by_id.get(id).is_some_and(|rule| rule.is_match(e)) {
                theirs.insert((id.clone(), i));
            }
        }
    }
    let ours: BTreeSet<Hit> = r
        .ours
        .keys()
        .filter(|(id, _)| by_id.contains_key(id))
        .cloned()
        .collect();
    let mut normalization = 0;
    let mut typing = 0;
    let mut null = 0;
    let mut unexplained_theirs = Vec::new();
    let mut unexplained_ours = Vec::new();
    for hit in theirs.difference(&ours) {
        // sigma-rust's `field: null` does not hold on a missing field; the spec (and
        // pySigma's SQL `IS NULL`) says it does.
        let missing_null = nulls
            .get(&hit.0)
            .is_some_and(|fields| fields.iter().any(|f| !r.raw[hit.1].contains_key(f)));
        if missing_null {
            null += 1;
        } else {
            unexplained_theirs.push(hit);
        }
    }
    for hit in ours.difference(&theirs) {
        let fields = r.ours.get(hit).cloned().unwrap_or_default();
        if normalized(&r, hit) {
            normalization += 1;
        } else if typed(&r.raw[hit.1], &fields) {
            typing += 1;
        } else {
            unexplained_ours.push(hit);
        }
    }
    println!(
        "sigma-rust differential: {} rules it could load ({failed} refused), Vedette {} hits, \
         sigma-rust {} hits on routed pairs, {} in common; Vedette-only through normalized \
         fields: {normalization}, through number typing: {typing}; sigma-rust-only through \
         `null` on a missing field: {null}; unexplained: {} sigma-rust-only, {} Vedette-only",
        rules.len(),
        ours.len(),
        theirs.len(),
        ours.intersection(&theirs).count(),
        unexplained_theirs.len(),
        unexplained_ours.len()
    );
    assert!(
        unexplained_theirs.is_empty() && unexplained_ours.is_empty(),
        "{}\n{}",
        show(&r, "sigma-rust-only", &unexplained_theirs),
        show(&r, "Vedette-only", &unexplained_ours)
    );
}
