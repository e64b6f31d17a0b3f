//! The command line: help, version, `config check`, start-up errors.

mod common;

use common::vedette_output;

#[test]
fn help_lists_the_commands() {
    let out = vedette_output(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["run", "config"] {
        assert!(
            help.contains(command),
            "--help does not list `{command}`:\n{help}"
        );
    }
    let run_help = String::from_utf8_lossy(&vedette_output(&["run", "--help"]).stdout).to_string();
    for flag in ["--config", "--data-dir", "--http-addr"] {
        assert!(
            run_help.contains(flag),
            "run --help lacks {flag}:\n{run_help}"
        );
    }
}

#[test]
fn config_check_accepts_the_example_configs() {
    let root = env!("CARGO_MANIFEST_DIR");
    for name in ["embedded.toml", "cluster.toml", "compose/vedette.toml"] {
        let path = format!("{root}/deploy/{name}");
        let out = vedette_output(&["config", "check", &path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        let effective = String::from_utf8_lossy(&out.stdout);
        assert!(
            effective.contains("valid; effective configuration"),
            "{effective}"
        );
        assert!(
            effective.contains("[bus.embedded]"),
            "defaults are spelled out: {effective}"
        );
    }
    let cluster = vedette_output(&["config", "check", &format!("{root}/deploy/cluster.toml")]);
    let effective = String::from_utf8_lossy(&cluster.stdout);
    assert!(effective.contains("kind = \"kafka\""), "{effective}");
    assert!(effective.contains("kind = \"clickhouse\""), "{effective}");
}

#[test]
fn the_kubernetes_config_map_holds_a_valid_config() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/deploy/kubernetes/vedette.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut toml = None;
    let mut kinds = Vec::new();
    for doc in text.split("\n---\n") {
        let value: serde_json::Value =
            yaml_serde::from_str(doc).unwrap_or_else(|e| panic!("{e}:\n{doc}"));
        kinds.push(value["kind"].as_str().unwrap_or_default().to_string());
        if let Some(t) = value["data"]["vedette.toml"].as_str() {
            toml = Some(t.to_string());
        }
    }
    assert_eq!(kinds, ["Secret", "ConfigMap", "Deployment", "Service"]);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = tmp.path().join("vedette.toml");
    std::fs::write(
        &path,
        toml.unwrap_or_else(|| panic!("no vedette.toml in the ConfigMap")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = vedette_output(&["config", "check", &path.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let effective = String::from_utf8_lossy(&out.stdout);
    assert!(effective.contains("[[responders]]"), "{effective}");
}

#[test]
fn config_check_rejects_an_unknown_key_with_its_name_and_line() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = tmp.path().join("typo.toml");
    let text = "data_dir = \"/tmp/x\"\n\n[store]\nkind = \"parquet\"\nretension_days = 3\n";
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let out = vedette_output(&["config", "check", &path.to_string_lossy()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("retension_days"), "{stderr}");
    assert!(stderr.contains("line 5"), "{stderr}");
}

#[test]
fn config_check_of_a_missing_file_says_so() {
    let out = vedette_output(&["config", "check", "/nonexistent/v.toml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/v.toml"));
}

#[test]
fn parse_prints_events_and_a_summary_and_dead_letters() {
    let root = env!("CARGO_MANIFEST_DIR");
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dead = tmp.path().join("dead.jsonl");
    let input = format!("{root}/tests/data/mixed.cef");
    let out = vedette_output(&[
        "parse",
        "--format",
        "cef",
        "--dead-letters",
        &dead.to_string_lossy(),
        &input,
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_default())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["destination.port"], 4444);
    assert_eq!(rows[1]["network.transport"], "udp");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("format cef: 2 events (cef=2), 1 dead letters"),
        "{stderr}"
    );
    let dead_text = std::fs::read_to_string(&dead).unwrap_or_default();
    let letter: serde_json::Value = serde_json::from_str(dead_text.trim()).unwrap_or_default();
    assert_eq!(
        letter["raw"],
        "CEF:0|Acme|Gateway|2.1|this header stops too early"
    );
    assert!(letter["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("CEF header"));
}

#[test]
fn parse_writes_parquet_and_fails_only_for_unreadable_inputs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let input = format!("{root}/tests/data/mixed.cef");
    let out = vedette_output(&[
        "parse",
        "--output",
        "parquet",
        &input,
        "/nonexistent/input.log",
    ]);
    assert!(
        !out.status.success(),
        "an unreadable input makes the exit code non-zero"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/input.log: cannot read"),
        "{stderr}"
    );
    let path = tmp.path().join("out.parquet");
    std::fs::write(&path, &out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .unwrap_or_else(|e| panic!("{e}"));
    let rows: usize = reader.map(|b| b.map(|b| b.num_rows()).unwrap_or(0)).sum();
    // Format auto: the broken CEF line is kept as a plain syslog event.
    assert_eq!(rows, 3);
}

#[test]
fn run_refuses_an_event_id_key_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let config = dir.path().join("vedette.toml");
    let text = format!(
        "data_dir = {:?}\n[ingest]\nid_key_env = \"VEDETTE_TEST_EVENT_ID_KEY\"\n",
        dir.path().join("data")
    );
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("write config: {e}"));
    let config = config.to_string_lossy().to_string();
    let run = |key: Option<&str>| {
        let mut cmd = common::vedette();
        cmd.args(["run", "--config", &config]);
        match key {
            Some(k) => cmd.env("VEDETTE_TEST_EVENT_ID_KEY", k),
            None => cmd.env_remove("VEDETTE_TEST_EVENT_ID_KEY"),
        };
        let out = cmd.output().unwrap_or_else(|e| panic!("run vedette: {e}"));
        assert!(!out.status.success(), "started with key {key:?}");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let unset = run(None);
    assert!(unset.contains("not set in the environment"), "{unset}");
    let short = run(Some("0123"));
    assert!(short.contains("32 hex digits"), "{short}");
}
