//! Write requests and their decisions: one pending per developer and project, decided by
//! compare-and-set on the status, lapsing undecided after their own duration.

use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::Row;
use time::OffsetDateTime;

use super::{audit, decode_error};
use crate::aws_access::decide::Grant;
use crate::clock::rfc3339;
use crate::store::{Store, StoreError};

/// The most pending requests one expiry pass turns to `expired`.
const EXPIRE_BATCH: i64 = 1_000;

/// A write request's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantStatus {
    /// Waiting for an approver.
    Pending,
    /// Approved: write until `until`.
    Approved,
    /// Denied.
    Denied,
    /// Approved, then revoked.
    Revoked,
    /// Not decided within its own duration.
    Expired,
}

impl GrantStatus {
    /// Its wire and column name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Pending => "pending",
            GrantStatus::Approved => "approved",
            GrantStatus::Denied => "denied",
            GrantStatus::Revoked => "revoked",
            GrantStatus::Expired => "expired",
        }
    }

    /// The status of that name.
    pub fn parse(s: &str) -> Option<GrantStatus> {
        Some(match s {
            "pending" => GrantStatus::Pending,
            "approved" => GrantStatus::Approved,
            "denied" => GrantStatus::Denied,
            "revoked" => GrantStatus::Revoked,
            "expired" => GrantStatus::Expired,
            _ => return None,
        })
    }
}

/// A write request and its decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// `grt_…`.
    pub id: String,
    /// The project.
    pub project: String,
    /// The requester's subject.
    pub user_sub: String,
    /// The requester's email, when the IdP gave one.
    pub user_email: Option<String>,
    /// Why they ask.
    pub reason: String,
    /// How long write is asked for.
    pub duration_seconds: i32,
    /// Where it stands.
    pub status: GrantStatus,
    /// When it was asked.
    pub requested_at: OffsetDateTime,
    /// The end of the requester's membership window as it stood at the request.
    pub window_until: Option<OffsetDateTime>,
    /// When it was decided (or lapsed).
    pub decided_at: Option<OffsetDateTime>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When approved write ends.
    pub until: Option<OffsetDateTime>,
}

/// A new write request.
#[derive(Debug, Clone)]
pub struct NewGrant {
    /// `grt_…`.
    pub id: String,
    /// The project.
    pub project: String,
    /// The requester's subject.
    pub user_sub: String,
    /// The requester's email.
    pub user_email: Option<String>,
    /// Why they ask.
    pub reason: String,
    /// How long write is asked for.
    pub duration_seconds: i32,
    /// The end of the requester's membership window now.
    pub window_until: Option<OffsetDateTime>,
    /// Where the request came from (for the trail).
    pub client_ip: Option<String>,
}

/// What happened to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// Stored, pending.
    Created(Box<GrantRow>),
    /// The requester already has one pending on the project.
    AlreadyPending,
}

/// A decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Pending to approved, write until then.
    Approve {
        /// When write ends.
        until: OffsetDateTime,
    },
    /// Pending to denied.
    Deny,
    /// Approved to revoked.
    Revoke,
}

impl Decision {
    fn action(self) -> &'static str {
        match self {
            Decision::Approve { .. } => "aws.grant.approved",
            Decision::Deny => "aws.grant.denied",
            Decision::Revoke => "aws.grant.revoked",
        }
    }
}

/// Who decides, for `decided_by` and the trail.
#[derive(Debug, Clone, Copy)]
pub struct Decider<'a> {
    /// `decided_by`: an approver's email, or the admin actor.
    pub by: &'a str,
    /// Where the decision came from.
    pub client_ip: Option<&'a str>,
}

const GRANT_COLUMNS: &str = "id, project, user_sub, user_email, reason, duration_seconds, status, requested_at, window_until, decided_at, decided_by, until";

fn grant_row(r: &PgRow) -> Result<GrantRow, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(GrantRow {
        id: r.try_get("id")?,
        project: r.try_get("project")?,
        user_sub: r.try_get("user_sub")?,
        user_email: r.try_get("user_email")?,
        reason: r.try_get("reason")?,
        duration_seconds: r.try_get("duration_seconds")?,
        status: GrantStatus::parse(&status).ok_or_else(|| decode_error("status", &status))?,
        requested_at: r.try_get("requested_at")?,
        window_until: r.try_get("window_until")?,
        decided_at: r.try_get("decided_at")?,
        decided_by: r.try_get("decided_by")?,
        until: r.try_get("until")?,
    })
}

/// The trail's view of a request: never the reason's text, only its length.
fn grant_json(g: &GrantRow, client_ip: Option<&str>) -> Value {
    json!({"project": g.project, "user": g.user_sub, "email": g.user_email, "duration_seconds": g.duration_seconds, "reason_len": g.reason.chars().count(), "status": g.status.as_str(), "until": g.until.map(rfc3339), "client_ip": client_ip})
}

impl Store {
    /// Turns pending requests older than their own duration to `expired` (audited), and returns
    /// them; each is returned by exactly one caller, however many expire at once.
    pub async fn aws_expire_pending(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<GrantRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "WITH gone AS (
                 UPDATE aws_grants SET status = 'expired', decided_at = $1
                 WHERE id IN (SELECT id FROM aws_grants
                              WHERE status = 'pending'
                                AND requested_at + duration_seconds * interval '1 second' <= $1
                              LIMIT $2 FOR UPDATE SKIP LOCKED)
                   AND status = 'pending'
                 RETURNING {GRANT_COLUMNS}),
             logged AS (
                 INSERT INTO aws_audit (at, actor, action, subject, detail)
                 SELECT $1, 'gateway', 'aws.grant.expired', id,
                        jsonb_build_object('project', project, 'user', user_sub, 'email', user_email,
                                           'duration_seconds', duration_seconds,
                                           'reason_len', char_length(reason), 'status', 'expired')
                 FROM gone)
             SELECT {GRANT_COLUMNS} FROM gone"
        ))
        .bind(now)
        .bind(EXPIRE_BATCH)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(grant_row).collect::<Result<_, _>>()?)
    }

    /// Stores a new pending request (audited), unless the requester already has one pending on
    /// the project (call [`Store::aws_expire_pending`] first, so a lapsed one does not count).
    pub async fn aws_request_grant(
        &self,
        g: &NewGrant,
        now: OffsetDateTime,
    ) -> Result<Requested, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO aws_grants (id, project, user_sub, user_email, reason, duration_seconds, status, requested_at, window_until)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)
             ON CONFLICT (user_sub, project) WHERE status = 'pending' DO NOTHING
             RETURNING {GRANT_COLUMNS}"
        ))
        .bind(&g.id)
        .bind(&g.project)
        .bind(&g.user_sub)
        .bind(&g.user_email)
        .bind(&g.reason)
        .bind(g.duration_seconds)
        .bind(now)
        .bind(g.window_until)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row.as_ref().map(grant_row).transpose()? else {
            return Ok(Requested::AlreadyPending);
        };
        audit(
            &mut tx,
            now,
            &format!("user:{}", row.user_sub),
            "aws.grant.requested",
            &row.id,
            grant_json(&row, g.client_ip.as_deref()),
        )
        .await?;
        tx.commit().await?;
        Ok(Requested::Created(Box::new(row)))
    }

    /// Decides a request (audited) if it still stands where the decision starts from: approve and
    /// deny a pending request within its duration, revoke an approved one. `None`: it does not
    /// (any more); read it to say why.
    pub async fn aws_decide_grant(
        &self,
        id: &str,
        decision: Decision,
        who: Decider<'_>,
        now: OffsetDateTime,
    ) -> Result<Option<GrantRow>, StoreError> {
        let (to, from, until) = match decision {
            Decision::Approve { until } => ("approved", "pending", Some(until)),
            Decision::Deny => ("denied", "pending", None),
            Decision::Revoke => ("revoked", "approved", None),
        };
        let mut tx = self.pool().begin().await?;
        // The status in the WHERE clause is re-read on the locked row: of two deciders racing,
        // the second finds the first's status and changes nothing.
        let row = sqlx::query(&format!(
            "UPDATE aws_grants SET status = $2, decided_at = $4, decided_by = $5,
                    until = CASE WHEN $2 = 'approved' THEN $6
                                 WHEN $2 = 'revoked' THEN LEAST(until, $4)
                                 ELSE until END
             WHERE id = $1 AND status = $3
               AND ($3 <> 'pending' OR requested_at + duration_seconds * interval '1 second' > $4)
             RETURNING {GRANT_COLUMNS}"
        ))
        .bind(id)
        .bind(to)
        .bind(from)
        .bind(now)
        .bind(who.by)
        .bind(until)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row.as_ref().map(grant_row).transpose()? else {
            return Ok(None);
        };
        let mut detail = grant_json(&row, who.client_ip);
        detail["approver"] = json!(who.by);
        audit(&mut tx, now, who.by, decision.action(), &row.id, detail).await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    /// One request.
    pub async fn aws_grant(&self, id: &str) -> Result<Option<GrantRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM aws_grants WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(grant_row).transpose()?)
    }

    /// Requests, newest first, of that status and project when given, at most `limit`.
    pub async fn aws_grants(
        &self,
        status: Option<GrantStatus>,
        project: Option<&str>,
        limit: i64,
    ) -> Result<Vec<GrantRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM aws_grants
             WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR project = $2)
             ORDER BY requested_at DESC, id LIMIT $3"
        ))
        .bind(status.map(GrantStatus::as_str))
        .bind(project)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(grant_row).collect::<Result<_, _>>()?)
    }

    /// A developer's requests made since `since`, newest first, at most `limit`.
    pub async fn aws_user_grants(
        &self,
        user_sub: &str,
        since: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<GrantRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM aws_grants WHERE user_sub = $1 AND requested_at >= $2
             ORDER BY requested_at DESC, id LIMIT $3"
        ))
        .bind(user_sub)
        .bind(since)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(grant_row).collect::<Result<_, _>>()?)
    }

    /// The developer's approved write grant on `project` in force at `now` (the latest-ending).
    pub async fn aws_write_grant(
        &self,
        user_sub: &str,
        project: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query(
            "SELECT id, until FROM aws_grants
             WHERE user_sub = $1 AND project = $2 AND status = 'approved' AND until > $3
             ORDER BY until DESC, id LIMIT 1",
        )
        .bind(user_sub)
        .bind(project)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => Some(Grant {
                id: r.try_get("id")?,
                until: r.try_get("until")?,
            }),
            None => None,
        })
    }
}
