//! The OAuth error surface (RFC 6749 §5.2, RFC 8628 §3.5): `{"error","error_description"}` with
//! `Cache-Control: no-store`, decided here for every sign-in endpoint.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderValue, StatusCode};

/// An OAuth error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `error` code.
    pub error: &'static str,
    /// Human-readable detail.
    pub description: Option<&'static str>,
}

impl OAuthError {
    const fn new(
        status: StatusCode,
        error: &'static str,
        description: Option<&'static str>,
    ) -> Self {
        Self {
            status,
            error,
            description,
        }
    }
    /// Malformed request.
    pub const INVALID_REQUEST: Self = Self::new(StatusCode::BAD_REQUEST, "invalid_request", None);
    /// Unknown grant type.
    pub const UNSUPPORTED_GRANT: Self =
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", None);
    /// Keep polling.
    pub const PENDING: Self = Self::new(StatusCode::BAD_REQUEST, "authorization_pending", None);
    /// Poll slower.
    pub const SLOW_DOWN: Self = Self::new(StatusCode::TOO_MANY_REQUESTS, "slow_down", None);
    /// Too many sign-in starts from one address.
    pub const RATE_LIMITED: Self = Self::new(
        StatusCode::TOO_MANY_REQUESTS,
        "slow_down",
        Some("Too many sign-in attempts came from your network, which other people may share. Wait a few minutes."),
    );
    /// The person refused, or the IdP refused them.
    pub const ACCESS_DENIED: Self = Self::new(StatusCode::BAD_REQUEST, "access_denied", None);
    /// Unknown, used or expired device code.
    pub const EXPIRED: Self = Self::new(StatusCode::BAD_REQUEST, "expired_token", None);
    /// The refresh token is no good: sign in again.
    pub const INVALID_GRANT: Self = Self::new(StatusCode::UNAUTHORIZED, "invalid_grant", None);
    /// A code or rotated refresh token of the MCP authorization server that is no good: RFC
    /// 6749's `400` (the device sign-in's refresh answers `401`, as its client expects).
    pub const GRANT_REFUSED: Self = Self::new(StatusCode::BAD_REQUEST, "invalid_grant", None);
    /// The `resource` asked for is not this server's (RFC 8707).
    pub const INVALID_TARGET: Self = Self::new(
        StatusCode::BAD_REQUEST,
        "invalid_target",
        Some("resource must name this server's MCP endpoint."),
    );
    /// The IdP or the store is unreachable: keep the refresh token and try later.
    pub const UNAVAILABLE: Self = Self::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        None,
    );
    /// Our own failure.
    pub const SERVER_ERROR: Self =
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", None);
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = match self.description {
            Some(d) => serde_json::json!({"error": self.error, "error_description": d}),
            None => serde_json::json!({"error": self.error}),
        };
        let mut res = (self.status, Json(body)).into_response();
        no_store(res.headers_mut());
        res
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, for anything carrying codes or tokens.
pub fn no_store(h: &mut http::HeaderMap) {
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    h.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
}
