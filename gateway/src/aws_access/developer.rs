//! The developer behind an agent-access request: a valid gateway session token, as an extractor.
//! A missing or bad token ends the request with `401 unauthorized` in the subsystem's error shape
//! and an `auth.denied` audit event.

use axum::extract::{FromRequestParts, MatchedPath};
use http::request::Parts;

use super::wire::AwsError;
use crate::auth::bearer::bearer;
use crate::auth::token::Claims;
use crate::http::access::ClientIp;
use crate::state::AppState;

/// A signed-in developer, with where they call from.
#[derive(Debug, Clone)]
pub struct Developer {
    /// The verified token's claims.
    pub claims: Claims,
    /// The client's address, when known.
    pub ip: Option<String>,
}

impl FromRequestParts<AppState> for Developer {
    type Rejection = AwsError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AwsError> {
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .and_then(|c| c.0)
            .map(|ip| ip.to_string());
        let reason = match bearer(&parts.headers) {
            None => "missing_token",
            Some(token) => match state.keys.verify(token, state.clock.now()) {
                Ok(claims) => return Ok(Developer { claims, ip }),
                Err(e) => {
                    tracing::debug!("bearer refused: {e}");
                    "invalid_token"
                }
            },
        };
        // The route's pattern (`/v1/aws/grants/{id}`), not the client's path: an id of any
        // length would otherwise be written down for an unauthenticated caller.
        let path = parts
            .extensions
            .get::<MatchedPath>()
            .map_or("(unmatched)", MatchedPath::as_str);
        state.audit.emit(
            "auth.denied",
            state.clock.now(),
            serde_json::json!({"reason": reason, "path": path, "client_ip": ip}),
        );
        Err(AwsError::Unauthorized)
    }
}
