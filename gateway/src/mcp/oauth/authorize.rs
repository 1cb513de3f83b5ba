//! `GET /mcp/oauth/authorize`: the client's authorization request is checked (client, redirect
//! URI, response type, PKCE S256, resource, scope) before the person signs in ([`super::signin`]).
//! Problems found before the redirect URI is trusted are shown as a page, never sent to it.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::register::Client;
use crate::auth::context::Ctx;
use crate::auth::pages::{found, message};
use crate::http::error::ApiError;
use crate::state::AppState;

/// The longest `state` of a client's taken.
const MAX_STATE_LEN: usize = 1024;

/// An authorization request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The client's id.
    pub client_id: String,
    /// The client's name, as registered.
    pub client_name: String,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The client's `state`, returned as it came.
    pub state: Option<String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Before the redirect URI is trusted: a page (title, text).
    Page(&'static str, &'static str),
    /// To the client's redirect URI: (error, description, the client's state).
    Redirect {
        /// Where.
        redirect_uri: String,
        /// The OAuth error code.
        error: &'static str,
        /// What is wrong.
        description: &'static str,
        /// The client's state.
        state: Option<String>,
    },
}

/// Checks the query of an authorization request against `resource` (the client is opened by
/// `open_client`).
pub fn check(
    query: &str,
    resource: &str,
    open_client: impl Fn(&str) -> Option<Client>,
) -> Result<Request, Refused> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut seen = std::collections::HashSet::new();
    let twice = !pairs.iter().all(|(k, _)| seen.insert(k.as_str()));
    let Some(client) = get("client_id").and_then(&open_client) else {
        return Err(Refused::Page(
            "Unknown application",
            "The application asking for access is not registered here, or its registration has expired. Start again from the application.",
        ));
    };
    let client_id = get("client_id").unwrap_or_default().to_owned();
    let Some(redirect_uri) = get("redirect_uri").filter(|r| client.redirects_to(r)) else {
        return Err(Refused::Page(
            "Unexpected return address",
            "The application asked to return to an address it did not register. Nothing was sent to it.",
        ));
    };
    let state = get("state").map(str::to_owned);
    let refuse = |error, description| Refused::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        error,
        description,
        state: state.clone().filter(|s| s.len() <= MAX_STATE_LEN),
    };
    if twice {
        return Err(refuse("invalid_request", "A parameter was given twice."));
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(refuse(
            "invalid_request",
            "state is longer than 1024 characters.",
        ));
    }
    if get("response_type") != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "Only response_type=code is supported.",
        ));
    }
    let challenge = get("code_challenge").unwrap_or_default();
    if challenge.is_empty() {
        return Err(refuse(
            "invalid_request",
            "PKCE is required: code_challenge is missing.",
        ));
    }
    if get("code_challenge_method") != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "PKCE is required with code_challenge_method=S256.",
        ));
    }
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(refuse(
            "invalid_request",
            "code_challenge is not an S256 challenge.",
        ));
    }
    if get("resource") != Some(resource) {
        return Err(refuse(
            "invalid_target",
            "resource must name this server's MCP endpoint.",
        ));
    }
    let scope_ok = get("scope").is_none_or(|s| {
        s.split(' ')
            .filter(|x| !x.is_empty())
            .all(|x| x == super::access::SCOPE)
    });
    if !scope_ok {
        return Err(refuse("invalid_scope", "The only scope is aws."));
    }
    Ok(Request {
        client_id,
        client_name: client.name,
        redirect_uri: redirect_uri.to_owned(),
        code_challenge: challenge.to_owned(),
        state,
    })
}

/// `redirect_uri` with `params` and the issuer (RFC 9207) added to its query.
pub fn back_to(redirect_uri: &str, params: &[(&str, &str)], issuer: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
                q.append_pair("iss", issuer);
            }
            u.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

/// The refusal's answer.
pub fn refusal(state: &AppState, r: Refused) -> Response {
    match r {
        Refused::Page(title, text) => message(StatusCode::BAD_REQUEST, title, text),
        Refused::Redirect {
            redirect_uri,
            error,
            description,
            state: client_state,
        } => {
            let mut params = vec![("error", error), ("error_description", description)];
            if let Some(s) = &client_state {
                params.push(("state", s));
            }
            found(&back_to(&redirect_uri, &params, &super::issuer(state)))
        }
    }
}

/// The handler.
pub async fn authorize(
    State(state): State<AppState>,
    ctx: Ctx,
    RawQuery(query): RawQuery,
) -> Response {
    if super::settings(&state).is_none() {
        return ApiError::NotFound.into_response();
    }
    let now = state.clock.now().unix_timestamp();
    let resource = super::resource(&state);
    let request = match check(query.as_deref().unwrap_or_default(), &resource, |id| {
        Client::open(&state, id, now)
    }) {
        Ok(r) => r,
        Err(r) => {
            let reason = match &r {
                Refused::Page(title, _) => (*title).to_owned(),
                Refused::Redirect { error, .. } => (*error).to_owned(),
            };
            ctx.audit(
                &state,
                "mcp.authorize",
                json!({"result": "refused", "reason": reason}),
            );
            return refusal(&state, r);
        }
    };
    super::signin::start(&state, &ctx, request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "https://gw.example.com/mcp";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(id: &str) -> Option<Client> {
        (id == "c1").then(|| Client {
            name: "Claude Code (aws)".into(),
            redirect_uris: vec!["http://localhost:50000/callback".into()],
        })
    }

    fn query(over: &[(&str, Option<&str>)]) -> String {
        let mut base: Vec<(&str, Option<&str>)> = vec![
            ("response_type", Some("code")),
            ("client_id", Some("c1")),
            ("redirect_uri", Some("http://localhost:61000/callback")),
            ("code_challenge", Some(CHALLENGE)),
            ("code_challenge_method", Some("S256")),
            ("state", Some("xyz")),
            ("scope", Some("aws")),
            ("resource", Some(R)),
        ];
        for (k, v) in over {
            match base.iter_mut().find(|(n, _)| n == k) {
                Some(slot) => slot.1 = *v,
                None => base.push((k, *v)),
            }
        }
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in base {
            if let Some(v) = v {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }

    fn error_of(over: &[(&str, Option<&str>)]) -> &'static str {
        match check(&query(over), R, client) {
            Err(Refused::Redirect { error, state, .. }) => {
                assert_eq!(state.as_deref(), Some("xyz"));
                error
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_clients_request_passes() {
        let r = check(&query(&[]), R, client).unwrap();
        assert_eq!(r.redirect_uri, "http://localhost:61000/callback");
        assert_eq!(r.code_challenge, CHALLENGE);
        assert_eq!(r.state.as_deref(), Some("xyz"));
        assert!(check(&query(&[("scope", None)]), R, client).is_ok());
    }

    #[test]
    fn an_unknown_client_or_redirect_is_a_page_never_a_redirect() {
        for over in [
            vec![("client_id", Some("other"))],
            vec![("client_id", None)],
            vec![("redirect_uri", Some("http://localhost:61000/elsewhere"))],
            vec![("redirect_uri", Some("https://evil.example.com/callback"))],
            vec![("redirect_uri", None)],
        ] {
            assert!(
                matches!(check(&query(&over), R, client), Err(Refused::Page(..))),
                "{over:?}"
            );
        }
    }

    #[test]
    fn pkce_resource_and_type_are_required() {
        assert_eq!(error_of(&[("code_challenge", None)]), "invalid_request");
        assert_eq!(
            error_of(&[("code_challenge_method", None)]),
            "invalid_request"
        );
        assert_eq!(
            error_of(&[("code_challenge_method", Some("plain"))]),
            "invalid_request"
        );
        assert_eq!(
            error_of(&[("code_challenge", Some("short"))]),
            "invalid_request"
        );
        assert_eq!(error_of(&[("resource", None)]), "invalid_target");
        assert_eq!(
            error_of(&[("resource", Some("https://gw.example.com/"))]),
            "invalid_target"
        );
        assert_eq!(
            error_of(&[("response_type", Some("token"))]),
            "unsupported_response_type"
        );
        assert_eq!(
            error_of(&[("scope", Some("aws offline_access"))]),
            "invalid_scope"
        );
        let twice = format!("{}&state=xyz", query(&[]));
        assert!(matches!(
            check(&twice, R, client),
            Err(Refused::Redirect {
                error: "invalid_request",
                ..
            })
        ));
    }

    #[test]
    fn the_answer_keeps_the_redirect_query_and_adds_the_issuer() {
        assert_eq!(
            back_to(
                "http://localhost:1/cb?a=1",
                &[("code", "c d"), ("state", "s")],
                "https://gw/mcp/oauth"
            ),
            "http://localhost:1/cb?a=1&code=c+d&state=s&iss=https%3A%2F%2Fgw%2Fmcp%2Foauth"
        );
    }
}
