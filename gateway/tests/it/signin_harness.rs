//! Proof of the sign-in harness (`support::idp`, `support::claude`): the test IdP does the
//! authorization code flow with PKCE and refresh tokens on its own, and, behind the reference
//! gateway (`claude gateway` from the same npm package as the client, the compatibility target),
//! it carries the device flow driven over HTTP and a sign-in by the real client in tmux.
//!
//! The reference-gateway tests are ignored by default (the reference is not part of the product,
//! and slow); run them with
//! `cargo test -p claude-gateway --test it signin_harness -- --ignored --nocapture`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::Value;
use testkit::{FakeBedrock, Options as BedrockOptions};

use crate::support::claude::{claude_bin, Claude};
use crate::support::idp::{Idp, IdpOptions, TestUser};
use crate::support::pg::{free_port, shared};
use crate::support::{jwt_claims, query_param, runtime};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn users() -> Vec<TestUser> {
    vec![
        TestUser::new("alice").groups(&["eng", "staff"]),
        TestUser::new("bob").email("bob@corp.example", false),
    ]
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// POSTs a form; returns the status and the body as JSON (`Null` when it is not JSON).
async fn post_form(
    client: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some((user, pass)) = auth {
        req = req.basic_auth(user, Some(pass));
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let r = req.body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).unwrap();
    B64.encode(buf)
}

/// An authorization request with PKCE (S256); returns the URL and the verifier.
fn authorize_url(
    idp: &Idp,
    auth_endpoint: &str,
    redirect_uri: &str,
    pkce: bool,
) -> (String, String) {
    let verifier = random_b64(32);
    let challenge = B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    let mut url = url::Url::parse(auth_endpoint).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &idp.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email offline_access")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", "st-123")
        .append_pair("nonce", "n-456");
    if pkce {
        url.query_pairs_mut()
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
    }
    (url.to_string(), verifier)
}

/// The IdP alone, as a relying party uses it: code flow with PKCE, both client authentication
/// methods, claims in the id_token, refresh grants, the sign-in form's refusals, the test controls.
#[test]
fn the_test_idp_does_code_pkce_and_refresh() {
    let rp = "http://127.0.0.1:9/oauth/callback";
    let rt = runtime();
    let mut idp = Idp::start(&users(), rp);
    let client = http();
    rt.block_on(async {
        let discovery: Value = client
            .get(format!("{}/.well-known/openid-configuration", idp.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(discovery["issuer"], idp.issuer.as_str());
        let auth_ep = discovery["authorization_endpoint"].as_str().unwrap();
        let token_ep = discovery["token_endpoint"].as_str().unwrap();
        assert_eq!(
            discovery["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );

        // Without PKCE the IdP sends the browser back with an error, not a code.
        let (no_pkce, _) = authorize_url(&idp, auth_ep, rp, false);
        let back = idp.try_sign_in(&no_pkce, "alice").await.unwrap();
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_request"),
            "{back}"
        );

        // An unknown user gets the form again, with an error.
        let (url, _) = authorize_url(&idp, auth_ep, rp, true);
        let refused = idp.try_sign_in(&url, "mallory").await.unwrap_err();
        assert_eq!(refused.status, 200);
        assert!(refused.body.contains("Unknown user"), "{}", refused.body);
        assert!(refused.body.contains("name=\"login\""), "{}", refused.body);

        // Sign in: the browser ends at the relying party with a code and the state.
        let (url, verifier) = authorize_url(&idp, auth_ep, rp, true);
        let back = idp.sign_in(&url, "alice").await;
        assert!(back.starts_with(rp), "{back}");
        assert_eq!(query_param(&back, "state").as_deref(), Some("st-123"));
        let code = query_param(&back, "code").unwrap();

        let redeem = |code: String, verifier: String| {
            let client = client.clone();
            let (id, secret) = (idp.client_id.clone(), idp.client_secret.clone());
            let token_ep = token_ep.to_owned();
            async move {
                post_form(
                    &client,
                    &token_ep,
                    Some((&id, &secret)),
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", rp),
                        ("code_verifier", &verifier),
                    ],
                )
                .await
            }
        };
        // The client is registered for client_secret_basic: the secret in the form is refused.
        let (status, body) = post_form(
            &client,
            token_ep,
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", rp),
                ("code_verifier", &verifier),
                ("client_id", &idp.client_id),
                ("client_secret", &idp.client_secret),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{body}"
        );

        let (status, tokens) = redeem(code, verifier).await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        let id = jwt_claims(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["sub"], "alice");
        assert_eq!(id["email"], "alice@example.com");
        assert_eq!(id["email_verified"], true);
        assert_eq!(id["name"], "Test User alice");
        assert_eq!(id["groups"], serde_json::json!(["eng", "staff"]));
        assert_eq!(id["nonce"], "n-456");
        assert_eq!(id["aud"], idp.client_id.as_str());
        let rt1 = tokens["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_owned();

        // A wrong PKCE verifier is refused.
        let (url, _) = authorize_url(&idp, auth_ep, rp, true);
        let code = query_param(&idp.sign_in(&url, "bob").await, "code").unwrap();
        let (status, body) = redeem(code, random_b64(32)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{body}"
        );

        // Refresh: new tokens, a new id_token, a rotated refresh token.
        let refresh = |rt: String| {
            let client = client.clone();
            let (id, secret) = (idp.client_id.clone(), idp.client_secret.clone());
            let token_ep = token_ep.to_owned();
            async move {
                post_form(
                    &client,
                    &token_ep,
                    Some((&id, &secret)),
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await
            }
        };
        let (status, fresh) = refresh(rt1.clone()).await;
        assert_eq!(status, 200, "{fresh}");
        assert_eq!(
            jwt_claims(fresh["id_token"].as_str().unwrap())["groups"],
            serde_json::json!(["eng", "staff"])
        );
        let rt2 = fresh["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(rt1, rt2, "refresh tokens rotate");

        // A disabled user cannot refresh, nor sign in; enabled again, the same token works.
        idp.disable_user("alice");
        let (status, body) = refresh(rt2.clone()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{body}"
        );
        let (url, _) = authorize_url(&idp, auth_ep, rp, true);
        let refused = idp.try_sign_in(&url, "alice").await.unwrap_err();
        assert!(refused.body.contains("disabled"), "{}", refused.body);
        idp.enable_user("alice");
        let (status, body) = refresh(rt2).await;
        assert_eq!(status, 200, "{body}");
    });

    // The IdP down: connections are refused.
    let port = idp.port;
    idp.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// `client_secret_post` and the stricter `groups` scope rule are options of the IdP.
#[test]
fn the_test_idp_takes_client_secret_post() {
    let rp = "http://127.0.0.1:9/cb";
    let rt = runtime();
    let opts = IdpOptions {
        token_endpoint_auth_method: "client_secret_post".into(),
        groups_need_scope: true,
        ..IdpOptions::default()
    };
    let idp = Idp::start_with(&users(), &[rp], opts);
    let client = http();
    rt.block_on(async {
        let (url, verifier) = authorize_url(&idp, &format!("{}/auth", idp.issuer), rp, true);
        let code = query_param(&idp.sign_in(&url, "alice").await, "code").unwrap();
        let (status, tokens) = post_form(
            &client,
            &format!("{}/token", idp.issuer),
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", rp),
                ("code_verifier", &verifier),
                ("client_id", &idp.client_id),
                ("client_secret", &idp.client_secret),
            ],
        )
        .await;
        assert_eq!(status, 200, "{tokens}");
        let id = jwt_claims(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["email"], "alice@example.com");
        assert!(
            id.get("groups").is_none(),
            "no groups scope, no groups: {id}"
        );
    });
}

/// The reference gateway (`claude gateway`), for proving the harness against the compatibility
/// target. Killed on drop.
struct ReferenceGateway {
    child: Option<Child>,
    base: String,
    dir: tempfile::TempDir,
}

impl ReferenceGateway {
    /// Starts it on `port` with `upstreams` (YAML list entries) and `oidc` (a flow mapping's
    /// body); waits for `/healthz`.
    fn start(port: u16, upstreams: &str, oidc: &str) -> ReferenceGateway {
        let dir = tempfile::Builder::new()
            .prefix("ref-gw-")
            .tempdir()
            .unwrap();
        let yaml = format!(
            "listen: {{host: 127.0.0.1, port: {port}}}
upstreams:
{upstreams}
session: {{jwt_secret: reference-session-secret-0123456789abcdef}}
store: {{postgres_url: '{}'}}
oidc: {{{oidc}}}
",
            shared().new_db()
        );
        let cfg = dir.path().join("gateway.yaml");
        std::fs::write(&cfg, yaml).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let child = Command::new(claude_bin())
            .arg("gateway")
            .arg("--config")
            .arg(&cfg)
            .env("CLAUDE_GATEWAY_ALLOW_LOOPBACK", "1")
            .env("HOME", dir.path().join("home"))
            .env("DISABLE_AUTOUPDATER", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let gw = ReferenceGateway {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && crate::support::http::get(port, "/healthz", &[]).status == 200;
            if ok {
                return gw;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the reference gateway did not become healthy:\n{}",
            gw.logs()
        );
    }

    fn logs(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            read("stdout"),
            read("stderr")
        )
    }
}

impl Drop for ReferenceGateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An `anthropic` upstream nobody listens on: enough for sign-in.
const DEAD_UPSTREAM: &str = "  - provider: anthropic
    base_url: http://127.0.0.1:9
    auth: {api_key: unused-upstream-key}";

fn oidc_for(idp: &Idp, method: &str) -> String {
    format!(
        "issuer: '{}', client_id: {}, client_secret: {}, token_endpoint_auth_method: {method}",
        idp.issuer, idp.client_id, idp.client_secret
    )
}

/// The device flow through the reference gateway, driven over HTTP, with the IdP behind it:
/// the gateway's code exchange (PKCE, either client authentication), the IdP's refresh token
/// carried through the gateway's refresh grant, a disabled user's refresh refused, the IdP down.
#[test]
#[ignore = "drives the reference gateway; run with --ignored"]
fn reference_gateway_device_flow_with_the_test_idp() {
    let rt = runtime();
    for method in ["client_secret_basic", "client_secret_post"] {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let opts = IdpOptions {
            token_endpoint_auth_method: method.into(),
            ..IdpOptions::default()
        };
        let mut idp = Idp::start_with(&users(), &[&format!("{base}/oauth/callback")], opts);
        let gw = ReferenceGateway::start(port, DEAD_UPSTREAM, &oidc_for(&idp, method));
        let client = http();
        let started = Instant::now();
        let token_ep = format!("{base}/oauth/token");
        rt.block_on(async {
            let (status, da) = post_form(
                &client,
                &format!("{base}/oauth/device_authorization"),
                None,
                &[("surface", "claude_code")],
            )
            .await;
            assert_eq!(status, 200, "{da}");
            let user_code = da["user_code"].as_str().unwrap();
            let device_code = da["device_code"].as_str().unwrap();

            let approval = idp.approve_device(&base, user_code, "alice").await;
            assert!(
                approval
                    .callback_url
                    .starts_with(&format!("{base}/oauth/callback?")),
                "{approval:?}"
            );
            assert!(query_param(&approval.callback_url, "code").is_some());
            assert_eq!(approval.status, 200, "{}\n{}", approval.body, gw.logs());

            // The next poll completes the grant.
            let mut tokens = Value::Null;
            for _ in 0..10 {
                let (status, body) = post_form(
                    &client,
                    &token_ep,
                    None,
                    &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
                )
                .await;
                if status == 200 {
                    tokens = body;
                    break;
                }
                assert!(
                    matches!(
                        body["error"].as_str(),
                        Some("authorization_pending" | "slow_down")
                    ),
                    "{status} {body}\n{}",
                    gw.logs()
                );
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            let claims = jwt_claims(tokens["access_token"].as_str().expect("an access token"));
            assert_eq!(claims["sub"], "alice");
            assert_eq!(claims["email"], "alice@example.com");
            assert_eq!(claims["groups"], serde_json::json!(["eng", "staff"]));
            let rt1 = tokens["refresh_token"]
                .as_str()
                .expect("the IdP's refresh token")
                .to_owned();

            let refresh = |rt: String| {
                let client = client.clone();
                let token_ep = token_ep.clone();
                async move {
                    post_form(
                        &client,
                        &token_ep,
                        None,
                        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                    )
                    .await
                }
            };
            let (status, fresh) = refresh(rt1.clone()).await;
            assert_eq!(status, 200, "{fresh}\n{}", gw.logs());
            assert_eq!(
                jwt_claims(fresh["access_token"].as_str().unwrap())["sub"],
                "alice"
            );
            let rt2 = fresh["refresh_token"].as_str().unwrap().to_owned();
            assert_ne!(rt1, rt2, "the IdP rotated its refresh token");

            idp.disable_user("alice");
            let (status, body) = refresh(rt2.clone()).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (401, Some("invalid_grant")),
                "{body}"
            );

            idp.enable_user("alice");
            idp.stop();
            let (status, body) = refresh(rt2).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (503, Some("temporarily_unavailable")),
                "{body}"
            );
        });
        let idp_log = idp.logs();
        assert!(idp_log.contains("POST /token 200"), "{idp_log}");
        eprintln!(
            "reference device flow with {method}: {:?} (sign-in, token, two refreshes)",
            started.elapsed()
        );
    }
}

/// The real client signs in through the reference gateway in tmux, the browser part played by
/// `Idp::approve_device`, then answers a prompt with `claude -p` through the gateway and a
/// Bedrock double.
#[test]
#[ignore = "drives the reference gateway; run with --ignored"]
fn real_client_signs_in_through_the_reference_gateway() {
    let rt = runtime();
    let bedrock = rt
        .block_on(FakeBedrock::start(BedrockOptions::default()))
        .unwrap();
    let o = BedrockOptions::default();
    let upstream = format!(
        "  - provider: bedrock
    region: {}
    base_url: {}
    auth: {{aws_access_key_id: {}, aws_secret_access_key: {}}}",
        o.region,
        bedrock.url(),
        o.access_key_id,
        o.secret_access_key
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(&users(), &format!("{base}/oauth/callback"));
    let gw = ReferenceGateway::start(port, &upstream, &oidc_for(&idp, "client_secret_basic"));

    let t0 = Instant::now();
    let mut claude = Claude::new(&gw.base);
    assert_eq!(claude.gateway_url, base);
    let device = claude.login();
    let t_code = t0.elapsed();
    assert_eq!(device.verification_uri, format!("{base}/device"));
    assert_eq!(
        device.verification_uri_complete,
        format!("{base}/device?user_code={}", device.user_code)
    );

    let approval = rt.block_on(idp.approve_device(&base, &device.user_code, "alice"));
    assert_eq!(approval.status, 200, "{}\n{}", approval.body, gw.logs());
    let t_approved = t0.elapsed();

    let creds = claude.wait_signed_in(Duration::from_secs(60));
    let t_signed_in = t0.elapsed();
    let gateway = &creds["enterpriseGateway"];
    assert_eq!(gateway["url"], base.as_str());
    assert_eq!(gateway["tokenEndpoint"], format!("{base}/oauth/token"));
    assert!(
        gateway["idpRefreshToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{creds}"
    );
    assert!(gateway["expiresAt"].as_u64().is_some(), "{creds}");
    assert_eq!(creds["gatewayTrust"]["127.0.0.1"], "http-loopback");
    let claims = jwt_claims(gateway["jwt"].as_str().unwrap());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["groups"], serde_json::json!(["eng", "staff"]));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(claude.config_dir().join(".credentials.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    claude.wait_ready(Duration::from_secs(60));
    let t_ready = t0.elapsed();
    let written = list_files(&claude.home());

    let out = claude.print("Say hello");
    let t_print = t0.elapsed();
    assert!(out.contains("Hello from the Bedrock double."), "{out}");
    let logs = gw.logs();
    assert!(logs.contains("\"evt\":\"inference\""), "{logs}");
    assert!(!bedrock.requests().is_empty());

    eprintln!(
        "real client: code on screen {t_code:?}, approved {t_approved:?}, signed in \
         {t_signed_in:?}, at prompt {t_ready:?}, claude -p answered {t_print:?}\nfiles under \
         HOME after sign-in:\n  {}",
        written.join("\n  ")
    );
}

/// Files under `dir`, relative, sorted.
fn list_files(dir: &std::path::Path) -> Vec<String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p: PathBuf = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A loopback proxy in front of `target` that adds `"email"` to each token endpoint answer that
/// carries an access token: a gateway that tells the client which account approved the code.
async fn email_adding_proxy(target: String, email: &'static str) -> String {
    use axum::body::{to_bytes, Body};
    use axum::extract::Request;
    use axum::response::Response;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let client = http();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (client, target) = (client.clone(), target.clone());
        async move {
            let (parts, body) = req.into_parts();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let mut fwd = client.request(parts.method.clone(), format!("{target}{path}"));
            for (k, v) in &parts.headers {
                if k != "host" && k != "content-length" {
                    fwd = fwd.header(k, v);
                }
            }
            let body = to_bytes(body, 1 << 20).await.unwrap();
            let up = fwd.body(body).send().await.unwrap();
            let status = up.status();
            let headers = up.headers().clone();
            let mut bytes = up.bytes().await.unwrap().to_vec();
            if parts.uri.path() == "/oauth/token" && status == 200 {
                let mut v: Value = serde_json::from_slice(&bytes).unwrap();
                if v.get("access_token").is_some() {
                    v["email"] = email.into();
                    bytes = serde_json::to_vec(&v).unwrap();
                }
            }
            let mut resp = Response::builder().status(status);
            for (k, v) in &headers {
                if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                    resp = resp.header(k, v);
                }
            }
            resp.body(Body::from(bytes)).unwrap()
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// A gateway whose token answer names the account (`email`): the client asks the user to
/// confirm it before storing the credential, and the harness confirms.
#[test]
#[ignore = "drives the reference gateway; run with --ignored"]
fn real_client_confirms_the_account_a_gateway_names() {
    let rt = runtime();
    let port = free_port();
    let idp = Idp::start(&users(), &format!("http://127.0.0.1:{port}/oauth/callback"));
    let gw = ReferenceGateway::start(port, DEAD_UPSTREAM, &oidc_for(&idp, "client_secret_basic"));
    let proxy = rt.block_on(email_adding_proxy(gw.base.clone(), "alice@example.com"));

    let mut claude = Claude::new(&proxy);
    let device = claude.login();
    // The verification page is the gateway's own (its discovery names its own origin).
    let origin = url::Url::parse(&device.verification_uri)
        .unwrap()
        .origin()
        .ascii_serialization();
    assert_eq!(origin, gw.base);
    let approval = rt.block_on(idp.approve_device(&origin, &device.user_code, "alice"));
    assert_eq!(approval.status, 200, "{}\n{}", approval.body, gw.logs());

    let creds = claude.wait_signed_in(Duration::from_secs(60));
    assert_eq!(creds["enterpriseGateway"]["url"], proxy.as_str());
    assert_eq!(
        creds["enterpriseGateway"]["email"], "alice@example.com",
        "{creds}"
    );
    eprintln!("credentials with a named account: {}", redact(&creds));
}

/// The credentials file with its tokens cut short, for printing.
fn redact(creds: &Value) -> Value {
    let mut c = creds.clone();
    for key in ["jwt", "idpRefreshToken"] {
        if let Some(t) = c["enterpriseGateway"][key].as_str() {
            c["enterpriseGateway"][key] = format!("{}…", &t[..t.len().min(12)]).into();
        }
    }
    c
}
