//! Discovery: the Protected Resource Metadata of `/mcp` (RFC 9728), at the path-aware URL and
//! the root one the client falls back to, and the metadata of the MCP authorization server
//! (RFC 8414) at the URL its issuer `<origin>/mcp/oauth` is found at. The device sign-in's own
//! document at `/.well-known/oauth-authorization-server` is another issuer's and stays apart.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::http::error::ApiError;
use crate::state::AppState;

/// `GET /.well-known/oauth-protected-resource[/mcp]`.
pub async fn protected_resource(State(state): State<AppState>) -> Response {
    if super::settings(&state).is_none() {
        return ApiError::NotFound.into_response();
    }
    Json(json!({
        "resource": super::resource(&state),
        "authorization_servers": [super::issuer(&state)],
        "scopes_supported": [super::access::SCOPE],
        "bearer_methods_supported": ["header"],
        "resource_name": "claude-gateway AWS tools",
    }))
    .into_response()
}

/// `GET /.well-known/oauth-authorization-server/mcp/oauth`.
pub async fn authorization_server(State(state): State<AppState>) -> Response {
    if super::settings(&state).is_none() {
        return ApiError::NotFound.into_response();
    }
    let i = super::issuer(&state);
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "registration_endpoint": format!("{i}/register"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": [super::access::SCOPE],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": false,
    }))
    .into_response()
}
