//! `GET /.well-known/oauth-authorization-server` (RFC 8414), with `gateway_protocol_version: 1`.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

/// The handler.
pub async fn metadata(State(state): State<AppState>) -> Json<Value> {
    let o = &state.origin;
    Json(json!({
        "issuer": o,
        "device_authorization_endpoint": format!("{o}/oauth/device_authorization"),
        "token_endpoint": format!("{o}/oauth/token"),
        "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["openid", "profile", "email"],
        "gateway_protocol_version": 1
    }))
}
