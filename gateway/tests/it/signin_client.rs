//! The real Claude Code client (2.1.328) against our gateway, with a real OpenID Provider
//! (`oidc-provider`) behind it and the Bedrock double upstream: the developer's whole day one.
//! The client runs in tmux (`support::claude`); the browser step is played over HTTP by
//! `Idp::approve_device` (the pages themselves are checked in Chromium by `device_pages`).

use std::time::Instant;

use crate::support::claude::Claude;
use crate::support::idp::TestUser;
use crate::support::stack::{sign_in, stack};
use crate::support::{jwt_claims, runtime};

/// Sign-in by the real client, an answer through the gateway, and the client's refresh: with a
/// three-minute session the client refreshes before each request (it renews when less than five
/// minutes remain), through the gateway's refresh grant and the IdP's refresh token.
#[test]
fn the_real_client_signs_in_works_and_refreshes() {
    let rt = runtime();
    let users = [TestUser::new("alice").groups(&["eng", "staff"])];
    let s = stack(&rt, &users, ", ttl_hours: 0.05", "");
    let t0 = Instant::now();

    let mut claude = Claude::new(&s.base);
    let creds = sign_in(&rt, &s, &mut claude, "alice");
    let signed_in = t0.elapsed();

    let gateway = &creds["enterpriseGateway"];
    assert_eq!(gateway["url"], s.base.as_str());
    assert_eq!(gateway["tokenEndpoint"], format!("{}/oauth/token", s.base));
    let idp_refresh = gateway["idpRefreshToken"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("the IdP's refresh token reaches the client: {creds}"))
        .to_owned();
    let jwt = gateway["jwt"].as_str().unwrap().to_owned();
    let claims = jwt_claims(&jwt);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["groups"], serde_json::json!(["eng", "staff"]));
    assert_eq!(claims["aud"], "claude-gateway");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        180
    );
    // The client dates the token from when it received it, with the lifetime we sent.
    let expires_at = gateway["expiresAt"].as_u64().expect("expiresAt in ms") / 1000;
    let exp = claims["exp"].as_u64().unwrap();
    assert!(
        (exp..exp + 30).contains(&expires_at),
        "expiresAt {expires_at} against exp {exp}"
    );

    // Sign-in left its audit trail, with no token in it.
    for evt in ["device.authorize", "device.verify", "device.callback"] {
        assert!(!s.gw.audit(evt).is_empty(), "no {evt}:\n{}", s.gw.stdout());
    }
    let mint = s.gw.audit("session.mint");
    assert_eq!(mint.len(), 1, "{mint:?}");
    assert_eq!(mint[0]["sub"], "alice");
    let log = format!("{}{}", s.gw.stdout(), s.gw.stderr());
    assert!(!log.contains(&jwt), "the session token reached a log line");
    assert!(
        !log.contains(&idp_refresh),
        "the IdP's token reached a log line"
    );

    // One prompt through the gateway to the double, from `claude -p` alone (the interactive
    // client, which could refresh too, has quit); it refreshes first.
    claude.quit();
    let refreshes_before = s.gw.audit("session.refresh").len();
    let out = claude.print("Say hello");
    assert!(out.contains("Hello from the Bedrock double."), "{out}");
    let inference = s.gw.audit("inference");
    assert!(!inference.is_empty(), "{}", s.gw.stdout());
    assert!(
        inference.iter().all(|e| e["sub"] == "alice"),
        "{inference:?}"
    );
    assert!(!s.bedrock.requests().is_empty());

    let refreshed = s.gw.audit("session.refresh");
    assert!(
        !refreshed.is_empty(),
        "the client did not refresh:\n{}",
        s.gw.stdout()
    );
    assert!(
        refreshed.iter().all(|e| e["result"] == "success"),
        "{refreshed:?}"
    );
    let order: Vec<String> =
        s.gw.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|e| e["evt"].as_str().map(str::to_owned))
            .filter(|e| e == "session.refresh" || e == "inference")
            .collect();
    let refresh_at = order
        .iter()
        .enumerate()
        .filter(|(_, e)| *e == "session.refresh")
        .nth(refreshes_before)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("claude -p did not refresh: {order:?}"));
    let inference_at = order.iter().position(|e| e == "inference").unwrap();
    assert!(
        refresh_at < inference_at,
        "refresh before the request: {order:?}"
    );
    let after = claude.credentials();
    let new_jwt = after["enterpriseGateway"]["jwt"].as_str().unwrap();
    assert_ne!(new_jwt, jwt, "the client stored the refreshed token");
    assert_eq!(jwt_claims(new_jwt)["sub"], "alice");
    let new_rt = after["enterpriseGateway"]["idpRefreshToken"]
        .as_str()
        .unwrap();
    assert_ne!(new_rt, idp_refresh, "the IdP's rotated refresh token");
    // Two code-or-refresh grants at the IdP: the sign-in's code exchange and the refresh.
    let idp_log = s.idp.logs();
    assert!(idp_log.matches("POST /token 200").count() >= 2, "{idp_log}");
    s.gw.assert_no_secrets();
    s.gw.assert_absent(&[&s.idp.client_secret]);

    eprintln!(
        "real client on our gateway: signed in after {signed_in:?}, answered and refreshed \
         after {:?}",
        t0.elapsed()
    );
}
