//! `POST /v1/messages`: parse just enough of the body, pick upstreams, fail over before the first
//! byte, then relay the answer (JSON or SSE, never buffered) and audit it when it ends.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};

use super::body::RawObject;
use super::dispatch::{candidates, Attempts};
use super::usage::Usage;
use crate::auth::caller::Caller;
use crate::auth::token::Identity;
use crate::http::edge::RequestId;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::upstream::bedrock::translate::betas;
use crate::upstream::{Call, Reply, StreamOutcome};

/// What the audit `inference` event records.
struct Record {
    state: AppState,
    request_id: String,
    who: Identity,
    path: String,
    model: String,
    upstream: String,
    provider_model: String,
    started: Instant,
    fingerprints: Option<crate::telemetry::prompt_hash::Fingerprints>,
}

impl Record {
    /// The list-price (or contracted) cost of `usage` at this attempt's upstream, in USD.
    fn cost_usd(&self, usage: &Usage) -> f64 {
        let (rates, _) = self
            .state
            .prices
            .rates(&self.upstream, &self.provider_model);
        self.state.prices.cost_micros(&rates, usage, 0) as f64 / 1e6
    }

    fn emit(&self, status: u16, usage: Usage, extra: serde_json::Value) {
        let mut fields = serde_json::json!({
            "request_id": self.request_id,
            "sub": self.who.sub,
            "email": self.who.email,
            "groups": self.who.groups,
            "path": self.path,
            "model": self.model,
            "upstream": self.upstream,
            "status": status,
            "ms": self.started.elapsed().as_millis() as u64,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_input_tokens,
            "cache_write_tokens": usage.cache_creation_input_tokens,
            "cost_usd": self.cost_usd(&usage),
        });
        if let (Some(obj), serde_json::Value::Object(more)) = (fields.as_object_mut(), extra) {
            obj.extend(more);
        }
        if let (Some(obj), Some(f)) = (fields.as_object_mut(), &self.fingerprints) {
            obj.insert("prompt_hmac".into(), f.prompt.clone().into());
            obj.insert("tool_input_hmacs".into(), f.tool_inputs.clone().into());
        }
        self.state.otel.tokens(&self.model, &usage);
        self.state
            .audit
            .emit("inference", self.state.clock.now(), fields);
    }
}

/// The handler.
pub async fn messages(
    State(state): State<AppState>,
    Caller(who): Caller,
    Extension(rid): Extension<RequestId>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mut obj = RawObject::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let model = obj
        .model()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let stream = obj.stream();
    super::policy_gate::apply(&state, &who, &rid, &model, &mut obj)?;
    let fingerprints = state
        .config
        .audit
        .as_ref()
        .and_then(|a| a.prompt_hash_key.as_ref())
        .map(|k| crate::telemetry::prompt_hash::fingerprints(k.expose(), &obj));
    let betas = betas(headers.get("anthropic-beta").and_then(|v| v.to_str().ok()));
    let path_and_query = uri.path_and_query().map_or("/v1/messages", |p| p.as_str());
    let targets = candidates(&state.config, &model)?;
    // Rate limits first: a refused request reserves nothing.
    let limits = state
        .policies
        .as_ref()
        .and_then(|p| p.effective(&who).and_then(|e| p.rate_limits(&e)));
    let held = match &limits {
        Some((index, l)) => Some(
            crate::spend::ratelimit::admit(&state, &index.to_string(), &who, l, &obj, stream)
                .await?,
        ),
        None => None,
    };
    // Admission: reserve the worst case under the caller's caps before anything goes upstream.
    let ticket = match (&state.meter, targets.first()) {
        (Some(meter), Some((first, provider_model))) => {
            let (rates, _) = meter
                .book
                .rates(state.config.upstreams[*first].name(), provider_model);
            let max_tokens = obj.max_tokens().unwrap_or(4096);
            match meter
                .admit(&state, &who, &rates, body.len(), max_tokens)
                .await
            {
                Ok(t) => Some(t),
                Err(e) => {
                    finish_limits(&state, held, 0);
                    return Err(e);
                }
            }
        }
        _ => None,
    };
    let usage_headers = ticket
        .as_ref()
        .map(|t| t.headers.clone())
        .unwrap_or_default();

    let mut attempts = Attempts::default();
    let mut obj = Some(obj);
    let last = targets.len() - 1;
    for (n, (index, provider_model)) in targets.into_iter().enumerate() {
        let upstream_name = state.config.upstreams[index].name().to_owned();
        let body = if n == last {
            obj.take().unwrap_or_default()
        } else {
            obj.as_ref()
                .map(RawObject::clone_fields)
                .unwrap_or_default()
        };
        let permit = state
            .upstreams
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal)?;
        let record = Record {
            state: state.clone(),
            request_id: rid.as_str().to_owned(),
            who: who.clone(),
            path: uri.path().to_owned(),
            model: model.clone(),
            upstream: upstream_name.clone(),
            provider_model: provider_model.clone(),
            started,
            fingerprints: fingerprints.clone(),
        };
        let provider_model_for_price = provider_model.clone();
        let call = Call {
            body,
            model: provider_model,
            betas: &betas,
            stream,
            headers: &headers,
            path_and_query,
        };
        let Some(client) = state.upstreams.clients.get(index) else {
            return Err(ApiError::Internal);
        };
        // The stream's end report owns the permit, so a stream counts against the cap until it ends.
        let end_record = Record {
            upstream: upstream_name.clone(),
            ..record.clone_shallow()
        };
        let settle = settlement(
            &state,
            ticket.clone(),
            held.clone(),
            &upstream_name,
            &provider_model_for_price,
            &model,
        );
        let end = Box::new(move |out: StreamOutcome| {
            drop(permit);
            settle(out.usage);
            end_record.emit(200, out.usage, serde_json::json!({"stream": true, "completed": out.completed, "errored": out.errored}));
        });
        let attempt_started = Instant::now();
        let result = client.messages(call, end).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(f) if f.failover => "failover",
            Err(_) => "error",
        };
        let metric_model = crate::telemetry::otel::low_cardinality_model(&model);
        state.otel.m.upstream_duration.record(
            attempt_started.elapsed().as_secs_f64() * 1000.0,
            &[
                opentelemetry::KeyValue::new("upstream", upstream_name.clone()),
                opentelemetry::KeyValue::new("model", metric_model.clone()),
                opentelemetry::KeyValue::new("outcome", outcome),
            ],
        );
        if let Err(f) = &result {
            state.otel.m.upstream_errors.add(
                1,
                &[
                    opentelemetry::KeyValue::new("upstream", upstream_name.clone()),
                    opentelemetry::KeyValue::new("model", metric_model),
                    opentelemetry::KeyValue::new("error_type", f.kind),
                ],
            );
        }
        match result {
            Ok(Reply::Json {
                status,
                headers: h,
                body,
                usage,
            }) => {
                settlement(
                    &state,
                    ticket.clone(),
                    held.clone(),
                    &upstream_name,
                    &provider_model_for_price,
                    &model,
                )(usage);
                record.emit(status.as_u16(), usage, serde_json::json!({"stream": false}));
                let mut res = relay(status, h, Body::from(body), &rid);
                res.headers_mut().extend(usage_headers.clone());
                return Ok(res);
            }
            Ok(Reply::Stream { headers: h, body }) => {
                let mut res = relay(StatusCode::OK, h, Body::from_stream(body), &rid);
                res.headers_mut().extend(usage_headers.clone());
                return Ok(res);
            }
            Err(failure) => {
                tracing::warn!(upstream = %upstream_name, status = failure.status.as_u16(), "upstream attempt failed: {}", failure.detail);
                record.emit(
                    failure.status.as_u16(),
                    Usage::default(),
                    serde_json::json!({"error": failure.kind}),
                );
                if let Some(f) = attempts.record(failure) {
                    release(&state, ticket);
                    finish_limits(&state, held, 0);
                    return Err(ApiError::Upstream(Box::new(f)));
                }
            }
        }
    }
    release(&state, ticket);
    finish_limits(&state, held, 0);
    Err(attempts.exhausted(state.config.upstreams.len()))
}

/// The settlement of an attempt at `upstream` serving `provider_model`: once called with the
/// usage, the ticket settles at that cost.
fn settlement(
    state: &AppState,
    ticket: Option<crate::spend::admission::Ticket>,
    held: Option<crate::spend::ratelimit::Held>,
    upstream: &str,
    provider_model: &str,
    model: &str,
) -> impl FnOnce(Usage) + Send + 'static {
    let meter = state.meter.clone();
    let (state, upstream, provider_model, model) = (
        state.clone(),
        upstream.to_owned(),
        provider_model.to_owned(),
        model.to_owned(),
    );
    move |usage: Usage| {
        finish_limits(
            &state,
            held,
            usage.input_tokens + usage.output_tokens + usage.cache_creation_input_tokens,
        );
        if let (Some(meter), Some(ticket)) = (meter, ticket) {
            let (rates, known) = meter.book.rates(&upstream, &provider_model);
            if !known {
                tracing::warn!(model = ?provider_model, "no price for this model: metered at the unknown-model tier");
            }
            meter.settle(&state, ticket, rates, &model, usage);
        }
    }
}

/// Counts a finished request's tokens against its rate limits and frees its stream slots.
fn finish_limits(state: &AppState, held: Option<crate::spend::ratelimit::Held>, tokens: u64) {
    if let Some(held) = held {
        let state = state.clone();
        tokio::spawn(async move { crate::spend::ratelimit::finish(&state, &held, tokens).await });
    }
}

/// Releases a reservation when no upstream served the request.
fn release(state: &AppState, ticket: Option<crate::spend::admission::Ticket>) {
    if let (Some(meter), Some(ticket)) = (&state.meter, ticket) {
        meter.settle(
            state,
            ticket,
            crate::spend::prices::UNKNOWN,
            "none",
            Usage::default(),
        );
    }
}

impl Record {
    fn clone_shallow(&self) -> Record {
        Record {
            state: self.state.clone(),
            request_id: self.request_id.clone(),
            who: self.who.clone(),
            path: self.path.clone(),
            model: self.model.clone(),
            upstream: self.upstream.clone(),
            provider_model: self.provider_model.clone(),
            started: self.started,
            fingerprints: self.fingerprints.clone(),
        }
    }
}

/// The relayed answer, with the gateway's request id in place of the upstream's.
fn relay(status: StatusCode, headers: HeaderMap, body: Body, rid: &RequestId) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().extend(headers);
    res.headers_mut().insert("request-id", rid.0.clone());
    if !res.headers().contains_key(http::header::CONTENT_TYPE) {
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    res
}
