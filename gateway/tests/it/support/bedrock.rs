//! The Bedrock runtime test double: a loopback server that speaks Bedrock's REST API as the AWS
//! SDK expects it. It verifies SigV4 signatures (recomputed here from the request), serves
//! InvokeModel, InvokeModelWithResponseStream and CountTokens, writes the binary event stream by
//! hand (prelude, typed headers, both CRC32s), and can be told to fail, throttle, stall, break a
//! stream or raise an exception inside it.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::{digest, hmac};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

/// Credentials and behaviour of a double.
#[derive(Clone)]
pub struct Options {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    pub default_behavior: Behavior,
    /// Serve unsigned requests too (the benchmark's direct baseline).
    pub accept_unsigned: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            access_key_id: "AKIDFAKEBEDROCK".into(),
            secret_access_key: "fake-bedrock-secret-key".into(),
            region: "us-east-1".into(),
            default_behavior: Behavior::Reply(Reply::text(
                "m",
                "Hello from the Bedrock double.",
                12,
                8,
            )),
            accept_unsigned: false,
        }
    }
}

/// What to do with a request.
#[derive(Clone, Debug)]
pub enum Behavior {
    Reply(Reply),
    Error {
        status: u16,
        error_type: String,
        message: String,
    },
    StallBeforeHeaders(Duration),
    BreakAfterEvents(usize),
    ExceptionAfterEvents {
        after: usize,
        exception_type: String,
        message: String,
    },
}

/// A scripted answer: Anthropic stream events.
#[derive(Clone, Debug)]
pub struct Reply {
    pub events: Vec<Value>,
    pub delay_between: Duration,
    pub first_delay: Duration,
}

impl Reply {
    /// A one-block text answer, its text split into words.
    pub fn text(model: &str, text: &str, input_tokens: u64, output_tokens: u64) -> Reply {
        let mut events = vec![
            json!({"type": "message_start", "message": {"id": "msg_bdrk_01", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ];
        for piece in text.split_inclusive(' ') {
            events.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}));
        }
        events.push(json!({"type": "content_block_stop", "index": 0}));
        events.push(json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}));
        events.push(json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": input_tokens, "outputTokenCount": output_tokens, "invocationLatency": 42, "firstByteLatency": 7}}));
        Reply {
            events,
            delay_between: Duration::ZERO,
            first_delay: Duration::ZERO,
        }
    }

    /// Thinking (with its signature), text, and a tool call whose input arrives in pieces.
    pub fn multi_block(model: &str) -> Reply {
        let events = vec![
            json!({"type": "message_start", "message": {"id": "msg_bdrk_02", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 120, "output_tokens": 1, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 50}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "The user wants a file listing."}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCkYIARgCIkB"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Listing the directory."}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {}}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"command\": "}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "\"ls -la\"}"}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 87}}),
            json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 120, "outputTokenCount": 87, "invocationLatency": 900, "firstByteLatency": 300}}),
        ];
        Reply {
            events,
            delay_between: Duration::ZERO,
            first_delay: Duration::ZERO,
        }
    }
}

/// The complete message a list of stream events adds up to.
pub fn message_from_events(events: &[Value]) -> Value {
    let mut msg = events
        .first()
        .and_then(|e| e.get("message"))
        .cloned()
        .unwrap_or(json!({}));
    let mut blocks: Vec<Value> = Vec::new();
    let mut partial: Vec<String> = Vec::new();
    for e in events {
        match e["type"].as_str().unwrap_or_default() {
            "content_block_start" => {
                blocks.push(e["content_block"].clone());
                partial.push(String::new());
            }
            "content_block_delta" => {
                let (Some(b), Some(p)) = (blocks.last_mut(), partial.last_mut()) else {
                    continue;
                };
                let d = &e["delta"];
                match d["type"].as_str().unwrap_or_default() {
                    "text_delta" => {
                        b["text"] = format!(
                            "{}{}",
                            b["text"].as_str().unwrap_or_default(),
                            d["text"].as_str().unwrap_or_default()
                        )
                        .into()
                    }
                    "thinking_delta" => {
                        b["thinking"] = format!(
                            "{}{}",
                            b["thinking"].as_str().unwrap_or_default(),
                            d["thinking"].as_str().unwrap_or_default()
                        )
                        .into()
                    }
                    "signature_delta" => b["signature"] = d["signature"].clone(),
                    "input_json_delta" => {
                        p.push_str(d["partial_json"].as_str().unwrap_or_default())
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let (Some(b), Some(p)) = (blocks.last_mut(), partial.last()) {
                    if b["type"] == "tool_use" && !p.is_empty() {
                        b["input"] = serde_json::from_str(p).unwrap_or(json!({}));
                    }
                }
            }
            "message_delta" => {
                msg["stop_reason"] = e["delta"]["stop_reason"].clone();
                msg["stop_sequence"] = e["delta"]["stop_sequence"].clone();
                if let Some(o) = e["usage"]["output_tokens"].as_u64() {
                    msg["usage"]["output_tokens"] = o.into();
                }
            }
            _ => {}
        }
    }
    msg["content"] = Value::Array(blocks);
    msg
}

/// Which Bedrock operation a request was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Invoke,
    InvokeStream,
    CountTokens,
    Unknown,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub model_id: String,
    pub operation: Operation,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub signature_valid: bool,
}

struct Inner {
    opts: Options,
    queue: Mutex<VecDeque<Behavior>>,
    recorded: Mutex<Vec<Recorded>>,
    open: AtomicUsize,
}

/// A running double.
pub struct FakeBedrock {
    url: String,
    inner: Arc<Inner>,
}

impl FakeBedrock {
    pub async fn start(opts: Options) -> std::io::Result<FakeBedrock> {
        let inner = Arc::new(Inner {
            opts,
            queue: Mutex::new(VecDeque::new()),
            recorded: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = Router::new().fallback(handle).with_state(inner.clone());
        // Small event frames must leave at once: no Nagle delay on the double's side either.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeBedrock { url, inner })
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.recorded.lock().unwrap().clone()
    }

    pub fn push(&self, b: Behavior) {
        self.inner.queue.lock().unwrap().push_back(b);
    }

    pub fn open_streams(&self) -> usize {
        self.inner.open.load(Ordering::SeqCst)
    }
}

/// Every character but unreserved ones is encoded (SigV4's URI encoding).
const SIGV4: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac_sign(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        .as_ref()
        .to_vec()
}

/// Recomputes the SigV4 signature of a request and compares it with the one it carries.
fn sigv4_valid(
    opts: &Options,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> bool {
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return false;
    };
    let field = |name: &str| {
        rest.split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(name))
            .map(str::to_owned)
    };
    let (Some(credential), Some(signed), Some(signature)) = (
        field("Credential="),
        field("SignedHeaders="),
        field("Signature="),
    ) else {
        return false;
    };
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5
        || parts[0] != opts.access_key_id
        || parts[2] != opts.region
        || parts[3] != "bedrock"
        || parts[4] != "aws4_request"
    {
        return false;
    }
    let Some(amz_date) = headers.get("x-amz-date").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // Non-S3 services sign the path encoded a second time.
    let canonical_uri: String = uri
        .path()
        .split('/')
        .map(|seg| utf8_percent_encode(seg, SIGV4).to_string())
        .collect::<Vec<_>>()
        .join("/");
    let mut query: Vec<(String, String)> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|q| !q.is_empty())
        .map(|q| {
            let (k, v) = q.split_once('=').unwrap_or((q, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for name in signed.split(';') {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| hex(digest::digest(&digest::SHA256, body).as_ref()));
    let canonical = format!(
        "{}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed}\n{payload_hash}",
        method.as_str()
    );
    let scope = format!("{}/{}/bedrock/aws4_request", parts[1], opts.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let k_date = hmac_sign(
        format!("AWS4{}", opts.secret_access_key).as_bytes(),
        parts[1],
    );
    let k_region = hmac_sign(&k_date, &opts.region);
    let k_service = hmac_sign(&k_region, "bedrock");
    let k_signing = hmac_sign(&k_service, "aws4_request");
    let expected = hex(&hmac_sign(&k_signing, &to_sign));
    aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), signature.as_bytes())
        .is_ok()
}

/// One event-stream message: prelude (total length, headers length, prelude CRC), string-typed
/// headers, payload, message CRC.
pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&out[..8]).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn chunk(event: &Value) -> Vec<u8> {
    let payload = json!({"bytes": B64.encode(event.to_string()), "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"});
    frame(
        &[
            (":event-type", "chunk"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    let mut res = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"message": message}).to_string(),
    )
        .into_response();
    res.headers_mut()
        .insert("x-amzn-errortype", kind.parse().unwrap());
    res.headers_mut().insert(
        "x-amzn-requestid",
        "00000000-0000-4000-8000-000000000001".parse().unwrap(),
    );
    res.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    res
}

struct OpenGuard(Arc<Inner>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (model_enc, op) = path
        .strip_prefix("/model/")
        .and_then(|r| r.rsplit_once('/'))
        .unwrap_or(("", ""));
    let model_id = percent_decode_str(model_enc)
        .decode_utf8_lossy()
        .into_owned();
    let operation = match op {
        "invoke" => Operation::Invoke,
        "invoke-with-response-stream" => Operation::InvokeStream,
        "count-tokens" => Operation::CountTokens,
        _ => Operation::Unknown,
    };
    let signature_valid = sigv4_valid(&inner.opts, &method, &uri, &headers, &body);
    let mut parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if operation == Operation::CountTokens {
        parsed = parsed
            .pointer("/input/invokeModel/body")
            .and_then(Value::as_str)
            .and_then(|b| B64.decode(b).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
    }
    inner.recorded.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        model_id,
        operation,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: parsed.clone(),
        signature_valid,
    });
    let unsigned_ok = inner.opts.accept_unsigned && !headers.contains_key("authorization");
    if !signature_valid && !unsigned_ok {
        return error(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if operation == Operation::Unknown {
        return error(404, "UnknownOperationException", "unknown operation");
    }
    if parsed.get("anthropic_version").and_then(Value::as_str) != Some("bedrock-2023-05-31")
        || parsed.get("model").is_some()
    {
        return error(
            400,
            "ValidationException",
            "Malformed input request: anthropic_version required, model not permitted",
        );
    }
    if operation == Operation::CountTokens {
        let n = parsed.to_string().len().div_ceil(4);
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            json!({"inputTokens": n}).to_string(),
        )
            .into_response();
    }
    let behavior = inner
        .queue
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| inner.opts.default_behavior.clone());
    let (reply, stop) = match behavior {
        Behavior::Error {
            status,
            error_type,
            message,
        } => return error(status, &error_type, &message),
        Behavior::StallBeforeHeaders(d) => {
            tokio::time::sleep(d).await;
            (Reply::text("m", "late", 1, 1), None)
        }
        Behavior::Reply(r) => (r, None),
        Behavior::BreakAfterEvents(n) => (
            Reply::text("m", "one two three four five six seven", 5, 7),
            Some((n, None)),
        ),
        Behavior::ExceptionAfterEvents {
            after,
            exception_type,
            message,
        } => (
            Reply::text("m", "one two three four five six seven", 5, 7),
            Some((after, Some((exception_type, message)))),
        ),
    };
    if operation == Operation::Invoke {
        tokio::time::sleep(reply.first_delay).await;
        let msg = message_from_events(&reply.events);
        let mut res = (StatusCode::OK, msg.to_string()).into_response();
        let h = res.headers_mut();
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert(
            "x-amzn-requestid",
            "00000000-0000-4000-8000-000000000002".parse().unwrap(),
        );
        h.insert(
            "x-amzn-bedrock-input-token-count",
            msg["usage"]["input_tokens"].to_string().parse().unwrap(),
        );
        h.insert(
            "x-amzn-bedrock-output-token-count",
            msg["usage"]["output_tokens"].to_string().parse().unwrap(),
        );
        return res;
    }
    inner.open.fetch_add(1, Ordering::SeqCst);
    let guard = OpenGuard(inner.clone());
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        let _guard = guard;
        if !reply.first_delay.is_zero() {
            tokio::time::sleep(reply.first_delay).await;
        }
        for (i, event) in reply.events.iter().enumerate() {
            if let Some((after, exc)) = &stop {
                if i == *after {
                    match exc {
                        Some((kind, message)) => {
                            let f = frame(
                                &[
                                    (":exception-type", kind),
                                    (":content-type", "application/json"),
                                    (":message-type", "exception"),
                                ],
                                json!({"message": message}).to_string().as_bytes(),
                            );
                            let _ = tx.send(Ok(Bytes::from(f))).await;
                        }
                        None => {
                            let _ = tx
                                .send(Err(std::io::Error::other("connection broken")))
                                .await;
                        }
                    }
                    return;
                }
            }
            if i > 0 && !reply.delay_between.is_zero() {
                tokio::time::sleep(reply.delay_between).await;
            }
            if tx.send(Ok(Bytes::from(chunk(event)))).await.is_err() {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut res = Response::new(Body::from_stream(stream));
    res.headers_mut().insert(
        "content-type",
        "application/vnd.amazon.eventstream".parse().unwrap(),
    );
    res.headers_mut().insert(
        "x-amzn-requestid",
        "00000000-0000-4000-8000-000000000003".parse().unwrap(),
    );
    res
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_carry_both_crcs() {
        let f = super::frame(&[(":event-type", "chunk")], b"{}");
        let total = u32::from_be_bytes(f[0..4].try_into().unwrap()) as usize;
        assert_eq!(total, f.len());
        assert_eq!(
            u32::from_be_bytes(f[8..12].try_into().unwrap()),
            crc32fast::hash(&f[..8])
        );
        assert_eq!(
            u32::from_be_bytes(f[total - 4..].try_into().unwrap()),
            crc32fast::hash(&f[..total - 4])
        );
    }
}
