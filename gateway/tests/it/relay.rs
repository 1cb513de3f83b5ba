//! The OTLP relay against real OTLP/HTTP receivers: unchanged bytes with the configured headers, no
//! slowdown from dead destinations, the circuit breaker, the in-flight cap under a flood, and the byte budget.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::support::gateway::{config, token_for, Gateway};
use crate::support::otlp::Receiver;
use crate::support::pg::{free_port, shared};

fn payload(email: &str) -> Vec<u8> {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "user.email".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(email.into())),
                    }),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

async fn gateway(forward: &str) -> Gateway {
    gateway_with(forward, "").await
}

/// Like [`gateway`], with `more` top-level YAML.
async fn gateway_with(forward: &str, more: &str) -> Gateway {
    let url = shared().new_db();
    let extra = format!("listen: {{host: 127.0.0.1, port: PORT, public_url: 'http://127.0.0.1:PORT'}}\ntelemetry:\n  forward_to:\n{forward}\n{more}");
    tokio::task::spawn_blocking(move || {
        Gateway::start(
            |port| {
                config(port, &url, &extra.replace("PORT", &port.to_string())).replacen(
                    &format!("listen: {{host: 127.0.0.1, port: {port}}}\n"),
                    "",
                    1,
                )
            },
            &[],
        )
    })
    .await
    .unwrap()
}

async fn post(gw: &Gateway, path: &str, body: Vec<u8>, content_type: &str) -> (u16, Duration) {
    let started = Instant::now();
    let res = crate::support::client()
        .post(format!("http://127.0.0.1:{}{path}", gw.port))
        .bearer_auth(token_for(
            "tele",
            &["eng"],
            Some(&format!("http://127.0.0.1:{}", gw.port)),
        ))
        .header("content-type", content_type)
        .header("content-encoding", "identity")
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_arrive_unchanged_with_the_configured_headers() {
    let a = Receiver::start().await;
    let b = Receiver::start().await;
    let gw = gateway(&format!(
        "    - {{url: '{}', headers: {{x-collector-key: key-a}}, metrics: true, logs: true}}\n    - {{url: '{}', headers: {{Authorization: 'Bearer collector-b'}}}}",
        a.url, b.url
    ))
    .await;
    let body = payload("dev@example.com");
    assert_eq!(
        post(&gw, "/v1/metrics", body.clone(), "application/x-protobuf")
            .await
            .0,
        200
    );
    assert!(
        a.wait_for(1, Duration::from_secs(5)).await && b.wait_for(1, Duration::from_secs(5)).await
    );
    let (ra, rb) = (&a.received()[0], &b.received()[0]);
    assert_eq!(ra.path, "/v1/metrics");
    assert_eq!(ra.body, body, "bytes unchanged");
    assert_eq!(rb.body, body);
    let decoded = ExportMetricsServiceRequest::decode(ra.body.as_slice()).unwrap();
    assert_eq!(decoded.resource_metrics.len(), 1);
    assert_eq!(ra.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(ra.header("content-encoding"), Some("identity"));
    assert_eq!(ra.header("x-collector-key"), Some("key-a"));
    assert!(
        ra.header("authorization").is_none(),
        "the client's bearer never leaves the gateway"
    );
    assert_eq!(rb.header("authorization"), Some("Bearer collector-b"));

    // Logs go only where logs are enabled; traces nowhere.
    let json_body = br#"{"resourceLogs":[]}"#.to_vec();
    assert_eq!(
        post(&gw, "/v1/logs", json_body.clone(), "application/json")
            .await
            .0,
        200
    );
    assert_eq!(
        post(&gw, "/v1/traces", json_body.clone(), "application/json")
            .await
            .0,
        200
    );
    assert!(a.wait_for(2, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.received().len(), 2);
    assert_eq!(a.received()[1].path, "/v1/logs");
    assert_eq!(
        a.received()[1].header("content-type"),
        Some("application/json")
    );
    assert_eq!(b.received().len(), 1);

    // Without a bearer: 401, nothing relayed.
    let res = crate::support::client()
        .post(format!("http://127.0.0.1:{}/v1/metrics", gw.port))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    gw.assert_no_secrets();
    assert!(
        !format!("{}{}", gw.stdout(), gw.stderr()).contains("collector-b"),
        "destination headers never reach the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_destinations_do_not_slow_the_client() {
    // One refuses connections, one accepts and never answers.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_url = format!("http://{}", hole.local_addr().unwrap());
    let gw = gateway(&format!(
        "    - {{url: '{dead}'}}\n    - {{url: '{hole_url}'}}"
    ))
    .await;
    for _ in 0..5 {
        let (status, took) = post(
            &gw,
            "/v1/metrics",
            payload("a@example.com"),
            "application/x-protobuf",
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            took < Duration::from_millis(500),
            "the client waited {took:?}"
        );
    }
    drop(hole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_after_five_failures_and_closes_after_a_pause() {
    let r = Receiver::start().await;
    r.answer(503);
    let gw = gateway(&format!("    - {{url: '{}'}}", r.url)).await;
    for i in 1..=5 {
        post(
            &gw,
            "/v1/metrics",
            payload("a@example.com"),
            "application/x-protobuf",
        )
        .await;
        assert!(r.wait_for(i, Duration::from_secs(5)).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    r.answer(200);
    for _ in 0..3 {
        post(
            &gw,
            "/v1/metrics",
            payload("a@example.com"),
            "application/x-protobuf",
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        r.received().len(),
        5,
        "paused: nothing delivered while open"
    );
    assert!(
        gw.stderr().contains("pausing deliveries for 30 s"),
        "{}",
        gw.stderr()
    );

    // Refused payloads during the pause would not count either way; after the pause one goes through
    // and the breaker closes.
    tokio::time::sleep(Duration::from_secs(30)).await;
    post(
        &gw,
        "/v1/metrics",
        payload("a@example.com"),
        "application/x-protobuf",
    )
    .await;
    assert!(
        r.wait_for(6, Duration::from_secs(5)).await,
        "delivered after the pause"
    );
    post(
        &gw,
        "/v1/metrics",
        payload("a@example.com"),
        "application/x-protobuf",
    )
    .await;
    assert!(r.wait_for(7, Duration::from_secs(5)).await, "closed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_stays_within_the_cap() {
    let r = Receiver::start().await;
    r.hold(Duration::from_secs(6));
    let gw = gateway(&format!("    - {{url: '{}'}}", r.url)).await;
    let client = crate::support::client();
    let t = token_for("flood", &[], Some(&format!("http://127.0.0.1:{}", gw.port)));
    let started = Instant::now();
    let sends = (0..400).map(|_| {
        client
            .post(format!("http://127.0.0.1:{}/v1/metrics", gw.port))
            .bearer_auth(&t)
            .header("content-type", "application/x-protobuf")
            .body(payload("a@example.com"))
            .send()
    });
    let results = futures_util::future::join_all(sends).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the client was not held by the slow destination"
    );
    let mut accepted = 0;
    for r in &results {
        let r = r.as_ref().unwrap();
        match r.status().as_u16() {
            200 => accepted += 1,
            // Past the cap the exporter is told to come back, never silently dropped.
            503 => assert_eq!(
                r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
                Some("2")
            ),
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        (100..=128).contains(&accepted),
        "{accepted} accepted; in flight {}; {}",
        r.max_in_flight(),
        gw.stderr()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(r.max_in_flight() <= 128, "{} in flight", r.max_in_flight());
    assert!(
        r.max_in_flight() >= 100,
        "the relay did use its budget: {}",
        r.max_in_flight()
    );
    assert!(
        gw.stderr().contains("payloads refused"),
        "refusals are counted and logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_holds_a_bounded_number_of_bytes() {
    let r = Receiver::start().await;
    r.hold(Duration::from_secs(3));
    let gw = gateway_with(
        &format!("    - {{url: '{}'}}", r.url),
        "limits: {max_telemetry_bytes: 262144, telemetry_in_flight_bytes: 524288}\n",
    )
    .await;
    let piece = vec![7u8; 200 << 10];
    let ct = "application/x-protobuf";
    // One payload over the per-payload limit: 413, with a length or chunked. Sent over raw TCP
    // that stops writing once the answer comes, since the gateway may close before the body ends.
    let (port, bearer) = (
        gw.port,
        token_for("tele", &[], Some(&format!("http://127.0.0.1:{}", gw.port))),
    );
    for (framing, total) in [
        (crate::support::flood::Framing::Length, 300 << 10),
        (crate::support::flood::Framing::Chunked, 8 << 20),
    ] {
        let extra = format!("Authorization: Bearer {bearer}\r\nContent-Type: {ct}\r\n");
        let (res, sent) = tokio::task::spawn_blocking(move || {
            crate::support::flood::post(port, "/v1/metrics", &extra, total, framing)
        })
        .await
        .unwrap();
        assert_eq!(res.status, 413, "{framing:?}: {res:?}");
        if total > 1 << 20 {
            assert!(sent < total, "{framing:?}: all {sent} bytes were taken");
        }
    }

    // Two payloads fit the 512 KiB budget while the destination holds them; a third does not
    // (it is refused while it arrives, once the budget runs out).
    assert_eq!(post(&gw, "/v1/metrics", piece.clone(), ct).await.0, 200);
    assert_eq!(post(&gw, "/v1/metrics", piece.clone(), ct).await.0, 200);
    assert!(r.wait_for(2, Duration::from_secs(5)).await);
    let third = crate::support::client()
        .post(format!("http://127.0.0.1:{}/v1/metrics", gw.port))
        .bearer_auth(token_for(
            "tele",
            &[],
            Some(&format!("http://127.0.0.1:{}", gw.port)),
        ))
        .header("content-type", ct)
        .body(piece.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 503);
    assert_eq!(
        third
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );

    // Once the held deliveries finish, the exporter's retry is taken.
    r.hold(Duration::ZERO);
    let mut status = 0;
    for _ in 0..100 {
        status = post(&gw, "/v1/metrics", piece.clone(), ct).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
    assert!(r.wait_for(3, Duration::from_secs(5)).await);
    assert_eq!(r.received().len(), 3, "the refused payloads never went out");
}
