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
use super::limits::{self, class_name};
use super::mask::Counts;
use super::operation::{self, Operation};
use super::params::{self, Whose};
use super::record::{record, CallRecord, Decision};
use super::sigv4::{self, KeyId, Payload};
use super::turns::Called;
use super::upstream::Outgoing;
use crate::auth::token::Identity;
use crate::aws_access::assume::Developer as StsDeveloper;
use crate::aws_access::gateway_credential::{self, ProxySession};
use crate::aws_access::membership::standing;
use crate::aws_access::session::{length, Bounds};
use crate::config::aws_access::{AwsProject, Level};
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
                p.turns.find(&session.sub, &call, trail.at)
            })
            .unzip();
        record(
            &state,
            CallRecord {
                at: trail.at,
                session_id: session.sid,
                user_sub: session.sub,
                user_email: session.email,
                project: session.project,
                level: trail.level,
                grant_id: session.grant,
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

/// The service a request's credential scope claims, before anything is verified (for the shape
/// of an early error).
fn claimed_service(parts: &Parts) -> Option<String> {
    let scope = match parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(auth) => auth
            .split("Credential=")
            .nth(1)?
            .split(',')
            .next()?
            .to_owned(),
        None => {
            let q = parts.uri.query()?;
            let cred = q
                .split('&')
                .find_map(|p| p.strip_prefix("X-Amz-Credential="))?;
            percent_encoding::percent_decode_str(cred)
                .decode_utf8_lossy()
                .into_owned()
        }
    };
    scope.split('/').nth(3).map(str::to_owned)
}

/// The access key id and session token a request carries, before its signature is checked.
fn claimed_key(parts: &Parts) -> Option<(String, Option<String>)> {
    let headers = &parts.headers;
    let key = match headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(auth) => auth
            .split("Credential=")
            .nth(1)?
            .split('/')
            .next()?
            .to_owned(),
        None => {
            let q = parts.uri.query()?;
            let cred = q
                .split('&')
                .find_map(|p| p.strip_prefix("X-Amz-Credential="))?;
            let cred = percent_encoding::percent_decode_str(cred).decode_utf8_lossy();
            cred.split('/').next()?.to_owned()
        }
    };
    let token = match headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
    {
        Some(t) => Some(t.to_owned()),
        None => parts.uri.query().and_then(|q| {
            q.split('&')
                .find_map(|p| p.strip_prefix("X-Amz-Security-Token="))
                .map(|t| {
                    percent_encoding::percent_decode_str(t)
                        .decode_utf8_lossy()
                        .into_owned()
                })
        }),
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
    let Some(settings) = cfg.proxy.as_ref() else {
        return Err(Fault::NotConfigured);
    };
    let now = trail.at;
    // The credential must be one this gateway issued, still good, before a byte of body is
    // read: nobody without one makes the gateway buffer anything.
    let (key, token) = claimed_key(parts).ok_or(Fault::Signature(sigv4::SigV4Error::Missing))?;
    let unknown = || {
        Fault::Signature(sigv4::SigV4Error::UnknownKey {
            s3: claimed_service(parts).as_deref() == Some("s3"),
        })
    };
    if token.as_ref().is_some_and(|t| t.len() > MAX_TOKEN_BYTES) {
        return Err(unknown());
    }
    let (session, secret) = gateway_credential::open(
        &broker.proxy_keys,
        &state.sealer,
        &key,
        token.as_deref(),
        now,
    )
    .ok_or_else(unknown)?;
    let body = read_body(body, settings.max_request_bytes).await?;
    trail.request_bytes = body.len() as u64;
    let path_and_query = parts.uri.path();
    let verified = sigv4::verify(
        &sigv4::Request {
            method: parts.method.as_str(),
            path: path_and_query,
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
    trail.level = session.level;
    trail.session = Some(session.clone());
    let (body, extra) = match &verified.payload {
        Payload::StreamingUnverified { .. } => {
            let max = usize::try_from(settings.max_request_bytes).unwrap_or(usize::MAX);
            let decoded = sigv4::decode_chunked(&body, &verified, &secret, &parts.headers, max)?;
            (Bytes::from(decoded.body), decoded.trailers)
        }
        _ => (body, Vec::new()),
    };
    let service = verified.scope.service.clone();
    let region = verified.scope.region.clone();
    trail.service = service.clone();
    trail.region = region.clone();
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
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let preq = params::Request {
        method: parts.method.as_str(),
        path: &path,
        query: query.as_deref(),
        content_type,
        body: &body,
    };
    let shown = params::read(&preq, &proxy.rules);
    trail.params = shown.shown.clone();

    // Membership now: the project, the member's standing, the level the credential may use.
    let project: &AwsProject = cfg
        .projects
        .iter()
        .find(|p| p.name == session.project)
        .ok_or_else(|| {
            Fault::Membership(crate::aws_access::refusal::Refusal::NoProject {
                project: session.project.clone(),
            })
        })?;
    let who = Identity {
        sub: session.sub.clone(),
        email: session.email.clone(),
        name: None,
        groups: session.groups.clone(),
        mfa_at: None,
    };
    let entries = broker
        .entries(&state.store, &who, Some(&project.name))
        .await
        .map_err(|_| Fault::Unavailable)?;
    let held = standing(
        &entries,
        &project.name,
        who.email.as_deref(),
        &who.groups,
        now,
    )?;
    let level = session.level.min(held.level);
    trail.level = level;

    let calls = limits::count(
        &state.store,
        &session.sub,
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
            mfa: session.mfa,
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
                class: class_name(class),
                limit,
                window_seconds,
            });
        }
        Outcome::Approve(reasons) => {
            let fingerprint = params::fingerprint(
                &Whose {
                    user: &session.sub,
                    project: &project.name,
                    region: &region,
                    service: &service,
                },
                &preq,
            );
            let approved = hold::approved(state, &fingerprint, &session.sub, now)
                .await
                .map_err(|_| Fault::Unavailable)?;
            let (id, approver) = match approved {
                Some(found) => found,
                None => {
                    let why: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                    let held = hold::hold(
                        state,
                        HeldCall {
                            fingerprint,
                            project: project.name.clone(),
                            user_sub: session.sub.clone(),
                            user_email: session.email.clone(),
                            service: service.clone(),
                            region: region.clone(),
                            operation: op.name.clone(),
                            action: op.action.clone(),
                            params: shown.shown.clone(),
                            reasons: why.clone(),
                        },
                        std::time::Duration::from_secs(u64::from(settings.approval.wait_seconds)),
                    )
                    .await
                    .map_err(|_| Fault::Unavailable)?;
                    match held {
                        Held::Approved { id, approver } => (id, approver),
                        Held::Denied { id, approver } => {
                            trail.approval = Some((id, approver.clone()));
                            return Err(Fault::ApprovalDenied { approver });
                        }
                        Held::TimedOut { id, url } => {
                            trail.approval = Some((id, String::new()));
                            return Err(Fault::ApprovalPending {
                                url,
                                reasons: why.join(", "),
                            });
                        }
                    }
                }
            };
            trail.approval = Some((id, approver));
            trail.approved = true;
        }
    }

    // The just-in-time project credential, reused while it is good.
    let duration = length(
        &project.name,
        now,
        &Bounds {
            max_session: Duration::seconds(i64::from(project.max_session_seconds)),
            window: (None, held.until),
            grant_until: None,
        },
    )?;
    let key = (
        session.sub.clone(),
        project.name.clone(),
        level,
        session.grant.clone(),
        session.mfa,
    );
    let creds = match broker.cached(&key, now, now + duration) {
        Some(c) => c,
        None => broker
            .mint(
                project,
                key,
                StsDeveloper {
                    sub: &session.sub,
                    email: session.email.as_deref(),
                    mfa: session.mfa,
                },
                session.grant.as_deref(),
                duration,
                now,
            )
            .await
            .map_err(|e| Fault::Credential {
                project: project.name.clone(),
                detail: e.to_string(),
            })?,
    };
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
                extra: &extra,
                body,
            },
            &creds,
            now.into(),
        )
        .await?;
    let head_only = parts.method == http::Method::HEAD;
    answer(
        res,
        head_only,
        &proxy.rules,
        &settings.masking,
        usize::try_from(settings.recording.body_bytes).unwrap_or(0),
        proxy.upstream.timeout(),
    )
    .await
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
