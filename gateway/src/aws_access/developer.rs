//! The developer behind an agent-access request: a valid gateway session token, as an extractor.
//! A missing or bad token ends the request with `401 unauthorized` in the subsystem's error shape
//! and an `auth.denied` audit event (the check is the gateway's one, [`signed_in`]).

use axum::extract::FromRequestParts;
use http::request::Parts;

use super::wire::AwsError;
use crate::auth::caller::{client_ip, signed_in};
use crate::auth::token::Claims;
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
        let claims = signed_in(parts, state).ok_or(AwsError::Unauthorized)?;
        Ok(Developer {
            claims,
            ip: client_ip(parts),
        })
    }
}
