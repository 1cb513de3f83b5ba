//! How often the relying party may call the IdP on its own initiative: a JWKS refetch for an
//! id_token signed by a key the cache does not hold, and discovery again after it failed. Both are
//! pure decisions over the time of the last attempt, so a forged `kid` or an IdP outage cannot
//! turn client requests into a flood of IdP requests.

use std::time::{Duration, Instant};

/// At most one JWKS refetch for an unknown key per this interval (documented in docs/CONFIG.md).
pub const JWKS_REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(60);
/// The first wait after a failed discovery; it doubles with each further failure.
pub const DISCOVERY_RETRY_FIRST: Duration = Duration::from_secs(5);
/// The longest wait between discovery attempts while the IdP keeps failing.
pub const DISCOVERY_RETRY_MAX: Duration = Duration::from_secs(60);

/// Whether a JWKS refetch may run at `now`, the last one having run at `last`.
pub fn refetch_due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|at| now.saturating_duration_since(at) >= JWKS_REFETCH_MIN_INTERVAL)
}

/// How long to answer from the failure, without calling the IdP, after `failures` discovery
/// attempts in a row failed: 5 s, 10 s, 20 s, 40 s, then 60 s.
pub fn discovery_retry_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    DISCOVERY_RETRY_FIRST
        .saturating_mul(1u32 << doublings)
        .min(DISCOVERY_RETRY_MAX)
}

/// The failures of discovery so far: how many in a row, and when the last one was.
#[derive(Debug, Clone, Copy, Default)]
pub struct Failures {
    count: u32,
    last: Option<Instant>,
}

impl Failures {
    /// Records one more failure at `now`.
    pub fn failed(&mut self, now: Instant) {
        self.count = self.count.saturating_add(1);
        self.last = Some(now);
    }

    /// Forgets the failures (discovery worked).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Whether discovery is still in its back-off window at `now`.
    pub fn backing_off(&self, now: Instant) -> bool {
        self.last
            .is_some_and(|at| now.saturating_duration_since(at) < discovery_retry_after(self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refetch_runs_at_most_once_per_interval() {
        let t0 = Instant::now();
        assert!(refetch_due(None, t0));
        assert!(!refetch_due(Some(t0), t0));
        assert!(!refetch_due(Some(t0), t0 + Duration::from_secs(59)));
        assert!(refetch_due(Some(t0), t0 + JWKS_REFETCH_MIN_INTERVAL));
    }

    #[test]
    fn discovery_backs_off_doubling_up_to_a_ceiling() {
        let secs: Vec<u64> = (1..=7)
            .map(|n| discovery_retry_after(n).as_secs())
            .collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60, 60]);
        assert_eq!(discovery_retry_after(u32::MAX), DISCOVERY_RETRY_MAX);

        let t0 = Instant::now();
        let mut f = Failures::default();
        assert!(!f.backing_off(t0));
        f.failed(t0);
        assert!(f.backing_off(t0 + Duration::from_secs(4)));
        assert!(!f.backing_off(t0 + Duration::from_secs(5)));
        f.failed(t0);
        assert!(f.backing_off(t0 + Duration::from_secs(9)));
        f.reset();
        assert!(!f.backing_off(t0));
    }
}
