//! Whether the store counts as ready: it answered a probe, or answered one within the last
//! `store.readiness_grace_seconds`. One probe runs at a time: a check arriving while one is out
//! gets the last answer, so a flood of checks holds at most one connection.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use super::Store;
use crate::clock::SharedClock;

/// Remembers the last successful store probe and the last answer.
#[derive(Debug)]
pub struct Readiness {
    last_ok: AtomicI64,
    grace_seconds: i64,
    probe_timeout: Duration,
    /// Held while a probe is out.
    probing: tokio::sync::Mutex<()>,
    /// The last answer given.
    ready: AtomicBool,
}

impl Readiness {
    /// No success yet; `grace_seconds` of tolerance; each probe bounded by `probe_timeout`.
    pub fn new(grace_seconds: u32, probe_timeout: Duration) -> Self {
        Self {
            last_ok: AtomicI64::new(i64::MIN),
            grace_seconds: i64::from(grace_seconds),
            probe_timeout,
            probing: tokio::sync::Mutex::new(()),
            ready: AtomicBool::new(false),
        }
    }

    /// Records a success at `now` (unix seconds).
    pub fn ok_at(&self, now: i64) {
        self.last_ok.store(now, Ordering::Relaxed);
    }

    /// Whether a failure at `now` still counts as ready.
    pub fn within_grace(&self, now: i64) -> bool {
        let last = self.last_ok.load(Ordering::Relaxed);
        last != i64::MIN && now.saturating_sub(last) <= self.grace_seconds && self.grace_seconds > 0
    }

    /// Probes `store` (or, while another probe is out, repeats the last answer) and says
    /// whether it counts as ready.
    pub async fn check(&self, store: &Store, clock: &SharedClock) -> bool {
        let Ok(_probing) = self.probing.try_lock() else {
            return self.ready.load(Ordering::Relaxed);
        };
        let probe = tokio::time::timeout(self.probe_timeout, store.ping()).await;
        let now = clock.now().unix_timestamp();
        let ready = match probe {
            Ok(Ok(())) => {
                self.ok_at(now);
                true
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                let ready = self.within_grace(now);
                if ready {
                    tracing::warn!("readiness probe failed, still inside the grace window: {why}");
                } else {
                    tracing::warn!("readiness probe failed: {why}");
                }
                ready
            }
        };
        self.ready.store(ready, Ordering::Relaxed);
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_counts_from_the_last_success() {
        let r = Readiness::new(10, Duration::from_secs(1));
        assert!(!r.within_grace(100));
        r.ok_at(100);
        assert!(r.within_grace(110));
        assert!(!r.within_grace(111));
        let none = Readiness::new(0, Duration::from_secs(1));
        none.ok_at(100);
        assert!(!none.within_grace(100));
    }

    #[tokio::test]
    async fn a_check_while_a_probe_is_out_repeats_the_last_answer_and_opens_no_connection() {
        use std::str::FromStr;
        use std::sync::Arc;

        // A "database" that takes every connection and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (held_tx, mut held) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = held_tx.send(socket);
            }
        });
        let options = sqlx::postgres::PgConnectOptions::from_str(&format!(
            "postgres://u@127.0.0.1:{port}/db"
        ))
        .unwrap();
        let store = Store::lazy(options, 4, Duration::from_secs(60));
        let clock: SharedClock = Arc::new(crate::clock::ManualClock::new(
            time::OffsetDateTime::UNIX_EPOCH,
        ));
        let readiness = Arc::new(Readiness::new(0, Duration::from_secs(60)));

        let first = tokio::spawn({
            let (readiness, store, clock) = (readiness.clone(), store.clone(), clock.clone());
            async move { readiness.check(&store, &clock).await }
        });
        // The first probe's connection has arrived: that probe is out.
        let _first_connection = held.recv().await.unwrap();
        let second = tokio::time::timeout(Duration::from_secs(10), readiness.check(&store, &clock))
            .await
            .expect("a check while a probe is out does not wait for it");
        assert!(!second, "the last answer: nothing has succeeded yet");
        assert!(
            held.try_recv().is_err(),
            "the second check opened no connection"
        );
        first.abort();
    }
}
