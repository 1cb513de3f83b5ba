//! Where a request's end goes. Its cost and its rate-limit accounting are queued here without
//! waiting (so a guard's `Drop` can hand them over), and a worker writes them to the store: every
//! cost and lease given back that is waiting goes into one transaction (a batch, written once under
//! its id), so under load many requests share a commit and when idle each is written at once.
//! What the store does not take is held and tried again every few seconds, a batch whole and under
//! the same id. At shutdown the queue is drained and the held written before the pool closes, so
//! no end is lost.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::{watch, Notify};

use crate::clock::SharedClock;
use crate::store::leases::{Batch, Charge, Return};
use crate::store::Store;

/// How long one write may take before it is held and retried (writes are idempotent or harmless
/// to repeat).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often held writes are retried.
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// Rate-limit writes in flight at once.
const CONCURRENT: usize = 32;
/// Costs and returns in one transaction, at most.
const BATCH: usize = 1024;
/// Ends waiting or held in memory at most; past it an end is logged as lost.
const MAX_PENDING: usize = 100_000;
/// The per-minute token window.
const MINUTE: time::Duration = time::Duration::seconds(60);

/// One request's end, to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Spend: costs to charge (each to its lease, if any) with their finance rows, and a lease to
    /// give back after them (what is left of it returns to its principal), in one batch.
    Spend {
        /// The costs.
        charges: Vec<Charge>,
        /// The lease given back.
        give_back: Option<Return>,
    },
    /// Rate limits: count tokens in per-minute windows and free stream slots.
    Limits(LimitsDone),
}

/// A finished request's rate-limit accounting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitsDone {
    /// Per-minute token windows to add `tokens` to (best effort: not retried).
    pub token_keys: Vec<String>,
    /// Tokens the request used.
    pub tokens: i64,
    /// Stream slots to free, as (scope, slot id) (retried until written).
    pub slots: Vec<(String, String)>,
}

/// The queue and its worker's bookkeeping; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Settler {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    queue: Mutex<VecDeque<Job>>,
    held: Mutex<Vec<Job>>,
    /// Spend batches the store did not take, retried whole under their ids.
    held_batches: Mutex<Vec<Batch>>,
    writing: AtomicUsize,
    wake: Notify,
}

impl Settler {
    /// An empty queue; nothing is written until [`Settler::spawn`] or [`Settler::drain`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a request's end. Never waits, never fails: over the bound the end is logged as lost.
    pub fn submit(&self, job: Job) {
        if self.pending() >= MAX_PENDING {
            tracing::error!("{MAX_PENDING} request ends are waiting for the store; one was lost");
            return;
        }
        if let Ok(mut q) = self.inner.queue.lock() {
            q.push_back(job);
        }
        self.inner.wake.notify_one();
    }

    /// Ends queued, being written, or held for a retry.
    pub fn pending(&self) -> usize {
        let queued = self.inner.queue.lock().map(|q| q.len()).unwrap_or(0);
        let held = self.inner.held.lock().map(|h| h.len()).unwrap_or(0);
        let batches = self
            .inner
            .held_batches
            .lock()
            .map(|h| h.iter().map(|b| b.charges.len() + b.returns.len()).sum())
            .unwrap_or(0);
        queued + held + batches + self.inner.writing.load(Ordering::Acquire)
    }

    /// A batch id unique across replicas and restarts.
    fn batch_id() -> Option<String> {
        crate::auth::codes::token(16)
            .ok()
            .map(|t| format!("stb_{t}"))
    }

    /// Writes queued ends as they come and retries held ones every few seconds, until `stop`.
    pub fn spawn(
        &self,
        store: Store,
        clock: SharedClock,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut retry = tokio::time::interval(RETRY_EVERY);
            retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = me.inner.wake.notified() => {}
                    _ = retry.tick() => {
                        let n = me.requeue_held() + me.held_batches();
                        if n > 0 {
                            tracing::warn!("{n} request ends held: retrying while the store does not answer");
                        }
                        me.write_held_batches(&store).await;
                    }
                    _ = stop.changed() => return,
                }
                while me.write_batch(&store, &clock).await > 0 {}
            }
        })
    }

    /// Writes everything queued and held, for at most `within`; returns how many ends are left.
    /// Called at shutdown, before the pool closes.
    pub async fn drain(&self, store: &Store, clock: &SharedClock, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        self.requeue_held();
        loop {
            let wrote = self.write_batch(store, clock).await + self.write_held_batches(store).await;
            let left = self.pending();
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            if wrote == 0 {
                // The rest is held (the store did not answer) or being written by the worker.
                let pause = if self.inner.writing.load(Ordering::Acquire) > 0 {
                    Duration::from_millis(10)
                } else {
                    RETRY_EVERY.min(deadline.saturating_duration_since(Instant::now()))
                };
                tokio::time::sleep(pause).await;
                self.requeue_held();
            }
        }
    }

    /// Puts a batch that got no id back as jobs, to be batched again.
    fn hold_jobs(&self, batch: Batch) {
        if let Ok(mut h) = self.inner.held.lock() {
            h.push(Job::Spend {
                charges: batch.charges,
                give_back: None,
            });
            h.extend(batch.returns.into_iter().map(|r| Job::Spend {
                charges: Vec::new(),
                give_back: Some(r),
            }));
        }
    }

    fn held_batches(&self) -> usize {
        self.inner.held_batches.lock().map(|h| h.len()).unwrap_or(0)
    }

    fn requeue_held(&self) -> usize {
        let held: Vec<Job> = self
            .inner
            .held
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        let n = held.len();
        if let Ok(mut q) = self.inner.queue.lock() {
            q.extend(held);
        }
        n
    }

    /// Takes up to a batch from the queue and writes it: its costs and returns in one
    /// transaction, its rate-limit accounting alongside; returns how many ends were taken.
    async fn write_batch(&self, store: &Store, clock: &SharedClock) -> usize {
        let jobs: Vec<Job> = match self.inner.queue.lock() {
            Ok(mut q) => {
                let n = q.len().min(BATCH);
                q.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        };
        let n = jobs.len();
        if n == 0 {
            return 0;
        }
        self.inner.writing.fetch_add(n, Ordering::AcqRel);
        let mut batch = Batch {
            id: String::new(),
            charges: Vec::new(),
            returns: Vec::new(),
            renew_until: clock.now() + super::admission::RESERVATION_TTL,
        };
        let mut limits = Vec::new();
        for job in jobs {
            match job {
                Job::Spend { charges, give_back } => {
                    batch.charges.extend(charges);
                    batch.returns.extend(give_back);
                }
                Job::Limits(l) => limits.push(l),
            }
        }
        let spend = async {
            if batch.charges.is_empty() && batch.returns.is_empty() {
                return;
            }
            let Some(id) = Self::batch_id() else {
                tracing::error!("no random number for a batch id: spend held and tried again");
                self.hold_jobs(batch);
                return;
            };
            batch.id = id;
            if let Some(batch) = write_spend(store, batch).await {
                if let Ok(mut h) = self.inner.held_batches.lock() {
                    h.push(batch);
                }
            }
        };
        let counts = async {
            let mut failed = Vec::new();
            let mut limits = limits.into_iter().peekable();
            while limits.peek().is_some() {
                let some: Vec<LimitsDone> = limits.by_ref().take(CONCURRENT).collect();
                let results =
                    join_all(some.into_iter().map(|l| write_limits(store, clock, l))).await;
                failed.extend(results.into_iter().flatten().map(Job::Limits));
            }
            if let Ok(mut h) = self.inner.held.lock() {
                h.extend(failed);
            }
        };
        futures_util::join!(spend, counts);
        self.inner.writing.fetch_sub(n, Ordering::AcqRel);
        n
    }

    /// Writes the spend batches held after a failure, each under its own id; returns how many
    /// were written.
    async fn write_held_batches(&self, store: &Store) -> usize {
        let held: Vec<Batch> = self
            .inner
            .held_batches
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        let mut wrote = 0;
        for batch in held {
            let ends = batch.charges.len() + batch.returns.len();
            self.inner.writing.fetch_add(ends, Ordering::AcqRel);
            match write_spend(store, batch).await {
                None => wrote += 1,
                Some(batch) => {
                    if let Ok(mut h) = self.inner.held_batches.lock() {
                        h.push(batch);
                    }
                }
            }
            self.inner.writing.fetch_sub(ends, Ordering::AcqRel);
        }
        wrote
    }
}

/// Writes one spend batch; returns it when it must be tried again.
async fn write_spend(store: &Store, batch: Batch) -> Option<Batch> {
    match tokio::time::timeout(WRITE_TIMEOUT, store.settle_batch(&batch)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(id = %batch.id, ends = batch.charges.len() + batch.returns.len(), "spend settlement held until the store answers: {e}");
            Some(batch)
        }
        Err(_) => {
            tracing::warn!(id = %batch.id, ends = batch.charges.len() + batch.returns.len(), "spend settlement held: the store did not answer in time");
            Some(batch)
        }
    }
}

/// Writes one request's rate-limit accounting; returns what is left of it to retry.
async fn write_limits(store: &Store, clock: &SharedClock, done: LimitsDone) -> Option<LimitsDone> {
    let now = clock.now();
    // A request refused or released used no tokens: nothing to count.
    let counted = if done.tokens > 0 {
        &done.token_keys[..]
    } else {
        &[]
    };
    for key in counted {
        let add = store.kv_window_add(key, done.tokens, MINUTE, now);
        // Per-minute token counts are a brake, not a bill: one try.
        let _ = tokio::time::timeout(WRITE_TIMEOUT, add).await;
    }
    let mut left = Vec::new();
    for (scope, id) in done.slots {
        let free = store.free_stream_slot(&scope, &id);
        if !matches!(tokio::time::timeout(WRITE_TIMEOUT, free).await, Ok(Ok(()))) {
            left.push((scope, id));
        }
    }
    (!left.is_empty()).then(|| LimitsDone {
        token_keys: Vec::new(),
        tokens: 0,
        slots: left,
    })
}
