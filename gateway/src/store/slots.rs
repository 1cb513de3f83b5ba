//! Stream slots: one row per open stream and scope, each with its own expiry, so the count of a
//! user's open streams is exact across replicas and a slot whose release was lost frees itself.
//! Slots are taken with the rest of a request's rate limits, in one statement ([`Store::rate_admit`]).

use time::OffsetDateTime;

use super::{Store, StoreError};

impl Store {
    /// Frees a slot (a no-op when it is already gone).
    pub async fn free_stream_slot(&self, scope: &str, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM stream_slots WHERE scope = $1 AND id = $2")
            .bind(scope)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes up to `batch` expired slots; returns how many went.
    pub async fn sweep_stream_slots(
        &self,
        now: OffsetDateTime,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM stream_slots WHERE ctid IN (SELECT ctid FROM stream_slots WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(batch)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}

/// One rate limit to check in [`Store::rate_admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateCheck {
    /// Refuse when the tokens counted in this per-minute window reach the limit.
    TokensPerMinute(String, i64),
    /// Count the request in this per-minute window; refuse past the limit.
    RequestsPerMinute(String, i64),
    /// Take a stream slot in this scope when fewer than the limit are live.
    Streams(String, i64),
}

/// What [`Store::rate_admit`] decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RateAdmitted {
    /// The limit that refused (`tokens_per_minute`, `requests_per_minute`, `concurrent_streams`)
    /// and the seconds until it resets; `None` when admitted.
    pub refused: Option<(String, i64)>,
    /// The stream scopes where a slot was taken (also on a refusal, for the caller to free).
    pub taken: Vec<String>,
}

impl Store {
    /// Checks and counts a request's rate limits in one statement (the `rate_admit` function,
    /// migration 0011), in the order given; the first refusal ends the check.
    pub async fn rate_admit(
        &self,
        checks: &[RateCheck],
        slot: &str,
        slot_expires: OffsetDateTime,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> Result<RateAdmitted, StoreError> {
        let (mut keys, mut kinds, mut limits) = (Vec::new(), Vec::new(), Vec::new());
        for c in checks {
            let (key, kind, limit) = match c {
                RateCheck::TokensPerMinute(k, l) => (k, "tpm", l),
                RateCheck::RequestsPerMinute(k, l) => (k, "rpm", l),
                RateCheck::Streams(k, l) => (k, "streams", l),
            };
            keys.push(key.as_str());
            kinds.push(kind);
            limits.push(*limit);
        }
        let (refused, retry_after, taken): (Option<String>, Option<i64>, Vec<String>) =
            sqlx::query_as("SELECT * FROM rate_admit($1, $2, $3, $4, $5, $6, $7)")
                .bind(&keys)
                .bind(&kinds)
                .bind(&limits)
                .bind(slot)
                .bind(slot_expires)
                .bind(now)
                .bind(now + window)
                .fetch_one(self.pool())
                .await?;
        Ok(RateAdmitted {
            refused: refused.map(|r| (r, retry_after.unwrap_or(60))),
            taken,
        })
    }
}
