//! Every header, limit and address rule of the HTTP layer, through the router without a socket.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use claude_gateway::auth::token::{Identity, SessionKeys};
use claude_gateway::clock::{ManualClock, SharedClock};
use claude_gateway::config::{self, MapEnv, Secret};
use claude_gateway::http::access::ConnPeer;
use claude_gateway::state::AppState;
use claude_gateway::store::Store;
use claude_gateway::telemetry::audit::Audit;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sqlx::postgres::PgConnectOptions;
use time::OffsetDateTime;
use tower::ServiceExt;

use crate::support::gateway::JWT_SECRET;

const BASE: &str = "
listen: {host: 127.0.0.1, port: 8080}
upstreams: [{provider: bedrock, region: us-east-1}]
session: {jwt_secret: JWT}
store: {postgres_url: 'postgres://nobody@127.0.0.1:1/none'}
oidc: {issuer: 'https://idp.example.com', client_id: c, client_secret: s}
";

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

pub(crate) struct Fixture {
    pub(crate) app: Router,
    audit: Audit,
}

pub(crate) fn fixture(extra: &str) -> Fixture {
    let yaml = format!("{}{extra}", BASE.replace("JWT", JWT_SECRET));
    fixture_of(&yaml, &MapEnv::new())
}

/// The router with its IdP at `issuer`: a closed loopback port for tests whose requests reach
/// the IdP (the default `idp.example.com` is never to be called).
pub(crate) fn fixture_with_idp(issuer: &str) -> Fixture {
    let yaml = BASE
        .replace("JWT", JWT_SECRET)
        .replace("https://idp.example.com", issuer);
    fixture_of(
        &yaml,
        &MapEnv::new().with_var(config::ALLOW_LOOPBACK_VAR, "1"),
    )
}

fn fixture_of(yaml: &str, env: &MapEnv) -> Fixture {
    let loaded = config::load(yaml, env).unwrap();
    let store = Store::lazy(
        PgConnectOptions::from_str("postgres://nobody@127.0.0.1:1/none").unwrap(),
        1,
        Duration::from_millis(200),
    );
    let audit = Audit::memory();
    let clock: SharedClock = Arc::new(ManualClock::new(now()));
    let state = AppState::new(
        loaded,
        audit.clone(),
        clock,
        store,
        claude_gateway::upstream::Upstreams::none(),
    )
    .unwrap();
    Fixture {
        app: claude_gateway::app::router(state),
        audit,
    }
}

fn token() -> String {
    let keys = SessionKeys::new(&[Secret::new(JWT_SECRET)], None);
    let who = Identity {
        sub: "u1".into(),
        email: Some("dev@example.com".into()),
        name: None,
        groups: vec![],
        mfa_at: None,
    };
    keys.mint(&who, now(), time::Duration::hours(1))
}

pub(crate) fn req(method: &str, uri: &str) -> http::request::Builder {
    let peer: SocketAddr = "192.0.2.10:5555".parse().unwrap();
    Request::builder()
        .method(method)
        .uri(uri)
        .extension(ConnPeer(peer))
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: String,
}

pub(crate) async fn send(app: &Router, r: Request<Body>) -> Answer {
    let res = app.clone().oneshot(r).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn assert_security_headers(a: &Answer) {
    for (k, v) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        assert_eq!(
            a.headers.get(k).and_then(|h| h.to_str().ok()),
            Some(v),
            "{k} on {}",
            a.status
        );
    }
    assert!(
        a.headers.contains_key("x-request-id"),
        "x-request-id on {}",
        a.status
    );
}

fn envelope(a: &Answer) -> serde_json::Value {
    serde_json::from_str(&a.body).unwrap_or_else(|_| panic!("not JSON: {}", a.body))
}

#[tokio::test]
async fn health_and_pages_carry_every_header() {
    let f = fixture("");
    let a = send(&f.app, req("GET", "/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "ok"));
    assert_security_headers(&a);

    let a = send(&f.app, req("GET", "/").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_security_headers(&a);
    let csp = a.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'")
            && csp.contains("style-src 'sha256-")
            && !csp.contains("unsafe")
    );
    assert!(a.body.contains(env!("CARGO_PKG_VERSION")) && a.body.contains("idp.example.com"));

    let a = send(&f.app, req("GET", "/protocol").body(Body::empty()).unwrap()).await;
    assert!(a.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    assert!(a.body.contains("/oauth/device_authorization"));
}

#[tokio::test]
async fn request_ids_are_echoed_only_when_safe() {
    let f = fixture("");
    let a = send(
        &f.app,
        req("GET", "/healthz")
            .header("x-client-request-id", "cli-1234_abc.x")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.headers["x-request-id"], "cli-1234_abc.x");
    let a = send(
        &f.app,
        req("GET", "/healthz")
            .header("x-client-request-id", "<b>bad</b>")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let id = a.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_ne!(id, "<b>bad</b>");
}

#[tokio::test]
async fn unknown_routes_are_401_without_a_valid_bearer_and_404_with_one() {
    let f = fixture("");
    let a = send(&f.app, req("GET", "/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_security_headers(&a);
    assert_eq!(a.headers["x-should-retry"], "false");
    let e = envelope(&a);
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "authentication_error");
    assert_eq!(e["error"]["message"], "invalid token");
    assert_eq!(e["request_id"], a.headers["x-request-id"].to_str().unwrap());

    let t = token();
    let a = send(
        &f.app,
        req("GET", "/nope")
            .header("authorization", format!("Bearer {t}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(envelope(&a)["error"]["type"], "not_found_error");

    for (name, value) in [
        ("authorization", format!("Bearer {t}x")),
        ("authorization", format!("Basic {t}")),
        ("x-api-key", t.clone()),
    ] {
        let a = send(
            &f.app,
            req("GET", "/nope")
                .header(name, value)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{name}");
    }
}

#[tokio::test]
async fn body_size_is_checked_from_the_head() {
    let f = fixture("limits: {max_request_bytes: 2000}\n");
    let a = send(
        &f.app,
        req("POST", "/v1/messages")
            .header("content-length", "2001")
            .body(Body::from(vec![b'x'; 2001]))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_security_headers(&a);
    assert_eq!(envelope(&a)["error"]["type"], "request_too_large");

    let a = send(
        &f.app,
        req("POST", "/v1/messages")
            .header("content-length", "2000")
            .body(Body::from(vec![b'x'; 2000]))
            .unwrap(),
    )
    .await;
    assert_ne!(a.status, StatusCode::PAYLOAD_TOO_LARGE);

    let a = send(
        &f.app,
        req("POST", "/v1/messages")
            .header("content-length", "12abc")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a non-numeric length is refused"
    );
}

#[tokio::test]
async fn inference_bodies_need_a_length() {
    let f = fixture("");
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        let a = send(
            &f.app,
            req("POST", path)
                .header("transfer-encoding", "chunked")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, StatusCode::LENGTH_REQUIRED, "{path}");
        assert_security_headers(&a);
    }
    let a = send(
        &f.app,
        req("POST", "/v1/other")
            .header("transfer-encoding", "chunked")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::UNAUTHORIZED,
        "other routes take chunked bodies"
    );
}

#[tokio::test]
async fn url_and_header_limits() {
    let f = fixture("limits: {max_url_length: 64, max_request_header_bytes: 600}\n");
    let long = format!("/healthz?{}", "a".repeat(60));
    let a = send(&f.app, req("GET", &long).body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::URI_TOO_LONG);
    assert_security_headers(&a);
    let a = send(
        &f.app,
        req("GET", "/healthz?a=1").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);

    let a = send(
        &f.app,
        req("GET", "/healthz")
            .header("x-big", "b".repeat(600))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let a = send(
        &f.app,
        req("GET", "/healthz")
            .header("x-small", "b".repeat(100))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
}

fn from(ip: &str) -> http::request::Builder {
    let peer: SocketAddr = format!("{ip}:4444").parse().unwrap();
    Request::builder().method("GET").extension(ConnPeer(peer))
}

#[tokio::test]
async fn deny_list_applies_everywhere_and_is_audited() {
    let f = fixture("access_control: {deny_cidrs: [192.0.2.0/24]}\n");
    for path in ["/healthz", "/readyz", "/", "/v1/messages"] {
        let a = send(
            &f.app,
            from("192.0.2.7").uri(path).body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{path}"
        );
        assert_security_headers(&a);
    }
    let a = send(
        &f.app,
        from("198.51.100.1")
            .uri("/healthz")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let lines = f.audit.lines();
    assert_eq!(lines.len(), 4);
    let e: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(e["evt"], "access.denied");
    assert_eq!(e["reason"], "ip_denylist");
    assert_eq!(e["client_ip"], "192.0.2.7");
    assert!(e["request_id"].is_string());

    // A refused client's path of any length is audited cut to 1 KiB.
    let encoded = format!("/{}", "%C3%A9".repeat(10_000));
    send(
        &f.app,
        from("192.0.2.7").uri(&encoded).body(Body::empty()).unwrap(),
    )
    .await;
    let lines = f.audit.lines();
    let e: serde_json::Value = serde_json::from_str(&lines[lines.len() - 1]).unwrap();
    let path = e["path"].as_str().unwrap();
    assert!(
        path.len() <= 1024 && encoded.starts_with(path),
        "{}",
        path.len()
    );
    assert!(path.len() > 1000);
}

#[tokio::test]
async fn allow_list_is_default_deny_but_spares_health_checks() {
    let f = fixture("access_control: {allow_cidrs: [10.0.0.0/8]}\n");
    let a = send(
        &f.app,
        from("10.1.2.3").uri("/").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = send(
        &f.app,
        from("192.0.2.7").uri("/").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(
        &f.app,
        from("192.0.2.7")
            .uri("/healthz")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let e: serde_json::Value = serde_json::from_str(&f.audit.lines()[0]).unwrap();
    assert_eq!(e["reason"], "ip_not_allowlisted");
}

#[tokio::test]
async fn forwarded_for_counts_only_through_trusted_proxies() {
    let yaml = format!(
        "{}access_control: {{allow_cidrs: [203.0.113.0/24]}}\n",
        BASE.replace("JWT", JWT_SECRET)
            .replace("port: 8080}", "port: 8080, trusted_proxies: [10.0.0.0/8]}")
    );
    let loaded = config::load(&yaml, &MapEnv::new()).unwrap();
    let store = Store::lazy(
        PgConnectOptions::from_str("postgres://x@127.0.0.1:1/x").unwrap(),
        1,
        Duration::from_millis(100),
    );
    let audit = Audit::memory();
    let app = claude_gateway::app::router(
        AppState::new(
            loaded,
            audit.clone(),
            Arc::new(ManualClock::new(now())),
            store,
            claude_gateway::upstream::Upstreams::none(),
        )
        .unwrap(),
    );

    // Through the trusted proxy: the forwarded client is allowed.
    let a = send(
        &app,
        from("10.0.0.5")
            .uri("/")
            .header("x-forwarded-for", "203.0.113.9")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // A spoofed entry to the left of the real client does not help.
    let a = send(
        &app,
        from("10.0.0.5")
            .uri("/")
            .header("x-forwarded-for", "203.0.113.9, 198.51.100.4")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // From an untrusted peer the header is ignored.
    let a = send(
        &app,
        from("198.51.100.4")
            .uri("/")
            .header("x-forwarded-for", "203.0.113.9")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Garbage from a trusted proxy is refused when rules apply.
    let a = send(
        &app,
        from("10.0.0.5")
            .uri("/")
            .header("x-forwarded-for", "not-an-ip")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let last: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["reason"], "xff_unparseable");
    assert_eq!(last["xff_entry"], "not-an-ip");
}
