//! The MCP authorization's pages in headless Chromium, as a person meets them: the authorize
//! link sends the browser to the IdP, the consent page names the client, the person and where
//! the browser goes back to, and Allow lands on the client's loopback listener with a code that
//! the client trades for tokens, with no Content-Security-Policy violation on the way (the
//! consent form's target is another origin, which `form-action` must allow).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use crate::support::idp::{IdpOptions, TestUser};
use crate::support::mcp::{aws_access, pkce, McpAuth};
use crate::support::runtime;
use crate::support::stack::signin_with;
use crate::support::webdriver::Browser;

/// A client's loopback listener: answers every request with a small page, and hands the first
/// request line it read to the test.
fn loopback() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { return };
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let line = head.lines().next().unwrap_or_default().to_owned();
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 20\r\nConnection: close\r\n\r\n<p>You may close</p>",
            );
            if line.contains("/callback") {
                let _ = tx.send(line);
            }
        }
    });
    (port, rx)
}

#[test]
fn a_person_authorizes_claude_code_in_the_browser() {
    let rt = runtime();
    let users = [TestUser::new("ana").groups(&["payments"])];
    let (idp, gw, base) = signin_with(&users, IdpOptions::default(), "", &aws_access(""));
    let (port, calls) = loopback();
    let redirect = format!("http://localhost:{port}/callback");
    let auth = McpAuth::new(&base);
    rt.block_on(async {
        let client_id = auth.register().await;
        let (verifier, challenge) = pkce();
        let url = auth.authorize_url(
            &client_id,
            &challenge,
            &[("redirect_uri", Some(&redirect)), ("state", Some("st-42"))],
        );
        let b = Browser::start().await;
        b.goto(&url).await;
        let interaction = format!("{}/interaction/", idp.issuer);
        b.wait_for_url(Duration::from_secs(20), "the IdP's sign-in form", |u| {
            u.starts_with(&interaction)
        })
        .await;
        b.find("input[name=login]").await.send_keys("ana").await;
        b.find("form button[type=submit]").await.click().await;
        b.wait_for_url(Duration::from_secs(20), "the consent page", |u| {
            u.starts_with(&format!("{base}/oauth/callback"))
        })
        .await;

        // The page says who asks, for whom, and where the browser goes back to.
        assert_eq!(b.find("#client").await.text().await, "Claude Code (aws)");
        assert!(b.find("#user").await.text().await.contains("ana"));
        assert_eq!(
            b.find("#redirect_host").await.text().await,
            format!("localhost:{port}")
        );
        assert!(b.find("#deny").await.displayed().await);
        b.find("#allow").await.click().await;
        b.wait_for_url(Duration::from_secs(20), "the client's listener", |u| {
            u.starts_with(&redirect)
        })
        .await;
        let landed = b.url().await;
        let line = calls.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(line.starts_with("GET /callback?"), "{line}");
        let landed = url::Url::parse(&landed).unwrap();
        let param = |k: &str| {
            landed
                .query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(param("state").as_deref(), Some("st-42"));
        assert_eq!(param("iss"), Some(auth.issuer()));
        let code = param("code").expect("a code");

        let violations: Vec<_> = b
            .browser_log()
            .await
            .into_iter()
            .filter(|e| e.message.contains("Content Security Policy"))
            .collect();
        assert!(violations.is_empty(), "{violations:?}");

        // The client trades the code for tokens.
        let resource = auth.resource();
        let (status, tokens) = auth
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", &redirect),
                ("client_id", &client_id),
                ("resource", &resource),
            ])
            .await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
    });
    gw.assert_no_secrets();
}
