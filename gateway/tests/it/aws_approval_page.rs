//! The approval page in headless Chromium, with the real test IdP: the requester signs in and is
//! told they cannot approve their own request; someone outside the approver groups is refused;
//! a form POST without the session's CSRF token is blocked; an approver signs in, reads the
//! request and approves it, and the developer's status shows the grant.

use std::time::Duration;

use serde_json::{json, Value};

use crate::aws_grants::{sections, Api};
use crate::support::gateway::token;
use crate::support::idp::{Idp, IdpOptions, TestUser};
use crate::support::runtime;
use crate::support::stack::signin_with;
use crate::support::webdriver::Browser;

/// Opens `url` in `b` and signs in at the IdP as `login`; waits to be back on `url`.
pub(crate) async fn sign_in(b: &Browser, issuer: &str, url: &str, login: &str) {
    b.goto(url).await;
    let interaction = format!("{issuer}/interaction/");
    b.wait_for_url(Duration::from_secs(20), "the IdP's sign-in form", |u| {
        u.starts_with(&interaction)
    })
    .await;
    b.find("input[name=login]").await.send_keys(login).await;
    b.find("form button[type=submit]").await.click().await;
    b.wait_for_url(Duration::from_secs(20), "the approval page", |u| u == url)
        .await;
}

/// A client that shows redirects instead of following them.
pub(crate) fn no_redirects() -> reqwest::Client {
    // The TLS provider is installed with the first test client.
    crate::support::client();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in at the approval page `url` as `login` without a browser: the page sends to the IdP
/// with a browser-binding cookie, the callback answers with the approver's session. Returns its
/// `Set-Cookie` (`gw_aws=…; …`).
pub(crate) async fn approver_cookie(idp: &Idp, url: &str, login: &str) -> String {
    let plain = no_redirects();
    let r = plain.get(url).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    let binding = r.headers()["set-cookie"].to_str().unwrap();
    let binding = binding.split(';').next().unwrap().to_owned();
    let back = idp.sign_in(&to, login).await;
    let r = plain
        .get(&back)
        .header("cookie", &binding)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{:?}", r.headers());
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("gw_aws="))
        .expect("the approver's session cookie")
}

#[test]
fn an_approver_approves_in_the_browser_and_the_requester_cannot() {
    let rt = runtime();
    let users = [
        TestUser::new("ana").groups(&["payments"]),
        TestUser::new("lead").groups(&["payments-leads"]),
        TestUser::new("eve").groups(&["ops"]),
    ];
    let (idp, gw, _base) = signin_with(&users, IdpOptions::default(), "", &sections(""));
    rt.block_on(async {
        let api = Api::new(&gw);
        let ana = token("ana", &["payments"]);
        let (s, g) = api.ask(&ana, 1800).await;
        assert_eq!(s, 201, "{g}");
        let id = g["id"].as_str().unwrap().to_owned();
        let url = g["approval_url"].as_str().unwrap().to_owned();

        // Unsigned, the page sends the browser to the IdP, and caches nothing.
        let http = crate::support::client();
        let plain = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = plain.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let to = r.headers()["location"].to_str().unwrap();
        assert!(to.starts_with(&idp.issuer), "{to}");
        let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax"),
            "{set}"
        );

        // The requester signs in and is told no.
        let b = Browser::start().await;
        sign_in(&b, &idp.issuer, &url, "ana").await;
        let text = b.find("body").await.text().await;
        assert!(
            text.contains("You cannot approve your own request."),
            "{text}"
        );
        assert!(b.try_find("#approve").await.is_none());
        drop(b);

        // Someone outside the approver groups sees a refusal and nothing of the request.
        let b = Browser::start().await;
        sign_in(&b, &idp.issuer, &url, "eve").await;
        assert_eq!(b.title().await, "Not an approver");
        let text = b.find("body").await.text().await;
        assert!(!text.contains("rotate the"), "{text}");
        drop(b);

        // The approver reads the request, escaped.
        let b = Browser::start().await;
        sign_in(&b, &idp.issuer, &url, "lead").await;
        assert_eq!(b.title().await, "Write access request");
        let text = b.find("dl").await.text().await;
        for want in [
            "payments",
            "prod",
            "ana@example.com",
            "rotate the <b>key</b>",
            "30 minutes",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert!(b.try_find("dd b").await.is_none(), "the reason is text");
        let source = b.source().await;
        assert!(!source.contains("<script"), "{source}");

        // A form POST without the CSRF token, from the approver's own session, is blocked.
        b.execute(
            "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0]; \
             document.body.appendChild(f); f.submit();",
            vec![json!(format!("{url}/approve"))],
        )
        .await;
        b.wait_for_url(Duration::from_secs(20), "the blocked POST", |u| {
            u.ends_with("/approve")
        })
        .await;
        assert_eq!(b.title().await, "Request blocked");
        // And from outside the browser: no session, another site.
        let r = http
            .post(format!("{url}/approve"))
            .header("origin", "https://evil.example")
            .form(&[("csrf", "guess")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        let refused: Vec<Value> = gw.audit("aws.approval.refused");
        let reasons: Vec<&str> = refused
            .iter()
            .map(|e| e["reason"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, vec!["csrf", "cross_site"]);
        let (_, mine) = api
            .call("GET", &format!("/v1/aws/grants/{id}"), &ana, None)
            .await;
        assert_eq!(mine["status"], "pending");

        // Approve, for real.
        b.goto(&url).await;
        b.find("#approve").await.click().await;
        b.wait_for_url(Duration::from_secs(20), "the decision", |u| {
            u.ends_with("/approve")
        })
        .await;
        assert_eq!(b.title().await, "Approved", "{}", b.source().await);
        let (_, st) = api.call("GET", "/v1/aws/status", &ana, None).await;
        let grant = &st["projects"][0]["grants"][0];
        assert_eq!(grant["status"], "approved");
        assert_eq!(grant["decided_by"], "lead@example.com");
        let approved = gw.audit("aws.grant.approved");
        assert_eq!(approved.len(), 1);
        assert_eq!(approved[0]["approver"], "lead@example.com");
        assert_eq!(approved[0]["client_ip"], "127.0.0.1");
        assert_eq!(approved[0]["user"], "ana");
        gw.assert_no_secrets();
    });
}

/// An approver in hundreds of IdP groups still gets a session cookie a browser keeps (under
/// 4 KiB): it holds only the groups that approve some project, and the page opens with it.
#[test]
fn an_approver_in_many_groups_gets_a_session_cookie_a_browser_keeps() {
    let rt = runtime();
    let mut groups: Vec<String> = (0..300)
        .map(|i| format!("department-{i:03}-all-staff-members"))
        .collect();
    groups.push("payments-leads".into());
    let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    let users = [
        TestUser::new("ana").groups(&["payments"]),
        TestUser::new("lead").groups(&group_refs),
    ];
    let (idp, gw, _base) = signin_with(&users, IdpOptions::default(), "", &sections(""));
    rt.block_on(async {
        let api = Api::new(&gw);
        let (s, g) = api.ask(&token("ana", &["payments"]), 1800).await;
        assert_eq!(s, 201, "{g}");
        let url = g["approval_url"].as_str().unwrap().to_owned();
        let plain = no_redirects();
        let session = approver_cookie(&idp, &url, "lead").await;
        assert!(
            session.len() < 4096,
            "a {}-byte cookie is dropped by browsers",
            session.len()
        );
        let r = plain
            .get(&url)
            .header("cookie", session.split(';').next().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        assert!(page.contains("id=\"approve\""), "{page}");
    });
}
