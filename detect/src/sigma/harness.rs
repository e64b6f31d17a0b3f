//! One rule text through the whole engine, for fuzzing and property tests: load,
//! compile (rules, filters, correlations), evaluate on a fixed batch, correlate.

use vedette_core::event::{Event, EventBatchBuilder};

use super::{
    compile_correlations, CompileOptions, CorrelationEngine, CorrelationLimits, LoadedRules,
    LogsourceMap, SigmaDetector,
};

const MAP: &str = "logsources:\n  - logsource: {product: windows, category: process_creation}\n    when: {event_id: [1, 4688]}\n  - logsource: {product: windows}\n    when: {dataset: [\"windows.*\"]}\n";

/// Runs `text` as a rule file through loading, compilation, detection and
/// correlation on a few fixed events; must return normally whatever the text.
pub fn run_rule_text(text: &str) {
    let mut loaded = LoadedRules::default();
    loaded.add_text(text, "fuzz", "fuzz".into());
    let options = CompileOptions {
        logsources: LogsourceMap::from_yaml(MAP).unwrap_or_default(),
        filters: loaded.filters.iter().map(|(f, _)| f.clone()).collect(),
        ..CompileOptions::default()
    };
    let Ok((detector, _)) = SigmaDetector::new(loaded.rules, &options) else {
        return;
    };
    let (set, _) = compile_correlations(loaded.correlations, detector.rules());
    let mut b = EventBatchBuilder::new();
    let values = [
        "",
        "cmd.exe /c whoami",
        "C:\\Windows\\*?",
        "10.0.0.1",
        "0x378",
        "é\u{0}",
        "-",
    ];
    for (i, v) in values.iter().enumerate() {
        b.append(&Event {
            timestamp_ms: i as i64 * 1000,
            dataset: "windows.sysmon".into(),
            code: Some("1".into()),
            fields: [
                "CommandLine",
                "Image",
                "User",
                "A",
                "EventID",
                "DestinationIp",
            ]
            .iter()
            .map(|k| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
            ..Event::default()
        });
    }
    let Ok(batch) = b.finish() else { return };
    let Ok(hits) = detector.matches(&batch) else {
        return;
    };
    let mut engine = CorrelationEngine::new(&set, CorrelationLimits::default());
    let _ = engine.observe(&set, &batch, &hits);
    let _ = engine.flush(&set);
}
