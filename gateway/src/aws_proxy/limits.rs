//! The tiered rate limits' counters: fixed windows per user and call class, counted in
//! PostgreSQL so every replica shares them. The window a time falls in is pure; the count is one
//! statement per call.

use time::OffsetDateTime;

use super::operation::Class;
use crate::store::{Store, StoreError};

/// The start of the `window_seconds` window that holds `now` (windows start on multiples of
/// their length since the Unix epoch).
pub fn window_start(now: OffsetDateTime, window_seconds: u32) -> OffsetDateTime {
    let w = i64::from(window_seconds.max(1));
    let t = now.unix_timestamp();
    OffsetDateTime::from_unix_timestamp(t - t.rem_euclid(w)).unwrap_or(now)
}

/// Counts a call of `class` by `user` at `now`; the calls of that class in the window so far,
/// this one included.
pub async fn count(
    store: &Store,
    user: &str,
    class: Class,
    now: OffsetDateTime,
    window_seconds: u32,
) -> Result<u32, StoreError> {
    store
        .aws_count_call(user, class.as_str(), window_start(now, window_seconds))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn windows_are_fixed_and_aligned() {
        let w = window_start(datetime!(2026-12-06 10:07:31 UTC), 300);
        assert_eq!(w, datetime!(2026-12-06 10:05:00 UTC));
        assert_eq!(window_start(datetime!(2026-12-06 10:05:00 UTC), 300), w);
        assert_eq!(
            window_start(datetime!(2026-12-06 10:09:59 UTC), 300),
            datetime!(2026-12-06 10:05:00 UTC)
        );
        assert_eq!(
            window_start(datetime!(2026-12-06 10:10:00 UTC), 300),
            datetime!(2026-12-06 10:10:00 UTC)
        );
    }
}
