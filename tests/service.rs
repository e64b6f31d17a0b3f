//! `vedette run` end to end: starts on a fresh folder with no config, answers
//! `/health` and `/metrics`, stops cleanly on SIGTERM, fails fast on bad setups, and
//! prints its first admin token once.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{get_metrics, http_get, http_request, Service};

#[test]
fn runs_with_no_config_and_stops_cleanly_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // Truly no config: the defaults, syslog on 127.0.0.1:5514 included (the only test
    // that binds the default syslog port).
    let mut service = Service::start_without_config(tmp.path());
    service.wait_healthy(Duration::from_secs(5));

    let (status, body) = http_get(service.addr, "/health").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_default();
    assert_eq!(health["status"], "ok", "{body}");

    let (status, metrics) = get_metrics(service.addr).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200);
    assert!(metrics.contains("vedette_build_info"), "{metrics}");
    assert!(
        metrics.contains("vedette_http_requests_total{route=\"/health\",status=\"200\"}"),
        "{metrics}"
    );

    let (status, _) = http_get(service.addr, "/no-such-route").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 404);

    // The default data folder is created under the working directory.
    assert!(tmp.path().join("vedette-data").is_dir());

    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    assert!(stderr.contains("vedette stopped"), "{stderr}");
}

#[test]
fn the_first_start_prints_an_admin_token_once_and_keeps_only_its_hash() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    std::fs::write(
        tmp.path().join("v.toml"),
        common::syslog_config(common::free_addr(), common::free_addr()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let start = || {
        let addr = common::free_addr();
        let child = common::vedette()
            .current_dir(tmp.path())
            .args([
                "run",
                "--config",
                "v.toml",
                "--http-addr",
                &addr.to_string(),
            ])
            .env_remove("VEDETTE_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut service = Service {
            child,
            addr,
            log: None,
        };
        service.wait_healthy(Duration::from_secs(10));
        service
    };
    let mut first = start();
    let stdout = first
        .child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("stdout"));
    let token = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("vdt_"))
        .unwrap_or_else(|| panic!("no token printed"));
    assert_eq!(common::get_with(first.addr, "/metrics", &token).0, 200);
    let stored = std::fs::read_to_string(tmp.path().join("vedette-data/tokens.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!stored.contains(&token), "only the hash is kept");
    let (code, _) = first.terminate();
    assert_eq!(code, Some(0));

    // The second start prints nothing: the token from the first still works.
    let mut second = start();
    assert_eq!(common::get_with(second.addr, "/metrics", &token).0, 200);
    let stdout = second
        .child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("stdout"));
    let (code, _) = second.terminate();
    assert_eq!(code, Some(0));
    let printed = vedette_core::io::read_capped(stdout, 1 << 16).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&printed).contains("vdt_"));
}

#[test]
fn a_port_in_use_fails_fast_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let taken = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = taken
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .to_string();
    let out = common::vedette()
        .current_dir(tmp.path())
        .args(["run", "--http-addr", &addr])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("http address {addr} is already in use")),
        "{stderr}"
    );
}

#[test]
fn two_processes_cannot_share_a_data_folder() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut first = Service::start(tmp.path(), &["--data-dir", "shared"]);
    first.wait_healthy(Duration::from_secs(5));
    let addr = common::free_addr().to_string();
    let out = common::vedette()
        .current_dir(tmp.path())
        .args(["run", "--data-dir", "shared", "--http-addr", &addr])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is in use by another vedette process"),
        "{stderr}"
    );
    let (code, _) = first.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn a_bad_config_file_fails_fast_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let config = tmp.path().join("bad.toml");
    std::fs::write(&config, "[http]\nadr = \"127.0.0.1:1\"\n").unwrap_or_else(|e| panic!("{e}"));
    let out = common::vedette()
        .current_dir(tmp.path())
        .args(["run", "--config", "bad.toml"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("adr") && stderr.contains("line 2"),
        "{stderr}"
    );
}

#[test]
fn flags_override_the_config_file() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // The file asks for a port that is taken; --http-addr (set by Service) must win.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let taken_addr = taken.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "data_dir = \"from-file\"\n[http]\naddr = \"{taken_addr}\"\n{}",
        common::syslog_config(common::free_addr(), common::free_addr())
    );
    std::fs::write(tmp.path().join("v.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let mut service = Service::start(
        tmp.path(),
        &["--config", "v.toml", "--data-dir", "from-flag"],
    );
    service.wait_healthy(Duration::from_secs(5));
    assert!(tmp.path().join("from-flag").is_dir());
    assert!(!tmp.path().join("from-file").exists());
    let (code, _) = service.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn every_error_answer_is_json() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    std::fs::write(
        tmp.path().join("v.toml"),
        format!(
            "[http]\nmax_body_bytes = 1024\n{}",
            common::syslog_config(common::free_addr(), common::free_addr())
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut service = Service::start(tmp.path(), &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    let auth = format!("Bearer {}", common::ADMIN_TOKEN);
    let big = vec![b'x'; 4096];
    for (method, path, body, status) in [
        ("POST", "/v1/ingest", big.as_slice(), 413),
        ("GET", "/no-such-route", b"".as_slice(), 404),
        ("DELETE", "/health", b"".as_slice(), 405),
        ("POST", "/v1/query", b"not json".as_slice(), 400),
    ] {
        let (code, answer) = http_request(
            service.addr,
            method,
            path,
            &[("Authorization", &auth)],
            body,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(code, status, "{method} {path}: {answer}");
        let value: serde_json::Value = serde_json::from_str(answer.trim())
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {answer}"));
        assert!(value["error"].is_string(), "{answer}");
    }
}
