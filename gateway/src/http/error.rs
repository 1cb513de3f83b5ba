//! The API error surface: every bearer-authenticated endpoint answers errors in the Anthropic
//! envelope `{"type":"error","error":{"type","message"},"request_id"}`, decided here and nowhere
//! else. The body itself is rendered by the edge layer, which knows the request id.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

use crate::upstream::Failure;

/// An error a client sees on the API surface.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// Missing, malformed, expired or forged bearer.
    #[error("invalid token")]
    InvalidToken,
    /// Authenticated, but no such route.
    #[error("not found")]
    NotFound,
    /// Malformed request or policy violation.
    #[error("{0}")]
    BadRequest(String),
    /// Signed in, but not allowed to use this (no policy admits the caller).
    #[error("{0}")]
    Forbidden(String),
    /// Body over the route's limit (`limits.max_request_bytes` on the Messages API).
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body did not arrive within the route's read deadline.
    #[error("request body not received in time")]
    RequestTimeout,
    /// Chunked body where a length is required.
    #[error("length required")]
    LengthRequired,
    /// Request target over `limits.max_url_length`.
    #[error("request URI too long")]
    UriTooLong,
    /// Headers over `limits.max_request_header_bytes`.
    #[error("request headers too large")]
    HeadersTooLarge,
    /// Something on our side failed; details are in the operator's log.
    #[error("internal error")]
    Internal,
    /// An upstream attempt failed and this is the answer to relay.
    #[error("{}", .0.message)]
    Upstream(Box<Failure>),
    /// Every upstream failed over.
    #[error("all upstreams failed ({0} attempted)")]
    AllFailed(usize),
    /// The endpoint is not available for this model on this gateway.
    #[error("{0}")]
    NotSupported(String),
    /// A spend cap refused the request (or could not be checked, fail-closed).
    #[error("{}", .0.message)]
    Billing(Box<Billing>),
    /// An inference rate limit refused the request.
    #[error("{}", .0.message)]
    RateLimited(Box<RateLimited>),
    /// The gateway itself is saturated or stopping: the client should retry shortly (a `529
    /// overloaded_error`, which the client retries).
    #[error("{0}")]
    Overloaded(&'static str),
}

/// A `429 rate_limit_error`.
#[derive(Debug, Clone)]
pub struct RateLimited {
    /// Which limit.
    pub message: String,
    /// Seconds until it frees up.
    pub retry_after: i64,
}

/// A `429 billing_error` and its usage headers.
#[derive(Debug, Clone)]
pub struct Billing {
    /// The message, naming the period and its reset.
    pub message: String,
    /// `retry-after`, `x-should-retry` and the `anthropic-ratelimit-unified-*` headers.
    pub headers: http::HeaderMap,
}

/// The API's status for an overloaded service.
fn overloaded() -> StatusCode {
    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidToken => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::LengthRequired => StatusCode::LENGTH_REQUIRED,
            ApiError::UriTooLong => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Upstream(f) => f.status,
            ApiError::AllFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::NotSupported(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Billing(_) | ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded(_) => overloaded(),
        }
    }

    /// The envelope's `error.type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::InvalidToken => "authentication_error",
            ApiError::NotFound => "not_found_error",
            ApiError::Forbidden(_) => "permission_error",
            ApiError::PayloadTooLarge => "request_too_large",
            ApiError::BadRequest(_)
            | ApiError::RequestTimeout
            | ApiError::LengthRequired
            | ApiError::UriTooLong
            | ApiError::HeadersTooLarge => "invalid_request_error",
            ApiError::Internal | ApiError::AllFailed(_) => "api_error",
            ApiError::Upstream(f) => f.kind,
            ApiError::NotSupported(_) => "not_supported",
            ApiError::Billing(_) => "billing_error",
            ApiError::RateLimited(_) => "rate_limit_error",
            ApiError::Overloaded(_) => "overloaded_error",
        }
    }
}

/// Marks a response whose body the edge layer renders as the Anthropic envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `error.type`.
    pub kind: &'static str,
    /// `error.message`.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Upstream(f) = &self {
            if let Some((headers, body)) = &f.relay {
                // An Anthropic-format error from an Anthropic upstream: relayed as it came.
                let mut res = (f.status, body.clone()).into_response();
                res.headers_mut().extend(headers.clone());
                return res;
            }
        }
        let mut res = self.status().into_response();
        if matches!(
            self,
            ApiError::InvalidToken | ApiError::NotSupported(_) | ApiError::Forbidden(_)
        ) {
            res.headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("false"));
        }
        if let ApiError::RateLimited(r) = &self {
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(r.retry_after));
        }
        if let ApiError::Overloaded(_) = &self {
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            res.headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("true"));
        }
        if let ApiError::Billing(b) = &self {
            res.headers_mut().extend(b.headers.clone());
        }
        if let ApiError::Upstream(f) = &self {
            if let Some(secs) = f.retry_after {
                res.headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
            }
        }
        res.extensions_mut().insert(Envelope {
            kind: self.kind(),
            message: self.to_string(),
        });
        res
    }
}

/// The plain-text refusal of the access layer.
pub fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "forbidden",
    )
        .into_response()
}
