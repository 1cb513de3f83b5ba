//! The sign-in rate limits, and the approval page's, checked from the request head: a client over
//! its per-IP limit is refused before a byte of its body is read, so a flood of form posts costs
//! the gateway a counter update each and no memory.

use axum::response::{IntoResponse, Response};
use http::{Extensions, Method, StatusCode};
use serde_json::json;

use super::context::Ctx;
use super::oauth_error::OAuthError;
use super::pages;
use super::throttle::Limit;
use crate::aws_access::grants::MAX_ID_LEN;
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
        // The approval page's decisions: signed-in browser form posts like `/device`, counted
        // with its window in a bucket of their own.
        _ if approval_decision(path).is_some() => ("awsapproval", &limits.device_verify),
        // The MCP authorization server's registration and consent: a client's start and a
        // person's form post, each in a bucket of its own with the device sign-in's windows.
        "/mcp/oauth/register" => ("mcpregister", &limits.device_authorization),
        "/mcp/oauth/consent" => ("mcpconsent", &limits.device_verify),
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
    if let Some(grant) = approval_decision(path) {
        // The path is the client's: an id longer than any request's is not written down.
        let grant = (grant.len() <= MAX_ID_LEN).then_some(grant);
        ctx.audit(
            state,
            "aws.approval.refused",
            json!({"reason": result, "grant": grant}),
        );
        return Some(match limit {
            Limit::Over => too_many(),
            _ => pages::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                "Approvals are unavailable for a moment. Try again shortly.",
            ),
        });
    }
    if bucket == "mcpregister" {
        ctx.audit(state, "mcp.register", json!({"result": result}));
        return Some(match limit {
            Limit::Over => OAuthError::RATE_LIMITED.into_response(),
            _ => OAuthError::UNAVAILABLE.into_response(),
        });
    }
    if bucket == "mcpconsent" {
        ctx.audit(state, "mcp.authorize", json!({"result": result}));
        return Some(match limit {
            Limit::Over => too_many(),
            _ => super::device::unavailable_page(),
        });
    }
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
        Limit::Over => too_many(),
        _ => super::device::unavailable_page(),
    })
}

fn too_many() -> Response {
    pages::message(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "Too many attempts came from your network. Wait a few minutes and try again.",
    )
}

/// The request id of an approval-page decision path, `/aws/approvals/{id}/approve|deny`.
fn approval_decision(path: &str) -> Option<&str> {
    let (id, action) = path.strip_prefix("/aws/approvals/")?.split_once('/')?;
    (!id.is_empty() && matches!(action, "approve" | "deny")).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::approval_decision;

    #[test]
    fn approval_decisions_are_recognized_from_the_path() {
        assert_eq!(
            approval_decision("/aws/approvals/grt_1/approve"),
            Some("grt_1")
        );
        assert_eq!(
            approval_decision("/aws/approvals/grt_1/deny"),
            Some("grt_1")
        );
        // A held call's decisions are counted the same way.
        assert_eq!(
            approval_decision("/aws/approvals/cap_1/approve"),
            Some("cap_1")
        );
        for other in [
            "/aws/approvals/grt_1",
            "/aws/approvals//approve",
            "/aws/approvals/grt_1/revoke",
            "/aws/approvals/a/b/approve",
            "/device",
        ] {
            assert_eq!(approval_decision(other), None, "{other}");
        }
    }
}
