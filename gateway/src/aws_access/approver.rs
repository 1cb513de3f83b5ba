//! The approver's sign-in for the approval page, a browser sign-in (`auth::browser_signin`: a
//! sealed state carrying the request to return to, bound to a browser cookie, completed at the
//! one callback); then a short approver session, sealed in
//! an `HttpOnly`, `SameSite=Lax` cookie, holding who signed in and the CSRF token their forms
//! must carry.

use axum::response::Response;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::browser_signin::{cookie_name, set_cookie, Flow};
use crate::auth::callback::{cookie, Callback};
use crate::auth::codes::{same, token};
use crate::auth::context::Ctx;
use crate::auth::pages::{found, went_wrong};
use crate::state::AppState;

/// How long the trip through the IdP may take, in seconds.
const SIGNIN_TTL: i64 = 300;
/// How long an approver session lasts, in seconds.
pub const SESSION_TTL: i64 = 900;
const SESSION_PURPOSE: &str = "aws_approver";
const SESSION: &str = "gw_aws";

/// The approver's sign-in; its sealed state carries the request to return to.
const FLOW: Flow = Flow {
    purpose: "aws_approval_state",
    cookie: "gw_aws_signin",
    again: "Open the approval link again.",
    what: "an approver's sign-in",
};

/// A signed-in approver, as their session cookie carries them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approver {
    /// Subject.
    pub sub: String,
    /// Email, when the IdP gave one.
    pub email: Option<String>,
    /// Their IdP groups that approve some project (the others are not kept).
    pub groups: Vec<String>,
    /// The token the session's forms carry.
    pub csrf: String,
}

/// The approver in the request's session cookie, if it opens.
pub fn session(state: &AppState, headers: &HeaderMap) -> Option<Approver> {
    let c = cookie(headers, &cookie_name(state, SESSION))?;
    state
        .sealer
        .open(SESSION_PURPOSE, &c, state.clock.now().unix_timestamp())
        .ok()
}

/// Whether `presented` is the session's CSRF token.
pub fn csrf_ok(a: &Approver, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| !p.is_empty() && same(p, &a.csrf))
}

/// Sends the browser to the IdP to sign in, to come back to request `grant`.
pub async fn start(state: &AppState, grant: &str) -> Response {
    FLOW.start(state, grant.to_owned(), SIGNIN_TTL)
        .await
        .unwrap_or_else(|page| page)
}

/// The callback of an approver's sign-in; `None` when its state is not one (the device
/// sign-in's callback goes on).
pub async fn callback(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    q: &Callback,
) -> Option<Response> {
    let now = state.clock.now().unix_timestamp();
    let st = FLOW.open::<String>(state, q, now)?;
    let audit = |result: &str, sub: Option<&str>| {
        ctx.audit(
            state,
            "aws.approver.signin",
            json!({"result": result, "sub": sub, "grant": st.data}),
        );
    };
    let who = match FLOW.finish(state, headers, &st, q, now).await {
        Ok(signed_in) => signed_in.identity,
        Err(r) => {
            audit(&r.reason, None);
            return Some(r.page);
        }
    };
    let Ok(csrf) = token(32) else {
        return Some(went_wrong());
    };
    // Only the groups that approve some project: the cookie must stay under the 4 KiB a browser
    // keeps, whatever number of groups the IdP sends.
    let approving: Vec<String> = state
        .config
        .aws_access
        .as_ref()
        .map(|a| {
            who.groups
                .iter()
                .filter(|g| a.projects.iter().any(|p| p.approvers.contains(g)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let approver = Approver {
        sub: who.sub.clone(),
        email: who.email.clone(),
        groups: approving,
        csrf,
    };
    let Ok(sealed) = state
        .sealer
        .seal(SESSION_PURPOSE, &approver, now + SESSION_TTL)
    else {
        return Some(went_wrong());
    };
    audit("success", Some(&who.sub));
    let mut res = found(&super::grants::approval_url("", &st.data));
    FLOW.set_binding(state, &mut res, "", 0);
    set_cookie(state, &mut res, SESSION, &sealed, SESSION_TTL);
    Some(res)
}
