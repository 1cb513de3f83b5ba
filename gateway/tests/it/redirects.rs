//! Upstreams that answer with a redirect: the gateway never follows one, so neither the request
//! nor its credentials (`x-api-key`, a destination's headers) reach the host it points to, and
//! the client sees an upstream error rather than the redirect.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header::LOCATION, StatusCode};
use axum::Router;
use serde_json::json;

use crate::support::gateway::{config_with, token, token_for, Gateway};
use crate::support::pg::shared;

/// A listener that counts the connections made to it and answers none.
async fn elsewhere() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (url, seen)
}

/// A server that answers every request `307` to `target` (same path), counting what it got.
async fn redirector(target: String) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().fallback(move |uri: axum::http::Uri| {
        let target = format!("{target}{}", uri.path());
        counter.fetch_add(1, Ordering::SeqCst);
        async move { (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, target)]) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, hits)
}

async fn start(upstreams: String, extra: String) -> Gateway {
    let url = shared().new_db();
    tokio::task::spawn_blocking(move || {
        Gateway::start(
            |port| {
                let yaml = config_with(
                    port,
                    &url,
                    &upstreams,
                    &extra.replace("PORT", &port.to_string()),
                );
                if extra.contains("listen:") {
                    // The test's own listen block replaces the default one.
                    yaml.replacen(
                        &format!("listen: {{host: 127.0.0.1, port: {port}}}\n"),
                        "",
                        1,
                    )
                } else {
                    yaml
                }
            },
            &[],
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_redirect_is_an_upstream_error_and_is_not_followed() {
    let (other, seen) = elsewhere().await;
    let (upstream, hits) = redirector(other).await;
    let gw = start(
        format!(
            "  - provider: anthropic\n    base_url: {upstream}\n    auth: {{api_key: sk-ant-redirect-test-key}}"
        ),
        String::new(),
    )
    .await;
    let res = crate::support::client()
        .post(format!("http://127.0.0.1:{}/v1/messages", gw.port))
        .bearer_auth(token("dev1", &["eng"]))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    assert!(
        res.headers().get(LOCATION).is_none(),
        "the redirect is not passed on"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the upstream was asked once"
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "the request (and its x-api-key) went where the redirect pointed"
    );
    gw.assert_absent(&["sk-ant-redirect-test-key"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telemetry_destination_redirect_is_not_followed() {
    let (other, seen) = elsewhere().await;
    let (dest, hits) = redirector(other).await;
    let gw = start(
        "  - provider: bedrock\n    region: us-east-1\n    auth: {aws_access_key_id: AKIATESTTESTTEST, aws_secret_access_key: test-aws-secret}".into(),
        format!("listen: {{host: 127.0.0.1, port: PORT, public_url: 'http://127.0.0.1:PORT'}}\ntelemetry:\n  forward_to:\n    - {{url: '{dest}', headers: {{x-collector-key: collector-secret}}}}\n"),
    )
    .await;
    let res = crate::support::client()
        .post(format!("http://127.0.0.1:{}/v1/metrics", gw.port))
        .bearer_auth(token_for(
            "tele",
            &[],
            Some(&format!("http://127.0.0.1:{}", gw.port)),
        ))
        .header("content-type", "application/x-protobuf")
        .body(vec![1u8, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut waited = 0;
    while hits.load(Ordering::SeqCst) == 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the destination was asked");
    // A follow would come straight after the 307; give it the time it would take.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "the payload followed the redirect"
    );
}
