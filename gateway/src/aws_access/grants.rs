//! A developer's write requests: `POST /v1/aws/grants` asks for write on a project (reason,
//! duration up to the project's limit) and `GET /v1/aws/grants/{id}` reads one back. A request
//! goes to the project's approvers (the approval page, the Admin API, the optional webhook).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{header, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::developer::Developer;
use super::membership::{standing, Entry};
use super::refusal::Refusal;
use super::session::MIN_WRITE_GRANT_SECONDS;
use super::wire::AwsError;
use crate::auth::token::Identity;
use crate::clock::rfc3339;
use crate::config::aws_access::{AwsAccess, Level, WriteApproval};
use crate::state::AppState;
use crate::store::aws_access::{GrantRow, NewGrant, Requested};

/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/aws/grants", post(request))
        .route("/v1/aws/grants/{id}", get(fetch))
}

/// The `aws_access` section, or `not_configured`.
pub(crate) fn section(state: &AppState) -> Result<&AwsAccess, AwsError> {
    state
        .config
        .aws_access
        .as_ref()
        .ok_or(AwsError::NotConfigured)
}

fn unavailable(e: impl std::fmt::Display) -> AwsError {
    tracing::error!("agent access store: {e}");
    AwsError::Unavailable
}

/// The member entries that may name the developer `who` (on `project` when given).
pub(crate) async fn entries(
    state: &AppState,
    who: &Identity,
    project: Option<&str>,
) -> Result<Vec<Entry>, AwsError> {
    let broker = state.aws.as_ref().ok_or(AwsError::NotConfigured)?;
    broker
        .entries(&state.store, who, project)
        .await
        .map_err(unavailable)
}

/// Turns lapsed pending requests to `expired`, with an `aws.grant.expired` event each.
pub(crate) async fn expire(state: &AppState, now: OffsetDateTime) -> Result<(), AwsError> {
    for g in state
        .store
        .aws_expire_pending(now)
        .await
        .map_err(unavailable)?
    {
        state
            .audit
            .emit("aws.grant.expired", now, event(&g, None, None));
    }
    Ok(())
}

/// An `aws.grant.*` event's fields: never the reason's text, only its length.
pub(crate) fn event(g: &GrantRow, approver: Option<&str>, client_ip: Option<&str>) -> Value {
    json!({
        "grant": g.id, "project": g.project, "user": g.user_sub, "email": g.user_email,
        "approver": approver, "duration_seconds": g.duration_seconds,
        "reason_len": g.reason.chars().count(), "client_ip": client_ip,
    })
}

/// A request in the developer's wire shape.
pub(crate) fn wire(g: &GrantRow) -> Value {
    json!({
        "id": g.id, "status": g.status.as_str(), "reason": g.reason,
        "duration_seconds": g.duration_seconds, "requested_at": rfc3339(g.requested_at),
        "decided_by": g.decided_by, "until": g.until.map(rfc3339),
    })
}

#[derive(Debug, Deserialize)]
struct Body {
    project: String,
    duration_seconds: i64,
    reason: String,
}

fn conflict(code: &'static str, message: String) -> AwsError {
    AwsError::Conflict { code, message }
}

/// Checks a request body against the section: (project, duration, reason).
fn parse(a: &AwsAccess, body: &[u8]) -> Result<(usize, i32, String), AwsError> {
    let b: Body = serde_json::from_slice(body).map_err(|_| {
        AwsError::BadRequest(
            "the body must be JSON with project, duration_seconds and reason".into(),
        )
    })?;
    let i = a
        .projects
        .iter()
        .position(|p| p.name == b.project)
        .ok_or(Refusal::NoProject { project: b.project })?;
    let max = i64::from(a.projects[i].max_session_seconds);
    let duration = match i32::try_from(b.duration_seconds) {
        Ok(d) if (MIN_WRITE_GRANT_SECONDS..=max).contains(&b.duration_seconds) => d,
        _ => {
            return Err(AwsError::BadRequest(format!(
                "duration_seconds must be {MIN_WRITE_GRANT_SECONDS} to {max} on this project"
            )))
        }
    };
    let reason = b.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(AwsError::BadRequest(format!(
            "give a reason of 1 to {MAX_REASON_CHARS} characters"
        )));
    }
    if reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AwsError::BadRequest(
            "the reason may not hold control characters".into(),
        ));
    }
    Ok((i, duration, reason.to_owned()))
}

/// `POST /v1/aws/grants`.
async fn request(
    State(state): State<AppState>,
    dev: Developer,
    body: axum::body::Bytes,
) -> Result<Response, AwsError> {
    let a = section(&state)?;
    let (i, duration, reason) = parse(a, &body)?;
    let project = &a.projects[i];
    let now = state.clock.now();
    let who = &dev.claims.identity;
    let held = standing(
        &entries(&state, who, Some(&project.name)).await?,
        &project.name,
        who.email.as_deref(),
        &who.groups,
        now,
    )?;
    if held.level < Level::Write || project.write.is_empty() {
        return Err(Refusal::ReadOnly {
            project: project.name.clone(),
        }
        .into());
    }
    if project.write_approval == WriteApproval::Auto {
        return Err(conflict(
            "no_approval_needed",
            format!(
                "write access to project {} needs no approval: ask for write credentials directly",
                project.name
            ),
        ));
    }
    expire(&state, now).await?;
    let id = crate::auth::codes::token(16)
        .map(|t| format!("grt_{t}"))
        .map_err(unavailable)?;
    let new = NewGrant {
        id,
        project: project.name.clone(),
        user_sub: who.sub.clone(),
        user_email: who.email.clone(),
        reason,
        duration_seconds: duration,
        window_until: held.until,
        client_ip: dev.ip.clone(),
    };
    let g = match state
        .store
        .aws_request_grant(&new, now)
        .await
        .map_err(unavailable)?
    {
        Requested::Created(g) => *g,
        Requested::AlreadyPending => {
            return Err(conflict(
                "already_pending",
                format!(
                    "you already have a pending write request on project {}: wait for its decision",
                    project.name
                ),
            ))
        }
    };
    state.audit.emit(
        "aws.grant.requested",
        now,
        event(&g, None, dev.ip.as_deref()),
    );
    let url = approval_url(&state.origin, &g.id);
    super::webhook::announce(&state, project, &g, &url);
    let mut res = (
        StatusCode::CREATED,
        Json(json!({
            "id": g.id, "status": g.status.as_str(), "project": g.project,
            "duration_seconds": g.duration_seconds, "approval_url": url,
        })),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The longest request id read from a path (they are `grt_` and 22 characters); a longer one
/// names no request and is neither looked up nor written to a log.
pub const MAX_ID_LEN: usize = 64;

/// Where an approver decides request `id`.
pub(crate) fn approval_url(origin: &str, id: &str) -> String {
    format!("{origin}/aws/approvals/{id}")
}

/// `GET /v1/aws/grants/{id}`: the requester's own request; anyone else's is not found.
async fn fetch(
    State(state): State<AppState>,
    dev: Developer,
    Path(id): Path<String>,
) -> Result<Response, AwsError> {
    section(&state)?;
    let missing = || AwsError::NotFound(format!("you have no write request {id}"));
    if id.len() > MAX_ID_LEN {
        return Err(missing());
    }
    expire(&state, state.clock.now()).await?;
    let g = state
        .store
        .aws_grant(&id)
        .await
        .map_err(unavailable)?
        .filter(|g| g.user_sub == dev.claims.identity.sub)
        .ok_or_else(missing)?;
    let mut v = wire(&g);
    v["project"] = json!(g.project);
    let mut res = Json(v).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::aws_access::{example_project, Environment};

    fn section() -> AwsAccess {
        AwsAccess {
            projects: vec![example_project(Environment::Prod, WriteApproval::Required)],
            members: vec![],
            mfa_max_age_seconds: 900,
            token_max_age_seconds: 600,
            sts_endpoint_url: None,
            webhook_url: None,
            proxy: None,
            mcp: None,
        }
    }

    fn code(r: Result<(usize, i32, String), AwsError>) -> &'static str {
        r.err().map_or("ok", |e| e.status_code().1)
    }

    #[test]
    fn a_request_body_is_checked_against_its_project() {
        let a = section();
        let body = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
        let ok = parse(
            &a,
            &body(
                json!({"project": "payments", "duration_seconds": 3600, "reason": " rotate the key "}),
            ),
        );
        assert_eq!(ok.ok(), Some((0, 3600, "rotate the key".to_owned())));
        let cases = [
            (
                json!({"project": "billing", "duration_seconds": 3600, "reason": "x"}),
                "no_project",
            ),
            (
                json!({"project": "payments", "duration_seconds": 1199, "reason": "x"}),
                "bad_request",
            ),
            (
                json!({"project": "payments", "duration_seconds": 3601, "reason": "x"}),
                "bad_request",
            ),
            (
                json!({"project": "payments", "duration_seconds": 1e12, "reason": "x"}),
                "bad_request",
            ),
            (
                json!({"project": "payments", "duration_seconds": 1200, "reason": "  "}),
                "bad_request",
            ),
            (
                json!({"project": "payments", "duration_seconds": 1200, "reason": "a".repeat(501)}),
                "bad_request",
            ),
            (
                json!({"project": "payments", "duration_seconds": 1200, "reason": "a\u{1b}[2J"}),
                "bad_request",
            ),
            (
                json!({"project": "payments", "duration_seconds": 1200}),
                "bad_request",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(code(parse(&a, &body(v.clone()))), want, "{v}");
        }
        assert_eq!(code(parse(&a, b"not json")), "bad_request");
        assert_eq!(
            code(parse(
                &a,
                &body(
                    json!({"project": "payments", "duration_seconds": 1200, "reason": "a".repeat(500)})
                )
            )),
            "ok"
        );
    }

    /// The shortest grant approved, then used a few minutes later, still gives a write
    /// credential: it outlasts STS's shortest session by the time it takes to fetch one.
    #[test]
    fn the_shortest_grant_gives_a_credential_after_its_approval() {
        use crate::aws_access::session::{length, Bounds, MIN_SESSION};
        use time::macros::datetime;
        let approved = datetime!(2026-12-06 10:00 UTC);
        let until = approved + time::Duration::seconds(MIN_WRITE_GRANT_SECONDS);
        let used = approved + time::Duration::minutes(4);
        let got = length(
            "payments",
            used,
            &Bounds {
                max_session: time::Duration::hours(1),
                window: (None, None),
                grant_until: Some(until),
            },
        );
        assert!(matches!(got, Ok(d) if d >= MIN_SESSION), "{got:?}");
    }
}
