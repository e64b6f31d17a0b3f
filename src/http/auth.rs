//! Bearer tokens: each endpoint family accepts one token, read from the environment
//! at start and kept only as its SHA-256. (The role-based tokens of the API issue will
//! replace these single tokens.)

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::error;

/// The token one endpoint family accepts.
#[derive(Debug, Clone)]
pub(crate) struct BearerToken {
    /// SHA-256 of the token; None refuses every request.
    sha256: Option<[u8; 32]>,
    /// Name of the environment variable it comes from, for error messages.
    env: String,
    /// What the token opens, for error messages (e.g. "ingest").
    what: &'static str,
}

impl BearerToken {
    /// The token in environment variable `env` (none when unset or empty).
    pub(crate) fn from_env(env: &str, what: &'static str) -> Self {
        let token = std::env::var(env)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if token.is_none() {
            tracing::warn!(
                env,
                what,
                "no token set: its endpoints refuse every request"
            );
        }
        Self {
            sha256: token.as_deref().map(token_hash),
            env: env.to_string(),
            what,
        }
    }

    /// The refusal to send when `headers` do not carry the token, if they do not.
    pub(crate) fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        let Some(expected) = self.sha256 else {
            return Some(error(
                StatusCode::UNAUTHORIZED,
                format!(
                    "{} is disabled: no token configured (set {})",
                    self.what, self.env
                ),
            ));
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| token_hash(t.trim()));
        // Hashes of equal length compared without an early exit.
        let ok = presented.is_some_and(|p| {
            p.iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        });
        if ok {
            return None;
        }
        let mut response = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        Some(response)
    }
}

/// The hash a token is compared by.
fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_token_passes() {
        let token = BearerToken {
            sha256: Some(token_hash("s3cret")),
            env: "X".into(),
            what: "query",
        };
        let mut headers = HeaderMap::new();
        assert!(token.refusal(&headers).is_some());
        headers.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(token.refusal(&headers).is_some());
        headers.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(token.refusal(&headers).is_none());
        let unset = BearerToken {
            sha256: None,
            env: "X".into(),
            what: "query",
        };
        assert!(unset.refusal(&headers).is_some());
    }
}
