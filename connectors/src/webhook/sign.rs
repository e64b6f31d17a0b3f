//! Signing of webhook deliveries: HMAC-SHA256 over `"{timestamp}.{body}"`, sent as
//! `X-Vedette-Signature: v1=<hex>` beside `X-Vedette-Timestamp: <Unix seconds>`.
//! [`verify`] is what a receiver runs: it checks the signature in constant time and
//! refuses timestamps outside a tolerance, so a captured delivery cannot be replayed
//! later.

use ring::hmac;

/// Header carrying the Unix time (seconds) the delivery was signed at.
pub const TIMESTAMP_HEADER: &str = "x-vedette-timestamp";
/// Header carrying the signature(s), `v1=<hex>` (comma-separated when several).
pub const SIGNATURE_HEADER: &str = "x-vedette-signature";
/// Header carrying the key a receiver deduplicates deliveries by.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Header carrying the attempt number, from 1.
pub const ATTEMPT_HEADER: &str = "x-vedette-attempt";

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The timestamp header is not a number of seconds.
    #[error("the timestamp is not Unix seconds")]
    BadTimestamp,
    /// The timestamp is further from now than the tolerance.
    #[error("the timestamp is {0} s away from now, beyond the tolerance")]
    Stale(i64),
    /// No `v1=` signature matches the body.
    #[error("no v1 signature matches")]
    Mismatch,
}

/// The signature header value of `body` signed with `secret` at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &signed_bytes(timestamp, body));
    format!("v1={}", hex(tag.as_ref()))
}

/// Checks a delivery as a receiver would: `signature` (the header value) must hold a
/// `v1=` signature of `body` at `timestamp` (the header value) under `secret`, and the
/// timestamp must lie within `tolerance_secs` of `now_secs`.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let skew = now_secs.saturating_sub(ts);
    if skew.abs() > tolerance_secs {
        return Err(SignatureError::Stale(skew));
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let message = signed_bytes(ts, body);
    let matches = signature
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(unhex)
        .any(|tag| hmac::verify(&key, &message, &tag).is_ok());
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn signed_bytes(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("{timestamp}.").into_bytes();
    m.extend_from_slice(body);
    m
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_matches_an_independent_hmac() {
        // Computed with Python's hmac module: hmac.new(secret, b"1700000000." + body,
        // hashlib.sha256).hexdigest(); docs/responders.md shows receivers the same.
        let sig = sign(
            b"0123456789abcdef-secret",
            1_700_000_000,
            br#"{"alert":{"id":"a1"}}"#,
        );
        assert_eq!(
            sig,
            "v1=2df3853466454068a27cf48ad73bafeba56c2e8aad1a71c26338dd14160f7657"
        );
    }

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let secret = b"0123456789abcdef-secret";
        let body = br#"{"alert":{"id":"a1"}}"#;
        let sig = sign(secret, 1_700_000_000, body);
        assert!(sig.starts_with("v1=") && sig.len() == 67, "{sig}");
        assert_eq!(
            verify(secret, "1700000000", &sig, body, 1_700_000_100, 300),
            Ok(())
        );
        // Rotation: any listed v1 signature may match.
        let both = format!("v1=00ff, {sig}");
        assert_eq!(
            verify(secret, "1700000000", &both, body, 1_700_000_000, 300),
            Ok(())
        );
        let tampered = br#"{"alert":{"id":"a2"}}"#;
        assert_eq!(
            verify(secret, "1700000000", &sig, tampered, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                b"another secret!!",
                "1700000000",
                &sig,
                body,
                1_700_000_000,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(secret, "1700000001", &sig, body, 1_700_000_000, 300),
            Err(SignatureError::Mismatch),
            "the timestamp is signed too"
        );
        assert_eq!(
            verify(secret, "1700000000", &sig, body, 1_700_000_400, 300),
            Err(SignatureError::Stale(400))
        );
        assert_eq!(
            verify(secret, "soon", &sig, body, 0, 300),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            verify(secret, "1700000000", "v1=zz", body, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
    }
}
