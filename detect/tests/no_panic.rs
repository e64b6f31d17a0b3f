//! No input panics the Sigma engine: rule texts assembled from Sigma's own pieces
//! (modifiers, wildcards, escapes, conditions, correlation keys) in random
//! combinations, and arbitrary text, go through loading, compilation, detection and
//! correlation.

use proptest::prelude::*;
use vedette_detect::sigma::harness::run_rule_text;

const MODIFIERS: &[&str] = &[
    "",
    "|contains",
    "|startswith",
    "|endswith",
    "|all",
    "|re",
    "|re|i",
    "|re|m|s",
    "|base64",
    "|base64offset|contains",
    "|wide|base64offset|contains",
    "|utf16be",
    "|utf16",
    "|windash",
    "|contains|windash",
    "|cidr",
    "|gt",
    "|lte",
    "|exists",
    "|fieldref",
    "|expand",
    "|cased",
    "|neq",
    "|contains|all",
    "|hour",
    "|nope",
];

const VALUES: &[&str] = &[
    "'x'",
    "'*'",
    "'?'",
    "'\\\\*'",
    "'a*b?c'",
    "''",
    "null",
    "1",
    "-3",
    "1.5",
    "true",
    "'10.0.0.0/8'",
    "'::1/200'",
    "'(?<=a)b'",
    "'[unclosed'",
    "'%ph%'",
    "'- / –'",
    "['a', 'b']",
    "[]",
    "{}",
    "'é\u{0}'",
    "'cmd.exe'",
];

const CONDITIONS: &[&str] = &[
    "sel",
    "not sel",
    "sel and not f",
    "1 of sel*",
    "all of them",
    "1 of them",
    "sel or (f and not sel)",
    "2 of them",
    "missing",
    "sel | count() > 1",
    "sel near f",
];

fn rule() -> impl Strategy<Value = String> {
    (
        prop::sample::select(MODIFIERS),
        prop::sample::select(VALUES),
        prop::sample::select(MODIFIERS),
        prop::sample::select(VALUES),
        prop::sample::select(CONDITIONS),
        prop::sample::select(&["CommandLine", "Image", "User", "A"][..]),
        any::<bool>(),
    )
        .prop_map(|(m1, v1, m2, v2, cond, field, correlate)| {
            let mut text = format!(
                "title: t\nid: r1\nname: r1\nlogsource: {{product: windows, category: process_creation}}\ndetection:\n  sel:\n    {field}{m1}: {v1}\n  f:\n    A{m2}: {v2}\n  condition: {cond}\n"
            );
            if correlate {
                text.push_str("---\ntitle: c\ncorrelation:\n  type: event_count\n  rules: [r1]\n  group-by: [User]\n  timespan: 1m\n  condition: {gte: 2}\n");
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn assembled_rules_never_panic(text in rule()) {
        run_rule_text(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        run_rule_text(&text);
    }
}
