//! `POST /v1/ingest`: agents send records (NDJSON by default, or any format named by
//! the `X-Vedette-Format` header or the `format` query parameter), optionally
//! compressed (`Content-Encoding: gzip` or `zstd`). An agent token is required; the
//! events take the token's tenant when it has one. The answer comes once the events
//! are durable, and says how many records were accepted and how many were
//! dead-lettered, by reason. A body of more records than allowed is refused whole
//! (413), so the sender can split it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde_json::json;
use vedette_connectors::decompress::{decompress, Compression};
use vedette_core::event::EventBatchBuilder;
use vedette_core::traits::RawChunk;
use vedette_ingest::{detect_format, Format, Limits};

use super::tls_serve::ClientCert;
use super::{error, AppState};
use crate::bus_sink::BusSink;
use crate::ingest::{count_chunk, count_dead_letters, shared_parser};
use crate::metrics::Ledger;
use crate::metrics::Metrics;
use crate::tokens::Role;

/// Source name of HTTP ingest in metrics and dead letters.
pub(crate) const HTTP_SOURCE: &str = "http";

/// What the ingest endpoint needs.
#[derive(Debug)]
pub(crate) struct HttpIngest {
    /// Where the events go: the bus.
    pub(crate) sink: Arc<BusSink>,
    /// Parser limits.
    pub(crate) limits: Limits,
    /// Tenant of the events sent with a token of no tenant.
    pub(crate) tenant: String,
    /// Largest body after decompression.
    pub(crate) max_decompressed: u64,
    /// Most records (events and dead letters) in one request.
    pub(crate) max_records: usize,
    /// Only on TLS connections with a verified client certificate.
    pub(crate) require_client_cert: bool,
}

/// `POST /v1/ingest`.
pub(crate) async fn ingest(
    State(state): State<AppState>,
    cert: Option<Extension<ClientCert>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(ingest) = state.ingest.clone() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "ingest is not running");
    };
    let principal = match state.auth.authorize(&headers, Role::Agent, "ingest") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    if ingest.require_client_cert && !cert.is_some_and(|Extension(c)| c.verified) {
        return error(
            StatusCode::FORBIDDEN,
            "ingest needs a client certificate signed by the configured CA",
        );
    }
    let tenant = principal.tenant.unwrap_or_else(|| ingest.tenant.clone());
    let format_name = headers
        .get("x-vedette-format")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| params.get("format").cloned());
    let format = match format_name.as_deref().map(str::parse::<Format>) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(compression) = Compression::from_content_encoding(encoding) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content encoding `{encoding}` is not gzip or zstd"),
        );
    };
    let metrics = state.metrics.clone();
    let parsing = ingest.clone();
    let parsing_metrics = metrics.clone();
    let parsing_tenant = tenant.clone();
    let task = tokio::task::spawn_blocking(move || {
        parse(
            &parsing,
            &parsing_metrics,
            &body,
            compression,
            format,
            parsing_tenant,
        )
    });
    let parsed = match task.await {
        Ok(Ok(parsed)) => Ok(parsed),
        Ok(Err(e)) => Err(e),
        Err(e) => {
            tracing::error!(error = %e, "ingest task failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let stored = match parsed {
        Ok(Parsed {
            batch,
            dead,
            answer,
        }) => {
            let ledger = &metrics.ledger;
            match ingest
                .sink
                .deliver(HTTP_SOURCE, &tenant, &batch, &dead)
                .await
            {
                Ok(()) => {
                    Ledger::add(&ledger.appended, HTTP_SOURCE, batch.num_rows() as u64);
                    Ledger::add(&ledger.dead_lettered, HTTP_SOURCE, dead.len() as u64);
                    Ok(answer)
                }
                Err(e) => {
                    Ledger::add(
                        &ledger.rejected,
                        HTTP_SOURCE,
                        (batch.num_rows() + dead.len()) as u64,
                    );
                    Err(IngestFailure::Store(e))
                }
            }
        }
        Err(e) => Err(e),
    };
    match stored {
        Ok(answer) => (StatusCode::OK, Json(answer)).into_response(),
        Err(IngestFailure::TooLarge(msg)) => error(StatusCode::PAYLOAD_TOO_LARGE, msg),
        Err(IngestFailure::BadBody(msg)) => error(StatusCode::BAD_REQUEST, msg),
        Err(IngestFailure::Store(e)) => {
            tracing::error!(error = %e, "ingest could not append to the bus");
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "events could not be stored; retry later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            response
        }
    }
}

/// A parsed request body, waiting to be appended.
struct Parsed {
    batch: arrow::array::RecordBatch,
    dead: Vec<vedette_core::dead_letter::DeadLetter>,
    answer: serde_json::Value,
}

enum IngestFailure {
    TooLarge(String),
    BadBody(String),
    Store(anyhow::Error),
}

fn parse(
    ingest: &HttpIngest,
    metrics: &Metrics,
    body: &[u8],
    compression: Compression,
    format: Option<Format>,
    tenant: String,
) -> Result<Parsed, IngestFailure> {
    let bytes =
        decompress(body, compression, ingest.max_decompressed).map_err(|e| match e.kind() {
            std::io::ErrorKind::FileTooLarge => IngestFailure::TooLarge(e.to_string()),
            _ => IngestFailure::BadBody(format!("cannot decompress body: {e}")),
        })?;
    let format = format.unwrap_or_else(|| detect_format(&bytes, None));
    let chunk = RawChunk {
        source: HTTP_SOURCE.into(),
        origin: "post".into(),
        tenant,
        bytes: bytes.into(),
        position: 0,
        received_ms: chrono::Utc::now().timestamp_millis(),
    };
    let mut builder = EventBatchBuilder::new();
    let mut dead = Vec::new();
    let stats = shared_parser(format, ingest.limits).parse(&chunk, &mut builder, &mut dead);
    count_chunk(metrics, HTTP_SOURCE, chunk.bytes.len(), stats);
    Ledger::add(
        &metrics.ledger.received,
        HTTP_SOURCE,
        (stats.events + stats.dead_letters) as u64,
    );
    let records = stats.events + stats.dead_letters;
    if records > ingest.max_records {
        Ledger::add(&metrics.ledger.rejected, HTTP_SOURCE, records as u64);
        return Err(IngestFailure::TooLarge(format!(
            "{records} records in one request; at most {} are accepted: split the body",
            ingest.max_records
        )));
    }
    let reasons = count_dead_letters(metrics, &dead);
    let batch = builder
        .finish()
        .map_err(|e| IngestFailure::Store(e.into()))?;
    let answer = json!({
        "format": format.to_string(),
        "accepted": stats.events,
        "dead_letters": stats.dead_letters,
        "dead_letter_reasons": reasons,
    });
    Ok(Parsed {
        batch,
        dead,
        answer,
    })
}
