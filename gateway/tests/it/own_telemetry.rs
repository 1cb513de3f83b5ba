//! The gateway's own metrics and traces arrive at an OTLP/HTTP receiver under the documented names.

use std::collections::BTreeSet;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::support::gateway::{config, token, Gateway};
use crate::support::otlp::Receiver;
use crate::support::pg::shared;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_traces_reach_the_collector() {
    let r = Receiver::start().await;
    let url = shared().new_db();
    let extra = format!("telemetry: {{export: {{endpoint: '{}', interval_seconds: 1, headers: {{x-otel-key: k1}}}}}}\n", r.url);
    let gw =
        tokio::task::spawn_blocking(move || Gateway::start(|port| config(port, &url, &extra), &[]))
            .await
            .unwrap();
    let client = crate::support::client();
    let base = format!("http://127.0.0.1:{}", gw.port);
    for _ in 0..3 {
        client.get(format!("{base}/healthz")).send().await.unwrap();
    }
    client
        .get(format!("{base}/v1/models"))
        .bearer_auth(token("m", &[]))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap();

    let mut names = BTreeSet::new();
    let mut spans = BTreeSet::new();
    let mut routes = BTreeSet::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for rec in r.received() {
            assert_eq!(rec.header("x-otel-key"), Some("k1"));
            assert_eq!(rec.header("content-type"), Some("application/x-protobuf"));
            if rec.path == "/v1/metrics" {
                let m = ExportMetricsServiceRequest::decode(rec.body.as_slice()).unwrap();
                for rm in &m.resource_metrics {
                    let service = rm
                        .resource
                        .as_ref()
                        .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                        .map(|a| format!("{:?}", a.value));
                    assert!(service.is_some_and(|s| s.contains("claude-gateway")));
                    for sm in &rm.scope_metrics {
                        for metric in &sm.metrics {
                            names.insert(metric.name.clone());
                            if let Some(
                                opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(sum),
                            ) = &metric.data
                            {
                                for p in &sum.data_points {
                                    for a in &p.attributes {
                                        if a.key == "route" {
                                            routes.insert(format!("{:?}", a.value));
                                        }
                                        assert!(
                                            !["sub", "email", "user.email"]
                                                .contains(&a.key.as_str()),
                                            "no per-user attributes on metrics"
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            } else if rec.path == "/v1/traces" {
                let t = ExportTraceServiceRequest::decode(rec.body.as_slice()).unwrap();
                for rs in &t.resource_spans {
                    for ss in &rs.scope_spans {
                        for s in &ss.spans {
                            spans.insert(s.name.clone());
                        }
                    }
                }
            }
        }
        if names.contains("gateway.requests") && spans.contains("GET /v1/models") {
            break;
        }
    }
    for want in [
        "gateway.requests",
        "gateway.request.duration",
        "gateway.relay.dropped",
        "gateway.relay.breakers_open",
    ] {
        assert!(names.contains(want), "{want} missing from {names:?}");
    }
    assert!(
        routes.iter().any(|r| r.contains("/healthz"))
            && routes.iter().any(|r| r.contains("/v1/models")),
        "{routes:?}"
    );
    assert!(
        spans.contains("GET /healthz") && spans.contains("GET /v1/models"),
        "{spans:?}"
    );
}
