//! The person's sign-in for an MCP authorization, a browser sign-in the way the approval page
//! does it (`auth::browser_signin`: a sealed state carrying the checked request, bound to a
//! browser cookie, completed at the one callback with the claim gates); then the consent page.

use axum::response::Response;
use http::HeaderMap;
use serde_json::json;

use super::authorize::Request;
use crate::auth::browser_signin::Flow;
use crate::auth::callback::Callback;
use crate::auth::context::Ctx;
use crate::state::AppState;

/// How long the trip through the IdP and the consent page may take, in seconds.
pub const SIGNIN_TTL: i64 = 300;

/// The MCP sign-in; its sealed state carries the checked authorization request, and its
/// browser-binding cookie also binds the consent form.
pub const FLOW: Flow = Flow {
    purpose: "mcp_signin_state",
    cookie: "gw_mcp_signin",
    again: "Start again from the application.",
    what: "an MCP sign-in",
};

/// Sends the browser to the IdP to sign in for `request`, bound to a fresh browser cookie.
pub async fn start(state: &AppState, ctx: &Ctx, request: Request) -> Response {
    let client_name = request.client_name.clone();
    match FLOW.start(state, request, SIGNIN_TTL).await {
        Ok(res) => {
            ctx.audit(
                state,
                "mcp.authorize",
                json!({"result": "redirect", "client_name": client_name}),
            );
            res
        }
        Err(page) => page,
    }
}

/// The callback of an MCP sign-in; `None` when its state is not one (the other sign-ins'
/// callbacks go on). Signed in and admitted, the person is shown the consent page.
pub async fn callback(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    q: &Callback,
) -> Option<Response> {
    let now = state.clock.now().unix_timestamp();
    let st = FLOW.open::<Request>(state, q, now)?;
    let audit = |result: &str, sub: Option<&str>| {
        ctx.audit(
            state,
            "mcp.authorize",
            json!({"result": result, "sub": sub, "client_name": st.data.client_name}),
        );
    };
    let signed_in = match FLOW.finish(state, headers, &st, q, now).await {
        Ok(s) => s,
        Err(r) => {
            audit(&r.reason, None);
            if r.by_gates {
                ctx.audit(
                    state,
                    "auth.denied",
                    json!({"reason": r.reason, "path": "/oauth/callback"}),
                );
            }
            return Some(r.page);
        }
    };
    audit("signed_in", Some(&signed_in.identity.sub));
    let pending = super::consent::Pending {
        request: st.data,
        identity: signed_in.identity,
        idp_refresh_token: signed_in.idp_refresh_token,
        idp_sub: signed_in.idp_sub,
        signed_in_at: now,
        browser: st.browser,
    };
    let browser = FLOW.binding(state, headers).unwrap_or_default();
    Some(super::consent::page(state, &pending, &browser, now))
}
