//! The OTLP relay: the client's telemetry arrives at `POST /v1/{metrics,logs,traces}`, is answered
//! `200` at once, and is delivered unchanged (same bytes, content type and encoding) to every
//! `telemetry.forward_to` destination that takes that signal, with the destination's headers and
//! never the client's credentials. At most 128 payloads are held at once, and at most
//! `limits.telemetry_in_flight_bytes` (64 MiB), counted from each payload's first byte received
//! to its last delivery; past either bound the client is answered `503` with `Retry-After`,
//! which OTLP/HTTP exporters retry. Each destination has its own circuit breaker and a 10 s
//! timeout per delivery.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::breaker::{Breaker, Delivery};
use crate::config::Telemetry;

/// Payloads in flight at once, across destinations.
pub const MAX_IN_FLIGHT: usize = 128;
const TIMEOUT: Duration = Duration::from_secs(10);
/// Seconds an exporter is asked to wait when the relay is full.
pub const RETRY_AFTER_SECS: u32 = 2;
/// The unit of the byte budget's permits.
const KIB: usize = 1024;

/// An OTLP signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `/v1/metrics`.
    Metrics,
    /// `/v1/logs`.
    Logs,
    /// `/v1/traces`.
    Traces,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
            Signal::Traces => "/v1/traces",
        }
    }
}

struct Destination {
    /// Log-safe name (scheme, host, port; no credentials or path).
    name: String,
    base: String,
    headers: HeaderMap,
    signals: [bool; 3],
    breaker: Mutex<Breaker>,
    refused: AtomicU64,
}

/// The relay and its counters.
pub struct Relay {
    dests: Vec<Arc<Destination>>,
    http: reqwest::Client,
    permits: Arc<Semaphore>,
    /// The byte budget, one permit per KiB held.
    kib: Arc<Semaphore>,
    /// Payloads refused because the relay was full (the exporter was told to retry).
    pub dropped: AtomicU64,
}

/// The relay is holding all it may: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Why a payload was not received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreceived {
    /// The byte budget ran out while it arrived.
    Full,
    /// The body broke off (or was cut off at its limit or deadline).
    Broken,
}

/// A received payload and its share of the byte budget, given back when it is delivered.
pub struct Payload {
    body: Bytes,
    budget: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relay({} destinations)", self.dests.len())
    }
}

impl Relay {
    /// Builds the relay from `telemetry` (validated at boot), holding at most `in_flight_bytes` of
    /// payloads at once.
    pub fn new(t: Option<&Telemetry>, in_flight_bytes: u64, http: reqwest::Client) -> Self {
        let dests = t
            .map(|t| t.forward_to.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|f| {
                let mut headers = HeaderMap::new();
                for (k, v) in &f.headers {
                    if let (Ok(n), Ok(mut val)) = (
                        HeaderName::from_bytes(k.as_bytes()),
                        HeaderValue::from_str(v.expose()),
                    ) {
                        val.set_sensitive(true);
                        headers.insert(n, val);
                    }
                }
                let name = url::Url::parse(&f.url)
                    .map(|u| {
                        format!(
                            "{}://{}{}",
                            u.scheme(),
                            u.host_str().unwrap_or_default(),
                            u.port().map(|p| format!(":{p}")).unwrap_or_default()
                        )
                    })
                    .unwrap_or_else(|_| "destination".into());
                Arc::new(Destination {
                    name,
                    base: f.url.trim_end_matches('/').to_owned(),
                    headers,
                    signals: [f.metrics, f.logs, f.traces],
                    breaker: Mutex::new(Breaker::default()),
                    refused: AtomicU64::new(0),
                })
            })
            .collect();
        Self {
            dests,
            http,
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            kib: Arc::new(Semaphore::new(
                usize::try_from(in_flight_bytes / KIB as u64)
                    .unwrap_or(Semaphore::MAX_PERMITS)
                    .clamp(1, Semaphore::MAX_PERMITS),
            )),
            dropped: AtomicU64::new(0),
        }
    }

    /// Destinations whose breaker is open now.
    pub fn open_breakers(&self) -> usize {
        let now = Instant::now();
        self.dests
            .iter()
            .filter(|d| d.breaker.lock().map(|b| b.is_open(now)).unwrap_or(false))
            .count()
    }

    /// Whether any destination takes `signal`.
    pub fn relays(&self, signal: Signal) -> bool {
        self.dests.iter().any(|d| d.signals[signal as usize])
    }

    /// Reads a payload, charging the byte budget as each piece arrives, so payloads being
    /// received count against the same bound as payloads waiting for delivery.
    pub async fn receive(&self, mut body: Body) -> Result<Payload, Unreceived> {
        let mut buf = BytesMut::new();
        let mut budget: Option<OwnedSemaphorePermit> = None;
        let mut charged = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Unreceived::Broken)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            let need = buf.len().div_ceil(KIB);
            if need > charged {
                let more = u32::try_from(need - charged).map_err(|_| self.refuse())?;
                let permit = self
                    .kib
                    .clone()
                    .try_acquire_many_owned(more)
                    .map_err(|_| self.refuse())?;
                charged = need;
                match &mut budget {
                    Some(b) => b.merge(permit),
                    None => budget = Some(permit),
                }
            }
        }
        Ok(Payload {
            body: buf.freeze(),
            budget,
        })
    }

    fn refuse(&self) -> Unreceived {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 || n.is_multiple_of(100) {
            tracing::warn!("telemetry relay: {n} payloads refused so far (the relay was full: {MAX_IN_FLIGHT} payloads or its byte budget in flight)");
        }
        Unreceived::Full
    }

    fn wants(&self, signal: Signal) -> Vec<Arc<Destination>> {
        let i = signal as usize;
        self.dests
            .iter()
            .filter(|d| d.signals[i])
            .cloned()
            .collect()
    }

    /// Accepts one received payload for delivery, or refuses it when the relay already holds
    /// [`MAX_IN_FLIGHT`] payloads; never waits.
    pub fn accept(
        &self,
        signal: Signal,
        content_type: HeaderValue,
        encoding: Option<HeaderValue>,
        payload: Payload,
    ) -> Result<(), Full> {
        let targets = self.wants(signal);
        if targets.is_empty() {
            return Ok(());
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.refuse();
            return Err(Full);
        };
        let Payload { body, budget } = payload;
        let http = self.http.clone();
        tokio::spawn(async move {
            let deliveries = targets.into_iter().map(|d| {
                deliver(
                    http.clone(),
                    d,
                    signal,
                    content_type.clone(),
                    encoding.clone(),
                    body.clone(),
                )
            });
            futures_util::future::join_all(deliveries).await;
            drop(permit);
            drop(budget);
        });
        Ok(())
    }
}

async fn deliver(
    http: reqwest::Client,
    d: Arc<Destination>,
    signal: Signal,
    ct: HeaderValue,
    enc: Option<HeaderValue>,
    body: Bytes,
) {
    if !d
        .breaker
        .lock()
        .map(|b| b.allows(Instant::now()))
        .unwrap_or(true)
    {
        return;
    }
    let mut req = http
        .post(format!("{}{}", d.base, signal.path()))
        .timeout(TIMEOUT)
        .header(http::header::CONTENT_TYPE, ct)
        .headers(d.headers.clone())
        .body(body);
    if let Some(e) = enc {
        req = req.header(http::header::CONTENT_ENCODING, e);
    }
    let outcome = match req.send().await {
        Ok(res) => Delivery::from_status(res.status().as_u16()),
        Err(e) => {
            tracing::debug!(destination = %d.name, "telemetry delivery failed: {}", e.without_url());
            Delivery::Failed
        }
    };
    if outcome == Delivery::Refused {
        let n = d.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 || n.is_multiple_of(100) {
            tracing::warn!(destination = %d.name, "telemetry destination refused a payload ({n} so far)");
        }
    }
    let opened = d
        .breaker
        .lock()
        .map(|mut b| b.record(outcome, Instant::now()))
        .unwrap_or(false);
    if opened {
        tracing::warn!(destination = %d.name, "telemetry destination failed repeatedly: pausing deliveries for 30 s");
    }
}
