//! `vedette detect --dedup --risk --silence` on generated Windows events: repeats of
//! a rule on a host folded, a host whose hits add up raised as risky, a host that
//! stops sending while the others go on raised as silent; all on event time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::vedette_output;
use serde_json::{json, Value};

const CERTUTIL: &str = "rules/sigma/windows/proc_creation_certutil_download.tp.jsonl";
const LSASS: &str = "rules/sigma/windows/proc_creation_lsass_dump_comsvcs.tp.jsonl";

fn true_positive(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    serde_json::from_str(&common::lines_of_file(&path).remove(0)).unwrap()
}

/// `base` on `host` at minute `minute` (and second `second`) of 2026-11-23 10:00 UTC.
fn at(base: &Value, host: &str, minute: u32, second: u32, pid: u64) -> String {
    let mut v = base.clone();
    v["Computer"] = host.into();
    v["ProcessId"] = pid.into();
    v["User"] = format!("CORP\\{host}-user").into();
    v["TimeCreated_SystemTime"] = format!(
        "2026-11-23T{:02}:{:02}:{second:02}.000Z",
        10 + minute / 60,
        minute % 60
    )
    .into();
    v.to_string()
}

#[test]
fn a_hunt_folds_repeats_raises_risky_hosts_and_silent_sources() {
    let certutil = true_positive(CERTUTIL);
    let lsass = true_positive(LSASS);
    let benign = json!({
        "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Provider_Name": "Microsoft-Windows-Sysmon",
        "Image": "C:\\Windows\\System32\\notepad.exe", "CommandLine": "notepad.exe a.txt",
    });
    let mut lines = Vec::new();
    // Five certutil downloads on h1 within a minute, then a credential dump.
    for i in 0..5 {
        lines.push(at(&certutil, "h1", 0, i * 10, 100 + u64::from(i)));
    }
    lines.push(at(&lsass, "h1", 1, 0, 900));
    // "quiet" sends for 12 minutes and stops; "busy" goes on for an hour.
    for m in 0..60 {
        if m < 12 {
            lines.push(at(&benign, "quiet", m, 30, 2000 + u64::from(m)));
        }
        lines.push(at(&benign, "busy", m, 40, 3000 + u64::from(m)));
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma/windows");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "detect",
            "--format",
            "windows-json",
            "-r",
            rules.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push(input.to_str().unwrap());
        let out = vedette_output(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines, stderr)
    };

    let (plain, _) = run(&[]);
    assert_eq!(plain.len(), 6, "every hit without the flags: {plain:?}");

    let (lines, stderr) = run(&[
        "--dedup",
        "300",
        "--risk",
        "100",
        "--silence",
        "600",
        "--silence-min-events",
        "5",
    ]);
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "sigma").count(),
        2,
        "one certutil hit and the dump: {lines:?}"
    );
    // The host and its user both add up: two entities raised.
    let risk: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "risk").collect();
    assert_eq!(risk.len(), 2, "{lines:?}");
    assert_eq!(risk[0]["host"], "h1");
    assert_eq!(risk[1]["user"], "h1-user");
    assert_eq!(risk[0]["matched"]["risk.score"], "142");
    let silence: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "silence").collect();
    assert_eq!(silence.len(), 1, "only the source that stopped: {lines:?}");
    assert_eq!(silence[0]["host"], "quiet");
    assert_eq!(
        silence[0]["timestamp"], "2026-11-23T10:21:30.000Z",
        "raised as of when the silence reached ten minutes"
    );
    assert!(
        stderr.contains("4 hits folded by --dedup, 2 risk, 1 silence and 0 baseline alerts"),
        "{stderr}"
    );

    // A baseline learns on the events' time: the first parent of each host is new
    // (no learning window), later ones on that host are known.
    let baseline = dir.path().join("parents.yml");
    std::fs::write(
        &baseline,
        "id: first-parent\ntitle: First parent on a host\nentity: host.name\n\
         new_terms:\n  field: ParentImage\n  learning_hours: 0\n",
    )
    .unwrap();
    let (lines, stderr) = run(&["--baselines", baseline.to_str().unwrap()]);
    let learned: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "baseline").collect();
    assert_eq!(learned.len(), 1, "{lines:?}");
    assert_eq!(learned[0]["host"], "h1");
    assert_eq!(
        learned[0]["matched"]["baseline.term"],
        "C:\\Windows\\System32\\cmd.exe"
    );
    assert!(stderr.contains("1 baseline alerts"), "{stderr}");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "id: x\n").unwrap();
    let out = vedette_output(&[
        "detect",
        "-r",
        rules.to_str().unwrap(),
        "--baselines",
        bad.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yml"));
}

/// 30,000 lines of ~1 KiB (eight pieces of 4 MiB) with a certutil download every 997
/// lines, and the 1-based line numbers of those.
fn many_pieces() -> (String, Vec<u64>) {
    let certutil = true_positive(CERTUTIL);
    let benign = json!({
        "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Provider_Name": "Microsoft-Windows-Sysmon",
        "Image": "C:\\Windows\\System32\\notepad.exe",
        "CommandLine": format!("notepad.exe {}", "x".repeat(900)),
    });
    let (mut lines, mut expected) = (Vec::new(), Vec::new());
    for i in 0..30_000u32 {
        if i % 997 == 0 {
            lines.push(at(&certutil, "h1", i / 600, (i / 10) % 60, u64::from(i)));
            expected.push(u64::from(i) + 1);
        } else {
            lines.push(at(&benign, "h2", i / 600, (i / 10) % 60, u64::from(i)));
        }
    }
    (lines.join("\n"), expected)
}

/// `vedette detect` over `input` with the bundled Windows rules: the `record` of each
/// hit, the exit status and stderr.
fn hunt_records(input: &Path) -> (Vec<u64>, bool, String) {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/sigma/windows");
    let out = vedette_output(&[
        "detect",
        "-r",
        rules.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    let records = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["record"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (records, out.status.success(), stderr)
}

/// An input of many pieces (4 MiB each) is matched ahead on the thread pool; hits come
/// out in input order, each with its own line number, none lost or repeated.
#[test]
fn a_hunt_over_many_pieces_prints_every_hit_in_input_order() {
    let (text, expected) = many_pieces();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, text).unwrap();
    assert!(std::fs::metadata(&input).unwrap().len() > 7 * 4 * 1024 * 1024);
    let (records, ok, stderr) = hunt_records(&input);
    assert!(ok, "{stderr}");
    assert_eq!(records, expected);
}

/// A read error part way (a cut gzip file): the hits of what was read before it are
/// still printed, in order, and the command says the input could not be read.
#[test]
fn a_hunt_cut_short_by_a_read_error_prints_what_came_before() {
    use std::io::Write as _;
    let (text, expected) = many_pieces();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl.gz");
    std::fs::write(&input, &gz[..gz.len() * 7 / 10]).unwrap();
    let (records, ok, stderr) = hunt_records(&input);
    assert!(!ok, "a cut file is an error: {stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(
        records.len() >= expected.len() / 3 && records.len() < expected.len(),
        "the hits before the cut: {records:?}"
    );
    assert_eq!(records, expected[..records.len()]);
}
