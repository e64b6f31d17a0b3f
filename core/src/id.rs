//! Stable event ids: the same input record always gets the same `event.id`.
//!
//! The id is the 128-bit SipHash-1-3 of the tenant, the dataset and the raw record
//! bytes, in lowercase hex. Where the record carries its own time, the first 48 bits
//! (12 hex digits) are that time in Unix milliseconds instead ([`stamp_time`]), as in a
//! UUIDv7: ids then sort by time, and a store that sorts events by host and time finds
//! their ids' first digits shared with the row before (four bytes of the sixteen a
//! random id costs on disk). The other 80 bits are the hash's. Re-delivery of a record
//! (an agent retrying a POST, a bus replaying after a crash) therefore yields the same
//! id, and stores de-duplicate on it.
//! Two byte-identical records of the same tenant and dataset are treated as one.
//!
//! Why SipHash and not a cryptographic digest: the id is computed for every event on
//! the ingest path, where SHA-256 (even with the CPU's SHA extensions) took a fifth of
//! the time to parse a Windows event; SipHash-1-3 is three to five times faster on
//! records of 100 to 2,000 bytes. SipHash is a keyed function, and its guarantee holds
//! while its key is secret: a sender who does not know the key cannot build a record
//! whose id equals another record's (which a store would fold into one). `vedette run`
//! sets the deployment's secret key ([`use_secret_key`]): made at first start on one
//! machine, named by `ingest.id_key_env` in a cluster (the same on every node). Without
//! one the ids are made under a key written in this file: they are still stable and
//! unique for records no one crafted, but nobody claims that colliding records cannot be
//! built when the key is known.

use std::hash::Hasher;
use std::sync::OnceLock;

use siphasher::sip128::{Hasher128, SipHasher13};

/// Length in characters of an event id.
pub const EVENT_ID_LEN: usize = 32;

/// The key of the id hash when the deployment sets none (public: see the module doc).
const PUBLIC_KEY: (u64, u64) = (0x7665_6465_7474_6520, 0x6576_656e_742e_6964);

/// The deployment's secret key, once set.
static SECRET_KEY: OnceLock<(u64, u64)> = OnceLock::new();

/// Makes this process's event ids under the secret key `hex` (32 hex digits, 128
/// bits). Set it once, before ingesting, and the same on every node; setting it again
/// with another key fails, since the ids made so far would no longer agree.
pub fn use_secret_key(hex: &str) -> Result<(), String> {
    let key = parse_key(hex)?;
    let set = *SECRET_KEY.get_or_init(|| key);
    if set == key {
        Ok(())
    } else {
        Err("the event id key is already set to another key".into())
    }
}

/// A 128-bit key from 32 hex digits.
fn parse_key(hex: &str) -> Result<(u64, u64), String> {
    let hex = hex.trim();
    if hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "an event id key is 32 hex digits (128 bits); got {} characters",
            hex.len()
        ));
    }
    let value = u128::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
    Ok(((value >> 64) as u64, value as u64))
}

/// The stable id of one raw input record.
pub fn event_id(tenant: &str, dataset: &str, raw: &[u8]) -> String {
    EventId::of(tenant, dataset, raw).as_str().to_string()
}

/// An event id held as its hex digits: the ingest path makes one per record, and this
/// one is made, stamped and copied into its column without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId([u8; EVENT_ID_LEN]);

impl EventId {
    /// The stable id of one raw input record (what [`event_id`] gives as text).
    pub fn of(tenant: &str, dataset: &str, raw: &[u8]) -> Self {
        let key = SECRET_KEY.get().copied().unwrap_or(PUBLIC_KEY);
        Self::under(key, tenant, dataset, raw)
    }

    /// The id of one raw input record under `key`.
    fn under(key: (u64, u64), tenant: &str, dataset: &str, raw: &[u8]) -> Self {
        let mut h = SipHasher13::new_with_keys(key.0, key.1);
        for part in [tenant.as_bytes(), dataset.as_bytes()] {
            h.write(&(part.len() as u64).to_le_bytes());
            h.write(part);
        }
        h.write(raw);
        let digest = h.finish128().as_bytes();
        const _: () = assert!(EVENT_ID_LEN == 2 * 16, "an id is the 16-byte digest in hex");
        let mut out = [0u8; EVENT_ID_LEN];
        for (pair, byte) in out.chunks_exact_mut(2).zip(digest) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        Self(out)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        // Hex digits are ASCII, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Writes `time_ms` over the first [`TIME_DIGITS`] digits, as [`stamp_time`] does;
    /// whether it did (not when the time does not fit 48 bits).
    pub fn stamp_time(&mut self, time_ms: i64) -> bool {
        let Some(time) = u64::try_from(time_ms).ok().filter(|t| *t < 1 << 48) else {
            return false;
        };
        for (i, d) in self.0[..TIME_DIGITS].iter_mut().enumerate() {
            *d = HEX[((time >> (4 * (TIME_DIGITS - 1 - i))) & 0xf) as usize];
        }
        true
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Hex digits of an id that hold the record's time.
pub const TIME_DIGITS: usize = 12;

/// Replaces, in place, the first [`TIME_DIGITS`] hex digits of `id` (of [`event_id`])
/// by `time_ms`, the time the record carries; whether it did. It does not when `id` is
/// not an event id or the time does not fit 48 bits (before 1970, or after the year
/// 10889).
pub fn stamp_time(id: &mut String, time_ms: i64) -> bool {
    let Ok(digits) = <[u8; EVENT_ID_LEN]>::try_from(id.as_bytes()) else {
        return false;
    };
    if !digits.iter().all(|c| c.is_ascii_hexdigit()) {
        return false;
    }
    let mut stamped = EventId(digits);
    if !stamped.stamp_time(time_ms) {
        return false;
    }
    id.clear();
    id.push_str(stamped.as_str());
    true
}

/// `id` with its time stamped as [`stamp_time`] does, or `None` where it would not.
pub fn with_time(id: &str, time_ms: i64) -> Option<String> {
    let mut out = id.to_string();
    stamp_time(&mut out, time_ms).then_some(out)
}

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
    fn a_secret_key_makes_other_ids() -> Result<(), String> {
        let raw = b"<34>Oct 11 22:14:15 host su: failed";
        let key = parse_key("000102030405060708090a0b0c0d0e0f")?;
        assert_eq!(key, (0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f));
        let secret = EventId::under(key, "default", "syslog", raw);
        assert_ne!(secret, EventId::under(PUBLIC_KEY, "default", "syslog", raw));
        assert_eq!(secret, EventId::under(key, "default", "syslog", raw));
        assert_eq!(secret.as_str().len(), EVENT_ID_LEN);
        Ok(())
    }

    #[test]
    fn a_key_must_be_32_hex_digits() {
        assert!(parse_key("00").is_err());
        assert!(parse_key(&"g".repeat(32)).is_err());
        assert!(parse_key(&"f".repeat(33)).is_err());
        assert!(parse_key(&"F".repeat(32)).is_ok());
    }

    #[test]
    fn the_scheme_does_not_change() {
        // Stores de-duplicate re-delivered records on this id across processes and
        // versions: a change of scheme must be deliberate (and a migration note).
        assert_eq!(
            event_id("default", "syslog", b"<34>Oct 11 22:14:15 host su: failed"),
            "f4e2eae31afa011042224c83861300da"
        );
        assert_eq!(
            with_time("f4e2eae31afa011042224c83861300da", 1_764_201_600_123).as_deref(),
            Some("019ac29c147b011042224c83861300da")
        );
    }

    #[test]
    fn a_time_replaces_the_first_48_bits_when_it_fits() {
        let id = event_id("default", "syslog", b"x");
        let timed = with_time(&id, 0x0123_4567_89ab).unwrap();
        assert_eq!(&timed[..TIME_DIGITS], "0123456789ab");
        assert_eq!(&timed[TIME_DIGITS..], &id[TIME_DIGITS..]);
        // Ids of later times sort after.
        assert!(with_time(&id, 1_000).unwrap() < with_time(&id, 2_000).unwrap());
        assert_eq!(
            with_time(&id, (1 << 48) - 1).unwrap()[..TIME_DIGITS],
            *"ffffffffffff"
        );
        assert_eq!(with_time(&id, 1 << 48), None);
        assert_eq!(with_time(&id, -1), None);
        assert_eq!(with_time("e0", 5), None);
        assert_eq!(with_time(&"é".repeat(16), 5), None);
        let mut held = EventId::of("default", "syslog", b"x");
        assert_eq!(held.as_str(), id);
        assert!(held.stamp_time(0x0123_4567_89ab));
        assert_eq!(held.as_str(), timed);
        assert!(!held.stamp_time(-1));
        assert_eq!(held.as_str(), timed);
    }
}
