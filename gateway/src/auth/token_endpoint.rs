//! `POST /oauth/token`: the device-code poll (pending, slow down, denied, expired, or the tokens,
//! once) and the refresh grant (exchanged at the IdP, claims read again, a new session token).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::json;

use super::callback::{identity, NotAdmitted};
use super::context::Ctx;
use super::grant::{self, device_key, Status};
use super::oauth_error::{no_store, OAuthError};
use super::oidc::OidcError;
use super::refresh_state;
use super::throttle::Limit;
use super::token_form::TokenForm;
use crate::state::AppState;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Polls closer together than this get `slow_down`.
const MIN_POLL: time::Duration = time::Duration::seconds(4);

/// The handler.
pub async fn token(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = TokenForm::read(&headers, &body) else {
        return OAuthError::INVALID_REQUEST.into_response();
    };
    let get = |k: &str| form.get(k);
    match get("grant_type") {
        None => OAuthError::INVALID_REQUEST.into_response(),
        Some(DEVICE_GRANT) => match get("device_code") {
            Some(code) => poll(&state, code).await,
            None => OAuthError::INVALID_REQUEST.into_response(),
        },
        Some("refresh_token") => match get("refresh_token") {
            Some(rt) => refresh(&state, &ctx, rt).await,
            None => OAuthError::INVALID_REQUEST.into_response(),
        },
        Some(_) => OAuthError::UNSUPPORTED_GRANT.into_response(),
    }
}

async fn poll(state: &AppState, device_code: &str) -> Response {
    let now = state.clock.now();
    let key = device_key(device_code);
    let g = match grant::load(&state.store, &state.sealer, &key, now).await {
        Ok(Some(g)) => g,
        Ok(None) => return OAuthError::EXPIRED.into_response(),
        Err(e) => {
            tracing::error!("device grant lookup failed: {e}");
            return OAuthError::UNAVAILABLE.into_response();
        }
    };
    match g.status {
        Status::Pending => {
            match state
                .store
                .kv_incr(&format!("rl:poll:{key}"), MIN_POLL, now)
                .await
            {
                Ok(n) if n > 1 => OAuthError::SLOW_DOWN.into_response(),
                _ => OAuthError::PENDING.into_response(),
            }
        }
        Status::Denied => {
            let _ = state.store.kv_delete(&key).await;
            OAuthError::ACCESS_DENIED.into_response()
        }
        Status::Complete => match grant::take(&state.store, &state.sealer, &key, now).await {
            Ok(Some(taken)) if taken.status == Status::Complete => match taken.issued {
                Some(t) => {
                    let mut body = json!({"access_token": t.access_token, "token_type": "Bearer", "expires_in": t.expires_in});
                    if let Some(rt) = t.refresh_token {
                        body["refresh_token"] = rt.into();
                    }
                    let mut res = Json(body).into_response();
                    no_store(res.headers_mut());
                    res
                }
                None => OAuthError::SERVER_ERROR.into_response(),
            },
            // Another poll collected it first.
            Ok(_) => OAuthError::EXPIRED.into_response(),
            Err(e) => {
                tracing::error!("device grant collection failed: {e}");
                OAuthError::UNAVAILABLE.into_response()
            }
        },
    }
}

/// Refresh is stateless: the client holds the IdP's refresh token (sealed with the session's
/// subject), the gateway exchanges it and mints a new session token. It needs no store beyond the
/// rate limit (which lets refreshes through while the store is down), so it works through a
/// database outage. Only the IdP's own `invalid_grant`, or an identity the gates now refuse, tells
/// the client to sign in again; anything on the gateway's or the IdP's side that may pass is
/// `503 temporarily_unavailable`, so the client keeps its refresh token.
async fn refresh(state: &AppState, ctx: &Ctx, presented: &str) -> Response {
    let Some(rp) = &state.rp else {
        return OAuthError::INVALID_GRANT.into_response();
    };
    let fail = |err: &str| {
        ctx.audit(
            state,
            "session.refresh",
            json!({"result": "fail", "err": err}),
        );
    };
    match ctx
        .over_limit(state, "refresh", &state.config.rate_limits.refresh)
        .await
    {
        Limit::Over => {
            fail("rate_limited");
            return OAuthError::RATE_LIMITED.into_response();
        }
        Limit::Within | Limit::Unavailable => {}
    }
    let now = state.clock.now();
    let opened = refresh_state::open(&state.sealer, presented, now.unix_timestamp());
    let ex = match rp.refresh(&opened.idp_token, now.unix_timestamp()).await {
        Ok(ex) => ex,
        Err(OidcError::InvalidGrant(e)) => {
            tracing::info!("refresh refused by the IdP: {e}");
            fail("invalid_grant");
            return OAuthError::INVALID_GRANT.into_response();
        }
        Err(OidcError::BadToken(e)) => {
            tracing::warn!("refresh: the IdP's id_token did not verify: {e}");
            fail("id_token_rejected");
            return OAuthError::UNAVAILABLE.into_response();
        }
        Err(e) => {
            tracing::warn!("refresh failed: {e}");
            fail("idp_unavailable");
            return OAuthError::UNAVAILABLE.into_response();
        }
    };
    let (who, idp_sub) = match identity(state, &ex, opened.sub.as_deref()).await {
        Ok(w) => w,
        Err(NotAdmitted::Refused(reason, _)) => {
            fail(&reason);
            ctx.audit(
                state,
                "auth.denied",
                json!({"reason": reason, "path": "/oauth/token"}),
            );
            return OAuthError::INVALID_GRANT.into_response();
        }
        Err(NotAdmitted::Unavailable(e)) => {
            tracing::warn!("refresh could not be confirmed: {e}");
            fail("idp_unavailable");
            return OAuthError::UNAVAILABLE.into_response();
        }
    };
    let ttl = (state.config.session.ttl_hours * 3600.0).round() as i64;
    let access = state.keys.mint(&who, now, time::Duration::seconds(ttl));
    ctx.audit(
        state,
        "session.refresh",
        json!({"result": "success", "sub": who.sub, "email": who.email, "groups": who.groups}),
    );
    let idp_rt = ex.refresh_token.as_deref().unwrap_or(&opened.idp_token);
    let rt = refresh_state::seal(&state.sealer, idp_rt, &idp_sub, now.unix_timestamp());
    let mut res = Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": rt,
    }))
    .into_response();
    no_store(res.headers_mut());
    res
}
