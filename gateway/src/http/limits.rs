//! Size limits checked from the request head, before any body byte is read: URL length (414),
//! header bytes (431), `Content-Length` over the route's body budget (413), a chunked body without
//! a length on inference routes (411), and the sign-in rate limits. Then the body itself is held
//! to the route's budget as it arrives (413 past its size, 408 past its deadline).

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

use super::body::{Budget, Guarded, Overrun};
use super::error::ApiError;
use crate::state::AppState;

/// Routes whose bodies must carry a `Content-Length` (the client always sends one).
const LENGTH_REQUIRED: &[&str] = &["/v1/messages", "/v1/messages/count_tokens"];

/// Layer function.
pub async fn limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let budget = Budget::for_path(&state.config.limits, req.uri().path());
    if let Err(e) = check(&state.config.limits, budget, &req) {
        return e.into_response();
    }
    let gate =
        crate::auth::gate::before_body(&state, req.method(), req.uri().path(), req.extensions());
    if let Some(refused) = gate.await {
        return refused;
    }
    let overrun = Arc::new(OnceLock::new());
    let req = req.map(|b| Body::new(Guarded::new(b, budget, overrun.clone())));
    let res = next.run(req).await;
    match overrun.get() {
        Some(Overrun::TooLarge) => ApiError::PayloadTooLarge.into_response(),
        Some(Overrun::TooSlow) => ApiError::RequestTimeout.into_response(),
        None => res,
    }
}

fn check(l: &crate::config::Limits, budget: Budget, req: &Request) -> Result<(), ApiError> {
    if let Some(max) = l.max_url_length {
        let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if len as u64 > max {
            return Err(ApiError::UriTooLong);
        }
    }
    if let Some(max) = l.max_request_header_bytes {
        let total: u64 = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().len() + v.len() + 4) as u64)
            .sum();
        if total > max {
            return Err(ApiError::HeadersTooLarge);
        }
    }
    match req.headers().get(CONTENT_LENGTH) {
        Some(v) => {
            let n = v
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or(ApiError::PayloadTooLarge)?;
            if n > budget.max_bytes {
                return Err(ApiError::PayloadTooLarge);
            }
        }
        None => {
            let chunked = req.headers().contains_key(TRANSFER_ENCODING);
            if chunked && LENGTH_REQUIRED.contains(&req.uri().path()) {
                return Err(ApiError::LengthRequired);
            }
        }
    }
    Ok(())
}
