//! The HTTP side of the double: routing, authentication, validation, recorded requests and the
//! scripted behaviours.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

use crate::eventstream::{chunk_frame, exception_frame};
use crate::reply::{estimate_input_tokens, invocation_metrics, message_from_events, Reply};
use crate::sigv4::{self, Keys, Refusal, SignedRequest};

/// The only `anthropic_version` Bedrock accepts.
pub const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// How long a broken response waits for what it wrote to leave before it drops the connection.
const FLUSH_PAUSE: Duration = Duration::from_millis(10);

/// Largest request body read.
const MAX_BODY: usize = 64 << 20;

/// How a double authenticates and what it answers by default.
#[derive(Clone, Debug)]
pub struct Options {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    /// A Bedrock API key: `Authorization: Bearer <token>` equal to it is accepted instead of a
    /// signature.
    pub bearer_token: Option<String>,
    /// What a request gets when no behaviour is queued.
    pub default_behavior: Behavior,
    /// Serve requests that carry no `Authorization` at all (a benchmark's direct baseline).
    /// Requests that carry one are still verified.
    pub accept_unsigned: bool,
    /// Keep every request for [`FakeBedrock::requests`]; a long benchmark turns this off.
    pub record_requests: bool,
    /// InvokeModel waits as long as the reply would take to stream (`first_delay`, then
    /// `delay_between` per further event) before it answers, as a model generates the whole
    /// answer first. Off, it waits `first_delay` only: a benchmark's non-streaming throughput
    /// then measures the client, not the pacing of its streams.
    pub pace_invoke: bool,
}

/// The text of the default reply.
pub const DEFAULT_TEXT: &str = "Hello from the Bedrock double.";

/// The model named in replies the double makes up itself.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5-20250929";

impl Default for Options {
    fn default() -> Self {
        Self {
            access_key_id: "AKIDFAKEBEDROCK".into(),
            secret_access_key: "fake-bedrock-secret-key".into(),
            region: "us-east-1".into(),
            bearer_token: None,
            default_behavior: Behavior::Reply(Reply::text(DEFAULT_MODEL, DEFAULT_TEXT, 12, 8)),
            accept_unsigned: false,
            record_requests: true,
            pace_invoke: true,
        }
    }
}

/// What the double does with one request.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// Succeed with this answer.
    Reply(Reply),
    /// Fail as Bedrock fails: this status, `x-amzn-ErrorType: <error_type>`, `{"message": ...}`.
    Error {
        status: u16,
        error_type: String,
        message: String,
    },
    /// Wait this long before answering, then answer with the default reply.
    StallBeforeHeaders(Duration),
    /// Stream this many events of the default reply, then drop the connection without ending
    /// the response. InvokeModel and CountTokens get their headers and part of the body.
    BreakAfterEvents(usize),
    /// Stream `after` events of the default reply, then an exception message, then end. For
    /// InvokeModel and CountTokens, the matching error response instead.
    ExceptionAfterEvents {
        after: usize,
        exception_type: String,
        message: String,
    },
}

impl Behavior {
    /// A failure as Bedrock sends it.
    pub fn error(status: u16, error_type: &str, message: &str) -> Behavior {
        Behavior::Error {
            status,
            error_type: error_type.to_owned(),
            message: message.to_owned(),
        }
    }

    /// A stream exception after `after` events.
    pub fn exception_after(after: usize, exception_type: &str, message: &str) -> Behavior {
        Behavior::ExceptionAfterEvents {
            after,
            exception_type: exception_type.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Which Bedrock operation a request addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `POST /model/{modelId}/invoke`
    Invoke,
    /// `POST /model/{modelId}/invoke-with-response-stream`
    InvokeStream,
    /// `POST /model/{modelId}/count-tokens`
    CountTokens,
    /// Anything else.
    Unknown,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The path as received, still percent-encoded.
    pub path: String,
    /// The model id from the path, decoded.
    pub model_id: String,
    pub operation: Operation,
    /// Every header, names lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    /// The JSON body; for CountTokens, the decoded InvokeModel body inside it. `Null` when the
    /// body is not JSON.
    pub body: Value,
    /// Whether the request was authenticated (a valid signature, or the expected bearer token).
    pub signature_valid: bool,
}

impl Recorded {
    /// The value of a header (the first one of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Inner {
    opts: Options,
    queue: Mutex<VecDeque<Behavior>>,
    recorded: Mutex<Vec<Recorded>>,
    open: AtomicUsize,
    seq: AtomicU64,
    port: u16,
    /// The default reply, already encoded.
    default_encoded: Option<Arc<Encoded>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running double, listening on a loopback port until dropped.
pub struct FakeBedrock {
    url: String,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeBedrock {
    /// Binds `127.0.0.1:0` and serves.
    pub async fn start(opts: Options) -> std::io::Result<FakeBedrock> {
        Self::start_on(opts, 0).await
    }

    /// Binds `127.0.0.1:port` (0 for any) and serves.
    pub async fn start_on(opts: Options, port: u16) -> std::io::Result<FakeBedrock> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let default_encoded = match &opts.default_behavior {
            Behavior::Reply(r) => Some(Arc::new(Encoded::new(r))),
            _ => None,
        };
        let inner = Arc::new(Inner {
            opts,
            queue: Mutex::new(VecDeque::new()),
            recorded: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
            seq: AtomicU64::new(0),
            port: addr.port(),
            default_encoded,
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        // Event frames are small and must leave at once: no Nagle delay.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeBedrock {
            url: format!("http://{addr}"),
            inner,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.inner.recorded).clone()
    }

    /// Queues a behaviour for the next request that passes authentication, routing and body
    /// validation (first in, first out). With the queue empty, the default behaviour applies.
    pub fn push(&self, b: Behavior) {
        lock(&self.inner.queue).push_back(b);
    }

    /// Streaming responses currently being written.
    pub fn open_streams(&self) -> usize {
        self.inner.open.load(Ordering::SeqCst)
    }
}

impl Drop for FakeBedrock {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Counts a streaming response from creation until its body is dropped (finished, or the client
/// went away).
struct OpenGuard(Arc<Inner>);

impl OpenGuard {
    fn new(inner: Arc<Inner>) -> OpenGuard {
        inner.open.fetch_add(1, Ordering::SeqCst);
        OpenGuard(inner)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A reply in both of Bedrock's forms.
struct Encoded {
    /// The stream, one event-stream message per event.
    frames: Arc<Vec<Bytes>>,
    /// The InvokeModel answer.
    message: Value,
    message_json: Bytes,
}

impl Encoded {
    fn new(reply: &Reply) -> Encoded {
        let message = message_from_events(&reply.events);
        Encoded {
            frames: Arc::new(encode_stream(reply)),
            message_json: Bytes::from(message.to_string()),
            message,
        }
    }
}

/// The stream events of a reply as Bedrock frames them. A `message_stop` without invocation
/// metrics gets them, made from the usage and the scripted delays.
fn encode_stream(reply: &Reply) -> Vec<Bytes> {
    let msg = message_from_events(&reply.events);
    let input = msg["usage"]["input_tokens"].as_u64().unwrap_or(0);
    let output = msg["usage"]["output_tokens"].as_u64().unwrap_or(0);
    let n = reply.events.len().max(1) as u32;
    let latency = reply.first_delay + reply.delay_between * (n - 1);
    reply
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if e["type"] == "message_stop" && e.get("amazon-bedrock-invocationMetrics").is_none() {
                let mut e = e.clone();
                e["amazon-bedrock-invocationMetrics"] = invocation_metrics(
                    input,
                    output,
                    latency.as_millis() as u64,
                    reply.first_delay.as_millis() as u64,
                );
                chunk_frame(&e, i)
            } else {
                chunk_frame(e, i)
            }
        })
        .collect()
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn json_response(status: u16, request_id: &str, body: impl Into<Body>) -> Response {
    let mut res = Response::new(body.into());
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = res.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("x-amzn-requestid", header_value(request_id));
    res
}

/// An error as Bedrock sends it.
fn error_response(status: u16, error_type: &str, message: &str, request_id: &str) -> Response {
    let mut res = json_response(
        status,
        request_id,
        json!({ "message": message }).to_string(),
    );
    res.headers_mut()
        .insert("x-amzn-errortype", header_value(error_type));
    res
}

fn refusal_response(r: &Refusal, request_id: &str) -> Response {
    error_response(r.status, r.error_type, &r.message, request_id)
}

fn validation(message: &str, request_id: &str) -> Response {
    error_response(400, "ValidationException", message, request_id)
}

/// The HTTP error an InvokeModel (or CountTokens) call gets where a stream would carry this
/// exception.
fn exception_as_error(exception_type: &str) -> (u16, String) {
    match exception_type {
        "throttlingException" => (429, "ThrottlingException".into()),
        "validationException" => (400, "ValidationException".into()),
        "internalServerException" => (500, "InternalServerException".into()),
        "serviceUnavailableException" => (503, "ServiceUnavailableException".into()),
        "modelTimeoutException" => (408, "ModelTimeoutException".into()),
        "modelStreamErrorException" => (424, "ModelErrorException".into()),
        other => {
            let mut chars = other.chars();
            let pascal = chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default();
            (500, pascal)
        }
    }
}

/// Real Bedrock's schema check of an Anthropic body, as far as gateway bugs show up in it.
fn check_anthropic_body(body: &Value) -> Result<(), String> {
    let Some(obj) = body.as_object() else {
        return Err(
            "Malformed input request: expected type: JSONObject, please reformat your input and try again."
                .into(),
        );
    };
    let missing = |key: &str| {
        format!("Malformed input request: #: required key [{key}] not found, please reformat your input and try again.")
    };
    match obj.get("anthropic_version") {
        None => return Err(missing("anthropic_version")),
        Some(v) if v.as_str() != Some(ANTHROPIC_VERSION) => {
            return Err(format!(
                "Malformed input request: #/anthropic_version: {v} is not a valid enum value, please reformat your input and try again."
            ))
        }
        Some(_) => {}
    }
    if obj.contains_key("model") {
        return Err("Malformed input request: #: extraneous key [model] is not permitted, please reformat your input and try again.".into());
    }
    match obj.get("max_tokens") {
        None => return Err(missing("max_tokens")),
        Some(v) if v.as_u64().is_none_or(|n| n == 0) => {
            return Err(format!(
                "Malformed input request: #/max_tokens: {v} is not a positive integer, please reformat your input and try again."
            ))
        }
        Some(_) => {}
    }
    match obj.get("messages") {
        None => Err(missing("messages")),
        Some(v) if !v.is_array() => Err(
            "Malformed input request: #/messages: expected type: JSONArray, please reformat your input and try again."
                .into(),
        ),
        Some(_) => Ok(()),
    }
}

/// Splits `/model/{modelId}/{operation}`; a model id must arrive as one encoded path segment.
fn route(method: &str, path: &str) -> (String, Operation) {
    let Some((model_enc, op)) = path
        .strip_prefix("/model/")
        .and_then(|rest| rest.rsplit_once('/'))
    else {
        return (String::new(), Operation::Unknown);
    };
    let model_id = percent_decode_str(model_enc)
        .decode_utf8_lossy()
        .into_owned();
    if method != "POST" || model_enc.is_empty() || model_enc.contains('/') {
        return (model_id, Operation::Unknown);
    }
    let operation = match op {
        "invoke" => Operation::Invoke,
        "invoke-with-response-stream" => Operation::InvokeStream,
        "count-tokens" => Operation::CountTokens,
        _ => Operation::Unknown,
    };
    (model_id, operation)
}

#[allow(clippy::disallowed_methods)] // SigV4 dates are checked against the real clock, as AWS does.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Authenticates a request: a bearer token when one is configured and presented, else SigV4.
fn authenticate(
    opts: &Options,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Some(token) = auth.strip_prefix("Bearer ") {
        let ok = opts
            .bearer_token
            .as_deref()
            .is_some_and(|expected| sigv4::bearer_matches(token.trim(), expected));
        if ok {
            return Ok(());
        }
        let message = if token.trim().starts_with("ABSK") {
            "Authentication failed: Please make sure your API Key is valid."
        } else {
            "Invalid API Key format: Must start with pre-defined prefix"
        };
        return Err(Refusal {
            status: 403,
            error_type: "AccessDeniedException",
            message: message.into(),
        });
    }
    let keys = Keys {
        access_key_id: &opts.access_key_id,
        secret_access_key: &opts.secret_access_key,
        region: &opts.region,
        service: "bedrock",
    };
    let req = SignedRequest {
        method,
        path: uri.path(),
        query: uri.query(),
        authority: uri.authority().map(|a| a.as_str()),
        headers,
        body,
    };
    sigv4::verify(&keys, &req, unix_now())
}

/// Where a scripted stream stops.
enum Ending {
    Complete,
    Break,
    Exception(Bytes),
}

struct StreamState {
    frames: Arc<Vec<Bytes>>,
    next: usize,
    stop_at: usize,
    ending: Ending,
    first_delay: Duration,
    delay_between: Duration,
    done: bool,
    _open: OpenGuard,
}

async fn next_chunk(mut s: StreamState) -> Option<(Result<Bytes, std::io::Error>, StreamState)> {
    if s.done {
        return None;
    }
    let i = s.next;
    let ending_now = i >= s.stop_at;
    if ending_now && matches!(s.ending, Ending::Complete) {
        return None;
    }
    let delay = if i == 0 {
        s.first_delay
    } else {
        s.delay_between
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if ending_now {
        s.done = true;
        if matches!(s.ending, Ending::Break) {
            // Let the events already written leave before the connection goes.
            tokio::time::sleep(FLUSH_PAUSE).await;
        }
        return match std::mem::replace(&mut s.ending, Ending::Complete) {
            Ending::Complete => None,
            Ending::Break => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the double breaks the stream",
                )),
                s,
            )),
            Ending::Exception(frame) => Some((Ok(frame), s)),
        };
    }
    s.next += 1;
    let frame = s.frames[i].clone();
    Some((Ok(frame), s))
}

/// A body that sends `prefix`, lets it leave, then fails, so the connection drops mid-body.
fn broken_body(prefix: Vec<u8>) -> Body {
    let stream = futures_util::stream::unfold(Some(prefix), |state| async move {
        match state {
            Some(prefix) => Some((Ok(Bytes::from(prefix)), None)),
            None => {
                tokio::time::sleep(FLUSH_PAUSE).await;
                Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the double breaks the response",
                    )),
                    None,
                ))
            }
        }
    });
    Body::from_stream(stream)
}

/// Answers with a full body whose connection breaks half way through it.
fn break_json(mut res: Response, bytes: Bytes) -> Response {
    let half = bytes.len() / 2;
    res.headers_mut()
        .insert("content-length", header_value(&bytes.len().to_string()));
    *res.body_mut() = broken_body(bytes[..half].to_vec());
    res
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let started = Instant::now();
    let seq = inner.seq.fetch_add(1, Ordering::Relaxed);
    let request_id = format!(
        "{:08x}-0000-4000-8000-{seq:012x}",
        0x5eed_0000u32 | u32::from(inner.port)
    );
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let headers = &parts.headers;
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                413,
                "ValidationException",
                "The request body is too large.",
                &request_id,
            )
        }
    };
    let (model_id, operation) = route(&method, &path);

    let auth = authenticate(&inner.opts, &method, &parts.uri, headers, &body);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // CountTokens wraps the InvokeModel body, base64-encoded.
    let count_input: Option<Result<Value, &'static str>> = (operation == Operation::CountTokens)
        .then(|| {
            if let Some(b64) = parsed.pointer("/input/invokeModel/body") {
                let raw = b64
                    .as_str()
                    .and_then(|s| B64.decode(s).ok())
                    .ok_or("Invalid input: body is not base64-encoded.")?;
                serde_json::from_slice::<Value>(&raw)
                    .map_err(|_| "Malformed input request: the body is not JSON, please reformat your input and try again.")
            } else if let Some(converse) = parsed.pointer("/input/converse") {
                Ok(converse.clone())
            } else {
                Err("1 validation error detected: Value at 'input' failed to satisfy constraint: Member must not be null")
            }
        });
    if inner.opts.record_requests {
        let recorded_body = match &count_input {
            Some(Ok(inner_body)) => inner_body.clone(),
            _ => parsed.clone(),
        };
        lock(&inner.recorded).push(Recorded {
            method: method.clone(),
            path: path.clone(),
            model_id,
            operation,
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: recorded_body,
            signature_valid: auth.is_ok(),
        });
    }
    if let Err(refusal) = auth {
        let unsigned = !headers.contains_key("authorization");
        if !(inner.opts.accept_unsigned && unsigned) {
            return refusal_response(&refusal, &request_id);
        }
    }
    if operation == Operation::Unknown {
        return error_response(
            404,
            "UnknownOperationException",
            "Unknown operation",
            &request_id,
        );
    }
    let check = match &count_input {
        Some(Err(message)) => Err((*message).to_owned()),
        Some(Ok(b)) if parsed.pointer("/input/invokeModel").is_some() => check_anthropic_body(b),
        Some(Ok(_)) => Ok(()),
        None if parsed.is_null() => Err(
            "Malformed input request: the body is not JSON, please reformat your input and try again."
                .to_owned(),
        ),
        None => check_anthropic_body(&parsed),
    };
    if let Err(message) = check {
        return validation(&message, &request_id);
    }

    let popped = lock(&inner.queue).pop_front();
    let behavior = popped.as_ref().unwrap_or(&inner.opts.default_behavior);
    let (scripted, stop_at, ending) = match behavior {
        Behavior::Error {
            status,
            error_type,
            message,
        } => return error_response(*status, error_type, message, &request_id),
        Behavior::Reply(r) => (Some(r), usize::MAX, Ending::Complete),
        Behavior::StallBeforeHeaders(d) => {
            tokio::time::sleep(*d).await;
            (None, usize::MAX, Ending::Complete)
        }
        Behavior::BreakAfterEvents(n) => (None, *n, Ending::Break),
        Behavior::ExceptionAfterEvents {
            after,
            exception_type,
            message,
        } => {
            if operation != Operation::InvokeStream {
                let (status, error_type) = exception_as_error(exception_type);
                return error_response(status, &error_type, message, &request_id);
            }
            (
                None,
                *after,
                Ending::Exception(exception_frame(exception_type, message)),
            )
        }
    };
    // Behaviours other than `Reply` play out over the default reply, encoded once, at start.
    let fallback;
    let (reply, cached) = match (scripted, &inner.opts.default_behavior) {
        (Some(r), _) if popped.is_some() => (r, None),
        (_, Behavior::Reply(r)) => (r, inner.default_encoded.clone()),
        _ => {
            fallback = Reply::text(DEFAULT_MODEL, "one two three four five six seven", 5, 7);
            (&fallback, None)
        }
    };
    let encoded = || {
        cached
            .clone()
            .unwrap_or_else(|| Arc::new(Encoded::new(reply)))
    };

    match operation {
        Operation::CountTokens => {
            let n = match &count_input {
                Some(Ok(b)) => estimate_input_tokens(b),
                _ => 0,
            };
            let body = Bytes::from(json!({ "inputTokens": n }).to_string());
            let res = json_response(200, &request_id, body.clone());
            if matches!(ending, Ending::Break) {
                return break_json(res, body);
            }
            res
        }
        Operation::Invoke => {
            // The whole answer is generated before it is sent.
            let n = reply.events.len().max(1) as u32;
            let generation = if inner.opts.pace_invoke {
                reply.first_delay + reply.delay_between * (n - 1)
            } else {
                reply.first_delay
            };
            if !generation.is_zero() {
                tokio::time::sleep(generation).await;
            }
            let encoded = encoded();
            let body = encoded.message_json.clone();
            let mut res = json_response(200, &request_id, body.clone());
            let usage = &encoded.message["usage"];
            let h = res.headers_mut();
            let count = |key: &str| usage[key].as_u64().unwrap_or(0).to_string();
            h.insert(
                "x-amzn-bedrock-input-token-count",
                header_value(&count("input_tokens")),
            );
            h.insert(
                "x-amzn-bedrock-output-token-count",
                header_value(&count("output_tokens")),
            );
            h.insert(
                "x-amzn-bedrock-invocation-latency",
                header_value(&started.elapsed().as_millis().to_string()),
            );
            if usage["cache_read_input_tokens"].as_u64().unwrap_or(0) > 0 {
                h.insert(
                    "x-amzn-bedrock-cache-read-input-token-count",
                    header_value(&count("cache_read_input_tokens")),
                );
            }
            if usage["cache_creation_input_tokens"].as_u64().unwrap_or(0) > 0 {
                h.insert(
                    "x-amzn-bedrock-cache-write-input-token-count",
                    header_value(&count("cache_creation_input_tokens")),
                );
            }
            if matches!(ending, Ending::Break) {
                return break_json(res, body);
            }
            res
        }
        Operation::InvokeStream => {
            let frames = encoded().frames.clone();
            let state = StreamState {
                stop_at: stop_at.min(frames.len()),
                frames,
                next: 0,
                ending,
                first_delay: reply.first_delay,
                delay_between: reply.delay_between,
                done: false,
                _open: OpenGuard::new(inner.clone()),
            };
            let stream = futures_util::stream::unfold(state, next_chunk);
            let mut res = Response::new(Body::from_stream(stream));
            let h = res.headers_mut();
            h.insert(
                "content-type",
                HeaderValue::from_static("application/vnd.amazon.eventstream"),
            );
            h.insert(
                "x-amzn-bedrock-content-type",
                HeaderValue::from_static("application/json"),
            );
            h.insert("x-amzn-requestid", header_value(&request_id));
            res
        }
        Operation::Unknown => error_response(
            404,
            "UnknownOperationException",
            "Unknown operation",
            &request_id,
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(
                "POST",
                "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
            ),
            (
                "us.anthropic.claude-sonnet-4-5-20250929-v1:0".to_owned(),
                Operation::Invoke
            )
        );
        assert_eq!(
            route("POST", "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc/invoke-with-response-stream"),
            (
                "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc".to_owned(),
                Operation::InvokeStream
            )
        );
        assert_eq!(
            route("POST", "/model/m/count-tokens").1,
            Operation::CountTokens
        );
        // An unencoded slash splits the model id across segments: no such route.
        assert_eq!(
            route("POST", "/model/arn:aws:bedrock:x/abc/invoke").1,
            Operation::Unknown
        );
        assert_eq!(route("GET", "/model/m/invoke").1, Operation::Unknown);
        assert_eq!(route("POST", "/model//invoke").1, Operation::Unknown);
        assert_eq!(route("POST", "/model/m/converse").1, Operation::Unknown);
    }

    #[test]
    fn bodies_are_checked_as_bedrock_does() {
        let ok = json!({"anthropic_version": ANTHROPIC_VERSION, "max_tokens": 5, "messages": []});
        assert!(check_anthropic_body(&ok).is_ok());
        let mut with_model = ok.clone();
        with_model["model"] = "claude".into();
        assert!(check_anthropic_body(&with_model)
            .unwrap_err()
            .contains("extraneous key [model]"));
        let mut no_version = ok.clone();
        no_version
            .as_object_mut()
            .unwrap()
            .remove("anthropic_version");
        assert!(check_anthropic_body(&no_version)
            .unwrap_err()
            .contains("required key [anthropic_version]"));
        let mut no_max = ok.clone();
        no_max.as_object_mut().unwrap().remove("max_tokens");
        assert!(check_anthropic_body(&no_max)
            .unwrap_err()
            .contains("required key [max_tokens]"));
        let mut wrong_version = ok;
        wrong_version["anthropic_version"] = "2023-06-01".into();
        assert!(check_anthropic_body(&wrong_version).is_err());
    }

    #[test]
    fn missing_metrics_are_added_to_message_stop() {
        let mut r = Reply::text("m", "a b", 3, 4);
        r.events
            .last_mut()
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("amazon-bedrock-invocationMetrics");
        let frames = encode_stream(&r);
        assert_eq!(frames.len(), r.events.len());
        let last = frames.last().unwrap();
        // The payload sits between the headers and the message CRC.
        let headers_len = u32::from_be_bytes(last[4..8].try_into().unwrap()) as usize;
        let payload: Value =
            serde_json::from_slice(&last[12 + headers_len..last.len() - 4]).unwrap();
        let event: Value =
            serde_json::from_slice(&B64.decode(payload["bytes"].as_str().unwrap()).unwrap())
                .unwrap();
        assert_eq!(
            event["amazon-bedrock-invocationMetrics"]["inputTokenCount"],
            3
        );
        assert_eq!(
            event["amazon-bedrock-invocationMetrics"]["outputTokenCount"],
            4
        );
    }
}
