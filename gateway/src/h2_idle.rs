//! An HTTP/2 connection's idle bound. Hyper bounds an HTTP/1.1 connection's wait for a request
//! head (from its start, and again while it is kept alive), but has no such bound for HTTP/2: a
//! client could hold a connection that carries no request for as long as it liked, even one
//! that never sends the connection preface. Here an HTTP/2 connection ends once it has had no
//! request in flight for the limit; a request is in flight from its head until its answer's body
//! is done with, so a long stream keeps its connection.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;

/// The count of one connection's requests in flight.
#[derive(Debug, Clone)]
pub struct Activity(watch::Sender<usize>);

impl Activity {
    /// A count at zero, and the receiver [`idle_for`] watches.
    pub fn new() -> (Activity, watch::Receiver<usize>) {
        let (tx, rx) = watch::channel(0);
        (Activity(tx), rx)
    }

    /// Counts a request until the returned value is dropped.
    pub fn begin(&self) -> Busy {
        self.0.send_modify(|n| *n += 1);
        Busy(self.0.clone())
    }
}

/// One request in flight.
#[derive(Debug)]
pub struct Busy(watch::Sender<usize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Returns once the count has stayed at zero for `limit`.
pub async fn idle_for(mut count: watch::Receiver<usize>, limit: Duration) {
    loop {
        if *count.borrow_and_update() > 0 {
            // Busy: wait for the count to move.
            if count.changed().await.is_err() {
                return;
            }
            continue;
        }
        match tokio::time::timeout(limit, count.changed()).await {
            Err(_) => return,
            Ok(Ok(())) => {}
            // Every counter is gone: nothing can start a request any more.
            Ok(Err(_)) => return,
        }
    }
}

/// An answer's body that keeps its request counted until it is dropped.
#[derive(Debug)]
pub struct Tracked<B> {
    inner: B,
    _busy: Busy,
}

impl<B> Tracked<B> {
    /// `inner`, counted by `busy`.
    pub fn new(inner: B, busy: Busy) -> Self {
        Self { inner, _busy: busy }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn an_idle_connection_ends_after_the_limit() {
        let (_activity, count) = Activity::new();
        let started = tokio::time::Instant::now();
        idle_for(count, LIMIT).await;
        assert!(started.elapsed() >= LIMIT);
    }

    #[tokio::test]
    async fn a_request_in_flight_holds_it_open_and_its_end_starts_the_limit_again() {
        let (activity, count) = Activity::new();
        let busy = activity.begin();
        let idle = tokio::spawn(idle_for(count, LIMIT));
        // Three limits with a request in flight: still open.
        tokio::time::sleep(LIMIT * 3).await;
        assert!(!idle.is_finished());
        let ended = tokio::time::Instant::now();
        drop(busy);
        idle.await.unwrap();
        assert!(ended.elapsed() >= LIMIT);
    }

    #[tokio::test]
    async fn a_body_counts_until_it_is_dropped() {
        let (activity, count) = Activity::new();
        let body = Tracked::new(http_body_util::Empty::<Bytes>::new(), activity.begin());
        assert_eq!(*count.borrow(), 1);
        drop(body);
        assert_eq!(*count.borrow(), 0);
    }
}
