//! `GET /oauth/callback`: the IdP sends the browser back here. For a device grant's sign-in
//! ([`device`]), the state must open, the browser must be the one that started, the grant must
//! still be pending; then the code is exchanged, the id_token verified, the claim gates applied,
//! and the grant completed or denied.

use axum::response::Response;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::claims::{admit, needs_userinfo};
use super::codes::{same, sha256_hex};
use super::context::Ctx;
use super::device::{cookie_name, OAuthState};
use super::grant::{self, Issued, Status};
use super::oidc::OidcError;
use super::pages::message;
use super::refresh_state;
use super::token::Identity;
use crate::state::AppState;

/// The callback's query.
#[derive(Debug, Deserialize)]
pub struct Callback {
    pub(crate) code: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) error: Option<String>,
    error_description: Option<String>,
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn clear_cookie(mut res: Response, secure: bool) -> Response {
    let c = format!(
        "{}=; Max-Age=0; HttpOnly; SameSite=Lax; Path=/{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}

/// A device grant's sign-in coming back (the route, [`crate::app`], first offers the callback
/// to the other browser sign-ins).
pub async fn device(state: &AppState, ctx: &Ctx, headers: &HeaderMap, q: Callback) -> Response {
    let secure = state.origin.starts_with("https://");
    let now = state.clock.now();
    let expired = || {
        message(
            StatusCode::BAD_REQUEST,
            "Sign-in link expired",
            "This sign-in link has expired. Start again from your terminal.",
        )
    };
    let opened: Option<OAuthState> = q.state.as_deref().and_then(|s| {
        state
            .sealer
            .open("oauth_state", s, now.unix_timestamp())
            .ok()
    });
    let Some(st) = opened else {
        ctx.audit(state, "device.callback", json!({"result": "invalid_state"}));
        return expired();
    };
    let presented = cookie(headers, cookie_name(secure)).map(|c| sha256_hex(&c));
    if !presented.is_some_and(|h| same(&h, &st.browser)) {
        // A link whose sign-in is over (a reload of the success page, whose cookie is gone) can
        // complete nothing: say it was used rather than blame the browser.
        let over = matches!(
            grant::load(&state.store, &state.sealer, &st.grant, now).await,
            Ok(ref g) if g.as_ref().is_none_or(|g| g.status != Status::Pending)
        );
        if over {
            ctx.audit(state, "device.callback", json!({"result": "not_pending"}));
            return message(
                StatusCode::BAD_REQUEST,
                "Already used",
                "This device code has already been used or has expired.",
            );
        }
        ctx.audit(
            state,
            "device.callback",
            json!({"result": "browser_mismatch"}),
        );
        // The cookie this browser holds (if any) binds another sign-in: leave it alone, or a
        // stray or planted callback link would break the sign-in this browser is in the middle of.
        return message(StatusCode::FORBIDDEN, "Different browser", "This sign-in was started in a different browser. Open the verification link on the device that showed the code.");
    }
    let (mut g, read) =
        match grant::load_versioned(&state.store, &state.sealer, &st.grant, now).await {
            Ok(Some((g, read))) if g.status == Status::Pending => (g, read),
            Ok(_) => {
                ctx.audit(state, "device.callback", json!({"result": "not_pending"}));
                return clear_cookie(
                    message(
                        StatusCode::BAD_REQUEST,
                        "Already used",
                        "This device code has already been used or has expired.",
                    ),
                    secure,
                );
            }
            Err(e) => {
                tracing::error!("device grant lookup failed: {e}");
                return message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again shortly",
                    "Sign-in is unavailable for a moment. Try again shortly.",
                );
            }
        };
    // One state, one use: the grant stops being pending whatever happens next.
    let outcome = if let Some(err) = &q.error {
        let detail = q.error_description.as_deref().unwrap_or_default();
        tracing::info!(error = ?err, "the IdP returned an error to the callback: {detail:?}");
        Err((
            "idp_error".to_owned(),
            format!(
                "The identity provider said: {}",
                err.chars().take(100).collect::<String>()
            ),
        ))
    } else {
        sign_in(
            state,
            q.code.as_deref().unwrap_or_default(),
            &st,
            now.unix_timestamp(),
        )
        .await
    };
    let ttl = (state.config.session.ttl_hours * 3600.0).round() as i64;
    let res = match outcome {
        Ok((who, refresh_token)) => {
            let token = state.keys.mint(&who, now, time::Duration::seconds(ttl));
            g.status = Status::Complete;
            g.issued = Some(Issued {
                access_token: token,
                refresh_token,
                expires_in: ttl.max(0) as u64,
            });
            state
                .otel
                .m
                .signins
                .add(1, &[opentelemetry::KeyValue::new("result", "success")]);
            ctx.audit(state, "session.mint", json!({"result": "success", "sub": who.sub, "email": who.email, "groups": who.groups, "ttl_hours": state.config.session.ttl_hours}));
            ctx.audit(
                state,
                "device.callback",
                json!({"result": "success", "sub": who.sub}),
            );
            message(
                StatusCode::OK,
                "You're signed in",
                "Return to your terminal: Claude Code is signed in. You can close this window.",
            )
        }
        Err((reason, text)) => {
            g.status = Status::Denied;
            state
                .otel
                .m
                .signins
                .add(1, &[opentelemetry::KeyValue::new("result", "denied")]);
            ctx.audit(
                state,
                "session.mint",
                json!({"result": "fail", "err": reason}),
            );
            ctx.audit(
                state,
                "auth.denied",
                json!({"reason": reason, "path": "/oauth/callback"}),
            );
            message(
                StatusCode::FORBIDDEN,
                "Sign-in could not be completed",
                &text,
            )
        }
    };
    match grant::replace(&state.store, &state.sealer, &st.grant, &read, &g, now).await {
        Ok(true) => {}
        Ok(false) => {
            // A deny (or another callback) settled the grant while the IdP was being asked:
            // that one stands, and what was minted here is dropped.
            ctx.audit(state, "device.callback", json!({"result": "conflict"}));
            return clear_cookie(
                message(
                    StatusCode::CONFLICT,
                    "Already settled",
                    "This sign-in request was denied or completed in the meantime. Start again from your terminal.",
                ),
                secure,
            );
        }
        Err(e) => {
            tracing::error!("could not settle a device grant: {e}");
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                "Sign-in could not be recorded. Start again from your terminal.",
            );
        }
    }
    let _ = grant::forget_user_code(&state.store, &g.user_code).await;
    clear_cookie(res, secure)
}

/// Code → verified identity and the refresh token to hand out (the IdP's, sealed with the
/// subject); or (audit reason, page text).
async fn sign_in(
    state: &AppState,
    code: &str,
    st: &OAuthState,
    now: i64,
) -> Result<(Identity, Option<String>), (String, String)> {
    let Some(rp) = &state.rp else {
        return Err((
            "no_idp".into(),
            "This gateway has no identity provider configured.".into(),
        ));
    };
    if code.is_empty() {
        return Err((
            "missing_code".into(),
            "The identity provider sent no code. Start again from your terminal.".into(),
        ));
    }
    let ex = rp.exchange(code, &st.verifier, &st.nonce, now).await.map_err(|e| {
        tracing::warn!("sign-in failed at the IdP: {e}");
        ("idp_exchange".to_owned(), "The identity provider did not confirm the sign-in. Start again from your terminal.".to_owned())
    })?;
    match identity(state, &ex, None).await {
        Ok((who, idp_sub)) => {
            let rt = ex
                .refresh_token
                .as_deref()
                .map(|rt| refresh_state::seal(&state.sealer, rt, &idp_sub, now));
            Ok((who, rt))
        }
        Err(NotAdmitted::Refused(reason, text)) => Err((reason, text)),
        Err(NotAdmitted::Unavailable(e)) => {
            tracing::warn!("sign-in could not be confirmed: {e}");
            Err((
                "idp_unavailable".into(),
                "The identity provider could not be reached. Start again from your terminal in a moment.".into(),
            ))
        }
    }
}

/// Why an identity from the IdP was not admitted.
#[derive(Debug)]
pub enum NotAdmitted {
    /// Refused for good: (audit reason, page text).
    Refused(String, String),
    /// The IdP could not confirm it now (userinfo unreachable): try again later.
    Unavailable(String),
}

/// Applies the claim gates to an exchange (asking userinfo when allowed and needed). `session_sub`
/// is the IdP subject of the session a refresh continues: an id_token must name it, and userinfo
/// must name it when there is no id_token. Returns the identity and the IdP subject.
pub async fn identity(
    state: &AppState,
    ex: &super::oidc::Exchanged,
    session_sub: Option<&str>,
) -> Result<(Identity, String), NotAdmitted> {
    let (Some(oidc), Some(rp)) = (&state.config.oidc, &state.rp) else {
        return Err(NotAdmitted::Refused(
            "no_idp".into(),
            "No identity provider.".into(),
        ));
    };
    let changed = || {
        NotAdmitted::Refused(
            "subject_changed".into(),
            "Sign-in was refused: the identity provider named another user.".into(),
        )
    };
    let claims = ex.claims.clone().unwrap_or(serde_json::Value::Null);
    let id_sub = claims
        .get("sub")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty());
    if let (Some(named), Some(want)) = (id_sub, session_sub) {
        if named != want {
            return Err(changed());
        }
    }
    let userinfo = if ex.claims.is_none() || needs_userinfo(&claims, oidc) {
        match rp.userinfo(&ex.access_token, id_sub.or(session_sub)).await {
            Ok(u) => Some(u),
            Err(OidcError::OtherSubject) if ex.claims.is_none() => return Err(changed()),
            Err(e) if ex.claims.is_none() => return Err(NotAdmitted::Unavailable(e.to_string())),
            Err(e) => {
                tracing::warn!("userinfo fallback failed: {e}");
                None
            }
        }
    } else {
        None
    };
    let base = if ex.claims.is_some() {
        &claims
    } else {
        userinfo.as_ref().unwrap_or(&claims)
    };
    if tracing::enabled!(tracing::Level::DEBUG) {
        let names: Vec<&String> = base
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        tracing::debug!(?names, "id_token claim names");
    }
    let who = admit(base, userinfo.as_ref(), oidc)
        .map_err(|r| NotAdmitted::Refused(r.to_string(), format!("Sign-in was refused: {r}.")))?;
    let idp_sub = base
        .get("sub")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .map_or_else(|| who.sub.clone(), str::to_owned);
    Ok((who, idp_sub))
}
