//! Where call recordings wait for the store: a bounded queue that never makes a call wait, and
//! one background task writing what it holds in batches (one `INSERT` of many rows). A full
//! queue or a store error drops rows, counted and logged without their content (each call's
//! `aws.call` audit line is already written). At shutdown the queue is drained before the pool
//! closes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use super::record::CallRecord;
use crate::store::{Store, StoreError};

/// Rows waiting at most.
pub const MAX_ROWS: usize = 10_000;
/// Bytes (bodies and parameters) waiting at most.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Rows in one `INSERT`.
pub const BATCH: usize = 200;
/// How long one batch may take before its rows are dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes a row counts for besides its body and parameters.
const ROW_OVERHEAD: usize = 512;

/// The queue and its counters; cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    queue: Mutex<Queue>,
    max_rows: usize,
    max_bytes: usize,
    writing: AtomicUsize,
    dropped: AtomicU64,
    written: AtomicU64,
    wake: Notify,
}

#[derive(Debug, Default)]
struct Queue {
    rows: VecDeque<(CallRecord, usize)>,
    bytes: usize,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty queue of [`MAX_ROWS`] rows and [`MAX_BYTES`] bytes; nothing is written until
    /// [`Recorder::spawn`] or [`Recorder::drain`].
    pub fn new() -> Self {
        Self::with_bounds(MAX_ROWS, MAX_BYTES)
    }

    /// An empty queue holding at most `max_rows` rows and `max_bytes` bytes.
    pub fn with_bounds(max_rows: usize, max_bytes: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue::default()),
                max_rows,
                max_bytes,
                writing: AtomicUsize::new(0),
                dropped: AtomicU64::new(0),
                written: AtomicU64::new(0),
                wake: Notify::new(),
            }),
        }
    }

    /// Queues a row. Never waits: over either bound the row is dropped, counted and logged
    /// without its content, and `false` returned.
    pub fn submit(&self, rec: CallRecord) -> bool {
        let size = ROW_OVERHEAD
            + rec.body.as_ref().map_or(0, String::len)
            + serde_json::to_vec(&rec.params).map_or(0, |v| v.len());
        let queued = match self.inner.queue.lock() {
            Ok(mut q) => {
                let fits = q.rows.len() < self.inner.max_rows
                    && q.bytes.saturating_add(size) <= self.inner.max_bytes;
                if fits {
                    q.rows.push_back((rec, size));
                    q.bytes += size;
                }
                fits
            }
            Err(_) => false,
        };
        if queued {
            self.inner.wake.notify_one();
        } else {
            let n = self.inner.dropped.fetch_add(1, Ordering::AcqRel) + 1;
            // The first and every hundredth, so a long outage does not flood the log.
            if n == 1 || n.is_multiple_of(100) {
                tracing::warn!(
                    dropped_total = n,
                    "call recording dropped: the queue is full ({} rows or {} bytes waiting for the store); the aws.call audit line has the call",
                    self.inner.max_rows,
                    self.inner.max_bytes
                );
            }
        }
        queued
    }

    /// Rows queued or being written.
    pub fn pending(&self) -> usize {
        let queued = self.inner.queue.lock().map(|q| q.rows.len()).unwrap_or(0);
        queued + self.inner.writing.load(Ordering::Acquire)
    }

    /// Rows dropped so far (queue full or store error).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Acquire)
    }

    /// Rows written so far.
    pub fn written(&self) -> u64 {
        self.inner.written.load(Ordering::Acquire)
    }

    /// Writes queued rows as they come, until `stop`.
    pub fn spawn(
        &self,
        store: Store,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = me.inner.wake.notified() => {}
                    _ = stop.changed() => return,
                }
                while me.write_batch(&store, WRITE_TIMEOUT).await > 0 {}
            }
        })
    }

    /// Writes everything queued, for at most `within`; returns how many rows are left (queued
    /// or still being written by the task). Called at shutdown, before the pool closes.
    pub async fn drain(&self, store: &Store, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return self.pending();
            }
            let wrote = self.write_batch(store, wait).await;
            if wrote == 0 && self.inner.writing.load(Ordering::Acquire) > 0 {
                // The task is finishing a batch.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let left = self.pending();
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
        }
    }

    /// Takes up to a batch from the queue and writes it in one statement; returns how many rows
    /// were taken. Rows not written within `within` (at most [`WRITE_TIMEOUT`]) are dropped.
    async fn write_batch(&self, store: &Store, within: Duration) -> usize {
        let batch: Vec<CallRecord> = match self.inner.queue.lock() {
            Ok(mut q) => {
                let n = q.rows.len().min(BATCH);
                let taken: Vec<(CallRecord, usize)> = q.rows.drain(..n).collect();
                q.bytes = q
                    .bytes
                    .saturating_sub(taken.iter().map(|(_, s)| s).sum::<usize>());
                // Counted as being written before the lock is let go, so `pending` never misses
                // them.
                self.inner.writing.fetch_add(n, Ordering::AcqRel);
                taken.into_iter().map(|(r, _)| r).collect()
            }
            Err(_) => Vec::new(),
        };
        let n = batch.len();
        if n == 0 {
            return 0;
        }
        let result =
            tokio::time::timeout(within.min(WRITE_TIMEOUT), store.aws_insert_calls(&batch)).await;
        match result {
            Ok(Ok(_)) => {
                self.inner.written.fetch_add(n as u64, Ordering::AcqRel);
            }
            Ok(Err(e)) => self.lost(n, &cause(&e)),
            Err(_) => self.lost(n, "the store did not answer in time"),
        }
        self.inner.writing.fetch_sub(n, Ordering::AcqRel);
        n
    }

    fn lost(&self, n: usize, why: &str) {
        let total = self.inner.dropped.fetch_add(n as u64, Ordering::AcqRel) + n as u64;
        tracing::warn!(
            rows = n,
            dropped_total = total,
            "call recordings dropped: {why}; their aws.call audit lines have the calls"
        );
    }
}

/// What went wrong, without anything of the rows: a database error's SQLSTATE only (its
/// message or detail may quote a value).
fn cause(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable(sqlx::Error::Database(d)) => format!(
            "the store refused them (SQLSTATE {})",
            d.code().as_deref().unwrap_or("unknown")
        ),
        StoreError::Unavailable(sqlx::Error::PoolTimedOut) => "no store connection free".into(),
        StoreError::Unavailable(_) | StoreError::Migrate(_) => "the store is unavailable".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::str::FromStr;

    use super::*;
    use crate::aws_proxy::record::tests::sample;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn dropped_rows_are_counted_and_logged_without_their_content() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || out.clone())
            .finish();
        let _log = tracing::subscriber::set_default(subscriber);

        let r = Recorder::with_bounds(1, usize::MAX);
        assert!(r.submit(sample()));
        assert!(!r.submit(sample()), "the queue holds one row");
        let gone = Store::lazy(
            sqlx::postgres::PgConnectOptions::from_str("postgres://nobody@127.0.0.1:1/none")
                .unwrap(),
            1,
            Duration::from_millis(200),
        );
        assert_eq!(r.drain(&gone, Duration::from_secs(5)).await, 0);
        assert_eq!((r.dropped(), r.written(), r.pending()), (2, 0, 0));

        let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("dropped_total=1"), "{log}");
        assert!(log.contains("rows=1 dropped_total=2"), "{log}");
        let rec = sample();
        for content in [
            rec.session_id.as_str(),
            "ana@example.com",
            &rec.project,
            "GetSecretValue",
            "SecretId",
            "MASKED",
        ] {
            assert!(!log.contains(content), "{content:?} in {log}");
        }
    }
}
