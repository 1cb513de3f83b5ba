//! Spend in PostgreSQL: caps, the atomic reservation that admits a request only if its worst case
//! fits under every cap, settlement to the actual cost, expiry of abandoned reservations, and the
//! cost rows finance reads. Amounts are micro-dollars (caps in cents × 10,000).

use std::collections::HashMap;

use sqlx::Row;
use time::OffsetDateTime;

use super::{Store, StoreError};

/// A principal's last-seen identity: email, name, groups.
pub type Seen = (Option<String>, Option<String>, Vec<String>);

/// Micro-dollars per cent.
pub const MICROS_PER_CENT: i64 = 10_000;

/// A cap row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRow {
    /// `spl_…`.
    pub id: String,
    /// `user`, `rbac_group` or `organization`.
    pub scope_type: String,
    /// The user or group ('' for the organization).
    pub scope_id: String,
    /// Cents; `None` unlimited.
    pub amount_cents: Option<i64>,
    /// `daily`, `weekly` or `monthly`.
    pub period: String,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Updated.
    pub updated_at: OffsetDateTime,
}

/// One bucket to reserve in, with its cap (micro-dollars; `None` = uncapped).
#[derive(Debug, Clone)]
pub struct BucketCap {
    /// The bucket key.
    pub bucket: String,
    /// The cap.
    pub cap_micros: Option<i64>,
}

/// A bucket's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Metered.
    pub settled: i64,
    /// Admitted, not yet settled.
    pub reserved: i64,
}

/// A request's metered cost, to be written once: its reservation released, its buckets charged,
/// and its finance row added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// `stl_…`: the key that makes a retried settlement a no-op.
    pub id: String,
    /// The reservation to release, when one was made.
    pub reservation: Option<String>,
    /// Whose spend.
    pub principal: String,
    /// The period buckets to charge.
    pub buckets: Vec<String>,
    /// Micro-dollars.
    pub cost: i64,
    /// The finance row; `None` for a release that served nothing.
    pub ledger: Option<Ledger>,
}

/// Finance's view of a settled request: the day it was admitted, the model, and who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    /// The UTC day the request was admitted.
    pub day: time::Date,
    /// The model the client asked for.
    pub model: String,
    /// Email, as last seen.
    pub email: Option<String>,
    /// Display name, as last seen.
    pub name: Option<String>,
    /// Groups, as last seen.
    pub groups: Vec<String>,
    /// When the request ended.
    pub at: OffsetDateTime,
}

/// What a reservation attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Admitted; the totals of each bucket before this request, in the order given.
    Admitted(Vec<Totals>),
    /// Refused: these buckets would cross their caps.
    Over(Vec<String>),
}

fn row_to_limit(r: &sqlx::postgres::PgRow) -> Result<LimitRow, sqlx::Error> {
    Ok(LimitRow {
        id: r.try_get("id")?,
        scope_type: r.try_get("scope_type")?,
        scope_id: r.try_get("scope_id")?,
        amount_cents: r.try_get("amount_cents")?,
        period: r.try_get("period")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const LIMIT_COLUMNS: &str =
    "id, scope_type, scope_id, amount_cents, period, created_at, updated_at";

impl Store {
    /// Every cap.
    pub async fn limits(&self) -> Result<Vec<LimitRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LIMIT_COLUMNS} FROM spend_limits ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row_to_limit).collect::<Result<_, _>>()?)
    }

    /// One cap.
    pub async fn limit(&self, id: &str) -> Result<Option<LimitRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LIMIT_COLUMNS} FROM spend_limits WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(row_to_limit).transpose()?)
    }

    /// Creates or replaces the cap for (scope, period), auditing before and after in the same
    /// transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn upsert_limit(
        &self,
        new_id: &str,
        scope_type: &str,
        scope_id: &str,
        amount_cents: Option<i64>,
        period: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<LimitRow, StoreError> {
        let mut tx = self.pool().begin().await?;
        let before = sqlx::query(&format!(
            "SELECT {LIMIT_COLUMNS} FROM spend_limits WHERE scope_type = $1 AND scope_id = $2 AND period = $3 FOR UPDATE"
        ))
        .bind(scope_type)
        .bind(scope_id)
        .bind(period)
        .fetch_optional(&mut *tx)
        .await?;
        let before = before.as_ref().map(row_to_limit).transpose()?;
        let row = sqlx::query(&format!(
            "INSERT INTO spend_limits (id, scope_type, scope_id, amount_cents, period, created_at, updated_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
             ON CONFLICT (scope_type, scope_id, period) DO UPDATE SET amount_cents = EXCLUDED.amount_cents, updated_at = EXCLUDED.updated_at
             RETURNING {LIMIT_COLUMNS}"
        ))
        .bind(new_id)
        .bind(scope_type)
        .bind(scope_id)
        .bind(amount_cents)
        .bind(period)
        .bind(now)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        let after = row_to_limit(&row)?;
        audit(
            &mut tx,
            now,
            actor,
            "spend_limit.upsert",
            &after.id,
            before.as_ref(),
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Deletes a cap (audited); false when there was none.
    pub async fn delete_limit(
        &self,
        id: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let gone = sqlx::query(&format!(
            "DELETE FROM spend_limits WHERE id = $1 RETURNING {LIMIT_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(gone) = gone.as_ref().map(row_to_limit).transpose()? else {
            return Ok(false);
        };
        audit(
            &mut tx,
            now,
            actor,
            "spend_limit.delete",
            id,
            Some(&gone),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The admin audit trail, newest first, after `after_id` (exclusive).
    pub async fn admin_audit(
        &self,
        limit: i64,
        after_id: Option<i64>,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target_id, before, after FROM admin_audit
             WHERE $2::bigint IS NULL OR id < $2 ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .bind(after_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let at: OffsetDateTime = r.try_get("at")?;
            out.push(serde_json::json!({
                "type": "audit_event",
                "id": r.try_get::<i64, _>("id")?.to_string(),
                "created_at": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "actor": r.try_get::<String, _>("actor")?,
                "action": r.try_get::<String, _>("action")?,
                "target_id": r.try_get::<String, _>("target_id")?,
                "before": r.try_get::<Option<serde_json::Value>, _>("before")?,
                "after": r.try_get::<Option<serde_json::Value>, _>("after")?,
            }));
        }
        Ok(out)
    }

    /// Admits a request: one statement checks every bucket's row, locked, and reserves `amount`
    /// in all of them only if `settled + reserved + amount` stays under each cap (so concurrent
    /// admissions cannot both squeeze in); if any bucket fails, nothing is reserved. This is a
    /// lease sized to one request (see [`Store::grow_lease`]).
    pub async fn reserve(
        &self,
        reservation_id: &str,
        principal: &str,
        buckets: &[BucketCap],
        amount: i64,
        expires_at: OffsetDateTime,
    ) -> Result<Reserved, StoreError> {
        let grown = self
            .grow_lease(&super::leases::Grow {
                lease: reservation_id,
                principal,
                buckets,
                need: amount,
                want: amount,
                expires: expires_at,
                existing: false,
            })
            .await?;
        Ok(match grown {
            super::leases::Grown::Granted { others, .. } => Reserved::Admitted(others),
            super::leases::Grown::Over(over) => Reserved::Over(over),
            super::leases::Grown::Lost => Reserved::Over(Vec::new()),
        })
    }

    /// Settles a request at its actual cost: its reservation (if still open) is released, the
    /// cost added to every bucket, and the finance row written, all once and in one transaction.
    /// Without a reservation (uncapped, or already expired) only the cost is added. This is a
    /// batch of one (see [`Store::settle_batch`]).
    pub async fn settle(&self, s: &Settlement) -> Result<(), StoreError> {
        let returns = s.reservation.iter().map(|id| super::leases::Return {
            lease: id.clone(),
            principal: s.principal.clone(),
            buckets: s.buckets.clone(),
        });
        self.settle_batch(&super::leases::Batch {
            id: s.id.clone(),
            charges: vec![super::leases::Charge {
                principal: s.principal.clone(),
                buckets: s.buckets.clone(),
                lease: s.reservation.clone(),
                cost: s.cost,
                ledger: s.ledger.clone(),
            }],
            returns: returns.collect(),
            renew_until: OffsetDateTime::UNIX_EPOCH,
        })
        .await
    }

    /// Releases reservations that expired before `now` (their gateway died); returns how many.
    pub async fn expire_reservations(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT 1 FROM spend WHERE (principal, bucket) IN (SELECT principal, unnest(buckets) FROM reservations WHERE expires_at <= $1) ORDER BY principal, bucket FOR UPDATE")
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let n = sqlx::query(
            "WITH gone AS (
                 DELETE FROM reservations WHERE id IN (SELECT id FROM reservations WHERE expires_at <= $1 LIMIT 1000)
                 RETURNING principal, buckets, amount_micros
             ), per_bucket AS (
                 SELECT principal, unnest(buckets) AS bucket, amount_micros FROM gone
             ), summed AS (
                 SELECT principal, bucket, sum(amount_micros)::bigint AS amount FROM per_bucket GROUP BY principal, bucket
             )
             UPDATE spend s SET reserved_micros = GREATEST(s.reserved_micros - summed.amount, 0)
             FROM summed WHERE s.principal = summed.principal AND s.bucket = summed.bucket",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// A principal's settled and reserved micro-dollars in each of `buckets`, in that order
    /// (zero where it has no row).
    pub async fn totals(
        &self,
        principal: &str,
        buckets: &[String],
    ) -> Result<Vec<Totals>, StoreError> {
        let mut all = self
            .totals_of(std::slice::from_ref(&principal.to_owned()), buckets)
            .await?;
        Ok(all
            .remove(principal)
            .unwrap_or_else(|| vec![Totals::default(); buckets.len()]))
    }

    /// [`Store::totals`] for each of `principals`, in one statement.
    pub async fn totals_of(
        &self,
        principals: &[String],
        buckets: &[String],
    ) -> Result<HashMap<String, Vec<Totals>>, StoreError> {
        let rows = sqlx::query(
            "SELECT principal, bucket, settled_micros, reserved_micros FROM spend
             WHERE principal = ANY($1) AND bucket = ANY($2)",
        )
        .bind(principals)
        .bind(buckets)
        .fetch_all(self.pool())
        .await?;
        let mut out: HashMap<String, Vec<Totals>> = principals
            .iter()
            .map(|p| (p.clone(), vec![Totals::default(); buckets.len()]))
            .collect();
        for r in rows {
            let principal: String = r.try_get("principal")?;
            let bucket: String = r.try_get("bucket")?;
            let slot = buckets
                .iter()
                .position(|b| *b == bucket)
                .and_then(|i| out.get_mut(&principal)?.get_mut(i));
            if let Some(slot) = slot {
                *slot = Totals {
                    settled: r.try_get("settled_micros")?,
                    reserved: r.try_get("reserved_micros")?,
                };
            }
        }
        Ok(out)
    }

    /// Adds a request's cost to finance's daily rows, and records the principal's identity.
    pub async fn record_cost(
        &self,
        principal: &str,
        ledger: &Ledger,
        cost: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let charge = super::leases::Charge {
            principal: principal.to_owned(),
            buckets: Vec::new(),
            lease: None,
            cost,
            ledger: Some(ledger.clone()),
        };
        super::leases::finance_rows(&mut tx, std::slice::from_ref(&charge)).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Runs a transaction again when PostgreSQL chose it as a deadlock victim (it was rolled back
/// whole, so running it again is safe).
pub(super) async fn retry_deadlock<T, F, Fut>(mut f: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        match f().await {
            Err(StoreError::Unavailable(sqlx::Error::Database(e)))
                if e.code().as_deref() == Some("40P01") && tries < 3 =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

impl Store {
    /// Principals with spend in any of `buckets`, most spent first.
    pub async fn principals_with_spend(
        &self,
        buckets: &[String],
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT principal FROM spend WHERE bucket = ANY($1) AND settled_micros > 0
             GROUP BY principal ORDER BY max(settled_micros) DESC, principal LIMIT $2",
        )
        .bind(buckets)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Records a principal's identity as last seen.
    pub async fn touch_principal(
        &self,
        sub: &str,
        email: Option<&str>,
        name: Option<&str>,
        groups: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO principals (principal, email, name, groups, last_seen) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (principal) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, groups = EXCLUDED.groups, last_seen = EXCLUDED.last_seen",
        )
        .bind(sub)
        .bind(email)
        .bind(name)
        .bind(groups)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Daily cost rows in `[from, to)`, grouped by `by` (`actor`, `rbac_group_id` or `model`),
    /// as (day, key, micro-dollars, requests), ordered by day then key.
    pub async fn cost_by_day(
        &self,
        from: time::Date,
        to: time::Date,
        by: &str,
    ) -> Result<Vec<(time::Date, String, i64, i64)>, StoreError> {
        let key = match by {
            "actor" => "principal",
            "rbac_group_id" => "g",
            "model" => "model",
            _ => "''",
        };
        let source = if by == "rbac_group_id" {
            "(SELECT day, unnest(CASE WHEN cardinality(groups) = 0 THEN ARRAY[''] ELSE groups END) AS g, principal, model, cost_micros, requests FROM cost_daily WHERE day >= $1 AND day < $2) c"
        } else {
            "(SELECT * FROM cost_daily WHERE day >= $1 AND day < $2) c"
        };
        let sql = format!(
            "SELECT day, {key}::text AS k, sum(cost_micros)::bigint AS cost, sum(requests)::bigint AS requests FROM {source} GROUP BY day, k ORDER BY day, k"
        );
        let rows = sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((
                r.try_get("day")?,
                r.try_get("k")?,
                r.try_get("cost")?,
                r.try_get("requests")?,
            ));
        }
        Ok(out)
    }

    /// Deletes spend and cost rows, admin audit rows and identities past their retention; returns
    /// how many rows went. A window reaching before the earliest representable time keeps all.
    pub async fn retention(
        &self,
        now: OffsetDateTime,
        spend_months: u32,
        audit_days: u32,
        identity_days: u32,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        if let Some(spend_cutoff) = super::days_before(now, 31 * i64::from(spend_months)) {
            n += sqlx::query("DELETE FROM spend WHERE updated_at < $1 AND reserved_micros = 0")
                .bind(spend_cutoff)
                .execute(self.pool())
                .await?
                .rows_affected();
            n += sqlx::query("DELETE FROM cost_daily WHERE day < $1")
                .bind(spend_cutoff.date())
                .execute(self.pool())
                .await?
                .rows_affected();
        }
        if let Some(cutoff) = super::days_before(now, i64::from(audit_days)) {
            n += sqlx::query("DELETE FROM admin_audit WHERE at < $1")
                .bind(cutoff)
                .execute(self.pool())
                .await?
                .rows_affected();
        }
        n += sqlx::query("DELETE FROM settlements WHERE at < $1")
            .bind(now - time::Duration::days(3))
            .execute(self.pool())
            .await?
            .rows_affected();
        if let Some(cutoff) = super::days_before(now, i64::from(identity_days)) {
            n += sqlx::query("DELETE FROM principals WHERE last_seen < $1")
                .bind(cutoff)
                .execute(self.pool())
                .await?
                .rows_affected();
        }
        Ok(n)
    }

    /// A principal's last-seen identity.
    pub async fn principal(&self, sub: &str) -> Result<Option<Seen>, StoreError> {
        let mut one = self
            .identities(std::slice::from_ref(&sub.to_owned()))
            .await?;
        Ok(one.remove(sub))
    }

    /// The last-seen identity (email, name, groups) of each of `subs` that has one, in one
    /// statement.
    pub async fn identities(&self, subs: &[String]) -> Result<HashMap<String, Seen>, StoreError> {
        let rows = sqlx::query(
            "SELECT principal, email, name, groups FROM principals WHERE principal = ANY($1)",
        )
        .bind(subs)
        .fetch_all(self.pool())
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            out.insert(
                r.try_get("principal")?,
                (
                    r.try_get("email")?,
                    r.try_get("name")?,
                    r.try_get("groups")?,
                ),
            );
        }
        Ok(out)
    }
}

async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    now: OffsetDateTime,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<&LimitRow>,
    after: Option<&LimitRow>,
) -> Result<(), sqlx::Error> {
    let j = |l: Option<&LimitRow>| {
        l.map(|l| serde_json::json!({"id": l.id, "scope_type": l.scope_type, "scope_id": l.scope_id, "amount_cents": l.amount_cents, "period": l.period}))
    };
    sqlx::query("INSERT INTO admin_audit (at, actor, action, target_id, before, after) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(now)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(j(before))
        .bind(j(after))
        .execute(&mut **tx)
        .await?;
    Ok(())
}
