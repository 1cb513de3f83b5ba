//! The relay's circuit breaker for one destination: after five consecutive failed deliveries it
//! pauses forwarding for 30 s at a time until a delivery succeeds. A refused payload (400, 413,
//! 415, 422, 431) says nothing about the destination's health: it neither counts nor resets.

use std::time::{Duration, Instant};

/// Failures in a row that open the breaker.
pub const THRESHOLD: u32 = 5;
/// How long one pause lasts.
pub const PAUSE: Duration = Duration::from_secs(30);

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// 2xx.
    Ok,
    /// The destination refused this payload (its fault or ours, not an outage).
    Refused,
    /// Any other status, a timeout or a connection error.
    Failed,
}

impl Delivery {
    /// Classifies an HTTP status.
    pub fn from_status(status: u16) -> Delivery {
        match status {
            200..=299 => Delivery::Ok,
            400 | 413 | 415 | 422 | 431 => Delivery::Refused,
            _ => Delivery::Failed,
        }
    }
}

/// Breaker state.
#[derive(Debug, Default, Clone)]
pub struct Breaker {
    failures: u32,
    paused_until: Option<Instant>,
}

impl Breaker {
    /// Whether a delivery may be attempted at `now`.
    pub fn allows(&self, now: Instant) -> bool {
        self.paused_until.is_none_or(|until| now >= until)
    }

    /// Whether the breaker is open at `now`.
    pub fn is_open(&self, now: Instant) -> bool {
        !self.allows(now)
    }

    /// Records a delivery; returns true when this opened (or re-opened) a pause.
    pub fn record(&mut self, outcome: Delivery, now: Instant) -> bool {
        match outcome {
            Delivery::Ok => {
                self.failures = 0;
                self.paused_until = None;
                false
            }
            Delivery::Refused => false,
            Delivery::Failed => {
                self.failures = self.failures.saturating_add(1);
                if self.failures >= THRESHOLD {
                    self.paused_until = Some(now + PAUSE);
                    true
                } else {
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_five_failures_and_closes_on_success() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..4 {
            assert!(!b.record(Delivery::Failed, t0));
        }
        assert!(b.allows(t0));
        assert!(b.record(Delivery::Failed, t0), "the fifth opens it");
        assert!(!b.allows(t0 + Duration::from_secs(29)));
        assert!(b.allows(t0 + PAUSE), "after the pause one delivery may try");
        assert!(
            b.record(Delivery::Failed, t0 + PAUSE),
            "a failed probe pauses again"
        );
        assert!(!b.allows(t0 + PAUSE + Duration::from_secs(1)));
        b.record(Delivery::Ok, t0 + PAUSE * 2);
        assert!(b.allows(t0 + PAUSE * 2));
        assert!(
            !b.record(Delivery::Failed, t0 + PAUSE * 2),
            "the count starts again"
        );
    }

    #[test]
    fn refusals_neither_count_nor_reset() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..4 {
            b.record(Delivery::Failed, t0);
        }
        for _ in 0..10 {
            b.record(Delivery::Refused, t0);
        }
        assert!(
            b.record(Delivery::Failed, t0),
            "the refusals did not reset the count"
        );
        assert_eq!(Delivery::from_status(413), Delivery::Refused);
        assert_eq!(Delivery::from_status(503), Delivery::Failed);
        assert_eq!(Delivery::from_status(204), Delivery::Ok);
    }
}
