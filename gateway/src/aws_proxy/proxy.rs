//! The route: any method on `/aws/` and below. The stages in order: the gateway credential in the
//! request opened before any body is read; the body read (bounded); the client's signature
//! verified (and an aws-chunked body decoded); the operation named; membership checked now;
//! the call counted and decided; held for a person when risky; re-signed with the just-in-time
//! project credential and sent; the answer masked; and the call recorded, whatever the outcome,
//! in one place on the way out, with the model turn whose tool call made it when one matches.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::Request;
use http_body_util::BodyExt;
use time::{Duration, OffsetDateTime};

use super::answer::{answer, Answered};
use super::decide::{decide, Call, Caller, Outcome};
use super::fault::{Fault, Protocol};
use super::hold::{self, Held, HeldCall};
use super::limits;
use super::mask::Counts;
use super::operation::{self, Operation};
use super::params::{self, Whose};
use super::record::{record, CallRecord, Decision};
use super::sigv4::{self, KeyId, Payload, SigV4Error};
use super::turns::Called;
use super::upstream::Outgoing;
use crate::auth::token::Identity;
use crate::aws_access::assume::Developer as StsDeveloper;
use crate::aws_access::broker::Broker;
use crate::aws_access::credentials::Credentials;
use crate::aws_access::gateway_credential::{self, ProxySession};
use crate::aws_access::membership::{standing, Standing};
use crate::aws_access::refusal::Refusal;
use crate::aws_access::session::{length, Bounds};
use crate::config::aws_access::{AwsProject, Level};
use crate::config::aws_proxy::AwsProxy;
use crate::http::edge::RequestId;
use crate::state::AppState;

/// The path prefix clients put in `endpoint_url`; what follows is the service's own path.
pub const PREFIX: &str = "/aws";

/// The most bytes of a session token looked at before the body is read.
const MAX_TOKEN_BYTES: usize = 8_192;

/// What the call has come to, for its record.
struct Trail {
    started: Instant,
    at: OffsetDateTime,
    session: Option<ProxySession>,
    service: String,
    region: String,
    op: Operation,
    bucket: Option<String>,
    level: Level,
    params: serde_json::Value,
    request_bytes: u64,
    approval: Option<(String, String)>,
    approved: bool,
}

impl Trail {
    fn new(at: OffsetDateTime) -> Self {
        Self {
            started: Instant::now(),
            at,
            session: None,
            service: String::new(),
            region: String::new(),
            op: Operation::unnamed(),
            bucket: None,
            level: Level::Read,
            params: serde_json::Value::Null,
            request_bytes: 0,
            approval: None,
            approved: false,
        }
    }
}

/// The handler.
pub async fn handle(State(state): State<AppState>, req: Request<Body>) -> Response {
    let now = state.clock.now();
    let (parts, body) = req.into_parts();
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .and_then(|r| r.0.to_str().ok())
        .unwrap_or("unknown")
        .to_owned();
    let scope_service = claimed_service(&parts).unwrap_or_default();
    let protocol = Protocol::of(&scope_service, &parts.headers, parts.uri.query());
    let mut trail = Trail::new(now);
    let outcome = call(&state, &parts, body, &mut trail).await;
    let duration_ms = u32::try_from(trail.started.elapsed().as_millis()).unwrap_or(u32::MAX);
    let (response, decision, reason, answered) = match outcome {
        Ok(a) => {
            let decision = if trail.approved {
                Decision::Approved
            } else {
                Decision::Allowed
            };
            (None, decision, None, Some(a))
        }
        Err(fault) => {
            let decision = match &fault {
                Fault::Throttled { .. } => Decision::Throttled,
                Fault::ApprovalPending { .. } => Decision::Held,
                Fault::Denied(_) | Fault::ApprovalDenied { .. } | Fault::Membership(_) => {
                    Decision::Denied
                }
                Fault::Signature(_) | Fault::TooLarge(_) | Fault::BodyIncomplete => {
                    Decision::Refused
                }
                _ => Decision::Failed,
            };
            let reason = fault.to_string();
            (
                Some(fault.respond(protocol, &request_id)),
                decision,
                Some(reason),
                None,
            )
        }
    };
    if let Some(session) = trail.session.take() {
        let (status, masked, body, truncated, response_bytes) = match &answered {
            Some(a) => (
                Some(a.status),
                a.masked,
                a.body.clone(),
                a.truncated,
                a.bytes,
            ),
            None => (
                response.as_ref().map(|r| r.status().as_u16()),
                Counts::default(),
                None,
                false,
                0,
            ),
        };
        let (approval_id, approver) = trail.approval.clone().unzip();
        let (turn_request_id, prompt_fingerprint) = state
            .aws_proxy
            .as_ref()
            .and_then(|p| {
                let call = Called {
                    service: &trail.service,
                    operation: trail.op.name.as_deref(),
                    bucket: trail.bucket.as_deref(),
                };
                p.turns.find(&session.who.sub, &call, trail.at)
            })
            .unzip();
        record(
            &state,
            CallRecord {
                at: trail.at,
                session_id: session.sid,
                user_sub: session.who.sub,
                user_email: session.who.email,
                project: session.who.project,
                level: trail.level,
                grant_id: session.who.grant,
                service: trail.service,
                region: trail.region,
                operation: trail.op.name,
                action: trail.op.action,
                class: trail.op.class,
                params: trail.params,
                decision,
                reason,
                approval_id,
                approver,
                status,
                request_bytes: trail.request_bytes,
                response_bytes,
                duration_ms,
                masked,
                body,
                body_truncated: truncated,
                turn_request_id,
                prompt_fingerprint: prompt_fingerprint.flatten(),
            },
        );
    }
    match (response, answered) {
        (Some(r), _) => r,
        (None, Some(a)) => a.response,
        (None, None) => Fault::Unavailable.respond(protocol, &request_id),
    }
}

/// Layer function: a SigV4-signed request under `/aws/approvals/` is a call for the proxy (S3,
/// path-style, to a bucket named `approvals`), not a visit to the approval pages there.
pub async fn signed_to_proxy(
    State(state): State<AppState>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    if req.uri().path().starts_with("/aws/approvals/") && is_signed(&req) {
        return handle(State(state), req).await;
    }
    next.run(req).await
}

/// Whether a request carries an AWS signature, in either form.
fn is_signed<B>(req: &Request<B>) -> bool {
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"));
    header
        || req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("X-Amz-Signature=")))
}

/// The `Credential` a request claims (`AKID/date/region/service/aws4_request`), before anything
/// is verified: from the `Authorization` header, or a presigned URL's query.
fn claimed_credential(parts: &Parts) -> Option<String> {
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match header {
        Some(auth) => Some(
            auth.split("Credential=")
                .nth(1)?
                .split(',')
                .next()?
                .trim()
                .to_owned(),
        ),
        None => query_param(parts, "X-Amz-Credential"),
    }
}

/// A query parameter, decoded.
fn query_param(parts: &Parts, name: &str) -> Option<String> {
    let value = parts
        .uri
        .query()?
        .split('&')
        .find_map(|p| p.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))?;
    Some(
        percent_encoding::percent_decode_str(value)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// The service a request's credential scope claims (for the shape of an early error).
fn claimed_service(parts: &Parts) -> Option<String> {
    claimed_credential(parts)?
        .split('/')
        .nth(3)
        .map(str::to_owned)
}

/// The access key id and session token a request carries, before its signature is checked.
fn claimed_key(parts: &Parts) -> Option<(String, Option<String>)> {
    let key = claimed_credential(parts)?.split('/').next()?.to_owned();
    let token = match parts
        .headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
    {
        Some(t) => Some(t.to_owned()),
        None => query_param(parts, "X-Amz-Security-Token"),
    };
    Some((key, token))
}

/// Reads the body up to `limit` bytes.
async fn read_body(body: Body, limit: u64) -> Result<Bytes, Fault> {
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Fault::TooLarge(limit)),
        Err(_) => Err(Fault::BodyIncomplete),
    }
}

/// What the gateway needs of its config and state to serve a call.
struct Serving<'a> {
    state: &'a AppState,
    cfg: &'a crate::config::aws_access::AwsAccess,
    settings: &'a AwsProxy,
    broker: &'a Broker,
}

/// A request whose credential and signature hold: whose it is, and what it carries.
struct Inbound {
    session: ProxySession,
    service: String,
    region: String,
    /// The body, decoded when it came aws-chunked.
    body: Bytes,
    /// An aws-chunked body's trailers, to send as headers.
    trailers: Vec<(String, String)>,
}

/// The call, up to the answer or a fault; `trail` collects what the record needs.
async fn call(
    state: &AppState,
    parts: &Parts,
    body: Body,
    trail: &mut Trail,
) -> Result<Answered, Fault> {
    let (Some(cfg), Some(broker), Some(proxy)) =
        (&state.config.aws_access, &state.aws, &state.aws_proxy)
    else {
        return Err(Fault::NotConfigured);
    };
    let settings = cfg.proxy.as_ref().ok_or(Fault::NotConfigured)?;
    let gw = Serving {
        state,
        cfg,
        settings,
        broker,
    };
    let now = trail.at;
    let inbound = inbound(&gw, parts, body, trail).await?;
    let Inbound {
        session,
        service,
        region,
        body,
        trailers,
    } = inbound;
    trail.service = service.clone();
    trail.region = region.clone();

    // What the call is: its path below the prefix, its operation, its parameters as shown.
    let path = parts
        .uri
        .path()
        .strip_prefix(PREFIX)
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .map(|p| if p.is_empty() { "/" } else { p })
        .unwrap_or("/")
        .to_owned();
    if service == "s3" {
        // Path-style, as the gateway's endpoint is used: the bucket is the first segment.
        trail.bucket = path
            .split('/')
            .nth(1)
            .filter(|b| !b.is_empty())
            .map(str::to_owned);
    }
    let query = parts.uri.query().map(without_signature);
    let op = operation::name(&operation::Call {
        service: &service,
        method: parts.method.as_str(),
        path: &path,
        query: query.as_deref(),
        headers: &parts.headers,
        body: &body,
    });
    trail.op = op.clone();
    let preq = params::Request {
        method: parts.method.as_str(),
        path: &path,
        query: query.as_deref(),
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        body: &body,
    };
    let shown = params::read(&preq, &proxy.rules);
    trail.params = shown.shown.clone();

    let (project, held) = membership(&gw, &session, now).await?;
    let level = session.who.level.min(held.level);
    trail.level = level;
    let calls = limits::count(
        &state.store,
        &session.who.sub,
        op.class,
        now,
        settings.limits.window_seconds,
    )
    .await
    .map_err(|_| Fault::Unavailable)?;
    let outcome = decide(
        project,
        Caller {
            level,
            mfa: session.who.mfa,
        },
        &Call {
            service: &service,
            region: &region,
            action: op.action.as_deref(),
            class: op.class,
            wildcard_name: shown.wildcard,
        },
        calls,
        &settings.limits,
        &settings.risk,
    );
    match outcome {
        Outcome::Allow => {}
        Outcome::Deny(d) => return Err(Fault::Denied(d)),
        Outcome::Throttle {
            class,
            limit,
            window_seconds,
        } => {
            return Err(Fault::Throttled {
                class: class.as_str(),
                limit,
                window_seconds,
            })
        }
        Outcome::Approve(reasons) => {
            let fingerprint = params::fingerprint(
                &Whose {
                    user: &session.who.sub,
                    project: &project.name,
                    region: &region,
                    service: &service,
                },
                &preq,
            );
            let call = HeldCall {
                fingerprint,
                project: project.name.clone(),
                user_sub: session.who.sub.clone(),
                user_email: session.who.email.clone(),
                service: service.clone(),
                region: region.clone(),
                operation: op.name.clone(),
                action: op.action.clone(),
                params: shown.shown.clone(),
                reasons: reasons.iter().map(ToString::to_string).collect(),
            };
            let approval = approval(&gw, call, now).await;
            trail.approved = approval.is_ok();
            trail.approval = Some(match &approval {
                Ok((id, approver)) => (id.clone(), approver.clone()),
                Err((id, approver, _)) => (id.clone(), approver.clone()),
            });
            approval.map_err(|(_, _, fault)| fault)?;
        }
    }

    let creds = project_credential(&gw, project, &session, level, held.until, now).await?;
    let res = proxy
        .upstream
        .send(
            Outgoing {
                method: &parts.method,
                service: &service,
                region: &region,
                path: &path,
                query,
                headers: &parts.headers,
                extra: &trailers,
                body,
            },
            &creds,
            now.into(),
        )
        .await?;
    answer(
        res,
        parts.method == http::Method::HEAD,
        &proxy.rules,
        &settings.masking,
        usize::try_from(settings.recording.body_bytes).unwrap_or(0),
        proxy.upstream.timeout(),
    )
    .await
}

/// The credential opened, the body read, the signature checked, an aws-chunked body decoded.
/// The credential must be one this gateway issued, still good, before a byte of body is read:
/// nobody without one makes the gateway buffer anything.
async fn inbound(
    gw: &Serving<'_>,
    parts: &Parts,
    body: Body,
    trail: &mut Trail,
) -> Result<Inbound, Fault> {
    let now = trail.at;
    let (key, token) = claimed_key(parts).ok_or(Fault::Signature(SigV4Error::Missing))?;
    let unknown = || {
        Fault::Signature(SigV4Error::UnknownKey {
            s3: claimed_service(parts).as_deref() == Some("s3"),
        })
    };
    if token.as_ref().is_some_and(|t| t.len() > MAX_TOKEN_BYTES) {
        return Err(unknown());
    }
    let keys = &gw.broker.proxy_keys;
    let (session, secret) =
        gateway_credential::open(keys, &gw.state.sealer, &key, token.as_deref(), now)
            .ok_or_else(unknown)?;
    // From here the call is someone's (the session is sealed by this gateway), and recorded as
    // theirs even if its signature fails: whoever holds the token without the secret is news.
    trail.level = session.who.level;
    trail.session = Some(session.clone());
    let body = read_body(body, gw.settings.max_request_bytes).await?;
    trail.request_bytes = body.len() as u64;
    let verified = sigv4::verify(
        &sigv4::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            authority: parts.uri.authority().map(|a| a.as_str()),
        },
        &body,
        now,
        |k: &KeyId<'_>| {
            (k.access_key_id == session.sid && k.session_token == token.as_deref())
                .then(|| secret.clone())
        },
    )?;
    let (body, trailers) = match &verified.payload {
        Payload::StreamingUnverified { .. } => {
            let max = usize::try_from(gw.settings.max_request_bytes).unwrap_or(usize::MAX);
            let decoded = sigv4::decode_chunked(&body, &verified, &secret, &parts.headers, max)?;
            (Bytes::from(decoded.body), decoded.trailers)
        }
        _ => (body, Vec::new()),
    };
    Ok(Inbound {
        session,
        service: verified.scope.service,
        region: verified.scope.region,
        body,
        trailers,
    })
}

/// The project of `session` and the member's standing on it now (config and Admin API entries).
async fn membership<'a>(
    gw: &Serving<'a>,
    session: &ProxySession,
    now: OffsetDateTime,
) -> Result<(&'a AwsProject, Standing), Fault> {
    let name = &session.who.project;
    let project = gw
        .cfg
        .projects
        .iter()
        .find(|p| &p.name == name)
        .ok_or_else(|| Refusal::NoProject {
            project: name.clone(),
        })?;
    let who = Identity {
        sub: session.who.sub.clone(),
        email: session.who.email.clone(),
        name: None,
        groups: session.who.groups.clone(),
        mfa_at: None,
    };
    let entries = gw
        .broker
        .entries(&gw.state.store, &who, Some(name))
        .await
        .map_err(|_| Fault::Unavailable)?;
    let held = standing(&entries, name, who.email.as_deref(), &who.groups, now)?;
    Ok((project, held))
}

/// A person's approval of `call`: one in force for this very call, or one asked for now and
/// given within the wait. `Err` carries the request's id and approver (if any) with the fault.
async fn approval(
    gw: &Serving<'_>,
    call: HeldCall,
    now: OffsetDateTime,
) -> Result<(String, String), (String, String, Fault)> {
    let none = |fault| (String::new(), String::new(), fault);
    let approved = hold::approved(gw.state, &call.fingerprint, &call.user_sub, now)
        .await
        .map_err(|_| none(Fault::Unavailable))?;
    if let Some(found) = approved {
        return Ok(found);
    }
    let reasons = call.reasons.join(", ");
    let wait = std::time::Duration::from_secs(u64::from(gw.settings.approval.wait_seconds));
    match hold::hold(gw.state, call, wait).await {
        Ok(Held::Approved { id, approver }) => Ok((id, approver)),
        Ok(Held::Denied { id, approver }) => {
            Err((id, approver.clone(), Fault::ApprovalDenied { approver }))
        }
        Ok(Held::TimedOut { id, url }) => {
            Err((id, String::new(), Fault::ApprovalPending { url, reasons }))
        }
        Err(_) => Err(none(Fault::Unavailable)),
    }
}

/// The just-in-time project credential the call is re-signed with, reused while it is good,
/// ending no later than the member's window.
async fn project_credential(
    gw: &Serving<'_>,
    project: &AwsProject,
    session: &ProxySession,
    level: Level,
    window_until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<Credentials, Fault> {
    let who = &session.who;
    let duration = length(
        &project.name,
        now,
        &Bounds {
            max_session: Duration::seconds(i64::from(project.max_session_seconds)),
            window: (None, window_until),
            grant_until: None,
        },
    )?;
    let key = (
        who.sub.clone(),
        project.name.clone(),
        level,
        who.grant.clone(),
        who.mfa,
    );
    if let Some(c) = gw.broker.cached(&key, now, now + duration) {
        return Ok(c);
    }
    let dev = StsDeveloper {
        sub: &who.sub,
        email: who.email.as_deref(),
        mfa: who.mfa,
    };
    gw.broker
        .mint(project, key, dev, who.grant.as_deref(), duration, now)
        .await
        .map_err(|e| Fault::Credential {
            project: project.name.clone(),
            detail: e.to_string(),
        })
}

/// A query without a presigned URL's own parameters (`X-Amz-Signature`, `X-Amz-Credential`...),
/// as received otherwise.
fn without_signature(query: &str) -> String {
    query
        .split('&')
        .filter(|p| {
            let name = p.split('=').next().unwrap_or_default();
            !matches!(
                name,
                "X-Amz-Algorithm"
                    | "X-Amz-Credential"
                    | "X-Amz-Date"
                    | "X-Amz-Expires"
                    | "X-Amz-SignedHeaders"
                    | "X-Amz-Signature"
                    | "X-Amz-Security-Token"
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presigned_urls_own_parameters_are_not_passed_on() {
        assert_eq!(
            without_signature(
                "X-Amz-Algorithm=AWS4-HMAC-SHA256&prefix=a&X-Amz-Signature=ff&list-type=2"
            ),
            "prefix=a&list-type=2"
        );
        assert_eq!(without_signature("versionId=1"), "versionId=1");
    }

    #[test]
    fn the_claimed_key_and_service_are_read_from_either_form() {
        let req = Request::builder()
            .uri("/aws/b/k")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AGWABC/20261206/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            )
            .header("x-amz-security-token", "tok")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(
            claimed_key(&parts),
            Some(("AGWABC".into(), Some("tok".into())))
        );
        assert_eq!(claimed_service(&parts).as_deref(), Some("s3"));
        let req = Request::builder()
            .uri("/aws/b/k?X-Amz-Credential=AGWXYZ%2F20261206%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Security-Token=t%2B1")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(
            claimed_key(&parts),
            Some(("AGWXYZ".into(), Some("t+1".into())))
        );
        let (parts, _) = Request::builder()
            .uri("/aws/")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(claimed_key(&parts), None);
    }
}
