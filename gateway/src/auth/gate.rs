//! The sign-in rate limits, checked from the request head: a client over its per-IP limit is
//! refused before a byte of its body is read, so a flood of form posts costs the gateway a
//! counter update each and no memory.

use axum::response::{IntoResponse, Response};
use http::{Extensions, Method, StatusCode};
use serde_json::json;

use super::context::Ctx;
use super::oauth_error::OAuthError;
use super::pages;
use super::throttle::Limit;
use crate::state::AppState;

/// The refusal for a sign-in POST over its per-IP limit, or `None` to go on. `extensions` are
/// the request's, carrying the client address and request id.
pub async fn before_body(
    state: &AppState,
    method: &Method,
    path: &str,
    extensions: &Extensions,
) -> Option<Response> {
    if method != Method::POST {
        return None;
    }
    let limits = &state.config.rate_limits;
    let (bucket, window) = match path {
        "/oauth/device_authorization" => ("devauth", &limits.device_authorization),
        "/device" | "/device/deny" => ("devverify", &limits.device_verify),
        _ => return None,
    };
    let ctx = Ctx::from_extensions(extensions);
    let limit = ctx.over_limit(state, bucket, window).await;
    let result = match limit {
        Limit::Within => return None,
        Limit::Over => "rate_limited",
        // The store did not answer: a passing outage, never a rate limit.
        Limit::Unavailable => "error",
    };
    if bucket == "devauth" {
        ctx.audit(state, "device.authorize", json!({"result": result}));
        return Some(match limit {
            Limit::Over => OAuthError::RATE_LIMITED.into_response(),
            _ => OAuthError::UNAVAILABLE.into_response(),
        });
    }
    let action = if path == "/device/deny" {
        "deny"
    } else {
        "approve"
    };
    ctx.audit(
        state,
        "device.verify",
        json!({"result": result, "action": action}),
    );
    Some(match limit {
        Limit::Over => pages::message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Too many attempts came from your network. Wait a few minutes and try again.",
        ),
        _ => super::device::unavailable_page(),
    })
}
