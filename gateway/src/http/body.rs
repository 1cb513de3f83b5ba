//! The body budget of each route: how many bytes it may carry and how long the client has to send
//! them. Enforced on the body stream itself, so a chunked body without a `Content-Length` is cut
//! off at the same limit and nothing past it is buffered, and a slow sender cannot hold a task or
//! its memory past the deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use crate::config::Limits;

/// What a route may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most body bytes.
    pub max_bytes: u64,
    /// Time from the request head to the body's last byte.
    pub deadline: Duration,
}

impl Budget {
    /// The budget of the route at `path`: the Messages API gets `max_request_bytes`, the OTLP
    /// relay `max_telemetry_bytes`, the Admin API `max_admin_body_bytes`, the MCP endpoint
    /// [`crate::mcp::server::MAX_BODY_BYTES`], agent access (small
    /// JSON requests and the approval forms) and everything else (the sign-in forms, pages,
    /// unknown routes) `max_form_bytes`.
    pub fn for_path(l: &Limits, path: &str) -> Budget {
        let long = Duration::from_secs(l.body_read_timeout_seconds);
        let short = Duration::from_secs(l.small_body_read_timeout_seconds);
        let (max_bytes, deadline) = match path {
            "/v1/messages" | "/v1/messages/count_tokens" => (l.max_request_bytes, long),
            "/v1/metrics" | "/v1/logs" | "/v1/traces" => (l.max_telemetry_bytes, short),
            p if p.starts_with("/v1/organizations/") => (l.max_admin_body_bytes, short),
            p if p.starts_with("/v1/aws/") || p.starts_with("/aws/approvals/") => {
                (l.max_form_bytes, short)
            }
            // The MCP endpoint: one JSON-RPC message, as large as a tool's largest argument.
            "/mcp" => (crate::mcp::server::MAX_BODY_BYTES, short),
            // The AWS proxy: the calls of AWS SDKs, bodies up to the Messages API's limit (the
            // proxy's own `max_request_bytes` may be lower), read only for a gateway credential.
            p if p == "/aws" || p.starts_with("/aws/") => (l.max_request_bytes, long),
            _ => (l.max_form_bytes, short),
        };
        Budget {
            max_bytes,
            deadline,
        }
    }
}

/// Why a body was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overrun {
    /// More bytes than the budget.
    TooLarge,
    /// Not all there by the deadline.
    TooSlow,
}

/// A request body held to a [`Budget`]. When it cuts the body off, the reader sees an error and
/// the reason is left in the shared cell for the layer to answer with.
pub struct Guarded {
    inner: Body,
    left: u64,
    deadline: Pin<Box<Sleep>>,
    overrun: Arc<OnceLock<Overrun>>,
}

impl Guarded {
    /// Wraps `inner`; the deadline starts now.
    pub fn new(inner: Body, budget: Budget, overrun: Arc<OnceLock<Overrun>>) -> Self {
        Self {
            inner,
            left: budget.max_bytes,
            deadline: Box::pin(tokio::time::sleep(budget.deadline)),
            overrun,
        }
    }

    fn cut(&mut self, why: Overrun) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let _ = self.overrun.set(why);
        // Stop holding the connection's body.
        self.inner = Body::empty();
        let message = match why {
            Overrun::TooLarge => "request body over its limit",
            Overrun::TooSlow => "request body not received in time",
        };
        Poll::Ready(Some(Err(axum::Error::new(message))))
    }
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.overrun.get().is_some() {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return this.cut(Overrun::TooSlow);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if n > this.left {
                    return this.cut(Overrun::TooLarge);
                }
                this.left -= n;
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
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
    use http_body_util::BodyExt;

    use super::*;

    fn budget(max_bytes: u64, secs: u64) -> Budget {
        Budget {
            max_bytes,
            deadline: Duration::from_secs(secs),
        }
    }

    #[tokio::test]
    async fn a_stream_past_its_limit_is_cut_off_there() {
        let chunks = futures_util::stream::iter(
            (0..1000).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1024]))),
        );
        let overrun = Arc::new(OnceLock::new());
        let body = Guarded::new(Body::from_stream(chunks), budget(4096, 60), overrun.clone());
        assert!(body.collect().await.is_err());
        assert_eq!(overrun.get(), Some(&Overrun::TooLarge));

        let overrun = Arc::new(OnceLock::new());
        let body = Guarded::new(
            Body::from(vec![b'x'; 4096]),
            budget(4096, 60),
            overrun.clone(),
        );
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 4096);
        assert_eq!(overrun.get(), None);
    }

    #[tokio::test]
    async fn a_body_that_never_ends_is_cut_off_at_the_deadline() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        tx.send(Ok(Bytes::from_static(b"a"))).await.unwrap();
        let overrun = Arc::new(OnceLock::new());
        let body = Guarded::new(
            Body::from_stream(tokio_stream_from(rx)),
            budget(1 << 20, 1),
            overrun.clone(),
        );
        // The sender stays open and silent: only the deadline can end this.
        assert!(body.collect().await.is_err());
        assert_eq!(overrun.get(), Some(&Overrun::TooSlow));
        drop(tx);
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    #[test]
    fn each_route_gets_its_own_budget() {
        let l = Limits::default();
        assert_eq!(Budget::for_path(&l, "/v1/messages").max_bytes, 32 << 20);
        assert_eq!(
            Budget::for_path(&l, "/v1/messages").deadline,
            Duration::from_secs(120)
        );
        assert_eq!(Budget::for_path(&l, "/oauth/token").max_bytes, 16 << 10);
        assert_eq!(Budget::for_path(&l, "/mcp").max_bytes, 2 << 20);
        assert_eq!(Budget::for_path(&l, "/mcp/oauth/token").max_bytes, 16 << 10);
        assert_eq!(Budget::for_path(&l, "/device/deny").max_bytes, 16 << 10);
        assert_eq!(Budget::for_path(&l, "/v1/logs").max_bytes, 4 << 20);
        assert_eq!(
            Budget::for_path(&l, "/v1/organizations/spend_limits").max_bytes,
            64 << 10
        );
        assert_eq!(
            Budget::for_path(&l, "/oauth/token").deadline,
            Duration::from_secs(15)
        );
        assert_eq!(Budget::for_path(&l, "/v1/aws/grants").max_bytes, 16 << 10);
        assert_eq!(Budget::for_path(&l, "/aws/bucket/key").max_bytes, 32 << 20);
        assert_eq!(
            Budget::for_path(&l, "/aws/approvals/grt_x/approve").max_bytes,
            16 << 10
        );
        assert_eq!(
            Budget::for_path(&l, "/v1/organizations/aws_access/members").max_bytes,
            64 << 10
        );
    }
}
