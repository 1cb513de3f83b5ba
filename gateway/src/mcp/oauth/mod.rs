//! The MCP server's authorization, as the MCP authorization spec asks: Protected Resource
//! Metadata for `/mcp`, and the gateway as the authorization server in front of the company
//! IdP (authorization code with PKCE, resource indicators, refresh, dynamic registration).
//! Its access tokens are good at `/mcp` only, and never leave the gateway.
//!
//! A sign-in goes through the stages in order, a file each:
//!
//! - [`metadata`]: where the client finds the authorization server and what it supports.
//! - [`register`]: the client registers (stateless: its id is its registration, sealed).
//! - [`authorize`]: the authorization request is checked.
//! - [`signin`]: the person signs in at the IdP; the callback.
//! - [`consent`]: the person allows the client; the code is issued.
//! - [`code`]: the authorization code, single use, bound to what it was issued for.
//! - [`token`]: the token endpoint: a code or a refresh token for tokens.
//! - [`refresh`]: refresh token families, rotated, ended on reuse.
//! - [`access`]: the access tokens, minted and verified.

pub mod access;
pub mod authorize;
pub mod code;
pub mod consent;
pub mod metadata;
pub mod refresh;
pub mod register;
pub mod signin;
pub mod token;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;
use time::OffsetDateTime;

use crate::auth::bearer::bearer;
use crate::auth::codes::sha256_hex;
use crate::auth::oauth_error::no_store;
use crate::auth::token::Identity;
use crate::config::mcp::Mcp;
use crate::http::error::ApiError;
use crate::state::AppState;

/// Who a valid MCP access token speaks for.
#[derive(Debug, Clone)]
pub struct McpCaller {
    /// The developer, as the IdP named them at sign-in.
    pub identity: Identity,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// The token's own id (`jti`), for the audit.
    pub token_id: String,
}

/// The protected resource: `<public_url>/mcp`.
pub fn resource(state: &AppState) -> String {
    format!("{}/mcp", state.origin)
}

/// The authorization server's issuer: `<public_url>/mcp/oauth`.
pub fn issuer(state: &AppState) -> String {
    format!("{}/mcp/oauth", state.origin)
}

/// `aws_access.mcp`, when the MCP server is on.
pub fn settings(state: &AppState) -> Option<&Mcp> {
    state.config.aws_access.as_ref()?.mcp.as_ref()
}

/// The access token keys of this gateway.
pub fn keys(state: &AppState) -> access::AccessKeys {
    access::AccessKeys::new(
        &state.config.session.jwt_secret.to_vec(),
        &issuer(state),
        &resource(state),
    )
}

/// A short, stable name of a client for the audit (its id is long): 16 hex digits of its hash.
pub fn client_ref(client_id: &str) -> String {
    sha256_hex(client_id).chars().take(16).collect()
}

/// The authorization server's routes (all unauthenticated).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server/mcp/oauth",
            get(metadata::authorization_server),
        )
        .route("/mcp/oauth/register", post(register::register))
        .route("/mcp/oauth/authorize", get(authorize::authorize))
        .route("/mcp/oauth/consent", post(consent::decide))
        .route("/mcp/oauth/token", post(token::token))
}

/// Checks the bearer token of a `/mcp` request; `Err` is the 401 to answer, with its
/// `WWW-Authenticate` challenge (404 when the MCP server is off).
// The refusal is the answer itself, handed back once per request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<McpCaller, Response> {
    if settings(state).is_none() {
        return Err(ApiError::NotFound.into_response());
    }
    let presented = bearer(headers);
    let reason = match presented {
        None => "missing_token",
        Some(t) => match keys(state).verify(t, now) {
            Ok(v) => {
                return Ok(McpCaller {
                    identity: v.identity,
                    client_id: v.client_id,
                    token_id: v.jti,
                })
            }
            Err(e) => {
                tracing::debug!("MCP bearer refused: {e}");
                "invalid_token"
            }
        },
    };
    state.audit.emit(
        "auth.denied",
        now,
        json!({"reason": reason, "path": "/mcp"}),
    );
    Err(challenge(state, presented.is_some()))
}

/// The `WWW-Authenticate` value of a 401 at `/mcp` of the gateway at `origin`.
pub fn challenge_header(origin: &str, token_presented: bool) -> String {
    let mut v = format!(
        "Bearer resource_metadata=\"{origin}/.well-known/oauth-protected-resource/mcp\", scope=\"{}\"",
        access::SCOPE
    );
    if token_presented {
        v.push_str(", error=\"invalid_token\"");
    }
    v
}

fn challenge(state: &AppState, token_presented: bool) -> Response {
    let body = if token_presented {
        json!({"error": "invalid_token", "error_description": "The access token is invalid or expired."})
    } else {
        json!({"error": "invalid_request", "error_description": "An access token is required."})
    };
    let mut res = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge_header(&state.origin, token_presented)) {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    no_store(res.headers_mut());
    res
}

#[cfg(test)]
mod tests {
    use super::challenge_header;

    #[test]
    fn the_challenge_names_the_metadata_and_the_scope_and_says_when_a_token_failed() {
        assert_eq!(
            challenge_header("https://gw.example.com", false),
            "Bearer resource_metadata=\"https://gw.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"aws\""
        );
        assert_eq!(
            challenge_header("https://gw.example.com", true),
            "Bearer resource_metadata=\"https://gw.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"aws\", error=\"invalid_token\""
        );
    }
}
