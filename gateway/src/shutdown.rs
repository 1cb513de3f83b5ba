//! The gateway's stop, in phases any part can watch: running; draining (no new connections, open
//! requests may finish); cut (the drain window is over: open streams end with an in-band error, so
//! each is settled before the store closes).
//!
//! An open stream watches for the cut through a [`CutWatch`] of its own: an atomic flag and the
//! waker of its last poll, set and woken by the cut. Checking it touches no lock, so relaying an
//! event costs no shared state; only opening and closing a stream do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Context;

use futures_util::task::AtomicWaker;
use tokio::sync::watch;

/// Where the stop has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Serving.
    Running,
    /// Refusing new connections; open requests finish.
    Draining,
    /// Ending whatever is still open.
    Cut,
}

/// The shared phase; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<Phase>>,
    streams: Arc<Mutex<Streams>>,
}

/// The open streams' cut signals, by registration number.
#[derive(Debug, Default)]
struct Streams {
    next: u64,
    open: HashMap<u64, Arc<CutSignal>>,
}

/// One stream's cut: set once, waking the stream's last poll.
#[derive(Debug, Default)]
struct CutSignal {
    cut: AtomicBool,
    waker: AtomicWaker,
}

/// A stream's watch for the cut ([`Shutdown::watch_cut`]); dropping it unregisters.
#[derive(Debug)]
pub struct CutWatch {
    id: u64,
    signal: Arc<CutSignal>,
    streams: Arc<Mutex<Streams>>,
}

impl CutWatch {
    /// Whether the cut has come; if not, the task polling with `cx` is woken when it does.
    pub fn poll_cut(&self, cx: &Context<'_>) -> bool {
        if self.signal.cut.load(Ordering::Acquire) {
            return true;
        }
        self.signal.waker.register(cx.waker());
        // A cut between the load and the registration woke no one: look again.
        self.signal.cut.load(Ordering::Acquire)
    }
}

impl Drop for CutWatch {
    fn drop(&mut self) {
        lock(&self.streams).open.remove(&self.id);
    }
}

fn lock(streams: &Mutex<Streams>) -> MutexGuard<'_, Streams> {
    streams.lock().unwrap_or_else(|p| p.into_inner())
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// Running.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(Phase::Running)),
            streams: Arc::default(),
        }
    }

    /// Moves to `phase` (never back). Reaching the cut sets and wakes every open stream's watch.
    pub fn advance(&self, phase: Phase) {
        self.tx.send_if_modified(|p| {
            let later = phase > *p;
            if later {
                *p = phase;
            }
            later
        });
        if phase >= Phase::Cut {
            for signal in lock(&self.streams).open.values() {
                signal.cut.store(true, Ordering::Release);
                signal.waker.wake();
            }
        }
    }

    /// A watch for the cut, for a stream that must end when it comes (already set if it has).
    pub fn watch_cut(&self) -> CutWatch {
        let signal = Arc::new(CutSignal::default());
        let mut streams = lock(&self.streams);
        // Under the lock the cut takes to wake the streams: either the cut sees this one, or it
        // came first and the phase says so.
        if self.phase() >= Phase::Cut {
            signal.cut.store(true, Ordering::Release);
        }
        let id = streams.next;
        streams.next = streams.next.wrapping_add(1);
        streams.open.insert(id, signal.clone());
        CutWatch {
            id,
            signal,
            streams: self.streams.clone(),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.tx.borrow()
    }

    /// Resolves once the phase is at least `phase`.
    pub async fn reached(&self, phase: Phase) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the wait cannot fail for want of one.
        let _ = rx.wait_for(|p| *p >= phase).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_only_move_forward_and_waiters_wake() {
        let s = Shutdown::new();
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.reached(Phase::Cut).await }
        });
        s.advance(Phase::Draining);
        assert_eq!(s.phase(), Phase::Draining);
        assert!(!waiter.is_finished());
        s.advance(Phase::Cut);
        waiter.await.unwrap();
        s.advance(Phase::Running);
        assert_eq!(s.phase(), Phase::Cut, "never back");
    }

    /// Resolves when `watch` sees the cut.
    async fn cut(watch: &CutWatch) {
        std::future::poll_fn(|cx| {
            if watch.poll_cut(cx) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await
    }

    #[tokio::test]
    async fn the_cut_wakes_the_streams_watching_and_later_watches_start_cut() {
        let s = Shutdown::new();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let w = s.watch_cut();
                tokio::spawn(async move { cut(&w).await })
            })
            .collect();
        // Every waiter has polled once and registered before the phases move.
        tokio::task::yield_now().await;
        s.advance(Phase::Draining);
        // Had draining set the watches, the waiters would finish while this task yields.
        tokio::task::yield_now().await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        s.advance(Phase::Cut);
        for w in waiters {
            w.await.unwrap();
        }
        let late = s.watch_cut();
        let noop = std::task::Waker::noop();
        assert!(late.poll_cut(&Context::from_waker(noop)));
    }

    #[test]
    fn a_dropped_watch_leaves_nothing_behind() {
        let s = Shutdown::new();
        let a = s.watch_cut();
        let b = s.watch_cut();
        assert_eq!(lock(&s.streams).open.len(), 2);
        drop(a);
        drop(b);
        assert!(lock(&s.streams).open.is_empty());
        assert!(!s
            .watch_cut()
            .poll_cut(&Context::from_waker(std::task::Waker::noop())));
    }
}
