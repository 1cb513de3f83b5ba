//! The caps as last read, kept for requests. Caps younger than [`FRESH`] are used as they are.
//! Older ones keep serving while one background read replaces them, so that read never sits
//! before a request's first byte. Caps older than [`MAX_AGE`], none at all, or a failed last read
//! make the request wait for the store (and an outage is then handled as configured). An
//! invalidation (an Admin API change on this replica) drops the caps, and a read begun before it
//! is not stored. Time is passed in.

use std::time::{Duration, Instant};

/// Cached caps older than this are read again, in the background.
pub const FRESH: Duration = Duration::from_secs(5);
/// Cached caps older than this are not used.
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// What a request does with the cache.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<T> {
    /// Use these.
    Use(T),
    /// Use these, and start a background read stamped with this generation.
    UseAndRefresh(T, u64),
    /// Read the store now, stamped with this generation.
    Wait(u64),
}

/// The caps as last read, and the state of the read that replaces them.
#[derive(Debug)]
pub struct CapsCache<T> {
    /// When they were read, and what they were.
    read: Option<(Instant, T)>,
    /// Bumped by every invalidation.
    generation: u64,
    /// A background read is under way.
    refreshing: bool,
    /// The last read failed.
    failed: bool,
}

impl<T> Default for CapsCache<T> {
    fn default() -> Self {
        Self {
            read: None,
            generation: 0,
            refreshing: false,
            failed: false,
        }
    }
}

impl<T: Clone> CapsCache<T> {
    /// What a request at `now` uses.
    pub fn lookup(&mut self, now: Instant) -> Lookup<T> {
        let Some((at, caps)) = &self.read else {
            return Lookup::Wait(self.generation);
        };
        let age = now.saturating_duration_since(*at);
        if age < FRESH {
            return Lookup::Use(caps.clone());
        }
        if age >= MAX_AGE || self.failed {
            return Lookup::Wait(self.generation);
        }
        if self.refreshing {
            return Lookup::Use(caps.clone());
        }
        self.refreshing = true;
        Lookup::UseAndRefresh(caps.clone(), self.generation)
    }

    /// A read stamped `generation` answered at `now`: `Some` caps, or `None` when it failed. A read
    /// begun before the last invalidation changes nothing.
    pub fn answered(&mut self, now: Instant, generation: u64, caps: Option<T>) {
        if generation != self.generation {
            return;
        }
        self.refreshing = false;
        match caps {
            Some(caps) => {
                self.read = Some((now, caps));
                self.failed = false;
            }
            None => self.failed = true,
        }
    }

    /// Drops the caps: the next request reads them again.
    pub fn invalidate(&mut self) {
        self.read = None;
        self.generation += 1;
        self.refreshing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_at(t0: Instant, caps: u32) -> CapsCache<u32> {
        let mut c = CapsCache::default();
        assert_eq!(c.lookup(t0), Lookup::Wait(0));
        c.answered(t0, 0, Some(caps));
        c
    }

    #[test]
    fn fresh_caps_are_used_without_a_read() {
        let t0 = Instant::now();
        let mut c = read_at(t0, 7);
        assert_eq!(c.lookup(t0), Lookup::Use(7));
        assert_eq!(
            c.lookup(t0 + FRESH - Duration::from_millis(1)),
            Lookup::Use(7)
        );
    }

    #[test]
    fn stale_caps_keep_serving_while_exactly_one_background_read_runs() {
        let t0 = Instant::now();
        let mut c = read_at(t0, 7);
        let stale = t0 + FRESH;
        assert_eq!(c.lookup(stale), Lookup::UseAndRefresh(7, 0));
        // Requests meanwhile use the old caps and start no second read.
        assert_eq!(c.lookup(stale), Lookup::Use(7));
        assert_eq!(c.lookup(stale + Duration::from_secs(1)), Lookup::Use(7));
        c.answered(stale + Duration::from_secs(1), 0, Some(8));
        assert_eq!(c.lookup(stale + Duration::from_secs(2)), Lookup::Use(8));
    }

    #[test]
    fn caps_past_the_max_age_make_requests_wait() {
        let t0 = Instant::now();
        let mut c = read_at(t0, 7);
        assert_eq!(c.lookup(t0 + MAX_AGE), Lookup::Wait(0));
        // Even while a background read begun earlier is still out.
        let mut c = read_at(t0, 7);
        assert_eq!(c.lookup(t0 + FRESH), Lookup::UseAndRefresh(7, 0));
        assert_eq!(c.lookup(t0 + MAX_AGE), Lookup::Wait(0));
    }

    #[test]
    fn after_a_failed_read_requests_wait_until_one_succeeds() {
        let t0 = Instant::now();
        let mut c = read_at(t0, 7);
        assert_eq!(c.lookup(t0 + FRESH), Lookup::UseAndRefresh(7, 0));
        c.answered(t0 + FRESH, 0, None);
        let later = t0 + FRESH + Duration::from_secs(1);
        assert_eq!(c.lookup(later), Lookup::Wait(0));
        c.answered(later, 0, Some(9));
        assert_eq!(c.lookup(later), Lookup::Use(9));
    }

    #[test]
    fn a_read_begun_before_an_invalidation_is_not_kept() {
        let t0 = Instant::now();
        let mut c = read_at(t0, 7);
        assert_eq!(c.lookup(t0 + FRESH), Lookup::UseAndRefresh(7, 0));
        c.invalidate();
        // The old read answers after the change: its caps are dropped.
        c.answered(t0 + FRESH, 0, Some(7));
        assert_eq!(c.lookup(t0 + FRESH), Lookup::Wait(1));
        c.answered(t0 + FRESH, 1, Some(10));
        assert_eq!(c.lookup(t0 + FRESH), Lookup::Use(10));
        // And a waiting read begun before an invalidation is not kept either.
        c.invalidate();
        assert_eq!(c.lookup(t0 + FRESH), Lookup::Wait(2));
        c.invalidate();
        c.answered(t0 + FRESH, 2, Some(11));
        assert_eq!(c.lookup(t0 + FRESH), Lookup::Wait(3));
    }

    #[test]
    fn an_invalidation_lets_the_next_stale_lookup_start_a_read() {
        let t0 = Instant::now();
        let mut c = read_at(t0, 7);
        assert_eq!(c.lookup(t0 + FRESH), Lookup::UseAndRefresh(7, 0));
        c.invalidate();
        c.answered(t0 + FRESH, 1, Some(8));
        assert_eq!(c.lookup(t0 + FRESH * 2), Lookup::UseAndRefresh(8, 1));
    }
}
