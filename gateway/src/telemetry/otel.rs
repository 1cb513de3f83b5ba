//! The gateway's own OpenTelemetry (the reference has none beyond its logs): request, upstream,
//! token, sign-in and relay metrics, and a span per request, exported over OTLP/HTTP to the
//! collector named in `telemetry.export`. Attributes stay low-cardinality: routes, statuses,
//! upstream names and catalog model ids, never users (those are in the audit log).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{
    MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig,
};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use super::relay::Relay;
use crate::api::usage::Usage;
use crate::config::Export;

/// The instruments.
#[derive(Debug, Clone)]
pub struct Instruments {
    /// `gateway.requests` {route, status}.
    pub requests: Counter<u64>,
    /// `gateway.request.duration` (ms) {route, status}.
    pub request_duration: Histogram<f64>,
    /// `gateway.upstream.duration` (ms) {upstream, model, outcome}.
    pub upstream_duration: Histogram<f64>,
    /// `gateway.upstream.errors` {upstream, model, error_type}.
    pub upstream_errors: Counter<u64>,
    /// `gateway.tokens` {model, type}.
    pub tokens: Counter<u64>,
    /// `gateway.cost` (USD) {model}.
    pub cost: Counter<f64>,
    /// `gateway.spend.blocked` {scope}.
    pub spend_blocked: Counter<u64>,
    /// `gateway.ratelimit.rejected` {limit}.
    pub ratelimit_rejected: Counter<u64>,
    /// `gateway.signins` {result}.
    pub signins: Counter<u64>,
    /// `gateway.aws.webhook` {result}: write-request announcements sent or failed.
    pub aws_webhook: Counter<u64>,
}

/// Providers (when exporting) and instruments.
pub struct Otel {
    meters: Option<SdkMeterProvider>,
    tracers: Option<SdkTracerProvider>,
    /// The tracer, when traces are exported.
    pub tracer: Option<SdkTracer>,
    /// The instruments (no-ops when nothing is exported).
    pub m: Instruments,
}

impl std::fmt::Debug for Otel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Otel(metrics: {}, traces: {})",
            self.meters.is_some(),
            self.tracers.is_some()
        )
    }
}

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("claude-gateway")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

fn headers(e: &Export) -> std::collections::HashMap<String, String> {
    e.headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect()
}

impl Otel {
    /// Sets up export per `export`, or no-op instruments without it. `relay` feeds the relay gauges.
    pub fn new(export: Option<&Export>, relay: Arc<Relay>) -> Result<Self, String> {
        let base = export.map(|e| e.endpoint.trim_end_matches('/').to_owned());
        let meters = match (export, &base) {
            (Some(e), Some(base)) if e.metrics => {
                let exporter = MetricExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(format!("{base}/v1/metrics"))
                    .with_headers(headers(e))
                    .with_timeout(Duration::from_secs(10))
                    .with_temporality(Temporality::Delta)
                    .build()
                    .map_err(|err| format!("telemetry.export: {err}"))?;
                let reader = PeriodicReader::builder(exporter)
                    .with_interval(Duration::from_secs(u64::from(e.interval_seconds)))
                    .build();
                Some(
                    SdkMeterProvider::builder()
                        .with_reader(reader)
                        .with_resource(resource())
                        .build(),
                )
            }
            _ => None,
        };
        let tracers = match (export, &base) {
            (Some(e), Some(base)) if e.traces => {
                let exporter = SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(format!("{base}/v1/traces"))
                    .with_headers(headers(e))
                    .with_timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|err| format!("telemetry.export: {err}"))?;
                Some(
                    SdkTracerProvider::builder()
                        .with_batch_exporter(exporter)
                        .with_resource(resource())
                        .build(),
                )
            }
            _ => None,
        };
        let meter: Meter = match &meters {
            Some(p) => p.meter("claude-gateway"),
            None => opentelemetry::global::meter("claude-gateway"),
        };
        let m = Instruments {
            requests: meter
                .u64_counter("gateway.requests")
                .with_description("HTTP requests answered")
                .build(),
            request_duration: meter
                .f64_histogram("gateway.request.duration")
                .with_unit("ms")
                .with_description("Time to response headers")
                .build(),
            upstream_duration: meter
                .f64_histogram("gateway.upstream.duration")
                .with_unit("ms")
                .with_description("Upstream attempt time to first byte")
                .build(),
            upstream_errors: meter
                .u64_counter("gateway.upstream.errors")
                .with_description("Failed upstream attempts")
                .build(),
            tokens: meter
                .u64_counter("gateway.tokens")
                .with_description("Tokens reported by upstreams")
                .build(),
            cost: meter
                .f64_counter("gateway.cost")
                .with_unit("USD")
                .with_description("Metered cost")
                .build(),
            spend_blocked: meter
                .u64_counter("gateway.spend.blocked")
                .with_description("Requests refused by a spend cap")
                .build(),
            ratelimit_rejected: meter
                .u64_counter("gateway.ratelimit.rejected")
                .with_description("Requests refused by a rate limit")
                .build(),
            signins: meter
                .u64_counter("gateway.signins")
                .with_description("Sign-in outcomes")
                .build(),
            aws_webhook: meter
                .u64_counter("gateway.aws.webhook")
                .with_description("Write-request announcements to the webhook, by result")
                .build(),
        };
        let r1 = relay.clone();
        let _dropped = meter
            .u64_observable_counter("gateway.relay.dropped")
            .with_description("Telemetry payloads dropped because too many were in flight")
            .with_callback(move |o| o.observe(r1.dropped.load(Ordering::Relaxed), &[]))
            .build();
        let _open = meter
            .u64_observable_gauge("gateway.relay.breakers_open")
            .with_description("Relay destinations currently paused by their breaker")
            .with_callback(move |o| o.observe(relay.open_breakers() as u64, &[]))
            .build();
        let tracer = tracers.as_ref().map(|p| p.tracer("claude-gateway"));
        Ok(Self {
            meters,
            tracers,
            tracer,
            m,
        })
    }

    /// Flushes and stops exporting (at shutdown).
    pub fn shutdown(&self) {
        if let Some(p) = &self.meters {
            let _ = p.force_flush();
            let _ = p.shutdown();
        }
        if let Some(p) = &self.tracers {
            let _ = p.force_flush();
            let _ = p.shutdown();
        }
    }

    /// Records the tokens of a finished request.
    pub fn tokens(&self, model: &str, u: &Usage) {
        let model = low_cardinality_model(model);
        for (kind, n) in [
            ("input", u.input_tokens),
            ("output", u.output_tokens),
            ("cache_read", u.cache_read_input_tokens),
            ("cache_write", u.cache_creation_input_tokens),
        ] {
            if n > 0 {
                self.m.tokens.add(
                    n,
                    &[
                        KeyValue::new("model", model.clone()),
                        KeyValue::new("type", kind),
                    ],
                );
            }
        }
    }
}

/// A catalog id for built-in models, `custom` for the operator's, `other` for anything else, so a
/// client cannot grow the metric's cardinality by inventing model names.
pub fn low_cardinality_model(model: &str) -> String {
    match crate::api::catalog::built_in(model) {
        Some(b) => b.id.to_owned(),
        None => "other".to_owned(),
    }
}
