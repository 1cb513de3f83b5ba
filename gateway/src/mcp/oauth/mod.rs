//! The MCP server's authorization, as the MCP authorization spec asks: Protected Resource
//! Metadata for `/mcp`, and the gateway as the authorization server in front of the company
//! IdP (authorization code with PKCE, resource indicators, refresh, dynamic registration).
//! Its access tokens are good at `/mcp` only, and never leave the gateway.

use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{HeaderMap, StatusCode};
use time::OffsetDateTime;

use crate::auth::token::Identity;
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

/// The authorization server's routes (all unauthenticated).
pub fn routes() -> Router<AppState> {
    Router::new()
}

/// Checks the bearer token of a `/mcp` request; `Err` is the 401 to answer, with its
/// `WWW-Authenticate` challenge.
#[allow(clippy::result_large_err)]
pub fn authenticate(
    _state: &AppState,
    _headers: &HeaderMap,
    _now: OffsetDateTime,
) -> Result<McpCaller, Response> {
    Err(StatusCode::UNAUTHORIZED.into_response())
}
