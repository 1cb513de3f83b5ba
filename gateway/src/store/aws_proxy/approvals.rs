//! Single AWS calls held for approval (`aws_call_approvals`): one pending request per call
//! fingerprint (the unique index makes replicas agree on it), decided by compare-and-set on the
//! status, lapsing undecided after `approval.valid_seconds`. Each change is audited in its
//! transaction.

use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::Row;
use time::OffsetDateTime;

use crate::aws_proxy::held::HeldCall;
use crate::clock::rfc3339;
use crate::store::aws_access::{audit, decode_error, Decider};
use crate::store::{Store, StoreError};

/// The most pending requests one expiry pass turns to `expired`.
const EXPIRE_BATCH: i64 = 1_000;
/// How many times asking retries when the pending request it joins is decided in between.
const ASK_ATTEMPTS: usize = 3;

/// A held call's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    /// Waiting for an approver.
    Pending,
    /// Approved: the identical call goes through until `until`.
    Approved,
    /// Denied.
    Denied,
    /// Not decided within `approval.valid_seconds`.
    Expired,
}

impl CallStatus {
    /// Its column name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Pending => "pending",
            CallStatus::Approved => "approved",
            CallStatus::Denied => "denied",
            CallStatus::Expired => "expired",
        }
    }

    /// The status of that name.
    pub fn parse(s: &str) -> Option<CallStatus> {
        Some(match s {
            "pending" => CallStatus::Pending,
            "approved" => CallStatus::Approved,
            "denied" => CallStatus::Denied,
            "expired" => CallStatus::Expired,
            _ => return None,
        })
    }
}

/// A held call's request and its decision.
#[derive(Debug, Clone, PartialEq)]
pub struct CallApprovalRow {
    /// `cap_…`.
    pub id: String,
    /// The call held, as it was asked.
    pub call: HeldCall,
    /// Where it stands.
    pub status: CallStatus,
    /// When it was asked.
    pub requested_at: OffsetDateTime,
    /// When it was decided (or lapsed).
    pub decided_at: Option<OffsetDateTime>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When an approval stops letting the call through.
    pub until: Option<OffsetDateTime>,
}

/// A decision on a held call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDecision {
    /// Pending to approved, for `approval.valid_seconds` from the decision.
    Approve,
    /// Pending to denied.
    Deny,
}

impl CallDecision {
    fn action(self) -> &'static str {
        match self {
            CallDecision::Approve => "aws.call_approval.approved",
            CallDecision::Deny => "aws.call_approval.denied",
        }
    }
}

const COLUMNS: &str = "id, fingerprint, project, user_sub, user_email, service, region, operation, action, params, reasons, status, requested_at, decided_at, decided_by, until";

fn row(r: &PgRow) -> Result<CallApprovalRow, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(CallApprovalRow {
        id: r.try_get("id")?,
        call: HeldCall {
            fingerprint: r.try_get("fingerprint")?,
            project: r.try_get("project")?,
            user_sub: r.try_get("user_sub")?,
            user_email: r.try_get("user_email")?,
            service: r.try_get("service")?,
            region: r.try_get("region")?,
            operation: r.try_get("operation")?,
            action: r.try_get("action")?,
            params: r.try_get("params")?,
            reasons: r.try_get("reasons")?,
        },
        status: CallStatus::parse(&status).ok_or_else(|| decode_error("status", &status))?,
        requested_at: r.try_get("requested_at")?,
        decided_at: r.try_get("decided_at")?,
        decided_by: r.try_get("decided_by")?,
        until: r.try_get("until")?,
    })
}

/// The trail's view of a held call: never its parameters.
fn trail(c: &CallApprovalRow, client_ip: Option<&str>) -> Value {
    json!({"project": c.call.project, "user": c.call.user_sub, "email": c.call.user_email, "service": c.call.service,
           "region": c.call.region, "operation": c.call.operation, "action": c.call.action, "reasons": c.call.reasons,
           "status": c.status.as_str(), "until": c.until.map(rfc3339), "client_ip": client_ip})
}

impl Store {
    /// Turns pending held calls older than `valid_seconds` to `expired` (audited), and returns
    /// them; each is returned by exactly one caller, however many expire at once.
    pub async fn aws_expire_call_approvals(
        &self,
        now: OffsetDateTime,
        valid_seconds: u32,
    ) -> Result<Vec<CallApprovalRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "WITH gone AS (
                 UPDATE aws_call_approvals SET status = 'expired', decided_at = $1
                 WHERE id IN (SELECT id FROM aws_call_approvals
                              WHERE status = 'pending'
                                AND requested_at + $2 * interval '1 second' <= $1
                              LIMIT $3 FOR UPDATE SKIP LOCKED)
                   AND status = 'pending'
                 RETURNING {COLUMNS}),
             logged AS (
                 INSERT INTO aws_audit (at, actor, action, subject, detail)
                 SELECT $1, 'gateway', 'aws.call_approval.expired', id,
                        jsonb_build_object('project', project, 'user', user_sub, 'email', user_email,
                                           'service', service, 'region', region,
                                           'operation', operation, 'action', action,
                                           'status', 'expired')
                 FROM gone)
             SELECT {COLUMNS} FROM gone"
        ))
        .bind(now)
        .bind(f64::from(valid_seconds))
        .bind(EXPIRE_BATCH)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// The pending request for `call`'s fingerprint: a new one with id `id` (audited; `true`),
    /// or the one already pending, whoever asked it on whichever replica (`false`). Call
    /// [`Store::aws_expire_call_approvals`] first, so a lapsed one is not joined.
    pub async fn aws_ask_call(
        &self,
        id: &str,
        call: &HeldCall,
        now: OffsetDateTime,
    ) -> Result<(CallApprovalRow, bool), StoreError> {
        for _ in 0..ASK_ATTEMPTS {
            let mut tx = self.pool().begin().await?;
            // A concurrent insert of the same fingerprint makes this one wait for its commit,
            // then do nothing: the read below finds the other's row.
            let inserted = sqlx::query(&format!(
                "INSERT INTO aws_call_approvals (id, fingerprint, project, user_sub, user_email, service,
                     region, operation, action, params, reasons, status, requested_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12)
                 ON CONFLICT (fingerprint) WHERE status = 'pending' DO NOTHING
                 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(&call.fingerprint)
            .bind(&call.project)
            .bind(&call.user_sub)
            .bind(&call.user_email)
            .bind(&call.service)
            .bind(&call.region)
            .bind(&call.operation)
            .bind(&call.action)
            .bind(&call.params)
            .bind(&call.reasons)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = inserted.as_ref().map(row).transpose()? {
                audit(
                    &mut tx,
                    now,
                    &format!("user:{}", r.call.user_sub),
                    "aws.call_approval.requested",
                    &r.id,
                    trail(&r, None),
                )
                .await?;
                tx.commit().await?;
                return Ok((r, true));
            }
            tx.rollback().await?;
            let pending = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM aws_call_approvals WHERE fingerprint = $1 AND status = 'pending'"
            ))
            .bind(&call.fingerprint)
            .fetch_optional(self.pool())
            .await?;
            if let Some(r) = pending.as_ref().map(row).transpose()? {
                return Ok((r, false));
            }
            // Decided between the two statements: ask again.
        }
        Err(StoreError::Unavailable(sqlx::Error::RowNotFound))
    }

    /// Decides a pending held call (audited) if it is still pending and younger than
    /// `valid_seconds`; an approval lasts `valid_seconds` from `now`. `None`: it is not (any
    /// more); read it to say why. Of two deciders racing, the second changes nothing.
    pub async fn aws_decide_call(
        &self,
        id: &str,
        decision: CallDecision,
        who: Decider<'_>,
        valid_seconds: u32,
        now: OffsetDateTime,
    ) -> Result<Option<CallApprovalRow>, StoreError> {
        let to = match decision {
            CallDecision::Approve => "approved",
            CallDecision::Deny => "denied",
        };
        let mut tx = self.pool().begin().await?;
        let decided = sqlx::query(&format!(
            "UPDATE aws_call_approvals SET status = $2, decided_at = $3, decided_by = $4,
                    until = CASE WHEN $2 = 'approved' THEN $3 + $5 * interval '1 second' END
             WHERE id = $1 AND status = 'pending'
               AND requested_at + $5 * interval '1 second' > $3
             RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(to)
        .bind(now)
        .bind(who.by)
        .bind(f64::from(valid_seconds))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = decided.as_ref().map(row).transpose()? else {
            return Ok(None);
        };
        let mut detail = trail(&r, who.client_ip);
        detail["approver"] = json!(who.by);
        audit(&mut tx, now, who.by, decision.action(), &r.id, detail).await?;
        tx.commit().await?;
        Ok(Some(r))
    }

    /// One held call.
    pub async fn aws_call_approval(&self, id: &str) -> Result<Option<CallApprovalRow>, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM aws_call_approvals WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// The approval in force at `now` for the call `fingerprint` of `user_sub` (the
    /// latest-ending), if any.
    pub async fn aws_call_approved(
        &self,
        fingerprint: &str,
        user_sub: &str,
        now: OffsetDateTime,
    ) -> Result<Option<CallApprovalRow>, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM aws_call_approvals
             WHERE fingerprint = $1 AND user_sub = $2 AND status = 'approved' AND until > $3
             ORDER BY until DESC, id LIMIT 1"
        ))
        .bind(fingerprint)
        .bind(user_sub)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// Deletes held calls decided (or lapsed) more than `days` ago whose approval, if any, ended
    /// as long ago; pending ones stay. Returns how many rows went.
    pub async fn aws_call_approvals_retention(
        &self,
        now: OffsetDateTime,
        days: u32,
    ) -> Result<u64, StoreError> {
        let Some(cutoff) = crate::store::days_before(now, i64::from(days)) else {
            return Ok(0);
        };
        Ok(sqlx::query(
            "DELETE FROM aws_call_approvals WHERE status <> 'pending'
               AND COALESCE(decided_at, requested_at) < $1 AND (until IS NULL OR until < $1)",
        )
        .bind(cutoff)
        .execute(self.pool())
        .await?
        .rows_affected())
    }
}
