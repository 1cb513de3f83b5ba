//! The OpenID Connect relying party: discovery (lazy, cached for an hour, a single attempt in
//! flight, failures answered from a back-off window), the authorize URL with PKCE S256 and a
//! nonce, the code exchange and refresh, id_token verification (signature, issuer, audience,
//! `azp`, expiry with the configured skew, nonce; the JWKS fetched again, at most once a minute,
//! when a token names a key it does not hold), and userinfo.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdToken, CoreJsonWebKeySet,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    SignatureVerificationError, TokenResponse,
};
use openidconnect::{HttpClientError, HttpRequest, HttpResponse};
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

use super::backoff::{refetch_due, Failures};
use crate::config::Oidc;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

const REDISCOVER_AFTER: Duration = Duration::from_secs(3600);

/// Why the IdP step failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The IdP could not be reached or answered nonsense: try again later.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// The IdP refused the code or refresh token (its `invalid_grant`).
    #[error("identity provider refused the grant: {0}")]
    InvalidGrant(String),
    /// The id_token did not verify.
    #[error("id_token rejected: {0}")]
    BadToken(String),
    /// Userinfo names another subject than the session's.
    #[error("userinfo names another subject")]
    OtherSubject,
}

/// Tokens and verified claims from one exchange.
#[derive(Debug)]
pub struct Exchanged {
    /// The id_token's claims (verified), as JSON.
    pub claims: Option<Value>,
    /// The IdP access token (for userinfo).
    pub access_token: String,
    /// The IdP refresh token, if any.
    pub refresh_token: Option<String>,
}

struct Discovered {
    client: Client,
    /// The provider's metadata, without its keys: to build the client again with a fresh JWKS.
    metadata: CoreProviderMetadata,
    userinfo: Option<String>,
    authorize_origin: String,
    at: Instant,
}

/// The relying party for `oidc`.
pub struct RelyingParty {
    cfg: Oidc,
    redirect_uri: String,
    http: reqwest::Client,
    cache: RwLock<Option<Arc<Discovered>>>,
    /// Held while discovery or a JWKS refetch runs: one call to the IdP at a time.
    fetching: Mutex<()>,
    /// Discovery failures in a row, for the back-off window.
    failures: std::sync::Mutex<Failures>,
    /// When the JWKS was last fetched again for an unknown key.
    refetched: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RelyingParty({})", self.cfg.issuer)
    }
}

/// An HTTP client for IdP calls: rustls on aws-lc-rs, the configured CA (or the system's), no
/// redirects (an IdP endpoint that redirects is misconfigured, and following would be an SSRF),
/// and straight to the IdP unless `use_proxy` routes it through `HTTPS_PROXY` (and `NO_PROXY`).
fn idp_http(ca_pem: Option<&str>, use_proxy: bool) -> Result<reqwest::Client, String> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("oidc.ca_cert_pem: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("oidc.ca_cert_pem: {e}"))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let builder = reqwest::Client::builder();
    let builder = if use_proxy {
        builder
    } else {
        builder.no_proxy()
    };
    builder
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())
}

impl RelyingParty {
    /// A relying party whose redirect URI is `<origin>/oauth/callback`.
    pub fn new(cfg: &Oidc, origin: &str) -> Result<Self, String> {
        Ok(Self {
            cfg: cfg.clone(),
            redirect_uri: format!("{origin}/oauth/callback"),
            http: idp_http(cfg.ca_cert_pem.as_deref(), cfg.use_proxy == Some(true))?,
            cache: RwLock::new(None),
            fetching: Mutex::new(()),
            failures: std::sync::Mutex::new(Failures::default()),
            refetched: std::sync::Mutex::new(None),
        })
    }

    async fn cached(&self) -> Option<Arc<Discovered>> {
        self.cache.read().await.clone()
    }

    /// The provider's metadata and keys: cached for an hour; one discovery in flight at a time
    /// (the others wait for its answer); after a failure, the IdP is not asked again until the
    /// back-off window has passed, and a stale copy, when there is one, is used meanwhile.
    async fn discovered(&self) -> Result<Arc<Discovered>, OidcError> {
        let fresh = |d: &Arc<Discovered>| d.at.elapsed() < REDISCOVER_AFTER;
        if let Some(d) = self.cached().await.filter(fresh) {
            return Ok(d);
        }
        let _one = self.fetching.lock().await;
        let stale = self.cached().await;
        if let Some(d) = stale.clone().filter(fresh) {
            return Ok(d);
        }
        let backing_off = self
            .failures
            .lock()
            .map(|f| f.backing_off(Instant::now()))
            .unwrap_or(false);
        if backing_off {
            return stale.ok_or_else(|| {
                OidcError::Unavailable("discovery failed recently; not retried yet".into())
            });
        }
        match self.discover().await {
            Ok(d) => {
                if let Ok(mut f) = self.failures.lock() {
                    f.reset();
                }
                let d = Arc::new(d);
                *self.cache.write().await = Some(d.clone());
                Ok(d)
            }
            Err(e) => {
                if let Ok(mut f) = self.failures.lock() {
                    f.failed(Instant::now());
                }
                match stale {
                    Some(d) => {
                        tracing::warn!("{e}; using the provider metadata discovered earlier");
                        Ok(d)
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// Fetches the JWKS again after `seen` held no key for a token, unless that was done less
    /// than a minute ago; `None` when it may not run now. Another caller's refetch counts.
    async fn refetch_keys(
        &self,
        seen: &Arc<Discovered>,
    ) -> Result<Option<Arc<Discovered>>, OidcError> {
        let _one = self.fetching.lock().await;
        if let Some(d) = self.cached().await {
            if !Arc::ptr_eq(&d, seen) {
                return Ok(Some(d));
            }
        }
        let now = Instant::now();
        let due = match self.refetched.lock() {
            Ok(mut last) if refetch_due(*last, now) => {
                *last = Some(now);
                true
            }
            _ => false,
        };
        if !due {
            return Ok(None);
        }
        tracing::info!("an id_token names a key the cached JWKS lacks: fetching the JWKS again");
        let jwks = CoreJsonWebKeySet::fetch_async(seen.metadata.jwks_uri(), &Capped(&self.http))
            .await
            .map_err(|e| OidcError::Unavailable(format!("jwks: {e}")))?;
        let d = Arc::new(Discovered {
            client: self.client(seen.metadata.clone(), jwks)?,
            metadata: seen.metadata.clone(),
            userinfo: seen.userinfo.clone(),
            authorize_origin: seen.authorize_origin.clone(),
            at: seen.at,
        });
        *self.cache.write().await = Some(d.clone());
        Ok(Some(d))
    }

    /// The client for `metadata` with `jwks` as its keys.
    fn client(
        &self,
        metadata: CoreProviderMetadata,
        jwks: CoreJsonWebKeySet,
    ) -> Result<Client, OidcError> {
        let post_only = metadata
            .token_endpoint_auth_methods_supported()
            .is_some_and(|m| m.iter().all(|x| x.as_ref() == "client_secret_post"));
        let auth_type = match self.cfg.token_endpoint_auth_method.as_deref() {
            Some("client_secret_post") => AuthType::RequestBody,
            Some("client_secret_basic") => AuthType::BasicAuth,
            _ if post_only => AuthType::RequestBody,
            _ => AuthType::BasicAuth,
        };
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|e| OidcError::Unavailable(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            metadata.set_jwks(jwks),
            ClientId::new(self.cfg.client_id.clone()),
            self.cfg
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_owned())),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(auth_type))
    }

    async fn discover(&self) -> Result<Discovered, OidcError> {
        let issuer = self.cfg.issuer.trim_end_matches('/');
        let url = self
            .cfg
            .discovery_url
            .clone()
            .unwrap_or_else(|| format!("{issuer}/.well-known/openid-configuration"));
        let unavailable = |e: String| OidcError::Unavailable(format!("discovery at {url}: {e}"));
        let res = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(unavailable(format!("HTTP {}", res.status())));
        }
        let bytes = read_capped(res).await.map_err(unavailable)?;
        let metadata: CoreProviderMetadata =
            serde_json::from_slice(&bytes).map_err(|e| unavailable(e.to_string()))?;
        if metadata.issuer().as_str().trim_end_matches('/') != issuer {
            return Err(unavailable(format!(
                "the document names issuer {}, not {issuer}",
                metadata.issuer().as_str()
            )));
        }
        let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &Capped(&self.http))
            .await
            .map_err(|e| unavailable(format!("jwks: {e}")))?;
        let userinfo = metadata.userinfo_endpoint().map(|u| u.url().to_string());
        let authorize = metadata.authorization_endpoint().url();
        let authorize_origin = authorize.origin().ascii_serialization();
        Ok(Discovered {
            client: self.client(metadata.clone(), jwks)?,
            metadata,
            userinfo,
            authorize_origin,
            at: Instant::now(),
        })
    }

    /// The origin of the IdP's authorize endpoint (for the verification page's CSP), once known.
    pub async fn authorize_origin(&self) -> Option<String> {
        self.discovered()
            .await
            .ok()
            .map(|d| d.authorize_origin.clone())
    }

    /// The authorize URL for one sign-in.
    pub async fn authorize_url(
        &self,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, OidcError> {
        let d = self.discovered().await?;
        let (state, nonce) = (state.to_owned(), nonce.to_owned());
        let mut req = d.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            move || Nonce::new(nonce),
        );
        for (k, v) in &self.cfg.extra_auth_params {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        for s in self.cfg.scopes.iter().filter(|s| s.as_str() != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if self.cfg.use_pkce {
            req = req.set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(
                &PkceCodeVerifier::new(verifier.to_owned()),
            ));
        }
        let (url, _, _) = req.add_extra_param("response_mode", "query").url();
        Ok(url.to_string())
    }

    /// Redeems an authorization code and verifies the id_token against `nonce`.
    pub async fn exchange(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Exchanged, OidcError> {
        let d = self.discovered().await?;
        let mut req = d
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        if self.cfg.use_pkce {
            req = req.set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
        }
        let tokens = req
            .request_async(&Capped(&self.http))
            .await
            .map_err(token_error)?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = match tokens.id_token() {
            Some(t) => Some(self.verify_refetching(d, t, Some(&nonce), now).await?),
            None => return Err(OidcError::BadToken("the IdP returned no id_token".into())),
        };
        Ok(Exchanged {
            claims,
            access_token: tokens.access_token().secret().clone(),
            refresh_token: tokens.refresh_token().map(|r| r.secret().clone()),
        })
    }

    /// Uses a refresh token; the id_token of the answer, when there is one, is verified.
    pub async fn refresh(&self, refresh_token: &str, now: i64) -> Result<Exchanged, OidcError> {
        let d = self.discovered().await?;
        let rt = RefreshToken::new(refresh_token.to_owned());
        let mut req = d
            .client
            .exchange_refresh_token(&rt)
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        if self.cfg.scope_on_refresh {
            for s in &self.cfg.scopes {
                req = req.add_scope(Scope::new(s.clone()));
            }
        }
        let tokens = req
            .request_async(&Capped(&self.http))
            .await
            .map_err(token_error)?;
        let claims = match tokens.id_token() {
            Some(t) => Some(self.verify_refetching(d, t, None, now).await?),
            None => None,
        };
        Ok(Exchanged {
            claims,
            access_token: tokens.access_token().secret().clone(),
            refresh_token: tokens.refresh_token().map(|r| r.secret().clone()),
        })
    }

    /// Verifies `token`; when the cached JWKS holds no key for it (the IdP rotated its signing
    /// key), fetches the JWKS again (at most once a minute) and tries once more.
    async fn verify_refetching(
        &self,
        d: Arc<Discovered>,
        token: &CoreIdToken,
        nonce: Option<&Nonce>,
        now: i64,
    ) -> Result<Value, OidcError> {
        match self.verify(&d.client, token, nonce, now) {
            Err(Verify::NoKey) => match self.refetch_keys(&d).await? {
                Some(fresh) => self
                    .verify(&fresh.client, token, nonce, now)
                    .map_err(Verify::into_error),
                None => Err(OidcError::BadToken(
                    "no key in the JWKS matches the id_token; the JWKS was fetched again less \
                     than a minute ago"
                        .into(),
                )),
            },
            other => other.map_err(Verify::into_error),
        }
    }

    fn verify(
        &self,
        client: &Client,
        token: &CoreIdToken,
        nonce: Option<&Nonce>,
        now: i64,
    ) -> Result<Value, Verify> {
        let skew = i64::from(self.cfg.clock_skew_seconds);
        let extra_azp = self.cfg.additional_authorized_parties.clone();
        let alg: Option<CoreJwsSigningAlgorithm> =
            serde_json::from_value(Value::String(self.cfg.id_token_signed_response_alg.clone()))
                .ok();
        let mut verifier = client
            .id_token_verifier()
            .set_other_audience_verifier_fn(move |aud| extra_azp.iter().any(|a| a == aud.as_str()))
            .set_time_fn(move || chrono_like(now - skew));
        if let Some(alg) = alg {
            verifier = verifier.set_allowed_algs([alg]);
        }
        let result = match nonce {
            Some(n) => token.claims(&verifier, n).map(|_| ()),
            None => token
                .claims(&verifier, |_: Option<&Nonce>| Ok(()))
                .map(|_| ()),
        };
        result.map_err(|e| match e {
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ) => Verify::NoKey,
            e => Verify::Bad(e.to_string()),
        })?;
        // The signature is verified; read the payload whole, for claims the typed view drops.
        let compact = token.to_string();
        let payload = compact.split('.').nth(1).unwrap_or_default();
        let bytes = B64
            .decode(payload)
            .map_err(|e| Verify::Bad(e.to_string()))?;
        let claims: Value =
            serde_json::from_slice(&bytes).map_err(|e| Verify::Bad(e.to_string()))?;
        if !authorized_party_ok(
            claims.get("azp"),
            &self.cfg.client_id,
            &self.cfg.additional_authorized_parties,
        ) {
            return Err(Verify::Bad(
                "id_token azp is neither this client nor one of oidc.additional_authorized_parties"
                    .into(),
            ));
        }
        Ok(claims)
    }

    /// Userinfo for an access token. With `sub`, refused ([`OidcError::OtherSubject`]) unless it
    /// names that subject; without, it must name one.
    pub async fn userinfo(
        &self,
        access_token: &str,
        sub: Option<&str>,
    ) -> Result<Value, OidcError> {
        let d = self.discovered().await?;
        let url = d
            .userinfo
            .clone()
            .ok_or_else(|| OidcError::Unavailable("the IdP has no userinfo endpoint".into()))?;
        let res = self
            .http
            .get(&url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("userinfo: {e}")))?;
        if !res.status().is_success() {
            return Err(OidcError::Unavailable(format!(
                "userinfo: HTTP {}",
                res.status()
            )));
        }
        let bytes = read_capped(res)
            .await
            .map_err(|e| OidcError::Unavailable(format!("userinfo: {e}")))?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| OidcError::Unavailable(format!("userinfo: {e}")))?;
        let named = v
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        match (named, sub) {
            (None, _) => Err(OidcError::Unavailable("userinfo: no sub".into())),
            (Some(n), Some(want)) if n != want => Err(OidcError::OtherSubject),
            _ => Ok(v),
        }
    }
}

/// Why an id_token did not verify: no key for it (worth a JWKS refetch), or anything else.
enum Verify {
    NoKey,
    Bad(String),
}

impl Verify {
    fn into_error(self) -> OidcError {
        match self {
            Verify::NoKey => OidcError::BadToken("no key in the JWKS matches the id_token".into()),
            Verify::Bad(e) => OidcError::BadToken(e),
        }
    }
}

/// The verifier's clock, as the type it wants.
/// Whether an id_token's `azp` (the party it was issued to) may sign in here: absent, or this
/// client, or one of `extra` (`oidc.additional_authorized_parties`). An id_token issued to
/// another client of the same IdP, naming this one among its audiences, is not accepted.
fn authorized_party_ok(azp: Option<&Value>, client_id: &str, extra: &[String]) -> bool {
    match azp {
        None => true,
        Some(Value::String(p)) => p == client_id || extra.iter().any(|e| e == p),
        Some(_) => false,
    }
}

fn chrono_like(unix: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default()
}

/// The most of an IdP's answer read (a discovery document, a key set, tokens, userinfo): far
/// above any real one, so a broken or hostile IdP cannot fill the gateway's memory.
const MAX_IDP_ANSWER: usize = 1 << 20;

/// An answer's body, refused past [`MAX_IDP_ANSWER`] (by its length, or as it arrives).
async fn read_capped(res: reqwest::Response) -> Result<Vec<u8>, String> {
    use crate::upstream::{read_at_most, Unread};
    match read_at_most(res, MAX_IDP_ANSWER).await {
        Ok(body) => Ok(body.to_vec()),
        Err(Unread::TooLarge) => Err(format!("the answer is larger than {MAX_IDP_ANSWER} bytes")),
        Err(Unread::Transport(e)) => Err(e.without_url().to_string()),
    }
}

/// The OpenID client's HTTP client: `reqwest`, reading at most [`MAX_IDP_ANSWER`] of an answer.
struct Capped<'a>(&'a reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for Capped<'_> {
    type Error = HttpClientError<reqwest::Error>;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, Self::Error>> + Send + Sync + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(capped(self.0, request))
    }
}

async fn capped(
    http: &reqwest::Client,
    req: HttpRequest,
) -> Result<HttpResponse, HttpClientError<reqwest::Error>> {
    let res = http
        .execute(req.try_into().map_err(Box::new)?)
        .await
        .map_err(Box::new)?;
    let mut answer = http::Response::builder()
        .status(res.status())
        .version(res.version());
    for (name, value) in res.headers() {
        answer = answer.header(name, value);
    }
    let body = read_capped(res).await.map_err(HttpClientError::Other)?;
    answer.body(body).map_err(HttpClientError::Http)
}

fn token_error<E: std::error::Error>(
    e: RequestTokenError<E, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
) -> OidcError {
    match &e {
        // Only the IdP's own `invalid_grant` says the grant is dead. Anything else it answers
        // (`invalid_client`, `unauthorized_client`, `invalid_scope`, a server error) is a
        // configuration or IdP problem the person's refresh token is not to blame for.
        RequestTokenError::ServerResponse(r)
            if *r.error() == CoreErrorResponseType::InvalidGrant =>
        {
            OidcError::InvalidGrant(r.to_string())
        }
        RequestTokenError::ServerResponse(r) => {
            OidcError::Unavailable(format!("the IdP refused the request: {r}"))
        }
        other => OidcError::Unavailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openidconnect::{AsyncHttpClient, StandardErrorResponse};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-answer HTTP server: `head` then `body_len` bytes of `[`.
    async fn serve_once(head: String, body_len: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(head.as_bytes()).await;
            let chunk = vec![b'['; 64 * 1024];
            let mut left = body_len;
            while left > 0 {
                let n = left.min(chunk.len());
                if s.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n;
            }
        });
        url
    }

    #[test]
    fn an_id_token_issued_to_another_client_is_refused() {
        let extra = vec!["cli-companion".to_owned()];
        let ok = |azp: Option<Value>| authorized_party_ok(azp.as_ref(), "gateway", &extra);
        assert!(ok(None), "azp is optional");
        assert!(ok(Some(Value::from("gateway"))));
        assert!(
            ok(Some(Value::from("cli-companion"))),
            "an additional party"
        );
        assert!(!ok(Some(Value::from("other-app"))));
        assert!(!ok(Some(Value::from("Gateway"))), "compared exactly");
        assert!(!ok(Some(Value::from(""))));
        assert!(!ok(Some(serde_json::json!(["gateway"]))), "not a string");
        assert!(!ok(Some(Value::Null)));
    }
    #[tokio::test]
    async fn an_idp_answer_past_the_cap_is_refused_whether_or_not_it_says_its_length() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::new();
        let big = 64 * 1024 * 1024;
        let stated = serve_once(
            format!("HTTP/1.1 200 OK\r\ncontent-length: {big}\r\n\r\n"),
            big,
        )
        .await;
        let res = http.get(&stated).send().await.unwrap();
        assert!(read_capped(res).await.unwrap_err().contains("larger than"));
        let unstated = serve_once("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".into(), big).await;
        let res = http.get(&unstated).send().await.unwrap();
        assert!(read_capped(res).await.unwrap_err().contains("larger than"));
        let small = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n".into(), 5).await;
        let res = http.get(&small).send().await.unwrap();
        assert_eq!(read_capped(res).await.unwrap(), b"[[[[[");
        // Through the OpenID client's interface too.
        let req = http::Request::get(&unstated_again().await)
            .body(Vec::new())
            .unwrap();
        let e = Capped(&http).call(req).await.unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    async fn unstated_again() -> String {
        serve_once(
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".into(),
            4 * MAX_IDP_ANSWER,
        )
        .await
    }

    fn answered(kind: CoreErrorResponseType) -> OidcError {
        token_error::<std::io::Error>(RequestTokenError::ServerResponse(
            StandardErrorResponse::new(kind, None, None),
        ))
    }

    #[test]
    fn only_the_idps_invalid_grant_kills_a_grant() {
        assert!(matches!(
            answered(CoreErrorResponseType::InvalidGrant),
            OidcError::InvalidGrant(_)
        ));
        for kind in [
            CoreErrorResponseType::InvalidClient,
            CoreErrorResponseType::UnauthorizedClient,
            CoreErrorResponseType::InvalidScope,
            CoreErrorResponseType::InvalidRequest,
            CoreErrorResponseType::Extension("server_error".into()),
        ] {
            assert!(
                matches!(answered(kind.clone()), OidcError::Unavailable(_)),
                "{kind:?}"
            );
        }
        let io = std::io::Error::other("connection reset");
        assert!(matches!(
            token_error::<std::io::Error>(RequestTokenError::Request(io)),
            OidcError::Unavailable(_)
        ));
    }
}
