//! The MCP endpoint, Streamable HTTP as the client speaks it: `POST /mcp` carries one JSON-RPC
//! message and is answered with one JSON body (or 202 for a notification); `DELETE /mcp` ends
//! the session; `GET /mcp` is 405, as this server pushes nothing. Every response says
//! `Allow: POST, DELETE`, so the client does not open a listening stream.
//!
//! The stages of a POST: the server is configured; the `Origin`, when a browser sends one, is
//! the gateway's; the bearer token is an MCP access token ([`oauth::authenticate`]); the
//! `MCP-Protocol-Version` header is one this server speaks; the session is this developer's
//! (except for `initialize`, which starts one, and a probe answered with an error); then the
//! message is carried out.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use http::header::{ALLOW, CONTENT_TYPE, ORIGIN};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};
use time::Duration;

use super::jsonrpc::{self, Code, Id, RpcError};
use super::oauth::{self, McpCaller};
use super::protocol::{self, Dispatch};
use super::session::{self, Session};
use super::tool;
use super::tools::{self, Context};
use crate::config::mcp::Mcp;
use crate::http::edge::RequestId;
use crate::state::AppState;

/// The session header.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// The largest body of `POST /mcp`: room for `s3_put`'s largest content
/// ([`super::tools::s3::MAX_PUT_CHARS`] characters) even written as JSON escapes of six bytes
/// each, and the message around it. Held by the route's body budget (`http::body`).
pub const MAX_BODY_BYTES: u64 = 2 << 20;

const _: () = assert!(MAX_BODY_BYTES > 6 * super::tools::s3::MAX_PUT_CHARS as u64 + 64 * 1024);

/// The methods `/mcp` answers.
const ALLOWED: &str = "POST, DELETE";

/// The MCP endpoint's routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/mcp", post(handle).delete(end).get(listen))
}

/// Why a request to `/mcp` is answered before its message is carried out.
#[derive(Debug)]
enum Refusal {
    /// `aws_access.mcp` is not set.
    Off,
    /// A browser's request from another origin.
    Origin,
    /// The body is not JSON.
    ContentType,
    /// An `MCP-Protocol-Version` this server does not speak.
    Version(protocol::UnsupportedVersion),
    /// A request other than `initialize` without `Mcp-Session-Id`.
    NoSession,
    /// A session id that is unknown, ended, idle too long or another developer's.
    UnknownSession,
    /// The store did not answer.
    Unavailable,
    /// A body over [`MAX_BODY_BYTES`].
    TooLarge,
    /// A body that did not arrive whole.
    BodyIncomplete,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            Self::Off => (
                StatusCode::NOT_FOUND,
                Code::InvalidRequest,
                "Not found".to_owned(),
            ),
            Self::Origin => (
                StatusCode::FORBIDDEN,
                Code::InvalidRequest,
                "Forbidden: Origin is not this gateway".to_owned(),
            ),
            Self::ContentType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::InvalidRequest,
                "Unsupported Media Type: Content-Type must be application/json".to_owned(),
            ),
            Self::Version(e) => (
                StatusCode::BAD_REQUEST,
                Code::InvalidRequest,
                format!("Bad Request: {e}"),
            ),
            // The client reads these two sentences as "start a new session".
            Self::NoSession => (
                StatusCode::BAD_REQUEST,
                Code::InvalidRequest,
                "Bad Request: Mcp-Session-Id header is required".to_owned(),
            ),
            Self::UnknownSession => (
                StatusCode::NOT_FOUND,
                Code::InvalidRequest,
                "Session not found; initialize a new session".to_owned(),
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::InvalidRequest,
                format!("Payload Too Large: at most {MAX_BODY_BYTES} bytes"),
            ),
            Self::BodyIncomplete => (
                StatusCode::BAD_REQUEST,
                Code::InvalidRequest,
                "Bad Request: the body did not arrive whole".to_owned(),
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                Code::InternalError,
                "The gateway's store is unavailable; try again shortly".to_owned(),
            ),
        };
        allow(
            (
                status,
                axum::Json(jsonrpc::error(None, &RpcError::new(code, message))),
            )
                .into_response(),
        )
    }
}

/// `response` with `Allow: POST, DELETE`.
fn allow(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(ALLOWED));
    response
}

/// The JSON answer `value` (HTTP 200).
fn json_answer(value: Value) -> Response {
    allow((StatusCode::OK, axum::Json(value)).into_response())
}

/// The settings, or 404 when the server is off.
fn settings(state: &AppState) -> Result<&Mcp, Refusal> {
    state
        .config
        .aws_access
        .as_ref()
        .and_then(|a| a.mcp.as_ref())
        .ok_or(Refusal::Off)
}

/// A request with an `Origin` must come from the gateway's own (DNS rebinding: a page
/// elsewhere must not reach a developer's local view of the server). The client sends none.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), Refusal> {
    match headers.get(ORIGIN) {
        None => Ok(()),
        Some(o) if o.as_bytes() == state.origin.as_bytes() => Ok(()),
        Some(_) => Err(Refusal::Origin),
    }
}

/// The session id the request names, if readable.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok())
}

/// What the checks before the message establish.
struct Admitted<'a> {
    settings: &'a Mcp,
    caller: McpCaller,
}

/// The checks every method shares: configured, origin, token.
// The refusal is the answer itself, handed back once per request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn admit<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<Admitted<'a>, Response> {
    let settings = settings(state).map_err(IntoResponse::into_response)?;
    check_origin(state, headers).map_err(IntoResponse::into_response)?;
    let caller = oauth::authenticate(state, headers, state.clock.now()).map_err(allow)?;
    Ok(Admitted { settings, caller })
}

/// `POST /mcp`.
async fn handle(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Who is asking is settled from the head alone: nobody without a token makes the gateway
    // read, let alone hold, a body.
    let admitted = match admit(&state, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    serve(&state, &admitted, &request_id, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// The body, up to [`MAX_BODY_BYTES`] (the route's budget also bounds how long it may take).
async fn read_body(body: Body) -> Result<Bytes, Refusal> {
    let limit = usize::try_from(MAX_BODY_BYTES).unwrap_or(usize::MAX);
    match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)).await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Refusal::TooLarge),
        Err(_) => Err(Refusal::BodyIncomplete),
    }
}

async fn serve(
    state: &AppState,
    admitted: &Admitted<'_>,
    request_id: &RequestId,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Refusal> {
    let json_body = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_body {
        return Err(Refusal::ContentType);
    }
    let version_header = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok());
    let dispatch = protocol::dispatch_versioned(version_header, body).map_err(Refusal::Version)?;
    let now = state.clock.now();
    let idle = Duration::seconds(i64::from(admitted.settings.session_idle_seconds));
    let caller = &admitted.caller;
    let sub = caller.identity.sub.as_str();

    // `initialize` starts a session; a probe or a malformed message is answered without one.
    let id = match dispatch {
        Dispatch::Initialize {
            id,
            protocol_version,
        } => return initialize(state, caller, id, protocol_version, idle).await,
        Dispatch::Error { id, error } => {
            return Ok(json_answer(jsonrpc::error(id.as_ref(), &error)))
        }
        _ => {
            let id = session_id(headers).ok_or(Refusal::NoSession)?.to_owned();
            session::resume(&state.store, &id, sub, now, idle)
                .await
                .map_err(|_| Refusal::Unavailable)?
                .ok_or(Refusal::UnknownSession)?;
            id
        }
    };
    let answer = match dispatch {
        Dispatch::Initialized | Dispatch::Accepted => {
            return Ok(allow(StatusCode::ACCEPTED.into_response()))
        }
        Dispatch::Ping { id: rid } => jsonrpc::result(&rid, protocol::ping_result()),
        Dispatch::ToolsList { id: rid } => jsonrpc::result(&rid, tool::list_result(&tools::list())),
        Dispatch::ToolsCall {
            id: rid,
            name,
            arguments,
        } => {
            let cx = Context {
                state,
                caller,
                session_id: &id,
                request_id: request_id.0.to_str().unwrap_or("unknown"),
                now,
            };
            match tools::call(&cx, &name, arguments).await {
                Ok(result) => jsonrpc::result(&rid, result.to_value()),
                Err(e) => jsonrpc::error(Some(&rid), &e),
            }
        }
        // Answered above.
        Dispatch::Initialize { .. } | Dispatch::Error { .. } => return Err(Refusal::Unavailable),
    };
    Ok(json_answer(answer))
}

/// Answers `initialize` and starts the session it names in `Mcp-Session-Id`.
async fn initialize(
    state: &AppState,
    caller: &McpCaller,
    id: Id,
    protocol_version: &'static str,
    idle: Duration,
) -> Result<Response, Refusal> {
    let now = state.clock.now();
    let session = Session {
        sub: caller.identity.sub.clone(),
        client_id: caller.client_id.clone(),
        protocol_version: protocol_version.to_owned(),
    };
    let sid = session::start(&state.store, &session, now, idle)
        .await
        .map_err(|_| Refusal::Unavailable)?;
    state.audit.emit(
        "mcp.session",
        now,
        json!({
            "action": "start",
            "sub": caller.identity.sub,
            "email": caller.identity.email,
            "client_id": caller.client_id,
            "protocol_version": protocol_version,
        }),
    );
    let result = protocol::initialize_result(protocol_version, env!("CARGO_PKG_VERSION"));
    let mut response = json_answer(jsonrpc::result(&id, result));
    let value = HeaderValue::from_str(&sid).map_err(|_| Refusal::Unavailable)?;
    response.headers_mut().insert(SESSION_HEADER, value);
    Ok(response)
}

/// `DELETE /mcp`: the session ends.
async fn end(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let admitted = match admit(&state, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(id) = session_id(&headers) else {
        return Refusal::NoSession.into_response();
    };
    let now = state.clock.now();
    let sub = &admitted.caller.identity.sub;
    match session::end(&state.store, id, sub, now).await {
        Ok(true) => {
            state
                .audit
                .emit("mcp.session", now, json!({"action": "end", "sub": sub}));
            allow(StatusCode::NO_CONTENT.into_response())
        }
        Ok(false) => Refusal::UnknownSession.into_response(),
        Err(_) => Refusal::Unavailable.into_response(),
    }
}

/// `GET /mcp`: no stream to listen on.
async fn listen(State(state): State<AppState>) -> Response {
    if settings(&state).is_err() {
        return Refusal::Off.into_response();
    }
    allow(StatusCode::METHOD_NOT_ALLOWED.into_response())
}
