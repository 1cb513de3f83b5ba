//! Who is calling: sign-in (an RFC 8628 device grant in front of the company's OpenID Connect
//! provider) and the session tokens checked on every bearer request.

mod backoff;
pub mod bearer;
pub mod browser_signin;
pub mod callback;
pub mod caller;
pub mod claims;
pub mod codes;
pub(crate) mod context;
pub(crate) mod device;
mod discovery;
pub mod gate;
pub mod grant;
pub mod jwt;
pub mod oauth_error;
pub mod oidc;
pub(crate) mod pages;
pub mod refresh_state;
pub mod seal;
pub mod throttle;
pub mod token;
mod token_endpoint;
pub mod token_form;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The sign-in routes (all unauthenticated).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route("/oauth/device_authorization", post(device::authorize))
        .route("/device", get(device::page).post(device::approve))
        .route("/device/deny", post(device::deny))
        .route("/oauth/token", post(token_endpoint::token))
}
