//! Time arithmetic that cannot panic.
//!
//! `Instant + Duration` and `SystemTime + Duration` panic on overflow, and a
//! panic in an actor is a dead agent. Configured durations are bounded at
//! start, but values read from a spool file or a server reply are not, so
//! every sum of a point in time and a length goes through here.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Far enough away to mean "never" for an agent: about a hundred years.
pub const NEVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `now + d`, or `now + NEVER` when that would overflow.
pub fn deadline(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(NEVER))
        .unwrap_or(now)
}

/// The Unix epoch plus `ms` milliseconds, saturating.
pub fn from_unix_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH + NEVER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_saturate_instead_of_panicking() {
        let now = Instant::now();
        assert!(deadline(now, Duration::MAX) > now);
        assert!(deadline(now, Duration::from_secs(i64::MAX as u64)) > now);
        assert_eq!(
            deadline(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        assert!(from_unix_millis(u64::MAX) > UNIX_EPOCH);
        assert_eq!(
            from_unix_millis(1_500),
            UNIX_EPOCH + Duration::from_millis(1_500)
        );
    }
}
