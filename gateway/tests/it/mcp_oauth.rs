//! The MCP server's authorization server over HTTP, with the real test IdP: discovery, client
//! registration, the authorization request's checks, the code's bindings (client, redirect URI,
//! PKCE verifier, resource, single use), refresh rotation and reuse, and MCP tokens refused
//! elsewhere.

use claude_gateway::config::Secret;
use claude_gateway::mcp::oauth::access::AccessKeys;
use serde_json::{json, Value};

use crate::support::gateway::{config, Gateway, JWT_SECRET};
use crate::support::idp::{Idp, IdpOptions, TestUser};
use crate::support::mcp::{access_token, aws_access, pkce, McpAuth, REDIRECT_URI};
use crate::support::pg::shared;
use crate::support::stack::signin_with;
use crate::support::{jwt_claims, query_param, runtime};

fn users() -> Vec<TestUser> {
    vec![
        TestUser::new("ana").groups(&["payments"]),
        TestUser::new("bo").groups(&["payments"]),
    ]
}

/// The gateway with `extra` config, signing in ana and bo at the test IdP, no claim gates.
fn stack(extra: &str) -> (Idp, Gateway, String) {
    signin_with(&users(), IdpOptions::default(), "", extra)
}

#[test]
fn discovery_names_one_issuer_and_the_resource_and_is_off_without_the_section() {
    let rt = runtime();
    let (_idp, _gw, base) = stack(&aws_access(""));
    let off = Gateway::start(|port| config(port, &shared().new_db(), ""), &[]);
    rt.block_on(async {
        let http = crate::support::client();
        let get = |url: String| {
            let http = http.clone();
            async move {
                let r = http
                    .get(&url)
                    .header("mcp-protocol-version", "2025-11-25")
                    .send()
                    .await
                    .unwrap();
                let s = r.status().as_u16();
                (s, r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let resource = format!("{base}/mcp");
        let issuer = format!("{base}/mcp/oauth");
        for path in [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource",
        ] {
            let (s, prm) = get(format!("{base}{path}")).await;
            assert_eq!(s, 200, "{path}: {prm}");
            assert_eq!(prm["resource"], resource.as_str());
            assert_eq!(prm["authorization_servers"], json!([issuer]));
            assert_eq!(prm["scopes_supported"], json!(["aws"]));
            assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
        }
        // The client looks the issuer up with its path inserted, and wants it back exactly.
        let (s, meta) = get(format!(
            "{base}/.well-known/oauth-authorization-server/mcp/oauth"
        ))
        .await;
        assert_eq!(s, 200, "{meta}");
        assert_eq!(meta["issuer"], issuer.as_str());
        assert_eq!(
            meta["authorization_endpoint"],
            format!("{issuer}/authorize")
        );
        assert_eq!(meta["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(meta["registration_endpoint"], format!("{issuer}/register"));
        assert_eq!(meta["response_types_supported"], json!(["code"]));
        assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            meta["token_endpoint_auth_methods_supported"],
            json!(["none"])
        );
        assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
        assert_ne!(meta["client_id_metadata_document_supported"], true);
        assert!(!meta.to_string().contains("offline_access"), "{meta}");
        // The device sign-in's document is another issuer's, as it was.
        let (s, root) = get(format!("{base}/.well-known/oauth-authorization-server")).await;
        assert_eq!(s, 200);
        assert_eq!(root["issuer"], base.as_str());
        assert_eq!(root["response_types_supported"], json!([]));

        // Without `aws_access.mcp`, none of it is there.
        let off = format!("http://127.0.0.1:{}", off.port);
        for path in [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-authorization-server/mcp/oauth",
            "/mcp/oauth/authorize?client_id=x",
        ] {
            assert_eq!(get(format!("{off}{path}")).await.0, 404, "{path}");
        }
        let r = http
            .post(format!("{off}/mcp/oauth/register"))
            .json(&json!({"redirect_uris": [REDIRECT_URI]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let r = http
            .post(format!("{off}/mcp/oauth/token"))
            .form(&[("grant_type", "refresh_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    });
}

#[test]
fn registration_takes_loopback_and_https_redirects_and_public_clients_only() {
    let rt = runtime();
    let extra = format!(
        "{}rate_limits: {{device_authorization: {{max: 9, window_seconds: 600}}}}\n",
        aws_access("")
    );
    let (_idp, gw, base) = stack(&extra);
    rt.block_on(async {
        let a = McpAuth::new(&base);
        let (s, v) = a
            .register_with(&json!({
                "client_name": "Claude Code (aws)",
                "redirect_uris": [REDIRECT_URI, "https://app.example.com/cb"],
                "token_endpoint_auth_method": "none",
            }))
            .await;
        assert_eq!(s, 201, "{v}");
        assert!(v["client_id"].as_str().is_some_and(|c| c.len() > 20), "{v}");
        assert!(v["client_id_issued_at"].is_i64());
        assert_eq!(v["token_endpoint_auth_method"], "none");
        assert_eq!(v["client_name"], "Claude Code (aws)");
        assert_eq!(v["redirect_uris"][1], "https://app.example.com/cb");
        assert!(v.get("client_secret").is_none());

        for (body, error) in [
            (json!({"redirect_uris": ["http://app.example.com/callback"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": []}), "invalid_redirect_uri"),
            (json!({"client_name": "x"}), "invalid_redirect_uri"),
            (
                json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "client_secret_basic"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": [REDIRECT_URI], "grant_types": ["client_credentials"]}),
                "invalid_client_metadata",
            ),
        ] {
            let (s, v) = a.register_with(&body).await;
            assert_eq!((s, v["error"].as_str()), (400, Some(error)), "{body}: {v}");
        }
        // Not JSON, and more than 8 KiB.
        let r = a
            .http
            .post(format!("{base}/mcp/oauth/register"))
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let big = json!({"redirect_uris": [REDIRECT_URI], "client_name": "x".repeat(9000)});
        let (s, v) = a.register_with(&big).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_client_metadata")));
        assert!(!gw.audit("mcp.register").is_empty());

        // Nine registrations from one network in the window (eight so far), then `slow_down`,
        // counted apart from the device sign-in's starts.
        let (s, _) = a.register_with(&json!({"redirect_uris": [REDIRECT_URI]})).await;
        assert_eq!(s, 201);
        let (s, v) = a.register_with(&json!({"redirect_uris": [REDIRECT_URI]})).await;
        assert_eq!((s, v["error"].as_str()), (429, Some("slow_down")), "{v}");
        let r = a
            .http
            .post(format!("{base}/oauth/device_authorization"))
            .form(&[("client_id", "claude-code")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(gw
            .audit("mcp.register")
            .iter()
            .any(|e| e["result"] == "rate_limited"));
    });
}

#[test]
fn the_authorization_request_is_checked_before_and_after_the_redirect_is_trusted() {
    let rt = runtime();
    let (_idp, _gw, base) = stack(&aws_access(""));
    rt.block_on(async {
        let a = McpAuth::new(&base);
        let client = a.register().await;
        let (_, challenge) = pkce();
        // Before the redirect URI is trusted: a page, never a redirect.
        for over in [
            vec![("client_id", Some("not-a-client"))],
            vec![("redirect_uri", Some("http://localhost:53682/elsewhere"))],
            vec![("redirect_uri", Some("https://evil.example.com/callback"))],
        ] {
            let r = a
                .http
                .get(a.authorize_url(&client, &challenge, &over))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{over:?}");
            assert!(r.headers().get("location").is_none(), "{over:?}");
        }
        // Any loopback port is the registered redirect URI.
        let other_port = "http://localhost:61999/callback";
        let r = a
            .http
            .get(a.authorize_url(&client, &challenge, &[("redirect_uri", Some(other_port))]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        assert!(!r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(other_port));
        // After: the error goes back to the client, with its state and the issuer.
        let foreign = "https://other.example.com/mcp";
        for (over, error) in [
            (vec![("code_challenge", None)], "invalid_request"),
            (vec![("code_challenge_method", None)], "invalid_request"),
            (
                vec![("code_challenge_method", Some("plain"))],
                "invalid_request",
            ),
            (vec![("resource", None)], "invalid_target"),
            (vec![("resource", Some(foreign))], "invalid_target"),
            (
                vec![("response_type", Some("token"))],
                "unsupported_response_type",
            ),
        ] {
            let r = a
                .http
                .get(a.authorize_url(&client, &challenge, &over))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 302, "{over:?}");
            let to = r.headers()["location"].to_str().unwrap().to_owned();
            assert!(to.starts_with(REDIRECT_URI), "{to}");
            assert_eq!(
                query_param(&to, "error").as_deref(),
                Some(error),
                "{over:?}"
            );
            assert_eq!(query_param(&to, "state").as_deref(), Some("client-state-1"));
            assert_eq!(query_param(&to, "iss"), Some(a.issuer()));
        }
    });
}

#[test]
fn a_code_is_good_once_for_its_client_redirect_verifier_and_resource() {
    let rt = runtime();
    let (idp, gw, base) = stack(&aws_access(""));
    rt.block_on(async {
        let a = McpAuth::new(&base);
        let client = a.register().await;
        let other = a.register().await;
        let (verifier, challenge) = pkce();

        // The consent page names the client and where the browser returns; Deny goes back
        // with access_denied and issues nothing.
        let page = a
            .consent_page(&idp, &a.authorize_url(&client, &challenge, &[]), "ana")
            .await;
        assert!(page.html.contains("Claude Code (aws)"), "{}", page.html);
        assert!(page.html.contains("localhost:53682"), "{}", page.html);
        assert!(page.html.contains("id=\"allow\""), "{}", page.html);
        assert!(page.html.contains("ana@example.com"), "{}", page.html);
        let cross = a
            .http
            .post(format!("{base}/mcp/oauth/consent"))
            .header("cookie", &page.cookie)
            .header("origin", "https://evil.example.com")
            .form(&[("consent", page.consent.as_str()), ("decision", "allow")])
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), 403);
        let r = a.decide(&page, "deny").await;
        assert_eq!(r.status(), 302);
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(query_param(&to, "error").as_deref(), Some("access_denied"));
        assert!(query_param(&to, "code").is_none());
        // The same page cannot be answered again.
        assert_eq!(a.decide(&page, "allow").await.status(), 400);

        // Allow: the code comes back with the client's state and the issuer (RFC 9207).
        let back = a.authorize(&idp, &client, &challenge, "ana").await;
        assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
        assert_eq!(query_param(back.as_str(), "state").as_deref(), Some("client-state-1"));
        assert_eq!(query_param(back.as_str(), "iss"), Some(a.issuer()));
        let code = query_param(back.as_str(), "code").unwrap();
        // A wrong verifier spends the code.
        let (wrong, _) = pkce();
        let (s, v) = a.exchange(&client, &code, &wrong).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")), "{v}");
        let (s, v) = a.exchange(&client, &code, &verifier).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")), "{v}");

        let resource = a.resource();
        let form = |code: &str, over: &[(&'static str, Option<&'static str>)]| {
            let mut f: Vec<(&'static str, Option<String>)> = vec![
                ("grant_type", Some("authorization_code".into())),
                ("code", Some(code.to_owned())),
                ("code_verifier", Some(verifier.clone())),
                ("redirect_uri", Some(REDIRECT_URI.into())),
                ("client_id", Some(client.clone())),
                ("resource", Some(resource.clone())),
            ];
            for (k, v) in over {
                if let Some(slot) = f.iter_mut().find(|(n, _)| n == k) {
                    slot.1 = v.map(str::to_owned);
                }
            }
            f.into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect::<Vec<_>>()
        };
        let send = |f: Vec<(&'static str, String)>| {
            let a = &a;
            async move {
                let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
                a.token(&pairs).await
            }
        };
        // No verifier at all; a redirect URI other than the code's; a foreign resource.
        for (over, status, error) in [
            (vec![("code_verifier", None)], 400, "invalid_request"),
            (
                vec![("redirect_uri", Some("http://localhost:53682/other"))],
                400,
                "invalid_grant",
            ),
            (
                vec![("resource", Some("https://other.example.com/mcp"))],
                400,
                "invalid_target",
            ),
        ] {
            let code = a.code(&idp, &client, &challenge, "ana").await;
            let (s, v) = send(form(&code, &over)).await;
            assert_eq!((s, v["error"].as_str()), (status, Some(error)), "{over:?}: {v}");
        }
        // A code for another client.
        let code = a.code(&idp, &client, &challenge, "ana").await;
        let (s, v) = a.exchange(&other, &code, &verifier).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")), "{v}");

        // The good exchange, with no resource (allowed: it is this server's).
        let code = a.code(&idp, &client, &challenge, "ana").await;
        let (s, t) = send(form(&code, &[("resource", None)])).await;
        assert_eq!(s, 200, "{t}");
        assert_eq!(t["token_type"], "Bearer");
        assert_eq!(t["expires_in"], 900);
        assert_eq!(t["scope"], "aws");
        let access = t["access_token"].as_str().unwrap();
        let c = jwt_claims(access);
        assert_eq!(c["iss"], a.issuer().as_str());
        assert_eq!(c["aud"], resource.as_str());
        assert_eq!(c["sub"], "ana");
        assert_eq!(c["email"], "ana@example.com");
        assert_eq!(c["groups"], json!(["payments"]));
        assert_eq!(c["client_id"], client.as_str());
        assert_eq!(c["scope"], "aws");
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
        assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let header: Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                access.split('.').next().unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(header["typ"], "at+jwt");

        // The test support mints tokens with the gateway's own derivation: what it makes is
        // what the gateway takes.
        let own = AccessKeys::new(&[Secret::new(JWT_SECRET)], &a.issuer(), &resource);
        let verified = own.verify(access, time::OffsetDateTime::now_utc()).unwrap();
        assert_eq!(verified.identity.sub, "ana");
        let minted = access_token(&base, "ana", &["payments"], time::OffsetDateTime::now_utc(), 60);
        let names = |t: &str| {
            let mut k: Vec<String> = jwt_claims(t).as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(names(&minted), names(access));

        // The MCP token is no session token: the Messages API refuses it.
        let r = a
            .http
            .post(format!("{base}/v1/messages"))
            .bearer_auth(access)
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);

        // The code again: refused, and what it started ends (its refresh token is dead).
        let (s, v) = a.exchange(&client, &code, &verifier).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")), "{v}");
        let (s, v) = a.refresh(&client, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")), "{v}");

        let results: Vec<Value> = gw.audit("mcp.token").iter().map(|e| e["result"].clone()).collect();
        assert!(results.contains(&json!("success")) && results.contains(&json!("invalid_code")), "{results:?}");
        let authorize = gw.audit("mcp.authorize");
        assert!(authorize.iter().any(|e| e["result"] == "success" && e["sub"] == "ana"), "{authorize:?}");
        gw.assert_absent(&[access, &code, t["refresh_token"].as_str().unwrap()]);
    });
}

#[test]
fn refresh_tokens_rotate_and_a_reused_one_ends_the_family() {
    let rt = runtime();
    let mcp = aws_access("access_token_seconds: 120");
    let (idp, gw, base) = stack(&mcp);
    rt.block_on(async {
        let a = McpAuth::new(&base);
        let t = crate::support::mcp::sign_in(&gw, &idp, "ana").await;
        assert_eq!(
            t.answer["expires_in"], 120,
            "access_token_seconds: {}",
            t.answer
        );
        let (s, r1) = a.refresh(&t.client_id, &t.refresh_token).await;
        assert_eq!(s, 200, "{r1}");
        let rt1 = r1["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(rt1, t.refresh_token);
        assert_ne!(r1["access_token"], t.access_token.as_str());
        assert_eq!(
            jwt_claims(r1["access_token"].as_str().unwrap())["sub"],
            "ana"
        );
        // Bound to its client and resource.
        let (s, v) = a.refresh("another-client", &rt1).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "{v}"
        );
        let (s, v) = a
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt1),
                ("client_id", &t.client_id),
                ("resource", "https://other.example.com/mcp"),
            ])
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_target")),
            "{v}"
        );
        let (s, r2) = a.refresh(&t.client_id, &rt1).await;
        assert_eq!(s, 200, "{r2}");
        let rt2 = r2["refresh_token"].as_str().unwrap().to_owned();

        // The first token again: a reuse. The family ends, the newest token with it.
        let (s, v) = a.refresh(&t.client_id, &t.refresh_token).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "{v}"
        );
        let (s, v) = a.refresh(&t.client_id, &rt2).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "{v}"
        );
        assert!(gw.audit("mcp.token").iter().any(|e| e["result"] == "reuse"));

        // Someone the IdP no longer signs in cannot refresh.
        let bo = a.sign_in(&idp, "bo").await;
        idp.disable_user("bo");
        let (s, v) = a.refresh(&bo.client_id, &bo.refresh_token).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "{v}"
        );
        // Garbage is refused as a grant, not a crash.
        let (s, v) = a.refresh(&bo.client_id, "garbage").await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "{v}"
        );
    });
}

#[test]
fn someone_the_sign_in_gates_refuse_is_never_asked_to_consent() {
    let rt = runtime();
    let users = [
        TestUser::new("ana").groups(&["payments"]),
        TestUser::new("eve").groups(&["ops"]),
    ];
    let gates = ", allowed_groups: [payments]";
    let (idp, gw, base) = signin_with(&users, IdpOptions::default(), gates, &aws_access(""));
    rt.block_on(async {
        let a = McpAuth::new(&base);
        let client = a.register().await;
        let (_, challenge) = pkce();
        let (cookie, back) = a
            .to_callback(&idp, &a.authorize_url(&client, &challenge, &[]), "eve")
            .await;
        // Without the browser that started it, the callback completes nothing.
        let r = a.http.get(&back).send().await.unwrap();
        assert_eq!(r.status(), 403);
        let r = a
            .http
            .get(&back)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let page = r.text().await.unwrap();
        assert!(page.contains("not a member of an allowed group"), "{page}");
        assert!(!page.contains("name=\"consent\""), "{page}");
        let refused = gw.audit("mcp.authorize");
        assert!(
            refused.iter().any(|e| e["result"] == "browser_mismatch"),
            "{refused:?}"
        );
        assert!(
            refused.iter().any(|e| e["result"]
                .as_str()
                .is_some_and(|r| r.contains("allowed group"))),
            "{refused:?}"
        );
        // Someone the gates admit gets there.
        let t = a.sign_in(&idp, "ana").await;
        assert_eq!(jwt_claims(&t.access_token)["sub"], "ana");
    });
}
