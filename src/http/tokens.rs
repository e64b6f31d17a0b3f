//! `POST /v1/tokens`, `GET /v1/tokens`, `DELETE /v1/tokens/{id}` (admin): the API side
//! of `vedette token`. An admin confined to a tenant manages only that tenant's tokens.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{error, AppState};
use crate::audit_log;
use crate::tokens::{Principal, Role, TokenRecord};

/// Body of `POST /v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    role: Role,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// Whether `principal` may see or manage `record`.
fn in_scope(principal: &Principal, tenant: Option<&str>) -> bool {
    principal.tenant.is_none() || principal.tenant.as_deref() == tenant
}

fn public(record: &TokenRecord) -> serde_json::Value {
    json!({
        "id": record.id,
        "role": record.role,
        "tenant": record.tenant,
        "name": record.name,
        "created": record.created,
        "revoked": record.revoked,
    })
}

/// `POST /v1/tokens`.
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match state.auth.authorize(&headers, Role::Admin, "token.create") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let request: CreateToken = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be JSON {{\"role\": \"agent|analyst|admin\", \"tenant\": ..., \"name\": ...}}: {e}"),
            )
        }
    };
    // A tenant's admin creates tokens of its tenant only.
    let tenant = request.tenant.or(principal.tenant.clone());
    if !in_scope(&principal, tenant.as_deref()) {
        return error(
            StatusCode::FORBIDDEN,
            "a tenant's admin creates tokens of its own tenant only",
        );
    }
    let store = state.auth.clone();
    let name = request.name;
    let role = request.role;
    let made = tokio::task::spawn_blocking(move || {
        store
            .tokens()
            .create(role, tenant.as_deref(), name.as_deref())
    })
    .await;
    match made {
        Ok(Ok((token, record))) => {
            let mut r = audit_log::record(&principal, "token.create", "ok");
            r.target = Some(record.id.clone());
            r.detail = Some(format!(
                "role {}, tenant {}",
                role.name(),
                record.tenant.as_deref().unwrap_or("*")
            ));
            if let Some(t) = &record.tenant {
                r.tenant = t.clone();
            }
            if let Some(audit) = state.auth.audit() {
                if let Err(e) = audit.record_durable(r).await {
                    tracing::error!(error = %e, "token.create could not be audited");
                }
            }
            let mut body = public(&record);
            body["token"] = json!(token);
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, format!("{e:#}")),
        Err(e) => {
            tracing::error!(error = %e, "token task failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// `GET /v1/tokens`.
pub(crate) async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let principal = match state.auth.authorize(&headers, Role::Admin, "token.list") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match state.auth.tokens().list() {
        Ok(records) => {
            let visible: Vec<_> = records
                .iter()
                .filter(|r| in_scope(&principal, r.tenant.as_deref()))
                .map(public)
                .collect();
            Json(json!({ "tokens": visible })).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the tokens");
            error(StatusCode::SERVICE_UNAVAILABLE, "tokens cannot be read")
        }
    }
}

/// `DELETE /v1/tokens/{id}`.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let principal = match state.auth.authorize(&headers, Role::Admin, "token.revoke") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let target = match state.auth.tokens().list() {
        Ok(records) => records
            .into_iter()
            .find(|r| r.id == id && r.revoked.is_none()),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the tokens");
            return error(StatusCode::SERVICE_UNAVAILABLE, "tokens cannot be read");
        }
    };
    let Some(target) = target.filter(|r| in_scope(&principal, r.tenant.as_deref())) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no active token has id {id}"),
        );
    };
    match state.auth.tokens().revoke(&target.id) {
        Ok(true) => {
            let mut r = audit_log::record(&principal, "token.revoke", "ok");
            r.target = Some(target.id.clone());
            if let Some(t) = &target.tenant {
                r.tenant = t.clone();
            }
            if let Some(audit) = state.auth.audit() {
                if let Err(e) = audit.record_durable(r).await {
                    tracing::error!(error = %e, "token.revoke could not be audited");
                }
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            format!("no active token has id {id}"),
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot revoke a token");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the token could not be revoked",
            )
        }
    }
}
