//! The device side of sign-in: `POST /oauth/device_authorization` starts a grant; the verification
//! page (`GET/POST /device`, `POST /device/deny`) lets the person at the browser approve it (on to
//! the IdP) or deny it.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::codes::{self, display, normalize};
use super::context::Ctx;
use super::grant::{self, Status};
use super::oauth_error::{no_store, OAuthError};
use super::pages;
use crate::state::AppState;

/// Lifetime of the OAuth state and the browser cookie.
pub const STATE_TTL: i64 = 300;

/// What the sealed OAuth `state` carries to the callback.
#[derive(Debug, Serialize, Deserialize)]
pub struct OAuthState {
    /// The grant's store key.
    pub grant: String,
    /// PKCE verifier.
    pub verifier: String,
    /// Expected id_token nonce.
    pub nonce: String,
    /// SHA-256 (hex) of the browser cookie that must come back.
    pub browser: String,
}

/// The browser-binding cookie's name: `__Host-` prefixed (and `Secure`) under https.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-gw_dev"
    } else {
        "gw_dev"
    }
}

/// `POST /oauth/device_authorization`.
pub async fn authorize(
    State(state): State<AppState>,
    ctx: Ctx,
    body: axum::body::Bytes,
) -> Response {
    // The form may carry `surface` and anything else; unknown parameters are ignored.
    let surface = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "surface")
        .map(|(_, v)| v.into_owned());
    // The per-IP limit was checked from the request head (`auth::gate`).
    let now = state.clock.now();
    match grant::create(
        &state.store,
        &state.sealer,
        now,
        ctx.ip.clone(),
        surface.clone(),
    )
    .await
    {
        Ok((device_code, g)) => {
            ctx.audit(
                &state,
                "device.authorize",
                json!({"result": "success", "surface": surface}),
            );
            let shown = display(&g.user_code);
            let o = &state.origin;
            let mut body = json!({
                "device_code": device_code,
                "user_code": shown,
                "verification_uri": format!("{o}/device"),
                "verification_uri_complete": format!("{o}/device?user_code={shown}"),
                "expires_in": grant::GRANT_TTL.whole_seconds(),
                "interval": 5,
            });
            if let Some(n) = &state.config.login_notice {
                body["login_notice"] = n.clone().into();
            }
            let mut res = Json(body).into_response();
            no_store(res.headers_mut());
            res
        }
        Err(e) => {
            tracing::error!("could not create a device grant: {e}");
            ctx.audit(&state, "device.authorize", json!({"result": "error"}));
            OAuthError::UNAVAILABLE.into_response()
        }
    }
}

/// `?user_code=` on the verification page.
#[derive(Debug, Deserialize)]
pub struct CodeQuery {
    user_code: Option<String>,
}

async fn form_origins(state: &AppState) -> Vec<String> {
    let mut origins = Vec::new();
    if let Some(rp) = &state.rp {
        if let Some(o) = rp.authorize_origin().await {
            origins.push(o);
        }
    }
    if let Some(oidc) = &state.config.oidc {
        origins.extend(
            oidc.form_action_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned()),
        );
    }
    origins
}

/// `GET /device`: the code form, or the confirmation of a pre-filled code (never auto-submitted).
pub async fn page(State(state): State<AppState>, Query(q): Query<CodeQuery>) -> Response {
    let origins = form_origins(&state).await;
    let notice = state.config.login_notice.as_deref();
    match q.user_code.as_deref().and_then(normalize) {
        Some(code) => pages::confirm(&display(&code), &origins, notice),
        None => pages::enter_code(&origins, notice),
    }
}

/// The POSTed form.
#[derive(Debug, Deserialize)]
pub struct CodeForm {
    user_code: Option<String>,
}

/// Only same-origin submissions count: `Sec-Fetch-Site`, else `Origin`.
pub fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        None => headers
            .get(http::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| o.trim_end_matches('/') == origin),
    }
}

/// Shared steps of approve and deny: origin check and code lookup (the per-IP limit was checked
/// from the request head, in `auth::gate`).
async fn find_pending(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    form: &CodeForm,
    action: &str,
) -> Result<(String, grant::Grant, grant::Version), Response> {
    if !same_origin(headers, &state.origin) {
        ctx.audit(
            state,
            "device.verify",
            json!({"result": "csrf_rejected", "action": action}),
        );
        return Err(pages::message(StatusCode::FORBIDDEN, "Request blocked", "This request came from another site and was blocked. Open the verification link from your terminal directly."));
    }
    let now = state.clock.now();
    let unknown = || {
        pages::message(
            StatusCode::OK,
            "Code not recognized",
            "That code was not recognized. It may have expired: check your terminal and try again.",
        )
    };
    let Some(code) = form.user_code.as_deref().and_then(normalize) else {
        ctx.audit(
            state,
            "device.verify",
            json!({"result": "unknown_code", "action": action}),
        );
        return Err(unknown());
    };
    let found = async {
        let Some(key) = grant::find_by_user_code(&state.store, &code, now).await? else {
            return Ok(None);
        };
        Ok::<_, grant::GrantError>(
            grant::load_versioned(&state.store, &state.sealer, &key, now)
                .await?
                .map(|(g, v)| (key, g, v)),
        )
    }
    .await;
    match found {
        Ok(Some((key, g, v))) if g.status == Status::Pending => Ok((key, g, v)),
        Ok(_) => {
            ctx.audit(
                state,
                "device.verify",
                json!({"result": "unknown_code", "action": action}),
            );
            Err(unknown())
        }
        Err(e) => {
            tracing::error!("device grant lookup failed: {e}");
            Err(unavailable_page())
        }
    }
}

/// The page for a store outage: a moment's unavailability, not the person's fault.
pub(crate) fn unavailable_page() -> Response {
    pages::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        "Sign-in is unavailable for a moment. Try again shortly.",
    )
}

/// `POST /device`: on to the IdP, with PKCE, a nonce, a sealed state and a browser-binding cookie.
pub async fn approve(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let (key, _grant, _) = match find_pending(&state, &ctx, &headers, &form, "approve").await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let Some(rp) = &state.rp else {
        return pages::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "This gateway has no identity provider configured.",
        );
    };
    let (Ok(verifier), Ok(nonce), Ok(browser)) =
        (codes::token(32), codes::token(16), codes::token(32))
    else {
        return pages::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Try again.",
        );
    };
    let exp = state.clock.now().unix_timestamp() + STATE_TTL;
    let st = OAuthState {
        grant: key,
        verifier: verifier.clone(),
        nonce: nonce.clone(),
        browser: codes::sha256_hex(&browser),
    };
    let sealed = match state.sealer.seal("oauth_state", &st, exp) {
        Ok(s) => s,
        Err(_) => {
            return pages::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Try again.",
            )
        }
    };
    let url = match rp.authorize_url(&sealed, &nonce, &verifier).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!("{e}");
            return pages::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Identity provider unavailable",
                "The identity provider could not be reached. Try again shortly.",
            );
        }
    };
    ctx.audit(&state, "device.verify", json!({"result": "redirect"}));
    let secure = state.origin.starts_with("https://");
    let cookie = format!(
        "{}={browser}; Max-Age={STATE_TTL}; HttpOnly; SameSite=Lax; Path=/{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    );
    let mut res = StatusCode::FOUND.into_response();
    if let (Ok(loc), Ok(c)) = (HeaderValue::from_str(&url), HeaderValue::from_str(&cookie)) {
        res.headers_mut().insert(LOCATION, loc);
        res.headers_mut().insert(SET_COOKIE, c);
    }
    no_store(res.headers_mut());
    res
}

/// `POST /device/deny`: the grant is refused; the next poll gets `access_denied`.
pub async fn deny(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let (key, mut g, read) = match find_pending(&state, &ctx, &headers, &form, "deny").await {
        Ok(found) => found,
        Err(page) => return page,
    };
    g.status = Status::Denied;
    let now = state.clock.now();
    match grant::replace(&state.store, &state.sealer, &key, &read, &g, now).await {
        Ok(true) => {}
        Ok(false) => {
            ctx.audit(&state, "device.deny", json!({"result": "conflict"}));
            return pages::message(
                StatusCode::CONFLICT,
                "Already settled",
                "This sign-in request was completed or denied in the meantime. Check your terminal.",
            );
        }
        Err(e) => {
            tracing::error!("could not deny a device grant: {e}");
            return unavailable_page();
        }
    }
    let _ = grant::forget_user_code(&state.store, &g.user_code).await;
    ctx.audit(&state, "device.deny", json!({"result": "denied"}));
    pages::message(
        StatusCode::OK,
        "Sign-in denied",
        "The sign-in request was denied. You can close this window.",
    )
}
