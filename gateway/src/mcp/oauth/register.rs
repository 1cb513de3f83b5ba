//! `POST /mcp/oauth/register`: dynamic client registration (RFC 7591) for public clients.
//! Nothing is stored: the client id is the client's name and redirect URIs, sealed, so any
//! replica reads it back. Only loopback `http` redirect URIs (a native app's, RFC 8252 §7.3) and
//! `https` ones are taken, and only the `none` authentication method.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::context::Ctx;
use crate::auth::oauth_error::{no_store, OAuthError};
use crate::http::error::ApiError;
use crate::state::AppState;

const PURPOSE: &str = "mcp_client";
/// The largest registration body read.
pub const MAX_BODY: usize = 8 * 1024;
/// How long a client id opens: a client whose id no longer opens registers again.
const CLIENT_TTL: i64 = 400 * 24 * 3600;
const MAX_REDIRECT_URIS: usize = 8;
const MAX_URI_LEN: usize = 2000;
const MAX_NAME_CHARS: usize = 100;

/// A registered client, as its id carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// `client_name`, cleaned.
    #[serde(rename = "n")]
    pub name: String,
    /// `redirect_uris`.
    #[serde(rename = "r")]
    pub redirect_uris: Vec<String>,
}

impl Client {
    /// The client an id names, if it opens.
    pub fn open(state: &AppState, client_id: &str, now: i64) -> Option<Client> {
        state.sealer.open(PURPOSE, client_id, now).ok()
    }

    /// Whether `uri` is one of the registered redirect URIs: the same string, or, for a
    /// loopback `http` one, the same but for the port (RFC 8252 §7.3).
    pub fn redirects_to(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| same_redirect(r, uri))
    }
}

/// Whether `presented` matches the registered redirect URI `registered`.
pub fn same_redirect(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(a), Ok(b)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    loopback(&a)
        && a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.path() == b.path()
        && a.query() == b.query()
        && a.fragment().is_none()
        && b.fragment().is_none()
        && b.username().is_empty()
        && b.password().is_none()
}

/// An `http` URL on a loopback host.
fn loopback(u: &url::Url) -> bool {
    u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// Why a registration is refused: (error code, description).
type Refusal = (&'static str, &'static str);

/// Reads a registration request into a client, or says what is wrong with it.
pub fn check(meta: &Value) -> Result<Client, Refusal> {
    const META: &str = "invalid_client_metadata";
    const REDIRECT: &str = "invalid_redirect_uri";
    let Some(meta) = meta.as_object() else {
        return Err((META, "The body must be a JSON object."));
    };
    let uris = match meta.get("redirect_uris") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_REDIRECT_URIS => a,
        _ => return Err((REDIRECT, "redirect_uris must list 1 to 8 URIs.")),
    };
    let mut redirect_uris = Vec::with_capacity(uris.len());
    for u in uris {
        let Some(s) = u.as_str().filter(|s| s.len() <= MAX_URI_LEN) else {
            return Err((
                REDIRECT,
                "Each redirect URI must be a string of at most 2000 characters.",
            ));
        };
        let Ok(parsed) = url::Url::parse(s) else {
            return Err((REDIRECT, "A redirect URI is not a URL."));
        };
        let allowed = loopback(&parsed) || (parsed.scheme() == "https" && parsed.host().is_some());
        if !allowed {
            return Err((
                REDIRECT,
                "Redirect URIs must be https, or http on localhost, 127.0.0.1 or [::1].",
            ));
        }
        if parsed.fragment().is_some()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            return Err((
                REDIRECT,
                "A redirect URI may not carry a fragment or credentials.",
            ));
        }
        redirect_uris.push(s.to_owned());
    }
    match meta.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_str() == Some("none") => {}
        Some(_) => {
            return Err((
                META,
                "Only the token endpoint authentication method none is supported.",
            ))
        }
    }
    let subset = |key: &str, allowed: &[&str]| match meta.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a
            .iter()
            .all(|v| v.as_str().is_some_and(|s| allowed.contains(&s))),
        Some(_) => false,
    };
    if !subset("grant_types", &["authorization_code", "refresh_token"]) {
        return Err((
            META,
            "grant_types may hold only authorization_code and refresh_token.",
        ));
    }
    if !subset("response_types", &["code"]) {
        return Err((META, "response_types may hold only code."));
    }
    let name = match meta.get("client_name") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_NAME_CHARS)
            .collect::<String>()
            .trim()
            .to_owned(),
        Some(_) => return Err((META, "client_name must be a string.")),
    };
    Ok(Client {
        name,
        redirect_uris,
    })
}

fn refused(error: &'static str, description: &'static str) -> Response {
    let mut res = (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    no_store(res.headers_mut());
    res
}

/// The handler (the per-IP limit was checked from the request head, in `auth::gate`).
pub async fn register(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    if super::settings(&state).is_none() {
        return ApiError::NotFound.into_response();
    }
    let audit = |result: &str, client: Option<&Client>| {
        ctx.audit(
            &state,
            "mcp.register",
            json!({"result": result, "client_name": client.map(|c| c.name.clone())}),
        );
    };
    if body.len() > MAX_BODY {
        audit("too_large", None);
        return refused(
            "invalid_client_metadata",
            "The registration is larger than 8 KiB.",
        );
    }
    let meta: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            audit("invalid", None);
            return refused("invalid_client_metadata", "The body is not JSON.");
        }
    };
    let client = match check(&meta) {
        Ok(c) => c,
        Err((error, description)) => {
            audit(error, None);
            return refused(error, description);
        }
    };
    let now = state.clock.now().unix_timestamp();
    let Ok(client_id) = state
        .sealer
        .seal(PURPOSE, &client, now.saturating_add(CLIENT_TTL))
    else {
        return OAuthError::SERVER_ERROR.into_response();
    };
    audit("success", Some(&client));
    let mut body = json!({
        "client_id": client_id,
        "client_id_issued_at": now,
        "redirect_uris": client.redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": super::access::SCOPE,
    });
    if !client.name.is_empty() {
        body["client_name"] = client.name.clone().into();
    }
    let mut res = (StatusCode::CREATED, Json(body)).into_response();
    no_store(res.headers_mut());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(v: Value) -> &'static str {
        check(&v).unwrap_err().0
    }

    #[test]
    fn what_the_client_sends_is_taken() {
        let c = check(&json!({
            "client_name": "Claude Code (aws)",
            "redirect_uris": ["http://localhost:53123/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "scope": "aws"
        }))
        .unwrap();
        assert_eq!(c.name, "Claude Code (aws)");
        assert_eq!(c.redirect_uris, ["http://localhost:53123/callback"]);
        for ok in [
            "http://127.0.0.1:1/cb",
            "http://[::1]:8080/callback",
            "https://app.example.com/oauth/cb",
        ] {
            assert!(check(&json!({"redirect_uris": [ok]})).is_ok(), "{ok}");
        }
    }

    #[test]
    fn bad_metadata_is_named() {
        for bad in [
            "http://example.com/callback",
            "http://localhost.example.com/cb",
            "ftp://localhost/cb",
            "javascript:alert(1)",
            "https://app.example.com/cb#frag",
            "https://user:pw@app.example.com/cb",
            "not a url",
        ] {
            assert_eq!(
                err(json!({"redirect_uris": [bad]})),
                "invalid_redirect_uri",
                "{bad}"
            );
        }
        assert_eq!(err(json!({})), "invalid_redirect_uri");
        assert_eq!(err(json!({"redirect_uris": []})), "invalid_redirect_uri");
        let many: Vec<String> = (0..9).map(|i| format!("http://localhost/{i}")).collect();
        assert_eq!(err(json!({"redirect_uris": many})), "invalid_redirect_uri");
        let ok = json!(["http://localhost:1/callback"]);
        assert_eq!(
            err(json!({"redirect_uris": ok, "token_endpoint_auth_method": "client_secret_basic"})),
            "invalid_client_metadata"
        );
        assert_eq!(
            err(json!({"redirect_uris": ok, "grant_types": ["implicit"]})),
            "invalid_client_metadata"
        );
        assert_eq!(
            err(json!({"redirect_uris": ok, "response_types": ["token"]})),
            "invalid_client_metadata"
        );
        assert_eq!(
            err(json!({"redirect_uris": ok, "client_name": 5})),
            "invalid_client_metadata"
        );
        assert_eq!(err(json!([1])), "invalid_client_metadata");
        let long =
            check(&json!({"redirect_uris": ok, "client_name": "x\u{7}".repeat(500)})).unwrap();
        assert_eq!(long.name, "x".repeat(100));
    }

    #[test]
    fn a_loopback_redirect_matches_on_any_port_and_nothing_else_moves() {
        let r = "http://localhost:53123/callback";
        assert!(same_redirect(r, r));
        assert!(same_redirect(r, "http://localhost:3118/callback"));
        assert!(same_redirect(r, "http://localhost/callback"));
        assert!(!same_redirect(r, "http://localhost:3118/other"));
        assert!(!same_redirect(r, "http://127.0.0.1:53123/callback"));
        assert!(!same_redirect(r, "https://localhost:53123/callback"));
        assert!(!same_redirect(r, "http://localhost:3118/callback?x=1"));
        assert!(!same_redirect(r, "http://evil@localhost:3118/callback"));
        let web = "https://app.example.com/cb";
        assert!(same_redirect(web, web));
        assert!(!same_redirect(web, "https://app.example.com:8443/cb"));
    }
}
