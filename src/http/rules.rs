//! `GET /v1/rules` and `GET /v1/rules/source` (analyst), `PUT /v1/rules/{path}` and `POST /v1/rules/reload`
//! (admin): the running rule set, and changing it without a restart
//! ([`crate::live_rules`]). A change is validated before it replaces the running set;
//! a refused one answers 422 with each file's problems, and the running set stays.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{error, AppState};
use crate::audit_log;
use crate::live_rules::{checked_rule_path, ReloadError, ReloadReport, MAX_RULE_BYTES};
use crate::tokens::{Principal, Role};

/// `GET /v1/rules`.
pub(crate) async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = state.auth.authorize(&headers, Role::Analyst, "rules.list") {
        return r.into_response();
    }
    match &state.rules {
        Some(rules) => Json(rules.describe().await).into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "no rules are running"),
    }
}

/// The query of `GET /v1/rules/source`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceQuery {
    /// A `file` of `GET /v1/rules`.
    file: Option<String>,
}

/// `GET /v1/rules/source?file=F`: the text of one file of the running set (only files
/// the set holds are read).
pub(crate) async fn source(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SourceQuery>,
) -> Response {
    if let Err(r) = state
        .auth
        .authorize(&headers, Role::Analyst, "rules.source")
    {
        return r.into_response();
    }
    let Some(rules) = &state.rules else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no rules are running");
    };
    let Some(file) = query.file else {
        return error(StatusCode::BAD_REQUEST, "name the rule file: ?file=...");
    };
    match rules.source(&file).await {
        Some((text, editable_path)) => Json(json!({
            "file": file,
            "text": text,
            "editable_path": editable_path,
        }))
        .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "the running rule set has no such file",
        ),
    }
}

/// `PUT /v1/rules/{path}`: the body is the rule file (YAML).
pub(crate) async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<String>,
    body: Bytes,
) -> Response {
    let principal = match state.auth.authorize(&headers, Role::Admin, "rule.update") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let Some(rules) = state.rules.clone() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no rules are running");
    };
    if body.len() > MAX_RULE_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a rule file is at most {MAX_RULE_BYTES} bytes"),
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the rule file must be UTF-8 YAML");
    };
    if let Err(e) = checked_rule_path(&path) {
        return error(StatusCode::BAD_REQUEST, format!("{e:#}"));
    }
    let result = rules.put(&path, text).await;
    answer(&state, &principal, "rule.update", Some(path), result).await
}

/// `POST /v1/rules/reload`.
pub(crate) async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let principal = match state.auth.authorize(&headers, Role::Admin, "rules.reload") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let Some(rules) = state.rules.clone() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no rules are running");
    };
    let result = rules.reload("api").await;
    answer(&state, &principal, "rules.reload", None, result).await
}

/// Audits a rule change and answers with its report or its refusal.
async fn answer(
    state: &AppState,
    principal: &Principal,
    action: &str,
    target: Option<String>,
    result: Result<ReloadReport, ReloadError>,
) -> Response {
    let (outcome, detail, response) = match result {
        Ok(report) => (
            "ok",
            format!("generation {}, {} rules", report.generation, report.loaded),
            (StatusCode::OK, Json(json!(report))).into_response(),
        ),
        Err(ReloadError::Rejected(rejection)) => (
            "refused",
            rejection.to_string(),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "error": "the rules were refused; the running rules stay",
                    "problems": rejection.problems,
                })),
            )
                .into_response(),
        ),
        Err(ReloadError::Failed(e)) => {
            let message = format!("{e:#}");
            let response = error(StatusCode::INTERNAL_SERVER_ERROR, message.clone());
            ("failed", message, response)
        }
    };
    let mut r = audit_log::record(principal, action, outcome);
    r.target = target;
    r.detail = Some(detail);
    if let Some(audit) = state.auth.audit() {
        if let Err(e) = audit.record_durable(r).await {
            tracing::error!(error = %e, "a rule change could not be audited");
        }
    }
    response
}
