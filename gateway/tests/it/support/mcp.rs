//! The MCP server's authorization, driven over HTTP the way Claude Code and a person's browser
//! drive it: the client registers, sends the browser to the authorize endpoint, the person signs
//! in at the real test IdP and presses Allow, and the client trades the code for tokens.
//!
//! ```ignore
//! let (idp, gw, base) = signin_with(&users, IdpOptions::default(), "", &mcp::aws_access(""));
//! let tokens = mcp::sign_in(&gw, &idp, "alice").await;   // Bearer tokens.access_token at /mcp
//! ```

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use super::gateway::Gateway;
use super::idp::Idp;

/// The redirect URI the test client registers (nothing listens there: the flow stops at the
/// redirect, as a browser handing it to the client's loopback listener would).
pub const REDIRECT_URI: &str = "http://localhost:53682/callback";

/// An `aws_access` section with the AWS proxy and the MCP server on; `mcp` is the body of the
/// `aws_access.mcp` flow mapping (e.g. `access_token_seconds: 60`). Members of IdP group
/// `payments` may write to project `payments`.
pub fn aws_access(mcp: &str) -> String {
    format!(
        "aws_access:
  proxy: {{}}
  mcp: {{{mcp}}}
  projects:
    - name: payments
      role_arn: arn:aws:iam::123456789012:role/agent-payments
      regions: [eu-west-1]
      tag: {{key: project, value: payments}}
      environment: nonprod
      read: ['s3:Get*', 's3:List*']
      write: ['s3:PutObject']
      approvers: [payments-leads]
  members:
    - {{project: payments, groups: [payments], level: write, from: '2020-01-01T00:00:00Z', until: '2099-01-01T00:00:00Z'}}
"
    )
}

/// What a finished sign-in leaves the client holding.
#[derive(Debug, Clone)]
pub struct McpTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub client_id: String,
    /// The token answer whole.
    pub answer: Value,
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).expect("random bytes");
    let verifier = B64.encode(b);
    let challenge = B64.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    (verifier, challenge)
}

/// The authorization server of the gateway at `base`, as a client and a browser see it.
pub struct McpAuth {
    pub base: String,
    /// Follows no redirect.
    pub http: reqwest::Client,
}

/// Where the browser was sent after the consent page.
#[derive(Debug)]
pub struct Consent {
    /// The consent form's sealed field.
    pub consent: String,
    /// The browser-binding cookie (`name=value`).
    pub cookie: String,
    /// The page.
    pub html: String,
}

impl McpAuth {
    pub fn new(base: &str) -> McpAuth {
        super::client();
        McpAuth {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
        }
    }

    /// Like [`McpAuth::new`], for a gateway on TLS whose certificate `ca_der` signs.
    pub fn trusting(base: &str, ca_der: &[u8]) -> McpAuth {
        super::client();
        McpAuth {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .add_root_certificate(
                    reqwest::Certificate::from_der(ca_der).expect("a DER certificate"),
                )
                .build()
                .expect("http client"),
        }
    }

    pub fn resource(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub fn issuer(&self) -> String {
        format!("{}/mcp/oauth", self.base)
    }

    /// `POST /mcp/oauth/register` with `body`: (status, JSON answer).
    pub async fn register_with(&self, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/mcp/oauth/register", self.base))
            .json(body)
            .send()
            .await
            .expect("register");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Registers as Claude Code does, with [`REDIRECT_URI`]; returns the client id.
    pub async fn register(&self) -> String {
        let (s, v) = self
            .register_with(&json!({
                "client_name": "Claude Code (aws)",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
                "scope": "aws",
            }))
            .await;
        assert_eq!(s, 201, "{v}");
        v["client_id"].as_str().expect("a client_id").to_owned()
    }

    /// The authorize URL the client opens, with `over` replacing (or, with `None`, dropping)
    /// its parameters.
    pub fn authorize_url(
        &self,
        client_id: &str,
        challenge: &str,
        over: &[(&str, Option<&str>)],
    ) -> String {
        let resource = self.resource();
        let mut params: Vec<(&str, Option<&str>)> = vec![
            ("response_type", Some("code")),
            ("client_id", Some(client_id)),
            ("code_challenge", Some(challenge)),
            ("code_challenge_method", Some("S256")),
            ("redirect_uri", Some(REDIRECT_URI)),
            ("state", Some("client-state-1")),
            ("scope", Some("aws")),
            ("resource", Some(&resource)),
        ];
        for (k, v) in over {
            match params.iter_mut().find(|(n, _)| n == k) {
                Some(slot) => slot.1 = *v,
                None => params.push((k, *v)),
            }
        }
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        format!("{}/mcp/oauth/authorize?{}", self.base, q.finish())
    }

    /// Opens `authorize_url` in a fresh browser and signs in at the IdP as `login`: the
    /// browser-binding cookie (`name=value`) and the callback URL the IdP sends the browser to.
    pub async fn to_callback(
        &self,
        idp: &Idp,
        authorize_url: &str,
        login: &str,
    ) -> (String, String) {
        let r = self
            .http
            .get(authorize_url)
            .send()
            .await
            .expect("authorize");
        assert_eq!(r.status(), 302, "authorize: {:?}", r.text().await);
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            to.starts_with(&idp.issuer),
            "authorize sent the browser to {to}"
        );
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        (cookie, idp.sign_in(&to, login).await)
    }

    /// Opens `authorize_url` in a fresh browser, signs in at the IdP as `login`, and returns
    /// the consent page the gateway shows.
    pub async fn consent_page(&self, idp: &Idp, authorize_url: &str, login: &str) -> Consent {
        let (cookie, back) = self.to_callback(idp, authorize_url, login).await;
        let r = self
            .http
            .get(&back)
            .header("cookie", &cookie)
            .send()
            .await
            .expect("callback");
        let status = r.status();
        let html = r.text().await.unwrap();
        assert_eq!(status, 200, "the callback: {html}");
        let consent = field(&html, "consent").unwrap_or_else(|| panic!("no consent form: {html}"));
        Consent {
            consent,
            cookie,
            html,
        }
    }

    /// Presses `decision` (`allow` or `deny`) on the consent page, same-origin, in the browser
    /// that signed in; the gateway's answer.
    pub async fn decide(&self, c: &Consent, decision: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/mcp/oauth/consent", self.base))
            .header("cookie", &c.cookie)
            .header("origin", &self.base)
            .form(&[("consent", c.consent.as_str()), ("decision", decision)])
            .send()
            .await
            .expect("consent")
    }

    /// The whole browser part for `client_id` with `challenge`: the redirect the client's
    /// loopback listener receives.
    pub async fn authorize(
        &self,
        idp: &Idp,
        client_id: &str,
        challenge: &str,
        login: &str,
    ) -> url::Url {
        let page = self
            .consent_page(idp, &self.authorize_url(client_id, challenge, &[]), login)
            .await;
        let r = self.decide(&page, "allow").await;
        assert_eq!(r.status(), 302, "consent: {:?}", r.text().await);
        let to = r.headers()["location"].to_str().unwrap();
        url::Url::parse(to).expect("a redirect URL")
    }

    /// A code for `client_id`, issued against `challenge`, after signing in as `login`.
    pub async fn code(&self, idp: &Idp, client_id: &str, challenge: &str, login: &str) -> String {
        let back = self.authorize(idp, client_id, challenge, login).await;
        super::query_param(back.as_str(), "code").expect("a code in the redirect")
    }

    /// `POST /mcp/oauth/token` with `form`: (status, JSON answer).
    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/mcp/oauth/token", self.base))
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .expect("token");
        let s = r.status().as_u16();
        if s == 200 {
            assert_eq!(r.headers()["cache-control"], "no-store");
        }
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Trades `code` as the client does.
    pub async fn exchange(&self, client_id: &str, code: &str, verifier: &str) -> (u16, Value) {
        let resource = self.resource();
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", client_id),
            ("resource", &resource),
        ])
        .await
    }

    /// Uses `refresh_token` as the client does.
    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> (u16, Value) {
        let resource = self.resource();
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
            ("resource", &resource),
        ])
        .await
    }

    /// Register, authorize as `login` and exchange the code.
    pub async fn sign_in(&self, idp: &Idp, login: &str) -> McpTokens {
        let client_id = self.register().await;
        let (verifier, challenge) = pkce();
        let code = self.code(idp, &client_id, &challenge, login).await;
        let (s, answer) = self.exchange(&client_id, &code, &verifier).await;
        assert_eq!(s, 200, "token: {answer}");
        McpTokens {
            access_token: answer["access_token"].as_str().unwrap().to_owned(),
            refresh_token: answer["refresh_token"].as_str().unwrap().to_owned(),
            client_id,
            answer,
        }
    }
}

/// Signs `login` in to the MCP server of `gw` (listening on loopback, no `public_url`) through
/// the real flow: registration, the IdP's sign-in, consent, the code exchange.
pub async fn sign_in(gw: &Gateway, idp: &Idp, login: &str) -> McpTokens {
    McpAuth::new(&format!("http://127.0.0.1:{}", gw.port))
        .sign_in(idp, login)
        .await
}

/// An access token for the MCP server at `base` as the gateway mints them (the test config's
/// session secret, the gateway's derivation), for `sub` in `groups`, issued at `iat` for
/// `ttl_seconds`, named as the test IdP names its users: to present tokens the flow cannot make, such as an expired one.
pub fn access_token(
    base: &str,
    sub: &str,
    groups: &[&str],
    iat: time::OffsetDateTime,
    ttl_seconds: i64,
) -> String {
    use claude_gateway::auth::token::Identity;
    use claude_gateway::config::Secret;
    use claude_gateway::mcp::oauth::access::AccessKeys;
    let base = base.trim_end_matches('/');
    let keys = AccessKeys::new(
        &[Secret::new(super::gateway::JWT_SECRET)],
        &format!("{base}/mcp/oauth"),
        &format!("{base}/mcp"),
    );
    let who = Identity {
        sub: sub.to_owned(),
        email: Some(format!("{sub}@example.com")),
        name: Some(format!("Test User {sub}")),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        mfa_at: None,
    };
    keys.mint(&who, "test-client", "test-jti", iat, ttl_seconds)
}

/// The value of the form field `name` in `html`.
fn field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let start = rest.find("value=\"")? + "value=\"".len();
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].replace("&amp;", "&"))
}
