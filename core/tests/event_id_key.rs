//! A deployment's secret key changes every event id made after it is set, and cannot be
//! swapped for another key later (a process of its own: the key is process-wide).

use vedette_core::id::{event_id, use_secret_key};

#[test]
fn a_secret_key_applies_once_and_for_all() -> Result<(), String> {
    let raw = b"<34>Oct 11 22:14:15 host su: failed";
    let public = event_id("default", "syslog", raw);
    use_secret_key("8f14e45fceea167a5a36dedd4bea2543")?;
    let secret = event_id("default", "syslog", raw);
    assert_ne!(public, secret);
    assert_eq!(secret, event_id("default", "syslog", raw));
    // The same key again is fine (a restart of the same setup); another is refused.
    use_secret_key("8F14E45FCEEA167A5A36DEDD4BEA2543")?;
    assert!(use_secret_key("00000000000000000000000000000000").is_err());
    assert_eq!(secret, event_id("default", "syslog", raw));
    Ok(())
}
