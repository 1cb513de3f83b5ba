//! The `kv` table: short-lived values with an expiry (device grants, user-code pointers) and
//! fixed-window counters (rate limits). Readers treat an expired row as absent, so a slow sweeper
//! never revives anything.

use time::OffsetDateTime;

use super::{Store, StoreError};

impl Store {
    /// The value under `key`, unless it has expired at `now`.
    pub async fn kv_get(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM kv WHERE key = $1 AND expires_at > $2")
                .bind(key)
                .bind(now)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|r| r.0))
    }

    /// Stores `value` under `key` until `expires_at`, replacing any earlier value.
    pub async fn kv_put(
        &self,
        key: &str,
        value: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kv (key, value, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at",
        )
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Stores `value` only if no live value is under `key`; true when stored.
    pub async fn kv_put_new(
        &self,
        key: &str,
        value: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO kv (key, value, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
             WHERE kv.expires_at <= $4",
        )
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces the live value under `key` with `value` only if it is still `expected` (a
    /// compare-and-swap in one statement); true when replaced. Of two callers that read the same
    /// value and both try to change it, exactly one wins.
    pub async fn kv_replace(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE kv SET value = $3, expires_at = $4
             WHERE key = $1 AND value = $2 AND expires_at > $5",
        )
        .bind(key)
        .bind(expected)
        .bind(value)
        .bind(expires_at)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes `key` and returns its live value: a single-use read that two callers cannot both win.
    pub async fn kv_take(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String, OffsetDateTime)> =
            sqlx::query_as("DELETE FROM kv WHERE key = $1 RETURNING value, expires_at")
                .bind(key)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(v, exp)| (exp > now).then_some(v)))
    }

    /// The live value under `key`, its expiry moved to `expires_at` in the same statement (a
    /// sliding expiry); none when absent or expired at `now`.
    pub async fn kv_touch(
        &self,
        key: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE kv SET expires_at = $3 WHERE key = $1 AND expires_at > $2 RETURNING value",
        )
        .bind(key)
        .bind(now)
        .bind(expires_at)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Deletes `key`.
    pub async fn kv_delete(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM kv WHERE key = $1")
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Counts one hit in the fixed window under `key` and returns the count so far. The window
    /// starts at the first hit and lasts `window`; a hit after it starts a new window at 1.
    pub async fn kv_incr(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let (count,): (String,) = sqlx::query_as(
            "INSERT INTO kv (key, value, expires_at) VALUES ($1, '1', $2)
             ON CONFLICT (key) DO UPDATE SET
               value = CASE WHEN kv.expires_at <= $3 THEN '1'
                            ELSE (kv.value::bigint + 1)::text END,
               expires_at = CASE WHEN kv.expires_at <= $3 THEN EXCLUDED.expires_at
                                 ELSE kv.expires_at END
             RETURNING value",
        )
        .bind(key)
        .bind(now + window)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(count.parse().unwrap_or(i64::MAX))
    }

    /// Adds `n` to the fixed window under `key` (window starts at the first hit) and returns the
    /// total after the addition.
    pub async fn kv_window_add(
        &self,
        key: &str,
        n: i64,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let (count,): (String,) = sqlx::query_as(
            "INSERT INTO kv (key, value, expires_at) VALUES ($1, $4::text, $2)
             ON CONFLICT (key) DO UPDATE SET
               value = CASE WHEN kv.expires_at <= $3 THEN $4 ELSE kv.value::bigint + $4 END::text,
               expires_at = CASE WHEN kv.expires_at <= $3 THEN EXCLUDED.expires_at ELSE kv.expires_at END
             RETURNING value",
        )
        .bind(key)
        .bind(now + window)
        .bind(now)
        .bind(n)
        .fetch_one(self.pool())
        .await?;
        Ok(count.parse().unwrap_or(i64::MAX))
    }

    /// Deletes up to `batch` expired rows; returns how many went.
    pub async fn kv_sweep(&self, now: OffsetDateTime, batch: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM kv WHERE ctid IN (SELECT ctid FROM kv WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(batch)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
