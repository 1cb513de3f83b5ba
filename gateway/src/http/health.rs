//! Liveness and readiness. `/healthz` never touches the store; `/readyz` asks it
//! ([`crate::store::readiness::Readiness`]: one probe at a time, with a grace window), and is
//! open to addresses the allowlist drops.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::state::AppState;

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `GET /healthz`.
pub async fn healthz() -> Response {
    text(StatusCode::OK, "ok")
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.readiness.check(&state.store, &state.clock).await {
        text(StatusCode::OK, "ready")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
