//! Forged, stale and misplaced session tokens are all refused with `401 invalid token`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::body::Body;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use claude_gateway::auth::token::{kid, Identity, SessionKeys};
use claude_gateway::clock::ManualClock;
use claude_gateway::config::{self, MapEnv, Secret};
use claude_gateway::http::access::ConnPeer;
use claude_gateway::state::AppState;
use claude_gateway::store::Store;
use claude_gateway::telemetry::audit::Audit;
use claude_gateway::upstream::Upstreams;
use http::Request;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use time::OffsetDateTime;
use tower::ServiceExt;

const SECRET: &str = "bearer-test-secret-0123456789abcdef0123";
const ORIGIN: &str = "https://gw.example.com";

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn app() -> (axum::Router, Audit) {
    let yaml = format!(
        "listen: {{host: 127.0.0.1, port: 8080, public_url: '{ORIGIN}'}}\nupstreams: [{{provider: bedrock, region: us-east-1}}]\nsession: {{jwt_secret: {SECRET}}}\nstore: {{postgres_url: 'postgres://x@127.0.0.1:1/x'}}\noidc: {{issuer: 'https://idp.example.com', client_id: c, client_secret: s}}\n"
    );
    let loaded = config::load(&yaml, &MapEnv::new()).unwrap();
    let store = Store::lazy(
        PgConnectOptions::from_str("postgres://x@127.0.0.1:1/x").unwrap(),
        1,
        Duration::from_millis(100),
    );
    let audit = Audit::memory();
    let state = AppState::new(
        loaded,
        audit.clone(),
        Arc::new(ManualClock::new(now())),
        store,
        Upstreams::none(),
    )
    .unwrap();
    (claude_gateway::app::router(state), audit)
}

fn sign(header: &Value, claims: &Value, secret: &str) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    format!("{input}.{}", B64.encode(hmac::sign(&key, input.as_bytes())))
}

fn claims() -> Value {
    let iat = now().unix_timestamp();
    json!({"sub": "u1", "email": "u1@example.com", "groups": [], "aud": "claude-gateway", "iss": ORIGIN, "iat": iat, "exp": iat + 3600})
}

fn header() -> Value {
    json!({"alg": "HS256", "typ": "JWT", "kid": kid(SECRET)})
}

async fn status(app: &axum::Router, name: &str, value: &str) -> u16 {
    let peer: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let req = Request::get("/v1/models")
        .header(name, value)
        .extension(ConnPeer(peer))
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn only_genuine_current_tokens_pass() {
    let (app, audit) = app();
    let good = SessionKeys::new(&[Secret::new(SECRET)], Some(ORIGIN.into())).mint(
        &Identity {
            sub: "u1".into(),
            email: None,
            name: None,
            groups: vec![],
            mfa_at: None,
        },
        now(),
        time::Duration::hours(1),
    );
    assert_eq!(
        status(&app, "authorization", &format!("Bearer {good}")).await,
        200
    );
    assert_eq!(
        status(
            &app,
            "authorization",
            &format!("Bearer {}", sign(&header(), &claims(), SECRET))
        )
        .await,
        200
    );

    let mut cases: Vec<(&str, String)> = Vec::new();
    let none = format!(
        "{}.{}.",
        B64.encode(json!({"alg": "none", "typ": "JWT", "kid": kid(SECRET)}).to_string()),
        B64.encode(claims().to_string())
    );
    cases.push(("alg none", none));
    cases.push((
        "wrong kid",
        sign(
            &json!({"alg": "HS256", "typ": "JWT", "kid": "0011223344556677"}),
            &claims(),
            SECRET,
        ),
    ));
    cases.push((
        "no kid",
        sign(&json!({"alg": "HS256", "typ": "JWT"}), &claims(), SECRET),
    ));
    cases.push((
        "other secret",
        sign(
            &json!({"alg": "HS256", "typ": "JWT", "kid": kid(SECRET)}),
            &claims(),
            "some-other-secret-0123456789abcdef01",
        ),
    ));
    let mut c = claims();
    c["exp"] = (now().unix_timestamp() - 1).into();
    cases.push(("expired", sign(&header(), &c, SECRET)));
    let mut c = claims();
    c["aud"] = "someone-else".into();
    cases.push(("wrong aud", sign(&header(), &c, SECRET)));
    let mut c = claims();
    c["iss"] = "https://evil.example.com".into();
    cases.push(("wrong iss", sign(&header(), &c, SECRET)));
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iss");
    cases.push(("missing iss", sign(&header(), &c, SECRET)));
    // RS/HS confusion: an asymmetric alg name over an HMAC signature.
    cases.push((
        "RS256 header",
        sign(
            &json!({"alg": "RS256", "typ": "JWT", "kid": kid(SECRET)}),
            &claims(),
            SECRET,
        ),
    ));
    // Tampered payload under the original signature.
    let genuine = sign(&header(), &claims(), SECRET);
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut c = claims();
    c["groups"] = json!(["admins"]);
    cases.push((
        "tampered",
        format!("{}.{}.{}", parts[0], B64.encode(c.to_string()), parts[2]),
    ));
    cases.push(("garbage", "not.a.token".into()));
    for (what, token) in &cases {
        assert_eq!(
            status(&app, "authorization", &format!("Bearer {token}")).await,
            401,
            "{what}"
        );
    }
    // The right token in the wrong place.
    assert_eq!(status(&app, "x-api-key", &good).await, 401, "x-api-key");
    assert_eq!(status(&app, "authorization", &good).await, 401, "no scheme");
    assert_eq!(
        status(&app, "authorization", &format!("Basic {good}")).await,
        401,
        "basic"
    );

    let denied = audit
        .lines()
        .iter()
        .filter(|l| l.contains("\"evt\":\"auth.denied\""))
        .count();
    assert_eq!(denied, cases.len() + 3, "every refusal is audited");
    assert!(
        !audit.lines().iter().any(|l| l.contains(&good)),
        "no token in the audit log"
    );
}
