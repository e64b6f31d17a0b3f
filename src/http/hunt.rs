//! `POST /v1/hunt` (analyst): a retro-hunt from the API. The body carries Sigma rule
//! text and a time range; the rules are compiled alone (with the bundled log-source
//! map) and run over the stored events of the range, of the token's tenant only. The
//! matches are answered, not stored (`vedette hunt` stores them).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use vedette_core::alert::Alert;
use vedette_core::batch::EventBatch;
use vedette_core::schema::col;
use vedette_core::traits::Detector;

use super::{error, AppState};
use crate::audit_log;
use crate::hunt_cmd::RETRO_TAG;
use crate::sigma_setup::load_rule_text;
use crate::tokens::Role;

/// Longest rule text accepted.
const MAX_RULE_BYTES: usize = 256 * 1024;
/// Matches answered at most.
const MAX_ALERTS: usize = 5000;
/// Longest a hunt may read events for.
const MAX_HUNT_TIME: Duration = Duration::from_secs(25);
/// Hunts that may run at once (each reads the store and takes a core); more get 429.
const MAX_RUNNING_HUNTS: usize = 2;

/// The hunts running now.
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_RUNNING_HUNTS);

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HuntRequest {
    /// Sigma rule text (one file, one or several documents).
    sigma: String,
    /// Start of the range: RFC 3339 or Unix ms (default: 24 h before `to`).
    #[serde(default)]
    from: Option<serde_json::Value>,
    /// End of the range, exclusive (default: now).
    #[serde(default)]
    to: Option<serde_json::Value>,
    /// Matches wanted at most (default 500, at most 5000).
    #[serde(default)]
    max_alerts: Option<usize>,
}

/// A time given as a JSON number (Unix ms) or string (Unix ms or RFC 3339).
fn time_ms(value: &serde_json::Value, what: &str) -> Result<i64, String> {
    match value.as_i64() {
        Some(n) => Ok(n),
        None => super::time_ms(value.as_str().unwrap_or_default(), what),
    }
}

/// The distinct tenants of `records`' rows (the batch's `tenant` column).
fn tenants_of(records: &RecordBatch) -> BTreeSet<String> {
    let Some(column) = records.column_by_name(col::TENANT) else {
        return BTreeSet::new();
    };
    let Some(values) = column.as_string_opt::<i32>() else {
        return BTreeSet::new();
    };
    values.iter().flatten().map(str::to_string).collect()
}

/// The rows of `records` owned by `tenant`.
fn rows_of(records: &RecordBatch, tenant: &str) -> Result<RecordBatch, arrow::error::ArrowError> {
    let Some(values) = records
        .column_by_name(col::TENANT)
        .and_then(|c| c.as_string_opt::<i32>())
    else {
        return Ok(records.slice(0, 0));
    };
    let keep: BooleanArray = values.iter().map(|v| Some(v == Some(tenant))).collect();
    arrow::compute::filter_record_batch(records, &keep)
}

/// `POST /v1/hunt`.
pub(crate) async fn hunt(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match state.auth.authorize(&headers, Role::Analyst, "hunt") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let request: HuntRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be JSON {{\"sigma\": \"...\", \"from\": ..., \"to\": ...}}: {e}"
                ),
            )
        }
    };
    let Some(query) = state.query.clone() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no store is open");
    };
    if request.sigma.len() > MAX_RULE_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the rule text is at most {MAX_RULE_BYTES} bytes"),
        );
    }
    let now = chrono::Utc::now().timestamp_millis();
    let max_alerts = request.max_alerts.unwrap_or(500).clamp(1, MAX_ALERTS);
    let span = (|| {
        let to = request
            .to
            .as_ref()
            .map_or(Ok(now + 1), |v| time_ms(v, "to"))?;
        let from = request
            .from
            .as_ref()
            .map_or(Ok(to - 86_400_000), |v| time_ms(v, "from"))?;
        if from >= to {
            return Err("from must be before to".to_string());
        }
        Ok((from, to))
    })();
    let (from, to) = match span {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Ok(_running) = RUNNING.try_acquire() else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, "5")],
            Json(json!({ "error": format!("{MAX_RUNNING_HUNTS} hunts are running; try again shortly") })),
        )
            .into_response();
    };
    let text = request.sigma;
    let compiled = tokio::task::spawn_blocking(move || load_rule_text(&text, "hunt.yml")).await;
    let detector = match compiled {
        Ok(Ok(Ok(sigma))) => sigma.detector,
        Ok(Ok(Err(problems))) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": "the rule was refused", "problems": problems })),
            )
                .into_response()
        }
        Ok(Err(e)) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("hunt task: {e}")),
    };
    let started = Instant::now();
    let mut stream = match query.store.read_events(from, to).await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_GATEWAY, format!("the store failed: {e}")),
    };
    let (mut events, mut alerts, mut truncated) = (0usize, Vec::<Alert>::new(), None);
    while let Some(next) = stream.next().await {
        let records = match next {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_GATEWAY, format!("the store failed: {e}")),
        };
        let tenants = match &principal.tenant {
            Some(t) => BTreeSet::from([t.clone()]),
            None => tenants_of(&records),
        };
        for tenant in tenants {
            let rows = match rows_of(&records, &tenant) {
                Ok(r) if r.num_rows() > 0 => r,
                Ok(_) => continue,
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            };
            events += rows.num_rows();
            let batch = EventBatch::new(rows, "hunt", tenant, now);
            match tokio::task::block_in_place(|| detector.detect(&batch)) {
                Ok(found) => alerts.extend(found),
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        if alerts.len() >= max_alerts {
            truncated = Some("max_alerts");
            break;
        }
        if started.elapsed() > MAX_HUNT_TIME {
            truncated = Some("time");
            break;
        }
    }
    alerts.sort_by_key(|a| std::cmp::Reverse(a.time_ms));
    alerts.truncate(max_alerts);
    for alert in &mut alerts {
        alert.tags.push(RETRO_TAG.to_string());
    }
    let mut record = audit_log::record(&principal, "hunt", "ok");
    record.detail = Some(format!(
        "{events} events from {from} to {to}, {} matches",
        alerts.len()
    ));
    if let Some(audit) = state.auth.audit() {
        audit.record(record);
    }
    Json(json!({
        "events": events,
        "alerts": alerts,
        "truncated": truncated.is_some(),
        "truncated_reason": truncated,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_ms_or_rfc3339() {
        assert_eq!(time_ms(&json!(5), "from"), Ok(5));
        assert_eq!(time_ms(&json!("7"), "from"), Ok(7));
        assert_eq!(time_ms(&json!("1970-01-01T00:00:01Z"), "from"), Ok(1000));
        assert!(time_ms(&json!("yesterday"), "from").is_err());
    }
}
