//! The device verification pages in a real browser: Debian's headless Chromium, driven over
//! WebDriver (`support::webdriver`), against a gateway with a real OpenID Provider behind it.
//! What only a browser shows: the page waits for a button, its Content-Security-Policy lets the
//! Approve form's redirect reach the IdP (Chromium enforces `form-action` along redirects), the
//! browser-binding cookie comes back to the callback, and Deny settles the grant.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::gateway::Gateway;
use crate::support::idp::{Idp, IdpOptions, TestUser};
use crate::support::stack::signin_only;
use crate::support::webdriver::{Browser, LogEntry};
use crate::support::{jwt_claims, runtime};

/// The device grant's poll interval, as `POST /oauth/device_authorization` announces it.
const INTERVAL: Duration = Duration::from_secs(5);

/// A gateway on a port chosen first, and the IdP that knows its callback.
struct Stack {
    idp: Idp,
    gw: Gateway,
    base: String,
    http: reqwest::Client,
}

fn stack() -> Stack {
    let users = [TestUser::new("alice").groups(&["eng"])];
    let (idp, gw, base) = signin_only(&users, IdpOptions::default(), "");
    Stack {
        idp,
        gw,
        base,
        http: crate::support::client(),
    }
}

/// One device grant, as the client sees it, and its poll schedule.
struct Device {
    device_code: String,
    user_code: String,
    verification_uri_complete: String,
    last_poll: Option<Instant>,
    interval: Duration,
}

impl Stack {
    /// `POST /oauth/device_authorization`, as Claude Code sends it.
    async fn start_device(&self) -> Device {
        let r = self
            .http
            .post(format!("{}/oauth/device_authorization", self.base))
            .form(&[("surface", "claude_code")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["interval"], INTERVAL.as_secs());
        let user_code = v["user_code"].as_str().unwrap().to_owned();
        assert_eq!(
            v["verification_uri_complete"],
            format!("{}/device?user_code={user_code}", self.base)
        );
        Device {
            device_code: v["device_code"].as_str().unwrap().to_owned(),
            user_code,
            verification_uri_complete: v["verification_uri_complete"].as_str().unwrap().to_owned(),
            last_poll: None,
            interval: INTERVAL,
        }
    }

    /// One token poll, no sooner than the interval after the previous one (a faster poll would
    /// get `slow_down`, which widens the interval as RFC 8628 says).
    async fn poll(&self, d: &mut Device) -> (u16, Value) {
        if let Some(last) = d.last_poll {
            tokio::time::sleep((last + d.interval).saturating_duration_since(Instant::now())).await;
        }
        d.last_poll = Some(Instant::now());
        let r = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", d.device_code.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        if v["error"] == "slow_down" {
            d.interval += INTERVAL;
        }
        (status, v)
    }

    /// Polls, at the interval, until the answer is neither `authorization_pending` nor
    /// `slow_down`.
    async fn poll_settled(&self, d: &mut Device) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, v) = self.poll(d).await;
            let waiting = v["error"] == "authorization_pending" || v["error"] == "slow_down";
            if !waiting {
                return (status, v);
            }
            assert!(
                Instant::now() < deadline,
                "the poll still says {v} after a minute\n{}",
                self.gw.stdout()
            );
        }
    }
}

/// Reads the browser log into `seen` (each entry is handed out once) and prints it.
async fn collect_log(b: &Browser, seen: &mut Vec<LogEntry>, step: &str) {
    for e in b.browser_log().await {
        eprintln!(
            "browser log [{step}] {} {}: {}",
            e.level, e.source, e.message
        );
        seen.push(e);
    }
}

/// The Content-Security-Policy violations among `log`.
fn csp_violations(log: &[LogEntry]) -> Vec<&LogEntry> {
    log.iter()
        .filter(|e| e.message.contains("Content Security Policy"))
        .collect()
}

async fn computed(b: &Browser, css: &str, property: &str) -> String {
    b.execute(
        "return getComputedStyle(document.querySelector(arguments[0])).getPropertyValue(arguments[1]);",
        vec![json!(css), json!(property)],
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Opens the verification link and checks the confirmation page a person sees.
async fn open_confirmation(s: &Stack, b: &Browser, d: &Device) {
    b.goto(&d.verification_uri_complete).await;
    assert_eq!(b.url().await, d.verification_uri_complete);
    assert_eq!(b.title().await, "Approve sign-in?");
    assert_eq!(b.find("h1").await.text().await, "Approve sign-in?");
    // The code is shown, and carried by the form.
    assert_eq!(b.find(".code").await.text().await, d.user_code);
    let code = b.find("form input[name=user_code]").await;
    assert_eq!(code.property("type").await, "hidden");
    assert_eq!(code.property("value").await, d.user_code.as_str());
    let form = b.find("form").await;
    assert_eq!(form.property("method").await, "post");
    assert_eq!(form.property("action").await, format!("{}/device", s.base));
    let approve = b.find("form #approve").await;
    assert!(approve.displayed().await);
    assert_eq!(approve.text().await, "Approve and sign in");
    assert_eq!(approve.property("type").await, "submit");
    let deny = b.find("form #deny").await;
    assert!(deny.displayed().await);
    assert_eq!(deny.text().await, "Deny");
    assert_eq!(
        deny.property("formAction").await,
        format!("{}/device/deny", s.base)
    );
}

/// The pre-filled link shows the code with Approve and Deny and does nothing by itself; the page's
/// CSP lets its own stylesheet in and keeps forms to the gateway and the IdP.
#[test]
fn the_verification_page_shows_the_code_and_waits_for_a_button() {
    let rt = runtime();
    let s = stack();
    rt.block_on(async {
        let t0 = Instant::now();
        let mut d = s.start_device().await;

        // The policy as served: forms may go to the gateway and to the IdP's authorize origin.
        let r = s
            .http
            .get(&d.verification_uri_complete)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let csp = r
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(
            csp.contains(&format!("form-action 'self' {}", s.idp.issuer)),
            "{csp}"
        );

        let b = Browser::start().await;
        let mut log = Vec::new();
        open_confirmation(&s, &b, &d).await;
        let source = b.source().await;
        assert!(!source.contains("<script"), "{source}");
        assert!(
            !source.to_ascii_lowercase().contains("http-equiv"),
            "{source}"
        );
        // The hashed stylesheet applied (a blocked one would leave the defaults).
        assert_eq!(computed(&b, ".code", "font-weight").await, "600");
        assert_eq!(
            computed(&b, "#approve", "background-color").await,
            "rgb(31, 31, 31)"
        );
        assert_eq!(
            computed(&b, "#deny", "background-color").await,
            "rgb(255, 255, 255)"
        );

        // Left alone, the page stays put and the grant stays pending.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(b.url().await, d.verification_uri_complete);
        assert_eq!(b.title().await, "Approve sign-in?");
        let (status, v) = s.poll(&mut d).await;
        assert_eq!(
            (status, &v["error"]),
            (400, &json!("authorization_pending"))
        );
        assert!(s.gw.audit("device.verify").is_empty(), "{}", s.gw.stdout());
        assert!(!s.idp.logs().contains("GET /auth"), "{}", s.idp.logs());
        collect_log(&b, &mut log, "confirmation page").await;

        // The page without a code asks for one.
        b.goto(&format!("{}/device", s.base)).await;
        assert_eq!(b.title().await, "Sign in to Claude Code");
        let input = b.find("form input#user_code").await;
        assert!(input.displayed().await);
        assert_eq!(input.property("value").await, "");
        assert_eq!(b.find("form button").await.text().await, "Continue");
        collect_log(&b, &mut log, "code entry page").await;
        let violations = csp_violations(&log);
        assert!(violations.is_empty(), "{violations:?}");

        // The log does carry CSP violations: a form to an origin the policy leaves out is
        // blocked, reported, and the page stays.
        b.goto(&d.verification_uri_complete).await;
        b.execute(
            "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0]; \
             document.body.appendChild(f); f.submit();",
            vec![json!("http://127.0.0.1:9/elsewhere")],
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut blocked = Vec::new();
        while csp_violations(&blocked).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            collect_log(&b, &mut blocked, "control").await;
        }
        let violations = csp_violations(&blocked);
        assert!(
            violations
                .iter()
                .any(|e| e.message.contains("form-action") && e.message.contains("127.0.0.1:9")),
            "no form-action violation reported: {blocked:?}"
        );
        assert_eq!(b.url().await, d.verification_uri_complete);
        eprintln!("verification page checks took {:?}", t0.elapsed());
    });
}

/// Approve: the form's POST, the gateway's 302 to the IdP (allowed by `form-action`), the IdP's
/// sign-in, back to the callback with the browser cookie, and the poll collects the tokens.
#[test]
fn approve_signs_in_at_the_idp_and_the_poll_gets_a_token() {
    let rt = runtime();
    let s = stack();
    rt.block_on(async {
        let t0 = Instant::now();
        let mut d = s.start_device().await;
        let b = Browser::start().await;
        let mut log = Vec::new();
        open_confirmation(&s, &b, &d).await;
        let (status, v) = s.poll(&mut d).await;
        assert_eq!(
            (status, &v["error"]),
            (400, &json!("authorization_pending"))
        );
        collect_log(&b, &mut log, "confirmation page").await;

        b.find("#approve").await.click().await;
        let interaction = format!("{}/interaction/", s.idp.issuer);
        b.wait_for_url(Duration::from_secs(20), "the IdP's sign-in form", |u| {
            u.starts_with(&interaction)
        })
        .await;
        collect_log(&b, &mut log, "after Approve").await;
        assert_eq!(b.title().await, "Sign in");
        let verify = s.gw.audit("device.verify");
        assert!(
            verify.iter().any(|e| e["result"] == "redirect"),
            "{verify:?}"
        );
        assert!(s.idp.logs().contains("GET /auth "), "{}", s.idp.logs());

        b.find("input[name=login]").await.send_keys("alice").await;
        b.find("form button[type=submit]").await.click().await;
        let callback = format!("{}/oauth/callback?", s.base);
        b.wait_for_url(Duration::from_secs(20), "the gateway's callback", |u| {
            u.starts_with(&callback)
        })
        .await;
        collect_log(&b, &mut log, "callback page").await;
        assert_eq!(
            b.title().await,
            "You're signed in",
            "{}\n--- gateway ---\n{}\n--- IdP ---\n{}",
            b.source().await,
            s.gw.stdout(),
            s.idp.logs()
        );
        let text = b.find("body").await.text().await;
        assert!(text.contains("Claude Code is signed in"), "{text}");
        let callbacks = s.gw.audit("device.callback");
        assert_eq!(callbacks.len(), 1, "{callbacks:?}");
        assert_eq!(callbacks[0]["result"], "success");
        assert_eq!(callbacks[0]["sub"], "alice");

        let (status, v) = s.poll_settled(&mut d).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["token_type"], "Bearer");
        let jwt = v["access_token"].as_str().expect("an access_token");
        let claims = jwt_claims(jwt);
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["groups"], json!(["eng"]));
        assert!(
            v["refresh_token"].as_str().is_some_and(|t| !t.is_empty()),
            "{v}"
        );
        // The tokens are handed out once.
        let (status, v) = s.poll(&mut d).await;
        assert_eq!((status, &v["error"]), (400, &json!("expired_token")));

        let violations = csp_violations(&log);
        assert!(violations.is_empty(), "{violations:?}");
        s.gw.assert_no_secrets();
        s.gw.assert_absent(&[&s.idp.client_secret]);
        eprintln!("approve in Chromium took {:?}", t0.elapsed());
    });
}

/// Deny: the denied page, no trip to the IdP, and the next poll answers `access_denied`.
#[test]
fn deny_shows_the_denied_page_and_the_poll_is_refused() {
    let rt = runtime();
    let s = stack();
    rt.block_on(async {
        let t0 = Instant::now();
        let mut d = s.start_device().await;
        let b = Browser::start().await;
        let mut log = Vec::new();
        open_confirmation(&s, &b, &d).await;
        let (status, v) = s.poll(&mut d).await;
        assert_eq!(
            (status, &v["error"]),
            (400, &json!("authorization_pending"))
        );

        b.find("#deny").await.click().await;
        let denied = format!("{}/device/deny", s.base);
        b.wait_for_url(Duration::from_secs(20), "the denied page", |u| u == denied)
            .await;
        collect_log(&b, &mut log, "denied page").await;
        assert_eq!(b.title().await, "Sign-in denied");
        assert_eq!(b.find("h1").await.text().await, "Sign-in denied");
        let text = b.find("body").await.text().await;
        assert!(text.contains("was denied"), "{text}");
        assert!(b.try_find("form").await.is_none());
        let deny = s.gw.audit("device.deny");
        assert_eq!(deny.len(), 1, "{}", s.gw.stdout());
        assert_eq!(deny[0]["result"], "denied");
        assert!(!s.idp.logs().contains("GET /auth"), "{}", s.idp.logs());

        let (status, v) = s.poll_settled(&mut d).await;
        assert_eq!((status, &v["error"]), (400, &json!("access_denied")), "{v}");

        // The code is spent: the link now leads nowhere.
        b.goto(&d.verification_uri_complete).await;
        b.find("#deny").await.click().await;
        b.wait_for_url(Duration::from_secs(20), "the denied page", |u| u == denied)
            .await;
        assert_eq!(b.title().await, "Code not recognized");
        collect_log(&b, &mut log, "spent code").await;

        let violations = csp_violations(&log);
        assert!(violations.is_empty(), "{violations:?}");
        eprintln!("deny in Chromium took {:?}", t0.elapsed());
    });
}
