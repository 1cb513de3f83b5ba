//! Agent access in PostgreSQL: members added through the Admin API (`members`), write requests
//! and their decisions (`grants`), and the trail of every change, written in the same
//! transaction as the change (here). Decisions are compare-and-set on the request's status, so
//! two approvers racing cannot both win.

mod grants;
mod members;

pub use grants::{Decider, Decision, GrantRow, GrantStatus, NewGrant, Requested};
pub use members::{Added, MemberRow, MAX_MEMBERS};

use serde_json::{json, Value};
use sqlx::Row;
use time::OffsetDateTime;

use super::{Store, StoreError};
use crate::clock::rfc3339;

pub(super) fn decode_error(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {what} {value:?}").into())
}

pub(super) async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    now: OffsetDateTime,
    actor: &str,
    action: &str,
    subject: &str,
    detail: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO aws_audit (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now)
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Deletes the agent-access trail older than `days`, and write requests decided (approved,
    /// denied, revoked, lapsed) more than `days` ago whose grant, if any, ended as long ago;
    /// pending requests stay. Returns how many rows went.
    pub async fn aws_retention(&self, now: OffsetDateTime, days: u32) -> Result<u64, StoreError> {
        let Some(cutoff) = super::days_before(now, i64::from(days)) else {
            return Ok(0);
        };
        let mut n = sqlx::query("DELETE FROM aws_audit WHERE at < $1")
            .bind(cutoff)
            .execute(self.pool())
            .await?
            .rows_affected();
        n += sqlx::query(
            "DELETE FROM aws_grants WHERE status <> 'pending' AND decided_at < $1
               AND (until IS NULL OR until < $1)",
        )
        .bind(cutoff)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n)
    }

    /// The agent-access trail, newest first, before `before_id` (exclusive), at most `limit`.
    pub async fn aws_audit(
        &self,
        limit: i64,
        before_id: Option<i64>,
    ) -> Result<Vec<Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, subject, detail FROM aws_audit
             WHERE $2::bigint IS NULL OR id < $2 ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .bind(before_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(json!({
                "type": "aws_audit_event",
                "id": r.try_get::<i64, _>("id")?.to_string(),
                "created_at": rfc3339(r.try_get("at")?),
                "actor": r.try_get::<String, _>("actor")?,
                "action": r.try_get::<String, _>("action")?,
                "subject": r.try_get::<String, _>("subject")?,
                "detail": r.try_get::<Option<Value>, _>("detail")?,
            }));
        }
        Ok(out)
    }
}
