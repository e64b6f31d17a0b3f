//! Stable event ids: the same input record always gets the same `event.id`.
//!
//! The id is the 128-bit SipHash-1-3 (under a fixed key) of the tenant, the dataset and
//! the raw record bytes, in lowercase hex. Re-delivery of a record (an agent retrying a
//! POST, a bus replaying after a crash) therefore yields the same id, and stores
//! de-duplicate on it. Two byte-identical records of the same tenant and dataset are
//! treated as one.
//!
//! Why SipHash and not a cryptographic digest: the id is computed for every event on
//! the ingest path, where SHA-256 (even with the CPU's SHA extensions) took a fifth of
//! the time to parse a Windows event; SipHash-1-3 is three to five times faster on
//! records of 100 to 2,000 bytes. Unlike a non-cryptographic hash (xxHash, whose
//! collisions can be constructed), no way to build two records with the same 128-bit
//! SipHash output is known, so a sender cannot craft a record that a store would fold
//! into another one. The key is public: the id is an identity, not a secret.

use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher13};

/// Length in characters of an event id.
pub const EVENT_ID_LEN: usize = 32;

/// The key of the id hash (fixed: ids must agree across processes and versions).
const ID_KEY: (u64, u64) = (0x7665_6465_7474_6520, 0x6576_656e_742e_6964);

/// The stable id of one raw input record.
pub fn event_id(tenant: &str, dataset: &str, raw: &[u8]) -> String {
    let mut h = SipHasher13::new_with_keys(ID_KEY.0, ID_KEY.1);
    for part in [tenant.as_bytes(), dataset.as_bytes()] {
        h.write(&(part.len() as u64).to_le_bytes());
        h.write(part);
    }
    h.write(raw);
    let digest = h.finish128().as_bytes();
    let mut out = String::with_capacity(EVENT_ID_LEN);
    for byte in &digest[..EVENT_ID_LEN / 2] {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_record_same_id() {
        let a = event_id("t1", "syslog", b"<34>Oct 11 22:14:15 host su: failed");
        let b = event_id("t1", "syslog", b"<34>Oct 11 22:14:15 host su: failed");
        assert_eq!(a, b);
        assert_eq!(a.len(), EVENT_ID_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn tenant_dataset_and_bytes_all_count() {
        let base = event_id("t1", "syslog", b"x");
        assert_ne!(base, event_id("t2", "syslog", b"x"));
        assert_ne!(base, event_id("t1", "cef", b"x"));
        assert_ne!(base, event_id("t1", "syslog", b"y"));
        // Length prefixes keep the boundary between parts unambiguous.
        assert_ne!(event_id("ab", "c", b""), event_id("a", "bc", b""));
    }

    #[test]
    fn the_scheme_does_not_change() {
        // Stores de-duplicate re-delivered records on this id across processes and
        // versions: a change of scheme must be deliberate (and a migration note).
        assert_eq!(
            event_id("default", "syslog", b"<34>Oct 11 22:14:15 host su: failed"),
            "f4e2eae31afa011042224c83861300da"
        );
    }
}
