//! The HTTP API: routes, limits and request metrics.
//!
//! Every request is bounded by a body size limit and a timeout from `[http]`. The
//! service listens on loopback by default. Every route but `/health` needs a bearer
//! token with the right role ([`auth`]): agent for ingest, analyst for queries, alerts,
//! the rule list and metrics, admin for tokens and rule changes; any valid token for
//! `/ready`. The routes are described
//! in `docs/openapi.yaml`, which a test holds to the router.

mod alert_detail;
mod alerts;
mod auth;
mod console;
mod hunt;
mod ingest;
mod query;
mod rules;
pub(crate) mod tls_serve;
mod tokens;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::{Json, Router};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use vedette_core::config::HttpConfig;

use crate::health_history::HealthHistory;
use crate::live_rules::LiveRules;
use crate::suppressions::{FALSE_POSITIVE, REOPEN};
use crate::tokens::Role;

use crate::metrics::{HttpLabels, Metrics};

pub(crate) use alerts::HttpAlerts;
pub(crate) use auth::{Auth, RateLimit};
pub(crate) use ingest::{parse_slots as ingest_parse_slots, HttpIngest};
pub(crate) use query::HttpQuery;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// The process's metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Token checks.
    pub(crate) auth: Auth,
    /// Cancelled when the service shuts down (`/ready` then answers 503).
    pub(crate) shutdown: CancellationToken,
    /// What `/ready` reports about the pipeline (bus and store kinds, rules).
    pub(crate) components: Arc<serde_json::Value>,
    /// HTTP ingest, when the pipeline runs.
    pub(crate) ingest: Option<Arc<HttpIngest>>,
    /// Analyst queries, when a store is open.
    pub(crate) query: Option<Arc<HttpQuery>>,
    /// Alert listing and triage, when a store is open.
    pub(crate) alerts: Option<Arc<HttpAlerts>>,
    /// The running rules, when the pipeline runs.
    pub(crate) rules: Option<Arc<LiveRules>>,
    /// The last hour of health figures, when the pipeline runs.
    pub(crate) health: Option<Arc<HealthHistory>>,
}

/// Every route: method, path and handler. `docs/openapi.yaml` describes each one (a
/// test holds the two together).
fn routes() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        ("get", "/", get(console::index)),
        ("get", "/console/{*file}", get(console::asset)),
        ("get", "/health", get(health)),
        ("get", "/ready", get(ready)),
        ("get", "/metrics", get(metrics)),
        ("get", "/v1/session", get(session)),
        ("get", "/v1/health/history", get(health_history)),
        ("post", "/v1/ingest", post(ingest::ingest)),
        ("post", "/v1/query", post(query::query)),
        ("get", "/v1/query/examples", get(query::examples)),
        ("post", "/v1/hunt", post(hunt::hunt)),
        ("get", "/v1/alerts", get(alerts::list)),
        ("get", "/v1/alerts/{id}", get(alert_detail::detail)),
        (
            "post",
            "/v1/alerts/{id}/ack",
            alerts::triage_route(alerts::ACK),
        ),
        (
            "post",
            "/v1/alerts/{id}/false-positive",
            alerts::triage_route(FALSE_POSITIVE),
        ),
        (
            "post",
            "/v1/alerts/{id}/reopen",
            alerts::triage_route(REOPEN),
        ),
        ("get", "/v1/rules", get(rules::list)),
        ("get", "/v1/rules/source", get(rules::source)),
        ("put", "/v1/rules/{*path}", put(rules::put)),
        ("post", "/v1/rules/reload", post(rules::reload)),
        ("post", "/v1/tokens", post(tokens::create)),
        ("get", "/v1/tokens", get(tokens::list)),
        ("delete", "/v1/tokens/{id}", delete(tokens::revoke)),
    ]
}

/// The router with every route and limit.
pub(crate) fn router(state: AppState, config: &HttpConfig) -> Router {
    let mut by_path: BTreeMap<&str, MethodRouter<AppState>> = BTreeMap::new();
    for (_, path, handler) in routes() {
        let merged = match by_path.remove(path) {
            Some(earlier) => earlier.merge(handler),
            None => handler,
        };
        by_path.insert(path, merged);
    }
    let mut router = Router::new();
    for (path, handler) in by_path {
        router = router.route(path, handler);
    }
    router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(config.request_timeout_secs),
        ))
        .layer(middleware::from_fn(json_errors))
        .with_state(state)
}

/// A time parameter given as Unix milliseconds or RFC 3339, as Unix milliseconds; the
/// error names the parameter `what`.
pub(crate) fn time_ms(value: &str, what: &str) -> Result<i64, String> {
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{what}: `{value}` is neither RFC 3339 nor Unix milliseconds: {e}"))
}

/// A JSON error answer: `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// `GET /health`: the process is up and serving.
async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /ready`: the pipeline is up and not shutting down (503 otherwise).
async fn ready(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = state.auth.authenticate(&headers, "ready") {
        return r.into_response();
    }
    if state.shutdown.is_cancelled() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    Json(json!({ "status": "ready", "components": *state.components })).into_response()
}

/// `GET /v1/session`: who the token is (id, role, tenant), and the entity-risk settings
/// (so a console scores entities as the service does); any valid token.
async fn session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.auth.authenticate(&headers, "session") {
        Ok(p) => Json(json!({
            "id": p.id,
            "role": p.role.name(),
            "tenant": p.tenant,
            "store": state.components.get("store"),
            "risk": state.components.get("risk"),
        }))
        .into_response(),
        Err(r) => r.into_response(),
    }
}

/// The query of `GET /v1/health/history`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    /// Minutes back (default and most: 60).
    minutes: Option<u64>,
    /// Only samples taken after this time (Unix ms), for polling.
    after: Option<i64>,
}

/// `GET /v1/health/history`: the health series of the last hour; like `/metrics`, an
/// analyst token of every tenant.
async fn health_history(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HistoryQuery>,
) -> Response {
    match state
        .auth
        .authorize(&headers, Role::Analyst, "health.history")
    {
        Ok(p) => {
            if let Err(r) = auth::require_all_tenants(&p) {
                return r.into_response();
            }
        }
        Err(r) => return r.into_response(),
    }
    let Some(history) = &state.health else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline is not running",
        );
    };
    let minutes = query.minutes.unwrap_or(60).clamp(1, 60);
    Json(json!({
        "interval_seconds": history.interval_seconds(),
        "samples": history.since(minutes, query.after.unwrap_or(i64::MIN)),
    }))
    .into_response()
}

/// `GET /metrics`: Prometheus (OpenMetrics) text; an analyst token of every tenant.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.auth.authorize(&headers, Role::Analyst, "metrics") {
        Ok(p) => {
            if let Err(r) = auth::require_all_tenants(&p) {
                return r.into_response();
            }
        }
        Err(r) => return r.into_response(),
    }
    match state.metrics.render() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Gives every error answer a JSON body (`{"error": ...}`), also those of the limit
/// and timeout layers and of unknown routes, keeping their headers.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is over the limit".to_string(),
        StatusCode::REQUEST_TIMEOUT => "the request took longer than allowed".to_string(),
        StatusCode::NOT_FOUND => "no such endpoint".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed here".to_string(),
        other => other
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = error(status, message);
    let (body_parts, body) = body.into_parts();
    if let Some(ct) = body_parts.headers.get(header::CONTENT_TYPE) {
        parts.headers.insert(header::CONTENT_TYPE, ct.clone());
    }
    Response::from_parts(parts, body)
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    let labels = HttpLabels {
        route,
        status: response.status().as_u16(),
    };
    state.metrics.http_requests.get_or_create(&labels).inc();
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// `docs/openapi.yaml` and the router name the same operations.
    #[test]
    fn the_openapi_file_describes_every_route_and_only_those() {
        let doc: serde_json::Value =
            yaml_serde::from_str(include_str!("../../docs/openapi.yaml")).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let served: BTreeSet<(String, String)> = super::routes()
            .into_iter()
            // OpenAPI has no catch-all parameters: `{*path}` is written `{path}`.
            .map(|(m, p, _)| (m.to_string(), p.replace("{*", "{")))
            .collect();
        assert_eq!(documented, served);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    }
}
