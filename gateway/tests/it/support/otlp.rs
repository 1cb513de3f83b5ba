//! A real OTLP/HTTP receiver on loopback: records every request (path, headers, bytes), can be told
//! to answer with a status or to hold requests, and tracks how many were in flight at once.

use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;

/// One received export.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    status: AtomicU16,
    hold_ms: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A running receiver.
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Inner {
            status: AtomicU16::new(200),
            ..Default::default()
        });
        // A collector takes payloads as large as the relay forwards.
        let app = Router::new()
            .fallback(record)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, inner }
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Answer with this status from now on.
    pub fn answer(&self, status: u16) {
        self.inner.status.store(status, Ordering::Relaxed);
    }

    /// Hold each request this long before answering.
    pub fn hold(&self, d: Duration) {
        self.inner
            .hold_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::Relaxed)
    }

    /// Waits until `n` requests arrived (or the deadline).
    pub async fn wait_for(&self, n: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.received().len() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

async fn record(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
    inner.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    });
    let hold = inner.hold_ms.load(Ordering::Relaxed);
    if hold > 0 {
        tokio::time::sleep(Duration::from_millis(hold)).await;
    }
    inner.in_flight.fetch_sub(1, Ordering::SeqCst);
    StatusCode::from_u16(inner.status.load(Ordering::Relaxed)).unwrap_or(StatusCode::OK)
}
