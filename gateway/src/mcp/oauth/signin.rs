//! The person's sign-in for an MCP authorization, through the gateway's OpenID Connect relying
//! party and its one callback, the way the approval page does it: a sealed state (PKCE
//! verifier, nonce, the checked request) bound to a browser cookie; then the claim gates, and
//! the consent page.

use axum::response::Response;
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::authorize::{redirect, Request};
use crate::auth::callback::{cookie, identity, NotAdmitted};
use crate::auth::codes::{same, sha256_hex, token};
use crate::auth::context::Ctx;
use crate::auth::pages::message;
use crate::state::AppState;

/// How long the trip through the IdP and the consent page may take, in seconds.
pub const SIGNIN_TTL: i64 = 300;
const STATE_PURPOSE: &str = "mcp_signin_state";
const BROWSER: &str = "gw_mcp_signin";

fn secure(state: &AppState) -> bool {
    state.origin.starts_with("https://")
}

/// The browser-binding cookie's name: `__Host-` prefixed under https.
pub fn cookie_name(state: &AppState) -> String {
    if secure(state) {
        format!("__Host-{BROWSER}")
    } else {
        BROWSER.to_owned()
    }
}

/// Sets (or, with `max_age` 0, clears) the browser-binding cookie on `res`.
pub fn set_binding(state: &AppState, res: &mut Response, value: &str, max_age: i64) {
    let c = format!(
        "{}={value}; Max-Age={max_age}; HttpOnly; SameSite=Lax; Path=/{}",
        cookie_name(state),
        if secure(state) { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

/// Whether the request's browser-binding cookie hashes to `expected`.
pub fn same_browser(state: &AppState, headers: &HeaderMap, expected: &str) -> bool {
    cookie(headers, &cookie_name(state))
        .map(|c| sha256_hex(&c))
        .is_some_and(|h| same(&h, expected))
}

/// What the sealed OAuth `state` of the sign-in carries.
#[derive(Debug, Serialize, Deserialize)]
struct SignIn {
    request: Request,
    verifier: String,
    nonce: String,
    /// SHA-256 (hex) of the browser cookie that must come back.
    browser: String,
}

fn went_wrong() -> Response {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Try again.",
    )
}

/// Sends the browser to the IdP to sign in for `request`, bound to a fresh browser cookie.
pub async fn start(state: &AppState, ctx: &Ctx, request: Request) -> Response {
    let now = state.clock.now().unix_timestamp();
    let Some(rp) = &state.rp else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "This gateway has no identity provider configured.",
        );
    };
    let (Ok(verifier), Ok(nonce), Ok(browser)) = (token(32), token(16), token(32)) else {
        return went_wrong();
    };
    let client_name = request.client_name.clone();
    let st = SignIn {
        request,
        verifier: verifier.clone(),
        nonce: nonce.clone(),
        browser: sha256_hex(&browser),
    };
    let Ok(sealed) = state.sealer.seal(STATE_PURPOSE, &st, now + SIGNIN_TTL) else {
        return went_wrong();
    };
    match rp.authorize_url(&sealed, &nonce, &verifier).await {
        Ok(url) => {
            ctx.audit(
                state,
                "mcp.authorize",
                json!({"result": "redirect", "client_name": client_name}),
            );
            let mut res = redirect(&url);
            set_binding(state, &mut res, &browser, SIGNIN_TTL);
            res
        }
        Err(e) => {
            tracing::error!("{e}");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Identity provider unavailable",
                "The identity provider could not be reached. Try again shortly.",
            )
        }
    }
}

/// The callback of an MCP sign-in; `None` when `state_param` is not one (the other sign-ins'
/// callbacks go on). Signed in and admitted, the person is shown the consent page.
pub async fn callback(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    state_param: Option<&str>,
    code: Option<&str>,
    error: Option<&str>,
) -> Option<Response> {
    let now = state.clock.now().unix_timestamp();
    let st: SignIn = state.sealer.open(STATE_PURPOSE, state_param?, now).ok()?;
    let audit = |result: &str, sub: Option<&str>| {
        ctx.audit(
            state,
            "mcp.authorize",
            json!({"result": result, "sub": sub, "client_name": st.request.client_name}),
        );
    };
    if !same_browser(state, headers, &st.browser) {
        audit("browser_mismatch", None);
        return Some(message(
            StatusCode::FORBIDDEN,
            "Different browser",
            "This sign-in was started in a different browser. Start again from the application.",
        ));
    }
    let refused = |text: &str| {
        message(
            StatusCode::FORBIDDEN,
            "Sign-in could not be completed",
            text,
        )
    };
    if let Some(err) = error {
        tracing::info!(error = ?err, "the IdP returned an error to an MCP sign-in");
        audit("idp_error", None);
        return Some(refused("The identity provider did not sign you in."));
    }
    let (Some(rp), Some(code)) = (&state.rp, code.filter(|c| !c.is_empty())) else {
        audit("missing_code", None);
        return Some(refused(
            "The identity provider sent no code. Start again from the application.",
        ));
    };
    let ex = match rp.exchange(code, &st.verifier, &st.nonce, now).await {
        Ok(ex) => ex,
        Err(e) => {
            tracing::warn!("an MCP sign-in failed at the IdP: {e}");
            audit("idp_exchange", None);
            return Some(refused(
                "The identity provider did not confirm the sign-in. Start again from the application.",
            ));
        }
    };
    let (who, idp_sub) = match identity(state, &ex, None).await {
        Ok(w) => w,
        Err(NotAdmitted::Refused(reason, text)) => {
            audit(&reason, None);
            ctx.audit(
                state,
                "auth.denied",
                json!({"reason": reason, "path": "/oauth/callback"}),
            );
            return Some(refused(&text));
        }
        Err(NotAdmitted::Unavailable(e)) => {
            tracing::warn!("an MCP sign-in could not be confirmed: {e}");
            audit("idp_unavailable", None);
            return Some(refused(
                "The identity provider could not be reached. Try again in a moment.",
            ));
        }
    };
    audit("signed_in", Some(&who.sub));
    let pending = super::consent::Pending {
        request: st.request,
        identity: who,
        idp_refresh_token: ex.refresh_token,
        idp_sub,
        signed_in_at: now,
        browser: st.browser,
    };
    let browser = cookie(headers, &cookie_name(state)).unwrap_or_default();
    Some(super::consent::page(state, &pending, &browser, now))
}
