//! The signed-in caller of a bearer-authenticated route, as an extractor: a missing or bad token
//! ends the request with `401 invalid token` and an `auth.denied` audit event. [`signed_in`] is
//! the check itself, for extractors that answer a refusal in another wire shape.

use axum::extract::{FromRequestParts, MatchedPath};
use http::request::Parts;

use super::bearer::bearer;
use super::token::{Claims, Identity};
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
        signed_in(parts, state)
            .map(|c| Caller(c.identity))
            .ok_or(ApiError::InvalidToken)
    }
}

/// The client's address, when known.
pub fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ClientIp>()
        .and_then(|c| c.0)
        .map(|ip| ip.to_string())
}

/// The verified claims of the request's session token. A missing or bad token gives `None` and
/// writes an `auth.denied` event naming the route's pattern (`/v1/aws/grants/{id}`), never the
/// client's path: a path of any length would otherwise be written down for anyone.
pub fn signed_in(parts: &Parts, state: &AppState) -> Option<Claims> {
    let reason = match bearer(&parts.headers) {
        None => "missing_token",
        Some(token) => match state.keys.verify(token, state.clock.now()) {
            Ok(claims) => return Some(claims),
            Err(e) => {
                tracing::debug!("bearer refused: {e}");
                "invalid_token"
            }
        },
    };
    let path = parts
        .extensions
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    let rid = parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.as_str().to_owned());
    state.audit.emit(
        "auth.denied",
        state.clock.now(),
        serde_json::json!({"reason": reason, "path": path, "client_ip": client_ip(parts), "request_id": rid}),
    );
    None
}
