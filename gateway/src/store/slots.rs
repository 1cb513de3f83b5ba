//! Stream slots: one row per open stream and scope, each with its own expiry, so the count of a
//! user's open streams is exact across replicas and a slot whose release was lost frees itself.

use time::OffsetDateTime;

use super::{Store, StoreError};

impl Store {
    /// Takes a slot `id` in `scope` if fewer than `max` live slots are held there; true when taken.
    /// Admissions to one scope queue on a transaction-scoped advisory lock, so two replicas cannot
    /// both take the last slot.
    pub async fn take_stream_slot(
        &self,
        scope: &str,
        id: &str,
        max: i64,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))")
            .bind(scope)
            .execute(&mut *tx)
            .await?;
        let taken = sqlx::query(
            "INSERT INTO stream_slots (scope, id, expires_at)
             SELECT $1, $2, $3
             WHERE (SELECT count(*) FROM stream_slots WHERE scope = $1 AND expires_at > $4) < $5
             ON CONFLICT (scope, id) DO NOTHING",
        )
        .bind(scope)
        .bind(id)
        .bind(expires_at)
        .bind(now)
        .bind(max)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(taken == 1)
    }

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
