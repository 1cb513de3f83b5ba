//! `POST /mcp/oauth/token`: the authorization code grant (every binding of the code checked:
//! client, redirect URI, PKCE verifier, resource; a code presented again ends what its first use
//! started) and the refresh grant (rotated; the person's standing confirmed again at the IdP
//! when it gave a refresh token, within the hard cap of `refresh_hours` from the browser
//! sign-in). Answers carry a new access token and refresh token; errors are RFC 6749 JSON.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::json;

use super::code::{self, family_of};
use super::refresh::{self, Family};
use crate::auth::callback::{identity, NotAdmitted};
use crate::auth::codes::{pkce_challenge, same, token as random};
use crate::auth::context::Ctx;
use crate::auth::oauth_error::{no_store, OAuthError};
use crate::auth::oidc::OidcError;
use crate::auth::throttle::Limit;
use crate::auth::token::Identity;
use crate::auth::token_form::TokenForm;
use crate::config::mcp::Mcp;
use crate::http::error::ApiError;
use crate::state::AppState;

/// A PKCE verifier as RFC 7636 §4.1 shapes it.
fn verifier_ok(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The handler.
pub async fn token(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(settings) = super::settings(&state) else {
        return ApiError::NotFound.into_response();
    };
    // A parameter given twice is refused (RFC 6749 §3.2).
    let Some(form) = TokenForm::read(&headers, &body).filter(|f| !f.repeats()) else {
        return OAuthError::INVALID_REQUEST.into_response();
    };
    let get = |k: &str| form.get(k);
    let t = Token {
        state: &state,
        ctx: &ctx,
        settings,
    };
    match get("grant_type") {
        Some("authorization_code") => t.code(&get).await,
        Some("refresh_token") => t.refresh(&get).await,
        None => OAuthError::INVALID_REQUEST.into_response(),
        Some(_) => OAuthError::UNSUPPORTED_GRANT.into_response(),
    }
}

struct Token<'a> {
    state: &'a AppState,
    ctx: &'a Ctx,
    settings: &'a Mcp,
}

impl Token<'_> {
    fn audit(&self, grant: &str, result: &str, client_id: Option<&str>, sub: Option<&str>) {
        self.ctx.audit(
            self.state,
            "mcp.token",
            json!({
                "grant_type": grant,
                "result": result,
                "client": client_id.map(super::client_ref),
                "sub": sub,
            }),
        );
    }

    /// The resource parameter: absent, or this server's.
    fn resource_ok(&self, presented: Option<&str>) -> bool {
        presented.is_none_or(|r| r == super::resource(self.state))
    }

    async fn code<'g>(&self, get: &impl Fn(&str) -> Option<&'g str>) -> Response {
        const GRANT: &str = "authorization_code";
        let Some(presented) = get("code") else {
            self.audit(GRANT, "invalid_request", None, None);
            return OAuthError::INVALID_REQUEST.into_response();
        };
        let now = self.state.clock.now();
        let c = match code::take(self.state, presented, now).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                // Unknown, expired, or used before: whatever its first use started ends now.
                if let Err(e) = refresh::revoke(self.state, &family_of(presented)).await {
                    tracing::error!("could not end the grant of a replayed code: {e}");
                }
                self.audit(GRANT, "invalid_code", get("client_id"), None);
                return OAuthError::GRANT_REFUSED.into_response();
            }
            Err(e) => {
                tracing::error!("MCP code lookup failed: {e}");
                self.audit(GRANT, "error", get("client_id"), None);
                return OAuthError::UNAVAILABLE.into_response();
            }
        };
        let refuse = |result: &str, e: OAuthError| {
            self.audit(GRANT, result, Some(&c.client_id), Some(&c.identity.sub));
            e.into_response()
        };
        if !get("client_id").is_some_and(|id| same(id, &c.client_id)) {
            return refuse("client_mismatch", OAuthError::GRANT_REFUSED);
        }
        if get("redirect_uri") != Some(c.redirect_uri.as_str()) {
            return refuse("redirect_mismatch", OAuthError::GRANT_REFUSED);
        }
        let Some(verifier) = get("code_verifier") else {
            return refuse("pkce_missing", OAuthError::INVALID_REQUEST);
        };
        if !verifier_ok(verifier) || !same(&pkce_challenge(verifier), &c.code_challenge) {
            return refuse("pkce_mismatch", OAuthError::GRANT_REFUSED);
        }
        if !self.resource_ok(get("resource")) || c.resource != super::resource(self.state) {
            return refuse("invalid_target", OAuthError::INVALID_TARGET);
        }
        let cap = i64::from(self.settings.refresh_hours) * 3600;
        let family = Family {
            generation: 0,
            client_id: c.client_id.clone(),
            identity: c.identity.clone(),
            idp_refresh_token: c.idp_refresh_token.clone(),
            idp_sub: c.idp_sub.clone(),
            signed_in_at: c.signed_in_at,
            ends_at: c.signed_in_at.saturating_add(cap),
        };
        let id = family_of(presented);
        match refresh::start(self.state, &id, &family, now).await {
            Ok(true) => {}
            Ok(false) => return refuse("invalid_code", OAuthError::GRANT_REFUSED),
            Err(e) => {
                tracing::error!("could not start an MCP refresh family: {e}");
                return refuse("error", OAuthError::UNAVAILABLE);
            }
        }
        self.answer(GRANT, &id, &family)
    }

    async fn refresh<'g>(&self, get: &impl Fn(&str) -> Option<&'g str>) -> Response {
        const GRANT: &str = "refresh_token";
        match self
            .ctx
            .over_limit(
                self.state,
                "mcprefresh",
                &self.state.config.rate_limits.refresh,
            )
            .await
        {
            Limit::Over => {
                self.audit(GRANT, "rate_limited", get("client_id"), None);
                return OAuthError::RATE_LIMITED.into_response();
            }
            Limit::Within | Limit::Unavailable => {}
        }
        let (Some(presented), Some(client_id)) = (get("refresh_token"), get("client_id")) else {
            self.audit(GRANT, "invalid_request", get("client_id"), None);
            return OAuthError::INVALID_REQUEST.into_response();
        };
        if !self.resource_ok(get("resource")) {
            self.audit(GRANT, "invalid_target", Some(client_id), None);
            return OAuthError::INVALID_TARGET.into_response();
        }
        let now = self.state.clock.now();
        let Some(p) = refresh::open(self.state, presented, now.unix_timestamp()) else {
            self.audit(GRANT, "invalid_token", Some(client_id), None);
            return OAuthError::GRANT_REFUSED.into_response();
        };
        let (family, read) = match refresh::load(self.state, &p.family, now).await {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.audit(GRANT, "ended", Some(client_id), None);
                return OAuthError::GRANT_REFUSED.into_response();
            }
            Err(e) => {
                tracing::error!("MCP refresh family lookup failed: {e}");
                self.audit(GRANT, "error", Some(client_id), None);
                return OAuthError::UNAVAILABLE.into_response();
            }
        };
        let sub = family.identity.sub.clone();
        let end = |result: String| self.end(&p.family, result, client_id, sub.clone());
        if !same(client_id, &family.client_id) {
            self.audit(
                GRANT,
                "client_mismatch",
                Some(client_id),
                Some(&family.identity.sub),
            );
            return OAuthError::GRANT_REFUSED.into_response();
        }
        if let Err(why) = refresh::usable(&family, &p, now.unix_timestamp()) {
            return end(why.into()).await;
        }
        let (who, idp_refresh_token) = match self.confirm(&family).await {
            Ok(c) => c,
            Err(Confirm::Refused(reason)) => return end(reason).await,
            Err(Confirm::Unavailable) => {
                self.audit(
                    GRANT,
                    "idp_unavailable",
                    Some(client_id),
                    Some(&family.identity.sub),
                );
                return OAuthError::UNAVAILABLE.into_response();
            }
        };
        let next = Family {
            generation: family.generation.saturating_add(1),
            identity: who,
            idp_refresh_token,
            ..family.clone()
        };
        match refresh::rotate(self.state, &p.family, &read, &next, now).await {
            Ok(true) => self.answer(GRANT, &p.family, &next),
            // Another use of the same token won the race: two uses of one token is a reuse.
            Ok(false) => end("reuse".into()).await,
            Err(e) => {
                tracing::error!("could not rotate an MCP refresh family: {e}");
                self.audit(GRANT, "error", Some(client_id), Some(&family.identity.sub));
                OAuthError::UNAVAILABLE.into_response()
            }
        }
    }

    /// Ends family `id` (a reuse, the cap, or the person refused now) and refuses the grant.
    async fn end(&self, id: &str, result: String, client_id: &str, sub: String) -> Response {
        if let Err(e) = refresh::revoke(self.state, id).await {
            tracing::error!("could not end an MCP refresh family: {e}");
        }
        self.audit("refresh_token", &result, Some(client_id), Some(&sub));
        OAuthError::GRANT_REFUSED.into_response()
    }

    /// The person's standing, confirmed again at the IdP when the sign-in left a way to ask it
    /// (the claim gates applied to what it says now); the identity as last known otherwise.
    async fn confirm(&self, f: &Family) -> Result<(Identity, Option<String>), Confirm> {
        let (Some(rt), Some(rp)) = (&f.idp_refresh_token, &self.state.rp) else {
            return Ok((f.identity.clone(), f.idp_refresh_token.clone()));
        };
        let now = self.state.clock.now().unix_timestamp();
        let ex = match rp.refresh(rt, now).await {
            Ok(ex) => ex,
            Err(OidcError::InvalidGrant(e)) => {
                tracing::info!("MCP refresh refused by the IdP: {e}");
                return Err(Confirm::Refused("idp_invalid_grant".into()));
            }
            Err(e) => {
                tracing::warn!("MCP refresh could not reach the IdP: {e}");
                return Err(Confirm::Unavailable);
            }
        };
        match identity(self.state, &ex, Some(&f.idp_sub)).await {
            Ok((who, _)) => Ok((who, ex.refresh_token.or_else(|| Some(rt.clone())))),
            Err(NotAdmitted::Refused(reason, _)) => {
                self.ctx.audit(
                    self.state,
                    "auth.denied",
                    json!({"reason": reason, "path": "/mcp/oauth/token"}),
                );
                Err(Confirm::Refused(reason))
            }
            Err(NotAdmitted::Unavailable(e)) => {
                tracing::warn!("MCP refresh could not be confirmed: {e}");
                Err(Confirm::Unavailable)
            }
        }
    }

    /// The token answer for family `id` at its current generation.
    fn answer(&self, grant: &str, id: &str, f: &Family) -> Response {
        let now = self.state.clock.now();
        let ttl = i64::from(self.settings.access_token_seconds);
        let (Ok(jti), Ok(rt)) = (
            random(16),
            refresh::token(self.state, id, f.generation, f.ends_at),
        ) else {
            return OAuthError::SERVER_ERROR.into_response();
        };
        let access = super::keys(self.state).mint(&f.identity, &f.client_id, &jti, now, ttl);
        self.audit(grant, "success", Some(&f.client_id), Some(&f.identity.sub));
        let mut res = Json(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": rt,
            "scope": super::access::SCOPE,
        }))
        .into_response();
        no_store(res.headers_mut());
        res
    }
}

/// Why a refresh was not confirmed.
enum Confirm {
    /// For good (audit reason): the family ends.
    Refused(String),
    /// The IdP could not say now.
    Unavailable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_are_read_strictly() {
        assert!(verifier_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!verifier_ok("short"));
        assert!(!verifier_ok(&"a".repeat(129)));
        assert!(!verifier_ok(&format!("{}!", "a".repeat(43))));
    }
}
