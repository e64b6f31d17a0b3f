//! `POST /v1/query` on a running service: the analyst token is required (the ingest
//! token does not open it), results stream as NDJSON or Arrow IPC, writes and bad SQL
//! are refused with a clear error, and a request can ask for fewer rows.

mod common;

use std::time::Duration;

use common::{free_addr, http_get, http_post, http_post_bytes, metric_in, wait_for, Service};

const INGEST_TOKEN: &str = "test-ingest-token-query-0123456789";
const QUERY_TOKEN: &str = "test-analyst-token-query-0123456789";

fn query(service: &Service, token: &str, body: &str, accept: &str) -> (u16, Vec<u8>) {
    let auth = format!("Bearer {token}");
    http_post_bytes(
        service.addr,
        "/v1/query",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
            ("Accept", accept),
        ],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn analysts_query_the_store_over_http() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (udp, tcp) = (free_addr(), free_addr());
    std::fs::write(
        tmp.path().join("v.toml"),
        format!(
            "data_dir = \"data\"\n[ingest]\nbatch_age_ms = 50\n[ingest.syslog]\nudp_addr = \"{udp}\"\ntcp_addr = \"{tcp}\"\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut service = Service::start_with_env(
        tmp.path(),
        &["--config", "v.toml"],
        &[
            ("VEDETTE_INGEST_TOKEN", INGEST_TOKEN),
            ("VEDETTE_QUERY_TOKEN", QUERY_TOKEN),
        ],
    );
    service.wait_healthy(Duration::from_secs(10));
    let mut body = String::new();
    for i in 0..12 {
        body.push_str(&format!(
            "{{\"message\":\"login failed\",\"host\":\"h{}\",\"user\":\"u{i}\"}}\n",
            i % 3
        ));
    }
    let auth = format!("Bearer {INGEST_TOKEN}");
    let (code, answer) = http_post(
        service.addr,
        "/v1/ingest?format=json",
        &[("Authorization", auth.as_str())],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{answer}");
    wait_for("12 events stored", Duration::from_secs(30), || {
        let (_, text) = http_get(service.addr, "/metrics").ok()?;
        (metric_in(&text, "vedette_ledger_stored_total{table=\"events\"}") >= 12).then_some(())
    });

    let sql = r#"{"sql": "SELECT \"host.name\" AS host, count(*) AS n FROM events GROUP BY \"host.name\" ORDER BY host"}"#;
    // No token, or the ingest token: refused.
    let (code, _) = http_post_bytes(service.addr, "/v1/query", &[], sql.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 401);
    let (code, _) = query(&service, INGEST_TOKEN, sql, "application/x-ndjson");
    assert_eq!(code, 401, "the ingest token does not open queries");

    // NDJSON: one object per row.
    let (code, out) = query(&service, QUERY_TOKEN, sql, "application/x-ndjson");
    let text = String::from_utf8_lossy(&out);
    assert_eq!(code, 200, "{text}");
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert_eq!(rows[0]["host"], "h0");
    assert_eq!(rows[0]["n"], 4);

    // Arrow IPC stream, asked for by the Accept header.
    let (code, out) = query(
        &service,
        QUERY_TOKEN,
        sql,
        "application/vnd.apache.arrow.stream",
    );
    assert_eq!(code, 200);
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(out), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let total: usize = reader
        .map(|b| b.unwrap_or_else(|e| panic!("{e}")).num_rows())
        .sum();
    assert_eq!(total, 3);

    // Fewer rows on request.
    let (code, out) = query(
        &service,
        QUERY_TOKEN,
        r#"{"sql": "SELECT * FROM events", "max_rows": 5, "format": "ndjson"}"#,
        "*/*",
    );
    assert_eq!(code, 200);
    assert_eq!(String::from_utf8_lossy(&out).lines().count(), 5);

    // Writes, bad SQL and bad requests: clear errors, nothing changed.
    for (body, status, says) in [
        (r#"{"sql": "DROP TABLE events"}"#, 400, "query"),
        (r#"{"sql": "SELECT nope FROM events"}"#, 400, "nope"),
        (
            r#"{"sql": "SELECT 1", "format": "xml"}"#,
            400,
            "ndjson or arrow",
        ),
        ("SELECT 1", 400, "JSON"),
    ] {
        let (code, out) = query(&service, QUERY_TOKEN, body, "*/*");
        let text = String::from_utf8_lossy(&out);
        assert_eq!(code, status, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text}");
    }
    let (code, out) = query(&service, QUERY_TOKEN, sql, "application/x-ndjson");
    assert_eq!(code, 200);
    assert_eq!(String::from_utf8_lossy(&out).lines().count(), 3);
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("audit"), "queries are logged for audit");
}
