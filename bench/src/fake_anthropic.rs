//! A stand-in for the Anthropic Messages API on loopback, in this process, for the gateway's
//! `provider: anthropic` upstream. It answers `POST /v1/messages` as the API does: it checks the
//! API key and `anthropic-version` header and parses the JSON body; a streamed answer is
//! server-sent events (`message_start`, `content_block_start`, `ping`, the text deltas,
//! `content_block_stop`, `message_delta` with the output usage, `message_stop`), one event per
//! write, paced like the Bedrock double's frames; a non-streaming answer is the whole message as
//! JSON, sent at once (as the double answers InvokeModel in the benchmark).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// The API key the stand-in accepts (the gateway's upstream key, and the direct calls' key).
pub const API_KEY: &str = "sk-ant-api03-bench-upstream-key-0123456789abcdef";

/// The running stand-in; it stops with the process.
pub struct FakeAnthropic {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

struct Script {
    /// The answer's events, `message_start` first (its model is replaced by the request's).
    events: Vec<Value>,
    between: Duration,
}

/// Starts the stand-in: `events` text deltas, `delay_ms` apart.
pub async fn start(events: u32, delay_ms: u64) -> Result<FakeAnthropic, String> {
    let text: String = (0..events).map(|i| format!("w{i} ")).collect();
    let mut reply = testkit::Reply::text("claude-sonnet-4-5", &text, 12, u64::from(events));
    for e in &mut reply.events {
        match e["type"].as_str() {
            // The API's own message ids and usage fields; Bedrock's invocation metrics are not
            // part of its stream.
            Some("message_start") => {
                e["message"]["id"] = "msg_01XFDUDYJgAACzvnptvVoYEL".into();
                e["message"]["usage"]["service_tier"] = "standard".into();
            }
            Some("message_stop") => *e = json!({"type": "message_stop"}),
            _ => {}
        }
    }
    let script = Arc::new(Script {
        events: reply.events,
        between: Duration::from_millis(delay_ms),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .with_state(script);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(FakeAnthropic {
        url: format!("http://{addr}"),
    })
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    with_api_headers(res)
}

/// The headers the API puts on every answer (the gateway strips the identifying ones).
fn with_api_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        "request-id",
        HeaderValue::from_static("req_011CSHoEeqs5C35K2UUqR7Fy"),
    );
    h.insert(
        "anthropic-organization-id",
        HeaderValue::from_static("00000000-0000-4000-8000-000000000000"),
    );
    res
}

async fn messages(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        );
    }
    if headers.get("anthropic-version").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "The request body is not valid JSON.",
        );
    };
    let (Some(model), true, true) = (
        req["model"].as_str(),
        req["max_tokens"].is_u64(),
        req["messages"].is_array(),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "model, max_tokens and messages are required",
        );
    };
    let mut events = script.events.clone();
    if let Some(first) = events.first_mut() {
        first["message"]["model"] = model.into();
    }
    if req["stream"].as_bool() != Some(true) {
        let message = testkit::message_from_events(&events);
        return json_response(StatusCode::OK, &message);
    }
    let between = script.between;
    let stream = futures_util::stream::unfold((events, 0usize), move |(events, i)| async move {
        let e = events.get(i)?;
        if i > 0 {
            tokio::time::sleep(between).await;
        }
        let kind = e["type"].as_str().unwrap_or("error");
        let mut out = format!(
            "event: {kind}\ndata: {}\n\n",
            testkit::eventstream::wire_json(e)
        );
        if kind == "content_block_start" && i == 1 {
            // The API pings once, right after the first block opens.
            out.push_str("event: ping\ndata: {\"type\": \"ping\"}\n\n");
        }
        Some((Ok::<_, std::io::Error>(Bytes::from(out)), (events, i + 1)))
    });
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    with_api_headers(res)
}
