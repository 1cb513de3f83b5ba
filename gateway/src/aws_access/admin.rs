//! The Admin API of agent access, beside the spend one and with its authentication
//! ([`Admin`]: an `x-api-key`, or the session token of an `admin_groups` member):
//! members (`/v1/organizations/aws_access/members`), write requests and their decisions
//! (`…/grants`, `…/grants/{id}/approve|deny|revoke`) and the trail (`…/audit`). Projects come
//! from config; every change is audited in the store's transaction and on the audit stream.

use axum::extract::{Path, Query, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::approval::{approved_until, may_decide, Decider, NoDecision};
use super::grants::{event, expire};
use crate::auth::context::Ctx;
use crate::clock::rfc3339;
use crate::config::aws_access::{AwsAccess, Level};
use crate::spend::admin::{after_id, internal, page, Admin, AdminError};
use crate::state::AppState;
use crate::store::aws_access::{self as rows, Added, Decision, GrantRow, GrantStatus, MemberRow};

const BASE: &str = "/v1/organizations/aws_access";
/// The most groups or emails one member entry names.
const MAX_NAMES: usize = 100;
/// The longest group name or email.
const MAX_NAME_LEN: usize = 256;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/members"), get(members).post(add_member))
        .route(&format!("{BASE}/members/{{id}}"), delete(remove_member))
        .route(&format!("{BASE}/grants"), get(grants))
        .route(&format!("{BASE}/grants/{{id}}/{{action}}"), post(decide))
        .route(&format!("{BASE}/audit"), get(audit))
}

/// The `aws_access` section, or the Admin API's 404 without it.
pub(crate) fn section(state: &AppState) -> Result<&AwsAccess, AdminError> {
    state.config.aws_access.as_ref().ok_or_else(|| {
        AdminError::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "agent access to AWS is not configured on this gateway",
        )
    })
}

fn writer(a: &Admin) -> Result<(), AdminError> {
    if a.write {
        Ok(())
    } else {
        Err(AdminError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "requires write:aws_access",
        ))
    }
}

/// A list's `limit`: 100 by default, 1 to 1000.
pub(crate) fn limit(l: Option<i64>) -> Result<i64, AdminError> {
    match l {
        None => Ok(100),
        Some(l) if (1..=1000).contains(&l) => Ok(l),
        Some(_) => Err(AdminError::bad("limit must be 1 to 1000")),
    }
}

fn member_json(m: &MemberRow) -> Value {
    json!({
        "type": "aws_member", "id": m.id, "project": m.project, "groups": m.groups,
        "emails": m.emails, "level": m.level.as_str(), "from": m.from.map(rfc3339),
        "until": m.until.map(rfc3339), "created_at": rfc3339(m.created_at), "created_by": m.created_by,
    })
}

fn grant_json(g: &GrantRow) -> Value {
    json!({
        "type": "aws_grant", "id": g.id, "project": g.project,
        "user": {"sub": g.user_sub, "email": g.user_email}, "reason": g.reason,
        "duration_seconds": g.duration_seconds, "status": g.status.as_str(),
        "requested_at": rfc3339(g.requested_at), "decided_at": g.decided_at.map(rfc3339),
        "decided_by": g.decided_by, "until": g.until.map(rfc3339),
    })
}

/// A list query.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    status: Option<String>,
    project: Option<String>,
}

async fn members(
    State(state): State<AppState>,
    _a: Admin,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, AdminError> {
    section(&state)?;
    let limit = limit(q.limit)?;
    let all = state.store.aws_members(limit + 1).await.map_err(internal)?;
    Ok(page(all.iter().map(member_json).collect(), limit))
}

/// A member's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    project: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    level: Level,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

fn when(field: &str, s: Option<&str>) -> Result<Option<OffsetDateTime>, AdminError> {
    s.map(|s| {
        OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|_| AdminError::bad(&format!("{field} must be an RFC 3339 time")))
    })
    .transpose()
}

/// Checks a member body against the section: a member row without its id and author.
fn parse_member(a: &AwsAccess, body: &[u8]) -> Result<MemberRow, AdminError> {
    let m: NewMember = serde_json::from_slice(body).map_err(|e| {
        AdminError::bad(&format!(
            "the body must be a member: project, groups or emails, level, from, until ({e})"
        ))
    })?;
    let p = a
        .projects
        .iter()
        .find(|p| p.name == m.project)
        .ok_or_else(|| AdminError::bad(&format!("there is no project {:?}", m.project)))?;
    if m.level == Level::Write && p.write.is_empty() {
        return Err(AdminError::bad(&format!(
            "project {} has no write level",
            p.name
        )));
    }
    if m.groups.is_empty() && m.emails.is_empty() {
        return Err(AdminError::bad("name groups or emails"));
    }
    let names_ok = |v: &[String]| {
        v.len() <= MAX_NAMES
            && v.iter().all(|n| {
                !n.trim().is_empty() && n.len() <= MAX_NAME_LEN && !n.chars().any(char::is_control)
            })
    };
    if !names_ok(&m.groups) || !names_ok(&m.emails) {
        return Err(AdminError::bad(&format!(
            "groups and emails: at most {MAX_NAMES} each, each 1 to {MAX_NAME_LEN} characters"
        )));
    }
    if m.emails.iter().any(|e| !e.contains('@')) {
        return Err(AdminError::bad("each email must hold an @"));
    }
    let from = when("from", m.from.as_deref())?;
    let until = when("until", m.until.as_deref())?;
    if let (Some(f), Some(u)) = (from, until) {
        if f >= u {
            return Err(AdminError::bad("until must be after from"));
        }
    }
    Ok(MemberRow {
        id: String::new(),
        project: p.name.clone(),
        groups: m.groups,
        emails: m.emails.iter().map(|e| e.trim().to_lowercase()).collect(),
        level: m.level,
        from,
        until,
        created_at: OffsetDateTime::UNIX_EPOCH,
        created_by: String::new(),
    })
}

async fn add_member(
    State(state): State<AppState>,
    admin: Admin,
    ctx: Ctx,
    body: axum::body::Bytes,
) -> Result<Json<Value>, AdminError> {
    let a = section(&state)?;
    writer(&admin)?;
    let mut m = parse_member(a, &body)?;
    m.id = crate::auth::codes::token(16)
        .map(|t| format!("awm_{t}"))
        .map_err(internal)?;
    m.created_by = admin.actor.clone();
    let now = state.clock.now();
    let m = match state
        .store
        .aws_add_member(&m, now)
        .await
        .map_err(internal)?
    {
        Added::Member(m) => m,
        Added::Full => {
            return Err(AdminError::bad(&format!(
                "the gateway holds {} members already: remove some first",
                rows::MAX_MEMBERS
            )))
        }
    };
    state.audit.emit(
        "aws.member.added",
        now,
        json!({"member": m.id, "project": m.project, "level": m.level.as_str(), "actor": admin.actor,
               "client_ip": ctx.ip}),
    );
    Ok(Json(member_json(&m)))
}

async fn remove_member(
    State(state): State<AppState>,
    admin: Admin,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    section(&state)?;
    writer(&admin)?;
    let now = state.clock.now();
    let Some(m) = state
        .store
        .aws_remove_member(&id, &admin.actor, now)
        .await
        .map_err(internal)?
    else {
        return Err(AdminError::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "no such member",
        ));
    };
    state.audit.emit(
        "aws.member.removed",
        now,
        json!({"member": m.id, "project": m.project, "level": m.level.as_str(), "actor": admin.actor,
               "client_ip": ctx.ip}),
    );
    Ok(Json(json!({"type": "aws_member_deleted", "id": m.id})))
}

async fn grants(
    State(state): State<AppState>,
    _a: Admin,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, AdminError> {
    section(&state)?;
    let limit = limit(q.limit)?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(GrantStatus::parse(s).ok_or_else(|| {
            AdminError::bad("status must be pending, approved, denied, revoked or expired")
        })?),
    };
    expire(&state, state.clock.now())
        .await
        .map_err(|_| internal("expiry failed"))?;
    let all = state
        .store
        .aws_grants(status, q.project.as_deref(), limit + 1)
        .await
        .map_err(internal)?;
    Ok(page(all.iter().map(grant_json).collect(), limit))
}

fn refused(n: NoDecision) -> AdminError {
    match n {
        NoDecision::Own | NoDecision::NotApprover => {
            AdminError::new(StatusCode::FORBIDDEN, "permission_error", &n.to_string())
        }
        _ => AdminError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            &n.to_string(),
        ),
    }
}

async fn decide(
    State(state): State<AppState>,
    admin: Admin,
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let a = section(&state)?;
    writer(&admin)?;
    let not_found = || AdminError::new(StatusCode::NOT_FOUND, "not_found_error", "no such request");
    let now = state.clock.now();
    expire(&state, now)
        .await
        .map_err(|_| internal("expiry failed"))?;
    let g = state
        .store
        .aws_grant(&id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    let decision = match action.as_str() {
        "approve" | "deny" => {
            let project = a
                .projects
                .iter()
                .find(|p| p.name == g.project)
                .ok_or_else(|| refused(NoDecision::NotPending(g.status.as_str())))?;
            // The person the extractor verified, not the token read again: an admin key has
            // none, and a person can never approve their own request.
            let (sub, email) = match &admin.person {
                Some((sub, email)) => (Some(sub.as_str()), email.as_deref()),
                None => (None, None),
            };
            let who = Decider {
                sub,
                email,
                groups: None,
            };
            may_decide(&who, project, &g, now).map_err(refused)?;
            if action == "approve" {
                Decision::Approve {
                    until: approved_until(&g, now),
                }
            } else {
                Decision::Deny
            }
        }
        "revoke" => Decision::Revoke,
        _ => return Err(not_found()),
    };
    let by = rows::Decider {
        by: &admin.actor,
        client_ip: ctx.ip.as_deref(),
    };
    let Some(done) = state
        .store
        .aws_decide_grant(&id, decision, by, now)
        .await
        .map_err(internal)?
    else {
        let status = state
            .store
            .aws_grant(&id)
            .await
            .map_err(internal)?
            .map_or(g.status, |g| g.status);
        return Err(refused(NoDecision::NotPending(status.as_str())));
    };
    let evt = match decision {
        Decision::Approve { .. } => "aws.grant.approved",
        Decision::Deny => "aws.grant.denied",
        Decision::Revoke => "aws.grant.revoked",
    };
    state.audit.emit(
        evt,
        now,
        event(&done, Some(&admin.actor), ctx.ip.as_deref()),
    );
    Ok(Json(grant_json(&done)))
}

/// The trail's query.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
    after_id: Option<String>,
}

async fn audit(
    State(state): State<AppState>,
    _a: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, AdminError> {
    section(&state)?;
    let limit = limit(q.limit)?;
    let after = after_id(q.after_id.as_deref())?;
    let rows = state
        .store
        .aws_audit(limit + 1, after)
        .await
        .map_err(internal)?;
    Ok(page(rows, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::aws_access::{example_project, Environment, WriteApproval};

    fn section() -> AwsAccess {
        let mut read_only = example_project(Environment::Nonprod, WriteApproval::Required);
        read_only.name = "docs".into();
        read_only.write.clear();
        AwsAccess {
            projects: vec![
                example_project(Environment::Prod, WriteApproval::Required),
                read_only,
            ],
            members: vec![],
            mfa_max_age_seconds: 900,
            token_max_age_seconds: 600,
            sts_endpoint_url: None,
            webhook_url: None,
            proxy: None,
            mcp: None,
        }
    }

    #[test]
    fn a_member_body_is_checked_against_the_projects() {
        let a = section();
        let ok = |v: Value| parse_member(&a, &serde_json::to_vec(&v).unwrap_or_default());
        let m = ok(
            json!({"project": "payments", "emails": [" Ana@Example.com "], "level": "write",
                          "from": "2026-12-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"}),
        )
        .unwrap();
        assert_eq!(m.emails, vec!["ana@example.com".to_owned()]);
        assert_eq!(m.level, Level::Write);
        for bad in [
            json!({"project": "billing", "groups": ["g"]}),
            json!({"project": "docs", "groups": ["g"], "level": "write"}),
            json!({"project": "payments"}),
            json!({"project": "payments", "emails": ["nobody"]}),
            json!({"project": "payments", "groups": ["g"], "level": "admin"}),
            json!({"project": "payments", "groups": ["g"], "from": "2027-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}),
            json!({"project": "payments", "groups": ["g"], "until": "soon"}),
            json!({"project": "payments", "groups": ["g"], "role": "x"}),
            json!({"project": "payments", "groups": [""]}),
            json!({"project": "payments", "groups": vec!["g"; 101]}),
        ] {
            assert!(ok(bad.clone()).is_err(), "{bad}");
        }
        assert!(ok(json!({"project": "docs", "groups": ["g"]})).is_ok());
    }
}
