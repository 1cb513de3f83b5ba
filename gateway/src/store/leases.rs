//! Spend leases and batched settlement. A replica grows its lease on a principal's budget with one
//! statement (the `spend_lease` function, migration 0010) and admits requests against it without a
//! round trip; what those requests cost is written later, many requests to one transaction, and
//! an idle lease is given back in the same way.

use std::collections::BTreeMap;
use std::sync::Mutex;

use sqlx::postgres::PgRow;
use sqlx::Row;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::lane::Turn;
use super::spend::{BucketCap, Ledger, Totals};
use super::{Store, StoreError};

/// A request to grow (or open) a lease.
#[derive(Debug, Clone)]
pub struct Grow<'a> {
    /// The lease (`lse_…`).
    pub lease: &'a str,
    /// Whose budget.
    pub principal: &'a str,
    /// The period buckets and their caps.
    pub buckets: &'a [BucketCap],
    /// Grant at least this much or nothing.
    pub need: i64,
    /// Grant up to this much (at most a quarter of the headroom beyond `need`).
    pub want: i64,
    /// When the lease lapses unless grown or settled against again.
    pub expires: OffsetDateTime,
    /// Whether the lease row is believed to exist already.
    pub existing: bool,
}

/// What growing a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grown {
    /// Granted `give` more; each bucket's totals before it, without this lease's amount.
    Granted {
        /// Micro-dollars added to the lease.
        give: i64,
        /// The lease's amount after the grant.
        amount: i64,
        /// Per bucket, in the order asked: settled, and reserved by others.
        others: Vec<Totals>,
    },
    /// Refused: these buckets would cross their caps.
    Over(Vec<String>),
    /// The lease row is gone (it expired): nothing was granted.
    Lost,
}

/// One request's cost, to be settled in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Whose spend.
    pub principal: String,
    /// The period buckets to charge.
    pub buckets: Vec<String>,
    /// The lease the request was admitted against, whose amount turns into settled spend.
    pub lease: Option<String>,
    /// Micro-dollars.
    pub cost: i64,
    /// The finance row; `None` for a request nothing served.
    pub ledger: Option<Ledger>,
}

/// A lease given back: what is left of it returns to the principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Return {
    /// The lease.
    pub lease: String,
    /// Whose budget.
    pub principal: String,
    /// Its buckets.
    pub buckets: Vec<String>,
}

/// Charges and returns written together, once: the id makes a retried batch a no-op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `stb_…`.
    pub id: String,
    /// Requests' costs.
    pub charges: Vec<Charge>,
    /// Leases given back (after the charges against them).
    pub returns: Vec<Return>,
    /// Leases charged here stay open at least until then.
    pub renew_until: OffsetDateTime,
}

/// One lease grow, run on the store's lease lane.
pub(super) const GROW_SQL: &str =
    "SELECT bucket, settled, reserved, over, granted, lease_amount, lost
     FROM spend_lease($1, $2, $3, $4, $5, $6, $7, $8)";

/// Several lease grows in one statement, principals in order (the order every spend statement
/// locks in); each grow's buckets are its slice `lo..=hi` of the flattened keys and caps. One row
/// per grow and bucket, by grow (`ask`, from 1) and then in the order of its buckets.
pub(super) const GROW_MANY_SQL: &str =
    "SELECT a.n AS ask, r.bucket, r.settled, r.reserved, r.over, r.granted, r.lease_amount, r.lost
     FROM unnest($1::text[], $2::text[], $3::int4[], $4::int4[], $5::int8[], $6::int8[],
                 $7::timestamptz[], $8::bool[])
          WITH ORDINALITY AS a(lease, who, lo, hi, need, want, expires, existing, n)
     CROSS JOIN LATERAL spend_lease(a.lease, a.who, ($9::text[])[a.lo:a.hi],
                 ($10::int8[])[a.lo:a.hi], a.need, a.want, a.expires, a.existing)
          WITH ORDINALITY AS r(bucket, settled, reserved, over, granted, lease_amount, lost, i)
     ORDER BY a.n, r.i";

/// Lease grows waiting for a turn on the lane. Whoever gets a turn runs every grow waiting then,
/// in one statement: a burst of principals opening leases together costs a few round trips, not
/// one each.
#[derive(Debug, Default)]
pub(super) struct Waiting(Mutex<Vec<Waiter>>);

/// A grow and where its answer goes: `Err(None)` when the statement it was part of failed, so it
/// runs again on its own (and gets its own error).
#[derive(Debug)]
struct Waiter {
    ask: Ask,
    answer: oneshot::Sender<Result<Grown, Option<StoreError>>>,
}

/// [`Grow`], owned.
#[derive(Debug, Clone)]
struct Ask {
    lease: String,
    principal: String,
    keys: Vec<String>,
    caps: Vec<Option<i64>>,
    need: i64,
    want: i64,
    expires: OffsetDateTime,
    existing: bool,
}

impl From<&Grow<'_>> for Ask {
    fn from(g: &Grow<'_>) -> Self {
        Self {
            lease: g.lease.to_owned(),
            principal: g.principal.to_owned(),
            keys: g.buckets.iter().map(|b| b.bucket.clone()).collect(),
            caps: g.buckets.iter().map(|b| b.cap_micros).collect(),
            need: g.need,
            want: g.want.max(g.need),
            expires: g.expires,
            existing: g.existing,
        }
    }
}

impl Store {
    /// Grows a lease in one statement (see [`Grow`]), shared with the grows waiting at the same
    /// time.
    pub async fn grow_lease(&self, g: &Grow<'_>) -> Result<Grown, StoreError> {
        let ask = Ask::from(g);
        let (answer, answered) = oneshot::channel();
        if let Ok(mut w) = self.grows.0.lock() {
            w.push(Waiter {
                ask: ask.clone(),
                answer,
            });
        }
        {
            let turn = self.lane.turn().await?;
            let waiting = self
                .grows
                .0
                .lock()
                .map(|mut w| std::mem::take(&mut *w))
                .unwrap_or_default();
            if !waiting.is_empty() {
                grow_waiting(&turn, waiting).await;
            }
        }
        match answered.await {
            Ok(Ok(grown)) => Ok(grown),
            Ok(Err(Some(e))) => Err(e),
            // Its statement failed with others: run it on its own.
            Ok(Err(None)) | Err(_) => {
                let turn = self.lane.turn().await?;
                grow_one(&turn, &ask).await
            }
        }
    }

    /// Writes a batch in one transaction, once. Every bucket touched is locked in one order
    /// (principal, bucket), as every other spend transaction does, then the leases charged or
    /// given back.
    pub async fn settle_batch(&self, b: &Batch) -> Result<(), StoreError> {
        super::spend::retry_deadlock(|| self.settle_batch_once(b)).await
    }

    async fn settle_batch_once(&self, b: &Batch) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let first = sqlx::query("INSERT INTO settlements (id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(&b.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if first == 0 {
            tx.rollback().await?;
            return Ok(());
        }
        // What each bucket gains in settled spend, and what each lease owes.
        let mut buckets: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut owed: BTreeMap<&str, i64> = BTreeMap::new();
        for c in &b.charges {
            for k in &c.buckets {
                let e = buckets.entry((c.principal.clone(), k.clone())).or_default();
                *e = e.saturating_add(c.cost);
            }
            if let Some(l) = &c.lease {
                let e = owed.entry(l).or_default();
                *e = e.saturating_add(c.cost);
            }
        }
        for r in &b.returns {
            for k in &r.buckets {
                buckets.entry((r.principal.clone(), k.clone())).or_default();
            }
            owed.entry(&r.lease).or_default();
        }
        let principals: Vec<&str> = buckets.keys().map(|(p, _)| p.as_str()).collect();
        let keys: Vec<&str> = buckets.keys().map(|(_, k)| k.as_str()).collect();
        sqlx::query(
            "INSERT INTO spend (principal, bucket) SELECT * FROM unnest($1::text[], $2::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&principals)
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "SELECT 1 FROM spend WHERE (principal, bucket) IN (SELECT * FROM unnest($1::text[], $2::text[]))
             ORDER BY principal, bucket FOR UPDATE",
        )
        .bind(&principals)
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await?;

        // A lease's amount turns into settled spend as far as it reaches; a lease given back
        // releases all of it. A lease that expired meanwhile releases nothing more.
        let ids: Vec<&str> = owed.keys().copied().collect();
        let rows = sqlx::query(
            "SELECT id, principal, buckets, amount_micros FROM reservations WHERE id = ANY($1)
             ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let returned: Vec<&str> = b.returns.iter().map(|r| r.lease.as_str()).collect();
        let is_returned: std::collections::HashSet<&str> = returned.iter().copied().collect();
        let (mut shrink_ids, mut shrink_by) = (Vec::new(), Vec::new());
        let mut freed_from: BTreeMap<(String, String), i64> =
            buckets.keys().map(|k| (k.clone(), 0)).collect();
        for r in &rows {
            let id: String = r.try_get("id")?;
            let principal: String = r.try_get("principal")?;
            let lease_buckets: Vec<String> = r.try_get("buckets")?;
            let amount: i64 = r.try_get("amount_micros")?;
            let cost = owed.get(id.as_str()).copied().unwrap_or(0);
            let freed = if is_returned.contains(id.as_str()) {
                amount
            } else {
                cost.clamp(0, amount)
            };
            for k in lease_buckets {
                if let Some(e) = freed_from.get_mut(&(principal.clone(), k)) {
                    *e = e.saturating_add(freed);
                }
            }
            if !is_returned.contains(id.as_str()) {
                shrink_ids.push(id);
                shrink_by.push(freed);
            }
        }
        sqlx::query("DELETE FROM reservations WHERE id = ANY($1)")
            .bind(&returned)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE reservations r SET amount_micros = r.amount_micros - c.freed,
                 expires_at = GREATEST(r.expires_at, $3)
             FROM unnest($1::text[], $2::bigint[]) AS c(id, freed) WHERE r.id = c.id",
        )
        .bind(&shrink_ids)
        .bind(&shrink_by)
        .bind(b.renew_until)
        .execute(&mut *tx)
        .await?;

        let adds: Vec<i64> = buckets.values().copied().collect();
        let subs: Vec<i64> = freed_from.values().copied().collect();
        sqlx::query(
            "UPDATE spend s SET settled_micros = s.settled_micros + c.add,
                 reserved_micros = GREATEST(s.reserved_micros - c.sub, 0), updated_at = now()
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS c(principal, bucket, add, sub)
             WHERE s.principal = c.principal AND s.bucket = c.bucket",
        )
        .bind(&principals)
        .bind(&keys)
        .bind(&adds)
        .bind(&subs)
        .execute(&mut *tx)
        .await?;
        finance_rows(&mut tx, &b.charges).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Adds the batch's served requests to finance's daily rows (one row per day, principal and
/// model) and records who each principal is, as last seen.
pub(super) async fn finance_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    charges: &[Charge],
) -> Result<(), sqlx::Error> {
    let mut days: BTreeMap<(time::Date, &str, &str), (i64, i64, &Ledger)> = BTreeMap::new();
    let mut people: BTreeMap<&str, &Ledger> = BTreeMap::new();
    for c in charges {
        let Some(l) = &c.ledger else { continue };
        let e = days
            .entry((l.day, &c.principal, &l.model))
            .or_insert((0, 0, l));
        e.0 = e.0.saturating_add(c.cost);
        e.1 += 1;
        e.2 = l;
        let seen = people.entry(&c.principal).or_insert(l);
        if l.at >= seen.at {
            *seen = l;
        }
    }
    if days.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = days
        .iter()
        .map(|((day, principal, model), (cost, n, l))| {
            serde_json::json!({"day": day.to_string(), "principal": principal, "model": model,
                               "groups": l.groups, "cost": cost, "requests": n})
        })
        .collect();
    sqlx::query(
        "INSERT INTO cost_daily (day, principal, model, groups, cost_micros, requests)
         SELECT (e->>'day')::date, e->>'principal', e->>'model',
                ARRAY(SELECT jsonb_array_elements_text(e->'groups')),
                (e->>'cost')::bigint, (e->>'requests')::bigint
         FROM jsonb_array_elements($1) AS e
         ON CONFLICT (day, principal, model) DO UPDATE
         SET cost_micros = cost_daily.cost_micros + EXCLUDED.cost_micros,
             requests = cost_daily.requests + EXCLUDED.requests, groups = EXCLUDED.groups",
    )
    .bind(serde_json::Value::Array(rows))
    .execute(&mut **tx)
    .await?;
    let seen: Vec<serde_json::Value> = people
        .iter()
        .map(|(principal, l)| {
            serde_json::json!({"principal": principal, "email": l.email, "name": l.name,
                               "groups": l.groups, "at": i64::try_from(l.at.unix_timestamp_nanos() / 1000).unwrap_or(0)})
        })
        .collect();
    sqlx::query(
        "INSERT INTO principals (principal, email, name, groups, last_seen)
         SELECT e->>'principal', e->>'email', e->>'name',
                ARRAY(SELECT jsonb_array_elements_text(e->'groups')),
                to_timestamp((e->>'at')::double precision / 1000000)
         FROM jsonb_array_elements($1) AS e
         ON CONFLICT (principal) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
             groups = EXCLUDED.groups, last_seen = GREATEST(principals.last_seen, EXCLUDED.last_seen)",
    )
    .bind(serde_json::Value::Array(seen))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Runs the grows `waiting` on `turn`: one alone, several in one statement.
async fn grow_waiting(turn: &Turn<'_>, mut waiting: Vec<Waiter>) {
    if waiting.len() == 1 {
        if let Some(w) = waiting.pop() {
            let grown = grow_one(turn, &w.ask).await.map_err(Some);
            let _ = w.answer.send(grown);
        }
        return;
    }
    waiting.sort_by(|a, b| a.ask.principal.cmp(&b.ask.principal));
    let asks: Vec<&Ask> = waiting.iter().map(|w| &w.ask).collect();
    let rows = grow_many(turn, &asks).await;
    let mut by_ask: Vec<Vec<PgRow>> = Vec::new();
    by_ask.resize_with(waiting.len(), Vec::new);
    // Each row to its grow; any row that names no grow fails the lot.
    let mut ok = rows.is_ok();
    for r in rows.into_iter().flatten() {
        let slot = r
            .try_get::<i64, _>("ask")
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| by_ask.get_mut(n));
        match slot {
            Some(slot) => slot.push(r),
            None => {
                ok = false;
                break;
            }
        }
    }
    for (w, rows) in waiting.into_iter().zip(by_ask) {
        let grown = if ok { grown(&rows).ok() } else { None };
        let _ = w.answer.send(grown.ok_or(None));
    }
}

async fn grow_one(turn: &Turn<'_>, a: &Ask) -> Result<Grown, StoreError> {
    let rows = super::spend::retry_deadlock(|| async {
        Ok(turn
            .fetch_all(|| {
                sqlx::query(GROW_SQL)
                    .bind(&a.lease)
                    .bind(&a.principal)
                    .bind(&a.keys)
                    .bind(&a.caps)
                    .bind(a.need)
                    .bind(a.want)
                    .bind(a.expires)
                    .bind(a.existing)
            })
            .await?)
    })
    .await?;
    grown(&rows)
}

async fn grow_many(turn: &Turn<'_>, asks: &[&Ask]) -> Result<Vec<PgRow>, StoreError> {
    let mut keys: Vec<&str> = Vec::new();
    let mut caps: Vec<Option<i64>> = Vec::new();
    let (mut lo, mut hi) = (
        Vec::with_capacity(asks.len()),
        Vec::with_capacity(asks.len()),
    );
    for a in asks {
        lo.push(i32::try_from(keys.len() + 1).unwrap_or(i32::MAX));
        keys.extend(a.keys.iter().map(String::as_str));
        caps.extend(a.caps.iter().copied());
        hi.push(i32::try_from(keys.len()).unwrap_or(i32::MAX));
    }
    let leases: Vec<&str> = asks.iter().map(|a| a.lease.as_str()).collect();
    let whos: Vec<&str> = asks.iter().map(|a| a.principal.as_str()).collect();
    let needs: Vec<i64> = asks.iter().map(|a| a.need).collect();
    let wants: Vec<i64> = asks.iter().map(|a| a.want).collect();
    let expires: Vec<OffsetDateTime> = asks.iter().map(|a| a.expires).collect();
    let existing: Vec<bool> = asks.iter().map(|a| a.existing).collect();
    super::spend::retry_deadlock(|| async {
        Ok(turn
            .fetch_all(|| {
                sqlx::query(GROW_MANY_SQL)
                    .bind(&leases)
                    .bind(&whos)
                    .bind(&lo)
                    .bind(&hi)
                    .bind(&needs)
                    .bind(&wants)
                    .bind(&expires)
                    .bind(&existing)
                    .bind(&keys)
                    .bind(&caps)
            })
            .await?)
    })
    .await
}

/// What one grow's rows say.
fn grown(rows: &[PgRow]) -> Result<Grown, StoreError> {
    let Some(first) = rows.first() else {
        return Err(StoreError::Unavailable(sqlx::Error::RowNotFound));
    };
    if first.try_get::<bool, _>("lost")? {
        return Ok(Grown::Lost);
    }
    let give: i64 = first.try_get("granted")?;
    if give == 0 {
        let mut over = Vec::new();
        for r in rows {
            if r.try_get::<bool, _>("over")? {
                over.push(r.try_get("bucket")?);
            }
        }
        return Ok(Grown::Over(over));
    }
    let mut others = Vec::with_capacity(rows.len());
    for r in rows {
        others.push(Totals {
            settled: r.try_get("settled")?,
            reserved: r.try_get("reserved")?,
        });
    }
    Ok(Grown::Granted {
        give,
        amount: first.try_get("lease_amount")?,
        others,
    })
}
