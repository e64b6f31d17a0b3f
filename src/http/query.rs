//! `POST /v1/query`: analysts (and their tools) run one read-only SQL query on the
//! store and get the rows streamed back, as NDJSON (the default) or as an Arrow IPC
//! stream (`Accept: application/vnd.apache.arrow.stream`, or `"format": "arrow"`).
//! The analyst token is required; ingest tokens do not open it. The store bounds each
//! query (rows, time); a request may ask for fewer rows. Every query is logged
//! (target `audit`) with its outcome.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use vedette_core::traits::{EventStore, QueryScope};
use vedette_core::CoreError;
use vedette_storage::{titled_query_examples, Dialect, QUERIES_MD};

use super::{error, AppState};
use crate::audit_log;
use crate::tokens::{Principal, Role};

/// Media type of an Arrow IPC stream.
const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// Media type of newline-delimited JSON.
const NDJSON: &str = "application/x-ndjson";
/// Longest SQL text accepted.
const MAX_SQL_BYTES: usize = 64 * 1024;

/// What the query endpoint needs.
pub(crate) struct HttpQuery {
    /// The store queries run on.
    pub(crate) store: Arc<dyn EventStore>,
    /// Its SQL dialect.
    pub(crate) dialect: Dialect,
}

impl std::fmt::Debug for HttpQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpQuery").finish_non_exhaustive()
    }
}

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueryRequest {
    /// One read-only SQL statement.
    sql: String,
    /// `ndjson` or `arrow`; the `Accept` header decides when absent.
    #[serde(default)]
    format: Option<String>,
    /// Rows wanted at most (the store's own limit still applies).
    #[serde(default)]
    max_rows: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputFormat {
    Ndjson,
    Arrow,
}

fn output_format(request: &QueryRequest, headers: &HeaderMap) -> Result<OutputFormat, String> {
    match request.format.as_deref() {
        Some("ndjson") | Some("json") => Ok(OutputFormat::Ndjson),
        Some("arrow") => Ok(OutputFormat::Arrow),
        Some(other) => Err(format!("format `{other}`: use ndjson or arrow")),
        None => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Ok(if accept.contains(ARROW_STREAM) {
                OutputFormat::Arrow
            } else {
                OutputFormat::Ndjson
            })
        }
    }
}

/// `GET /v1/query/examples`: the queries of `docs/queries.md` in the running store's
/// dialect, with their titles.
pub(crate) async fn examples(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(endpoint) = state.query.clone() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no store is open");
    };
    if let Err(r) = state
        .auth
        .authorize(&headers, Role::Analyst, "query.examples")
    {
        return r.into_response();
    }
    let examples: Vec<serde_json::Value> = titled_query_examples(QUERIES_MD, endpoint.dialect)
        .into_iter()
        .map(|(title, sql)| serde_json::json!({ "title": title, "sql": sql.trim_end() }))
        .collect();
    let dialect = match endpoint.dialect {
        Dialect::DataFusion => "datafusion",
        Dialect::ClickHouse => "clickhouse",
    };
    Json(serde_json::json!({ "dialect": dialect, "examples": examples })).into_response()
}

/// `POST /v1/query`.
pub(crate) async fn query(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(endpoint) = state.query.clone() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no store is open");
    };
    let principal = match state.auth.authorize(&headers, Role::Analyst, "query") {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let request: QueryRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be JSON {{\"sql\": \"...\"}}: {e}"),
            )
        }
    };
    if request.sql.len() > MAX_SQL_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the SQL text is longer than {MAX_SQL_BYTES} bytes"),
        );
    }
    let format = match output_format(&request, &headers) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let started = Instant::now();
    let scope = QueryScope {
        tenant: principal.tenant.clone(),
    };
    let stream = match endpoint.store.query(&request.sql, &scope).await {
        Ok(s) => s,
        Err(e) => {
            audit_query(
                &state,
                &principal,
                &request.sql,
                "refused",
                Some(&e.to_string()),
                0,
            );
            return query_error(e);
        }
    };
    // Fused: a query with no rows ends at the first poll, and must not be polled again.
    let mut stream = stream.fuse();
    // The first batch decides the status: an error here is still a clean 4xx/5xx.
    let first = match stream.next().await {
        Some(Err(e)) => {
            audit_query(
                &state,
                &principal,
                &request.sql,
                "failed",
                Some(&e.to_string()),
                0,
            );
            return query_error(e);
        }
        other => other,
    };
    let state = Streaming {
        batches: futures::stream::iter(first).chain(stream).boxed(),
        encoder: Encoder::new(format),
        max_rows: request.max_rows.unwrap_or(usize::MAX),
        sent: 0,
        done: false,
        sql: request.sql,
        app: state.clone(),
        principal,
        started,
    };
    let body = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let chunk = match st.batches.next().await {
            Some(Ok(batch)) => {
                let batch = batch.slice(0, batch.num_rows().min(st.max_rows - st.sent));
                st.sent += batch.num_rows();
                st.encoder.batch(&batch).map(|mut bytes| {
                    if st.sent >= st.max_rows {
                        bytes.extend(st.complete());
                    }
                    bytes
                })
            }
            Some(Err(e)) => {
                st.done = true;
                audit_query(
                    &st.app,
                    &st.principal,
                    &st.sql,
                    "failed",
                    Some(&e.to_string()),
                    st.sent,
                );
                st.encoder.error(&e)
            }
            None => Ok(st.complete()),
        };
        Some((chunk.map(Bytes::from), st))
    });
    let media = match format {
        OutputFormat::Ndjson => NDJSON,
        OutputFormat::Arrow => ARROW_STREAM,
    };
    ([(header::CONTENT_TYPE, media)], Body::from_stream(body)).into_response()
}

/// A response being streamed.
struct Streaming {
    batches: futures::stream::BoxStream<'static, Result<RecordBatch, CoreError>>,
    encoder: Encoder,
    max_rows: usize,
    sent: usize,
    done: bool,
    sql: String,
    app: AppState,
    principal: Principal,
    started: Instant,
}

impl Streaming {
    /// Ends the results: the encoder's closing bytes, and the audit line.
    fn complete(&mut self) -> Vec<u8> {
        self.done = true;
        let ms = self.started.elapsed().as_millis();
        audit_query(
            &self.app,
            &self.principal,
            &self.sql,
            "ok",
            Some(&format!("{ms} ms")),
            self.sent,
        );
        self.encoder.finish()
    }
}

/// Records a query in the audit log: its text, outcome and rows sent.
fn audit_query(
    state: &AppState,
    principal: &Principal,
    sql: &str,
    outcome: &str,
    note: Option<&str>,
    rows: usize,
) {
    let mut r = audit_log::record(principal, "query", outcome);
    r.detail = Some(sql.to_string());
    r.target = Some(match note {
        Some(n) => format!("{rows} rows; {n}"),
        None => format!("{rows} rows"),
    });
    match state.auth.audit() {
        Some(audit) => audit.record(r),
        None => tracing::info!(target: "audit", action = "query", outcome, sql, rows),
    }
}

/// The HTTP answer to a query that failed before any row was sent.
fn query_error(e: CoreError) -> Response {
    match e {
        CoreError::BadInput(m) => error(StatusCode::BAD_REQUEST, m),
        CoreError::External { message, .. } => error(StatusCode::BAD_GATEWAY, message),
        other => {
            tracing::error!(error = %other, "query failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the query failed; see the service log",
            )
        }
    }
}

/// Turns batches into the bytes of the chosen format.
struct Encoder {
    format: OutputFormat,
    arrow: Option<arrow::ipc::writer::StreamWriter<Vec<u8>>>,
}

impl Encoder {
    fn new(format: OutputFormat) -> Self {
        Self {
            format,
            arrow: None,
        }
    }

    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, std::io::Error> {
        let to_io = |e: arrow::error::ArrowError| std::io::Error::other(e.to_string());
        match self.format {
            OutputFormat::Ndjson => {
                let mut out = Vec::new();
                let mut writer = arrow::json::LineDelimitedWriter::new(&mut out);
                writer.write(batch).map_err(to_io)?;
                writer.finish().map_err(to_io)?;
                Ok(out)
            }
            OutputFormat::Arrow => {
                if self.arrow.is_none() {
                    self.arrow = Some(
                        arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema())
                            .map_err(to_io)?,
                    );
                }
                let Some(writer) = self.arrow.as_mut() else {
                    return Ok(Vec::new());
                };
                writer.write(batch).map_err(to_io)?;
                Ok(std::mem::take(writer.get_mut()))
            }
        }
    }

    /// The closing bytes (the end-of-stream marker of Arrow IPC).
    fn finish(&mut self) -> Vec<u8> {
        match self.arrow.as_mut() {
            Some(writer) => {
                if let Err(e) = writer.finish() {
                    tracing::warn!(error = %e, "closing an Arrow stream failed");
                }
                std::mem::take(writer.get_mut())
            }
            None => Vec::new(),
        }
    }

    /// What tells the client the results broke off: a last NDJSON line naming the
    /// error, or (Arrow) a failed body.
    fn error(&mut self, e: &CoreError) -> Result<Vec<u8>, std::io::Error> {
        match self.format {
            OutputFormat::Ndjson => {
                let line = serde_json::json!({ "error": e.to_string() }).to_string() + "\n";
                Ok(line.into_bytes())
            }
            OutputFormat::Arrow => Err(std::io::Error::other(e.to_string())),
        }
    }
}
