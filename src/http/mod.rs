//! The HTTP API: routes, limits and request metrics.
//!
//! Every request is bounded by a body size limit and a timeout from `[http]`. The
//! service listens on loopback by default. `POST /v1/ingest` requires the ingest
//! token, `POST /v1/query` the analyst token ([`auth`]).

mod auth;
mod ingest;
mod query;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use vedette_core::config::HttpConfig;

use crate::metrics::{HttpLabels, Metrics};

pub(crate) use auth::BearerToken;
pub(crate) use ingest::HttpIngest;
pub(crate) use query::HttpQuery;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// The process's metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// HTTP ingest, when the pipeline runs.
    pub(crate) ingest: Option<Arc<HttpIngest>>,
    /// Analyst queries, when a store is open.
    pub(crate) query: Option<Arc<HttpQuery>>,
}

/// The router with every route and limit.
pub(crate) fn router(state: AppState, config: &HttpConfig) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/ingest", post(ingest::ingest))
        .route("/v1/query", post(query::query))
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
        .with_state(state)
}

/// A JSON error answer: `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// `GET /health`: the process is up and serving.
async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /metrics`: Prometheus (OpenMetrics) text.
async fn metrics(State(state): State<AppState>) -> Response {
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
