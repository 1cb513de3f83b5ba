//! Admission and settlement of one inference request. Before the upstream: the caller's caps per
//! period, and a hold of the request's worst-case cost on this replica's lease of the caller's
//! budget (see [`super::lease`]), grown in one statement that succeeds only if it fits under every
//! cap, so concurrent requests on any number of replicas cannot overshoot. After the reply or
//! stream: the actual cost is charged to the lease and written in the next batch. A store outage
//! fails open by default (a lease already granted keeps admitting exactly), and the costs are held
//! and written when the store returns, so no spend is lost.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};
use opentelemetry::KeyValue;
use serde_json::json;
use time::OffsetDateTime;

use super::caps::{self, Limit, Scope};
use super::caps_cache::{CapsCache, Lookup};
use super::lease::{Book, Granted, Step};
use super::outage::{classify, Miss};
use super::periods::Period;
use super::prices::{PriceBook, Rates};
use super::settler::{Job, Settler};
use crate::api::usage::Usage;
use crate::auth::codes;
use crate::auth::token::Identity;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::http::error::{ApiError, Billing};
use crate::store::leases::{Charge, Grow, Grown, Return};
use crate::store::spend::{BucketCap, Ledger, MICROS_PER_CENT};
use crate::store::Store;
use crate::telemetry::audit::Audit;

/// How long a lease outlives a gateway that died with it (every batch that charges it, and every
/// grant, extends it).
pub const RESERVATION_TTL: time::Duration = time::Duration::hours(2);
/// Spend enforcement and metering for one gateway.
#[derive(Debug)]
pub struct Meter {
    /// Prices.
    pub book: PriceBook,
    limits: Arc<Mutex<CapsCache<Arc<Vec<Limit>>>>>,
    touched: Mutex<std::collections::HashMap<String, Instant>>,
    leases: Arc<Mutex<Book>>,
    store: Store,
    clock: SharedClock,
    audit: Audit,
    settler: Settler,
    blocked: opentelemetry::metrics::Counter<u64>,
    fail_closed: bool,
    mode: crate::config::GroupLimitMode,
    blocked_message: Option<String>,
    check_wait: Duration,
}

/// What metering works with, built before it.
#[derive(Debug, Clone)]
pub struct Parts {
    /// PostgreSQL.
    pub store: Store,
    /// Time.
    pub clock: SharedClock,
    /// The audit stream (`spend.blocked`).
    pub audit: Audit,
    /// Where costs and leases given back are queued.
    pub settler: Settler,
    /// Counts refusals, by period.
    pub blocked: opentelemetry::metrics::Counter<u64>,
}

/// How often idle leases are looked for.
const RETURN_EVERY: Duration = Duration::from_millis(100);
/// Grants one request may ask for when others on this replica keep taking what it was granted.
const GROWS: usize = 3;

/// How often a principal's last-seen identity is written.
const TOUCH_EVERY: Duration = Duration::from_secs(900);

/// What admission decided, carried to settlement.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The lease this request holds its worst case on, and that worst case.
    hold: Option<(String, i64)>,
    principal: String,
    buckets: Vec<String>,
    day: time::Date,
    who: Identity,
    /// Usage headers for the response (none for uncapped users).
    pub headers: HeaderMap,
}

impl Meter {
    /// Metering is on when the config has an `admin` block.
    pub fn new(cfg: &Config, parts: Parts) -> Option<Self> {
        let admin = cfg.admin.as_ref()?;
        Some(Self {
            book: PriceBook::new(cfg.pricing.as_ref()),
            limits: Arc::new(Mutex::new(CapsCache::default())),
            touched: Mutex::new(std::collections::HashMap::new()),
            leases: Arc::new(Mutex::new(Book::default())),
            store: parts.store,
            clock: parts.clock,
            audit: parts.audit,
            settler: parts.settler,
            blocked: parts.blocked,
            fail_closed: cfg.enforcement.fail_closed_on_error,
            mode: admin.group_limit_mode,
            blocked_message: admin.blocked_message.clone(),
            check_wait: Duration::from_millis(cfg.timeouts.spend_check_ms),
        })
    }

    /// Reads the caps again after an Admin API change on this replica, before the change is
    /// answered, so the next request does not wait for them. When the read fails the cache is
    /// left empty and the next request reads them.
    pub async fn reload(&self) {
        let generation = match self.limits.lock() {
            Ok(mut c) => c.invalidate(),
            Err(_) => return,
        };
        let wait = self.check_wait;
        if let Err(e) = read_caps(&self.limits, &self.store, wait, generation).await {
            tracing::warn!(
                "spend limits could not be read back after a change: {}",
                unread(e, wait)
            );
        }
    }

    async fn limits(&self) -> Result<Arc<Vec<Limit>>, Miss> {
        let lookup = match self.limits.lock() {
            Ok(c) => c.lookup(Instant::now()),
            Err(_) => Lookup::Wait(u64::MAX),
        };
        let generation = match lookup {
            Lookup::Use(v) => return Ok(v),
            Lookup::Wait(generation) => generation,
        };
        match read_caps(&self.limits, &self.store, self.check_wait, generation).await {
            Ok(v) => Ok(v),
            Err(e) => Err(miss(&self.store, e.as_ref()).await),
        }
    }

    /// When a request ends or is refused: reads stale caps again, in the background (see
    /// [`CapsCache`]).
    fn refresh_if_due(&self) {
        let due = self
            .limits
            .lock()
            .ok()
            .and_then(|mut c| c.refresh_due(Instant::now()));
        let Some(generation) = due else { return };
        let (cache, store, wait) = (self.limits.clone(), self.store.clone(), self.check_wait);
        tokio::spawn(async move {
            if let Err(e) = read_caps(&cache, &store, wait, generation).await {
                tracing::warn!("spend limits could not be read again: {}", unread(e, wait));
            }
        });
    }

    /// Records who the principal is (for admin views), at most every 15 minutes, when a request
    /// ends or is refused: never while one waits for its first byte.
    fn touch(&self, who: &Identity) {
        let due = self.touched.lock().map(|mut t| {
            let fresh = t.get(&who.sub).is_some_and(|at| at.elapsed() < TOUCH_EVERY);
            if !fresh {
                if t.len() > 100_000 {
                    t.clear();
                }
                t.insert(who.sub.clone(), Instant::now());
            }
            !fresh
        });
        if due.unwrap_or(false) {
            let (store, clock, who) = (self.store.clone(), self.clock.clone(), who.clone());
            tokio::spawn(async move {
                let now = clock.now();
                let _ = store
                    .touch_principal(
                        &who.sub,
                        who.email.as_deref(),
                        who.name.as_deref(),
                        &who.groups,
                        now,
                    )
                    .await;
            });
        }
    }

    /// Admits a request, or refuses it with `429 billing_error`.
    pub async fn admit(
        &self,
        who: &Identity,
        rates: &Rates,
        estimate: &crate::spend::estimate::Estimate,
    ) -> Result<Ticket, ApiError> {
        let now = self.clock.now();
        let buckets: Vec<String> = Period::ALL.iter().map(|p| p.bucket(now)).collect();
        let mut ticket = Ticket {
            hold: None,
            principal: who.sub.clone(),
            buckets: buckets.clone(),
            day: now.date(),
            who: who.clone(),
            headers: HeaderMap::new(),
        };
        let fail_closed = self.fail_closed;
        let limits = match self.limits().await {
            Ok(l) => l,
            Err(miss) => return missed(miss, fail_closed, "spend limits", ticket),
        };
        let effective = caps::effective(&limits, &who.sub, &who.groups, self.mode);
        if effective.iter().all(|e| e.amount_cents.is_none()) {
            return Ok(ticket);
        }
        let bucket_caps: Vec<BucketCap> = Period::ALL
            .iter()
            .zip(&buckets)
            .map(|(p, b)| BucketCap {
                bucket: b.clone(),
                cap_micros: effective
                    .iter()
                    .find(|e| e.period == *p)
                    .and_then(|e| e.amount_cents)
                    .map(|c| c.saturating_mul(MICROS_PER_CENT)),
            })
            .collect();
        let worst = i64::try_from(self.book.worst_case_micros(rates, estimate)).unwrap_or(i64::MAX);
        for _ in 0..GROWS {
            let step = match self.leases.lock() {
                Ok(mut book) => book.admit(
                    &who.sub,
                    &bucket_caps,
                    worst,
                    Instant::now(),
                    Self::lease_id,
                ),
                Err(_) => return Err(ApiError::Internal),
            };
            let (lease, need, want, existing) = match step {
                Step::Admitted { lease, before } => {
                    ticket.hold = Some((lease, worst));
                    ticket.headers = usage_headers(&bucket_caps, &before, now, false);
                    return Ok(ticket);
                }
                Step::Full => return Err(busy()),
                Step::Grow {
                    lease,
                    need,
                    want,
                    existing,
                } => (lease, need, want, existing),
            };
            let ask = Ask {
                lease,
                principal: who.sub.clone(),
                buckets: bucket_caps.clone(),
                need,
                want,
                existing,
                worst,
            };
            match self.grow(ask).await {
                Ok(Some(before)) => {
                    ticket.headers = usage_headers(&bucket_caps, &before.1, now, false);
                    ticket.hold = Some((before.0, worst));
                    return Ok(ticket);
                }
                Ok(None) => continue,
                Err(Grew::Over(over)) => {
                    return Err(self
                        .refuse(who, &buckets, &bucket_caps, &effective, &over, worst, now)
                        .await)
                }
                Err(Grew::Miss(miss)) => return missed(miss, fail_closed, "spend lease", ticket),
            }
        }
        tracing::warn!(
            "spend lease: other requests kept taking what was granted; refusing (retryable)"
        );
        Err(busy())
    }

    /// A new lease's name, unique across replicas.
    fn lease_id() -> Option<String> {
        codes::token(16).ok().map(|t| format!("lse_{t}"))
    }

    /// Grows a lease for a request and waits at most `timeouts.spend_check_ms` for the answer:
    /// the lease and the request's hold on it, or `None` when others took the grant meanwhile.
    /// The statement runs in a task of its own, so a grant that commits after this request
    /// stopped waiting still reaches the lease (which gives it back when idle) instead of being
    /// orphaned until it expires.
    async fn grow(
        &self,
        ask: Ask,
    ) -> Result<Option<(String, Vec<crate::store::spend::Totals>)>, Grew> {
        let abandoned = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let expires = self.clock.now() + RESERVATION_TTL;
        {
            let (store, book, settler, abandoned) = (
                self.store.clone(),
                self.leases.clone(),
                self.settler.clone(),
                abandoned.clone(),
            );
            let ask = ask.clone();
            tokio::spawn(async move {
                let grown = store
                    .grow_lease(&Grow {
                        lease: &ask.lease,
                        principal: &ask.principal,
                        buckets: &ask.buckets,
                        need: ask.need,
                        want: ask.want,
                        expires,
                        existing: ask.existing,
                    })
                    .await;
                // Applied under the book's lock, where the request also gives up waiting: either
                // the request takes the answer or the lease keeps it, never neither.
                let Ok(mut book) = book.lock() else { return };
                if abandoned.load(std::sync::atomic::Ordering::Acquire) {
                    late(&mut book, &settler, &ask, grown);
                    return;
                }
                let answer = match grown {
                    Ok(Grown::Granted { give, others, .. }) => {
                        match book.granted(
                            &ask.principal,
                            &ask.lease,
                            give,
                            others,
                            ask.worst,
                            Instant::now(),
                        ) {
                            Granted::Admitted(before) => Ok(Some((ask.lease.clone(), before))),
                            Granted::Again => Ok(None),
                            Granted::Gone => {
                                settler.submit(Job::Spend {
                                    charges: Vec::new(),
                                    give_back: Some(ask.give_back()),
                                });
                                Ok(None)
                            }
                        }
                    }
                    Ok(Grown::Over(over)) => {
                        book.failed(&ask.principal, &ask.lease, false);
                        Err(Answer::Over(over))
                    }
                    Ok(Grown::Lost) => {
                        book.failed(&ask.principal, &ask.lease, true);
                        Ok(None)
                    }
                    Err(e) => {
                        book.failed(&ask.principal, &ask.lease, false);
                        Err(Answer::Failed(e))
                    }
                };
                let _ = tx.send(answer);
            });
        }
        let answer = match tokio::time::timeout(self.check_wait, &mut rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => return Err(Grew::Miss(Miss::Outage("the lease task failed".into()))),
            Err(_) => {
                let taken = match self.leases.lock() {
                    Ok(_book) => match rx.try_recv() {
                        Ok(answer) => Some(answer),
                        Err(_) => {
                            abandoned.store(true, std::sync::atomic::Ordering::Release);
                            None
                        }
                    },
                    Err(_) => None,
                };
                match taken {
                    Some(answer) => answer,
                    None => return Err(Grew::Miss(miss(&self.store, None).await)),
                }
            }
        };
        match answer {
            Ok(admitted) => Ok(admitted),
            Err(Answer::Over(over)) => Err(Grew::Over(over)),
            Err(Answer::Failed(e)) => Err(Grew::Miss(miss(&self.store, Some(&e)).await)),
        }
    }

    /// The refusal of a request whose worst case does not fit: audited, counted, with the
    /// reference's headers.
    #[allow(clippy::too_many_arguments)]
    async fn refuse(
        &self,
        who: &Identity,
        buckets: &[String],
        bucket_caps: &[BucketCap],
        effective: &[caps::Effective],
        over: &[String],
        worst: i64,
        now: OffsetDateTime,
    ) -> ApiError {
        self.touch(who);
        self.refresh_if_due();
        let periods: Vec<Period> = Period::ALL
            .iter()
            .zip(buckets)
            .filter(|(_, b)| over.contains(b))
            .map(|(p, _)| *p)
            .collect();
        let period = periods
            .iter()
            .copied()
            .max_by_key(|p| p.reset(now))
            .unwrap_or(Period::Monthly);
        let totals = self
            .store
            .totals(&who.sub, buckets)
            .await
            .unwrap_or_default();
        let i = Period::ALL.iter().position(|p| *p == period).unwrap_or(0);
        let cap = bucket_caps.get(i).and_then(|b| b.cap_micros).unwrap_or(0);
        let spent = totals.get(i).map(|t| t.settled + t.reserved).unwrap_or(0);
        let source = effective.iter().find(|e| e.period == period);
        self.blocked
            .add(1, &[KeyValue::new("period", period.as_str())]);
        self.audit.emit(
            "spend.blocked",
            now,
            json!({"sub": who.sub, "email": who.email, "groups": who.groups, "cause": "over_limit", "period": period.as_str(),
                   "cap_cents": source.and_then(|s| s.amount_cents), "limit_id": source.map(|s| s.limit_id.clone()),
                   "scope": source.map(|s| match s.source { Scope::User(_) => "user", Scope::Group(_) => "rbac_group", Scope::Organization => "organization" }),
                   "spent_micros": spent, "worst_case_micros": worst}),
        );
        blocked(self.blocked_message.as_deref(), period, now, spent, cap)
    }

    /// Ends a ticket whose request was served at `upstream` as `provider_model` and used
    /// `usage`: its hold on the lease becomes the actual cost, kept with the lease until the lease
    /// is written. Returns the charge to write now when the request held no lease.
    pub fn settlement(
        &self,
        ticket: Ticket,
        upstream: &str,
        provider_model: &str,
        model: &str,
        usage: Usage,
        now: OffsetDateTime,
    ) -> Option<Charge> {
        let (rates, known) = self.book.rates(upstream, provider_model);
        if !known {
            tracing::warn!(model = ?provider_model, "no price for this model: metered at the unknown-model tier");
        }
        // Never past the largest worst case a reservation states, so that sums of charges in a
        // batch stay inside the store's 64-bit columns whatever the counts and prices.
        let cost = self
            .book
            .cost_micros(&rates, &usage)
            .min(crate::spend::prices::WORST_CASE_CEILING_MICROS);
        let cost = i64::try_from(cost).unwrap_or(i64::MAX);
        let ledger = Ledger {
            day: ticket.day,
            model: model.to_owned(),
            email: ticket.who.email.clone(),
            name: ticket.who.name.clone(),
            groups: ticket.who.groups.clone(),
            at: now,
        };
        let charge = Charge {
            principal: ticket.principal.clone(),
            buckets: ticket.buckets.clone(),
            lease: ticket.hold.as_ref().map(|(lease, _)| lease.clone()),
            cost,
            ledger: Some(ledger),
        };
        self.ended(&ticket, cost, Some(charge))
    }

    /// A ticket whose request no upstream served: its hold is released and nothing is charged.
    pub fn release(&self, ticket: Ticket) {
        self.ended(&ticket, 0, None);
    }

    fn ended(&self, ticket: &Ticket, cost: i64, charge: Option<Charge>) -> Option<Charge> {
        self.touch(&ticket.who);
        self.refresh_if_due();
        let Some((lease, worst)) = &ticket.hold else {
            return charge;
        };
        let now = Instant::now();
        let (back, quiet) = match self.leases.lock() {
            Ok(mut book) => (
                book.ended(&ticket.principal, lease, *worst, cost, charge, now),
                book.take_quiet(&ticket.principal, lease, now),
            ),
            Err(_) => (charge, Vec::new()),
        };
        if !quiet.is_empty() {
            self.settler.submit(Job::Spend {
                charges: quiet,
                give_back: None,
            });
        }
        back
    }

    /// Gives back, every [`RETURN_EVERY`], the leases idle for [`super::lease::IDLE`], until `stop`.
    pub fn spawn_returns(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let (book, settler) = (self.leases.clone(), self.settler.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RETURN_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => give_back(&book, &settler, false),
                    _ = stop.changed() => return,
                }
            }
        })
    }

    /// Gives back every lease (at shutdown, once no request is open).
    pub fn return_all(&self) {
        give_back(&self.leases, &self.settler, true);
    }
}

/// Hands the store the charges of busy leases that are due, and the idle leases (all of them
/// with `all`) with the charges kept with them, each lease in one batch.
fn give_back(book: &Mutex<Book>, settler: &Settler, all: bool) {
    let now = Instant::now();
    let (due, idle) = match book.lock() {
        Ok(mut b) => (b.take_due(now), b.take_idle(now, all)),
        Err(_) => return,
    };
    if !due.is_empty() {
        settler.submit(Job::Spend {
            charges: due,
            give_back: None,
        });
    }
    for (given, charges) in idle {
        settler.submit(Job::Spend {
            charges,
            give_back: given.map(|g| Return {
                lease: g.lease,
                principal: g.principal,
                buckets: g.buckets,
            }),
        });
    }
}

/// A grant asked for on behalf of one request.
#[derive(Debug, Clone)]
struct Ask {
    lease: String,
    principal: String,
    buckets: Vec<BucketCap>,
    need: i64,
    want: i64,
    existing: bool,
    worst: i64,
}

impl Ask {
    fn give_back(&self) -> Return {
        Return {
            lease: self.lease.clone(),
            principal: self.principal.clone(),
            buckets: self.buckets.iter().map(|b| b.bucket.clone()).collect(),
        }
    }
}

/// The grow task's answer to the request waiting for it.
enum Answer {
    Over(Vec<String>),
    Failed(crate::store::StoreError),
}

/// Why growing did not admit.
enum Grew {
    Over(Vec<String>),
    Miss(Miss),
}

/// A grow whose request stopped waiting: a grant joins the lease (given back with it when idle).
fn late(
    book: &mut Book,
    settler: &Settler,
    ask: &Ask,
    grown: Result<Grown, crate::store::StoreError>,
) {
    match grown {
        Ok(Grown::Granted { give, .. }) => {
            tracing::info!(
                "a lease grant committed after its request stopped waiting: kept, and given back when idle"
            );
            if !book.granted_late(&ask.principal, &ask.lease, give, Instant::now()) {
                settler.submit(Job::Spend {
                    charges: Vec::new(),
                    give_back: Some(ask.give_back()),
                });
            }
        }
        Ok(Grown::Lost) => book.failed(&ask.principal, &ask.lease, true),
        Ok(Grown::Over(_)) | Err(_) => book.failed(&ask.principal, &ask.lease, false),
    }
}

/// How long the reachability probe of a spend check that got no answer may take.
const PROBE_WITHIN: Duration = Duration::from_secs(1);

fn busy() -> ApiError {
    ApiError::Overloaded("the gateway is busy checking spend limits; retry shortly")
}

/// Reads the caps from the store within `wait` and records the answer in `cache` (the caps, or
/// that the read failed), stamped `generation`; the error is `None` when the wait ran out.
async fn read_caps(
    cache: &Mutex<CapsCache<Arc<Vec<Limit>>>>,
    store: &Store,
    wait: Duration,
    generation: u64,
) -> Result<Arc<Vec<Limit>>, Option<crate::store::StoreError>> {
    let read = match tokio::time::timeout(wait, store.limits()).await {
        Ok(Ok(rows)) => Ok(Arc::new(caps::from_rows(rows))),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    };
    if let Ok(mut c) = cache.lock() {
        c.answered(Instant::now(), generation, read.as_ref().ok().cloned());
    }
    read
}

/// Why a read of the caps failed, for the log.
fn unread(e: Option<crate::store::StoreError>, wait: Duration) -> String {
    e.map_or_else(
        || format!("no answer within {} ms", wait.as_millis()),
        |e| e.to_string(),
    )
}

/// Why a spend check got no answer; probes the database only when the error does not say.
async fn miss(store: &Store, err: Option<&crate::store::StoreError>) -> Miss {
    let needs_probe = matches!(
        err,
        None | Some(crate::store::StoreError::Unavailable(
            sqlx::Error::PoolTimedOut
        ))
    );
    let reachable = needs_probe && store.reachable(PROBE_WITHIN).await;
    classify(err, reachable)
}

/// The answer when a spend check got no answer: contention refuses (retryable), an outage fails
/// open or closed as configured.
fn missed(miss: Miss, fail_closed: bool, what: &str, ticket: Ticket) -> Result<Ticket, ApiError> {
    match miss {
        Miss::Busy => {
            tracing::warn!("{what}: the store is busy, refusing (retryable)");
            Err(ApiError::Overloaded(
                "the gateway is busy checking spend limits; retry shortly",
            ))
        }
        Miss::Outage(e) if fail_closed => {
            tracing::warn!("{what} unavailable, refusing (fail-closed): {e}");
            Err(unavailable())
        }
        Miss::Outage(e) => {
            tracing::warn!("{what} unavailable, admitting (fail-open): {e}");
            Ok(ticket)
        }
    }
}

/// The refusal, with the reference's headers and message.
fn blocked(
    extra: Option<&str>,
    period: Period,
    now: OffsetDateTime,
    spent: i64,
    cap: i64,
) -> ApiError {
    let reset = period.reset(now);
    let when = format!(
        "{:04}-{:02}-{:02} 00:00",
        reset.year(),
        u8::from(reset.month()),
        reset.day()
    );
    let mut message = format!(
        "spend limit reached ({}; resets {when} UTC)",
        period.as_str()
    );
    if let Some(extra) = extra {
        message.push_str(" — ");
        message.push_str(extra);
    }
    let mut h = HeaderMap::new();
    let secs = (reset - now).whole_seconds().max(1);
    let util = if cap > 0 {
        spent as f64 / cap as f64
    } else {
        1.0
    };
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put("retry-after", secs.to_string());
    put("x-should-retry", "false".into());
    put("anthropic-ratelimit-unified-status", "rejected".into());
    put(
        "anthropic-ratelimit-unified-reset",
        reset.unix_timestamp().to_string(),
    );
    put(
        "anthropic-ratelimit-unified-overage-reset",
        reset.unix_timestamp().to_string(),
    );
    put(
        "anthropic-ratelimit-unified-overage-utilization",
        format!("{:.2}", util.max(1.0)),
    );
    put(
        "anthropic-ratelimit-unified-overage-surpassed-threshold",
        "1".into(),
    );
    put(
        "anthropic-ratelimit-unified-overage-period",
        period.as_str().into(),
    );
    put(
        "anthropic-ratelimit-unified-overage-disabled-reason",
        "org_spend_cap_reached".into(),
    );
    ApiError::Billing(Box::new(Billing {
        message,
        headers: h,
    }))
}

fn unavailable() -> ApiError {
    let mut h = HeaderMap::new();
    h.insert("x-should-retry", HeaderValue::from_static("false"));
    h.insert(
        "anthropic-ratelimit-unified-overage-disabled-reason",
        HeaderValue::from_static("fetch_error"),
    );
    ApiError::Billing(Box::new(Billing {
        message: "spend limit unavailable".into(),
        headers: h,
    }))
}

/// Warning headers from the spend before this request: the fullest capped period.
pub fn usage_headers(
    caps: &[BucketCap],
    before: &[crate::store::spend::Totals],
    now: OffsetDateTime,
    _blocked: bool,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    let fullest = Period::ALL
        .iter()
        .zip(caps.iter().zip(before))
        .filter_map(|(p, (c, t))| {
            c.cap_micros.map(|cap| {
                (
                    *p,
                    if cap > 0 {
                        (t.settled + t.reserved) as f64 / cap as f64
                    } else {
                        1.0
                    },
                )
            })
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let Some((period, util)) = fullest else {
        return h;
    };
    let reset = period.reset(now).unix_timestamp().to_string();
    let status = if util > 0.75 {
        "allowed_warning"
    } else {
        "allowed"
    };
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put("anthropic-ratelimit-unified-status", status.into());
    put(
        "anthropic-ratelimit-unified-representative-claim",
        "overage".into(),
    );
    put("anthropic-ratelimit-unified-overage-status", status.into());
    put(
        "anthropic-ratelimit-unified-overage-utilization",
        format!("{:.2}", util.min(0.99)),
    );
    if util > 0.95 {
        put(
            "anthropic-ratelimit-unified-overage-surpassed-threshold",
            "0.95".into(),
        );
    } else if util > 0.75 {
        put(
            "anthropic-ratelimit-unified-overage-surpassed-threshold",
            "0.75".into(),
        );
    }
    put("anthropic-ratelimit-unified-reset", reset.clone());
    put("anthropic-ratelimit-unified-overage-reset", reset);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::spend::Totals;
    use time::macros::datetime;

    fn caps(d: Option<i64>, m: Option<i64>) -> Vec<BucketCap> {
        vec![
            BucketCap {
                bucket: "d".into(),
                cap_micros: d,
            },
            BucketCap {
                bucket: "w".into(),
                cap_micros: None,
            },
            BucketCap {
                bucket: "m".into(),
                cap_micros: m,
            },
        ]
    }

    #[test]
    fn warnings_past_75_and_95_percent_for_the_fullest_period() {
        let now = datetime!(2026-11-23 10:00 UTC);
        let t = |s: i64| Totals {
            settled: s,
            reserved: 0,
        };
        let h = usage_headers(
            &caps(Some(100), Some(1000)),
            &[t(50), t(0), t(100)],
            now,
            false,
        );
        assert_eq!(h["anthropic-ratelimit-unified-status"], "allowed");
        assert!(h
            .get("anthropic-ratelimit-unified-overage-surpassed-threshold")
            .is_none());
        assert_eq!(h["anthropic-ratelimit-unified-overage-utilization"], "0.50");
        let h = usage_headers(
            &caps(Some(100), Some(1000)),
            &[t(80), t(0), t(960)],
            now,
            false,
        );
        assert_eq!(h["anthropic-ratelimit-unified-status"], "allowed_warning");
        assert_eq!(
            h["anthropic-ratelimit-unified-overage-surpassed-threshold"], "0.95",
            "the monthly cap is fullest"
        );
        assert_eq!(
            h["anthropic-ratelimit-unified-reset"],
            datetime!(2026-12-01 0:00 UTC)
                .unix_timestamp()
                .to_string()
                .as_str()
        );
        let h = usage_headers(&caps(Some(100), None), &[t(75), t(0), t(0)], now, false);
        assert_eq!(
            h["anthropic-ratelimit-unified-status"], "allowed",
            "75% exactly is not past 75%"
        );
        assert!(
            usage_headers(&caps(None, None), &[t(1), t(1), t(1)], now, false).is_empty(),
            "no headers without a cap"
        );
    }
}
