//! Retry delays: exponential from a base, capped, with jitter so that many deliveries
//! failing together do not retry together.

use std::time::Duration;

/// The delay before attempt `next` (2 for the first retry): `base · 2^(next-2)`, at
/// most `max`, scaled by a factor in [0.5, 1) drawn from `unit` (a number in [0, 1)).
/// A receiver's `Retry-After` replaces the computed delay (still capped at `max`).
pub fn retry_delay(
    next: u32,
    base: Duration,
    max: Duration,
    unit: f64,
    retry_after: Option<Duration>,
) -> Duration {
    if let Some(after) = retry_after {
        return after.min(max);
    }
    let doublings = next.saturating_sub(2).min(30);
    let full = base.saturating_mul(1u32 << doublings).min(max);
    full.mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0)
}

/// A number in [0, 1) from the system's random source (0.5 if it fails).
pub fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_jitters() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(
            retry_delay(2, base, max, 0.0, None),
            Duration::from_millis(500)
        );
        assert_eq!(retry_delay(3, base, max, 0.0, None), Duration::from_secs(1));
        assert_eq!(retry_delay(5, base, max, 0.0, None), Duration::from_secs(4));
        let top = retry_delay(5, base, max, 0.999_999, None);
        assert!(top > Duration::from_millis(7990) && top < Duration::from_secs(8));
        assert_eq!(
            retry_delay(40, base, max, 0.0, None),
            Duration::from_secs(30)
        );
        assert_eq!(
            retry_delay(2, base, max, 0.3, Some(Duration::from_secs(600))),
            max
        );
        let u = random_unit();
        assert!((0.0..1.0).contains(&u));
    }
}
