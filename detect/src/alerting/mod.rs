//! What happens to alerts after the detectors, before they reach the bus: repeated
//! alerts folded ([`dedup`]), entity risk summed over a window ([`risk`]), and sources
//! that went silent ([`silence`]).
//!
//! ```text
//!  detectors ─▶ alerts ─▶ AlertDedup ─▶ kept alerts ─┬─▶ bus `alerts`
//!                             │                      └─▶ EntityRisk ─▶ risk alerts ─▶ bus
//!                             └─▶ summaries (suppressed counts) ─▶ audit log
//!  event batches ─▶ SilentSources ─(timer)─▶ silence alerts ─▶ bus
//! ```
//!
//! Each is plain state driven by the caller's clock (`now_ms`): wall-clock time in
//! `vedette run`, the events' own time when `vedette detect` replays files. State is in
//! memory and bounded; a restart starts it afresh (a repeat alert then passes once).

pub mod dedup;
pub mod risk;
pub mod silence;

use sha2::{Digest, Sha256};

/// A 32-hex-digit id from `parts` (separated, so `("ab","c")` and `("a","bc")` differ):
/// the same inputs give the same alert id after a restart or a replay.
pub(crate) fn stable_id(parts: &[&str]) -> String {
    let mut digest = Sha256::new();
    for p in parts {
        digest.update(p.as_bytes());
        digest.update([0]);
    }
    digest.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
