//! Percentiles.

use std::time::Duration;

/// p50 and p99 of a sample.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50: Duration,
    pub p99: Duration,
}

impl Summary {
    /// Nearest-rank percentiles.
    pub fn of(sample: &[Duration]) -> Summary {
        let mut v = sample.to_vec();
        v.sort_unstable();
        let at = |p: f64| -> Duration {
            if v.is_empty() {
                return Duration::ZERO;
            }
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[rank - 1]
        };
        Summary {
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// `a - b` in milliseconds with three decimals and a sign (the gateway can be faster than the
/// direct call within the noise).
pub fn signed_ms(a: Duration, b: Duration) -> String {
    format!("{:+.3} ms", added_ms(a, b))
}

/// What `via` adds over `direct`, in milliseconds (negative when it came out faster).
pub fn added_ms(via: Duration, direct: Duration) -> f64 {
    (via.as_secs_f64() - direct.as_secs_f64()) * 1000.0
}
