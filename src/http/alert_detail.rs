//! `GET /v1/alerts/{id}` (analyst): one alert as the list shows it (triage, deliveries,
//! folded repeats), and the events it names, read from the events table of the alert's
//! tenant near the alert's time.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use vedette_core::traits::QueryScope;

use super::alerts::{
    authorize, json_rows, literal, refuse, time_literal, with_state, ALERT_COLUMNS,
};
use super::auth::Refusal;
use super::AppState;

/// Events an alert's detail shows at most.
const MAX_DETAIL_EVENTS: usize = 50;
/// How far from an alert's time its events are looked for (correlation windows).
const DETAIL_EVENT_SPAN_MS: i64 = 2 * 86_400_000;

/// `GET /v1/alerts/{id}`: one alert with its triage, deliveries and folded repeats,
/// and the events it names (at most 50).
pub(crate) async fn detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match alert_detail(&state, &headers, &id).await {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

async fn alert_detail(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<Response, Refusal> {
    let (principal, endpoint) = authorize(state, headers, "alert.get")?;
    let scope = QueryScope {
        tenant: principal.tenant.clone(),
    };
    let store = endpoint.store.as_ref();
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE \"alert.id\" = {} LIMIT 1",
        literal(id, "alert id")?
    );
    let rows = with_state(store, &scope, json_rows(store, &sql, &scope).await?).await?;
    let Some(alert) = rows.into_iter().next() else {
        return Err(refuse(StatusCode::NOT_FOUND, "no such alert"));
    };
    let event_ids: Vec<String> = alert["event.ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .take(MAX_DETAIL_EVENTS)
                .collect()
        })
        .unwrap_or_default();
    let events = if event_ids.is_empty() {
        Vec::new()
    } else {
        let at = alert["@timestamp"]
            .as_str()
            .and_then(|t| {
                chrono::NaiveDateTime::parse_from_str(
                    t.trim_end_matches('Z'),
                    "%Y-%m-%dT%H:%M:%S%.f",
                )
                .ok()
            })
            .map(|t| t.and_utc().timestamp_millis());
        let list: Result<Vec<String>, Refusal> =
            event_ids.iter().map(|id| literal(id, "event id")).collect();
        let mut conditions = vec![format!("\"event.id\" IN ({})", list?.join(", "))];
        if let Some(tenant) = alert["tenant"].as_str() {
            conditions.push(format!("tenant = {}", literal(tenant, "tenant")?));
        }
        if let Some(at) = at {
            conditions.push(format!(
                "\"@timestamp\" >= {}",
                time_literal(at - DETAIL_EVENT_SPAN_MS)
            ));
            conditions.push(format!(
                "\"@timestamp\" < {}",
                time_literal(at + DETAIL_EVENT_SPAN_MS)
            ));
        }
        let sql = format!(
            "SELECT * FROM events WHERE {} ORDER BY \"@timestamp\" LIMIT {MAX_DETAIL_EVENTS}",
            conditions.join(" AND ")
        );
        json_rows(store, &sql, &scope).await?
    };
    Ok(Json(json!({ "alert": alert, "events": events })).into_response())
}
