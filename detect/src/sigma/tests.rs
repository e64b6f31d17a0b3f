//! Rule-level tests of the engine: modifiers, conditions, routing, on hand-made
//! events.

use vedette_core::event::{Event, EventBatchBuilder};

use super::*;

const MAP: &str = r#"
logsources:
  - logsource: {product: windows, category: process_creation}
    when: {channel: [Microsoft-Windows-Sysmon/Operational], event_id: [1]}
  - logsource: {product: windows, category: process_creation}
    when: {channel: [Security], event_id: [4688]}
    field_mappings: {Image: NewProcessName}
  - logsource: {product: windows, category: registry_delete}
    when: {channel: [Microsoft-Windows-Sysmon/Operational], event_id: [12]}
    conditions: {EventType: [DeleteKey, DeleteValue]}
  - logsource: {product: windows}
    when: {dataset: ["windows.*"]}
"#;

fn event(dataset: &str, code: &str, fields: &[(&str, &str)]) -> Event {
    Event {
        dataset: dataset.into(),
        code: Some(code.into()),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Event::default()
    }
}

fn sysmon(code: &str, fields: &[(&str, &str)]) -> Event {
    let mut all = vec![("Channel", "Microsoft-Windows-Sysmon/Operational")];
    all.extend_from_slice(fields);
    event("windows.sysmon", code, &all)
}

fn rule(detection: &str) -> String {
    format!(
        "title: t\nid: r1\nauthor: a\nlogsource: {{product: windows, category: process_creation}}\ndetection:\n{detection}\nlevel: high\n"
    )
}

/// Rows (0-based) where each rule fires, per rule title.
fn run_with(yaml: &str, events: &[Event], options: &CompileOptions) -> Vec<(String, u32)> {
    let mut loaded = LoadedRules::default();
    loaded.add_text(yaml, "test.yml", "test.yml".into());
    assert!(
        loaded.files.iter().all(|f| !f.is_invalid()),
        "{:?}",
        loaded.files
    );
    let (det, outcomes) = SigmaDetector::new(loaded.rules, options).unwrap();
    for o in &outcomes {
        assert!(matches!(o, CompileOutcome::Compiled(_)), "{o:?}");
    }
    let mut b = EventBatchBuilder::new();
    for e in events {
        b.append(e);
    }
    let batch = b.finish().unwrap();
    det.matches(&batch)
        .unwrap()
        .into_iter()
        .map(|h| (det.rules()[h.rule as usize].title.clone(), h.row))
        .collect()
}

fn options() -> CompileOptions {
    CompileOptions {
        logsources: LogsourceMap::from_yaml(MAP).unwrap(),
        ..CompileOptions::default()
    }
}

fn rows(detection: &str, events: &[Event]) -> Vec<u32> {
    run_with(&rule(detection), events, &options())
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

fn cmd(line: &str) -> Event {
    sysmon("1", &[("CommandLine", line)])
}

#[test]
fn plain_values_are_case_insensitive_and_exact() {
    let d = "    sel:\n        Image: 'C:\\Windows\\cmd.exe'\n    condition: sel";
    let evs = [
        sysmon("1", &[("Image", "c:\\windows\\CMD.exe")]),
        sysmon("1", &[("Image", "C:\\Windows\\cmd.exe.bak")]),
    ];
    assert_eq!(rows(d, &evs), vec![0]);
}

#[test]
fn contains_startswith_endswith_and_all() {
    let evs = [
        cmd("powershell -enc AAA"),
        cmd("cmd /c whoami"),
        cmd("x powershell"),
    ];
    assert_eq!(
        rows(
            "    s:\n        CommandLine|contains: 'shell'\n    condition: s",
            &evs
        ),
        vec![0, 2]
    );
    assert_eq!(
        rows(
            "    s:\n        CommandLine|startswith: 'POWER'\n    condition: s",
            &evs
        ),
        vec![0]
    );
    assert_eq!(
        rows(
            "    s:\n        CommandLine|endswith: 'whoami'\n    condition: s",
            &evs
        ),
        vec![1]
    );
    let all = "    s:\n        CommandLine|contains|all: ['powershell', '-enc']\n    condition: s";
    assert_eq!(rows(all, &evs), vec![0]);
    // `all` with one value is just that value.
    let one = "    s:\n        CommandLine|contains|all: 'cmd'\n    condition: s";
    assert_eq!(rows(one, &evs), vec![1]);
}

#[test]
fn cased_modifier() {
    let evs = [cmd("Secret"), cmd("secret")];
    assert_eq!(
        rows(
            "    s:\n        CommandLine|cased: 'Secret'\n    condition: s",
            &evs
        ),
        vec![0]
    );
    assert_eq!(
        rows(
            "    s:\n        CommandLine|contains|cased: 'ecr'\n    condition: s",
            &evs
        ),
        vec![0, 1]
    );
}

#[test]
fn wildcards_and_escapes() {
    let evs = [cmd("abcXdef"), cmd("abc*def"), cmd("abcdef"), cmd("ab?")];
    assert_eq!(
        rows(
            "    s:\n        CommandLine: 'abc*def'\n    condition: s",
            &evs
        ),
        vec![0, 1, 2]
    );
    assert_eq!(
        rows(
            "    s:\n        CommandLine: 'abc?def'\n    condition: s",
            &evs
        ),
        vec![0, 1]
    );
    assert_eq!(
        rows(
            "    s:\n        CommandLine: 'abc\\*def'\n    condition: s",
            &evs
        ),
        vec![1]
    );
    assert_eq!(
        rows(
            "    s:\n        CommandLine: 'ab\\?'\n    condition: s",
            &evs
        ),
        vec![3]
    );
    assert_eq!(
        rows("    s:\n        CommandLine: '*'\n    condition: s", &evs),
        vec![0, 1, 2, 3]
    );
    // `?` is one character, not one byte.
    let evs = [cmd("aéb"), cmd("ab")];
    assert_eq!(
        rows("    s:\n        CommandLine: 'a?b'\n    condition: s", &evs),
        vec![0]
    );
    // A wildcard inside an endswith value keeps the anchor at the end.
    let evs = [cmd("x8123"), cmd("8123x")];
    assert_eq!(
        rows(
            "    s:\n        CommandLine|endswith: '8???'\n    condition: s",
            &evs
        ),
        vec![0]
    );
}

#[test]
fn regex_with_flags() {
    let evs = [cmd("Invoke-Mimikatz"), cmd("invoke-mimikatz"), cmd("a\nb")];
    assert_eq!(
        rows(
            "    s:\n        CommandLine|re: 'Invoke-M.*'\n    condition: s",
            &evs
        ),
        vec![0]
    );
    assert_eq!(
        rows(
            "    s:\n        CommandLine|re|i: '^invoke-m.*z$'\n    condition: s",
            &evs
        ),
        vec![0, 1]
    );
    assert_eq!(
        rows(
            "    s:\n        CommandLine|re: 'a.b'\n    condition: s",
            &evs
        ),
        Vec::<u32>::new()
    );
    assert_eq!(
        rows(
            "    s:\n        CommandLine|re|s: 'a.b'\n    condition: s",
            &evs
        ),
        vec![2]
    );
    assert_eq!(
        rows(
            "    s:\n        CommandLine|re|m: '^b$'\n    condition: s",
            &evs
        ),
        vec![2]
    );
}

#[test]
fn a_regex_too_big_to_build_never_matches_and_stops_nothing_else() {
    // Valid syntax, but its automaton is over the regex crate's size limit: the rule
    // compiles (syntax is checked then), the regex is built when a value first needs
    // it, fails, and its test never holds (on a value it would match if it could be
    // built); the other selection still does.
    let evs = [cmd(&"a".repeat(40_000)), cmd("zzz")];
    assert_eq!(
        rows(
            "    big:\n        CommandLine|re: '(?:\\w{200}){200}'\n    other:\n        CommandLine: 'zzz'\n    condition: big or other",
            &evs
        ),
        vec![1]
    );
}

#[test]
fn windash_covers_every_dash() {
    let evs = [
        cmd("net user /add"),
        cmd("net user -add"),
        cmd("net user \u{2013}add"),
        cmd("net user add"),
    ];
    let d = "    s:\n        CommandLine|contains|windash: ' -add'\n    condition: s";
    assert_eq!(rows(d, &evs), vec![0, 1, 2]);
    // `/` in the rule also stands for `-`.
    let d = "    s:\n        CommandLine|endswith|windash: '/add'\n    condition: s";
    assert_eq!(rows(d, &evs), vec![0, 1, 2]);
}

#[test]
fn base64_and_base64offset() {
    use base64::Engine as _;
    let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let evs = [
        cmd(&format!(
            "powershell -e {}",
            enc("IEX (New-Object Net.WebClient)")
        )),
        cmd(&format!("powershell -e {}", enc("xIEX (New-Object"))),
        cmd(&format!("powershell -e {}", enc("xyIEX (New-Object"))),
        cmd("nothing"),
    ];
    let d =
        "    s:\n        CommandLine|base64offset|contains: 'IEX (New-Object'\n    condition: s";
    assert_eq!(rows(d, &evs), vec![0, 1, 2]);
    let d = "    s:\n        CommandLine|base64: 'abc'\n    condition: s";
    assert_eq!(rows(d, &[cmd(&enc("abc")), cmd("abc")]), vec![0]);
    // UTF-16LE text (as PowerShell's -EncodedCommand) in base64.
    let wide: Vec<u8> = "whoami".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let e = base64::engine::general_purpose::STANDARD.encode(&wide);
    let d = "    s:\n        CommandLine|wide|base64offset|contains: 'whoami'\n    condition: s";
    assert_eq!(
        rows(d, &[cmd(&format!("-enc {e}")), cmd("whoami")]),
        vec![0]
    );
}

#[test]
fn utf16_modifiers_encode_the_value() {
    let d = "    s:\n        CommandLine|utf16be|contains: 'ab'\n    condition: s";
    assert_eq!(rows(d, &[cmd("x\u{0}a\u{0}b"), cmd("ab")]), vec![0]);
    let d = "    s:\n        CommandLine|utf16le|contains: 'ab'\n    condition: s";
    assert_eq!(rows(d, &[cmd("a\u{0}b\u{0}"), cmd("ab")]), vec![0]);
}

#[test]
fn cidr_v4_and_v6() {
    let ev = |ip: &str| sysmon("1", &[("DestinationIp", ip)]);
    let evs = [
        ev("10.1.2.3"),
        ev("11.0.0.1"),
        ev("fe80::1"),
        ev("2001:db8::1"),
        ev("not-ip"),
        ev("::ffff:10.0.0.9"),
    ];
    let d = "    s:\n        DestinationIp|cidr: ['10.0.0.0/8', 'fe80::/10']\n    condition: s";
    assert_eq!(rows(d, &evs), vec![0, 2, 5]);
}

#[test]
fn numbers_and_numeric_strings_compare_alike() {
    let ev = |v: &str| sysmon("1", &[("ProcessId", v)]);
    let evs = [ev("888"), ev("0x378"), ev("889"), ev("abc")];
    assert_eq!(
        rows("    s:\n        ProcessId: 888\n    condition: s", &evs),
        vec![0, 1]
    );
    assert_eq!(
        rows("    s:\n        ProcessId|gt: 888\n    condition: s", &evs),
        vec![2]
    );
    assert_eq!(
        rows("    s:\n        ProcessId|gte: 888\n    condition: s", &evs),
        vec![0, 1, 2]
    );
    assert_eq!(
        rows("    s:\n        ProcessId|lt: 889\n    condition: s", &evs),
        vec![0, 1]
    );
    assert_eq!(
        rows("    s:\n        ProcessId|lte: 888\n    condition: s", &evs),
        vec![0, 1]
    );
    // contains works on numbers, as text.
    assert_eq!(
        rows(
            "    s:\n        ProcessId|contains: 88\n    condition: s",
            &evs
        ),
        vec![0, 2]
    );
}

#[test]
fn exists_null_and_empty() {
    let evs = [
        sysmon("1", &[("User", "bob")]),
        sysmon("1", &[("User", "")]),
        sysmon("1", &[("Other", "x")]),
    ];
    assert_eq!(
        rows("    s:\n        User|exists: true\n    condition: s", &evs),
        vec![0, 1]
    );
    assert_eq!(
        rows("    s:\n        User|exists: false\n    condition: s", &evs),
        vec![2]
    );
    assert_eq!(
        rows("    s:\n        User: null\n    condition: s", &evs),
        vec![2]
    );
    assert_eq!(
        rows("    s:\n        User: ''\n    condition: s", &evs),
        vec![1]
    );
    // A filter on a missing field does not hold, so `not filter` does.
    let d = "    s:\n        Other: x\n    f:\n        User: bob\n    condition: s and not f";
    assert_eq!(rows(d, &evs), vec![2]);
}

#[test]
fn fieldref_and_neq() {
    let evs = [
        sysmon("1", &[("A", "x"), ("B", "X")]),
        sysmon("1", &[("A", "x"), ("B", "y")]),
        sysmon("1", &[("A", "z")]),
    ];
    assert_eq!(
        rows("    s:\n        A|fieldref: B\n    condition: s", &evs),
        vec![0]
    );
    assert_eq!(
        rows("    s:\n        A|neq: x\n    condition: s", &evs),
        vec![2]
    );
}

#[test]
fn expand_uses_configured_placeholders() {
    let mut opts = options();
    opts.expand
        .placeholders
        .insert("admins".into(), vec!["root".into(), "adm".into()]);
    let yaml = rule("    s:\n        User|expand: '%admins%'\n    condition: s");
    let evs = [
        sysmon("1", &[("User", "adm")]),
        sysmon("1", &[("User", "bob")]),
    ];
    assert_eq!(run_with(&yaml, &evs, &opts), vec![("t".to_owned(), 0)]);
    // Without values the rule is reported, not silently dropped.
    let mut loaded = LoadedRules::default();
    loaded.add_text(&yaml, "x", "x".into());
    let (_, outcomes) = SigmaDetector::new(loaded.rules, &options()).unwrap();
    assert!(matches!(&outcomes[0], CompileOutcome::Unsupported(r) if r.contains("admins")));
}

#[test]
fn conditions_one_of_all_of_them_parentheses() {
    let evs = [cmd("aaa"), cmd("bbb"), cmd("aaa bbb"), cmd("ccc")];
    let sels = "    sel_a:\n        CommandLine|contains: aaa\n    sel_b:\n        CommandLine|contains: bbb\n    filter:\n        CommandLine|contains: ccc\n";
    let c = |cond: &str| rows(&format!("{sels}    condition: {cond}"), &evs);
    assert_eq!(c("1 of sel_*"), vec![0, 1, 2]);
    assert_eq!(c("all of sel_*"), vec![2]);
    assert_eq!(c("1 of them"), vec![0, 1, 2, 3]);
    assert_eq!(c("all of them"), Vec::<u32>::new());
    assert_eq!(c("sel_a and not (sel_b or filter)"), vec![0]);
    assert_eq!(c("not sel_a and not sel_b"), vec![3]);
}

#[test]
fn keywords_search_every_value() {
    let yaml = "title: k\nid: k\nlogsource: {product: windows, category: process_creation}\ndetection:\n    keywords:\n        - 'mimikatz'\n        - 'sekurlsa'\n    condition: keywords\n";
    let evs = [
        cmd("run Mimikatz now"),
        sysmon("1", &[("Other", "x sekurlsa::logonpasswords")]),
        cmd("clean"),
    ];
    let got: Vec<u32> = run_with(yaml, &evs, &options())
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(got, vec![0, 1]);
    let all = "title: k\nid: k\nlogsource: {product: windows, category: process_creation}\ndetection:\n    keywords:\n        '|all':\n            - 'mimikatz'\n            - 'now'\n    condition: keywords\n";
    let got: Vec<u32> = run_with(all, &evs, &options())
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(got, vec![0]);
}

#[test]
fn routing_by_channel_event_id_and_field_mapping() {
    let d = "    s:\n        Image|endswith: '\\whoami.exe'\n    condition: s";
    let evs = [
        sysmon("1", &[("Image", "C:\\x\\whoami.exe")]),
        // Same field, wrong event id: a Sysmon file event.
        sysmon("11", &[("Image", "C:\\x\\whoami.exe")]),
        // Security 4688 names the image NewProcessName.
        event(
            "windows.security",
            "4688",
            &[
                ("Channel", "Security"),
                ("NewProcessName", "C:\\x\\whoami.exe"),
            ],
        ),
        // Not Windows at all.
        event("json", "1", &[("Image", "C:\\x\\whoami.exe")]),
    ];
    assert_eq!(rows(d, &evs), vec![0, 2]);
}

#[test]
fn route_conditions_are_added() {
    let yaml = "title: d\nid: d\nlogsource: {product: windows, category: registry_delete}\ndetection:\n    s:\n        TargetObject|contains: Run\n    condition: s\n";
    let evs = [
        sysmon(
            "12",
            &[
                ("EventType", "DeleteValue"),
                ("TargetObject", "HKLM\\Run\\x"),
            ],
        ),
        sysmon(
            "12",
            &[("EventType", "CreateKey"), ("TargetObject", "HKLM\\Run\\x")],
        ),
    ];
    let got: Vec<u32> = run_with(yaml, &evs, &options())
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(got, vec![0]);
}

#[test]
fn unmapped_category_falls_back_to_product() {
    let yaml = "title: u\nid: u\nlogsource: {product: windows, category: no_such_thing}\ndetection:\n    s:\n        Foo: bar\n    condition: s\n";
    let mut loaded = LoadedRules::default();
    loaded.add_text(yaml, "x", "x".into());
    let (_, outcomes) = SigmaDetector::new(loaded.rules, &options()).unwrap();
    assert!(matches!(
        outcomes[0],
        CompileOutcome::Compiled(Routing::ProductOnly(_))
    ));
    let evs = [
        sysmon("99", &[("Foo", "bar")]),
        event("json", "", &[("Foo", "bar")]),
    ];
    let got: Vec<u32> = run_with(yaml, &evs, &options())
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(got, vec![0]);
}

#[test]
fn unsupported_rules_are_reported_with_a_reason() {
    let cases = [
        ("    s:\n        A|re: '(?<=x)y'\n    condition: s", "regex"),
        (
            "    s:\n        A: x\n    condition: s | count() > 5",
            "aggregation",
        ),
        ("    s:\n        A|gt: abc\n    condition: s", "number"),
        (
            "    s:\n        A|cidr: 10.0.0.0/99\n    condition: s",
            "prefix",
        ),
        (
            "    s:\n        A|hour: 3\n    condition: s",
            "time modifier",
        ),
        ("    s:\n        A: x\n    condition: other", "not defined"),
    ];
    for (d, why) in cases {
        let mut loaded = LoadedRules::default();
        loaded.add_text(&rule(d), "x", "x".into());
        if loaded.rules.is_empty() {
            // The parser itself refused it: also a reported reason.
            assert!(!loaded.files[0].problems.is_empty(), "{d}");
            continue;
        }
        let (_, outcomes) = SigmaDetector::new(loaded.rules, &options()).unwrap();
        match &outcomes[0] {
            CompileOutcome::Unsupported(r) => assert!(r.contains(why), "{d}: {r}"),
            other => panic!("{d}: {other:?}"),
        }
    }
}

#[test]
fn pipeline_maps_fields_and_adds_conditions() {
    let pipeline = Pipeline::from_yaml(
        r#"
name: test
priority: 10
transformations:
  - id: rename
    type: field_name_mapping
    mapping: {CommandLine: process.command_line}
    rule_conditions: [{type: logsource, product: windows}]
  - id: only_x
    type: add_condition
    conditions: {Marker: x}
"#,
    )
    .unwrap();
    let mut opts = options();
    opts.pipelines.push(pipeline);
    let yaml = rule("    s:\n        CommandLine|contains: evil\n    condition: s");
    let evs = [
        sysmon("1", &[("process.command_line", "evil"), ("Marker", "x")]),
        sysmon("1", &[("process.command_line", "evil")]),
        sysmon("1", &[("CommandLine", "evil"), ("Marker", "x")]),
    ];
    assert_eq!(run_with(&yaml, &evs, &opts), vec![("t".to_owned(), 0)]);
    assert!(Pipeline::from_yaml("transformations: [{type: set_state}]").is_err());
}

#[test]
fn alerts_carry_rule_metadata_and_matched_fields() {
    let yaml = rule("    s:\n        CommandLine|contains: evil\n    condition: s");
    let mut loaded = LoadedRules::default();
    loaded.add_text(&yaml, "x", "x".into());
    let (det, _) = SigmaDetector::new(loaded.rules, &options()).unwrap();
    let mut b = EventBatchBuilder::new();
    let mut e = cmd("so evil");
    e.host_name = Some("h1".into());
    b.append(&e);
    b.append(&cmd("fine"));
    let batch = vedette_core::batch::EventBatch::new(b.finish().unwrap(), "test", "default", 0);
    use vedette_core::traits::Detector as _;
    let alerts = det.detect(&batch).unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.rule_id, "r1");
    assert_eq!(a.rule_author.as_deref(), Some("a"));
    assert_eq!(a.level, vedette_core::alert::Level::High);
    assert_eq!(a.host.as_deref(), Some("h1"));
    assert_eq!(
        a.matched.get("CommandLine").map(String::as_str),
        Some("so evil")
    );
}

#[test]
fn meta_filters_narrow_the_rules_they_name() {
    let yaml = format!(
        "{}---\ntitle: only admins\nlogsource: {{product: windows, category: process_creation}}\nfilter:\n    rules: [r1]\n    selection:\n        User|startswith: adm_\n    condition: not selection\n",
        rule("    s:\n        CommandLine|contains: evil\n    condition: s")
    );
    let mut loaded = LoadedRules::default();
    loaded.add_text(&yaml, "x", "x".into());
    assert_eq!(loaded.filters.len(), 1);
    let mut opts = options();
    opts.filters = loaded.filters.iter().map(|(f, _)| f.clone()).collect();
    let (det, _) = SigmaDetector::new(loaded.rules, &opts).unwrap();
    let mut b = EventBatchBuilder::new();
    b.append(&sysmon(
        "1",
        &[("CommandLine", "evil"), ("User", "adm_bob")],
    ));
    b.append(&sysmon("1", &[("CommandLine", "evil"), ("User", "bob")]));
    let hits = det.matches(&b.finish().unwrap()).unwrap();
    assert_eq!(hits.iter().map(|h| h.row).collect::<Vec<_>>(), vec![1]);
}

/// (rule title, row) of every hit, sorted.
fn sorted_hits(yaml: &str, events: &[Event]) -> Vec<(String, u32)> {
    let mut got = run_with(yaml, events, &options());
    got.sort();
    got
}

/// Expected hits as [`sorted_hits`] gives them.
fn hits(expected: &[(&str, u32)]) -> Vec<(String, u32)> {
    expected
        .iter()
        .map(|(t, r)| ((*t).to_owned(), *r))
        .collect()
}

fn keyword_rows(keywords: &str, events: &[Event]) -> Vec<u32> {
    let yaml = format!(
        "title: k\nid: k\nlogsource: {{product: windows}}\ndetection:\n    keywords:\n{keywords}\n    condition: keywords\n"
    );
    run_with(&yaml, events, &options())
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

#[test]
fn keywords_match_inside_one_value_not_across_two() {
    let evs = [
        // `mimikatz` only across the boundary of two adjacent values.
        sysmon("1", &[("A", "xx mimi"), ("B", "katz yy")]),
        sysmon("1", &[("A", "x"), ("B", "the MIMIKATZ tool")]),
        Event {
            message: Some("a line about mimikatz".into()),
            ..sysmon("1", &[("A", "mimi"), ("B", "katz")])
        },
        sysmon("1", &[("A", ""), ("B", "mimikat"), ("C", "z")]),
    ];
    // Plain literals: one scan over a row's values, kept only inside one value.
    assert_eq!(keyword_rows("        - 'mimikatz'", &evs), vec![1, 2]);
    // A wildcard keyword goes value by value: the same answer.
    assert_eq!(keyword_rows("        - 'mimi*katz'", &evs), vec![1, 2]);
    // Both kinds in one rule.
    assert_eq!(
        keyword_rows("        - 'mimi?atz'\n        - 'katz yy'", &evs),
        vec![0, 1, 2]
    );
}

#[test]
fn keyword_groups_by_route_keep_each_rules_answers() {
    // Two keyword rules: one on every Windows event, one on process creation only; the
    // literal they share and the one only the second reads go to different groups.
    let yaml = "title: every\nid: e\nlogsource: {product: windows}\ndetection:\n    keywords:\n        - 'alpha'\n    condition: keywords\n---\ntitle: proc\nid: p\nlogsource: {product: windows, category: process_creation}\ndetection:\n    keywords:\n        - 'beta'\n        - 'alpha'\n    condition: keywords\n";
    let evs = [
        sysmon("1", &[("X", "alpha beta")]),
        sysmon("11", &[("X", "alpha beta")]),
        sysmon("11", &[("X", "beta")]),
    ];
    assert_eq!(
        sorted_hits(yaml, &evs),
        hits(&[("every", 0), ("every", 1), ("proc", 0)])
    );
}

#[test]
fn a_test_two_routes_share_holds_on_the_rows_of_each() {
    let yaml = "title: proc\nid: p\nlogsource: {product: windows, category: process_creation}\ndetection:\n    s:\n        Image|endswith: '\\x.exe'\n    condition: s\n---\ntitle: every\nid: e\nlogsource: {product: windows}\ndetection:\n    s:\n        Image|endswith: '\\x.exe'\n    condition: s\n---\ntitle: notproc\nid: n\nlogsource: {product: windows, category: process_creation}\ndetection:\n    s:\n        Image|endswith: '\\x.exe'\n    condition: not s\n";
    let evs = [
        sysmon("1", &[("Image", "C:\\x.exe")]),
        sysmon("11", &[("Image", "C:\\x.exe")]),
        sysmon("11", &[("Image", "C:\\y.exe")]),
        sysmon("1", &[("Image", "C:\\y.exe")]),
    ];
    assert_eq!(
        sorted_hits(yaml, &evs),
        hits(&[("every", 0), ("every", 1), ("notproc", 3), ("proc", 0)])
    );
}

#[test]
fn values_recurring_or_not_give_the_same_hits() {
    // 70 literals: more than a gated group takes.
    let mut values: Vec<String> = (0..69).map(|i| format!("        - 'tool{i:03}'")).collect();
    values.push("        - 'EVIL'".into());
    let d = format!(
        "    s:\n        CommandLine|contains:\n{}\n    condition: s",
        values.join("\n")
    );
    // Recurring: 3 values over 1,500 rows. Then mostly distinct: past the probe, the
    // batch is matched value by value.
    for distinct in [3usize, 1400] {
        let evs: Vec<Event> = (0..1500)
            .map(|i| {
                let v = i % distinct;
                let line = if v.is_multiple_of(2) {
                    format!("run {v} evil")
                } else {
                    format!("run {v}")
                };
                cmd(&line)
            })
            .collect();
        let want: Vec<u32> = (0..1500u32)
            .filter(|i| (*i as usize % distinct).is_multiple_of(2))
            .collect();
        assert_eq!(rows(&d, &evs), want, "{distinct} distinct values");
    }
}

#[test]
fn absence_and_fieldref_tests_hold_on_their_routes_rows_only() {
    // The rules read `User` on process creation only; rows of another route carry
    // no `User` either, and must not count as "absent" for them.
    let evs = [
        sysmon("1", &[("Other", "x")]),
        sysmon("11", &[("Other", "x")]),
        sysmon("1", &[("User", "bob"), ("TargetUser", "bob")]),
        sysmon("11", &[("User", "bob"), ("TargetUser", "bob")]),
    ];
    assert_eq!(
        rows("    s:\n        User|exists: false\n    condition: s", &evs),
        vec![0]
    );
    assert_eq!(
        rows("    s:\n        User: null\n    condition: s", &evs),
        vec![0]
    );
    assert_eq!(
        rows(
            "    s:\n        User|fieldref: TargetUser\n    condition: s",
            &evs
        ),
        vec![2]
    );
    assert_eq!(
        rows(
            "    s:\n        User|fieldref: TargetUser\n    condition: not s",
            &evs
        ),
        vec![0]
    );
}

#[test]
fn long_literals_are_found_by_their_first_bytes_and_confirmed_whole() {
    // Both literals begin with the same 16 bytes; the automaton holds only those.
    let detection = "    a:\n        CommandLine|contains: 'IMPHASH=0123456789ABCDEF0123'\n    b:\n        CommandLine|contains: 'IMPHASH=0123456789abcdefFFFF'\n    condition: a and not b";
    let evs = [
        cmd("Hashes IMPHASH=0123456789ABCDEF0123,MD5=1"),
        cmd("IMPHASH=0123456789ABCDEF0124"),
        cmd("IMPHASH=0123456789abcdefffff IMPHASH=0123456789abcdef0123"),
        cmd("IMPHASH=0123456789abcdef012"),
        cmd("imphash=0123456789abcdef0123imphash=0123456789abcdef0123"),
    ];
    assert_eq!(rows(detection, &evs), vec![0, 4]);
    // Keywords (every value of the row) go the same way.
    let keyword = "    k:\n        - 'quite a long keyword literal'\n    condition: k";
    // The first 16 bytes in one value and the rest in the next is no match.
    let split = |a: &str, b: &str| sysmon("1", &[("CommandLine", a), ("Image", b)]);
    let evs = [
        cmd("has quite a long keyword literal in it"),
        cmd("has quite a long keyword literaL"),
        cmd("has quite a long keyword"),
        split("x quite a long keyword", " literal"),
        split(" literal", "x quite a long keyword"),
        split("x quite a long keyword", "quite a long keyword literal"),
    ];
    assert_eq!(rows(keyword, &evs), vec![0, 1, 5]);
    // More than four literals that begin alike stay whole; each is still told apart.
    let family: Vec<String> = (0..6)
        .map(|i| format!("        - '\\software\\microsoft\\key{i}'"))
        .collect();
    let detection = format!(
        "    s:\n        TargetObject|contains:\n{}\n    condition: s",
        family.join("\n")
    );
    let reg = |key: &str| sysmon("13", &[("TargetObject", key)]);
    let evs = [
        reg("HKLM\\SOFTWARE\\Microsoft\\Key5\\x"),
        reg("HKLM\\SOFTWARE\\Microsoft\\Key9"),
        reg("HKLM\\SOFTWARE\\Microsoft\\Ke"),
    ];
    let registry = "title: t\nid: r1\nauthor: a\nlogsource: {product: windows, category: registry_set}\ndetection:\n";
    let hits = run_with(
        &format!("{registry}{detection}\nlevel: high\n"),
        &evs,
        &options(),
    );
    assert_eq!(
        hits.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        vec![0]
    );
}

#[test]
fn a_detection_named_twice_in_the_conditions_holds_in_both_places() {
    // `s` is taken by name and by the selector: its expression is built once, kept,
    // and copied for the second use.
    let detection = "    s:\n        CommandLine|contains: 'alpha'\n    s2:\n        CommandLine|contains: 'beta'\n    f:\n        CommandLine|contains: 'gamma'\n    condition: (s and not f) or (all of s* and f)";
    let evs = [
        cmd("alpha"),
        cmd("alpha gamma"),
        cmd("alpha beta gamma"),
        cmd("beta gamma"),
    ];
    assert_eq!(rows(detection, &evs), vec![0, 2]);
}
