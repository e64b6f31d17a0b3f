//! One responder's HTTP client: rustls (public roots plus an optional private CA),
//! HTTP/1.1, a timeout per attempt, the answer's body read to at most 4 KiB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use vedette_core::config::ResponderConfig;

use super::sign::{sign, ATTEMPT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::error::ConnectorError;

/// Bytes of a receiver's answer kept (for logs and dead letters).
const ANSWER_CAP: usize = 4096;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered {
        /// HTTP status.
        status: u16,
    },
    /// Worth retrying: no answer, a timeout, 408, 425, 429 or 5xx.
    Retry {
        /// HTTP status, when there was an answer.
        status: Option<u16>,
        /// What happened.
        reason: String,
        /// The receiver's `Retry-After`, in seconds form.
        retry_after: Option<Duration>,
    },
    /// Refused for good (another 4xx, or a redirect, which is not followed: the
    /// signature is for this URL's receiver only).
    Refused {
        /// HTTP status.
        status: u16,
        /// What happened, with the start of the answer.
        reason: String,
    },
}

/// An attempt's outcome and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The outcome.
    pub outcome: AttemptOutcome,
    /// Time from sending to the end of the answer (or the failure).
    pub latency: Duration,
}

/// Sends signed deliveries to one responder.
#[derive(Clone)]
pub struct WebhookClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: hyper::Uri,
    secret: Arc<[u8]>,
    timeout: Duration,
}

impl std::fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookClient")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookClient {
    /// A client for `config`, signing with `secret` (at least 16 bytes).
    pub fn new(config: &ResponderConfig, secret: &[u8]) -> Result<Self, ConnectorError> {
        let name = &config.name;
        if secret.len() < 16 {
            return Err(ConnectorError::BadConfig(format!(
                "responder {name}: the secret in {} must be at least 16 bytes",
                config.secret_env
            )));
        }
        let url: hyper::Uri = config
            .url
            .parse()
            .map_err(|e| ConnectorError::BadConfig(format!("responder {name}: url: {e}")))?;
        if url.host().is_none() {
            return Err(ConnectorError::BadConfig(format!(
                "responder {name}: url has no host"
            )));
        }
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(ca) = &config.ca_file {
            let bad = |e: String| {
                ConnectorError::Tls(format!("responder {name}: ca_file {}: {e}", ca.display()))
            };
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| bad(e.to_string()))? {
                roots
                    .add(cert.map_err(|e| bad(e.to_string()))?)
                    .map_err(|e| bad(e.to_string()))?;
            }
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectorError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let builder = HttpsConnectorBuilder::new().with_tls_config(tls);
        let connector = if config.insecure_http {
            builder.https_or_http().enable_http1().build()
        } else {
            builder.https_only().enable_http1().build()
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            client,
            url,
            secret: Arc::from(secret),
            timeout: Duration::from_millis(config.timeout_ms),
        })
    }

    /// Sends `body` once as attempt `attempt` (from 1), signed now, with idempotency
    /// key `key`.
    pub async fn send(&self, body: &[u8], key: &str, attempt: u32) -> Attempt {
        let started = Instant::now();
        let outcome =
            match tokio::time::timeout(self.timeout, self.exchange(body, key, attempt)).await {
                Ok(outcome) => outcome,
                Err(_) => AttemptOutcome::Retry {
                    status: None,
                    reason: format!("no answer within {} ms", self.timeout.as_millis()),
                    retry_after: None,
                },
            };
        Attempt {
            outcome,
            latency: started.elapsed(),
        }
    }

    async fn exchange(&self, body: &[u8], key: &str, attempt: u32) -> AttemptOutcome {
        let now = chrono::Utc::now().timestamp();
        let request = hyper::Request::post(self.url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("vedette/", env!("CARGO_PKG_VERSION")),
            )
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(SIGNATURE_HEADER, sign(&self.secret, now, body))
            .header(IDEMPOTENCY_HEADER, key)
            .header(ATTEMPT_HEADER, attempt.to_string())
            .body(Full::new(Bytes::copy_from_slice(body)));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                return AttemptOutcome::Refused {
                    status: 0,
                    reason: format!("cannot build the request: {e}"),
                }
            }
        };
        let response = match self.client.request(request).await {
            Ok(r) => r,
            Err(e) => {
                return AttemptOutcome::Retry {
                    status: None,
                    reason: format!("sending failed: {}", error_chain(&e)),
                    retry_after: None,
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer = Limited::new(response.into_body(), ANSWER_CAP)
            .collect()
            .await
            .map(|c| String::from_utf8_lossy(&c.to_bytes()).into_owned())
            .unwrap_or_else(|_| "(answer over 4 KiB or cut)".into());
        match status {
            200..=299 => AttemptOutcome::Delivered { status },
            408 | 425 | 429 | 500..=599 => AttemptOutcome::Retry {
                status: Some(status),
                reason: format!("answered {status}: {}", answer.trim()),
                retry_after,
            },
            _ => AttemptOutcome::Refused {
                status,
                reason: format!("answered {status}: {}", answer.trim()),
            },
        }
    }
}

/// An error and its sources, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
