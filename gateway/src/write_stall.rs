//! A connection's socket with a bound on how long a write may wait. A client that stops reading
//! (its receive window full) holds whatever its answer holds: a stream's upstream slot, its spend
//! hold, a connection to the upstream. Past the bound the write fails, the connection ends, and
//! the answer's stream is dropped, which settles it and frees its slot. Reads are left alone: a
//! request body has its own deadline, and a quiet connection between requests is not stalled.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `io`, whose writes fail once one has waited `limit` without progress.
#[derive(Debug)]
pub struct WriteStall<T> {
    io: T,
    limit: Duration,
    /// Armed when a write could not go on, dropped when one does.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteStall<T> {
    /// Wraps `io`.
    pub fn new(io: T, limit: Duration) -> Self {
        Self {
            io,
            limit,
            stalled: None,
        }
    }

    /// A write's outcome, with the stall timer started on `Pending` (and polled, so that it
    /// wakes the writer when it runs out) and cleared on progress.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if outcome.is_ready() {
            self.stalled = None;
            return outcome;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStall<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStall<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let outcome = Pin::new(&mut me.io).poll_write(cx, buf);
        me.watch(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let outcome = Pin::new(&mut me.io).poll_write_vectored(cx, bufs);
        me.watch(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let outcome = Pin::new(&mut me.io).poll_flush(cx);
        me.watch(cx, outcome)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let outcome = Pin::new(&mut me.io).poll_shutdown(cx);
        me.watch(cx, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_limit_and_one_that_moves_does_not() {
        // The far end stays open and unread.
        let (near, _far) = tokio::io::duplex(64);
        let limit = Duration::from_millis(300);
        let mut w = WriteStall::new(near, limit);
        // Fills the pipe, then waits.
        let started = tokio::time::Instant::now();
        let e = w.write_all(&[7u8; 1024]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= limit);

        // A reader that keeps up, a little at a time, never trips it: each pause (10 ms) is far
        // inside the limit (2 s), though the whole write takes many of them.
        let (near, mut far) = tokio::io::duplex(64);
        let mut w = WriteStall::new(near, Duration::from_secs(2));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                match far.read(&mut buf).await {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        w.write_all(&[1u8; 640]).await.unwrap();
        w.shutdown().await.unwrap();
        drop(w);
        assert_eq!(reader.await.unwrap(), vec![1u8; 640]);
    }
}
