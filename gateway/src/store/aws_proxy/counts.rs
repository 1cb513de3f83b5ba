//! Calls per user and class in fixed windows: one upsert per call counts it and answers the
//! count so far, so every replica sees the same numbers.

use sqlx::Row;
use time::OffsetDateTime;

use crate::store::{Store, StoreError};

impl Store {
    /// Counts one call of `class` by `user_sub` in the window starting at `window_start`, and
    /// answers the window's count with it.
    pub async fn aws_count_call(
        &self,
        user_sub: &str,
        class: &str,
        window_start: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let row = sqlx::query(
            "INSERT INTO aws_call_counts (user_sub, class, window_start, calls) VALUES ($1, $2, $3, 1)
             ON CONFLICT (user_sub, class, window_start)
             DO UPDATE SET calls = aws_call_counts.calls + 1
             RETURNING calls",
        )
        .bind(user_sub)
        .bind(class)
        .bind(window_start)
        .fetch_one(self.pool())
        .await?;
        let calls: i32 = row.try_get("calls")?;
        Ok(u32::try_from(calls).unwrap_or(0))
    }
}
