//! Members added through the Admin API: who may hold which level on a project, and when.

use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::Row;
use time::OffsetDateTime;

use super::{audit, decode_error};
use crate::aws_access::membership::Entry;
use crate::clock::rfc3339;
use crate::config::aws_access::Level;
use crate::store::{Store, StoreError};

/// The most members the Admin API may hold (a credential request reads those naming its
/// developer).
pub const MAX_MEMBERS: i64 = 10_000;

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

const MEMBER_COLUMNS: &str =
    "id, project, groups, emails, level, valid_from, valid_until, created_at, created_by";

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

fn member_json(m: &MemberRow) -> Value {
    json!({"project": m.project, "groups": m.groups, "emails": m.emails, "level": m.level.as_str(), "from": m.from.map(rfc3339), "until": m.until.map(rfc3339)})
}

impl Store {
    /// The Admin API member entries that name a developer (their email, compared lowercase, or
    /// one of their groups), on `project` when given: what a membership decision reads. The
    /// filter runs in the store, so a request costs the entries naming its developer, not every
    /// entry the gateway holds.
    pub async fn aws_member_entries(
        &self,
        project: Option<&str>,
        email: Option<&str>,
        groups: &[String],
    ) -> Result<Vec<Entry>, StoreError> {
        let emails: Vec<String> = email.map(str::to_lowercase).into_iter().collect();
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM aws_members
             WHERE ($1::text IS NULL OR project = $1) AND (emails && $2 OR groups && $3)
             ORDER BY created_at, id LIMIT $4"
        ))
        .bind(project)
        .bind(&emails)
        .bind(groups)
        .bind(MAX_MEMBERS)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| member_row(r).map(|m| m.entry()))
            .collect::<Result<_, _>>()
            .map_err(Into::into)
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
        .bind(m.level.as_str())
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
}
