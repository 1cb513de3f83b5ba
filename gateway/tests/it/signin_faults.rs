//! Sign-in when the IdP changes under the gateway, driven through the real test IdP: a signing-key
//! rotation (the JWKS fetched again once, not on every token), a refresh answered without an
//! id_token (tied to the session's subject through userinfo), and refresh failures that are the
//! gateway's or the IdP's passing problem (`503`, the client keeps its refresh token) rather than
//! a dead grant (`invalid_grant`).

use serde_json::json;

use crate::signin_idp::{assert_session_token, results, stack, stack_with};
use crate::support::idp::{IdpOptions, TestUser};
use crate::support::runtime;

/// JWKS fetches the IdP answered so far.
fn jwks_fetches(idp_log: &str) -> usize {
    idp_log.matches("GET /jwks 200").count()
}

/// The IdP rotates its signing key between sign-ins: the next refresh and the next sign-in both
/// succeed, at the cost of one JWKS fetch; a second rotation within the refetch interval is not
/// fetched again (a token naming an unknown key cannot make the gateway hammer the IdP), and that
/// refresh is answered `503 temporarily_unavailable`, not `invalid_grant`.
#[test]
fn a_signing_key_rotation_costs_one_jwks_fetch_and_no_sign_in() {
    let rt = runtime();
    let users = [TestUser::new("alice").groups(&["eng"])];
    let opts = IdpOptions {
        rotate_refresh_tokens: false,
        ..IdpOptions::default()
    };
    let s = stack_with(&users, "client_secret_basic", "", opts);
    rt.block_on(async {
        let tokens = s.sign_in("alice").await;
        let rt1 = tokens["refresh_token"].as_str().unwrap().to_owned();
        let before = jwks_fetches(&s.idp.logs());
        assert_eq!(before, 1, "discovery fetched the JWKS once\n{}", s.logs());

        s.idp.rotate_signing_key();
        let (status, fresh) = s.refresh(&rt1).await;
        assert_eq!(status, 200, "{fresh}\n{}", s.logs());
        assert_session_token(
            fresh["access_token"].as_str().unwrap(),
            "alice",
            "alice@example.com",
            &["eng"],
        );
        let tokens = s.sign_in("alice").await;
        assert_session_token(
            tokens["access_token"].as_str().unwrap(),
            "alice",
            "alice@example.com",
            &["eng"],
        );
        assert_eq!(
            jwks_fetches(&s.idp.logs()),
            before + 1,
            "one JWKS refetch for the new key\n{}",
            s.logs()
        );

        // Rotated again at once: the gateway does not fetch again within the interval, and says
        // so as a passing problem, so the client keeps its refresh token.
        s.idp.rotate_signing_key();
        let (status, body) = s.refresh(&rt1).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable")),
            "{body}\n{}",
            s.logs()
        );
        let last = s.gw.audit("session.refresh").pop().unwrap();
        assert_eq!(
            (&last["result"], &last["err"]),
            (&json!("fail"), &json!("id_token_rejected"))
        );
        assert_eq!(jwks_fetches(&s.idp.logs()), before + 1, "{}", s.logs());
    });
    s.gw.assert_no_secrets();
}

/// A refresh the IdP answers without an id_token (OpenID Connect allows it) succeeds: the identity
/// comes from userinfo, which must name the subject the refresh token was sealed with. Twice in a
/// row, so the refresh token handed back carries the subject on.
#[test]
fn a_refresh_without_an_id_token_keeps_the_session_subject() {
    let rt = runtime();
    let users = [TestUser::new("alice").groups(&["eng", "staff"])];
    let s = stack(&users, "client_secret_post", "");
    rt.block_on(async {
        let tokens = s.sign_in("alice").await;
        let mut refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
        s.idp.omit_id_tokens(true);
        for _ in 0..2 {
            let (status, fresh) = s.refresh(&refresh_token).await;
            assert_eq!(status, 200, "{fresh}\n{}", s.logs());
            assert_session_token(
                fresh["access_token"].as_str().unwrap(),
                "alice",
                "alice@example.com",
                &["eng", "staff"],
            );
            refresh_token = fresh["refresh_token"].as_str().unwrap().to_owned();
        }
        assert!(
            s.idp.requests_logged("GET /me 200", 2) >= 2,
            "userinfo was asked\n{}",
            s.logs()
        );
        assert_eq!(results(&s.gw, "session.refresh"), ["success", "success"]);
    });
}
