//! A layer that counts and times every request by route and status class, and wraps it in a span
//! when traces are exported.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::{Span, Status, Tracer};
use opentelemetry::KeyValue;

use crate::state::AppState;

/// Layer function.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let mut span = state
        .otel
        .tracer
        .as_ref()
        .map(|t| t.start(format!("{method} {route}")));
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let attrs = [
        KeyValue::new("route", route.clone()),
        KeyValue::new("status", class),
    ];
    state.otel.m.requests.add(1, &attrs);
    state
        .otel
        .m
        .request_duration
        .record(started.elapsed().as_secs_f64() * 1000.0, &attrs);
    if let Some(s) = span.as_mut() {
        s.set_attribute(KeyValue::new("http.request.method", method));
        s.set_attribute(KeyValue::new("http.route", route));
        s.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 500 {
            s.set_status(Status::error("server error"));
        }
        s.end();
    }
    res
}
