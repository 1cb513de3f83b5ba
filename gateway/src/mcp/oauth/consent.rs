//! The consent step: after signing in at the IdP, the person sees which application asks for
//! the gateway's AWS tools in their name and where the browser will return, and presses Allow
//! (or Deny). The form is a same-origin POST carrying the sealed sign-in, bound to the browser
//! cookie of the sign-in, good once. Allow issues the code and returns to the application.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Form;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::authorize::{back_to, Request};
use super::code::{self, Code};
use super::signin::{FLOW, SIGNIN_TTL};
use crate::auth::codes::sha256_hex;
use crate::auth::context::Ctx;
use crate::auth::device::same_origin;
use crate::auth::pages::{found, message, page as html_page, went_wrong};
use crate::auth::token::Identity;
use crate::http::error::ApiError;
use crate::http::pages::escape;
use crate::state::AppState;

const PURPOSE: &str = "mcp_consent";

/// A signed-in person's pending authorization, sealed into the consent form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The checked request.
    pub request: Request,
    /// Who signed in.
    pub identity: Identity,
    /// What renews the sign-in at the IdP.
    pub idp_refresh_token: Option<String>,
    /// The subject at the IdP.
    pub idp_sub: String,
    /// When (unix seconds).
    pub signed_in_at: i64,
    /// SHA-256 (hex) of the browser cookie that must come back.
    pub browser: String,
}

/// The redirect URI's origin (for the page's CSP, which governs where the form's answer may
/// redirect) and host (to show).
fn destination(redirect_uri: &str) -> (String, String) {
    match url::Url::parse(redirect_uri) {
        Ok(u) => (
            u.origin().ascii_serialization(),
            u.host_str().map_or_else(String::new, |h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            }),
        ),
        Err(_) => (String::new(), String::new()),
    }
}

/// The consent page for `p`; `browser_cookie` is the binding cookie's value, set again to last
/// as long as the page.
pub fn page(state: &AppState, p: &Pending, browser_cookie: &str, now: i64) -> Response {
    let Ok(sealed) = state.sealer.seal(PURPOSE, p, now + SIGNIN_TTL) else {
        return went_wrong();
    };
    let (origin, host) = destination(&p.request.redirect_uri);
    let app = if p.request.client_name.is_empty() {
        "An unnamed application".to_owned()
    } else {
        p.request.client_name.clone()
    };
    let who = p
        .identity
        .email
        .clone()
        .unwrap_or_else(|| p.identity.sub.clone());
    let body = format!(
        "<p><strong id=\"client\">{app}</strong> asks to use this gateway's AWS tools as \
<strong id=\"user\">{who}</strong>.</p>\
<p>If you allow it, your browser returns to <code id=\"redirect_host\">{host}</code>, \
and the application can call the tools in your name, within your projects' access, until you \
sign in again or it is revoked.</p>\
<form method=\"post\" action=\"/mcp/oauth/consent\">\
<input type=\"hidden\" name=\"consent\" value=\"{sealed}\">\
<button type=\"submit\" id=\"allow\" name=\"decision\" value=\"allow\">Allow</button> \
<button type=\"submit\" id=\"deny\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button></form>\
<p>If you did not start this from an application you use, press Deny.</p>",
        app = escape(&app),
        who = escape(&who),
        host = escape(&host),
        sealed = escape(&sealed),
    );
    let mut res = html_page(
        StatusCode::OK,
        "Allow access to AWS tools?",
        &body,
        &[origin],
    );
    // The binding cookie lasts as long as the form does.
    FLOW.set_binding(state, &mut res, browser_cookie, SIGNIN_TTL);
    res
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub struct Decision {
    consent: Option<String>,
    decision: Option<String>,
}

/// `POST /mcp/oauth/consent` (the per-IP limit was checked from the request head).
pub async fn decide(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<Decision>,
) -> Response {
    if super::settings(&state).is_none() {
        return ApiError::NotFound.into_response();
    }
    let now = state.clock.now();
    let audit = |result: &str, p: Option<&Pending>| {
        ctx.audit(
            &state,
            "mcp.authorize",
            json!({
                "result": result,
                "sub": p.map(|p| p.identity.sub.clone()),
                "email": p.and_then(|p| p.identity.email.clone()),
                "client": p.map(|p| super::client_ref(&p.request.client_id)),
                "client_name": p.map(|p| p.request.client_name.clone()),
            }),
        );
    };
    if !same_origin(&headers, &state.origin) {
        audit("csrf_rejected", None);
        return message(
            StatusCode::FORBIDDEN,
            "Request blocked",
            "This request came from another site and was blocked. Start again from the application.",
        );
    }
    let sealed = form.consent.unwrap_or_default();
    let Ok(p) = state
        .sealer
        .open::<Pending>(PURPOSE, &sealed, now.unix_timestamp())
    else {
        audit("expired", None);
        return message(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This page has expired. Start again from the application.",
        );
    };
    if !FLOW.same_browser(&state, &headers, &p.browser) {
        audit("browser_mismatch", Some(&p));
        return message(
            StatusCode::FORBIDDEN,
            "Different browser",
            "This sign-in was started in a different browser. Start again from the application.",
        );
    }
    // One decision per page: a second POST of the same form finds it taken.
    let once = format!("mcp:consent:{}", sha256_hex(&sealed));
    let exp = now + time::Duration::seconds(SIGNIN_TTL);
    match state.store.kv_put_new(&once, "1", exp, now).await {
        Ok(true) => {}
        Ok(false) => {
            audit("already_used", Some(&p));
            return message(
                StatusCode::BAD_REQUEST,
                "Already used",
                "This page was already answered. Start again from the application.",
            );
        }
        Err(e) => {
            tracing::error!("consent could not be recorded: {e}");
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                "Sign-in is unavailable for a moment. Try again shortly.",
            );
        }
    }
    let issuer = super::issuer(&state);
    let r = &p.request;
    let mut params: Vec<(&str, &str)> = Vec::new();
    if form.decision.as_deref() != Some("allow") {
        audit("denied", Some(&p));
        params.push(("error", "access_denied"));
        params.push(("error_description", "The person refused the request."));
        if let Some(s) = &r.state {
            params.push(("state", s));
        }
        let mut res = found(&back_to(&r.redirect_uri, &params, &issuer));
        FLOW.set_binding(&state, &mut res, "", 0);
        return res;
    }
    let grant = Code {
        client_id: r.client_id.clone(),
        redirect_uri: r.redirect_uri.clone(),
        code_challenge: r.code_challenge.clone(),
        resource: super::resource(&state),
        identity: p.identity.clone(),
        idp_refresh_token: p.idp_refresh_token.clone(),
        idp_sub: p.idp_sub.clone(),
        signed_in_at: p.signed_in_at,
    };
    let code = match code::issue(&state, &grant, now).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("could not issue an MCP authorization code: {e}");
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                "Sign-in is unavailable for a moment. Try again shortly.",
            );
        }
    };
    audit("success", Some(&p));
    params.push(("code", &code));
    if let Some(s) = &r.state {
        params.push(("state", s));
    }
    let mut res = found(&back_to(&r.redirect_uri, &params, &issuer));
    FLOW.set_binding(&state, &mut res, "", 0);
    res
}
