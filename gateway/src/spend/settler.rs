//! Where a request's end goes. Its settlement and its rate-limit accounting are queued here without
//! waiting (so a guard's `Drop` can hand them over), and a worker writes them to the store in small
//! concurrent batches. What the store does not take is held and tried again every few seconds. At
//! shutdown the queue is drained and the held written before the pool closes, so no end is lost.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::{watch, Notify};

use crate::clock::SharedClock;
use crate::store::spend::Settlement;
use crate::store::Store;

/// How long one write may take before it is held and retried (writes are idempotent or harmless
/// to repeat).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often held writes are retried.
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// Writes in flight at once from one batch.
const BATCH: usize = 32;
/// Ends waiting or held in memory at most; past it an end is logged as lost.
const MAX_PENDING: usize = 100_000;
/// The per-minute token window.
const MINUTE: time::Duration = time::Duration::seconds(60);

/// One request's end, to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Spend: charge the cost, release the reservation, add the finance row.
    Spend(Settlement),
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
        queued + held + self.inner.writing.load(Ordering::Acquire)
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
                        let n = me.requeue_held();
                        if n > 0 {
                            tracing::warn!("{n} request ends held: retrying while the store does not answer");
                        }
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
            let wrote = self.write_batch(store, clock).await;
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

    /// Takes up to a batch from the queue and writes it; returns how many were taken.
    async fn write_batch(&self, store: &Store, clock: &SharedClock) -> usize {
        let batch: Vec<Job> = match self.inner.queue.lock() {
            Ok(mut q) => {
                let n = q.len().min(BATCH);
                q.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        };
        let n = batch.len();
        if n == 0 {
            return 0;
        }
        self.inner.writing.fetch_add(n, Ordering::AcqRel);
        let results = join_all(batch.into_iter().map(|job| write(store, clock, job))).await;
        let failed: Vec<Job> = results.into_iter().flatten().collect();
        if let Ok(mut h) = self.inner.held.lock() {
            h.extend(failed);
        }
        self.inner.writing.fetch_sub(n, Ordering::AcqRel);
        n
    }
}

/// Writes one end; returns what is left of it to retry.
async fn write(store: &Store, clock: &SharedClock, job: Job) -> Option<Job> {
    match job {
        Job::Spend(s) => match tokio::time::timeout(WRITE_TIMEOUT, store.settle(&s)).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::warn!(id = %s.id, "spend settlement held until the store answers: {e}");
                Some(Job::Spend(s))
            }
            Err(_) => {
                tracing::warn!(id = %s.id, "spend settlement held: the store did not answer in time");
                Some(Job::Spend(s))
            }
        },
        Job::Limits(done) => {
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
            (!left.is_empty()).then(|| {
                Job::Limits(LimitsDone {
                    token_keys: Vec::new(),
                    tokens: 0,
                    slots: left,
                })
            })
        }
    }
}
