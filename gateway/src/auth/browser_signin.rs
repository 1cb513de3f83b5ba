//! A person's sign-in in the browser for a page of the gateway (the approval page, the MCP
//! authorization), through the one relying party and its one callback: a sealed `state`
//! (PKCE verifier, nonce, what to go back to) bound to a browser cookie; on the way back the
//! state is opened, the browser checked, the code exchanged, the id_token verified and the claim
//! gates applied here, once, for every kind of such sign-in. Each kind names its own sealing
//! purpose, cookie and wording; what it does with the admitted person stays with it. The device
//! grant's callback (`auth::callback`) settles a grant instead and keeps its own path.

use axum::response::Response;
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::callback::{cookie, identity, Callback, NotAdmitted};
use super::codes::{same, sha256_hex, token};
use super::pages::{found, message, went_wrong};
use super::token::Identity;
use crate::state::AppState;

/// One kind of browser sign-in.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    /// The sealing purpose of its `state` (one per kind, so one kind's state opens no other).
    pub purpose: &'static str,
    /// The browser-binding cookie's name (`__Host-` prefixed under https).
    pub cookie: &'static str,
    /// What the pages tell the person to do to start again, e.g. "Open the approval link again."
    pub again: &'static str,
    /// How log lines name it, e.g. "an approver's sign-in".
    pub what: &'static str,
}

/// What the sealed OAuth `state` of a sign-in carries.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignIn<T> {
    /// What the kind goes back to (a request id, a checked authorization request).
    #[serde(alias = "grant", alias = "request")]
    pub data: T,
    verifier: String,
    nonce: String,
    /// SHA-256 (hex) of the browser cookie that must come back.
    pub browser: String,
}

/// A person signed in at the IdP and admitted by the claim gates.
#[derive(Debug)]
pub struct SignedIn {
    /// Who.
    pub identity: Identity,
    /// Their subject at the IdP.
    pub idp_sub: String,
    /// What renews the sign-in at the IdP, when it gave one.
    pub idp_refresh_token: Option<String>,
}

/// A sign-in that did not complete.
#[derive(Debug)]
pub struct Refusal {
    /// Why, for the audit.
    pub reason: String,
    /// The claim gates refused the person (rather than the trip failing).
    pub by_gates: bool,
    /// The page to show.
    pub page: Response,
}

fn secure(state: &AppState) -> bool {
    state.origin.starts_with("https://")
}

/// Cookie `base`'s name: `__Host-` prefixed under https.
pub fn cookie_name(state: &AppState, base: &str) -> String {
    if secure(state) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// Adds cookie `base` (`HttpOnly`, `SameSite=Lax`, path `/`) to `res`; `max_age` 0 clears it.
pub fn set_cookie(state: &AppState, res: &mut Response, base: &str, value: &str, max_age: i64) {
    let c = format!(
        "{}={value}; Max-Age={max_age}; HttpOnly; SameSite=Lax; Path=/{}",
        cookie_name(state, base),
        if secure(state) { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

impl Flow {
    /// Sets (or, with `max_age` 0, clears) the browser-binding cookie on `res`.
    pub fn set_binding(&self, state: &AppState, res: &mut Response, value: &str, max_age: i64) {
        set_cookie(state, res, self.cookie, value, max_age);
    }

    /// The request's browser-binding cookie, if any.
    pub fn binding(&self, state: &AppState, headers: &HeaderMap) -> Option<String> {
        cookie(headers, &cookie_name(state, self.cookie))
    }

    /// Whether the request's browser-binding cookie hashes to `expected`.
    pub fn same_browser(&self, state: &AppState, headers: &HeaderMap, expected: &str) -> bool {
        self.binding(state, headers)
            .map(|c| sha256_hex(&c))
            .is_some_and(|h| same(&h, expected))
    }

    /// Sends the browser to the IdP to sign in and come back with `data`, bound to a fresh
    /// browser cookie, for `ttl` seconds. `Err` is the page to show instead.
    pub async fn start<T: Serialize>(
        &self,
        state: &AppState,
        data: T,
        ttl: i64,
    ) -> Result<Response, Response> {
        let Some(rp) = &state.rp else {
            return Err(message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in unavailable",
                "This gateway has no identity provider configured.",
            ));
        };
        let (Ok(verifier), Ok(nonce), Ok(browser)) = (token(32), token(16), token(32)) else {
            return Err(went_wrong());
        };
        let st = SignIn {
            data,
            verifier: verifier.clone(),
            nonce: nonce.clone(),
            browser: sha256_hex(&browser),
        };
        let exp = state.clock.now().unix_timestamp() + ttl;
        let Ok(sealed) = state.sealer.seal(self.purpose, &st, exp) else {
            return Err(went_wrong());
        };
        match rp.authorize_url(&sealed, &nonce, &verifier).await {
            Ok(url) => {
                let mut res = found(&url);
                self.set_binding(state, &mut res, &browser, ttl);
                Ok(res)
            }
            Err(e) => {
                tracing::error!("{e}");
                Err(message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Identity provider unavailable",
                    "The identity provider could not be reached. Try again shortly.",
                ))
            }
        }
    }

    /// The callback's `state`, if it is one of this kind's and still good at `now`.
    pub fn open<T: DeserializeOwned>(
        &self,
        state: &AppState,
        q: &Callback,
        now: i64,
    ) -> Option<SignIn<T>> {
        state
            .sealer
            .open(self.purpose, q.state.as_deref()?, now)
            .ok()
    }

    /// Completes the sign-in `st` came back with: the same browser, the IdP's answer (a code,
    /// or an error), the exchange and the id_token, the claim gates.
    pub async fn finish<T>(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        st: &SignIn<T>,
        q: &Callback,
        now: i64,
    ) -> Result<SignedIn, Refusal> {
        let (code, error) = (q.code.as_deref(), q.error.as_deref());
        let refused = |reason: &str, text: &str| Refusal {
            reason: reason.to_owned(),
            by_gates: false,
            page: message(
                StatusCode::FORBIDDEN,
                "Sign-in could not be completed",
                text,
            ),
        };
        if !self.same_browser(state, headers, &st.browser) {
            return Err(Refusal {
                reason: "browser_mismatch".into(),
                by_gates: false,
                page: message(
                    StatusCode::FORBIDDEN,
                    "Different browser",
                    &format!(
                        "This sign-in was started in a different browser. {}",
                        self.again
                    ),
                ),
            });
        }
        if let Some(err) = error {
            tracing::info!(error = ?err, "the IdP returned an error to {}", self.what);
            return Err(refused(
                "idp_error",
                "The identity provider did not sign you in.",
            ));
        }
        let (Some(rp), Some(code)) = (&state.rp, code.filter(|c| !c.is_empty())) else {
            return Err(refused(
                "missing_code",
                &format!("The identity provider sent no code. {}", self.again),
            ));
        };
        let ex = match rp.exchange(code, &st.verifier, &st.nonce, now).await {
            Ok(ex) => ex,
            Err(e) => {
                tracing::warn!("{} failed at the IdP: {e}", self.what);
                return Err(refused(
                    "idp_exchange",
                    &format!(
                        "The identity provider did not confirm the sign-in. {}",
                        self.again
                    ),
                ));
            }
        };
        match identity(state, &ex, None).await {
            Ok((identity, idp_sub)) => Ok(SignedIn {
                identity,
                idp_sub,
                idp_refresh_token: ex.refresh_token,
            }),
            Err(NotAdmitted::Refused(reason, text)) => Err(Refusal {
                by_gates: true,
                ..refused(&reason, &text)
            }),
            Err(NotAdmitted::Unavailable(e)) => {
                tracing::warn!("{} could not be confirmed: {e}", self.what);
                Err(refused(
                    "idp_unavailable",
                    "The identity provider could not be reached. Try again in a moment.",
                ))
            }
        }
    }
}
