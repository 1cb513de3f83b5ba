//! Sign-in through our gateway with a real OpenID Provider behind it (`oidc-provider`, started by
//! `support::idp`), driven over HTTP: the device flow with either client authentication, the
//! refresh grant carrying the IdP's refresh token, the callback's defences (another browser, a
//! replayed or tampered state) and the claim gates applied to the IdP's own id_token. The same
//! steps as `signin_harness::reference_gateway_device_flow_with_the_test_idp`, pointed at ours.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};

use claude_gateway::auth::token::SessionKeys;
use claude_gateway::config::Secret;

use crate::support::gateway::{bedrock_upstream, config_oidc, oidc_for, Gateway, JWT_SECRET};
use crate::support::idp::{Browser, Idp, IdpOptions, TestUser};
use crate::support::pg::{free_port, shared};
use crate::support::stack::signin_env;
use crate::support::{query_param, runtime};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The claims of a JWT, unverified.
fn jwt_part(jwt: &str, part: usize) -> Value {
    let seg = jwt.split('.').nth(part).expect("a JWT");
    serde_json::from_slice(&B64.decode(seg).expect("base64url")).expect("JSON")
}

/// Our session token: HS256 under the test secret, for `aud` `claude-gateway`, naming `sub`,
/// `email` and `groups`. Returns its claims.
pub(crate) fn assert_session_token(jwt: &str, sub: &str, email: &str, groups: &[&str]) -> Value {
    assert_eq!(jwt_part(jwt, 0)["alg"], "HS256", "{jwt}");
    let keys = SessionKeys::new(&[Secret::new(JWT_SECRET)], None);
    let verified = keys
        .verify(jwt, time::OffsetDateTime::now_utc())
        .unwrap_or_else(|e| panic!("our session token does not verify ({e}): {jwt}"));
    assert_eq!(verified.identity.sub, sub);
    let claims = jwt_part(jwt, 1);
    assert_eq!(claims["sub"], sub, "{claims}");
    assert_eq!(claims["email"], email, "{claims}");
    assert_eq!(claims["groups"], json!(groups), "{claims}");
    assert_eq!(claims["aud"], "claude-gateway", "{claims}");
    assert!(claims["exp"].as_i64() > claims["iat"].as_i64(), "{claims}");
    claims
}

/// The `result` of each audit event named `evt`, in order.
pub(crate) fn results(gw: &Gateway, evt: &str) -> Vec<String> {
    gw.audit(evt)
        .iter()
        .map(|e| e["result"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `url` with its query parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.into()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

/// The IdP, our gateway in front of it (on a port the IdP knows the callback of), an HTTP client.
pub(crate) struct Stack {
    pub(crate) idp: Idp,
    pub(crate) gw: Gateway,
    pub(crate) base: String,
    client: reqwest::Client,
}

/// Starts the stack; `method` is the client authentication the IdP holds the gateway to, `gates`
/// more of the `oidc` mapping (e.g. `, allowed_groups: [admins]`).
pub(crate) fn stack(users: &[TestUser], method: &str, gates: &str) -> Stack {
    stack_with(users, method, gates, IdpOptions::default())
}

/// Like [`stack`], with more of the IdP's options.
pub(crate) fn stack_with(users: &[TestUser], method: &str, gates: &str, opts: IdpOptions) -> Stack {
    stack_env(users, method, gates, opts, &[])
}

/// Like [`stack_with`], with `env` set in the gateway's environment.
fn stack_env(
    users: &[TestUser],
    method: &str,
    gates: &str,
    opts: IdpOptions,
    env: &[(&str, &str)],
) -> Stack {
    let opts = IdpOptions {
        token_endpoint_auth_method: method.into(),
        ..opts
    };
    let (idp, gw, base) = signin_env(users, opts, gates, "", env);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Stack {
        idp,
        gw,
        base,
        client,
    }
}

impl Stack {
    /// The gateway's logs and the IdP's, for failure messages.
    pub(crate) fn logs(&self) -> String {
        format!(
            "--- gateway stdout ---\n{}\n--- gateway stderr ---\n{}\n--- IdP ---\n{}",
            self.gw.stdout(),
            self.gw.stderr(),
            self.idp.logs()
        )
    }

    /// POSTs a form to the gateway; the status and the body as JSON (`Null` when not JSON).
    pub(crate) async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `POST /oauth/device_authorization`: (device code, user code).
    pub(crate) async fn device_authorization(&self) -> (String, String) {
        let (status, da) = self
            .post_form("/oauth/device_authorization", &[("surface", "claude_code")])
            .await;
        assert_eq!(status, 200, "{da}\n{}", self.logs());
        assert_eq!(da["verification_uri"], format!("{}/device", self.base));
        assert_eq!(da["interval"], 5, "{da}");
        (
            da["device_code"].as_str().unwrap().to_owned(),
            da["user_code"].as_str().unwrap().to_owned(),
        )
    }

    /// One device-code poll.
    pub(crate) async fn poll(&self, device_code: &str) -> (u16, Value) {
        self.post_form(
            "/oauth/token",
            &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
        )
        .await
    }

    /// Polls as a client does (every 5 s while pending) until the answer is not pending.
    pub(crate) async fn poll_until_settled(&self, device_code: &str) -> (u16, Value) {
        for _ in 0..6 {
            let (status, body) = self.poll(device_code).await;
            match body["error"].as_str() {
                Some("authorization_pending" | "slow_down") => {
                    tokio::time::sleep(Duration::from_secs(5)).await
                }
                _ => return (status, body),
            }
        }
        panic!("the grant stayed pending\n{}", self.logs());
    }

    /// A refresh grant through the gateway.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// A device sign-in by `login` that the gateway admits; returns the token answer.
    pub(crate) async fn sign_in(&self, login: &str) -> Value {
        let (device_code, user_code) = self.device_authorization().await;
        let approval = self.idp.approve_device(&self.base, &user_code, login).await;
        assert_eq!(approval.status, 200, "{}\n{}", approval.body, self.logs());
        assert!(approval.body.contains("signed in"), "{}", approval.body);
        let (status, tokens) = self.poll_until_settled(&device_code).await;
        assert_eq!(status, 200, "{tokens}\n{}", self.logs());
        tokens
    }

    /// A device sign-in by `login` that the gateway refuses at the callback: the page says why,
    /// the poll answers `access_denied` (once; then the device code is gone).
    pub(crate) async fn refused_sign_in(&self, login: &str, why: &str) {
        let (device_code, user_code) = self.device_authorization().await;
        let approval = self.idp.approve_device(&self.base, &user_code, login).await;
        assert_eq!(approval.status, 403, "{}\n{}", approval.body, self.logs());
        assert!(
            approval.body.contains("Sign-in could not be completed"),
            "{}",
            approval.body
        );
        assert!(
            approval
                .body
                .contains(&format!("Sign-in was refused: {why}.")),
            "the page names the reason ({why}): {}",
            approval.body
        );
        let (status, body) = self.poll_until_settled(&device_code).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("access_denied")),
            "{body}\n{}",
            self.logs()
        );
        let (status, body) = self.poll(&device_code).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("expired_token")),
            "{body}"
        );
    }

    /// The last `session.mint` and `auth.denied` events say the sign-in was refused for `why`.
    pub(crate) fn assert_refusal_audited(&self, why: &str) {
        let mint = self.gw.audit("session.mint");
        let last = mint.last().expect("a session.mint event");
        assert_eq!(
            (&last["result"], &last["err"]),
            (&json!("fail"), &json!(why))
        );
        let denied = self.gw.audit("auth.denied");
        let last = denied.last().expect("an auth.denied event");
        assert_eq!(last["reason"], why, "{last}");
        assert_eq!(last["path"], "/oauth/callback", "{last}");
    }
}

/// The whole device flow and refresh grant through our gateway, the IdP holding it to `method`.
fn device_flow_with(method: &str) {
    let rt = runtime();
    let users = [TestUser::new("alice").groups(&["eng", "staff"])];
    let mut s = stack(&users, method, "");
    let started = Instant::now();
    rt.block_on(async {
        let (device_code, user_code) = s.device_authorization().await;
        let approval = s.idp.approve_device(&s.base, &user_code, "alice").await;
        assert!(
            approval
                .callback_url
                .starts_with(&format!("{}/oauth/callback?", s.base)),
            "{approval:?}"
        );
        assert!(query_param(&approval.callback_url, "code").is_some());
        assert!(query_param(&approval.callback_url, "state").is_some());
        assert_eq!(approval.status, 200, "{}\n{}", approval.body, s.logs());
        assert!(approval.body.contains("signed in"), "{}", approval.body);

        // The first poll after the approval collects the tokens.
        let (status, tokens) = s.poll_until_settled(&device_code).await;
        assert_eq!(status, 200, "{tokens}\n{}", s.logs());
        assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
        assert!(tokens["expires_in"].as_u64().is_some_and(|e| e > 0));
        let jwt1 = tokens["access_token"].as_str().expect("an access token");
        let first = assert_session_token(jwt1, "alice", "alice@example.com", &["eng", "staff"]);
        assert_eq!(first["name"], "Test User alice");
        let rt1 = tokens["refresh_token"]
            .as_str()
            .expect("the IdP's refresh token")
            .to_owned();
        assert!(!rt1.is_empty() && rt1 != jwt1);
        assert!(
            SessionKeys::new(&[Secret::new(JWT_SECRET)], None)
                .verify(&rt1, time::OffsetDateTime::now_utc())
                .is_err(),
            "the refresh token is not a session token"
        );
        let idp_log = s.idp.logs();
        assert_eq!(
            idp_log.matches("POST /token 200").count(),
            1,
            "one code exchange at the IdP: {idp_log}"
        );

        assert_eq!(results(&s.gw, "device.authorize"), ["success"]);
        assert_eq!(results(&s.gw, "device.verify"), ["redirect"]);
        let callback = s.gw.audit("device.callback");
        assert_eq!(callback.len(), 1, "{callback:?}");
        assert_eq!(
            (&callback[0]["result"], &callback[0]["sub"]),
            (&json!("success"), &json!("alice"))
        );
        let mint = s.gw.audit("session.mint");
        assert_eq!(mint.len(), 1, "{mint:?}");
        assert_eq!(mint[0]["result"], "success");
        assert_eq!(mint[0]["sub"], "alice");
        assert_eq!(mint[0]["email"], "alice@example.com");
        assert_eq!(mint[0]["groups"], json!(["eng", "staff"]));
        assert!(s.gw.audit("auth.denied").is_empty());

        // The device code is good for one collection.
        let (status, body) = s.poll(&device_code).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("expired_token")),
            "{body}"
        );

        // Refresh: a new session token, the IdP's refresh token rotated.
        let (status, fresh) = s.refresh(&rt1).await;
        assert_eq!(status, 200, "{fresh}\n{}", s.logs());
        let jwt2 = fresh["access_token"].as_str().expect("an access token");
        let second = assert_session_token(jwt2, "alice", "alice@example.com", &["eng", "staff"]);
        assert!(second["iat"].as_i64() >= first["iat"].as_i64());
        assert_eq!(fresh["token_type"], "Bearer", "{fresh}");
        let rt2 = fresh["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(rt1, rt2, "the IdP rotated its refresh token");
        let refresh = s.gw.audit("session.refresh");
        assert_eq!(refresh.len(), 1, "{refresh:?}");
        assert_eq!(
            (&refresh[0]["result"], &refresh[0]["sub"]),
            (&json!("success"), &json!("alice"))
        );

        // A user the IdP disabled cannot refresh: sign in again.
        s.idp.disable_user("alice");
        let (status, body) = s.refresh(&rt2).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_grant")),
            "{body}\n{}",
            s.logs()
        );
        let last = s.gw.audit("session.refresh").pop().unwrap();
        assert_eq!(
            (&last["result"], &last["err"]),
            (&json!("fail"), &json!("invalid_grant"))
        );

        // The IdP down: keep the refresh token and try later.
        s.idp.enable_user("alice");
        s.idp.stop();
        let t = Instant::now();
        let (status, body) = s.refresh(&rt2).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable")),
            "{body}\n{}",
            s.logs()
        );
        assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
        let last = s.gw.audit("session.refresh").pop().unwrap();
        assert_eq!(
            (&last["result"], &last["err"]),
            (&json!("fail"), &json!("idp_unavailable"))
        );
        assert_eq!(results(&s.gw, "session.refresh").len(), 3);
    });
    s.gw.assert_no_secrets();
    s.gw.assert_absent(&[&s.idp.client_secret]);
    let out = format!("{}{}", s.gw.stdout(), s.gw.stderr());
    assert!(
        !out.contains(&s.idp.client_secret),
        "a log line carries the IdP client secret:\n{out}"
    );
    eprintln!(
        "our device flow with {method}: {:?} (sign-in, token, three refreshes)",
        started.elapsed()
    );
}

#[test]
fn device_flow_and_refresh_with_client_secret_basic() {
    device_flow_with("client_secret_basic");
}

#[test]
fn device_flow_and_refresh_with_client_secret_post() {
    device_flow_with("client_secret_post");
}

/// The IdP's redirect back to the gateway, opened in a browser that did not start the sign-in
/// (no `gw_dev` cookie, or another sign-in's), is refused and leaves the grant pending; the code
/// is not exchanged. The browser that started it can still finish.
#[test]
fn a_callback_in_another_browser_is_refused() {
    let rt = runtime();
    let users = [TestUser::new("alice").groups(&["eng"])];
    let s = stack(&users, "client_secret_basic", "");
    rt.block_on(async {
        let (device_code, user_code) = s.device_authorization().await;
        let mut mine = s.idp.device_callback(&s.base, &user_code, "alice").await;
        assert!(
            mine.browser.cookie("127.0.0.1", "gw_dev").is_some(),
            "the verification page binds the browser with a cookie"
        );

        // A browser without the cookie.
        let other = Browser::new().open(&mine.callback_url).await;
        assert_eq!(other.status, 403, "{}\n{}", other.body, s.logs());
        assert!(other.body.contains("Different browser"), "{}", other.body);
        assert!(!other.body.contains("signed in"), "{}", other.body);
        assert_eq!(results(&s.gw, "device.callback"), ["browser_mismatch"]);
        let (status, body) = s.poll(&device_code).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("authorization_pending")),
            "{body}"
        );

        // A browser with the cookie of a sign-in of its own.
        let (theirs_code, theirs_user_code) = s.device_authorization().await;
        let mut theirs = s
            .idp
            .device_callback(&s.base, &theirs_user_code, "alice")
            .await;
        let theirs_cookie = theirs
            .browser
            .cookie("127.0.0.1", "gw_dev")
            .expect("its own gw_dev cookie")
            .to_owned();
        assert_ne!(
            Some(theirs_cookie.as_str()),
            mine.browser.cookie("127.0.0.1", "gw_dev")
        );
        let crossed = theirs.browser.open(&mine.callback_url).await;
        assert_eq!(crossed.status, 403, "{}\n{}", crossed.body, s.logs());
        assert!(
            crossed.body.contains("Different browser"),
            "{}",
            crossed.body
        );
        assert_eq!(
            results(&s.gw, "device.callback"),
            ["browser_mismatch", "browser_mismatch"]
        );
        let (status, body) = s.poll(&device_code).await;
        assert_ne!(status, 200, "no token for a refused callback: {body}");
        assert!(
            matches!(
                body["error"].as_str(),
                Some("authorization_pending" | "slow_down")
            ),
            "{body}"
        );
        assert!(s.gw.audit("session.mint").is_empty());
        let idp_log = s.idp.logs();
        assert!(
            !idp_log.contains("POST /token"),
            "no code exchanged for a refused callback: {idp_log}"
        );

        // The browser that started the sign-in finishes it: the code was not spent.
        let done = mine.open().await;
        assert_eq!(done.status, 200, "{}\n{}", done.body, s.logs());
        assert!(done.body.contains("signed in"), "{}", done.body);
        assert_eq!(
            mine.browser.cookie("127.0.0.1", "gw_dev"),
            None,
            "the binding cookie is cleared once used"
        );
        let (status, tokens) = s.poll_until_settled(&device_code).await;
        assert_eq!(status, 200, "{tokens}\n{}", s.logs());
        assert_session_token(
            tokens["access_token"].as_str().unwrap(),
            "alice",
            "alice@example.com",
            &["eng"],
        );

        // The stray visit did not break the other browser's own sign-in.
        assert_eq!(
            theirs.browser.cookie("127.0.0.1", "gw_dev"),
            Some(theirs_cookie.as_str()),
            "a refused callback leaves the browser's own binding cookie alone"
        );
        let done = theirs.open().await;
        assert_eq!(done.status, 200, "{}\n{}", done.body, s.logs());
        let (status, tokens) = s.poll_until_settled(&theirs_code).await;
        assert_eq!(status, 200, "{tokens}\n{}", s.logs());
        assert_eq!(
            results(&s.gw, "device.callback"),
            ["browser_mismatch", "browser_mismatch", "success", "success"]
        );
    });
}

/// The callback URL is good once: opened again after the sign-in (by the same browser, or by a
/// copy of it still holding the cookie) it is refused, before and after the token poll; a
/// tampered or missing state is refused as such.
#[test]
fn a_replayed_or_tampered_state_is_refused() {
    let rt = runtime();
    let users = [TestUser::new("alice").groups(&["eng"])];
    let s = stack(&users, "client_secret_post", "");
    rt.block_on(async {
        let (device_code, user_code) = s.device_authorization().await;
        let mut cb = s.idp.device_callback(&s.base, &user_code, "alice").await;
        let mut copy = cb.browser.clone();
        let mut later = cb.browser.clone();
        let state = query_param(&cb.callback_url, "state").unwrap();

        // A tampered state: one character changed in the middle.
        let mut chars: Vec<char> = state.chars().collect();
        let mid = chars.len() / 2;
        chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        for bad in [
            with_param(&cb.callback_url, "state", &tampered),
            with_param(&cb.callback_url, "state", ""),
            format!("{}/oauth/callback?code=abc", s.base),
        ] {
            let r = cb.browser.open(&bad).await;
            assert_eq!(r.status, 400, "{bad}: {}\n{}", r.body, s.logs());
            assert!(r.body.contains("expired"), "{}", r.body);
            assert!(!r.body.contains("signed in"), "{}", r.body);
        }
        assert_eq!(
            results(&s.gw, "device.callback"),
            ["invalid_state", "invalid_state", "invalid_state"]
        );
        let (status, body) = s.poll(&device_code).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("authorization_pending")),
            "{body}"
        );

        // The real one signs in.
        let done = cb.open().await;
        assert_eq!(done.status, 200, "{}\n{}", done.body, s.logs());

        // Again, from a copy of the browser that still holds the cookie: already used.
        let again = copy.open(&cb.callback_url).await;
        assert_eq!(again.status, 400, "{}\n{}", again.body, s.logs());
        assert!(again.body.contains("Already used"), "{}", again.body);
        // Again, from the same browser (a reload of the success page; its cookie is gone):
        // already used too, not blamed on the browser.
        let again = cb.open().await;
        assert_eq!(again.status, 400, "{again:?}");
        assert!(again.body.contains("Already used"), "{}", again.body);
        assert_eq!(
            results(&s.gw, "device.callback"),
            [
                "invalid_state",
                "invalid_state",
                "invalid_state",
                "success",
                "not_pending",
                "not_pending"
            ]
        );

        // The replays did not disturb the grant: the poll collects the first sign-in's tokens.
        let (status, tokens) = s.poll_until_settled(&device_code).await;
        assert_eq!(status, 200, "{tokens}\n{}", s.logs());
        assert_session_token(
            tokens["access_token"].as_str().unwrap(),
            "alice",
            "alice@example.com",
            &["eng"],
        );

        // And after the collection, still refused.
        let again = later.open(&cb.callback_url).await;
        assert_eq!(again.status, 400, "{}\n{}", again.body, s.logs());
        assert_eq!(
            results(&s.gw, "device.callback").last().map(String::as_str),
            Some("not_pending")
        );
        assert_eq!(results(&s.gw, "session.mint"), ["success"]);
        let idp_log = s.idp.logs();
        assert_eq!(
            idp_log.matches("POST /token").count(),
            1,
            "the code was exchanged once: {idp_log}"
        );
    });
}

/// `email_verified: false` in the IdP's id_token: refused with a page that says so; the poll
/// answers `access_denied`.
#[test]
fn an_unverified_email_is_refused() {
    let rt = runtime();
    let users = [
        TestUser::new("alice"),
        TestUser::new("bob").email("bob@corp.example", false),
    ];
    let s = stack(&users, "client_secret_basic", "");
    rt.block_on(async {
        let why = "email address not verified at the IdP";
        s.refused_sign_in("bob", why).await;
        s.assert_refusal_audited(why);
        assert!(results(&s.gw, "device.callback").is_empty());
        // The gate is about bob, not the IdP: alice signs in.
        let tokens = s.sign_in("alice").await;
        assert_session_token(
            tokens["access_token"].as_str().unwrap(),
            "alice",
            "alice@example.com",
            &[],
        );
        assert_eq!(results(&s.gw, "session.mint"), ["fail", "success"]);
    });
}

/// `allowed_email_domains: [corp.example]`: alice@example.com is refused, carol@corp.example is
/// admitted.
#[test]
fn allowed_email_domains_gate_the_sign_in() {
    let rt = runtime();
    let users = [
        TestUser::new("alice").groups(&["eng"]),
        TestUser::new("carol").email("carol@corp.example", true),
    ];
    let s = stack(
        &users,
        "client_secret_basic",
        ", allowed_email_domains: [corp.example]",
    );
    rt.block_on(async {
        let why = "email domain not allowed";
        s.refused_sign_in("alice", why).await;
        s.assert_refusal_audited(why);
        let tokens = s.sign_in("carol").await;
        assert_session_token(
            tokens["access_token"].as_str().unwrap(),
            "carol",
            "carol@corp.example",
            &[],
        );
        // The gate holds at refresh too, and carol passes it.
        let (status, fresh) = s.refresh(tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{fresh}\n{}", s.logs());
        assert_eq!(results(&s.gw, "session.mint"), ["fail", "success"]);
    });
}

/// `allowed_email_domains` and an IdP that sends no `email_verified` claim: the e-mail is not taken
/// as verified, so the domain gate refuses it (it admitted it before); a verified one passes.
#[test]
fn a_domain_gate_refuses_an_email_not_said_to_be_verified() {
    let rt = runtime();
    let users = [
        TestUser::new("erin").email_verified_absent("erin@corp.example"),
        TestUser::new("carol").email("carol@corp.example", true),
    ];
    let s = stack(
        &users,
        "client_secret_basic",
        ", allowed_email_domains: [corp.example]",
    );
    rt.block_on(async {
        let why = "the IdP did not say the email address is verified";
        s.refused_sign_in("erin", why).await;
        s.assert_refusal_audited(why);
        s.sign_in("carol").await;
        assert_eq!(results(&s.gw, "session.mint"), ["fail", "success"]);
    });
}

/// An id_token issued to another client of the IdP (its `azp` names that client) signs no one in;
/// one whose `azp` is this client, or one of `additional_authorized_parties`, does.
#[test]
fn an_id_token_issued_to_another_client_signs_no_one_in() {
    let rt = runtime();
    let users = [
        TestUser::new("mallory").azp("other-app"),
        TestUser::new("carol").azp("cli-companion"),
        TestUser::new("alice").azp("gateway-client"),
    ];
    let s = stack(
        &users,
        "client_secret_basic",
        ", additional_authorized_parties: [cli-companion]",
    );
    assert_eq!(
        s.idp.client_id, "gateway-client",
        "alice's azp is this client"
    );
    rt.block_on(async {
        let (device_code, user_code) = s.device_authorization().await;
        let approval = s.idp.approve_device(&s.base, &user_code, "mallory").await;
        assert_eq!(approval.status, 403, "{}\n{}", approval.body, s.logs());
        assert!(
            approval
                .body
                .contains("The identity provider did not confirm the sign-in"),
            "{}",
            approval.body
        );
        assert!(
            s.logs().contains(
                "id_token azp is neither this client nor one of oidc.additional_authorized_parties"
            ),
            "{}",
            s.logs()
        );
        let (status, body) = s.poll_until_settled(&device_code).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("access_denied")),
            "{body}"
        );
        s.sign_in("carol").await;
        s.sign_in("alice").await;
        assert_eq!(
            results(&s.gw, "session.mint"),
            ["fail", "success", "success"]
        );
    });
}

/// `allowed_groups: [admins]`: a user without it is refused, one with it is admitted.
#[test]
fn allowed_groups_gate_the_sign_in() {
    let rt = runtime();
    let users = [
        TestUser::new("alice").groups(&["eng", "staff"]),
        TestUser::new("dave").groups(&["eng", "admins"]),
    ];
    let s = stack(&users, "client_secret_post", ", allowed_groups: [admins]");
    rt.block_on(async {
        let why = "user is not a member of an allowed group";
        s.refused_sign_in("alice", why).await;
        s.assert_refusal_audited(why);
        let tokens = s.sign_in("dave").await;
        assert_session_token(
            tokens["access_token"].as_str().unwrap(),
            "dave",
            "dave@example.com",
            &["eng", "admins"],
        );
        let mint = s.gw.audit("session.mint");
        assert_eq!(mint.last().unwrap()["groups"], json!(["eng", "admins"]));
        assert_eq!(results(&s.gw, "session.mint"), ["fail", "success"]);
    });
}

/// A sign-in that passed a second factor at the IdP (its id_token's `amr` shows two kinds, with
/// `auth_time`) is remembered in the session token as `mfa_at`, and a refresh keeps it; a
/// password-only sign-in carries none.
#[test]
fn a_second_factor_at_the_idp_reaches_the_session_token_and_a_refresh_keeps_it() {
    let rt = runtime();
    let users = [TestUser::new("ana")];
    let s = stack(&users, "client_secret_basic", "");
    rt.block_on(async {
        let plain = s.sign_in("ana").await;
        let claims = jwt_part(plain["access_token"].as_str().unwrap(), 1);
        assert!(claims.get("mfa_at").is_none(), "{claims}");

        s.idp.set_mfa("ana", true);
        let before = time::OffsetDateTime::now_utc().unix_timestamp();
        let strong = s.sign_in("ana").await;
        let claims = jwt_part(strong["access_token"].as_str().unwrap(), 1);
        let at = claims["mfa_at"]
            .as_i64()
            .unwrap_or_else(|| panic!("{claims}\n{}", s.logs()));
        assert!((before - 5..=before + 60).contains(&at), "{at} vs {before}");

        let (status, refreshed) = s.refresh(strong["refresh_token"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{refreshed}");
        let claims = jwt_part(refreshed["access_token"].as_str().unwrap(), 1);
        assert_eq!(claims["mfa_at"].as_i64(), Some(at), "{claims}");
    });
}

/// Over https (`listen.tls`, `public_url` https): the browser-binding cookie is `__Host-`
/// prefixed, `Secure`, host-only on `/`, and the whole sign-in works with it.
#[test]
fn over_https_the_browser_cookie_is_host_prefixed_and_secure() {
    let rt = runtime();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let der = cert.cert.der().to_vec();

    let port = free_port();
    let base = format!("https://localhost:{port}");
    let idp = Idp::start_with(
        &[TestUser::new("alice").groups(&["eng"])],
        &[&format!("{base}/oauth/callback")],
        IdpOptions::default(),
    );
    let upstream = bedrock_upstream(
        "bedrock",
        "http://127.0.0.1:9",
        "AKIATESTTESTTEST",
        "test-aws-secret",
    );
    let plain = format!("listen: {{host: 127.0.0.1, port: {port}}}");
    let yaml = config_oidc(
        port,
        &shared().new_db(),
        &upstream,
        &oidc_for(&idp, "client_secret_basic"),
        "",
    );
    assert!(yaml.contains(&plain));
    let yaml = yaml.replace(
        &plain,
        &format!(
            "listen: {{host: 127.0.0.1, port: {port}, public_url: '{base}', tls: {{cert: '{}', key: '{}'}}}}",
            cert_path.display(),
            key_path.display()
        ),
    );
    let gw = Gateway::spawn(&yaml, port, &[]);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(&der).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let s = Stack {
        idp,
        gw,
        base,
        client,
    };
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = s.client.get(format!("{}/healthz", s.base)).send().await;
            if up.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "no https answer\n{}", s.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (device_code, user_code) = s.device_authorization().await;
        let mut callback = s
            .idp
            .device_callback_in(Browser::trusting(&der), &s.base, &user_code, "alice")
            .await;
        let binding: Vec<&String> = callback
            .browser
            .set_cookie_headers()
            .iter()
            .filter(|c| c.contains("gw_dev="))
            .collect();
        assert_eq!(binding.len(), 1, "{binding:?}");
        let cookie = binding[0];
        assert!(cookie.starts_with("__Host-gw_dev="), "{cookie}");
        let attrs: Vec<String> = cookie
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        for wanted in ["secure", "httponly", "path=/", "samesite=lax"] {
            assert!(attrs.iter().any(|a| a == wanted), "{wanted} in {cookie}");
        }
        assert!(
            !attrs.iter().any(|a| a.starts_with("domain=")),
            "a __Host- cookie has no Domain: {cookie}"
        );

        let approval = callback.open().await;
        assert_eq!(approval.status, 200, "{}\n{}", approval.body, s.logs());
        let (status, tokens) = s.poll(&device_code).await;
        assert_eq!(status, 200, "{tokens}\n{}", s.logs());
        let claims = jwt_part(tokens["access_token"].as_str().unwrap(), 1);
        assert_eq!(claims["iss"], s.base.as_str(), "{claims}");
        assert_eq!(claims["sub"], "alice");
    });
    s.gw.assert_no_secrets();
    s.gw.assert_absent(&[&s.idp.client_secret]);
}

/// IdP calls go straight to the IdP unless `oidc.use_proxy` is `true`, whatever the proxy
/// variables say: with a forward proxy in the environment that refuses everything, sign-in works
/// and the proxy sees no connection (boot notes the proxy it does not use); with `use_proxy: true`
/// the IdP calls reach the proxy, and sign-in fails there.
#[test]
fn idp_calls_go_through_the_proxy_only_with_use_proxy() {
    use std::sync::atomic::Ordering;
    let rt = runtime();
    let users = [TestUser::new("alice").groups(&["eng"])];
    // A server that answers everything 503 stands in for a forward proxy that refuses.
    let (port, seen) = crate::signin_limits::failing_idp();
    let proxy = format!("http://127.0.0.1:{port}");
    let env = [
        ("HTTP_PROXY", proxy.as_str()),
        ("HTTPS_PROXY", proxy.as_str()),
    ];

    let direct = stack_env(
        &users,
        "client_secret_basic",
        "",
        IdpOptions::default(),
        &env,
    );
    rt.block_on(async {
        let tokens = direct.sign_in("alice").await;
        assert_session_token(
            tokens["access_token"].as_str().unwrap(),
            "alice",
            "alice@example.com",
            &["eng"],
        );
    });
    assert_eq!(seen.load(Ordering::SeqCst), 0, "{}", direct.logs());
    assert!(
        format!("{}{}", direct.gw.stdout(), direct.gw.stderr())
            .contains("set oidc.use_proxy: true"),
        "boot notes the proxy it does not use\n{}",
        direct.logs()
    );

    let proxied = stack_env(
        &users,
        "client_secret_basic",
        ", use_proxy: true",
        IdpOptions::default(),
        &env,
    );
    rt.block_on(async {
        // The verification page sends the browser to the IdP's authorization endpoint, which
        // discovery finds: through the refusing proxy, it cannot.
        let (_, user_code) = proxied.device_authorization().await;
        let res = proxied
            .client
            .post(format!("{}/device", proxied.base))
            .header("Origin", &proxied.base)
            .form(&[("user_code", user_code.as_str())])
            .send()
            .await
            .unwrap();
        assert!(
            !res.status().is_redirection() && res.status().is_server_error(),
            "{}\n{}",
            res.status(),
            proxied.logs()
        );
    });
    assert!(seen.load(Ordering::SeqCst) > 0, "{}", proxied.logs());
    assert!(!format!("{}{}", proxied.gw.stdout(), proxied.gw.stderr())
        .contains("set oidc.use_proxy: true"));
}
