//! The caps as last read, kept for requests. Caps younger than [`FRESH`] are used as they are.
//! Older ones keep serving while one background read replaces them; that read is started when a
//! request ends (or is refused), so it never sits between a request and its first byte. Caps
//! older than [`MAX_AGE`], none at all, or a failed last read make the request wait for the store
//! (and an outage is then handled as configured). An invalidation (an Admin API change on this
//! replica) drops the caps, and a read begun before it is not stored; the replica that made the
//! change reads them again before it answers. Time is passed in.

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
    pub fn lookup(&self, now: Instant) -> Lookup<T> {
        match &self.read {
            Some((at, caps)) if !self.failed && now.saturating_duration_since(*at) < MAX_AGE => {
                Lookup::Use(caps.clone())
            }
            _ => Lookup::Wait(self.generation),
        }
    }

    /// Called when a request ends at `now`: the generation to stamp a background read with, when
    /// the caps are stale and no read is under way.
    pub fn refresh_due(&mut self, now: Instant) -> Option<u64> {
        let (at, _) = self.read.as_ref()?;
        if self.refreshing || self.failed || now.saturating_duration_since(*at) < FRESH {
            return None;
        }
        self.refreshing = true;
        Some(self.generation)
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

    /// Drops the caps: the next request reads them again, unless a read stamped with the
    /// generation returned here answers first.
    pub fn invalidate(&mut self) -> u64 {
        self.read = None;
        self.generation += 1;
        self.refreshing = false;
        self.generation
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
        let c = read_at(t0, 7);
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
        // Fresh caps need no read when a request ends.
        assert_eq!(c.refresh_due(t0 + FRESH - Duration::from_millis(1)), None);
        let stale = t0 + FRESH;
        assert_eq!(c.lookup(stale), Lookup::Use(7));
        assert_eq!(c.refresh_due(stale), Some(0));
        // Requests meanwhile use the old caps, and ending ones start no second read.
        assert_eq!(c.lookup(stale + Duration::from_secs(1)), Lookup::Use(7));
        assert_eq!(c.refresh_due(stale + Duration::from_secs(1)), None);
        c.answered(stale + Duration::from_secs(1), 0, Some(8));
        assert_eq!(c.lookup(stale + Duration::from_secs(2)), Lookup::Use(8));
        assert_eq!(c.refresh_due(stale + Duration::from_secs(2)), None);
    }

    #[test]
    fn caps_past_the_max_age_make_requests_wait() {
        let t0 = Instant::now();
        let c = read_at(t0, 7);
        assert_eq!(c.lookup(t0 + MAX_AGE), Lookup::Wait(0));
        // Even while a background read begun earlier is still out.
        let mut c = read_at(t0, 7);
        assert_eq!(c.refresh_due(t0 + FRESH), Some(0));
        assert_eq!(c.lookup(t0 + MAX_AGE), Lookup::Wait(0));
    }

    #[test]
    fn after_a_failed_read_requests_wait_until_one_succeeds() {
        let t0 = Instant::now();
        let mut c = read_at(t0, 7);
        assert_eq!(c.refresh_due(t0 + FRESH), Some(0));
        c.answered(t0 + FRESH, 0, None);
        let later = t0 + FRESH + Duration::from_secs(1);
        assert_eq!(c.lookup(later), Lookup::Wait(0));
        // The waiting request reads; an ending one does not add a background read.
        assert_eq!(c.refresh_due(later), None);
        c.answered(later, 0, Some(9));
        assert_eq!(c.lookup(later), Lookup::Use(9));
    }

    #[test]
    fn a_read_begun_before_an_invalidation_is_not_kept() {
        let t0 = Instant::now();
        let mut c = read_at(t0, 7);
        assert_eq!(c.refresh_due(t0 + FRESH), Some(0));
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
    fn an_invalidation_lets_the_next_ending_request_start_a_read() {
        let t0 = Instant::now();
        let mut c = read_at(t0, 7);
        assert_eq!(c.refresh_due(t0 + FRESH), Some(0));
        c.invalidate();
        c.answered(t0 + FRESH, 1, Some(8));
        assert_eq!(c.refresh_due(t0 + FRESH * 2), Some(1));
    }

    #[test]
    fn a_read_back_stamped_by_the_invalidation_serves_the_next_request() {
        let t0 = Instant::now();
        let mut c = read_at(t0, 7);
        let generation = c.invalidate();
        c.answered(t0, generation, Some(12));
        assert_eq!(c.lookup(t0), Lookup::Use(12));
        // A second change before the read-back answers makes that read-back stale.
        let first = c.invalidate();
        let second = c.invalidate();
        c.answered(t0, first, Some(13));
        assert_eq!(c.lookup(t0), Lookup::Wait(second));
    }
}
