//! Liveness and readiness. `/healthz` never touches the store; `/readyz` asks it, and keeps
//! answering ready for `store.readiness_grace_seconds` after it stops answering. One probe runs
//! at a time: a readiness check arriving while one is out gets the last answer, so a flood of
//! them (the route is open to addresses the allowlist drops) holds at most one connection.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::state::AppState;

/// Remembers the last successful store probe.
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
}

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
    let r = &state.readiness;
    let answer = readyz_probe(&state).await;
    r.ready
        .store(answer.status() == StatusCode::OK, Ordering::Relaxed);
    answer
}

fn last_answer(r: &Readiness) -> Response {
    if r.ready.load(Ordering::Relaxed) {
        text(StatusCode::OK, "ready")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn readyz_probe(state: &AppState) -> Response {
    let r = &state.readiness;
    let Ok(_probing) = r.probing.try_lock() else {
        return last_answer(r);
    };
    let probe = tokio::time::timeout(r.probe_timeout, state.store.ping()).await;
    let now = state.clock.now().unix_timestamp();
    match probe {
        Ok(Ok(())) => {
            r.ok_at(now);
            text(StatusCode::OK, "ready")
        }
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            if r.within_grace(now) {
                tracing::warn!("readiness probe failed, still inside the grace window: {why}");
                text(StatusCode::OK, "ready")
            } else {
                tracing::warn!("readiness probe failed: {why}");
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready")
            }
        }
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
}
