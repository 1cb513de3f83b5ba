//! Agent access in PostgreSQL: members added through the Admin API, write requests and their
//! decisions, and the trail of every change, written in the same transaction as the change.
//! Decisions are compare-and-set on the request's status, so two approvers racing cannot both win.

use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::Row;
use time::OffsetDateTime;

use super::{Store, StoreError};
use crate::aws_access::decide::Grant;
use crate::aws_access::membership::Entry;
use crate::config::aws_access::Level;

/// The most members the Admin API may hold (every credential request reads them all).
pub const MAX_MEMBERS: i64 = 10_000;
/// The most pending requests one expiry pass turns to `expired`.
const EXPIRE_BATCH: i64 = 1_000;

/// A member added through the Admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// `awm_…`.
    pub id: String,
    /// The project.
    pub project: String,
    /// IdP groups it covers.
    pub groups: Vec<String>,
    /// Emails it covers (lowercase).
    pub emails: Vec<String>,
    /// The highest level it gives.
    pub level: Level,
    /// Window start.
    pub from: Option<OffsetDateTime>,
    /// Window end.
    pub until: Option<OffsetDateTime>,
    /// When it was added.
    pub created_at: OffsetDateTime,
    /// Who added it.
    pub created_by: String,
}

impl MemberRow {
    /// The entry membership decisions read.
    pub fn entry(&self) -> Entry {
        Entry {
            project: self.project.clone(),
            groups: self.groups.clone(),
            emails: self.emails.clone(),
            level: self.level,
            from: self.from,
            until: self.until,
        }
    }
}

/// What happened to an added member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Stored.
    Member(MemberRow),
    /// The store already holds [`MAX_MEMBERS`].
    Full,
}

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

const MEMBER_COLUMNS: &str =
    "id, project, groups, emails, level, valid_from, valid_until, created_at, created_by";
const GRANT_COLUMNS: &str = "id, project, user_sub, user_email, reason, duration_seconds, status, requested_at, window_until, decided_at, decided_by, until";

fn decode_error(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {what} {value:?}").into())
}

fn member_row(r: &PgRow) -> Result<MemberRow, sqlx::Error> {
    let level: String = r.try_get("level")?;
    Ok(MemberRow {
        id: r.try_get("id")?,
        project: r.try_get("project")?,
        groups: r.try_get("groups")?,
        emails: r.try_get("emails")?,
        level: match level.as_str() {
            "read" => Level::Read,
            "write" => Level::Write,
            other => return Err(decode_error("level", other)),
        },
        from: r.try_get("valid_from")?,
        until: r.try_get("valid_until")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

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

fn level_str(l: Level) -> &'static str {
    match l {
        Level::Read => "read",
        Level::Write => "write",
    }
}

fn member_json(m: &MemberRow) -> Value {
    json!({"project": m.project, "groups": m.groups, "emails": m.emails, "level": level_str(m.level), "from": m.from.map(ts), "until": m.until.map(ts)})
}

/// The trail's view of a request: never the reason's text, only its length.
fn grant_json(g: &GrantRow, client_ip: Option<&str>) -> Value {
    json!({"project": g.project, "user": g.user_sub, "email": g.user_email, "duration_seconds": g.duration_seconds, "reason_len": g.reason.chars().count(), "status": g.status.as_str(), "until": g.until.map(ts), "client_ip": client_ip})
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn audit(
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
    /// Every Admin API member, as the entries membership decisions read.
    pub async fn aws_member_entries(&self) -> Result<Vec<Entry>, StoreError> {
        Ok(self
            .aws_members(MAX_MEMBERS)
            .await?
            .iter()
            .map(MemberRow::entry)
            .collect())
    }

    /// Admin API members, oldest first, at most `limit`.
    pub async fn aws_members(&self, limit: i64) -> Result<Vec<MemberRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM aws_members ORDER BY created_at, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(member_row).collect::<Result<_, _>>()?)
    }

    /// Adds a member (audited), unless the store already holds [`MAX_MEMBERS`].
    pub async fn aws_add_member(
        &self,
        m: &MemberRow,
        now: OffsetDateTime,
    ) -> Result<Added, StoreError> {
        let mut tx = self.pool().begin().await?;
        // Serializes adds, so the count cannot be passed by adds racing.
        sqlx::query("LOCK TABLE aws_members IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM aws_members")
            .fetch_one(&mut *tx)
            .await?;
        if n >= MAX_MEMBERS {
            return Ok(Added::Full);
        }
        let row = sqlx::query(&format!(
            "INSERT INTO aws_members ({MEMBER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             RETURNING {MEMBER_COLUMNS}"
        ))
        .bind(&m.id)
        .bind(&m.project)
        .bind(&m.groups)
        .bind(&m.emails)
        .bind(level_str(m.level))
        .bind(m.from)
        .bind(m.until)
        .bind(now)
        .bind(&m.created_by)
        .fetch_one(&mut *tx)
        .await?;
        let row = member_row(&row)?;
        audit(
            &mut tx,
            now,
            &row.created_by,
            "aws.member.added",
            &row.id,
            member_json(&row),
        )
        .await?;
        tx.commit().await?;
        Ok(Added::Member(row))
    }

    /// Removes a member (audited); `None` when there was none.
    pub async fn aws_remove_member(
        &self,
        id: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Option<MemberRow>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let gone = sqlx::query(&format!(
            "DELETE FROM aws_members WHERE id = $1 RETURNING {MEMBER_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(gone) = gone.as_ref().map(member_row).transpose()? else {
            return Ok(None);
        };
        audit(
            &mut tx,
            now,
            actor,
            "aws.member.removed",
            &gone.id,
            member_json(&gone),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(gone))
    }

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
                "created_at": ts(r.try_get("at")?),
                "actor": r.try_get::<String, _>("actor")?,
                "action": r.try_get::<String, _>("action")?,
                "subject": r.try_get::<String, _>("subject")?,
                "detail": r.try_get::<Option<Value>, _>("detail")?,
            }));
        }
        Ok(out)
    }
}
