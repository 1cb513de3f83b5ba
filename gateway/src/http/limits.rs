//! Size limits checked from the request head alone, before any body byte is read: URL length
//! (414), header bytes (431), `Content-Length` over `limits.max_request_bytes` (413), and a chunked
//! body without a length on inference routes (411).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

use super::error::ApiError;
use crate::state::AppState;

/// Routes whose bodies must carry a `Content-Length` (the client always sends one).
const LENGTH_REQUIRED: &[&str] = &["/v1/messages", "/v1/messages/count_tokens"];

/// Layer function.
pub async fn limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check(&state.config.limits, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn check(l: &crate::config::Limits, req: &Request) -> Result<(), ApiError> {
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
            if n > l.max_request_bytes {
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
