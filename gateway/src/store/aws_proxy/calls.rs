//! `aws_calls`: one row per call through the AWS proxy, written in batches; read newest first
//! through the Admin API (a list without bodies, one call with its body); swept after the
//! retention, together with the proxy's other tables that age.

use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::{QueryBuilder, Row};
use time::OffsetDateTime;

use crate::aws_proxy::record::{masked_json, CallRecord};
use crate::clock::rfc3339;
use crate::store::{Store, StoreError};

/// Rows deleted by one retention statement.
const SWEEP_BATCH: i64 = 10_000;
/// Retention statements per sweep, at most (the rest goes at the next sweep).
const SWEEP_BATCHES: usize = 50;

/// The columns of a list row (everything but the body).
const LIST_COLUMNS: &str = "id, at, session_id, user_sub, user_email, project, level, grant_id,
    service, region, operation, action, class, params, decision, reason, approval_id, approver,
    status, request_bytes, response_bytes, duration_ms, masked, body_truncated, turn_request_id,
    prompt_fingerprint, tool";

/// What a list of calls is narrowed to; `None` is any.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallFilter<'a> {
    /// The developer: their IdP subject or their email.
    pub user: Option<&'a str>,
    /// The project.
    pub project: Option<&'a str>,
    /// The session (the gateway credential's key id).
    pub session_id: Option<&'a str>,
    /// The decision's name (`denied`).
    pub decision: Option<&'a str>,
    /// The model request whose tool call made the calls.
    pub turn_request_id: Option<&'a str>,
    /// Only calls older than this id (the previous page's last).
    pub after_id: Option<i64>,
}

impl Store {
    /// Writes `rows` in one statement; returns how many were written.
    pub async fn aws_insert_calls(&self, rows: &[CallRecord]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut q = QueryBuilder::new(
            "INSERT INTO aws_calls (at, session_id, user_sub, user_email, project, level,
             grant_id, service, region, operation, action, class, params, decision, reason,
             approval_id, approver, status, request_bytes, response_bytes, duration_ms, masked,
             body, body_truncated, turn_request_id, prompt_fingerprint, tool) ",
        );
        q.push_values(rows, |mut b, r| {
            b.push_bind(r.at)
                .push_bind(&r.session_id)
                .push_bind(&r.user_sub)
                .push_bind(&r.user_email)
                .push_bind(&r.project)
                .push_bind(r.level.as_str())
                .push_bind(&r.grant_id)
                .push_bind(&r.service)
                .push_bind(&r.region)
                .push_bind(&r.operation)
                .push_bind(&r.action)
                .push_bind(r.class.as_str())
                .push_bind(&r.params)
                .push_bind(r.decision.as_str())
                .push_bind(&r.reason)
                .push_bind(&r.approval_id)
                .push_bind(&r.approver)
                .push_bind(r.status.map(i32::from))
                .push_bind(i64::try_from(r.request_bytes).unwrap_or(i64::MAX))
                .push_bind(i64::try_from(r.response_bytes).unwrap_or(i64::MAX))
                .push_bind(i32::try_from(r.duration_ms).unwrap_or(i32::MAX))
                .push_bind(masked_json(&r.masked))
                .push_bind(&r.body)
                .push_bind(r.body_truncated)
                .push_bind(&r.turn_request_id)
                .push_bind(&r.prompt_fingerprint)
                .push_bind(&r.tool);
        });
        Ok(q.build().execute(self.pool()).await?.rows_affected())
    }

    /// Calls matching `filter`, newest first, at most `limit`, without their bodies.
    pub async fn aws_calls(
        &self,
        filter: &CallFilter<'_>,
        limit: i64,
    ) -> Result<Vec<Value>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LIST_COLUMNS} FROM aws_calls
             WHERE ($1::text IS NULL OR user_sub = $1 OR lower(user_email) = lower($1))
               AND ($2::text IS NULL OR project = $2)
               AND ($3::text IS NULL OR session_id = $3)
               AND ($4::text IS NULL OR decision = $4)
               AND ($5::bigint IS NULL OR id < $5)
               AND ($6::text IS NULL OR turn_request_id = $6)
             ORDER BY id DESC LIMIT $7"
        ))
        .bind(filter.user)
        .bind(filter.project)
        .bind(filter.session_id)
        .bind(filter.decision)
        .bind(filter.after_id)
        .bind(filter.turn_request_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| call_json(r, false)).collect()
    }

    /// One call, with its body.
    pub async fn aws_call(&self, id: i64) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LIST_COLUMNS}, body FROM aws_calls WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| call_json(&r, true)).transpose()
    }

    /// Deletes recordings and decided call approvals older than `days`, and call counts of
    /// windows that ended more than a window ago (older than two windows of `window_seconds`).
    /// Returns how many rows went.
    pub async fn aws_proxy_retention(
        &self,
        now: OffsetDateTime,
        days: u32,
        window_seconds: u32,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        let two_windows = time::Duration::seconds(2 * i64::from(window_seconds));
        if let Some(before) = now.checked_sub(two_windows) {
            n += sqlx::query("DELETE FROM aws_call_counts WHERE window_start < $1")
                .bind(before)
                .execute(self.pool())
                .await?
                .rows_affected();
        }
        let Some(cutoff) = super::super::days_before(now, i64::from(days)) else {
            return Ok(n);
        };
        for _ in 0..SWEEP_BATCHES {
            let gone = sqlx::query(
                "DELETE FROM aws_calls WHERE id IN
                   (SELECT id FROM aws_calls WHERE at < $1 ORDER BY at LIMIT $2)",
            )
            .bind(cutoff)
            .bind(SWEEP_BATCH)
            .execute(self.pool())
            .await?
            .rows_affected();
            n += gone;
            if gone < SWEEP_BATCH as u64 {
                break;
            }
        }
        n += self.aws_call_approvals_retention(now, days).await?;
        Ok(n)
    }
}

/// A row as the Admin API shows it.
fn call_json(r: &PgRow, with_body: bool) -> Result<Value, StoreError> {
    let mut v = json!({
        "type": "aws_call",
        "id": r.try_get::<i64, _>("id")?.to_string(),
        "at": rfc3339(r.try_get("at")?),
        "session_id": r.try_get::<String, _>("session_id")?,
        "user": {"sub": r.try_get::<String, _>("user_sub")?, "email": r.try_get::<Option<String>, _>("user_email")?},
        "project": r.try_get::<String, _>("project")?,
        "level": r.try_get::<String, _>("level")?,
        "grant_id": r.try_get::<Option<String>, _>("grant_id")?,
        "service": r.try_get::<String, _>("service")?,
        "region": r.try_get::<String, _>("region")?,
        "operation": r.try_get::<Option<String>, _>("operation")?,
        "action": r.try_get::<Option<String>, _>("action")?,
        "class": r.try_get::<String, _>("class")?,
        "params": r.try_get::<Value, _>("params")?,
        "decision": r.try_get::<String, _>("decision")?,
        "reason": r.try_get::<Option<String>, _>("reason")?,
        "approval_id": r.try_get::<Option<String>, _>("approval_id")?,
        "approver": r.try_get::<Option<String>, _>("approver")?,
        "status": r.try_get::<Option<i32>, _>("status")?,
        "request_bytes": r.try_get::<i64, _>("request_bytes")?,
        "response_bytes": r.try_get::<i64, _>("response_bytes")?,
        "duration_ms": r.try_get::<i32, _>("duration_ms")?,
        "masked": r.try_get::<Value, _>("masked")?,
        "body_truncated": r.try_get::<bool, _>("body_truncated")?,
        "turn_request_id": r.try_get::<Option<String>, _>("turn_request_id")?,
        "prompt_fingerprint": r.try_get::<Option<String>, _>("prompt_fingerprint")?,
        "tool": r.try_get::<Option<String>, _>("tool")?,
    });
    if with_body {
        v["body"] = Value::from(r.try_get::<Option<String>, _>("body")?);
    }
    Ok(v)
}
