//! `POST /v1/query` on a running service: the analyst token is required (the ingest
//! token does not open it), results stream as NDJSON or Arrow IPC, writes and bad SQL
//! are refused with a clear error, and a request can ask for fewer rows. Tokens confined
//! to a tenant see that tenant only, through every endpoint.

mod common;

use std::time::Duration;

use common::{get_metrics, http_post, http_post_bytes, http_request, metric_in, wait_for, Service};

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
    let service = start(tmp.path());
    let ingest_token = service.token("agent", None);
    let query_token = service.token("analyst", None);
    let mut body = String::new();
    for i in 0..12 {
        body.push_str(&format!(
            "{{\"message\":\"login failed\",\"host\":\"h{}\",\"user\":\"u{i}\"}}\n",
            i % 3
        ));
    }
    let auth = format!("Bearer {ingest_token}");
    let (code, answer) = http_post(
        service.addr,
        "/v1/ingest?format=json",
        &[("Authorization", auth.as_str())],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{answer}");
    wait_for("12 events stored", Duration::from_secs(30), || {
        let (_, text) = get_metrics(service.addr).ok()?;
        (metric_in(&text, "vedette_ledger_stored_total{table=\"events\"}") >= 12).then_some(())
    });

    let sql = r#"{"sql": "SELECT \"host.name\" AS host, count(*) AS n FROM events GROUP BY \"host.name\" ORDER BY host"}"#;
    // No token, or the ingest token: refused.
    let (code, _) = http_post_bytes(service.addr, "/v1/query", &[], sql.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 401);
    let (code, _) = query(&service, &ingest_token, sql, "application/x-ndjson");
    assert_eq!(code, 403, "the agent token does not open queries");

    // NDJSON: one object per row.
    let (code, out) = query(&service, &query_token, sql, "application/x-ndjson");
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
        &query_token,
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
        &query_token,
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
        let (code, out) = query(&service, &query_token, body, "*/*");
        let text = String::from_utf8_lossy(&out);
        assert_eq!(code, status, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text}");
    }
    let (code, out) = query(&service, &query_token, sql, "application/x-ndjson");
    assert_eq!(code, 200);
    assert_eq!(String::from_utf8_lossy(&out).lines().count(), 3);
    let (code, stderr) = service.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("audit"), "queries are logged for audit");
}

/// Starts a service with a config of its own ports and Parquet under `data`.
fn start(tmp: &std::path::Path) -> Service {
    std::fs::write(tmp.join("v.toml"), common::test_config("")).unwrap_or_else(|e| panic!("{e}"));
    let mut service = Service::start(tmp, &["--config", "v.toml"]);
    service.wait_healthy(Duration::from_secs(10));
    service
}

fn ndjson_values(out: &[u8], key: &str) -> Vec<String> {
    let mut values: Vec<String> = String::from_utf8_lossy(out)
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v[key]
                .as_str()
                .map_or_else(|| v[key].to_string(), str::to_string)
        })
        .collect();
    values.sort();
    values
}

#[test]
fn a_tenant_token_sees_its_tenant_only_through_every_endpoint() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let service = start(tmp.path());
    for (tenant, n) in [("acme", 2), ("globex", 3)] {
        let agent = service.token("agent", Some(tenant));
        let body: String = (0..n)
            .map(|i| format!("{{\"message\":\"{tenant} {i}\",\"host\":\"{tenant}-h\"}}\n"))
            .collect();
        let auth = format!("Bearer {agent}");
        let (code, answer) = http_post(
            service.addr,
            "/v1/ingest?format=json",
            &[("Authorization", &auth)],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(code, 200, "{answer}");
    }
    wait_for("5 events stored", Duration::from_secs(30), || {
        let (_, text) = get_metrics(service.addr).ok()?;
        (metric_in(&text, "vedette_ledger_stored_total{table=\"events\"}") >= 5).then_some(())
    });
    let acme = service.token("analyst", Some("acme"));
    let everyone = service.token("analyst", None);
    let sql = r#"{"sql": "SELECT tenant, \"host.name\" AS host FROM events"}"#;
    let (code, out) = query(&service, &acme, sql, "application/x-ndjson");
    assert_eq!(code, 200);
    assert_eq!(ndjson_values(&out, "tenant"), ["acme", "acme"]);
    let sql_b = r#"{"sql": "SELECT tenant FROM events WHERE tenant = 'globex'"}"#;
    let (code, out) = query(&service, &acme, sql_b, "application/x-ndjson");
    assert_eq!(
        (code, out.len()),
        (200, 0),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let (code, out) = query(&service, &everyone, sql, "application/x-ndjson");
    assert_eq!(code, 200);
    assert_eq!(ndjson_values(&out, "tenant").len(), 5);

    // Metrics span tenants; token management is the admin's.
    use common::get_with;
    assert_eq!(get_with(service.addr, "/metrics", &acme).0, 403);
    assert_eq!(get_with(service.addr, "/v1/tokens", &acme).0, 403);
    let (code, ready) = get_with(service.addr, "/ready", &acme);
    assert_eq!(code, 200, "{ready}");

    // A tenant's admin manages its own tenant's tokens only.
    let acme_admin = service.token("admin", Some("acme"));
    let admin_auth = format!("Bearer {acme_admin}");
    let (code, listing) = get_with(service.addr, "/v1/tokens", &acme_admin);
    assert_eq!(code, 200);
    let listing: serde_json::Value =
        serde_json::from_str(&listing).unwrap_or_else(|e| panic!("{e}"));
    let tokens = listing["tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(!tokens.is_empty());
    assert!(tokens.iter().all(|t| t["tenant"] == "acme"), "{listing}");
    assert!(tokens
        .iter()
        .all(|t| t.get("token").is_none() && t.get("sha256").is_none()));
    let (code, answer) = http_post(
        service.addr,
        "/v1/tokens",
        &[("Authorization", &admin_auth)],
        br#"{"role": "analyst", "tenant": "globex"}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 403, "{answer}");
    // Revoking through the API closes the token at once.
    let id = tokens
        .iter()
        .find(|t| t["role"] == "analyst")
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("{listing}"));
    let (code, _) = http_request(
        service.addr,
        "DELETE",
        &format!("/v1/tokens/{id}"),
        &[("Authorization", &admin_auth)],
        b"",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 204);
    let (code, _) = query(&service, &acme, sql, "application/x-ndjson");
    assert_eq!(code, 401);
}

/// Every operation of `docs/openapi.yaml` refuses a request without a token, but those
/// it marks public (`security: []`: `/health` and the console's static files), which
/// answer without one.
#[test]
fn every_documented_endpoint_but_the_public_ones_needs_a_token() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let service = start(tmp.path());
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let doc: serde_json::Value = yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let paths = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("no paths"));
    let mut checked = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "0123456789abcdef")
            .replace("{path}", "custom/x.yml")
            .replace("{file}", "app.js");
        for (method, operation) in item.as_object().unwrap_or_else(|| panic!("{path}")) {
            let (code, body) =
                http_request(service.addr, &method.to_uppercase(), &concrete, &[], b"{}")
                    .unwrap_or_else(|e| panic!("{e}"));
            let public = operation["security"].as_array().is_some_and(Vec::is_empty);
            let expected = if public { 200 } else { 401 };
            assert_eq!(code, expected, "{method} {path}: {body}");
            checked += 1;
        }
    }
    assert!(checked >= 8, "{checked} operations");
}
