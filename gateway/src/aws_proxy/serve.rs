//! The stages a call goes through once the gateway knows whose it is and what it asks, shared by
//! the proxy route (a signed request from an agent's AWS SDK) and the MCP tools (a call built by
//! the gateway from a tool's arguments): the operation named, its parameters masked, membership
//! checked now, the call counted and decided, held for a person when risky, re-signed with the
//! just-in-time project credential and sent, the answer masked, and the call recorded, whatever
//! its outcome, in one place ([`finish`]).

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Method};
use time::{Duration, OffsetDateTime};

use super::answer::{self, Answered};
use super::decide::{decide, Call, Caller, Outcome};
use super::fault::{Fault, Protocol};
use super::held::HeldCall;
use super::hold::{self, Held};
use super::limits;
use super::mask::Counts;
use super::operation::{self, Operation};
use super::params::{self, Whose};
use super::record::{bound, event, CallRecord, Decision};
use super::sigv4::SigV4Error;
use super::turns::Called;
use super::upstream::Outgoing;
use super::Proxy;
use crate::auth::token::Identity;
use crate::aws_access::assume::Developer as StsDeveloper;
use crate::aws_access::broker::Broker;
use crate::aws_access::credentials::Credentials;
use crate::aws_access::gateway_credential::Grantee;
use crate::aws_access::membership::{standing, Standing};
use crate::aws_access::refusal::Refusal;
use crate::aws_access::session::{length, Bounds};
use crate::config::aws_access::{AwsAccess, AwsProject, Level};
use crate::config::aws_proxy::{AwsProxy, Recording};
use crate::state::AppState;

/// What the gateway needs of its config and state to serve a call.
pub struct Serving<'a> {
    /// The gateway.
    pub state: &'a AppState,
    /// `aws_access`.
    pub cfg: &'a AwsAccess,
    /// `aws_access.proxy`.
    pub settings: &'a AwsProxy,
    /// The credential broker.
    pub broker: &'a Broker,
    /// The proxy's long-lived parts.
    pub proxy: &'a Proxy,
}

impl<'a> Serving<'a> {
    /// The serving parts of `state`; [`Fault::NotConfigured`] without agent access and its proxy.
    pub fn of(state: &'a AppState) -> Result<Self, Fault> {
        let (Some(cfg), Some(broker), Some(proxy)) =
            (&state.config.aws_access, &state.aws, &state.aws_proxy)
        else {
            return Err(Fault::NotConfigured);
        };
        let settings = cfg.proxy.as_ref().ok_or(Fault::NotConfigured)?;
        Ok(Self {
            state,
            cfg,
            settings,
            broker,
            proxy,
        })
    }
}

/// Who makes a call, and under which session its recordings are kept: the gateway credential's
/// key id for the proxy, the MCP session for a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The session id the call is recorded under.
    pub session_id: String,
    /// The developer, the project, the level they may act at, MFA and the grant.
    pub who: Grantee,
}

/// A call ready for the stages: not signed (or its signature already checked and dropped).
#[derive(Debug)]
pub struct Unsigned<'a> {
    /// The method.
    pub method: &'a Method,
    /// The signing name of the service (`s3`, `logs`, `monitoring`).
    pub service: &'a str,
    /// The region.
    pub region: &'a str,
    /// The path relative to the service endpoint, percent-encoded; S3 is path-style.
    pub path: &'a str,
    /// The query without `?` (and without a presigned URL's own parameters).
    pub query: Option<String>,
    /// The headers to send.
    pub headers: &'a HeaderMap,
    /// Headers to add (an aws-chunked body's trailers).
    pub extra: &'a [(String, String)],
    /// The body, whole.
    pub body: Bytes,
}

/// How a call is served where the route and the tools differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The proxy: a held call waits `approval.wait_seconds`; the answer is relayed as the
    /// masking policy says (binary or over-size bodies may pass unmasked).
    Relay,
    /// A tool: a held call returns at once; the answer is text, masked, or refused.
    Text,
}

/// What the call has come to, for its record.
#[derive(Debug)]
pub struct Trail {
    started: Instant,
    /// When the call arrived.
    pub at: OffsetDateTime,
    /// Whose call it is, once known (a call never known to be anyone's is not recorded).
    pub principal: Option<Principal>,
    /// The service.
    pub service: String,
    /// The region.
    pub region: String,
    /// The operation.
    pub op: Operation,
    /// For S3, the bucket.
    pub bucket: Option<String>,
    /// The level the call was decided at.
    pub level: Level,
    /// The parameters, masked.
    pub params: serde_json::Value,
    /// Bytes of the request body.
    pub request_bytes: u64,
    /// The approval request and its approver, when the call needed one.
    pub approval: Option<(String, String)>,
    /// Whether an approval let it through.
    pub approved: bool,
    /// The MCP tool that made the call, if one did.
    pub tool: Option<String>,
    /// The model turn that asked for the call, when the caller already knows it (a tool call
    /// matched to its `tool_use`); otherwise looked for among the proxy's turns.
    pub turn: Option<(String, Option<String>)>,
}

impl Trail {
    /// The trail of a call arriving at `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        Self {
            started: Instant::now(),
            at,
            principal: None,
            service: String::new(),
            region: String::new(),
            op: Operation::unnamed(),
            bucket: None,
            level: Level::Read,
            params: serde_json::Value::Null,
            request_bytes: 0,
            approval: None,
            approved: false,
            tool: None,
            turn: None,
        }
    }
}

/// The call, up to the answer or a fault; `trail` collects what the record needs.
pub async fn serve(
    gw: &Serving<'_>,
    principal: &Principal,
    call: Unsigned<'_>,
    mode: Mode,
    trail: &mut Trail,
) -> Result<Answered, Fault> {
    let state = gw.state;
    let settings = gw.settings;
    let proxy = gw.proxy;
    let now = trail.at;
    let who = &principal.who;
    trail.principal = Some(principal.clone());
    trail.service = call.service.to_owned();
    trail.region = call.region.to_owned();
    trail.request_bytes = call.body.len() as u64;
    trail.level = who.level;
    let (service, region, path) = (call.service, call.region, call.path);
    if has_dot_segment(path) {
        // The HTTP client resolves `.` and `..` (also written `%2e`) before sending, so AWS
        // would be sent another path than the one decided and recorded.
        return Err(Fault::Signature(SigV4Error::Malformed(
            "the path must have no '.' or '..' segment",
        )));
    }
    if service == "s3" {
        // Path-style, as the gateway's endpoint is used: the bucket is the first segment.
        trail.bucket = path
            .split('/')
            .nth(1)
            .filter(|b| !b.is_empty())
            .map(str::to_owned);
    }
    let op = operation::name(&operation::Call {
        service,
        method: call.method.as_str(),
        path,
        query: call.query.as_deref(),
        headers: call.headers,
        body: &call.body,
    });
    trail.op = op.clone();
    let preq = params::Request {
        method: call.method.as_str(),
        path,
        query: call.query.as_deref(),
        content_type: call
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        body: &call.body,
        headers: call.headers,
    };
    let shown = params::read(&preq, &proxy.rules);
    trail.params = shown.shown.clone();

    let (project, held) = membership(gw, who, now).await?;
    let grant = write_grant(gw, who, now).await?;
    // A write grant revoked or ended since the credential was issued leaves the member read-only.
    let level = match (&who.grant, &grant) {
        (Some(_), None) => Level::Read,
        _ => who.level,
    }
    .min(held.level);
    trail.level = level;
    let calls = limits::count(
        &state.store,
        &who.sub,
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
            mfa: who.mfa,
        },
        &Call {
            service,
            region,
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
                    user: &who.sub,
                    project: &project.name,
                    region,
                    service,
                },
                &preq,
            );
            let held_call = HeldCall {
                fingerprint,
                project: project.name.clone(),
                user_sub: who.sub.clone(),
                user_email: who.email.clone(),
                service: service.to_owned(),
                region: region.to_owned(),
                operation: op.name.clone(),
                action: op.action.clone(),
                params: shown.shown.clone(),
                reasons: reasons.iter().map(ToString::to_string).collect(),
            };
            let wait = match mode {
                Mode::Relay => {
                    std::time::Duration::from_secs(u64::from(settings.approval.wait_seconds))
                }
                Mode::Text => std::time::Duration::ZERO,
            };
            let approval = approval(gw, held_call, wait, now).await;
            trail.approved = approval.is_ok();
            trail.approval = Some(match &approval {
                Ok((id, approver)) => (id.clone(), approver.clone()),
                Err((id, approver, _)) => (id.clone(), approver.clone()),
            });
            approval.map_err(|(_, _, fault)| fault)?;
        }
    }

    let grant = grant.filter(|_| level == Level::Write);
    let creds = project_credential(gw, project, who, level, held.until, grant, now).await?;
    let head_only = call.method == Method::HEAD;
    let res = proxy
        .upstream
        .send(
            Outgoing {
                method: call.method,
                service,
                region,
                path,
                query: call.query,
                headers: call.headers,
                extra: call.extra,
                body: call.body,
            },
            &creds,
            now.into(),
        )
        .await?;
    let record_limit = usize::try_from(settings.recording.body_bytes).unwrap_or(0);
    match mode {
        Mode::Relay => {
            answer::answer(
                res,
                head_only,
                &proxy.rules,
                &settings.masking,
                record_limit,
                proxy.upstream.timeout(),
            )
            .await
        }
        Mode::Text => answer::text(res, &proxy.rules, record_limit, proxy.upstream.timeout()).await,
    }
}

/// Whether `path` has a segment an HTTP client resolves: `.` or `..`, in any case of `%2e`.
pub fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| {
        let s = s.as_bytes();
        let dots = |from: usize| {
            let mut i = from;
            let mut n = 0;
            while i < s.len() {
                if s[i] == b'.' {
                    i += 1;
                } else if s.len() - i >= 3
                    && s[i] == b'%'
                    && s[i + 1] == b'2'
                    && s[i + 2] | 0x20 == b'e'
                {
                    i += 3;
                } else {
                    return None;
                }
                n += 1;
            }
            Some(n)
        };
        matches!(dots(0), Some(1 | 2))
    })
}

/// Records the call `trail` followed, with its `outcome`: the `aws.call` audit line and the
/// `aws_calls` row. A call never known to be anyone's is not recorded. `protocol` is the one an
/// error answer is written in (its status is recorded).
pub fn finish(
    state: &AppState,
    trail: Trail,
    outcome: &Result<Answered, Fault>,
    protocol: Protocol,
) {
    let Some(principal) = trail.principal else {
        return;
    };
    let duration_ms = u32::try_from(trail.started.elapsed().as_millis()).unwrap_or(u32::MAX);
    let (decision, reason) = decision(outcome, trail.approved);
    let (status, masked, body, truncated, response_bytes) = match outcome {
        Ok(a) => (
            Some(a.status),
            a.masked,
            a.body.clone(),
            a.truncated,
            a.bytes,
        ),
        Err(f) => (
            Some(f.status_code(protocol).0.as_u16()),
            Counts::default(),
            None,
            false,
            0,
        ),
    };
    let (approval_id, approver) = trail.approval.unzip();
    let turn = match (&trail.tool, trail.turn) {
        (Some(_), turn) => turn,
        (None, _) => state.aws_proxy.as_ref().and_then(|p| {
            let call = Called {
                service: &trail.service,
                operation: trail.op.name.as_deref(),
                bucket: trail.bucket.as_deref(),
            };
            p.turns.find(&principal.who.sub, &call, trail.at)
        }),
    };
    let (turn_request_id, prompt_fingerprint) = turn.unzip();
    let who = principal.who;
    record(
        state,
        CallRecord {
            at: trail.at,
            session_id: principal.session_id,
            user_sub: who.sub,
            user_email: who.email,
            project: who.project,
            level: trail.level,
            grant_id: who.grant,
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
            tool: trail.tool,
        },
    );
}

/// What became of a call, and why in words when it did not go through.
pub fn decision(outcome: &Result<Answered, Fault>, approved: bool) -> (Decision, Option<String>) {
    match outcome {
        Ok(_) if approved => (Decision::Approved, None),
        Ok(_) => (Decision::Allowed, None),
        Err(fault) => {
            let decision = match fault {
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
            (decision, Some(fault.to_string()))
        }
    }
}

/// The project of `who` and the member's standing on it now (config and Admin API entries).
pub async fn membership<'a>(
    gw: &Serving<'a>,
    who: &Grantee,
    now: OffsetDateTime,
) -> Result<(&'a AwsProject, Standing), Fault> {
    let name = &who.project;
    let project = gw
        .cfg
        .projects
        .iter()
        .find(|p| &p.name == name)
        .ok_or_else(|| Refusal::NoProject {
            project: name.clone(),
        })?;
    let identity = Identity {
        sub: who.sub.clone(),
        email: who.email.clone(),
        name: None,
        groups: who.groups.clone(),
        mfa_at: None,
    };
    let entries = gw
        .broker
        .entries(&gw.state.store, &identity, Some(name))
        .await
        .map_err(|_| Fault::Unavailable)?;
    let held = standing(&entries, name, who.email.as_deref(), &who.groups, now)?;
    Ok((project, held))
}

/// A person's approval of `call`: one in force for this very call, or one asked for now and
/// given within `wait`. `Err` carries the request's id and approver (if any) with the fault.
async fn approval(
    gw: &Serving<'_>,
    call: HeldCall,
    wait: std::time::Duration,
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

/// The write grant the credential of `who` rests on, with its end, while it is still in force:
/// an admin's revoke or its end stops it at once, not when the credential expires.
async fn write_grant(
    gw: &Serving<'_>,
    who: &Grantee,
    now: OffsetDateTime,
) -> Result<Option<(String, OffsetDateTime)>, Fault> {
    let Some(id) = &who.grant else {
        return Ok(None);
    };
    let found = gw
        .state
        .store
        .aws_write_grant(&who.sub, &who.project, now)
        .await
        .map_err(|_| Fault::Unavailable)?;
    Ok(found.filter(|g| &g.id == id).map(|g| (g.id, g.until)))
}

/// The just-in-time project credential the call is re-signed with, reused while it is good,
/// ending no later than the member's window and the write grant it rests on.
async fn project_credential(
    gw: &Serving<'_>,
    project: &AwsProject,
    who: &Grantee,
    level: Level,
    window_until: Option<OffsetDateTime>,
    grant: Option<(String, OffsetDateTime)>,
    now: OffsetDateTime,
) -> Result<Credentials, Fault> {
    let duration = length(
        &project.name,
        now,
        &Bounds {
            max_session: Duration::seconds(i64::from(project.max_session_seconds)),
            window: (None, window_until),
            grant_until: grant.as_ref().map(|(_, until)| *until),
        },
    )?;
    let grant = grant.map(|(id, _)| id);
    let key = (
        who.sub.clone(),
        project.name.clone(),
        level,
        grant.clone(),
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
        .mint(project, key, dev, grant.as_deref(), duration, now)
        .await
        .map_err(|e| Fault::Credential {
            project: project.name.clone(),
            detail: e.to_string(),
        })
}

/// Emits `aws.call` (everything but the body) and writes the row in the background, never
/// blocking or failing the call; a row that cannot be written is counted and logged without
/// content (the audit line still has the call).
pub fn record(state: &AppState, mut rec: CallRecord) {
    let body_bytes = state
        .config
        .aws_access
        .as_ref()
        .and_then(|a| a.proxy.as_ref())
        .map_or_else(
            || Recording::default().body_bytes,
            |p| p.recording.body_bytes,
        );
    bound(&mut rec, usize::try_from(body_bytes).unwrap_or(usize::MAX));
    state.audit.emit("aws.call", state.clock.now(), event(&rec));
    state.recorder.submit(rec);
}

#[cfg(test)]
mod tests {
    use super::has_dot_segment;

    #[test]
    fn dot_segments_are_found_however_they_are_written() {
        for p in [
            "/b/../c/k",
            "/b/./k",
            "/b/%2e%2e/c",
            "/b/%2E./c",
            "/b/.%2e",
            "/b/k/..",
            "/..",
        ] {
            assert!(has_dot_segment(p), "{p}");
        }
        for p in [
            "/",
            "/b/k",
            "/b/...",
            "/b/..k",
            "/b/.hidden",
            "/b/%2e%2e%2e",
            "/b/%2",
            "/b/a%2e",
        ] {
            assert!(!has_dot_segment(p), "{p}");
        }
    }
}
