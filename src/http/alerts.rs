//! `GET /v1/alerts`, `POST /v1/alerts/{id}/ack`, `POST /v1/alerts/{id}/false-positive`,
//! `POST /v1/alerts/{id}/reopen` (analyst): alert triage.
//!
//! Alerts are read from the store with the caller's tenant scope. An alert's status is
//! its latest triage record in the audit table (`alert.ack`, `alert.false_positive`,
//! `alert.reopen`), `open` without one or after a reopen, so triage works the same on every node of a cluster. A
//! false-positive mark also suppresses later alerts of the same tenant, rule and
//! dedup key ([`crate::suppressions`]). Each alert also lists its finished responder
//! deliveries (`alert.deliver` records, [`crate::respond`]) and how many repeats dedup
//! folded into it (`suppressed`, from `alert.dedup` records). The queries are written in the SQL both
//! stores speak; filter values may not hold quotes or backslashes.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use vedette_core::traits::{EventStore, QueryScope};

use super::auth::Refusal;
use super::{error, AppState};
use crate::alert_flow::DEDUP_ACTION;
use crate::audit_log;
use crate::respond::delivery::DELIVER_ACTION;
use crate::suppressions::{Suppressions, FALSE_POSITIVE, REOPEN};
use crate::tokens::{Principal, Role};

/// Action of an acknowledgement in the audit log.
pub(crate) const ACK: &str = "alert.ack";
/// Alerts listed at most per request.
const MAX_LIMIT: usize = 1000;
/// Triaged alerts a status filter may name at most.
const MAX_TRIAGED: usize = 10_000;
/// Longest triage note.
const MAX_NOTE_BYTES: usize = 4096;

/// What the alert endpoints need.
pub(crate) struct HttpAlerts {
    /// The store alerts and triage records are read from.
    pub(crate) store: Arc<dyn EventStore>,
    /// Where false-positive marks take effect at once.
    pub(crate) suppressions: Arc<Suppressions>,
}

impl std::fmt::Debug for HttpAlerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpAlerts").finish_non_exhaustive()
    }
}

/// Query parameters of `GET /v1/alerts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertFilter {
    /// Start of the time range: RFC 3339 or Unix milliseconds (default: 24 h ago).
    from: Option<String>,
    /// End of the time range, exclusive (default: now).
    to: Option<String>,
    /// Levels, comma-separated (`high,critical`).
    level: Option<String>,
    /// Rule id.
    rule: Option<String>,
    /// Host or user the alert is about.
    entity: Option<String>,
    /// `open`, `acknowledged` or `false_positive`.
    status: Option<String>,
    /// Tenant (for tokens of every tenant; a tenant's token sees its own only anyway).
    tenant: Option<String>,
    /// Detection kinds, comma-separated (`sigma,yara`).
    kind: Option<String>,
    /// Alerts at most (default 100, at most 1000).
    limit: Option<usize>,
}

/// A triage state.
#[derive(Debug, Clone)]
struct Triage {
    status: &'static str,
    at: String,
    by: String,
    note: Option<String>,
}

/// A refusal with a JSON error body.
pub(super) fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    error(status, message).into()
}

/// `value` as a SQL string literal both stores read the same way.
pub(super) fn literal(value: &str, what: &str) -> Result<String, Refusal> {
    if value.contains('\'') || value.contains('\\') || value.len() > 1024 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("{what}: quotes, backslashes and values over 1024 bytes are not accepted"),
        ));
    }
    Ok(format!("'{value}'"))
}

/// A time parameter as Unix milliseconds.
fn time_ms(value: &str, what: &str) -> Result<i64, Refusal> {
    super::time_ms(value, what).map_err(|e| refuse(StatusCode::BAD_REQUEST, e))
}

/// A time literal to the second (both stores compare it with `@timestamp`).
pub(super) fn time_literal(ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    format!("'{}'", t.format("%Y-%m-%d %H:%M:%S"))
}

/// The rows of `sql` as JSON objects.
pub(super) async fn json_rows(
    store: &dyn EventStore,
    sql: &str,
    scope: &QueryScope,
) -> Result<Vec<Value>, Refusal> {
    let failed = |e: vedette_core::CoreError| {
        tracing::error!(error = %e, sql, "alert query failed");
        refuse(StatusCode::BAD_GATEWAY, format!("the store failed: {e}"))
    };
    let mut stream = store.query(sql, scope).await.map_err(failed)?;
    let mut batches: Vec<RecordBatch> = Vec::new();
    while let Some(b) = stream.next().await {
        batches.push(b.map_err(failed)?);
    }
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    let encoded = writer
        .write_batches(&refs)
        .and_then(|()| writer.finish())
        .map(|()| writer.into_inner());
    let bytes = encoded.map_err(|e| {
        tracing::error!(error = %e, "encoding alerts failed");
        refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    })?;
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<Value> = serde_json::from_slice(&bytes).map_err(|e| {
        tracing::error!(error = %e, "decoding alerts failed");
        refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    })?;
    for row in &mut rows {
        if let Value::Object(columns) = row {
            join_nested_maps(columns);
        }
    }
    Ok(rows)
}

/// Maps a store keeps as two arrays (`fields.key`, `fields.value`: ClickHouse's
/// portable tables) joined back into one object (`fields`), as the other stores give
/// them; the store's own bookkeeping columns (`_partition`, `_offset`) left out.
fn join_nested_maps(columns: &mut serde_json::Map<String, Value>) {
    columns.retain(|name, _| !name.starts_with('_'));
    let maps: Vec<String> = columns
        .keys()
        .filter_map(|k| k.strip_suffix(".key"))
        .filter(|m| columns.contains_key(&format!("{m}.value")))
        .map(str::to_string)
        .collect();
    for map in maps {
        let keys = columns.remove(&format!("{map}.key"));
        let values = columns.remove(&format!("{map}.value"));
        let joined: serde_json::Map<String, Value> = match (keys, values) {
            (Some(Value::Array(k)), Some(Value::Array(v))) => k
                .into_iter()
                .zip(v)
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v)))
                .collect(),
            _ => serde_json::Map::new(),
        };
        columns.insert(map, Value::Object(joined));
    }
}

/// The latest triage of each alert (of `ids`, or of every triaged alert).
async fn triage(
    store: &dyn EventStore,
    scope: &QueryScope,
    ids: Option<&[String]>,
) -> Result<HashMap<String, Triage>, Refusal> {
    let mut sql = format!(
        "SELECT target, action, \"@timestamp\" AS at, \"actor.id\" AS actor, detail FROM audit \
         WHERE action IN ('{ACK}', '{FALSE_POSITIVE}', '{REOPEN}') AND outcome = 'ok'"
    );
    if let Some(ids) = ids {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list: Result<Vec<String>, Refusal> =
            ids.iter().map(|id| literal(id, "alert id")).collect();
        sql.push_str(&format!(" AND target IN ({})", list?.join(", ")));
    }
    // Ties of `@timestamp` (seconds on old ClickHouse) go by the time-ordered id.
    sql.push_str(" ORDER BY \"@timestamp\", \"audit.id\"");
    let mut out = HashMap::new();
    for row in json_rows(store, &sql, scope).await? {
        let (Some(target), Some(action)) = (row["target"].as_str(), row["action"].as_str()) else {
            continue;
        };
        let status = match action {
            ACK => "acknowledged",
            FALSE_POSITIVE => "false_positive",
            _ => "open",
        };
        out.insert(
            target.to_string(),
            Triage {
                status,
                at: row["at"].as_str().unwrap_or_default().to_string(),
                by: row["actor"].as_str().unwrap_or_default().to_string(),
                note: row["detail"].as_str().map(str::to_string),
            },
        );
    }
    Ok(out)
}

/// The finished responder deliveries of each alert of `ids`: responder, outcome,
/// status, attempts, latency, reason and time, from the `alert.deliver` audit records.
async fn deliveries(
    store: &dyn EventStore,
    scope: &QueryScope,
    ids: &[String],
) -> Result<HashMap<String, Vec<Value>>, Refusal> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let list: Result<Vec<String>, Refusal> = ids.iter().map(|id| literal(id, "alert id")).collect();
    let sql = format!(
        "SELECT target, outcome, \"@timestamp\" AS at, detail FROM audit \
         WHERE action = '{DELIVER_ACTION}' AND target IN ({}) \
         ORDER BY \"@timestamp\", \"audit.id\"",
        list?.join(", ")
    );
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    for row in json_rows(store, &sql, scope).await? {
        let Some(target) = row["target"].as_str() else {
            continue;
        };
        let mut d: Value = row["detail"]
            .as_str()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_else(|| json!({}));
        d["outcome"] = row["outcome"].clone();
        d["at"] = row["at"].clone();
        out.entry(target.to_string()).or_default().push(d);
    }
    Ok(out)
}

/// How many alerts dedup folded into each alert of `ids`, from the `alert.dedup`
/// audit records of its closed windows.
async fn folded(
    store: &dyn EventStore,
    scope: &QueryScope,
    ids: &[String],
) -> Result<HashMap<String, u64>, Refusal> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let list: Result<Vec<String>, Refusal> = ids.iter().map(|id| literal(id, "alert id")).collect();
    let sql = format!(
        "SELECT target, detail FROM audit WHERE action = '{DEDUP_ACTION}' AND target IN ({})",
        list?.join(", ")
    );
    let mut out: HashMap<String, u64> = HashMap::new();
    for row in json_rows(store, &sql, scope).await? {
        let Some(target) = row["target"].as_str() else {
            continue;
        };
        let n = row["detail"]
            .as_str()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .and_then(|d| d["suppressed"].as_u64())
            .unwrap_or(0);
        *out.entry(target.to_string()).or_default() += n;
    }
    Ok(out)
}

pub(super) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    action: &str,
) -> Result<(Principal, Arc<HttpAlerts>), Refusal> {
    let Some(alerts) = state.alerts.clone() else {
        return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "no store is open"));
    };
    let principal = state.auth.authorize(headers, Role::Analyst, action)?;
    Ok((principal, alerts))
}

/// `GET /v1/alerts`.
pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(filter): Query<AlertFilter>,
) -> Response {
    match list_alerts(&state, &headers, filter).await {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

async fn list_alerts(
    state: &AppState,
    headers: &HeaderMap,
    filter: AlertFilter,
) -> Result<Response, Refusal> {
    let (principal, endpoint) = authorize(state, headers, "alert.list")?;
    let scope = QueryScope {
        tenant: principal.tenant.clone(),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let to = match &filter.to {
        Some(t) => time_ms(t, "to")?,
        None => now + 1000,
    };
    let from = match &filter.from {
        Some(f) => time_ms(f, "from")?,
        None => to - 86_400_000,
    };
    let limit = filter.limit.unwrap_or(100).min(MAX_LIMIT);
    let mut conditions = vec![
        format!("\"@timestamp\" >= {}", time_literal(from)),
        // Rounded up to the next second, so the end stays exclusive.
        format!("\"@timestamp\" < {}", time_literal(to + 999)),
    ];
    if let Some(levels) = &filter.level {
        let list: Result<Vec<String>, Refusal> = levels
            .split(',')
            .map(|l| literal(l.trim(), "level"))
            .collect();
        conditions.push(format!("\"rule.level\" IN ({})", list?.join(", ")));
    }
    if let Some(tenant) = &filter.tenant {
        conditions.push(format!("tenant = {}", literal(tenant, "tenant")?));
    }
    if let Some(kinds) = &filter.kind {
        let list: Result<Vec<String>, Refusal> = kinds
            .split(',')
            .map(|k| literal(k.trim(), "kind"))
            .collect();
        conditions.push(format!("\"detection.kind\" IN ({})", list?.join(", ")));
    }
    if let Some(rule) = &filter.rule {
        conditions.push(format!("\"rule.id\" = {}", literal(rule, "rule")?));
    }
    if let Some(entity) = &filter.entity {
        let e = literal(entity, "entity")?;
        conditions.push(format!("(\"host.name\" = {e} OR \"user.name\" = {e})"));
    }
    let wanted = match filter.status.as_deref() {
        None => None,
        Some(s @ ("open" | "acknowledged" | "false_positive")) => Some(s),
        Some(other) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!("status `{other}`: use open, acknowledged or false_positive"),
            ))
        }
    };
    let store = endpoint.store.as_ref();
    if let Some(wanted) = wanted {
        let all = triage(store, &scope, None).await?;
        let ids: Vec<&String> = all
            .iter()
            .filter(|(_, t)| (wanted == "open") != (t.status == wanted))
            .map(|(id, _)| id)
            .collect();
        if ids.len() > MAX_TRIAGED {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "too many triaged alerts to filter by status; narrow the time range or drop the status filter",
            ));
        }
        if wanted != "open" && ids.is_empty() {
            return Ok(Json(json!({ "alerts": [], "count": 0 })).into_response());
        }
        if !ids.is_empty() {
            let list: Result<Vec<String>, Refusal> =
                ids.iter().map(|id| literal(id, "alert id")).collect();
            let op = if wanted == "open" { "NOT IN" } else { "IN" };
            conditions.push(format!("\"alert.id\" {op} ({})", list?.join(", ")));
        }
    }
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE {} ORDER BY \"@timestamp\" DESC LIMIT {limit}",
        conditions.join(" AND ")
    );
    let rows = json_rows(store, &sql, &scope).await?;
    let rows = with_state(store, &scope, rows).await?;
    let count = rows.len();
    Ok(Json(json!({ "alerts": rows, "count": count })).into_response())
}

/// The columns an alert is shown with: all of them (a map column is one column on
/// some stores and two on others, see [`join_nested_maps`]).
pub(super) const ALERT_COLUMNS: &str = "*";
/// `rows` (alerts) with their triage state, deliveries and folded repeats.
pub(super) async fn with_state(
    store: &dyn EventStore,
    scope: &QueryScope,
    mut rows: Vec<Value>,
) -> Result<Vec<Value>, Refusal> {
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r["alert.id"].as_str().map(str::to_string))
        .collect();
    let states = triage(store, scope, Some(&ids)).await?;
    let mut sent = deliveries(store, scope, &ids).await?;
    let folded = folded(store, scope, &ids).await?;
    for row in &mut rows {
        let id = row["alert.id"].as_str().unwrap_or_default().to_string();
        let t = states.get(&id);
        row["status"] = json!(t.map_or("open", |t| t.status));
        row["status_at"] = json!(t.map(|t| t.at.clone()));
        row["status_by"] = json!(t.map(|t| t.by.clone()));
        row["status_note"] = json!(t.and_then(|t| t.note.clone()));
        row["deliveries"] = Value::Array(sent.remove(&id).unwrap_or_default());
        row["suppressed"] = json!(folded.get(&id).copied().unwrap_or(0));
    }
    Ok(rows)
}

/// Body of the triage endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriageRequest {
    #[serde(default)]
    note: Option<String>,
}

/// A triage endpoint recording `action` (`POST /v1/alerts/{id}/ack`,
/// `/false-positive`, `/reopen`).
pub(crate) fn triage_route(action: &'static str) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              headers: HeaderMap,
              Path(id): Path<String>,
              body: Bytes| async move {
            match mark(&state, &headers, &id, &body, action).await {
                Ok(r) => r,
                Err(r) => r.into_response(),
            }
        },
    )
}

async fn mark(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
    action: &str,
) -> Result<Response, Refusal> {
    let (principal, endpoint) = authorize(state, headers, action)?;
    let request: TriageRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TriageRequest::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            refuse(
                StatusCode::BAD_REQUEST,
                format!("the body must be empty or JSON {{\"note\": \"...\"}}: {e}"),
            )
        })?
    };
    if request
        .note
        .as_ref()
        .is_some_and(|n| n.len() > MAX_NOTE_BYTES)
    {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the note is longer than {MAX_NOTE_BYTES} bytes"),
        ));
    }
    let scope = QueryScope {
        tenant: principal.tenant.clone(),
    };
    let sql = format!(
        "SELECT tenant, \"rule.id\", \"dedup.key\" FROM alerts WHERE \"alert.id\" = {} LIMIT 1",
        literal(id, "alert id")?
    );
    let rows = json_rows(endpoint.store.as_ref(), &sql, &scope).await?;
    let Some(alert) = rows.first() else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            format!("no alert has id {id}"),
        ));
    };
    let field = |name: &str| alert[name].as_str().unwrap_or_default().to_string();
    let (tenant, rule_id, dedup_key) = (field("tenant"), field("rule.id"), field("dedup.key"));
    if action == ACK {
        // An acknowledgement would hide a false-positive mark that still suppresses.
        let ids = [id.to_string()];
        let current = triage(endpoint.store.as_ref(), &scope, Some(&ids)).await?;
        if current
            .get(id)
            .is_some_and(|t| t.status == "false_positive")
        {
            return Err(refuse(
                StatusCode::CONFLICT,
                "the alert is marked a false positive, which suppresses later alerts of its \
                 rule and key: reopen it first",
            ));
        }
    }
    let mut r = audit_log::record(&principal, action, "ok");
    r.tenant = tenant.clone();
    r.target = Some(id.to_string());
    r.detail = request.note;
    r.rule_id = Some(rule_id.clone());
    r.dedup_key = Some(dedup_key.clone());
    let Some(audit) = state.auth.audit() else {
        return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "no audit log"));
    };
    if let Err(e) = audit.record_durable(r).await {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the status change could not be stored: {e}"),
        ));
    }
    let status = match action {
        FALSE_POSITIVE => {
            endpoint.suppressions.insert(&tenant, &rule_id, &dedup_key);
            "false_positive"
        }
        REOPEN => {
            endpoint.suppressions.remove(&tenant, &rule_id, &dedup_key);
            "open"
        }
        _ => "acknowledged",
    };
    Ok(
        Json(json!({ "id": id, "status": status, "rule.id": rule_id, "dedup.key": dedup_key }))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_maps_join_into_objects() {
        let mut row = json!({
            "fields.key": ["Image", "User"],
            "fields.value": ["a.exe", "bob"],
            "rule.tags": ["x"],
            "_offset": 3,
            "tenant": "t"
        });
        let Value::Object(columns) = &mut row else {
            panic!("an object")
        };
        join_nested_maps(columns);
        assert_eq!(
            row,
            json!({ "fields": { "Image": "a.exe", "User": "bob" }, "rule.tags": ["x"], "tenant": "t" })
        );
    }
}
