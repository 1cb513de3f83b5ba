//! A cap on the work one body may cost: every scan spends from it, and a body that would
//! exhaust it is unmaskable rather than slow.

use super::Unmaskable;

/// Work units allowed per byte of body, on top of [`BASE`]. A scan of `n` bytes costs `n`; a
/// body is scanned a few times at most (a walker's pass, up to [`super::text::MAX_ROUNDS`] text
/// rounds on a value that keeps changing), and each key costs up to one unit per configured
/// path plus the length of the paths it may match (at most 64 + 64 × 16 with every path ending
/// in `*`, which only bodies of many one-letter keys under the maximum of paths come near).
const PER_BYTE: u64 = 64;
/// Work units every body may spend however short it is.
const BASE: u64 = 64 * 1024;

/// The work left for one body.
#[derive(Debug)]
pub(crate) struct Budget {
    left: u64,
}

impl Budget {
    /// The budget of a body of `len` bytes.
    pub(crate) fn for_body(len: usize) -> Self {
        Budget {
            left: BASE.saturating_add(PER_BYTE.saturating_mul(len as u64)),
        }
    }

    /// Spends `units`, or reports that the body costs more than it may.
    pub(crate) fn spend(&mut self, units: usize) -> Result<(), Unmaskable> {
        let units = units as u64;
        if units > self.left {
            self.left = 0;
            return Err(Unmaskable::TooMuchWork);
        }
        self.left -= units;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_past_the_cap_is_refused_and_stays_refused() {
        let mut budget = Budget::for_body(0);
        assert!(budget.spend(BASE as usize).is_ok());
        assert_eq!(budget.spend(1), Err(Unmaskable::TooMuchWork));
        assert_eq!(budget.spend(0), Ok(()));
        assert_eq!(budget.spend(1), Err(Unmaskable::TooMuchWork));
    }

    #[test]
    fn the_cap_grows_with_the_body() {
        let mut budget = Budget::for_body(1000);
        assert!(budget.spend(BASE as usize + 64 * 1000).is_ok());
        assert!(budget.spend(1).is_err());
    }
}
