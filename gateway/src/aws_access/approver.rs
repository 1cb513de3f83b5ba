//! The approver's sign-in for the approval page, through the gateway's OpenID Connect relying
//! party and its one callback: a sealed state (PKCE verifier, nonce, the request to return to)
//! bound to a browser cookie, as the device pages do; then a short approver session, sealed in
//! an `HttpOnly`, `SameSite=Lax` cookie, holding who signed in and the CSRF token their forms
//! must carry.

use axum::response::{IntoResponse, Response};
use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::callback::{cookie, identity, NotAdmitted};
use crate::auth::codes::{same, sha256_hex, token};
use crate::auth::context::Ctx;
use crate::auth::oauth_error::no_store;
use crate::auth::pages::message;
use crate::state::AppState;

/// How long the trip through the IdP may take, in seconds.
const SIGNIN_TTL: i64 = 300;
/// How long an approver session lasts, in seconds.
pub const SESSION_TTL: i64 = 900;
const STATE_PURPOSE: &str = "aws_approval_state";
const SESSION_PURPOSE: &str = "aws_approver";

/// What the sealed OAuth `state` of an approver's sign-in carries.
#[derive(Debug, Serialize, Deserialize)]
struct SignIn {
    /// The request to return to.
    grant: String,
    verifier: String,
    nonce: String,
    /// SHA-256 (hex) of the browser cookie that must come back.
    browser: String,
}

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

fn secure(state: &AppState) -> bool {
    state.origin.starts_with("https://")
}

fn name(state: &AppState, base: &str) -> String {
    if secure(state) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

fn set_cookie(state: &AppState, res: &mut Response, base: &str, value: &str, max_age: i64) {
    let c = format!(
        "{}={value}; Max-Age={max_age}; HttpOnly; SameSite=Lax; Path=/{}",
        name(state, base),
        if secure(state) { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

const BROWSER: &str = "gw_aws_signin";
const SESSION: &str = "gw_aws";

fn went_wrong() -> Response {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Try again.",
    )
}

fn redirect(to: &str) -> Response {
    let mut res = StatusCode::FOUND.into_response();
    if let Ok(loc) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, loc);
    }
    no_store(res.headers_mut());
    res
}

/// The approver in the request's session cookie, if it opens.
pub fn session(state: &AppState, headers: &HeaderMap) -> Option<Approver> {
    let c = cookie(headers, &name(state, SESSION))?;
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
    let st = SignIn {
        grant: grant.to_owned(),
        verifier: verifier.clone(),
        nonce: nonce.clone(),
        browser: sha256_hex(&browser),
    };
    let exp = state.clock.now().unix_timestamp() + SIGNIN_TTL;
    let Ok(sealed) = state.sealer.seal(STATE_PURPOSE, &st, exp) else {
        return went_wrong();
    };
    match rp.authorize_url(&sealed, &nonce, &verifier).await {
        Ok(url) => {
            let mut res = redirect(&url);
            set_cookie(state, &mut res, BROWSER, &browser, SIGNIN_TTL);
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

/// The callback of an approver's sign-in; `None` when `state_param` is not one (the device
/// sign-in's callback goes on).
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
            "aws.approver.signin",
            json!({"result": result, "sub": sub, "grant": st.grant}),
        );
    };
    let presented = cookie(headers, &name(state, BROWSER)).map(|c| sha256_hex(&c));
    if !presented.is_some_and(|h| same(&h, &st.browser)) {
        audit("browser_mismatch", None);
        return Some(message(
            StatusCode::FORBIDDEN,
            "Different browser",
            "This sign-in was started in a different browser. Open the approval link again.",
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
        tracing::info!(error = ?err, "the IdP returned an error to an approver's sign-in");
        audit("idp_error", None);
        return Some(refused("The identity provider did not sign you in."));
    }
    let (Some(rp), Some(code)) = (&state.rp, code.filter(|c| !c.is_empty())) else {
        audit("missing_code", None);
        return Some(refused(
            "The identity provider sent no code. Open the approval link again.",
        ));
    };
    let ex = match rp.exchange(code, &st.verifier, &st.nonce, now).await {
        Ok(ex) => ex,
        Err(e) => {
            tracing::warn!("an approver's sign-in failed at the IdP: {e}");
            audit("idp_exchange", None);
            return Some(refused(
                "The identity provider did not confirm the sign-in. Open the approval link again.",
            ));
        }
    };
    let who = match identity(state, &ex, None).await {
        Ok((who, _)) => who,
        Err(NotAdmitted::Refused(reason, text)) => {
            audit(&reason, None);
            return Some(refused(&text));
        }
        Err(NotAdmitted::Unavailable(e)) => {
            tracing::warn!("an approver's sign-in could not be confirmed: {e}");
            audit("idp_unavailable", None);
            return Some(refused(
                "The identity provider could not be reached. Try again in a moment.",
            ));
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
    let mut res = redirect(&super::grants::approval_url("", &st.grant));
    set_cookie(state, &mut res, BROWSER, "", 0);
    set_cookie(state, &mut res, SESSION, &sealed, SESSION_TTL);
    Some(res)
}
