//! Authorization of API requests: a bearer token from the [`TokenStore`], the role the
//! endpoint needs, and a per-token request rate. Refusals are JSON: 401 (no or
//! unknown token), 403 (wrong role or tenant), 429 (rate, with `Retry-After`). Each
//! refusal and each token's first use in this process are audit lines.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error;
use crate::audit_log::{self, AuditLog};
use crate::tokens::{Principal, Role, TokenStore};

/// Requests per second and burst allowed to one token; zero rate means no limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateLimit {
    /// Sustained requests per second.
    pub(crate) per_second: f64,
    /// Requests allowed at once after a quiet spell.
    pub(crate) burst: f64,
}

/// Token buckets by token id.
#[derive(Debug)]
struct Buckets {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Buckets {
    /// Takes one request from `id`'s bucket, or says how long to wait.
    fn take(&self, id: &str, now: Instant) -> Result<(), Duration> {
        if self.limit.per_second <= 0.0 {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let (level, last) = buckets
            .entry(id.to_string())
            .or_insert((self.limit.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *level = (*level + elapsed * self.limit.per_second).min(self.limit.burst);
        *last = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - *level) / self.limit.per_second,
            ))
        }
    }
}

/// What every protected endpoint asks before it works.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    tokens: Arc<TokenStore>,
    buckets: Arc<Buckets>,
    seen: Arc<Mutex<HashSet<String>>>,
    audit: Option<AuditLog>,
}

impl Auth {
    /// Authorization against `tokens`, each token limited to `rate`.
    pub(crate) fn new(tokens: Arc<TokenStore>, rate: RateLimit) -> Self {
        Self {
            tokens,
            buckets: Arc::new(Buckets {
                limit: rate,
                buckets: Mutex::new(HashMap::new()),
            }),
            seen: Arc::new(Mutex::new(HashSet::new())),
            audit: None,
        }
    }

    /// The same, recording refusals and first uses in `audit`.
    pub(crate) fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The audit log, if any.
    pub(crate) fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    fn audit_refusal(&self, who: Option<&Principal>, action: &str, outcome: &str, why: &str) {
        let mut r = match who {
            Some(p) => audit_log::record(p, action, outcome),
            None => audit_log::record_by("anonymous", "", None, action, outcome),
        };
        r.detail = Some(why.to_string());
        match &self.audit {
            Some(audit) => audit.record(r),
            None => tracing::info!(target: "audit", action, outcome, why),
        }
    }

    /// The token store.
    pub(crate) fn tokens(&self) -> &TokenStore {
        &self.tokens
    }

    /// The principal of the request when its token has role `needed` (or admin) and
    /// is within its rate; else the refusal to send. `action` names the endpoint in
    /// audit lines.
    pub(crate) fn authorize(
        &self,
        headers: &HeaderMap,
        needed: Role,
        action: &str,
    ) -> Result<Principal, Refusal> {
        self.check(headers, Some(needed), action)
    }

    /// The principal of the request for any valid token within its rate.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        action: &str,
    ) -> Result<Principal, Refusal> {
        self.check(headers, None, action)
    }

    fn check(
        &self,
        headers: &HeaderMap,
        needed: Option<Role>,
        action: &str,
    ) -> Result<Principal, Refusal> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = presented else {
            self.audit_refusal(None, action, "unauthorized", "no token");
            return Err(unauthorized("a bearer token is required").into());
        };
        let principal = match self.tokens.verify(token) {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.audit_refusal(None, action, "unauthorized", "unknown or revoked token");
                return Err(unauthorized("unknown or revoked token").into());
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the tokens");
                return Err(error(StatusCode::SERVICE_UNAVAILABLE, "tokens cannot be read").into());
            }
        };
        if let Some(needed) = needed.filter(|&n| !principal.role.allows(n)) {
            self.audit_refusal(Some(&principal), action, "forbidden", "wrong role");
            return Err(error(
                StatusCode::FORBIDDEN,
                format!(
                    "a {} token cannot do this: it needs the {} role",
                    principal.role.name(),
                    needed.name()
                ),
            )
            .into());
        }
        if let Err(wait) = self.buckets.take(&principal.id, Instant::now()) {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests for this token; slow down",
            );
            let secs = wait.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Err(response.into());
        }
        let first_use = self
            .seen
            .lock()
            .is_ok_and(|mut seen| seen.insert(principal.id.clone()));
        if first_use {
            // The first use of each token in this process (not every request).
            if let Some(audit) = &self.audit {
                let mut r = audit_log::record(&principal, "token.use", "ok");
                r.target = Some(principal.id.clone());
                r.detail = Some(format!("first request of this process: {action}"));
                audit.record(r);
            }
        }
        Ok(principal)
    }
}

/// A refused request: the answer to send (boxed: responses are large).
#[derive(Debug)]
pub(crate) struct Refusal(Box<Response>);

impl From<Response> for Refusal {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// A 401 with the `WWW-Authenticate` challenge.
fn unauthorized(message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, message);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// A 403 for a tenant-confined token on an endpoint that spans tenants.
pub(crate) fn require_all_tenants(principal: &Principal) -> Result<(), Refusal> {
    match &principal.tenant {
        None => Ok(()),
        Some(t) => Err(error(
            StatusCode::FORBIDDEN,
            format!("a token of tenant {t} cannot see what spans every tenant"),
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn tokens_roles_and_rates_decide() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(TokenStore::new(dir.path()));
        let (agent, _) = store.create(Role::Agent, None, None).unwrap();
        let (admin, _) = store.create(Role::Admin, None, None).unwrap();
        let auth = Auth::new(
            store,
            RateLimit {
                per_second: 1.0,
                burst: 2.0,
            },
        );
        let status =
            |r: Result<Principal, Refusal>| r.err().map(|r| r.into_response().status().as_u16());
        assert_eq!(
            status(auth.authorize(&HeaderMap::new(), Role::Agent, "t")),
            Some(401)
        );
        assert_eq!(
            status(auth.authorize(&headers("nope"), Role::Agent, "t")),
            Some(401)
        );
        assert_eq!(
            status(auth.authorize(&headers(&agent), Role::Analyst, "t")),
            Some(403)
        );
        assert_eq!(
            status(auth.authorize(&headers(&admin), Role::Analyst, "t")),
            None
        );
        // The agent's bucket: the 403 above took nothing; two pass, the third waits.
        assert_eq!(
            status(auth.authorize(&headers(&agent), Role::Agent, "t")),
            None
        );
        assert_eq!(
            status(auth.authorize(&headers(&agent), Role::Agent, "t")),
            None
        );
        assert_eq!(
            status(auth.authorize(&headers(&agent), Role::Agent, "t")),
            Some(429)
        );
    }

    #[test]
    fn buckets_refill_with_time() {
        let b = Buckets {
            limit: RateLimit {
                per_second: 10.0,
                burst: 1.0,
            },
            buckets: Mutex::new(HashMap::new()),
        };
        let t0 = Instant::now();
        assert!(b.take("a", t0).is_ok());
        let wait = b.take("a", t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100));
        assert!(b.take("b", t0).is_ok(), "buckets are per token");
        assert!(b.take("a", t0 + Duration::from_millis(100)).is_ok());
    }
}
