//! `POST /v1/{metrics,logs,traces}`: a signed-in client's telemetry, handed to the relay
//! ([`super::relay`]) and answered at once.

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};

use super::relay::{Full, Signal, Unreceived, RETRY_AFTER_SECS};
use crate::auth::caller::Caller;
use crate::state::AppState;

async fn ingest(state: &AppState, signal: Signal, headers: &HeaderMap, body: Body) -> Response {
    if !state.relay.relays(signal) {
        // Nowhere to send it: not even read.
        return StatusCode::OK.into_response();
    }
    let payload = match state.relay.receive(body).await {
        Ok(p) => p,
        Err(Unreceived::Full) => return full(),
        // The body layer answers a cut-off body (413, 408); anything else broke off.
        Err(Unreceived::Broken) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/x-protobuf"));
    let enc = headers.get(http::header::CONTENT_ENCODING).cloned();
    match state.relay.accept(signal, ct, enc, payload) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(Full) => full(),
    }
}

/// `503` with `Retry-After`: OTLP/HTTP exporters retry it.
fn full() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(http::header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())],
    )
        .into_response()
}

/// `POST /v1/metrics`.
pub async fn metrics(
    State(state): State<AppState>,
    _c: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    ingest(&state, Signal::Metrics, &headers, body).await
}

/// `POST /v1/logs`.
pub async fn logs(
    State(state): State<AppState>,
    _c: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    ingest(&state, Signal::Logs, &headers, body).await
}

/// `POST /v1/traces`.
pub async fn traces(
    State(state): State<AppState>,
    _c: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    ingest(&state, Signal::Traces, &headers, body).await
}
