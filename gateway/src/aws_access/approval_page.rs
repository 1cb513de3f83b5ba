//! The approval page, `GET /aws/approvals/{id}`: an approver signs in through the IdP (see
//! [`super::approver`]) and sees the request (project, environment, requester, reason, duration,
//! when) with Approve and Deny, which POST to `/aws/approvals/{id}/approve|deny` with the
//! session's CSRF token. The requester is told they cannot approve their own request; anyone
//! outside the project's approver groups is refused. Same protections as the device pages: plain
//! HTML, escaped, a strict CSP, no caching, same-origin form posts only.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use super::approval::{approved_until, may_decide, Decider, NoDecision};
use super::approver::{self, csrf_ok, Approver};
use super::grants::{event, expire, MAX_ID_LEN};
use crate::auth::context::Ctx;
use crate::auth::device::same_origin;
use crate::auth::pages::{message, page};
use crate::config::aws_access::{AwsProject, Environment};
use crate::http::pages::escape;
use crate::state::AppState;
use crate::store::aws_access::{self as rows, Decision, GrantRow};

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/aws/approvals/{id}", get(show))
        .route("/aws/approvals/{id}/{action}", post(decide))
}

fn unavailable() -> Response {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        "Approvals are unavailable for a moment. Try again shortly.",
    )
}

fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No such request",
        "There is no write request at this address.",
    )
}

/// The request and its project, after lapsed requests expired; or the page to answer.
async fn load(state: &AppState, id: &str) -> Result<(GrantRow, AwsProject), Response> {
    let Some(a) = &state.config.aws_access else {
        return Err(not_found());
    };
    if id.len() > MAX_ID_LEN {
        return Err(not_found());
    }
    expire(state, state.clock.now())
        .await
        .map_err(|_| unavailable())?;
    let g = match state.store.aws_grant(id).await {
        Ok(Some(g)) => g,
        Ok(None) => return Err(not_found()),
        Err(e) => {
            tracing::error!("agent access store: {e}");
            return Err(unavailable());
        }
    };
    let p = a
        .projects
        .iter()
        .find(|p| p.name == g.project)
        .cloned()
        .ok_or_else(not_found)?;
    Ok((g, p))
}

fn decider(a: &Approver) -> Decider<'_> {
    Decider {
        sub: Some(&a.sub),
        email: a.email.as_deref(),
        groups: Some(&a.groups),
    }
}

/// The request, as the approver reads it (every value escaped).
fn details(g: &GrantRow, p: &AwsProject) -> String {
    let env = match p.environment {
        Environment::Prod => "prod",
        Environment::Nonprod => "nonprod",
    };
    let row = |k: &str, v: &str| format!("<dt>{k}</dt><dd>{}</dd>", escape(v));
    [
        row("Project", &p.name),
        row("Environment", env),
        row(
            "Requested by",
            g.user_email.as_deref().unwrap_or(&g.user_sub),
        ),
        row("Reason", &g.reason),
        row("Duration", &format!("{} minutes", g.duration_seconds / 60)),
        row(
            "Requested at",
            &g.requested_at.format(&Rfc3339).unwrap_or_default(),
        ),
        row("Status", g.status.as_str()),
    ]
    .concat()
}

/// `GET /aws/approvals/{id}`.
async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (g, p) = match load(&state, &id).await {
        Ok(found) => found,
        Err(res) => return res,
    };
    let Some(a) = approver::session(&state, &headers) else {
        return approver::start(&state, &g.id).await;
    };
    let title = "Write access request";
    let info = format!("<dl>{}</dl>", details(&g, &p));
    let notice = |status: StatusCode, text: &str| {
        page(
            status,
            title,
            &format!("{info}<p class=\"notice\">{}</p>", escape(text)),
            &[],
        )
    };
    match may_decide(&decider(&a), &p, &g, state.clock.now()) {
        Ok(()) => {
            let base = super::grants::approval_url("", &g.id);
            let body = format!(
                "{info}<form method=\"post\" action=\"{base}/approve\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\" id=\"approve\">Approve</button> \
<button type=\"submit\" id=\"deny\" formaction=\"{base}/deny\" class=\"secondary\">Deny</button></form>",
                base = escape(&base),
                csrf = escape(&a.csrf),
            );
            page(StatusCode::OK, title, &body, &[])
        }
        // The requester sees their own request; anyone else outside the approvers, nothing of it.
        Err(n @ NoDecision::Own) => notice(StatusCode::FORBIDDEN, &format!("{}.", capitalized(&n))),
        Err(n @ NoDecision::NotApprover) => message(
            StatusCode::FORBIDDEN,
            "Not an approver",
            &format!("{}.", capitalized(&n)),
        ),
        Err(n) => notice(StatusCode::OK, &format!("{}.", capitalized(&n))),
    }
}

fn capitalized(n: &NoDecision) -> String {
    let s = n.to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

/// The POSTed form.
#[derive(Debug, Deserialize)]
struct DecisionForm {
    csrf: Option<String>,
}

/// `POST /aws/approvals/{id}/approve|deny`.
async fn decide(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let blocked = |why: &str| {
        ctx.audit(
            &state,
            "aws.approval.refused",
            serde_json::json!({"reason": why, "grant": id}),
        );
        message(
            StatusCode::FORBIDDEN,
            "Request blocked",
            "This request was blocked. Open the approval link again and decide from that page.",
        )
    };
    if (action != "approve" && action != "deny") || id.len() > MAX_ID_LEN {
        return not_found();
    }
    if !same_origin(&headers, &state.origin) {
        return blocked("cross_site");
    }
    let Some(a) = approver::session(&state, &headers) else {
        return blocked("no_session");
    };
    if !csrf_ok(&a, form.csrf.as_deref()) {
        return blocked("csrf");
    }
    let (g, p) = match load(&state, &id).await {
        Ok(found) => found,
        Err(res) => return res,
    };
    let now = state.clock.now();
    if let Err(n) = may_decide(&decider(&a), &p, &g, now) {
        let status = match n {
            NoDecision::Own | NoDecision::NotApprover => StatusCode::FORBIDDEN,
            _ => StatusCode::CONFLICT,
        };
        return message(status, "Not decided", &format!("{}.", capitalized(&n)));
    }
    let decision = if action == "approve" {
        Decision::Approve {
            until: approved_until(&g, now),
        }
    } else {
        Decision::Deny
    };
    let by = a.email.as_deref().unwrap_or(&a.sub);
    let who = rows::Decider {
        by,
        client_ip: ctx.ip.as_deref(),
    };
    let done = match state
        .store
        .aws_decide_grant(&g.id, decision, who, now)
        .await
    {
        Ok(Some(done)) => done,
        Ok(None) => {
            return message(
                StatusCode::CONFLICT,
                "Already decided",
                "This request was decided in the meantime.",
            )
        }
        Err(e) => {
            tracing::error!("agent access store: {e}");
            return unavailable();
        }
    };
    let (evt, text) = match done.until {
        Some(until) if action == "approve" => (
            "aws.grant.approved",
            format!(
                "Write access to project {} is approved until {}.",
                p.name,
                until.format(&Rfc3339).unwrap_or_default()
            ),
        ),
        _ => (
            "aws.grant.denied",
            format!(
                "The request for write access to project {} is denied.",
                p.name
            ),
        ),
    };
    state
        .audit
        .emit(evt, now, event(&done, Some(by), ctx.ip.as_deref()));
    message(
        StatusCode::OK,
        if action == "approve" {
            "Approved"
        } else {
            "Denied"
        },
        &text,
    )
}
