//! `POST /v1/ingest`: agents send records (NDJSON by default, or any format named by
//! the `X-Vedette-Format` header or the `format` query parameter), optionally
//! compressed (`Content-Encoding: gzip` or `zstd`). An agent token is required; the
//! events take the token's tenant when it has one. The answer comes once the events
//! are durable, and says how many records were accepted and how many were
//! dead-lettered, by reason. A body of more records than allowed is refused whole
//! (413), so the sender can split it. While a consumer is too far behind (backpressure)
//! a request is held up to a second, then answered 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
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

/// Longest a request is held while a consumer is behind, before a 429.
const HOLD_AT_MOST: std::time::Duration = std::time::Duration::from_secs(1);

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
    /// Largest body as sent (`http.max_body_bytes`, which the router also enforces).
    pub(crate) max_body: usize,
    /// Largest body after decompression.
    pub(crate) max_decompressed: u64,
    /// Most records (events and dead letters) in one request.
    pub(crate) max_records: usize,
    /// Only on TLS connections with a verified client certificate.
    pub(crate) require_client_cert: bool,
    /// Requests being decompressed and parsed at once, at most (see [`parse_slots`]):
    /// each may hold its body decompressed, so together they are bounded in memory.
    pub(crate) parse_slots: Arc<tokio::sync::Semaphore>,
}

/// The parse slots of HTTP ingest: one per core, at least two. A request holds one
/// from decompressing its body until its events are stored; requests past them wait up
/// to a second for one, then are told to come back (429), rather than all holding
/// decompressed bodies (up to `ingest.http.max_decompressed_bytes` each) at once.
pub(crate) fn parse_slots() -> Arc<tokio::sync::Semaphore> {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    Arc::new(tokio::sync::Semaphore::new(cores.max(2)))
}

/// `POST /v1/ingest`.
pub(crate) async fn ingest(
    State(state): State<AppState>,
    cert: Option<Extension<ClientCert>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
    body: Body,
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
    // Backpressure: a consumer far behind holds the request up to a second, then the
    // sender is told to come back (nothing parsed, nothing stored).
    let room = ingest
        .sink
        .pressure
        .wait_for_room(Some(HOLD_AT_MOST), &state.shutdown)
        .await;
    if !room {
        state.metrics.backpressure.throttled_requests.inc();
        return retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            "the pipeline is behind; send again after the pause",
            "1",
        );
    }
    // The body is read only now, once the sender is known to hold a token: a client
    // without one cannot make the server hold its body in memory.
    #[allow(clippy::disallowed_methods)] // Bounded by `http.max_body_bytes`.
    let body = match axum::body::to_bytes(body, ingest.max_body).await {
        Ok(body) => body,
        Err(e) => {
            return if over_body_limit(&e) {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the body is larger than http.max_body_bytes",
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                )
            };
        }
    };
    let slot = tokio::time::timeout(HOLD_AT_MOST, ingest.parse_slots.clone().acquire_owned()).await;
    let Ok(Ok(slot)) = slot else {
        state.metrics.backpressure.throttled_requests.inc();
        return retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            "every parse slot is busy; send again after the pause",
            "1",
        );
    };
    let metrics = state.metrics.clone();
    let parsing = ingest.clone();
    let parsing_metrics = metrics.clone();
    let parsing_tenant = tenant.clone();
    // The slot is held until the parsed events are stored: until then they are held in
    // memory too.
    let task = tokio::task::spawn_blocking(move || {
        let parsed = parse(
            &parsing,
            &parsing_metrics,
            &body,
            compression,
            format,
            parsing_tenant,
        );
        (parsed, slot)
    });
    let (parsed, _slot) = match task.await {
        Ok(done) => done,
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
            retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "events could not be stored; retry later",
                "5",
            )
        }
    }
}

/// A refusal that tells the sender to send again after `seconds`.
fn retry_later(status: StatusCode, message: &str, seconds: &'static str) -> Response {
    let mut response = error(status, message);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(seconds),
    );
    response
}

/// Whether reading a body failed because it passed the router's size limit.
fn over_body_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use vedette_connectors::bus::embedded::{EmbeddedBus, EmbeddedLog, LogOptions};
    use vedette_core::traits::{Bus, BusDelivery};

    use super::*;
    use crate::backpressure::Backpressure;
    use crate::bus_sink::EVENTS_TOPIC;
    use crate::http::{Auth, RateLimit};
    use crate::tokens::TokenStore;

    /// A body that fails with the router's size error once read (limit 10 bytes).
    fn over_the_limit() -> Body {
        Body::new(http_body_util::Limited::new(
            Body::from(vec![b'x'; 100]),
            10,
        ))
    }

    async fn post_body(state: &AppState, token: &str, body: Body) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        ingest(
            State(state.clone()),
            None,
            headers,
            Query(HashMap::new()),
            body,
        )
        .await
    }

    async fn post(state: &AppState, token: &str, lines: usize) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let body: String = (0..lines)
            .map(|i| format!("{{\"host\":\"h{}\",\"message\":\"line {i}\"}}\n", i % 3))
            .collect();
        ingest(
            State(state.clone()),
            None,
            headers,
            Query(HashMap::new()),
            Body::from(body),
        )
        .await
    }

    #[tokio::test]
    async fn ingest_checks_the_token_before_the_body_and_answers_429_while_a_consumer_is_behind() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("bus"), LogOptions::default()).unwrap();
        let bus: Arc<dyn Bus> = Arc::new(EmbeddedBus::new(log.clone(), "host.name"));
        let metrics = Metrics::new();
        let tokens = Arc::new(TokenStore::new(dir.path()));
        let (token, _) = tokens.create(Role::Agent, None, None).unwrap();
        let sink = Arc::new(BusSink {
            bus: bus.clone(),
            metrics: metrics.clone(),
            pressure: Backpressure::new(bus.clone(), Some(2_000), metrics.clone()),
        });
        let state = AppState {
            metrics: metrics.clone(),
            auth: Auth::new(
                tokens,
                RateLimit {
                    per_second: 0.0,
                    burst: 0.0,
                },
            ),
            shutdown: tokio_util::sync::CancellationToken::new(),
            components: Arc::new(serde_json::Value::Null),
            ingest: Some(Arc::new(HttpIngest {
                sink,
                limits: Limits::default(),
                tenant: "acme".into(),
                max_body: 1 << 20,
                max_decompressed: 1 << 20,
                max_records: 10_000,
                require_client_cert: false,
                parse_slots: parse_slots(),
            })),
            query: None,
            alerts: None,
            rules: None,
            health: None,
        };
        // With every parse slot taken, a request waits a second, then is told to come
        // back.
        let slots = state
            .ingest
            .as_ref()
            .map(|i| i.parse_slots.clone())
            .unwrap();
        let taken = slots
            .clone()
            .acquire_many_owned(slots.available_permits() as u32)
            .await
            .unwrap();
        let busy = post(&state, &token, 1).await;
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(metrics.backpressure.throttled_requests.get(), 1);
        drop(taken);

        // The token is checked before the body is read; a body past the limit is 413.
        let unknown = post_body(&state, "not-a-token", over_the_limit()).await;
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
        let large = post_body(&state, &token, over_the_limit()).await;
        assert_eq!(large.status(), StatusCode::PAYLOAD_TOO_LARGE);

        let mut consumer = bus.subscribe(EVENTS_TOPIC, "detect").await.unwrap();
        assert_eq!(post(&state, &token, 200).await.status(), StatusCode::OK);
        // The inputs' view of the backlog is kept 10 ms.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let appended = || log.counters().appended_records.load(Ordering::Relaxed);
        let before = appended();

        // The consumer has read nothing: held a second, then told to come back.
        let started = std::time::Instant::now();
        let refused = post(&state, &token, 200).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(started.elapsed() >= HOLD_AT_MOST);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        assert_eq!(appended(), before, "a refused request stores nothing");
        assert_eq!(metrics.backpressure.throttled_requests.get(), 2);

        // Once it has read, requests go through again.
        while let Some(d) = consumer.poll(Duration::from_millis(200)).await.unwrap() {
            if let BusDelivery::Batch(b) = d {
                consumer.commit(b.position.as_ref().unwrap()).await.unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(post(&state, &token, 200).await.status(), StatusCode::OK);
        assert!(appended() > before);
        consumer.close().await.unwrap();
    }
}
