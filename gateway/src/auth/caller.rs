//! The signed-in caller of a bearer-authenticated route, as an extractor: a missing or bad token
//! ends the request with `401 invalid token` and an `auth.denied` audit event.

use axum::extract::FromRequestParts;
use http::request::Parts;

use super::bearer::bearer;
use super::token::Identity;
use crate::http::access::ClientIp;
use crate::http::edge::RequestId;
use crate::http::error::ApiError;
use crate::state::AppState;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let reason = match bearer(&parts.headers) {
            None => "missing_token",
            Some(token) => match state.keys.verify(token, state.clock.now()) {
                Ok(claims) => return Ok(Caller(claims.identity)),
                Err(e) => {
                    tracing::debug!("bearer refused: {e}");
                    "invalid_token"
                }
            },
        };
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .and_then(|c| c.0)
            .map(|ip| ip.to_string());
        let rid = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.as_str().to_owned());
        state.audit.emit(
            "auth.denied",
            state.clock.now(),
            serde_json::json!({"reason": reason, "path": parts.uri.path(), "client_ip": ip, "request_id": rid}),
        );
        Err(ApiError::InvalidToken)
    }
}
