//! A real OpenID Provider for sign-in tests: `tests/idp/idp.mjs` (the `oidc-provider` package on
//! Node) in a child process on a free loopback port, and a browser stand-in that signs a user in
//! at it.
//!
//! ```ignore
//! let idp = Idp::start(&[TestUser::new("alice").groups(&["eng"])], "http://127.0.0.1:8080/oauth/callback");
//! // the relying party sends the browser to an authorize URL ...
//! let back = idp.sign_in(&authorize_url, "alice").await; // "http://127.0.0.1:8080/oauth/callback?code=…&state=…"
//! idp.disable_user("alice");                             // refresh grants now fail: invalid_grant
//! idp.stop();                                            // the IdP is down
//! ```
//!
//! Needs `node` and `npm ci` in `tests/idp` (`scripts/install-test-deps` does both).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use claude_gateway::config::{Env, ProcessEnv};
use serde_json::{json, Value};

/// A user the IdP knows. `sub` is also what is typed into its sign-in form.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub sub: String,
    pub email: String,
    /// `None`: the IdP sends no `email_verified` claim at all.
    pub email_verified: Option<bool>,
    pub name: String,
    pub groups: Vec<String>,
    /// The id_token's `azp` (the client it was issued to); `None`: no such claim.
    pub azp: Option<String>,
}

impl TestUser {
    /// `sub`, with email `<sub>@example.com` (verified), a name, and no groups.
    pub fn new(sub: &str) -> TestUser {
        TestUser {
            sub: sub.to_owned(),
            email: format!("{sub}@example.com"),
            email_verified: Some(true),
            name: format!("Test User {sub}"),
            groups: Vec::new(),
            azp: None,
        }
    }

    /// Id tokens of this user name `azp` as the client they were issued to.
    pub fn azp(mut self, azp: &str) -> TestUser {
        self.azp = Some(azp.to_owned());
        self
    }

    pub fn groups(mut self, groups: &[&str]) -> TestUser {
        self.groups = groups.iter().map(|g| (*g).to_owned()).collect();
        self
    }

    pub fn email(mut self, email: &str, verified: bool) -> TestUser {
        self.email = email.to_owned();
        self.email_verified = Some(verified);
        self
    }

    /// `email`, with no `email_verified` claim (as some IdPs do).
    pub fn email_verified_absent(mut self, email: &str) -> TestUser {
        self.email = email.to_owned();
        self.email_verified = None;
        self
    }

    fn to_json(&self) -> Value {
        let mut user = json!({
            "sub": self.sub,
            "email": self.email,
            "name": self.name,
            "groups": self.groups,
        });
        if let Some(verified) = self.email_verified {
            user["email_verified"] = verified.into();
        }
        if let Some(azp) = &self.azp {
            user["azp"] = azp.as_str().into();
        }
        user
    }
}

/// How to run the IdP beyond its users and the relying party's redirect URI.
#[derive(Clone, Debug)]
pub struct IdpOptions {
    /// `client_secret_basic` (the default) or `client_secret_post`: the only method the IdP
    /// accepts from the client.
    pub token_endpoint_auth_method: String,
    /// Seconds; `None` keeps the IdP's defaults (1 hour, 1 hour, 14 days).
    pub access_token_ttl: Option<u64>,
    pub id_token_ttl: Option<u64>,
    pub refresh_token_ttl: Option<u64>,
    /// A refresh grant answers with a new refresh token and retires the old one (the default).
    pub rotate_refresh_tokens: bool,
    /// Release `groups` only for the `groups` scope; by default every id_token carries it.
    pub groups_need_scope: bool,
}

impl Default for IdpOptions {
    fn default() -> Self {
        IdpOptions {
            token_endpoint_auth_method: "client_secret_basic".into(),
            access_token_ttl: None,
            id_token_ttl: None,
            refresh_token_ttl: None,
            rotate_refresh_tokens: true,
            groups_need_scope: false,
        }
    }
}

/// A running IdP with one confidential client. Killed on drop.
pub struct Idp {
    /// `http://127.0.0.1:<port>`; discovery is at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub port: u16,
    pub client_id: String,
    pub client_secret: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// Where a browser ended up when a sign-in did not leave the IdP.
#[derive(Debug)]
pub struct SignInRefused {
    pub url: String,
    pub status: u16,
    pub body: String,
}

/// What the browser saw at the end of [`Idp::approve_device`] (or of [`Browser::open`]).
#[derive(Debug)]
pub struct DeviceApproval {
    /// The relying party's callback URL the IdP sent the browser to (the URL opened).
    pub callback_url: String,
    /// The gateway's answer to that callback.
    pub status: u16,
    pub body: String,
}

/// The `tests/idp` folder.
pub fn idp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/idp")
}

impl Idp {
    /// Starts an IdP that knows `users` and one client, `gateway-client`, that may redirect to
    /// `redirect_uri`.
    pub fn start(users: &[TestUser], redirect_uri: &str) -> Idp {
        Self::start_with(users, &[redirect_uri], IdpOptions::default())
    }

    /// Like [`Idp::start`], with several redirect URIs and options.
    pub fn start_with(users: &[TestUser], redirect_uris: &[&str], opts: IdpOptions) -> Idp {
        let dir = tempfile::Builder::new()
            .prefix("gw-idp-")
            .tempdir()
            .expect("tempdir");
        let client_id = "gateway-client".to_owned();
        let client_secret = format!("idp-secret-{}", random_hex(16));
        let mut config = json!({
            "port": 0,
            "clients": [{
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": redirect_uris,
                "token_endpoint_auth_method": opts.token_endpoint_auth_method,
            }],
            "users": users.iter().map(TestUser::to_json).collect::<Vec<_>>(),
            "rotateRefreshTokens": opts.rotate_refresh_tokens,
            "groupsNeedScope": opts.groups_need_scope,
        });
        for (key, ttl) in [
            ("accessTokenTTL", opts.access_token_ttl),
            ("idTokenTTL", opts.id_token_ttl),
            ("refreshTokenTTL", opts.refresh_token_ttl),
        ] {
            if let Some(ttl) = ttl {
                config[key] = json!(ttl);
            }
        }
        let config_path = dir.path().join("idp.json");
        std::fs::write(&config_path, config.to_string()).expect("write idp config");

        let script = idp_dir().join("idp.mjs");
        assert!(
            idp_dir().join("node_modules/oidc-provider").is_dir(),
            "the test IdP's packages are missing: run scripts/install-test-deps (npm ci in {})",
            idp_dir().display()
        );
        let node = ProcessEnv.var("NODE_BIN").unwrap_or_else(|| "node".into());
        let log = std::fs::File::create(dir.path().join("idp.log")).expect("idp log file");
        let mut child = Command::new(&node)
            .arg(&script)
            .arg(&config_path)
            .current_dir(idp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {node} (Node.js is needed for the test IdP): {e}")
            });

        // The first stdout line says where it listens; keep draining stdout afterwards so the
        // process never writes into a closed pipe.
        let stdout = child.stdout.take().expect("idp stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {}
        });
        let mut idp = Idp {
            issuer: String::new(),
            port: 0,
            client_id,
            client_secret,
            child: Some(child),
            dir,
        };
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(e) => {
                let exit = idp.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                panic!(
                    "the test IdP did not say it was listening ({e}; exit status {exit:?}):\n{}",
                    idp.logs()
                )
            }
        };
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the test IdP: {line}"))
            .trim()
            .to_owned();
        idp.port = base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {base}"));
        idp.issuer = base;
        idp
    }

    /// An IdP someone else started and stops (`deployer local`'s demo sign-in) at `issuer`
    /// (`http://127.0.0.1:<port>`), to play the browser at it. Its log is not here, and it has
    /// no client this side knows the secret of.
    pub fn attach(issuer: &str) -> Idp {
        let port = issuer
            .strip_prefix("http://127.0.0.1:")
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("not a loopback issuer: {issuer}"));
        Idp {
            issuer: issuer.trim_end_matches('/').to_owned(),
            port,
            client_id: String::new(),
            client_secret: String::new(),
            child: None,
            dir: tempfile::Builder::new()
                .prefix("gw-idp-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// What the IdP logged (a line per request, errors).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("idp.log")).unwrap_or_default()
    }

    /// How many request lines hold `needle`, once at least `at_least` of them are in the log or
    /// five seconds have passed. The IdP writes a request's line when its answer has gone out, so
    /// a caller holding the answer may look a moment before the line is there.
    pub fn requests_logged(&self, needle: &str, at_least: usize) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let n = self.logs().matches(needle).count();
            if n >= at_least || std::time::Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process: the IdP is down from now on (connections are refused).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The user can no longer sign in, and each further refresh grant for them fails with
    /// `invalid_grant`.
    pub fn disable_user(&self, sub: &str) {
        self.user_control(sub, "disable");
    }

    /// From now on `sub` signs in with a second factor (`on`), or with a password only: the
    /// id_token's `amr` says which.
    pub fn set_mfa(&self, sub: &str, on: bool) {
        self.user_control(sub, if on { "mfa" } else { "nomfa" });
    }

    /// Undoes [`Idp::disable_user`].
    pub fn enable_user(&self, sub: &str) {
        self.user_control(sub, "enable");
    }

    /// A new signing key replaces the IdP's (its JWKS names only the new one); tokens, grants
    /// and browser sessions issued so far stay valid.
    pub fn rotate_signing_key(&self) {
        self.control("/__test/keys/rotate");
    }

    /// Token answers (code exchange and refresh) carry no id_token while `omit` is set.
    pub fn omit_id_tokens(&self, omit: bool) {
        self.control(if omit {
            "/__test/id_token/omit"
        } else {
            "/__test/id_token/include"
        });
    }

    fn user_control(&self, sub: &str, what: &str) {
        self.control(&format!(
            "/__test/users/{}/{what}",
            percent_encoding::utf8_percent_encode(sub, percent_encoding::NON_ALPHANUMERIC)
        ));
    }

    fn control(&self, path: &str) {
        let r = super::http::raw(
            self.port,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0",
                self.port
            ),
            b"",
        );
        assert_eq!(r.status, 204, "POST {path} at the test IdP: {r:?}");
    }

    /// Acts as a browser at the IdP: opens `authorize_url`, signs in as `login` on the sign-in
    /// form and follows the IdP's redirects until one leaves the IdP. Returns that redirect's
    /// target (the relying party's redirect URI with `code` and `state`) without requesting it.
    /// Panics, with the page and the IdP's log, when the sign-in does not get there.
    pub async fn sign_in(&self, authorize_url: &str, login: &str) -> String {
        let mut browser = Browser::new();
        match self.sign_in_with(&mut browser, authorize_url, login).await {
            Ok(url) => url,
            Err(e) => panic!(
                "sign-in as {login} at the test IdP stopped at {} (HTTP {}):\n{}\n--- IdP log ---\n{}",
                e.url,
                e.status,
                e.body,
                self.logs()
            ),
        }
    }

    /// Like [`Idp::sign_in`], returning the page the browser stopped at instead of panicking
    /// (an unknown or disabled user gets the sign-in form again, with an error).
    pub async fn try_sign_in(
        &self,
        authorize_url: &str,
        login: &str,
    ) -> Result<String, SignInRefused> {
        self.sign_in_with(&mut Browser::new(), authorize_url, login)
            .await
    }

    async fn sign_in_with(
        &self,
        browser: &mut Browser,
        authorize_url: &str,
        login: &str,
    ) -> Result<String, SignInRefused> {
        let idp_origin = url::Url::parse(&self.issuer).expect("issuer URL").origin();
        let mut url = url::Url::parse(authorize_url).expect("authorize URL");
        let mut form: Option<Vec<(String, String)>> = None;
        let mut submitted = false;
        for _ in 0..30 {
            if url.origin() != idp_origin {
                return Ok(url.to_string());
            }
            let r = browser.request(&url, form.take()).await;
            if let Some(next) = r.location {
                url = next;
                continue;
            }
            let login_form = (r.status == 200 && !submitted)
                .then(|| form_action(&r.body))
                .flatten();
            match login_form {
                Some(action) => {
                    url = url.join(&action).expect("form action URL");
                    form = Some(vec![("login".into(), login.into())]);
                    submitted = true;
                }
                None => {
                    return Err(SignInRefused {
                        url: url.to_string(),
                        status: r.status,
                        body: r.body,
                    })
                }
            }
        }
        Err(SignInRefused {
            url: url.to_string(),
            status: 0,
            body: "too many redirects".into(),
        })
    }

    /// Acts as the user's browser for a device sign-in at a gateway: submits `user_code` on the
    /// gateway's verification page (`POST {gateway}/device`, same-origin), follows the gateway's
    /// redirect to this IdP, signs in as `login`, and opens the callback the IdP sends the browser
    /// back to, with the gateway's cookies. Returns the gateway's answer to that callback.
    pub async fn approve_device(
        &self,
        gateway: &str,
        user_code: &str,
        login: &str,
    ) -> DeviceApproval {
        self.device_callback(gateway, user_code, login)
            .await
            .open()
            .await
    }

    /// Like [`Idp::approve_device`], stopping where the IdP sends the browser back to the
    /// gateway: the callback URL, not yet opened, and the browser that got there (holding the
    /// gateway's browser-binding cookie), to open it with, or to copy, or to open it elsewhere.
    pub async fn device_callback(
        &self,
        gateway: &str,
        user_code: &str,
        login: &str,
    ) -> DeviceCallback {
        self.device_callback_in(Browser::new(), gateway, user_code, login)
            .await
    }

    /// Like [`Idp::device_callback`], in `browser` (one that trusts a test certificate, say).
    pub async fn device_callback_in(
        &self,
        mut browser: Browser,
        gateway: &str,
        user_code: &str,
        login: &str,
    ) -> DeviceCallback {
        let base = url::Url::parse(gateway).expect("gateway URL");
        let origin = base.origin().ascii_serialization();
        let device = base.join("/device").expect("device URL");
        let r = browser
            .request_with(
                &device,
                Some(vec![("user_code".into(), user_code.into())]),
                &[("Origin", &origin)],
            )
            .await;
        let Some(authorize) = r.location else {
            panic!(
                "the gateway's verification page did not send the browser to the IdP (HTTP {}):\n{}",
                r.status, r.body
            );
        };
        let callback_url = match self
            .sign_in_with(&mut browser, authorize.as_str(), login)
            .await
        {
            Ok(url) => url,
            Err(e) => panic!(
                "sign-in as {login} at the test IdP stopped at {} (HTTP {}):\n{}\n--- IdP log ---\n{}",
                e.url,
                e.status,
                e.body,
                self.logs()
            ),
        };
        DeviceCallback {
            callback_url,
            browser,
        }
    }
}

/// A device sign-in stopped where the IdP sends the browser back to the gateway (see
/// [`Idp::device_callback`]).
pub struct DeviceCallback {
    /// The gateway's callback URL with the IdP's `code` and the gateway's `state`.
    pub callback_url: String,
    /// The browser that signed in: the gateway's `gw_dev` cookie and the IdP's session.
    pub browser: Browser,
}

impl DeviceCallback {
    /// Opens the callback in the browser that started the sign-in.
    pub async fn open(&mut self) -> DeviceApproval {
        self.browser.open(&self.callback_url).await
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `action` of the first `<form>` on a page.
fn form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form")?..];
    let tag = &form[..form.find('>')?];
    let start = tag.find("action=\"")? + "action=\"".len();
    let end = tag[start..].find('"')?;
    Some(tag[start..start + end].replace("&amp;", "&"))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("random bytes");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// One response as a browser sees it, redirects not followed.
struct Page {
    status: u16,
    location: Option<url::Url>,
    body: String,
}

/// A cookie-keeping HTTP client that follows nothing by itself. A clone carries the same cookies
/// from then on separately (the same browser profile copied).
#[derive(Clone)]
pub struct Browser {
    client: reqwest::Client,
    cookies: Vec<Cookie>,
    set_cookie_headers: Vec<String>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

/// A host-only cookie (what the servers under test set).
#[derive(Clone)]
struct Cookie {
    host: String,
    path: String,
    name: String,
    value: String,
}

impl Browser {
    /// A browser with no cookies.
    pub fn new() -> Browser {
        Self::with_client(reqwest::Client::builder())
    }

    /// A browser that also trusts `cert_der` (a test server's self-signed certificate).
    pub fn trusting(cert_der: &[u8]) -> Browser {
        let cert = reqwest::Certificate::from_der(cert_der).expect("a DER certificate");
        Self::with_client(reqwest::Client::builder().add_root_certificate(cert))
    }

    fn with_client(builder: reqwest::ClientBuilder) -> Browser {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Browser {
            client,
            cookies: Vec::new(),
            set_cookie_headers: Vec::new(),
        }
    }

    /// Every `Set-Cookie` header this browser received, as sent, oldest first.
    pub fn set_cookie_headers(&self) -> &[String] {
        &self.set_cookie_headers
    }

    /// GETs `url` with the cookies that match and keeps the ones it sets; follows no redirect.
    pub async fn open(&mut self, url: &str) -> DeviceApproval {
        let r = self
            .request(&url::Url::parse(url).expect("a URL"), None)
            .await;
        DeviceApproval {
            callback_url: url.to_owned(),
            status: r.status,
            body: r.body,
        }
    }

    /// The value of the cookie `name` this browser holds for `host`.
    pub fn cookie(&self, host: &str, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|c| c.host == host && c.name == name)
            .map(|c| c.value.as_str())
    }

    async fn request(&mut self, url: &url::Url, form: Option<Vec<(String, String)>>) -> Page {
        self.request_with(url, form, &[]).await
    }

    /// GET, or POST of `form` (urlencoded), with the cookies that match.
    async fn request_with(
        &mut self,
        url: &url::Url,
        form: Option<Vec<(String, String)>>,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = match &form {
            Some(fields) => {
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields)
                    .finish();
                self.client
                    .post(url.as_str())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }
            None => self.client.get(url.as_str()),
        };
        req = req.header("accept", "text/html,application/xhtml+xml,*/*");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(cookie) = self.cookie_header(url) {
            req = req.header("cookie", cookie);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("browser request to {url} failed: {e}"));
        let status = resp.status().as_u16();
        for set in resp.headers().get_all("set-cookie") {
            if let Ok(set) = set.to_str() {
                self.set_cookie_headers.push(set.to_owned());
                self.store(url, set);
            }
        }
        let location = (300..400)
            .contains(&status)
            .then(|| resp.headers().get("location"))
            .flatten()
            .and_then(|l| l.to_str().ok())
            .map(|l| {
                url.join(l)
                    .unwrap_or_else(|e| panic!("bad Location {l}: {e}"))
            });
        let body = resp.text().await.unwrap_or_default();
        Page {
            status,
            location,
            body,
        }
    }

    fn cookie_header(&self, url: &url::Url) -> Option<String> {
        let host = url.host_str().unwrap_or_default();
        let path = url.path();
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| c.host == host && path_matches(path, &c.path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    fn store(&mut self, url: &url::Url, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let mut path = default_path(url.path());
        let mut expired = false;
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "path" if v.starts_with('/') => path = v.to_owned(),
                "max-age" => expired |= v.parse::<i64>().map(|s| s <= 0).unwrap_or(false),
                "expires" => expired |= v.contains("1970"),
                _ => {}
            }
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        let name = name.trim().to_owned();
        self.cookies
            .retain(|c| !(c.host == host && c.path == path && c.name == name));
        if !expired {
            self.cookies.push(Cookie {
                host,
                path,
                name,
                value: value.trim().to_owned(),
            });
        }
    }
}

/// RFC 6265 §5.1.4.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request[cookie.len()..].starts_with('/')))
}

/// RFC 6265 §5.1.4: the request path up to its last `/`.
fn default_path(request: &str) -> String {
    match request.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => request[..i].to_owned(),
    }
}
