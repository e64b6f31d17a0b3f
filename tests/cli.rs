//! The command line: help, version, `config check`.

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
    for name in ["embedded.toml", "cluster.toml"] {
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
