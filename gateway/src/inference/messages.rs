//! `POST /v1/messages`, as a pipeline: parse → policy → admission (one guard holds what it took)
//! → upstream attempts with failover before the first byte → relay (JSON or SSE, never buffered)
//! → settle and audit when the answer ends. The guard settles or releases exactly once, whichever
//! way the request ends.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use tokio::sync::OwnedSemaphorePermit;

use super::dispatch::{candidates, Attempts};
use super::record::Record;
use crate::api::body::RawObject;
use crate::api::usage::Usage;
use crate::auth::caller::Caller;
use crate::http::edge::RequestId;
use crate::http::error::ApiError;
use crate::shutdown::{CutWatch, Phase, Shutdown};
use crate::state::AppState;
use crate::upstream::bedrock::translate::betas;
use crate::upstream::{Call, Reply, SseStream, StreamOutcome};

/// What a client is told when the gateway stops while its request is still open.
const STOPPING: &str = "the gateway is restarting; retry the request";

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
    // The parsed fields are copies: the request's bytes (a large prompt, or the connection's read
    // buffer they share) are not held while the upstream answers.
    let body_len = body.len();
    drop(body);
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
    let guard = super::admit::admit(&state, &who, &rid, &model, &obj, body_len, &targets)
        .await?
        .share();
    let usage_headers = guard.headers();

    let mut attempts = Attempts::default();
    let mut obj = Some(obj);
    let last = targets.len() - 1;
    for (n, (index, provider_model)) in targets.into_iter().enumerate() {
        let Some(client) = state.upstreams.clients.get(index) else {
            return Err(ApiError::Internal);
        };
        let upstream = state.config.upstreams[index].name().to_owned();
        let body = if n == last {
            obj.take().unwrap_or_default()
        } else {
            obj.as_ref()
                .map(RawObject::clone_fields)
                .unwrap_or_default()
        };
        let permit = upstream_slot(&state).await?;
        let record = Record {
            state: state.clone(),
            request_id: rid.as_str().to_owned(),
            who: who.clone(),
            path: uri.path().to_owned(),
            model: model.clone(),
            upstream: upstream.clone(),
            provider_model: provider_model.clone(),
            started,
            fingerprints: fingerprints.clone(),
        };
        guard.serving(&upstream, &provider_model);
        // A stream's end report owns the permit, so a stream counts against the cap until it ends.
        let end = {
            let (guard, record) = (guard.clone(), record.clone());
            Box::new(move |out: StreamOutcome| {
                drop(permit);
                guard.finish(out.usage);
                // A tool call of an answer cut short is not run.
                if out.completed {
                    record.turn(out.tool_uses);
                }
                record.emit(
                    200,
                    out.usage,
                    serde_json::json!({"stream": true, "completed": out.completed, "errored": out.errored}),
                );
            })
        };
        let call = Call {
            body,
            model: provider_model,
            betas: &betas,
            stream,
            headers: &headers,
            path_and_query,
            tool_uses: state.aws_proxy.is_some(),
        };
        let attempt_started = Instant::now();
        let result = tokio::select! {
            r = client.messages(call, end) => r,
            () = state.shutdown.reached(Phase::Cut) => return Err(ApiError::Overloaded(STOPPING)),
        };
        observe(&state, &upstream, &model, attempt_started, &result);
        match result {
            Ok(Reply::Json {
                status,
                headers: h,
                body,
                usage,
                tool_uses,
            }) => {
                guard.finish(usage);
                record.turn(tool_uses);
                record.emit(status.as_u16(), usage, serde_json::json!({"stream": false}));
                let mut res = relay(status, h, Body::from(body), &rid);
                res.headers_mut().extend(usage_headers);
                return Ok(res);
            }
            Ok(Reply::Stream { headers: h, body }) => {
                let body = until_cut(body, &state.shutdown);
                let mut res = relay(StatusCode::OK, h, Body::from_stream(body), &rid);
                res.headers_mut().extend(usage_headers);
                return Ok(res);
            }
            Err(failure) => {
                tracing::warn!(upstream = %upstream, status = failure.status.as_u16(), "upstream attempt failed: {}", failure.detail);
                record.emit(
                    failure.status.as_u16(),
                    Usage::default(),
                    serde_json::json!({"error": failure.kind}),
                );
                if let Some(f) = attempts.record(failure) {
                    return Err(ApiError::Upstream(Box::new(f)));
                }
            }
        }
    }
    Err(attempts.exhausted(state.config.upstreams.len()))
}

/// One of this replica's upstream slots, waited for at most `timeouts.upstream_slot_wait_ms`.
pub(super) async fn upstream_slot(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    let wait = Duration::from_millis(state.config.timeouts.upstream_slot_wait_ms);
    let acquire = state.upstreams.permits.clone().acquire_owned();
    match tokio::time::timeout(wait, acquire).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) => Err(ApiError::Internal),
        Err(_) => {
            tracing::warn!(
                "every upstream slot stayed busy for {} ms: refusing (retryable)",
                wait.as_millis()
            );
            Err(ApiError::Overloaded(
                "the gateway is at its limit of requests in flight; retry shortly",
            ))
        }
    }
}

/// Ends `body` with an in-band `overloaded_error` once the stop reaches its cut, dropping the
/// upstream stream so its usage so far is reported and settled.
fn until_cut(body: SseStream, shutdown: &Shutdown) -> SseStream {
    UntilCut {
        body: Some(body),
        cut: shutdown.watch_cut(),
    }
    .boxed()
}

/// [`until_cut`]'s stream.
struct UntilCut {
    body: Option<SseStream>,
    cut: CutWatch,
}

impl Stream for UntilCut {
    type Item = <SseStream as Stream>::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        if this.cut.poll_cut(cx) {
            this.body = None;
            return Poll::Ready(Some(Ok(crate::api::sse::error(
                "overloaded_error",
                STOPPING,
            ))));
        }
        let next = body.poll_next_unpin(cx);
        if let Poll::Ready(None) = next {
            // Ended: not polled again.
            this.body = None;
        }
        next
    }
}

/// The attempt's duration and errors, as the gateway's own metrics.
fn observe(
    state: &AppState,
    upstream: &str,
    model: &str,
    started: Instant,
    result: &Result<Reply, crate::upstream::Failure>,
) {
    use opentelemetry::KeyValue;
    let outcome = match result {
        Ok(_) => "ok",
        Err(f) if f.failover => "failover",
        Err(_) => "error",
    };
    let model = crate::telemetry::otel::low_cardinality_model(model);
    state.otel.m.upstream_duration.record(
        started.elapsed().as_secs_f64() * 1000.0,
        &[
            KeyValue::new("upstream", upstream.to_owned()),
            KeyValue::new("model", model.clone()),
            KeyValue::new("outcome", outcome),
        ],
    );
    if let Err(f) = result {
        state.otel.m.upstream_errors.add(
            1,
            &[
                KeyValue::new("upstream", upstream.to_owned()),
                KeyValue::new("model", model),
                KeyValue::new("error_type", f.kind),
            ],
        );
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
